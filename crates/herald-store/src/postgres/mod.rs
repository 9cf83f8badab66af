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

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use herald_core::breaker::BreakerState;
use herald_core::crypto::SecretBox;
use herald_core::ids::{
    AppId, AttemptId, EndpointId, InboundRequestId, MessageId, SourceId, TokenId,
};
use herald_core::model::{
    Application, Attempt, Delivery, DeliveryStatus, Endpoint, EndpointStats, EventType,
    InboundRequest, InboundStatus, Message, Ordering, Source, StoredSecret, TriggerType,
};
use herald_core::signing::SignatureScheme;
use herald_core::{now_millis, Millis};
use sqlx::postgres::{PgConnectOptions, PgListener, PgPoolOptions, PgRow};
use sqlx::{PgConnection, PgPool, Postgres, QueryBuilder, Row};

use crate::{
    AttemptFilter, AttemptRecord, AttemptScope, ClaimBatch, DedupCheck, DisabledEndpoint,
    IdempotentResponse, IngestOutcome, ListQuery, MessageFilter, OrderCheck, Page, Published,
    Result, Store, StoreError, TokenRecord,
};

mod attempts;
mod order;
mod sched;
mod spool;

pub use spool::Spool;

/// Connections per node.
const POOL_SIZE: u32 = 16;
/// Channel that tells every node's workers new work is due.
const WAKE_CHANNEL: &str = "herald_due";
/// Advisory lock key serialising migrations across nodes ("herald" in ASCII).
const MIGRATION_LOCK: i64 = 0x6865_7261_6c64;
const KEY_CHECK: &str = "herald-encryption-key-check";

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
CREATE TABLE attempts (
    id TEXT COLLATE "C" PRIMARY KEY,
    delivery_id BIGINT NOT NULL,
    msg_id TEXT NOT NULL,
    endpoint_id TEXT NOT NULL,
    app_id TEXT NOT NULL,
    url TEXT NOT NULL,
    response TEXT NOT NULL,
    status_code BIGINT NOT NULL,
    duration_ms BIGINT NOT NULL,
    status BIGINT NOT NULL,
    trigger_type BIGINT NOT NULL,
    error TEXT,
    created_at BIGINT NOT NULL
);
CREATE INDEX attempts_msg ON attempts (msg_id, id);
CREATE INDEX attempts_endpoint ON attempts (endpoint_id, id);
CREATE TABLE tokens (
    id TEXT COLLATE "C" PRIMARY KEY,
    hash BYTEA NOT NULL UNIQUE,
    name TEXT NOT NULL,
    app_id TEXT,
    created_at BIGINT NOT NULL
);
CREATE TABLE idempotency (
    key BYTEA PRIMARY KEY,
    status BIGINT NOT NULL,
    body BYTEA NOT NULL,
    created_at BIGINT NOT NULL
);
CREATE TABLE meta (
    key TEXT PRIMARY KEY,
    value TEXT NOT NULL
);
"#,
    // Inbound: sources, their request log, dedup keys; headers forwarded with a message.
    r#"
ALTER TABLE messages ADD COLUMN headers TEXT;
CREATE TABLE sources (
    id TEXT COLLATE "C" PRIMARY KEY,
    app_id TEXT NOT NULL,
    uid TEXT,
    name TEXT NOT NULL,
    verification TEXT NOT NULL,
    secrets TEXT NOT NULL,
    options TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL,
    UNIQUE (app_id, uid)
);
CREATE INDEX sources_app ON sources (app_id, id);
CREATE TABLE inbound_requests (
    id TEXT COLLATE "C" PRIMARY KEY,
    source_id TEXT NOT NULL,
    app_id TEXT NOT NULL,
    status TEXT NOT NULL,
    reason TEXT,
    msg_id TEXT,
    headers TEXT NOT NULL,
    body TEXT,
    event_type TEXT,
    created_at BIGINT NOT NULL
);
CREATE INDEX inbound_requests_source ON inbound_requests (source_id, id);
CREATE TABLE inbound_dedup (
    key BYTEA PRIMARY KEY,
    msg_id TEXT NOT NULL,
    created_at BIGINT NOT NULL
);
"#,
    // Inbound ordering: the last accepted sequence per (source, key), and held events.
    r#"
CREATE TABLE inbound_order (
    source_id TEXT NOT NULL,
    okey TEXT NOT NULL,
    last BIGINT,
    PRIMARY KEY (source_id, okey)
);
CREATE TABLE inbound_held (
    request_id TEXT COLLATE "C" PRIMARY KEY,
    source_id TEXT NOT NULL,
    okey TEXT NOT NULL,
    seq BIGINT NOT NULL,
    app_id TEXT NOT NULL,
    msg_id TEXT NOT NULL,
    event_type TEXT NOT NULL,
    payload TEXT,
    headers TEXT,
    ordering_key TEXT,
    deadline BIGINT NOT NULL,
    created_at BIGINT NOT NULL,
    UNIQUE (source_id, okey, seq)
);
CREATE INDEX inbound_held_deadline ON inbound_held (deadline);
"#,
    // Wake-ups: a publish records here that an endpoint has new work instead of moving the
    // endpoint's `due_at` itself, so it never waits for an endpoint row a claim or an attempt
    // record holds; the next claim folds these rows into `due_at` (`sched::fold_wakes`).
    r#"
