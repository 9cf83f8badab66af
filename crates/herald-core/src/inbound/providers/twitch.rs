//! Twitch EventSub: `Twitch-Eventsub-Message-Signature: sha256=<hex>` over message id +
//! timestamp (RFC 3339 text) + body, and the `webhook_callback_verification` handshake.

use super::prelude::*;

/// Twitch asks receivers to refuse messages older than 10 minutes.
pub const TWITCH_TOLERANCE_SECONDS: i64 = 600;

pub(super) const PROVIDER: Provider = Provider {
    window: Window::PastOnly(TWITCH_TOLERANCE_SECONDS),
    event_type: Some(Field::Header("Twitch-Eventsub-Subscription-Type")),
    dedup_key: Field::Header("Twitch-Eventsub-Message-Id"),
    forward_headers: &[
        "Twitch-Eventsub-Message-Id",
        "Twitch-Eventsub-Message-Type",
        "Twitch-Eventsub-Message-Timestamp",
        "Twitch-Eventsub-Subscription-Type",
        "Twitch-Eventsub-Subscription-Version",
    ],
    handshake: Some(handshake),
    ..Provider::new(verify, &["Twitch-Eventsub-Message-Signature"])
};

fn verify(v: &Verification, req: &Request, now: i64, tol: Tolerance) -> Result<(), VerifyError> {
    let id = require(req, "Twitch-Eventsub-Message-Id")?;
    let ts_text = require(req, "Twitch-Eventsub-Message-Timestamp")?;
    let h = "Twitch-Eventsub-Message-Signature";
    let sig = require(req, h)?;
    let ts = chrono::DateTime::parse_from_rfc3339(ts_text)
        .map_err(|_| {
            VerifyError::Malformed("Twitch-Eventsub-Message-Timestamp is not RFC 3339".into())
        })?
        .timestamp();
    let cands = Written::Hex("sha256=").decode(sig);
    let parts: [&[u8]; 3] = [id.as_bytes(), ts_text.as_bytes(), req.body];
    match_any(HmacAlgorithm::Sha256, &utf8_keys(v), &parts, &cands, h)?;
    tol.check(ts, now)
}

/// `webhook_callback_verification`: 200 text/plain challenge.
fn handshake(_: &Verification, req: &Request) -> Option<Handshake> {
    let kind = header_value(req, "Twitch-Eventsub-Message-Type")?;
    if kind != "webhook_callback_verification" {
        return None;
    }
    let doc = json_body(req)?;
    let challenge = doc.get("challenge")?.as_str()?;
    Some(Handshake::text(challenge))
}
