//! Intercom: `X-Hub-Signature: sha1=<hex>`, HMAC-SHA1 of the body keyed with the client secret.

use super::prelude::*;

pub(super) const PROVIDER: Provider = Provider {
    event_type: Some(Field::Json("/topic")),
    dedup_key: Field::Json("/id"),
    ..Provider::new(verify, &[HEADER])
};

const HEADER: &str = "X-Hub-Signature";

fn verify(v: &Verification, req: &Request, _: i64, _: Tolerance) -> Result<(), VerifyError> {
    header_mac(v, req, (HmacAlgorithm::Sha1, HEADER, Written::Hex("sha1=")), &[req.body])
}
