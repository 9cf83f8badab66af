//! Changing endpoints from the console and the portal: "Add endpoint", "Save" (every field
//! of `ep_form`: URL, description, event types, channels, throttle, disabled, custom headers,
//! metadata, delivery options), "Rotate secret" and "Delete endpoint" (after its confirmation
//! page).
//!
//! Every change is made by the JSON API's own handler (`routes::endpoints::{create, patch,
//! rotate, remove}`) with the session's `Auth`, given the same body the API would get: the
//! same validation (SSRF rules on the URL, list limits), tenancy (403 for another
//! application) and side effects (workers woken, `endpoint.enabled`/`disabled` recorded).
//! This module only turns form fields into those bodies; it must not write to the store.

use std::future::Future;

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use serde::de::DeserializeOwned;
use serde_json::{json, Value};

use super::csrf::{Posted, PostedPayload};
use super::ep_form::{self, endpoint_form};
use super::page::{ConsoleError, ConsoleResult};
use super::{apps, endpoint};
use crate::dto::{check_headers, Checks, EndpointPatch, HeadersIn};
use crate::error::ApiError;
use crate::extract::Path;
use crate::paths::{AppPath, EndpointPath};
use crate::routes::endpoints as api;
use crate::scope::{At, AtEndpoint};
use crate::service::endpoints;
use crate::state::AppState;

/// A JSON API body from the form's fields (a shape error is the form's, answered 422).
fn body<T: DeserializeOwned>(v: Value) -> ConsoleResult<T> {
    serde_json::from_value(v)
        .map_err(|e| ConsoleError::Api(StatusCode::UNPROCESSABLE_ENTITY, unreadable(e)))
}

/// As [`body`], for a form that shows its errors next to its controls: a shape error is the
/// field `form`'s.
fn form_body<T: DeserializeOwned>(v: Value) -> Result<T, Refused> {
    serde_json::from_value(v).map_err(|e| Refused::Fields(vec![("form", unreadable(e))]))
}

fn unreadable(e: impl std::fmt::Display) -> String {
    format!("the form could not be read: {e}")
}

/// The API's view of the endpoint of `path` for the session of `posted`, with `input` as the
/// request body (tenancy checked as for the JSON route).
async fn at_endpoint<B>(
    st: &AppState,
    posted: &Posted,
    path: &EndpointPath,
    input: B,
) -> ConsoleResult<AtEndpoint<B>> {
    let at = At {
        st: st.clone(),
        auth: posted.op.auth(),
        path: EndpointPath {
            app_id: path.app_id.clone(),
            endpoint_id: path.endpoint_id.clone(),
        },
        input,
    };
    Ok(at.endpoint().await?)
}

fn endpoint_page(posted: &Posted, app: &str, ep: &str) -> String {
    format!("{}/app/{app}/endpoint/{ep}", posted.op.realm.base())
}

/// `POST {base}/app/{app_id}/endpoints`: a new endpoint (with a generated secret), then its page.
/// A refused form is the application page again (422) with the form open, the values as typed
/// and each error next to its control.
pub async fn create(
    State(st): State<AppState>,
    Path(path): Path<AppPath>,
    PostedPayload(posted): PostedPayload,
) -> ConsoleResult<Response> {
    let outcome = try_create(&st, &path, &posted).await;
    answer(outcome, |errors| async {
        let mut form = ep_form::echo(&posted.fields, endpoint_form(&st, None).await?);
        form.errors = errors;
        let q = Default::default();
        apps::render(&st, &posted.op, &path, &q, Some(form)).await
    })
    .await
}

/// Creates the endpoint the form describes, with its custom headers, through the API's own
/// handler; the page to go to.
async fn try_create(st: &AppState, path: &AppPath, posted: &Posted) -> Result<String, Refused> {
    let f = &posted.fields;
    let mut v = ep_form::settings(f, false).map_err(Refused::Fields)?;
    if let Some(h) = f.get("headers").filter(|h| !h.trim().is_empty()) {
        let headers = ep_form::parse_headers(h, &Default::default())
            .map_err(|e| Refused::Fields(vec![("headers", e)]))?;
        v["headers"] = json!(headers);
    }
    let input = form_body(v)?;
    let at = At {
        st: st.clone(),
        auth: posted.op.auth(),
        path: AppPath {
            app_id: path.app_id.clone(),
        },
        input,
    }
    .app()
    .await?;
    let app_id = at.app.id.0.clone();
    let resp = api::create(at).await.map_err(refused)?;
    let bytes = axum::body::to_bytes(resp.into_body(), 1 << 20)
        .await
        .map_err(|e| ConsoleError::Api(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()))?;
    let created: Value = serde_json::from_slice(&bytes).unwrap_or_default();
    let id = created["id"].as_str().unwrap_or_default();
    Ok(endpoint_page(posted, &app_id, id))
}

