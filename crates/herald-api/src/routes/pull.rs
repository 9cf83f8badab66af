//! Polling endpoints (`url` `poll:`): `GET …/endpoint/{endpoint_id}/poll` hands out held
//! events and acknowledges what the consumer's iterator says it has, and
//! `POST …/endpoint/{endpoint_id}/poll/token` mints a token that may only poll (listed and
//! revoked through `GET …/poll/token` and `DELETE …/poll/token/{token_id}`).
//!
//! The poll route authenticates by hand ([`Bearer`]) because it is the one route a poll-only
//! token may call; every other route's `Auth` refuses such a token with 403. The checks keep
//! the usual order: token (401), path (400), query (422), lookup (403/404).

use axum::http::request::Parts;
use axum::http::{HeaderName, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use herald_core::ids::{BatchId, TokenId};
use herald_core::model::Endpoint;
use herald_core::now_millis;
use herald_core::pull::{is_poll_url, CursorError, PollCursor, DEFAULT_POLL_LIMIT, MAX_POLL_LIMIT};
use herald_core::signing::signature_headers;
use herald_store::{PollPage, PollRequest, PollToken};
use serde::Deserialize;
use serde_json::value::RawValue;

use crate::dto::{ts, PollOut, PollTokenInfoOut, PollTokenListOut, PollTokenOut, PolledEventOut};
use crate::error::{ApiError, ApiResult, ErrorBody, FieldError};
use crate::extract::{de_opt, query_time, sha256, Auth, Bearer, Caller, Path, Q};
use crate::paths::{EndpointPath, PollTokenPath};
use crate::scope::AtEndpoint;
use crate::service::endpoints;
use crate::state::AppState;

/// Most poll-only tokens one endpoint may have: each is a credential to audit, and a client
/// minting them in a loop must not grow the table without bound.
pub const MAX_POLL_TOKENS: usize = 100;

#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct PollParams {
    /// Most events to answer, 1–1000 (default 100).
    #[serde(default, deserialize_with = "de_opt")]
    #[param(minimum = 1, maximum = 1000)]
    limit: Option<i64>,
    /// The `iterator` of the previous page: acknowledges every event handed out up to it.
    iterator: Option<String>,
    /// Only events published at or after this RFC 3339 date-time (kept in the iterator).
    #[param(format = DateTime)]
    since: Option<String>,
}

fn query_error(field: &str, msg: impl Into<String>) -> ApiError {
    ApiError::Validation(vec![FieldError::query(field, msg)])
}

fn not_polling() -> ApiError {
    ApiError::Conflict("this endpoint is not a polling endpoint (its url is not `poll:`)".into())
}

/// The endpoint the caller may poll: any endpoint its app token or the admin may see; for a
/// poll-only token, exactly the endpoint it was made for (403 otherwise).
async fn polled_endpoint(st: &AppState, who: Bearer, path: &EndpointPath) -> ApiResult<Endpoint> {
    let (auth, only) = match who {
        Bearer::Api(auth) => (auth, None),
        Bearer::PollOnly(t) => {
            let auth = Auth {
                caller: Caller::App(t.app_id.clone()),
                token_hash: [0; 32],
            };
            (auth, Some(t.endpoint_id))
        }
    };
    let (_, ep) = endpoints::load(st, &auth, path).await?;
    if only.is_some_and(|id| id != ep.id) {
        return Err(ApiError::Forbidden(
            "this token may only poll its own endpoint".into(),
        ));
    }
    if !is_poll_url(&ep.url) {
        return Err(not_polling());
    }
    Ok(ep)
}

/// The store's request for this poll, from the (validated) query.
fn poll_request(ep: &Endpoint, q: &PollParams) -> ApiResult<(PollRequest, PollCursor)> {
    let limit = q.limit.unwrap_or(DEFAULT_POLL_LIMIT as i64);
    if !(1..=MAX_POLL_LIMIT as i64).contains(&limit) {
        return Err(query_error("limit", "limit must be between 1 and 1000"));
    }
    let since = query_time("since", q.since.as_deref())?;
    let mut cursor = match q.iterator.as_deref().filter(|s| !s.is_empty()) {
        None => PollCursor::start(&ep.id.0, 0),
        Some(text) => PollCursor::decode(text, &ep.id.0).map_err(|e| match e {
            CursorError::Malformed => query_error("iterator", e.to_string()),
            CursorError::OtherEndpoint => ApiError::Forbidden(e.to_string()),
        })?,
    };
    if let Some(s) = since {
        cursor.since = s.max(0);
    }
    let req = PollRequest {
        app_id: ep.app_id.clone(),
        endpoint_id: ep.id.clone(),
        ack_upto: cursor.acked,
        since: cursor.since,
        limit: limit as usize,
        now: now_millis(),
    };
    Ok((req, cursor))
}

