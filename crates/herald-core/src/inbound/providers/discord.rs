//! Discord interactions: Ed25519 over `timestamp + body`, key and signature in hex; and the
//! PING every interactions endpoint must answer.

use super::prelude::*;

pub(super) const PROVIDER: Provider = Provider {
    window: Window::OptIn,
    event_type: Some(Field::Json("/type")),
    dedup_key: Field::Json("/id"),
    handshake: Some(|_, req| {
        let doc = json_body(req)?;
        // PING (`type` 1) is answered with PONG (`{"type": 1}`).
        (doc.get("type")?.as_i64()? == 1).then(|| Handshake::json(serde_json::json!({ "type": 1 })))
    }),
    secret_format: Some(SecretFormat {
        valid: |s| key(s).is_some(),
        must_be: "the application's Ed25519 public key (64 hex digits)",
    }),
    ..Provider::new(verify, &["X-Signature-Ed25519", "X-Signature-Timestamp"])
};

fn verify(v: &Verification, req: &Request, now: i64, tol: Tolerance) -> Result<(), VerifyError> {
    let h = "X-Signature-Ed25519";
    let ts_name = "X-Signature-Timestamp";
    let sig = require(req, h)?;
    let ts_text = require(req, ts_name)?;
    let sig = decode_hex(sig)
        .and_then(|b| <[u8; 64]>::try_from(b.as_slice()).ok())
        .map(|b| ed25519_dalek::Signature::from_bytes(&b))
        .ok_or_else(|| VerifyError::Malformed(format!("{h} is not 64 hex-encoded bytes")))?;
    // `verify_strict` also refuses small-order keys and malleable signatures; a genuine Discord
    // signature always passes it.
    let strict = |k: &ed25519_dalek::VerifyingKey, msg: &[u8]| k.verify_strict(msg, &sig).is_ok();
    public_key_check(v, (key, strict), (ts_name, ts_text, req.body), (tol, now))
}

fn key(text: &str) -> Option<ed25519_dalek::VerifyingKey> {
    let bytes = <[u8; 32]>::try_from(decode_hex(text)?.as_slice()).ok()?;
    ed25519_dalek::VerifyingKey::from_bytes(&bytes).ok()
}
