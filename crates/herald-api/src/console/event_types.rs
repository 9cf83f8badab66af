//! The event catalog (`/console/event-types`, `/portal/event-types`): every event type that
//! is not archived, with its description, JSON Schema and example payload, pretty-printed as
//! text.
//!
//! Reads what `GET /api/v1/event-type` reads (any token may list the catalog); it must not
//! change anything.

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
}

pub struct EventTypeRow {
    name: String,
    description: String,
    deprecated: bool,
    /// The newest schema version, indented (`None` without a schema).
    schema: Option<String>,
    /// The schema's first `examples` entry, indented.
    example: Option<String>,
}

impl EventTypeRow {
    fn of(e: &EventType) -> Self {
        // Schemas are keyed by version ("1", "2", …): the highest one is current.
        let newest = e
            .schemas
            .as_ref()
            .and_then(|s| s.as_object())
            .and_then(|m| {
                m.iter()
                    .max_by_key(|(k, _)| k.parse::<u64>().unwrap_or(0))
                    .map(|(_, v)| v)
            });
        let indent = |v: &serde_json::Value| serde_json::to_string_pretty(v).ok();
        Self {
            name: e.name.clone(),
            description: e.description.clone(),
            deprecated: e.deprecated,
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
    types: Vec<EventTypeRow>,
    pager: Pager,
}

/// `GET {base}/event-types?page=`.
pub async fn list(
    State(st): State<AppState>,
    op: Operator,
    Query(q): Query<ListQ>,
) -> ConsoleResult<Response> {
    let page = st
        .store()
        .list_event_types(&page_query(PER_PAGE, q.page.as_deref(), false)?, false)
        .await?;
    let chrome = Chrome::signed_in(&st, &op);
    let base = format!("{}/event-types?page=", chrome.base);
    let pager = Pager::new(base, q.page.as_deref(), &page, |e| e.name.clone());
    Ok(ok(&CatalogPage {
        chrome,
        types: page.items.iter().map(EventTypeRow::of).collect(),
        pager,
    }))
}
