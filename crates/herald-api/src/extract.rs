//! Request extractors: the JSON body reader (size limit, 400 vs 422), list query parsing, and
//! bearer-token authentication.
//!
//! Parsing happens here so handlers receive checked values; this module does not touch
//! resources beyond looking up a token.

use axum::body::Body;
use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::request::Parts;
use chrono::DateTime;
use herald_core::ids::AppId;
use herald_core::Millis;
use herald_store::ListQuery;
use serde::de::DeserializeOwned;
use serde::Deserialize;
use subtle::ConstantTimeEq;

use crate::error::{ApiError, FieldError};
use crate::state::AppState;

/// A JSON body, read up to the configured limit (413 beyond), 400 when it is not JSON and 422
/// when it does not fit the expected shape.
pub struct JsonBody<T>(pub T);

impl<T: DeserializeOwned> FromRequest<AppState> for JsonBody<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &AppState) -> Result<Self, ApiError> {
        let limit = state.body_limit();
        let body: Body = req.into_body();
        let bytes = axum::body::to_bytes(body, limit)
            .await
            .map_err(|_| ApiError::PayloadTooLarge(limit))?;
        parse_json(&bytes).map(JsonBody)
    }
}

/// A JSON body that may be absent: an empty body is `T::default()`, anything else is read as
/// [`JsonBody`] reads it.
pub struct OptionalJsonBody<T>(pub T);

impl<T: DeserializeOwned + Default> FromRequest<AppState> for OptionalJsonBody<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &AppState) -> Result<Self, ApiError> {
        let limit = state.body_limit();
        let bytes = axum::body::to_bytes(req.into_body(), limit)
            .await
            .map_err(|_| ApiError::PayloadTooLarge(limit))?;
        // Only a body that is absent means "no options"; whitespace alone is not JSON (400),
        // as for every other body.
        if bytes.is_empty() {
            return Ok(OptionalJsonBody(T::default()));
        }
        parse_json(&bytes).map(OptionalJsonBody)
    }
}

/// Parses a request body. Every body is a JSON object: serde would also fill a struct from a
/// JSON array (`[null, null]`), which no client means, so anything else is refused (422).
pub fn parse_json<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, ApiError> {
    // serde_json skips the strings of fields it ignores without checking their UTF-8, so a
    // body with invalid bytes in an unknown field would be accepted (RFC 8259 §8.1: JSON text
    // is UTF-8). Check the whole body once.
    if let Err(e) = std::str::from_utf8(bytes) {
        return Err(ApiError::BadRequest(format!(
            "body is not valid UTF-8 (at byte {})",
            e.valid_up_to()
        )));
    }
    let first = bytes.iter().find(|b| !b.is_ascii_whitespace());
    if first != Some(&b'{') {
        return Err(
            match serde_json::from_slice::<serde::de::IgnoredAny>(bytes) {
                Ok(_) => ApiError::Validation(vec![FieldError {
                    loc: vec!["body".into()],
                    msg: "the body must be a JSON object".into(),
                    kind: "type_error".into(),
                }]),
                Err(e) => ApiError::BadRequest(format!("body is not valid JSON: {e}")),
            },
        );
    }
    let de = &mut serde_json::Deserializer::from_slice(bytes);
    serde_path_to_error_free(de).map_err(|e| {
        use serde_json::error::Category;
        match e.classify() {
            Category::Syntax | Category::Eof | Category::Io => {
                ApiError::BadRequest(format!("body is not valid JSON: {e}"))
            }
            Category::Data => ApiError::Validation(vec![FieldError {
                loc: vec!["body".into()],
                msg: e.to_string(),
                kind: "type_error".into(),
            }]),
        }
    })
}

fn serde_path_to_error_free<'de, T: DeserializeOwned>(
    de: &mut serde_json::Deserializer<serde_json::de::SliceRead<'de>>,
) -> Result<T, serde_json::Error> {
    let v = T::deserialize(&mut *de)?;
    de.end()?;
    Ok(v)
}

