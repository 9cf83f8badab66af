//! Runs a [`Listing`] on SQLite: its `?` conditions as they are, its arguments as SQLite
//! values. The paging itself is [`crate::page`]'s.

use super::*;

impl From<Arg> for SqlValue {
    fn from(a: Arg) -> Self {
        match a {
            Arg::Text(s) => SqlValue::Text(s),
            Arg::Int(v) => SqlValue::Integer(v),
        }
    }
}

/// One page of `l` for `q`, each row mapped with `map`.
pub(super) fn query_page<T>(
    conn: &Connection,
    mut l: Listing,
    q: &ListQuery,
    map: impl FnMut(&Row) -> rusqlite::Result<T>,
) -> Result<Page<T>> {
    let tail = l.paged(q);
    let filter = match l.conds.is_empty() {
        true => String::new(),
        false => format!(" WHERE {}", l.conds.join(" AND ")),
    };
    let sql = format!("{}{filter}{tail}", l.select);
    let args = l.args.into_iter().map(SqlValue::from);
    let mut stmt = conn.prepare_cached(&sql).map_err(map_sql)?;
    let rows = stmt
        .query_map(rusqlite::params_from_iter(args), map)
        .map_err(map_sql)?
        .collect::<rusqlite::Result<Vec<T>>>()
        .map_err(|e| StoreError::Corrupt(e.to_string()))?;
    Ok(finish_page(q, rows))
}

impl SqliteStore {
    /// One page of the rows `select` reads of the application `app`.
    pub(super) async fn app_page<T: Send + 'static>(
        &self,
        select: String,
        app: &AppId,
        q: &ListQuery,
        row: fn(&Row) -> rusqlite::Result<T>,
    ) -> Result<Page<T>> {
        let (l, q) = (Listing::of_app(select, app), q.clone());
        self.read(move |c| query_page(c, l, &q, row)).await
    }
}
