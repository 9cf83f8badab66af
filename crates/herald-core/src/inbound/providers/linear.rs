//! Linear: `Linear-Signature`, the hex HMAC-SHA256 of the body; the timestamp is
//! `webhookTimestamp` (milliseconds) inside the signed body, so it is read only after the
//! signature matched.

use serde_json::Value;

use super::prelude::*;

/// Linear's SDK allows one minute either way on `webhookTimestamp`.
pub const LINEAR_TOLERANCE_SECONDS: i64 = 60;

pub(super) const PROVIDER: Provider = Provider {
    window: Window::Both(LINEAR_TOLERANCE_SECONDS),
    event_type: Some(Field::Header("Linear-Event")),
    dedup_key: Field::Header("Linear-Delivery"),
    forward_headers: &["Linear-Delivery", "Linear-Event"],
    ..Provider::new(verify, &[HEADER])
};

const HEADER: &str = "Linear-Signature";

fn verify(v: &Verification, req: &Request, now: i64, tol: Tolerance) -> Result<(), VerifyError> {
    let signature = (HmacAlgorithm::Sha256, HEADER, Written::Hex(""));
    header_mac(v, req, signature, &[req.body])?;
    if tol == Tolerance::Unchecked {
        return Ok(());
    }
    let ms = serde_json::from_slice::<Value>(req.body)
        .ok()
        .and_then(|b| b.get("webhookTimestamp").and_then(Value::as_i64))
        .ok_or_else(|| VerifyError::Missing("webhookTimestamp".into()))?;
    tol.check_millis(ms, now)
}
