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
pub(crate) mod sources;
pub(crate) mod transformation;

use axum::Json;

use crate::dto::ListOut;
use crate::error::ApiResult;

/// What a list route answers: one page of `T` in the list envelope.
pub(crate) type ApiList<T> = ApiResult<Json<ListOut<T>>>;
