//! The PostgreSQL backend, for several Herald nodes sharing one database.
//!
//! Every method is one transaction on a pooled connection; PostgreSQL's own commit is the
//! durability point (an API 2xx follows a committed transaction). Schema and behaviour mirror
//! the SQLite backend — the shared storage suite runs against both — with what a cluster adds:
//! claims lock the endpoint rows they take work from (`FOR UPDATE SKIP LOCKED`), so two nodes
//! never serve the same endpoint at once and its caps, bucket and breaker stay consistent;
//! migrations run under an advisory lock, so nodes starting together apply them once; and
//! publishes `NOTIFY` the workers of every node. A publish never locks an endpoint row: it
//! inserts wake rows that the next claim folds into the endpoints' queue positions
//! (`sched::fold_wakes`), so publishing does not wait behind claims and attempt records.
//! Attempt records are written in batches (`attempts.rs`).
//!
//! While the database is unreachable, publishes and inbound ingestions go to a local fsync'd
//! spool (`spool.rs`) and are written into the database in order when it returns — an
//! ingestion's dedup and ordering checks run then, in the same transaction as a live one; the
//! reads a publish or an ingestion needs (application, event type, API token, source) fall back
//! to the last values seen (a source as stored: its secrets stay sealed in memory).
//!
//! Lock order, to keep deadlocks away: an endpoint row before its deliveries, always; several
//! endpoint rows in ID order (or with `SKIP LOCKED`, which never waits); an inbound dedup key,
//! then the key's ordering row (`order.rs`). This
//! module must not keep a transaction open across anything but its own queries.
//!
//! Layout: the role methods both backends share are `crate::backend`'s; this backend supplies its
//! primitives (`list.rs`) and, one file per role, the methods it writes its own way (`apps.rs`,
//! `messages.rs`, `queue.rs`, `inbound.rs`, `ops.rs`, ...). Row mapping is `crate::backend::rows`',
//! read through this backend's `Cells` (`rows.rs`). What both backends decide alike lives in
//! `crate::common`, `crate::page` and `crate::schema`.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use sqlx::postgres::{PgConnectOptions, PgListener, PgPoolOptions, PgRow};
use sqlx::{PgConnection, PgPool, Postgres, QueryBuilder, Row};

use crate::internal::*;
use crate::schema::Migrations;

mod apps;
mod attempts;
mod inbound;
mod list;
mod messages;
mod ops;
mod order;
mod pull;
mod queue;
mod reconcile;
pub(crate) mod rows;
mod run;
mod sched;
mod spool;

use list::*;
use messages::*;
use rows::*;
pub(crate) use run::Run;

pub use spool::Spool;

/// Connections per node.
const POOL_SIZE: u32 = 16;
/// Channel that tells every node's workers new work is due.
const WAKE_CHANNEL: &str = "herald_due";
/// Advisory lock key serialising migrations across nodes ("herald" in ASCII).
const MIGRATION_LOCK: i64 = 0x6865_7261_6c64;

/// [`MIGRATIONS`] as they run: the shared parts spelled in this dialect.
static SCHEMA: Migrations = Migrations::new(MIGRATIONS, &crate::schema::POSTGRES);

