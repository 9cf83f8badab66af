//! The console's health screen: storage, delivery workers and the queue, read from the store
//! as `GET /api/v1/health` reads them (no Prometheus needed).
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
    };
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
