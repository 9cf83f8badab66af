//! Console screens of applications: the list (the console's home) and one application with
//! its endpoints, newest messages and sources.
//!
//! Uses the same lookups and tenancy as `/api/v1/app` (`service::apps`); it must not change
//! anything.

use askama::Template;
use axum::extract::{Query, State};
use axum::response::{IntoResponse, Redirect, Response};
use herald_core::model::{DeliveryStatus, Endpoint, Message, Source};
use herald_core::{now_millis, Millis};
use herald_store::MessageFilter;
use serde::Deserialize;

use super::ep_form::{endpoint_form, EndpointForm};
use super::page::{ok, page_query, Choice, Chrome, ConsoleError, ConsoleResult, Pager, When};
use super::session::Operator;
use crate::extract::Path;
use crate::paths::AppPath;
use crate::service::apps;
use crate::state::AppState;

/// Applications per page of the list.
const APPS_PER_PAGE: i64 = 25;
/// Endpoints counted per application on the list; beyond that it shows "N+".
const COUNT_CAP: i64 = 100;
/// Endpoints, messages and sources shown on an application's page.
const ENDPOINTS_SHOWN: i64 = 50;
const MESSAGES_SHOWN: i64 = 20;
const SOURCES_SHOWN: i64 = 50;

#[derive(Debug, Default, Deserialize)]
pub struct ListQ {
    /// ID or uid to go to, or text the names to list contain.
    q: Option<String>,
    /// Iterator of the page.
    page: Option<String>,
}

pub struct AppRow {
    id: String,
    uid: Option<String>,
    name: String,
    endpoints: String,
    failing: String,
}

#[derive(Template)]
#[template(path = "console/apps.html")]
struct AppsPage {
    chrome: Chrome,
    apps: Vec<AppRow>,
    query: String,
    notice: Option<String>,
    pager: Pager,
}

/// The application list; `?q=` goes to the application of that ID or uid, else lists the
/// applications whose name contains it (case-insensitive, paged).
pub async fn list(st: &AppState, op: &Operator, q: ListQ) -> ConsoleResult<Response> {
    op.caller.require_admin()?;
    let query = q.q.as_deref().map(str::trim).unwrap_or("").to_string();
    let mut notice = None;
    let asked = page_query(APPS_PER_PAGE, q.page.as_deref(), false)?;
    let page = if query.is_empty() {
        st.store().list_apps(&asked).await?
    } else {
        // A whole ID or uid goes straight to the application (on the first page only: a
        // later page is a page of name matches).
        if q.page.is_none() {
            if let Ok(app) = apps::load(st, &op.auth(), &query).await {
                return Ok(Redirect::to(&format!("/console/app/{}", app.id)).into_response());
            }
        }
        let found = st.store().search_apps(&query, &asked).await?;
        if found.items.is_empty() && q.page.is_none() {
            notice = Some(format!(
                "No application has the ID or uid “{query}”, nor a name containing it."
            ));
        }
        found
    };
    let now = now_millis();
    let mut rows = Vec::with_capacity(page.items.len());
    for a in &page.items {
        let eps = st
            .store()
            .list_endpoints(&a.id, &page_query(COUNT_CAP, None, false)?)
            .await?;
        let failing = eps
            .items
            .iter()
            .filter(|e| !matches!(e.state(now), "healthy" | "paused"))
            .count();
        let more = if eps.has_more { "+" } else { "" };
        rows.push(AppRow {
            id: a.id.0.clone(),
            uid: a.uid.clone(),
            name: a.name.clone(),
            endpoints: format!("{}{more}", eps.items.len()),
            failing: format!("{failing}{more}"),
        });
    }
    let keep = url::form_urlencoded::Serializer::new(String::new())
        .append_pair("q", &query)
        .finish();
    let pager = Pager::new(
        format!("/console?{keep}&page="),
        q.page.as_deref(),
        &page,
        |a| a.id.0.clone(),
    );
    Ok(ok(&AppsPage {
        chrome: Chrome::signed_in(st, op),
        apps: rows,
        query,
        notice,
        pager,
    }))
}

pub struct AppView {
    id: String,
    uid: Option<String>,
    name: String,
    created: When,
}

pub struct EndpointRow {
    id: String,
    url: String,
    description: String,
    state: &'static str,
    /// Successful attempts among the finished ones of the last 24 hours.
    rate: String,
}

impl EndpointRow {
    fn of(e: &Endpoint, now: Millis, rate: String) -> Self {
        Self {
            id: e.id.0.clone(),
            url: herald_core::destination::redact(&e.url).into_owned(),
            description: e.description.clone(),
            state: e.state(now),
            rate,
        }
    }
}