fn page_out(page: PollPage, mut cursor: PollCursor) -> PollOut {
    if let Some(last) = page.events.last() {
        cursor.acked = last.position;
    }
    let data = page
        .events
        .into_iter()
        .map(|e| PolledEventOut {
            id: e.msg_id.0,
            event_type: e.event_type,
            timestamp: ts(e.created_at),
            payload: RawValue::from_string(
                e.payload.unwrap_or_else(|| r#"{"expired":true}"#.into()),
            )
            .unwrap_or_else(|_| RawValue::from_string("null".into()).expect("static")),
        })
        .collect();
    PollOut {
        data,
        iterator: cursor.encode(),
        done: !page.has_more,
    }
}

/// The page as a signed answer: the endpoint's signature headers over the exact body, with an
/// ID of the page's own (never one of its messages' IDs).
fn signed(ep: &Endpoint, out: &PollOut, now: i64) -> ApiResult<Response> {
    let body = serde_json::to_vec(out).map_err(|e| ApiError::Internal(e.to_string()))?;
    let id = BatchId::generate();
    let secrets = ep.valid_secrets(now);
    let mut resp = (
        [(axum::http::header::CONTENT_TYPE, "application/json")],
        body.clone(),
    )
        .into_response();
    for (name, value) in signature_headers(ep.signature_scheme, &secrets, &id.0, now / 1000, &body)
    {
        if let Ok(v) = HeaderValue::try_from(value) {
            resp.headers_mut().insert(HeaderName::from_static(name), v);
        }
    }
    Ok(resp)
}

/// **(herald)** Fetch the held events of a polling endpoint (`url` `poll:`), in publish order.
/// Passing the previous page's `iterator` acknowledges every event handed out up to it (they
/// become `success`). Admin token, the application's token, or a token from
/// `POST …/poll/token` for this endpoint.
#[utoipa::path(get, path = "/api/v1/app/{app_id}/endpoint/{endpoint_id}/poll", tag = "Endpoint", operation_id = "poll_endpoint",
    params(EndpointPath, PollParams),
    responses(
        (status = 200, description = "A page (signed with the endpoint's signature headers)", body = PollOut),
        (status = 409, description = "Not a polling endpoint", body = ErrorBody)))]
pub async fn poll(
    axum::extract::State(st): axum::extract::State<AppState>,
    mut parts: Parts,
) -> ApiResult<Response> {
    let who = Bearer::resolve(&parts, &st).await?;
    let Path(path) =
        <Path<EndpointPath> as axum::extract::FromRequestParts<AppState>>::from_request_parts(
            &mut parts, &st,
        )
        .await?;
    let Q(q) = <Q<PollParams> as axum::extract::FromRequestParts<AppState>>::from_request_parts(
        &mut parts, &st,
    )
    .await?;
    let ep = polled_endpoint(&st, who, &path).await?;
    let (req, cursor) = poll_request(&ep, &q)?;
    let now = req.now;
    let page = st.store().poll_page(req).await?;
    signed(&ep, &page_out(page, cursor), now)
}

/// **(herald)** Create a token that may only poll this polling endpoint; shown this once.
#[utoipa::path(post, path = "/api/v1/app/{app_id}/endpoint/{endpoint_id}/poll/token", tag = "Endpoint", operation_id = "create_poll_token",
    params(EndpointPath),
    responses(
        (status = 201, description = "Created", body = PollTokenOut),
        (status = 409, description = "Not a polling endpoint, or it has 100 tokens already", body = ErrorBody)))]
pub async fn create_token(at: AtEndpoint) -> ApiResult<Response> {
    let (st, ep) = (at.st, at.ep);
    if !is_poll_url(&ep.url) {
        return Err(not_polling());
    }
    let held = st.store().list_poll_tokens(&ep.id, MAX_POLL_TOKENS).await?;
    if held.len() >= MAX_POLL_TOKENS {
        return Err(ApiError::Conflict(format!(
            "the endpoint has {MAX_POLL_TOKENS} poll tokens, the most it may have: delete one first"
        )));
    }
    let secret = herald_core::ids::new_token_secret();
    let rec = PollToken {
        id: TokenId::generate(),
        app_id: ep.app_id.clone(),
        endpoint_id: ep.id.clone(),
        created_at: now_millis(),
    };
    let rec = st
        .store()
        .create_poll_token(rec, sha256(secret.as_bytes()))
        .await?;
    let out = PollTokenOut {
        id: rec.id.0,
        token: secret,
        created_at: ts(rec.created_at),
    };
    Ok((StatusCode::CREATED, Json(out)).into_response())
}

#[utoipa::path(get, path = "/api/v1/app/{app_id}/endpoint/{endpoint_id}/poll/token", tag = "Endpoint", operation_id = "list_poll_tokens",
    params(EndpointPath),
    responses(
        (status = 200, description = "The endpoint's poll-only tokens, without their secrets", body = PollTokenListOut),
        (status = 404, description = "No such endpoint", body = ErrorBody)))]
pub async fn list_tokens(at: AtEndpoint) -> ApiResult<Json<PollTokenListOut>> {
    let tokens = at
        .st
        .store()
        .list_poll_tokens(&at.ep.id, MAX_POLL_TOKENS)
        .await?;
    let data = tokens
        .into_iter()
        .map(|t| PollTokenInfoOut {
            id: t.id.0,
            created_at: ts(t.created_at),
        })
        .collect();
    Ok(Json(PollTokenListOut { data }))
}

#[utoipa::path(delete, path = "/api/v1/app/{app_id}/endpoint/{endpoint_id}/poll/token/{token_id}", tag = "Endpoint", operation_id = "delete_poll_token",
    params(PollTokenPath),
    responses(
        (status = 204, description = "Revoked: the token no longer polls"),
        (status = 404, description = "No such endpoint, or no such token of it", body = ErrorBody)))]
pub async fn delete_token(at: AtEndpoint, Path(p): Path<PollTokenPath>) -> ApiResult<StatusCode> {
    if at
        .st
        .store()
        .delete_poll_token(&at.ep.id, &p.token_id)
        .await?
    {
        Ok(StatusCode::NO_CONTENT)
    } else {
        Err(ApiError::not_found("poll token"))
    }
}
