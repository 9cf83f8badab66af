//! The console's health screen: storage, delivery workers and the queue, read from the store
//! as `GET /api/v1/health` reads them (no Prometheus needed), plus the last hour's attempts
//! (per minute, failure rate) and the endpoints whose circuit breaker is open — bounded reads
//! of the store (`ConsoleStore::attempt_rate`, `open_breakers`).
//!
//! Read-only; a store that cannot answer is shown, not turned into an error page.

use askama::Template;
use axum::extract::State;
use axum::response::Response;
use herald_core::now_millis;

use super::page::{ok, Chrome, ConsoleResult, When};
use super::session::Operator;
use crate::state::AppState;

/// A delivery loop that has not turned for this long is shown stalled (as the API reports).
const WORKER_STALL_MS: i64 = 60_000;

#[derive(Template)]
#[template(path = "console/health.html")]
struct HealthPage {
    chrome: Chrome,
    storage: String,
    workers: &'static str,
    due: String,
    scheduled: String,
    oldest_due: String,
    spool: Option<String>,
    detail: Option<String>,
    at: When,
    /// Attempts per minute and the failure rate over the last hour.
    per_minute: String,
    failure_rate: String,
    breakers: Vec<BreakerRow>,
    /// More breakers are open than listed.
    breakers_more: bool,
}

/// An endpoint whose breaker is open or half-open, with a link to its page.
pub struct BreakerRow {
    app_id: String,
    endpoint_id: String,
    url: String,
    state: &'static str,
    until: When,
}

/// Open breakers listed at most.
const BREAKERS_SHOWN: usize = 50;
const HOUR_MS: i64 = 3_600_000;

/// "N per minute" and "F % failed" of the last hour's attempts. When the count stopped at
/// the cap, the rate is over the span the counted attempts cover.
fn rates(r: &herald_store::AttemptRate, now: i64) -> (String, String) {
    let span_ms = match (r.capped, r.oldest) {
        (true, Some(oldest)) => (now - oldest).clamp(60_000, HOUR_MS),
        _ => HOUR_MS,
    };
    let per_minute = r.attempts as f64 * 60_000.0 / span_ms as f64;
    let capped = if r.capped {
        format!(" (over the newest {} attempts)", r.attempts)
    } else {
        String::new()
    };
    let failure = match r.attempts {
        0 => "no attempts in the last hour".to_string(),
        n => format!(
            "{:.1} % ({} of {n} attempts failed)",
            r.failed as f64 * 100.0 / n as f64,
            r.failed
        ),
    };
    (format!("{per_minute:.1}{capped}"), failure)
}

/// `GET /console/health`.
pub async fn show(State(st): State<AppState>, op: Operator) -> ConsoleResult<Response> {
    op.caller.require_admin()?;
    let now = now_millis();
    let workers = match &st.inner.worker_heartbeat {
        None => "not running on this node",
        Some(h) if now - h.load(std::sync::atomic::Ordering::Relaxed) > WORKER_STALL_MS => {
            "stalled"
        }
        Some(_) => "ok",
    };
    let mut page = HealthPage {
        chrome: Chrome::signed_in(&st, &op),
        storage: "ok".into(),
        workers,
        due: "—".into(),
        scheduled: "—".into(),
        oldest_due: "—".into(),
        spool: st.store().spool_health().map(|s| match s.refusing {
            None => format!("{} of {} bytes used", s.bytes, s.max_bytes),
            Some(why) => format!("refusing: {why}"),
        }),
        detail: st.store().last_write_failure().map(|f| {
            format!(
                "the last write failed at {}: {}",
                When::at(f.at).text,
                f.error
            )
        }),
        at: When::at(now),
        per_minute: "—".into(),
        failure_rate: "—".into(),
        breakers: Vec::new(),
        breakers_more: false,
    };
    match st.store().attempt_rate(now - HOUR_MS).await {
        Ok(r) => (page.per_minute, page.failure_rate) = rates(&r, now),
        Err(e) => page.storage = format!("error: {e}"),
    }
    match st.store().open_breakers(BREAKERS_SHOWN + 1).await {
        Ok(mut open) => {
            page.breakers_more = open.len() > BREAKERS_SHOWN;
            open.truncate(BREAKERS_SHOWN);
            page.breakers = open
                .into_iter()
                .map(|b| BreakerRow {
                    app_id: b.app_id.0,
                    endpoint_id: b.endpoint_id.0,
                    url: herald_core::destination::redact(&b.url).into_owned(),
                    state: b.state.as_str(),
                    until: When::at(b.until),
                })
                .collect();
        }
        Err(e) => page.storage = format!("error: {e}"),
    }
    if let Err(e) = st.store().ping().await {
        page.storage = format!("error: {e}");
    }
    match st.store().queue_summary(now).await {
        Ok((due, scheduled, oldest)) => {
            page.due = due.to_string();
            page.scheduled = scheduled.to_string();
            page.oldest_due = oldest.map_or("none due".into(), |t| {
                format!("{:.1} s ago", (now - t).max(0) as f64 / 1000.0)
            });
        }
        Err(e) => page.storage = format!("error: {e}"),
    }
    Ok(ok(&page))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rates_read_as_words() {
        let r = herald_store::AttemptRate {
            attempts: 120,
            failed: 30,
            capped: false,
            oldest: Some(0),
        };
        assert_eq!(
            rates(&r, HOUR_MS),
            ("2.0".into(), "25.0 % (30 of 120 attempts failed)".into())
        );
        let none = herald_store::AttemptRate::default();
        assert_eq!(rates(&none, HOUR_MS).1, "no attempts in the last hour");
        let capped = herald_store::AttemptRate {
            attempts: 600,
            failed: 0,
            capped: true,
            oldest: Some(HOUR_MS - 60_000),
        };
        assert_eq!(
            rates(&capped, HOUR_MS).0,
            "600.0 (over the newest 600 attempts)"
        );
    }
}
