//! Changing endpoints from the console and the portal: "Add endpoint", "Save" (URL,
//! description, event types chosen from the catalog, throttle, disabled), "Rotate secret"
//! and "Delete endpoint".
//!
//! Every change is made by the JSON API's own handler (`routes::endpoints::{create, patch,
//! rotate, remove}`) with the session's `Auth`, given the same body the API would get: the
//! same validation (SSRF rules on the URL, list limits), tenancy (403 for another
//! application) and side effects (workers woken, `endpoint.enabled`/`disabled` recorded).
//! This module only turns form fields into those bodies; it must not write to the store.

use axum::extract::State;
use axum::response::{IntoResponse, Redirect, Response};
use serde::de::DeserializeOwned;
use serde_json::{json, Value};

use super::csrf::{Fields, Posted};
use super::endpoint;
use super::page::{ConsoleError, ConsoleResult};
use crate::extract::Path;
use crate::paths::{AppPath, EndpointPath};
use crate::routes::endpoints as api;
use crate::scope::At;
use crate::state::AppState;

/// A JSON API body from the form's fields (a shape error is the form's, answered 422).
fn body<T: DeserializeOwned>(v: Value) -> ConsoleResult<T> {
    serde_json::from_value(v).map_err(|e| {
        ConsoleError::Api(
            axum::http::StatusCode::UNPROCESSABLE_ENTITY,
            format!("the form could not be read: {e}"),
        )
    })
}

/// The event types the form chose: the checked catalog entries plus any typed into "Other
/// event types" (comma-separated). None chosen: every event type (`null`).
fn event_types(f: &Fields) -> Value {
    let mut types: Vec<String> = f.all("event_type").map(str::to_string).collect();
    types.extend(
        f.get("more_event_types")
            .unwrap_or("")
            .split(',')
            .map(str::trim)
            .filter(|t| !t.is_empty())
            .map(String::from),
    );
    types.sort();
    types.dedup();
    if types.is_empty() {
        Value::Null
    } else {
        json!(types)
    }
}

/// The throttle field: empty is none; anything else must be a number (the API checks range).
fn throttle(f: &Fields) -> ConsoleResult<Value> {
    match f.get("throttle_rate").map(str::trim).unwrap_or("") {
        "" => Ok(Value::Null),
        t => t.parse::<i64>().map(|n| json!(n)).map_err(|_| {
            ConsoleError::Api(
                axum::http::StatusCode::UNPROCESSABLE_ENTITY,
                "Throttle: a whole number of messages per second, or empty for none".into(),
            )
        }),
    }
}

/// The endpoint fields every form sends, as the API's camelCase body.
fn settings(f: &Fields) -> ConsoleResult<Value> {
    Ok(json!({
        "url": f.get("url").map(str::trim).unwrap_or(""),
        "description": f.get("description").unwrap_or(""),
        "eventTypes": event_types(f),
        "throttleRate": throttle(f)?,
        "disabled": f.get("disabled").is_some(),
    }))
}

fn endpoint_page(posted: &Posted, app: &str, ep: &str) -> String {
    format!("{}/app/{app}/endpoint/{ep}", posted.op.realm.base())
}

/// `POST {base}/app/{app_id}/endpoints`: a new endpoint (with a generated secret), then its page.
pub async fn create(
    State(st): State<AppState>,
    Path(path): Path<AppPath>,
    posted: Posted,
) -> ConsoleResult<Response> {
    let input = body(settings(&posted.fields)?)?;
    let at = At {
        st,
        auth: posted.op.auth(),
        path,
        input,
    }
    .app()
    .await?;
    let app_id = at.app.id.0.clone();
    let resp = api::create(at).await?;
    let bytes = axum::body::to_bytes(resp.into_body(), 1 << 20)
        .await
        .map_err(|e| {
            ConsoleError::Api(axum::http::StatusCode::INTERNAL_SERVER_ERROR, e.to_string())
        })?;
    let created: Value = serde_json::from_slice(&bytes).unwrap_or_default();
    let id = created["id"].as_str().unwrap_or_default();
    Ok(Redirect::to(&endpoint_page(&posted, &app_id, id)).into_response())
}

/// `POST {ep}/edit`: saves the settings, as `PATCH …/endpoint/{ep}`.
pub async fn save(
    State(st): State<AppState>,
    Path(path): Path<EndpointPath>,
    posted: Posted,
) -> ConsoleResult<Response> {
    let input = body(settings(&posted.fields)?)?;
    let at = At {
        st,
        auth: posted.op.auth(),
        path,
        input,
    }
    .endpoint()
    .await?;
    let (app, ep) = (at.app.id.0.clone(), at.ep.id.0.clone());
    // The saved endpoint is shown by its page, read again after the redirect.
    let _saved = api::patch(at).await?;
    Ok(Redirect::to(&format!("{}?saved=1", endpoint_page(&posted, &app, &ep))).into_response())
}

/// `POST {ep}/rotate`: a new signing secret, as `POST …/secret/rotate` (the previous one keeps
/// signing for the API's default grace period); the page shows the new one.
pub async fn rotate(
    State(st): State<AppState>,
    Path(path): Path<EndpointPath>,
    posted: Posted,
) -> ConsoleResult<Response> {
    let at = At {
        st: st.clone(),
        auth: posted.op.auth(),
        path: EndpointPath {
            app_id: path.app_id.clone(),
            endpoint_id: path.endpoint_id.clone(),
        },
        input: body(json!({}))?,
    }
    .endpoint()
    .await?;
    // The new secret is shown by the page below (revealed), read from the store.
    let _new = api::rotate(at).await?;
    let notice = "Secret rotated. The previous secret keeps signing alongside it for 24 hours, so receivers can switch over.";
    endpoint::render(&st, &posted.op, &path, true, Some(notice.into())).await
}

/// `POST {ep}/delete`: removes the endpoint, as `DELETE …/endpoint/{ep}`, then the application.
pub async fn delete(
    State(st): State<AppState>,
    Path(path): Path<EndpointPath>,
    posted: Posted,
) -> ConsoleResult<Response> {
    let at = At {
        st,
        auth: posted.op.auth(),
        path,
        input: crate::scope::NoInput,
    }
    .endpoint()
    .await?;
    let app = at.app.id.0.clone();
    api::remove(at).await?;
    let back = format!("{}/app/{app}", posted.op.realm.base());
    Ok(Redirect::to(&back).into_response())
}
