//! "Send test event" to one endpoint (console and portal): a page to choose an event type from
//! the catalog, its example payload filled in and editable as JSON, and the POST that publishes
//! a message delivered to that endpoint only (`service::endpoints::send_to`, the operation
//! behind the API's `send-example`, with the payload checked against the type's schema), then
//! the message's page, where its attempt appears live.
//!
//! A refused form is the same page again (422) with the error next to its control. It must not
//! publish anything else nor write to the store by itself.

use askama::Template;
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use serde::Deserialize;

use super::csrf::PostedPayload;
use super::page::{html, page_query, Chrome, ConsoleResult};
use super::session::Operator;
use crate::error::ApiError;
use crate::extract::Path;
use crate::paths::EndpointPath;
use crate::service::endpoints;
use crate::state::AppState;

/// Event types offered in the list.
const CHOICES: i64 = 100;

#[derive(Template)]
#[template(path = "console/send_test.html")]
struct SendPage {
    chrome: Chrome,
    csrf: String,
    app_id: String,
    ep_id: String,
    ep_url: String,
    /// (event type, selected).
    types: Vec<(String, bool)>,
    payload: String,
    /// (control, message).
    error: Option<(&'static str, String)>,
}

impl SendPage {
    fn error_of(&self, control: &str) -> Option<&str> {
        self.error
            .as_ref()
            .filter(|(c, _)| *c == control)
            .map(|(_, m)| m.as_str())
    }
}

#[derive(Debug, Default, Deserialize)]
pub struct SendQ {
    /// The event type whose example to fill in.
    event_type: Option<String>,
}

/// The form of the endpoint of `path` with `chosen` selected and `payload` (the chosen type's
/// example when `None`).
async fn page(
    st: &AppState,
    op: &Operator,
    path: &EndpointPath,
    chosen: Option<&str>,
    payload: Option<String>,
    error: Option<(&'static str, String)>,
) -> ConsoleResult<Response> {
    let (app, ep) = endpoints::load(st, &op.auth(), path).await?;
    let catalog = st
        .store()
        .list_event_types(&page_query(CHOICES, None, false)?, false)
        .await?;
    let chosen = chosen.or(catalog.items.first().map(|t| t.name.as_str()));
    let mut types: Vec<(String, bool)> = catalog
        .items
        .iter()
        .map(|t| (t.name.clone(), Some(t.name.as_str()) == chosen))
        .collect();
    if let Some(c) = chosen.filter(|c| !types.iter().any(|(n, _)| n == c)) {
        types.push((c.to_string(), true));
    }
    let payload = match payload {
        Some(p) => p,
        None => {
            let example = match chosen {
                Some(name) => catalog
                    .items
                    .iter()
                    .find(|t| t.name == name)
                    .and_then(|t| endpoints::example_of(t.schemas.as_ref()?, 0)),
                None => None,
            };
            let example = example.unwrap_or_else(|| serde_json::json!({}));
            serde_json::to_string_pretty(&example).unwrap_or_default()
        }
    };
    let status = match error {
        Some(_) => StatusCode::UNPROCESSABLE_ENTITY,
        None => StatusCode::OK,
    };
    Ok(html(
        status,
        &SendPage {
            chrome: Chrome::in_app(st, op, &app.id.0, &app.name),
            csrf: op.csrf.clone(),
            app_id: app.id.0.clone(),
            ep_id: ep.id.0.clone(),
            ep_url: herald_core::destination::redact(&ep.url).into_owned(),
            types,
            payload,
            error,
        },
    ))
}

/// `GET {ep}/test?event_type=`: the form, with the chosen type's example payload.
pub async fn show(
    op: Operator,
    State(st): State<AppState>,
    Path(path): Path<EndpointPath>,
    Query(q): Query<SendQ>,
) -> ConsoleResult<Response> {
    page(&st, &op, &path, q.event_type.as_deref(), None, None).await
}

/// `POST {ep}/test` (`event_type`, `payload`): publishes to this endpoint only, then the
/// message's page.
pub async fn send(
    State(st): State<AppState>,
    Path(path): Path<EndpointPath>,
    PostedPayload(posted): PostedPayload,
) -> ConsoleResult<Response> {
    let op = &posted.op;
    let (app, ep) = endpoints::load(&st, &op.auth(), &path).await?;
    let event_type = posted.fields.get("event_type").unwrap_or("").trim();
    let payload = posted.fields.get("payload").unwrap_or("").to_string();
    let again = |control: &'static str, words: String| {
        let (st, path) = (st.clone(), &path);
        let payload = payload.clone();
        async move {
            let chosen = Some(event_type).filter(|t| !t.is_empty());
            page(&st, op, path, chosen, Some(payload), Some((control, words))).await
        }
    };
    // Only a type of the catalog: a test event shows what a real one would look like.
    let known = match event_type {
        "" => None,
        t if !crate::dto::valid_uid(t) => None,
        t => st.store().get_event_type(t).await?.filter(|t| !t.archived),
    };
    if known.is_none() {
        let words = "Event type: choose one of the catalog's event types".to_string();
        return again("event_type", words).await;
    }
    let max = st.inner.max_payload_bytes;
    if payload.len() > max {
        let words = format!("Payload: larger than {max} bytes");
        let mut resp = again("payload", words).await?;
        *resp.status_mut() = StatusCode::PAYLOAD_TOO_LARGE;
        return Ok(resp);
    }
    let value = match serde_json::from_str::<serde_json::Value>(&payload) {
        Ok(v) if v.is_object() => v,
        Ok(_) => return again("payload", "Payload: must be a JSON object {…}".into()).await,
        Err(e) => return again("payload", format!("Payload: not valid JSON ({e})")).await,
    };
    let check = endpoints::SchemaCheck::Check;
    let sent = endpoints::send_to(
        &st,
        (&app, &ep),
        event_type.into(),
        value.to_string(),
        check,
    );
    match sent.await {
        Ok(msg) => {
            let to = format!("{}/app/{}/msg/{}", op.realm.base(), app.id, msg.id);
            Ok(Redirect::to(&to).into_response())
        }
        Err(ApiError::Validation(fields)) => {
            let words: Vec<String> = fields.iter().map(|f| f.msg.clone()).collect();
            again("payload", format!("Payload: {}", words.join("; "))).await
        }
        Err(e) => Err(e.into()),
    }
}
