//! The numbers the database stores for delivery status and breaker state, taken from the
//! herald-core enums so SQL text never spells a bare number. SQL that filters or sets a status
//! builds its text with `format!` from these constants. The migrations keep their literal
//! numbers: they are history and must stay the text that was applied.

use herald_core::breaker::BreakerState;
use herald_core::model::DeliveryStatus;

pub(crate) const SUCCESS: i64 = DeliveryStatus::Success as i64;
pub(crate) const PENDING: i64 = DeliveryStatus::Pending as i64;
pub(crate) const FAIL: i64 = DeliveryStatus::Fail as i64;
pub(crate) const SENDING: i64 = DeliveryStatus::Sending as i64;
/// The breaker of an endpoint that sends freely.
pub(crate) const CLOSED: i64 = BreakerState::Closed as i64;
