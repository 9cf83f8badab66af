//! Signing in and out, and the console's home (`/console/`): the sign-in form without a
//! session, the application list with one.
//!
//! The token arrives only in a POST body, is checked as the API checks a bearer token, and is
//! then kept only as its hash inside the sealed cookie: it never appears in a URL, a page or
//! a log. Refused attempts are counted per client address (`throttle`): past the limit,
//! sign-in answers 429 for a while.

use askama::Template;
use axum::extract::{Query, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use herald_core::now_millis;

use super::apps::{self, ListQ};
use super::csrf::{Posted, SameOriginForm};
use super::page::{html, Chrome, ConsoleError, ConsoleResult};
use super::session::{self, Operator, Realm};
use super::throttle;
use crate::extract::sha256;
use crate::state::AppState;

/// Longest token accepted in the form (API tokens are far shorter).
const MAX_TOKEN: usize = 1024;

#[derive(Template)]
#[template(path = "console/signin.html")]
struct SignInPage<'a> {
    chrome: Chrome,
    error: Option<&'a str>,
}

fn sign_in_page(st: &AppState, status: StatusCode, error: Option<&str>) -> Response {
    html(
        status,
        &SignInPage {
            chrome: Chrome::new(st, Realm::Console),
            error,
        },
    )
}

/// `GET /console`: the application list, or the sign-in form without a session.
pub async fn home(
    State(st): State<AppState>,
    op: Result<Operator, ConsoleError>,
    Query(q): Query<ListQ>,
) -> ConsoleResult<Response> {
    match op {
        Ok(op) => apps::list(&st, &op, q).await,
        Err(_) => Ok(sign_in_page(&st, StatusCode::OK, None)),
    }
}

/// `POST /console` with `token`: starts a session for the admin token or an unscoped API
/// token; anything else shows the form again with the reason.
pub async fn sign_in(
    State(st): State<AppState>,
    peer: Option<axum::Extension<axum::extract::ConnectInfo<std::net::SocketAddr>>>,
    SameOriginForm(fields): SameOriginForm,
) -> ConsoleResult<Response> {
    let ip = throttle::client_ip(peer);
    if let Err((words, secs)) = throttle::admit(&st, ip, "console") {
        let mut resp = sign_in_page(&st, StatusCode::TOO_MANY_REQUESTS, Some(&words));
        resp.headers_mut()
            .insert(header::RETRY_AFTER, header::HeaderValue::from(secs));
        return Ok(resp);
    }
    let token = fields.get("token").map(str::trim).unwrap_or("");
    if token.is_empty() || token.len() > MAX_TOKEN {
        return Ok(sign_in_page(
            &st,
            StatusCode::UNAUTHORIZED,
            Some("Enter the admin token or an API token."),
        ));
    }
    let hash = sha256(token.as_bytes());
    let caller = match session::caller_of(&st, Realm::Console, hash).await? {
        Some(c) => c,
        None => {
            throttle::refused(&st, ip, "console", "not a console token");
            return Ok(sign_in_page(
                &st,
                StatusCode::UNAUTHORIZED,
                Some("This token is not valid for the console. Use the admin token or an API token without an application scope."),
            ));
        }
    };
    let now = now_millis();
    let op = session::start(Realm::Console, caller, token, now);
    let cookie = session::set_cookie(&st, &op, now);
    Ok(([(header::SET_COOKIE, cookie)], Redirect::to("/console")).into_response())
}

/// `POST /console/sign-out` and `POST /portal/sign-out`: removes the realm's cookie.
pub async fn sign_out(State(st): State<AppState>, posted: Posted) -> Response {
    let realm = posted.op.realm;
    (
        [(header::SET_COOKIE, session::clear_cookie(&st, realm))],
        Redirect::to(realm.base()),
    )
        .into_response()
}
