//! Background upkeep that every worker node runs beside the engine: auto-disabling endpoints
//! and purging expired payloads ([`maintenance`]), releasing held inbound events whose gap
//! timeout ran out ([`held`]), keeping the operational webhook's endpoint in line with the
//! configuration ([`operational`]) and removing `herald listen` endpoints a crash left behind
//! ([`listen_cleanup`]).
//!
//! These are policies over the store, so they live here rather than in the binary, which only
//! decides when to start them. They must not send HTTP themselves: whatever they make due is
//! delivered by the engine, which they wake.

mod held;
mod listen_cleanup;
mod maintenance;
mod operational;

pub use held::held_sweep_loop;
pub use listen_cleanup::remove_stale_listen_endpoints;
pub use maintenance::{maintenance_loop, Retention};
pub use operational::{ensure_operational_endpoint, UpkeepError};
