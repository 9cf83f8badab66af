//! GitLab: no signature, a shared token in `X-Gitlab-Token` compared with the secrets.

use super::prelude::*;

pub(super) const PROVIDER: Provider = Provider {
    forward_headers: &[
        "X-Gitlab-Event",
        "X-Gitlab-Event-UUID",
        "X-Gitlab-Webhook-UUID",
        "X-Gitlab-Instance",
        "Idempotency-Key",
    ],
    event_type: Some(Field::Header("X-Gitlab-Event")),
    dedup_key: Field::Header("Idempotency-Key"),
    ..Provider::new(
        |v, req, _, _| match_secret(v, require(req, "X-Gitlab-Token")?.as_bytes()),
        &["X-Gitlab-Token"],
    )
};
