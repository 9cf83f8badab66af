//! The console's endpoint screen: settings (sensitive header values redacted), the signing
//! secret hidden until a "Reveal" POST, and the newest attempts.
//!
//! Lookups and tenancy are `service::endpoints`' (as `/api/v1/app/{app}/endpoint/{ep}`); the
//! secret is shown only in the answer to the CSRF-checked POST, never in a GET page.

use askama::Template;
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::Response;
use herald_core::model::{is_sensitive_header, Attempt, DeliveryStatus, Endpoint, TriggerType};
use herald_core::now_millis;
use herald_store::{AttemptFilter, AttemptScope};
use serde::Deserialize;

use super::chart::{self, DayChart};
use super::csrf::Posted;
use super::ep_form::{endpoint_form, EndpointForm, KEPT};
use super::page::{html, page_query, Chrome, ConsoleResult, When};
use super::recover::{Progress, RECOVER_CHOICES};
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
    /// A `poll:` endpoint: its pull URL (consumers pull instead of receiving).
    poll_url: Option<String>,
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
    /// What the last "Recover", "Save" or "Rotate secret" did.
    notice: Option<String>,
    form: EndpointForm,
    recover_choices: &'static [(u32, &'static str)],
    chart: DayChart,
    /// The last "Recover"'s progress, polled until done.
    progress: Option<Progress>,
}

/// Deliveries of the messages of the last 24 hours to this endpoint, by status.
pub struct DayStats {
    success: u64,
    fail: u64,
    waiting: u64,
    /// Successes among finished deliveries, in percent ("—" when none finished).
    rate: String,
}

const DAY_MS: i64 = 86_400_000;

/// The query of the endpoint page: only what a "Recover" or "Save" just did.
#[derive(Debug, Default, Deserialize)]
pub struct AfterRecover {
    /// Deliveries the last "Recover" re-queued.
    recovered: Option<u64>,
    /// Set after "Save".
    saved: Option<u8>,
    /// The instant the last "Recover" started from (ms): its progress is shown.
    since: Option<i64>,
}

fn list_or_all(v: &Option<Vec<String>>) -> String {
    match v {
        Some(v) if !v.is_empty() => v.join(", "),
        _ => "all".into(),
    }
}

fn view(st: &AppState, app: &str, e: &Endpoint) -> EndpointView {
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
                    KEPT.to_string()
                } else {
                    v.clone()
                };
                (k.clone(), shown)
            })
            .collect(),
        created: When::at(e.created_at),
        poll_url: herald_core::pull::is_poll_url(&e.url).then(|| {
            format!(
                "{}/api/v1/app/{app}/endpoint/{}/poll",
                st.inner.public_url.trim_end_matches('/'),
                e.id
            )
        }),
    }
}

/// What the page shows besides the endpoint itself.
#[derive(Default)]
pub(super) struct Extras {
    pub reveal: bool,
    pub notice: Option<String>,
    /// The form as posted with its errors (422), instead of the stored settings.
    pub form: Option<EndpointForm>,
    pub progress: Option<Progress>,
}

pub(super) async fn render(
    st: &AppState,
    op: &Operator,
    path: &EndpointPath,
    reveal: bool,
    notice: Option<String>,
) -> ConsoleResult<Response> {
    let extras = Extras {
        reveal,
        notice,
        ..Default::default()
    };
    render_page(st, op, path, extras).await
}

/// The page with `x`: the posted form with its errors (422), a notice, the revealed secret,
/// a "Recover"'s progress.
pub(super) async fn render_page(
    st: &AppState,
    op: &Operator,
    path: &EndpointPath,
    x: Extras,
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
    let secret = x.reveal.then(|| {
        ep.secrets
            .first()
            .map(|s| herald_core::signing::answer_text(&s.key))
            .unwrap_or_default()
    });
    let status = match x.form {
        Some(_) => StatusCode::UNPROCESSABLE_ENTITY,
        None => StatusCode::OK,
    };
    let form = match x.form {
        Some(f) => f,
        None => endpoint_form(st, Some(&ep)).await?,
    };
    let page = EndpointPage {
        chrome: Chrome::in_app(st, op, &app.id.0, &app.name),
        csrf: op.csrf.clone(),
        app_id: app.id.0.clone(),
        ep: view(st, &app.id.0, &ep),
        secret,
        attempts: attempts.items.iter().map(AttemptRow::of).collect(),
        day: DayStats {
            success: stats.success,
            fail: stats.fail,
            waiting: stats.pending + stats.sending,
            rate: chart::rate(stats.success, stats.fail),
        },
        notice: x.notice,
        recover_choices: RECOVER_CHOICES,
        form,
        chart: chart::day_chart(st, &ep.id).await?,
        progress: x.progress,
    };
    Ok(html(status, &page))
}

/// `GET {base}/app/{app_id}/endpoint/{endpoint_id}` (`/console` or `/portal`).
pub async fn show(
    op: Operator,
    State(st): State<AppState>,
    Path(path): Path<EndpointPath>,
    Query(AfterRecover {
        recovered,
        saved,
        since,
    }): Query<AfterRecover>,
) -> ConsoleResult<Response> {
    let notice = match (recovered, saved) {
        (Some(n), _) => Some(format!(
            "{n} failed deliveries re-queued; the counts below follow them as they are sent."
        )),
        (None, Some(_)) => Some("Settings saved.".to_string()),
        (None, None) => None,
    };
    let progress = match (recovered, since) {
        (Some(n), Some(since)) => Some(Progress::of(&st, &op, &path, since, n).await?),
        _ => None,
    };
    let extras = Extras {
        notice,
        progress,
        ..Default::default()
    };
    render_page(&st, &op, &path, extras).await
}

/// `POST …/reveal`: the same page with the newest signing secret shown.
pub async fn reveal(
    State(st): State<AppState>,
    Path(path): Path<EndpointPath>,
    posted: Posted,
) -> ConsoleResult<Response> {
    render(&st, &posted.op, &path, true, None).await
}