CREATE TABLE endpoint_wakes (
    id BIGSERIAL PRIMARY KEY,
    endpoint_id TEXT COLLATE "C" NOT NULL,
    at BIGINT NOT NULL
);
DROP INDEX IF EXISTS deliveries_due;
"#,
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
    if version > MIGRATIONS.len() {
        return Err(StoreError::Unavailable(format!(
            "the database schema (version {version}) is newer than this Herald (knows {}); upgrade Herald",
            MIGRATIONS.len()
        )));
    }
    for (i, sql) in MIGRATIONS.iter().enumerate().skip(version) {
        // A plain string runs as a simple query, so one migration may hold many statements.
        // (Not `sqlx::raw_sql`: its future fails the higher-ranked `Send` check callers need.)
        sqlx::Executor::execute(&mut *tx, *sql)
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
                Some(c) => match k.decrypt(&c) {
                    Ok(v) if v == KEY_CHECK => {}
                    _ => return Err(StoreError::KeyMismatch),
                },
                None => {
                    sqlx::query(
                        "INSERT INTO meta (key, value) VALUES ('key_check', $1) ON CONFLICT (key) DO NOTHING",
                    )
                    .bind(k.encrypt(KEY_CHECK))
                    .execute(&pool)
                    .await
                    .map_err(map_pg)?;
                    // Another node may have won the race with another key: check what stands.
                    let c: String =
                        sqlx::query_scalar("SELECT value FROM meta WHERE key = 'key_check'")
                            .fetch_one(&pool)
                            .await
                            .map_err(map_pg)?;
                    if k.decrypt(&c).ok().as_deref() != Some(KEY_CHECK) {
                        return Err(StoreError::KeyMismatch);
                    }
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
                match self.ingest_db(req, dedup, msg, order).await {
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

    /// The ingestion transaction itself: dedup key, ordering state, message and request log
    /// row, committed together (also the replay of a spooled ingestion).
    async fn ingest_db(
        &self,
        req: InboundRequest,
        dedup: Option<DedupCheck>,
        msg: Message,
        order: Option<OrderCheck>,
    ) -> Result<IngestOutcome> {
        let r = self.ingest_tx(req, dedup, msg, order).await;
        self.write_health.observe(&r);
        r
    }

    async fn ingest_tx(
        &self,
        req: InboundRequest,
        dedup: Option<DedupCheck>,
        msg: Message,
        order: Option<OrderCheck>,
    ) -> Result<IngestOutcome> {
        let mut req = req;
        let mut tx = self.begin().await?;
        if let Some(d) = dedup {
            // Claims the key, or finds who holds it within the window. The row lock makes a
            // concurrent duplicate (on any node) wait for this transaction, then see the key.
            let claimed: Option<String> = sqlx::query_scalar(
                "INSERT INTO inbound_dedup (key, msg_id, created_at) VALUES ($1, $2, $3) \
                 ON CONFLICT (key) DO UPDATE SET msg_id = EXCLUDED.msg_id, created_at = EXCLUDED.created_at \
                 WHERE inbound_dedup.created_at < $4 RETURNING msg_id",
            )
            .bind(d.key.as_slice())
            .bind(&msg.id.0)
            .bind(req.created_at)
            .bind(d.since)
            .fetch_optional(&mut *tx)
            .await
            .map_err(map_pg)?;
            if claimed.is_none() {
                let first: String =
                    sqlx::query_scalar("SELECT msg_id FROM inbound_dedup WHERE key = $1")
                        .bind(d.key.as_slice())
                        .fetch_one(&mut *tx)
                        .await
                        .map_err(map_pg)?;
                req.status = InboundStatus::Duplicate;
                req.msg_id = Some(MessageId(first.clone()));
                insert_inbound(&mut tx, &req).await?;
                tx.commit().await.map_err(map_pg)?;
                return Ok(IngestOutcome::Duplicate(MessageId(first)));
            }
        }
        let source = req.source_id.0.clone();
        if let Some(o) = &order {
            let last = order::lock_last(&mut tx, &source, &o.key).await?;
            let decision = if order::is_held(&mut tx, &source, o).await? {
                None
            } else {
                Some(herald_core::ordering::decide(last, o.seq, o.gap_timeout_ms))
            };
            match decision {
                None | Some(herald_core::ordering::Decision::Stale) => {
                    if let Some(d) = dedup {
                        // Give the key back: a retry of a stale event is stale again.
                        sqlx::query("DELETE FROM inbound_dedup WHERE key = $1")
                            .bind(d.key.as_slice())
                            .execute(&mut *tx)
                            .await
                            .map_err(map_pg)?;
                    }
                    req.status = InboundStatus::Stale;
                    req.reason = Some(match decision {
                        None => format!("sequence {} is already waiting", o.seq),
                        _ => format!(
                            "sequence {} is not above the last accepted ({})",
                            o.seq,
                            last.unwrap_or_default()
                        ),
                    });
                    req.msg_id = None;
                    insert_inbound(&mut tx, &req).await?;
                    tx.commit().await.map_err(map_pg)?;
                    return Ok(IngestOutcome::Stale);
                }
                Some(herald_core::ordering::Decision::Hold) => {
                    order::hold(&mut tx, &req.id.0, &source, o, &msg, req.created_at).await?;
                    req.status = InboundStatus::Held;
                    req.reason = Some(format!(
                        "waiting for sequence {} (last accepted: {})",
                        last.unwrap_or_default().saturating_add(1),
                        last.unwrap_or_default()
                    ));
                    req.msg_id = Some(msg.id.clone());
                    insert_inbound(&mut tx, &req).await?;
                    tx.commit().await.map_err(map_pg)?;
                    return Ok(IngestOutcome::Held(msg.id));
                }
                Some(herald_core::ordering::Decision::Accept) => {}
            }
        }
        let id = msg.id.clone();
        publish_tx(&mut tx, msg, None).await?;
        req.status = InboundStatus::Accepted;
        req.msg_id = Some(id.clone());
        insert_inbound(&mut tx, &req).await?;
        if let Some(o) = &order {
            order::set_last(&mut tx, &source, &o.key, o.seq).await?;
            order::release_key(&mut tx, &source, &o.key, o.seq, None, req.created_at).await?;
        }
        tx.commit().await.map_err(map_pg)?;
        Ok(IngestOutcome::Accepted(id))
    }

    fn seal_source(&self, mut s: Source) -> Source {
        crate::seal_secrets(self.secrets.as_deref(), &mut s.secrets);
        s
    }

    fn unseal_source(&self, mut s: Source) -> Result<Source> {
        crate::unseal_secrets(self.secrets.as_deref(), &mut s.secrets)?;
        Ok(s)
    }

    fn seal(&self, mut ep: Endpoint) -> Endpoint {
        crate::seal_secrets(self.secrets.as_deref(), &mut ep.secrets);
        ep
    }

    fn unseal(&self, mut ep: Endpoint) -> Result<Endpoint> {
        crate::unseal_secrets(self.secrets.as_deref(), &mut ep.secrets)?;
        Ok(ep)
    }

    async fn begin(&self) -> Result<sqlx::Transaction<'static, Postgres>> {
        self.pool.begin().await.map_err(map_pg)
    }
}

// ---- row mapping ---------------------------------------------------------------------------

fn json<T: serde::Serialize>(v: &T) -> String {
    serde_json::to_string(v).expect("serializable")
}

fn json_opt<T: serde::Serialize>(v: &Option<T>) -> Option<String> {
    v.as_ref().map(json)
}

fn parse<T: serde::de::DeserializeOwned>(s: &str) -> Result<T> {
    serde_json::from_str(s).map_err(|e| StoreError::Corrupt(e.to_string()))
}

fn parse_opt<T: serde::de::DeserializeOwned>(s: Option<String>) -> Result<Option<T>> {
    s.map(|s| parse(&s)).transpose()
}

fn get<'r, T: sqlx::Decode<'r, Postgres> + sqlx::Type<Postgres>>(
    r: &'r PgRow,
    col: &str,
) -> Result<T> {
    r.try_get(col).map_err(map_pg)
}

fn get_u32(r: &PgRow, col: &str) -> Result<u32> {
    Ok(get::<i64>(r, col)?.clamp(0, u32::MAX as i64) as u32)
}

fn get_u32_opt(r: &PgRow, col: &str) -> Result<Option<u32>> {
    Ok(get::<Option<i64>>(r, col)?.map(|v| v.clamp(0, u32::MAX as i64) as u32))
}

const APP_COLS: &str = "id, uid, name, throttle_rate, metadata, created_at, updated_at";

fn app_row(r: &PgRow) -> Result<Application> {
    Ok(Application {
        id: AppId(get(r, "id")?),
        uid: get(r, "uid")?,
        name: get(r, "name")?,
        throttle_rate: get_u32_opt(r, "throttle_rate")?,
        metadata: parse(&get::<String>(r, "metadata")?)?,
        created_at: get(r, "created_at")?,
        updated_at: get(r, "updated_at")?,
    })
}

const EP_COLS: &str = "id, app_id, uid, url, description, disabled, event_types, channels, \
    throttle_rate, metadata, headers, retry_schedule, permanent_statuses, ordering, \
    max_concurrency, signature_scheme, secrets, paused_until, created_at, updated_at, breaker";

fn ep_row(r: &PgRow) -> Result<Endpoint> {
    let ordering: String = get(r, "ordering")?;
    let scheme: String = get(r, "signature_scheme")?;
    Ok(Endpoint {
        id: EndpointId(get(r, "id")?),
        app_id: AppId(get(r, "app_id")?),
        uid: get(r, "uid")?,
        url: get(r, "url")?,
        description: get(r, "description")?,
        disabled: get(r, "disabled")?,
        event_types: parse_opt(get(r, "event_types")?)?,
        channels: parse_opt(get(r, "channels")?)?,
        throttle_rate: get_u32_opt(r, "throttle_rate")?,
        metadata: parse(&get::<String>(r, "metadata")?)?,
        headers: parse(&get::<String>(r, "headers")?)?,
        retry_schedule: parse_opt(get(r, "retry_schedule")?)?,
        permanent_statuses: parse(&get::<String>(r, "permanent_statuses")?)?,
        ordering: if ordering == "fifo" {
            Ordering::Fifo
        } else {
            Ordering::None
        },
        max_concurrency: get_u32_opt(r, "max_concurrency")?,
        signature_scheme: SignatureScheme::parse(&scheme).unwrap_or_default(),
        secrets: parse::<Vec<StoredSecret>>(&get::<String>(r, "secrets")?)?,
        paused_until: get(r, "paused_until")?,
        created_at: get(r, "created_at")?,
        updated_at: get(r, "updated_at")?,
        breaker: BreakerState::from_i64(get(r, "breaker")?),
    })
}

fn ordering_str(o: Ordering) -> &'static str {
    match o {
        Ordering::Fifo => "fifo",
        Ordering::None => "none",
    }
}

/// Binds the 20 written endpoint columns, in `EP_COLS` order, starting at `$1`.
fn bind_ep<'q>(
    q: sqlx::query::Query<'q, Postgres, sqlx::postgres::PgArguments>,
    ep: &'q Endpoint,
) -> sqlx::query::Query<'q, Postgres, sqlx::postgres::PgArguments> {
    q.bind(&ep.id.0)
        .bind(&ep.app_id.0)
        .bind(&ep.uid)
        .bind(&ep.url)
        .bind(&ep.description)
        .bind(ep.disabled)
        .bind(json_opt(&ep.event_types))
        .bind(json_opt(&ep.channels))
        .bind(ep.throttle_rate.map(i64::from))
        .bind(json(&ep.metadata))
        .bind(json(&ep.headers))
        .bind(json_opt(&ep.retry_schedule))
        .bind(json(&ep.permanent_statuses))
        .bind(ordering_str(ep.ordering))
        .bind(ep.max_concurrency.map(i64::from))
        .bind(ep.signature_scheme.as_str())
        .bind(json(&ep.secrets))
        .bind(ep.paused_until)
        .bind(ep.created_at)
        .bind(ep.updated_at)
}

const ET_COLS: &str = "name, description, archived, deprecated, schemas, created_at, updated_at";

fn et_row(r: &PgRow) -> Result<EventType> {
    Ok(EventType {
        name: get(r, "name")?,
        description: get(r, "description")?,
        archived: get(r, "archived")?,
        deprecated: get(r, "deprecated")?,
        schemas: parse_opt(get(r, "schemas")?)?,
        created_at: get(r, "created_at")?,
        updated_at: get(r, "updated_at")?,
    })
}

