//! Svix-shaped request and response bodies of applications, endpoints, event types, messages,
//! attempts, tokens and health (`XxxIn`, `XxxPatch`, `XxxOut`), and the field checks that turn
//! raw input into domain values.
//!
//! Field names are camelCase as the Svix SDKs send and read them. Herald-only fields are
//! optional on the way in and additive on the way out, so they never break a Svix client. Only
//! shapes and checks live here: nothing is looked up.

use std::collections::BTreeMap;

use herald_core::destination::redact;
use herald_core::model::{
    Application, Attempt, Delivery, Endpoint, EventType, Message, Metadata, Ordering,
};
use herald_core::signing::SignatureScheme;
use herald_core::Millis;
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;
use utoipa::ToSchema;

use crate::dto::common::{double, ts, valid_uid, Checks};
use crate::dto::schemas;

// ---- applications ---------------------------------------------------------------------------

#[derive(Clone, Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ApplicationIn {
    pub name: String,
    pub uid: Option<String>,
    #[serde(default, alias = "rateLimit")]
    pub throttle_rate: Option<i64>,
    #[schema(value_type = Option<BTreeMap<String, String>>)]
    pub metadata: Option<Metadata>,
}

impl ApplicationIn {
    pub fn check(&self, c: &mut Checks) {
        c.name("name", &self.name);
        c.uid("uid", self.uid.as_deref());
        c.rate("throttleRate", self.throttle_rate);
    }
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ApplicationPatch {
    pub name: Option<String>,
    #[serde(default, deserialize_with = "double")]
    pub uid: Option<Option<String>>,
    #[serde(default, alias = "rateLimit", deserialize_with = "double")]
    pub throttle_rate: Option<Option<i64>>,
    /// `null` clears the metadata, as on endpoints.
    #[serde(default, deserialize_with = "double")]
    #[schema(value_type = Option<Option<BTreeMap<String, String>>>)]
    pub metadata: Option<Option<Metadata>>,
}

#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ApplicationOut {
    pub id: String,
    pub uid: Option<String>,
    pub name: String,
    pub throttle_rate: Option<u32>,
    pub rate_limit: Option<u32>,
    #[schema(value_type = BTreeMap<String, String>)]
    pub metadata: Metadata,
    #[schema(format = DateTime)]
    pub created_at: String,
    #[schema(format = DateTime)]
    pub updated_at: String,
}

impl From<&Application> for ApplicationOut {
    fn from(a: &Application) -> Self {
        Self {
            id: a.id.0.clone(),
            uid: a.uid.clone(),
            name: a.name.clone(),
            throttle_rate: a.throttle_rate,
            rate_limit: a.throttle_rate,
            metadata: a.metadata.clone(),
            created_at: ts(a.created_at),
            updated_at: ts(a.updated_at),
        }
    }
}

// ---- endpoints ------------------------------------------------------------------------------

/// Endpoint body for POST and PUT.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct EndpointIn {
    /// Where deliveries go: an `http`/`https` URL, or a message broker when the operator
    /// enabled its scheme in `destination_schemes`: `amqp`/`amqps` (RabbitMQ,
    /// `?exchange=…&routingKey=…`), `redis`/`rediss` (a stream, `?stream=…&maxLen=…`) or `nats`
    /// (JetStream, `?subject=…`). Credentials in a broker URL are stored encrypted and answered
    /// as `***`; sending `***` back keeps the stored ones.
    pub url: String,
    pub description: Option<String>,
    pub uid: Option<String>,
    pub disabled: Option<bool>,
    #[serde(default, alias = "filterTypes")]
    pub event_types: Option<Vec<String>>,
    pub channels: Option<Vec<String>>,
    pub secret: Option<String>,
    #[serde(default, alias = "rateLimit")]
    pub throttle_rate: Option<i64>,
    #[schema(value_type = Option<BTreeMap<String, String>>)]
    pub metadata: Option<Metadata>,
    pub headers: Option<BTreeMap<String, String>>,
    pub retry_schedule: Option<Vec<u64>>,
    pub permanent_statuses: Option<Vec<u16>>,
    #[schema(schema_with = schemas::ordering_nullable)]
    pub ordering: Option<Ordering>,
    pub max_concurrency: Option<i64>,
    #[schema(schema_with = schemas::signature_scheme_nullable)]
    pub signature_scheme: Option<SignatureScheme>,
    pub tls: Option<crate::dto::TlsIn>,
    pub encryption: Option<crate::dto::EncryptionIn>,
    pub batch: Option<super::BatchIn>,
}

