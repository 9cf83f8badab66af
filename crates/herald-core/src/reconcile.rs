//! Reconciliation sources (destinations.md "Pulling from providers"): the `poll` object of a
//! source, its presets (Stripe `/v1/events`, GitHub hook deliveries, generic), the dotted
//! paths that pick items, IDs and cursors out of a provider's list page, and the backoff of a
//! failing poll.
//!
//! Pure: it describes and checks a poll and reads JSON it is handed. Fetching pages, storing
//! cursors and ingesting items are the API crate's and the store's jobs; nothing here does
//! I/O or reads a clock (callers pass `now`). The `headers` of a poll are secrets: `Debug`
//! redacts them and [`PollConfig::sealed_fields_mut`] lets the store encrypt them at rest.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::Value;

/// Shortest and longest `intervalSeconds`.
pub const MIN_INTERVAL_S: i64 = 10;
pub const MAX_INTERVAL_S: i64 = 86_400;
/// Pages one poll run reads at most (`maxPages`, default [`DEFAULT_MAX_PAGES`]).
pub const MAX_PAGES: u32 = 100;
pub const DEFAULT_MAX_PAGES: u32 = 10;
/// Items of one page Herald reads at most: a longer page is an error, not a partial read.
pub const MAX_ITEMS_PER_PAGE: usize = 1_000;
/// Bytes of one provider answer Herald reads at most.
pub const MAX_PAGE_BYTES: usize = 4 * 1024 * 1024;
/// Longest path text and most segments of a path.
const MAX_PATH_LEN: usize = 256;
const MAX_SEGMENTS: usize = 32;
/// Most headers of a poll, and longest header value.
const MAX_HEADERS: usize = 32;
const MAX_HEADER_VALUE: usize = 8 * 1024;
/// The longest wait after failures (the interval itself when that is longer).
const MAX_BACKOFF_S: i64 = 3_600;

/// A provider whose list API Herald knows.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum PollPreset {
    /// Stripe's `GET /v1/events`.
    Stripe,
    /// GitHub's `GET /repos/{owner}/{repo}/hooks/{hook_id}/deliveries` (or an org hook's).
    Github,
    /// Every field given explicitly.
    #[default]
    Generic,
}

/// How the next page is asked for.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Pagination {
    /// The query parameter `cursorParam` set to the value at `cursorPath` of the last page.
    Cursor,
    /// The `rel="next"` URL of the answer's `Link` header (same origin as `url` only).
    Link,
}

/// The `poll` object of a source, as given and stored (`headers` sealed at rest).
#[derive(Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct PollConfig {
    #[serde(default)]
    pub preset: PollPreset,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub interval_seconds: Option<i64>,
    /// Sent with every request (credentials such as `Authorization`): secret.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub headers: BTreeMap<String, String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub items_path: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id_path: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cursor_param: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cursor_path: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pagination: Option<Pagination>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub has_more_path: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub event_type_path: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timestamp_path: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub payload_path: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_pages: Option<u32>,
}

/// Redacted on purpose: `headers` carry the provider credentials.
impl std::fmt::Debug for PollConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PollConfig")
            .field("preset", &self.preset)
            .field("url", &self.url)
            .field(
                "headers",
                &format_args!("<{} redacted>", self.headers.len()),
            )
            .finish_non_exhaustive()
    }
}

impl PollConfig {
    /// The header values, which the store encrypts at rest.
    pub fn sealed_fields_mut(&mut self) -> impl Iterator<Item = &mut String> {
        self.headers.values_mut()
    }

    /// The configuration with every header value replaced by `********` (API answers).
    pub fn redacted(&self) -> Self {
        let mut c = self.clone();
        for v in c.headers.values_mut() {
            *v = "********".into();
        }
        c
    }

