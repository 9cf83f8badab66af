//! No verification at all: every request is accepted. Valid (choosing it is explicit) but
//! reported as insecure, and it must have no secret.

use super::prelude::*;

pub(super) const PROVIDER: Provider = Provider {
    needs_secrets: false,
    warnings: &[
        "scheme none is insecure: anyone who knows the ingestion URL can post events",
    ],
    ..Provider::new(|_, _, _, _| Ok(()), &[])
};