/// Endpoint PATCH: absent = unchanged, `null` = cleared.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct EndpointPatch {
    /// As in the endpoint body: `http`/`https`, or an enabled broker scheme (`amqp`,
    /// `amqps`, `redis`, `rediss`, `nats`).
    pub url: Option<String>,
    #[serde(default, deserialize_with = "double")]
    pub description: Option<Option<String>>,
    #[serde(default, deserialize_with = "double")]
    pub uid: Option<Option<String>>,
    pub disabled: Option<bool>,
    #[serde(default, alias = "filterTypes", deserialize_with = "double")]
    pub event_types: Option<Option<Vec<String>>>,
    #[serde(default, deserialize_with = "double")]
    pub channels: Option<Option<Vec<String>>>,
    pub secret: Option<String>,
    #[serde(default, alias = "rateLimit", deserialize_with = "double")]
    pub throttle_rate: Option<Option<i64>>,
    #[serde(default, deserialize_with = "double")]
    #[schema(value_type = Option<Option<BTreeMap<String, String>>>)]
    pub metadata: Option<Option<Metadata>>,
    #[serde(default, deserialize_with = "double")]
    pub retry_schedule: Option<Option<Vec<u64>>>,
    #[serde(default, deserialize_with = "double")]
    pub permanent_statuses: Option<Option<Vec<u16>>>,
    #[serde(default, deserialize_with = "double")]
    #[schema(schema_with = schemas::ordering_nullable)]
    pub ordering: Option<Option<Ordering>>,
    #[serde(default, deserialize_with = "double")]
    pub max_concurrency: Option<Option<i64>>,
    #[serde(default, deserialize_with = "double")]
    #[schema(schema_with = schemas::signature_scheme_nullable)]
    pub signature_scheme: Option<Option<SignatureScheme>>,
    #[serde(default, deserialize_with = "double")]
    pub tls: Option<Option<crate::dto::TlsIn>>,
    #[serde(default, deserialize_with = "double")]
    pub encryption: Option<Option<crate::dto::EncryptionIn>>,
    #[serde(default, deserialize_with = "double")]
    pub batch: Option<Option<super::BatchIn>>,
}

pub fn check_list(c: &mut Checks, field: &str, v: Option<&Vec<String>>) {
    if let Some(list) = v {
        if list.len() > 1000 {
            c.fail(field, "at most 1000 entries");
        }
        if list.iter().any(|s| !valid_uid(s)) {
            c.fail(
                field,
                "entries must match ^[a-zA-Z0-9\\-_.]+$ and be 1-256 characters",
            );
        }
    }
}

pub fn check_endpoint_extras(
    c: &mut Checks,
    retry: Option<&Vec<u64>>,
    permanent: Option<&Vec<u16>>,
    max_conc: Option<i64>,
) {
    if let Some(r) = retry {
        if r.len() > 50 {
            c.fail("retrySchedule", "at most 50 entries");
        }
        if r.iter().any(|s| *s > 7 * 86_400) {
            c.fail(
                "retrySchedule",
                "each delay must be at most 7 days (604800 s)",
            );
        }
    }
    if let Some(p) = permanent {
        if p.iter()
            .any(|s| !(100..=599).contains(s) || (200..300).contains(s))
        {
            c.fail(
                "permanentStatuses",
                "entries must be non-2xx HTTP status codes",
            );
        }
    }
    if let Some(m) = max_conc {
        if !(1..=1000).contains(&m) {
            c.fail("maxConcurrency", "must be between 1 and 1000");
        }
    }
}

pub fn check_headers(c: &mut Checks, field: &str, h: &BTreeMap<String, String>) {
    for (k, v) in h {
        if axum::http::HeaderName::try_from(k.as_str()).is_err() {
            c.fail(field, format!("`{k}` is not a valid header name"));
        }
        if axum::http::HeaderValue::try_from(v.as_str()).is_err() {
            c.fail(field, format!("value of `{k}` is not a valid header value"));
        }
        let lower = k.to_ascii_lowercase();
        if RESERVED_HEADERS.contains(&lower.as_str())
            || lower.starts_with("webhook-")
            || lower.starts_with("svix-")
        {
            c.fail(
                field,
                format!("`{k}` is set by Herald and cannot be overridden"),
            );
        }
    }
}