/// Common list parameters.
#[derive(Debug, Default, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ListParams {
    /// Page size, 1–250 (default 50).
    #[serde(default, deserialize_with = "de_opt")]
    #[param(minimum = 1, maximum = 250)]
    pub limit: Option<i64>,
    /// `iterator` of the previous page to go forwards, or its `prevIterator` (`-…`) to go back.
    pub iterator: Option<String>,
    /// `ascending` or `descending` (each list has its own default).
    #[param(pattern = "^(ascending|descending)$")]
    pub order: Option<String>,
    /// Only items created before this RFC 3339 date-time.
    #[param(format = DateTime)]
    pub before: Option<String>,
    /// Only items created after this RFC 3339 date-time.
    #[param(format = DateTime)]
    pub after: Option<String>,
}

const EXPECTED_TIME: &str = "expected an RFC 3339 date-time";

/// The query parameter `field`, an RFC 3339 date-time, when it is given (422 otherwise).
pub fn query_time(field: &str, s: Option<&str>) -> Result<Option<Millis>, ApiError> {
    s.map(|s| parse_time(s).ok_or_else(|| FieldError::query(field, EXPECTED_TIME)))
        .transpose()
        .map_err(|e| ApiError::Validation(vec![e]))
}

/// The body field `field`, an RFC 3339 date-time (422 otherwise).
pub fn body_time(field: &str, s: &str) -> Result<Millis, ApiError> {
    parse_time(s).ok_or_else(|| ApiError::field(field, EXPECTED_TIME))
}

fn parse_time(s: &str) -> Option<Millis> {
    DateTime::parse_from_rfc3339(s)
        .ok()
        .map(|d| d.timestamp_millis())
}

impl ListParams {
    /// Builds a keyset query; `default_desc` is the resource's natural order.
    pub fn to_query(&self, default_desc: bool) -> Result<ListQuery, ApiError> {
        let limit = self.limit.unwrap_or(50);
        if !(1..=250).contains(&limit) {
            return Err(ApiError::Validation(vec![FieldError::query(
                "limit",
                "limit must be between 1 and 250",
            )]));
        }
        let descending = match self.order.as_deref() {
            None => default_desc,
            Some("ascending") => false,
            Some("descending") => true,
            Some(_) => {
                return Err(ApiError::Validation(vec![FieldError::query(
                    "order",
                    "order must be `ascending` or `descending`",
                )]))
            }
        };
        let (iterator, backwards) = match self.iterator.as_deref().filter(|s| !s.is_empty()) {
            Some(it) => match it.strip_prefix('-') {
                Some(rest) => (Some(rest.to_string()), true),
                None => (Some(it.to_string()), false),
            },
            None => (None, false),
        };
        Ok(ListQuery {
            limit: limit as usize,
            iterator,
            backwards,
            descending,
            before: query_time("before", self.before.as_deref())?,
            after: query_time("after", self.after.as_deref())?,
        })
    }
}

/// Who is calling.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Caller {
    Admin,
    /// A token scoped to one application.
    App(AppId),
    /// An unscoped named token: admin rights.
    Token,
}

impl Caller {
    pub fn is_admin(&self) -> bool {
        !matches!(self, Caller::App(_))
    }
    pub fn require_admin(&self) -> Result<(), ApiError> {
        if self.is_admin() {
            Ok(())
        } else {
            Err(ApiError::Forbidden(
                "this token is scoped to one application".into(),
            ))
        }
    }
}

/// The authenticated caller plus the hash of the token (idempotency keys are per token).
pub struct Auth {
    pub caller: Caller,
    pub token_hash: [u8; 32],
}

pub use crate::state::sha256;

/// Who a bearer token is: an API caller, or a token that may only poll one endpoint.
pub enum Bearer {
    Api(Auth),
    /// A token from `POST …/endpoint/{ep}/poll/token`: only `GET …/endpoint/{ep}/poll`.
    PollOnly(herald_store::PollToken),
}