/// The migrations in order, the shared parts of the schema named (`<<name>>`, see
/// [`crate::schema`]); [`SCHEMA`] is what runs.
const MIGRATIONS: &[&str] = &[
    r#"
CREATE TABLE apps (
    id TEXT COLLATE "C" PRIMARY KEY,
    uid TEXT UNIQUE,
    name TEXT NOT NULL,
    throttle_rate BIGINT,
    metadata TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL
);
CREATE TABLE endpoints (
    id TEXT COLLATE "C" PRIMARY KEY,
    app_id TEXT NOT NULL,
    uid TEXT,
    url TEXT NOT NULL,
    description TEXT NOT NULL,
    disabled BOOLEAN NOT NULL,
    event_types TEXT,
    channels TEXT,
    throttle_rate BIGINT,
    metadata TEXT NOT NULL,
    headers TEXT NOT NULL,
    retry_schedule TEXT,
    permanent_statuses TEXT NOT NULL,
    ordering TEXT NOT NULL,
    max_concurrency BIGINT,
    signature_scheme TEXT NOT NULL,
    secrets TEXT NOT NULL,
    paused_until BIGINT,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL,
    failing_since BIGINT,
    due_at BIGINT,
    breaker BIGINT NOT NULL DEFAULT 0,
    breaker_until BIGINT NOT NULL DEFAULT 0,
    breaker_cooldown BIGINT NOT NULL DEFAULT 0,
    consec_failures BIGINT NOT NULL DEFAULT 0,
    win_start BIGINT NOT NULL DEFAULT 0,
    win_total BIGINT NOT NULL DEFAULT 0,
    win_failed BIGINT NOT NULL DEFAULT 0,
    prev_total BIGINT NOT NULL DEFAULT 0,
    prev_failed BIGINT NOT NULL DEFAULT 0,
    tb_tokens DOUBLE PRECISION NOT NULL DEFAULT 1,
    tb_at BIGINT NOT NULL DEFAULT 0,
    UNIQUE (app_id, uid)
);
CREATE INDEX endpoints_app ON endpoints (app_id, id);
CREATE INDEX endpoints_failing ON endpoints (failing_since)
    WHERE failing_since IS NOT NULL AND NOT disabled;
CREATE INDEX endpoints_due ON endpoints (due_at) WHERE due_at IS NOT NULL;
CREATE TABLE event_types (
    name TEXT COLLATE "C" PRIMARY KEY,
    description TEXT NOT NULL,
    archived BOOLEAN NOT NULL,
    deprecated BOOLEAN NOT NULL,
    schemas TEXT,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL
);
CREATE TABLE messages (
    id TEXT COLLATE "C" PRIMARY KEY,
    app_id TEXT NOT NULL,
    event_id TEXT,
    event_type TEXT NOT NULL,
    payload TEXT,
    channels TEXT,
    created_at BIGINT NOT NULL,
    retention_ms BIGINT,
    ordering_key TEXT,
    UNIQUE (app_id, event_id)
);
CREATE INDEX messages_app ON messages (app_id, id);
CREATE INDEX messages_retention ON messages ((created_at + retention_ms))
    WHERE retention_ms IS NOT NULL AND payload IS NOT NULL;
CREATE TABLE deliveries (
    id BIGSERIAL PRIMARY KEY,
    msg_id TEXT COLLATE "C" NOT NULL,
    endpoint_id TEXT NOT NULL,
    app_id TEXT NOT NULL,
    status BIGINT NOT NULL,
    attempts BIGINT NOT NULL DEFAULT 0,
    failures BIGINT NOT NULL DEFAULT 0,
    manual BOOLEAN NOT NULL DEFAULT FALSE,
    next_at BIGINT,
    lease_owner TEXT,
    updated_at BIGINT NOT NULL,
    ordering_key TEXT,
    UNIQUE (msg_id, endpoint_id)
);
CREATE INDEX deliveries_due ON deliveries (next_at) WHERE status IN (1, 3);
CREATE INDEX deliveries_endpoint ON deliveries (endpoint_id, msg_id);
CREATE INDEX deliveries_queue ON deliveries (endpoint_id, status, next_at) WHERE status IN (1, 3);
CREATE INDEX deliveries_fifo ON deliveries (endpoint_id, ordering_key, id)
    WHERE ordering_key IS NOT NULL AND status IN (1, 3);
<<attempts>>
<<tokens>>
<<meta>>
"#,
    // Inbound: sources, their request log, dedup keys; headers forwarded with a message.
    "<<inbound>>",
    // Inbound ordering: the last accepted sequence per (source, key), and held events.
    "<<ordering>>",
    // Wake-ups: a publish records here that an endpoint has new work instead of moving the
    // endpoint's `due_at` itself, so it never waits for an endpoint row a claim or an attempt
    // record holds; the next claim folds these rows into `due_at` (`sched::fold_wakes`).
    r#"
CREATE TABLE endpoint_wakes (
    id BIGSERIAL PRIMARY KEY,
    endpoint_id TEXT COLLATE "C" NOT NULL,
    at BIGINT NOT NULL
);
<<drop_due>>
"#,
    // Per-endpoint options (routing, transformation, transport, batching): one JSON document.
    "<<options>>",
    // Polling endpoints (`url` `poll:`): never due, so no claim ever visits them (every write
    // of `due_at` goes through this trigger, whichever path makes it); their held deliveries
    // read in publish order by `deliveries_pull`; the tokens that may only poll one endpoint.
    r#"
CREATE FUNCTION herald_poll_never_due() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF NEW.url = 'poll:' THEN
        NEW.due_at := NULL;
    END IF;
    RETURN NEW;
END
$$;
CREATE TRIGGER endpoints_poll_never_due BEFORE INSERT OR UPDATE OF due_at ON endpoints
    FOR EACH ROW EXECUTE FUNCTION herald_poll_never_due();
<<poll>>
"#,
    // The console's message filter by delivery status: an application's deliveries in one
    // status, in message order (`ConsoleStore::list_messages_by_status`).
    "<<app_status>>",
    // Reconciliation sources: per polling source, its schedule, resume cursor, last outcome
    // and the lease of the node running it.
    "<<source_poll>>",
];

