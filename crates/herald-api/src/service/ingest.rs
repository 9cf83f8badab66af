//! The inbound pipeline of `POST /in/{source_id}` as named steps, in the contract's order
//! (inbound.md "The ingestion endpoint"): find the source, read the body within the limit,
//! rate limit, verify the signature, answer a provider handshake, check the schema, then
//! dedup/order and commit in one durable transaction.
//!
//! Each step returns an [`IngestRejection`] when the request stops there; it converts into the
//! crate's one error type, which renders it. Signature rules live in `herald_core::inbound`,
//! ordering rules in `herald_core::ordering`, the dedup/ordering/publish transaction in the
//! store. The pipeline must never answer a 4xx for Herald's own faults (storage trouble is 503
//! with `Retry-After`: providers drop events on 4xx), never log a secret or a signature, and
//! never read more than the body limit.

use std::collections::BTreeMap;

use axum::body::{Body, Bytes};
use axum::http::{HeaderMap, Uri};
use herald_core::ids::{InboundRequestId, MessageId, SourceId};
use herald_core::inbound::{self, Extract, Handshake, Request, Verification, VerifyError};
use herald_core::model::{is_sensitive_header, InboundRequest, InboundStatus, Source};
use herald_core::ordering::{parse_sequence, OrderingRule};
use herald_store::{DedupCheck, IngestOutcome, OrderCheck};
use sha2::{Digest, Sha256};

use crate::error::{ApiError, FieldError};
use crate::service::sources::{self, Received};
use crate::state::AppState;
use herald_core::source::{OnInvalid, SourceOptions};

/// Default dedup window.
const DEFAULT_WINDOW_S: i64 = 86_400;

/// Resource keys longer than this are stored as their SHA-256 (`sha256:<hex>`).
const MAX_ORDER_KEY: usize = 256;

/// Why a request stopped before it was accepted.
#[derive(Debug, thiserror::Error)]
pub enum IngestRejection {
    #[error("source not found")]
    UnknownSource,
    #[error("body larger than {0} bytes")]
    TooLarge(usize),
    #[error("this source's rateLimit is exceeded")]
    RateLimited,
    #[error("{0}")]
    InvalidSignature(String),
    #[error("{0}")]
    StaleTimestamp(String),
    /// The body fails the source's schema and the source rejects such requests (422).
    #[error("{0}")]
    SchemaInvalid(String),
    /// Herald's own fault: 503, so the provider retries.
    #[error("storage unavailable: {0}")]
    Storage(String),
}

impl IngestRejection {
    /// The `outcome` label of `herald_inbound_requests_total`, for the rejections counted.
    pub fn outcome(&self) -> Option<&'static str> {
        match self {
            Self::TooLarge(_) => Some("too_large"),
            Self::RateLimited => Some("rate_limited"),
            Self::InvalidSignature(_) => Some("invalid_signature"),
            Self::StaleTimestamp(_) => Some("stale_timestamp"),
            Self::UnknownSource | Self::SchemaInvalid(_) | Self::Storage(_) => None,
        }
    }
}

impl From<IngestRejection> for ApiError {
    fn from(r: IngestRejection) -> Self {
        let detail = r.to_string();
        match r {
            IngestRejection::UnknownSource => ApiError::NotFound(detail),
            IngestRejection::TooLarge(n) => ApiError::BodyTooLarge(n),
            IngestRejection::RateLimited => ApiError::RateLimited(detail),
            IngestRejection::InvalidSignature(d) => ApiError::InvalidSignature(d),
            IngestRejection::StaleTimestamp(d) => ApiError::TimestampOutOfTolerance(d),
            IngestRejection::SchemaInvalid(problem) => ApiError::Validation(vec![FieldError {
                loc: vec!["body".into()],
                msg: problem,
                kind: "schema_error".into(),
            }]),
            IngestRejection::Storage(cause) => ApiError::Unavailable(cause),
        }
    }
}

fn storage(e: impl std::fmt::Display) -> IngestRejection {
    IngestRejection::Storage(e.to_string())
}

/// How a request that was not rejected ended.
pub enum Ingested {
    /// A provider's handshake, answered as the provider expects.
    Handshake(Handshake),
    /// Failed the schema and kept for release (the request's ID).
    Quarantined(InboundRequestId),
    Accepted(MessageId),
    /// Seen within the dedup window: the first message's ID.
    Duplicate(MessageId),
    /// Not above the last sequence of its resource: logged, not forwarded (the request's ID).
    Stale(InboundRequestId),
    /// Waiting for a missing earlier sequence: the ID its message will get.
    Held(MessageId),
}

/// Step 1: the source the path names; unknown (or not shaped like a source ID) is 404.
pub async fn find_source(st: &AppState, source_id: String) -> Result<Source, IngestRejection> {
    if !SourceId::looks_like(&source_id) {
        return Err(IngestRejection::UnknownSource);
    }
    st.store()
        .find_source(&SourceId(source_id))
        .await
        .map_err(storage)?
        .ok_or(IngestRejection::UnknownSource)
}

