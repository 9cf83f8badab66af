//! Endpoint transformations (routing.md "Transformation") between a real Herald and a real
//! receiver: rewrite and signing, cancel, failures of every kind recorded as
//! `transformation_error` and retried, runaway scripts that do not hold up other deliveries,
//! the test route, size limits, tenancy and SSRF on a rewritten URL.

use serde_json::{json, Value};

use crate::common::*;

const PASS: &str = "function handler(webhook) { return webhook; }";

async fn set_code(c: &Client, app: &str, ep: &str, code: &str) {
    c.patch(
        &format!("/app/{app}/endpoint/{ep}/transformation"),
        json!({"code": code, "enabled": true}),
        204,
    )
    .await;
}

/// An app with one endpoint to `url` whose transformation is `code`.
async fn endpoint_with(c: &Client, url: &str, code: &str) -> (String, String) {
    let app = c.create_app("transform").await;
    let ep = c.endpoint_for(&app, url).await;
    set_code(c, &app, &ep, code).await;
    (app, ep)
}

async fn publish(c: &Client, app: &str) -> String {
    c.publish(
        app,
        json!({"eventType": "invoice.paid", "payload": {"amount": 100, "currency": "EUR"}}),
    )
    .await
}

#[tokio::test]
async fn rewritten_request_is_signed_over_the_transformed_body() {
    let server = TestServer::start(|_| {}).await;
    let recv = Receiver::start().await;
    let c = &server.client;
    let code = r#"function handler(webhook) {
        webhook.payload = {kind: webhook.eventType, cents: webhook.payload.amount * 100};
        webhook.url = webhook.url + "moved";
        webhook.method = "PUT";
        webhook.headers["x-routed"] = "yes";
        return webhook;
    }"#;
    let (app, ep) = endpoint_with(c, &recv.url(), code).await;
    let t = c
        .get(&format!("/app/{app}/endpoint/{ep}/transformation"), 200)
        .await;
    assert_eq!(t, json!({"code": code, "enabled": true}));
    let msg = publish(c, &app).await;
    let got = recv.wait_for(1).await;
    let r = &got[0];
    assert_eq!(r.method, "PUT");
    assert_eq!(r.path, "/moved");
    assert_eq!(r.header("x-routed"), Some("yes"));
    let body: Value = serde_json::from_slice(&r.body).unwrap();
    assert_eq!(body, json!({"kind": "invoice.paid", "cents": 10000}));
    let secret = c.secret(&app, &ep).await;
    assert_standard_signed(r, "webhook", &secret, &msg);
    c.wait_delivery(&app, &msg, &ep, 0).await;
    // The stored message is what was published.
    let m = c.get(&format!("/app/{app}/msg/{msg}"), 200).await;
    assert_eq!(m["payload"], json!({"amount": 100, "currency": "EUR"}));

    // Disabled: the next delivery goes out untouched.
    c.patch(
        &format!("/app/{app}/endpoint/{ep}/transformation"),
        json!({"enabled": false}),
        204,
    )
    .await;
    publish(c, &app).await;
    let got = recv.wait_for(2).await;
    assert_eq!(got[1].method, "POST");
    let body: Value = serde_json::from_slice(&got[1].body).unwrap();
    assert_eq!(body, json!({"amount": 100, "currency": "EUR"}));
    // A PUT of the endpoint keeps its transformation.
    c.put(
        &format!("/app/{app}/endpoint/{ep}"),
        json!({"url": recv.url()}),
        200,
    )
    .await;
    let t = c
        .get(&format!("/app/{app}/endpoint/{ep}/transformation"), 200)
        .await;
    assert_eq!(t["code"], code);
}

