//! Batching endpoints (`batch: {maxEvents, maxWaitMs}`) through the real server: events in
//! one signed request as a JSON array, the outcome applied to every delivery with an attempt
//! record each, FIFO order kept, and the option's hostile values refused.

use std::collections::HashSet;

use serde_json::{json, Value};

use crate::common::*;

fn items(r: &Recorded) -> Vec<Value> {
    let v: Value = serde_json::from_slice(&r.body).expect("a batch is JSON");
    v.as_array().expect("a batch is an array").clone()
}

fn ids_of(r: &Recorded) -> Vec<String> {
    items(r)
        .iter()
        .map(|i| i["id"].as_str().unwrap().to_string())
        .collect()
}

async fn batch_endpoint(c: &Client, app: &str, url: &str, batch: Value, extra: Value) -> String {
    let mut body = json!({"url": url, "batch": batch});
    if let (Some(b), Some(e)) = (body.as_object_mut(), extra.as_object()) {
        b.extend(e.clone());
    }
    let ep = c.create_endpoint(app, body).await;
    assert_eq!(ep["batch"], batch_with_defaults(&batch));
    id_of(&ep)
}

fn batch_with_defaults(b: &Value) -> Value {
    json!({"maxEvents": b["maxEvents"], "maxWaitMs": b.get("maxWaitMs").cloned().unwrap_or(json!(0))})
}

/// A server, an application `batch` and a receiver: every test's arrangement.
async fn start() -> (TestServer, String, Receiver) {
    let s = TestServer::start(|_| {}).await;
    let app = s.client.create_app("batch").await;
    let r = Receiver::start().await;
    (s, app, r)
}

/// Publishes `n` messages `{"n": i}` of type `t`; returns their IDs in publish order.
async fn publish_numbered(c: &Client, app: &str, n: usize) -> Vec<String> {
    let mut sent = Vec::new();
    for i in 0..n {
        sent.push(
            c.publish(app, json!({"eventType": "t", "payload": {"n": i}}))
                .await,
        );
    }
    sent
}

/// Waits until every message of `sent` is delivered to `ep`.
async fn wait_all_delivered(c: &Client, app: &str, sent: &[String], ep: &str) {
    for m in sent {
        c.wait_delivery(app, m, ep, 0).await;
    }
}

#[tokio::test]
async fn deliveries_go_out_in_signed_batches_each_with_its_own_attempt() {
    let (s, app, r) = start().await;
    let c = &s.client;
    let ep = batch_endpoint(
        c,
        &app,
        &r.url(),
        json!({"maxEvents": 10, "maxWaitMs": 300}),
        json!({}),
    )
    .await;
    let secret = c.secret(&app, &ep).await;
    let sent = publish_numbered(c, &app, 25).await;
    wait_all_delivered(c, &app, &sent, &ep).await;
    let reqs = r.requests();
    let mut seen = Vec::new();
    for req in &reqs {
        let got = ids_of(req);
        assert!(!got.is_empty() && got.len() <= 10, "{} events", got.len());
        let id = req.header("webhook-id").unwrap();
        assert!(id.starts_with("batch_"), "{id}");
        assert!(
            !sent.contains(&id.to_string()),
            "a batch has an ID of its own"
        );
        assert_standard_signed(req, "webhook", &secret, id);
        assert_eq!(req.header("content-type"), Some("application/json"));
        let first = &items(req)[0];
        assert_eq!(first["eventType"], "t");
        assert!(first["timestamp"].as_str().unwrap().ends_with('Z'));
        seen.extend(got);
    }
    assert!(
        reqs.len() < 25,
        "batched: {} requests for 25 events",
        reqs.len()
    );
    let unique: HashSet<_> = seen.iter().collect();
    assert_eq!(unique.len(), 25, "every event once");
    for m in &sent {
        let atts = c.attempts_of_msg(&app, m).await;
        assert_eq!(atts.len(), 1, "one attempt record per delivery");
        assert_eq!(atts[0]["responseStatusCode"], 204);
    }
    s.stop().await;
}

