//! The console's stylesheet and script, compiled into the binary (`include_str!`): the pages
//! load nothing from another host and work without internet access.
//!
//! Only these fixed files are served; a name is never turned into a path. The portal's
//! `brand.css` is written from configuration (its accent colour, checked as `#rgb`/`#rrggbb`
//! when loaded), because the CSP forbids inline styles.

use axum::extract::State;
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};

use crate::extract::Path;
use crate::state::AppState;

const CSS: &str = include_str!("../../assets/console/console.css");
const JS: &str = include_str!("../../assets/console/console.js");

/// `GET /console/assets/{file}` and `GET /portal/assets/{file}`.
pub async fn serve(State(st): State<AppState>, Path(file): Path<String>) -> Response {
    let (body, kind) = match file.as_str() {
        "console.css" => (CSS.to_string(), "text/css; charset=utf-8"),
        "console.js" => (JS.to_string(), "text/javascript; charset=utf-8"),
        "brand.css" => (brand(&st), "text/css; charset=utf-8"),
        _ => return (StatusCode::NOT_FOUND, "no such asset").into_response(),
    };
    (
        [
            (header::CONTENT_TYPE, HeaderValue::from_static(kind)),
            // Short: a new binary's assets reach open browsers within minutes.
            (
                header::CACHE_CONTROL,
                HeaderValue::from_static("private, max-age=300"),
            ),
        ],
        body,
    )
        .into_response()
}

/// The portal's accent colour as a stylesheet (empty without one).
fn brand(st: &AppState) -> String {
    match &st.inner.console.portal.accent_color {
        Some(c) if c.starts_with('#') && c[1..].bytes().all(|b| b.is_ascii_hexdigit()) => {
            format!(":root {{ --accent: {c}; }}\n")
        }
        _ => String::new(),
    }
}
