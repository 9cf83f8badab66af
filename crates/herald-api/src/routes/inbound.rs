//! The ingestion endpoint `POST /in/{source_id}` (inbound.md "The ingestion endpoint"): checks
//! in the contract's order, then one durable commit, then the answer.
//!
//! It owns the order of checks and the status codes. Signature rules live in
//! `herald_core::inbound`, ordering rules in `herald_core::ordering`; the dedup, ordering and
//! publish transaction lives in the store. It must never answer a 4xx for Herald's own faults
//! (storage trouble is 503 with `Retry-After`: providers drop events on 4xx), never log a
//! secret or a signature, and never read more than the body limit.

use std::collections::{BTreeMap, HashMap};

use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::Json;
use herald_core::ids::{InboundRequestId, MessageId, SourceId};
use herald_core::inbound::{self, Extract, Request, Scheme, VerifyError};
use herald_core::model::{
    is_sensitive_header, InboundRequest, InboundStatus, Message, Source, RAW_BODY_CONTENT_TYPE,
};
use herald_core::now_millis;
use herald_core::ordering::parse_sequence;
use herald_core::throttle::Bucket;
use herald_store::{DedupCheck, IngestOutcome, OrderCheck};
use parking_lot::Mutex;
use serde_json::json;
use sha2::{Digest, Sha256};

use crate::extract::Path;
use crate::routes::sources::{verification_of, OnInvalid, SourceOptions};
use crate::AppState;

/// Default dedup window.
const DEFAULT_WINDOW_S: i64 = 86_400;

/// Resource keys longer than this are stored as their SHA-256 (`sha256:<hex>`).
const MAX_ORDER_KEY: usize = 256;

/// What ingestion answers on success.
#[derive(Debug, serde::Serialize, utoipa::ToSchema)]
pub struct IngestOut {
    /// The message (`msg_…`; for a held event, the ID its message will get), or the
    /// quarantined or stale request (`inreq_…`).
    pub id: String,
    /// Present and true for a duplicate.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub duplicate: Option<bool>,
    /// Present and true for a quarantined request.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub quarantined: Option<bool>,
    /// Present and true for an event whose sequence is not above the last one accepted for its
    /// resource (source `ordering`): logged, not forwarded.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub stale: Option<bool>,
    /// Present and true for an event waiting for a missing earlier sequence (source
    /// `ordering`): forwarded when the gap is filled or `gapTimeoutSeconds` have passed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub held: Option<bool>,
}

/// The ordering check of a request, when the source orders events and the request carries
/// both a key and an integer sequence (without them it is forwarded unordered).
fn order_check(rule: &herald_core::ordering::OrderingRule, req: &Request) -> Option<OrderCheck> {
    let key = inbound::extract(&rule.key, req)?;
    let seq = inbound::extract(&rule.sequence, req).and_then(|t| parse_sequence(&t))?;
    let key = if key.len() > MAX_ORDER_KEY {
        format!("sha256:{:x}", Sha256::digest(key.as_bytes()))
    } else {
        key
    };
    Some(OrderCheck {
        key,
        seq,
        gap_timeout_ms: rule.gap_timeout_ms(),
    })
}

/// Per-source request buckets for `rateLimit` (per node; abuse protection, not accounting).
#[derive(Default)]
pub struct InboundLimits {
    buckets: Mutex<HashMap<SourceId, Bucket>>,
}

fn error(status: StatusCode, code: &str, detail: impl Into<String>) -> Response {
    (
        status,
        Json(json!({ "code": code, "detail": detail.into() })),
    )
        .into_response()
}

fn unavailable(e: impl std::fmt::Display) -> Response {
    tracing::error!(cause = %e, "inbound: storage unavailable");
    let mut r = error(
        StatusCode::SERVICE_UNAVAILABLE,
        "storage_unavailable",
        "storage is unavailable; retry later",
    );
    r.headers_mut()
        .insert("retry-after", HeaderValue::from_static("5"));
    r
}

