//! What every body shares: timestamps as RFC 3339, absent-vs-null fields, the uid rule, the
//! [`Checks`] collector that turns field problems into one 422, and the list envelope.
//!
//! Plain functions and types only: this module must not look anything up or know any route.

use chrono::{DateTime, SecondsFormat};
use herald_core::model::{
    Application, Attempt, Delivery, Endpoint, EventType, InboundRequest, Message, Source,
};
use herald_core::Millis;
use herald_store::Page;
use serde::{Deserialize, Deserializer, Serialize};
use utoipa::ToSchema;

use crate::error::{ApiError, FieldError};

pub fn ts(ms: Millis) -> String {
    DateTime::from_timestamp_millis(ms)
        .unwrap_or_default()
        .to_rfc3339_opts(SecondsFormat::Millis, true)
}

/// Distinguishes an absent field (`None`) from an explicit `null` (`Some(None)`).
pub fn double<'de, D, T>(d: D) -> Result<Option<Option<T>>, D::Error>
where
    D: Deserializer<'de>,
    T: Deserialize<'de>,
{
    Option::<T>::deserialize(d).map(Some)
}

/// A PATCH field: absent (`None`) keeps `slot`, a value replaces it.
pub fn apply<T>(slot: &mut T, v: Option<T>) {
    if let Some(v) = v {
        *slot = v;
    }
}

/// A PATCH field that `null` resets: absent keeps `slot`, `null` sets the default.
pub fn apply_or_default<T: Default>(slot: &mut T, v: Option<Option<T>>) {
    apply(slot, v.map(Option::unwrap_or_default));
}

/// A rate or count as stored; the body's value was checked to be in range first.
pub fn to_u32(v: Option<i64>) -> Option<u32> {
    v.map(|n| n as u32)
}

/// `^[a-zA-Z0-9\-_.]+$`, 1–256 characters, and not `.` or `..` alone: those match the pattern
/// but clients and proxies collapse them as path segments, so such a resource could never be
/// addressed by its uid.
pub fn valid_uid(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 256
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_' || b == b'.')
        && s != "."
        && s != ".."
}

/// Collects field problems so a 422 lists all of them.
#[derive(Default)]
pub struct Checks(pub Vec<FieldError>);

impl Checks {
    pub fn fail(&mut self, field: &str, msg: impl Into<String>) {
        self.0.push(FieldError::new(field, msg));
    }
    pub fn uid(&mut self, field: &str, v: Option<&str>) {
        if let Some(u) = v {
            if !valid_uid(u) {
                self.fail(
                    field,
                    "must match ^[a-zA-Z0-9\\-_.]+$, be 1-256 characters and not be `.` or `..`",
                );
            }
            // A uid shaped like an ID would shadow real IDs in path lookups.
            if u.starts_with("app_") || u.starts_with("ep_") || u.starts_with("msg_") {
                self.fail(field, "must not start with an ID prefix (app_, ep_, msg_)");
            }
        }
    }
    pub fn name(&mut self, field: &str, v: &str) {
        if v.trim().is_empty() {
            self.fail(field, "must not be empty");
        } else if v.len() > 256 {
            self.fail(field, "must be at most 256 characters");
        }
    }
    pub fn rate(&mut self, field: &str, v: Option<i64>) {
        if let Some(r) = v {
            if !(1..=100_000).contains(&r) {
                self.fail(field, "must be between 1 and 100000");
            }
        }
    }
    pub fn finish(self) -> Result<(), ApiError> {
        if self.0.is_empty() {
            Ok(())
        } else {
            Err(ApiError::Validation(self.0))
        }
    }

    /// Ends the checks with the value a parsing check produced (`None` when it failed): the
    /// 422 listing every problem, else the value. A parser that gave no value without
    /// recording why is a bug, answered 500 rather than a panic.
    pub fn finish_with<T>(self, value: Option<T>) -> Result<T, ApiError> {
        self.finish()?;
        value.ok_or_else(|| ApiError::Internal("a check failed without saying why".into()))
    }
}

/// The list envelope every list route answers with.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ListOut<T: Serialize + ToSchema> {
    pub data: Vec<T>,
    pub iterator: Option<String>,
    pub prev_iterator: Option<String>,
    pub done: bool,
}

impl<T: Serialize + ToSchema> ListOut<T> {
    /// `key` gives the ID the next page continues from.
    pub fn new<S>(
        items: &[S],
        has_more: bool,
        key: impl Fn(&S) -> String,
        map: impl Fn(&S) -> T,
    ) -> Self {
        Self {
            iterator: items.last().map(&key),
            prev_iterator: items.first().map(|s| format!("-{}", key(s))),
            done: !has_more,
            data: items.iter().map(map).collect(),
        }
    }

    /// One page of a store listing, each item mapped with `map`.
    pub fn page<S: PageKey>(page: &Page<S>, map: impl Fn(&S) -> T) -> Self {
        Self::new(&page.items, page.has_more, S::page_key, map)
    }
}

/// What the next page of a store listing continues from: the item's ID (an event type's
/// name; a delivery listed with its message, the message's ID).
pub trait PageKey {
    fn page_key(&self) -> String;
}

macro_rules! page_key_is_id {
    ($($t:ty),+) => {
        $(impl PageKey for $t {
            fn page_key(&self) -> String {
                self.id.0.clone()
            }
        })+
    };
}

page_key_is_id!(
    Application,
    Endpoint,
    Message,
    Attempt,
    Source,
    InboundRequest
);

impl PageKey for EventType {
    fn page_key(&self) -> String {
        self.name.clone()
    }
}

impl PageKey for (Delivery, Message) {
    fn page_key(&self) -> String {
        self.1.page_key()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `expect("checked")` after validation panicked whenever a parser gave no value without
    /// recording a problem; the value now comes out of the checks themselves.
    #[test]
    fn defect_11_checks_hand_out_the_parsed_value_without_panicking() {
        assert_eq!(Checks::default().finish_with(Some(3)).ok(), Some(3));
        let silent_failure = Checks::default().finish_with::<u8>(None);
        assert!(matches!(silent_failure, Err(ApiError::Internal(_))));
        let mut c = Checks::default();
        c.fail("x", "bad");
        assert!(matches!(
            c.finish_with(Some(1)),
            Err(ApiError::Validation(_))
        ));
    }

    #[test]
    fn uids_follow_the_contract_and_are_addressable() {
        for good in ["a", "A-b_c.d", "..a", &"x".repeat(256)] {
            assert!(valid_uid(good), "{good}");
        }
        for bad in [
            "",
            ".",
            "..",
            "a b",
            "a/b",
            "é",
            "a\0",
            "a\r\n",
            &"x".repeat(257),
        ] {
            assert!(!valid_uid(bad), "{bad:?}");
        }
    }
}