/// SQLSTATE classes that mean "not now" rather than "never": connection problems (08),
/// resources (53), shutdown or cancel (57), system errors (58), serialization failures and
/// deadlocks (40), lock timeouts (55P03), internal errors (XX). The outage spool takes a write
/// that failed with one of these; any other refusal is [`StoreError::Rejected`].
fn transient(code: &str) -> bool {
    matches!(code.get(..2), Some("08" | "53" | "57" | "58" | "40" | "XX")) || code == "55P03"
}

pub(crate) fn map_pg(e: sqlx::Error) -> StoreError {
    if let sqlx::Error::Database(d) = &e {
        match d.code().as_deref() {
            Some("23505") => return StoreError::Conflict(d.message().to_string()),
            Some(code) if !transient(code) => {
                return StoreError::Rejected(format!("{} (SQLSTATE {code})", d.message()))
            }
            _ => {}
        }
    }
    if let sqlx::Error::ColumnDecode { .. } | sqlx::Error::Decode(_) = &e {
        return StoreError::Corrupt(e.to_string());
    }
    StoreError::Unavailable(e.to_string())
}

/// PostgreSQL-backed store. Cheap to clone.
#[derive(Clone)]
pub struct PostgresStore {
    pool: PgPool,
    secrets: Option<Arc<SecretBox>>,
    spool: Option<Spool>,
    seen: Arc<Seen>,
    /// Set when the database stopped answering, cleared when the spool drainer reaches it
    /// again: meanwhile the publish path uses remembered reads at once instead of waiting for
    /// a connection timeout on every request.
    down: Arc<std::sync::atomic::AtomicBool>,
    attempts: Arc<attempts::Recorder>,
    /// The spool entry the drain failed on while the database answered, and how many times.
    drain_tries: Arc<parking_lot::Mutex<(String, u32)>>,
    /// Outcome of the last publish or ingestion transaction (the writes health reports on).
    write_health: Arc<crate::WriteHealth>,
}

/// Tries of a spooled entry the database refuses while answering, before it is set aside.
const SET_ASIDE_AFTER: u32 = 5;
/// Most spooled publishes the drain writes in one transaction.
const DRAIN_GROUP: usize = 200;

