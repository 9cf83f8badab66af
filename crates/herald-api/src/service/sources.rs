//! Sources: resolving `{app_id}/source/{source_id}` under the caller's tenancy, and how a
//! source is shown. Its configuration arrives typed (`Source.options`, `Source.verification`):
//! the store decodes it and fails with `CorruptRecord` rather than default a value that no
//! longer decodes.
//!
//! Also what ingestion and quarantine release share: the payload a request becomes and the
//! headers a source forwards. Never logs or returns a secret.

use std::collections::BTreeMap;

use herald_core::ids::{AppId, InboundRequestId, MessageId};
use herald_core::inbound::{self, Verification};
use herald_core::model::{
    is_sensitive_header, InboundStatus, Message, Source, RAW_BODY_CONTENT_TYPE,
};
use herald_core::now_millis;
use serde_json::{json, Value};

use crate::dto::SourceOut;
use crate::error::{ApiError, ApiResult};
use crate::extract::Auth;
use crate::service::apps;
use crate::state::AppState;

/// One of the application's sources (ID or uid), under the caller's tenancy; 404 when either
/// does not exist. Routes need only the source: it carries its application's ID.
pub async fn load(st: &AppState, auth: &Auth, app_id: &str, src: &str) -> ApiResult<Source> {
    let get = |app: AppId| async move { st.store().get_source(&app, src).await };
    let (_, source) = apps::load_in(st, auth, app_id, "source", get).await?;
    Ok(source)
}

/// The logged request `request_id` of `s`, if the ID is well-formed and exists.
async fn logged(
    st: &AppState,
    s: &Source,
    request_id: &str,
) -> ApiResult<Option<herald_core::model::InboundRequest>> {
    if !InboundRequestId::looks_like(request_id) {
        return Ok(None);
    }
    let id = InboundRequestId(request_id.to_string());
    Ok(st.store().get_inbound(&s.id, &id).await?)
}

/// Accepts the quarantined request `request_id` of `s` as it is (after the schema or the
/// sender was fixed): it becomes a message now. 404 when there is no such request waiting
/// (also when it was released already).
pub async fn release(st: &AppState, s: &Source, request_id: &str) -> ApiResult<MessageId> {
    let found = logged(st, s, request_id).await?;
    if found
        .as_ref()
        .is_some_and(|q| q.status == InboundStatus::Rejected)
    {
        return Err(ApiError::Conflict(
            "this request was rejected; a rejected request is never forwarded".into(),
        ));
    }
    let Some(q) = found.filter(|q| q.status == InboundStatus::Quarantined) else {
        return Err(ApiError::not_found("quarantined request"));
    };
    let body = q.body.clone().unwrap_or_default();
    let received = Received {
        body: body.as_bytes(),
        content_type: q.headers.get("content-type").map(String::as_str),
        headers: &q.headers,
        event_type: q.event_type.clone().unwrap_or_else(|| "inbound".into()),
        created_at: now_millis(),
    };
    let msg = message_of(s, received, None);
    let published = match st.store().release_inbound(&s.id, &q.id, msg).await {
        Err(herald_store::StoreError::NotFound) => {
            return Err(ApiError::not_found("quarantined request"))
        }
        other => other?,
    };
    herald_delivery::telemetry::messages_published("inbound", 1);
    st.wake();
    Ok(published.message.id)
}

/// Rejects the quarantined request `request_id` of `s`: it is never forwarded, stays in the
/// log as `rejected` with who rejected it and when (its reason), and its body is dropped. 404
/// when there is no such request waiting (also when it was released or rejected already).
pub async fn reject(st: &AppState, auth: &Auth, s: &Source, request_id: &str) -> ApiResult<()> {
    let Some(q) = logged(st, s, request_id)
        .await?
        .filter(|q| q.status == InboundStatus::Quarantined)
    else {
        return Err(ApiError::not_found("quarantined request"));
    };
    let mut reason = format!(
        "rejected by {} at {}",
        who(st, auth).await?,
        crate::dto::ts(now_millis())
    );
    if let Some(was) = &q.reason {
        reason.push_str(&format!(" (quarantined: {was})"));
    }
    match st.store().reject_inbound(&s.id, &q.id, reason).await {
        Err(herald_store::StoreError::NotFound) => Err(ApiError::not_found("quarantined request")),
        other => Ok(other?),
    }
}

/// Who a caller is, as a log names them: the admin token, or an API token by ID and name
/// (never the token itself).
async fn who(st: &AppState, auth: &Auth) -> ApiResult<String> {
    if auth.caller == crate::extract::Caller::Admin {
        return Ok("the admin token".into());
    }
    Ok(match st.store().find_token(auth.token_hash).await? {
        Some(t) => format!("token {} ({})", t.id, t.name),
        None => "a deleted token".into(),
    })
}

