//! Bodies of the inbound sources API and of ingestion: a source's configuration as given
//! (`SourceIn`, `SourcePatch`), as stored (`SourceOptions`) and as shown (`SourceOut`), the
//! request log, and what `POST /in/{source_id}` answers (`IngestOut`).
//!
//! Shapes only: decoding a stored source and interpreting its options is `service::sources`'
//! job, never this module's.

use herald_core::inbound::Extract;
use herald_core::model::{InboundRequest, Source};
use herald_core::now_millis;
use herald_core::ordering::OrderingRule;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::ToSchema;

use crate::dto::common::{double, ts};

pub use herald_core::source::Dedup;

// How `herald_core::source::OnInvalid` is shown and documented (no `///`: the OpenAPI
// document would change).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum OnInvalid {
    #[default]
    Quarantine,
    Reject,
}

impl From<herald_core::source::OnInvalid> for OnInvalid {
    fn from(o: herald_core::source::OnInvalid) -> Self {
        match o {
            herald_core::source::OnInvalid::Quarantine => Self::Quarantine,
            herald_core::source::OnInvalid::Reject => Self::Reject,
        }
    }
}

/// The `ordering` option as documented (the stored form is `herald_core::ordering::OrderingRule`).
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct SourceOrdering {
    /// The resource key: `{"header": name}`, `{"json": "/pointer"}` or `{"value": text}` (one
    /// sequence for the whole source).
    #[schema(value_type = Object)]
    pub key: Value,
    /// The per-resource sequence, an integer (JSON number or numeric string):
    /// `{"header": name}` or `{"json": "/pointer"}`.
    #[schema(value_type = Object)]
    pub sequence: Value,
    /// How long later events wait for a missing sequence (default 60); 0 = never wait, only
    /// drop stale events (for sequences that are not contiguous counters, e.g. timestamps).
    #[schema(minimum = 0, maximum = 86400)]
    pub gap_timeout_seconds: Option<i64>,
}

// How `Source::options` (`herald_core::source::SourceOptions`, the stored form) is shown
// and documented.
/// Everything of SourceIn but name, uid and verification: stored as `Source::options`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct SourceOptions {
    /// `{"header": …}`, `{"json": "/pointer"}` or `{"value": …}`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Object>)]
    pub event_type: Option<Extract>,
    /// `{"key": rule, "windowSeconds": N}`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Object>)]
    pub dedup: Option<Dedup>,
    /// A JSON Schema the body must satisfy.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Object>)]
    pub schema: Option<Value>,
    #[serde(default)]
    pub on_invalid: OnInvalid,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub forward_headers: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rate_limit: Option<u32>,
    /// Per-resource ordering: stale events dropped, gaps waited for (inbound.md "Ordering").
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<SourceOrdering>)]
    pub ordering: Option<OrderingRule>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub public_url: Option<String>,
    /// Reconciliation: the provider's list API polled on an interval (headers redacted).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<crate::dto::SourcePoll>)]
    pub poll: Option<herald_core::reconcile::PollConfig>,
}

impl From<herald_core::source::SourceOptions> for SourceOptions {
    fn from(o: herald_core::source::SourceOptions) -> Self {
        Self {
            event_type: o.event_type,
            dedup: o.dedup,
            schema: o.schema,
            on_invalid: o.on_invalid.into(),
            forward_headers: o.forward_headers,
            rate_limit: o.rate_limit,
            ordering: o.ordering,
            public_url: o.public_url,
            poll: o.poll.map(|p| p.redacted()),
        }
    }
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct SourceIn {
    pub name: String,
    pub uid: Option<String>,
    /// `{scheme, secrets: [...], toleranceSeconds?, …}` (inbound.md).
    #[schema(value_type = Object)]
    pub verification: Value,
    #[schema(value_type = Option<Object>)]
    pub event_type: Option<Value>,
    #[schema(value_type = Option<Object>)]
    pub dedup: Option<Value>,
    #[schema(value_type = Option<Object>)]
    pub schema: Option<Value>,
    /// `quarantine` (default) or `reject`.
    #[schema(value_type = Option<String>)]
    pub on_invalid: Option<Value>,
    /// Per-resource ordering: stale events dropped, gaps waited for.
    #[schema(value_type = Option<SourceOrdering>)]
    pub ordering: Option<Value>,
    pub forward_headers: Option<Vec<String>>,
    pub rate_limit: Option<i64>,
    pub public_url: Option<String>,
    /// Reconciliation: poll the provider's list API (destinations.md).
    #[schema(value_type = Option<crate::dto::SourcePoll>)]
    pub poll: Option<Value>,
}

/// PATCH: an absent field is unchanged, `null` clears it.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct SourcePatch {
    pub name: Option<String>,
    #[serde(default, deserialize_with = "double")]
    pub uid: Option<Option<String>>,
    /// Replaces the verification; when it carries no `secrets`, the current ones stay.
    #[schema(value_type = Option<Object>)]
    pub verification: Option<Value>,
    #[serde(default, deserialize_with = "double")]
    #[schema(value_type = Option<Object>)]
    pub event_type: Option<Option<Value>>,
    #[serde(default, deserialize_with = "double")]
    #[schema(value_type = Option<Object>)]
    pub dedup: Option<Option<Value>>,
    #[serde(default, deserialize_with = "double")]
    #[schema(value_type = Option<Object>)]
    pub schema: Option<Option<Value>>,
    #[serde(default, deserialize_with = "double")]
    #[schema(value_type = Option<String>)]
    pub on_invalid: Option<Option<Value>>,
    /// `null` turns ordering off (events already held still go on at their deadline).
    #[serde(default, deserialize_with = "double")]
    #[schema(value_type = Option<SourceOrdering>)]
    pub ordering: Option<Option<Value>>,
    #[serde(default, deserialize_with = "double")]
    pub forward_headers: Option<Option<Vec<String>>>,
    #[serde(default, deserialize_with = "double")]
    pub rate_limit: Option<Option<i64>>,
    #[serde(default, deserialize_with = "double")]
    pub public_url: Option<Option<String>>,
    /// Replaces the poll (`null` stops polling); without `headers`, the current ones stay.
    #[serde(default, deserialize_with = "double")]
    #[schema(value_type = Option<crate::dto::SourcePoll>)]
    pub poll: Option<Option<Value>>,
}

