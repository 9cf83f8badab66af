//! The console's endpoint screen: settings (sensitive header values redacted), the signing
//! secret hidden until a "Reveal" POST, and the newest attempts.
//!
//! Lookups and tenancy are `service::endpoints`' (as `/api/v1/app/{app}/endpoint/{ep}`); the
//! secret is shown only in the answer to the CSRF-checked POST, never in a GET page.

use askama::Template;
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use herald_core::model::{is_sensitive_header, Attempt, DeliveryStatus, Endpoint, TriggerType};
use herald_core::now_millis;
use herald_store::{AttemptFilter, AttemptScope};
use serde::Deserialize;

use super::csrf::Posted;
use super::page::{ok, page_query, Chrome, ConsoleError, ConsoleResult, When};
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
    day: DayStats,
    /// What the last "Recover" did.
    notice: Option<String>,
    recover_choices: &'static [(u32, &'static str)],
}

/// Deliveries of the messages of the last 24 hours to this endpoint, by status.
pub struct DayStats {
    success: u64,
    fail: u64,
    waiting: u64,
    /// Successes among finished deliveries, in percent ("—" when none finished).
    rate: String,
}

/// How far back "Recover failed deliveries" reaches (hours, words).
const RECOVER_CHOICES: &[(u32, &str)] = &[
    (1, "the last hour"),
    (6, "the last 6 hours"),
    (24, "the last 24 hours"),
    (72, "the last 3 days"),
    (168, "the last 7 days"),
];

const DAY_MS: i64 = 86_400_000;

/// The query of the endpoint page: only what a "Recover" just did.
#[derive(Debug, Default, Deserialize)]
pub struct AfterRecover {
    /// Deliveries the last "Recover" re-queued.
    recovered: Option<u64>,
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
        url: herald_core::destination::redact(&e.url).into_owned(),
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
    notice: Option<String>,
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
    let stats = st
        .store()
        .endpoint_stats(&ep.id, Some(now_millis() - DAY_MS), None)
        .await?;
    let finished = stats.success + stats.fail;
    let secret = reveal.then(|| {
        ep.secrets
            .first()
            .map(|s| s.key.clone())
            .unwrap_or_default()
    });
    Ok(ok(&EndpointPage {
        chrome: Chrome::in_app(st, op, &app.id.0, &app.name),
        csrf: op.csrf.clone(),
        app_id: app.id.0.clone(),
        ep: view(&ep),
        secret,
        attempts: attempts.items.iter().map(AttemptRow::of).collect(),
        day: DayStats {
            success: stats.success,
            fail: stats.fail,
            waiting: stats.pending + stats.sending,
            rate: match finished {
                0 => "—".into(),
                n => format!("{:.1} %", stats.success as f64 * 100.0 / n as f64),
            },
        },
        notice,
        recover_choices: RECOVER_CHOICES,
    }))
}

/// `GET {base}/app/{app_id}/endpoint/{endpoint_id}` (`/console` or `/portal`).
pub async fn show(
    op: Operator,
    State(st): State<AppState>,
    Path(path): Path<EndpointPath>,
    Query(AfterRecover { recovered }): Query<AfterRecover>,
) -> ConsoleResult<Response> {
    let notice = recovered.map(|n| {
        format!("{n} failed deliveries re-queued; the counts below follow them as they are sent.")
    });
    render(&st, &op, &path, false, notice).await
}

/// `POST …/reveal`: the same page with the newest signing secret shown.
pub async fn reveal(
    State(st): State<AppState>,
    Path(path): Path<EndpointPath>,
    posted: Posted,
) -> ConsoleResult<Response> {
    render(&st, &posted.op, &path, true, None).await
}

/// `POST …/recover` (form field `since_hours`): re-queues every failed delivery of messages
/// since then, as `POST /api/v1/…/endpoint/{ep}/recover` does, and shows the count.
pub async fn recover(
    State(st): State<AppState>,
    Path(path): Path<EndpointPath>,
    posted: Posted,
) -> ConsoleResult<Response> {
    let (app, ep) = endpoints::load(&st, &posted.op.auth(), &path).await?;
    let hours = posted
        .fields
        .get("since_hours")
        .and_then(|h| h.parse::<u32>().ok())
        .filter(|h| RECOVER_CHOICES.iter().any(|(c, _)| c == h))
        .ok_or_else(|| {
            ConsoleError::Api(
                StatusCode::UNPROCESSABLE_ENTITY,
                "choose how far back to recover".into(),
            )
        })?;
    let now = now_millis();
    let since = now - i64::from(hours) * 3_600_000;
    let n = st.store().recover(&ep.id, since, None, now).await?;
    st.wake();
    let base = posted.op.realm.base();
    let back = format!("{base}/app/{}/endpoint/{}?recovered={n}", app.id, ep.id);
    Ok(Redirect::to(&back).into_response())
}