/// The last values read of what a publish needs, served while the database is unreachable.
/// Bounded: each map is cleared when it reaches [`SEEN_MAX`] entries.
#[derive(Default)]
struct Seen {
    apps: parking_lot::Mutex<HashMap<String, Application>>,
    event_types: parking_lot::Mutex<HashMap<String, Option<EventType>>>,
    tokens: parking_lot::Mutex<HashMap<[u8; 32], TokenRecord>>,
    /// By source ID, as stored: secrets sealed with the encryption key (when one is set), so
    /// the plaintext exists only in the `Source` handed to a caller.
    sources: parking_lot::Mutex<HashMap<String, Source>>,
}

const SEEN_MAX: usize = 10_000;

fn remember<K: std::hash::Hash + Eq, V>(m: &parking_lot::Mutex<HashMap<K, V>>, k: K, v: V) {
    let mut m = m.lock();
    if m.len() >= SEEN_MAX {
        m.clear();
    }
    m.insert(k, v);
}

async fn migrate(pool: &PgPool) -> Result<()> {
    let mut tx = pool.begin().await.map_err(map_pg)?;
    sqlx::query("SELECT pg_advisory_xact_lock($1)")
        .bind(MIGRATION_LOCK)
        .execute(&mut *tx)
        .await
        .map_err(map_pg)?;
    sqlx::query("CREATE TABLE IF NOT EXISTS herald_schema (version BIGINT NOT NULL)")
        .execute(&mut *tx)
        .await
        .map_err(map_pg)?;
    let version: Option<i64> = sqlx::query_scalar("SELECT MAX(version) FROM herald_schema")
        .fetch_one(&mut *tx)
        .await
        .map_err(map_pg)?;
    let version = version.unwrap_or(0) as usize;
    if version > SCHEMA.get().len() {
        return Err(StoreError::Unavailable(format!(
            "the database schema (version {version}) is newer than this Herald (knows {}); upgrade Herald",
            SCHEMA.get().len()
        )));
    }
    for (i, sql) in SCHEMA.get().iter().enumerate().skip(version) {
        // A plain string runs as a simple query, so one migration may hold many statements.
        // (Not `sqlx::raw_sql`: its future fails the higher-ranked `Send` check callers need.)
        sqlx::Executor::execute(&mut *tx, sql.as_str())
            .await
            .map_err(map_pg)?;
        sqlx::query("INSERT INTO herald_schema (version) VALUES ($1)")
            .bind((i + 1) as i64)
            .execute(&mut *tx)
            .await
            .map_err(map_pg)?;
    }
    tx.commit().await.map_err(map_pg)
}

impl PostgresStore {
    /// Connects, applies migrations (serialised across nodes) and checks the encryption key
    /// when one is given.
    pub async fn connect(url: &str, key: Option<SecretBox>) -> Result<Self> {
        let opts: PgConnectOptions = url
            .parse()
            .map_err(|e| StoreError::Unavailable(format!("database_url: {e}")))?;
        let pool = PgPoolOptions::new()
            .max_connections(POOL_SIZE)
            .acquire_timeout(Duration::from_secs(5))
            .connect_with(opts)
            .await
            .map_err(map_pg)?;
        migrate(&pool).await?;
        if let Some(k) = &key {
            let check: Option<String> =
                sqlx::query_scalar("SELECT value FROM meta WHERE key = 'key_check'")
                    .fetch_optional(&pool)
                    .await
                    .map_err(map_pg)?;
            match check {
                Some(c) => common::verify_key(k, &c)?,
                None => {
                    sqlx::query(
                        "INSERT INTO meta (key, value) VALUES ('key_check', $1) ON CONFLICT (key) DO NOTHING",
                    )
                    .bind(common::key_check(k))
                    .execute(&pool)
                    .await
                    .map_err(map_pg)?;
                    // Another node may have won the race with another key: check what stands.
                    let c: String =
                        sqlx::query_scalar("SELECT value FROM meta WHERE key = 'key_check'")
                            .fetch_one(&pool)
                            .await
                            .map_err(map_pg)?;
                    common::verify_key(k, &c)?;
                }
            }
        }
        Ok(Self {
            attempts: Arc::new(attempts::Recorder::start(pool.clone())),
            drain_tries: Arc::default(),
            pool,
            secrets: key.map(Arc::new),
            spool: None,
            seen: Arc::default(),
            down: Arc::default(),
            write_health: Arc::default(),
        })
    }

