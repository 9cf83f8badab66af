//! The console's endpoint screen: settings (sensitive header values redacted), the signing
//! secret hidden until a "Reveal" POST, and the newest attempts.
//!
//! Lookups and tenancy are `service::endpoints`' (as `/api/v1/app/{app}/endpoint/{ep}`); the
//! secret is shown only in the answer to the CSRF-checked POST, never in a GET page.

use askama::Template;
use axum::extract::State;
use axum::response::Response;
use herald_core::model::{is_sensitive_header, Attempt, DeliveryStatus, Endpoint, TriggerType};
use herald_core::now_millis;
use herald_store::{AttemptFilter, AttemptScope};

use super::csrf::Posted;
use super::page::{ok, page_query, Chrome, ConsoleResult, When};
use super::session::Operator;
use crate::extract::Path;
use crate::paths::EndpointPath;
use crate::service::endpoints;
use crate::state::AppState;

/// Attempts shown on the endpoint's page.
const ATTEMPTS_SHOWN: i64 = 20;

pub struct EndpointView {
    id: String,
    uid: Option<String>,
    url: String,
    description: String,
    state: &'static str,
    event_types: String,
    channels: String,
    throttle: String,
    headers: Vec<(String, String)>,
    created: When,
}

/// One attempt as the endpoint and message screens show it.
pub struct AttemptRow {
    pub app_id: String,
    pub msg_id: String,
    pub status: &'static str,
    pub code: String,
    pub duration_ms: i64,
    pub manual: bool,
    pub created: When,
    pub response: String,
}

impl AttemptRow {
    pub fn of(a: &Attempt) -> Self {
        Self {
            app_id: a.app_id.0.clone(),
            msg_id: a.msg_id.0.clone(),
            status: match a.status {
                DeliveryStatus::Success => "success",
                DeliveryStatus::Pending => "pending",
                DeliveryStatus::Fail => "fail",
                DeliveryStatus::Sending => "sending",
            },
            code: match (a.response_status_code, &a.error) {
                (0, Some(e)) => e.clone(),
                (0, None) => "no response".into(),
                (c, _) => c.to_string(),
            },
            duration_ms: a.response_duration_ms,
            manual: a.trigger_type == TriggerType::Manual,
            created: When::at(a.created_at),
            response: a.response.clone(),
        }
    }
}

#[derive(Template)]
#[template(path = "console/endpoint.html")]
struct EndpointPage {
    chrome: Chrome,
    csrf: String,
    app_id: String,
    ep: EndpointView,
    secret: Option<String>,
    attempts: Vec<AttemptRow>,
}

fn list_or_all(v: &Option<Vec<String>>) -> String {
    match v {
        Some(v) if !v.is_empty() => v.join(", "),
        _ => "all".into(),
    }
}

fn view(e: &Endpoint) -> EndpointView {
    EndpointView {
        id: e.id.0.clone(),
        uid: e.uid.clone(),
        url: e.url.clone(),
        description: e.description.clone(),
        state: e.state(now_millis()),
        event_types: list_or_all(&e.event_types),
        channels: list_or_all(&e.channels),
        throttle: e
            .throttle_rate
            .map_or("none".into(), |r| format!("{r} per second")),
        headers: e
            .headers
            .iter()
            .map(|(k, v)| {
                let shown = if is_sensitive_header(k) {
                    "(redacted)".to_string()
                } else {
                    v.clone()
                };
                (k.clone(), shown)
            })
            .collect(),
        created: When::at(e.created_at),
    }
}

async fn render(
    st: &AppState,
    op: &Operator,
    path: &EndpointPath,
    reveal: bool,
) -> ConsoleResult<Response> {
    let (app, ep) = endpoints::load(st, &op.auth(), path).await?;
    let attempts = st
        .store()
        .list_attempts(
            &app.id,
            &AttemptScope::Endpoint(ep.id.clone()),
            &AttemptFilter::default(),
            &page_query(ATTEMPTS_SHOWN, None, true)?,
        )
        .await?;
    let secret = reveal.then(|| {
        ep.secrets
            .first()
            .map(|s| s.key.clone())
            .unwrap_or_default()
    });
    Ok(ok(&EndpointPage {
        chrome: Chrome::in_app(&op.csrf, &app.id.0, &app.name),
        csrf: op.csrf.clone(),
        app_id: app.id.0.clone(),
        ep: view(&ep),
        secret,
        attempts: attempts.items.iter().map(AttemptRow::of).collect(),
    }))
}

/// `GET /console/app/{app_id}/endpoint/{endpoint_id}`.
pub async fn show(
    State(st): State<AppState>,
    op: Operator,
    Path(path): Path<EndpointPath>,
) -> ConsoleResult<Response> {
    render(&st, &op, &path, false).await
}

/// `POST …/reveal`: the same page with the newest signing secret shown.
pub async fn reveal(
    State(st): State<AppState>,
    Path(path): Path<EndpointPath>,
    posted: Posted,
) -> ConsoleResult<Response> {
    render(&st, &posted.op, &path, true).await
}
