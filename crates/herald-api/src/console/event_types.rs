//! The event catalog (`/console/event-types`, `/portal/event-types`): every event type that
//! is not archived, with its description, JSON Schema and example payload, pretty-printed as
//! text.
//!
//! Reads what `GET /api/v1/event-type` reads (any token may list the catalog); it must not
//! change anything (`event_type_edit` does, through the API's handlers). The console can list
//! archived types too (`?archived=1`); the portal never does.

use askama::Template;
use axum::extract::{Query, State};
use axum::response::Response;
use herald_core::model::EventType;
use serde::Deserialize;

use super::page::{ok, page_query, Chrome, ConsoleResult, Pager};
use super::session::Operator;
use crate::state::AppState;

/// Event types per page.
const PER_PAGE: i64 = 25;

#[derive(Debug, Default, Deserialize)]
pub struct ListQ {
    /// Iterator of the page.
    page: Option<String>,
    /// `1`: archived types too (console only).
    archived: Option<String>,
}

pub struct EventTypeRow {
    name: String,
    description: String,
    deprecated: bool,
    archived: bool,
    /// The newest schema version, indented (`None` without a schema).
    schema: Option<String>,
    /// The schema's first `examples` entry, indented.
    example: Option<String>,
}

/// The newest schema version of `e`: schemas are keyed by version ("1", "2", …), the
/// highest one is current.
pub fn newest_schema(e: &EventType) -> Option<&serde_json::Value> {
    e.schemas
        .as_ref()
        .and_then(|s| s.as_object())
        .and_then(|m| {
            m.iter()
                .max_by_key(|(k, _)| k.parse::<u64>().unwrap_or(0))
                .map(|(_, v)| v)
        })
}

impl EventTypeRow {
    fn of(e: &EventType) -> Self {
        let newest = newest_schema(e);
        let indent = |v: &serde_json::Value| serde_json::to_string_pretty(v).ok();
        Self {
            name: e.name.clone(),
            description: e.description.clone(),
            deprecated: e.deprecated,
            archived: e.archived,
            schema: newest.and_then(indent),
            example: newest
                .and_then(|s| s.get("examples"))
                .and_then(|x| x.get(0))
                .and_then(indent),
        }
    }
}

#[derive(Template)]
#[template(path = "console/event_types.html")]
struct CatalogPage {
    chrome: Chrome,
    csrf: String,
    /// Archived types are listed too.
    with_archived: bool,
    types: Vec<EventTypeRow>,
    pager: Pager,
}

/// `GET {base}/event-types?page=`.
pub async fn list(
    State(st): State<AppState>,
    op: Operator,
    Query(q): Query<ListQ>,
) -> ConsoleResult<Response> {
    let chrome = Chrome::signed_in(&st, &op);
    // Archived types are the operator's business: the portal's catalog never shows them.
    let with_archived = !chrome.portal && q.archived.as_deref() == Some("1");
    let page = st
        .store()
        .list_event_types(
            &page_query(PER_PAGE, q.page.as_deref(), false)?,
            with_archived,
        )
        .await?;
    let base = format!(
        "{}/event-types?archived={}&page=",
        chrome.base,
        u8::from(with_archived)
    );
    let pager = Pager::new(base, q.page.as_deref(), &page, |e| e.name.clone());
    Ok(ok(&CatalogPage {
        chrome,
        csrf: op.csrf.clone(),
        with_archived,
        types: page.items.iter().map(EventTypeRow::of).collect(),
        pager,
    }))
}
