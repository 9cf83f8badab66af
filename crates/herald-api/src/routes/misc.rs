//! Health, event types, app-portal access and API tokens.

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use herald_core::ids::{AppId, TokenId};
use herald_core::model::EventType;
use herald_core::now_millis;
use herald_store::TokenRecord;
use serde::Deserialize;

use crate::dto::{
    apply, ts, valid_uid, AppPortalAccessIn, AppPortalAccessOut, Checks, EventTypeIn, EventTypeOut,
    EventTypePatch, EventTypeUpdate, HealthOut, ListOut, LivenessOut, QueueOut, TokenCreatedOut,
    TokenIn, TokenOut,
};
use crate::error::{ApiError, ApiResult, ErrorBody};
use crate::extract::{de_opt, sha256, Auth, Caller, ListParams, OptionalJsonBody, Q};
use crate::paths::{AppPath, EventTypePath, TokenPath};
use crate::routes::ApiList;
use crate::scope::{At, Ctx};
use crate::service::apps;
use crate::state::AppState;

/// A delivery loop that has not turned for this long is reported stalled (an attempt lasts at
/// most `request_timeout_ms`, so a healthy loop turns far more often).
const WORKER_STALL_MS: i64 = 60_000;

/// Liveness and readiness: storage, delivery workers and the queue. No token needed.
#[utoipa::path(get, path = "/api/v1/health", tag = "Health", operation_id = "health",
    responses(
        (status = 200, description = "Ready", body = HealthOut),
        (status = 503, description = "Storage unavailable or workers stalled", body = HealthOut,
            headers(("retry-after" = Option<String>, description = "Seconds to wait (when storage is unavailable)")))))]
pub async fn health(State(st): State<AppState>) -> Response {
    let now = now_millis();
    let storage = st.store().ping().await;
    let queue = st.store().queue_summary(now).await;
    let workers = match &st.inner.worker_heartbeat {
        None => "not_running",
        Some(h) if now - h.load(std::sync::atomic::Ordering::Relaxed) > WORKER_STALL_MS => {
            "stalled"
        }
        Some(_) => "ok",
    };
    // Reads and an empty write can succeed on a full disk while every publish fails: the last
    // failed write says so until a write succeeds again.
    let write_failure = st.store().last_write_failure();
    match (storage, queue) {
        (Ok(()), Ok((due, scheduled, oldest))) if write_failure.is_some() => {
            let f = write_failure.expect("checked");
            let at = chrono::DateTime::<chrono::Utc>::from_timestamp_millis(f.at)
                .map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true))
                .unwrap_or_else(|| f.at.to_string());
            (
                StatusCode::SERVICE_UNAVAILABLE,
                [("retry-after", "5")],
                Json(HealthOut {
                    status: "unavailable".into(),
                    storage: "degraded".into(),
                    workers: workers.into(),
                    queue: Some(QueueOut {
                        due,
                        scheduled,
                        oldest_due_seconds: oldest.map(|t| ((now - t).max(0)) as f64 / 1000.0),
                    }),
                    detail: Some(format!("last write failed at {at}: {}", f.error)),
                }),
            )
                .into_response()
        }
        (Ok(()), Ok((due, scheduled, oldest))) => (
            if workers == "stalled" {
                StatusCode::SERVICE_UNAVAILABLE
            } else {
                StatusCode::OK
            },
            Json(HealthOut {
                status: if workers == "stalled" {
                    "unavailable"
                } else {
                    "ok"
                }
                .into(),
                storage: "ok".into(),
                workers: workers.into(),
                queue: Some(QueueOut {
                    due,
                    scheduled,
                    oldest_due_seconds: oldest.map(|t| ((now - t).max(0)) as f64 / 1000.0),
                }),
                detail: None,
            }),
        )
            .into_response(),
        // A PostgreSQL outage with a spool that accepts: publishes and ingestion are answered
        // (overview.md "Database outage"), so the node is degraded, not down.
        (Err(e), _) | (_, Err(e))
            if st
                .store()
                .spool_health()
                .is_some_and(|s| s.refusing.is_none()) =>
        {
            let spool = st
                .store()
                .spool_health()
                .unwrap_or(herald_store::SpoolHealth {
                    bytes: 0,
                    max_bytes: 0,
                    refusing: None,
                });
            (
                StatusCode::OK,
                Json(HealthOut {
                    status: "degraded".into(),
                    storage: "spooling".into(),
                    workers: workers.into(),
                    queue: None,
                    detail: Some(format!(
                        "database unreachable ({e}); publishes and ingestion go to the local spool ({} of {} bytes used)",
                        spool.bytes, spool.max_bytes
                    )),
                }),
            )
                .into_response()
        }
        (Err(e), _) | (_, Err(e)) => (
            StatusCode::SERVICE_UNAVAILABLE,
            [("retry-after", "5")],
            Json(HealthOut {
                status: "unavailable".into(),
                storage: "error".into(),
                workers: workers.into(),
                queue: None,
                detail: Some(match st.store().spool_health().and_then(|s| s.refusing) {
                    Some(why) => format!("{e}; {why}"),
                    None => e.to_string(),
                }),
            }),
        )
            .into_response(),
    }
}

