//! Keyset pagination: the WHERE/ORDER BY tail of a list query and the page it returns. Must not know which table it pages.

use super::*;

/// Appends keyset conditions for `q` and returns the ORDER BY / LIMIT tail.
pub(super) fn paginate(
    q: &ListQuery,
    id_col: &str,
    ts_col: &str,
    conds: &mut Vec<String>,
    args: &mut Vec<SqlValue>,
) -> String {
    let desc = q.descending ^ q.backwards;
    if let Some(it) = &q.iterator {
        conds.push(format!("{id_col} {} ?", if desc { "<" } else { ">" }));
        args.push(SqlValue::Text(it.clone()));
    }
    if let Some(b) = q.before {
        conds.push(format!("{ts_col} < ?"));
        args.push(SqlValue::Integer(b));
    }
    if let Some(a) = q.after {
        conds.push(format!("{ts_col} > ?"));
        args.push(SqlValue::Integer(a));
    }
    format!(
        " ORDER BY {id_col} {} LIMIT {}",
        if desc { "DESC" } else { "ASC" },
        q.limit + 1
    )
}

pub(super) fn where_sql(conds: &[String]) -> String {
    if conds.is_empty() {
        String::new()
    } else {
        format!(" WHERE {}", conds.join(" AND "))
    }
}

pub(super) fn finish_page<T>(q: &ListQuery, mut items: Vec<T>) -> Page<T> {
    let has_more = items.len() > q.limit;
    items.truncate(q.limit);
    if q.backwards {
        items.reverse();
    }
    Page { items, has_more }
}

pub(super) fn query_page<T, F>(
    conn: &Connection,
    select: &str,
    mut conds: Vec<String>,
    mut args: Vec<SqlValue>,
    q: &ListQuery,
    (id_col, ts_col): (&str, &str),
    map: F,
) -> Result<Page<T>>
where
    F: FnMut(&Row) -> rusqlite::Result<T>,
{
    let tail = paginate(q, id_col, ts_col, &mut conds, &mut args);
    let sql = format!("{select}{}{tail}", where_sql(&conds));
    let mut stmt = conn.prepare_cached(&sql).map_err(map_sql)?;
    let rows = stmt
        .query_map(rusqlite::params_from_iter(args), map)
        .map_err(map_sql)?
        .collect::<rusqlite::Result<Vec<T>>>()
        .map_err(|e| StoreError::Corrupt(e.to_string()))?;
    Ok(finish_page(q, rows))
}

pub(super) fn one<T>(r: rusqlite::Result<Option<T>>) -> Result<Option<T>> {
    r.map_err(map_sql)
}
