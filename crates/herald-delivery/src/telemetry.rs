//! Delivery telemetry as named events: each function is one fact about an attempt, emitting its
//! metric (and the caller's log line carries the same fields). Labels stay low-cardinality:
//! never a URL, message ID or endpoint ID.

use std::time::Duration;

/// One HTTP attempt ended with `outcome` (`success`, `http_error`, `timeout`,
/// `connect_error`, `blocked`).
pub fn attempt_finished(outcome: &'static str, status: Option<u16>, duration: Duration) {
    let class = match status {
        Some(s) => match s / 100 {
            2 => "2xx",
            3 => "3xx",
            4 => "4xx",
            5 => "5xx",
            _ => "other",
        },
        None => "none",
    };
    metrics::counter!("herald_delivery_attempts_total", "outcome" => outcome, "status_class" => class)
        .increment(1);
    metrics::histogram!("herald_delivery_attempt_duration_seconds", "outcome" => outcome)
        .record(duration.as_secs_f64());
}

/// A delivery succeeded; `since_publish` is the time from publish to this success.
pub fn delivery_succeeded(since_publish: Duration) {
    metrics::histogram!("herald_delivery_latency_seconds").record(since_publish.as_secs_f64());
}

/// A delivery ended `failed`: `exhausted` (schedule used up), `permanent_status` or `gone`
/// (410).
pub fn delivery_failed(reason: &'static str) {
    metrics::counter!("herald_deliveries_failed_total", "reason" => reason).increment(1);
}

/// A failed attempt was given a next attempt by the retry schedule.
pub fn retry_scheduled() {
    metrics::counter!("herald_retries_scheduled_total").increment(1);
}

/// An endpoint was disabled by Herald (410 Gone or auto-disable).
pub fn endpoint_disabled() {
    metrics::counter!("herald_endpoints_disabled_total").increment(1);
}

/// An endpoint's circuit breaker moved `to` `open`, `half_open` or `closed`.
pub fn circuit_transition(to: &'static str) {
    metrics::counter!("herald_circuit_transitions_total", "to" => to).increment(1);
}

/// `n` messages were published (`origin`: `api` or `inbound`); the API and the held-event
/// sweep both count through here so the series has one definition.
pub fn messages_published(origin: &'static str, n: u64) {
    metrics::counter!("herald_messages_published_total", "origin" => origin).increment(n);
}

/// Makes every series of this module visible from the first scrape (at zero), so dashboards
/// and alerts never query a missing series. Call once after installing the recorder.
pub fn register() {
    use metrics::counter;
    for origin in ["api", "inbound"] {
        counter!("herald_messages_published_total", "origin" => origin).absolute(0);
    }
    counter!("herald_retries_scheduled_total").absolute(0);
    counter!("herald_endpoints_disabled_total").absolute(0);
    for reason in ["exhausted", "permanent_status", "gone"] {
        counter!("herald_deliveries_failed_total", "reason" => reason).absolute(0);
    }
    for (outcome, class) in [
        ("success", "2xx"),
        ("http_error", "3xx"),
        ("http_error", "4xx"),
        ("http_error", "5xx"),
        ("timeout", "none"),
        ("connect_error", "none"),
        ("blocked", "none"),
    ] {
        counter!("herald_delivery_attempts_total", "outcome" => outcome, "status_class" => class)
            .absolute(0);
    }
    for to in ["open", "half_open", "closed"] {
        counter!("herald_circuit_transitions_total", "to" => to).absolute(0);
    }
}