/// Step 2: the body, read up to `max_payload_bytes` (default 2 MiB) and not past it. A
/// declared length over the limit was answered 413 before the handler ran
/// (the body guard layer).
pub async fn read_body(st: &AppState, body: Body) -> Result<Bytes, IngestRejection> {
    let max = st.inner.max_payload_bytes;
    axum::body::to_bytes(body, max)
        .await
        .map_err(|_| IngestRejection::TooLarge(max))
}

/// One request to a known source, with everything the later steps read.
pub struct Intake<'a> {
    pub st: &'a AppState,
    pub source: Source,
    pub opts: SourceOptions,
    pub headers: &'a HeaderMap,
    pub body: Bytes,
    pub now: i64,
    /// Headers the source verifies with: never logged, never forwarded.
    secret_headers: Vec<String>,
}

impl<'a> Intake<'a> {
    pub fn new(
        st: &'a AppState,
        source: Source,
        headers: &'a HeaderMap,
        body: Bytes,
        now: i64,
    ) -> Self {
        Self {
            st,
            opts: source.options.clone(),
            secret_headers: sources::verification_headers(&source),
            source,
            headers,
            body,
            now,
        }
    }

    /// A request-log row of this request.
    fn log(
        &self,
        status: InboundStatus,
        reason: Option<String>,
        keep_body: bool,
        event_type: Option<String>,
    ) -> InboundRequest {
        InboundRequest {
            id: InboundRequestId::generate(),
            source_id: self.source.id.clone(),
            app_id: self.source.app_id.clone(),
            status,
            reason,
            msg_id: None,
            headers: loggable(self.headers, &self.secret_headers),
            body: keep_body.then(|| String::from_utf8_lossy(&self.body).into_owned()),
            event_type,
            created_at: self.now,
        }
    }

    /// Logs a request that goes no further; a failure to log must not change the answer.
    async fn log_best_effort(&self, row: InboundRequest) {
        let _ = self.st.store().log_inbound(row).await;
    }

    /// Step 3: the source's `rateLimit`.
    pub fn rate_limit(&self) -> Result<(), IngestRejection> {
        match self.opts.rate_limit {
            Some(rate) if !self.st.inner.inbound.take(&self.source.id, rate, self.now) => {
                Err(IngestRejection::RateLimited)
            }
            _ => Ok(()),
        }
    }

    /// The source's verification with the secrets valid now.
    pub fn verification(&self) -> Result<Verification, IngestRejection> {
        Ok(sources::verification_of(&self.source, self.now))
    }

    /// The URL the provider signed: the source's `publicUrl` (with this request's query), else
    /// Herald's public URL plus the request's path.
    pub fn signed_url(&self, uri: &Uri) -> String {
        match &self.opts.public_url {
            Some(p) => match uri.query() {
                Some(q) => format!("{}?{q}", p.split('?').next().unwrap_or(p)),
                None => p.clone(),
            },
            None => format!(
                "{}{}",
                self.st.inner.public_url,
                uri.path_and_query().map(|p| p.as_str()).unwrap_or("")
            ),
        }
    }

    /// Step 4: signature and timestamp; a failure is logged (without the body) and is 401.
    pub async fn verify(&self, v: &Verification, req: &Request<'_>) -> Result<(), IngestRejection> {
        let Err(e) = inbound::verify(v, req, self.now / 1000) else {
            return Ok(());
        };
        let (code, rejection) = match e {
            VerifyError::Stale => (
                "timestamp_out_of_tolerance",
                IngestRejection::StaleTimestamp(e.to_string()),
            ),
            _ => (
                "invalid_signature",
                IngestRejection::InvalidSignature(e.to_string()),
            ),
        };
        tracing::warn!(source_id = %self.source.id, reason = %e, "inbound request rejected");
        let reason = Some(format!("{code}: {e}"));
        self.log_best_effort(self.log(InboundStatus::Rejected, reason, false, None))
            .await;
        Err(rejection)
    }

    /// Step 5: a provider's handshake (e.g. Slack's `url_verification`), logged and answered.
    pub async fn handshake(&self, v: &Verification, req: &Request<'_>) -> Option<Handshake> {
        let h = inbound::handshake(v, req)?;
        self.log_best_effort(self.log(InboundStatus::Handshake, None, false, None))
            .await;
        Some(h)
    }

    /// The message's event type: the source's rule, else the provider's, else `inbound`.
    pub fn event_type(&self, v: &Verification, req: &Request<'_>) -> String {
        self.opts
            .event_type
            .clone()
            .or_else(|| inbound::default_event_type(v.scheme))
            .and_then(|rule| inbound::extract(&rule, req))
            .map(|t| clean_event_type(&t))
            .unwrap_or_else(|| "inbound".into())
    }

