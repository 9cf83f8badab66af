//! Per-endpoint routing routes beyond the endpoint resource itself:
//! `POST /api/v1/app/{app_id}/endpoint/{endpoint_id}/filter/test`.
//!
//! It answers what the fan-out would decide for a payload, with the same compiled filter, and
//! must not publish or store anything.

use axum::Json;
use herald_core::filter::Filter;

use crate::dto::{FilterTestIn, FilterTestOut};
use crate::error::{ApiError, ApiResult};
use crate::paths::EndpointPath;
use crate::scope::AtEndpoint;

/// Whether a payload matches the endpoint's content filter (an endpoint without a filter
/// matches every payload). Nothing is published.
#[utoipa::path(post, path = "/api/v1/app/{app_id}/endpoint/{endpoint_id}/filter/test", tag = "Endpoint", operation_id = "test_endpoint_filter",
    params(EndpointPath), request_body = FilterTestIn,
    responses((status = 200, description = "Whether the payload matches", body = FilterTestOut)))]
pub async fn test_filter(at: AtEndpoint<FilterTestIn>) -> ApiResult<Json<FilterTestOut>> {
    let (ep, body) = (at.ep, at.input);
    let matches = match &ep.options.filter {
        None => true,
        Some(doc) => Filter::compile(doc)
            .map_err(|e| ApiError::Internal(format!("stored filter of {}: {e}", ep.id.0)))?
            .matches(&body.payload),
    };
    Ok(Json(FilterTestOut { matches }))
}
