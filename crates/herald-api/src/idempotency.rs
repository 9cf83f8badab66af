//! `idempotency-key` on POST: the same key from the same token on the same path within 12 h
//! answers the first 2xx again without a second side effect.
//!
//! Concurrent duplicates on this node wait for the first on a per-key lock, then find its
//! stored answer. The answer is stored after the handler's own commit, so a crash between the
//! two can let a retry act twice; that window is documented in docs/api.md.

use std::sync::Arc;

use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{HeaderValue, Method, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use herald_core::now_millis;
use herald_store::IdempotentResponse;

use axum::extract::FromRequestParts;

use crate::extract::{sha256, Auth};
use crate::state::AppState;

const WINDOW_MS: i64 = 12 * 3600 * 1000;
/// Longest answer kept for replay.
const MAX_STORED: usize = 4 * 1024 * 1024;

/// Routes whose answer carries a secret (a signing key or a bearer token). Their answers are
/// never stored for replay, so no secret lands in the database in plaintext; a retried request
/// acts again instead.
fn returns_secret(path: &str) -> bool {
    let p = path.trim_end_matches('/');
    p.ends_with("/secret/rotate")
        || p.ends_with("/poll/token")
        || p.contains("/auth/app-portal-access/")
        || p == "/api/v1/token"
}

pub async fn layer(State(st): State<AppState>, req: Request, next: Next) -> Response {
    // Ingestion has its own dedup (providers' keys, per source); `Idempotency-Key` there is a
    // provider header, not a request to replay an answer.
    if req.method() != Method::POST
        || returns_secret(req.uri().path())
        || req.uri().path().starts_with("/in/")
    {
        return next.run(req).await;
    }
    let Some(idem) = req
        .headers()
        .get("idempotency-key")
        .map(|v| v.as_bytes().to_vec())
    else {
        return next.run(req).await;
    };
    // Authentication first, on every request: a revoked token must not get its old answers
    // replayed.
    let (mut parts, body) = req.into_parts();
    if let Err(e) = Auth::from_request_parts(&mut parts, &st).await {
        return e.into_response();
    }
    let req = Request::from_parts(parts, body);
    let auth = req
        .headers()
        .get(axum::http::header::AUTHORIZATION)
        .map(|v| v.as_bytes().to_vec())
        .unwrap_or_default();
    let mut material = sha256(&auth).to_vec();
    material.extend_from_slice(req.uri().path().trim_end_matches('/').as_bytes());
    material.push(0);
    material.extend_from_slice(&idem);
    let key = sha256(&material);

    let lock = {
        let mut map = st.inner.idem_locks.lock();
        map.entry(key).or_default().clone()
    };
    let guard = lock.lock().await;
    let result = run(&st, key, req, next).await;
    drop(guard);
    {
        let mut map = st.inner.idem_locks.lock();
        if Arc::strong_count(&lock) == 2 {
            map.remove(&key);
        }
    }
    result
}

async fn run(st: &AppState, key: [u8; 32], req: Request, next: Next) -> Response {
    match st
        .store()
        .get_idempotent(key, now_millis() - WINDOW_MS)
        .await
    {
        Ok(Some(prev)) => return replay(prev),
        Ok(None) => {}
        Err(e) => return crate::error::ApiError::from(e).into_response(),
    }
    let resp = next.run(req).await;
    if !resp.status().is_success() {
        return resp;
    }
    let (parts, body) = resp.into_parts();
    let Ok(bytes) = axum::body::to_bytes(body, MAX_STORED).await else {
        return crate::error::ApiError::Internal("response too large to store".into())
            .into_response();
    };
    let stored = IdempotentResponse {
        status: parts.status.as_u16(),
        body: bytes.to_vec(),
    };
    if let Err(e) = st.store().put_idempotent(key, stored, now_millis()).await {
        tracing::warn!(error = %e, "could not store idempotent response");
    }
    Response::from_parts(parts, Body::from(bytes))
}

fn replay(prev: IdempotentResponse) -> Response {
    let mut resp = Response::new(Body::from(prev.body));
    *resp.status_mut() = StatusCode::from_u16(prev.status).unwrap_or(StatusCode::OK);
    resp.headers_mut()
        .insert("content-type", HeaderValue::from_static("application/json"));
    resp.headers_mut()
        .insert("idempotent-replayed", HeaderValue::from_static("true"));
    resp
}
