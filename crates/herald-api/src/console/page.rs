//! What every console and portal screen shares: the layout's data ([`Chrome`]: the realm's
//! links and branding), dates as `<time>` ([`When`]), rendering a template into an HTML
//! answer, and the one error type of the handlers ([`ConsoleError`]), which renders as a page
//! of the realm it happened in rather than as JSON.
//!
//! It must not look anything up in the store and must not open sessions: handlers pass what
//! a page shows. Templates escape every value (askama's HTML escaping); nothing here marks
//! text as safe.

use askama::Template;
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use herald_core::Millis;

use super::session::{Operator, Realm};
use crate::error::ApiError;
use crate::extract::Caller;
use crate::state::AppState;

/// What the layout needs on every page: the realm's paths and branding, and whether someone
/// is signed in (navigation and the "Sign out" form, which carries the session's CSRF token).
#[derive(Clone, Debug)]
pub struct Chrome {
    pub csrf: Option<String>,
    /// The way back up (link, words), shown above the page's heading.
    pub crumbs: Vec<(String, String)>,
    /// `/console` or `/portal`: every link of the page starts with it.
    pub base: &'static str,
    /// Whether this is the consumer portal (its navigation, branding and no operator screens).
    pub portal: bool,
    /// The header's name, and the browser tab's suffix.
    pub brand: String,
    pub tab: String,
    /// The operator's logo (portal only).
    pub logo_url: Option<String>,
    /// Where "home" is: the application list, or the portal's application.
    pub home: String,
}

impl Chrome {
    /// The layout of `realm` for someone not signed in.
    pub fn new(st: &AppState, realm: Realm) -> Self {
        let base = realm.base();
        match realm {
            Realm::Console => Self {
                csrf: None,
                crumbs: Vec::new(),
                base,
                portal: false,
                brand: "Herald console".into(),
                tab: "Herald".into(),
                logo_url: None,
                home: base.into(),
            },
            Realm::Portal => {
                let p = &st.inner.console.portal;
                Self {
                    csrf: None,
                    crumbs: Vec::new(),
                    base,
                    portal: true,
                    brand: p.title.clone(),
                    tab: p.title.clone(),
                    logo_url: p.logo_url.clone(),
                    home: base.into(),
                }
            }
        }
    }

    pub fn signed_in(st: &AppState, op: &Operator) -> Self {
        let mut c = Self::new(st, op.realm);
        c.csrf = Some(op.csrf.clone());
        if let Caller::App(app) = &op.caller {
            c.home = format!("{}/app/{app}", c.base);
        }
        c
    }

    /// Under the application list (console only) and the application `id` called `name`.
    pub fn in_app(st: &AppState, op: &Operator, id: &str, name: &str) -> Self {
        let mut c = Self::signed_in(st, op);
        if !c.portal {
            c.crumbs.push((c.base.into(), "Applications".into()));
        }
        c.crumbs
            .push((format!("{}/app/{id}", c.base), name.to_string()));
        c
    }
}

/// An instant as the page shows it: UTC text and an RFC 3339 `datetime` the script turns
/// into the viewer's time zone (the UTC text stays in `title`).
#[derive(Clone, Debug)]
pub struct When {
    pub iso: String,
    pub text: String,
}

impl When {
    pub fn at(ms: Millis) -> Self {
        match chrono::DateTime::<chrono::Utc>::from_timestamp_millis(ms) {
            Some(t) => Self {
                iso: t.to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
                text: t.format("%Y-%m-%d %H:%M:%S UTC").to_string(),
            },
            None => Self {
                iso: String::new(),
                text: ms.to_string(),
            },
        }
    }
}

/// A rendered page with `status`.
pub fn html(status: StatusCode, t: &impl Template) -> Response {
    match t.render() {
        Ok(body) => (
            status,
            [(
                header::CONTENT_TYPE,
                HeaderValue::from_static("text/html; charset=utf-8"),
            )],
            body,
        )
            .into_response(),
        Err(e) => {
            tracing::error!(error = %e, "console template failed to render");
            (
                StatusCode::INTERNAL_SERVER_ERROR,
                "the page could not be rendered",
            )
                .into_response()
        }
    }
}

/// A rendered page answering 200.
pub fn ok(t: &impl Template) -> Response {
    html(StatusCode::OK, t)
}

#[derive(Template)]
#[template(path = "console/error.html")]
struct ErrorPage<'a> {
    chrome: Chrome,
    status: u16,
    message: &'a str,
}