const RESERVED_HEADERS: &[&str] = &[
    "content-type",
    "content-length",
    "host",
    "user-agent",
    "transfer-encoding",
    "connection",
    "x-hub-signature-256",
    "x-webhook-id",
    "x-webhook-timestamp",
];

#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct EndpointOut {
    pub id: String,
    pub uid: Option<String>,
    /// `http`/`https`, or a broker (`amqp`, `amqps`, `redis`, `rediss`, `nats`); a broker URL's
    /// credentials are shown as `***`.
    pub url: String,
    pub description: String,
    pub disabled: bool,
    pub event_types: Option<Vec<String>>,
    pub filter_types: Option<Vec<String>>,
    pub channels: Option<Vec<String>>,
    pub throttle_rate: Option<u32>,
    pub rate_limit: Option<u32>,
    #[schema(value_type = BTreeMap<String, String>)]
    pub metadata: Metadata,
    #[schema(format = DateTime)]
    pub created_at: String,
    #[schema(format = DateTime)]
    pub updated_at: String,
    pub version: u32,
    pub retry_schedule: Option<Vec<u64>>,
    pub permanent_statuses: Vec<u16>,
    #[schema(schema_with = schemas::ordering)]
    pub ordering: Ordering,
    pub max_concurrency: Option<u32>,
    #[schema(schema_with = schemas::signature_scheme)]
    pub signature_scheme: SignatureScheme,
    #[schema(schema_with = schemas::endpoint_state)]
    pub state: &'static str,
    #[schema(format = DateTime)]
    pub paused_until: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tls: Option<crate::dto::TlsOut>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub encryption: Option<crate::dto::EncryptionOut>,
    pub batch: Option<super::BatchIn>,
}

impl EndpointOut {
    pub fn new(e: &Endpoint, now: Millis) -> Self {
        Self {
            id: e.id.0.clone(),
            uid: e.uid.clone(),
            url: redact(&e.url).into_owned(),
            description: e.description.clone(),
            disabled: e.disabled,
            event_types: e.event_types.clone(),
            filter_types: e.event_types.clone(),
            channels: e.channels.clone(),
            throttle_rate: e.throttle_rate,
            rate_limit: e.throttle_rate,
            metadata: e.metadata.clone(),
            created_at: ts(e.created_at),
            updated_at: ts(e.updated_at),
            version: 1,
            retry_schedule: e.retry_schedule.clone(),
            permanent_statuses: e.permanent_statuses.clone(),
            ordering: e.ordering,
            max_concurrency: e.max_concurrency,
            signature_scheme: e.signature_scheme,
            state: e.state(now),
            paused_until: e.paused_until.filter(|p| *p > now).map(ts),
            tls: crate::dto::TlsOut::of(&e.options),
            encryption: crate::dto::EncryptionIn::of(&e.options),
            batch: e.options.batch.as_ref().map(super::BatchIn::from_options),
        }
    }
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct SecretRotateIn {
    pub key: Option<String>,
    pub grace_period_seconds: Option<i64>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct HeadersIn {
    pub headers: BTreeMap<String, String>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct HeadersPatchIn {
    #[serde(default)]
    pub headers: BTreeMap<String, String>,
    #[serde(default)]
    pub delete_headers: Vec<String>,
}

#[derive(Debug, Deserialize, ToSchema)]
pub struct RecoverIn {
    pub since: String,
    pub until: Option<String>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct SendExampleIn {
    pub event_type: String,
    pub example_index: Option<usize>,
}

// ---- event types ----------------------------------------------------------------------------

#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct EventTypeIn {
    pub name: String,
    #[serde(flatten)]
    pub fields: EventTypeUpdate,
}

/// PUT on an event type: the name comes from the path.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct EventTypeUpdate {
    #[serde(default)]
    pub description: String,
    pub archived: Option<bool>,
    pub deprecated: Option<bool>,
    pub schemas: Option<serde_json::Value>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct EventTypePatch {
    pub description: Option<String>,
    pub archived: Option<bool>,
    pub deprecated: Option<bool>,
    #[serde(default, deserialize_with = "double")]
    pub schemas: Option<Option<serde_json::Value>>,
}

#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct EventTypeOut {
    pub name: String,
    pub description: String,
    pub archived: bool,
    pub deprecated: bool,
    pub schemas: Option<serde_json::Value>,
    #[schema(format = DateTime)]
    pub created_at: String,
    #[schema(format = DateTime)]
    pub updated_at: String,
}

impl From<&EventType> for EventTypeOut {
    fn from(e: &EventType) -> Self {
        Self {
            name: e.name.clone(),
            description: e.description.clone(),
            archived: e.archived,
            deprecated: e.deprecated,
            schemas: e.schemas.clone(),
            created_at: ts(e.created_at),
            updated_at: ts(e.updated_at),
        }
    }
}

// ---- messages -------------------------------------------------------------------------------

#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct MessageIn {
    pub event_type: String,
    /// Kept as the exact JSON text the client sent.
    #[schema(value_type = Object)]
    pub payload: Box<RawValue>,
    pub event_id: Option<String>,
    pub channels: Option<Vec<String>>,
    /// Days to keep the payload (Svix field).
    pub payload_retention_period: Option<i64>,
    /// Hours to keep the payload (Svix field; wins over the period when both are given).
    pub payload_retention_hours: Option<i64>,
    pub application: Option<ApplicationIn>,
    /// **(herald)** messages with the same key reach a `fifo` endpoint in publish order.
    pub ordering_key: Option<String>,
}

/// The payload as served: the stored JSON text, `{}` without content, or a marker once purged.
pub fn payload_json(m: &Message, with_content: bool) -> Box<RawValue> {
    let text = match (&m.payload, with_content) {
        (_, false) => "{}".to_string(),
        (Some(p), true) => p.clone(),
        (None, true) => r#"{"expired":true}"#.to_string(),
    };
    RawValue::from_string(text)
        .unwrap_or_else(|_| RawValue::from_string("{}".into()).expect("static"))
}

#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct MessageOut {
    pub id: String,
    pub event_id: Option<String>,
    pub event_type: String,
    #[schema(value_type = Object)]
    pub payload: Box<RawValue>,
    pub channels: Option<Vec<String>>,
    #[schema(format = DateTime)]
    pub timestamp: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ordering_key: Option<String>,
}

