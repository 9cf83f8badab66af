//! The API's metrics as named events, so every series the API emits is defined here once:
//! inbound request outcomes, deduplication hits and the queue gauges refreshed on each scrape.
//! Published-message counts go through `herald_delivery::telemetry`, which also counts the
//! held-event sweep. Labels stay low-cardinality: never a source, app or message ID.

/// Every outcome label `herald_inbound_requests_total` takes.
const INBOUND_OUTCOMES: [&str; 7] = [
    "accepted",
    "duplicate",
    "invalid_signature",
    "stale_timestamp",
    "quarantined",
    "too_large",
    "rate_limited",
];

/// An inbound request ended with `outcome` (one of [`INBOUND_OUTCOMES`] or `rejected`,
/// `handshake`, `not_found`…, as the ingestion handler names it).
pub fn inbound_request(outcome: &'static str) {
    metrics::counter!("herald_inbound_requests_total", "outcome" => outcome).increment(1);
}

/// An inbound event was a duplicate within its source's dedup window.
pub fn dedup_hit() {
    metrics::counter!("herald_inbound_dedup_hits_total").increment(1);
}

/// The queue as a scrape found it: due now, scheduled later, and the age of the oldest due one.
pub fn queue(due: u64, scheduled: u64, oldest_due_secs: f64) {
    metrics::gauge!("herald_queue_due").set(due as f64);
    metrics::gauge!("herald_queue_scheduled").set(scheduled as f64);
    metrics::gauge!("herald_queue_oldest_due_seconds").set(oldest_due_secs);
}

/// Makes every series of this module visible from the first scrape (at zero). Call once after
/// installing the recorder.
pub fn register() {
    metrics::counter!("herald_inbound_dedup_hits_total").absolute(0);
    for outcome in INBOUND_OUTCOMES {
        metrics::counter!("herald_inbound_requests_total", "outcome" => outcome).absolute(0);
    }
    queue(0, 0, 0.0);
    for outcome in ["ok", "error"] {
        metrics::counter!("herald_source_poll_runs_total", "outcome" => outcome).absolute(0);
    }
    metrics::counter!("herald_source_poll_pages_total").absolute(0);
    for outcome in ["accepted", "duplicate", "quarantined", "old", "no_id"] {
        metrics::counter!("herald_source_poll_items_total", "outcome" => outcome).absolute(0);
    }
}

/// A reconciliation poll run ended (`ok` or `error`).
pub fn source_poll_run(outcome: &'static str) {
    metrics::counter!("herald_source_poll_runs_total", "outcome" => outcome).increment(1);
}

/// A reconciliation poll read one page of its provider's list.
pub fn source_poll_page() {
    metrics::counter!("herald_source_poll_pages_total").increment(1);
}

/// One item of a provider's list was `accepted`, a `duplicate`, `quarantined`, `old` (past the
/// dedup window) or had `no_id`.
pub fn source_poll_item(outcome: &'static str) {
    metrics::counter!("herald_source_poll_items_total", "outcome" => outcome).increment(1);
}