    /// The configuration with its preset's defaults filled in, or every problem found.
    pub fn plan(&self) -> Result<PollPlan, Vec<(String, String)>> {
        let d = preset_defaults(self.preset);
        let mut problems = Vec::new();
        let mut fail = |f: &str, m: String| problems.push((f.to_string(), m));
        let url = self.url.clone().or(d.url.map(str::to_string));
        let Some(url) = url else {
            fail(
                "url",
                "required (only the stripe preset has a default)".into(),
            );
            return Err(problems);
        };
        let interval = self.interval_seconds.unwrap_or(300);
        if !(MIN_INTERVAL_S..=MAX_INTERVAL_S).contains(&interval) {
            fail(
                "intervalSeconds",
                format!("must be between {MIN_INTERVAL_S} and {MAX_INTERVAL_S}"),
            );
        }
        let max_pages = self.max_pages.unwrap_or(DEFAULT_MAX_PAGES);
        if !(1..=MAX_PAGES).contains(&max_pages) {
            fail("maxPages", format!("must be between 1 and {MAX_PAGES}"));
        }
        if self.headers.len() > MAX_HEADERS {
            fail("headers", format!("at most {MAX_HEADERS} headers"));
        }
        for (k, v) in &self.headers {
            if http::HeaderName::try_from(k.as_str()).is_err() {
                fail("headers", format!("`{k}` is not a header name"));
            }
            if v.len() > MAX_HEADER_VALUE || http::HeaderValue::try_from(v.as_str()).is_err() {
                fail(
                    "headers",
                    format!("the value of `{k}` is not a valid header value"),
                );
            }
        }
        let mut path = |field: &str, given: &Option<String>, default: Option<&str>| {
            let text = given.as_deref().or(default)?;
            match JsonPath::parse(text) {
                Ok(p) => Some(p),
                Err(e) => {
                    fail(field, e);
                    None
                }
            }
        };
        let items = path("itemsPath", &self.items_path, d.items_path);
        let id = path("idPath", &self.id_path, d.id_path);
        let cursor_path = path("cursorPath", &self.cursor_path, d.cursor_path);
        let has_more = path("hasMorePath", &self.has_more_path, d.has_more_path);
        let event_type = path("eventTypePath", &self.event_type_path, d.event_type_path);
        let timestamp = path("timestampPath", &self.timestamp_path, d.timestamp_path);
        let payload = path("payloadPath", &self.payload_path, None);
        let cursor_param = self.cursor_param.clone().or(d.cursor_param.map(Into::into));
        let pagination = self.pagination.unwrap_or(d.pagination);
        if self.items_path.is_none() && d.items_path.is_none() {
            fail(
                "itemsPath",
                "required for the generic form (\"\" = the top-level array)".into(),
            );
        }
        if self.id_path.is_none() && d.id_path.is_none() {
            fail("idPath", "required for the generic form".into());
        }
        if pagination == Pagination::Cursor && cursor_param.is_some() != cursor_path.is_some() {
            fail(
                "cursorParam",
                "cursorParam and cursorPath go together".into(),
            );
        }
        if let Some(p) = &cursor_param {
            if p.is_empty() || p.len() > 128 {
                fail("cursorParam", "must be 1 to 128 characters".into());
            }
        }
        if !problems.is_empty() {
            return Err(problems);
        }
        let (Some(items), Some(id)) = (items, id) else {
            return Err(vec![("idPath".into(), "required".into())]);
        };
        Ok(PollPlan {
            url,
            interval_seconds: interval,
            headers: d
                .headers
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .chain(self.headers.clone())
                .collect(),
            query: d
                .query
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            items,
            id,
            cursor: match pagination {
                Pagination::Link => Some(Cursor::Link),
                Pagination::Cursor => cursor_param
                    .zip(cursor_path)
                    .map(|(param, path)| Cursor::Param { param, path }),
            },
            has_more,
            event_type,
            timestamp,
            payload,
            detail: d.detail,
            max_pages,
        })
    }
}

/// How the next page is found.
#[derive(Clone, Debug, PartialEq)]
pub enum Cursor {
    Param { param: String, path: JsonPath },
    Link,
}

/// Where a GitHub delivery's payload is: `GET <list url>/<id>` answers `request.payload` and
/// `request.headers`.
#[derive(Clone, Debug, PartialEq)]
pub struct Detail {
    /// The list item field naming the detail (`id`).
    pub id: JsonPath,
    pub payload: JsonPath,
    pub headers: JsonPath,
}

/// A poll with every default filled in: what the poller runs.
#[derive(Clone, Debug, PartialEq)]
pub struct PollPlan {
    pub url: String,
    pub interval_seconds: i64,
    pub headers: BTreeMap<String, String>,
    /// Query parameters added to the first page (`limit=100` for Stripe).
    pub query: Vec<(String, String)>,
    pub items: JsonPath,
    pub id: JsonPath,
    pub cursor: Option<Cursor>,
    pub has_more: Option<JsonPath>,
    pub event_type: Option<JsonPath>,
    pub timestamp: Option<JsonPath>,
    pub payload: Option<JsonPath>,
    pub detail: Option<Detail>,
    pub max_pages: u32,
}