/// `POST {ep}/edit`: saves the settings, as `PATCH …/endpoint/{ep}` and, when the form has
/// custom headers, `PUT …/headers`. A refused form is the endpoint page again (422) with each
/// error next to its control and the values as typed.
pub async fn save(
    State(st): State<AppState>,
    Path(path): Path<EndpointPath>,
    PostedPayload(posted): PostedPayload,
) -> ConsoleResult<Response> {
    let outcome = try_save(&st, &path, &posted).await;
    answer(outcome, |errors| async {
        let (_, ep) = endpoints::load(&st, &posted.op.auth(), &path).await?;
        let mut form = ep_form::echo(&posted.fields, endpoint_form(&st, Some(&ep)).await?);
        form.errors = errors;
        let x = endpoint::Extras {
            form: Some(form),
            ..Default::default()
        };
        endpoint::render_page(&st, &posted.op, &path, x).await
    })
    .await
}

/// How a form post ends: a redirect to the page `outcome` names, or, when fields were refused,
/// the form's own page rendered again by `again` (given the errors) and answered 422.
async fn answer<Fut>(
    outcome: Result<String, Refused>,
    again: impl FnOnce(Vec<(&'static str, String)>) -> Fut,
) -> ConsoleResult<Response>
where
    Fut: Future<Output = ConsoleResult<Response>>,
{
    match outcome {
        Ok(to) => Ok(Redirect::to(&to).into_response()),
        Err(Refused::Fields(errors)) => {
            let mut resp = again(errors).await?;
            *resp.status_mut() = StatusCode::UNPROCESSABLE_ENTITY;
            Ok(resp)
        }
        Err(Refused::Page(e)) => Err(e),
    }
}

/// Why a save stopped: fields to show next to their controls, or an error page.
enum Refused {
    Fields(Vec<(&'static str, String)>),
    Page(ConsoleError),
}

impl<E: Into<ConsoleError>> From<E> for Refused {
    fn from(e: E) -> Self {
        Self::Page(e.into())
    }
}

fn refused(e: ApiError) -> Refused {
    match ep_form::api_errors(&e) {
        Some(fields) => Refused::Fields(fields),
        None => Refused::Page(e.into()),
    }
}

/// Checks the whole form first (the headers against the API's rules too), so that a refused
/// form changes nothing; then the settings, then the headers. The page to go to.
async fn try_save(st: &AppState, path: &EndpointPath, posted: &Posted) -> Result<String, Refused> {
    let f = &posted.fields;
    let mut settings = ep_form::settings(f, true).map_err(Refused::Fields)?;
    let at = at_endpoint(st, posted, path, crate::scope::NoInput).await?;
    let headers = match f.get("headers") {
        None => None,
        Some(h) => {
            let h = ep_form::parse_headers(h, &at.ep.headers)
                .map_err(|e| Refused::Fields(vec![("headers", e)]))?;
            let mut c = Checks::default();
            check_headers(&mut c, "headers", &h);
            c.finish().map_err(refused)?;
            Some(h)
        }
    };
    // The settings body the API's PATCH takes (an unreadable shape is the form's).
    let input: EndpointPatch = form_body(settings.take())?;
    let at = at_endpoint(st, posted, path, input).await?;
    let (app, ep) = (at.app.id.0.clone(), at.ep.id.0.clone());
    // The saved endpoint is shown by its page, read again after the redirect.
    let _saved = api::patch(at).await.map_err(refused)?;
    if let Some(h) = headers {
        let at = at_endpoint(st, posted, path, HeadersIn { headers: h }).await?;
        api::put_headers(at).await.map_err(refused)?;
    }
    Ok(format!("{}?saved=1", endpoint_page(posted, &app, &ep)))
}

/// `POST {ep}/rotate`: a new signing secret, as `POST …/secret/rotate` (the previous one keeps
/// signing for the API's default grace period); the page shows the new one.
pub async fn rotate(
    State(st): State<AppState>,
    Path(path): Path<EndpointPath>,
    posted: Posted,
) -> ConsoleResult<Response> {
    let at = at_endpoint(&st, &posted, &path, body(json!({}))?).await?;
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
    let at = at_endpoint(&st, &posted, &path, crate::scope::NoInput).await?;
    let app = at.app.id.0.clone();
    api::remove(at).await?;
    let back = format!("{}/app/{app}", posted.op.realm.base());
    Ok(Redirect::to(&back).into_response())
}

#[derive(askama::Template)]
#[template(path = "console/endpoint_delete.html")]
struct ConfirmDelete {
    chrome: super::page::Chrome,
    csrf: String,
    app_id: String,
    ep_id: String,
    ep_url: String,
}

/// `GET {ep}/delete`: asks to confirm; "Delete endpoint" posts to the same path.
pub async fn confirm_delete(
    op: super::session::Operator,
    State(st): State<AppState>,
    Path(path): Path<EndpointPath>,
) -> ConsoleResult<Response> {
    let (app, ep) = endpoints::load(&st, &op.auth(), &path).await?;
    Ok(super::page::ok(&ConfirmDelete {
        chrome: super::page::Chrome::in_app(&st, &op, &app.id.0, &app.name),
        csrf: op.csrf.clone(),
        app_id: app.id.0.clone(),
        ep_id: ep.id.0.clone(),
        ep_url: herald_core::destination::redact(&ep.url).into_owned(),
    }))
}
