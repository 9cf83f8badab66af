//! Herald's HTTP API: the Svix-compatible management routes under `/api/v1`, health, and the
//! cross-cutting layers (authentication, idempotency keys, trailing-slash tolerance, JSON
//! errors).
//!
//! Handlers validate input, check tenancy and call the store; they never send webhooks (the
//! delivery engine does, after the store has committed) and never hold secrets in logs.

use std::collections::HashMap;
use std::sync::Arc;

use parking_lot::Mutex;

use axum::Router;
use herald_core::model::{Application, Endpoint};
use herald_core::ops::OperationalEvent;
use herald_core::ssrf::EgressPolicy;
use herald_store::{OpsLog, Store};
use tokio::net::TcpListener;
use tokio::sync::Notify;
use tower::Layer;
use tower_http::normalize_path::NormalizePathLayer;

mod access_log;
mod body_guard;
pub mod dto;
pub mod error;
pub mod extract;
mod idempotency;
pub mod openapi;
mod routes;
mod schema;
pub mod server;

use error::{ApiError, ApiResult};
use extract::{Auth, Caller};
pub use server::ConnectionLimits;

/// Settings the API needs from the configuration.
#[derive(Clone, Debug)]
pub struct ApiConfig {
    pub admin_token: String,
    pub egress: EgressPolicy,
    pub max_payload_bytes: usize,
    pub public_url: String,
    /// Renders `/metrics`; `None` answers 404 there.
    pub metrics: Option<metrics_exporter_prometheus::PrometheusHandle>,
    /// When set, `/metrics` requires it as a bearer token.
    pub metrics_token: Option<String>,
    /// The local delivery loop's heartbeat (millis), when this process runs workers.
    pub worker_heartbeat: Option<Arc<std::sync::atomic::AtomicI64>>,
}

/// Shared state of all handlers.
#[derive(Clone)]
pub struct AppState {
    pub(crate) inner: Arc<StateInner>,
}

pub(crate) struct StateInner {
    pub store: Arc<dyn Store>,
    pub admin_token_hash: [u8; 32],
    pub egress: EgressPolicy,
    pub max_payload_bytes: usize,
    pub public_url: String,
    pub metrics: Option<metrics_exporter_prometheus::PrometheusHandle>,
    pub metrics_token_hash: Option<[u8; 32]>,
    pub worker_heartbeat: Option<Arc<std::sync::atomic::AtomicI64>>,
    pub waker: Option<Arc<Notify>>,
    pub ops: Option<OpsLog>,
    pub idem_locks: Mutex<HashMap<[u8; 32], Arc<tokio::sync::Mutex<()>>>>,
    pub schemas: schema::SchemaCache,
    pub inbound: routes::inbound::InboundLimits,
    /// `herald listen` sessions of this node; `None` where no delivery workers run.
    pub listen: Option<herald_delivery::ListenHub>,
}

/// Room for the envelope around a maximal payload.
const ENVELOPE_BYTES: usize = 64 * 1024;

impl AppState {
    /// `waker` is poked after each publish so local workers start at once; `ops` records
    /// operational events (`endpoint.enabled` / `endpoint.disabled` from the API).
    pub fn new(
        store: Arc<dyn Store>,
        cfg: ApiConfig,
        waker: Option<Arc<Notify>>,
        ops: Option<OpsLog>,
    ) -> Self {
        Self {
            inner: Arc::new(StateInner {
                store,
                admin_token_hash: extract::sha256(cfg.admin_token.as_bytes()),
                egress: cfg.egress,
                max_payload_bytes: cfg.max_payload_bytes,
                public_url: cfg.public_url,
                metrics: cfg.metrics,
                worker_heartbeat: cfg.worker_heartbeat,
                metrics_token_hash: cfg
                    .metrics_token
                    .as_deref()
                    .map(|t| extract::sha256(t.as_bytes())),
                waker,
                ops,
                idem_locks: Mutex::new(HashMap::new()),
                schemas: Default::default(),
                inbound: Default::default(),
                listen: None,
            }),
        }
    }

    /// Serves `herald listen` sessions through `hub` (the one this node's engine forwards
    /// temporary endpoints' deliveries to). Call before the state is cloned.
    pub fn with_listen(mut self, hub: herald_delivery::ListenHub) -> Self {
        match Arc::get_mut(&mut self.inner) {
            Some(inner) => inner.listen = Some(hub),
            None => tracing::error!(
                "AppState::with_listen called on a shared state; herald listen stays off"
            ),
        }
        self
    }

    pub(crate) fn store(&self) -> &dyn Store {
        self.inner.store.as_ref()
    }

    pub(crate) fn body_limit(&self) -> usize {
        self.inner.max_payload_bytes + ENVELOPE_BYTES
    }

    /// Records `endpoint.enabled` / `endpoint.disabled` when an update flipped `disabled`.
    pub(crate) async fn endpoint_toggled(&self, was_disabled: bool, ep: &Endpoint) {
        let Some(ops) = &self.inner.ops else { return };
        if was_disabled == ep.disabled || ops.is_ops_app(&ep.app_id) {
            return;
        }
        let ev = if ep.disabled {
            OperationalEvent::EndpointDisabled {
                app_id: ep.app_id.clone(),
                endpoint_id: ep.id.clone(),
                endpoint_uid: ep.uid.clone(),
                trigger: "manual",
                fail_since: None,
            }
        } else {
            OperationalEvent::EndpointEnabled {
                app_id: ep.app_id.clone(),
                endpoint_id: ep.id.clone(),
                endpoint_uid: ep.uid.clone(),
            }
        };
        ops.emit(ev).await;
    }

    pub(crate) fn wake(&self) {
        if let Some(w) = &self.inner.waker {
            w.notify_one();
        }
    }

    /// Resolves `{app_id}` (ID or uid) and enforces tenancy: a scoped token sees only its own
    /// application and gets 403 for any other, existing or not.
    pub(crate) async fn app(&self, auth: &Auth, key: &str) -> ApiResult<Application> {
        let app = self.store().get_app(key).await?;
        match (&auth.caller, app) {
            (Caller::App(own), Some(a)) if a.id == *own => Ok(a),
            (Caller::App(_), _) => Err(ApiError::Forbidden(
                "this token may only access its own application".into(),
            )),
            (_, Some(a)) => Ok(a),
            (_, None) => Err(ApiError::not_found("application")),
        }
    }
}

/// The full router (`/api/v1/...`, `/healthz`).
pub fn router(state: AppState) -> Router {
    routes::router(state.clone())
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            idempotency::layer,
        ))
        // Outside idempotency: a replay answered without reading the body is drained too.
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            body_guard::layer,
        ))
        // Outermost but inside routing, so the matched route template is known.
        .route_layer(axum::middleware::from_fn(access_log::layer))
        // A bug that panics in a handler answers 500 `{code, detail}` instead of dropping the
        // connection without an answer (and the panic is logged with its message).
        .layer(tower_http::catch_panic::CatchPanicLayer::custom(panicked))
        .with_state(state)
}

fn panicked(err: Box<dyn std::any::Any + Send + 'static>) -> axum::response::Response {
    let what = err
        .downcast_ref::<String>()
        .map(String::as_str)
        .or_else(|| err.downcast_ref::<&str>().copied())
        .unwrap_or("a panic without a message");
    axum::response::IntoResponse::into_response(ApiError::Internal(format!(
        "handler panicked: {what}"
    )))
}

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