const MSG_COLS: &str = "m.id AS m_id, m.app_id AS m_app_id, m.event_id, m.event_type, m.payload, \
    m.channels, m.created_at AS m_created_at, m.retention_ms, m.ordering_key AS m_ordering_key, \
    m.headers AS m_headers";

fn msg_row(r: &PgRow) -> Result<Message> {
    Ok(Message {
        id: MessageId(get(r, "m_id")?),
        app_id: AppId(get(r, "m_app_id")?),
        event_id: get(r, "event_id")?,
        event_type: get(r, "event_type")?,
        payload: get(r, "payload")?,
        channels: parse_opt(get(r, "channels")?)?,
        created_at: get(r, "m_created_at")?,
        retention_ms: get(r, "retention_ms")?,
        ordering_key: get(r, "m_ordering_key")?,
        headers: parse_opt(get(r, "m_headers")?)?,
    })
}

const DLV_COLS: &str = "d.id AS d_id, d.msg_id AS d_msg_id, d.endpoint_id AS d_endpoint_id, \
    d.app_id AS d_app_id, d.status AS d_status, d.attempts, d.failures, d.next_at, \
    d.updated_at AS d_updated_at";

fn dlv_row(r: &PgRow) -> Result<Delivery> {
    let status = DeliveryStatus::from_i64(get(r, "d_status")?);
    let next: Option<i64> = get(r, "next_at")?;
    Ok(Delivery {
        id: get(r, "d_id")?,
        msg_id: MessageId(get(r, "d_msg_id")?),
        endpoint_id: EndpointId(get(r, "d_endpoint_id")?),
        app_id: AppId(get(r, "d_app_id")?),
        status,
        attempts: get_u32(r, "attempts")?,
        failures: get_u32(r, "failures")?,
        next_attempt_at: match status {
            DeliveryStatus::Pending | DeliveryStatus::Sending => next,
            _ => None,
        },
        updated_at: get(r, "d_updated_at")?,
    })
}

const ATT_COLS: &str = "id, msg_id, endpoint_id, app_id, delivery_id, url, response, status_code, \
    duration_ms, status, trigger_type, error, created_at";

fn att_row(r: &PgRow) -> Result<Attempt> {
    Ok(Attempt {
        id: AttemptId(get(r, "id")?),
        msg_id: MessageId(get(r, "msg_id")?),
        endpoint_id: EndpointId(get(r, "endpoint_id")?),
        app_id: AppId(get(r, "app_id")?),
        delivery_id: get(r, "delivery_id")?,
        url: get(r, "url")?,
        response: get(r, "response")?,
        response_status_code: get::<i64>(r, "status_code")?.clamp(0, u16::MAX as i64) as u16,
        response_duration_ms: get(r, "duration_ms")?,
        status: DeliveryStatus::from_i64(get(r, "status")?),
        trigger_type: if get::<i64>(r, "trigger_type")? == 1 {
            TriggerType::Manual
        } else {
            TriggerType::Scheduled
        },
        error: get(r, "error")?,
        created_at: get(r, "created_at")?,
    })
}

const SRC_COLS: &str =
    "id, app_id, uid, name, verification, secrets, options, created_at, updated_at";

fn src_row(r: &PgRow) -> Result<Source> {
    Ok(Source {
        id: SourceId(get(r, "id")?),
        app_id: AppId(get(r, "app_id")?),
        uid: get(r, "uid")?,
        name: get(r, "name")?,
        verification: parse(&get::<String>(r, "verification")?)?,
        secrets: parse(&get::<String>(r, "secrets")?)?,
        options: parse(&get::<String>(r, "options")?)?,
        created_at: get(r, "created_at")?,
        updated_at: get(r, "updated_at")?,
    })
}

const INREQ_COLS: &str =
    "id, source_id, app_id, status, reason, msg_id, headers, body, event_type, created_at";

fn inreq_row(r: &PgRow) -> Result<InboundRequest> {
    let status: String = get(r, "status")?;
    Ok(InboundRequest {
        id: InboundRequestId(get(r, "id")?),
        source_id: SourceId(get(r, "source_id")?),
        app_id: AppId(get(r, "app_id")?),
        status: InboundStatus::parse(&status).unwrap_or(InboundStatus::Rejected),
        reason: get(r, "reason")?,
        msg_id: get::<Option<String>>(r, "msg_id")?.map(MessageId),
        headers: parse(&get::<String>(r, "headers")?)?,
        body: get(r, "body")?,
        event_type: get(r, "event_type")?,
        created_at: get(r, "created_at")?,
    })
}

async fn insert_inbound(c: &mut PgConnection, q: &InboundRequest) -> Result<()> {
    sqlx::query(&format!(
        "INSERT INTO inbound_requests ({INREQ_COLS}) VALUES ($1,$2,$3,$4,$5,$6,$7,$8,$9,$10)"
    ))
    .bind(&q.id.0)
    .bind(&q.source_id.0)
    .bind(&q.app_id.0)
    .bind(q.status.as_str())
    .bind(&q.reason)
    .bind(q.msg_id.as_ref().map(|m| m.0.clone()))
    .bind(json(&q.headers))
    .bind(&q.body)
    .bind(&q.event_type)
    .bind(q.created_at)
    .execute(c)
    .await
    .map_err(map_pg)?;
    Ok(())
}

fn token_row(r: &PgRow) -> Result<TokenRecord> {
    Ok(TokenRecord {
        id: TokenId(get(r, "id")?),
        name: get(r, "name")?,
        app_id: get::<Option<String>>(r, "app_id")?.map(AppId),
        created_at: get(r, "created_at")?,
    })
}

// ---- pagination ----------------------------------------------------------------------------

/// A value bound into a dynamic query.
enum Arg {
    Text(String),
    Int(i64),
}

