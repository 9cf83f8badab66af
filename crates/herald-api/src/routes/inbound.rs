//! The ingestion endpoint `POST /in/{source_id}` (inbound.md "The ingestion endpoint"): runs
//! the steps of `crate::service::ingest` in the contract's order and renders how the request
//! ended.
//!
//! It owns the answers (status codes and bodies); the steps own the checks. Rejections render
//! through the crate's one error type. It must never log a secret or a signature.

use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::Json;
use herald_core::inbound::Request;
use herald_core::now_millis;

use crate::dto::IngestOut;
use crate::error::ApiError;
use crate::extract::Path;
use crate::paths::IngestPath;
use crate::service::ingest::{self, IngestRejection, Ingested, Intake};
use crate::state::AppState;

fn outcome(o: &'static str) {
    crate::telemetry::inbound_request(o);
}

/// A provider's webhook: verified, deduplicated and accepted as a message of the source's
/// application (inbound.md "The ingestion endpoint"). No bearer token: the provider's signature
/// authenticates the request.
#[utoipa::path(post, path = "/in/{source_id}", tag = "Inbound", operation_id = "ingest",
    params(IngestPath),
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
    Path(path): Path<IngestPath>,
    uri: Uri,
    headers: HeaderMap,
    body: Body,
) -> Response {
    match run(&st, path.source_id, &uri, &headers, body).await {
        Ok(done) => answer(done),
        Err(rejection) => {
            if let Some(o) = rejection.outcome() {
                outcome(o);
            }
            ApiError::from(rejection).into_response()
        }
    }
}

/// The pipeline, step by step.
async fn run(
    st: &AppState,
    source_id: String,
    uri: &Uri,
    headers: &HeaderMap,
    body: Body,
) -> Result<Ingested, IngestRejection> {
    let now = now_millis();
    let source = ingest::find_source(st, source_id).await?;
    let body = ingest::read_body(st, body).await?;
    let intake = Intake::new(st, source, headers, body, now);
    intake.rate_limit()?;
    let verification = intake.verification()?;
    let url = intake.signed_url(uri);
    let req = Request {
        url: &url,
        headers,
        body: &intake.body,
    };
    intake.verify(&verification, &req).await?;
    if let Some(h) = intake.handshake(&verification, &req).await {
        return Ok(Ingested::Handshake(h));
    }
    let event_type = intake.event_type(&verification, &req);
    if let Some(id) = intake.check_schema(&event_type).await? {
        return Ok(Ingested::Quarantined(id));
    }
    let dedup = intake.dedup(&verification, &req);
    intake.commit(event_type, dedup, &req).await
}

/// The answer to a request that was not rejected, with its metrics.
fn answer(done: Ingested) -> Response {
    let (status, label, body) = match done {
        Ingested::Handshake(h) => {
            let status = StatusCode::from_u16(h.status).unwrap_or(StatusCode::OK);
            let mut r = (status, h.body).into_response();
            r.headers_mut()
                .insert("content-type", HeaderValue::from_static(h.content_type));
            return r;
        }
        Ingested::Quarantined(id) => (
            StatusCode::ACCEPTED,
            "quarantined",
            IngestOut::with(id.0, |o| o.quarantined = Some(true)),
        ),
        Ingested::Accepted(id) => {
            herald_delivery::telemetry::messages_published("inbound", 1);
            (StatusCode::ACCEPTED, "accepted", IngestOut::new(id.0))
        }
        Ingested::Duplicate(id) => {
            crate::telemetry::dedup_hit();
            let out = IngestOut::with(id.0, |o| o.duplicate = Some(true));
            (StatusCode::OK, "duplicate", out)
        }
        // 2xx, so the provider does not retry an event that will never be forwarded.
        Ingested::Stale(id) => (
            StatusCode::OK,
            "stale",
            IngestOut::with(id.0, |o| o.stale = Some(true)),
        ),
        Ingested::Held(id) => (
            StatusCode::ACCEPTED,
            "held",
            IngestOut::with(id.0, |o| o.held = Some(true)),
        ),
    };
    outcome(label);
    (status, Json(body)).into_response()
}
