//! SQLite's [`Backend`] primitives: statements written with `$n` marks run as `?n`, neutral
//! arguments bound as SQLite values, a [`Listing`]'s `?` conditions as they are. Writes go
//! through the group-commit writer, point reads run on the calling task. The paging itself is
//! [`crate::page`]'s; this module knows no table.

use super::*;

impl From<Arg> for SqlValue {
    fn from(a: Arg) -> Self {
        match a {
            Arg::Text(s) => SqlValue::Text(s),
            Arg::Int(v) => SqlValue::Integer(v),
            Arg::Bool(b) => SqlValue::Integer(i64::from(b)),
            Arg::Bytes(b) => SqlValue::Blob(b),
            Arg::OptText(s) => s.map_or(SqlValue::Null, SqlValue::Text),
            Arg::OptInt(v) => v.map_or(SqlValue::Null, SqlValue::Integer),
        }
    }
}

/// `sql` with its `$n` marks written as SQLite's `?n`.
pub(super) fn marks(sql: &str) -> String {
    let mut out = String::with_capacity(sql.len());
    let mut chars = sql.chars().peekable();
    while let Some(c) = chars.next() {
        let numbered = c == '$' && chars.peek().is_some_and(char::is_ascii_digit);
        out.push(if numbered { '?' } else { c });
    }
    out
}

/// `args` as SQLite parameters.
pub(super) fn values(args: Vec<Arg>) -> rusqlite::ParamsFromIter<Vec<SqlValue>> {
    rusqlite::params_from_iter(args.into_iter().map(SqlValue::from).collect())
}

/// Every read goes to the file: there is no outage to bridge.
impl Recall for SqliteStore {}

#[async_trait]
impl Backend for SqliteStore {
    const CHANNEL: &'static str = "EXISTS (SELECT 1 FROM json_each(m.channels) WHERE value = ?)";
    // The planner would otherwise walk every delivery of the status across applications.
    const BY_STATUS: &'static str =
        "deliveries d INDEXED BY deliveries_app_status JOIN messages m ON m.id = d.msg_id";

    fn key(&self) -> Option<&SecretBox> {
        self.inner.secrets.as_ref()
    }

    async fn apply(&self, steps: Vec<Step>) -> Result<u64> {
        self.write(move |c| {
            let mut n = 0;
            for s in steps {
                let changed = exec(c, &marks(&s.sql), values(s.args))?;
                if s.must_change {
                    found(changed)?;
                }
                n += changed as u64;
            }
            Ok(n)
        })
        .await
    }

    async fn fetch_opt<T: Record>(&self, sql: String, args: Vec<Arg>) -> Result<Option<T>> {
        let sql = marks(&sql);
        self.read(move |c| row_opt(c, &sql, values(args), record::<T>)?.transpose())
            .await
    }

    async fn fetch_point<T: Record>(&self, sql: String, args: Vec<Arg>) -> Result<Option<T>> {
        let sql = marks(&sql);
        self.read_point(|c| row_opt(c, &sql, values(args), record::<T>)?.transpose())
    }

    async fn fetch_all<T: Record>(&self, sql: String, args: Vec<Arg>) -> Result<Vec<T>> {
        let sql = marks(&sql);
        self.read(move |c| {
            let mut stmt = c.prepare_cached(&sql).map_err(map_sql)?;
            let rows = stmt.query_map(values(args), record::<T>).map_err(map_sql)?;
            let rows = rows.collect::<rusqlite::Result<Vec<_>>>();
            rows.map_err(map_sql)?.into_iter().collect()
        })
        .await
    }

    async fn fetch_page<T: Record>(&self, l: Listing, q: &ListQuery) -> Result<Page<T>> {
        let q = q.clone();
        let page = self
            .read(move |c| query_page(c, l, &q, record::<T>))
            .await?;
        page.try_map(|r| r)
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
