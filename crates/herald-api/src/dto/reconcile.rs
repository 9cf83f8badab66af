//! Bodies of reconciliation sources (destinations.md "Pulling from providers"): the `poll`
//! object of a source as documented (`SourcePoll`; the stored form is
//! `herald_core::reconcile::PollConfig`) and the `pollStatus` a source's answer carries.
//!
//! Shapes only: checking a poll is `routes::sources`' job, running it `crate::reconcile`'s.

use herald_store::PollState;
use serde::Serialize;
use utoipa::ToSchema;

use crate::dto::common::ts;

/// `poll` of a source: its provider's list API, paged on an interval so that events whose
/// webhook never arrived are still received (each event is forwarded once, whichever way it
/// came). Paths are dotted (`data.-1.id`; an integer segment indexes an array, negative from
/// the end; `""` is the whole answer).
#[allow(dead_code)] // documents the wire form; the API reads it as `PollConfig`
#[derive(Debug, serde::Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct SourcePoll {
    /// `stripe` (`GET /v1/events`), `github` (a hook's deliveries) or `generic` (default):
    /// a preset fills every field below it knows.
    #[schema(value_type = Option<String>)]
    pub preset: Option<String>,
    /// The list endpoint, http(s), under the same egress rules as endpoints. Required except
    /// for `stripe` (default `https://api.stripe.com/v1/events`).
    pub url: Option<String>,
    /// Seconds between runs, 10 to 86400 (default 300).
    #[schema(minimum = 10, maximum = 86400)]
    pub interval_seconds: Option<i64>,
    /// Sent with every request (e.g. `Authorization: Bearer …`). Write-only: answers show
    /// `********`; a PATCH whose `poll` has no `headers` keeps the current ones.
    pub headers: Option<std::collections::BTreeMap<String, String>>,
    /// Where the page's array of items is (`data`; `""` for a top-level array).
    pub items_path: Option<String>,
    /// The item's event ID, which must be the value the source's webhooks deduplicate on
    /// (Stripe `id`, GitHub `guid` = `X-GitHub-Delivery`).
    pub id_path: Option<String>,
    /// `cursor` (default): the next page adds `cursorParam=<value at cursorPath>`; `link`:
    /// the `rel="next"` URL of the `Link` header (same origin as `url`).
    #[schema(value_type = Option<String>)]
    pub pagination: Option<String>,
    pub cursor_param: Option<String>,
    pub cursor_path: Option<String>,
    /// A boolean saying more pages follow (Stripe `has_more`).
    pub has_more_path: Option<String>,
    /// The item's event type (else the source's `eventType` rule, else `inbound`).
    pub event_type_path: Option<String>,
    /// The item's time (unix seconds or RFC 3339): items older than the dedup window are
    /// skipped, and a page of only such items ends the run (lists newest first).
    pub timestamp_path: Option<String>,
    /// Where in the item its payload is (default: the whole item).
    pub payload_path: Option<String>,
    /// Pages one run reads at most, 1 to 100 (default 10); a run that stops there resumes
    /// from that page next time.
    #[schema(minimum = 1, maximum = 100)]
    pub max_pages: Option<u32>,
}

/// How the source's polls have gone.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct PollStatusOut {
    #[schema(format = DateTime)]
    pub next_poll_at: String,
    #[schema(format = DateTime)]
    pub last_success_at: Option<String>,
    pub last_error: Option<String>,
    #[schema(format = DateTime)]
    pub last_error_at: Option<String>,
    /// Failed runs since the last success (each waits longer: 10 s doubled, at most an hour
    /// or the interval).
    pub consecutive_failures: u32,
    /// `true` while a run stopped at `maxPages` has pages left to read.
    pub resuming: bool,
}

impl From<&PollState> for PollStatusOut {
    fn from(s: &PollState) -> Self {
        Self {
            next_poll_at: ts(s.next_at),
            last_success_at: s.last_success_at.map(ts),
            last_error: s.last_error.clone(),
            last_error_at: s.last_error_at.map(ts),
            consecutive_failures: s.failures,
            resuming: s.cursor.is_some(),
        }
    }
}
