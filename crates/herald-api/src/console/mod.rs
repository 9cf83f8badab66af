//! The operator console at `/console/` and the consumer portal at `/portal/`: server-rendered
//! pages over the same service functions and authorisation as the JSON API (style item 14: a
//! screen is a route module like any other; its template sits in `templates/console/`).
//!
//! The portal is the same screens restricted to one application: the same handlers serve
//! both, and the session's [`session::Realm`] decides the links, branding and who may sign in.
//! Its session carries the app-scoped token's `Caller::App`, so every lookup answers 403 for
//! another application exactly as the API does.
//!
//! This module owns the routes and the layer around them: it opens the session (`session`),
//! refreshes or clears its cookie, renders errors as pages of the right realm, and sets the
//! security headers of every answer (CSP without inline script, framing only for the portal
//! and only by `portal_frame_ancestors`, no sniffing, no referrer, no caching).
//! State-changing requests are POSTs checked by `csrf`. Screens live one per file and must not
//! write to the store except through the same calls the API makes.

use axum::extract::{FromRequestParts, Request, State};
use axum::http::request::Parts;
use axum::http::{header, HeaderMap, HeaderValue};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::{any, get, post, MethodRouter};
use axum::Router;
use herald_core::now_millis;

use crate::state::AppState;

mod apps;
mod assets;
mod chart;
mod csrf;
mod edit;
mod endpoint;
mod ep_form;
mod event_type_edit;
mod event_types;
mod health;
mod message;
mod page;
mod portal;
mod recover;
mod send;
mod session;
mod signin;
mod source;
pub(crate) mod throttle;

use session::Realm;

/// The console's Content-Security-Policy: scripts and styles from this server only, nothing
/// inline, no framing.
pub const CSP: &str = "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; frame-ancestors 'none'; base-uri 'none'; form-action 'self'";

/// Every console and portal route, behind the session and header layer.
pub fn router(state: AppState) -> Router<AppState> {
    let mut table = vec![
        ("/console".into(), get(signin::home).post(signin::sign_in)),
        ("/console/health".into(), get(health::show)),
        ("/portal".into(), get(portal::home)),
        ("/portal/sign-in".into(), post(portal::sign_in)),
    ];
    table.extend(screens(Realm::Console));
    table.extend(screens(Realm::Portal));
    table
        .into_iter()
        .fold(Router::new(), |r, (path, handler)| r.route(&path, handler))
        .route_layer(axum::middleware::from_fn_with_state(state, guard))
}

/// The screens both realms share, under the realm's base path. The portal leaves out the
/// operator's inbound sources.
fn screens(realm: Realm) -> Vec<(String, MethodRouter<AppState>)> {
    let base = realm.base();
    let app = format!("{base}/app/{{app_id}}");
    let ep = format!("{app}/endpoint/{{endpoint_id}}");
    let msg = format!("{app}/msg/{{msg_id}}");
    let src = format!("{app}/source/{{source_id}}");
    let mut table: Vec<(String, MethodRouter<AppState>)> = vec![
        (format!("{base}/sign-out"), post(signin::sign_out)),
        (format!("{base}/assets/{{file}}"), get(assets::serve)),
        (format!("{base}/event-types"), get(event_types::list)),
        (format!("{app}/endpoints"), post(edit::create)),
        (app, get(apps::show)),
        (format!("{ep}/reveal"), post(endpoint::reveal)),
        (format!("{ep}/edit"), post(edit::save)),
        (format!("{ep}/rotate"), post(edit::rotate)),
        (
            format!("{ep}/delete"),
            get(edit::confirm_delete).post(edit::delete),
        ),
        (format!("{ep}/recover"), post(recover::recover)),
        (format!("{ep}/recover-status"), get(recover::status)),
        (format!("{ep}/test"), get(send::show).post(send::send)),
        (ep, get(endpoint::show)),
        (format!("{msg}/resend"), post(message::resend)),
        (msg, get(message::show)),
        // Any other path is a page that does not exist, answered as one (with the realm's
        // headers) rather than as the API's JSON 404.
        (format!("{base}/{{*rest}}"), any(no_such_page)),
    ];
    if realm == Realm::Console {
        table.push((format!("{src}/release"), post(source::release)));
        table.push((format!("{src}/reject"), post(source::reject)));
        table.extend(event_type_routes(base));
        table.push((src, get(source::show)));
    }
    table
}