/// Liveness only: the process answers (no storage check). No token needed.
#[utoipa::path(get, path = "/healthz", tag = "Health", operation_id = "healthz",
    responses((status = 200, description = "The process is up", body = LivenessOut)))]
pub async fn healthz() -> Json<LivenessOut> {
    Json(LivenessOut {
        status: "ok".into(),
    })
}

/// Prometheus text exposition. Queue gauges are read from the store at scrape time, so they
/// are exact for this scrape and cost nothing between scrapes.
/// Prometheus text exposition. Needs the metrics token as a bearer token when one is configured.
#[utoipa::path(get, path = "/metrics", tag = "Health", operation_id = "metrics",
    responses(
        (status = 200, description = "Prometheus text format", body = String, content_type = "text/plain"),
        (status = 401, description = "A metrics token is configured and was not given", body = ErrorBody),
        (status = 404, description = "Metrics are not enabled in this process", body = ErrorBody)))]
pub async fn metrics(State(st): State<AppState>, headers: axum::http::HeaderMap) -> Response {
    if let Some(want) = &st.inner.metrics_token_hash {
        let given = headers
            .get(axum::http::header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "))
            .map(|t| sha256(t.trim().as_bytes()));
        let ok =
            given.is_some_and(|g| bool::from(subtle::ConstantTimeEq::ct_eq(&g[..], &want[..])));
        if !ok {
            return ApiError::Unauthorized.into_response();
        }
    }
    let Some(handle) = &st.inner.metrics else {
        return ApiError::not_found("metrics").into_response();
    };
    let now = now_millis();
    if let Ok((due, scheduled, oldest)) = st.store().queue_summary(now).await {
        let oldest_secs = oldest.map_or(0.0, |t| (now - t).max(0) as f64 / 1000.0);
        crate::telemetry::queue(due, scheduled, oldest_secs);
    }
    (
        [("content-type", "text/plain; version=0.0.4; charset=utf-8")],
        handle.render(),
    )
        .into_response()
}

fn check_schemas(s: &Option<serde_json::Value>) -> ApiResult<()> {
    if let Some(v) = s {
        if !v.is_object()
            || v.as_object()
                .is_some_and(|m| m.values().any(|s| !s.is_object() && !s.is_boolean()))
        {
            return Err(ApiError::field(
                "schemas",
                "must map a version string to a JSON Schema object",
            ));
        }
        crate::schema::compile(v)?;
    }
    Ok(())
}

#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct EtListParams {
    #[serde(flatten)]
    #[param(ignore)]
    list: ListParams,
    /// Include archived event types (default `false`).
    #[serde(default, deserialize_with = "de_opt")]
    include_archived: Option<bool>,
}

