//! Herald's HTTP API: the Svix-compatible management routes under `/api/v1`, ingestion under
//! `/in`, health, and the cross-cutting layers (authentication, idempotency keys,
//! trailing-slash tolerance, JSON errors).
//!
//! Handlers validate input, check tenancy and call the store; they never send webhooks (the
//! delivery engine does, after the store has committed) and never hold secrets in logs.
//!
//! Layers inside the crate (a module uses only those below it): `router` → `openapi` →
//! `routes`/`console` → `service` → `dto`, `paths`, `extract`, `schema`, `state`, `error`.

use axum::Router;
use tokio::net::TcpListener;
use tower::Layer;
use tower_http::normalize_path::NormalizePathLayer;

mod access_log;
mod body_guard;
mod console;
pub mod dto;
pub mod error;
pub mod extract;
mod idempotency;
pub mod openapi;
pub mod paths;
pub mod reconcile;
mod router;
mod routes;
mod schema;
mod scope;
pub mod server;
mod service;
mod state;
pub mod telemetry;

pub use console::throttle::SignInLimiter;
pub use router::router;
pub use server::ConnectionLimits;
pub use state::{ApiConfig, AppState, ConsoleSettings, PortalSettings};

/// Serves `router` on `listener` until `shutdown` resolves, accepting paths with a trailing
/// slash as the Svix API does. `limits` bound how long a client may take to send a request and
/// how many connections are open at once (see [`server`]).
pub async fn serve(
    listener: TcpListener,
    router: Router,
    limits: ConnectionLimits,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let app = NormalizePathLayer::trim_trailing_slash().layer(router);
    server::serve(listener, app, limits, shutdown).await
}
