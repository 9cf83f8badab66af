//! The column lists (and the delivery–message join) both backends read by the same names, and
//! the tables the generic writes store records in with the `INSERT`/`UPDATE` statements made
//! from them (an endpoint's too): one place, so the row mappers (`crate::backend::rows`) and
//! the statements that feed them cannot drift apart. No I/O and no row decoding here; a
//! record's values are given as neutral [`Arg`]s in column order, which each backend binds as
//! its own types.

use herald_core::model::{Application, Endpoint, EventType, Ordering, Source};
use herald_core::Millis;

use crate::common::{json, json_opt, verification_json};
use crate::page::Arg;

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

/// The written columns of an endpoint, in parameter order ([`ep_args`]).
macro_rules! ep_cols {
    () => {
        "id, app_id, uid, url, description, disabled, event_types, channels, \
        throttle_rate, metadata, headers, retry_schedule, permanent_statuses, ordering, \
        max_concurrency, signature_scheme, secrets, paused_until, created_at, updated_at, options"
    };
}

/// An endpoint as read back (`endpoints`): the written columns, then state only the store
/// maintains (`breaker`).
pub(crate) const EP_READ: &str = concat!(ep_cols!(), ", breaker");

/// A new endpoint's row, its values [`ep_args`].
pub(crate) const EP_INSERT: &str = concat!(
    "INSERT INTO endpoints (",
    ep_cols!(),
    ") VALUES ($1,$2,$3,$4,$5,$6,$7,$8,$9,$10,$11,$12,$13,$14,$15,$16,$17,$18,$19,$20,$21)"
);

/// An endpoint's row rewritten, found by its ID (`$1`), its values [`ep_args`].
pub(crate) const EP_UPDATE: &str =
    "UPDATE endpoints SET app_id=$2, uid=$3, url=$4, description=$5, disabled=$6, \
     event_types=$7, channels=$8, throttle_rate=$9, metadata=$10, headers=$11, \
     retry_schedule=$12, permanent_statuses=$13, ordering=$14, max_concurrency=$15, \
     signature_scheme=$16, secrets=$17, paused_until=$18, created_at=$19, updated_at=$20, \
     options=$21 WHERE id=$1";

/// The values of an endpoint's written columns, in their order (the parameters of
/// [`EP_INSERT`] and [`EP_UPDATE`]).
pub(crate) fn ep_args(ep: &Endpoint) -> Vec<Arg> {
    vec![
        Arg::text(&ep.id.0),
        Arg::text(&ep.app_id.0),
        Arg::OptText(ep.uid.clone()),
        Arg::text(&ep.url),
        Arg::text(&ep.description),
        Arg::Bool(ep.disabled),
        Arg::OptText(json_opt(&ep.event_types)),
        Arg::OptText(json_opt(&ep.channels)),
        Arg::OptInt(ep.throttle_rate.map(i64::from)),
        Arg::Text(json(&ep.metadata)),
        Arg::Text(json(&ep.headers)),
        Arg::OptText(json_opt(&ep.retry_schedule)),
        Arg::Text(json(&ep.permanent_statuses)),
        Arg::text(match ep.ordering {
            Ordering::Fifo => "fifo",
            Ordering::None => "none",
        }),
        Arg::OptInt(ep.max_concurrency.map(i64::from)),
        Arg::text(ep.signature_scheme.as_str()),
        Arg::Text(json(&ep.secrets)),
        Arg::OptInt(ep.paused_until),
        Arg::Int(ep.created_at),
        Arg::Int(ep.updated_at),
        Arg::Text(json(&ep.options)),
    ]
}

/// A message (`messages m`). The columns a delivery has too are aliased `m_…`, so that a
/// delivery read with its message names each column once.
pub(crate) const MSG_COLS: &str =
    "m.id AS m_id, m.app_id AS m_app_id, m.event_id, m.event_type, m.payload, \
    m.channels, m.created_at AS m_created_at, m.retention_ms, m.ordering_key AS m_ordering_key, \
    m.headers AS m_headers";

/// A delivery (`deliveries d`). The columns a message has too are aliased `d_…`.
pub(crate) const DLV_COLS: &str =
    "d.id AS d_id, d.msg_id AS d_msg_id, d.endpoint_id AS d_endpoint_id, \
    d.app_id AS d_app_id, d.status AS d_status, d.attempts, d.failures, d.next_at, \
    d.updated_at AS d_updated_at";

/// The deliveries with their messages, as the delivery lists read them.
pub(crate) const DLV_JOIN: &str = "deliveries d JOIN messages m ON m.id = d.msg_id";

