//! Inbound verification: deciding whether a request that arrived at a source really comes from
//! the provider the source is configured for.
//!
//! This module owns the per-provider rules of `shared/spec/inbound.md` ("Provider schemes"):
//! which header carries the signature, which bytes are signed, how the key is derived from the
//! configured secret, how far the provider's timestamp may drift, and the provider handshakes
//! (Slack, Zoom, Twitch, Discord) that must be answered before deduplication. It also knows each
//! provider's defaults: where the event type and the deduplication key come from, which headers
//! are worth forwarding and which must never be forwarded.
//!
//! It is pure: it sees a [`Request`] (URL, headers, raw body bytes) and the clock as an argument,
//! and answers. It must not do I/O — no storage (rotation grace, the request log and dedup
//! windows are the store's job), no HTTP (status codes other than the handshake answers are the
//! API layer's job) and no logging. Secrets never appear in an error or in `Debug` output.
//!
//! Every signature comparison is constant-time ([`subtle`]) and runs over the raw body bytes:
//! re-serialising JSON would change the bytes the provider signed.
//!
//! Layout: the shared primitives sit in this folder (`scheme.rs`, `config.rs`, `request.rs`,
//! `tolerance.rs`, `digest.rs`, `params.rs`, `extract.rs`, `handshake.rs`, `validate.rs`);
//! each provider is one file under `providers/` that fills in a descriptor, and the functions
//! below answer by looking the scheme's descriptor up. See docs/inbound.md "Inbound providers".

mod config;
mod digest;
mod extract;
mod handshake;
mod params;
mod providers;
mod request;
mod scheme;
mod tolerance;
mod validate;

#[cfg(test)]
mod tests;

pub use config::{HmacAlgorithm, SignatureEncoding, Verification};
pub use digest::sha256_hex;
pub use extract::{extract, Extract};
pub use handshake::Handshake;
pub use providers::linear::LINEAR_TOLERANCE_SECONDS;
pub use providers::paddle::PADDLE_TOLERANCE_SECONDS;
pub use providers::twitch::TWITCH_TOLERANCE_SECONDS;
pub use request::{Request, VerifyError};
pub use scheme::Scheme;
pub use tolerance::{Tolerance, DEFAULT_TOLERANCE_SECONDS};
pub use validate::validate;

pub(crate) use extract::Field;
use providers::provider;

/// Checks the request against every valid secret (constant-time comparisons; raw body bytes).
/// `now` = unix seconds.
///
/// The signature is checked before the timestamp, so that `Stale` is only ever reported for a
/// request that really comes from the provider.
pub fn verify(v: &Verification, req: &Request, now: i64) -> Result<(), VerifyError> {
    (provider(v.scheme).verify)(v, req, now, tolerance(v))
}

/// The effective timestamp rule of a configuration: the scheme's default direction and window,
/// with `toleranceSeconds` replacing the window. Schemes whose provider signs a timestamp but
/// documents no window (mailgun, sendgrid, discord) check nothing unless `toleranceSeconds` is
/// set, and then both directions; so does the generic `hmac` with a `timestampHeader`, whose
/// window defaults to 300 s.
pub fn tolerance(v: &Verification) -> Tolerance {
    provider(v.scheme).window.tolerance(v)
}

/// Advice that does not make the configuration invalid: `none` accepts anything.
pub fn warnings(v: &Verification) -> Vec<String> {
    scheme_warnings(v.scheme)
}

/// [`warnings`] for a scheme alone (what a source's API answer reports).
pub fn scheme_warnings(scheme: Scheme) -> Vec<String> {
    let w = provider(scheme).warnings;
    w.iter().map(|s| s.to_string()).collect()
}

/// Where the event type comes from when the source does not say; `None` when the provider has
/// no reliable place for it (the caller picks its own fallback).
pub fn default_event_type(s: Scheme) -> Option<Extract> {
    provider(s).event_type.map(Field::to_extract)
}

/// The default deduplication key of a scheme, per the spec's table.
pub fn default_dedup_key(s: Scheme) -> Extract {
    provider(s).dedup_key.to_extract()
}

/// [`default_dedup_key`] refined by the configuration: a generic `hmac` source with an
/// `idHeader` deduplicates on that header.
pub fn dedup_key_for(v: &Verification) -> Extract {
    let configured = provider(v.scheme).configured_dedup_key;
    configured
        .and_then(|f| f(v))
        .unwrap_or_else(|| default_dedup_key(v.scheme))
}

/// Original headers passed on to endpoints unless the source says otherwise. The
/// standard-webhooks family forwards none: its `webhook-*`/`svix-*` names are the ones Herald
/// signs its own deliveries with.
pub fn default_forward_headers(s: Scheme) -> &'static [&'static str] {
    provider(s).forward_headers
}

/// Provider signature (and credential) headers of a scheme: never forwarded, whatever
/// `forwardHeaders` says. For `hmac` and `api-key` the header is configured: see
/// [`never_forward`].
pub fn signature_headers(s: Scheme) -> &'static [&'static str] {
    provider(s).signature_headers
}

/// [`signature_headers`] plus the headers a configuration names itself (`hmac`'s signature and
/// timestamp headers, `api-key`'s header), lower-cased.
pub fn never_forward(v: &Verification) -> Vec<String> {
    let p = provider(v.scheme);
    let configured = p.configured_headers.map(|f| f(v)).unwrap_or_default();
    p.signature_headers
        .iter()
        .chain(configured.iter())
        .map(|h| h.to_ascii_lowercase())
        .collect()
}

/// Provider handshakes answered directly (before dedup): Slack `url_verification`
/// (200 `{"challenge": …}`), Zoom `endpoint.url_validation` (200 `{"plainToken",
/// "encryptedToken"}`, the latter hex HMAC-SHA256(secret, plainToken)), Twitch
/// `webhook_callback_verification` (200 text/plain challenge) and Discord PING (200
/// `{"type": 1}`). Called only after [`verify`] succeeded, so the body is the provider's.
pub fn handshake(v: &Verification, req: &Request) -> Option<Handshake> {
    provider(v.scheme).handshake.and_then(|f| f(v, req))
}
