//! [`Run`]: running a bound statement with the error mapping, row counting and row mapping
//! every caller needs. Knows nothing of Herald's tables.
//!
//! The futures are boxed (`async_trait`): a plain `async fn` here trips the compiler's
//! higher-ranked `Send` check on `&PgPool` inside the store's own `async_trait` methods.

use async_trait::async_trait;
use sqlx::postgres::{PgArguments, PgRow};
use sqlx::{PgExecutor, Postgres};

use super::map_pg;
use crate::{Result, StoreError};

/// A statement ready to run.
#[async_trait]
pub(crate) trait Run: Sized {
    /// Runs it; how many rows it changed.
    async fn affected<'c>(self, on: impl PgExecutor<'c> + 'c) -> Result<u64>;

    /// Fetches at most one row and maps it with `f`.
    async fn row<'c, T: Send>(
        self,
        on: impl PgExecutor<'c> + 'c,
        f: impl for<'r> FnOnce(&'r PgRow) -> Result<T> + Send,
    ) -> Result<Option<T>>;

    /// Fetches every row and maps each with `f`.
    async fn rows<'c, T: Send>(
        self,
        on: impl PgExecutor<'c> + 'c,
        f: impl for<'r> FnMut(&'r PgRow) -> Result<T> + Send,
    ) -> Result<Vec<T>>;

    /// Runs it.
    async fn run<'c>(self, on: impl PgExecutor<'c> + 'c) -> Result<()> {
        self.affected(on).await.map(|_| ())
    }

    /// Runs a statement that must change a row: [`StoreError::NotFound`] when it changed none.
    async fn must_change<'c>(self, on: impl PgExecutor<'c> + 'c) -> Result<()> {
        match self.affected(on).await? {
            0 => Err(StoreError::NotFound),
            _ => Ok(()),
        }
    }
}

#[async_trait]
impl<'q> Run for sqlx::query::Query<'q, Postgres, PgArguments> {
    async fn affected<'c>(self, on: impl PgExecutor<'c> + 'c) -> Result<u64> {
        Ok(self.execute(on).await.map_err(map_pg)?.rows_affected())
    }

    async fn row<'c, T: Send>(
        self,
        on: impl PgExecutor<'c> + 'c,
        f: impl for<'r> FnOnce(&'r PgRow) -> Result<T> + Send,
    ) -> Result<Option<T>> {
        match self.fetch_optional(on).await.map_err(map_pg)? {
            Some(row) => f(&row).map(Some),
            None => Ok(None),
        }
    }

    async fn rows<'c, T: Send>(
        self,
        on: impl PgExecutor<'c> + 'c,
        f: impl for<'r> FnMut(&'r PgRow) -> Result<T> + Send,
    ) -> Result<Vec<T>> {
        let rows = self.fetch_all(on).await.map_err(map_pg)?;
        rows.iter().map(f).collect()
    }
}
