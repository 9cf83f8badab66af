//! The portal's entry: `GET /portal/` and the exchange of a link's key for a session.
//!
//! An `app-portal-access` link is `<public_url>/portal/#key=<token>`. The fragment never
//! reaches the server with the page; the page's script reads it, removes it from the address
//! bar and history, and POSTs it to `/portal/sign-in`, which accepts only a token scoped to
//! one application and answers with the session cookie. The token is then kept only as its
//! hash inside the sealed cookie, as the console does. This module must not serve any screen
//! itself: once signed in, the shared screens (`apps`, `endpoint`, `message`, …) do.

use askama::Template;
use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use herald_core::now_millis;
use serde_json::json;

use super::csrf::SameOriginForm;
use super::page::{ok, Chrome, ConsoleError};
use super::session::{self, Operator, Realm};
use super::throttle;
use crate::extract::{sha256, Caller};
use crate::state::AppState;

/// Longest key accepted (portal tokens are far shorter).
const MAX_KEY: usize = 1024;

#[derive(Template)]
#[template(path = "console/portal.html")]
struct EntryPage {
    chrome: Chrome,
    /// The application's page when a session is open already.
    next: Option<String>,
}

/// The portal's page of the application a session is scoped to.
fn app_page(op: &Operator) -> Option<String> {
    match &op.caller {
        Caller::App(app) => Some(format!("{}/app/{app}", Realm::Portal.base())),
        _ => None,
    }
}

/// `GET /portal`: the entry page. Its script signs in with the link's key when there is one,
/// and otherwise goes on to the application of an open session (or says how to get in).
pub async fn home(State(st): State<AppState>, op: Result<Operator, ConsoleError>) -> Response {
    ok(&EntryPage {
        chrome: Chrome::new(&st, Realm::Portal),
        next: op.ok().as_ref().and_then(app_page),
    })
}

fn refused(status: StatusCode, code: &str, message: &str) -> Response {
    (status, Json(json!({ "error": code, "message": message }))).into_response()
}

/// `POST /portal/sign-in` with the form field `key`: a session for a token scoped to one
/// application, answered as `{"next": "/portal/app/…"}`. An unknown key (deleted, or never
/// issued) answers 401 `expired`; the admin token and unscoped API tokens 401 `not_portal`.
pub async fn sign_in(
    State(st): State<AppState>,
    peer: Option<axum::Extension<axum::extract::ConnectInfo<std::net::SocketAddr>>>,
    SameOriginForm(fields): SameOriginForm,
) -> Result<Response, ConsoleError> {
    let ip = throttle::client_ip(peer);
    if let Err((words, secs)) = throttle::admit(&st, ip, "portal") {
        let mut resp = refused(StatusCode::TOO_MANY_REQUESTS, "rate_limited", &words);
        resp.headers_mut().insert(
            axum::http::header::RETRY_AFTER,
            axum::http::HeaderValue::from(secs),
        );
        return Ok(resp);
    }
    let key = fields.get("key").map(str::trim).unwrap_or("");
    if key.is_empty() || key.len() > MAX_KEY {
        return Ok(refused(
            StatusCode::BAD_REQUEST,
            "invalid",
            "This portal link is incomplete. Open the whole link you were given.",
        ));
    }
    let hash = sha256(key.as_bytes());
    let Some(caller) = session::caller_of(&st, Realm::Portal, hash).await? else {
        let admin_like = session::caller_of(&st, Realm::Console, hash)
            .await?
            .is_some();
        throttle::refused(&st, ip, "portal", "not a portal key");
        return Ok(if admin_like {
            refused(
                StatusCode::UNAUTHORIZED,
                "not_portal",
                "This key is not a portal key: the portal opens only with a link made for one application.",
            )
        } else {
            refused(
                StatusCode::UNAUTHORIZED,
                "expired",
                "This portal link has expired or was revoked. Ask for a new link.",
            )
        });
    };
    let now = now_millis();
    let op = session::start(Realm::Portal, caller, key, now);
    let next = app_page(&op).unwrap_or_else(|| Realm::Portal.base().into());
    let cookie = session::set_cookie(&st, &op, now);
    Ok((
        [(header::SET_COOKIE, cookie)],
        Json(json!({ "next": next })),
    )
        .into_response())
}
