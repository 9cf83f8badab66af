//! [`Record`]: how a type the generic role methods read is made from a row — one mapper of
//! `rows.rs` for both backends, over [`Cells`]. Each backend turns its row into `Cells` and
//! maps the driver's error its own way. No SQL here.

use herald_core::model::{
    Application, Attempt, Delivery, Endpoint, EventType, InboundRequest, Message, Source,
};

use super::rows::*;
use super::Cells;
use crate::console::{AttemptRate, OpenBreaker};
use crate::{IdempotentResponse, Result, TokenRecord};

/// A type read from rows. The outer error is the driver's (a column that does not read, a JSON
/// column that does not decode); the inner one the record's own verdict on what it read
/// ([`crate::StoreError::CorruptRecord`]).
pub trait Record: Sized + Send + 'static {
    fn read<C: Cells>(r: &C) -> Read<Result<Self>, C>;
}

/// The records whose mapper can only fail in the driver.
macro_rules! records {
    ($($t:ty: $f:ident),* $(,)?) => {$(
        impl Record for $t {
            fn read<C: Cells>(r: &C) -> Read<Result<Self>, C> {
                $f(r).map(Ok)
            }
        }
    )*};
}

records! {
    Application: app_row, EventType: et_row, Endpoint: ep_row, Message: msg_row,
    Delivery: dlv_row, Attempt: att_row, InboundRequest: inreq_row, TokenRecord: token_row,
    IdempotentResponse: idempotent_row, OpenBreaker: breaker_row,
}

/// Its verification and options decode after the row, so that a corrupt one is
/// `CorruptRecord`.
impl Record for Source {
    fn read<C: Cells>(r: &C) -> Read<Result<Self>, C> {
        src_row(r)
    }
}

/// A delivery with its message (`DLV_COLS, MSG_COLS`).
impl Record for (Delivery, Message) {
    fn read<C: Cells>(r: &C) -> Read<Result<Self>, C> {
        Ok(Ok((dlv_row(r)?, msg_row(r)?)))
    }
}

/// The row of [`crate::console::rate_sql`].
impl Record for AttemptRate {
    fn read<C: Cells>(r: &C) -> Read<Result<Self>, C> {
        Ok(Ok(AttemptRate::of(
            r.int_at(0)?,
            r.int_at(1)?,
            r.int_opt_at(2)?,
        )))
    }
}

/// Two integers, e.g. a status and a count.
impl Record for (i64, i64) {
    fn read<C: Cells>(r: &C) -> Read<Result<Self>, C> {
        Ok(Ok((r.int_at(0)?, r.int_at(1)?)))
    }
}
