//! The `verification` object of a source (`SourceIn.verification`) and its small enums.
//!
//! This file owns the serialized form only; it must not interpret the fields (that is
//! `validate.rs` and the providers' job).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::Scheme;

/// Declares [`Verification`] from its list of optional fields, each `default` and skipped when
/// unset in JSON, with [`Verification::new`] and the redacted `Debug`: the list is written once,
/// so a new field cannot be forgotten in one of them.
macro_rules! verification {
    ($($(#[$doc:meta])* $name:ident: $ty:ty,)*) => {
        /// The `verification` object of `SourceIn` (camelCase JSON).
        ///
        /// Unknown fields are kept in [`Verification::extra`] and reported by
        /// [`super::validate`] rather than rejected by serde, so that a 422 lists every problem
        /// at once.
        #[derive(Clone, PartialEq, Serialize, Deserialize)]
        #[serde(rename_all = "camelCase")]
        pub struct Verification {
            pub scheme: Scheme,
            /// Write-only secrets, newest first. For `sendgrid` and `discord`: the provider's
            /// public key. For `basic-auth`: `user:password`.
            #[serde(default)]
            pub secrets: Vec<String>,
            $(
                $(#[$doc])*
                #[serde(default, skip_serializing_if = "Option::is_none")]
                pub $name: Option<$ty>,
            )*
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
                    $($name: None,)*
                    extra: BTreeMap::new(),
                }
            }
        }

        /// Redacted on purpose: a verification config holds secrets and must be safe to log.
        impl std::fmt::Debug for Verification {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.debug_struct("Verification")
                    .field("scheme", &self.scheme)
                    .field("secrets", &format_args!("<{} redacted>", self.secrets.len()))
                    $(.field(stringify!($name), &self.$name))*
                    .finish_non_exhaustive()
            }
        }
    };
}

verification! {
    /// Overrides the scheme's timestamp tolerance; `0` turns the timestamp check off.
    tolerance_seconds: i64,
    /// `hmac`: the signature header. `api-key`: the header carrying the key.
    header: String,
    /// `hmac`: the digest (default sha256).
    algorithm: HmacAlgorithm,
    /// `hmac`: how the MAC is written in the header (default hex).
    encoding: SignatureEncoding,
    /// `hmac`: text before the signature, such as `sha256=`. `api-key`: text before the key,
    /// such as `Bearer `.
    prefix: String,
    /// `hmac`: template of the signed bytes over `{body}`, `{timestamp}`, `{id}`, `{url}`
    /// (default `{body}`).
    signed_content: String,
    /// `hmac`: header with the unix timestamp (seconds) used for `{timestamp}` and the
    /// tolerance.
    timestamp_header: String,
    /// `hmac`: header with the delivery id used for `{id}`.
    id_header: String,
}

impl Verification {
    /// The optional fields that are set, by their JSON name (what [`super::validate`] checks
    /// against the fields a scheme accepts), in the order its problems are reported.
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
