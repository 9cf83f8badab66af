//! The endpoint screens of the console and the portal over real HTTP: "Send test event" (to
//! that endpoint only; malformed, non-object, huge payloads and unknown event types refused
//! on the form), the endpoint form's channels, custom headers (sensitive values never shown,
//! kept unless replaced), metadata and delivery options (errors next to their control, nothing
//! changed), broker/poll destinations (no password on the page, pull instructions), the delete
//! confirmation page, the 24 h chart and success rate, and "Recover since" an exact instant with
//! its progress. Every new route: CSRF refused, another application's endpoint 403 from a portal
//! session. The browser-level checks are tests/python/test_console_endpoints.py.

use herald_core::destination::BrokerKind;
use serde_json::{json, Value};

use crate::common::*;
use crate::console::{Console, Page};

const XSS: &str = "<img src=x onerror=alert(1)>";

async fn console(srv: &TestServer) -> (Console, String, String) {
    let mut c = Console::new(srv);
    assert_eq!(c.sign_in(ADMIN_TOKEN).await.status, 303);
    let csrf = c.csrf().await;
    let origin = c.origin();
    (c, csrf, origin)
}

/// A portal session of `app`: (client, csrf, origin).
async fn portal(srv: &TestServer, app: &str) -> (Console, String, String) {
    let out = srv
        .client
        .post(&format!("/auth/app-portal-access/{app}"), json!({}), 200)
        .await;
    let key = out["token"].as_str().unwrap().to_string();
    let mut c = Console::named(srv, "herald_portal");
    let origin = c.origin();
    let p = c
        .post("/portal/sign-in", Some(&origin), &[("key", &key)])
        .await;
    assert_eq!(p.status, 200, "{}", p.text);
    let csrf = c.csrf_of(&format!("/portal/app/{app}")).await;
    (c, csrf, origin)
}

async fn event_type(srv: &TestServer) {
    let schema = json!({
        "type": "object",
        "required": ["id"],
        "properties": {"id": {"type": "string"}},
        "examples": [{"id": "in_example", "amount": 42}],
    });
    srv.client
        .post(
            "/event-type",
            json!({"name": "invoice.paid", "description": "paid", "schemas": {"1": schema}}),
            201,
        )
        .await;
}

/// An application `shop` with one endpoint to `recv`, whose first answer is a 500, and one
/// message `a.b` published to it; waits until that delivery has `status` and returns
/// (application, endpoint, message).
async fn first_attempt_fails(
    srv: &TestServer,
    recv: &Receiver,
    status: i64,
) -> (String, String, String) {
    recv.then(Reply::Status(500));
    let admin = &srv.client;
    let app = admin.create_app("shop").await;
    let ep = admin.endpoint_for(&app, &recv.url()).await;
    let msg = admin
        .publish(&app, json!({"eventType": "a.b", "payload": {}}))
        .await;
    admin.wait_delivery(&app, &msg, &ep, status).await;
    (app, ep, msg)
}

fn total(stats: &Value) -> i64 {
    ["success", "pending", "sending", "fail"]
        .iter()
        .map(|k| stats[k].as_i64().unwrap())
        .sum()
}

