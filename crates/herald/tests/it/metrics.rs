//! `/metrics` (operations.md "Metrics"): every contract metric is exposed in Prometheus text
//! format, the delivery counters move after traffic, and `metrics_token` guards the route.

use serde_json::json;

use crate::common::{Client, Receiver, TestServer};

/// Every metric name of operations.md's table.
const CONTRACT: &[&str] = &[
    "herald_messages_published_total",
    "herald_delivery_attempts_total",
    "herald_delivery_attempt_duration_seconds",
    "herald_delivery_latency_seconds",
    "herald_deliveries_failed_total",
    "herald_retries_scheduled_total",
    "herald_queue_due",
    "herald_queue_scheduled",
    "herald_queue_oldest_due_seconds",
    "herald_circuit_transitions_total",
    "herald_endpoints_disabled_total",
    "herald_inbound_requests_total",
    "herald_inbound_dedup_hits_total",
];

/// The value of the first sample line that starts with `series` (name plus labels).
fn sample(text: &str, series: &str) -> Option<f64> {
    text.lines()
        .filter(|l| !l.starts_with('#'))
        .find(|l| l.starts_with(series))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse().ok())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_exist_move_after_traffic_and_need_the_token() {
    let srv = TestServer::start(|c| c.metrics_token = Some("metrics-secret-token".into())).await;
    let c = &srv.client;
    // The admin token is not the metrics token.
    c.send(c.req(reqwest::Method::GET, "//metrics"), 401).await;
    c.anonymous()
        .send(c.anonymous().req(reqwest::Method::GET, "//metrics"), 401)
        .await;
    let scraper = Client::new(srv.client.base.clone(), Some("metrics-secret-token"));
    let before = scraper
        .send(scraper.req(reqwest::Method::GET, "//metrics"), 200)
        .await
        .text;
    for name in CONTRACT
        .iter()
        .filter(|n| !n.ends_with("_seconds") || n.contains("queue"))
    {
        assert!(
            before.contains(&format!("# TYPE {name} ")),
            "{name} missing before traffic:\n{before}"
        );
    }

    let rx = Receiver::start().await;
    let app = c.create_app("m").await;
    let ep = c.endpoint_for(&app, &rx.url_path("/hook")).await;
    let msg = c
        .publish(&app, json!({"eventType": "a.b", "payload": {"n": 1}}))
        .await;
    c.wait_delivery(&app, &msg, &ep, 0).await;

    let after = scraper
        .send(scraper.req(reqwest::Method::GET, "//metrics"), 200)
        .await;
    assert!(
        after.headers["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/plain"),
        "Prometheus text format"
    );
    let text = after.text;
    for name in CONTRACT {
        assert!(
            text.contains(&format!("# TYPE {name} ")),
            "{name} missing:\n{text}"
        );
    }
    for hist in [
        "herald_delivery_attempt_duration_seconds",
        "herald_delivery_latency_seconds",
    ] {
        assert!(
            text.contains(&format!("# TYPE {hist} histogram")),
            "{hist} must be a histogram"
        );
    }
    let published =
        |t: &str| sample(t, "herald_messages_published_total{origin=\"api\"}").unwrap_or(0.0);
    assert!(
        published(&text) >= published(&before) + 1.0,
        "published counter moved"
    );
    let ok = sample(
        &text,
        "herald_delivery_attempts_total{outcome=\"success\",status_class=\"2xx\"}",
    )
    .expect("a successful attempt was counted");
    assert!(ok >= 1.0);
    assert!(sample(&text, "herald_delivery_latency_seconds_count").unwrap_or(0.0) >= 1.0);
    // Labels stay low-cardinality: no IDs or URLs in any series.
    for id in [&app, &ep, &msg] {
        assert!(!text.contains(id.as_str()), "metrics must not carry IDs");
    }
    assert!(!text.contains("127.0.0.1"), "metrics must not carry URLs");
    srv.stop().await;
}

/// Every `herald_…` series name in a file, with histogram suffixes mapped to the metric.
fn metric_names(text: &str) -> std::collections::BTreeSet<String> {
    let mut out = std::collections::BTreeSet::new();
    let bytes = text.as_bytes();
    let mut i = 0;
    while let Some(pos) = text[i..].find("herald_") {
        let start = i + pos;
        let mut end = start;
        while end < bytes.len() && (bytes[end].is_ascii_alphanumeric() || bytes[end] == b'_') {
            end += 1;
        }
        let name = &text[start..end];
        let base = ["_bucket", "_count", "_sum"]
            .iter()
            .find_map(|s| name.strip_suffix(s))
            .unwrap_or(name);
        out.insert(base.to_string());
        i = end;
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_metric_in_the_dashboard_and_alert_rules_exists() {
    let srv = TestServer::start(|_| {}).await;
    let c = &srv.client;
    // Histograms appear once they have a sample: make one delivery.
    let rx = Receiver::start().await;
    let app = c.create_app("dash").await;
    let ep = c.endpoint_for(&app, &rx.url_path("/hook")).await;
    let msg = c
        .publish(&app, json!({"eventType": "a.b", "payload": {}}))
        .await;
    c.wait_delivery(&app, &msg, &ep, 0).await;
    let text = c
        .send(c.req(reqwest::Method::GET, "//metrics"), 200)
        .await
        .text;
    let root = concat!(env!("CARGO_MANIFEST_DIR"), "/../../deploy/");
    for file in ["grafana-dashboard.json", "prometheus-alerts.yml"] {
        let body = std::fs::read_to_string(format!("{root}{file}")).expect(file);
        let names = metric_names(&body);
        assert!(names.len() >= 4, "{file} queries Herald metrics");
        for name in names {
            assert!(
                text.contains(&format!("# TYPE {name} ")),
                "{file} queries {name}, which /metrics does not expose"
            );
        }
    }
    srv.stop().await;
}
