//! SendGrid Event Webhook: ECDSA P-256 / SHA-256 over `timestamp + body`; the key is the base64
//! SPKI DER shown in SendGrid's settings, the signature base64 DER. SendGrid posts batches of
//! differently typed events, so there is no default event type.

use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine;
use p256::ecdsa::signature::Verifier;

use super::prelude::*;

const SIGNATURE: &str = "X-Twilio-Email-Event-Webhook-Signature";
const TIMESTAMP: &str = "X-Twilio-Email-Event-Webhook-Timestamp";

pub(super) const PROVIDER: Provider = Provider {
    window: Window::OptIn,
    secret_format: Some(SecretFormat {
        valid: |s| key(s).is_some(),
        must_be: "SendGrid's verification key (base64 SPKI of a P-256 key)",
    }),
    ..Provider::new(verify, &[SIGNATURE, TIMESTAMP])
};

fn verify(v: &Verification, req: &Request, now: i64, tol: Tolerance) -> Result<(), VerifyError> {
    let sig = require(req, SIGNATURE)?;
    let ts_text = require(req, TIMESTAMP)?;
    let sig = decode_b64(sig)
        .and_then(|der| p256::ecdsa::Signature::from_der(&der).ok())
        .ok_or_else(|| {
            VerifyError::Malformed(format!("{SIGNATURE} is not a base64 DER signature"))
        })?;
    let verifies = |k: &p256::ecdsa::VerifyingKey, msg: &[u8]| k.verify(msg, &sig).is_ok();
    let signed = (TIMESTAMP, ts_text, req.body);
    public_key_check(v, (key, verifies), signed, (tol, now))
}

/// A SendGrid verification key: base64 SPKI DER, with or without PEM armour.
fn key(text: &str) -> Option<p256::ecdsa::VerifyingKey> {
    use p256::pkcs8::DecodePublicKey;
    let b64: String = text
        .lines()
        .filter(|l| !l.trim_start().starts_with("-----"))
        .flat_map(|l| l.chars())
        .filter(|c| !c.is_whitespace())
        .collect();
    let der = B64.decode(b64).ok()?;
    p256::ecdsa::VerifyingKey::from_public_key_der(&der).ok()
}
