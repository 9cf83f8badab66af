//! Route table: which path goes to which handler. One module per resource family. Every route
//! here is documented in `crate::openapi` (the integration test `openapi` keeps them in step).

use axum::http::StatusCode;
use axum::response::IntoResponse;
use axum::routing::{delete, get, post};
use axum::{Json, Router};
use serde_json::json;

use crate::{openapi, AppState};

pub(crate) mod apps;
pub(crate) mod endpoints;
pub(crate) mod inbound;
pub(crate) mod listen;
pub(crate) mod messages;
pub(crate) mod misc;
pub(crate) mod sources;

pub fn router(_state: AppState) -> Router<AppState> {
    let v1 = Router::new()
        .route("/health", get(misc::health))
        .route("/app", get(apps::list).post(apps::create))
        .route(
            "/app/{app_id}",
            get(apps::get)
                .put(apps::update)
                .patch(apps::patch)
                .delete(apps::remove),
        )
        .route(
            "/app/{app_id}/endpoint",
            get(endpoints::list).post(endpoints::create),
        )
        .route(
            "/app/{app_id}/endpoint/{endpoint_id}",
            get(endpoints::get)
                .put(endpoints::update)
                .patch(endpoints::patch)
                .delete(endpoints::remove),
        )
        .route(
            "/app/{app_id}/endpoint/{endpoint_id}/secret",
            get(endpoints::secret),
        )
        .route(
            "/app/{app_id}/endpoint/{endpoint_id}/secret/rotate",
            post(endpoints::rotate),
        )
        .route(
            "/app/{app_id}/endpoint/{endpoint_id}/headers",
            get(endpoints::headers)
                .put(endpoints::put_headers)
                .patch(endpoints::patch_headers),
        )
        .route(
            "/app/{app_id}/endpoint/{endpoint_id}/stats",
            get(endpoints::stats),
        )
        .route(
            "/app/{app_id}/endpoint/{endpoint_id}/recover",
            post(endpoints::recover),
        )
        .route(
            "/app/{app_id}/endpoint/{endpoint_id}/send-example",
            post(endpoints::send_example),
        )
        .route(
            "/app/{app_id}/endpoint/{endpoint_id}/msg",
            get(messages::by_endpoint),
        )
        .route(
            "/app/{app_id}/msg",
            get(messages::list).post(messages::create),
        )
        .route("/app/{app_id}/msg/{msg_id}", get(messages::get))
        .route(
            "/app/{app_id}/msg/{msg_id}/content",
            delete(messages::expunge),
        )
        .route(
            "/app/{app_id}/msg/{msg_id}/endpoint",
            get(messages::endpoints_of),
        )
        .route(
            "/app/{app_id}/msg/{msg_id}/endpoint/{endpoint_id}/resend",
            post(messages::resend),
        )
        .route(
            "/app/{app_id}/msg/{msg_id}/attempt/{attempt_id}",
            get(messages::attempt),
        )
        .route(
            "/app/{app_id}/attempt/endpoint/{endpoint_id}",
            get(messages::attempts_by_endpoint),
        )
        .route(
            "/app/{app_id}/attempt/msg/{msg_id}",
            get(messages::attempts_by_msg),
        )
        .route(
            "/event-type",
            get(misc::list_event_types).post(misc::create_event_type),
        )
        .route(
            "/event-type/{name}",
            get(misc::get_event_type)
                .put(misc::update_event_type)
                .patch(misc::patch_event_type)
                .delete(misc::delete_event_type),
        )
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
        .route(
            "/app/{app_id}/source/{source_id}",
            get(sources::get)
                .patch(sources::patch)
                .delete(sources::remove),
        )
        .route(
            "/app/{app_id}/source/{source_id}/secret/rotate",
            post(sources::rotate),
        )
        .route(
            "/app/{app_id}/source/{source_id}/request",
            get(sources::requests),
        )
        .route(
            "/app/{app_id}/source/{source_id}/quarantine/{request_id}/release",
            post(sources::release),
        );
    Router::new()
        .nest("/api/v1", v1)
        .route("/metrics", get(misc::metrics))
        .route("/in/{source_id}", post(inbound::ingest))
        .route("/healthz", get(misc::healthz))
        .route(openapi::DOCS_PATH, get(openapi::docs_index))
        .route("/docs/{file}", get(openapi::docs_asset))
        .fallback(|| async {
            (
                StatusCode::NOT_FOUND,
                Json(json!({"code": "not_found", "detail": "no such route"})),
            )
                .into_response()
        })
        // Without this, a known path with an unsupported method answers 405 with an empty
        // body; every error answers `{code, detail}` (outbound-api.md "Conventions").
        .method_not_allowed_fallback(|| async {
            (
                StatusCode::METHOD_NOT_ALLOWED,
                Json(json!({"code": "method_not_allowed", "detail": "method not allowed on this route"})),
            )
                .into_response()
        })
}
