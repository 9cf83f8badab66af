//! The domain records Herald stores and serves: applications, endpoints, event types,
//! messages, deliveries and attempts.
//!
//! These are storage-neutral: the store maps them to rows and the API maps them to Svix-shaped
//! JSON. They carry no behaviour beyond small derived facts (e.g. which secrets are valid now).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::breaker::BreakerState;
use crate::endpoint_options::EndpointOptions;
use crate::ids::{AppId, AttemptId, EndpointId, InboundRequestId, MessageId, SourceId};
use crate::signing::{EndpointSecret, SignatureScheme};
use crate::Millis;

pub type Metadata = BTreeMap<String, String>;

#[derive(Clone, Debug, PartialEq)]
pub struct Application {
    pub id: AppId,
    pub uid: Option<String>,
    pub name: String,
    pub throttle_rate: Option<u32>,
    pub metadata: Metadata,
    pub created_at: Millis,
    pub updated_at: Millis,
}

/// Delivery ordering of an endpoint.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Ordering {
    #[default]
    None,
    Fifo,
}

/// One signing secret of an endpoint. The newest has no expiry; older ones stay valid until
/// `expires_at` (rotation grace).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct StoredSecret {
    pub key: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expires_at: Option<Millis>,
}

impl StoredSecret {
    /// The newest secret: no expiry until a rotation replaces it.
    pub fn current(key: impl Into<String>) -> Self {
        Self {
            key: key.into(),
            expires_at: None,
        }
    }
}

#[derive(Clone, Debug, PartialEq)]
pub struct Endpoint {
    pub id: EndpointId,
    pub app_id: AppId,
    pub uid: Option<String>,
    pub url: String,
    pub description: String,
    pub disabled: bool,
    pub event_types: Option<Vec<String>>,
    pub channels: Option<Vec<String>>,
    pub throttle_rate: Option<u32>,
    pub metadata: Metadata,
    pub headers: BTreeMap<String, String>,
    pub retry_schedule: Option<Vec<u64>>,
    pub permanent_statuses: Vec<u16>,
    pub ordering: Ordering,
    pub max_concurrency: Option<u32>,
    pub signature_scheme: SignatureScheme,
    /// Newest first.
    pub secrets: Vec<StoredSecret>,
    /// Set by 429 / 503 + `Retry-After`: nothing is sent before this time.
    pub paused_until: Option<Millis>,
    /// The circuit breaker as last recorded. Read-only outside the store: the API shows it,
    /// only attempts (and re-enabling) change it.
    pub breaker: BreakerState,
    /// Routing, transformation, transport and batching options (one stored document).
    pub options: EndpointOptions,
    pub created_at: Millis,
    pub updated_at: Millis,
}

/// Whether an endpoint filtering on `event_types` and `want_channels` (either absent or empty:
/// no filter) subscribes to a message of `event_type` published to `channels`.
pub fn subscribed(
    event_types: Option<&[String]>,
    want_channels: Option<&[String]>,
    event_type: &str,
    channels: Option<&[String]>,
) -> bool {
    if let Some(types) = event_types {
        if !types.is_empty() && !types.iter().any(|t| t == event_type) {
            return false;
        }
    }
    match (want_channels, channels) {
        (Some([]), _) => true,
        (Some(want), Some(have)) => want.iter().any(|c| have.contains(c)),
        (Some(_), None) => false,
        (None, _) => true,
    }
}

/// Default of `maxConcurrency`.
pub const DEFAULT_MAX_CONCURRENCY: u32 = 16;

impl Endpoint {
    /// An endpoint Herald creates for itself (the operational webhook, a `herald listen`
    /// session): every option at its default, one signing secret, enabled.
    pub fn internal(
        app_id: AppId,
        uid: String,
        url: String,
        description: String,
        secret: &EndpointSecret,
        now: Millis,
    ) -> Self {
        Self {
            id: EndpointId::generate(),
            app_id,
            uid: Some(uid),
            url,
            description,
            disabled: false,
            event_types: None,
            channels: None,
            throttle_rate: None,
            metadata: Default::default(),
            headers: Default::default(),
            retry_schedule: None,
            permanent_statuses: vec![],
            ordering: Default::default(),
            max_concurrency: None,
            signature_scheme: Default::default(),
            secrets: vec![StoredSecret::current(secret.expose())],
            paused_until: None,
            breaker: Default::default(),
            options: Default::default(),
            created_at: now,
            updated_at: now,
        }
    }

    /// Deliveries this endpoint may have in flight at once, across the cluster.
    pub fn concurrency_cap(&self) -> u32 {
        self.max_concurrency
            .unwrap_or(DEFAULT_MAX_CONCURRENCY)
            .max(1)
    }