/// The source's verification with the secrets valid at `now`.
pub fn verification_of(s: &Source, now: i64) -> Verification {
    let mut v = s.verification.clone();
    v.secrets = s.valid_secrets(now);
    v
}

/// The source as the API shows it.
pub fn out(st: &AppState, s: &Source) -> SourceOut {
    let warnings = inbound::scheme_warnings(s.verification.scheme);
    // Stored without secrets, so shown as stored.
    let verification = herald_core::source::verification_without_secrets(&s.verification);
    let options = s.options.clone().into();
    SourceOut::new(s, verification, options, warnings, &st.inner.public_url)
}

// ---- what ingestion and release share ------------------------------------------------------

/// A request body as a message stores it.
pub struct InboundPayload {
    /// The body itself when it is a JSON object, else the envelope `{"raw", "contentType"}`
    /// (base64 with `"encoding": "base64"` when not UTF-8) that the message API shows.
    pub text: String,
    /// For an envelope: the original content type, which deliveries send with the original
    /// bytes (see [`herald_core::model::RAW_BODY_CONTENT_TYPE`]).
    pub raw_content_type: Option<String>,
}

impl InboundPayload {
    pub fn of(body: &[u8], content_type: Option<&str>) -> Self {
        if let Ok(v) = serde_json::from_slice::<Value>(body) {
            if v.is_object() {
                if let Ok(text) = std::str::from_utf8(body) {
                    return Self {
                        text: text.to_string(),
                        raw_content_type: None,
                    };
                }
            }
        }
        let ct = content_type.unwrap_or("application/octet-stream");
        let text = match std::str::from_utf8(body) {
            Ok(text) => json!({ "raw": text, "contentType": ct }).to_string(),
            Err(_) => {
                use base64::Engine;
                json!({
                    "raw": base64::engine::general_purpose::STANDARD.encode(body),
                    "contentType": ct,
                    "encoding": "base64",
                })
                .to_string()
            }
        };
        Self {
            text,
            raw_content_type: Some(ct.to_string()),
        }
    }

    /// The message's delivery headers: the forwarded ones plus, for an envelope, the marker
    /// that makes deliveries send the original bytes.
    pub fn headers(
        &self,
        forwarded: Option<BTreeMap<String, String>>,
    ) -> Option<BTreeMap<String, String>> {
        let Some(ct) = &self.raw_content_type else {
            return forwarded;
        };
        let mut h = forwarded.unwrap_or_default();
        h.insert(RAW_BODY_CONTENT_TYPE.to_string(), ct.clone());
        Some(h)
    }
}

/// What a request of a source carries into its message.
pub struct Received<'a> {
    pub body: &'a [u8],
    pub content_type: Option<&'a str>,
    /// Request headers by lower-case name, to pick the forwarded ones from.
    pub headers: &'a BTreeMap<String, String>,
    pub event_type: String,
    pub created_at: i64,
}

/// The message a request of `source` becomes (not yet stored): its payload, the forwarded
/// headers, on the source's channel.
pub fn message_of(source: &Source, r: Received<'_>, ordering_key: Option<String>) -> Message {
    let payload = InboundPayload::of(r.body, r.content_type);
    Message {
        id: MessageId::generate(),
        app_id: source.app_id.clone(),
        event_id: None,
        event_type: r.event_type,
        headers: payload.headers(forwarded(source, r.headers)),
        payload: Some(payload.text),
        channels: Some(vec![source.channel()]),
        created_at: r.created_at,
        retention_ms: None,
        ordering_key,
    }
}

/// The headers a source forwards with its messages (configured, else the provider's
/// defaults), never a signature or credential header.
pub fn forwarded(
    s: &Source,
    headers: &BTreeMap<String, String>,
) -> Option<BTreeMap<String, String>> {
    let scheme = s.verification.scheme;
    let never = verification_headers(s);
    let names: Vec<String> = match &s.options.forward_headers {
        Some(h) => h.clone(),
        None => inbound::default_forward_headers(scheme)
            .iter()
            .map(|h| h.to_string())
            .collect(),
    };
    let out: BTreeMap<String, String> = names
        .iter()
        .filter(|n| {
            !never.iter().any(|x| x.eq_ignore_ascii_case(n))
                && !is_sensitive_header(n)
                // The body's own type travels as the raw-body marker, never as a forwarded
                // header, so that a configured `Content-Type` cannot mark a JSON body as raw.
                && !n.eq_ignore_ascii_case(RAW_BODY_CONTENT_TYPE)
        })
        .filter_map(|n| {
            headers
                .get(&n.to_ascii_lowercase())
                .map(|v| (n.clone(), v.clone()))
        })
        .collect();
    (!out.is_empty()).then_some(out)
}

/// Every header the source reads to verify a request (lower case): its scheme's signature
/// headers plus, for `hmac` and `api-key`, the configured ones. Never logged, never forwarded.
pub fn verification_headers(s: &Source) -> Vec<String> {
    inbound::never_forward(&verification_of(s, 0))
}