impl Bearer {
    /// Resolves the request's bearer token (401 when it is missing or unknown).
    pub async fn resolve(parts: &Parts, state: &AppState) -> Result<Self, ApiError> {
        let token = parts
            .headers
            .get(axum::http::header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| {
                v.strip_prefix("Bearer ")
                    .or_else(|| v.strip_prefix("bearer "))
            })
            .map(str::trim)
            .filter(|t| !t.is_empty())
            .ok_or(ApiError::Unauthorized)?;
        let hash = sha256(token.as_bytes());
        // Compare hashes in constant time so timing reveals nothing about the admin token.
        if bool::from(hash.ct_eq(&state.inner.admin_token_hash)) {
            return Ok(Bearer::Api(Auth {
                caller: Caller::Admin,
                token_hash: hash,
            }));
        }
        if let Some(rec) = state.inner.store.find_token(hash).await? {
            return Ok(Bearer::Api(Auth {
                caller: rec.app_id.map(Caller::App).unwrap_or(Caller::Token),
                token_hash: hash,
            }));
        }
        match state.inner.store.find_poll_token(hash).await? {
            Some(t) => Ok(Bearer::PollOnly(t)),
            None => Err(ApiError::Unauthorized),
        }
    }
}

impl FromRequestParts<AppState> for Auth {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        match Bearer::resolve(parts, state).await? {
            Bearer::Api(auth) => Ok(auth),
            // A known token, used outside the one route it is for.
            Bearer::PollOnly(_) => Err(ApiError::Forbidden(
                "this token may only poll its endpoint".into(),
            )),
        }
    }
}

/// Query-string extractor whose failures are 422 `{code, detail}` bodies. Numbers and booleans
/// arrive as strings (see [`de_opt`]) because `serde_urlencoded` cannot type them inside
/// flattened structs.
pub struct Q<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequestParts<S> for Q<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, ApiError> {
        axum::extract::Query::<T>::try_from_uri(&parts.uri)
            .map(|q| Q(q.0))
            .map_err(|e| {
                ApiError::Validation(vec![FieldError {
                    loc: vec!["query".into()],
                    msg: e.body_text(),
                    kind: "value_error".into(),
                }])
            })
    }
}

/// Deserializes an optional value that arrives as text (`"5"`, `"true"`).
pub fn de_opt<'de, D, T>(d: D) -> Result<Option<T>, D::Error>
where
    D: serde::Deserializer<'de>,
    T: std::str::FromStr,
    T::Err: std::fmt::Display,
{
    match Option::<String>::deserialize(d)? {
        None => Ok(None),
        Some(s) => s.parse::<T>().map(Some).map_err(serde::de::Error::custom),
    }
}

/// Path-parameter extractor whose failures (e.g. a segment that is not UTF-8) are 400
/// `{code, detail}` bodies rather than axum's plain text.
pub struct Path<T>(pub T);

impl<T, S> FromRequestParts<S> for Path<T>
where
    T: DeserializeOwned + Send,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        axum::extract::Path::<T>::from_request_parts(parts, state)
            .await
            .map(|p| Path(p.0))
            .map_err(|e| ApiError::BadRequest(e.body_text()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, Deserialize)]
    #[allow(dead_code)]
    struct AllOptional {
        a: Option<String>,
        b: Option<bool>,
    }

    fn status(r: Result<AllOptional, ApiError>) -> Option<u16> {
        use axum::response::IntoResponse;
        r.err().map(|e| e.into_response().status().as_u16())
    }

    /// Found by schemathesis: `PATCH /event-type/{name}` with body `[null, null]` answered 200,
    /// because serde fills a struct from a JSON array.
    #[test]
    fn array_body_is_refused_even_when_serde_could_fill_the_struct() {
        assert_eq!(status(parse_json(b"[null, null]")), Some(422));
        assert_eq!(status(parse_json(b" [] ")), Some(422));
        assert_eq!(status(parse_json(b"null")), Some(422));
        assert_eq!(status(parse_json(b"3")), Some(422));
        assert_eq!(status(parse_json(b"[1,")), Some(400));
        assert_eq!(status(parse_json(b"")), Some(400));
        assert_eq!(status(parse_json(b" {\"a\": \"x\"}")), None);
        assert_eq!(status(parse_json(b"{\"b\": 3}")), Some(422));
    }

    #[test]
    fn defect_12_invalid_utf8_in_an_unknown_field_is_refused() {
        assert_eq!(
            status(parse_json(b"{\"a\": \"x\", \"zz\": \"\xff\xfe\"}")),
            Some(400)
        );
        assert_eq!(status(parse_json(b"{\"a\": \"\xc3\"}")), Some(400));
        assert_eq!(status(parse_json(b"{\"a\": \"caf\xc3\xa9\"}")), None);
    }
}
