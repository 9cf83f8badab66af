//! Standard Webhooks (`webhook-id`, `webhook-timestamp`, `webhook-signature`), also sent by Svix
//! and Clerk under `svix-*` header names: base64 HMAC-SHA256 over `id.timestamp.body`, keyed
//! with the base64 part of a `whsec_…` secret.

use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine;

use super::prelude::*;

pub(super) const PROVIDER: Provider = Provider {
    window: Window::Both(DEFAULT_TOLERANCE_SECONDS),
    event_type: Some(Field::Json("/type")),
    // `extract` also reads `svix-id` for this header.
    dedup_key: Field::Header("webhook-id"),
    secret_format: Some(SecretFormat {
        valid: |s| decode_secret(s).is_some(),
        must_be: "base64, optionally after `whsec_`",
    }),
    ..Provider::new(
        verify,
        &[
            "webhook-id",
            "webhook-timestamp",
            "webhook-signature",
            "svix-id",
            "svix-timestamp",
            "svix-signature",
        ],
    )
};

fn verify(v: &Verification, req: &Request, now: i64, tol: Tolerance) -> Result<(), VerifyError> {
    let brand = if req.headers.contains_key("webhook-signature")
        || req.headers.contains_key("webhook-id")
    {
        "webhook"
    } else if req.headers.contains_key("svix-signature") || req.headers.contains_key("svix-id") {
        "svix"
    } else {
        return Err(VerifyError::Missing("webhook-signature".into()));
    };
    let id = require(req, &format!("{brand}-id"))?;
    let ts_name = format!("{brand}-timestamp");
    let ts = parse_ts(require(req, &ts_name)?, &ts_name)?;
    let sig_name = format!("{brand}-signature");
    let sigs = require(req, &sig_name)?;
    let cands: Vec<_> = sigs
        .split(' ')
        .filter_map(|p| p.strip_prefix("v1,"))
        .filter_map(decode_b64)
        .collect();
    // The signed timestamp is the integer re-rendered, as the reference libraries do.
    let ts_text = ts.to_string();
    let parts: [&[u8]; 5] = [id.as_bytes(), b".", ts_text.as_bytes(), b".", req.body];
    // Undecodable secrets are skipped (`validate` refuses them at configuration time).
    let keys: Vec<_> = v.secrets.iter().filter_map(|s| decode_secret(s)).collect();
    match_any(HmacAlgorithm::Sha256, &keys, &parts, &cands, &sig_name)?;
    tol.check(ts, now)
}

/// The key of a `whsec_…` secret: the base64 after the prefix (the prefix is optional).
fn decode_secret(s: &str) -> Option<Vec<u8>> {
    let b64 = s.strip_prefix(crate::signing::SECRET_PREFIX).unwrap_or(s);
    B64.decode(b64).ok().filter(|k| !k.is_empty())
}
