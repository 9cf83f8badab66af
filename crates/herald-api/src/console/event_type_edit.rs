//! Changing the event catalog from the console: "New event type", "Edit" (description, JSON
//! Schema, example payload) and "Archive" / "Unarchive".
//!
//! Every change is made by the JSON API's own handlers (`routes::misc::create_event_type`,
//! `patch_event_type`) with the session's `Auth`, so the same checks apply: admin only, the
//! name's pattern, the schema guard (depth, size, `$ref` loops) and compilation. A refused
//! form is shown again with the API's reason next to the field that caused it. This module
//! only turns form fields into the API's bodies; it must not write to the store.

use askama::Template;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use herald_core::model::EventType;
use serde_json::{json, Map, Value};

use super::csrf::{Fields, Posted};
use super::event_types::newest_schema;
use super::page::{ok, Chrome, ConsoleError, ConsoleResult};
use super::session::Operator;
use crate::dto::{EventTypeIn, EventTypePatch, EventTypeUpdate};
use crate::error::ApiError;
use crate::extract::Path;
use crate::paths::EventTypePath;
use crate::routes::misc as api;
use crate::scope::{At, Ctx};
use crate::state::AppState;

/// The form's fields as typed, and the errors to show next to them.
#[derive(Default)]
pub struct EventTypeForm {
    name: String,
    description: String,
    schema: String,
    example: String,
    /// (field, reason): `name`, `description`, `schema`, `example`, or `form` for the rest.
    errors: Vec<(&'static str, String)>,
}

impl EventTypeForm {
    fn of(e: &EventType) -> Self {
        let newest = newest_schema(e).cloned();
        let example = newest
            .as_ref()
            .and_then(|s| s.get("examples"))
            .and_then(|x| x.get(0))
            .and_then(|x| serde_json::to_string_pretty(x).ok())
            .unwrap_or_default();
        // The example is edited in its own box: the schema box shows the rest.
        let schema = newest
            .map(|mut s| {
                if let Some(m) = s.as_object_mut() {
                    m.remove("examples");
                }
                s
            })
            .and_then(|s| serde_json::to_string_pretty(&s).ok())
            .unwrap_or_default();
        Self {
            name: e.name.clone(),
            description: e.description.clone(),
            schema,
            example,
            errors: Vec::new(),
        }
    }

    fn typed(f: &Fields, name: &str) -> Self {
        let get = |k: &str| f.get(k).unwrap_or("").to_string();
        Self {
            name: name.to_string(),
            description: get("description"),
            schema: get("schema"),
            example: get("example"),
            errors: Vec::new(),
        }
    }

