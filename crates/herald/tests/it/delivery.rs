//! Delivery as delivery.md describes it, observed from a real receiver: signatures, fan-out,
//! retries, pauses, permanent failures, redirects, timeouts, rotation and the SSRF guard.

use std::time::Duration;

use serde_json::{json, Value};

use crate::common::{
    assert_standard_signed, hmac_sha256, id_of, rfc3339_ago, secret_key, signatures,
    standard_signature, to_hex, unix_now, Client, Receiver, Reply, TestServer, REQUEST_TIMEOUT_MS,
    WAIT,
};

/// A server, a receiver and one application `a`: the arrangement of every test here.
async fn start_with_app() -> (TestServer, Receiver, String) {
    start_with_app_in(TestServer::start(|_| {})).await
}

/// [`start_with_app`] on the server `starting` yields.
async fn start_with_app_in(
    starting: impl std::future::Future<Output = TestServer>,
) -> (TestServer, Receiver, String) {
    let srv = starting.await;
    let rx = Receiver::start().await;
    let app = srv.client.create_app("a").await;
    (srv, rx, app)
}

/// The `responseStatusCode` of each attempt, in order.
fn response_codes(attempts: &[Value]) -> Vec<Value> {
    attempts
        .iter()
        .map(|a| a["responseStatusCode"].clone())
        .collect()
}

/// Rotates the endpoint's secret with `body` and returns the new key.
async fn rotate_secret(c: &Client, app: &str, ep: &str, body: Value) -> String {
    c.post(
        &format!("/app/{app}/endpoint/{ep}/secret/rotate"),
        body,
        200,
    )
    .await["key"]
        .as_str()
        .unwrap()
        .to_string()
}