struct Defaults {
    url: Option<&'static str>,
    headers: &'static [(&'static str, &'static str)],
    query: &'static [(&'static str, &'static str)],
    items_path: Option<&'static str>,
    id_path: Option<&'static str>,
    cursor_param: Option<&'static str>,
    cursor_path: Option<&'static str>,
    pagination: Pagination,
    has_more_path: Option<&'static str>,
    event_type_path: Option<&'static str>,
    timestamp_path: Option<&'static str>,
    detail: Option<Detail>,
}

fn preset_defaults(p: PollPreset) -> Defaults {
    let none = Defaults {
        url: None,
        headers: &[],
        query: &[],
        items_path: None,
        id_path: None,
        cursor_param: None,
        cursor_path: None,
        pagination: Pagination::Cursor,
        has_more_path: None,
        event_type_path: None,
        timestamp_path: None,
        detail: None,
    };
    let path = |s: &str| JsonPath::parse(s).expect("a preset path parses");
    match p {
        PollPreset::Generic => none,
        // Newest first; `starting_after` pages towards older events. The event's `id` is what
        // the stripe scheme deduplicates webhooks on (`/id`).
        PollPreset::Stripe => Defaults {
            url: Some("https://api.stripe.com/v1/events"),
            query: &[("limit", "100")],
            items_path: Some("data"),
            id_path: Some("id"),
            cursor_param: Some("starting_after"),
            cursor_path: Some("data.-1.id"),
            has_more_path: Some("has_more"),
            event_type_path: Some("type"),
            timestamp_path: Some("created"),
            ..none
        },
        // Newest first, paged by the `Link` header. `guid` is the `X-GitHub-Delivery` header
        // the github scheme deduplicates webhooks on; the list holds summaries, so each new
        // delivery's payload is fetched from `<url>/<id>`.
        PollPreset::Github => Defaults {
            headers: &[
                ("Accept", "application/vnd.github+json"),
                ("X-GitHub-Api-Version", "2022-11-28"),
            ],
            query: &[("per_page", "100")],
            items_path: Some(""),
            id_path: Some("guid"),
            pagination: Pagination::Link,
            event_type_path: Some("event"),
            timestamp_path: Some("delivered_at"),
            detail: Some(Detail {
                id: path("id"),
                payload: path("request.payload"),
                headers: path("request.headers"),
            }),
            ..none
        },
    }
}

/// A dotted path into JSON: `data`, `data.-1.id`, `request.payload`; `""` is the document
/// itself. A segment that is an integer indexes an array (negative from the end); any other
/// segment names an object member.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct JsonPath(Vec<String>);

impl JsonPath {
    pub fn parse(s: &str) -> Result<Self, String> {
        if s.len() > MAX_PATH_LEN {
            return Err(format!("at most {MAX_PATH_LEN} characters"));
        }
        if s.is_empty() {
            return Ok(Self(Vec::new()));
        }
        let segs: Vec<String> = s.split('.').map(str::to_string).collect();
        if segs.len() > MAX_SEGMENTS {
            return Err(format!("at most {MAX_SEGMENTS} segments"));
        }
        if segs.iter().any(|g| g.is_empty()) {
            return Err("a dotted path such as `data.-1.id` without empty segments".into());
        }
        if segs.iter().any(|g| g.chars().any(char::is_control)) {
            return Err("must not contain control characters".into());
        }
        Ok(Self(segs))
    }

    /// The value at the path, if there is one.
    pub fn get<'a>(&self, mut v: &'a Value) -> Option<&'a Value> {
        for seg in &self.0 {
            v = match v {
                Value::Object(m) => m.get(seg)?,
                Value::Array(a) => {
                    let i: i64 = seg.parse().ok()?;
                    let i = if i < 0 { a.len() as i64 + i } else { i };
                    a.get(usize::try_from(i).ok()?)?
                }
                _ => return None,
            };
        }
        Some(v)
    }

    /// The value at the path as text: a non-empty string, or a number.
    pub fn text(&self, v: &Value) -> Option<String> {
        match self.get(v)? {
            Value::String(s) if !s.is_empty() => Some(s.clone()),
            Value::Number(n) => Some(n.to_string()),
            _ => None,
        }
    }
}