    /// Accepts publishes into `spool` while the database is unreachable, and starts the task
    /// that writes them into the database once it answers again.
    pub fn with_spool(mut self, spool: Spool) -> Self {
        self.spool = Some(spool);
        let this = self.clone();
        tokio::spawn(async move { this.drain_spool_forever().await });
        self
    }

    async fn drain_spool_forever(&self) {
        loop {
            tokio::time::sleep(Duration::from_millis(250)).await;
            if let Err(e) = self.drain_spool().await {
                tracing::debug!(error = %e, "spool not drained yet");
            }
        }
    }

    /// Writes spooled publishes and ingestions into the database, oldest first. Stops at the
    /// first database error (the batch is retried later; entries already written are skipped
    /// by their message or request ID).
    async fn drain_spool(&self) -> Result<()> {
        let Some(spool) = &self.spool else {
            return Ok(());
        };
        if self.is_down() {
            self.ping().await?;
            self.down.store(false, std::sync::atomic::Ordering::Relaxed);
            tracing::info!("the database answers again");
        }
        loop {
            let sp = spool.clone();
            let batch = tokio::task::spawn_blocking(move || sp.next_batch())
                .await
                .map_err(|e| StoreError::Unavailable(e.to_string()))??;
            let Some((path, entries)) = batch else {
                return Ok(());
            };
            let n = entries.len();
            let mut entries = entries.into_iter().peekable();
            while let Some(e) = entries.next() {
                if !e.is_publish() {
                    self.drain_one(spool, e).await?;
                    continue;
                }
                // Consecutive publishes go in one transaction (the drain would otherwise be
                // far slower than the spool fills); if that fails, one by one.
                let mut group = vec![e];
                while group.len() < DRAIN_GROUP && entries.peek().is_some_and(|n| n.is_publish()) {
                    group.extend(entries.next());
                }
                if group.len() > 1 && self.publish_group(&group).await.is_ok() {
                    continue;
                }
                for e in group {
                    self.drain_one(spool, e).await?;
                }
            }
            spool.finish_batch(&path)?;
            tracing::info!(
                entries = n,
                "spooled publishes and ingestions written to the database after an outage"
            );
        }
    }

    /// Writes spooled publishes into the database in one transaction (all or none).
    async fn publish_group(&self, group: &[spool::Entry]) -> Result<()> {
        let mut tx = self.begin().await?;
        for e in group {
            match e.clone().into_work()? {
                spool::Work::Publish(msg, only) => {
                    publish_tx(&mut tx, msg, only).await?;
                }
                spool::Work::Ingest(..) => {
                    return Err(StoreError::Corrupt(
                        "an ingestion in a publish group".into(),
                    ))
                }
            }
        }
        tx.commit().await.map_err(map_pg)
    }

    /// Writes one spooled entry into the database; an entry the database keeps refusing while
    /// it answers is set aside after [`SET_ASIDE_AFTER`] tries. An error means: stop draining
    /// for now (an outage, or the entry's next try).
    async fn drain_one(&self, spool: &Spool, e: spool::Entry) -> Result<()> {
        let keep = e.clone();
        let Err(err) = self.drain_entry(e).await else {
            return Ok(());
        };
        // An outage again: stop here and try later.
        if self.ping().await.is_err() {
            return Err(err);
        }
        // The database answers but refuses this entry.
        let tries = {
            let mut t = self.drain_tries.lock();
            if t.0 != keep.id() {
                *t = (keep.id().to_string(), 0);
            }
            t.1 += 1;
            t.1
        };
        if tries < SET_ASIDE_AFTER {
            return Err(err);
        }
        let sp = spool.clone();
        let aside = keep.clone();
        tokio::task::spawn_blocking(move || sp.set_aside(&aside))
            .await
            .map_err(|e| StoreError::Unavailable(e.to_string()))??;
        tracing::error!(
            msg_id = keep.id(), error = %err, tries, file = spool::REJECTED,
            "the database keeps refusing a spooled entry: set aside in the spool directory, the drain goes on"
        );
        Ok(())
    }

