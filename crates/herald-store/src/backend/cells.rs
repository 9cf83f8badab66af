//! [`Cells`]: reading the columns of one result row by name, the same way on both backends, so
//! that each type's row mapper (`rows.rs`) is written once. Each backend implements it next to
//! its driver (`sqlite/rows.rs` over `rusqlite::Row`, `postgres/rows.rs` over `PgRow`), keeping
//! the conversions and errors it always had: a cell that does not read as asked is the driver's
//! error, which each backend's callers map as before.
//!
//! This module names no driver, runs nothing and decodes no domain type: it only says which
//! kinds of cell a mapper may ask for.

use serde::de::DeserializeOwned;

use crate::Result;

/// The cells of one row, found by column name (see the module documentation). Where the two
/// drivers convert a kind differently (an unsigned number PostgreSQL keeps in a `BIGINT`), each
/// method says how; a mapper never converts on its own what a backend converts its own way.
pub trait Cells {
    /// The driver's error: a missing column, a cell of another type, a JSON cell that does not
    /// decode.
    type Error;

    /// A text cell.
    fn text(&self, col: &str) -> std::result::Result<String, Self::Error>;

    /// A text cell that may be `NULL`.
    fn text_opt(&self, col: &str) -> std::result::Result<Option<String>, Self::Error>;

    /// `f` of a text cell, borrowed rather than copied (for hot paths that only look at it).
    fn with_text<R>(
        &self,
        col: &str,
        f: impl FnOnce(&str) -> R,
    ) -> std::result::Result<R, Self::Error>;

    /// Whether a text cell is `value`. SQLite treats a cell that is not text as not `value`
    /// (its columns take any type); PostgreSQL's typed column must read as text.
    fn text_is(&self, col: &str, value: &str) -> std::result::Result<bool, Self::Error>;

    /// An integer cell.
    fn int(&self, col: &str) -> std::result::Result<i64, Self::Error>;

    /// An integer cell that may be `NULL`.
    fn int_opt(&self, col: &str) -> std::result::Result<Option<i64>, Self::Error>;

    /// The `i`th cell, an integer: for statements whose columns have no names worth giving.
    fn int_at(&self, i: usize) -> std::result::Result<i64, Self::Error>;

    /// The `i`th cell, an integer that may be `NULL`.
    fn int_opt_at(&self, i: usize) -> std::result::Result<Option<i64>, Self::Error>;

    /// A boolean cell (SQLite keeps it as an integer).
    fn flag(&self, col: &str) -> std::result::Result<bool, Self::Error>;

    /// A floating-point cell.
    fn real(&self, col: &str) -> std::result::Result<f64, Self::Error>;

    /// A binary cell.
    fn bytes(&self, col: &str) -> std::result::Result<Vec<u8>, Self::Error>;

    /// A count kept as an integer: a value out of `u32`'s range is the driver's error on
    /// SQLite, clamped into it on PostgreSQL (a `BIGINT`).
    fn count(&self, col: &str) -> std::result::Result<u32, Self::Error>;

    /// [`Cells::count`] of a cell that may be `NULL`.
    fn count_opt(&self, col: &str) -> std::result::Result<Option<u32>, Self::Error>;

    /// A `u16` kept as an integer: out of range is the driver's error on SQLite, clamped on
    /// PostgreSQL.
    fn u16(&self, col: &str) -> std::result::Result<u16, Self::Error>;

    /// A `u16` kept as an integer: out of range is the driver's error on SQLite, cut to its
    /// low 16 bits on PostgreSQL (as the idempotency cache has always read its status).
    fn u16_wrapping(&self, col: &str) -> std::result::Result<u16, Self::Error>;

    /// A JSON text cell, decoded.
    fn json<T: DeserializeOwned>(&self, col: &str) -> std::result::Result<T, Self::Error>;

    /// A JSON text cell that may be `NULL`, decoded.
    fn json_opt<T: DeserializeOwned>(
        &self,
        col: &str,
    ) -> std::result::Result<Option<T>, Self::Error>;

    /// Joins a record's own verdict on part of the row (`record`, e.g. a configuration that
    /// does not decode: [`crate::StoreError::CorruptRecord`]) with the reads of the rest
    /// (`rest`). SQLite reads the rest first and reports its driver error before the record's;
    /// PostgreSQL reports the record's first and reads the rest only when it holds.
    #[allow(clippy::type_complexity)]
    fn join<A, B>(
        &self,
        record: Result<A>,
        rest: impl FnOnce() -> std::result::Result<B, Self::Error>,
    ) -> std::result::Result<Result<(A, B)>, Self::Error>;
}
