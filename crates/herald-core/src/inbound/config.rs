//! The `verification` object of a source (`SourceIn.verification`) and its small enums.
//!
//! This file owns the serialized form only; it must not interpret the fields (that is
//! `validate.rs` and the providers' job).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::Scheme;

/// The `verification` object of `SourceIn` (camelCase JSON).
///
/// Unknown fields are kept in [`Verification::extra`] and reported by [`super::validate`]
/// rather than rejected by serde, so that a 422 lists every problem at once.
#[derive(Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Verification {
    pub scheme: Scheme,
    /// Write-only secrets, newest first. For `sendgrid` and `discord`: the provider's public key.
    /// For `basic-auth`: `user:password`.
    #[serde(default)]
    pub secrets: Vec<String>,
    /// Overrides the scheme's timestamp tolerance; `0` turns the timestamp check off.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tolerance_seconds: Option<i64>,
    /// `hmac`: the signature header. `api-key`: the header carrying the key.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub header: Option<String>,
    /// `hmac`: the digest (default sha256).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub algorithm: Option<HmacAlgorithm>,
    /// `hmac`: how the MAC is written in the header (default hex).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub encoding: Option<SignatureEncoding>,
    /// `hmac`: text before the signature, such as `sha256=`. `api-key`: text before the key, such
    /// as `Bearer `.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prefix: Option<String>,
    /// `hmac`: template of the signed bytes over `{body}`, `{timestamp}`, `{id}`, `{url}`
    /// (default `{body}`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub signed_content: Option<String>,
    /// `hmac`: header with the unix timestamp (seconds) used for `{timestamp}` and the tolerance.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timestamp_header: Option<String>,
    /// `hmac`: header with the delivery id used for `{id}`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id_header: Option<String>,
    /// Fields this version does not know; [`super::validate`] reports them.
    #[serde(flatten, default, skip_serializing)]
    pub extra: BTreeMap<String, Value>,
}

impl Verification {
    /// A configuration with only a scheme and secrets; every optional field unset.
    pub fn new(scheme: Scheme, secrets: Vec<String>) -> Self {
        Self {
            scheme,
            secrets,
            tolerance_seconds: None,
            header: None,
            algorithm: None,
            encoding: None,
            prefix: None,
            signed_content: None,
            timestamp_header: None,
            id_header: None,
            extra: BTreeMap::new(),
        }
    }

    /// The optional fields that are set, by their JSON name (what [`super::validate`] checks
    /// against the fields a scheme accepts).
    pub(crate) fn set_fields(&self) -> [(&'static str, bool); 7] {
        [
            ("header", self.header.is_some()),
            ("prefix", self.prefix.is_some()),
            ("algorithm", self.algorithm.is_some()),
            ("encoding", self.encoding.is_some()),
            ("signedContent", self.signed_content.is_some()),
            ("timestampHeader", self.timestamp_header.is_some()),
            ("idHeader", self.id_header.is_some()),
        ]
    }
}

/// Redacted on purpose: a verification config holds secrets and must be safe to log.
impl std::fmt::Debug for Verification {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Verification")
            .field("scheme", &self.scheme)
            .field(
                "secrets",
                &format_args!("<{} redacted>", self.secrets.len()),
            )
            .field("tolerance_seconds", &self.tolerance_seconds)
            .field("header", &self.header)
            .field("algorithm", &self.algorithm)
            .field("encoding", &self.encoding)
            .field("prefix", &self.prefix)
            .field("signed_content", &self.signed_content)
            .field("timestamp_header", &self.timestamp_header)
            .field("id_header", &self.id_header)
            .finish_non_exhaustive()
    }
}

/// Digest of the generic `hmac` scheme.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum HmacAlgorithm {
    Sha1,
    #[default]
    Sha256,
    Sha512,
}

/// How the generic `hmac` scheme's MAC is written in its header.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SignatureEncoding {
    #[default]
    Hex,
    Base64,
}
