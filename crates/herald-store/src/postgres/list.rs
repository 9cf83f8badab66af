//! PostgreSQL's [`Backend`] primitives: statements bound with neutral arguments, one
//! transaction per write, a [`Listing`] whose every `?` becomes the next bound parameter; and
//! the memory of what publishing reads ([`Seen`]), served while the database is unreachable.
//! The paging itself is [`crate::page`]'s; this module knows no table.

use super::*;

/// `q` with `a` bound as its next parameter.
pub(super) fn bind_arg(q: PgQuery<'_>, a: Arg) -> PgQuery<'_> {
    match a {
        Arg::Text(s) => q.bind(s),
        Arg::Int(v) => q.bind(v),
        Arg::Bool(b) => q.bind(b),
        Arg::Bytes(b) => q.bind(b),
        Arg::OptText(s) => q.bind(s),
        Arg::OptInt(v) => q.bind(v),
    }
}

/// `sql` with `args` bound in order.
pub(super) fn bound(sql: &str, args: Vec<Arg>) -> PgQuery<'_> {
    args.into_iter().fold(sqlx::query(sql), bind_arg)
}

/// Runs one step of a write on `on`; how many rows it changed.
async fn step<'c>(s: Step, on: impl sqlx::PgExecutor<'c> + 'c) -> Result<u64> {
    let n = bound(&s.sql, s.args).affected(on).await?;
    match n {
        0 if s.must_change => Err(StoreError::NotFound),
        n => Ok(n),
    }
}

#[async_trait]
impl Backend for PostgresStore {
    const CHANNEL: &'static str = "m.channels::jsonb @> jsonb_build_array(?::text)";
    const BY_STATUS: &'static str = "deliveries d JOIN messages m ON m.id = d.msg_id";

    fn key(&self) -> Option<&SecretBox> {
        self.secrets.as_deref()
    }

    async fn apply(&self, mut steps: Vec<Step>) -> Result<u64> {
        // One statement is its own transaction.
        if steps.len() == 1 {
            let s = steps.remove(0);
            return step(s, &self.pool).await;
        }
        let mut tx = self.begin().await?;
        let mut n = 0;
        for s in steps {
            n += step(s, &mut *tx).await?;
        }
        tx.commit().await.map_err(map_pg)?;
        Ok(n)
    }

    async fn fetch_opt<T: Record>(&self, sql: String, args: Vec<Arg>) -> Result<Option<T>> {
        bound(&sql, args).row(&self.pool, record::<T>).await
    }

    async fn fetch_all<T: Record>(&self, sql: String, args: Vec<Arg>) -> Result<Vec<T>> {
        bound(&sql, args).rows(&self.pool, record::<T>).await
    }

    async fn fetch_page<T: Record>(&self, l: Listing, q: &ListQuery) -> Result<Page<T>> {
        query_page(&self.pool, l, q, record::<T>).await
    }
}

#[async_trait]
impl Recall for PostgresStore {
    async fn recall_app(
        &self,
        key: &str,
        read: Reading<'_, Application>,
    ) -> Result<Option<Application>> {
        let note = |app: &Option<Application>| {
            if let Some(a) = app {
                remember(&self.seen.apps, key.to_string(), a.clone());
            }
        };
        let seen = || self.seen.apps.lock().get(key).cloned().map(Some);
        self.read_or_seen(read, note, seen).await
    }

    async fn recall_event_type(
        &self,
        name: &str,
        read: Reading<'_, EventType>,
    ) -> Result<Option<EventType>> {
        let note =
            |et: &Option<EventType>| remember(&self.seen.event_types, name.to_string(), et.clone());
        let seen = || self.seen.event_types.lock().get(name).cloned();
        self.read_or_seen(read, note, seen).await
    }

    async fn recall_token(
        &self,
        hash: [u8; 32],
        read: Reading<'_, TokenRecord>,
    ) -> Result<Option<TokenRecord>> {
        let note = |t: &Option<TokenRecord>| match t {
            Some(t) => remember(&self.seen.tokens, hash, t.clone()),
            // Revoked (or never existed): forget it at once.
            None => {
                self.seen.tokens.lock().remove(&hash);
            }
        };
        let seen = || self.seen.tokens.lock().get(&hash).cloned().map(Some);
        self.read_or_seen(read, note, seen).await
    }

    async fn recall_source(&self, id: &str, read: Reading<'_, Source>) -> Result<Option<Source>> {
        let note = |s: &Option<Source>| match s {
            Some(s) => remember(&self.seen.sources, id.to_string(), s.clone()),
            // Deleted (or never existed): forget it at once.
            None => {
                self.seen.sources.lock().remove(id);
            }
        };
        let seen = || self.seen.sources.lock().get(id).cloned().map(Some);
        self.read_or_seen(read, note, seen).await
    }

    fn forget_token(&self, id: &TokenId) {
        self.seen.tokens.lock().retain(|_, t| t.id != *id);
    }

    fn forget_source(&self, id: &SourceId) {
        self.seen.sources.lock().remove(&id.0);
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
                    Some(Arg::Bool(b)) => qb.push_bind(b),
                    Some(Arg::Bytes(b)) => qb.push_bind(b),
                    Some(Arg::OptText(s)) => qb.push_bind(s),
                    Some(Arg::OptInt(v)) => qb.push_bind(v),
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