/// List event types by name.
#[utoipa::path(get, path = "/api/v1/event-type", tag = "Event Type", operation_id = "list_event_types",
    params(ListParams, EtListParams),
    responses((status = 200, description = "A page of event types", body = ListOut<EventTypeOut>)))]
pub async fn list_event_types(Ctx { st, .. }: Ctx, Q(p): Q<EtListParams>) -> ApiList<EventTypeOut> {
    let page = st
        .store()
        .list_event_types(
            &p.list.to_query(false)?,
            p.include_archived.unwrap_or(false),
        )
        .await?;
    Ok(Json(ListOut::page(&page, |e| EventTypeOut::from(e))))
}

/// Create an event type (admin only).
#[utoipa::path(post, path = "/api/v1/event-type", tag = "Event Type", operation_id = "create_event_type",
    request_body = EventTypeIn,
    responses(
        (status = 201, description = "Created", body = EventTypeOut),
        (status = 409, description = "The name is taken", body = ErrorBody)))]
pub async fn create_event_type(cx: Ctx<EventTypeIn>) -> ApiResult<Response> {
    let (st, auth, b) = (cx.st, cx.auth, cx.input);
    auth.caller.require_admin()?;
    check_schemas(&b.fields.schemas)?;
    insert_event_type(&st, b.name, b.fields).await
}

/// Creates an event type (POST, or PUT on a name that does not exist yet): 201.
async fn insert_event_type(st: &AppState, name: String, b: EventTypeUpdate) -> ApiResult<Response> {
    if !valid_uid(&name) {
        return Err(ApiError::field(
            "name",
            "must match ^[a-zA-Z0-9\\-_.]+$ and be 1-256 characters",
        ));
    }
    let now = now_millis();
    let et = EventType {
        name,
        description: b.description,
        archived: b.archived.unwrap_or(false),
        deprecated: b.deprecated.unwrap_or(false),
        schemas: b.schemas,
        created_at: now,
        updated_at: now,
    };
    let et = st
        .store()
        .create_event_type(et)
        .await
        .map_err(ApiError::conflict_as(
            "an event type with this name already exists",
        ))?;
    st.inner.schemas.invalidate(&et.name);
    Ok((StatusCode::CREATED, Json(EventTypeOut::from(&et))).into_response())
}

async fn load_et(st: &AppState, name: &str) -> ApiResult<EventType> {
    st.store()
        .get_event_type(name)
        .await?
        .ok_or_else(|| ApiError::not_found("event type"))
}

/// Get an event type.
#[utoipa::path(get, path = "/api/v1/event-type/{name}", tag = "Event Type", operation_id = "get_event_type",
    params(EventTypePath),
    responses((status = 200, description = "The event type", body = EventTypeOut)))]
pub async fn get_event_type(at: At<EventTypePath>) -> ApiResult<Json<EventTypeOut>> {
    let At { st, path, .. } = at;
    Ok(Json(EventTypeOut::from(&load_et(&st, &path.name).await?)))
}

/// Replace an event type, or create it (admin only).
#[utoipa::path(put, path = "/api/v1/event-type/{name}", tag = "Event Type", operation_id = "update_event_type",
    params(EventTypePath), request_body = EventTypeUpdate,
    responses(
        (status = 200, description = "Updated", body = EventTypeOut),
        (status = 201, description = "Created", body = EventTypeOut),
        (status = 409, description = "Created concurrently by another request", body = ErrorBody)))]
