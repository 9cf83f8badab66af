//! GitHub: `X-Hub-Signature-256: sha256=<hex>`, HMAC-SHA256 of the body keyed with the secret.

use super::prelude::*;

pub(super) const PROVIDER: Provider = Provider {
    event_type: Some(Field::Header("X-GitHub-Event")),
    dedup_key: Field::Header("X-GitHub-Delivery"),
    forward_headers: &["X-GitHub-Event", "X-GitHub-Delivery", "X-GitHub-Hook-ID"],
    // The legacy SHA-1 header is not checked but is a signature all the same.
    ..Provider::new(verify, &["X-Hub-Signature-256", "X-Hub-Signature"])
};

fn verify(v: &Verification, req: &Request, _: i64, _: Tolerance) -> Result<(), VerifyError> {
    let signature = (HmacAlgorithm::Sha256, "X-Hub-Signature-256", Written::Hex("sha256="));
    header_mac(v, req, signature, &[req.body])
}
