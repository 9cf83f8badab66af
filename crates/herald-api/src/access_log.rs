//! One structured log line per API request (operations.md "Logs"): method, route template,
//! status and duration, at target `herald::http`.
//!
//! The route template (`/api/v1/app/{app_id}/msg`), never the raw path or query, is what gets
//! logged: paths may carry uids chosen by tenants and queries may carry anything, while the
//! template is enough to read traffic and keeps label sets bounded. Headers — `Authorization`
//! above all — are never logged.

use std::time::Instant;

use axum::extract::{MatchedPath, Request};
use axum::middleware::Next;
use axum::response::Response;

pub async fn layer(req: Request, next: Next) -> Response {
    let started = Instant::now();
    let method = req.method().clone();
    let route = req
        .extensions()
        .get::<MatchedPath>()
        .map(|p| p.as_str().to_string())
        .unwrap_or_else(|| "(unmatched)".into());
    let resp = next.run(req).await;
    let status = resp.status().as_u16();
    let duration_ms = started.elapsed().as_secs_f64() * 1000.0;
    if status >= 500 {
        tracing::warn!(target: "herald::http", %method, route, status, duration_ms, "request");
    } else {
        tracing::info!(target: "herald::http", %method, route, status, duration_ms, "request");
    }
    resp
}
