//! An inbound source's configuration as Herald keeps it: [`SourceOptions`] (everything of a
//! source but its name, uid and verification) with its parts [`Dedup`] and [`OnInvalid`].
//! The verification itself is [`crate::inbound::Verification`], kept without its secrets.
//!
//! These are the stored shapes: their serde form is the JSON the store writes (field names,
//! absent fields skipped), so changing it must keep old rows readable. Validating what a
//! client sends, and documenting it, is the API's job, not this module's.

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::inbound::{Extract, Verification};
use crate::ordering::OrderingRule;

/// Where a source's dedup key comes from and for how long it holds.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Dedup {
    #[serde(default)]
    pub key: Option<Extract>,
    #[serde(default)]
    pub window_seconds: Option<i64>,
}

/// What happens to a request whose body fails the source's schema.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum OnInvalid {
    #[default]
    Quarantine,
    Reject,
}

/// Everything of a source but name, uid and verification: how its requests become messages.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SourceOptions {
    /// `{"header": …}`, `{"json": "/pointer"}` or `{"value": …}`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub event_type: Option<Extract>,
    /// `{"key": rule, "windowSeconds": N}`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dedup: Option<Dedup>,
    /// A JSON Schema the body must satisfy.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub schema: Option<Value>,
    #[serde(default)]
    pub on_invalid: OnInvalid,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub forward_headers: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rate_limit: Option<u32>,
    /// Per-resource ordering: stale events dropped, gaps waited for.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ordering: Option<OrderingRule>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub public_url: Option<String>,
    /// Reconciliation: the provider's list API polled on an interval (its `headers` are
    /// sealed at rest, see [`SourceOptions::sealed_fields_mut`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub poll: Option<crate::reconcile::PollConfig>,
}

impl SourceOptions {
    /// The secret strings among the options (the poll's header values), which the store
    /// encrypts at rest.
    pub fn sealed_fields_mut(&mut self) -> impl Iterator<Item = &mut String> {
        self.poll.iter_mut().flat_map(|p| p.sealed_fields_mut())
    }
}

/// A verification as it is stored and shown: every field but the secrets, which are kept
/// apart (sealed at rest) and never shown.
pub fn verification_without_secrets(v: &Verification) -> Value {
    let mut value = serde_json::to_value(v).expect("a verification serializes");
    if let Some(o) = value.as_object_mut() {
        o.remove("secrets");
    }
    value
}
