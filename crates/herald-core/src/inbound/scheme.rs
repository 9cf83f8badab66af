//! The list of inbound signature schemes: their Rust names and their JSON spelling.
//!
//! This file owns only the list. What a scheme means (how it verifies, its defaults) lives in
//! its file under `providers/`; adding a scheme is one line here plus one line in the registry
//! of `providers/mod.rs`.

use serde::{Deserialize, Serialize};

/// Declares [`Scheme`], [`Scheme::ALL`] and [`Scheme::as_str`] from one list, so the JSON
/// spelling, the Rust name and the order of the spec cannot drift apart.
macro_rules! schemes {
    ($($name:ident = $text:literal,)*) => {
        /// A provider signature scheme (`verification.scheme`), spelled in kebab-case in JSON.
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
        pub enum Scheme {
            $(#[serde(rename = $text)] $name,)*
        }

        impl Scheme {
            /// Every scheme, in the order of the spec.
            pub const ALL: [Scheme; [$($text),*].len()] = [$(Scheme::$name),*];

            /// The JSON spelling (`standard-webhooks`, `gitlab-token`, …).
            pub fn as_str(self) -> &'static str {
                match self {
                    $(Scheme::$name => $text,)*
                }
            }
        }
    };
}

schemes! {
    StandardWebhooks = "standard-webhooks",
    Github = "github",
    Stripe = "stripe",
    Slack = "slack",
    Shopify = "shopify",
    Twilio = "twilio",
    Paddle = "paddle",
    Square = "square",
    Zoom = "zoom",
    Twitch = "twitch",
    Linear = "linear",
    Pagerduty = "pagerduty",
    Intercom = "intercom",
    Mailgun = "mailgun",
    Sendgrid = "sendgrid",
    Discord = "discord",
    GitlabToken = "gitlab-token",
    Hmac = "hmac",
    BasicAuth = "basic-auth",
    ApiKey = "api-key",
    None = "none",
}

impl std::fmt::Display for Scheme {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}
