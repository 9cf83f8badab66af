//! The provider descriptors and the registry mapping each [`Scheme`] to its descriptor.
//!
//! Each file of this folder declares everything about one provider in one place: how a request
//! is verified, its timestamp window, where its event type and deduplication key come from,
//! which headers are forwarded or never forwarded, its handshake and its configuration rules.
//! Shared shapes live in the parent module's primitives (`digest.rs`, `params.rs`, …), never
//! in another provider's file. Adding a provider: its file here, one line in `scheme.rs`, one
//! line in the [`registry!`] below.

use super::tolerance::Window;
use super::{Extract, Field, Handshake, Request, Scheme, Tolerance, Verification, VerifyError};

/// Checks a request; `now` in unix seconds, `tol` the effective tolerance of the configuration.
pub(crate) type VerifyFn = fn(&Verification, &Request, i64, Tolerance) -> Result<(), VerifyError>;

/// The format a scheme's secrets must have, for [`super::validate`].
#[derive(Clone, Copy)]
pub(crate) struct SecretFormat {
    pub(crate) valid: fn(&str) -> bool,
    /// Completes "verification.secrets[i] must be …".
    pub(crate) must_be: &'static str,
}

/// Everything Herald knows about one provider. Start from [`Provider::new`] and override what
/// differs (`Provider { window: …, ..Provider::new(verify, &[…]) }`).
pub(crate) struct Provider {
    pub(crate) verify: VerifyFn,
    /// Signature and credential headers: never forwarded, whatever `forwardHeaders` says.
    pub(crate) signature_headers: &'static [&'static str],
    pub(crate) window: Window,
    pub(crate) event_type: Option<Field>,
    pub(crate) dedup_key: Field,
    /// Original headers passed on to endpoints unless the source says otherwise.
    pub(crate) forward_headers: &'static [&'static str],
    /// Answered after verification and before deduplication.
    pub(crate) handshake: Option<fn(&Verification, &Request) -> Option<Handshake>>,
    /// The optional `verification` fields (JSON names) this scheme accepts.
    pub(crate) fields: &'static [&'static str],
    /// `false` for schemes that must have no secret at all.
    pub(crate) needs_secrets: bool,
    pub(crate) secret_format: Option<SecretFormat>,
    /// Checks of the scheme's own fields, appended to [`super::validate`]'s problems.
    pub(crate) check_config: Option<fn(&Verification, &mut Vec<String>)>,
    /// Headers the configuration names (signature, timestamp, key): never forwarded either.
    pub(crate) configured_headers: Option<fn(&Verification) -> Vec<&str>>,
    /// A deduplication key the configuration chooses, before [`Provider::dedup_key`].
    pub(crate) configured_dedup_key: Option<fn(&Verification) -> Option<Extract>>,
    pub(crate) warnings: &'static [&'static str],
}

impl Provider {
    /// A provider that only verifies: no timestamp, no defaults, nothing forwarded.
    pub(crate) const fn new(verify: VerifyFn, signature_headers: &'static [&'static str]) -> Self {
        Self {
            verify,
            signature_headers,
            window: Window::None,
            event_type: None,
            dedup_key: Field::BodyHash,
            forward_headers: &[],
            handshake: None,
            fields: &[],
            needs_secrets: true,
            secret_format: None,
            check_config: None,
            configured_headers: None,
            configured_dedup_key: None,
            warnings: &[],
        }
    }
}

/// What provider files import.
mod prelude {
    pub(super) use super::{Provider, SecretFormat};
    pub(super) use crate::inbound::digest::{
        decode_b64, decode_hex, header_mac, mac, match_any, match_secret, public_key_check,
        utf8_keys, Written, V0,
    };
    pub(super) use crate::inbound::handshake::json_body;
    pub(super) use crate::inbound::params::Params;
    pub(super) use crate::inbound::request::{header_value, parse_ts, require};
    pub(super) use crate::inbound::tolerance::{Window, DEFAULT_TOLERANCE_SECONDS};
    pub(super) use crate::inbound::{
        Field, Handshake, HmacAlgorithm, Request, Tolerance, Verification, VerifyError,
    };
}

/// Declares the provider modules and [`provider`] from one `Scheme => file` list; the `match`
/// it builds is exhaustive, so a scheme without a provider does not compile.
macro_rules! registry {
    ($($scheme:ident => $file:ident,)*) => {
        $(pub(super) mod $file;)*

        /// The descriptor of a scheme.
        pub(crate) fn provider(s: Scheme) -> &'static Provider {
            match s {
                $(Scheme::$scheme => &$file::PROVIDER,)*
            }
        }
    };
}

registry! {
    StandardWebhooks => standard_webhooks,
    Github => github,
    Stripe => stripe,
    Slack => slack,
    Shopify => shopify,
    Twilio => twilio,
    Paddle => paddle,
    Square => square,
    Zoom => zoom,
    Twitch => twitch,
    Linear => linear,
    Pagerduty => pagerduty,
    Intercom => intercom,
    Mailgun => mailgun,
    Sendgrid => sendgrid,
    Discord => discord,
    GitlabToken => gitlab_token,
    Hmac => hmac,
    BasicAuth => basic_auth,
    ApiKey => api_key,
    None => none,
}