/// A record the generic writes of both backends store: its table and its columns in parameter
/// order, the key first, `created_at` and `updated_at` last ([`Stored`]).
pub trait Table: Send + 'static {
    const STORED: Stored;

    /// The values in column order; an update leaves `created_at` out.
    fn args(&self, insert: bool) -> Vec<Arg>;
}

/// Where a [`Table`] record is stored.
pub struct Stored {
    table: &'static str,
    cols: &'static str,
    /// How many leading columns of `cols` make the key an update finds its row by.
    key: usize,
}

impl Stored {
    const fn new(table: &'static str, cols: &'static str, key: usize) -> Self {
        Self { table, cols, key }
    }
}

/// `a` with the stamps closing every record's values: `created_at` on insert only, then
/// `updated_at`.
fn stamped(mut a: Vec<Arg>, insert: bool, created_at: Millis, updated_at: Millis) -> Vec<Arg> {
    if insert {
        a.push(Arg::Int(created_at));
    }
    a.push(Arg::Int(updated_at));
    a
}

/// Implements [`Table`] for each record given: where it is stored (table, columns, key length),
/// then its values in column order before the two stamps, read through the name given.
macro_rules! tables {
    ($($t:ty: $table:literal, $cols:expr, $key:literal, |$r:ident| [$($v:expr),* $(,)?];)*) => {$(
        impl Table for $t {
            const STORED: Stored = Stored::new($table, $cols, $key);

            fn args(&self, insert: bool) -> Vec<Arg> {
                let $r = self;
                stamped(vec![$($v),*], insert, $r.created_at, $r.updated_at)
            }
        }
    )*};
}

tables! {
    Application: "apps", APP_COLS, 1, |a| [
        Arg::text(&a.id.0),
        Arg::OptText(a.uid.clone()),
        Arg::text(&a.name),
        Arg::OptInt(a.throttle_rate.map(i64::from)),
        Arg::Text(json(&a.metadata)),
    ];
    EventType: "event_types", ET_COLS, 1, |t| [
        Arg::text(&t.name),
        Arg::text(&t.description),
        Arg::Bool(t.archived),
        Arg::Bool(t.deprecated),
        Arg::OptText(json_opt(&t.schemas)),
    ];
    // Found by ID within its application.
    Source: "sources", SRC_COLS, 2, |s| [
        Arg::text(&s.id.0),
        Arg::text(&s.app_id.0),
        Arg::OptText(s.uid.clone()),
        Arg::text(&s.name),
        Arg::Text(verification_json(&s.verification)),
        Arg::Text(json(&s.secrets)),
        Arg::Text(json(&s.options)),
    ];
}

/// The columns of `cols`, trimmed.
fn names(cols: &str) -> impl Iterator<Item = &str> {
    cols.split(',').map(str::trim)
}

/// `INSERT` of every column of `T`, the parameters numbered after `mark` (`?1`… on SQLite,
/// `$1`… on PostgreSQL).
pub(crate) fn insert_sql<T: Table>(mark: char) -> String {
    let Stored { table, cols, .. } = T::STORED;
    let marks: Vec<String> = (1..=names(cols).count())
        .map(|i| format!("{mark}{i}"))
        .collect();
    format!("INSERT INTO {table} ({cols}) VALUES ({})", marks.join(","))
}

/// `UPDATE` of every column of `T` but its key and `created_at`, finding the row by its key.
/// The parameters are the columns in order without `created_at`, numbered after `mark`.
pub(crate) fn update_sql<T: Table>(mark: char) -> String {
    let Stored { table, cols, key } = T::STORED;
    let assign: Vec<String> = names(cols)
        .filter(|c| *c != "created_at")
        .enumerate()
        .map(|(i, c)| format!("{c} = {mark}{}", i + 1))
        .collect();
    let (key, set) = assign.split_at(key);
    format!(
        "UPDATE {table} SET {} WHERE {}",
        set.join(", "),
        key.join(" AND ")
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statements_number_the_parameters_in_column_order() {
        assert_eq!(
            insert_sql::<EventType>('?'),
            "INSERT INTO event_types (name, description, archived, deprecated, schemas, \
             created_at, updated_at) VALUES (?1,?2,?3,?4,?5,?6,?7)"
        );
        assert_eq!(
            update_sql::<Application>('$'),
            "UPDATE apps SET uid = $2, name = $3, throttle_rate = $4, metadata = $5, \
             updated_at = $6 WHERE id = $1"
        );
        assert_eq!(
            update_sql::<Source>('?'),
            "UPDATE sources SET uid = ?3, name = ?4, verification = ?5, secrets = ?6, \
             options = ?7, updated_at = ?8 WHERE id = ?1 AND app_id = ?2"
        );
    }
}
