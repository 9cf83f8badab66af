//! Typed, prefixed, time-sortable identifiers (`app_…`, `ep_…`, `msg_…`, `atmpt_…`, `tok_…`).
//!
//! IDs are a prefix plus a ULID in Crockford base32, so they sort by creation time as strings,
//! which is what list pagination (`iterator`) relies on. This module only makes and recognises
//! IDs; it does not decide whether an ID exists.

use parking_lot::Mutex;
use std::fmt;

static GENERATOR: Mutex<Option<ulid::Generator>> = Mutex::new(None);

/// A ULID that sorts after every other one this process made, even within one millisecond, so
/// that keyset pagination lists objects in creation order.
fn next_ulid() -> ulid::Ulid {
    let mut g = GENERATOR.lock();
    g.get_or_insert_with(ulid::Generator::new)
        .generate()
        .unwrap_or_else(|_| ulid::Ulid::new())
}

macro_rules! prefixed_id {
    ($(#[$doc:meta])* $name:ident, $prefix:literal) => {
        $(#[$doc])*
        #[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize, serde::Deserialize)]
        #[serde(transparent)]
        pub struct $name(pub String);

        impl $name {
            pub const PREFIX: &'static str = $prefix;

            /// A new ID for an object created now; IDs made by this process increase strictly.
            pub fn generate() -> Self {
                Self(format!("{}{}", $prefix, next_ulid()))
            }

            /// Whether `s` has this type's prefix and a well-formed ULID after it: a path
            /// segment that does is looked up as an ID, anything else as a `uid`.
            pub fn looks_like(s: &str) -> bool {
                s.strip_prefix($prefix)
                    .is_some_and(|rest| ulid::Ulid::from_string(rest).is_ok())
            }

            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }
    };
}

/// A new API bearer secret: `hk_` + 32 random bytes in URL-safe base64. Only its SHA-256 is
/// ever stored.
pub fn new_token_secret() -> String {
    use base64::Engine;
    use rand::RngCore;
    let mut b = [0u8; 32];
    rand::thread_rng().fill_bytes(&mut b);
    format!(
        "hk_{}",
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(b)
    )
}

prefixed_id!(
    /// An application (tenant's consumer of webhooks).
    AppId, "app_");
prefixed_id!(
    /// An endpoint of an application.
    EndpointId, "ep_");
prefixed_id!(
    /// A published message; also the `webhook-id` of every request that carries it.
    MessageId, "msg_");
prefixed_id!(
    /// One HTTP attempt of a delivery.
    AttemptId, "atmpt_");
prefixed_id!(
    /// An API token record (not the bearer secret itself).
    TokenId, "tok_");
prefixed_id!(
    /// A request that carries several deliveries at once (a batch, or a page of a polling
    /// endpoint): its `webhook-id`, never one of its messages' IDs.
    BatchId, "batch_");
prefixed_id!(
    /// An inbound source: an ingestion URL of an application.
    SourceId, "src_");
prefixed_id!(
    /// One request received by a source (accepted, duplicate, rejected or quarantined).
    InboundRequestId, "inreq_");

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_ids_are_prefixed_sortable_and_recognised() {
        let a = MessageId::generate();
        let b = MessageId::generate();
        assert!(a.as_str().starts_with("msg_"));
        assert!(a < b, "ids must sort by creation time");
        assert!(MessageId::looks_like(a.as_str()));
        assert!(!MessageId::looks_like("msg_not-a-ulid"));
        assert!(!AppId::looks_like(a.as_str()));
    }
}
