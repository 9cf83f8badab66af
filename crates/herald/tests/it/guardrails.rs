//! Delivery guardrails (delivery.md "Isolation and fairness", "Circuit breaker and
//! auto-disable", "Ordering") observed from real receivers: no head-of-line blocking, hard
//! concurrency caps, the throttle, the breaker, FIFO per key, and operational events.
//!
//! Assertions are about the order of events and about counts, never about how fast something
//! happened; waits are bounded by `eventually` / `wait_for`.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use serde_json::{json, Value};

use crate::common::{
    assert_standard_signed, eventually, id_of, Receiver, Reply, TestServer, REQUEST_TIMEOUT_MS,
    WAIT,
};

fn payload(i: usize) -> Value {
    json!({ "eventType": "t", "payload": { "i": i } })
}

/// A receiver whose requests to `/slow` hang past Herald's timeout must not hold up another
/// endpoint: the healthy endpoint's messages all arrive while the slow ones are still in
/// flight.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hanging_endpoint_does_not_delay_a_healthy_one() {
    let srv = TestServer::start(|_| {}).await;
    let c = &srv.client;
    let rx = Receiver::start().await;
    rx.set_path_reply(
        "/slow",
        Reply::Sleep(Duration::from_millis(REQUEST_TIMEOUT_MS * 10), 204),
    );
    let app = c.create_app("a").await;
    let slow = c
        .create_endpoint(
            &app,
            json!({ "url": rx.url_path("/slow"), "eventTypes": ["slow"] }),
        )
        .await;
    c.create_endpoint(
        &app,
        json!({ "url": rx.url_path("/fast"), "eventTypes": ["fast"] }),
    )
    .await;
    for i in 0..40 {
        c.publish(&app, json!({ "eventType": "slow", "payload": { "i": i } }))
            .await;
    }
    eventually(WAIT, "slow requests in flight", || async {
        (rx.in_flight("/slow") > 0).then_some(())
    })
    .await;
    for i in 0..10 {
        c.publish(&app, json!({ "eventType": "fast", "payload": { "i": i } }))
            .await;
    }
    eventually(WAIT, "all 10 fast deliveries", || async {
        (rx.requests_to("/fast").len() >= 10).then_some(())
    })
    .await;
    // The slow endpoint's requests were still hanging when the last fast one arrived.
    assert!(
        rx.in_flight("/slow") > 0,
        "the healthy endpoint waited for the hanging one"
    );
    // And the slow endpoint never had more than its default cap (16) in flight.
    assert!(
        rx.max_in_flight("/slow") <= 16,
        "{}",
        rx.max_in_flight("/slow")
    );
    let ep = c
        .get(&format!("/app/{app}/endpoint/{}", id_of(&slow)), 200)
        .await;
    assert!(ep["state"].is_string());
    srv.stop().await;
}

/// One endpoint's backlog does not starve another: a single message to a second endpoint is
/// delivered long before the first endpoint's backlog drains.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_backlog_does_not_starve_another_endpoint() {
    let srv = TestServer::start(|_| {}).await;
    let c = &srv.client;
    let rx = Receiver::start().await;
    rx.set_path_reply("/busy", Reply::Sleep(Duration::from_millis(50), 204));
    let app = c.create_app("a").await;
    c.create_endpoint(
        &app,
        json!({ "url": rx.url_path("/busy"), "eventTypes": ["busy"], "maxConcurrency": 2 }),
    )
    .await;
    c.create_endpoint(
        &app,
        json!({ "url": rx.url_path("/other"), "eventTypes": ["other"] }),
    )
    .await;
    let backlog = 400;
    for i in 0..backlog {
        c.publish(&app, json!({ "eventType": "busy", "payload": { "i": i } }))
            .await;
    }
    c.publish(&app, json!({ "eventType": "other", "payload": {} }))
        .await;
    eventually(WAIT, "the other endpoint's message", || async {
        (!rx.requests_to("/other").is_empty()).then_some(())
    })
    .await;
    let busy_done = rx.requests_to("/busy").len();
    assert!(
        busy_done < backlog,
        "the single message waited for the whole backlog ({busy_done} of {backlog} sent first)"
    );
    srv.stop().await;
}