impl MessageOut {
    pub fn new(m: &Message, with_content: bool) -> Self {
        Self {
            id: m.id.0.clone(),
            event_id: m.event_id.clone(),
            event_type: m.event_type.clone(),
            payload: payload_json(m, with_content),
            channels: m.channels.clone(),
            timestamp: ts(m.created_at),
            ordering_key: m.ordering_key.clone(),
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct AttemptOut {
    pub id: String,
    pub msg_id: String,
    pub endpoint_id: String,
    pub url: String,
    pub response: String,
    pub response_status_code: u16,
    pub response_duration_ms: i64,
    pub status: i64,
    #[schema(schema_with = schemas::status_text)]
    pub status_text: &'static str,
    pub trigger_type: i64,
    #[schema(format = DateTime)]
    pub timestamp: String,
    pub error: Option<String>,
}

impl From<&Attempt> for AttemptOut {
    fn from(a: &Attempt) -> Self {
        Self {
            id: a.id.0.clone(),
            msg_id: a.msg_id.0.clone(),
            endpoint_id: a.endpoint_id.0.clone(),
            url: redact(&a.url).into_owned(),
            response: a.response.clone(),
            response_status_code: a.response_status_code,
            response_duration_ms: a.response_duration_ms,
            status: a.status as i64,
            status_text: a.status.text(),
            trigger_type: a.trigger_type as i64,
            timestamp: ts(a.created_at),
            error: a.error.clone(),
        }
    }
}

/// A message's delivery status at one endpoint (`GET …/msg/{id}/endpoint`).
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct MessageEndpointOut {
    #[serde(flatten)]
    pub endpoint: EndpointOut,
    pub status: i64,
    #[schema(schema_with = schemas::status_text)]
    pub status_text: &'static str,
    #[schema(format = DateTime)]
    pub next_attempt: Option<String>,
}

/// An endpoint's delivery status of one message (`GET …/endpoint/{id}/msg`).
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct EndpointMessageOut {
    #[serde(flatten)]
    pub message: MessageOut,
    pub status: i64,
    #[schema(schema_with = schemas::status_text)]
    pub status_text: &'static str,
    #[schema(format = DateTime)]
    pub next_attempt: Option<String>,
}

pub fn delivery_fields(d: &Delivery) -> (i64, &'static str, Option<String>) {
    (d.status as i64, d.status.text(), d.next_attempt_at.map(ts))
}

// ---- small answers --------------------------------------------------------------------------

/// An endpoint's current signing secret (`GET …/secret`), or the new one after a rotation.
#[derive(Debug, Serialize, ToSchema)]
pub struct SecretOut {
    /// `whsec_` followed by the base64 key.
    pub key: String,
}

/// Custom headers of an endpoint; sensitive ones are named, never shown.
#[derive(Debug, Serialize, ToSchema)]
pub struct HeadersOut {
    pub headers: BTreeMap<String, String>,
    pub sensitive: Vec<String>,
}

/// Delivery counts of an endpoint by status.
#[derive(Debug, Serialize, ToSchema)]
pub struct EndpointStatsOut {
    pub success: u64,
    pub pending: u64,
    pub sending: u64,
    pub fail: u64,
    pub canceled: u64,
}

/// The (already finished) background task of `recover`.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct RecoverOut {
    /// `qtask_` plus a ULID.
    pub id: String,
    /// Always `finished`: the re-queue is one transaction.
    pub status: String,
    /// Always `endpoint.recover`.
    pub task: String,
    #[schema(format = DateTime)]
    pub updated_at: String,
    pub data: RecoverData,
}

#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct RecoverData {
    pub messages_sent: u64,
}

/// An empty JSON object (`{}`).
#[derive(Debug, Default, Serialize, ToSchema)]
pub struct EmptyOut {}

/// A token scoped to one application, and the dashboard URL that carries it.
#[derive(Debug, Serialize, ToSchema)]
pub struct AppPortalAccessOut {
    pub url: String,
    pub token: String,
}

/// Body of `POST /api/v1/auth/app-portal-access/{app_id}` (optional; Svix's shape). Unknown
/// fields are refused: a misspelt restriction must never yield a token with full rights.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct AppPortalAccessIn {
    /// Creates the application (with the path segment as its `uid`) when it does not exist.
    pub application: Option<ApplicationIn>,
    /// Only `false` (or absent) is supported: read-only portal tokens are refused with 422.
    pub read_only: Option<bool>,
    /// Only absent is supported: narrower tokens are refused with 422.
    pub capabilities: Option<Vec<String>>,
    /// Accepted and ignored (no feature flags yet).
    pub feature_flags: Option<Vec<String>>,
    /// Only absent is supported: portal tokens last until deleted (`DELETE /api/v1/token/{id}`).
    pub expiry: Option<i64>,
    /// Accepted and ignored.
    pub session_id: Option<String>,
}

