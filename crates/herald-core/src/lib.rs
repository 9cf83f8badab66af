//! Herald's domain: the types every other crate speaks, and the pure policies that decide what
//! happens to a webhook — how it is signed, when it is retried, what an HTTP answer means and
//! which addresses may be contacted.
//!
//! This crate owns no I/O: no sockets, no files (apart from reading the configuration file
//! through `figment`), no clocks hidden inside policies (callers pass `now`). Keeping it pure is
//! what lets the retry, outcome and SSRF rules be unit- and property-tested exhaustively.

pub mod breaker;
pub mod broker;
mod codes;
pub mod config;
pub mod crypto;
pub mod destination;
pub mod endpoint_options;
pub mod filter;
pub mod ids;
pub mod inbound;
pub mod jwe;
pub mod model;
pub mod ops;
pub mod ordering;
pub mod outcome;
pub mod pull;
pub mod reconcile;
pub mod retry;
pub mod schema_guard;
pub mod signing;
pub mod source;
pub mod ssrf;
pub mod throttle;

/// Version string sent as `User-Agent: Herald/<version>`.
pub const VERSION: &str = env!("CARGO_PKG_VERSION");

/// Milliseconds since the Unix epoch: the one time representation stored and compared.
pub type Millis = i64;

/// Current wall-clock time in milliseconds since the Unix epoch.
pub fn now_millis() -> Millis {
    chrono::Utc::now().timestamp_millis()
}
