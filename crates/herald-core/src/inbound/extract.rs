//! Where a value (event type, deduplication key, ordering key) comes from in a request, and
//! reading it.
//!
//! Pure: reads the request it is given. [`Field`] is the `const` form providers use to declare
//! their defaults; [`Extract`] is the configurable (JSON) form.

use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::digest::sha256_hex;
use super::request::header_value;
use super::Request;

/// Where a value comes from. JSON: `{"header": "X-GitHub-Event"}`, `{"json": "/type"}`,
/// `{"value": "x"}`, `{"bodyHash": true}`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum Extract {
    Header(String),
    /// RFC 6901 JSON Pointer into the body.
    Json(String),
    Value(String),
    BodyHash(bool),
}

/// A provider's default place for a value, as a constant.
#[derive(Clone, Copy)]
pub(crate) enum Field {
    Header(&'static str),
    Json(&'static str),
    /// The hex SHA-256 of the body (the deduplication key of last resort).
    BodyHash,
}

impl Field {
    pub(crate) fn to_extract(self) -> Extract {
        match self {
            Field::Header(n) => Extract::Header(n.to_string()),
            Field::Json(p) => Extract::Json(p.to_string()),
            Field::BodyHash => Extract::BodyHash(true),
        }
    }
}

/// Extracts a value from the request by rule: a header value, a JSON Pointer to a string or
/// number (rendered as text), a literal, or the hex SHA-256 of the body for `BodyHash(true)`.
///
/// `None` when the value is absent or empty (an empty key would merge unrelated requests).
/// A Standard Webhooks header (`webhook-…`) is also looked up under its Svix name (`svix-…`),
/// because the two brands send the same headers under both names.
pub fn extract(rule: &Extract, req: &Request) -> Option<String> {
    let found = match rule {
        Extract::Header(name) => header_value(req, name).or_else(|| {
            let lower = name.to_ascii_lowercase();
            let alias = lower.strip_prefix("webhook-")?;
            header_value(req, &format!("svix-{alias}"))
        }),
        Extract::Json(pointer) => {
            let doc: Value = serde_json::from_slice(req.body).ok()?;
            match doc.pointer(pointer)? {
                Value::String(s) => Some(s.clone()),
                Value::Number(n) => Some(n.to_string()),
                _ => None,
            }
        }
        Extract::Value(v) => Some(v.clone()),
        Extract::BodyHash(true) => Some(sha256_hex(req.body)),
        Extract::BodyHash(false) => None,
    };
    found.filter(|s| !s.is_empty())
}