    /// The error shown next to `field`, if any.
    fn error(&self, field: &str) -> Option<&str> {
        self.errors
            .iter()
            .find(|(f, _)| *f == field)
            .map(|(_, m)| m.as_str())
    }
}

#[derive(Template)]
#[template(path = "console/event_type_form.html")]
struct FormPage {
    chrome: Chrome,
    csrf: String,
    /// `None`: a new event type.
    editing: Option<String>,
    form: EventTypeForm,
}

fn form_page(
    st: &AppState,
    op: &Operator,
    editing: Option<String>,
    form: EventTypeForm,
) -> FormPage {
    let mut chrome = Chrome::signed_in(st, op);
    chrome.crumbs = vec![("/console/event-types".into(), "Event types".into())];
    FormPage {
        chrome,
        csrf: op.csrf.clone(),
        editing,
        form,
    }
}

/// The form shown again with `errors`, answered 422.
fn refused(st: &AppState, op: &Operator, editing: Option<String>, form: EventTypeForm) -> Response {
    let mut resp = ok(&form_page(st, op, editing, form));
    *resp.status_mut() = StatusCode::UNPROCESSABLE_ENTITY;
    resp
}

/// The API's `schemas` from the two boxes: version "1" (or the version being edited) holds
/// the schema with the example as its first `examples` entry. Both empty: no schema.
fn schemas_of(form: &mut EventTypeForm, version: &str) -> Option<Value> {
    let parse = |text: &str| -> Result<Option<Value>, String> {
        match text.trim() {
            "" => Ok(None),
            t => serde_json::from_str(t)
                .map(Some)
                .map_err(|e| format!("not JSON: {e}")),
        }
    };
    let schema = parse(&form.schema).map_err(|e| form.errors.push(("schema", e)));
    let example = parse(&form.example).map_err(|e| form.errors.push(("example", e)));
    let (Ok(schema), Ok(example)) = (schema, example) else {
        return None;
    };
    let mut s = match schema {
        None if example.is_none() => return None,
        None => Map::new(),
        Some(Value::Object(m)) => m,
        Some(_) => {
            form.errors
                .push(("schema", "a JSON Schema must be a JSON object".into()));
            return None;
        }
    };
    if let Some(x) = example {
        s.insert("examples".into(), json!([x]));
    }
    Some(json!({ version: Value::Object(s) }))
}

/// Puts the API's refusal next to the field it names (the rest at the top of the form).
fn place(form: &mut EventTypeForm, e: ApiError) -> ConsoleResult<()> {
    match e {
        ApiError::Validation(fields) => {
            for f in fields {
                let field = match f.loc.last().map(String::as_str) {
                    Some("name") => "name",
                    Some("description") => "description",
                    Some("schemas") => "schema",
                    _ => "form",
                };
                form.errors.push((field, f.msg));
            }
            Ok(())
        }
        ApiError::Conflict(m) => {
            form.errors.push(("name", m));
            Ok(())
        }
        other => Err(other.into()),
    }
}

/// `GET /console/event-types/new`.
pub async fn new(State(st): State<AppState>, op: Operator) -> ConsoleResult<Response> {
    op.caller.require_admin()?;
    Ok(ok(&form_page(&st, &op, None, EventTypeForm::default())))
}

/// `POST /console/event-types`: creates the event type, as `POST /api/v1/event-type`.
pub async fn create(State(st): State<AppState>, posted: Posted) -> ConsoleResult<Response> {
    let name = posted.fields.get("name").unwrap_or("").trim().to_string();
    let mut form = EventTypeForm::typed(&posted.fields, &name);
    let schemas = schemas_of(&mut form, "1");
    if !form.errors.is_empty() {
        return Ok(refused(&st, &posted.op, None, form));
    }
    let input = EventTypeIn {
        name: name.clone(),
        fields: EventTypeUpdate {
            description: form.description.clone(),
            archived: None,
            deprecated: None,
            schemas,
        },
    };
    let cx = Ctx {
        st: st.clone(),
        auth: posted.op.auth(),
        input,
    };
    match api::create_event_type(cx).await {
        Ok(_) => Ok(Redirect::to("/console/event-types").into_response()),
        Err(e) => {
            place(&mut form, e)?;
            Ok(refused(&st, &posted.op, None, form))
        }
    }
}

async fn load(st: &AppState, name: &str) -> ConsoleResult<EventType> {
    st.store()
        .get_event_type(name)
        .await?
        .ok_or_else(|| ConsoleError::Api(StatusCode::NOT_FOUND, "event type not found".into()))
}

/// `GET /console/event-types/{name}/edit`.
pub async fn edit(
    State(st): State<AppState>,
    op: Operator,
    Path(path): Path<EventTypePath>,
) -> ConsoleResult<Response> {
    op.caller.require_admin()?;
    let et = load(&st, &path.name).await?;
    Ok(ok(&form_page(
        &st,
        &op,
        Some(et.name.clone()),
        EventTypeForm::of(&et),
    )))
}

/// `POST /console/event-types/{name}/edit`: saves the description and the newest schema
/// version (with its example), as `PATCH /api/v1/event-type/{name}`.
pub async fn save(
    State(st): State<AppState>,
    Path(path): Path<EventTypePath>,
    posted: Posted,
) -> ConsoleResult<Response> {
    posted.op.caller.require_admin()?;
    let et = load(&st, &path.name).await?;
    let mut form = EventTypeForm::typed(&posted.fields, &et.name);
    // The newest version is the one edited; older versions stay as they are.
    let version = newest_version(&et).unwrap_or_else(|| "1".into());
    let edited = schemas_of(&mut form, &version);
    if !form.errors.is_empty() {
        return Ok(refused(&st, &posted.op, Some(et.name), form));
    }
    let mut all = et
        .schemas
        .clone()
        .and_then(|s| s.as_object().cloned())
        .unwrap_or_default();
    all.remove(&version);
    if let Some(Value::Object(m)) = edited {
        all.extend(m);
    }
    let patch = EventTypePatch {
        description: Some(form.description.clone()),
        archived: None,
        deprecated: None,
        schemas: Some((!all.is_empty()).then_some(Value::Object(all))),
    };
    patch_with(&st, &posted, &et.name, patch, form).await
}

/// `POST /console/event-types/{name}/archive` (field `archived`: `true` or `false`).
pub async fn archive(
    State(st): State<AppState>,
    Path(path): Path<EventTypePath>,
    posted: Posted,
) -> ConsoleResult<Response> {
    let archived = posted.fields.get("archived") != Some("false");
    let patch = EventTypePatch {
        description: None,
        archived: Some(archived),
        deprecated: None,
        schemas: None,
    };
    patch_with(&st, &posted, &path.name, patch, EventTypeForm::default()).await
}

async fn patch_with(
    st: &AppState,
    posted: &Posted,
    name: &str,
    patch: EventTypePatch,
    mut form: EventTypeForm,
) -> ConsoleResult<Response> {
    let at = At {
        st: st.clone(),
        auth: posted.op.auth(),
        path: EventTypePath {
            name: name.to_string(),
        },
        input: patch,
    };
    match api::patch_event_type(at).await {
        Ok(_) => Ok(Redirect::to("/console/event-types?archived=1").into_response()),
        Err(e) => {
            place(&mut form, e)?;
            Ok(refused(st, &posted.op, Some(name.to_string()), form))
        }
    }
}

/// The key of the newest schema version of `e`.
fn newest_version(e: &EventType) -> Option<String> {
    e.schemas
        .as_ref()
        .and_then(|s| s.as_object())
        .and_then(|m| {
            m.keys()
                .max_by_key(|k| k.parse::<u64>().unwrap_or(0))
                .cloned()
        })
}