    /// Step 6: the source's schema, checked before dedup so an invalid request never claims a
    /// key. `Ok(None)` goes on; `Ok(Some(id))` was quarantined; `Err` was rejected (422).
    pub async fn check_schema(
        &self,
        event_type: &str,
    ) -> Result<Option<InboundRequestId>, IngestRejection> {
        let Some(problem) = self.schema_problem() else {
            return Ok(None);
        };
        let reason = Some(format!("schema: {problem}"));
        let et = Some(event_type.to_string());
        match self.opts.on_invalid {
            OnInvalid::Reject => {
                self.log_best_effort(self.log(InboundStatus::Rejected, reason, false, et))
                    .await;
                Err(IngestRejection::SchemaInvalid(problem))
            }
            OnInvalid::Quarantine => {
                let q = self.log(InboundStatus::Quarantined, reason, true, et);
                let id = q.id.clone();
                self.st.store().log_inbound(q).await.map_err(storage)?;
                Ok(Some(id))
            }
        }
    }

    /// What is wrong with the body under the source's schema, if it has one.
    fn schema_problem(&self) -> Option<String> {
        let schema = self.opts.schema.as_ref()?;
        let doc = match serde_json::from_slice::<serde_json::Value>(&self.body) {
            Ok(doc) => doc,
            Err(e) => return Some(format!("body is not JSON: {e}")),
        };
        match self.st.inner.source_schemas.get(&self.source, schema) {
            Err(e) => Some(format!("source schema does not compile: {e}")),
            Ok(val) => val
                .iter_errors(&doc)
                .take(5)
                .map(|e| format!("{}: {e}", e.instance_path))
                .reduce(|a, b| format!("{a}; {b}")),
        }
    }

    /// Step 7: the dedup key (configured, else the provider's default, else the body hash)
    /// and its window.
    pub fn dedup(&self, v: &Verification, req: &Request<'_>) -> DedupCheck {
        let rule = self
            .opts
            .dedup
            .as_ref()
            .and_then(|d| d.key.clone())
            .unwrap_or_else(|| inbound::dedup_key_for(v));
        let value = inbound::extract(&rule, req)
            .or_else(|| inbound::extract(&Extract::BodyHash(true), req))
            .unwrap_or_default();
        let key: [u8; 32] = Sha256::digest(format!("{}:{value}", self.source.id).as_bytes()).into();
        DedupCheck {
            key,
            since: window_start(&self.opts, self.now),
        }
    }

    /// Step 8: one durable commit of the dedup key, the message and the log row; with
    /// `ordering`, the store decides stale / held / accepted in the same transaction.
    pub async fn commit(
        &self,
        event_type: String,
        dedup: DedupCheck,
        req: &Request<'_>,
    ) -> Result<Ingested, IngestRejection> {
        let order = self
            .opts
            .ordering
            .as_ref()
            .and_then(|rule| order_check(rule, req));
        let all_headers = all_headers(self.headers);
        let msg = sources::message_of(
            &self.source,
            Received {
                body: &self.body,
                content_type: self
                    .headers
                    .get("content-type")
                    .and_then(|v| v.to_str().ok()),
                headers: &all_headers,
                event_type: event_type.clone(),
                created_at: self.now,
            },
            order
                .as_ref()
                .map(|o| format!("{}:{}", self.source.id, o.key)),
        );
        let unordered = (self.opts.ordering.is_some() && order.is_none()).then(|| {
            "ordering: no resource key or integer sequence found; forwarded unordered".into()
        });
        let entry = self.log(InboundStatus::Accepted, unordered, false, Some(event_type));
        let request_id = entry.id.clone();
        let outcome = self
            .st
            .store()
            .ingest(entry, Some(dedup), msg, order)
            .await
            .map_err(storage)?;
        Ok(match outcome {
            IngestOutcome::Accepted(id) => {
                self.st.wake();
                Ingested::Accepted(id)
            }
            IngestOutcome::Duplicate(id) => Ingested::Duplicate(id),
            IngestOutcome::Stale => Ingested::Stale(request_id),
            IngestOutcome::Held(id) => Ingested::Held(id),
        })
    }
}

/// The oldest time a dedup key still holds at `now`: the source's window (default a day) back.
/// Reconciliation polls skip items older than this too.
pub(crate) fn window_start(opts: &SourceOptions, now: i64) -> i64 {
    let window = opts
        .dedup
        .as_ref()
        .and_then(|d| d.window_seconds)
        .unwrap_or(DEFAULT_WINDOW_S);
    now - window * 1000
}

/// The ordering check of a request, when the source orders events and the request carries
/// both a key and an integer sequence (without them it is forwarded unordered).
fn order_check(rule: &OrderingRule, req: &Request) -> Option<OrderCheck> {
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

/// All request headers by lower-case name (forwarding picks from these).
fn all_headers(headers: &HeaderMap) -> BTreeMap<String, String> {
    headers
        .iter()
        .filter_map(|(k, v)| Some((k.as_str().to_string(), v.to_str().ok()?.to_string())))
        .collect()
}

/// An event type usable as a message's (`^[a-zA-Z0-9\-_.]+$`): other characters become `_`.
pub(crate) fn clean_event_type(s: &str) -> String {
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
