//! The console's source screen (inbound): provider scheme, ingestion URL, the request log with
//! its status filter, quarantined requests with their body and reason, "Release" and
//! "Reject".
//!
//! Lookups and tenancy are `service::sources`' (as `/api/v1/app/{app}/source/{src}`);
//! releasing is the same `service::sources::release` the API's release route calls. Bodies,
//! headers and reasons come from senders and are shown as escaped text only.

use askama::Template;
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use herald_core::model::{InboundRequest, InboundStatus};
use serde::Deserialize;

use super::csrf::Posted;
use super::page::{ok, page_query, Choice, Chrome, ConsoleError, ConsoleResult, Pager, When};
use super::session::Operator;
use crate::extract::Path;
use crate::paths::SourcePath;
use crate::service::{apps, sources};
use crate::state::AppState;

/// Requests per page of the log.
const REQUESTS_SHOWN: i64 = 25;

/// Every status of the filter, in the order the API documents them.
const STATUSES: [&str; 8] = [
    "accepted",
    "duplicate",
    "rejected",
    "quarantined",
    "released",
    "handshake",
    "stale",
    "held",
];

#[derive(Debug, Default, Deserialize)]
pub struct LogQ {
    /// Only requests in this status (empty: all).
    status: Option<String>,
    /// Iterator of the page.
    page: Option<String>,
}

/// One logged request as the page shows it (the stored row and its time).
pub struct RequestRow {
    req: InboundRequest,
    created: When,
}

impl RequestRow {
    fn quarantined(&self) -> bool {
        self.req.status == InboundStatus::Quarantined
    }
}

#[derive(Template)]
#[template(path = "console/source.html")]
struct SourcePage {
    chrome: Chrome,
    csrf: String,
    app_id: String,
    id: String,
    name: String,
    scheme: &'static str,
    ingest_url: String,
    /// The status filter.
    choice: Choice,
    requests: Vec<RequestRow>,
    pager: Pager,
}

/// `GET /console/app/{app_id}/source/{source_id}?status=&page=`.
pub async fn show(
    State(st): State<AppState>,
    op: Operator,
    Path(path): Path<SourcePath>,
    Query(LogQ {
        status,
        page: asked,
    }): Query<LogQ>,
) -> ConsoleResult<Response> {
    let status = status.as_deref().unwrap_or("").trim().to_string();
    let filter = match status.as_str() {
        "" => None,
        s => Some(InboundStatus::parse(s).ok_or_else(|| {
            ConsoleError::Api(
                StatusCode::UNPROCESSABLE_ENTITY,
                format!("“{s}” is not a request status"),
            )
        })?),
    };
    let app = apps::load(&st, &op.auth(), &path.app_id).await?;
    let s = sources::load(&st, &op.auth(), &path.app_id, &path.source_id).await?;
    let page = st
        .store()
        .list_inbound(
            &s.id,
            filter,
            &page_query(REQUESTS_SHOWN, asked.as_deref(), true)?,
        )
        .await?;
    let base = format!(
        "/console/app/{}/source/{}?status={status}&page=",
        app.id, s.id
    );
    let pager =
        Pager::new(base, asked.as_deref(), &page, |r| r.id.0.clone()).labelled("Newer", "Older");
    Ok(ok(&SourcePage {
        chrome: Chrome::in_app(&st, &op, &app.id.0, &app.name),
        csrf: op.csrf.clone(),
        app_id: app.id.0.clone(),
        id: s.id.0.clone(),
        name: s.name.clone(),
        scheme: s.verification.scheme.as_str(),
        ingest_url: format!("{}/in/{}", st.inner.public_url, s.id),
        choice: Choice {
            id: "status",
            label: "Status",
            options: std::iter::once("")
                .chain(STATUSES)
                .map(|v| {
                    (
                        v.to_string(),
                        if v.is_empty() { "all" } else { v }.to_string(),
                    )
                })
                .collect(),
            selected: status,
        },
        requests: page
            .items
            .into_iter()
            .map(|req| RequestRow {
                created: When::at(req.created_at),
                req,
            })
            .collect(),
        pager,
    }))
}

/// `POST …/release` (form field `request`): the quarantined request becomes a message; back to
/// the source's log.
pub async fn release(
    State(st): State<AppState>,
    Path(path): Path<SourcePath>,
    posted: Posted,
) -> ConsoleResult<Response> {
    let s = sources::load(&st, &posted.op.auth(), &path.app_id, &path.source_id).await?;
    let request = posted.fields.get("request").unwrap_or("");
    sources::release(&st, &s, request).await?;
    Ok(Redirect::to(&format!("/console/app/{}/source/{}", s.app_id, s.id)).into_response())
}

/// `POST …/reject` (form field `request`): the quarantined request is marked rejected (never
/// forwarded, kept in the log with who and when) by `service::sources::reject`, as the API's
/// `POST …/quarantine/{req}/reject`; back to the source's log.
pub async fn reject(
    State(st): State<AppState>,
    Path(path): Path<SourcePath>,
    posted: Posted,
) -> ConsoleResult<Response> {
    let auth = posted.op.auth();
    let s = sources::load(&st, &auth, &path.app_id, &path.source_id).await?;
    let request = posted.fields.get("request").unwrap_or("");
    sources::reject(&st, &auth, &s, request).await?;
    Ok(Redirect::to(&format!("/console/app/{}/source/{}", s.app_id, s.id)).into_response())
}