/// The console's event catalog editor (admin only, as the API's event-type writes).
fn event_type_routes(base: &str) -> Vec<(String, MethodRouter<AppState>)> {
    let one = format!("{base}/event-types/{{name}}");
    vec![
        (format!("{base}/event-types/new"), get(event_type_edit::new)),
        // `get` of the same path is the catalog, routed for both realms in `screens`.
        (format!("{base}/event-types"), post(event_type_edit::create)),
        (
            format!("{one}/edit"),
            get(event_type_edit::edit).post(event_type_edit::save),
        ),
        (format!("{one}/archive"), post(event_type_edit::archive)),
    ]
}

/// Opens the session for the handlers, slides its idle expiry (not for the pages' own
/// polling, so an open tab does not keep a session alive), clears a cookie that no longer
/// opens, and adds the security headers.
async fn guard(State(st): State<AppState>, mut req: Request, next: Next) -> Response {
    let now = now_millis();
    let realm = Realm::of_path(req.uri().path());
    let is_asset = req
        .uri()
        .path()
        .starts_with(&format!("{}/assets/", realm.base()));
    let polling = req.headers().contains_key("x-console-poll");
    let mut refresh = None;
    let mut clear = false;
    if !is_asset {
        match session::open(&st, realm, req.headers(), now).await {
            Ok(session::Opened::Valid(op)) => {
                if !polling && session::needs_refresh(&st, &op, now) {
                    refresh = Some(op.clone());
                }
                req.extensions_mut().insert(op);
            }
            Ok(session::Opened::Invalid) => clear = true,
            Ok(session::Opened::Absent) => {}
            Err(e) => {
                let resp = page::ConsoleError::from(e).into_response();
                let mut resp = page::finish(&st, realm, resp);
                security_headers(&st, realm, resp.headers_mut());
                return resp;
            }
        }
    }
    let mut resp = page::finish(&st, realm, next.run(req).await);
    // A handler that set the cookie itself (sign-in, sign-out) has the last word.
    if !resp.headers().contains_key(header::SET_COOKIE) {
        if let Some(op) = refresh {
            let c = session::set_cookie(&st, &op, now);
            resp.headers_mut().insert(header::SET_COOKIE, c);
        } else if clear {
            let c = session::clear_cookie(&st, realm);
            resp.headers_mut().insert(header::SET_COOKIE, c);
        }
    }
    security_headers(&st, realm, resp.headers_mut());
    resp
}

async fn no_such_page() -> page::ConsoleError {
    page::ConsoleError::Api(
        axum::http::StatusCode::NOT_FOUND,
        "there is no such page here".into(),
    )
}

/// The portal's Content-Security-Policy: the console's, but framed by
/// `portal_frame_ancestors` and showing the operator's logo from its origin.
fn portal_csp(st: &AppState) -> String {
    let p = &st.inner.console.portal;
    let logo = p
        .logo_url
        .as_deref()
        .and_then(|u| url::Url::parse(u).ok())
        .map(|u| format!(" {}", u.origin().ascii_serialization()))
        .unwrap_or_default();
    format!(
        "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:{logo}; frame-ancestors {}; base-uri 'none'; form-action 'self'",
        p.frame_ancestors
    )
}

fn security_headers(st: &AppState, realm: Realm, h: &mut HeaderMap) {
    match realm {
        Realm::Console => {
            h.insert(
                header::CONTENT_SECURITY_POLICY,
                HeaderValue::from_static(CSP),
            );
            h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
        }
        Realm::Portal => {
            // Checked when the configuration loaded; a value that still is not header text
            // falls back to the console's (no framing at all) rather than to none.
            let csp = HeaderValue::from_str(&portal_csp(st))
                .unwrap_or_else(|_| HeaderValue::from_static(CSP));
            h.insert(header::CONTENT_SECURITY_POLICY, csp);
        }
    }
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    if !h.contains_key(header::CACHE_CONTROL) {
        h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    }
}

/// The signed-in operator of a request (the guard opened the session); without one the page
/// sends the browser to sign in.
impl FromRequestParts<AppState> for session::Operator {
    type Rejection = page::ConsoleError;

    async fn from_request_parts(
        parts: &mut Parts,
        _: &AppState,
    ) -> Result<Self, page::ConsoleError> {
        parts
            .extensions
            .get::<session::Operator>()
            .cloned()
            .ok_or(page::ConsoleError::SignIn)
    }
}