pub async fn update_event_type(at: At<EventTypePath, EventTypeUpdate>) -> ApiResult<Response> {
    let (st, auth, path, b) = (at.st, at.auth, at.path, at.input);
    auth.caller.require_admin()?;
    check_schemas(&b.schemas)?;
    let now = now_millis();
    match st.store().get_event_type(&path.name).await? {
        Some(mut et) => {
            et.description = b.description;
            et.archived = b.archived.unwrap_or(false);
            et.deprecated = b.deprecated.unwrap_or(false);
            et.schemas = b.schemas;
            et.updated_at = now;
            let et = st.store().update_event_type(et).await?;
            st.inner.schemas.invalidate(&et.name);
            Ok(Json(EventTypeOut::from(&et)).into_response())
        }
        None => insert_event_type(&st, path.name, b).await,
    }
}

/// Change some fields of an event type (admin only).
#[utoipa::path(patch, path = "/api/v1/event-type/{name}", tag = "Event Type", operation_id = "patch_event_type",
    params(EventTypePath), request_body = EventTypePatch,
    responses((status = 200, description = "Updated", body = EventTypeOut)))]
pub async fn patch_event_type(
    at: At<EventTypePath, EventTypePatch>,
) -> ApiResult<Json<EventTypeOut>> {
    let (st, auth, path, b) = (at.st, at.auth, at.path, at.input);
    auth.caller.require_admin()?;
    let mut et = load_et(&st, &path.name).await?;
    if let Some(s) = &b.schemas {
        check_schemas(s)?;
    }
    apply(&mut et.description, b.description);
    apply(&mut et.archived, b.archived);
    apply(&mut et.deprecated, b.deprecated);
    apply(&mut et.schemas, b.schemas);
    et.updated_at = now_millis();
    let et = st.store().update_event_type(et).await?;
    st.inner.schemas.invalidate(&et.name);
    Ok(Json(EventTypeOut::from(&et)))
}

/// Archive an event type (admin only).
#[utoipa::path(delete, path = "/api/v1/event-type/{name}", tag = "Event Type", operation_id = "delete_event_type",
    params(EventTypePath),
    responses((status = 204, description = "Archived")))]
pub async fn delete_event_type(at: At<EventTypePath>) -> ApiResult<StatusCode> {
    let At { st, auth, path, .. } = at;
    auth.caller.require_admin()?;
    load_et(&st, &path.name).await?;
    st.store().delete_event_type(&path.name).await?;
    st.inner.schemas.invalidate(&path.name);
    Ok(StatusCode::NO_CONTENT)
}

/// Mint a token scoped to one application, and a dashboard URL carrying it (admin only).
#[utoipa::path(post, path = "/api/v1/auth/app-portal-access/{app_id}", tag = "Authentication", operation_id = "app_portal_access",
    params(AppPath),
    request_body(content = Option<AppPortalAccessIn>, description = "Optional; unknown fields are refused"),
    responses(
        (status = 200, description = "A new scoped token", body = AppPortalAccessOut),
        (status = 422, description = "An unknown field, or a restriction this version cannot enforce (`readOnly`, `capabilities`, `expiry`)", body = crate::error::ValidationErrorBody)))]
pub async fn app_portal_access(
    At { st, auth, path, .. }: At<AppPath>,
    OptionalJsonBody(body): OptionalJsonBody<AppPortalAccessIn>,
) -> ApiResult<Response> {
    auth.caller.require_admin()?;
    let mut c = Checks::default();
    // A restriction that is asked for but not enforced would be a token with more rights than
    // its caller believes: refuse it instead.
    if body.read_only == Some(true) {
        c.fail("readOnly", "read-only portal tokens are not supported yet");
    }
    if body.capabilities.is_some() {
        c.fail(
            "capabilities",
            "capability-limited portal tokens are not supported yet",
        );
    }
    if body.expiry.is_some() {
        c.fail(
            "expiry",
            "expiring portal tokens are not supported yet; delete the token to revoke it",
        );
    }
    if let Some(a) = &body.application {
        a.check(&mut c);
    }
    c.finish()?;
    let app = apps::get_or_create(&st, &auth, &path.app_id, body.application).await?;
    let (_, secret) =
        mint_token(&st, format!("app-portal:{}", app.id), Some(app.id.clone())).await?;
    // The portal's entry page reads the key from the fragment, which browsers never send.
    let url = format!("{}/portal/#key={}", st.inner.public_url, secret);
    Ok(Json(AppPortalAccessOut { url, token: secret }).into_response())
}

