//! Bodies and checks of the per-endpoint routing and delivery-policy options (issue 14):
//! the content `filter`, `timeoutMs`, and the filter test route.
//!
//! The option values live in [`herald_core::endpoint_options::EndpointOptions`]; this module
//! only validates what a request asks for and says where it went wrong. It must not look
//! anything up nor decide delivery behaviour.

use herald_core::endpoint_options::EndpointOptions;
use herald_core::filter::Filter;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::ToSchema;

use super::common::Checks;
use crate::error::FieldError;

/// Bounds of `timeoutMs`.
pub const TIMEOUT_MS_RANGE: std::ops::RangeInclusive<i64> = 100..=30_000;

/// Checks a filter document; a refusal is reported at `["body", "filter", <offending path>]`.
pub fn check_filter(c: &mut Checks, filter: Option<&Value>) -> Option<Filter> {
    let doc = filter.filter(|v| !v.is_null())?;
    match Filter::compile(doc) {
        Ok(f) => Some(f),
        Err(e) => {
            let mut loc = vec!["body".to_string(), "filter".to_string()];
            if e.path != "filter" {
                loc.push(e.path.clone());
            }
            c.0.push(FieldError {
                loc,
                msg: e.to_string(),
                kind: "value_error".into(),
            });
            None
        }
    }
}

/// Checks `timeoutMs`.
pub fn check_timeout(c: &mut Checks, timeout_ms: Option<i64>) {
    if timeout_ms.is_some_and(|t| !TIMEOUT_MS_RANGE.contains(&t)) {
        c.fail("timeoutMs", "must be between 100 and 30000 (milliseconds)");
    }
}

/// Sets the routing options a POST/PUT body carries (absent = none, as PUT replaces).
pub fn set_routing(o: &mut EndpointOptions, filter: Option<Value>, timeout_ms: Option<i64>) {
    o.filter = filter.filter(|v| !v.is_null());
    o.timeout_ms = timeout_ms.and_then(|t| u32::try_from(t).ok());
}

/// Applies a PATCH's routing options: absent = unchanged, `null` = cleared.
pub fn patch_routing(
    o: &mut EndpointOptions,
    filter: Option<Option<Value>>,
    timeout_ms: Option<Option<i64>>,
) {
    if let Some(f) = filter {
        o.filter = f.filter(|v| !v.is_null());
    }
    if let Some(t) = timeout_ms {
        o.timeout_ms = t.and_then(|t| u32::try_from(t).ok());
    }
}

/// `POST …/endpoint/{endpoint_id}/filter/test` body.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct FilterTestIn {
    /// The payload to match against the endpoint's filter, as it would be published.
    #[schema(value_type = Object)]
    pub payload: Value,
}

/// Whether the payload matches (an endpoint without a filter matches everything).
#[derive(Debug, Serialize, ToSchema)]
pub struct FilterTestOut {
    pub matches: bool,
}

/// **(herald)** How an endpoint's requests are signed: HMAC-SHA256 (`v1`, `whsec_` secrets) or
/// Ed25519 (`v1a`, `whsk_` secrets, public key `whpk_` shown by `GET …/secret`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize, Serialize, ToSchema)]
pub enum SignatureAlgorithm {
    #[serde(rename = "hmac-sha256")]
    HmacSha256,
    #[serde(rename = "ed25519")]
    Ed25519,
}

impl SignatureAlgorithm {
    /// The algorithm of a secret.
    pub fn of(secret: &herald_core::signing::EndpointSecret) -> Self {
        if secret.is_ed25519() {
            Self::Ed25519
        } else {
            Self::HmacSha256
        }
    }

    /// The algorithm of an endpoint: that of its newest secret.
    pub fn of_endpoint(e: &herald_core::model::Endpoint) -> Self {
        e.secrets
            .first()
            .and_then(|s| herald_core::signing::EndpointSecret::from_stored(&s.key).ok())
            .map_or(Self::HmacSha256, |s| Self::of(&s))
    }

    /// A fresh secret of this algorithm.
    pub fn generate(self) -> herald_core::signing::EndpointSecret {
        match self {
            Self::HmacSha256 => herald_core::signing::EndpointSecret::generate(),
            Self::Ed25519 => herald_core::signing::EndpointSecret::generate_ed25519(),
        }
    }
}

/// The signing secret a write asks for: the given `secret` (HMAC `whsec_…` or Ed25519
/// `whsk_…`), else a generated one of `algorithm` when one is named or `generate` is set;
/// `None` keeps the current secrets. Contradictions are reported on `c`.
pub fn signing_secret(
    c: &mut Checks,
    secret: Option<&str>,
    algorithm: Option<SignatureAlgorithm>,
    generate: bool,
) -> Option<herald_core::signing::EndpointSecret> {
    use herald_core::signing::EndpointSecret;
    match (secret, algorithm) {
        (Some(s), alg) => match EndpointSecret::parse_signing(s) {
            Ok(sec) if alg.is_some_and(|a| a != SignatureAlgorithm::of(&sec)) => {
                c.fail("signatureAlgorithm", "does not match the kind of `secret`");
                None
            }
            Ok(sec) => Some(sec),
            Err(e) => {
                c.fail("secret", e.to_string());
                None
            }
        },
        (None, Some(a)) => Some(a.generate()),
        (None, None) => generate.then(EndpointSecret::generate),
    }
}