/// Why a console or portal request stopped.
#[derive(Debug, thiserror::Error)]
pub enum ConsoleError {
    /// No (valid) session: go to the sign-in page.
    #[error("sign in first")]
    SignIn,
    /// A state-changing request that failed the Origin or CSRF check.
    #[error("{0}")]
    Refused(String),
    /// What the API would answer, shown as a page.
    #[error("{1}")]
    Api(StatusCode, String),
}

pub type ConsoleResult<T> = Result<T, ConsoleError>;

impl From<ApiError> for ConsoleError {
    fn from(e: ApiError) -> Self {
        let text = e.to_string();
        // The API's own rendering decides the status (and logs internal causes).
        let status = e.into_response().status();
        Self::Api(status, text)
    }
}

impl From<herald_store::StoreError> for ConsoleError {
    fn from(e: herald_store::StoreError) -> Self {
        ApiError::from(e).into()
    }
}

/// An error answer not yet rendered: only the layer around the routes knows the realm whose
/// page it must become (see [`finish`]). `None`: go and sign in.
#[derive(Clone, Debug)]
struct Unrendered(Option<String>);

impl IntoResponse for ConsoleError {
    fn into_response(self) -> Response {
        let (status, message) = match self {
            Self::SignIn => (StatusCode::SEE_OTHER, None),
            Self::Refused(m) => (StatusCode::FORBIDDEN, Some(m)),
            Self::Api(s, m) => (s, Some(m)),
        };
        let mut resp = status.into_response();
        resp.extensions_mut().insert(Unrendered(message));
        resp
    }
}

/// Renders an error answer as a page of `realm` (a sign-in redirect, or the error page);
/// any other answer is returned as it is.
pub fn finish(st: &AppState, realm: Realm, resp: Response) -> Response {
    let Some(Unrendered(message)) = resp.extensions().get::<Unrendered>().cloned() else {
        return resp;
    };
    match message {
        None => Redirect::to(realm.base()).into_response(),
        Some(message) => html(
            resp.status(),
            &ErrorPage {
                chrome: Chrome::new(st, realm),
                status: resp.status().as_u16(),
                message: &message,
            },
        ),
    }
}

/// Links to the neighbouring pages of a keyset page (the store's iterators: an ID to go on
/// from, `-ID` to go back), rendered by `templates/console/pager.html`.
#[derive(Debug, Default)]
pub struct Pager {
    /// The link without the iterator (`/console?page=`).
    pub base: String,
    pub next: Option<String>,
    pub prev: Option<String>,
    /// Words of the two links ("Older", "Newer").
    pub next_label: &'static str,
    pub prev_label: &'static str,
}

impl Pager {
    /// Links around `page`, which was asked for with the iterator `asked`; `id` gives an
    /// item's ID (the store's iterator).
    pub fn new<T>(
        base: String,
        asked: Option<&str>,
        page: &herald_store::Page<T>,
        id: impl Fn(&T) -> String,
    ) -> Self {
        let backwards = asked.is_some_and(|a| a.starts_with('-'));
        let started = asked.is_some_and(|a| !a.is_empty());
        let has_more = page.has_more;
        Self {
            base,
            // Going back, the page we came from is always further on.
            next: page.items.last().map(&id).filter(|_| has_more || backwards),
            prev: page
                .items
                .first()
                .map(&id)
                .filter(|_| started && (has_more || !backwards))
                .map(|f| format!("-{f}")),
            next_label: "Next",
            prev_label: "Previous",
        }
    }

    /// The same links with other words.
    pub fn labelled(self, prev_label: &'static str, next_label: &'static str) -> Self {
        Self {
            prev_label,
            next_label,
            ..self
        }
    }
}

/// A labelled `<select>` of a filter form, rendered by `templates/console/choice.html`.
#[derive(Debug)]
pub struct Choice {
    /// The control's `id` and `name`.
    pub id: &'static str,
    pub label: &'static str,
    /// (value, words), the first usually "all" with an empty value.
    pub options: Vec<(String, String)>,
    pub selected: String,
}

/// The store query of one page: `size` items from `iterator`, in the list's natural order.
pub fn page_query(
    size: i64,
    iterator: Option<&str>,
    descending: bool,
) -> Result<herald_store::ListQuery, ApiError> {
    crate::extract::ListParams {
        limit: Some(size),
        iterator: iterator.map(str::to_string),
        ..Default::default()
    }
    .to_query(descending)
}
