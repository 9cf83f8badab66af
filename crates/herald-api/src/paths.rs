//! Path parameters of every route, one struct per set: the `Path<…>` extractors the handlers
//! take and, through `IntoParams`, the parameters the OpenAPI document lists.
//!
//! Field names are the route templates' `{…}` names (axum matches them by name). This module
//! only names and describes parameters; it must not look anything up.

use serde::Deserialize;
use utoipa::IntoParams;

/// `{app_id}`.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Path)]
pub struct AppPath {
    /// Application ID (`app_…`) or uid.
    pub app_id: String,
}

/// `{app_id}/source/{source_id}`.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Path)]
pub struct SourcePath {
    /// Application ID (`app_…`) or uid.
    pub app_id: String,
    /// Source ID (`src_…`) or uid.
    pub source_id: String,
}

/// `{app_id}/source/{source_id}/quarantine/{request_id}`.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Path)]
pub struct SourceRequestPath {
    /// Application ID (`app_…`) or uid.
    pub app_id: String,
    /// Source ID (`src_…`) or uid.
    pub source_id: String,
    /// Inbound request ID (`inreq_…`).
    pub request_id: String,
}

/// `/in/{source_id}`.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Path)]
pub struct IngestPath {
    /// Source ID (`src_…`).
    pub source_id: String,
}

/// `{app_id}/…/{endpoint_id}`.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Path)]
pub struct EndpointPath {
    /// Application ID (`app_…`) or uid.
    pub app_id: String,
    /// Endpoint ID (`ep_…`) or uid.
    pub endpoint_id: String,
}

/// `{app_id}/…/{msg_id}`.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Path)]
pub struct MsgPath {
    /// Application ID (`app_…`) or uid.
    pub app_id: String,
    /// Message ID (`msg_…`) or the message's `eventId`.
    pub msg_id: String,
}

/// `{app_id}/endpoint/{endpoint_id}/poll/token/{token_id}`.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Path)]
pub struct PollTokenPath {
    /// Application ID (`app_…`) or uid.
    pub app_id: String,
    /// Endpoint ID (`ep_…`) or uid.
    pub endpoint_id: String,
    /// Poll token ID (`tok_…`), as `create_poll_token` and `list_poll_tokens` answer it.
    pub token_id: String,
}

/// `{app_id}/msg/{msg_id}/endpoint/{endpoint_id}`.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Path)]
pub struct MsgEndpointPath {
    /// Application ID (`app_…`) or uid.
    pub app_id: String,
    /// Message ID (`msg_…`) or the message's `eventId`.
    pub msg_id: String,
    /// Endpoint ID (`ep_…`) or uid.
    pub endpoint_id: String,
}

/// `{app_id}/msg/{msg_id}/attempt/{attempt_id}`.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Path)]
pub struct AttemptPath {
    /// Application ID (`app_…`) or uid.
    pub app_id: String,
    /// Message ID (`msg_…`) or the message's `eventId`.
    pub msg_id: String,
    /// Attempt ID (`atmpt_…`).
    pub attempt_id: String,
}

/// `/event-type/{name}`.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Path)]
pub struct EventTypePath {
    /// Event type name.
    pub name: String,
}

/// `/token/{token_id}`.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Path)]
pub struct TokenPath {
    /// Token ID.
    pub token_id: String,
}
