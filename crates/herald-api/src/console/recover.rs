//! "Recover failed deliveries" of an endpoint from the console and the portal: since a fixed
//! range (`since_hours`) or an exact instant (`since`, RFC 3339 — the page's script converts
//! the viewer's `datetime-local` to it; without the script `since_local` is read with the
//! `tz_offset` minutes the script would send, UTC when absent), then — for an exact instant —
//! its progress, which the page polls every second (`…/recover-status`) until no delivery
//! since then is waiting.
//!
//! Re-queueing is the store's `recover`, as `POST /api/v1/…/endpoint/{ep}/recover`; progress is
//! `endpoint_stats` of the same window. This module must not write anything else.

use askama::Template;
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use herald_core::{now_millis, Millis};
use serde::Deserialize;

use super::csrf::{Fields, Posted};
use super::page::{ok, ConsoleError, ConsoleResult, When};
use super::session::Operator;
use crate::extract::Path;
use crate::paths::EndpointPath;
use crate::service::endpoints;
use crate::state::AppState;

/// How far back "Recover failed deliveries" reaches (hours, words).
pub const RECOVER_CHOICES: &[(u32, &str)] = &[
    (1, "the last hour"),
    (6, "the last 6 hours"),
    (24, "the last 24 hours"),
    (72, "the last 3 days"),
    (168, "the last 7 days"),
];

/// How far a "Recover" has come: deliveries of messages since the instant, finished or not.
pub struct Progress {
    pub since: When,
    /// Deliveries the "Recover" re-queued.
    pub recovered: u64,
    pub finished: u64,
    pub total: u64,
    pub waiting: u64,
    pub done: bool,
    /// The partial the page polls.
    pub status_url: String,
}

impl Progress {
    pub async fn of(
        st: &AppState,
        op: &Operator,
        path: &EndpointPath,
        since: Millis,
        recovered: u64,
    ) -> ConsoleResult<Self> {
        let (app, ep) = endpoints::load(st, &op.auth(), path).await?;
        let s = st.store().endpoint_stats(&ep.id, Some(since), None).await?;
        let waiting = s.pending + s.sending;
        Ok(Self {
            since: When::at(since),
            recovered,
            finished: s.success + s.fail,
            total: s.success + s.fail + waiting,
            waiting,
            done: waiting == 0,
            status_url: format!(
                "{}/app/{}/endpoint/{}/recover-status?since={since}&recovered={recovered}",
                op.realm.base(),
                app.id,
                ep.id
            ),
        })
    }
}

fn refuse(words: &str) -> ConsoleError {
    ConsoleError::Api(StatusCode::UNPROCESSABLE_ENTITY, words.into())
}

/// The instant the form names, in ms, and whether it was an exact one (the page then follows
/// its progress; the fixed ranges keep their plain count).
fn since_of(f: &Fields, now: Millis) -> ConsoleResult<(Millis, bool)> {
    if let Some(s) = f.get("since").map(str::trim).filter(|s| !s.is_empty()) {
        return chrono::DateTime::parse_from_rfc3339(s)
            .map(|t| (t.timestamp_millis(), true))
            .map_err(|_| refuse("Recover since: expected a date and time"));
    }
    if let Some(local) = f
        .get("since_local")
        .map(str::trim)
        .filter(|s| !s.is_empty())
    {
        let t = chrono::NaiveDateTime::parse_from_str(local, "%Y-%m-%dT%H:%M")
            .or_else(|_| chrono::NaiveDateTime::parse_from_str(local, "%Y-%m-%dT%H:%M:%S"))
            .map_err(|_| refuse("Recover since: expected a date and time"))?;
        // `Date.getTimezoneOffset()`: minutes to add to local time to get UTC.
        let offset = f
            .get("tz_offset")
            .filter(|o| !o.is_empty())
            .map_or(Ok(0), |o| o.parse::<i64>())
            .ok()
            .filter(|o| o.abs() <= 24 * 60)
            .ok_or_else(|| refuse("Recover since: the time zone offset is not valid"))?;
        return Ok((t.and_utc().timestamp_millis() + offset * 60_000, true));
    }
    let hours = f
        .get("since_hours")
        .and_then(|h| h.parse::<u32>().ok())
        .filter(|h| RECOVER_CHOICES.iter().any(|(c, _)| c == h))
        .ok_or_else(|| refuse("choose how far back to recover"))?;
    Ok((now - i64::from(hours) * 3_600_000, false))
}

/// `POST …/recover` (`since_hours`, or `since` / `since_local` + `tz_offset`): re-queues every
/// failed delivery of messages since then, as `POST /api/v1/…/endpoint/{ep}/recover` does, and
/// shows the count and the progress.
pub async fn recover(
    State(st): State<AppState>,
    Path(path): Path<EndpointPath>,
    posted: Posted,
) -> ConsoleResult<Response> {
    let (app, ep) = endpoints::load(&st, &posted.op.auth(), &path).await?;
    let now = now_millis();
    let (since, exact) = since_of(&posted.fields, now)?;
    if since > now {
        return Err(refuse("Recover since: the instant is in the future"));
    }
    let n = st.store().recover(&ep.id, since, None, now).await?;
    st.wake();
    let base = posted.op.realm.base();
    let mut back = format!("{base}/app/{}/endpoint/{}?recovered={n}", app.id, ep.id);
    if exact {
        back.push_str(&format!("&since={since}"));
    }
    Ok(Redirect::to(&back).into_response())
}

/// The progress region alone (the page's region is the same template).
#[derive(Template)]
#[template(path = "console/recover_status.html")]
struct StatusPartial {
    p: Progress,
}

#[derive(Debug, Deserialize)]
pub struct StatusQ {
    since: Millis,
    #[serde(default)]
    recovered: u64,
}

/// `GET …/recover-status?since=&recovered=`: the progress region alone, polled by the page.
pub async fn status(
    Path(path): Path<EndpointPath>,
    Query(q): Query<StatusQ>,
    op: Operator,
    State(st): State<AppState>,
) -> ConsoleResult<Response> {
    let p = Progress::of(&st, &op, &path, q.since, q.recovered).await?;
    Ok(ok(&StatusPartial { p }))
}
