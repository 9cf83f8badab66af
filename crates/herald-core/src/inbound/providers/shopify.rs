//! Shopify: `X-Shopify-Hmac-Sha256`, the base64 HMAC-SHA256 of the body.

use super::prelude::*;

pub(super) const PROVIDER: Provider = Provider {
    event_type: Some(Field::Header("X-Shopify-Topic")),
    dedup_key: Field::Header("X-Shopify-Event-Id"),
    forward_headers: &[
        "X-Shopify-Topic",
        "X-Shopify-Shop-Domain",
        "X-Shopify-Event-Id",
        "X-Shopify-Webhook-Id",
        "X-Shopify-API-Version",
        "X-Shopify-Triggered-At",
    ],
    ..Provider::new(verify, &[HEADER])
};

const HEADER: &str = "X-Shopify-Hmac-Sha256";

fn verify(v: &Verification, req: &Request, _: i64, _: Tolerance) -> Result<(), VerifyError> {
    header_mac(v, req, (HmacAlgorithm::Sha256, HEADER, Written::Base64), &[req.body])
}
