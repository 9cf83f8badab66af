//! Bodies of the endpoint options Herald adds to Svix's endpoint for how a delivery travels:
//! `tls` (client certificate, private CAs) and `encryption` (JWE to the receiver's public
//! key), with the checks that turn them into
//! `EndpointOptions`.
//!
//! Secrets are write-only: `tls.clientKey` is accepted here and never answered (the answer says
//! only whether one is set). Nothing is looked up; the PEMs are checked the way the delivery
//! client would use them.

use herald_core::endpoint_options::{EncryptionOptions, EndpointOptions, TlsOptions};
use herald_core::jwe::RecipientKey;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::dto::common::Checks;

/// Longest PEM text accepted in one field.
const MAX_PEM_BYTES: usize = 64 * 1024;

/// **(herald)** Mutual TLS and private CAs. On update an absent field keeps its value and `""`
/// clears it; `null` for the whole object removes every TLS setting.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct TlsIn {
    /// PEM certificate chain presented when the receiver asks for a client certificate.
    pub client_certificate: Option<String>,
    /// PEM private key of the client certificate (PKCS#8, PKCS#1 or SEC1). Write-only:
    /// encrypted at rest, never answered.
    pub client_key: Option<String>,
    /// PEM CA certificates the receiver's certificate may chain to, in addition to the default
    /// roots (hostname verification stays on).
    pub ca_certificates: Option<String>,
}

/// **(herald)** The endpoint's TLS settings, without the private key.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct TlsOut {
    pub client_certificate: Option<String>,
    pub ca_certificates: Option<String>,
    /// Whether a client key is stored (the key itself is never answered).
    pub has_client_key: bool,
}

impl TlsOut {
    pub fn of(o: &EndpointOptions) -> Option<Self> {
        o.tls.as_ref().map(|t| Self {
            client_certificate: t.client_certificate.clone(),
            ca_certificates: t.ca_certificates.clone(),
            has_client_key: t.client_key.is_some(),
        })
    }
}

/// Applies a `tls` body to `opts`: `None` keeps, `Some(None)` clears, `Some(Some(t))` merges
/// field by field; the result is checked (422 on `tls.<field>`).
pub fn apply_tls(c: &mut Checks, opts: &mut EndpointOptions, body: Option<Option<TlsIn>>) {
    let t = match body {
        None => return,
        Some(None) => {
            opts.tls = None;
            return;
        }
        Some(Some(t)) => t,
    };
    let mut merged = opts.tls.clone().unwrap_or_default();
    let fields = [
        (
            "tls.clientCertificate",
            t.client_certificate,
            &mut merged.client_certificate,
        ),
        ("tls.clientKey", t.client_key, &mut merged.client_key),
        (
            "tls.caCertificates",
            t.ca_certificates,
            &mut merged.ca_certificates,
        ),
    ];
    let mut too_big = false;
    for (name, given, slot) in fields {
        match given {
            None => {}
            Some(s) if s.trim().is_empty() => *slot = None,
            Some(s) if s.len() > MAX_PEM_BYTES => {
                c.fail(name, format!("at most {MAX_PEM_BYTES} bytes"));
                too_big = true;
            }
            Some(s) => *slot = Some(s),
        }
    }
    if too_big {
        return;
    }
    if merged == TlsOptions::default() {
        opts.tls = None;
        return;
    }
    if let Err(e) = herald_delivery::validate_tls(&merged) {
        c.fail(&format!("tls.{}", e.field), e.detail);
    }
    opts.tls = Some(merged);
}

/// **(herald)** Encrypt every body to the receiver's public key: a compact JWE
/// (`ECDH-ES+A256KW` for EC P-256 / OKP X25519, `RSA-OAEP-256` for RSA ≥ 2048 bits, content
/// `A256GCM`) sent as `application/jose`; the signature covers the JWE text.
#[derive(Debug, Deserialize, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct EncryptionIn {
    /// A public JWK; a `kid` in it is copied into the JWE header.
    #[schema(value_type = Object)]
    pub public_key: serde_json::Value,
}

/// The endpoint's encryption key as stored (public, so answered).
pub type EncryptionOut = EncryptionIn;

impl EncryptionIn {
    pub fn of(o: &EndpointOptions) -> Option<Self> {
        o.encryption.as_ref().map(|e| Self {
            public_key: e.public_key.clone(),
        })
    }
}

/// Applies an `encryption` body to `opts`: `None` keeps, `Some(None)` removes, `Some(Some(e))`
/// replaces after checking the JWK (422 on `encryption.publicKey`).
pub fn apply_encryption(
    c: &mut Checks,
    opts: &mut EndpointOptions,
    body: Option<Option<EncryptionIn>>,
) {
    match body {
        None => {}
        Some(None) => opts.encryption = None,
        Some(Some(e)) => match RecipientKey::from_jwk(&e.public_key) {
            Ok(_) => {
                opts.encryption = Some(EncryptionOptions {
                    public_key: e.public_key,
                })
            }
            Err(err) => c.fail("encryption.publicKey", err.to_string()),
        },
    }
}
