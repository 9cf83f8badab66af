//! The API's one error type and its stable JSON bodies.
//!
//! Every failure a handler can meet becomes an [`ApiError`], which renders as
//! `{"code": "...", "detail": "..."}` with the right status — or, for validation failures, as
//! the Svix-compatible `{"code": "validation_error", "detail": [{"loc", "msg", "type"}]}`.
//! Internal errors are logged here with their cause and answered without it. Ingestion's own
//! answers (`invalid_signature`, `rate_limited`, …) are variants here too, so one place renders
//! every error. This module must not depend on routes, services or the OpenAPI document.

use axum::http::{HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use herald_store::StoreError;

/// One field problem in a 422 answer.
#[derive(Clone, Debug, serde::Serialize, utoipa::ToSchema)]
pub struct FieldError {
    /// Where the problem is: `["body", "url"]`, `["query", "limit"]`, …
    pub loc: Vec<String>,
    pub msg: String,
    /// `value_error` or `type_error`.
    #[serde(rename = "type")]
    pub kind: String,
}

/// The body of every error answer except 422.
#[derive(Debug, serde::Serialize, utoipa::ToSchema)]
pub struct ErrorBody {
    /// Stable machine-readable code: `bad_request`, `authentication_failed`, `forbidden`,
    /// `not_found`, `conflict`, `payload_too_large`, `storage_unavailable`, `internal_error`,
    /// `corrupt_record` (a stored record that no longer decodes), `method_not_allowed`.
    pub code: String,
    pub detail: String,
}

/// The body of a 422 answer: every problem found, at once.
#[derive(Debug, serde::Serialize, utoipa::ToSchema)]
pub struct ValidationErrorBody {
    /// Always `validation_error`.
    pub code: String,
    pub detail: Vec<FieldError>,
}

impl FieldError {
    pub fn new(field: &str, msg: impl Into<String>) -> Self {
        Self {
            loc: vec!["body".into(), field.into()],
            msg: msg.into(),
            kind: "value_error".into(),
        }
    }
    pub fn query(field: &str, msg: impl Into<String>) -> Self {
        Self {
            loc: vec!["query".into(), field.into()],
            msg: msg.into(),
            kind: "value_error".into(),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error("{0}")]
    BadRequest(String),
    #[error("missing or invalid bearer token")]
    Unauthorized,
    #[error("{0}")]
    Forbidden(String),
    #[error("{0}")]
    NotFound(String),
    #[error("{0}")]
    Conflict(String),
    #[error("request body is larger than {0} bytes")]
    PayloadTooLarge(usize),
    /// Ingestion's 413, whose wording predates the management API's.
    #[error("body larger than {0} bytes")]
    BodyTooLarge(usize),
    /// Ingestion: the provider's signature does not verify (401).
    #[error("{0}")]
    InvalidSignature(String),
    /// Ingestion: the signed timestamp is too old or too new (401).
    #[error("{0}")]
    TimestampOutOfTolerance(String),
    /// Over a source's `rateLimit` (429 with `Retry-After: 1`).
    #[error("{0}")]
    RateLimited(String),
    #[error("method not allowed on this route")]
    MethodNotAllowed,
    /// `herald listen` on a node without delivery workers (503, no `Retry-After`: retrying
    /// the same node cannot help).
    #[error("{0}")]
    ListenUnavailable(String),
    /// `herald listen` without a WebSocket upgrade (400).
    #[error("{0}")]
    WebSocketRequired(String),
    #[error("validation failed")]
    Validation(Vec<FieldError>),
    #[error("storage unavailable")]
    Unavailable(String),
    #[error("internal error")]
    Internal(String),
    /// A stored record no longer decodes (see `StoreError::CorruptRecord`): 500
    /// `corrupt_record`, never a silently defaulted value. `record` names it (shown); `cause`
    /// is why it does not decode (logged only: it may quote stored configuration).
    #[error("the stored {record} does not decode")]
    CorruptRecord { record: String, cause: String },
}

pub type ApiResult<T> = Result<T, ApiError>;

impl ApiError {
    pub fn field(field: &str, msg: impl Into<String>) -> Self {
        Self::Validation(vec![FieldError::new(field, msg)])
    }
    pub fn not_found(what: &str) -> Self {
        Self::NotFound(format!("{what} not found"))
    }

    /// Maps a store error, answering a uniqueness conflict with `detail` (which names what is
    /// taken) instead of the store's wording.
    pub fn conflict_as(detail: &'static str) -> impl Fn(StoreError) -> ApiError {
        move |e| match e {
            StoreError::Conflict(_) => ApiError::Conflict(detail.into()),
            other => other.into(),
        }
    }
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::Conflict(d) => ApiError::Conflict(d),
            StoreError::NotFound => ApiError::NotFound("not found".into()),
            StoreError::Unavailable(d) => ApiError::Unavailable(d),
            StoreError::Corrupt(d) | StoreError::Rejected(d) => ApiError::Internal(d),
            StoreError::CorruptRecord { what, id, detail } => ApiError::CorruptRecord {
                record: format!("{what} of {id}"),
                cause: detail,
            },
            StoreError::KeyMismatch => ApiError::Internal(StoreError::KeyMismatch.to_string()),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let (status, code) = match &self {
            ApiError::BadRequest(_) => (StatusCode::BAD_REQUEST, "bad_request"),
            ApiError::Unauthorized => (StatusCode::UNAUTHORIZED, "authentication_failed"),
            ApiError::Forbidden(_) => (StatusCode::FORBIDDEN, "forbidden"),
            ApiError::NotFound(_) => (StatusCode::NOT_FOUND, "not_found"),
            ApiError::Conflict(_) => (StatusCode::CONFLICT, "conflict"),
            ApiError::PayloadTooLarge(_) | ApiError::BodyTooLarge(_) => {
                (StatusCode::PAYLOAD_TOO_LARGE, "payload_too_large")
            }
            ApiError::InvalidSignature(_) => (StatusCode::UNAUTHORIZED, "invalid_signature"),
            ApiError::TimestampOutOfTolerance(_) => {
                (StatusCode::UNAUTHORIZED, "timestamp_out_of_tolerance")
            }
            ApiError::RateLimited(_) => (StatusCode::TOO_MANY_REQUESTS, "rate_limited"),
            ApiError::MethodNotAllowed => (StatusCode::METHOD_NOT_ALLOWED, "method_not_allowed"),
            ApiError::ListenUnavailable(_) => {
                (StatusCode::SERVICE_UNAVAILABLE, "listen_unavailable")
            }
            ApiError::WebSocketRequired(_) => (StatusCode::BAD_REQUEST, "websocket_required"),
            ApiError::Validation(_) => (StatusCode::UNPROCESSABLE_ENTITY, "validation_error"),
            ApiError::Unavailable(_) => (StatusCode::SERVICE_UNAVAILABLE, "storage_unavailable"),
            ApiError::Internal(_) => (StatusCode::INTERNAL_SERVER_ERROR, "internal_error"),
            ApiError::CorruptRecord { .. } => (StatusCode::INTERNAL_SERVER_ERROR, "corrupt_record"),
        };
        let retry_after = match &self {
            ApiError::Unavailable(_) => Some("5"),
            ApiError::RateLimited(_) => Some("1"),
            _ => None,
        };
        let detail = match self {
            ApiError::Validation(errs) => {
                let body = ValidationErrorBody {
                    code: code.into(),
                    detail: errs,
                };
                return (status, axum::Json(body)).into_response();
            }
            ApiError::Unavailable(cause) => {
                tracing::error!(cause = %cause, "storage unavailable");
                "storage is unavailable; retry later".to_string()
            }
            ApiError::Internal(cause) => {
                tracing::error!(cause = %cause, "internal error");
                "internal error".to_string()
            }
            ApiError::CorruptRecord { record, cause } => {
                tracing::error!(record = %record, cause = %cause, "corrupt record");
                format!("the stored {record} does not decode")
            }
            other => other.to_string(),
        };
        let body = ErrorBody {
            code: code.into(),
            detail,
        };
        let mut resp = (status, axum::Json(body)).into_response();
        if let Some(seconds) = retry_after {
            resp.headers_mut()
                .insert("retry-after", HeaderValue::from_static(seconds));
        }
        resp
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A record the store cannot decode answers 500 `corrupt_record`, naming the record but not
    /// quoting what is stored.
    #[tokio::test]
    async fn a_corrupt_record_answers_500_corrupt_record() {
        let e = StoreError::CorruptRecord {
            what: "source options",
            id: "src_1".into(),
            detail: "unknown variant `sometimes`".into(),
        };
        let resp = ApiError::from(e).into_response();
        assert_eq!(resp.status(), StatusCode::INTERNAL_SERVER_ERROR);
        let body = axum::body::to_bytes(resp.into_body(), 4096).await.unwrap();
        let body: serde_json::Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(body["code"], "corrupt_record");
        assert_eq!(
            body["detail"],
            "the stored source options of src_1 does not decode"
        );
    }
}
