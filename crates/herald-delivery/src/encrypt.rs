//! The engine's payload-encryption step: when an endpoint has an `encryption` key, the body
//! about to be signed and sent becomes a compact JWE to that key (`application/jose`).
//!
//! Runs after the transformation, so the receiver decrypts exactly what the transformation
//! produced, and before signing, so the signature covers the JWE text. It must not touch the
//! stored message: only the bytes of this attempt change.

use herald_core::jwe::{encrypt_compact, RecipientKey};
use herald_core::model::{Endpoint, WireBody};
use herald_core::outcome::TransportError;

use crate::client::SendResult;

/// Content type of an encrypted body.
pub const JOSE: &str = "application/jose";

/// Encrypts `wire` to `ep`'s key when it has one; a delivery already `settled` (cancelled or
/// failed by its transformation) passes through untouched.
pub fn seal(
    ep: &Endpoint,
    wire: WireBody,
    settled: Option<SendResult>,
) -> (WireBody, Option<SendResult>) {
    let Some(enc) = ep.options.encryption.as_ref().filter(|_| settled.is_none()) else {
        return (wire, settled);
    };
    let kid = enc.public_key.get("kid").and_then(|k| k.as_str());
    let sealed = RecipientKey::from_jwk(&enc.public_key)
        .and_then(|key| encrypt_compact(&key, kid, &wire.bytes, &mut rand::thread_rng()));
    match sealed {
        Ok(text) => (
            WireBody {
                bytes: text.into_bytes(),
                content_type: Some(JOSE.to_string()),
            },
            None,
        ),
        // The key was checked when it was written; this is a key stored by an older or
        // hand-edited node. Fail the attempt rather than send the body in clear.
        Err(e) => {
            let failed = SendResult::Failed {
                error: TransportError::Other,
                detail: format!("payload encryption: {e}"),
                duration: std::time::Duration::ZERO,
            };
            (wire, Some(failed))
        }
    }
}