/// `maxConcurrency` is a hard cap, and so is `max_in_flight` across endpoints.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrency_caps_are_never_exceeded() {
    let srv = TestServer::start(|cfg| cfg.max_in_flight = 5).await;
    let c = &srv.client;
    let rx = Receiver::start().await;
    rx.set_default(Reply::Sleep(Duration::from_millis(150), 204));
    let app = c.create_app("a").await;
    for (path, cap) in [("/a", 3), ("/b", 16), ("/c", 16)] {
        c.create_endpoint(
            &app,
            json!({ "url": rx.url_path(path), "maxConcurrency": cap }),
        )
        .await;
    }
    let n = 30;
    for i in 0..n {
        c.publish(&app, payload(i)).await;
    }
    rx.wait_for(3 * n).await;
    assert!(
        rx.max_in_flight("/a") <= 3,
        "maxConcurrency 3 exceeded: {}",
        rx.max_in_flight("/a")
    );
    assert!(
        rx.max_in_flight_total() <= 5,
        "max_in_flight 5 exceeded: {}",
        rx.max_in_flight_total()
    );
    // The caps were reached, so the checks above were not vacuous.
    assert!(rx.max_in_flight("/a") >= 2, "{}", rx.max_in_flight("/a"));
    assert!(
        rx.max_in_flight_total() >= 4,
        "{}",
        rx.max_in_flight_total()
    );
    srv.stop().await;
}

/// `throttleRate = 5`: in any one-second span the receiver sees at most the rate plus the
/// bucket (capacity 1) plus the starting token; throttled deliveries wait, none fails.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn throttle_rate_is_enforced() {
    let srv = TestServer::start(|_| {}).await;
    let c = &srv.client;
    let rx = Receiver::start().await;
    let app = c.create_app("a").await;
    let ep = id_of(
        &c.create_endpoint(&app, json!({ "url": rx.url(), "throttleRate": 5 }))
            .await,
    );
    let n = 25;
    let mut msgs = vec![];
    for i in 0..n {
        msgs.push(c.publish(&app, payload(i)).await);
    }
    let reqs = rx.wait_for(n).await;
    let times: Vec<Instant> = reqs.iter().map(|r| r.at).collect();
    for (i, start) in times.iter().enumerate() {
        let in_window = times[i..]
            .iter()
            .take_while(|t| t.duration_since(*start) < Duration::from_secs(1))
            .count();
        assert!(
            in_window <= 5 + 2,
            "{in_window} requests within one second at throttleRate 5"
        );
    }
    for m in &msgs {
        c.wait_delivery(&app, m, &ep, 0).await;
        assert_eq!(
            c.attempts_of_msg(&app, m).await.len(),
            1,
            "a throttled delivery failed"
        );
    }
    srv.stop().await;
}

