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

/// The records whose mapper has the same name in both backends' `rows.rs`, and on SQLite can
/// only fail in the driver.
macro_rules! records {
    ($($t:ty: $f:ident),* $(,)?) => {$(
        impl Record for $t {
            const SQLITE: SqlMap<Self> = |r| sq::$f(r).map(Ok);
            const POSTGRES: PgMap<Self> = pg::$f;
        }
    )*};
}

records! {
    Application: app_row, EventType: et_row, Endpoint: ep_row, Message: msg_row,
    Delivery: dlv_row, Attempt: att_row, InboundRequest: inreq_row, TokenRecord: token_row,
    IdempotentResponse: idempotent_row, OpenBreaker: breaker_row,
}

/// Its JSON columns decode after the row, so that a corrupt one is `CorruptRecord`.
impl Record for Source {
    const SQLITE: SqlMap<Self> = sq::src_row;
    const POSTGRES: PgMap<Self> = pg::src_row;
}

/// A delivery with its message (`DLV_COLS, MSG_COLS`).
impl Record for (Delivery, Message) {
    const SQLITE: SqlMap<Self> = |r| Ok(Ok((sq::dlv_row(r)?, sq::msg_row_at(r, 9)?)));
    const POSTGRES: PgMap<Self> = |r| Ok((pg::dlv_row(r)?, pg::msg_row(r)?));
}

/// The row of [`crate::console::rate_sql`].
impl Record for AttemptRate {
    const SQLITE: SqlMap<Self> = |r| Ok(Ok(AttemptRate::of(r.get(0)?, r.get(1)?, r.get(2)?)));
    const POSTGRES: PgMap<Self> =
        |r| Ok(AttemptRate::of(pg::at(r, 0)?, pg::at(r, 1)?, pg::at(r, 2)?));
}

/// Two integers, e.g. a status and a count.
impl Record for (i64, i64) {
    const SQLITE: SqlMap<Self> = |r| Ok(Ok((r.get(0)?, r.get(1)?)));
    const POSTGRES: PgMap<Self> = |r| Ok((pg::at(r, 0)?, pg::at(r, 1)?));
}
