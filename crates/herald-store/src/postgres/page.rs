//! Keyset pagination: the WHERE/ORDER BY tail of a list query and the page it returns. Must not know which table it pages.

use super::*;

/// A value bound into a dynamic query.
pub(super) enum Arg {
    Text(String),
    Int(i64),
}

/// Runs `select` + `WHERE conds` + keyset pagination of `q`. Each `?` in `conds` is replaced by
/// the next `args` value.
pub(super) async fn query_page<T>(
    pool: &PgPool,
    select: &str,
    conds: Vec<String>,
    args: Vec<Arg>,
    q: &ListQuery,
    (id_col, ts_col): (&str, &str),
    map: impl Fn(&PgRow) -> Result<T>,
) -> Result<Page<T>> {
    let desc = q.descending ^ q.backwards;
    let mut conds = conds;
    let mut args = args;
    if let Some(it) = &q.iterator {
        conds.push(format!("{id_col} {} ?", if desc { "<" } else { ">" }));
        args.push(Arg::Text(it.clone()));
    }
    if let Some(b) = q.before {
        conds.push(format!("{ts_col} < ?"));
        args.push(Arg::Int(b));
    }
    if let Some(a) = q.after {
        conds.push(format!("{ts_col} > ?"));
        args.push(Arg::Int(a));
    }
    let mut qb: QueryBuilder<Postgres> = QueryBuilder::new(select);
    let mut args = args.into_iter();
    for (i, cond) in conds.iter().enumerate() {
        qb.push(if i == 0 { " WHERE " } else { " AND " });
        let mut parts = cond.split('?').peekable();
        while let Some(part) = parts.next() {
            qb.push(part);
            if parts.peek().is_some() {
                match args.next() {
                    Some(Arg::Text(s)) => qb.push_bind(s),
                    Some(Arg::Int(v)) => qb.push_bind(v),
                    None => return Err(StoreError::Corrupt("query argument missing".into())),
                };
            }
        }
    }
    qb.push(format!(
        " ORDER BY {id_col} {} LIMIT {}",
        if desc { "DESC" } else { "ASC" },
        q.limit + 1
    ));
    let rows = qb.build().fetch_all(pool).await.map_err(map_pg)?;
    let mut items = rows.iter().map(map).collect::<Result<Vec<_>>>()?;
    let has_more = items.len() > q.limit;
    items.truncate(q.limit);
    if q.backwards {
        items.reverse();
    }
    Ok(Page { items, has_more })
}