fn outcome(o: &'static str) {
    metrics::counter!("herald_inbound_requests_total", "outcome" => o).increment(1);
}

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
        if let Ok(v) = serde_json::from_slice::<serde_json::Value>(body) {
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

fn scheme_of(s: &Source) -> Option<Scheme> {
    s.verification
        .get("scheme")
        .and_then(|v| serde_json::from_value(v.clone()).ok())
}

/// The headers a source forwards with its messages (configured, else the provider's
/// defaults), never a signature or credential header.
pub fn forwarded(
    s: &Source,
    headers: &BTreeMap<String, String>,
) -> Option<BTreeMap<String, String>> {
    let scheme = scheme_of(s)?;
    let never = verification_headers(s);
    let names: Vec<String> = match SourceOptions::of(s).forward_headers {
        Some(h) => h,
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
fn verification_headers(s: &Source) -> Vec<String> {
    match verification_of(s, 0) {
        Some(v) => inbound::never_forward(&v),
        None => scheme_of(s)
            .map(inbound::signature_headers)
            .unwrap_or(&[])
            .iter()
            .map(|h| h.to_ascii_lowercase())
            .collect(),
    }
}

/// Request headers as logged: no credentials, no signatures, none of the headers the source
/// verifies with.
fn loggable(headers: &HeaderMap, never: &[String]) -> BTreeMap<String, String> {
    headers
        .iter()
        .filter(|(k, _)| {
            !is_sensitive_header(k.as_str())
                && !never.iter().any(|n| n.eq_ignore_ascii_case(k.as_str()))
                && !k.as_str().contains("signature")
        })
        .filter_map(|(k, v)| Some((k.as_str().to_string(), v.to_str().ok()?.to_string())))
        .collect()
}

/// An event type usable as a message's (`^[a-zA-Z0-9\-_.]+$`): other characters become `_`.
fn clean_event_type(s: &str) -> String {
    let t: String = s
        .chars()
        .take(256)
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '_' || c == '.' {
                c
            } else {
                '_'
            }
        })
        .collect();
    if t.is_empty() {
        "inbound".into()
    } else {
        t
    }
}

/// A provider's webhook: verified, deduplicated and accepted as a message of the source's
/// application (inbound.md "The ingestion endpoint"). No bearer token: the provider's signature
/// authenticates the request.
#[utoipa::path(post, path = "/in/{source_id}", tag = "Inbound", operation_id = "ingest",
    params(crate::openapi::IngestPath),
    request_body(content = String, content_type = "*/*", description = "The provider's body, any content type, at most `max_payload_bytes` (default 2 MiB)"),
    responses(
        (status = 202, description = "Accepted (`{id}`: the message), quarantined (`{id, quarantined: true}`: the request), or held for a missing earlier sequence (`{id, held: true}`: the message it will become)", body = IngestOut),
        (status = 200, description = "A duplicate within the dedup window (`{id, duplicate: true}`), a stale event of an ordered source (`{id, stale: true}`: the request; not forwarded), or a provider handshake answered", body = IngestOut),
        (status = 401, description = "`invalid_signature` or `timestamp_out_of_tolerance`", body = crate::error::ErrorBody),
        (status = 404, description = "No such source", body = crate::error::ErrorBody),
        (status = 413, description = "Body over `max_payload_bytes` (default 2 MiB)", body = crate::error::ErrorBody),
        (status = 429, description = "Over the source's `rateLimit`", body = crate::error::ErrorBody),
        (status = 503, description = "Storage unavailable; retry after `Retry-After`", body = crate::error::ErrorBody)))]
