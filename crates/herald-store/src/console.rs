//! [`ConsoleStore`]: what the operator console reads and changes beyond the API's roles —
//! rejecting a quarantined inbound request, searching applications by name, messages by
//! delivery status, and the health page's figures (attempts of the last hour, open breakers).
//!
//! This module holds the contract and what both backends share (the listings, bounds and
//! patterns); the statements live in `sqlite/console.rs` and `postgres/console.rs`. Every
//! read here is bounded: a page, a row cap or an index range, never a whole table.

use async_trait::async_trait;
use herald_core::breaker::BreakerState;
use herald_core::ids::{AppId, EndpointId, InboundRequestId, SourceId};
use herald_core::model::{Application, DeliveryStatus, Message};
use herald_core::Millis;

use crate::page::{self, Arg, Listing};
use crate::{ListQuery, MessageFilter, Page, Result};

/// The longest text [`ConsoleStore::search_apps`] looks for; longer text is cut (no name a
/// person types is longer, and the pattern stays small).
pub const MAX_SEARCH_CHARS: usize = 100;

/// Attempts counted at most by [`ConsoleStore::attempt_rate`]: beyond this the figure covers
/// only the newest attempts (and says so), so a busy hour costs a bounded read.
pub const RATE_CAP: usize = 50_000;

/// The attempts made since a time: how many, how many failed, and whether the count stopped
/// at the cap (then `oldest` is the time of the oldest attempt counted).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct AttemptRate {
    pub attempts: u64,
    pub failed: u64,
    pub capped: bool,
    pub oldest: Option<Millis>,
}

/// An endpoint whose circuit breaker is not closed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OpenBreaker {
    pub app_id: AppId,
    pub endpoint_id: EndpointId,
    pub url: String,
    pub state: BreakerState,
    /// Until when an open breaker refuses deliveries.
    pub until: Millis,
}

/// The console's own reads and the quarantine's "Reject". Every method is atomic on its own.
#[rustfmt::skip]
#[async_trait]
pub trait ConsoleStore: Send + Sync + 'static {
    /// Marks a quarantined request `rejected` with `reason` (who and when) and drops its body:
    /// it is never forwarded and stays in the log. `NotFound` unless the request exists and is
    /// quarantined.
    async fn reject_inbound(&self, source: &SourceId, id: &InboundRequestId, reason: String) -> Result<()>;

    /// Applications whose name contains `text` (case-insensitive; `%`, `_` and `\` match
    /// themselves), or whose ID or uid is `text`, paged by ID.
    async fn search_apps(&self, text: &str, q: &ListQuery) -> Result<Page<Application>>;

    /// The application's messages with at least one delivery in `status` that also pass
    /// `filter`, paged by message ID. Read from the `deliveries_app_status` index.
    async fn list_messages_by_status(&self, app: &AppId, status: DeliveryStatus, filter: &MessageFilter, q: &ListQuery) -> Result<Page<Message>>;

    /// The attempts made since `since` (the newest [`RATE_CAP`] at most).
    async fn attempt_rate(&self, since: Millis) -> Result<AttemptRate>;

    /// Up to `limit` endpoints whose breaker is open or half-open.
    async fn open_breakers(&self, limit: usize) -> Result<Vec<OpenBreaker>>;
}

/// The `LIKE` pattern of "contains `text`", lower-cased, with the wildcards and the escape
/// character escaped (by `\`), so that `%` and `_` typed by a person match only themselves.
pub(crate) fn contains_pattern(text: &str) -> String {
    let mut p = String::from("%");
    for ch in text
        .chars()
        .take(MAX_SEARCH_CHARS)
        .flat_map(char::to_lowercase)
    {
        if matches!(ch, '%' | '_' | '\\') {
            p.push('\\');
        }
        p.push(ch);
    }
    p.push('%');
    p
}

/// The search of [`ConsoleStore::search_apps`] over `select` (the apps table's columns).
pub(crate) fn app_search(select: String, text: &str) -> Listing {
    let exact: String = text.chars().take(MAX_SEARCH_CHARS * 4).collect();
    Listing::new(select).filter(
        "(lower(name) LIKE ? ESCAPE '\\' OR id = ? OR uid = ?)",
        [
            Arg::Text(contains_pattern(text)),
            Arg::Text(exact.clone()),
            Arg::Text(exact),
        ],
    )
}

/// Messages by delivery status: `select` reads `deliveries d JOIN messages m`. Walks the
/// `(app_id, status, msg_id)` index in message order; a message with several deliveries in
/// the status is kept once (for its first endpoint, checked on the `(msg_id, endpoint_id)` key).
pub(crate) fn messages_by_status(
    select: String,
    app: &AppId,
    status: DeliveryStatus,
    filter: &MessageFilter,
    channel: &str,
) -> Listing {
    page::messages(select, app, filter, channel)
        .keys("d.msg_id", "m.created_at")
        .filter("d.app_id = ?", [Arg::Text(app.0.clone())])
        .filter("d.status = ?", [Arg::Int(status as i64)])
        .filter(
            "NOT EXISTS (SELECT 1 FROM deliveries d2 WHERE d2.msg_id = d.msg_id \
             AND d2.status = d.status AND d2.endpoint_id < d.endpoint_id)",
            [],
        )
}

/// The smallest attempt ID that can have been made at `since` (IDs are ULIDs: time first), so
/// the count reads a range of the primary key.
pub(crate) fn attempt_id_floor(since: Millis) -> String {
    let t = u64::try_from(since).unwrap_or(0);
    format!("atmpt_{}", ulid::Ulid::from_parts(t, 0))
}

/// The statement of [`ConsoleStore::attempt_rate`] with the backend's placeholders for the
/// ID floor and the time: counts over the newest [`RATE_CAP`] attempts of the range.
pub(crate) fn rate_sql(floor: &str, since: &str) -> String {
    format!(
        "SELECT COUNT(*), COALESCE(SUM(CASE WHEN status = {fail} THEN 1 ELSE 0 END), 0), \
         MIN(created_at) FROM (SELECT status, created_at FROM attempts \
         WHERE id >= {floor} AND created_at >= {since} ORDER BY id DESC LIMIT {RATE_CAP}) t",
        fail = DeliveryStatus::Fail as i64
    )
}

impl AttemptRate {
    /// From [`rate_sql`]'s row.
    pub(crate) fn of(count: i64, failed: i64, oldest: Option<Millis>) -> Self {
        Self {
            attempts: count.max(0) as u64,
            failed: failed.max(0) as u64,
            capped: count.max(0) as usize >= RATE_CAP,
            oldest,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn patterns_escape_wildcards_and_lower_case() {
        assert_eq!(contains_pattern("Ab"), "%ab%");
        assert_eq!(contains_pattern("50%_a\\"), "%50\\%\\_a\\\\%");
        assert_eq!(
            contains_pattern(&"x".repeat(500)).len(),
            MAX_SEARCH_CHARS + 2
        );
    }

    #[test]
    fn attempt_floor_sorts_before_ids_of_that_time() {
        let floor = attempt_id_floor(1_000);
        let id = format!("atmpt_{}", ulid::Ulid::from_parts(1_000, 5));
        let earlier = format!("atmpt_{}", ulid::Ulid::from_parts(999, u128::MAX >> 48));
        assert!(floor <= id && earlier < floor);
    }
}
