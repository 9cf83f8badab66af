//! Request and response bodies and the checks that turn raw input into domain values, plus the
//! OpenAPI schemas of wire values defined outside this crate.
//!
//! Split by what the bodies belong to; everything is re-exported here so callers name
//! `crate::dto::X`. Nothing in this folder looks anything up or knows a route.

pub mod common;
pub mod delivery_options;
pub mod destinations;
pub mod reconcile;
pub mod resources;
pub mod routing;
pub mod schemas;
pub mod sources;

pub use common::*;
pub use delivery_options::*;
pub use destinations::*;
pub use reconcile::*;
pub use resources::*;
pub use routing::*;
pub use sources::*;
