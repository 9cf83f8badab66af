//! Square: `x-square-hmacsha256-signature`, the base64 HMAC-SHA256 of the notification URL
//! followed by the body.

use super::prelude::*;

pub(super) const PROVIDER: Provider = Provider {
    event_type: Some(Field::Json("/type")),
    dedup_key: Field::Json("/event_id"),
    forward_headers: &["square-environment"],
    // `x-square-signature` is the legacy SHA-1 signature: not checked, never forwarded.
    ..Provider::new(verify, &[HEADER, "x-square-signature"])
};

const HEADER: &str = "x-square-hmacsha256-signature";

fn verify(v: &Verification, req: &Request, _: i64, _: Tolerance) -> Result<(), VerifyError> {
    let signed: [&[u8]; 2] = [req.url.as_bytes(), req.body];
    header_mac(v, req, (HmacAlgorithm::Sha256, HEADER, Written::Base64), &signed)
}
