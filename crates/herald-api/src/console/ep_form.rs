//! The endpoint form of the console and the portal ("Add endpoint" on the application page,
//! "Edit" on the endpoint page): what it shows, filled from an endpoint, and how its fields
//! become the JSON API's body — URL (HTTP(S), broker or `poll:` destinations), description,
//! event types from the catalog, channels, throttle, disabled, custom headers, metadata and the
//! delivery options (timeout, batch, content filter, TLS/encryption as JSON).
//!
//! Sensitive header values and broker passwords never reach the page: headers show
//! [`KEPT`] and keep their stored value unless replaced, URLs are the API's redacted form
//! (which the API maps back to the stored credentials). It only reads the catalog and parses;
//! it must not write (the API's handlers do, see `edit`).

use std::collections::BTreeMap;

use herald_core::model::{is_sensitive_header, Endpoint};
use serde_json::{json, Map, Value};

use super::csrf::Fields;
use super::page::{page_query, ConsoleResult};
use crate::error::ApiError;
use crate::state::AppState;

/// Event types offered as checkboxes on the endpoint forms.
const CHOICES: i64 = 100;

/// What a sensitive header's value shows as; sent back unchanged, the stored value is kept.
pub const KEPT: &str = "••• (set)";

/// What `templates/console/endpoint_form.html` shows.
#[derive(Default)]
pub struct EndpointForm {
    pub url: String,
    pub description: String,
    pub throttle: String,
    pub disabled: bool,
    /// (event type, ticked).
    pub choices: Vec<(String, bool)>,
    pub more_event_types: String,
    /// Comma-separated.
    pub channels: String,
    /// `Name: value` lines (sensitive values as [`KEPT`]).
    pub headers: String,
    /// A JSON object, indented (empty for none).
    pub metadata: String,
    pub timeout_ms: String,
    pub batch_max_events: String,
    pub batch_max_wait_ms: String,
    /// The content filter as JSON (empty for none).
    pub filter: String,
    /// `tls`/`encryption` to set, as JSON (empty: unchanged).
    pub options: String,
    /// Which of `tls`/`encryption` the endpoint has ("none" without either).
    pub options_set: String,
    /// (control, message): errors shown next to their control.
    pub errors: Vec<(&'static str, String)>,
}

impl EndpointForm {
    /// The error of `control`, if any.
    pub fn error(&self, control: &str) -> Option<&str> {
        self.errors
            .iter()
            .find(|(c, _)| *c == control)
            .map(|(_, m)| m.as_str())
    }

    /// Errors of no control of the form (shown above it).
    pub fn other_errors(&self) -> Vec<&str> {
        self.errors
            .iter()
            .filter(|(c, _)| *c == "form")
            .map(|(_, m)| m.as_str())
            .collect()
    }
}

fn pretty(v: &Value) -> String {
    serde_json::to_string_pretty(v).unwrap_or_default()
}

/// The form filled from `ep` (empty for a new endpoint): the catalog's first event types to
/// tick, plus the endpoint's own ones not in it.
pub async fn endpoint_form(st: &AppState, ep: Option<&Endpoint>) -> ConsoleResult<EndpointForm> {
    let page = st
        .store()
        .list_event_types(&page_query(CHOICES, None, false)?, false)
        .await?;
    let chosen: Vec<String> = ep.and_then(|e| e.event_types.clone()).unwrap_or_default();
    let mut choices: Vec<(String, bool)> = page
        .items
        .iter()
        .map(|t| (t.name.clone(), chosen.contains(&t.name)))
        .collect();
    for c in &chosen {
        if !choices.iter().any(|(n, _)| n == c) {
            choices.push((c.clone(), true));
        }
    }
    let Some(e) = ep else {
        return Ok(EndpointForm {
            choices,
            options_set: "none".into(),
            ..Default::default()
        });
    };
    let o = &e.options;
    let set: Vec<&str> = [
        ("tls", o.tls.is_some()),
        ("encryption", o.encryption.is_some()),
    ]
    .into_iter()
    .filter_map(|(n, s)| s.then_some(n))
    .collect();
    Ok(EndpointForm {
        url: herald_core::destination::redact(&e.url).into_owned(),
        description: e.description.clone(),
        throttle: e.throttle_rate.map(|r| r.to_string()).unwrap_or_default(),
        disabled: e.disabled,
        choices,
        more_event_types: String::new(),
        channels: e.channels.as_deref().unwrap_or_default().join(", "),
        headers: e
            .headers
            .iter()
            .map(|(k, v)| {
                let v = if is_sensitive_header(k) { KEPT } else { v };
                format!("{k}: {v}\n")
            })
            .collect(),
        metadata: if e.metadata.is_empty() {
            String::new()
        } else {
            pretty(&json!(e.metadata))
        },
        timeout_ms: o.timeout_ms.map(|t| t.to_string()).unwrap_or_default(),
        batch_max_events: o
            .batch
            .map(|b| b.max_events.to_string())
            .unwrap_or_default(),
        batch_max_wait_ms: o
            .batch
            .map(|b| b.max_wait_ms.to_string())
            .unwrap_or_default(),
        filter: o.filter.as_ref().map(pretty).unwrap_or_default(),
        options: String::new(),
        options_set: if set.is_empty() {
            "none".into()
        } else {
            set.join(", ")
        },
        errors: Vec::new(),
    })
}

/// The form as posted, to show again next to its errors.
pub fn echo(f: &Fields, mut form: EndpointForm) -> EndpointForm {
    let get = |n: &str| f.get(n).unwrap_or_default().to_string();
    let ticked: Vec<&str> = f.all("event_type").collect();
    for (name, t) in &mut form.choices {
        *t = ticked.contains(&name.as_str());
    }
    form.url = get("url");
    form.description = get("description");
    form.throttle = get("throttle_rate");
    form.disabled = f.get("disabled").is_some();
    form.more_event_types = get("more_event_types");
    form.channels = get("channels");
    form.headers = get("headers");
    form.metadata = get("metadata");
    form.timeout_ms = get("timeout_ms");
    form.batch_max_events = get("batch_max_events");
    form.batch_max_wait_ms = get("batch_max_wait_ms");
    form.filter = get("filter");
    form.options = get("options");
    form
}

/// The control an API validation error's field belongs to.
pub fn control_of(api_field: &str) -> &'static str {
    match api_field {
        "url" => "url",
        "description" => "description",
        "eventTypes" | "filterTypes" => "event_types",
        "channels" => "channels",
        "throttleRate" | "rateLimit" => "throttle_rate",
        "headers" => "headers",
        "metadata" => "metadata",
        "timeoutMs" => "timeout_ms",
        "batch" => "batch",
        "filter" => "filter",
        "tls" | "encryption" => "options",
        _ => "form",
    }
}

