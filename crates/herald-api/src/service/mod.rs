//! Operations that more than one route needs: loading a resource by ID or uid with the
//! caller's tenancy checked, creating an application on first use, decoding a stored source,
//! and the inbound pipeline's steps.
//!
//! Routes call these; services never call routes, never render HTTP themselves (they return
//! [`crate::error::ApiError`] or their own typed rejections that convert into it) and never
//! know about the OpenAPI document.

pub mod apps;
pub mod endpoints;
pub mod ingest;
pub mod messages;
pub mod reconcile;
pub mod secrets;
pub mod sources;