fn field_error(p: &Page, id: &str) -> bool {
    p.text.contains(&format!("id=\"{id}\""))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn send_test_event_goes_to_that_endpoint_only_and_refuses_bad_payloads() {
    let srv = TestServer::start(|cfg| cfg.max_payload_bytes = 4096).await;
    event_type(&srv).await;
    let recv = Receiver::start().await;
    let admin = &srv.client;
    let app = admin.create_app("shop").await;
    // The target takes no event type of the catalog: the test event goes there anyway.
    let ep = id_of(
        &admin
            .create_endpoint(
                &app,
                json!({"url": recv.url(), "filterTypes": ["other.thing"]}),
            )
            .await,
    );
    let other = id_of(
        &admin
            .create_endpoint(&app, json!({"url": recv.url_path("other")}))
            .await,
    );
    let (mut c, csrf, origin) = console(&srv).await;
    let at = format!("/console/app/{app}/endpoint/{ep}/test");

    let form = c.get(&format!("{at}?event_type=invoice.paid")).await;
    assert_eq!(form.status, 200, "{}", form.text);
    assert!(form.text.contains("in_example"), "the example is filled in");
    assert!(form.text.contains(">Payload (JSON)</label>"));

    let sent = c
        .post(
            &at,
            Some(&origin),
            &[
                ("csrf", &csrf),
                ("event_type", "invoice.paid"),
                ("payload", r#"{"id": "in_test", "note": "<b>x</b>"}"#),
            ],
        )
        .await;
    assert_eq!(sent.status, 303, "{}", sent.text);
    let to = sent.header("location").to_string();
    assert!(
        to.starts_with(&format!("/console/app/{app}/msg/msg_")),
        "{to}"
    );
    let msg = to.rsplit('/').next().unwrap().to_string();
    let got = recv.wait_for(1).await;
    assert!(got[0].body_text().contains("in_test"));
    admin.wait_delivery(&app, &msg, &ep, 0).await;
    let stats = admin
        .get(&format!("/app/{app}/endpoint/{other}/stats"), 200)
        .await;
    assert_eq!(total(&stats), 0, "the other endpoint got nothing: {stats}");
    let page = c.get(&to).await;
    assert!(page.text.contains("invoice.paid") && page.text.contains("in_test"));

    // Refused on the form, with the error next to its control, nothing published.
    let big = format!(r#"{{"id": "{}"}}"#, "x".repeat(5000));
    for (event, payload, status, control) in [
        ("invoice.paid", "{not json", 422, "test-payload-error"),
        ("invoice.paid", "[1, 2]", 422, "test-payload-error"),
        ("invoice.paid", r#"{"id": 5}"#, 422, "test-payload-error"),
        ("never.defined", "{}", 422, "test-type-error"),
        ("<script>", "{}", 422, "test-type-error"),
        ("invoice.paid", big.as_str(), 413, "test-payload-error"),
    ] {
        let p = c
            .post(
                &at,
                Some(&origin),
                &[("csrf", &csrf), ("event_type", event), ("payload", payload)],
            )
            .await;
        assert_eq!(p.status, status, "{event} {payload}: {}", p.text);
        assert!(field_error(&p, control), "{control}: {}", p.text);
        assert!(!p.text.contains("<script>"));
    }
    // A form larger than twice the payload limit: 413 before anything is read.
    let huge = "y".repeat(20_000);
    let p = c
        .post(
            &at,
            Some(&origin),
            &[
                ("csrf", &csrf),
                ("event_type", "invoice.paid"),
                ("payload", &huge),
            ],
        )
        .await;
    assert_eq!(p.status, 413);
    // CSRF: no token, or a foreign origin.
    let fields = [
        ("event_type", "invoice.paid"),
        ("payload", "{\"id\":\"a\"}"),
    ];
    assert_eq!(c.post(&at, Some(&origin), &fields).await.status, 403);
    let mut with = vec![("csrf", csrf.as_str())];
    with.extend(fields);
    assert_eq!(
        c.post(&at, Some("https://evil.example"), &with)
            .await
            .status,
        403
    );
    let stats = admin
        .get(&format!("/app/{app}/endpoint/{ep}/stats"), 200)
        .await;
    assert_eq!(total(&stats), 1, "only the one test event: {stats}");
    srv.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_endpoint_form_edits_channels_headers_metadata_and_delivery_options() {
    let srv = TestServer::start(|cfg| cfg.max_payload_bytes = 4096).await;
    let admin = &srv.client;
    let app = admin.create_app("shop").await;
    let ep = id_of(
        &admin
            .create_endpoint(
                &app,
                json!({"url": "https://hooks.example.com/a", "headers": {"Authorization": "Bearer s3cret-value", "X-Plain": "seen"}}),
            )
            .await,
    );
    let (mut c, csrf, origin) = console(&srv).await;
    let at = format!("/console/app/{app}/endpoint/{ep}");
    let page = c.get(&at).await;
    assert!(
        !page.text.contains("s3cret-value"),
        "a sensitive header on the page"
    );
    assert!(
        page.text.contains("Authorization: ••• (set)"),
        "{}",
        page.text
    );
    assert!(page.text.contains("X-Plain: seen"));
    assert!(page.text.contains("Send test event"));

    let headers = format!("Authorization: ••• (set)\nX-Plain: changed\nX-Name: {XSS}\n");
    let ok = [
        ("csrf", csrf.as_str()),
        ("url", "https://hooks.example.com/a"),
        ("description", "d"),
        ("channels", "eu, vip"),
        ("headers", headers.as_str()),
        ("metadata", r#"{"team": "billing"}"#),
        ("timeout_ms", "2500"),
        ("batch_max_events", "10"),
        ("batch_max_wait_ms", "200"),
        ("filter", r#"{"data.amount": {"$gte": 100}}"#),
        ("options", ""),
    ];
    let saved = c.post(&format!("{at}/edit"), Some(&origin), &ok).await;
    assert_eq!(saved.status, 303, "{}", saved.text);
    let v = admin.get(&format!("/app/{app}/endpoint/{ep}"), 200).await;
    assert_eq!(v["channels"], json!(["eu", "vip"]), "{v}");
    assert_eq!(v["metadata"], json!({"team": "billing"}));
    assert_eq!(v["timeoutMs"], 2500, "{v}");
    assert_eq!(v["batch"]["maxEvents"], 10, "{v}");
    assert!(v["filter"].is_object(), "{v}");
    let h = admin
        .get(&format!("/app/{app}/endpoint/{ep}/headers"), 200)
        .await;
    assert_eq!(h["headers"]["X-Plain"], "changed", "{h}");
    assert_eq!(h["headers"]["X-Name"], XSS);
    // The sensitive header kept its value (the API redacts it; the store still has it).
    assert!(
        h["sensitive"]
            .as_array()
            .unwrap()
            .iter()
            .any(|n| n == "Authorization"),
        "{h}"
    );
    let page = c.get(&at).await;
    assert!(page.text.contains("&#60;img src=x"), "header shown as text");
    assert!(!page.text.contains(XSS));
    assert!(!page.text.contains("s3cret-value"));

    // Refused forms: the error next to its control, 422, nothing changed.
    let before = admin.get(&format!("/app/{app}/endpoint/{ep}"), 200).await;
    for (name, value, control) in [
        ("metadata", "{oops", "ep-metadata-error"),
        ("metadata", "[1]", "ep-metadata-error"),
        ("filter", "not json", "ep-filter-error"),
        ("timeout_ms", "soon", "ep-timeout-error"),
        ("timeout_ms", "0", "ep-timeout-error"),
        ("channels", "bad channel!", "ep-channels-error"),
        ("url", "ftp://nope.example", "ep-url-error"),
        ("headers", "no colon", "ep-headers-error"),
        ("headers", "X-New: ••• (set)", "ep-headers-error"),
        ("options", r#"{"transformation": 1}"#, "ep-options-error"),
        ("options", "{bad", "ep-options-error"),
    ] {
        let mut fields: Vec<(&str, &str)> =
            ok.iter().filter(|(k, _)| *k != name).copied().collect();
        fields.push((name, value));
        let p = c.post(&format!("{at}/edit"), Some(&origin), &fields).await;
        assert_eq!(p.status, 422, "{name}={value}: {}", p.text);
        assert!(
            field_error(&p, control),
            "{name}={value} → {control}: {}",
            p.text
        );
        // The page shows the form as typed.
        assert!(p.text.contains("aria-invalid=\"true\""));
    }
    // A form over twice the payload limit: 413 before anything is read.
    let huge = "m".repeat(300_000);
    let p = c
        .post(
            &format!("{at}/edit"),
            Some(&origin),
            &[("csrf", &csrf), ("metadata", &huge)],
        )
        .await;
    assert_eq!(p.status, 413);
    assert_eq!(
        admin.get(&format!("/app/{app}/endpoint/{ep}"), 200).await,
        before
    );
    let h2 = admin
        .get(&format!("/app/{app}/endpoint/{ep}/headers"), 200)
        .await;
    assert_eq!(h2, h);

    // Emptied fields clear their setting.
    let cleared = [
        ("csrf", csrf.as_str()),
        ("url", "https://hooks.example.com/a"),
        ("channels", ""),
        ("headers", ""),
        ("metadata", ""),
        ("timeout_ms", ""),
        ("batch_max_events", ""),
        ("batch_max_wait_ms", ""),
        ("filter", ""),
    ];
    let p = c.post(&format!("{at}/edit"), Some(&origin), &cleared).await;
    assert_eq!(p.status, 303, "{}", p.text);
    let v = admin.get(&format!("/app/{app}/endpoint/{ep}"), 200).await;
    assert!(v["channels"].is_null() && v["timeoutMs"].is_null(), "{v}");
    assert!(v["batch"].is_null() && v["filter"].is_null(), "{v}");
    let h = admin
        .get(&format!("/app/{app}/endpoint/{ep}/headers"), 200)
        .await;
    assert_eq!(h["headers"], json!({}), "{h}");
    srv.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn broker_passwords_never_show_and_poll_endpoints_say_how_to_pull() {
    let srv = TestServer::start(|cfg| {
        cfg.destination_schemes = vec![BrokerKind::Amqp];
    })
    .await;
    let admin = &srv.client;
    let app = admin.create_app("shop").await;
    let broker = id_of(
        &admin
            .create_endpoint(&app, json!({"url": "amqp://herald:pa55word@127.0.0.1:5672/%2f?exchange=ex&routingKey=rk", "disabled": true}))
            .await,
    );
    let poll = id_of(&admin.create_endpoint(&app, json!({"url": "poll:"})).await);
    let (mut c, csrf, origin) = console(&srv).await;
    let at = format!("/console/app/{app}/endpoint/{broker}");
    let page = c.get(&at).await;
    assert_eq!(page.status, 200, "{}", page.text);
    assert!(
        !page.text.contains("pa55word"),
        "a broker password on the page"
    );
    assert!(page.text.contains("amqps://"), "the scheme hint");
    // Saving the form as shown keeps the stored password.
    let shown = admin
        .get(&format!("/app/{app}/endpoint/{broker}"), 200)
        .await["url"]
        .as_str()
        .unwrap()
        .to_string();
    let p = c
        .post(
            &format!("{at}/edit"),
            Some(&origin),
            &[
                ("csrf", &csrf),
                ("url", &shown),
                ("description", "kept"),
                ("disabled", "on"),
            ],
        )
        .await;
    assert_eq!(p.status, 303, "{}", p.text);
    let after = admin
        .get(&format!("/app/{app}/endpoint/{broker}"), 200)
        .await;
    assert_eq!(after["url"], shown.as_str());
    assert_eq!(after["description"], "kept");

    let page = c.get(&format!("/console/app/{app}/endpoint/{poll}")).await;
    assert!(
        page.text
            .contains(&format!("/api/v1/app/{app}/endpoint/{poll}/poll")),
        "{}",
        page.text
    );
    assert!(page.text.contains("poll-only token"));
    // A new `poll:` endpoint from the form.
    let p = c
        .post(
            &format!("/console/app/{app}/endpoints"),
            Some(&origin),
            &[("csrf", &csrf), ("url", "poll:")],
        )
        .await;
    assert_eq!(p.status, 303, "{}", p.text);
    srv.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn delete_asks_first_and_the_chart_and_rates_have_text() {
    let srv = TestServer::start(|_| {}).await;
    let recv = Receiver::start().await;
    let admin = &srv.client;
    let (app, ep, _) = first_attempt_fails(&srv, &recv, 0).await;
    let (mut c, csrf, origin) = console(&srv).await;
    let at = format!("/console/app/{app}/endpoint/{ep}");

    let page = c.get(&at).await;
    assert!(page.text.contains("role=\"img\""));
    assert!(
        page.text
            .contains("Attempts per hour over the last 24 hours: 1 succeeded, 1 failed"),
        "{}",
        page.text
    );
    assert!(page.text.contains("Attempts per hour as a table"));
    let home = c.get(&format!("/console/app/{app}")).await;
    assert!(home.text.contains("Success (24 h)"));
    assert!(home.text.contains("50.0 %"), "{}", home.text);

    // "Delete endpoint…" is a link to a confirmation page; only its POST deletes.
    assert!(page.text.contains(&format!("href=\"{at}/delete\"")));
    let confirm = c.get(&format!("{at}/delete")).await;
    assert_eq!(confirm.status, 200);
    assert!(confirm.text.contains("Delete endpoint?"));
    assert!(confirm.text.contains(">Cancel</a>"));
    admin.get(&format!("/app/{app}/endpoint/{ep}"), 200).await;
    let gone = c
        .post(&format!("{at}/delete"), Some(&origin), &[("csrf", &csrf)])
        .await;
    assert_eq!(gone.status, 303);
    admin.get(&format!("/app/{app}/endpoint/{ep}"), 404).await;
    srv.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn recover_since_an_exact_instant_shows_progress_until_done() {
    let srv = TestServer::start(|cfg| cfg.retry_schedule = vec![]).await;
    let recv = Receiver::start().await;
    let admin = &srv.client;
    let (app, ep, msg) = first_attempt_fails(&srv, &recv, 2).await;
    let (mut c, csrf, origin) = console(&srv).await;
    let at = format!("/console/app/{app}/endpoint/{ep}");

    let since = rfc3339_ago(600);
    let p = c
        .post(
            &format!("{at}/recover"),
            Some(&origin),
            &[("csrf", &csrf), ("since", &since)],
        )
        .await;
    assert_eq!(p.status, 303, "{}", p.text);
    let to = p.header("location").to_string();
    assert!(to.contains("recovered=1&since="), "{to}");
    admin.wait_delivery(&app, &msg, &ep, 0).await;
    let page = c.get(&to).await;
    assert!(page.text.contains("data-poll=\""), "{}", page.text);
    let ms = to.rsplit("since=").next().unwrap();
    let status = c
        .get(&format!("{at}/recover-status?since={ms}&recovered=1"))
        .await;
    assert_eq!(status.status, 200);
    assert!(status.text.contains("data-done"), "{}", status.text);
    assert!(status.text.contains("1 of 1"), "{}", status.text);

    // The viewer's local time with its offset (UTC+2: getTimezoneOffset() = -120).
    let local = chrono::Utc::now() + chrono::Duration::hours(2) - chrono::Duration::minutes(5);
    let local = local.format("%Y-%m-%dT%H:%M").to_string();
    let p = c
        .post(
            &format!("{at}/recover"),
            Some(&origin),
            &[
                ("csrf", &csrf),
                ("since", ""),
                ("since_local", &local),
                ("tz_offset", "-120"),
            ],
        )
        .await;
    assert_eq!(p.status, 303, "{}", p.text);
    let to = p.header("location").to_string();
    let ms: i64 = to.rsplit("since=").next().unwrap().parse().unwrap();
    let expect = chrono::Utc::now().timestamp_millis() - 300_000;
    assert!((ms - expect).abs() < 120_000, "{ms} vs {expect}");

    for bad in [
        vec![("since", "yesterday")],
        vec![("since_local", "2026-13-45T99:99")],
        vec![("since_local", "2026-01-01T10:00"), ("tz_offset", "x")],
        vec![("since", "2999-01-01T00:00:00Z")],
    ] {
        let mut fields = vec![("csrf", csrf.as_str())];
        fields.extend(bad.iter().copied());
        let p = c
            .post(&format!("{at}/recover"), Some(&origin), &fields)
            .await;
        assert_eq!(p.status, 422, "{bad:?}: {}", p.text);
    }
    let p = c
        .post(
            &format!("{at}/recover"),
            Some(&origin),
            &[("since", since.as_str())],
        )
        .await;
    assert_eq!(p.status, 403);
    srv.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_portal_session_gets_403_for_another_applications_endpoint_on_every_new_route() {
    let srv = TestServer::start(|_| {}).await;
    event_type(&srv).await;
    let admin = &srv.client;
    let a = admin.create_app("tenant-a").await;
    let b = admin.create_app("tenant-b").await;
    let ep_a = admin.endpoint_for(&a, "https://a.example.com/h").await;
    let ep_b = admin.endpoint_for(&b, "https://b.example.com/h").await;
    let (mut c, csrf, origin) = portal(&srv, &a).await;

    // The session's own endpoint: every new screen opens.
    let mine = format!("/portal/app/{a}/endpoint/{ep_a}");
    for path in [
        format!("{mine}/test"),
        format!("{mine}/delete"),
        format!("{mine}/recover-status?since=0"),
        mine.clone(),
    ] {
        let p = c.get(&path).await;
        assert_eq!(p.status, 200, "{path}: {}", p.text);
    }
    let p = c
        .post(
            &format!("{mine}/test"),
            Some(&origin),
            &[
                ("csrf", &csrf),
                ("event_type", "invoice.paid"),
                ("payload", r#"{"id":"x"}"#),
            ],
        )
        .await;
    assert_eq!(p.status, 303, "{}", p.text);
    assert!(p
        .header("location")
        .starts_with(&format!("/portal/app/{a}/msg/")));

    let theirs = format!("/portal/app/{b}/endpoint/{ep_b}");
    let before = admin.get(&format!("/app/{b}/endpoint/{ep_b}"), 200).await;
    for path in [
        format!("{theirs}/test"),
        format!("{theirs}/delete"),
        format!("{theirs}/recover-status?since=0"),
    ] {
        assert_eq!(c.get(&path).await.status, 403, "{path}");
    }
    for (path, fields) in [
        (
            format!("{theirs}/test"),
            vec![("event_type", "invoice.paid"), ("payload", r#"{"id":"x"}"#)],
        ),
        (
            format!("{theirs}/edit"),
            vec![
                ("url", "https://evil.example/x"),
                ("channels", "x"),
                ("headers", "X-A: 1"),
            ],
        ),
        (
            format!("{theirs}/recover"),
            vec![("since", "2020-01-01T00:00:00Z")],
        ),
        (format!("{theirs}/delete"), vec![]),
    ] {
        let mut all = vec![("csrf", csrf.as_str())];
        all.extend(fields);
        let p = c.post(&path, Some(&origin), &all).await;
        assert_eq!(p.status, 403, "{path}: {}", p.text);
    }
    // B's endpoint under A's path: not found.
    assert_eq!(
        c.get(&format!("/portal/app/{a}/endpoint/{ep_b}/test"))
            .await
            .status,
        404
    );
    assert_eq!(
        admin.get(&format!("/app/{b}/endpoint/{ep_b}"), 200).await,
        before
    );
    let stats = admin
        .get(&format!("/app/{b}/endpoint/{ep_b}/stats"), 200)
        .await;
    assert_eq!(total(&stats), 0);
    srv.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_add_endpoint_form_shows_its_errors_next_to_the_controls() {
    let srv = TestServer::start(|_| {}).await;
    let admin = &srv.client;
    let app = admin.create_app("shop").await;
    let (mut c, csrf, origin) = console(&srv).await;
    let add = format!("/console/app/{app}/endpoints");
    for (name, value, control) in [
        ("url", "ftp://nope.example", "ep-url-error"),
        ("url", "http://169.254.169.254/latest", "ep-url-error"),
        ("metadata", "{oops", "ep-metadata-error"),
        ("timeout_ms", "soon", "ep-timeout-error"),
        ("channels", "bad channel!", "ep-channels-error"),
        ("headers", "no colon", "ep-headers-error"),
    ] {
        let mut fields = vec![
            ("csrf", csrf.as_str()),
            ("url", "https://new.example.com/hook"),
            ("description", "<b>typed</b>"),
        ];
        fields.retain(|(k, _)| *k != name);
        fields.push((name, value));
        let p = c.post(&add, Some(&origin), &fields).await;
        assert_eq!(p.status, 422, "{name}={value}: {}", p.text);
        assert!(
            field_error(&p, control),
            "{name}={value} → {control}: {}",
            p.text
        );
        assert!(p.text.contains("aria-invalid=\"true\""), "{}", p.text);
        // The application page again, the form open and as typed (as text, not markup).
        assert!(
            p.text.contains("<details class=\"card\" open>"),
            "{}",
            p.text
        );
        assert!(
            p.text.contains("&#60;b&#62;typed&#60;/b&#62;"),
            "{}",
            p.text
        );
        assert!(!p.text.contains("<b>typed</b>"));
    }
    // Nothing was created.
    let list = admin.get(&format!("/app/{app}/endpoint"), 200).await;
    assert_eq!(list["data"].as_array().unwrap().len(), 0, "{list}");
    // The form as a whole, and another tenant's application, stay refused as before.
    let p = c
        .post(
            &add,
            Some(&origin),
            &[("csrf", &csrf), ("url", "https://ok.example.com/")],
        )
        .await;
    assert_eq!(p.status, 303, "{}", p.text);
    let p = c
        .post(
            "/console/app/app_nope/endpoints",
            Some(&origin),
            &[("csrf", &csrf), ("url", "https://ok.example.com/")],
        )
        .await;
    assert_eq!(p.status, 404, "{}", p.text);
    srv.stop().await;
}
