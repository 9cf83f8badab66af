//! The handlers, one module per resource family. Each validates its input, calls
//! `crate::service` or the store, and shapes the answer; the route table is in the router
//! module.
//!
//! A route module never uses another route module (shared operations live in
//! `crate::service`) and never uses the OpenAPI module, which documents the routes.

pub(crate) mod apps;
pub(crate) mod endpoints;
pub(crate) mod inbound;
pub(crate) mod listen;
pub(crate) mod messages;
pub(crate) mod misc;
pub(crate) mod pull;
pub(crate) mod routing;
pub(crate) mod sources;
pub(crate) mod transformation;

use axum::Json;

use crate::dto::ListOut;
use crate::error::ApiResult;

/// What a list route answers: one page of `T` in the list envelope.
pub(crate) type ApiList<T> = ApiResult<Json<ListOut<T>>>;

/// PUT on a resource that does not exist creates it (Svix upsert semantics): the path
/// segment becomes its `uid` unless the body names one or the segment is shaped as an ID of
/// the resource's kind (`is_id`), which a client cannot choose.
pub(crate) fn uid_from_path(uid: &mut Option<String>, segment: String, is_id: fn(&str) -> bool) {
    if uid.is_none() && !is_id(&segment) {
        *uid = Some(segment);
    }
}