    /// Writes one spooled entry into the database. An entry already there (written before a
    /// crash, or a repeated `eventId`) counts as written.
    async fn drain_entry(&self, e: spool::Entry) -> Result<()> {
        match e.into_work() {
            Ok(spool::Work::Publish(msg, only)) => {
                let id = msg.id.clone();
                match self.publish_db(msg, only).await {
                    Ok(_) => {}
                    // Already written before a crash (same ID), or a repeated `eventId`: the
                    // message exists in the database either way.
                    Err(StoreError::Conflict(why)) => {
                        tracing::info!(msg_id = %id, why, "spooled message already in the database")
                    }
                    Err(e) => return Err(e),
                }
            }
            Ok(spool::Work::Ingest(req, dedup, msg, order)) => {
                let (req_id, source) = (req.id.clone(), req.source_id.clone());
                match self.ingest_db((req, dedup, msg, order)).await {
                    // Decided now, as a live ingestion would have been: a duplicate collapses
                    // into the first message, a stale event is only logged.
                    Ok(o) => tracing::debug!(
                        inreq_id = %req_id, source_id = %source, outcome = ?o,
                        "spooled inbound request written to the database"
                    ),
                    // Its request row (same ID) or message was written before a crash.
                    Err(StoreError::Conflict(why)) => tracing::info!(
                        inreq_id = %req_id, why,
                        "spooled inbound request already in the database"
                    ),
                    Err(e) => return Err(e),
                }
            }
            // Never acknowledged whole (the line decoded but is not usable): nothing to replay.
            Err(e) => tracing::error!(error = %e, "skipping an unusable spool line"),
        }
        Ok(())
    }

    /// Spools a publish (the database is down, or older spooled work is still draining).
    async fn spool_publish(
        &self,
        spool: &Spool,
        msg: Message,
        only: Option<EndpointId>,
    ) -> Result<Published> {
        let entry = spool::Entry::new(&msg, &only);
        let sp = spool.clone();
        tokio::task::spawn_blocking(move || sp.append(&entry))
            .await
            .map_err(|e| StoreError::Unavailable(e.to_string()))??;
        Ok(Published {
            message: msg,
            deliveries: 0,
        })
    }

    /// Spools an ingestion; the drain replays it through [`Self::ingest_db`]. Answered as
    /// accepted: whether it is a duplicate, stale or held is only known at drain time.
    async fn spool_ingest(
        &self,
        spool: &Spool,
        req: InboundRequest,
        dedup: Option<DedupCheck>,
        msg: Message,
        order: Option<OrderCheck>,
    ) -> Result<IngestOutcome> {
        let entry = spool::Entry::ingest(&req, &dedup, &msg, &order);
        let sp = spool.clone();
        tokio::task::spawn_blocking(move || sp.append(&entry))
            .await
            .map_err(|e| StoreError::Unavailable(e.to_string()))??;
        Ok(IngestOutcome::Accepted(msg.id))
    }

    /// Connects and applies migrations only (for `herald migrate`).
    pub async fn migrate_only(url: &str) -> Result<()> {
        Self::connect(url, None).await.map(|_| ())
    }

    /// Calls `wake` whenever any node publishes or re-queues work, until the process ends.
    /// Reconnects after database outages (and wakes once then, in case a notice was missed).
    pub fn listen(&self, wake: Arc<dyn Fn() + Send + Sync>) {
        let pool = self.pool.clone();
        tokio::spawn(async move {
            loop {
                match PgListener::connect_with(&pool).await {
                    Ok(mut l) => {
                        if l.listen(WAKE_CHANNEL).await.is_ok() {
                            wake();
                            while l.recv().await.is_ok() {
                                wake();
                            }
                        }
                    }
                    Err(e) => tracing::warn!(error = %e, "LISTEN connection failed; retrying"),
                }
                tokio::time::sleep(Duration::from_secs(1)).await;
            }
        });
    }