/// The breaker opens after 5 consecutive failures, sends nothing while open, probes after the
/// 30 s cool-down, closes on success; deliveries that waited while it was open did not use up
/// retries (they succeed on their first attempt).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn circuit_breaker_opens_probes_and_closes() {
    let srv = TestServer::start(|cfg| cfg.retry_schedule = vec![300, 300, 300]).await;
    let c = &srv.client;
    let rx = Receiver::start().await;
    rx.set_default(Reply::Status(500));
    let app = c.create_app("a").await;
    let ep = id_of(
        &c.create_endpoint(&app, json!({ "url": rx.url(), "maxConcurrency": 1 }))
            .await,
    );
    let mut msgs = vec![];
    for i in 0..8 {
        msgs.push(c.publish(&app, payload(i)).await);
    }
    rx.wait_for(5).await;
    let state = eventually(WAIT, "breaker open", || async {
        let e = c.get(&format!("/app/{app}/endpoint/{ep}"), 200).await;
        (e["state"] == "open").then_some(e["state"].clone())
    })
    .await;
    assert_eq!(state, "open");
    // Open: the three other deliveries wait without a request.
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(
        rx.count(),
        5,
        "requests were sent while the breaker was open"
    );
    for m in &msgs[5..] {
        assert!(c.attempts_of_msg(&app, m).await.is_empty());
    }
    // The receiver recovers; after the cool-down one probe goes, succeeds and closes it.
    rx.set_default(Reply::Status(204));
    let waited = msgs[5..].to_vec();
    for m in &waited {
        eventually(
            Duration::from_secs(90),
            "waiting deliveries succeed",
            || async { (c.delivery_status(&app, m, &ep).await == Some(0)).then_some(()) },
        )
        .await;
        let attempts = c.attempts_of_msg(&app, m).await;
        assert_eq!(attempts.len(), 1, "a waiting delivery used up a retry");
    }
    let e = c.get(&format!("/app/{app}/endpoint/{ep}"), 200).await;
    assert_eq!(e["state"], "healthy");
    let text = c
        .send(c.req(reqwest::Method::GET, "//metrics"), 200)
        .await
        .text;
    for to in ["open", "half_open", "closed"] {
        let line = text
            .lines()
            .find(|l| l.starts_with(&format!("herald_circuit_transitions_total{{to=\"{to}\"}}")))
            .unwrap_or_else(|| panic!("no transition metric to {to}"));
        let v: f64 = line.rsplit(' ').next().unwrap().parse().unwrap();
        assert!(v >= 1.0, "{line}");
    }
    srv.stop().await;
}

/// FIFO: 200 messages over 10 keys to a receiver that fails every third request arrive, per
/// key, in publish order — a later message is never sent before an earlier one succeeded.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fifo_keeps_per_key_order_through_failures() {
    let srv = TestServer::start(|cfg| cfg.retry_schedule = vec![1; 8]).await;
    let c = &srv.client;
    let rx = Receiver::start().await;
    rx.set_default(Reply::EveryNthFails(3));
    let app = c.create_app("a").await;
    c.create_endpoint(&app, json!({ "url": rx.url(), "ordering": "fifo" }))
        .await;
    let keys = 10;
    let n = 200;
    for i in 0..n {
        let key = format!("k{}", i % keys);
        c.post(
            &format!("/app/{app}/msg"),
            json!({ "eventType": "t", "orderingKey": key, "payload": { "key": key, "i": i } }),
            202,
        )
        .await;
    }
    let successes = eventually(Duration::from_secs(120), "all 200 delivered", || async {
        let reqs = rx.requests();
        let seen: std::collections::HashSet<i64> = reqs
            .iter()
            .map(|r| {
                serde_json::from_slice::<Value>(&r.body).unwrap()["i"]
                    .as_i64()
                    .unwrap()
            })
            .collect();
        (seen.len() == n).then_some(reqs)
    })
    .await;
    let mut by_key: HashMap<String, Vec<i64>> = HashMap::new();
    for r in &successes {
        let v: Value = serde_json::from_slice(&r.body).unwrap();
        by_key
            .entry(v["key"].as_str().unwrap().to_string())
            .or_default()
            .push(v["i"].as_i64().unwrap());
    }
    assert_eq!(by_key.len(), keys);
    for (key, seq) in &by_key {
        // Every request (retries included) of a key is for the same or a later message than
        // the one before it.
        assert!(
            seq.windows(2).all(|w| w[0] <= w[1]),
            "key {key} out of order: {seq:?}"
        );
    }
    // The receiver did fail some requests, so order was kept through retries.
    assert!(rx.count() > n, "no request failed; the test proved nothing");
    srv.stop().await;
}

