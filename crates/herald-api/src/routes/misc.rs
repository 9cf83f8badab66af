//! Health, event types, app-portal access and API tokens.

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use herald_core::ids::TokenId;
use herald_core::model::EventType;
use herald_core::now_millis;
use herald_store::TokenRecord;
use serde::Deserialize;
use serde_json::json;

use crate::dto::{
    ts, valid_uid, EventTypeIn, EventTypeOut, EventTypePatch, EventTypeUpdate, ListOut,
};
use crate::error::{ApiError, ApiResult};
use crate::extract::{de_opt, sha256, Auth, Caller, JsonBody, ListParams, Path, Q};
use crate::AppState;

/// A delivery loop that has not turned for this long is reported stalled (an attempt lasts at
/// most `request_timeout_ms`, so a healthy loop turns far more often).
const WORKER_STALL_MS: i64 = 60_000;

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
    match (storage, queue) {
        (Ok(()), Ok((due, scheduled, oldest))) => (
            if workers == "stalled" {
                StatusCode::SERVICE_UNAVAILABLE
            } else {
                StatusCode::OK
            },
            Json(json!({
            "status": if workers == "stalled" { "unavailable" } else { "ok" },
            "storage": "ok",
            "workers": workers,
            "queue": {
                "due": due,
                "scheduled": scheduled,
                "oldestDueSeconds": oldest.map(|t| ((now - t).max(0)) as f64 / 1000.0),
            }
        })),
        )
            .into_response(),
        (Err(e), _) | (_, Err(e)) => (
            StatusCode::SERVICE_UNAVAILABLE,
            [("retry-after", "5")],
            Json(json!({
                "status": "unavailable", "storage": "error", "workers": workers, "detail": e.to_string()
            })),
        )
            .into_response(),
    }
}

/// Prometheus text exposition. Queue gauges are read from the store at scrape time, so they
/// are exact for this scrape and cost nothing between scrapes.
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
        metrics::gauge!("herald_queue_due").set(due as f64);
        metrics::gauge!("herald_queue_scheduled").set(scheduled as f64);
        metrics::gauge!("herald_queue_oldest_due_seconds")
            .set(oldest.map_or(0.0, |t| (now - t).max(0) as f64 / 1000.0));
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

#[derive(Deserialize)]
pub struct EtListParams {
    #[serde(flatten)]
    list: ListParams,
    #[serde(default, deserialize_with = "de_opt")]
    include_archived: Option<bool>,
}

pub async fn list_event_types(
    State(st): State<AppState>,
    _auth: Auth,
    Q(p): Q<EtListParams>,
) -> ApiResult<Json<ListOut<EventTypeOut>>> {
    let page = st
        .store()
        .list_event_types(
            &p.list.to_query(false)?,
            p.include_archived.unwrap_or(false),
        )
        .await?;
    Ok(Json(ListOut::new(
        &page.items,
        page.has_more,
        |e| e.name.clone(),
        |e| EventTypeOut::from(e),
    )))
}

pub async fn create_event_type(
    State(st): State<AppState>,
    auth: Auth,
    JsonBody(b): JsonBody<EventTypeIn>,
) -> ApiResult<Response> {
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
        .map_err(|e| match e {
            herald_store::StoreError::Conflict(_) => {
                ApiError::Conflict("an event type with this name already exists".into())
            }
            other => other.into(),
        })?;
    st.inner.schemas.invalidate(&et.name);
    Ok((StatusCode::CREATED, Json(EventTypeOut::from(&et))).into_response())
}

async fn load_et(st: &AppState, name: &str) -> ApiResult<EventType> {
    st.store()
        .get_event_type(name)
        .await?
        .ok_or_else(|| ApiError::not_found("event type"))
}

pub async fn get_event_type(
    State(st): State<AppState>,
    _auth: Auth,
    Path(name): Path<String>,
) -> ApiResult<Json<EventTypeOut>> {
    Ok(Json(EventTypeOut::from(&load_et(&st, &name).await?)))
}

pub async fn update_event_type(
    State(st): State<AppState>,
    auth: Auth,
    Path(name): Path<String>,
    JsonBody(b): JsonBody<EventTypeUpdate>,
) -> ApiResult<Response> {
    auth.caller.require_admin()?;
    check_schemas(&b.schemas)?;
    let now = now_millis();
    match st.store().get_event_type(&name).await? {
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
        None => insert_event_type(&st, name, b).await,
    }
}

