//! An endpoint's transformation, in Svix's shape: `GET`/`PATCH
//! /api/v1/app/{app_id}/endpoint/{endpoint_id}/transformation` and `POST …/transformation/test`.
//!
//! Owns the request/response bodies of these routes and the checks on the code (size). It must
//! not run code anywhere but the shared sandbox pool, and `…/test` must never send anything:
//! it answers what a delivery would carry.

use std::collections::BTreeMap;

use axum::http::StatusCode;
use axum::Json;
use herald_core::endpoint_options::Transformation;
use herald_core::model::is_sensitive_header;
use herald_core::now_millis;
use herald_delivery::transform::{TransformError, Webhook, MAX_CODE_BYTES};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::ToSchema;

use crate::dto::Checks;
use crate::error::ApiResult;
use crate::paths::EndpointPath;
use crate::scope::AtEndpoint;

/// The endpoint's transformation.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct TransformationOut {
    /// The JavaScript defining `handler(webhook)`; absent when none was ever set.
    pub code: Option<String>,
    pub enabled: bool,
}

/// Changes the transformation; absent fields keep their value.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct TransformationPatch {
    /// JavaScript defining `function handler(webhook)`; at most 64 KiB.
    pub code: Option<String>,
    pub enabled: Option<bool>,
}

/// Runs code on a sample payload without sending anything.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct TransformationTestIn {
    pub code: String,
    #[schema(value_type = Object)]
    pub payload: Value,
    pub event_type: String,
}

/// What a delivery would carry after the transformation, or why it would fail.
#[derive(Debug, Default, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct TransformationTestOut {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub method: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Object>)]
    pub payload: Option<Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub headers: Option<BTreeMap<String, String>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cancel: Option<bool>,
    /// The script's error (a throw, a limit, an unusable result); nothing else is set then.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

fn check_code(c: &mut Checks, code: &str) {
    if code.len() > MAX_CODE_BYTES {
        c.fail("code", format!("must be at most {MAX_CODE_BYTES} bytes"));
    }
}

/// The endpoint's transformation.
#[utoipa::path(get, path = "/api/v1/app/{app_id}/endpoint/{endpoint_id}/transformation", tag = "Endpoint", operation_id = "get_endpoint_transformation",
    params(EndpointPath),
    responses((status = 200, description = "The transformation", body = TransformationOut)))]
pub async fn get(AtEndpoint { ep, .. }: AtEndpoint) -> ApiResult<Json<TransformationOut>> {
    let t = ep.options.transformation.as_ref();
    Ok(Json(TransformationOut {
        code: t.map(|t| t.code.clone()),
        enabled: t.is_some_and(|t| t.enabled),
    }))
}

/// Sets or enables/disables the endpoint's transformation (**herald**: applied at delivery
/// time to every later attempt).
#[utoipa::path(patch, path = "/api/v1/app/{app_id}/endpoint/{endpoint_id}/transformation", tag = "Endpoint", operation_id = "patch_endpoint_transformation",
    params(EndpointPath), request_body = TransformationPatch,
    responses((status = 204, description = "Changed")))]
pub async fn patch(at: AtEndpoint<TransformationPatch>) -> ApiResult<StatusCode> {
    let (st, mut ep, body) = (at.st, at.ep, at.input);
    let mut c = Checks::default();
    if let Some(code) = &body.code {
        check_code(&mut c, code);
    }
    c.finish()?;
    let t = ep
        .options
        .transformation
        .get_or_insert_with(Transformation::default);
    if let Some(code) = body.code {
        t.code = code;
    }
    if let Some(enabled) = body.enabled {
        t.enabled = enabled;
    }
    ep.updated_at = now_millis();
    st.store().update_endpoint(ep).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Runs `code` on a sample payload as a delivery to this endpoint would, sending nothing.
#[utoipa::path(post, path = "/api/v1/app/{app_id}/endpoint/{endpoint_id}/transformation/test", tag = "Endpoint", operation_id = "test_endpoint_transformation",
    params(EndpointPath), request_body = TransformationTestIn,
    responses((status = 200, description = "The transformed request, or the script's error", body = TransformationTestOut)))]
pub async fn test(at: AtEndpoint<TransformationTestIn>) -> ApiResult<Json<TransformationTestOut>> {
    let (st, ep, body) = (at.st, at.ep, at.input);
    let mut c = Checks::default();
    check_code(&mut c, &body.code);
    c.finish()?;
    let input = Webhook {
        method: "POST".into(),
        url: ep.url.clone(),
        payload: body.payload,
        event_type: body.event_type,
        // Sensitive headers' values are never answered (as on `…/headers`).
        headers: ep
            .headers
            .iter()
            .filter(|(k, _)| !is_sensitive_header(k))
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect(),
        cancel: false,
    };
    let out = match st.inner.transforms.run(&body.code, &input).await {
        Ok(t) => TransformationTestOut {
            method: Some(t.method),
            url: Some(t.url),
            payload: Some(t.payload),
            headers: Some(t.headers),
            cancel: Some(t.cancel),
            error: None,
        },
        Err(e @ (TransformError::Script(_) | TransformError::Internal(_))) => {
            TransformationTestOut {
                error: Some(e.to_string()),
                ..Default::default()
            }
        }
    };
    Ok(Json(out))
}