/// The endpoint list's rows, each with its 24 h success rate (one bounded read each).
async fn endpoint_rows(
    st: &AppState,
    eps: &[Endpoint],
    now: Millis,
) -> ConsoleResult<Vec<EndpointRow>> {
    let mut rows = Vec::with_capacity(eps.len());
    for e in eps {
        rows.push(EndpointRow::of(
            e,
            now,
            super::chart::day_rate(st, &e.id).await?,
        ));
    }
    Ok(rows)
}

pub struct MessageRow {
    id: String,
    event_type: String,
    created: When,
}

impl MessageRow {
    fn of(m: &Message) -> Self {
        Self {
            id: m.id.0.clone(),
            event_type: m.event_type.clone(),
            created: When::at(m.created_at),
        }
    }
}

pub struct SourceRow {
    id: String,
    name: String,
    scheme: &'static str,
    ingest_url: String,
}

impl SourceRow {
    fn of(s: &Source, public_url: &str) -> Self {
        Self {
            id: s.id.0.clone(),
            name: s.name.clone(),
            scheme: s.verification.scheme.as_str(),
            ingest_url: format!("{public_url}/in/{}", s.id),
        }
    }
}

#[derive(Template)]
#[template(path = "console/app.html")]
struct AppPage {
    chrome: Chrome,
    app: AppView,
    endpoints: Vec<EndpointRow>,
    endpoints_more: bool,
    messages: Vec<MessageRow>,
    /// Pages of messages.
    pager: Pager,
    /// The message filter as asked (shown back in its controls).
    event_type: String,
    from: String,
    to: String,
    /// "Delivery status": as asked, and the choices (value, words).
    status: String,
    statuses: Vec<(String, String)>,
    /// "Created within".
    choice: Choice,
    sources: Vec<SourceRow>,
    /// "Add endpoint".
    form: EndpointForm,
    /// The "Add endpoint" form is shown open (it was refused and carries its errors).
    add_open: bool,
    csrf: String,
}

#[derive(Debug, Default, Deserialize)]
pub struct ShowQ {
    /// Iterator of the message page.
    msgs: Option<String>,
    /// Only messages of these event types (comma-separated).
    event_type: Option<String>,
    /// Only messages of the last this many hours.
    within: Option<String>,
    /// Only messages created at or after / before this UTC instant (`YYYY-MM-DDTHH:MM`, as an
    /// `<input type="datetime-local">` sends it).
    from: Option<String>,
    to: Option<String>,
    /// Only messages with a delivery in this status (`success`, `pending`, `fail`, `sending`).
    status: Option<String>,
}

/// The "Delivery status" choices of the message filter (the API's labels, words).
const STATUSES: &[(&str, &str, DeliveryStatus)] = &[
    ("success", "succeeded", DeliveryStatus::Success),
    ("fail", "failed", DeliveryStatus::Fail),
    ("pending", "waiting", DeliveryStatus::Pending),
    ("sending", "sending", DeliveryStatus::Sending),
];

/// The delivery status asked for: empty is any; anything else must be one of [`STATUSES`].
fn delivery_status(v: Option<&str>) -> ConsoleResult<Option<DeliveryStatus>> {
    match v.map(str::trim).unwrap_or("") {
        "" => Ok(None),
        v => STATUSES
            .iter()
            .find(|(label, _, _)| *label == v)
            .map(|(_, _, s)| Some(*s))
            .ok_or_else(|| {
                ConsoleError::Api(
                    axum::http::StatusCode::UNPROCESSABLE_ENTITY,
                    "Delivery status: one of success, fail, pending, sending (or empty for any)"
                        .into(),
                )
            }),
    }
}

/// A time-range bound of the filter: empty is none; anything else must be a date and time.
fn instant(field: &str, v: Option<&str>) -> ConsoleResult<Option<Millis>> {
    let v = v.map(str::trim).unwrap_or("");
    if v.is_empty() {
        return Ok(None);
    }
    [
        "%Y-%m-%dT%H:%M",
        "%Y-%m-%dT%H:%M:%S",
        "%Y-%m-%dT%H:%M:%S%.f",
    ]
    .iter()
    .find_map(|f| chrono::NaiveDateTime::parse_from_str(v, f).ok())
    .map(|t| Some(t.and_utc().timestamp_millis()))
    .ok_or_else(|| {
        ConsoleError::Api(
            axum::http::StatusCode::UNPROCESSABLE_ENTITY,
            format!("{field}: expected a UTC date and time such as 2026-12-03T09:30"),
        )
    })
}

/// The "Created within" choices of the message filter (hours, words).
const WITHIN: &[(&str, &str)] = &[
    ("1", "the last hour"),
    ("24", "the last 24 hours"),
    ("168", "the last 7 days"),
];

/// The message filter as asked: the store's filter, the creation-time range (earliest,
/// latest), and the query string that keeps it across pages.
type Filter = (MessageFilter, Option<Millis>, Option<Millis>, String);

