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
    /// JavaScript run on each delivery before it is signed and sent (routing.md
    /// "Transformation"); managed through `…/endpoint/{ep}/transformation`, not answered
    /// with the endpoint.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub transformation: Option<Transformation>,
    /// Client certificate and private CAs for HTTPS deliveries.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tls: Option<TlsOptions>,
    /// Encrypts each body to the receiver's public key (JWE).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub encryption: Option<EncryptionOptions>,
    /// Send several deliveries in one request (HTTP endpoints only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub batch: Option<BatchOptions>,
}

/// `batch`: up to `max_events` deliveries of the endpoint in one request (a JSON array),
/// waiting at most `max_wait_ms` for a batch to fill.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct BatchOptions {
    /// 1–1000.
    pub max_events: u32,
    /// 0–60,000.
    #[serde(default)]
    pub max_wait_ms: u32,
}

impl BatchOptions {
    /// Largest `maxEvents`.
    pub const MAX_EVENTS: u32 = 1000;
    /// Largest `maxWaitMs`.
    pub const MAX_WAIT_MS: u32 = 60_000;

    /// What is wrong with these values, if anything (the API answers 422 with it).
    pub fn problem(&self) -> Option<&'static str> {
        if !(1..=Self::MAX_EVENTS).contains(&self.max_events) {
            return Some("batch.maxEvents must be between 1 and 1000");
        }
        if self.max_wait_ms > Self::MAX_WAIT_MS {
            return Some("batch.maxWaitMs must be between 0 and 60000");
        }
        None
    }
}

/// An endpoint's transformation (Svix's shape).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct Transformation {
    pub code: String,
    pub enabled: bool,
}

/// Mutual TLS and private CAs. PEM text throughout; `client_key` is sealed at rest and never
/// answered.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct TlsOptions {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub client_certificate: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub client_key: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ca_certificates: Option<String>,
}

/// Payload encryption to the receiver's public key.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct EncryptionOptions {
    /// A public JWK (EC P-256, OKP X25519 or RSA).
    pub public_key: serde_json::Value,
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
        let mut out = Vec::new();
        if let Some(key) = self.tls.as_mut().and_then(|t| t.client_key.as_mut()) {
            out.push(key);
        }
        out
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

    #[test]
    fn batch_options_read_and_check() {
        let o: EndpointOptions =
            serde_json::from_str(r#"{"batch": {"maxEvents": 100, "maxWaitMs": 250}}"#).unwrap();
        let b = o.batch.unwrap();
        assert_eq!((b.max_events, b.max_wait_ms), (100, 250));
        assert_eq!(b.problem(), None);
        for (n, w) in [(0, 0), (1001, 0), (1, 60_001)] {
            let b = BatchOptions {
                max_events: n,
                max_wait_ms: w,
            };
            assert!(b.problem().is_some(), "{n} {w}");
        }
    }
}