/// Body of `POST /api/v1/token`. Unknown fields are refused: `{"app": …}` for `appId` once
/// minted an unscoped (admin) token.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct TokenIn {
    /// 1–256 characters.
    pub name: String,
    /// Scope the token to this application (ID or uid); unscoped tokens have admin rights.
    pub app_id: Option<String>,
}

/// An API token as listed (its secret is never shown again).
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct TokenOut {
    pub id: String,
    pub name: String,
    pub app_id: Option<String>,
    #[schema(format = DateTime)]
    pub created_at: String,
}

/// A newly created token: the listing fields plus the secret, shown this once.
#[derive(Debug, Serialize, ToSchema)]
pub struct TokenCreatedOut {
    #[serde(flatten)]
    pub token: TokenOut,
    /// The bearer token (`hk_…`).
    #[serde(rename = "token")]
    pub secret: String,
}

/// `GET /api/v1/health`.
#[derive(Debug, Serialize, ToSchema)]
pub struct HealthOut {
    /// `ok`, `degraded` (PostgreSQL unreachable, the outage spool accepts: 200) or
    /// `unavailable` (503).
    pub status: String,
    /// `ok`, `degraded` (answers, but the last write failed: see `detail`), `spooling`
    /// (PostgreSQL unreachable, writes go to the outage spool) or `error`.
    pub storage: String,
    /// `ok`, `stalled` or `not_running` (a process without workers).
    pub workers: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub queue: Option<QueueOut>,
    /// Why storage is unavailable.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct QueueOut {
    /// Deliveries due now.
    pub due: u64,
    /// Deliveries scheduled for later.
    pub scheduled: u64,
    /// Age of the oldest due delivery; `null` when none is due.
    pub oldest_due_seconds: Option<f64>,
}

/// `GET /healthz`: the process answers.
#[derive(Debug, Serialize, ToSchema)]
pub struct LivenessOut {
    /// Always `ok`.
    pub status: String,
}