fn message_filter(q: &ShowQ) -> ConsoleResult<Filter> {
    let event_type = q.event_type.as_deref().unwrap_or("").trim();
    let types: Vec<String> = event_type
        .split(',')
        .map(str::trim)
        .filter(|t| !t.is_empty())
        .map(String::from)
        .collect();
    let within = q
        .within
        .as_deref()
        .filter(|w| WITHIN.iter().any(|(h, _)| h == w));
    let recent = within
        .and_then(|w| w.parse::<i64>().ok())
        .map(|h| now_millis() - h * 3_600_000);
    let from = instant("From", q.from.as_deref())?;
    // `after` is exclusive in the store: one millisecond earlier keeps "at or after".
    let after = recent.max(from.map(|f| f - 1));
    let before = instant("To", q.to.as_deref())?;
    let keep = url::form_urlencoded::Serializer::new(String::new())
        .append_pair("event_type", event_type)
        .append_pair("within", within.unwrap_or(""))
        .append_pair("from", q.from.as_deref().unwrap_or("").trim())
        .append_pair("to", q.to.as_deref().unwrap_or("").trim())
        .append_pair("status", q.status.as_deref().unwrap_or("").trim())
        .finish();
    let filter = MessageFilter {
        channel: None,
        event_types: (!types.is_empty()).then_some(types),
    };
    Ok((filter, after, before, keep))
}

/// `GET /console/app/{app_id}` and `GET /portal/app/{app_id}`.
pub async fn show(
    State(st): State<AppState>,
    op: Operator,
    Path(path): Path<AppPath>,
    Query(q): Query<ShowQ>,
) -> ConsoleResult<Response> {
    render(&st, &op, &path, &q, None).await
}

/// The application page. `add` is the "Add endpoint" form as it was posted, with the errors to
/// show next to its controls; the form is then open.
pub(crate) async fn render(
    st: &AppState,
    op: &Operator,
    path: &AppPath,
    q: &ShowQ,
    add: Option<EndpointForm>,
) -> ConsoleResult<Response> {
    let app = apps::load(st, &op.auth(), &path.app_id).await?;
    let now = now_millis();
    let eps = st
        .store()
        .list_endpoints(&app.id, &page_query(ENDPOINTS_SHOWN, None, false)?)
        .await?;
    let (filter, after, before, keep) = message_filter(q)?;
    let mut query = page_query(MESSAGES_SHOWN, q.msgs.as_deref(), true)?;
    query.after = after;
    query.before = before;
    let msgs = match delivery_status(q.status.as_deref())? {
        None => st.store().list_messages(&app.id, &filter, &query).await?,
        Some(status) => {
            st.store()
                .list_messages_by_status(&app.id, status, &filter, &query)
                .await?
        }
    };
    let srcs = st
        .store()
        .list_sources(&app.id, &page_query(SOURCES_SHOWN, None, false)?)
        .await?;
    let chrome = Chrome::signed_in(st, op);
    let base = format!("{}/app/{}?{keep}&msgs=", chrome.base, app.id);
    let pager =
        Pager::new(base, q.msgs.as_deref(), &msgs, |m| m.id.0.clone()).labelled("Newer", "Older");
    Ok(ok(&AppPage {
        chrome: Chrome {
            crumbs: (!chrome.portal)
                .then(|| ("/console".into(), "Applications".into()))
                .into_iter()
                .collect(),
            ..chrome
        },
        app: AppView {
            id: app.id.0.clone(),
            uid: app.uid.clone(),
            name: app.name.clone(),
            created: When::at(app.created_at),
        },
        endpoints: endpoint_rows(st, &eps.items, now).await?,
        endpoints_more: eps.has_more,
        messages: msgs.items.iter().map(MessageRow::of).collect(),
        event_type: q.event_type.clone().unwrap_or_default(),
        from: q.from.clone().unwrap_or_default(),
        to: q.to.clone().unwrap_or_default(),
        status: q.status.clone().unwrap_or_default().trim().to_string(),
        statuses: STATUSES
            .iter()
            .map(|(v, w, _)| (v.to_string(), w.to_string()))
            .collect(),
        choice: Choice {
            id: "within",
            label: "Created within",
            options: std::iter::once(("", "any time"))
                .chain(WITHIN.iter().copied())
                .map(|(v, w)| (v.to_string(), w.to_string()))
                .collect(),
            selected: q.within.clone().unwrap_or_default(),
        },
        pager,
        add_open: add.is_some(),
        form: match add {
            Some(form) => form,
            None => endpoint_form(st, None).await?,
        },
        csrf: op.csrf.clone(),
        sources: srcs
            .items
            .iter()
            .map(|s| SourceRow::of(s, &st.inner.public_url))
            .collect(),
    }))
}