pub async fn patch_event_type(
    State(st): State<AppState>,
    auth: Auth,
    Path(name): Path<String>,
    JsonBody(b): JsonBody<EventTypePatch>,
) -> ApiResult<Json<EventTypeOut>> {
    auth.caller.require_admin()?;
    let mut et = load_et(&st, &name).await?;
    if let Some(s) = &b.schemas {
        check_schemas(s)?;
    }
    if let Some(d) = b.description {
        et.description = d;
    }
    if let Some(a) = b.archived {
        et.archived = a;
    }
    if let Some(d) = b.deprecated {
        et.deprecated = d;
    }
    if let Some(s) = b.schemas {
        et.schemas = s;
    }
    et.updated_at = now_millis();
    let et = st.store().update_event_type(et).await?;
    st.inner.schemas.invalidate(&et.name);
    Ok(Json(EventTypeOut::from(&et)))
}

pub async fn delete_event_type(
    State(st): State<AppState>,
    auth: Auth,
    Path(name): Path<String>,
) -> ApiResult<StatusCode> {
    auth.caller.require_admin()?;
    load_et(&st, &name).await?;
    st.store().delete_event_type(&name).await?;
    st.inner.schemas.invalidate(&name);
    Ok(StatusCode::NO_CONTENT)
}

pub async fn app_portal_access(
    State(st): State<AppState>,
    auth: Auth,
    Path(app_id): Path<String>,
) -> ApiResult<Response> {
    auth.caller.require_admin()?;
    let app = st.app(&auth, &app_id).await?;
    let secret = herald_core::ids::new_token_secret();
    let rec = TokenRecord {
        id: TokenId::generate(),
        name: format!("app-portal:{}", app.id),
        app_id: Some(app.id.clone()),
        created_at: now_millis(),
    };
    st.store()
        .create_token(rec, sha256(secret.as_bytes()))
        .await?;
    let url = format!("{}/dashboard/#token={}", st.inner.public_url, secret);
    Ok(Json(json!({ "url": url, "token": secret })).into_response())
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TokenIn {
    name: String,
    #[serde(default)]
    app_id: Option<String>,
}

fn token_out(t: &TokenRecord) -> serde_json::Value {
    json!({
        "id": t.id.0, "name": t.name, "appId": t.app_id.as_ref().map(|a| a.0.clone()),
        "createdAt": ts(t.created_at),
    })
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

pub async fn create_token(
    State(st): State<AppState>,
    auth: Auth,
    JsonBody(b): JsonBody<TokenIn>,
) -> ApiResult<Response> {
    require_root(&auth)?;
    if b.name.trim().is_empty() || b.name.len() > 256 {
        return Err(ApiError::field("name", "must be 1-256 characters"));
    }
    let app_id = match &b.app_id {
        Some(key) => Some(st.app(&auth, key).await?.id),
        None => None,
    };
    let secret = herald_core::ids::new_token_secret();
    let rec = TokenRecord {
        id: TokenId::generate(),
        name: b.name,
        app_id,
        created_at: now_millis(),
    };
    let rec = st
        .store()
        .create_token(rec, sha256(secret.as_bytes()))
        .await?;
    let mut out = token_out(&rec);
    out["token"] = json!(secret);
    Ok((StatusCode::CREATED, Json(out)).into_response())
}

pub async fn list_tokens(
    State(st): State<AppState>,
    auth: Auth,
) -> ApiResult<Json<serde_json::Value>> {
    require_root(&auth)?;
    let tokens = st.store().list_tokens().await?;
    Ok(Json(json!({
        "data": tokens.iter().map(token_out).collect::<Vec<_>>(),
        "iterator": null, "prevIterator": null, "done": true
    })))
}

pub async fn delete_token(
    State(st): State<AppState>,
    auth: Auth,
    Path(id): Path<String>,
) -> ApiResult<StatusCode> {
    require_root(&auth)?;
    st.store()
        .delete_token(&TokenId(id))
        .await
        .map_err(|e| match e {
            herald_store::StoreError::NotFound => ApiError::not_found("token"),
            other => other.into(),
        })?;
    Ok(StatusCode::NO_CONTENT)
}