pub async fn ingest(
    State(st): State<AppState>,
    Path(source_id): Path<String>,
    uri: Uri,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let now = now_millis();
    // 1. Unknown source → 404; body over the limit → 413 without reading past it.
    let source = if SourceId::looks_like(&source_id) {
        match st.store().find_source(&SourceId(source_id)).await {
            Ok(s) => s,
            Err(e) => return unavailable(e),
        }
    } else {
        None
    };
    let Some(source) = source else {
        return error(StatusCode::NOT_FOUND, "not_found", "source not found");
    };
    // `max_payload_bytes` (default 2 MiB), enforced while reading; a declared length over it
    // was answered 413 before this handler ran (crate::body_guard).
    let max_body = st.inner.max_payload_bytes;
    let body = match axum::body::to_bytes(body, max_body).await {
        Ok(b) => b,
        Err(_) => {
            outcome("too_large");
            return error(
                StatusCode::PAYLOAD_TOO_LARGE,
                "payload_too_large",
                format!("body larger than {max_body} bytes"),
            );
        }
    };
    let opts = SourceOptions::of(&source);
    let secret_headers = verification_headers(&source);
    let log =
        |status: InboundStatus, reason: Option<String>, keep_body: bool, et: Option<String>| {
            InboundRequest {
                id: InboundRequestId::generate(),
                source_id: source.id.clone(),
                app_id: source.app_id.clone(),
                status,
                reason,
                msg_id: None,
                headers: loggable(&headers, &secret_headers),
                body: keep_body.then(|| String::from_utf8_lossy(&body).into_owned()),
                event_type: et,
                created_at: now,
            }
        };

    // 2. Rate limit.
    if let Some(rate) = opts.rate_limit {
        let granted = {
            let mut b = st.inner.inbound.buckets.lock();
            let bucket = b
                .entry(source.id.clone())
                .or_insert_with(|| Bucket::fresh(now));
            bucket.take(rate, now, 1).0
        };
        if granted == 0 {
            outcome("rate_limited");
            let mut r = error(
                StatusCode::TOO_MANY_REQUESTS,
                "rate_limited",
                "this source's rateLimit is exceeded",
            );
            r.headers_mut()
                .insert("retry-after", HeaderValue::from_static("1"));
            return r;
        }
    }

    // 3. Signature and timestamp.
    let Some(verification) = verification_of(&source, now) else {
        return unavailable("source verification is unreadable");
    };
    let url = match &opts.public_url {
        Some(p) => match uri.query() {
            Some(q) => format!("{}?{q}", p.split('?').next().unwrap_or(p)),
            None => p.clone(),
        },
        None => format!(
            "{}{}",
            st.inner.public_url,
            uri.path_and_query().map(|p| p.as_str()).unwrap_or("")
        ),
    };
    let req = Request {
        url: &url,
        headers: &headers,
        body: &body,
    };
    if let Err(e) = inbound::verify(&verification, &req, now / 1000) {
        let (code, metric) = match e {
            VerifyError::Stale => ("timestamp_out_of_tolerance", "stale_timestamp"),
            _ => ("invalid_signature", "invalid_signature"),
        };
        outcome(metric);
        tracing::warn!(source_id = %source.id, reason = %e, "inbound request rejected");
        let _ = st
            .store()
            .log_inbound(log(
                InboundStatus::Rejected,
                Some(format!("{code}: {e}")),
                false,
                None,
            ))
            .await;
        return error(StatusCode::UNAUTHORIZED, code, e.to_string());
    }

    // 4. Provider handshakes.
    if let Some(h) = inbound::handshake(&verification, &req) {
        let _ = st
            .store()
            .log_inbound(log(InboundStatus::Handshake, None, false, None))
            .await;
        let mut r = (
            StatusCode::from_u16(h.status).unwrap_or(StatusCode::OK),
            h.body,
        )
            .into_response();
        r.headers_mut()
            .insert("content-type", HeaderValue::from_static(h.content_type));
        return r;
    }

    let scheme = verification.scheme;
    let event_type = opts
        .event_type
        .clone()
        .or_else(|| inbound::default_event_type(scheme))
        .and_then(|rule| inbound::extract(&rule, &req))
        .map(|t| clean_event_type(&t))
        .unwrap_or_else(|| "inbound".into());

    // 6. Schema (checked before dedup so an invalid request never claims a key).
    if let Some(schema) = &opts.schema {
        let problem = match serde_json::from_slice::<serde_json::Value>(&body) {
            Err(e) => Some(format!("body is not JSON: {e}")),
            Ok(v) => match crate::schema::compile_one(schema) {
                Err(e) => Some(format!("source schema does not compile: {e}")),
                Ok(val) => val
                    .iter_errors(&v)
                    .take(5)
                    .map(|e| format!("{}: {e}", e.instance_path))
                    .reduce(|a, b| format!("{a}; {b}")),
            },
        };
        if let Some(problem) = problem {
            return match opts.on_invalid {
                OnInvalid::Reject => {
                    let _ = st
                        .store()
                        .log_inbound(log(
                            InboundStatus::Rejected,
                            Some(format!("schema: {problem}")),
                            false,
                            Some(event_type),
                        ))
                        .await;
                    crate::error::ApiError::Validation(vec![crate::error::FieldError {
                        loc: vec!["body".into()],
                        msg: problem,
                        kind: "schema_error".into(),
                    }])
                    .into_response()
                }
                OnInvalid::Quarantine => {
                    let q = log(
                        InboundStatus::Quarantined,
                        Some(format!("schema: {problem}")),
                        true,
                        Some(event_type),
                    );
                    let id = q.id.clone();
                    match st.store().log_inbound(q).await {
                        Ok(()) => {
                            outcome("quarantined");
                            (
                                StatusCode::ACCEPTED,
                                Json(json!({ "id": id, "quarantined": true })),
                            )
                                .into_response()
                        }
                        Err(e) => unavailable(e),
                    }
                }
            };
        }
    }

    // 5. Dedup key: configured, else the provider's default, else the body hash.
    let dedup_rule = opts
        .dedup
        .as_ref()
        .and_then(|d| d.key.clone())
        .unwrap_or_else(|| inbound::dedup_key_for(&verification));
    let value = inbound::extract(&dedup_rule, &req)
        .or_else(|| inbound::extract(&Extract::BodyHash(true), &req))
        .unwrap_or_default();
    let key: [u8; 32] = Sha256::digest(format!("{}:{value}", source.id).as_bytes()).into();
    let window = opts
        .dedup
        .as_ref()
        .and_then(|d| d.window_seconds)
        .unwrap_or(DEFAULT_WINDOW_S);

    // Ordering (source option): the store decides stale / held / accepted in the same
    // transaction as the dedup key and the message.
    let order = opts
        .ordering
        .as_ref()
        .and_then(|rule| order_check(rule, &req));

    // 7. Accept: one durable commit of key, message and log row.
    let logged_headers: BTreeMap<String, String> = loggable(&headers, &secret_headers);
    let payload = InboundPayload::of(
        &body,
        headers.get("content-type").and_then(|v| v.to_str().ok()),
    );
    let msg = Message {
        id: MessageId::generate(),
        app_id: source.app_id.clone(),
        event_id: None,
        event_type: event_type.clone(),
        headers: payload.headers(forwarded(&source, &logged_headers_with_forward(&headers))),
        payload: Some(payload.text),
        channels: Some(vec![source.channel()]),
        created_at: now,
        retention_ms: None,
        ordering_key: order.as_ref().map(|o| format!("{}:{}", source.id, o.key)),
    };
    let unordered = (opts.ordering.is_some() && order.is_none())
        .then(|| "ordering: no resource key or integer sequence found; forwarded unordered".into());
    let mut entry = log(InboundStatus::Accepted, unordered, false, Some(event_type));
    entry.headers = logged_headers;
    let request_id = entry.id.clone();
    match st
        .store()
        .ingest(
            entry,
            Some(DedupCheck {
                key,
                since: now - window * 1000,
            }),
            msg,
            order,
        )
        .await
    {
        Ok(IngestOutcome::Accepted(id)) => {
            outcome("accepted");
            metrics::counter!("herald_messages_published_total", "origin" => "inbound")
                .increment(1);
            st.wake();
            (StatusCode::ACCEPTED, Json(json!({ "id": id }))).into_response()
        }
        Ok(IngestOutcome::Duplicate(id)) => {
            outcome("duplicate");
            metrics::counter!("herald_inbound_dedup_hits_total").increment(1);
            (StatusCode::OK, Json(json!({ "id": id, "duplicate": true }))).into_response()
        }
        // 2xx, so the provider does not retry an event that will never be forwarded.
        Ok(IngestOutcome::Stale) => {
            outcome("stale");
            (
                StatusCode::OK,
                Json(json!({ "id": request_id, "stale": true })),
            )
                .into_response()
        }
        Ok(IngestOutcome::Held(id)) => {
            outcome("held");
            (
                StatusCode::ACCEPTED,
                Json(json!({ "id": id, "held": true })),
            )
                .into_response()
        }
        // 8. Never a 4xx for our own faults.
        Err(e) => unavailable(e),
    }
}

/// All request headers by lower-case name (forwarding picks from these).
fn logged_headers_with_forward(headers: &HeaderMap) -> BTreeMap<String, String> {
    headers
        .iter()
        .filter_map(|(k, v)| Some((k.as_str().to_string(), v.to_str().ok()?.to_string())))
        .collect()
}