/// The time of an item in milliseconds: a number of seconds (or milliseconds when it is
/// above 10^11) or an RFC 3339 text.
pub fn item_millis(v: &Value) -> Option<i64> {
    match v {
        Value::Number(n) => {
            let n = n.as_f64()?;
            Some(if n > 1e11 {
                n as i64
            } else {
                (n * 1000.0) as i64
            })
        }
        Value::String(s) => chrono::DateTime::parse_from_rfc3339(s)
            .ok()
            .map(|t| t.timestamp_millis()),
        _ => None,
    }
}

/// The `rel="next"` URL of a `Link` header, if any.
pub fn link_next(header: &str) -> Option<String> {
    header.split(',').find_map(|part| {
        let (url, params) = part.split_once(';')?;
        let url = url.trim().strip_prefix('<')?.strip_suffix('>')?;
        params
            .split(';')
            .any(|p| {
                let p = p.trim().replace(' ', "");
                p == "rel=\"next\"" || p == "rel=next"
            })
            .then(|| url.to_string())
    })
}

/// When a poll that failed `failures` times in a row runs again: the interval doubled per
/// failure from 10 s, at most an hour (or the interval, when that is longer).
pub fn backoff_ms(interval_s: i64, failures: u32) -> i64 {
    let cap = MAX_BACKOFF_S.max(interval_s);
    let exp = failures.saturating_sub(1).min(20);
    (MIN_INTERVAL_S.saturating_mul(1 << exp)).min(cap) * 1000
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn paths_read_members_and_indexes() {
        let doc = json!({"data": [{"id": "a"}, {"id": "b"}], "n": 3});
        assert_eq!(
            JsonPath::parse("data.-1.id").unwrap().text(&doc),
            Some("b".into())
        );
        assert_eq!(
            JsonPath::parse("data.0.id").unwrap().text(&doc),
            Some("a".into())
        );
        assert_eq!(JsonPath::parse("n").unwrap().text(&doc), Some("3".into()));
        assert_eq!(JsonPath::parse("").unwrap().get(&doc), Some(&doc));
        assert!(JsonPath::parse("data.-9.id").unwrap().get(&doc).is_none());
        assert!(JsonPath::parse("a..b").is_err());
        assert!(JsonPath::parse(&"a.".repeat(200)).is_err());
    }

    #[test]
    fn presets_fill_defaults() {
        let c = PollConfig {
            preset: PollPreset::Stripe,
            ..Default::default()
        };
        let p = c.plan().unwrap();
        assert_eq!(p.url, "https://api.stripe.com/v1/events");
        assert!(
            matches!(p.cursor, Some(Cursor::Param { ref param, .. }) if param == "starting_after")
        );
        let g = PollConfig {
            preset: PollPreset::Github,
            ..Default::default()
        };
        assert!(g.plan().is_err(), "github needs the hook's URL");
    }

    #[test]
    fn generic_needs_paths_and_bounds() {
        let c = PollConfig {
            url: Some("http://x/".into()),
            interval_seconds: Some(0),
            cursor_param: Some("after".into()),
            ..Default::default()
        };
        let problems = c.plan().unwrap_err();
        let fields: Vec<&str> = problems.iter().map(|(f, _)| f.as_str()).collect();
        assert!(fields.contains(&"intervalSeconds"));
        assert!(fields.contains(&"itemsPath"));
        assert!(fields.contains(&"idPath"));
        assert!(fields.contains(&"cursorParam"));
    }

    #[test]
    fn link_header_and_backoff() {
        let h = r#"<https://api.github.com/x?cursor=b>; rel="next", <https://api.github.com/x>; rel="first""#;
        assert_eq!(
            link_next(h),
            Some("https://api.github.com/x?cursor=b".into())
        );
        assert_eq!(link_next(r#"<https://x>; rel="prev""#), None);
        assert_eq!(backoff_ms(60, 1), 10_000);
        assert_eq!(backoff_ms(60, 2), 20_000);
        assert_eq!(backoff_ms(60, 40), 3_600_000);
        assert_eq!(backoff_ms(86_400, 40), 86_400_000);
    }

    #[test]
    fn debug_redacts_headers() {
        let mut c = PollConfig::default();
        c.headers
            .insert("Authorization".into(), "Bearer sk_live_x".into());
        assert!(!format!("{c:?}").contains("sk_live"));
        assert!(!serde_json::to_string(&c.redacted())
            .unwrap()
            .contains("sk_live"));
    }
}
