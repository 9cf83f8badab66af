//! The bodies of destinations beyond one request per message: a page of a polling endpoint
//! (`url` `poll:`), a poll-only token, and an endpoint's `batch` option with its checks.
//! Validation of the poll's query lives with the route; nothing here looks anything up.

use herald_core::endpoint_options::BatchOptions;
use herald_core::pull::is_poll_url;
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;
use utoipa::ToSchema;

/// One held event of a polling endpoint.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct PolledEventOut {
    /// The message ID (`msg_…`): the same on every copy, so consumers can deduplicate.
    pub id: String,
    pub event_type: String,
    /// When the message was published.
    #[schema(format = DateTime)]
    pub timestamp: String,
    #[schema(value_type = Object)]
    pub payload: Box<RawValue>,
}

/// **(herald)** A page of a polling endpoint, in publish order. Signed like a webhook: the
/// `webhook-*` headers (or the endpoint's `signatureScheme`'s) sign this body.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct PollOut {
    pub data: Vec<PolledEventOut>,
    /// Where the next poll starts; passing it acknowledges every event handed out up to here.
    /// Never null.
    pub iterator: String,
    /// No more held events after this page (for now).
    pub done: bool,
}

/// **(herald)** A token that may only poll this endpoint; `token` is shown this once.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct PollTokenOut {
    /// Names the token for `list_poll_tokens` and `delete_poll_token`; not a secret.
    pub id: String,
    pub token: String,
    #[schema(format = DateTime)]
    pub created_at: String,
}

/// **(herald)** A poll-only token of an endpoint, without its secret (only a hash is kept).
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct PollTokenInfoOut {
    pub id: String,
    #[schema(format = DateTime)]
    pub created_at: String,
}

/// **(herald)** The poll-only tokens of an endpoint, oldest first (at most
/// [`crate::routes::pull::MAX_POLL_TOKENS`] exist).
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct PollTokenListOut {
    pub data: Vec<PollTokenInfoOut>,
}

/// **(herald)** `batch` of an HTTP endpoint: up to `maxEvents` deliveries in one request (a
/// JSON array of `{id, eventType, timestamp, payload}`), waiting at most `maxWaitMs` for a
/// batch to fill.
#[derive(Debug, Clone, Copy, Deserialize, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct BatchIn {
    /// 1–1000.
    #[schema(minimum = 1, maximum = 1000)]
    pub max_events: i64,
    /// 0–60000 (default 0: send what is due at once).
    #[schema(minimum = 0, maximum = 60000)]
    #[serde(default)]
    pub max_wait_ms: i64,
}

impl BatchIn {
    /// The option as stored, or what is wrong with it (for a 422 on field `batch`).
    pub fn to_options(self, url: &str) -> Result<BatchOptions, String> {
        if is_poll_url(url) {
            return Err("batch applies to HTTP endpoints only".into());
        }
        let ok = |n: i64, max: u32| u32::try_from(n).ok().filter(|n| *n <= max);
        let b = BatchOptions {
            max_events: ok(self.max_events, BatchOptions::MAX_EVENTS).unwrap_or(0),
            max_wait_ms: ok(self.max_wait_ms, BatchOptions::MAX_WAIT_MS).unwrap_or(u32::MAX),
        };
        match b.problem() {
            Some(p) => Err(p.to_string()),
            None => Ok(b),
        }
    }

    pub fn from_options(b: &BatchOptions) -> Self {
        Self {
            max_events: b.max_events.into(),
            max_wait_ms: b.max_wait_ms.into(),
        }
    }
}
