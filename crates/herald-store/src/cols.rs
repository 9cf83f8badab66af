//! The column lists (and the delivery–message join) both backends read in the same order: one
//! place, so a row mapper of either backend and the statements that feed it cannot drift apart.
//! Lists whose spelling differs by dialect (aliases PostgreSQL needs, columns only one backend
//! has) stay in each backend's `rows.rs`. Only text here: no I/O, no row decoding.

/// An application (`apps`).
pub(crate) const APP_COLS: &str = "id, uid, name, throttle_rate, metadata, created_at, updated_at";

/// An event type (`event_types`).
pub(crate) const ET_COLS: &str =
    "name, description, archived, deprecated, schemas, created_at, updated_at";

/// A delivery attempt (`attempts`).
pub(crate) const ATT_COLS: &str =
    "id, msg_id, endpoint_id, app_id, delivery_id, url, response, status_code, \
    duration_ms, status, trigger_type, error, created_at";

/// An inbound source (`sources`).
pub(crate) const SRC_COLS: &str =
    "id, app_id, uid, name, verification, secrets, options, created_at, updated_at";

/// A request of a source's request log (`inbound_requests`).
pub(crate) const INREQ_COLS: &str =
    "id, source_id, app_id, status, reason, msg_id, headers, body, event_type, created_at";

/// The deliveries with their messages, as the delivery lists read them.
pub(crate) const DLV_JOIN: &str = "deliveries d JOIN messages m ON m.id = d.msg_id";
