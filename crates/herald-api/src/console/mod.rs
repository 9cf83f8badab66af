//! The operator console at `/console/`: server-rendered pages over the same service functions
//! and authorisation as the JSON API (style item 14: a screen is a route module like any
//! other; its template sits in `templates/console/`).
//!
//! This module owns the console's routes and the layer around them: it opens the session
//! (`session`), refreshes or clears its cookie, and sets the security headers of every console
//! answer (CSP without inline script, no framing, no sniffing, no referrer, no caching).
//! State-changing requests are POSTs checked by `csrf`. Screens live one per file and must not
//! write to the store except through the same calls the API makes.

use axum::extract::{Request, State};
use axum::http::{header, HeaderMap, HeaderValue};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::{any, get, post, MethodRouter};
use axum::Router;
use herald_core::now_millis;

use crate::state::AppState;

mod apps;
mod assets;
mod csrf;
mod endpoint;
mod health;
mod message;
mod page;
mod session;
mod signin;
mod source;

/// The console's Content-Security-Policy: scripts and styles from this server only, nothing
/// inline, no framing.
pub const CSP: &str = "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; frame-ancestors 'none'; base-uri 'none'; form-action 'self'";

/// Every console route, behind the session and header layer.
pub fn router(state: AppState) -> Router<AppState> {
    let app = "/console/app/{app_id}";
    let ep = format!("{app}/endpoint/{{endpoint_id}}");
    let msg = format!("{app}/msg/{{msg_id}}");
    let src = format!("{app}/source/{{source_id}}");
    let table: Vec<(String, MethodRouter<AppState>)> = vec![
        ("/console".into(), get(signin::home).post(signin::sign_in)),
        ("/console/sign-out".into(), post(signin::sign_out)),
        ("/console/assets/{file}".into(), get(assets::serve)),
        ("/console/health".into(), get(health::show)),
        (app.into(), get(apps::show)),
        (format!("{ep}/reveal"), post(endpoint::reveal)),
        (format!("{ep}/recover"), post(endpoint::recover)),
        (ep, get(endpoint::show)),
        (format!("{msg}/resend"), post(message::resend)),
        (msg, get(message::show)),
        (format!("{src}/release"), post(source::release)),
        (src, get(source::show)),
        // Any other path under /console is a page that does not exist, answered as one (with
        // the console's headers) rather than as the API's JSON 404.
        ("/console/{*rest}".into(), any(no_such_page)),
    ];
    table
        .into_iter()
        .fold(Router::new(), |r, (path, handler)| r.route(&path, handler))
        .route_layer(axum::middleware::from_fn_with_state(state, guard))
}

/// Opens the session for the handlers, slides its idle expiry (not for the pages' own
/// polling, so an open tab does not keep a session alive), clears a cookie that no longer
/// opens, and adds the security headers.
async fn guard(State(st): State<AppState>, mut req: Request, next: Next) -> Response {
    let now = now_millis();
    let is_asset = req.uri().path().starts_with("/console/assets/");
    let polling = req.headers().contains_key("x-console-poll");
    let mut refresh = None;
    let mut clear = false;
    if !is_asset {
        match session::open(&st, req.headers(), now).await {
            Ok(session::Opened::Valid(op)) => {
                if !polling && session::needs_refresh(&st, &op, now) {
                    refresh = Some(op.clone());
                }
                req.extensions_mut().insert(op);
            }
            Ok(session::Opened::Invalid) => clear = true,
            Ok(session::Opened::Absent) => {}
            Err(e) => {
                let mut resp = page::ConsoleError::from(e).into_response();
                security_headers(resp.headers_mut());
                return resp;
            }
        }
    }
    let mut resp = next.run(req).await;
    // A handler that set the cookie itself (sign-in, sign-out) has the last word.
    if !resp.headers().contains_key(header::SET_COOKIE) {
        if let Some(op) = refresh {
            let c = session::set_cookie(&st, &op, now);
            resp.headers_mut().insert(header::SET_COOKIE, c);
        } else if clear {
            let c = session::clear_cookie(&st);
            resp.headers_mut().insert(header::SET_COOKIE, c);
        }
    }
    security_headers(resp.headers_mut());
    resp
}

async fn no_such_page() -> page::ConsoleError {
    page::ConsoleError::Api(
        axum::http::StatusCode::NOT_FOUND,
        "there is no such page in the console".into(),
    )
}

fn security_headers(h: &mut HeaderMap) {
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(CSP),
    );
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    if !h.contains_key(header::CACHE_CONTROL) {
        h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    }
}