#[tokio::test]
async fn a_failed_batch_fails_every_delivery_and_they_retry_together() {
    let (s, app, r) = start().await;
    let c = &s.client;
    r.then(Reply::Status(500));
    let ep = batch_endpoint(
        c,
        &app,
        &r.url(),
        // Six: more than the five failures in a row that open the breaker, which counts the
        // batch's one request once.
        json!({"maxEvents": 6, "maxWaitMs": 1000}),
        json!({}),
    )
    .await;
    let sent = publish_numbered(c, &app, 6).await;
    wait_all_delivered(c, &app, &sent, &ep).await;
    for m in &sent {
        let atts = c.attempts_of_msg(&app, m).await;
        let codes: Vec<_> = atts
            .iter()
            .map(|a| a["responseStatusCode"].as_i64().unwrap())
            .collect();
        assert_eq!(codes, vec![500, 204], "{m}");
    }
    let reqs = r.requests();
    assert_eq!(
        ids_of(&reqs[0]),
        sent,
        "the first batch held all six, in publish order"
    );
    assert_eq!(
        ids_of(reqs.last().unwrap()),
        sent,
        "and they were retried as one batch"
    );
    s.stop().await;
}

#[tokio::test]
async fn fifo_endpoints_batch_in_publish_order() {
    let (s, app, r) = start().await;
    let c = &s.client;
    let ep = batch_endpoint(
        c,
        &app,
        &r.url(),
        json!({"maxEvents": 4, "maxWaitMs": 200}),
        json!({"ordering": "fifo"}),
    )
    .await;
    let mut sent = Vec::new();
    for i in 0..12 {
        let key = format!("k{}", i % 3);
        sent.push(
            c.publish(
                &app,
                json!({"eventType": "t", "payload": {"n": i}, "orderingKey": key}),
            )
            .await,
        );
    }
    wait_all_delivered(c, &app, &sent, &ep).await;
    // Per key, the events arrive in publish order across and within batches.
    let arrived: Vec<String> = r.requests().iter().flat_map(ids_of).collect();
    for k in 0..3 {
        let want: Vec<_> = sent.iter().skip(k).step_by(3).cloned().collect();
        let got: Vec<_> = arrived
            .iter()
            .filter(|id| want.contains(id))
            .cloned()
            .collect();
        assert_eq!(got, want, "key k{k}");
    }
    s.stop().await;
}

#[tokio::test]
async fn hostile_batch_options_are_refused() {
    let (s, app, r) = start().await;
    let c = &s.client;
    for b in [
        json!({"maxEvents": 0}),
        json!({"maxEvents": 1001}),
        json!({"maxEvents": -1}),
        json!({"maxEvents": 10, "maxWaitMs": 60001}),
        json!({"maxEvents": 10, "maxWaitMs": -5}),
        json!({"maxEvents": 1e30}),
        json!({"maxEvents": "ten"}),
        json!({}),
        json!("all"),
    ] {
        c.post(
            &format!("/app/{app}/endpoint"),
            json!({"url": r.url(), "batch": b}),
            422,
        )
        .await;
    }
    // A polling endpoint holds its events: batching does not apply.
    c.post(
        &format!("/app/{app}/endpoint"),
        json!({"url": "poll:", "batch": {"maxEvents": 5}}),
        422,
    )
    .await;
    let ep = batch_endpoint(
        c,
        &app,
        &r.url(),
        json!({"maxEvents": 1000, "maxWaitMs": 60000}),
        json!({}),
    )
    .await;
    c.patch(
        &format!("/app/{app}/endpoint/{ep}"),
        json!({"url": "poll:"}),
        422,
    )
    .await;
    c.patch(
        &format!("/app/{app}/endpoint/{ep}"),
        json!({"batch": {"maxEvents": 0}}),
        422,
    )
    .await;
    let v = c
        .patch(
            &format!("/app/{app}/endpoint/{ep}"),
            json!({"batch": null}),
            200,
        )
        .await;
    assert!(v["batch"].is_null(), "cleared: {v}");
    let v = c
        .patch(
            &format!("/app/{app}/endpoint/{ep}"),
            json!({"batch": {"maxEvents": 2}}),
            200,
        )
        .await;
    assert_eq!(v["batch"], json!({"maxEvents": 2, "maxWaitMs": 0}));
    s.stop().await;
}