/// Stores a new API token named `name` (scoped to `app_id` when given): the record and its
/// secret, which only the caller's answer shows (the store keeps its digest).
async fn mint_token(
    st: &AppState,
    name: String,
    app_id: Option<AppId>,
) -> ApiResult<(TokenRecord, String)> {
    let secret = herald_core::ids::new_token_secret();
    let rec = TokenRecord {
        id: TokenId::generate(),
        name,
        app_id,
        created_at: now_millis(),
    };
    let rec = st
        .store()
        .create_token(rec, sha256(secret.as_bytes()))
        .await?;
    Ok((rec, secret))
}

fn token_out(t: &TokenRecord) -> TokenOut {
    TokenOut {
        id: t.id.0.clone(),
        name: t.name.clone(),
        app_id: t.app_id.as_ref().map(|a| a.0.clone()),
        created_at: ts(t.created_at),
    }
}

fn require_root(auth: &Auth) -> ApiResult<()> {
    // Token management is reserved to the admin token itself, so a leaked named token cannot
    // mint more tokens.
    match auth.caller {
        Caller::Admin => Ok(()),
        _ => Err(ApiError::Forbidden(
            "only the admin token may manage tokens".into(),
        )),
    }
}

/// Create an API token (admin token only); its secret is shown this once.
#[utoipa::path(post, path = "/api/v1/token", tag = "Authentication", operation_id = "create_token",
    request_body = TokenIn,
    responses(
        (status = 201, description = "Created", body = TokenCreatedOut),
        (status = 404, description = "`appId` names no application", body = ErrorBody)))]
pub async fn create_token(Ctx { st, auth, input: b }: Ctx<TokenIn>) -> ApiResult<Response> {
    require_root(&auth)?;
    if b.name.trim().is_empty() || b.name.len() > 256 {
        return Err(ApiError::field("name", "must be 1-256 characters"));
    }
    let app_id = match &b.app_id {
        Some(key) => Some(apps::load(&st, &auth, key).await?.id),
        None => None,
    };
    let (rec, secret) = mint_token(&st, b.name, app_id).await?;
    let out = TokenCreatedOut {
        token: token_out(&rec),
        secret,
    };
    Ok((StatusCode::CREATED, Json(out)).into_response())
}

/// List API tokens (admin token only); one page holds them all.
#[utoipa::path(get, path = "/api/v1/token", tag = "Authentication", operation_id = "list_tokens",
    responses((status = 200, description = "Every token", body = ListOut<TokenOut>)))]
pub async fn list_tokens(Ctx { st, auth, .. }: Ctx) -> ApiList<TokenOut> {
    require_root(&auth)?;
    let tokens = st.store().list_tokens().await?;
    Ok(Json(ListOut {
        data: tokens.iter().map(token_out).collect(),
        iterator: None,
        prev_iterator: None,
        done: true,
    }))
}

/// Revoke an API token at once (admin token only).
#[utoipa::path(delete, path = "/api/v1/token/{token_id}", tag = "Authentication", operation_id = "delete_token",
    params(TokenPath),
    responses((status = 204, description = "Revoked")))]
pub async fn delete_token(At { st, auth, path, .. }: At<TokenPath>) -> ApiResult<StatusCode> {
    require_root(&auth)?;
    st.store()
        .delete_token(&TokenId(path.token_id))
        .await
        .map_err(|e| match e {
            herald_store::StoreError::NotFound => ApiError::not_found("token"),
            other => other.into(),
        })?;
    Ok(StatusCode::NO_CONTENT)
}