    /// Secrets that sign requests at `now`, newest first.
    pub fn valid_secrets(&self, now: Millis) -> Vec<EndpointSecret> {
        self.secrets
            .iter()
            .filter(|s| s.expires_at.is_none_or(|e| e > now))
            .filter_map(|s| EndpointSecret::from_stored(&s.key).ok())
            .collect()
    }

    /// Whether a message of `event_type` on `channels` goes to this endpoint. An endpoint
    /// without an event-type filter takes every type; an endpoint with channels takes only
    /// messages that share at least one of them (Svix semantics).
    pub fn matches(&self, event_type: &str, channels: Option<&[String]>) -> bool {
        !self.disabled
            && subscribed(
                self.event_types.as_deref(),
                self.channels.as_deref(),
                event_type,
                channels,
            )
    }

    /// `healthy|open|half_open|paused|disabled`, most severe first.
    pub fn state(&self, now: Millis) -> &'static str {
        if self.disabled {
            "disabled"
        } else if self.breaker == BreakerState::Open {
            "open"
        } else if self.breaker == BreakerState::HalfOpen {
            "half_open"
        } else if self.paused_until.is_some_and(|p| p > now) {
            "paused"
        } else {
            "healthy"
        }
    }
}

#[derive(Clone, Debug, PartialEq)]
pub struct EventType {
    pub name: String,
    pub description: String,
    pub archived: bool,
    pub deprecated: bool,
    pub schemas: Option<serde_json::Value>,
    pub created_at: Millis,
    pub updated_at: Millis,
}

#[derive(Clone, Debug, PartialEq)]
pub struct Message {
    pub id: MessageId,
    pub app_id: AppId,
    pub event_id: Option<String>,
    pub event_type: String,
    /// The payload's JSON text exactly as published; `None` once expunged.
    pub payload: Option<String>,
    pub channels: Option<Vec<String>>,
    pub created_at: Millis,
    /// How long the payload is kept; `None` means the server's `retention_days`.
    pub retention_ms: Option<i64>,
    /// Messages with the same key reach a `fifo` endpoint one at a time, in publish order.
    pub ordering_key: Option<String>,
    /// Extra headers sent with every delivery of this message (an inbound source's
    /// `forwardHeaders`, e.g. `X-GitHub-Event`).
    pub headers: Option<BTreeMap<String, String>>,
}

/// The entry of [`Message::headers`] that marks a non-JSON inbound body. Its payload is then the
/// envelope `{"raw", "contentType"[, "encoding": "base64"]}` the message API shows, and every
/// delivery sends the original bytes with this content type instead (inbound.md: "forwards it
/// byte for byte with its original `Content-Type`"). Only the inbound gateway sets it: published
/// messages carry no headers, and configured `forwardHeaders` never pass `Content-Type` on.
pub const RAW_BODY_CONTENT_TYPE: &str = "content-type";

/// What a delivery of a message puts on the wire.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WireBody {
    pub bytes: Vec<u8>,
    /// `None` means `application/json`.
    pub content_type: Option<String>,
}

impl Message {
    /// The body deliveries send (and sign): the payload's JSON text as stored, or, for a
    /// non-JSON inbound body, the original bytes decoded from the envelope. `None` once the
    /// payload is expunged. A marker without a readable envelope falls back to the stored text
    /// rather than losing the delivery.
    pub fn wire_body(&self) -> Option<WireBody> {
        let payload = self.payload.as_deref()?;
        let raw_type = self
            .headers
            .iter()
            .flatten()
            .find(|(k, _)| k.eq_ignore_ascii_case(RAW_BODY_CONTENT_TYPE))
            .map(|(_, v)| v.clone());
        if let Some(ct) = raw_type {
            if let Some(bytes) = decode_envelope(payload) {
                return Some(WireBody {
                    bytes,
                    content_type: Some(ct),
                });
            }
        }
        Some(WireBody {
            bytes: payload.as_bytes().to_vec(),
            content_type: None,
        })
    }
}

/// The original bytes of a `{"raw", "contentType"[, "encoding"]}` envelope.
fn decode_envelope(payload: &str) -> Option<Vec<u8>> {
    use base64::Engine;
    #[derive(Deserialize)]
    struct Envelope {
        raw: String,
        #[serde(default)]
        encoding: Option<String>,
    }
    let e: Envelope = serde_json::from_str(payload).ok()?;
    match e.encoding.as_deref() {
        None => Some(e.raw.into_bytes()),
        Some("base64") => base64::engine::general_purpose::STANDARD
            .decode(e.raw.as_bytes())
            .ok(),
        Some(_) => None,
    }
}

