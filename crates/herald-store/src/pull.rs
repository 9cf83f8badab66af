//! What the polling-endpoint role ([`crate::PullStore`]) takes and answers, and the attempt
//! records an acknowledgement writes — the same on both backends.
//!
//! A polling endpoint (`url` `poll:`) is never due: the migrations that add this role install
//! a trigger that keeps its `due_at` NULL, so the claim never visits it and its deliveries stay
//! `pending` until a consumer acknowledges them. A page stamps the deliveries it hands out
//! (`lease_owner` = [`SERVED`]); an acknowledgement turns only stamped deliveries at or before
//! the consumer's position into `success`. So a delivery that committed late with a lower ID
//! (possible on PostgreSQL, where IDs are taken before commit) is never acknowledged unseen: it
//! is still pending and the next page hands it out. This module holds no SQL.

use herald_core::ids::{AppId, AttemptId, EndpointId, MessageId, TokenId};
use herald_core::model::{Attempt, DeliveryStatus, TriggerType};
use herald_core::pull::POLL_URL;
use herald_core::Millis;

/// The `lease_owner` of a held delivery a page has handed out (no worker ever holds a lease
/// of a polling endpoint, so the column is free for this mark).
pub(crate) const SERVED: &str = "poll:served";

/// One poll of a polling endpoint.
#[derive(Clone, Debug)]
pub struct PollRequest {
    pub app_id: AppId,
    pub endpoint_id: EndpointId,
    /// Acknowledge the handed-out deliveries up to this position (the iterator's).
    pub ack_upto: i64,
    /// Only messages created at or after this time.
    pub since: Millis,
    /// Most events to answer (1–1000; the API checks).
    pub limit: usize,
    pub now: Millis,
}

/// One held event as a page answers it.
#[derive(Clone, Debug, PartialEq)]
pub struct PolledEvent {
    /// The delivery's position (what the next iterator acknowledges up to).
    pub position: i64,
    pub msg_id: MessageId,
    pub event_type: String,
    pub created_at: Millis,
    /// The payload's JSON text; `None` once expunged or purged.
    pub payload: Option<String>,
}

/// A page of a polling endpoint.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct PollPage {
    pub events: Vec<PolledEvent>,
    /// More held events wait after this page.
    pub has_more: bool,
    /// How many deliveries this poll acknowledged.
    pub acknowledged: u64,
}

/// A token that may only poll one endpoint (stored hashed like every API token).
#[derive(Clone, Debug, PartialEq)]
pub struct PollToken {
    pub id: TokenId,
    pub app_id: AppId,
    pub endpoint_id: EndpointId,
    pub created_at: Millis,
}

/// An acknowledged delivery: `(delivery id, message id)`.
pub(crate) type Acked = (i64, String);

/// The attempt record of an acknowledged delivery: a success without an HTTP request.
pub(crate) fn ack_attempt(req: &PollRequest, (delivery_id, msg_id): &Acked) -> Attempt {
    Attempt {
        id: AttemptId::generate(),
        msg_id: MessageId(msg_id.clone()),
        endpoint_id: req.endpoint_id.clone(),
        app_id: req.app_id.clone(),
        delivery_id: *delivery_id,
        url: POLL_URL.to_string(),
        response: "acknowledged by the consumer's poll".to_string(),
        response_status_code: 200,
        response_duration_ms: 0,
        status: DeliveryStatus::Success,
        trigger_type: TriggerType::Scheduled,
        error: None,
        created_at: req.now,
    }
}
