//! Cross-site request forgery: every state-changing console request (a POST) must come from a
//! page of this server — its `Origin` header names this server — and, once signed in, carry
//! the session's CSRF token in a hidden form field. Either check failing answers 403 before
//! the handler runs, so nothing changes.
//!
//! This module only checks and parses form bodies; it must not change anything itself.

use axum::extract::{FromRequest, Request};
use axum::http::{header, HeaderMap};
use subtle::ConstantTimeEq;

use super::page::ConsoleError;
use super::session::Operator;
use crate::state::AppState;

/// Largest console form body (a token, a CSRF token and an ID or two).
const MAX_FORM: usize = 16 * 1024;

/// Whether the request comes from a page of this server. `Origin` must name this server:
/// the origin of `public_url`, or the authority the request was sent to (`Host`), which a
/// cross-site page cannot choose. Browsers send `Origin: null` for every form POST from a page
/// whose referrer policy is `no-referrer` (the console's), so then the browser's own
/// `Sec-Fetch-Site` header decides: only `same-origin` passes. Neither header: refused.
pub fn origin_ok(headers: &HeaderMap, public_url: &str) -> bool {
    let origin = headers
        .get(header::ORIGIN)
        .and_then(|v| v.to_str().ok())
        .filter(|o| *o != "null");
    let Some(origin) = origin else {
        return headers
            .get("sec-fetch-site")
            .is_some_and(|v| v.as_bytes() == b"same-origin");
    };
    if let Ok(u) = url::Url::parse(public_url) {
        if u.origin().ascii_serialization() == origin {
            return true;
        }
    }
    let host = headers.get(header::HOST).and_then(|v| v.to_str().ok());
    let authority = origin
        .strip_prefix("http://")
        .or_else(|| origin.strip_prefix("https://"));
    matches!((host, authority), (Some(h), Some(a)) if !h.is_empty() && h.eq_ignore_ascii_case(a))
}

/// The fields of a form body, in order.
#[derive(Debug, Default)]
pub struct Fields(Vec<(String, String)>);

impl Fields {
    pub fn get(&self, name: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    /// Every value of the field `name` (checkboxes), in order.
    pub fn all<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a str> + 'a {
        self.0
            .iter()
            .filter(move |(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }
}

async fn read_form(req: Request) -> Result<Fields, ConsoleError> {
    read_form_up_to(req, MAX_FORM, || {
        ConsoleError::Refused("form too large".into())
    })
    .await
}

async fn read_form_up_to(
    req: Request,
    limit: usize,
    too_large: impl FnOnce() -> ConsoleError,
) -> Result<Fields, ConsoleError> {
    let is_form = req
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/x-www-form-urlencoded"));
    if !is_form {
        return Err(ConsoleError::Refused("expected a form submission".into()));
    }
    let bytes = axum::body::to_bytes(req.into_body(), limit)
        .await
        .map_err(|_| too_large())?;
    Ok(Fields(
        url::form_urlencoded::parse(&bytes).into_owned().collect(),
    ))
}

/// A form posted from this server's own page, before signing in (Origin checked only: there
/// is no session yet to hold a token).
pub struct SameOriginForm(pub Fields);

impl FromRequest<AppState> for SameOriginForm {
    type Rejection = ConsoleError;

    async fn from_request(req: Request, st: &AppState) -> Result<Self, ConsoleError> {
        if !origin_ok(req.headers(), &st.inner.public_url) {
            return Err(cross_site());
        }
        read_form(req).await.map(SameOriginForm)
    }
}

/// A form posted by a signed-in operator from this server's page: Origin and CSRF token
/// checked.
pub struct Posted {
    pub op: Operator,
    pub fields: Fields,
}

impl FromRequest<AppState> for Posted {
    type Rejection = ConsoleError;

    async fn from_request(req: Request, st: &AppState) -> Result<Self, ConsoleError> {
        Posted::read(req, st, None).await
    }
}

/// A [`Posted`] form that carries a payload or settings (a test event, the endpoint form): up
/// to twice the largest message payload, and over that 413 rather than 403.
pub struct PostedPayload(pub Posted);

impl FromRequest<AppState> for PostedPayload {
    type Rejection = ConsoleError;

    async fn from_request(req: Request, st: &AppState) -> Result<Self, ConsoleError> {
        let limit = (st.inner.max_payload_bytes * 2).max(MAX_FORM);
        Posted::read(req, st, Some(limit)).await.map(PostedPayload)
    }
}

impl Posted {
    /// Checks and reads the form, up to [`MAX_FORM`] bytes or `limit`.
    async fn read(req: Request, st: &AppState, limit: Option<usize>) -> Result<Self, ConsoleError> {
        if !origin_ok(req.headers(), &st.inner.public_url) {
            return Err(cross_site());
        }
        let Some(op) = req.extensions().get::<Operator>().cloned() else {
            return Err(ConsoleError::Refused(
                "no console session: sign in again".into(),
            ));
        };
        let fields = match limit {
            None => read_form(req).await?,
            Some(limit) => {
                let too_large = || {
                    ConsoleError::Api(
                        axum::http::StatusCode::PAYLOAD_TOO_LARGE,
                        format!("the form is larger than {limit} bytes"),
                    )
                };
                read_form_up_to(req, limit, too_large).await?
            }
        };
        let sent = fields.get("csrf").unwrap_or("");
        if sent.is_empty() || !bool::from(sent.as_bytes().ct_eq(op.csrf.as_bytes())) {
            return Err(ConsoleError::Refused(
                "this form is out of date or was not sent from the console (CSRF token mismatch); reload the page and try again".into(),
            ));
        }
        Ok(Posted { op, fields })
    }
}

fn cross_site() -> ConsoleError {
    ConsoleError::Refused(
        "cross-site request refused: the Origin header does not name this server".into(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    fn headers(origin: Option<&'static str>, host: &'static str) -> HeaderMap {
        let mut h = HeaderMap::new();
        if let Some(o) = origin {
            h.insert(header::ORIGIN, HeaderValue::from_static(o));
        }
        h.insert(header::HOST, HeaderValue::from_static(host));
        h
    }

    #[test]
    fn origin_must_name_this_server() {
        let public = "https://herald.example.com";
        assert!(origin_ok(
            &headers(Some("https://herald.example.com"), "x"),
            public
        ));
        assert!(origin_ok(
            &headers(Some("http://127.0.0.1:8787"), "127.0.0.1:8787"),
            public
        ));
        assert!(!origin_ok(&headers(None, "herald.example.com"), public));
        assert!(!origin_ok(
            &headers(Some("null"), "herald.example.com"),
            public
        ));
        assert!(!origin_ok(
            &headers(Some("https://evil.example"), "herald.example.com"),
            public
        ));
        assert!(!origin_ok(
            &headers(
                Some("https://herald.example.com.evil.example"),
                "herald.example.com"
            ),
            public
        ));
    }
}