/// Runs `select` + `WHERE conds` + keyset pagination of `q`. Each `?` in `conds` is replaced by
/// the next `args` value.
async fn query_page<T>(
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

/// The publish work inside the caller's transaction.
async fn publish_tx(
    c: &mut PgConnection,
    msg: Message,
    only: Option<EndpointId>,
) -> Result<Published> {
    sqlx::query(
        "INSERT INTO messages (id, app_id, event_id, event_type, payload, channels, created_at, retention_ms, ordering_key, headers) \
         VALUES ($1,$2,$3,$4,$5,$6,$7,$8,$9,$10)",
    )
    .bind(&msg.id.0)
    .bind(&msg.app_id.0)
    .bind(&msg.event_id)
    .bind(&msg.event_type)
    .bind(&msg.payload)
    .bind(json_opt(&msg.channels))
    .bind(msg.created_at)
    .bind(msg.retention_ms)
    .bind(&msg.ordering_key)
    .bind(json_opt(&msg.headers))
    .execute(&mut *c)
    .await
    .map_err(|e| match map_pg(e) {
        StoreError::Conflict(_) => {
            StoreError::Conflict("eventId already used in this application".into())
        }
        other => other,
    })?;
    // Ordered by ID so concurrent publishes touch endpoint rows in the same order.
    let eps = sqlx::query(&format!(
        "SELECT {EP_COLS} FROM endpoints WHERE app_id = $1 AND NOT disabled ORDER BY id"
    ))
    .bind(&msg.app_id.0)
    .fetch_all(&mut *c)
    .await
    .map_err(map_pg)?
    .iter()
    .map(ep_row)
    .collect::<Result<Vec<_>>>()?;
    let mut ep_ids = Vec::new();
    let mut due = Vec::new();
    let mut keys = Vec::new();
    for ep in eps.iter().filter(|e| match &only {
        Some(id) => e.id == *id,
        None => e.matches(&msg.event_type, msg.channels.as_deref()),
    }) {
        ep_ids.push(ep.id.0.clone());
        due.push(
            ep.paused_until
                .map_or(msg.created_at, |p| p.max(msg.created_at)),
        );
        keys.push(
            (ep.ordering == Ordering::Fifo).then(|| msg.ordering_key.clone().unwrap_or_default()),
        );
    }
    let deliveries = ep_ids.len();
    if deliveries > 0 {
        // One statement each for every matching endpoint, and no endpoint row touched: the
        // wake rows tell the claims (see the migration that adds `endpoint_wakes`).
        sqlx::query(
            "INSERT INTO deliveries (msg_id, endpoint_id, app_id, status, next_at, manual, updated_at, ordering_key) \
             SELECT $1, e, $2, 1, d, FALSE, d, k FROM UNNEST($3::text[], $4::bigint[], $5::text[]) AS u(e, d, k)",
        )
        .bind(&msg.id.0)
        .bind(&msg.app_id.0)
        .bind(&ep_ids)
        .bind(&due)
        .bind(&keys)
        .execute(&mut *c)
        .await
        .map_err(map_pg)?;
        sqlx::query(
            "INSERT INTO endpoint_wakes (endpoint_id, at) SELECT * FROM UNNEST($1::text[], $2::bigint[])",
        )
        .bind(&ep_ids)
        .bind(&due)
        .execute(&mut *c)
        .await
        .map_err(map_pg)?;
        notify(&mut *c).await?;
    }
    Ok(Published {
        message: msg,
        deliveries,
    })
}

async fn endpoint_by(c: &mut PgConnection, app: &str, id_or_uid: &str) -> Result<Option<Endpoint>> {
    sqlx::query(&format!(
        "SELECT {EP_COLS} FROM endpoints WHERE app_id = $1 AND (id = $2 OR uid = $2)"
    ))
    .bind(app)
    .bind(id_or_uid)
    .fetch_optional(c)
    .await
    .map_err(map_pg)?
    .as_ref()
    .map(ep_row)
    .transpose()
}

/// Queues a delivery due at `now` and makes its endpoint due.
async fn insert_delivery(
    c: &mut PgConnection,
    msg: &str,
    ep: &str,
    app: &str,
    now: Millis,
    manual: bool,
    ordering_key: Option<&str>,
) -> Result<()> {
    sqlx::query(
        "INSERT INTO deliveries (msg_id, endpoint_id, app_id, status, next_at, manual, updated_at, ordering_key) \
         VALUES ($1, $2, $3, 1, $4, $5, $4, $6)",
    )
    .bind(msg)
    .bind(ep)
    .bind(app)
    .bind(now)
    .bind(manual)
    .bind(ordering_key)
    .execute(&mut *c)
    .await
    .map_err(map_pg)?;
    sched::touch_due(c, ep, now).await
}

async fn notify(c: &mut PgConnection) -> Result<()> {
    sqlx::query("SELECT pg_notify($1, '')")
        .bind(WAKE_CHANNEL)
        .execute(c)
        .await
        .map_err(map_pg)?;
    Ok(())
}

async fn exec(c: &mut PgConnection, sql: &str, id: &str) -> Result<u64> {
    Ok(sqlx::query(sql)
        .bind(id)
        .execute(c)
        .await
        .map_err(map_pg)?
        .rows_affected())
}

#[async_trait]
impl Store for PostgresStore {
    async fn ping(&self) -> Result<()> {
        sqlx::query("SELECT 1")
            .execute(&self.pool)
            .await
            .map_err(map_pg)?;
        Ok(())
    }

    fn last_write_failure(&self) -> Option<crate::WriteFailure> {
        self.write_health.last()
    }

    fn spool_health(&self) -> Option<crate::SpoolHealth> {
        self.spool.as_ref().map(Spool::health)
    }

    async fn create_app(&self, app: Application) -> Result<Application> {
        sqlx::query(&format!(
            "INSERT INTO apps ({APP_COLS}) VALUES ($1,$2,$3,$4,$5,$6,$7)"
        ))
        .bind(&app.id.0)
        .bind(&app.uid)
        .bind(&app.name)
        .bind(app.throttle_rate.map(i64::from))
        .bind(json(&app.metadata))
        .bind(app.created_at)
        .bind(app.updated_at)
        .execute(&self.pool)
        .await
        .map_err(map_pg)?;
        Ok(app)
    }

    async fn get_app(&self, id_or_uid: &str) -> Result<Option<Application>> {
        if self.is_down() {
            if let Some(a) = self.seen.apps.lock().get(id_or_uid) {
                return Ok(Some(a.clone()));
            }
        }
        let r = sqlx::query(&format!(
            "SELECT {APP_COLS} FROM apps WHERE id = $1 OR uid = $1"
        ))
        .bind(id_or_uid)
        .fetch_optional(&self.pool)
        .await
        .map_err(map_pg);
        match r {
            Ok(row) => {
                let app = row.as_ref().map(app_row).transpose()?;
                if let Some(a) = &app {
                    remember(&self.seen.apps, id_or_uid.to_string(), a.clone());
                }
                Ok(app)
            }
            Err(StoreError::Unavailable(why)) => {
                self.mark_down();
                let seen = self.seen.apps.lock().get(id_or_uid).cloned();
                seen.map(Some).ok_or(StoreError::Unavailable(why))
            }
            Err(e) => Err(e),
        }
    }

    async fn list_apps(&self, q: &ListQuery) -> Result<Page<Application>> {
        query_page(
            &self.pool,
            &format!("SELECT {APP_COLS} FROM apps"),
            vec![],
            vec![],
            q,
            ("id", "created_at"),
            app_row,
        )
        .await
    }

    async fn update_app(&self, app: Application) -> Result<Application> {
        let n = sqlx::query(
            "UPDATE apps SET uid = $2, name = $3, throttle_rate = $4, metadata = $5, updated_at = $6 WHERE id = $1",
        )
        .bind(&app.id.0)
        .bind(&app.uid)
        .bind(&app.name)
        .bind(app.throttle_rate.map(i64::from))
        .bind(json(&app.metadata))
        .bind(app.updated_at)
        .execute(&self.pool)
        .await
        .map_err(map_pg)?
        .rows_affected();
        if n == 0 {
            return Err(StoreError::NotFound);
        }
        Ok(app)
    }

    async fn delete_app(&self, id: &AppId) -> Result<()> {
        let mut tx = self.begin().await?;
        for sql in [
            "DELETE FROM endpoints WHERE app_id = $1",
            "DELETE FROM attempts WHERE app_id = $1",
            "DELETE FROM deliveries WHERE app_id = $1",
            "DELETE FROM messages WHERE app_id = $1",
            "DELETE FROM tokens WHERE app_id = $1",
            "DELETE FROM inbound_held WHERE app_id = $1",
        ] {
            exec(&mut tx, sql, &id.0).await?;
        }
        if exec(&mut tx, "DELETE FROM apps WHERE id = $1", &id.0).await? == 0 {
            return Err(StoreError::NotFound);
        }
        tx.commit().await.map_err(map_pg)
    }

    async fn create_endpoint(&self, ep: Endpoint) -> Result<Endpoint> {
        let ep = self.seal(ep);
        bind_ep(
            sqlx::query(&format!(
                "INSERT INTO endpoints ({}) VALUES ($1,$2,$3,$4,$5,$6,$7,$8,$9,$10,$11,$12,$13,$14,$15,$16,$17,$18,$19,$20)",
                EP_COLS.trim_end_matches(", breaker")
            )),
            &ep,
        )
        .execute(&self.pool)
        .await
        .map_err(map_pg)?;
        self.unseal(ep)
    }

    async fn get_endpoint(&self, app: &AppId, id_or_uid: &str) -> Result<Option<Endpoint>> {
        let mut c = self.pool.acquire().await.map_err(map_pg)?;
        endpoint_by(&mut c, &app.0, id_or_uid)
            .await?
            .map(|e| self.unseal(e))
            .transpose()
    }

    async fn list_endpoints(&self, app: &AppId, q: &ListQuery) -> Result<Page<Endpoint>> {
        let page = query_page(
            &self.pool,
            &format!("SELECT {EP_COLS} FROM endpoints"),
            vec!["app_id = ?".into()],
            vec![Arg::Text(app.0.clone())],
            q,
            ("id", "created_at"),
            ep_row,
        )
        .await?;
        page.try_map(|e| self.unseal(e))
    }

    async fn update_endpoint(&self, ep: Endpoint) -> Result<Endpoint> {
        let ep = self.seal(ep);
        let mut tx = self.begin().await?;
        sched::lock(&mut tx, &ep.id.0).await?;
        let was = endpoint_by(&mut tx, &ep.app_id.0, &ep.id.0)
            .await?
            .ok_or(StoreError::NotFound)?;
        let mut ep = ep;
        if was.disabled && !ep.disabled {
            ep.paused_until = None;
        }
        bind_ep(
            sqlx::query(
                "UPDATE endpoints SET app_id=$2, uid=$3, url=$4, description=$5, disabled=$6, event_types=$7, \
                 channels=$8, throttle_rate=$9, metadata=$10, headers=$11, retry_schedule=$12, \
                 permanent_statuses=$13, ordering=$14, max_concurrency=$15, signature_scheme=$16, \
                 secrets=$17, paused_until=$18, created_at=$19, updated_at=$20 WHERE id=$1",
            ),
            &ep,
        )
        .execute(&mut *tx)
        .await
        .map_err(map_pg)?;
        let now = ep.updated_at;
        if was.disabled && !ep.disabled {
            sqlx::query(
                "UPDATE endpoints SET failing_since = NULL, breaker = 0, breaker_until = 0, \
                 breaker_cooldown = 0, consec_failures = 0, win_total = 0, win_failed = 0, \
                 prev_total = 0, prev_failed = 0, tb_tokens = 1, tb_at = $2 WHERE id = $1",
            )
            .bind(&ep.id.0)
            .bind(now)
            .execute(&mut *tx)
            .await
            .map_err(map_pg)?;
        }
        if ep.ordering == Ordering::Fifo && was.ordering != Ordering::Fifo {
            sched::fix_fifo_keys(&mut tx, &ep.id.0).await?;
        }
        sched::refresh_due(&mut tx, &ep.id.0, now).await?;
        ep.breaker = endpoint_by(&mut tx, &ep.app_id.0, &ep.id.0)
            .await?
            .map_or(BreakerState::Closed, |e| e.breaker);
        notify(&mut tx).await?;
        tx.commit().await.map_err(map_pg)?;
        self.unseal(ep)
    }

    async fn delete_endpoint(&self, app: &AppId, id: &EndpointId) -> Result<()> {
        let mut tx = self.begin().await?;
        let n = sqlx::query("DELETE FROM endpoints WHERE app_id = $1 AND id = $2")
            .bind(&app.0)
            .bind(&id.0)
            .execute(&mut *tx)
            .await
            .map_err(map_pg)?
            .rows_affected();
        if n == 0 {
            return Err(StoreError::NotFound);
        }
        exec(
            &mut tx,
            "DELETE FROM deliveries WHERE endpoint_id = $1 AND status IN (1, 3)",
            &id.0,
        )
        .await?;
        tx.commit().await.map_err(map_pg)
    }

    async fn endpoint_stats(
        &self,
        ep: &EndpointId,
        since: Option<Millis>,
        until: Option<Millis>,
    ) -> Result<EndpointStats> {
        let rows = sqlx::query(
            "SELECT d.status, COUNT(*) AS n FROM deliveries d JOIN messages m ON m.id = d.msg_id \
             WHERE d.endpoint_id = $1 AND m.created_at >= $2 AND m.created_at < $3 GROUP BY d.status",
        )
        .bind(&ep.0)
        .bind(since.unwrap_or(i64::MIN))
        .bind(until.unwrap_or(i64::MAX))
        .fetch_all(&self.pool)
        .await
        .map_err(map_pg)?;
        let mut stats = EndpointStats::default();
        for r in rows {
            let n = get::<i64>(&r, "n")? as u64;
            match DeliveryStatus::from_i64(get(&r, "status")?) {
                DeliveryStatus::Success => stats.success += n,
                DeliveryStatus::Pending => stats.pending += n,
                DeliveryStatus::Fail => stats.fail += n,
                DeliveryStatus::Sending => stats.sending += n,
            }
        }
        Ok(stats)
    }

    async fn create_event_type(&self, et: EventType) -> Result<EventType> {
        sqlx::query(&format!(
            "INSERT INTO event_types ({ET_COLS}) VALUES ($1,$2,$3,$4,$5,$6,$7)"
        ))
        .bind(&et.name)
        .bind(&et.description)
        .bind(et.archived)
        .bind(et.deprecated)
        .bind(json_opt(&et.schemas))
        .bind(et.created_at)
        .bind(et.updated_at)
        .execute(&self.pool)
        .await
        .map_err(map_pg)?;
        Ok(et)
    }

    async fn get_event_type(&self, name: &str) -> Result<Option<EventType>> {
        if self.is_down() {
            if let Some(et) = self.seen.event_types.lock().get(name) {
                return Ok(et.clone());
            }
        }
        let r = sqlx::query(&format!(
            "SELECT {ET_COLS} FROM event_types WHERE name = $1"
        ))
        .bind(name)
        .fetch_optional(&self.pool)
        .await
        .map_err(map_pg);
        match r {
            Ok(row) => {
                let et = row.as_ref().map(et_row).transpose()?;
                remember(&self.seen.event_types, name.to_string(), et.clone());
                Ok(et)
            }
            Err(StoreError::Unavailable(why)) => {
                self.mark_down();
                let seen = self.seen.event_types.lock().get(name).cloned();
                seen.ok_or(StoreError::Unavailable(why))
            }
            Err(e) => Err(e),
        }
    }

    async fn list_event_types(
        &self,
        q: &ListQuery,
        include_archived: bool,
    ) -> Result<Page<EventType>> {
        let conds = if include_archived {
            vec![]
        } else {
            vec!["NOT archived".to_string()]
        };
        query_page(
            &self.pool,
            &format!("SELECT {ET_COLS} FROM event_types"),
            conds,
            vec![],
            q,
            ("name", "created_at"),
            et_row,
        )
        .await
    }

    async fn update_event_type(&self, et: EventType) -> Result<EventType> {
        let n = sqlx::query(
            "UPDATE event_types SET description=$2, archived=$3, deprecated=$4, schemas=$5, updated_at=$6 WHERE name=$1",
        )
        .bind(&et.name)
        .bind(&et.description)
        .bind(et.archived)
        .bind(et.deprecated)
        .bind(json_opt(&et.schemas))
        .bind(et.updated_at)
        .execute(&self.pool)
        .await
        .map_err(map_pg)?
        .rows_affected();
        if n == 0 {
            return Err(StoreError::NotFound);
        }
        Ok(et)
    }

    async fn delete_event_type(&self, name: &str) -> Result<()> {
        let n = sqlx::query("UPDATE event_types SET archived = TRUE WHERE name = $1")
            .bind(name)
            .execute(&self.pool)
            .await
            .map_err(map_pg)?
            .rows_affected();
        if n == 0 {
            return Err(StoreError::NotFound);
        }
        Ok(())
    }

    async fn publish(&self, msg: Message, only: Option<EndpointId>) -> Result<Published> {
        let Some(spool) = &self.spool else {
            return self.publish_db(msg, only).await;
        };
        if spool.active() {
            return self.spool_publish(spool, msg, only).await;
        }
        match self.publish_db(msg.clone(), only.clone()).await {
            Err(StoreError::Unavailable(why)) => {
                tracing::warn!(error = %why, "database unreachable: publishing into the local spool");
                self.mark_down();
                self.spool_publish(spool, msg, only).await
            }
            other => other,
        }
    }

    async fn get_message(&self, app: &AppId, id_or_event_id: &str) -> Result<Option<Message>> {
        sqlx::query(&format!(
            "SELECT {MSG_COLS} FROM messages m WHERE m.app_id = $1 AND (m.id = $2 OR m.event_id = $2)"
        ))
        .bind(&app.0)
        .bind(id_or_event_id)
        .fetch_optional(&self.pool)
        .await
        .map_err(map_pg)?
        .as_ref()
        .map(msg_row)
        .transpose()
    }

    async fn list_messages(
        &self,
        app: &AppId,
        filter: &MessageFilter,
        q: &ListQuery,
    ) -> Result<Page<Message>> {
        let mut conds = vec!["m.app_id = ?".to_string()];
        let mut args = vec![Arg::Text(app.0.clone())];
        if let Some(ch) = &filter.channel {
            conds.push("m.channels::jsonb @> jsonb_build_array(?::text)".into());
            args.push(Arg::Text(ch.clone()));
        }
        if let Some(types) = filter.event_types.as_ref().filter(|t| !t.is_empty()) {
            conds.push(format!(
                "m.event_type IN ({})",
                vec!["?"; types.len()].join(",")
            ));
            args.extend(types.iter().cloned().map(Arg::Text));
        }
        query_page(
            &self.pool,
            &format!("SELECT {MSG_COLS} FROM messages m"),
            conds,
            args,
            q,
            ("m.id", "m.created_at"),
            msg_row,
        )
        .await
    }

    async fn expunge_payload(&self, app: &AppId, msg: &MessageId) -> Result<()> {
        let n = sqlx::query("UPDATE messages SET payload = NULL WHERE app_id = $1 AND id = $2")
            .bind(&app.0)
            .bind(&msg.0)
            .execute(&self.pool)
            .await
            .map_err(map_pg)?
            .rows_affected();
        if n == 0 {
            return Err(StoreError::NotFound);
        }
        Ok(())
    }

    async fn deliveries_of_message(&self, msg: &MessageId) -> Result<Vec<Delivery>> {
        sqlx::query(&format!(
            "SELECT {DLV_COLS} FROM deliveries d WHERE d.msg_id = $1 ORDER BY d.endpoint_id"
        ))
        .bind(&msg.0)
        .fetch_all(&self.pool)
        .await
        .map_err(map_pg)?
        .iter()
        .map(dlv_row)
        .collect()
    }

    async fn deliveries_of_endpoint(
        &self,
        ep: &EndpointId,
        status: Option<i64>,
        q: &ListQuery,
    ) -> Result<Page<(Delivery, Message)>> {
        let mut conds = vec!["d.endpoint_id = ?".to_string()];
        let mut args = vec![Arg::Text(ep.0.clone())];
        if let Some(s) = status {
            conds.push("d.status = ?".into());
            args.push(Arg::Int(s));
        }
        query_page(
            &self.pool,
            &format!(
                "SELECT {DLV_COLS}, {MSG_COLS} FROM deliveries d JOIN messages m ON m.id = d.msg_id"
            ),
            conds,
            args,
            q,
            ("d.msg_id", "m.created_at"),
            |r| Ok((dlv_row(r)?, msg_row(r)?)),
        )
        .await
    }

    async fn resend(
        &self,
        app: &AppId,
        msg: &MessageId,
        ep: &EndpointId,
        now: Millis,
    ) -> Result<()> {
        let mut tx = self.begin().await?;
        sched::lock(&mut tx, &ep.0).await?;
        let n = sqlx::query(
            "UPDATE deliveries SET status = 1, failures = 0, manual = TRUE, next_at = $3, lease_owner = NULL, updated_at = $3 \
             WHERE msg_id = $1 AND endpoint_id = $2 AND status != 3",
        )
        .bind(&msg.0)
        .bind(&ep.0)
        .bind(now)
        .execute(&mut *tx)
        .await
        .map_err(map_pg)?
        .rows_affected();
        if n == 0 {
            let exists: bool = sqlx::query_scalar(
                "SELECT EXISTS (SELECT 1 FROM deliveries WHERE msg_id = $1 AND endpoint_id = $2)",
            )
            .bind(&msg.0)
            .bind(&ep.0)
            .fetch_one(&mut *tx)
            .await
            .map_err(map_pg)?;
            // An attempt is in flight already: the resend is satisfied by it.
            if !exists {
                insert_delivery(&mut tx, &msg.0, &ep.0, &app.0, now, true, None).await?;
            }
        }
        sched::fix_fifo_keys_if_fifo(&mut tx, &ep.0).await?;
        sched::touch_due(&mut tx, &ep.0, now).await?;
        notify(&mut tx).await?;
        tx.commit().await.map_err(map_pg)
    }

    async fn recover(
        &self,
        ep: &EndpointId,
        since: Millis,
        until: Option<Millis>,
        now: Millis,
    ) -> Result<u64> {
        let mut tx = self.begin().await?;
        sched::lock(&mut tx, &ep.0).await?;
        let n = sqlx::query(
            "UPDATE deliveries SET status = 1, failures = 0, next_at = $4, updated_at = $4 \
             WHERE endpoint_id = $1 AND status = 2 AND msg_id IN \
             (SELECT id FROM messages WHERE created_at >= $2 AND created_at < $3)",
        )
        .bind(&ep.0)
        .bind(since)
        .bind(until.unwrap_or(i64::MAX))
        .bind(now)
        .execute(&mut *tx)
        .await
        .map_err(map_pg)?
        .rows_affected();
        if n > 0 {
            sched::fix_fifo_keys_if_fifo(&mut tx, &ep.0).await?;
            sched::touch_due(&mut tx, &ep.0, now).await?;
            notify(&mut tx).await?;
        }
        tx.commit().await.map_err(map_pg)?;
        Ok(n)
    }

    async fn list_attempts(
        &self,
        app: &AppId,
        scope: &AttemptScope,
        filter: &AttemptFilter,
        q: &ListQuery,
    ) -> Result<Page<Attempt>> {
        let mut conds = vec!["app_id = ?".to_string()];
        let mut args = vec![Arg::Text(app.0.clone())];
        match scope {
            AttemptScope::Endpoint(e) => {
                conds.push("endpoint_id = ?".into());
                args.push(Arg::Text(e.0.clone()));
            }
            AttemptScope::Message(m) => {
                conds.push("msg_id = ?".into());
                args.push(Arg::Text(m.0.clone()));
            }
        }
        if let Some(s) = filter.status {
            conds.push("status = ?".into());
            args.push(Arg::Int(s));
        }
        if let Some(e) = &filter.endpoint_id {
            conds.push("endpoint_id = ?".into());
            args.push(Arg::Text(e.0.clone()));
        }
        query_page(
            &self.pool,
            &format!("SELECT {ATT_COLS} FROM attempts"),
            conds,
            args,
            q,
            ("id", "created_at"),
            att_row,
        )
        .await
    }

    async fn get_attempt(&self, app: &AppId, msg: &MessageId, id: &str) -> Result<Option<Attempt>> {
        sqlx::query(&format!(
            "SELECT {ATT_COLS} FROM attempts WHERE app_id = $1 AND msg_id = $2 AND id = $3"
        ))
        .bind(&app.0)
        .bind(&msg.0)
        .bind(id)
        .fetch_optional(&self.pool)
        .await
        .map_err(map_pg)?
        .as_ref()
        .map(att_row)
        .transpose()
    }

    async fn claim_due(
        &self,
        owner: &str,
        now: Millis,
        lease_ms: i64,
        limit: usize,
    ) -> Result<ClaimBatch> {
        let mut tx = self.begin().await?;
        let batch = sched::claim(&mut tx, owner, now, lease_ms, limit).await?;
        tx.commit().await.map_err(map_pg)?;
        Ok(batch)
    }

    async fn load_for_delivery(
        &self,
        msgs: &[MessageId],
        eps: &[EndpointId],
    ) -> Result<(HashMap<MessageId, Message>, HashMap<EndpointId, Endpoint>)> {
        let msg_ids: Vec<String> = msgs.iter().map(|m| m.0.clone()).collect();
        let ep_ids: Vec<String> = eps.iter().map(|e| e.0.clone()).collect();
        let mut mout = HashMap::with_capacity(msg_ids.len());
        for r in sqlx::query(&format!(
            "SELECT {MSG_COLS} FROM messages m WHERE m.id = ANY($1)"
        ))
        .bind(&msg_ids)
        .fetch_all(&self.pool)
        .await
        .map_err(map_pg)?
        {
            let m = msg_row(&r)?;
            mout.insert(m.id.clone(), m);
        }
        let mut eout = HashMap::with_capacity(ep_ids.len());
        for r in sqlx::query(&format!(
            "SELECT {EP_COLS} FROM endpoints WHERE id = ANY($1)"
        ))
        .bind(&ep_ids)
        .fetch_all(&self.pool)
        .await
        .map_err(map_pg)?
        {
            let e = self.unseal(ep_row(&r)?)?;
            eout.insert(e.id.clone(), e);
        }
        Ok((mout, eout))
    }

    async fn record_attempt(&self, rec: AttemptRecord) -> Result<Option<BreakerState>> {
        self.attempts.record(rec).await
    }

    async fn release(&self, delivery_id: i64, at: Millis) -> Result<()> {
        let mut tx = self.begin().await?;
        let ep: Option<String> =
            sqlx::query_scalar("SELECT endpoint_id FROM deliveries WHERE id = $1")
                .bind(delivery_id)
                .fetch_optional(&mut *tx)
                .await
                .map_err(map_pg)?;
        if let Some(ep) = ep {
            sched::lock(&mut tx, &ep).await?;
            sqlx::query(
                "UPDATE deliveries SET status = 1, next_at = $2, lease_owner = NULL WHERE id = $1 AND status = 3",
            )
            .bind(delivery_id)
            .bind(at)
            .execute(&mut *tx)
            .await
            .map_err(map_pg)?;
            sched::refresh_due(&mut tx, &ep, at.min(now_millis())).await?;
        }
        tx.commit().await.map_err(map_pg)
    }

    async fn abandon(&self, delivery_id: i64, now: Millis) -> Result<()> {
        let mut tx = self.begin().await?;
        let ep: Option<String> =
            sqlx::query_scalar("SELECT endpoint_id FROM deliveries WHERE id = $1")
                .bind(delivery_id)
                .fetch_optional(&mut *tx)
                .await
                .map_err(map_pg)?;
        if let Some(ep) = ep {
            sched::lock(&mut tx, &ep).await?;
            sqlx::query(
                "UPDATE deliveries SET status = 2, next_at = NULL, lease_owner = NULL, updated_at = $2 WHERE id = $1",
            )
            .bind(delivery_id)
            .bind(now)
            .execute(&mut *tx)
            .await
            .map_err(map_pg)?;
            sched::refresh_due(&mut tx, &ep, now).await?;
        }
        tx.commit().await.map_err(map_pg)
    }

    async fn release_leases(&self, owner: Option<&str>, now: Millis) -> Result<u64> {
        let mut tx = self.begin().await?;
        sqlx::query(
            "UPDATE endpoints SET due_at = $1 WHERE id IN \
             (SELECT endpoint_id FROM deliveries WHERE status = 3 AND ($2::TEXT IS NULL OR lease_owner = $2)) \
             AND (due_at IS NULL OR due_at > $1)",
        )
        .bind(now)
        .bind(owner)
        .execute(&mut *tx)
        .await
        .map_err(map_pg)?;
        let n = sqlx::query(
            "UPDATE deliveries SET status = 1, next_at = $1, lease_owner = NULL \
             WHERE status = 3 AND ($2::TEXT IS NULL OR lease_owner = $2)",
        )
        .bind(now)
        .bind(owner)
        .execute(&mut *tx)
        .await
        .map_err(map_pg)?
        .rows_affected();
        if n > 0 {
            notify(&mut tx).await?;
        }
        tx.commit().await.map_err(map_pg)?;
        Ok(n)
    }

    async fn next_due_at(&self) -> Result<Option<Millis>> {
        // Unfolded wake rows count: they are work a claim will find.
        sqlx::query_scalar(
            "SELECT LEAST((SELECT MIN(due_at) FROM endpoints), \
             (SELECT MIN(w.at) FROM endpoint_wakes w JOIN endpoints e ON e.id = w.endpoint_id))",
        )
        .fetch_one(&self.pool)
        .await
        .map_err(map_pg)
    }

    async fn queue_summary(&self, now: Millis) -> Result<(u64, u64, Option<Millis>)> {
        let r = sqlx::query(
            "SELECT COUNT(*) FILTER (WHERE next_at <= $1) AS due, COUNT(*) FILTER (WHERE next_at > $1) AS later, \
             MIN(next_at) FILTER (WHERE next_at <= $1 AND status = 1) AS oldest \
             FROM deliveries WHERE status IN (1, 3)",
        )
        .bind(now)
        .fetch_one(&self.pool)
        .await
        .map_err(map_pg)?;
        Ok((
            get::<i64>(&r, "due")? as u64,
            get::<i64>(&r, "later")? as u64,
            get(&r, "oldest")?,
        ))
    }

    async fn disable_failing_endpoints(
        &self,
        now: Millis,
        window_ms: i64,
    ) -> Result<Vec<DisabledEndpoint>> {
        let mut tx = self.begin().await?;
        let rows = sqlx::query(
            "UPDATE endpoints SET disabled = TRUE, updated_at = $1 \
             WHERE NOT disabled AND failing_since IS NOT NULL AND failing_since <= $2 \
             RETURNING id, app_id, uid, failing_since",
        )
        .bind(now)
        .bind(now - window_ms)
        .fetch_all(&mut *tx)
        .await
        .map_err(map_pg)?;
        let mut out = Vec::with_capacity(rows.len());
        for r in &rows {
            let d = DisabledEndpoint {
                endpoint_id: EndpointId(get(r, "id")?),
                app_id: AppId(get(r, "app_id")?),
                uid: get(r, "uid")?,
                failing_since: get(r, "failing_since")?,
            };
            // Waiting deliveries end `failed` (recoverable), never vanish.
            sched::fail_waiting(&mut tx, &d.endpoint_id.0, now).await?;
            sched::refresh_due(&mut tx, &d.endpoint_id.0, now).await?;
            out.push(d);
        }
        tx.commit().await.map_err(map_pg)?;
        Ok(out)
    }

    async fn purge_expired(
        &self,
        now: Millis,
        default_retention_ms: i64,
        batch: usize,
    ) -> Result<u64> {
        let cutoff = now - default_retention_ms;
        let bound = |prefix: &str| {
            let ms = u64::try_from(cutoff.max(0)).unwrap_or(0);
            format!("{prefix}{}", ulid::Ulid::from_parts(ms, 0))
        };
        let (msg_bound, att_bound) = (bound(MessageId::PREFIX), bound(AttemptId::PREFIX));
        let unfinished = "NOT EXISTS (SELECT 1 FROM deliveries d WHERE d.msg_id = messages.id AND d.status IN (1, 3))";
        let mut tx = self.begin().await?;
        let mut n = sqlx::query(&format!(
            "UPDATE messages SET payload = NULL WHERE id IN (SELECT id FROM messages \
             WHERE id < $1 AND retention_ms IS NULL AND payload IS NOT NULL AND {unfinished} LIMIT $2)"
        ))
        .bind(&msg_bound)
        .bind(batch as i64)
        .execute(&mut *tx)
        .await
        .map_err(map_pg)?
        .rows_affected();
        n += sqlx::query(&format!(
            "UPDATE messages SET payload = NULL WHERE id IN (SELECT id FROM messages \
             WHERE retention_ms IS NOT NULL AND payload IS NOT NULL AND created_at + retention_ms < $1 \
             AND {unfinished} LIMIT $2)"
        ))
        .bind(now)
        .bind(batch as i64)
        .execute(&mut *tx)
        .await
        .map_err(map_pg)?
        .rows_affected();
        n += sqlx::query(
            "UPDATE attempts SET response = '' WHERE id IN \
             (SELECT id FROM attempts WHERE id < $1 AND response != '' LIMIT $2)",
        )
        .bind(&att_bound)
        .bind(batch as i64)
        .execute(&mut *tx)
        .await
        .map_err(map_pg)?
        .rows_affected();
        tx.commit().await.map_err(map_pg)?;
        Ok(n)
    }

    async fn create_source(&self, s: Source) -> Result<Source> {
        let sealed = self.seal_source(s.clone());
        sqlx::query(&format!(
            "INSERT INTO sources ({SRC_COLS}) VALUES ($1,$2,$3,$4,$5,$6,$7,$8,$9)"
        ))
        .bind(&sealed.id.0)
        .bind(&sealed.app_id.0)
        .bind(&sealed.uid)
        .bind(&sealed.name)
        .bind(json(&sealed.verification))
        .bind(json(&sealed.secrets))
        .bind(json(&sealed.options))
        .bind(sealed.created_at)
        .bind(sealed.updated_at)
        .execute(&self.pool)
        .await
        .map_err(map_pg)?;
        Ok(s)
    }

    async fn get_source(&self, app: &AppId, id_or_uid: &str) -> Result<Option<Source>> {
        sqlx::query(&format!(
            "SELECT {SRC_COLS} FROM sources WHERE app_id = $1 AND (id = $2 OR uid = $2)"
        ))
        .bind(&app.0)
        .bind(id_or_uid)
        .fetch_optional(&self.pool)
        .await
        .map_err(map_pg)?
        .as_ref()
        .map(|r| src_row(r).and_then(|s| self.unseal_source(s)))
        .transpose()
    }

    async fn find_source(&self, id: &SourceId) -> Result<Option<Source>> {
        let seen = || self.seen.sources.lock().get(&id.0).cloned();
        if self.is_down() {
            if let Some(s) = seen() {
                return self.unseal_source(s).map(Some);
            }
        }
        let r = sqlx::query(&format!("SELECT {SRC_COLS} FROM sources WHERE id = $1"))
            .bind(&id.0)
            .fetch_optional(&self.pool)
            .await
            .map_err(map_pg);
        match r {
            Ok(row) => {
                // Remembered as stored (sealed), unsealed for the caller only.
                let s = row.as_ref().map(src_row).transpose()?;
                match &s {
                    Some(s) => remember(&self.seen.sources, id.0.clone(), s.clone()),
                    // Deleted (or never existed): forget it at once.
                    None => {
                        self.seen.sources.lock().remove(&id.0);
                    }
                }
                s.map(|s| self.unseal_source(s)).transpose()
            }
            Err(StoreError::Unavailable(why)) => {
                self.mark_down();
                match seen() {
                    Some(s) => self.unseal_source(s).map(Some),
                    None => Err(StoreError::Unavailable(why)),
                }
            }
            Err(e) => Err(e),
        }
    }

    async fn list_sources(&self, app: &AppId, q: &ListQuery) -> Result<Page<Source>> {
        let page = query_page(
            &self.pool,
            &format!("SELECT {SRC_COLS} FROM sources"),
            vec!["app_id = ?".into()],
            vec![Arg::Text(app.0.clone())],
            q,
            ("id", "created_at"),
            src_row,
        )
        .await?;
        page.try_map(|s| self.unseal_source(s))
    }

    async fn update_source(&self, s: Source) -> Result<Source> {
        let sealed = self.seal_source(s.clone());
        let n = sqlx::query(
            "UPDATE sources SET uid = $3, name = $4, verification = $5, secrets = $6, \
             options = $7, updated_at = $8 WHERE id = $1 AND app_id = $2",
        )
        .bind(&sealed.id.0)
        .bind(&sealed.app_id.0)
        .bind(&sealed.uid)
        .bind(&sealed.name)
        .bind(json(&sealed.verification))
        .bind(json(&sealed.secrets))
        .bind(json(&sealed.options))
        .bind(sealed.updated_at)
        .execute(&self.pool)
        .await
        .map_err(map_pg)?
        .rows_affected();
        if n == 0 {
            return Err(StoreError::NotFound);
        }
        Ok(s)
    }

    async fn delete_source(&self, app: &AppId, id: &SourceId) -> Result<()> {
        let mut tx = self.begin().await?;
        let n = sqlx::query("DELETE FROM sources WHERE app_id = $1 AND id = $2")
            .bind(&app.0)
            .bind(&id.0)
            .execute(&mut *tx)
            .await
            .map_err(map_pg)?
            .rows_affected();
        if n == 0 {
            return Err(StoreError::NotFound);
        }
        for sql in [
            "DELETE FROM inbound_requests WHERE source_id = $1",
            "DELETE FROM inbound_order WHERE source_id = $1",
            "DELETE FROM inbound_held WHERE source_id = $1",
        ] {
            exec(&mut tx, sql, &id.0).await?;
        }
        tx.commit().await.map_err(map_pg)?;
        self.seen.sources.lock().remove(&id.0);
        Ok(())
    }

    async fn ingest(
        &self,
        req: InboundRequest,
        dedup: Option<DedupCheck>,
        msg: Message,
        order: Option<OrderCheck>,
    ) -> Result<IngestOutcome> {
        let Some(spool) = &self.spool else {
            return self.ingest_db(req, dedup, msg, order).await;
        };
        // Behind anything already spooled (publishes included): one file, one order. Known
        // down (the drainer clears that within 250 ms of the database answering): no need to
        // wait for a connection attempt first.
        if spool.active() || self.is_down() {
            return self.spool_ingest(spool, req, dedup, msg, order).await;
        }
        match self
            .ingest_db(req.clone(), dedup, msg.clone(), order.clone())
            .await
        {
            Err(StoreError::Unavailable(why)) => {
                tracing::warn!(error = %why, "database unreachable: ingesting into the local spool");
                self.mark_down();
                self.spool_ingest(spool, req, dedup, msg, order).await
            }
            other => other,
        }
    }

    async fn release_held(&self, now: Millis, max_keys: usize) -> Result<u64> {
        order::sweep(&self.pool, now, max_keys).await
    }

    async fn log_inbound(&self, req: InboundRequest) -> Result<()> {
        // During an outage the row is not spooled (rejected requests and handshakes are
        // answered without it; a quarantine answers 503 and the provider retries): fail at
        // once rather than wait for a connection on every such request. (`down` is only
        // cleared by the spool drainer, so without a spool it is not trusted here.)
        if self.spool.is_some() && self.is_down() {
            return Err(StoreError::Unavailable(
                "the database is unreachable; inbound request not logged".into(),
            ));
        }
        let mut c = self.pool.acquire().await.map_err(map_pg)?;
        insert_inbound(&mut c, &req).await
    }

    async fn list_inbound(
        &self,
        source: &SourceId,
        status: Option<InboundStatus>,
        q: &ListQuery,
    ) -> Result<Page<InboundRequest>> {
        let mut conds = vec!["source_id = ?".to_string()];
        let mut args = vec![Arg::Text(source.0.clone())];
        if let Some(s) = status {
            conds.push("status = ?".into());
            args.push(Arg::Text(s.as_str().into()));
        }
        query_page(
            &self.pool,
            &format!("SELECT {INREQ_COLS} FROM inbound_requests"),
            conds,
            args,
            q,
            ("id", "created_at"),
            inreq_row,
        )
        .await
    }

    async fn get_inbound(
        &self,
        source: &SourceId,
        id: &InboundRequestId,
    ) -> Result<Option<InboundRequest>> {
        sqlx::query(&format!(
            "SELECT {INREQ_COLS} FROM inbound_requests WHERE source_id = $1 AND id = $2"
        ))
        .bind(&source.0)
        .bind(&id.0)
        .fetch_optional(&self.pool)
        .await
        .map_err(map_pg)?
        .as_ref()
        .map(inreq_row)
        .transpose()
    }

    async fn release_inbound(
        &self,
        source: &SourceId,
        id: &InboundRequestId,
        msg: Message,
    ) -> Result<Published> {
        let mut tx = self.begin().await?;
        let n = sqlx::query(
            "UPDATE inbound_requests SET status = 'released', msg_id = $3 \
             WHERE source_id = $1 AND id = $2 AND status = 'quarantined'",
        )
        .bind(&source.0)
        .bind(&id.0)
        .bind(&msg.id.0)
        .execute(&mut *tx)
        .await
        .map_err(map_pg)?
        .rows_affected();
        if n == 0 {
            return Err(StoreError::NotFound);
        }
        let p = publish_tx(&mut tx, msg, None).await?;
        tx.commit().await.map_err(map_pg)?;
        Ok(p)
    }

    async fn rekey(&self, new: SecretBox) -> Result<u64> {
        let old = self
            .secrets
            .clone()
            .ok_or_else(|| StoreError::Unavailable("the store was opened without a key".into()))?;
        let mut tx = self.begin().await?;
        let mut n = 0;
        for table in ["endpoints", "sources"] {
            let rows = sqlx::query(&format!("SELECT id, secrets FROM {table} FOR UPDATE"))
                .fetch_all(&mut *tx)
                .await
                .map_err(map_pg)?;
            for r in &rows {
                let id: String = get(r, "id")?;
                let mut secrets: Vec<StoredSecret> = parse(&get::<String>(r, "secrets")?)?;
                for s in &mut secrets {
                    let plain = old.decrypt(&s.key).map_err(|_| StoreError::KeyMismatch)?;
                    s.key = new.encrypt(&plain);
                }
                sqlx::query(&format!("UPDATE {table} SET secrets = $2 WHERE id = $1"))
                    .bind(&id)
                    .bind(json(&secrets))
                    .execute(&mut *tx)
                    .await
                    .map_err(map_pg)?;
                n += 1;
            }
        }
        sqlx::query(
            "INSERT INTO meta (key, value) VALUES ('key_check', $1) \
             ON CONFLICT (key) DO UPDATE SET value = EXCLUDED.value",
        )
        .bind(new.encrypt(KEY_CHECK))
        .execute(&mut *tx)
        .await
        .map_err(map_pg)?;
        tx.commit().await.map_err(map_pg)?;
        Ok(n)
    }

    async fn create_token(&self, rec: TokenRecord, hash: [u8; 32]) -> Result<TokenRecord> {
        sqlx::query(
            "INSERT INTO tokens (id, hash, name, app_id, created_at) VALUES ($1,$2,$3,$4,$5)",
        )
        .bind(&rec.id.0)
        .bind(hash.as_slice())
        .bind(&rec.name)
        .bind(rec.app_id.as_ref().map(|a| a.0.clone()))
        .bind(rec.created_at)
        .execute(&self.pool)
        .await
        .map_err(map_pg)?;
        Ok(rec)
    }

    async fn find_token(&self, hash: [u8; 32]) -> Result<Option<TokenRecord>> {
        if self.is_down() {
            if let Some(t) = self.seen.tokens.lock().get(&hash) {
                return Ok(Some(t.clone()));
            }
        }
        let r = sqlx::query("SELECT id, name, app_id, created_at FROM tokens WHERE hash = $1")
            .bind(hash.as_slice())
            .fetch_optional(&self.pool)
            .await
            .map_err(map_pg);
        match r {
            Ok(row) => {
                let t = row.as_ref().map(token_row).transpose()?;
                match &t {
                    Some(t) => remember(&self.seen.tokens, hash, t.clone()),
                    // Revoked (or never existed): forget it at once.
                    None => {
                        self.seen.tokens.lock().remove(&hash);
                    }
                }
                Ok(t)
            }
            Err(StoreError::Unavailable(why)) => {
                self.mark_down();
                let seen = self.seen.tokens.lock().get(&hash).cloned();
                seen.map(Some).ok_or(StoreError::Unavailable(why))
            }
            Err(e) => Err(e),
        }
    }

    async fn list_tokens(&self) -> Result<Vec<TokenRecord>> {
        sqlx::query("SELECT id, name, app_id, created_at FROM tokens ORDER BY id")
            .fetch_all(&self.pool)
            .await
            .map_err(map_pg)?
            .iter()
            .map(token_row)
            .collect()
    }

    async fn delete_token(&self, id: &TokenId) -> Result<()> {
        self.seen.tokens.lock().retain(|_, t| t.id != *id);
        let n = sqlx::query("DELETE FROM tokens WHERE id = $1")
            .bind(&id.0)
            .execute(&self.pool)
            .await
            .map_err(map_pg)?
            .rows_affected();
        if n == 0 {
            return Err(StoreError::NotFound);
        }
        Ok(())
    }

    async fn get_idempotent(
        &self,
        key: [u8; 32],
        since: Millis,
    ) -> Result<Option<IdempotentResponse>> {
        let r =
            sqlx::query("SELECT status, body FROM idempotency WHERE key = $1 AND created_at >= $2")
                .bind(key.as_slice())
                .bind(since)
                .fetch_optional(&self.pool)
                .await
                .map_err(map_pg)?;
        r.map(|r| {
            Ok(IdempotentResponse {
                status: get::<i64>(&r, "status")? as u16,
                body: get(&r, "body")?,
            })
        })
        .transpose()
    }

    async fn put_idempotent(
        &self,
        key: [u8; 32],
        resp: IdempotentResponse,
        now: Millis,
    ) -> Result<()> {
        sqlx::query(
            "INSERT INTO idempotency (key, status, body, created_at) VALUES ($1,$2,$3,$4) \
             ON CONFLICT (key) DO UPDATE SET status = EXCLUDED.status, body = EXCLUDED.body, created_at = EXCLUDED.created_at",
        )
        .bind(key.as_slice())
        .bind(resp.status as i64)
        .bind(&resp.body)
        .bind(now)
        .execute(&self.pool)
        .await
        .map_err(map_pg)?;
        Ok(())
    }
}
