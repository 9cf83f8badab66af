//! The console's operator screens beyond browsing (console.md): the event catalog edited
//! (create, edit, archive, unarchive; refused schemas shown next to their field), "Reject" of
//! a quarantined request (console and API), the message filter by delivery status, the
//! application search by name (wildcards and quotes as text), the health page's last-hour
//! figures and open breakers, and sign-in rate limiting — with the hostile cases: CSRF from a
//! foreign Origin, another tenant's token, malformed, cyclic and huge input.

use std::time::Duration;

use serde_json::{json, Value};

use crate::common::*;
use crate::console::{Console, Page};

async fn signed_in(srv: &TestServer) -> (Console, String, String) {
    let mut c = Console::new(srv);
    assert_eq!(c.sign_in(ADMIN_TOKEN).await.status, 303);
    let csrf = c.csrf().await;
    let origin = c.origin();
    (c, csrf, origin)
}

async fn post_form(c: &mut Console, path: &str, origin: &str, f: Vec<(String, String)>) -> Page {
    let fields: Vec<(&str, &str)> = f.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    c.post(path, Some(origin), &fields).await
}

async fn find(c: &mut Console, q: &str) -> Page {
    let q = url::form_urlencoded::byte_serialize(q.as_bytes()).collect::<String>();
    c.get(&format!("/console/?q={q}")).await
}

