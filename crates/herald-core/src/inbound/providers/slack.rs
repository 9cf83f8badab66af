//! Slack: `X-Slack-Signature: v0=<hex>` over `v0:{X-Slack-Request-Timestamp}:{body}`, and the
//! Events API's `url_verification` handshake.

use super::prelude::*;

pub(super) const PROVIDER: Provider = Provider {
    window: Window::Both(DEFAULT_TOLERANCE_SECONDS),
    // Events API: `/type` is always `event_callback`; the useful type is the inner one.
    event_type: Some(Field::Json("/event/type")),
    dedup_key: Field::Json("/event_id"),
    handshake: Some(handshake),
    ..Provider::new(verify, &[SIGNATURE.sig_header, SIGNATURE.ts_header])
};

const SIGNATURE: V0 = V0 {
    ts_header: "X-Slack-Request-Timestamp",
    sig_header: "X-Slack-Signature",
};

fn verify(v: &Verification, req: &Request, now: i64, tol: Tolerance) -> Result<(), VerifyError> {
    tol.check(SIGNATURE.signed_at(v, req)?, now)
}

/// `url_verification`: 200 `{"challenge": …}`.
fn handshake(_: &Verification, req: &Request) -> Option<Handshake> {
    let doc = json_body(req)?;
    if doc.get("type")?.as_str()? != "url_verification" {
        return None;
    }
    let challenge = doc.get("challenge")?.as_str()?;
    Some(Handshake::json(
        serde_json::json!({ "challenge": challenge }),
    ))
}
