//! The engine's transformation step: from a stored message and its endpoint to the request to
//! send, or to an attempt result recorded without sending (cancel, script failure, refused URL).
//!
//! It must not send or record anything itself; it only answers what the engine should do. A
//! URL rewritten by the handler goes through the same egress check as an endpoint URL written
//! through the API (and the client checks resolved addresses again at connect time).

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::time::Instant;

use herald_core::model::{Endpoint, Message, WireBody};
use herald_core::outcome::TransportError;
use herald_core::ssrf::{EgressPolicy, UrlError};
use serde_json::Value;

use super::{TransformPool, Webhook};
use crate::client::SendResult;

/// What to do with one delivery after its endpoint's transformation ran.
#[derive(Debug)]
pub enum Prepared {
    /// Send this request (signed by the engine over `body`).
    Send {
        method: reqwest::Method,
        url: String,
        /// Replace the endpoint's custom headers.
        headers: BTreeMap<String, String>,
        body: Vec<u8>,
    },
    /// Record this result without sending anything.
    Record(SendResult),
}

/// One delivery after its endpoint's transformation: the endpoint as the request should be
/// built for (URL and custom headers rewritten), the method and body to send, or a result to
/// record without sending.
pub struct Step<'a> {
    pub endpoint: Cow<'a, Endpoint>,
    pub method: reqwest::Method,
    pub wire: WireBody,
    pub settled: Option<SendResult>,
}

/// Applies `ep`'s enabled transformation, if any, to a delivery whose body is `wire`.
pub async fn step<'a>(
    pool: &TransformPool,
    policy: &EgressPolicy,
    ep: &'a Endpoint,
    msg: &Message,
    wire: WireBody,
) -> Step<'a> {
    let untouched = |wire, settled| Step {
        endpoint: Cow::Borrowed(ep),
        method: reqwest::Method::POST,
        wire,
        settled,
    };
    let code = match &ep.options.transformation {
        Some(t) if t.enabled && !t.code.trim().is_empty() => t.code.as_str(),
        _ => return untouched(wire, None),
    };
    match prepare(pool, policy, code, ep, msg, &wire.bytes).await {
        Prepared::Record(r) => untouched(wire, Some(r)),
        Prepared::Send {
            method,
            url,
            headers,
            body,
        } => {
            let mut changed = ep.clone();
            changed.url = url;
            changed.headers = headers;
            Step {
                endpoint: Cow::Owned(changed),
                method,
                wire: WireBody {
                    bytes: body,
                    content_type: wire.content_type,
                },
                settled: None,
            }
        }
    }
}

/// Runs `code` for one delivery of `msg` whose body on the wire would be `body`.
pub async fn prepare(
    pool: &TransformPool,
    policy: &EgressPolicy,
    code: &str,
    ep: &Endpoint,
    msg: &Message,
    body: &[u8],
) -> Prepared {
    let start = Instant::now();
    let failed = |error, detail: String| {
        Prepared::Record(SendResult::Failed {
            error,
            detail,
            duration: start.elapsed(),
        })
    };
    // A JSON body is handed over as a value; anything else (a raw inbound body) as its text.
    let (payload, is_json) = match serde_json::from_slice::<Value>(body) {
        Ok(v) => (v, true),
        Err(_) => (
            Value::String(String::from_utf8_lossy(body).into_owned()),
            false,
        ),
    };
    let input = Webhook {
        method: "POST".into(),
        url: ep.url.clone(),
        payload,
        event_type: msg.event_type.clone(),
        headers: ep.headers.clone(),
        cancel: false,
    };
    let out = match pool.run(code, &input).await {
        Ok(o) => o,
        Err(e) => return failed(TransportError::Transformation, e.to_string()),
    };
    if out.cancel {
        return Prepared::Record(SendResult::Cancelled {
            detail: "cancelled by the endpoint's transformation; nothing was sent".into(),
        });
    }
    if out.url != ep.url {
        match policy.validate_url(&out.url) {
            Ok(_) => {}
            Err(UrlError::BlockedAddress(ip)) => {
                return failed(
                    TransportError::BlockedAddress,
                    format!("the transformed url's address {ip} is private, loopback, link-local or reserved"),
                )
            }
            Err(e) => {
                return failed(
                    TransportError::Transformation,
                    format!("the transformed url is refused: {e}"),
                )
            }
        }
    }
    let body = match (&out.payload, is_json) {
        (Value::String(s), false) => s.clone().into_bytes(),
        (v, _) => match serde_json::to_vec(v) {
            Ok(b) => b,
            Err(e) => return failed(TransportError::Transformation, e.to_string()),
        },
    };
    let method = if out.method == "PUT" {
        reqwest::Method::PUT
    } else {
        reqwest::Method::POST
    };
    Prepared::Send {
        method,
        url: out.url,
        headers: out.headers,
        body,
    }
}
