//! Per-delivery overhead of an endpoint transformation: the engine's transformation step for
//! an endpoint with a trivial `handler` (`return webhook`) against the same step for an
//! endpoint without one, on a ~1 KiB JSON payload. Sequential calls through the real sandbox
//! pool (queue, worker thread, fresh QuickJS context, JSON in and out, URL check).
//!
//! `cargo bench -p herald-delivery --bench transform` prints median, p99 and mean per call.
//! A plain timing loop (no criterion): the figure of interest is a few hundred microseconds
//! against deliveries that take milliseconds, so its noise does not matter.

use std::time::{Duration, Instant};

use herald_core::endpoint_options::Transformation;
use herald_core::ids::{AppId, MessageId};
use herald_core::model::{Endpoint, Message};
use herald_core::signing::EndpointSecret;
use herald_core::ssrf::EgressPolicy;
use herald_delivery::transform::{step, TransformPool};

const CALLS: usize = 3_000;

fn stats(mut v: Vec<Duration>) -> String {
    v.sort();
    let mean = v.iter().sum::<Duration>() / v.len() as u32;
    format!(
        "median {:>7.1} µs  p99 {:>7.1} µs  mean {:>7.1} µs",
        v[v.len() / 2].as_secs_f64() * 1e6,
        v[v.len() * 99 / 100].as_secs_f64() * 1e6,
        mean.as_secs_f64() * 1e6
    )
}

async fn measure(pool: &TransformPool, ep: &Endpoint, msg: &Message) -> Vec<Duration> {
    let policy = EgressPolicy::default();
    let mut out = Vec::with_capacity(CALLS);
    for i in 0..CALLS + 200 {
        let wire = msg.wire_body().expect("payload");
        let t = Instant::now();
        let s = step(pool, &policy, ep, msg, wire).await;
        let took = t.elapsed();
        assert!(s.settled.is_none(), "the trivial transformation must pass");
        // The first calls warm the worker's runtime up.
        if i >= 200 {
            out.push(took);
        }
    }
    out
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let items: Vec<_> = (0..12)
        .map(|i| serde_json::json!({"sku": format!("SKU-{i:04}"), "qty": i, "price": 19.99}))
        .collect();
    let payload = serde_json::json!({"type": "order.created", "data": {"id": "ord_123", "customer": {"id": "cus_9", "tier": "gold"}, "items": items}});
    let msg = Message {
        id: MessageId::generate(),
        app_id: AppId::generate(),
        event_id: None,
        event_type: "order.created".into(),
        payload: Some(payload.to_string()),
        channels: None,
        created_at: 0,
        retention_ms: None,
        ordering_key: None,
        headers: None,
    };
    let plain = Endpoint::internal(
        msg.app_id.clone(),
        "bench".into(),
        "https://example.com/hook".into(),
        String::new(),
        &EndpointSecret::generate(),
        0,
    );
    let mut transformed = plain.clone();
    transformed.options.transformation = Some(Transformation {
        code: "function handler(webhook) { return webhook; }".into(),
        enabled: true,
    });
    let pool = TransformPool::default();
    println!(
        "payload {} bytes, {CALLS} sequential calls",
        payload.to_string().len()
    );
    println!(
        "no transformation:      {}",
        stats(measure(&pool, &plain, &msg).await)
    );
    println!(
        "trivial transformation: {}",
        stats(measure(&pool, &transformed, &msg).await)
    );
}