/// The error paragraph the form shows next to the field `id` (`<p id="{id}-error" …>`).
fn field_error(p: &Page, id: &str) -> String {
    let marker = format!("id=\"{id}-error\"");
    let at = p
        .text
        .find(&marker)
        .unwrap_or_else(|| panic!("no error next to {id}:\n{}", p.text));
    let rest = &p.text[at..];
    let start = rest.find('>').unwrap() + 1;
    rest[start..rest.find("</p>").unwrap()].to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn event_types_are_created_edited_archived_and_bad_schemas_are_explained() {
    let srv = TestServer::start(|_| {}).await;
    let admin = &srv.client;
    let (mut c, csrf, origin) = signed_in(&srv).await;
    assert_eq!(c.get("/console/event-types/new").await.status, 200);
    let create = |name: &str, schema: String, example: &str| {
        vec![
            ("csrf".to_string(), csrf.clone()),
            ("name".to_string(), name.to_string()),
            (
                "description".to_string(),
                "<b>Paid</b> invoices".to_string(),
            ),
            ("schema".to_string(), schema),
            ("example".to_string(), example.to_string()),
        ]
    };
    // A cross-site form creates nothing.
    let schema = r#"{"type": "object", "required": ["id"]}"#.to_string();
    let p = post_form(
        &mut c,
        "/console/event-types",
        "https://evil.example",
        create("invoice.paid", schema.clone(), r#"{"id": 1}"#),
    )
    .await;
    assert_eq!(p.status, 403);
    admin.get("/event-type/invoice.paid", 404).await;

    // Refused schemas: shown again with the reason next to the JSON Schema box, nothing made.
    let deep = format!(
        "{}{}",
        "{\"items\":".repeat(200),
        "{}".to_string() + &"}".repeat(200)
    );
    let cyclic =
        r##"{"$ref": "#/definitions/a", "definitions": {"a": {"$ref": "#/definitions/a"}}}"##;
    for (bad, why) in [
        ("{not json".to_string(), "not JSON"),
        ("[1, 2]".to_string(), "JSON object"),
        (r#"{"type": 12}"#.to_string(), ""),
        (cyclic.to_string(), ""),
        (deep, ""),
    ] {
        let p = post_form(
            &mut c,
            "/console/event-types",
            &origin,
            create("invoice.paid", bad.clone(), ""),
        )
        .await;
        assert_eq!(p.status, 422, "{bad}: {}", p.text);
        let e = field_error(&p, "schema");
        assert!(e.starts_with("JSON Schema: ") && e.contains(why), "{e}");
        assert!(
            !p.text.contains("<b>Paid"),
            "the typed description is shown as text"
        );
        admin.get("/event-type/invoice.paid", 404).await;
    }
    let p = post_form(
        &mut c,
        "/console/event-types",
        &origin,
        create("invoice.paid", schema.clone(), "{oops"),
    )
    .await;
    assert!(field_error(&p, "example").contains("not JSON"));
    // Huge and hostile names: refused next to the name.
    let long = "n".repeat(300);
    for name in [long.as_str(), "<img src=x onerror=alert(1)>", ""] {
        let p = post_form(
            &mut c,
            "/console/event-types",
            &origin,
            create(name, String::new(), ""),
        )
        .await;
        assert_eq!(p.status, 422, "{name}");
        assert!(field_error(&p, "name").starts_with("Name: "));
        assert!(!p.text.contains("<img src=x"));
    }
    // A form over the console's size limit is refused before anything is read.
    let huge = format!("{{\"description\": \"{}\"}}", "x".repeat(300 * 1024));
    let p = post_form(
        &mut c,
        "/console/event-types",
        &origin,
        create("invoice.huge", huge, ""),
    )
    .await;
    assert_eq!(p.status, 403);
    admin.get("/event-type/invoice.huge", 404).await;

    // Created as the API would: the schema with the example as its first `examples` entry.
    let p = post_form(
        &mut c,
        "/console/event-types",
        &origin,
        create("invoice.paid", schema.clone(), r#"{"id": 1}"#),
    )
    .await;
    assert_eq!(p.status, 303, "{}", p.text);
    let et = admin.get("/event-type/invoice.paid", 200).await;
    assert_eq!(et["description"], "<b>Paid</b> invoices");
    assert_eq!(et["schemas"]["1"]["required"], json!(["id"]));
    assert_eq!(et["schemas"]["1"]["examples"], json!([{"id": 1}]));
    let p = post_form(
        &mut c,
        "/console/event-types",
        &origin,
        create("invoice.paid", schema.clone(), ""),
    )
    .await;
    assert!(field_error(&p, "name").contains("already exists"));
    let list = c.get("/console/event-types").await;
    assert!(list.text.contains("&#60;b&#62;Paid&#60;/b&#62; invoices"));

    // Edit: the form shows the stored values; saving changes description, schema and example.
    let edit = c.get("/console/event-types/invoice.paid/edit").await;
    assert_eq!(edit.status, 200);
    assert!(edit.text.contains("&#34;required&#34;"), "{}", edit.text);
    let fields = vec![
        ("csrf".to_string(), csrf.clone()),
        ("description".to_string(), "Paid invoices".to_string()),
        (
            "schema".to_string(),
            r#"{"type": "object", "required": ["id", "total"]}"#.to_string(),
        ),
        (
            "example".to_string(),
            r#"{"id": 2, "total": 10}"#.to_string(),
        ),
    ];
    let p = post_form(
        &mut c,
        "/console/event-types/invoice.paid/edit",
        &origin,
        fields.clone(),
    )
    .await;
    assert_eq!(p.status, 303, "{}", p.text);
    let et = admin.get("/event-type/invoice.paid", 200).await;
    assert_eq!(et["description"], "Paid invoices");
    assert_eq!(et["schemas"]["1"]["required"], json!(["id", "total"]));
    assert_eq!(
        et["schemas"]["1"]["examples"],
        json!([{"id": 2, "total": 10}])
    );
    let mut bad = fields.clone();
    bad[2].1 = cyclic.to_string();
    let p = post_form(
        &mut c,
        "/console/event-types/invoice.paid/edit",
        &origin,
        bad,
    )
    .await;
    assert_eq!(p.status, 422);
    assert!(field_error(&p, "schema").starts_with("JSON Schema: "));
    let unchanged = admin.get("/event-type/invoice.paid", 200).await;
    assert_eq!(unchanged["schemas"], et["schemas"]);
    assert_eq!(c.get("/console/event-types/nope/edit").await.status, 404);

    // Archive and unarchive; a foreign Origin changes nothing.
    let archive = |v: &str| {
        vec![
            ("csrf".to_string(), csrf.clone()),
            ("archived".to_string(), v.to_string()),
        ]
    };
    let p = post_form(
        &mut c,
        "/console/event-types/invoice.paid/archive",
        "https://evil.example",
        archive("true"),
    )
    .await;
    assert_eq!(p.status, 403);
    assert_eq!(
        admin.get("/event-type/invoice.paid", 200).await["archived"],
        false
    );
    let p = post_form(
        &mut c,
        "/console/event-types/invoice.paid/archive",
        &origin,
        archive("true"),
    )
    .await;
    assert_eq!(p.status, 303);
    assert_eq!(
        admin.get("/event-type/invoice.paid", 200).await["archived"],
        true
    );
    assert!(!c
        .get("/console/event-types")
        .await
        .text
        .contains("invoice.paid"));
    let all = c.get("/console/event-types?archived=1").await;
    assert!(all.text.contains("(archived)") && all.text.contains("Unarchive invoice.paid"));
    let p = post_form(
        &mut c,
        "/console/event-types/invoice.paid/archive",
        &origin,
        archive("false"),
    )
    .await;
    assert_eq!(p.status, 303);
    assert_eq!(
        admin.get("/event-type/invoice.paid", 200).await["archived"],
        false
    );
    srv.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_portal_cannot_edit_the_event_catalog() {
    let srv = TestServer::start(|_| {}).await;
    let admin = &srv.client;
    let app = admin.create_app("a").await;
    admin
        .post(
            "/event-type",
            json!({"name": "kept", "description": "d"}),
            201,
        )
        .await;
    let out = admin
        .post(&format!("/auth/app-portal-access/{app}"), json!({}), 200)
        .await;
    let mut p = Console::named(&srv, "herald_portal");
    let origin = p.origin();
    let key = out["token"].as_str().unwrap().to_string();
    let signed = p
        .post("/portal/sign-in", Some(&origin), &[("key", &key)])
        .await;
    assert_eq!(signed.status, 200);
    let csrf = p.csrf_of(&format!("/portal/app/{app}")).await;
    assert_eq!(p.get("/portal/event-types/new").await.status, 404);
    let catalog = p.get("/portal/event-types?archived=1").await;
    assert!(
        !catalog.text.contains("Archive"),
        "no editing controls in the portal"
    );
    for path in [
        "/portal/event-types",
        "/portal/event-types/kept/archive",
        "/portal/event-types/kept/edit",
    ] {
        let r = p
            .post(
                path,
                Some(&origin),
                &[("csrf", &csrf), ("name", "new.one"), ("archived", "true")],
            )
            .await;
        assert!(r.status >= 400, "{path}: {}", r.status);
    }
    admin.get("/event-type/new.one", 404).await;
    assert_eq!(admin.get("/event-type/kept", 200).await["archived"], false);
    // The app-scoped token is refused by the API's own handler as well.
    let scoped = admin.with_token(&key);
    scoped
        .post("/event-type", json!({"name": "new.one"}), 403)
        .await;
    srv.stop().await;
}

/// A source whose schema quarantines `{}` bodies, and one quarantined request.
async fn quarantined(srv: &TestServer, app: &str) -> (String, String) {
    let src = srv
        .client
        .post(
            &format!("/app/{app}/source"),
            json!({
                "name": "partner",
                "verification": {"scheme": "api-key", "header": "X-Key", "secrets": ["k-123"]},
                "schema": {"type": "object", "required": ["id"]},
            }),
            201,
        )
        .await;
    let src = id_of(&src);
    #[allow(clippy::disallowed_methods)] // Herald itself, on loopback
    let http = reqwest::Client::builder().no_proxy().build().unwrap();
    let r = http
        .post(format!("http://{}/in/{src}", srv.addr))
        .header("x-key", "k-123")
        .header("content-type", "application/json")
        .body(r#"{"no_id": "<script>x</script>"}"#)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 202);
    let id = r.json::<Value>().await.unwrap()["id"]
        .as_str()
        .unwrap()
        .to_string();
    (src, id)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_quarantined_request_is_rejected_never_forwarded_and_cannot_be_released() {
    let recv = Receiver::start().await;
    let srv = TestServer::start(|_| {}).await;
    let admin = &srv.client;
    let app = admin.create_app("inbound").await;
    admin.endpoint_for(&app, &recv.url()).await;
    let other = admin.create_app("other").await;

    // API: another tenant's token cannot reject; the admin can, once.
    let (src, req) = quarantined(&srv, &app).await;
    let scoped = admin
        .post("/token", json!({"name": "other", "appId": other}), 201)
        .await;
    let other_client = admin.with_token(scoped["token"].as_str().unwrap());
    let reject = format!("/app/{app}/source/{src}/quarantine/{req}/reject");
    other_client.post(&reject, json!({}), 403).await;
    admin
        .post(
            &format!("/app/{app}/source/{src}/quarantine/not-an-id/reject"),
            json!({}),
            404,
        )
        .await;
    admin.post(&reject, json!({}), 204).await;
    let log = admin
        .get(&format!("/app/{app}/source/{src}/request"), 200)
        .await;
    assert_eq!(log["data"][0]["status"], "rejected");
    let reason = log["data"][0]["reason"].as_str().unwrap();
    assert!(
        reason.starts_with("rejected by the admin token at "),
        "{reason}"
    );
    assert!(
        reason.contains("quarantined: "),
        "the original reason is kept: {reason}"
    );
    assert!(log["data"][0]["body"].is_null());
    admin.post(&reject, json!({}), 404).await;
    let release = format!("/app/{app}/source/{src}/quarantine/{req}/release");
    let refused = admin.post(&release, json!({}), 409).await;
    assert_error_body(&refused, "rejected");

    // Console: the button next to "Release"; a foreign Origin changes nothing.
    let (src2, req2) = quarantined(&srv, &app).await;
    let (mut c, csrf, origin) = signed_in(&srv).await;
    let page = format!("/console/app/{app}/source/{src2}");
    let p = c.get(&page).await;
    assert!(p
        .text
        .contains(&format!("aria-label=\"Reject request {req2}\"")));
    assert!(!p.text.contains("<script>x"), "the body is text");
    let fields = [("csrf", csrf.as_str()), ("request", req2.as_str())];
    let cross = c
        .post(
            &format!("{page}/reject"),
            Some("https://evil.example"),
            &fields,
        )
        .await;
    assert_eq!(cross.status, 403);
    let still = admin
        .get(&format!("/app/{app}/source/{src2}/request"), 200)
        .await;
    assert_eq!(still["data"][0]["status"], "quarantined");
    let done = c
        .post(&format!("{page}/reject"), Some(&origin), &fields)
        .await;
    assert_eq!(done.status, 303, "{}", done.text);
    let p = c.get(&format!("{page}?status=rejected")).await;
    assert!(p.text.contains("rejected by the admin token"), "{}", p.text);
    assert!(
        !p.text.contains("Reject request"),
        "no buttons for a rejected request"
    );
    let again = c
        .post(&format!("{page}/release"), Some(&origin), &fields)
        .await;
    assert_eq!(again.status, 409);
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(recv.count(), 0, "a rejected request was forwarded");
    srv.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn messages_filter_by_delivery_status() {
    let recv = Receiver::start().await;
    recv.set_path_reply("/fail", Reply::Status(500));
    let srv = TestServer::start(|_| {}).await;
    let admin = &srv.client;
    let app = admin.create_app("a").await;
    let ok_ep = id_of(
        &admin
            .create_endpoint(&app, json!({"url": recv.url(), "filterTypes": ["good"]}))
            .await,
    );
    let bad_ep = id_of(
        &admin
            .create_endpoint(
                &app,
                json!({"url": recv.url_path("/fail"), "filterTypes": ["bad"]}),
            )
            .await,
    );
    let poll = id_of(
        &admin
            .create_endpoint(&app, json!({"url": "poll:", "filterTypes": ["held"]}))
            .await,
    );
    let good = admin
        .publish(&app, json!({"eventType": "good", "payload": {}}))
        .await;
    let bad = admin
        .publish(&app, json!({"eventType": "bad", "payload": {}}))
        .await;
    let held = admin
        .publish(&app, json!({"eventType": "held", "payload": {}}))
        .await;
    admin.wait_delivery(&app, &good, &ok_ep, 0).await;
    admin.wait_delivery(&app, &bad, &bad_ep, 2).await;
    admin.wait_delivery(&app, &held, &poll, 1).await;

    let (mut c, _, _) = signed_in(&srv).await;
    let shown = |p: &Page, m: &str| p.text.contains(&format!("/msg/{m}\""));
    for (status, want) in [("success", &good), ("fail", &bad), ("pending", &held)] {
        let p = c.get(&format!("/console/app/{app}?status={status}")).await;
        assert_eq!(p.status, 200);
        for m in [&good, &bad, &held] {
            assert_eq!(shown(&p, m), m == want, "{status}: {m}\n{}", p.text);
        }
    }
    let none = c.get(&format!("/console/app/{app}?status=sending")).await;
    assert!(none.text.contains("No messages match this filter"));
    // Combined with the event-type filter.
    let p = c
        .get(&format!("/console/app/{app}?status=fail&event_type=good"))
        .await;
    assert!(!shown(&p, &bad) && !shown(&p, &good));
    for junk in ["bogus", "%27%20OR%201%3D1", "1"] {
        let p = c.get(&format!("/console/app/{app}?status={junk}")).await;
        assert_eq!(p.status, 422, "{junk}");
    }
    // Another tenant's session sees nothing of it.
    let other = admin.create_app("b").await;
    let out = admin
        .post(&format!("/auth/app-portal-access/{other}"), json!({}), 200)
        .await;
    let mut p = Console::named(&srv, "herald_portal");
    let origin = p.origin();
    let key = out["token"].as_str().unwrap().to_string();
    assert_eq!(
        p.post("/portal/sign-in", Some(&origin), &[("key", &key)])
            .await
            .status,
        200
    );
    assert_eq!(
        p.get(&format!("/portal/app/{app}?status=fail"))
            .await
            .status,
        403
    );
    srv.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn applications_are_found_by_name_with_wildcards_and_quotes_as_text() {
    let srv = TestServer::start(|_| {}).await;
    let admin = &srv.client;
    let mut ids = std::collections::HashMap::new();
    for name in [
        "Alpha Shop",
        "beta_shop",
        "50% off",
        "O'Brien \"quoted\"",
        "betaXshop",
    ] {
        ids.insert(name, admin.create_app(name).await);
    }
    let (mut c, _, _) = signed_in(&srv).await;
    let listed = |p: &Page, name: &str| p.text.contains(&format!("/console/app/{}\"", ids[name]));
    let p = find(&mut c, "SHOP").await;
    assert_eq!(p.status, 200);
    assert!(listed(&p, "Alpha Shop") && listed(&p, "beta_shop") && listed(&p, "betaXshop"));
    assert!(!listed(&p, "50% off"));
    let p = find(&mut c, "a_s").await;
    assert!(
        listed(&p, "beta_shop") && !listed(&p, "betaXshop"),
        "_ is not a wildcard"
    );
    let p = find(&mut c, "%").await;
    assert!(
        listed(&p, "50% off") && !listed(&p, "Alpha Shop"),
        "% is not a wildcard"
    );
    let p = find(&mut c, "'brien \"").await;
    assert!(listed(&p, "O'Brien \"quoted\""));
    for hostile in [
        "' OR '1'='1",
        "\\",
        "%%%",
        "\"; DROP TABLE apps; --",
        &"x".repeat(20_000),
    ] {
        let p = find(&mut c, hostile).await;
        assert_eq!(p.status, 200, "{hostile}");
        assert!(p.text.contains("No application matches"), "{hostile}");
    }
    // An exact ID still goes straight to the application.
    let p = find(&mut c, &ids["50% off"]).await;
    assert_eq!(p.status, 303);
    // Name matches page like the list.
    for i in 0..27 {
        admin.create_app(&format!("paged-{i:02}")).await;
    }
    let first = find(&mut c, "PAGED").await;
    assert_eq!(first.text.matches("paged-").count(), 25);
    let next = first
        .text
        .split("href=\"")
        .map(|h| {
            h[..h.find('"').unwrap_or(0)]
                .replace("&#38;", "&")
                .replace("&amp;", "&")
        })
        .find(|h| h.starts_with("/console?q=PAGED&page="))
        .expect("a next-page link keeping the search");
    let second = c.get(&next).await;
    assert_eq!(second.text.matches("paged-").count(), 2, "{}", second.text);
    srv.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn health_shows_the_last_hour_and_open_breakers() {
    let recv = Receiver::start().await;
    recv.set_default(Reply::Status(500));
    let srv = TestServer::start(|cfg| cfg.retry_schedule = vec![300]).await;
    let admin = &srv.client;
    let (mut c, _, _) = signed_in(&srv).await;
    let quiet = c.get("/console/health").await;
    assert!(quiet.text.contains("Deliveries per minute (last hour)"));
    assert!(quiet.text.contains("no attempts in the last hour"));
    assert!(quiet.text.contains("No open circuit breakers"));

    let app = admin.create_app("a").await;
    let ep = id_of(
        &admin
            .create_endpoint(&app, json!({"url": recv.url(), "maxConcurrency": 1}))
            .await,
    );
    for i in 0..6 {
        admin
            .publish(&app, json!({"eventType": "t", "payload": {"i": i}}))
            .await;
    }
    recv.wait_for(5).await;
    let breaker = format!("/console/app/{app}/endpoint/{ep}\"");
    let mut p = c.get("/console/health").await;
    for _ in 0..100 {
        if p.text.contains(&breaker) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
        p = c.get("/console/health").await;
    }
    assert!(p.text.contains(&breaker), "{}", p.text);
    assert!(p.text.contains("100.0 %"), "{}", p.text);
    assert!(p.text.contains("state-open"));
    assert!(p.text.contains("data-live"));
    srv.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn too_many_wrong_sign_ins_answer_429_for_console_and_portal() {
    let srv = TestServer::start(|cfg| cfg.console_sign_in_per_minute = 3).await;
    let mut c = Console::new(&srv);
    for _ in 0..3 {
        assert_eq!(c.sign_in("wrong-token").await.status, 401);
    }
    let limited = c.sign_in("wrong-token").await;
    assert_eq!(limited.status, 429);
    assert!(
        limited.text.contains("Too many sign-in attempts"),
        "{}",
        limited.text
    );
    assert!(limited.is_sign_in() || limited.text.contains("data-sign-in"));
    assert!(!limited.text.contains("wrong-token"));
    let secs: u64 = limited.header("retry-after").parse().unwrap();
    assert!((1..=60).contains(&secs));
    // Even the right token waits: guessing cannot go on.
    assert_eq!(c.sign_in(ADMIN_TOKEN).await.status, 429);
    assert!(c.cookie.is_none());
    // The portal's sign-in counts the same client.
    let mut p = Console::named(&srv, "herald_portal");
    let origin = p.origin();
    let r = p
        .post("/portal/sign-in", Some(&origin), &[("key", "hk_guess")])
        .await;
    assert_eq!(r.status, 429);
    let body: Value = serde_json::from_str(&r.text).unwrap();
    assert_eq!(body["error"], "rate_limited");
    assert!(body["message"]
        .as_str()
        .unwrap()
        .contains("Too many sign-in attempts"));
    srv.stop().await;
}
