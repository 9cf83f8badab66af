//! PagerDuty (v3 webhooks): `X-PagerDuty-Signature: v1=<hex>[,v1=<hex>…]`, HMAC-SHA256 of the
//! body; one `v1=` per active secret of the subscription.

use super::prelude::*;

pub(super) const PROVIDER: Provider = Provider {
    event_type: Some(Field::Json("/event/event_type")),
    dedup_key: Field::Header("X-Webhook-Id"),
    forward_headers: &["X-Webhook-Id", "X-Webhook-Subscription"],
    ..Provider::new(verify, &["X-PagerDuty-Signature"])
};

fn verify(v: &Verification, req: &Request, _: i64, _: Tolerance) -> Result<(), VerifyError> {
    let h = "X-PagerDuty-Signature";
    let cands: Vec<_> = require(req, h)?
        .split(',')
        .filter_map(|p| p.trim().strip_prefix("v1="))
        .filter_map(decode_hex)
        .collect();
    match_any(HmacAlgorithm::Sha256, &utf8_keys(v), &[req.body], &cands, h)
}
