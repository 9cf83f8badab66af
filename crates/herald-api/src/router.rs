//! The route table (which path goes to which handler) and the layers around it: idempotency
//! keys, draining unread bodies, the access log and turning a handler's panic into a JSON 500.
//!
//! The top of the crate: the only module that uses `openapi` (for the document and docs
//! routes). Every route here is documented in `crate::openapi` (the integration test `openapi`
//! keeps them in step). Handlers live in `crate::routes`, never here.

use axum::routing::{delete, get, post};
use axum::Router;

use crate::access_log;
use crate::body_guard;
use crate::console;
use crate::error::ApiError;
use crate::idempotency;
use crate::openapi;
use crate::routes::{
    apps, endpoints, inbound, listen, messages, misc, pull, routing, sources, transformation,
};
use crate::state::AppState;

/// The full router (`/api/v1/...`, `/healthz`).
pub fn router(state: AppState) -> Router {
    routes()
        .merge(console::router(state.clone()))
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

/// Every route and its handler.
fn routes() -> Router<AppState> {
    let v1 = application_routes().merge(other_routes());
    Router::new()
        .nest("/api/v1", v1)
        .route("/metrics", get(misc::metrics))
        .route("/in/{source_id}", post(inbound::ingest))
        .route("/healthz", get(misc::healthz))
        .route(openapi::DOCS_PATH, get(openapi::docs_index))
        .route("/docs/{file}", get(openapi::docs_asset))
        .fallback(|| async { ApiError::NotFound("no such route".into()) })
        // Without this, a known path with an unsupported method answers 405 with an empty
        // body; every error answers `{code, detail}` (outbound-api.md "Conventions").
        .method_not_allowed_fallback(|| async { ApiError::MethodNotAllowed })
}

/// `/api/v1/app/…`: applications with their endpoints, messages and attempts.
fn application_routes() -> Router<AppState> {
    let app = get(apps::get)
        .put(apps::update)
        .patch(apps::patch)
        .delete(apps::remove);
    Router::new()
        .route("/health", get(misc::health))
        .route("/app", get(apps::list).post(apps::create))
        .route("/app/{app_id}", app)
        .route(
            "/app/{app_id}/endpoint",
            get(endpoints::list).post(endpoints::create),
        )
        .nest("/app/{app_id}/endpoint/{endpoint_id}", endpoint_routes())
        .route(
            "/app/{app_id}/msg",
            get(messages::list).post(messages::create),
        )
        .nest("/app/{app_id}/msg/{msg_id}", message_routes())
        .route(
            "/app/{app_id}/attempt/endpoint/{endpoint_id}",
            get(messages::attempts_by_endpoint),
        )
        .route(
            "/app/{app_id}/attempt/msg/{msg_id}",
            get(messages::attempts_by_msg),
        )
}

/// `/api/v1/app/{app_id}/endpoint/{endpoint_id}` and what hangs below it. Nested, so the
/// handlers still read both ids from the full path.
fn endpoint_routes() -> Router<AppState> {
    let endpoint = get(endpoints::get)
        .put(endpoints::update)
        .patch(endpoints::patch)
        .delete(endpoints::remove);
    let headers = get(endpoints::headers)
        .put(endpoints::put_headers)
        .patch(endpoints::patch_headers);
    Router::new()
        .route("/", endpoint)
        .route("/secret", get(endpoints::secret))
        .route("/secret/rotate", post(endpoints::rotate))
        .route("/headers", headers)
        .route(
            "/transformation",
            get(transformation::get).patch(transformation::patch),
        )
        .route("/transformation/test", post(transformation::test))
        .route("/stats", get(endpoints::stats))
        .route("/recover", post(endpoints::recover))
        .route("/send-example", post(endpoints::send_example))
        .route("/poll", get(pull::poll))
        .route(
            "/poll/token",
            post(pull::create_token).get(pull::list_tokens),
        )
        .route("/poll/token/{token_id}", delete(pull::delete_token))
        .route("/filter/test", post(routing::test_filter))
        .route("/msg", get(messages::by_endpoint))
}

/// `/api/v1/app/{app_id}/msg/{msg_id}` and below.
fn message_routes() -> Router<AppState> {
    Router::new()
        .route("/", get(messages::get))
        .route("/content", delete(messages::expunge))
        .route("/endpoint", get(messages::endpoints_of))
        .route("/endpoint/{endpoint_id}/resend", post(messages::resend))
        .route("/attempt/{attempt_id}", get(messages::attempt))
}

/// The rest of `/api/v1`: health, event types, tokens, the document, `listen`, sources.
fn other_routes() -> Router<AppState> {
    let event_type = get(misc::get_event_type)
        .put(misc::update_event_type)
        .patch(misc::patch_event_type)
        .delete(misc::delete_event_type);
    Router::new()
        .route(
            "/event-type",
            get(misc::list_event_types).post(misc::create_event_type),
        )
        .route("/event-type/{name}", event_type)
        .route(
            "/auth/app-portal-access/{app_id}",
            post(misc::app_portal_access),
        )
        .route("/token", get(misc::list_tokens).post(misc::create_token))
        .route("/token/{token_id}", delete(misc::delete_token))
        .route("/openapi.json", get(openapi::openapi_json))
        .route("/listen", get(listen::listen))
        .route(
            "/app/{app_id}/source",
            get(sources::list).post(sources::create),
        )
        .nest("/app/{app_id}/source/{source_id}", source_routes())
}

/// `/api/v1/app/{app_id}/source/{source_id}` and below.
fn source_routes() -> Router<AppState> {
    let source = get(sources::get)
        .patch(sources::patch)
        .delete(sources::remove);
    Router::new()
        .route("/", source)
        .route("/secret/rotate", post(sources::rotate))
        .route("/poll", post(sources::poll_now))
        .route("/request", get(sources::requests))
        .route("/quarantine/{request_id}/release", post(sources::release))
        .route("/quarantine/{request_id}/reject", post(sources::reject))
}