/// The errors of a refused API call, each at its control; `None` when it is not a validation
/// error (shown as an error page, as before).
pub fn api_errors(e: &ApiError) -> Option<Vec<(&'static str, String)>> {
    match e {
        ApiError::Validation(fields) => Some(
            fields
                .iter()
                .map(|f| {
                    let field = f.loc.get(1).or(f.loc.last());
                    let field = field.map_or("body", String::as_str);
                    (control_of(field), format!("{field}: {}", f.msg))
                })
                .collect(),
        ),
        _ => None,
    }
}

/// Reads the form into the API's body, collecting every field that cannot be read.
struct Reader<'a> {
    f: &'a Fields,
    body: Map<String, Value>,
    errors: Vec<(&'static str, String)>,
    editing: bool,
}

impl Reader<'_> {
    fn text(&self, name: &str) -> Option<&str> {
        self.f.get(name).map(str::trim)
    }

    /// A JSON field: absent leaves the setting; empty clears it when editing.
    fn json(&mut self, name: &'static str, key: &str, words: &str, object: bool) {
        let Some(t) = self.text(name) else { return };
        if t.is_empty() {
            if self.editing {
                self.body.insert(key.into(), Value::Null);
            }
            return;
        }
        match serde_json::from_str::<Value>(t) {
            Ok(v) if object && !v.is_object() => self
                .errors
                .push((name, format!("{words}: must be a JSON object {{…}}"))),
            Ok(v) => {
                self.body.insert(key.into(), v);
            }
            Err(e) => self
                .errors
                .push((name, format!("{words}: not valid JSON ({e})"))),
        }
    }

    /// A whole-number field: absent leaves the setting; empty clears it when editing.
    fn number(&mut self, name: &'static str, key: &str, words: &str) -> Option<Option<i64>> {
        let t = self.text(name)?;
        if t.is_empty() {
            return Some(None);
        }
        match t.parse::<i64>() {
            Ok(n) => {
                self.body.insert(key.into(), json!(n));
                Some(Some(n))
            }
            Err(_) => {
                self.errors
                    .push((name, format!("{words}: a whole number, or empty for none")));
                None
            }
        }
    }

    fn clear_if_editing(&mut self, key: &str) {
        if self.editing {
            self.body.insert(key.into(), Value::Null);
        }
    }
}

/// The event types the form chose: the checked catalog entries plus any typed into "Other
/// event types" (comma-separated). None chosen: every event type (`null`).
fn event_types(f: &Fields) -> Value {
    let mut types: Vec<String> = f.all("event_type").map(str::to_string).collect();
    types.extend(split_list(f.get("more_event_types").unwrap_or("")));
    types.sort();
    types.dedup();
    if types.is_empty() {
        Value::Null
    } else {
        json!(types)
    }
}

fn split_list(s: &str) -> impl Iterator<Item = String> + '_ {
    s.split(',')
        .map(str::trim)
        .filter(|t| !t.is_empty())
        .map(String::from)
}

