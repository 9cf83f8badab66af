//! Row mapping on PostgreSQL: the [`Cells`] the shared mappers (`crate::backend::rows`) read
//! a `PgRow` through. Queries live in the role files; this module must not run any.

use serde::de::DeserializeOwned;

use super::*;
pub(crate) use crate::backend::rows::*;
use crate::backend::Cells;

pub(super) use crate::common::{json, json_opt};

pub(crate) fn parse<T: DeserializeOwned>(s: &str) -> Result<T> {
    serde_json::from_str(s).map_err(|e| StoreError::Corrupt(e.to_string()))
}

pub(crate) fn parse_opt<T: DeserializeOwned>(s: Option<String>) -> Result<Option<T>> {
    s.map(|s| parse(&s)).transpose()
}

pub(crate) fn get<'r, T: sqlx::Decode<'r, Postgres> + sqlx::Type<Postgres>>(
    r: &'r PgRow,
    col: &str,
) -> Result<T> {
    r.try_get(col).map_err(map_pg)
}

/// A statement with parameters, as the bind helpers take and return it.
pub(super) type PgQuery<'q> = sqlx::query::Query<'q, Postgres, sqlx::postgres::PgArguments>;

/// The `i`th column of `r` (for statements whose columns have no names worth giving).
pub(crate) fn at<'r, T: sqlx::Decode<'r, Postgres> + sqlx::Type<Postgres>>(
    r: &'r PgRow,
    i: usize,
) -> Result<T> {
    r.try_get(i).map_err(map_pg)
}

/// Clamps a `BIGINT` count into `u32`.
pub(super) fn u32_of(v: i64) -> u32 {
    v.clamp(0, u32::MAX as i64) as u32
}

/// A row read by column name with sqlx's conversions; errors are [`map_pg`]'s, and a JSON cell
/// that does not decode is [`StoreError::Corrupt`] ([`parse`]). PostgreSQL keeps unsigned
/// numbers in `BIGINT`s, clamped into range when read.
impl Cells for PgRow {
    type Error = StoreError;

    fn text(&self, col: &str) -> Result<String> {
        get(self, col)
    }

    fn text_opt(&self, col: &str) -> Result<Option<String>> {
        get(self, col)
    }

    fn with_text<R>(&self, col: &str, f: impl FnOnce(&str) -> R) -> Result<R> {
        get::<&str>(self, col).map(f)
    }

    fn text_is(&self, col: &str, value: &str) -> Result<bool> {
        Ok(get::<&str>(self, col)? == value)
    }

    fn int(&self, col: &str) -> Result<i64> {
        get(self, col)
    }

    fn int_opt(&self, col: &str) -> Result<Option<i64>> {
        get(self, col)
    }

    fn int_at(&self, i: usize) -> Result<i64> {
        at(self, i)
    }

    fn int_opt_at(&self, i: usize) -> Result<Option<i64>> {
        at(self, i)
    }

    fn flag(&self, col: &str) -> Result<bool> {
        get(self, col)
    }

    fn real(&self, col: &str) -> Result<f64> {
        get(self, col)
    }

    fn bytes(&self, col: &str) -> Result<Vec<u8>> {
        get(self, col)
    }

    fn count(&self, col: &str) -> Result<u32> {
        get(self, col).map(u32_of)
    }

    fn count_opt(&self, col: &str) -> Result<Option<u32>> {
        Ok(get::<Option<i64>>(self, col)?.map(u32_of))
    }

    fn u16(&self, col: &str) -> Result<u16> {
        Ok(get::<i64>(self, col)?.clamp(0, u16::MAX as i64) as u16)
    }

    fn u16_wrapping(&self, col: &str) -> Result<u16> {
        Ok(get::<i64>(self, col)? as u16)
    }

    fn json<T: DeserializeOwned>(&self, col: &str) -> Result<T> {
        parse(&get::<String>(self, col)?)
    }

    fn json_opt<T: DeserializeOwned>(&self, col: &str) -> Result<Option<T>> {
        parse_opt(get(self, col)?)
    }

    fn join<A, B>(
        &self,
        record: Result<A>,
        rest: impl FnOnce() -> Result<B>,
    ) -> Result<Result<(A, B)>> {
        let record = record?;
        Ok(Ok((record, rest()?)))
    }
}

/// The [`Record`] of row `r`.
pub(crate) fn record<T: Record>(r: &PgRow) -> Result<T> {
    T::read(r)?
}
