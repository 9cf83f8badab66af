//! Paddle Billing: `Paddle-Signature: ts=…;h1=…[;h1=…]`, signed `ts:body` with the whole secret
//! as key.

use super::prelude::*;

/// Paddle's SDK refuses notifications older than 5 s by default.
pub const PADDLE_TOLERANCE_SECONDS: i64 = 5;

const SIGNATURE: Params = Params {
    header: "Paddle-Signature",
    separator: ';',
    timestamp: "ts",
    signature: "h1",
    joiner: b":",
};

pub(super) const PROVIDER: Provider = Provider {
    window: Window::PastOnly(PADDLE_TOLERANCE_SECONDS),
    event_type: Some(Field::Json("/event_type")),
    dedup_key: Field::Json("/event_id"),
    ..Provider::new(
        |v, req, now, tol| tol.check(SIGNATURE.signed_at(v, req)?, now),
        &[SIGNATURE.header],
    )
};
