//! Answers Herald gives a provider itself (URL verification challenges, pings) instead of
//! accepting a message.
//!
//! Each provider's handshake lives in its file under `providers/`; this file owns the answer
//! type and the helpers they share. No HTTP here: the API layer writes the answer.

use serde_json::Value;

use super::Request;

/// An answer Herald gives the provider itself instead of accepting a message.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Handshake {
    pub status: u16,
    pub content_type: &'static str,
    pub body: Vec<u8>,
}

impl Handshake {
    /// 200 with a JSON body.
    pub(crate) fn json(v: Value) -> Self {
        Self {
            status: 200,
            content_type: "application/json",
            body: serde_json::to_vec(&v).expect("a JSON value serialises"),
        }
    }

    /// 200 with a `text/plain` body.
    pub(crate) fn text(s: &str) -> Self {
        Self {
            status: 200,
            content_type: "text/plain",
            body: s.as_bytes().to_vec(),
        }
    }
}

/// The body as JSON, when it is JSON.
pub(crate) fn json_body(req: &Request) -> Option<Value> {
    serde_json::from_slice(req.body).ok()
}
