//! Reconciliation sources on the API side (destinations.md "Pulling from providers"):
//! checking a `poll` object as a client sends it, keeping its write-only headers on a PATCH,
//! (re)scheduling the source's poll when its configuration changes, and the `pollStatus` of a
//! source's answer.
//!
//! It must not fetch anything (the poller in `crate::reconcile` does) and never puts a header
//! value in an error or a log line.

use herald_core::model::Source;
use herald_core::now_millis;
use herald_core::reconcile::PollConfig;
use serde_json::Value;

use crate::dto::{Checks, PollStatusOut, SourceOut};
use crate::error::{ApiResult, FieldError};
use crate::state::AppState;

/// Largest `poll` object accepted, in bytes of JSON.
const MAX_POLL_JSON: usize = 64 * 1024;

fn fail(c: &mut Checks, field: &str, msg: impl Into<String>) {
    let mut e = FieldError::new("poll", msg);
    if !field.is_empty() {
        e.loc.push(field.into());
    }
    c.0.push(e);
}

/// Checks a `poll` object: its shape, its preset's plan (paths, bounds, interval) and its
/// URL under the egress rules endpoints follow. `current` is the source's poll before a
/// PATCH: a new poll without `headers` keeps its headers (they are write-only).
pub fn parse_poll(
    st: &AppState,
    c: &mut Checks,
    v: &Value,
    current: Option<&PollConfig>,
) -> Option<PollConfig> {
    if v.to_string().len() > MAX_POLL_JSON {
        fail(c, "", format!("at most {MAX_POLL_JSON} bytes of JSON"));
        return None;
    }
    let mut poll: PollConfig = match serde_json::from_value(v.clone()) {
        Ok(p) => p,
        Err(e) => {
            fail(c, "", format!("not a poll object: {e}"));
            return None;
        }
    };
    if v.get("headers").is_none() {
        if let Some(cur) = current {
            poll.headers = cur.headers.clone();
        }
    }
    let plan = match poll.plan() {
        Ok(plan) => plan,
        Err(problems) => {
            for (field, msg) in problems {
                fail(c, &field, msg);
            }
            return None;
        }
    };
    if let Err(e) = st.inner.egress.validate_url(&plan.url) {
        fail(c, "url", e.to_string());
        return None;
    }
    Some(poll)
}

/// After a source was stored: polls from now when its poll is new or changed, stops when it
/// has none any more.
pub async fn reschedule(st: &AppState, s: &Source, before: Option<&PollConfig>) -> ApiResult<()> {
    let after = s.options.poll.as_ref();
    if after == before {
        return Ok(());
    }
    let at = after.map(|_| now_millis());
    st.store().schedule_poll(&s.id, &s.app_id, at).await?;
    st.wake_poller();
    Ok(())
}

/// "Poll now": the source's next run is due at once (a run in progress finishes first).
pub async fn poll_now(st: &AppState, s: &Source) -> ApiResult<bool> {
    if s.options.poll.is_none() {
        return Ok(false);
    }
    st.store()
        .schedule_poll(&s.id, &s.app_id, Some(now_millis()))
        .await?;
    st.wake_poller();
    Ok(true)
}

/// `out` with the source's `pollStatus` when it polls.
pub async fn with_status(st: &AppState, s: &Source, mut out: SourceOut) -> ApiResult<SourceOut> {
    if s.options.poll.is_some() {
        out.poll_status = st
            .store()
            .poll_state(&s.id)
            .await?
            .as_ref()
            .map(PollStatusOut::from);
    }
    Ok(out)
}