/// The verifier in `common` agrees with the Standard Webhooks reference vector, so the
/// assertions below test Herald and not the test's own arithmetic.
#[test]
fn test_verifier_matches_the_standard_webhooks_vector() {
    assert_eq!(
        standard_signature(
            "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",
            "msg_p5jXN8AQM9LWM0D4loKWxJek",
            "1614265330",
            br#"{"test": 2432232314}"#,
        ),
        "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn delivery_is_signed_with_standard_webhooks_headers() {
    let (srv, rx, app) = start_with_app().await;
    let c = &srv.client;
    let ep = c.endpoint_for(&app, &rx.url_path("/hook")).await;
    let secret = c.secret(&app, &ep).await;
    let payload = r#"{"id": "inv_1","amount":  42}"#;
    let resp = c
        .post_raw(
            &format!("/app/{app}/msg"),
            format!(r#"{{"eventType":"invoice.paid","payload":{payload}}}"#),
            202,
        )
        .await;
    let msg = id_of(&resp.json);
    let reqs = rx.wait_for(1).await;
    let r = &reqs[0];
    assert_eq!(r.method, "POST");
    assert_eq!(r.path, "/hook");
    assert_eq!(r.body.as_ref(), payload.as_bytes());
    assert_eq!(r.header("content-type"), Some("application/json"));
    assert_standard_signed(r, "webhook", &secret, &msg);
    // A signature made with another secret does not verify (the check is not vacuous).
    let other = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
    let sig = r.header("webhook-signature").unwrap();
    let ts = r.header("webhook-timestamp").unwrap();
    assert!(!signatures(sig).contains(&standard_signature(other, &msg, ts, &r.body)));
    c.wait_delivery(&app, &msg, &ep, 0).await;
    srv.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn svix_and_github_signature_schemes_verify() {
    let (srv, rx, app) = start_with_app().await;
    let c = &srv.client;
    let svix = c
        .create_endpoint(
            &app,
            json!({"url": rx.url_path("/svix"), "signatureScheme": "svix"}),
        )
        .await;
    assert_eq!(svix["signatureScheme"], "svix");
    let github = c
        .create_endpoint(
            &app,
            json!({"url": rx.url_path("/github"), "signatureScheme": "github"}),
        )
        .await;
    let (svix, github) = (id_of(&svix), id_of(&github));
    let svix_secret = c.secret(&app, &svix).await;
    let github_secret = c.secret(&app, &github).await;
    let msg = c
        .publish(
            &app,
            json!({"eventType": "push", "payload": {"ref": "main"}}),
        )
        .await;
    rx.wait_for(2).await;

    let s = &rx.requests_to("/svix")[0];
    assert_standard_signed(s, "svix", &svix_secret, &msg);
    assert!(
        s.header("webhook-signature").is_none(),
        "svix scheme sends svix-* only"
    );

    let g = &rx.requests_to("/github")[0];
    let expected = format!(
        "sha256={}",
        to_hex(&hmac_sha256(github_secret.as_bytes(), &g.body))
    );
    assert_eq!(g.header("x-hub-signature-256"), Some(expected.as_str()));
    assert_eq!(g.header("x-webhook-id"), Some(msg.as_str()));
    let ts: i64 = g.header("x-webhook-timestamp").unwrap().parse().unwrap();
    assert!((unix_now() - ts).abs() <= 300);
    assert!(g.header("webhook-signature").is_none());
    srv.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fan_out_follows_event_types_and_channels() {
    let (srv, rx, app) = start_with_app().await;
    let c = &srv.client;
    let mk = |path: &str, extra: serde_json::Value| {
        let mut body = extra;
        body["url"] = json!(rx.url_path(path));
        body
    };
    let created = c
        .create_endpoint(
            &app,
            mk("/created", json!({"eventTypes": ["order.created"]})),
        )
        .await;
    let paid = c
        .create_endpoint(&app, mk("/paid", json!({"eventTypes": ["order.paid"]})))
        .await;
    let all = c.create_endpoint(&app, mk("/all", json!({}))).await;
    let eu = c
        .create_endpoint(&app, mk("/eu", json!({"channels": ["eu"]})))
        .await;
    let us_created = c
        .create_endpoint(
            &app,
            mk(
                "/us-created",
                json!({"channels": ["us"], "eventTypes": ["order.created"]}),
            ),
        )
        .await;
    let disabled = c
        .create_endpoint(&app, mk("/disabled", json!({"disabled": true})))
        .await;
    let [created, paid, all, eu, us_created, disabled] =
        [&created, &paid, &all, &eu, &us_created, &disabled].map(id_of);

    let m1 = c
        .publish(
            &app,
            json!({"eventType": "order.created", "channels": ["eu"], "payload": {"n": 1}}),
        )
        .await;
    let m2 = c
        .publish(
            &app,
            json!({"eventType": "order.paid", "payload": {"n": 2}}),
        )
        .await;

    let app_ref = &app;
    let targets = |msg: String| async move {
        let v = c
            .get(&format!("/app/{app_ref}/msg/{msg}/endpoint"), 200)
            .await;
        let mut ids: Vec<String> = v["data"].as_array().unwrap().iter().map(id_of).collect();
        ids.sort();
        ids
    };
    let sorted = |mut v: Vec<String>| {
        v.sort();
        v
    };
    assert_eq!(
        targets(m1.clone()).await,
        sorted(vec![created.clone(), all.clone(), eu.clone()])
    );
    assert_eq!(
        targets(m2.clone()).await,
        sorted(vec![paid.clone(), all.clone()])
    );
    // Neither the endpoint on another channel nor the disabled one got a delivery.
    for ep in [&us_created, &disabled] {
        for msg in [&m1, &m2] {
            assert_eq!(c.delivery_status(&app, msg, ep).await, None);
        }
    }

    let reqs = rx.wait_for(5).await;
    let mut got: Vec<(String, String)> = reqs
        .iter()
        .map(|r| (r.path.clone(), r.header("webhook-id").unwrap().to_string()))
        .collect();
    got.sort();
    let mut want = vec![
        ("/created".to_string(), m1.clone()),
        ("/all".to_string(), m1.clone()),
        ("/eu".to_string(), m1.clone()),
        ("/paid".to_string(), m2.clone()),
        ("/all".to_string(), m2.clone()),
    ];
    want.sort();
    assert_eq!(got, want);
    for ep in [&created, &all, &eu] {
        c.wait_delivery(&app, &m1, ep, 0).await;
    }
    for ep in [&paid, &all] {
        c.wait_delivery(&app, &m2, ep, 0).await;
    }
    assert_eq!(
        rx.count(),
        5,
        "no endpoint outside the fan-out received anything"
    );
    srv.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failed_attempts_are_retried_until_success() {
    let (srv, rx, app) = start_with_app().await;
    let c = &srv.client;
    rx.then(Reply::Status(500)).then(Reply::Status(500));
    let ep = c.endpoint_for(&app, &rx.url()).await;
    let secret = c.secret(&app, &ep).await;
    let msg = c
        .publish(&app, json!({"eventType": "t", "payload": {"try": true}}))
        .await;
    c.wait_delivery(&app, &msg, &ep, 0).await;

    let attempts = c.attempts_of_msg(&app, &msg).await;
    assert_eq!(attempts.len(), 3, "{attempts:#?}");
    let codes = response_codes(&attempts);
    assert_eq!(codes, vec![json!(500), json!(500), json!(204)]);
    let statuses: Vec<_> = attempts.iter().map(|a| a["status"].clone()).collect();
    assert_eq!(statuses, vec![json!(2), json!(2), json!(0)]);
    for a in &attempts {
        assert_eq!(a["triggerType"], 0);
        assert_eq!(a["msgId"], msg.as_str());
        assert_eq!(a["endpointId"], ep.as_str());
        assert_eq!(a["url"], rx.url().as_str());
        assert!(a["id"].as_str().unwrap().starts_with("atmpt_"));
        assert_eq!(a["error"], serde_json::Value::Null);
    }
    assert_eq!(attempts[2]["statusText"], "success");
    assert_eq!(attempts[0]["statusText"], "fail");

    // Every retry carries the same webhook-id and a fresh, valid signature.
    let reqs = rx.requests();
    assert_eq!(reqs.len(), 3);
    for r in &reqs {
        assert_standard_signed(r, "webhook", &secret, &msg);
    }

    // The attempt log from every angle.
    let one = c
        .get(
            &format!("/app/{app}/msg/{msg}/attempt/{}", id_of(&attempts[0])),
            200,
        )
        .await;
    assert_eq!(one["responseStatusCode"], 500);
    let by_ep = c
        .get(&format!("/app/{app}/attempt/endpoint/{ep}"), 200)
        .await;
    assert_eq!(by_ep["data"].as_array().unwrap().len(), 3);
    let ok_only = c
        .get(&format!("/app/{app}/attempt/msg/{msg}?status=0"), 200)
        .await;
    assert_eq!(ok_only["data"].as_array().unwrap().len(), 1);
    let per_ep = c.get(&format!("/app/{app}/endpoint/{ep}/msg"), 200).await;
    let row = &per_ep["data"][0];
    assert_eq!(row["id"], msg.as_str());
    assert_eq!(row["status"], 0);
    let per_msg = c.get(&format!("/app/{app}/msg/{msg}/endpoint"), 200).await;
    assert_eq!(per_msg["data"][0]["statusText"], "success");
    srv.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn exhausted_schedule_ends_fail_and_recover_brings_it_back() {
    let (srv, rx, app) = start_with_app().await;
    let c = &srv.client;
    rx.set_default(Reply::Status(503));
    let ep = c.endpoint_for(&app, &rx.url()).await;
    let msg = c.publish_empty(&app).await;
    c.wait_delivery(&app, &msg, &ep, 2).await;
    let attempts = c.attempts_of_msg(&app, &msg).await;
    assert_eq!(attempts.len(), 4, "first attempt + 3 retries of [1,1,1]");
    assert!(attempts.iter().all(|a| a["status"] == 2));
    let stats = c.get(&format!("/app/{app}/endpoint/{ep}/stats"), 200).await;
    assert_eq!(stats["fail"], 1, "{stats}");
    // Failure keeps everything: the message and its attempts are still there.
    c.get(&format!("/app/{app}/msg/{msg}"), 200).await;

    rx.set_default(Reply::Status(204));
    c.post(
        &format!("/app/{app}/endpoint/{ep}/recover"),
        json!({"since": rfc3339_ago(3600)}),
        202,
    )
    .await;
    c.wait_delivery(&app, &msg, &ep, 0).await;
    let attempts = c.attempts_of_msg(&app, &msg).await;
    assert_eq!(attempts.len(), 5);
    assert_eq!(attempts[4]["status"], 0);
    let stats = c.get(&format!("/app/{app}/endpoint/{ep}/stats"), 200).await;
    assert_eq!(
        (stats["success"].clone(), stats["fail"].clone()),
        (json!(1), json!(0))
    );
    c.post(
        &format!("/app/{app}/endpoint/{ep}/recover"),
        json!({"since": "not a date"}),
        422,
    )
    .await;
    srv.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn resend_makes_a_manual_attempt() {
    let (srv, rx, app) = start_with_app().await;
    let c = &srv.client;
    let ep = c.endpoint_for(&app, &rx.url()).await;
    let msg = c
        .publish(&app, json!({"eventType": "t", "payload": {"r": 1}}))
        .await;
    c.wait_delivery(&app, &msg, &ep, 0).await;
    c.wait_attempts(&app, &msg, 1).await;
    c.post(
        &format!("/app/{app}/msg/{msg}/endpoint/{ep}/resend"),
        json!({}),
        202,
    )
    .await;
    let attempts = c.wait_attempts(&app, &msg, 2).await;
    assert_eq!(attempts.len(), 2);
    assert_eq!(attempts[0]["triggerType"], 0);
    assert_eq!(attempts[1]["triggerType"], 1, "{:#?}", attempts[1]);
    c.wait_delivery(&app, &msg, &ep, 0).await;
    let reqs = rx.wait_for(2).await;
    assert_eq!(reqs[0].header("webhook-id"), reqs[1].header("webhook-id"));
    assert_eq!(reqs[0].body, reqs[1].body);
    c.post(
        &format!("/app/{app}/msg/{msg}/endpoint/ep_01ARZ3NDEKTSV4RRFFQ69G5FAV/resend"),
        json!({}),
        404,
    )
    .await;
    srv.stop().await;
}

/// 429 with `Retry-After` pauses the endpoint and does not use up a retry: with a schedule of
/// one retry, a delivery answered 429 twice must still arrive.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rate_limited_429_pauses_the_endpoint_without_consuming_a_retry() {
    let (srv, rx, app) = start_with_app().await;
    let c = &srv.client;
    let retry_after = || Reply::WithHeaders(429, vec![("retry-after", "1".to_string())]);
    rx.then(retry_after()).then(retry_after());
    let ep = id_of(
        &c.create_endpoint(&app, json!({"url": rx.url(), "retrySchedule": [1]}))
            .await,
    );
    let msg = c.publish_empty(&app).await;
    c.wait_delivery(&app, &msg, &ep, 0).await;
    let attempts = c.attempts_of_msg(&app, &msg).await;
    let codes = response_codes(&attempts);
    assert_eq!(codes, vec![json!(429), json!(429), json!(204)]);
    assert_eq!(rx.count(), 3);

    // A long pause is visible on the endpoint, and its delivery waits (pending, not failed).
    let slow = Receiver::start().await;
    slow.set_default(Reply::WithHeaders(
        429,
        vec![("retry-after", "3600".to_string())],
    ));
    let paused = c.endpoint_for(&app, &slow.url()).await;
    let msg2 = c.publish_empty(&app).await;
    slow.wait_for(1).await;
    let path = format!("/app/{app}/endpoint/{paused}");
    let ep_out = crate::common::eventually(WAIT, "endpoint state paused", || async {
        let v = c.get(&path, 200).await;
        (v["state"] == "paused").then_some(v)
    })
    .await;
    assert!(ep_out["pausedUntil"].is_string(), "{ep_out}");
    assert_eq!(ep_out["disabled"], false);
    c.wait_delivery(&app, &msg2, &paused, 1).await;
    assert_eq!(
        slow.count(),
        1,
        "nothing is sent while the endpoint is paused"
    );
    // The first endpoint is not affected by the other one's pause.
    assert_eq!(
        c.get(&format!("/app/{app}/endpoint/{ep}"), 200).await["state"],
        "healthy"
    );
    c.wait_delivery(&app, &msg2, &ep, 0).await;
    srv.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gone_410_disables_the_endpoint_and_fails_the_delivery() {
    let (srv, rx, app) = start_with_app().await;
    let c = &srv.client;
    rx.set_default(Reply::Status(410));
    let ep = c.endpoint_for(&app, &rx.url()).await;
    let msg = c.publish_empty(&app).await;
    c.wait_delivery(&app, &msg, &ep, 2).await;
    let v = c.get(&format!("/app/{app}/endpoint/{ep}"), 200).await;
    assert_eq!(v["disabled"], true, "{v}");
    assert_eq!(v["state"], "disabled");
    let attempts = c.attempts_of_msg(&app, &msg).await;
    assert_eq!(attempts.len(), 1, "410 is permanent: no retry");
    assert_eq!(attempts[0]["responseStatusCode"], 410);
    // A disabled endpoint receives no new deliveries.
    let msg2 = c.publish_empty(&app).await;
    let v = c.get(&format!("/app/{app}/msg/{msg2}/endpoint"), 200).await;
    assert!(v["data"].as_array().unwrap().is_empty(), "{v}");
    assert_eq!(rx.count(), 1);
    srv.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redirect_302_is_a_failed_attempt_and_is_not_followed() {
    let (srv, rx, app) = start_with_app().await;
    let c = &srv.client;
    let target = Receiver::start().await;
    rx.set_default(Reply::WithHeaders(
        302,
        vec![("location", target.url_path("/moved"))],
    ));
    let ep = c.endpoint_without_retries(&app, &rx.url()).await;
    let attempts = c.publish_until_failed(&app, &ep).await;
    assert_eq!(attempts.len(), 1);
    let a = &attempts[0];
    assert_eq!(a["responseStatusCode"], 302);
    assert_eq!(a["status"], 2);
    assert_eq!(
        a["error"],
        serde_json::Value::Null,
        "a 3xx is an HTTP response"
    );
    assert!(
        a["response"]
            .as_str()
            .unwrap()
            .contains(&target.url_path("/moved")),
        "the Location is recorded: {a}"
    );
    assert_eq!(rx.count(), 1);
    assert_eq!(target.count(), 0, "the redirect target received nothing");
    srv.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_receiver_slower_than_the_request_timeout_yields_a_timeout_attempt() {
    let (srv, rx, app) = start_with_app().await;
    let c = &srv.client;
    rx.set_default(Reply::Sleep(
        Duration::from_millis(REQUEST_TIMEOUT_MS + 2_000),
        204,
    ));
    let ep = c.endpoint_without_retries(&app, &rx.url()).await;
    let attempts = c.publish_until_failed(&app, &ep).await;
    assert_eq!(attempts.len(), 1);
    let a = &attempts[0];
    assert!(
        a["response"].as_str().unwrap().starts_with("timeout:"),
        "{a}"
    );
    assert_eq!(a["error"], "timeout");
    assert_eq!(a["responseStatusCode"], 0);
    assert_eq!(a["status"], 2);
    srv.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn after_rotation_deliveries_carry_one_signature_per_secret() {
    let (srv, rx, app) = start_with_app().await;
    let c = &srv.client;
    let ep = c.endpoint_for(&app, &rx.url()).await;
    let old = c.secret(&app, &ep).await;
    let new = rotate_secret(c, &app, &ep, json!({})).await;
    let msg = c
        .publish(
            &app,
            json!({"eventType": "t", "payload": {"rotated": true}}),
        )
        .await;
    let r = &rx.wait_for(1).await[0];
    let ts = r.header("webhook-timestamp").unwrap();
    let sigs = signatures(r.header("webhook-signature").unwrap());
    assert_eq!(sigs.len(), 2, "{sigs:?}");
    assert!(sigs.iter().all(|s| s.starts_with("v1,")));
    assert_eq!(
        sigs[0],
        standard_signature(&new, &msg, ts, &r.body),
        "newest first"
    );
    assert_eq!(sigs[1], standard_signature(&old, &msg, ts, &r.body));
    assert_standard_signed(r, "webhook", &new, &msg);
    assert_standard_signed(r, "webhook", &old, &msg);

    // Rotating with no grace period drops the old secret at once.
    let newest = rotate_secret(c, &app, &ep, json!({"gracePeriodSeconds": 0})).await;
    let msg2 = c.publish_empty(&app).await;
    let r = &rx.wait_for(2).await[1];
    let sigs = signatures(r.header("webhook-signature").unwrap());
    assert_eq!(sigs.len(), 1, "{sigs:?}");
    assert_standard_signed(r, "webhook", &newest, &msg2);
    assert!(secret_key(&newest) != secret_key(&new));
    srv.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn custom_headers_and_user_agent_arrive() {
    let (srv, rx, app) = start_with_app().await;
    let c = &srv.client;
    let ep = id_of(
        &c.create_endpoint(
            &app,
            json!({"url": rx.url(), "headers": {"X-Tenant": "acme"}}),
        )
        .await,
    );
    c.patch(
        &format!("/app/{app}/endpoint/{ep}/headers"),
        json!({"headers": {"X-Api-Key": "k-123"}}),
        204,
    )
    .await;
    c.publish_empty(&app).await;
    let r = &rx.wait_for(1).await[0];
    assert_eq!(r.header("x-tenant"), Some("acme"));
    assert_eq!(
        r.header("x-api-key"),
        Some("k-123"),
        "sensitive headers are still sent"
    );
    let ua = r.header("user-agent").unwrap_or_default();
    assert!(ua.starts_with("Herald/"), "User-Agent: {ua}");
    assert_eq!(r.header("content-type"), Some("application/json"));
    srv.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn send_example_delivers_to_that_endpoint() {
    let (srv, rx, app) = start_with_app().await;
    let c = &srv.client;
    let ep = id_of(
        &c.create_endpoint(&app, json!({"url": rx.url(), "eventTypes": ["other.type"]}))
            .await,
    );
    let v = c
        .post(
            &format!("/app/{app}/endpoint/{ep}/send-example"),
            json!({"eventType": "example.ping"}),
            202,
        )
        .await;
    let msg = id_of(&v);
    let r = &rx.wait_for(1).await[0];
    assert_eq!(r.header("webhook-id"), Some(msg.as_str()));
    let body: serde_json::Value = serde_json::from_slice(&r.body).unwrap();
    assert!(body.is_object());
    c.post(
        &format!("/app/{app}/endpoint/{ep}/send-example"),
        json!({"eventType": "bad type"}),
        422,
    )
    .await;
    srv.stop().await;
}

/// `localhost` is a name, so it passes the literal check at creation; at delivery Herald
/// resolves it itself, finds only loopback addresses and refuses to connect.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_name_resolving_to_loopback_is_blocked_at_delivery() {
    let (srv, rx, app) = start_with_app_in(TestServer::start_without_allow_list()).await;
    let c = &srv.client;
    let url = format!("http://localhost:{}/", rx.addr.port());
    let ep = c.endpoint_without_retries(&app, &url).await;
    let attempts = c.publish_until_failed(&app, &ep).await;
    assert_eq!(attempts.len(), 1);
    let a = &attempts[0];
    assert_eq!(a["error"], "blocked_address", "{a}");
    assert!(
        a["response"]
            .as_str()
            .unwrap()
            .starts_with("blocked_address:"),
        "{a}"
    );
    assert_eq!(a["responseStatusCode"], 0);
    assert_eq!(rx.count(), 0, "Herald connected to a blocked address");
    srv.stop().await;
}

/// Literal addresses are checked again at delivery: an endpoint stored while loopback was
/// allow-listed is refused once the operator removes the allow-list.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_literal_address_no_longer_allowed_is_blocked_at_delivery() {
    let (srv, rx, app) = start_with_app().await;
    let ep = srv.client.endpoint_without_retries(&app, &rx.url()).await;
    let srv = srv.restart(|c| c.allow_networks.clear()).await;
    let c = &srv.client;
    let attempts = c.publish_until_failed(&app, &ep).await;
    assert_eq!(attempts.len(), 1);
    assert_eq!(attempts[0]["error"], "blocked_address", "{}", attempts[0]);
    assert!(attempts[0]["response"]
        .as_str()
        .unwrap()
        .starts_with("blocked_address:"));
    assert_eq!(rx.count(), 0, "Herald connected to a blocked address");
    srv.stop().await;
}

/// 503 with `Retry-After` pauses like 429: with no retries in the schedule, the delivery still
/// arrives after it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unavailable_503_with_retry_after_pauses_without_consuming_a_retry() {
    let (srv, rx, app) = start_with_app().await;
    let c = &srv.client;
    rx.then(Reply::WithHeaders(
        503,
        vec![("retry-after", "1".to_string())],
    ));
    let ep = c.endpoint_without_retries(&app, &rx.url()).await;
    let msg = c.publish_empty(&app).await;
    c.wait_delivery(&app, &msg, &ep, 0).await;
    let codes = response_codes(&c.attempts_of_msg(&app, &msg).await);
    assert_eq!(codes, vec![json!(503), json!(204)]);
    srv.stop().await;
}

/// A delivery failed by a 410 is kept; once the endpoint is re-enabled, `recover` delivers it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_disabled_endpoint_can_be_re_enabled_and_recovered() {
    let (srv, rx, app) = start_with_app().await;
    let c = &srv.client;
    rx.then(Reply::Status(410));
    let ep = c.endpoint_for(&app, &rx.url()).await;
    let msg = c
        .publish(&app, json!({"eventType": "t", "payload": {"keep": 1}}))
        .await;
    c.wait_delivery(&app, &msg, &ep, 2).await;
    let v = c
        .patch(
            &format!("/app/{app}/endpoint/{ep}"),
            json!({"disabled": false}),
            200,
        )
        .await;
    assert_eq!(v["state"], "healthy");
    c.post(
        &format!("/app/{app}/endpoint/{ep}/recover"),
        json!({"since": rfc3339_ago(600)}),
        202,
    )
    .await;
    c.wait_delivery(&app, &msg, &ep, 0).await;
    let reqs = rx.wait_for(2).await;
    assert_eq!(reqs[1].body_text(), r#"{"keep":1}"#);
    srv.stop().await;
}