/// `Name: value` lines into headers; a sensitive header sent back as [`KEPT`] keeps its
/// stored value from `stored`. A line without `:` is the form's error.
pub fn parse_headers(
    text: &str,
    stored: &BTreeMap<String, String>,
) -> Result<BTreeMap<String, String>, String> {
    let mut out = BTreeMap::new();
    for (i, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() {
            continue;
        }
        let Some((name, value)) = line.split_once(':') else {
            return Err(format!(
                "line {}: write each header as \"Name: value\"",
                i + 1
            ));
        };
        let (name, value) = (name.trim(), value.trim());
        let value = if value == KEPT {
            let kept = stored.iter().find(|(k, _)| k.eq_ignore_ascii_case(name));
            match kept {
                Some((_, v)) => v.clone(),
                None => return Err(format!("{name}: type the header's value")),
            }
        } else {
            value.to_string()
        };
        out.insert(name.to_string(), value);
    }
    Ok(out)
}

/// The API body of the form's fields (a field absent from the form leaves its setting as it
/// is), or the errors of the fields that cannot be read, each at its control.
pub fn settings(f: &Fields, editing: bool) -> Result<Value, Vec<(&'static str, String)>> {
    let mut r = Reader {
        f,
        body: Map::new(),
        errors: Vec::new(),
        editing,
    };
    r.body
        .insert("url".into(), json!(r.text("url").unwrap_or("")));
    r.body.insert(
        "description".into(),
        json!(f.get("description").unwrap_or("")),
    );
    r.body.insert("eventTypes".into(), event_types(f));
    match r.number("throttle_rate", "throttleRate", "Throttle") {
        Some(None) => r.body.insert("throttleRate".into(), Value::Null),
        _ => None,
    };
    r.body
        .insert("disabled".into(), json!(f.get("disabled").is_some()));
    if let Some(c) = r.text("channels") {
        let list: Vec<String> = split_list(c).collect();
        if list.is_empty() {
            r.clear_if_editing("channels");
        } else {
            r.body.insert("channels".into(), json!(list));
        }
    }
    r.json("metadata", "metadata", "Metadata", true);
    r.json("filter", "filter", "Filter", true);
    if let Some(None) = r.number("timeout_ms", "timeoutMs", "Timeout") {
        r.clear_if_editing("timeoutMs");
    }
    batch(&mut r);
    options(&mut r);
    if r.errors.is_empty() {
        Ok(Value::Object(r.body))
    } else {
        Err(r.errors)
    }
}

/// "Batch up to" / "waiting at most": both empty is no batching.
fn batch(r: &mut Reader<'_>) {
    let (Some(max), Some(wait)) = (r.text("batch_max_events"), r.text("batch_max_wait_ms")) else {
        return;
    };
    let (max, wait) = (max.to_string(), wait.to_string());
    if max.is_empty() && wait.is_empty() {
        r.clear_if_editing("batch");
        return;
    }
    let n = |s: &str| {
        if s.is_empty() {
            Ok(0)
        } else {
            s.parse::<i64>()
        }
    };
    match (n(&max), n(&wait)) {
        (Ok(m), Ok(w)) => {
            r.body
                .insert("batch".into(), json!({"maxEvents": m, "maxWaitMs": w}));
        }
        _ => r.errors.push((
            "batch",
            "Batch: whole numbers (events per request, milliseconds to wait)".into(),
        )),
    }
}

/// "More options (JSON)": an object with `tls` and/or `encryption`, passed on as the API's.
fn options(r: &mut Reader<'_>) {
    let Some(t) = r.text("options") else { return };
    if t.is_empty() {
        return;
    }
    match serde_json::from_str::<Value>(t) {
        Ok(Value::Object(m)) => {
            for (k, v) in m {
                if k == "tls" || k == "encryption" {
                    r.body.insert(k, v);
                } else {
                    r.errors.push((
                        "options",
                        format!("More options: \"{k}\" is not one of tls, encryption"),
                    ));
                }
            }
        }
        Ok(_) => r
            .errors
            .push(("options", "More options: must be a JSON object {…}".into())),
        Err(e) => r
            .errors
            .push(("options", format!("More options: not valid JSON ({e})"))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_sensitive_header_sent_back_as_kept_keeps_its_value() {
        let stored = BTreeMap::from([("Authorization".to_string(), "Bearer s3cret".to_string())]);
        let h = parse_headers(&format!("authorization: {KEPT}\nX-A: 1\n\n"), &stored).unwrap();
        assert_eq!(h["authorization"], "Bearer s3cret");
        assert_eq!(h["X-A"], "1");
        assert!(parse_headers(&format!("X-New: {KEPT}"), &stored).is_err());
        assert!(parse_headers("no colon here", &stored).is_err());
    }
}
