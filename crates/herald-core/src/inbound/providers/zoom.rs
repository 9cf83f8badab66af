//! Zoom: `x-zm-signature: v0=<hex>` over `v0:{x-zm-request-timestamp}:{body}` (Slack's shape),
//! and the `endpoint.url_validation` handshake. No event id: deduplication hashes the body.

use super::prelude::*;

const SIGNATURE: V0 = V0 {
    ts_header: "x-zm-request-timestamp",
    sig_header: "x-zm-signature",
};

pub(super) const PROVIDER: Provider = Provider {
    window: Window::Both(DEFAULT_TOLERANCE_SECONDS),
    event_type: Some(Field::Json("/event")),
    handshake: Some(handshake),
    ..Provider::new(
        |v, req, now, tol| tol.check(SIGNATURE.signed_at(v, req)?, now),
        &[SIGNATURE.sig_header, SIGNATURE.ts_header],
    )
};

/// `endpoint.url_validation`: 200 `{"plainToken", "encryptedToken"}`, the latter the hex
/// HMAC-SHA256 of `plainToken` keyed with the secret.
fn handshake(v: &Verification, req: &Request) -> Option<Handshake> {
    let doc = json_body(req)?;
    if doc.get("event")?.as_str()? != "endpoint.url_validation" {
        return None;
    }
    let plain = doc.pointer("/payload/plainToken")?.as_str()?;
    // During a rotation the token must be encrypted with the secret Zoom is configured with,
    // which is the one whose signature matched.
    let secret = SIGNATURE
        .signed_with(v, req)
        .or_else(|| v.secrets.first().map(String::as_str))?;
    let encrypted = hex::encode(mac(
        HmacAlgorithm::Sha256,
        secret.as_bytes(),
        &[plain.as_bytes()],
    ));
    Some(Handshake::json(serde_json::json!({
        "plainToken": plain,
        "encryptedToken": encrypted,
    })))
}
