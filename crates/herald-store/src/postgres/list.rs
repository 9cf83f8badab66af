//! Runs a [`Listing`] on PostgreSQL: each `?` of its conditions becomes the next bound
//! parameter. The paging itself is [`crate::page`]'s.

use super::*;

/// `q` with `a` bound as its next parameter.
pub(super) fn bind_arg(q: PgQuery<'_>, a: Arg) -> PgQuery<'_> {
    match a {
        Arg::Text(s) => q.bind(s),
        Arg::Int(v) => q.bind(v),
    }
}

/// One page of `l` for `q`, each row mapped with `map`.
pub(super) async fn query_page<T>(
    pool: &PgPool,
    mut l: Listing,
    q: &ListQuery,
    map: impl Fn(&PgRow) -> Result<T>,
) -> Result<Page<T>> {
    let tail = l.paged(q);
    let mut qb: QueryBuilder<Postgres> = QueryBuilder::new(&l.select);
    let mut args = l.args.into_iter();
    for (i, cond) in l.conds.iter().enumerate() {
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
    qb.push(tail);
    let rows = qb.build().fetch_all(pool).await.map_err(map_pg)?;
    let items = rows.iter().map(map).collect::<Result<Vec<_>>>()?;
    Ok(finish_page(q, items))
}
