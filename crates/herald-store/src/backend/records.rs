//! [`Record`]: which row mapper of each backend decodes a type the generic role methods read.
//! Both mappers of a type stand together here, so the two backends cannot read it differently
//! by accident; the mappers themselves stay in each backend's `rows.rs`. No SQL here.

use herald_core::model::{
    Application, Attempt, Delivery, Endpoint, EventType, InboundRequest, Message, Source,
};

use crate::console::{AttemptRate, OpenBreaker};
use crate::postgres::rows as pg;
use crate::sqlite::rows as sq;
use crate::{IdempotentResponse, Result, TokenRecord};

/// A SQLite row mapper: the driver's error (a column that does not read), or the record's own
/// (a JSON column that does not decode, [`crate::StoreError::CorruptRecord`]).
pub(crate) type SqlMap<T> = fn(&rusqlite::Row<'_>) -> rusqlite::Result<Result<T>>;

/// A PostgreSQL row mapper.
pub(crate) type PgMap<T> = fn(&sqlx::postgres::PgRow) -> Result<T>;

/// A type read from rows, with the mapper of each backend.
pub trait Record: Sized + Send + 'static {
    const SQLITE: SqlMap<Self>;
    const POSTGRES: PgMap<Self>;
}

impl Record for Application {
    const SQLITE: SqlMap<Self> = |r| sq::app_row(r).map(Ok);
    const POSTGRES: PgMap<Self> = pg::app_row;
}

impl Record for EventType {
    const SQLITE: SqlMap<Self> = |r| sq::et_row(r).map(Ok);
    const POSTGRES: PgMap<Self> = pg::et_row;
}

impl Record for Endpoint {
    const SQLITE: SqlMap<Self> = |r| sq::ep_row(r).map(Ok);
    const POSTGRES: PgMap<Self> = pg::ep_row;
}

impl Record for Source {
    const SQLITE: SqlMap<Self> = sq::src_row;
    const POSTGRES: PgMap<Self> = pg::src_row;
}

impl Record for InboundRequest {
    const SQLITE: SqlMap<Self> = |r| sq::inreq_row(r).map(Ok);
    const POSTGRES: PgMap<Self> = pg::inreq_row;
}

impl Record for Message {
    const SQLITE: SqlMap<Self> = |r| sq::msg_row_at(r, 0).map(Ok);
    const POSTGRES: PgMap<Self> = pg::msg_row;
}

impl Record for Delivery {
    const SQLITE: SqlMap<Self> = |r| sq::dlv_row(r).map(Ok);
    const POSTGRES: PgMap<Self> = pg::dlv_row;
}

/// A delivery with its message (`DLV_COLS, MSG_COLS`).
impl Record for (Delivery, Message) {
    const SQLITE: SqlMap<Self> = |r| Ok(Ok((sq::dlv_row(r)?, sq::msg_row_at(r, 9)?)));
    const POSTGRES: PgMap<Self> = |r| Ok((pg::dlv_row(r)?, pg::msg_row(r)?));
}

impl Record for Attempt {
    const SQLITE: SqlMap<Self> = |r| sq::att_row(r).map(Ok);
    const POSTGRES: PgMap<Self> = pg::att_row;
}

impl Record for TokenRecord {
    const SQLITE: SqlMap<Self> = |r| sq::token_row(r).map(Ok);
    const POSTGRES: PgMap<Self> = pg::token_row;
}

/// `status, body`.
impl Record for IdempotentResponse {
    const SQLITE: SqlMap<Self> = |r| sq::idempotent_row(r).map(Ok);
    const POSTGRES: PgMap<Self> = pg::idempotent_row;
}

/// The row of [`crate::console::rate_sql`].
impl Record for AttemptRate {
    const SQLITE: SqlMap<Self> = |r| Ok(Ok(AttemptRate::of(r.get(0)?, r.get(1)?, r.get(2)?)));
    const POSTGRES: PgMap<Self> =
        |r| Ok(AttemptRate::of(pg::at(r, 0)?, pg::at(r, 1)?, pg::at(r, 2)?));
}

/// `app_id, id, url, breaker, breaker_until` of an endpoint.
impl Record for OpenBreaker {
    const SQLITE: SqlMap<Self> = |r| sq::breaker_row(r).map(Ok);
    const POSTGRES: PgMap<Self> = pg::breaker_row;
}

/// Two integers, e.g. a status and a count.
impl Record for (i64, i64) {
    const SQLITE: SqlMap<Self> = |r| Ok(Ok((r.get(0)?, r.get(1)?)));
    const POSTGRES: PgMap<Self> = |r| Ok((pg::at(r, 0)?, pg::at(r, 1)?));
}