/// An inbound source. The store keeps the configuration as the API validated it; only the
/// inbound gateway interprets it.
#[derive(Clone, Debug, PartialEq)]
pub struct Source {
    pub id: SourceId,
    pub app_id: AppId,
    pub uid: Option<String>,
    pub name: String,
    /// The `verification` object without its secrets (those are [`Self::secrets`]).
    pub verification: crate::inbound::Verification,
    /// Verification secrets, newest first; older ones valid until `expires_at` (rotation).
    /// Encrypted at rest like endpoint secrets.
    pub secrets: Vec<StoredSecret>,
    /// The rest of the configuration (`eventType`, `dedup`, `schema`, `onInvalid`,
    /// `forwardHeaders`, `rateLimit`, `ordering`, `publicUrl`).
    pub options: crate::source::SourceOptions,
    pub created_at: Millis,
    pub updated_at: Millis,
}

/// Prefix of the channel every message accepted from a source carries (`herald-source.<id>`),
/// so endpoints — and `herald listen --source` — can take one source's messages only.
pub const SOURCE_CHANNEL_PREFIX: &str = "herald-source.";

/// The channel of the messages of source `source_id` (see [`SOURCE_CHANNEL_PREFIX`]).
pub fn source_channel(source_id: &str) -> String {
    format!("{SOURCE_CHANNEL_PREFIX}{source_id}")
}

impl Source {
    /// The channel of this source's messages (see [`SOURCE_CHANNEL_PREFIX`]).
    pub fn channel(&self) -> String {
        source_channel(self.id.as_str())
    }

    /// Secrets valid at `now`, newest first.
    pub fn valid_secrets(&self, now: Millis) -> Vec<String> {
        self.secrets
            .iter()
            .filter(|s| s.expires_at.is_none_or(|e| e > now))
            .map(|s| s.key.clone())
            .collect()
    }
}

/// What happened to one inbound request.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum InboundStatus {
    Accepted,
    Duplicate,
    Rejected,
    Quarantined,
    Released,
    Handshake,
    /// Its sequence was not above the last one accepted for its resource (source `ordering`).
    Stale,
    /// Waiting for a missing earlier sequence of its resource (source `ordering`).
    Held,
}

impl InboundStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Accepted => "accepted",
            Self::Duplicate => "duplicate",
            Self::Rejected => "rejected",
            Self::Quarantined => "quarantined",
            Self::Released => "released",
            Self::Handshake => "handshake",
            Self::Stale => "stale",
            Self::Held => "held",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "accepted" => Self::Accepted,
            "duplicate" => Self::Duplicate,
            "rejected" => Self::Rejected,
            "quarantined" => Self::Quarantined,
            "released" => Self::Released,
            "handshake" => Self::Handshake,
            "stale" => Self::Stale,
            "held" => Self::Held,
            _ => return None,
        })
    }
}

/// One request a source received, as logged.
#[derive(Clone, Debug, PartialEq)]
pub struct InboundRequest {
    pub id: InboundRequestId,
    pub source_id: SourceId,
    pub app_id: AppId,
    pub status: InboundStatus,
    /// Why it was rejected or quarantined (never a secret).
    pub reason: Option<String>,
    /// The message it became (or, for a duplicate, the first message).
    pub msg_id: Option<MessageId>,
    /// Request headers without credentials or signatures.
    pub headers: BTreeMap<String, String>,
    /// The body, kept for quarantined requests (to release them later).
    pub body: Option<String>,
    /// The event type it was given (kept to release a quarantined request).
    pub event_type: Option<String>,
    pub created_at: Millis,
}

crate::codes::coded_enum! {
    /// Status codes of deliveries and attempts, as the Svix API numbers them.
    #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
    pub enum DeliveryStatus {
        Success = 0 => "success",
        Pending = 1 => "pending",
        Fail = 2 => "fail",
        Sending = 3 => "sending",
    }
    else Pending;
    /// The label of the API's `status` text.
    label text;
}

/// The pair (message, endpoint) and where it stands.
#[derive(Clone, Debug, PartialEq)]
pub struct Delivery {
    pub id: i64,
    pub msg_id: MessageId,
    pub endpoint_id: EndpointId,
    pub app_id: AppId,
    pub status: DeliveryStatus,
    /// HTTP attempts made so far.
    pub attempts: u32,
    /// Attempts that consumed a retry of the schedule (pauses do not).
    pub failures: u32,
    pub next_attempt_at: Option<Millis>,
    pub updated_at: Millis,
}

/// What caused an attempt.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TriggerType {
    Scheduled = 0,
    Manual = 1,
}