#[tokio::test]
async fn cancel_succeeds_without_a_request() {
    let server = TestServer::start(|_| {}).await;
    let recv = Receiver::start().await;
    let c = &server.client;
    let (app, ep) = endpoint_with(
        c,
        &recv.url(),
        "function handler(w) { w.cancel = w.payload.amount > 50; return w; }",
    )
    .await;
    let msg = publish(c, &app).await;
    c.wait_delivery(&app, &msg, &ep, 0).await;
    let attempts = c.attempts_of_msg(&app, &msg).await;
    assert_eq!(attempts.len(), 1, "{attempts:#?}");
    assert_eq!(attempts[0]["status"], 0);
    assert_eq!(attempts[0]["responseStatusCode"], 0);
    assert!(attempts[0]["response"]
        .as_str()
        .unwrap()
        .contains("cancelled"));
    // A later message to another endpoint proves the worker moved on; nothing reached ours.
    let other = c.endpoint_for(&app, &recv.url_path("/other")).await;
    c.patch(
        &format!("/app/{app}/endpoint/{ep}/transformation"),
        json!({"enabled": false}),
        204,
    )
    .await;
    let msg2 = publish(c, &app).await;
    c.wait_delivery(&app, &msg2, &other, 0).await;
    c.wait_delivery(&app, &msg2, &ep, 0).await;
    assert_eq!(recv.count(), 2, "only the second message was sent");
}

/// Waits for `n` attempts of `msg` and checks each is a `transformation_error` mentioning
/// `needle`.
async fn assert_transformation_errors(c: &Client, app: &str, msg: &str, n: usize, needle: &str) {
    let attempts = c.wait_attempts(app, msg, n).await;
    for a in &attempts {
        assert_eq!(a["status"], 2, "{a}");
        assert_eq!(a["error"], "transformation_error", "{a}");
        let text = a["response"].as_str().unwrap();
        assert!(text.starts_with("transformation_error: "), "{text}");
        assert!(text.contains(needle), "{text} should mention {needle}");
    }
}

#[tokio::test]
async fn failures_are_recorded_and_retried() {
    let server = TestServer::start(|_| {}).await;
    let recv = Receiver::start().await;
    let c = &server.client;
    let cases = [
        (
            "function handler(w) { throw new Error('no route for ' + w.eventType); }",
            "no route for invoice.paid",
        ),
        ("function handler(w) { return 42; }", "object"),
        ("function handler(w) { return null; }", "object"),
        ("function nothandler(w) { return w; }", "handler"),
        ("function handler(w) { while (true) {} }", "interrupted"),
        (
            "function handler(w) { const a = []; for (;;) a.push(new Array(1e5).fill(w)); }",
            "memory",
        ),
    ];
    let mut runs = Vec::new();
    for (code, needle) in cases {
        let (app, _) = endpoint_with(c, &recv.url(), code).await;
        runs.push((app.clone(), publish(c, &app).await, needle));
    }
    // A plain endpoint in another app is delivered while the runaway scripts fail.
    let plain_app = c.create_app("plain").await;
    let plain = c.endpoint_for(&plain_app, &recv.url_path("/plain")).await;
    let plain_msg = publish(c, &plain_app).await;
    c.wait_delivery(&plain_app, &plain_msg, &plain, 0).await;
    for (app, msg, needle) in &runs {
        // Retried like any failure: the schedule is [1,1,1] s in tests.
        assert_transformation_errors(c, app, msg, 2, needle).await;
    }
    assert_eq!(
        recv.requests_to("/").len(),
        0,
        "no failed transformation sent anything"
    );
}

#[tokio::test]
async fn test_route_answers_without_sending() {
    let server = TestServer::start(|_| {}).await;
    let recv = Receiver::start().await;
    let c = &server.client;
    let app = c.create_app("t").await;
    let ep = c
        .create_endpoint(
            &app,
            json!({"url": recv.url(), "headers": {"x-team": "billing", "authorization": "Bearer s3cret"}}),
        )
        .await;
    let ep = id_of(&ep);
    let path = format!("/app/{app}/endpoint/{ep}/transformation/test");
    let code = "function handler(w) { w.payload.seen = Object.keys(w.headers).join(','); w.cancel = w.eventType === 'skip'; return w; }";
    let v = c
        .post(
            &path,
            json!({"code": code, "payload": {"a": 1}, "eventType": "go"}),
            200,
        )
        .await;
    assert_eq!(v["method"], "POST");
    assert_eq!(v["url"], recv.url());
    assert_eq!(
        v["payload"],
        json!({"a": 1, "seen": "x-team"}),
        "sensitive headers stay hidden"
    );
    assert_eq!(v["cancel"], false);
    assert!(v.get("error").is_none());
    let v = c
        .post(
            &path,
            json!({"code": code, "payload": {}, "eventType": "skip"}),
            200,
        )
        .await;
    assert_eq!(v["cancel"], true);
    let v = c
        .post(
            &path,
            json!({"code": "function handler(w) { throw new TypeError('bad input'); }", "payload": {}, "eventType": "x"}),
            200,
        )
        .await;
    assert!(v["error"].as_str().unwrap().contains("bad input"), "{v}");
    assert!(v.get("payload").is_none());
    let v = c
        .post(
            &path,
            json!({"code": "function handler(w) { for(;;){} }", "payload": {}, "eventType": "x"}),
            200,
        )
        .await;
    assert!(v["error"].as_str().unwrap().contains("interrupted"), "{v}");
    // Nothing was stored or sent.
    let t = c
        .get(&format!("/app/{app}/endpoint/{ep}/transformation"), 200)
        .await;
    assert_eq!(t, json!({"code": null, "enabled": false}));
    assert_eq!(recv.count(), 0);
}