    fn is_down(&self) -> bool {
        self.down.load(std::sync::atomic::Ordering::Relaxed)
    }

    fn mark_down(&self) {
        self.down.store(true, std::sync::atomic::Ordering::Relaxed);
    }

    /// The publish transaction itself: message, fan-out, NOTIFY.
    async fn publish_db(&self, msg: Message, only: Option<EndpointId>) -> Result<Published> {
        let r = async {
            let mut tx = self.begin().await?;
            let p = publish_tx(&mut tx, msg, only).await?;
            tx.commit().await.map_err(map_pg)?;
            Ok(p)
        }
        .await;
        self.write_health.observe(&r);
        r
    }

    fn seal(&self, ep: Endpoint) -> Endpoint {
        crate::seal_endpoint(self.secrets.as_deref(), ep)
    }

    fn unseal(&self, ep: Endpoint) -> Result<Endpoint> {
        crate::unseal_endpoint(self.secrets.as_deref(), ep)
    }

    async fn begin(&self) -> Result<sqlx::Transaction<'static, Postgres>> {
        self.pool.begin().await.map_err(map_pg)
    }
}

impl PostgresStore {
    /// A read of something publishing needs: `note` records what it read in [`Seen`]; while
    /// the database is unreachable, `seen` serves the last value instead (when there is one).
    async fn read_or_seen<T>(
        &self,
        read: impl std::future::Future<Output = Result<T>> + Send,
        note: impl FnOnce(&T) + Send,
        seen: impl Fn() -> Option<T> + Send + Sync,
    ) -> Result<T> {
        if self.is_down() {
            if let Some(v) = seen() {
                return Ok(v);
            }
        }
        match read.await {
            Ok(v) => {
                note(&v);
                Ok(v)
            }
            Err(StoreError::Unavailable(why)) => {
                self.mark_down();
                seen().ok_or(StoreError::Unavailable(why))
            }
            Err(e) => Err(e),
        }
    }
}

/// The row (if any) `sql` finds by its two text keys, mapped with `f`.
async fn row_by<'c, T: Send>(
    on: impl sqlx::PgExecutor<'c> + 'c,
    sql: &str,
    [a, b]: [&str; 2],
    f: impl for<'r> FnOnce(&'r PgRow) -> Result<T> + Send,
) -> Result<Option<T>> {
    sqlx::query(sql).bind(a).bind(b).row(on, f).await
}

/// The plan of `sql` with the arguments `args` (SQL literals, e.g. `'ep_x', 0`) on a fresh
/// database with Herald's schema, planned as for large tables (the tables are empty, so
/// sequential scans are switched off), for tests of query plans; `None` without
/// `TEST_DATABASE_URL`.
#[cfg(test)]
pub(crate) async fn plan_of(sql: &str, args: &str) -> Option<String> {
    use sqlx::Connection;
    let admin = std::env::var("TEST_DATABASE_URL").ok()?;
    let name = format!("plan_{}", ulid::Ulid::new().to_string().to_lowercase());
    let mut c = sqlx::PgConnection::connect(&admin).await.unwrap();
    sqlx::query(&format!("CREATE DATABASE {name}"))
        .execute(&mut c)
        .await
        .unwrap();
    let url = format!("{}/{name}", admin.rsplit_once('/').unwrap().0);
    let store = PostgresStore::connect(&url, None).await.unwrap();
    let mut c = store.pool.acquire().await.unwrap();
    let setup = format!("SET enable_seqscan = off; PREPARE planned AS {sql}");
    sqlx::raw_sql(&setup).execute(&mut *c).await.unwrap();
    let plan: Vec<String> = sqlx::query_scalar(&format!("EXPLAIN EXECUTE planned({args})"))
        .fetch_all(&mut *c)
        .await
        .unwrap();
    Some(plan.join("\n"))
}
