//! The bodies of polling endpoints (`url` `poll:`): a page of held events and a poll-only
//! token. Validation of the poll's query lives with the route; nothing here looks anything up.

use serde::Serialize;
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

/// **(herald)** A token that may only poll this endpoint; shown this once.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct PollTokenOut {
    pub token: String,
}
