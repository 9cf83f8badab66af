//! Row mapping on SQLite: [`SqlCells`], the [`Cells`] the shared mappers
//! (`crate::backend::rows`) read a `rusqlite::Row` through. Queries live in the role files;
//! this module must not run any.

use std::cell::Cell;

use rusqlite::types::FromSql;
use serde::de::DeserializeOwned;

use super::*;
pub(crate) use crate::backend::rows::*;
use crate::backend::Cells;

pub(super) use crate::common::{json, json_opt};

pub(crate) fn parse<T: DeserializeOwned>(s: &str) -> rusqlite::Result<T> {
    serde_json::from_str(s).map_err(|e| {
        rusqlite::Error::FromSqlConversionFailure(0, rusqlite::types::Type::Text, Box::new(e))
    })
}

pub(crate) fn parse_opt<T: DeserializeOwned>(s: Option<String>) -> rusqlite::Result<Option<T>> {
    s.map(|s| parse(&s)).transpose()
}

/// A row read by column name ([`Cells`]) with rusqlite's conversions and errors; a JSON cell
/// that does not decode is a conversion failure of the driver ([`parse`]). The mappers read
/// the columns in the order the statement lists them, so each name is first looked for just
/// after the last one found: one comparison a column rather than a search of the list.
pub(crate) struct SqlCells<'a> {
    row: &'a Row<'a>,
    next: Cell<usize>,
}

impl<'a> SqlCells<'a> {
    pub(crate) fn new(row: &'a Row<'a>) -> Self {
        Self {
            row,
            next: Cell::new(0),
        }
    }

    /// The index of the column `col`, as `Row::get` by name would find it.
    fn idx(&self, col: &str) -> rusqlite::Result<usize> {
        let stmt = self.row.as_ref();
        let next = self.next.get();
        let i = match stmt.column_name(next) {
            Ok(name) if name.eq_ignore_ascii_case(col) => next,
            _ => stmt.column_index(col)?,
        };
        // A name listed twice would make the guess differ from the search.
        debug_assert_eq!(
            stmt.column_index(col).ok(),
            Some(i),
            "column {col} listed twice"
        );
        self.next.set(i + 1);
        Ok(i)
    }

    fn get<T: FromSql>(&self, col: &str) -> rusqlite::Result<T> {
        self.row.get(self.idx(col)?)
    }
}

impl Cells for SqlCells<'_> {
    type Error = rusqlite::Error;

    fn text(&self, col: &str) -> rusqlite::Result<String> {
        self.get(col)
    }

    fn text_opt(&self, col: &str) -> rusqlite::Result<Option<String>> {
        self.get(col)
    }

    fn with_text<R>(&self, col: &str, f: impl FnOnce(&str) -> R) -> rusqlite::Result<R> {
        Ok(f(self.row.get_ref(self.idx(col)?)?.as_str()?))
    }

    fn text_is(&self, col: &str, value: &str) -> rusqlite::Result<bool> {
        let cell = self.row.get_ref(self.idx(col)?)?;
        Ok(cell.as_str().is_ok_and(|s| s == value))
    }

    fn int(&self, col: &str) -> rusqlite::Result<i64> {
        self.get(col)
    }

    fn int_opt(&self, col: &str) -> rusqlite::Result<Option<i64>> {
        self.get(col)
    }

    fn int_at(&self, i: usize) -> rusqlite::Result<i64> {
        self.row.get(i)
    }

    fn int_opt_at(&self, i: usize) -> rusqlite::Result<Option<i64>> {
        self.row.get(i)
    }

    fn flag(&self, col: &str) -> rusqlite::Result<bool> {
        self.get(col)
    }

    fn real(&self, col: &str) -> rusqlite::Result<f64> {
        self.get(col)
    }

    fn bytes(&self, col: &str) -> rusqlite::Result<Vec<u8>> {
        self.get(col)
    }

    fn count(&self, col: &str) -> rusqlite::Result<u32> {
        self.get(col)
    }

    fn count_opt(&self, col: &str) -> rusqlite::Result<Option<u32>> {
        self.get(col)
    }

    fn u16(&self, col: &str) -> rusqlite::Result<u16> {
        self.get(col)
    }

    fn u16_wrapping(&self, col: &str) -> rusqlite::Result<u16> {
        self.get(col)
    }

    fn json<T: DeserializeOwned>(&self, col: &str) -> rusqlite::Result<T> {
        parse(&self.get::<String>(col)?)
    }

    fn json_opt<T: DeserializeOwned>(&self, col: &str) -> rusqlite::Result<Option<T>> {
        parse_opt(self.get(col)?)
    }

    fn join<A, B>(
        &self,
        record: Result<A>,
        rest: impl FnOnce() -> rusqlite::Result<B>,
    ) -> rusqlite::Result<Result<(A, B)>> {
        let rest = rest()?;
        Ok(record.map(|a| (a, rest)))
    }
}

/// The [`Record`] of row `r`.
pub(crate) fn record<T: Record>(r: &Row) -> rusqlite::Result<Result<T>> {
    T::read(&SqlCells::new(r))
}

/// The value of row `r` as `map` reads it.
pub(crate) fn cells<'a, T>(
    r: &'a Row<'a>,
    map: impl FnOnce(&SqlCells<'a>) -> rusqlite::Result<T>,
) -> rusqlite::Result<T> {
    map(&SqlCells::new(r))
}
