//! Per-endpoint options beyond the endpoint's core columns: how its deliveries are routed,
//! transformed, secured and batched.
//!
//! They travel together as one JSON document (`endpoints.options` in both stores) so that a new
//! option needs no migration of its own. It owns the option types and their defaults; it must
//! not validate requests (the API does) nor decide delivery behaviour (the engine does).
//! Secret strings among the options are reachable through [`EndpointOptions::sealed_fields_mut`]
//! so the store can encrypt them at rest exactly like signing secrets.

use serde::{Deserialize, Serialize};

/// Every field is optional and omitted from the stored document when unset, so older
/// documents read as defaults and unknown fields written by a newer node are ignored.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct EndpointOptions {
    /// Content filter matched against the payload at fan-out (see [`crate::filter`]); stored
    /// as the document the API validated.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub filter: Option<serde_json::Value>,
    /// Total request timeout of this endpoint's attempts, replacing the server's.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub timeout_ms: Option<u32>,
}

impl EndpointOptions {
    /// Whether every option is at its default (the stored document is then `{}`).
    pub fn is_default(&self) -> bool {
        self == &Self::default()
    }

    /// The secret strings among the options, in a stable order, for the store to encrypt at
    /// rest (and re-encrypt on key rotation). Every option holding key material adds its field
    /// here; none of them may be logged or answered.
    pub fn sealed_fields_mut(&mut self) -> Vec<&mut String> {
        Vec::new()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_empty_or_foreign_document_reads_as_defaults() {
        let o: EndpointOptions = serde_json::from_str("{}").unwrap();
        assert!(o.is_default());
        let o: EndpointOptions = serde_json::from_str(r#"{"fromANewerNode": 1}"#).unwrap();
        assert!(o.is_default());
        assert_eq!(serde_json::to_string(&o).unwrap(), "{}");
    }
}