#[tokio::test]
async fn huge_code_and_other_tenants_are_refused() {
    let server = TestServer::start(|_| {}).await;
    let c = &server.client;
    let app = c.create_app("a").await;
    let ep = c.endpoint_for(&app, "https://example.com/a").await;
    let huge = format!(
        "function handler(w) {{ return w; }} //{}",
        "x".repeat(70 * 1024)
    );
    let v = c
        .patch(
            &format!("/app/{app}/endpoint/{ep}/transformation"),
            json!({"code": huge, "enabled": true}),
            422,
        )
        .await;
    assert!(v.to_string().contains("code"), "{v}");
    c.post(
        &format!("/app/{app}/endpoint/{ep}/transformation/test"),
        json!({"code": huge, "payload": {}, "eventType": "x"}),
        422,
    )
    .await;
    c.patch(
        &format!("/app/{app}/endpoint/{ep}/transformation"),
        json!({"code": 5}),
        422,
    )
    .await;

    // Another tenant's endpoint is out of reach: through the wrong app, and with a token
    // scoped to another app.
    set_code(c, &app, &ep, PASS).await;
    let other = c.create_app("b").await;
    c.get(&format!("/app/{other}/endpoint/{ep}/transformation"), 404)
        .await;
    c.patch(
        &format!("/app/{other}/endpoint/{ep}/transformation"),
        json!({"enabled": false}),
        404,
    )
    .await;
    let access = c
        .post(&format!("/auth/app-portal-access/{other}"), json!({}), 200)
        .await;
    let scoped = c.with_token(access["token"].as_str().unwrap());
    scoped
        .get(&format!("/app/{app}/endpoint/{ep}/transformation"), 403)
        .await;
    scoped
        .post(
            &format!("/app/{app}/endpoint/{ep}/transformation/test"),
            json!({"code": PASS, "payload": {}, "eventType": "x"}),
            403,
        )
        .await;
    let t = c
        .get(&format!("/app/{app}/endpoint/{ep}/transformation"), 200)
        .await;
    assert_eq!(t["enabled"], true);
}

#[tokio::test]
async fn a_rewritten_url_to_a_refused_address_is_not_contacted() {
    // Only 127.0.0.1 is allow-listed; 127.0.0.2 is loopback and refused like any private
    // address (and is on this machine, so nothing could leave it either way).
    let server =
        TestServer::start(|c| c.allow_networks = vec!["127.0.0.1/32".parse().unwrap()]).await;
    let recv = Receiver::start().await;
    let c = &server.client;
    let code = format!(
        "function handler(w) {{ w.url = 'http://127.0.0.2:{}/'; return w; }}",
        recv.addr.port()
    );
    let (app, _) = endpoint_with(c, &recv.url(), &code).await;
    let msg = publish(c, &app).await;
    let attempts = c.wait_attempts(&app, &msg, 1).await;
    assert_eq!(
        attempts[0]["error"], "blocked_address",
        "{:#?}",
        attempts[0]
    );
    let code = "function handler(w) { w.url = 'ftp://example.com/'; return w; }";
    let (app, _) = endpoint_with(c, &recv.url(), code).await;
    let msg = publish(c, &app).await;
    assert_transformation_errors(c, &app, &msg, 1, "scheme").await;
    assert_eq!(recv.count(), 0);
}