#[derive(Clone, Debug, PartialEq)]
pub struct Attempt {
    pub id: AttemptId,
    pub msg_id: MessageId,
    pub endpoint_id: EndpointId,
    pub app_id: AppId,
    pub delivery_id: i64,
    pub url: String,
    /// First 16 KiB of the response body, or the transport error text (`code: detail`).
    pub response: String,
    /// 0 when no HTTP response was received.
    pub response_status_code: u16,
    pub response_duration_ms: i64,
    pub status: DeliveryStatus,
    pub trigger_type: TriggerType,
    /// Stable error code (`timeout`, `blocked_address`, …), `None` for HTTP responses.
    pub error: Option<String>,
    pub created_at: Millis,
}

/// Delivery counts of one endpoint.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct EndpointStats {
    pub success: u64,
    pub pending: u64,
    pub sending: u64,
    pub fail: u64,
}

/// Header names whose values are secrets: redacted on read and never logged.
pub fn is_sensitive_header(name: &str) -> bool {
    let n = name.to_ascii_lowercase();
    n == "authorization"
        || n == "proxy-authorization"
        || n == "cookie"
        || ["token", "secret", "password", "api-key", "apikey", "auth"]
            .iter()
            .any(|w| n.contains(w))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn msg(payload: &str, ct: Option<&str>) -> Message {
        Message {
            id: MessageId::generate(),
            app_id: AppId::generate(),
            event_id: None,
            event_type: "t".into(),
            payload: Some(payload.into()),
            channels: None,
            created_at: 0,
            retention_ms: None,
            ordering_key: None,
            headers: ct.map(|c| BTreeMap::from([(RAW_BODY_CONTENT_TYPE.to_string(), c.into())])),
        }
    }

    #[test]
    fn wire_body_is_the_payload_unless_marked_raw() {
        let m = msg(r#"{"raw":"a=1","contentType":"x"}"#, None);
        let w = m.wire_body().unwrap();
        assert_eq!(w.bytes, br#"{"raw":"a=1","contentType":"x"}"#);
        assert_eq!(w.content_type, None);
    }

    #[test]
    fn wire_body_decodes_text_and_base64_envelopes() {
        let form = "application/x-www-form-urlencoded";
        let m = msg(r#"{"raw":"a=1&b=%20","contentType":"ignored"}"#, Some(form));
        let w = m.wire_body().unwrap();
        assert_eq!(w.bytes, b"a=1&b=%20");
        assert_eq!(w.content_type.as_deref(), Some(form));

        let m = msg(
            r#"{"raw":"/wA=","contentType":"application/octet-stream","encoding":"base64"}"#,
            Some("application/octet-stream"),
        );
        assert_eq!(m.wire_body().unwrap().bytes, vec![0xff, 0x00]);
    }

    #[test]
    fn unreadable_envelope_falls_back_to_the_stored_text() {
        let m = msg("not an envelope", Some("text/plain"));
        let w = m.wire_body().unwrap();
        assert_eq!(w.bytes, b"not an envelope");
        assert_eq!(w.content_type, None);
        let mut expunged = msg("{}", None);
        expunged.payload = None;
        assert!(expunged.wire_body().is_none());
    }

    fn ep() -> Endpoint {
        let mut e = Endpoint::internal(
            AppId::generate(),
            String::new(),
            "https://example.com".into(),
            String::new(),
            &crate::signing::EndpointSecret::generate(),
            0,
        );
        e.uid = None;
        e.secrets.clear();
        e
    }

    #[test]
    fn fan_out_filters() {
        let mut e = ep();
        assert!(e.matches("a", None));
        e.event_types = Some(vec!["a".into()]);
        assert!(e.matches("a", None));
        assert!(!e.matches("b", None));
        e.channels = Some(vec!["c1".into()]);
        assert!(
            !e.matches("a", None),
            "channel endpoint ignores channel-less messages"
        );
        assert!(e.matches("a", Some(&["c1".into(), "c2".into()])));
        assert!(!e.matches("a", Some(&["c2".into()])));
        e.disabled = true;
        assert!(!e.matches("a", Some(&["c1".into()])));
    }

    #[test]
    fn expired_secrets_stop_signing() {
        let mut e = ep();
        let a = EndpointSecret::generate();
        let b = EndpointSecret::generate();
        e.secrets = vec![
            StoredSecret {
                key: a.expose().into(),
                expires_at: None,
            },
            StoredSecret {
                key: b.expose().into(),
                expires_at: Some(100),
            },
        ];
        assert_eq!(e.valid_secrets(50).len(), 2);
        assert_eq!(e.valid_secrets(100), vec![a]);
    }

    #[test]
    fn sensitive_headers() {
        assert!(is_sensitive_header("Authorization"));
        assert!(is_sensitive_header("X-Api-Key"));
        assert!(is_sensitive_header("x-auth-token"));
        assert!(!is_sensitive_header("X-Tenant"));
    }
}