#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct SourceOut {
    pub id: String,
    pub uid: Option<String>,
    pub name: String,
    /// Without secrets; `secretCount` says how many are valid now.
    #[schema(value_type = Object)]
    pub verification: Value,
    pub secret_count: usize,
    #[serde(flatten)]
    pub options: SourceOptions,
    /// Where the provider posts: `<public_url>/in/{source_id}`.
    pub ingest_url: String,
    /// Advice about the configuration, e.g. that scheme `none` accepts anything.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub warnings: Vec<String>,
    /// With `poll`: how its runs have gone (in the answers about one source).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub poll_status: Option<crate::dto::PollStatusOut>,
    #[schema(format = DateTime)]
    pub created_at: String,
    #[schema(format = DateTime)]
    pub updated_at: String,
}

impl SourceOut {
    /// `verification`, `options` and `warnings` come from `service::sources`, the one place
    /// that reads a source's stored JSON.
    pub fn new(
        s: &Source,
        verification: Value,
        options: SourceOptions,
        warnings: Vec<String>,
        public_url: &str,
    ) -> Self {
        Self {
            id: s.id.0.clone(),
            uid: s.uid.clone(),
            name: s.name.clone(),
            verification,
            secret_count: s.valid_secrets(now_millis()).len(),
            options,
            ingest_url: format!("{public_url}/in/{}", s.id),
            warnings,
            poll_status: None,
            created_at: ts(s.created_at),
            updated_at: ts(s.updated_at),
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct InboundRequestOut {
    pub id: String,
    /// `accepted|duplicate|rejected|quarantined|released|handshake|stale|held`. A held
    /// request shows the `msgId` it will get; once it goes on it shows `accepted`.
    #[schema(value_type = String)]
    pub status: &'static str,
    pub reason: Option<String>,
    pub msg_id: Option<String>,
    pub event_type: Option<String>,
    #[schema(value_type = std::collections::BTreeMap<String, String>)]
    pub headers: std::collections::BTreeMap<String, String>,
    /// Kept only for quarantined requests (needed to release them).
    pub body: Option<String>,
    #[schema(format = DateTime)]
    pub timestamp: String,
}

/// A rotation's answer: the new key only when Herald generated it.
#[derive(Debug, Serialize, ToSchema)]
pub struct SourceRotateOut {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub key: Option<String>,
}

/// The message a released request became.
#[derive(Debug, Serialize, ToSchema)]
pub struct ReleasedOut {
    pub id: String,
}

impl From<&InboundRequest> for InboundRequestOut {
    fn from(r: &InboundRequest) -> Self {
        Self {
            id: r.id.0.clone(),
            status: r.status.as_str(),
            reason: r.reason.clone(),
            msg_id: r.msg_id.as_ref().map(|m| m.0.clone()),
            event_type: r.event_type.clone(),
            headers: r.headers.clone(),
            body: r.body.clone(),
            timestamp: ts(r.created_at),
        }
    }
}

#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct SourceRotateIn {
    /// The provider's new secret. May be omitted for `standard-webhooks`: Herald generates one
    /// and returns it once.
    pub key: Option<String>,
    pub grace_period_seconds: Option<i64>,
}

// Fields are in alphabetical order on purpose: the answers were once `json!` objects, which
// serialize their keys sorted, and clients may compare the bytes. (A plain comment: a doc
// comment would change the OpenAPI description.)
/// What ingestion answers on success.
#[derive(Debug, Default, Serialize, ToSchema)]
pub struct IngestOut {
    /// Present and true for a duplicate.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub duplicate: Option<bool>,
    /// Present and true for an event waiting for a missing earlier sequence (source
    /// `ordering`): forwarded when the gap is filled or `gapTimeoutSeconds` have passed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub held: Option<bool>,
    /// The message (`msg_…`; for a held event, the ID its message will get), or the
    /// quarantined or stale request (`inreq_…`).
    pub id: String,
    /// Present and true for a quarantined request.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub quarantined: Option<bool>,
    /// Present and true for an event whose sequence is not above the last one accepted for its
    /// resource (source `ordering`): logged, not forwarded.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub stale: Option<bool>,
}

impl IngestOut {
    /// The plain answer `{id}`; the flags are set by the caller.
    pub fn new(id: String) -> Self {
        Self {
            id,
            ..Self::default()
        }
    }

    /// `{id}` with the flag `set` turns on.
    pub fn with(id: String, set: impl FnOnce(&mut Self)) -> Self {
        let mut out = Self::new(id);
        set(&mut out);
        out
    }
}
