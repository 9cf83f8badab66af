//! Stripe: `Stripe-Signature: t=…,v1=…[,v1=…]`, signed `t.body` with the whole `whsec_…` text
//! as key. `v0` (test-mode legacy) and unknown schemes are ignored, as Stripe's libraries do.

use super::prelude::*;

pub(super) const PROVIDER: Provider = Provider {
    window: Window::PastOnly(DEFAULT_TOLERANCE_SECONDS),
    event_type: Some(Field::Json("/type")),
    dedup_key: Field::Json("/id"),
    ..Provider::new(verify, &[SIGNATURE.header])
};

const SIGNATURE: Params = Params {
    header: "Stripe-Signature",
    separator: ',',
    timestamp: "t",
    signature: "v1",
    joiner: b".",
};

fn verify(v: &Verification, req: &Request, now: i64, tol: Tolerance) -> Result<(), VerifyError> {
    tol.check(SIGNATURE.signed_at(v, req)?, now)
}