/// Operational events are recorded and POSTed, signed, to `operational_webhook_url`:
/// `endpoint.disabled` (410 Gone), `message.attempt.exhausted`, `endpoint.enabled`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn operational_webhook_receives_signed_events() {
    let ops_rx = Receiver::start().await;
    let ops_url = ops_rx.url_path("/ops");
    let srv = TestServer::start(move |cfg| {
        cfg.operational_webhook_url = Some(ops_url);
        cfg.retry_schedule = vec![1, 1, 1, 1, 1];
    })
    .await;
    let c = &srv.client;
    let rx = Receiver::start().await;
    rx.set_path_reply("/gone", Reply::Status(410));
    rx.set_path_reply("/broken", Reply::Status(500));
    rx.set_path_reply("/flaky", Reply::FailFirst(4));
    let app = c.create_app("a").await;
    let gone = id_of(
        &c.create_endpoint(
            &app,
            json!({ "url": rx.url_path("/gone"), "eventTypes": ["g"] }),
        )
        .await,
    );
    c.create_endpoint(
        &app,
        json!({ "url": rx.url_path("/broken"), "eventTypes": ["b"], "retrySchedule": [1] }),
    )
    .await;
    c.create_endpoint(
        &app,
        json!({ "url": rx.url_path("/flaky"), "eventTypes": ["f"], "maxConcurrency": 1 }),
    )
    .await;
    c.publish(&app, json!({ "eventType": "g", "payload": {} }))
        .await;
    let broken_msg = c
        .publish(&app, json!({ "eventType": "b", "payload": {} }))
        .await;
    // Fails 4 times (failing), then succeeds (recovered).
    let flaky_msg = c
        .publish(&app, json!({ "eventType": "f", "payload": {} }))
        .await;

    // The first event of type `want` whose `data` has `key` = `value`.
    let events = |want: &'static str, key: &'static str, value: String| {
        let ops_rx = &ops_rx;
        async move {
            eventually(WAIT, want, || async {
                ops_rx.requests().into_iter().find(|r| {
                    let v = serde_json::from_slice::<Value>(&r.body).unwrap();
                    v["type"] == want && v["data"][key] == value.as_str()
                })
            })
            .await
        }
    };
    let disabled = events("endpoint.disabled", "endpointId", gone.clone()).await;
    let exhausted = events("message.attempt.exhausted", "msgId", broken_msg.clone()).await;

    let ops_app = "herald-operational";
    let secret = c.secret(ops_app, "operational-webhook").await;
    for r in [&disabled, &exhausted] {
        let id = r.header("webhook-id").unwrap().to_string();
        assert_standard_signed(r, "webhook", &secret, &id);
    }
    let failing = events("message.attempt.failing", "msgId", flaky_msg.clone()).await;
    let recovered = events("message.attempt.recovered", "msgId", flaky_msg.clone()).await;
    let f: Value = serde_json::from_slice(&failing.body).unwrap();
    assert_eq!(f["data"]["lastAttempt"]["responseStatusCode"], 500);
    let r: Value = serde_json::from_slice(&recovered.body).unwrap();
    assert_eq!(r["data"]["lastAttempt"]["responseStatusCode"], 204);
    let d: Value = serde_json::from_slice(&disabled.body).unwrap();
    assert_eq!(d["data"]["endpointId"], gone);
    assert_eq!(d["data"]["appId"], app);
    assert_eq!(d["data"]["trigger"], "automatic");
    let e: Value = serde_json::from_slice(&exhausted.body).unwrap();
    assert_eq!(e["data"]["msgId"], broken_msg);
    assert_eq!(e["data"]["lastAttempt"]["responseStatusCode"], 500);

    c.patch(
        &format!("/app/{app}/endpoint/{gone}"),
        json!({ "disabled": false }),
        200,
    )
    .await;
    let enabled = events("endpoint.enabled", "endpointId", gone.clone()).await;
    let v: Value = serde_json::from_slice(&enabled.body).unwrap();
    assert_eq!(v["data"]["endpointId"], gone);

    // Recorded: the events are messages of the operational application.
    let list = c.get(&format!("/app/{ops_app}/msg"), 200).await;
    let types: Vec<&str> = list["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["eventType"].as_str().unwrap())
        .collect();
    for t in [
        "endpoint.disabled",
        "message.attempt.exhausted",
        "message.attempt.failing",
        "message.attempt.recovered",
        "endpoint.enabled",
    ] {
        assert!(types.contains(&t), "{t} not recorded: {types:?}");
    }
    srv.stop().await;
}
