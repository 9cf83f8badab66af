//! Request bodies at the edge of every route: a declared `Content-Length` over the limit is
//! answered 413 before a byte of the body is read, and a body a handler answered without
//! reading (an authentication failure, an idempotent replay, a 404) is drained within the limit
//! before the answer goes out.
//!
//! Why drain: a server that closes a socket with unread request bytes in its receive buffer
//! makes the kernel send a reset, and the client often loses the answer it was about to read —
//! a retried 1 MiB publish answered from the idempotency store arrived as a reset connection.
//! Draining keeps the connection usable; where draining is not possible (over the limit, or
//! too slow), the answer carries `Connection: close` so the client knows to reconnect.
//!
//! This layer decides nothing about the request itself; handlers still read bodies with their
//! own limits (which are the same numbers).

use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use axum::body::{Body, Bytes, HttpBody};
use axum::extract::{Request, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use tokio::sync::oneshot;

use crate::error::ApiError;
use crate::state::AppState;

/// Longest time spent draining a body the handler did not read.
const DRAIN_TIMEOUT: Duration = Duration::from_secs(5);

/// The body limit of a path: ingestion takes the payload itself, API bodies an envelope
/// around it.
fn limit_for(st: &AppState, path: &str) -> usize {
    if path.starts_with("/in/") {
        st.inner.max_payload_bytes
    } else {
        st.body_limit()
    }
}

fn declared_length(req: &Request) -> Option<u64> {
    req.headers()
        .get(header::CONTENT_LENGTH)?
        .to_str()
        .ok()?
        .trim()
        .parse()
        .ok()
}

fn close(mut resp: Response) -> Response {
    resp.headers_mut()
        .insert(header::CONNECTION, HeaderValue::from_static("close"));
    resp
}

pub async fn layer(State(st): State<AppState>, req: Request, next: Next) -> Response {
    let limit = limit_for(&st, req.uri().path());
    if declared_length(&req).is_some_and(|n| n > limit as u64) {
        if req.uri().path().starts_with("/in/") {
            crate::telemetry::inbound_request("too_large");
        }
        return close(ApiError::PayloadTooLarge(limit).into_response());
    }
    if req.body().is_end_stream() {
        return next.run(req).await;
    }
    let (parts, body) = req.into_parts();
    let (tx, rx) = oneshot::channel();
    let body = Body::new(Reclaim {
        inner: Some(body),
        back: Some(tx),
    });
    let resp = next.run(Request::from_parts(parts, body)).await;
    let mut rx = rx;
    match rx.try_recv() {
        // Read to the end, or still held by whoever took it over (a streaming handler).
        Err(_) => resp,
        Ok(_) if resp.status() == StatusCode::PAYLOAD_TOO_LARGE => close(resp),
        Ok(rest) => {
            match tokio::time::timeout(DRAIN_TIMEOUT, axum::body::to_bytes(rest, limit)).await {
                Ok(Ok(_)) => resp,
                _ => close(resp),
            }
        }
    }
}

/// A request body that hands whatever is left of itself back to [`layer`] when it is dropped
/// unfinished.
struct Reclaim {
    inner: Option<Body>,
    back: Option<oneshot::Sender<Body>>,
}

impl HttpBody for Reclaim {
    type Data = Bytes;
    type Error = axum::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<http_body::Frame<Bytes>, axum::Error>>> {
        let Some(inner) = self.inner.as_mut() else {
            return Poll::Ready(None);
        };
        let polled = Pin::new(inner).poll_frame(cx);
        if let Poll::Ready(None) = polled {
            // Finished: nothing to hand back.
            self.back = None;
        }
        polled
    }

    fn is_end_stream(&self) -> bool {
        self.inner.as_ref().is_none_or(|b| b.is_end_stream())
    }

    fn size_hint(&self) -> http_body::SizeHint {
        self.inner
            .as_ref()
            .map(|b| b.size_hint())
            .unwrap_or_else(|| http_body::SizeHint::with_exact(0))
    }
}

impl Drop for Reclaim {
    fn drop(&mut self) {
        if let (Some(tx), Some(body)) = (self.back.take(), self.inner.take()) {
            if !body.is_end_stream() {
                let _ = tx.send(body);
            }
        }
    }
}
