//! The embedded SQLite backend.
//!
//! One writer thread owns the only write connection and applies writes in batches: it takes
//! every job waiting in its queue, runs each inside its own savepoint (so one job's conflict
//! does not undo its neighbours), commits once, and only then answers every caller — group
//! commit, so N concurrent publishes cost one fsync. The database runs in WAL mode with
//! `synchronous=FULL`, which makes each commit durable before it is acknowledged; a batch made
//! only of the delivery engine's bookkeeping commits with `synchronous=NORMAL` instead (see
//! [`Durability`]). Point lookups read on the calling task; other reads go to a small pool of
//! read-only connections in the blocking pool. Both see every committed write.
//!
//! This module must not hold a write transaction open across an `.await` and must not be
//! reachable from two processes at once (the binary takes a lock on the data directory).

use parking_lot::Mutex;
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use async_trait::async_trait;
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
use rusqlite::{params, Connection, OpenFlags, OptionalExtension, Row};
use tokio::sync::{mpsc, oneshot};

mod order;
mod sched;

use crate::{
    AttemptFilter, AttemptRecord, AttemptScope, ClaimBatch, DedupCheck, DisabledEndpoint,
    IdempotentResponse, IngestOutcome, ListQuery, MessageFilter, NextState, OrderCheck, Page,
    Published, Result, Store, StoreError, TokenRecord,
};
use herald_core::breaker::BreakerState;

/// Most jobs folded into one transaction.
const MAX_BATCH: usize = 1024;
/// Read connections kept open.
const READERS: usize = 4;

type Finisher = Box<dyn FnOnce(Result<()>) + Send>;
/// Runs on the writer's connection; says whether it succeeded, the storage error it met if
/// any (see [`crate::WriteHealth`]), and how to answer its caller once the commit is known.
type Job = Box<dyn FnOnce(&Connection) -> (bool, Option<String>, Finisher) + Send>;

/// Whether a write must be on disk before its caller hears back.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Durability {
    /// Committed with `synchronous=FULL` (an fsync of the WAL): everything the API acknowledges
    /// — publishes, ingests, configuration.
    Full,
    /// The delivery engine's bookkeeping (claims, leases, attempt records). Committed with
    /// `synchronous=NORMAL`: it survives a crash of the process, and the next `Full` commit
    /// (or checkpoint) makes it durable, but a power loss before then may undo it. Undoing it
    /// only ever causes a delivery to be made again — a duplicate, never a loss — which the
    /// delivery guarantee allows, and it saves an fsync per claim and per attempt.
    Relaxed,
}

/// Embedded store on one SQLite file.
#[derive(Clone)]
pub struct SqliteStore {
    inner: Arc<Inner>,
}

struct Inner {
    path: PathBuf,
    /// Encrypts endpoint secrets at rest; `None` stores them as they are (tests only).
    secrets: Option<SecretBox>,
    jobs: mpsc::UnboundedSender<(Durability, Job)>,
    readers: Mutex<Vec<Connection>>,
    /// Written by the writer thread only.
    write_health: Arc<crate::WriteHealth>,
}

fn unavailable(e: impl std::fmt::Display) -> StoreError {
    StoreError::Unavailable(e.to_string())
}

fn map_sql(e: rusqlite::Error) -> StoreError {
    if let rusqlite::Error::SqliteFailure(f, msg) = &e {
        if f.code == rusqlite::ErrorCode::ConstraintViolation {
            return StoreError::Conflict(msg.clone().unwrap_or_else(|| "unique constraint".into()));
        }
    }
    StoreError::Unavailable(e.to_string())
}

/// Plaintext of the check value that proves the configured key matches the database.
const KEY_CHECK: &str = "herald-encryption-key-check";

const MIGRATIONS: &[&str] = &[
    r#"
CREATE TABLE apps (
    id TEXT PRIMARY KEY,
    uid TEXT UNIQUE,
    name TEXT NOT NULL,
    throttle_rate INTEGER,
    metadata TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL
);
CREATE TABLE endpoints (
    id TEXT PRIMARY KEY,
    app_id TEXT NOT NULL,
    uid TEXT,
    url TEXT NOT NULL,
    description TEXT NOT NULL,
    disabled INTEGER NOT NULL,
    event_types TEXT,
    channels TEXT,
    throttle_rate INTEGER,
    metadata TEXT NOT NULL,
    headers TEXT NOT NULL,
    retry_schedule TEXT,
    permanent_statuses TEXT NOT NULL,
    ordering TEXT NOT NULL,
    max_concurrency INTEGER,
    signature_scheme TEXT NOT NULL,
    secrets TEXT NOT NULL,
    paused_until INTEGER,
    created_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL,
    UNIQUE (app_id, uid)
);
CREATE INDEX endpoints_app ON endpoints (app_id, id);
CREATE TABLE event_types (
    name TEXT PRIMARY KEY,
    description TEXT NOT NULL,
    archived INTEGER NOT NULL,
    deprecated INTEGER NOT NULL,
    schemas TEXT,
    created_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL
);
CREATE TABLE messages (
    id TEXT PRIMARY KEY,
    app_id TEXT NOT NULL,
    event_id TEXT,
    event_type TEXT NOT NULL,
    payload TEXT,
    channels TEXT,
    created_at INTEGER NOT NULL,
    UNIQUE (app_id, event_id)
);
CREATE INDEX messages_app ON messages (app_id, id);
CREATE TABLE deliveries (
    id INTEGER PRIMARY KEY,
    msg_id TEXT NOT NULL,
    endpoint_id TEXT NOT NULL,
    app_id TEXT NOT NULL,
    status INTEGER NOT NULL,
    attempts INTEGER NOT NULL DEFAULT 0,
    failures INTEGER NOT NULL DEFAULT 0,
    manual INTEGER NOT NULL DEFAULT 0,
    next_at INTEGER,
    lease_owner TEXT,
    updated_at INTEGER NOT NULL,
    UNIQUE (msg_id, endpoint_id)
);
CREATE INDEX deliveries_due ON deliveries (next_at) WHERE status IN (1, 3);
CREATE INDEX deliveries_endpoint ON deliveries (endpoint_id, msg_id);
CREATE TABLE attempts (
    id TEXT PRIMARY KEY,
    delivery_id INTEGER NOT NULL,
    msg_id TEXT NOT NULL,
    endpoint_id TEXT NOT NULL,
    app_id TEXT NOT NULL,
    url TEXT NOT NULL,
    response TEXT NOT NULL,
    status_code INTEGER NOT NULL,
    duration_ms INTEGER NOT NULL,
    status INTEGER NOT NULL,
    trigger_type INTEGER NOT NULL,
    error TEXT,
    created_at INTEGER NOT NULL
);
CREATE INDEX attempts_msg ON attempts (msg_id, id);
CREATE INDEX attempts_endpoint ON attempts (endpoint_id, id);
CREATE TABLE tokens (
    id TEXT PRIMARY KEY,
    hash BLOB NOT NULL UNIQUE,
    name TEXT NOT NULL,
    app_id TEXT,
    created_at INTEGER NOT NULL
);
CREATE TABLE idempotency (
    key BLOB PRIMARY KEY,
    status INTEGER NOT NULL,
    body BLOB NOT NULL,
    created_at INTEGER NOT NULL
);
"#,
    r#"
CREATE TABLE meta (
    key TEXT PRIMARY KEY,
    value TEXT NOT NULL
);
"#,
    r#"
ALTER TABLE messages ADD COLUMN retention_ms INTEGER;
CREATE INDEX messages_retention ON messages (created_at + retention_ms)
    WHERE retention_ms IS NOT NULL AND payload IS NOT NULL;
"#,
    r#"
ALTER TABLE endpoints ADD COLUMN failing_since INTEGER;
CREATE INDEX endpoints_failing ON endpoints (failing_since)
    WHERE failing_since IS NOT NULL AND disabled = 0;
"#,
    // Guardrails: per-endpoint queue position, breaker, token bucket; FIFO keys.
    r#"
ALTER TABLE endpoints ADD COLUMN due_at INTEGER;
ALTER TABLE endpoints ADD COLUMN breaker INTEGER NOT NULL DEFAULT 0;
ALTER TABLE endpoints ADD COLUMN breaker_until INTEGER NOT NULL DEFAULT 0;
ALTER TABLE endpoints ADD COLUMN breaker_cooldown INTEGER NOT NULL DEFAULT 0;
ALTER TABLE endpoints ADD COLUMN consec_failures INTEGER NOT NULL DEFAULT 0;
ALTER TABLE endpoints ADD COLUMN win_start INTEGER NOT NULL DEFAULT 0;
ALTER TABLE endpoints ADD COLUMN win_total INTEGER NOT NULL DEFAULT 0;
ALTER TABLE endpoints ADD COLUMN win_failed INTEGER NOT NULL DEFAULT 0;
ALTER TABLE endpoints ADD COLUMN prev_total INTEGER NOT NULL DEFAULT 0;
ALTER TABLE endpoints ADD COLUMN prev_failed INTEGER NOT NULL DEFAULT 0;
ALTER TABLE endpoints ADD COLUMN tb_tokens REAL NOT NULL DEFAULT 1;
ALTER TABLE endpoints ADD COLUMN tb_at INTEGER NOT NULL DEFAULT 0;
ALTER TABLE messages ADD COLUMN ordering_key TEXT;
ALTER TABLE deliveries ADD COLUMN ordering_key TEXT;
CREATE INDEX endpoints_due ON endpoints (due_at) WHERE due_at IS NOT NULL;
CREATE INDEX deliveries_queue ON deliveries (endpoint_id, status, next_at) WHERE status IN (1, 3);
CREATE INDEX deliveries_fifo ON deliveries (endpoint_id, ordering_key, id)
    WHERE ordering_key IS NOT NULL AND status IN (1, 3);
UPDATE endpoints SET due_at =
    (SELECT MIN(d.next_at) FROM deliveries d WHERE d.endpoint_id = endpoints.id AND d.status IN (1, 3));
"#,
    // Inbound: sources, their request log, dedup keys; headers forwarded with a message.
    r#"
ALTER TABLE messages ADD COLUMN headers TEXT;
CREATE TABLE sources (
    id TEXT PRIMARY KEY,
    app_id TEXT NOT NULL,
    uid TEXT,
    name TEXT NOT NULL,
    verification TEXT NOT NULL,
    secrets TEXT NOT NULL,
    options TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL,
    UNIQUE (app_id, uid)
);
CREATE INDEX sources_app ON sources (app_id, id);
CREATE TABLE inbound_requests (
    id TEXT PRIMARY KEY,
    source_id TEXT NOT NULL,
    app_id TEXT NOT NULL,
    status TEXT NOT NULL,
    reason TEXT,
    msg_id TEXT,
    headers TEXT NOT NULL,
    body TEXT,
    event_type TEXT,
    created_at INTEGER NOT NULL
);
CREATE INDEX inbound_requests_source ON inbound_requests (source_id, id);
CREATE TABLE inbound_dedup (
    key BLOB PRIMARY KEY,
    msg_id TEXT NOT NULL,
    created_at INTEGER NOT NULL
);
"#,
    // Inbound ordering: the last accepted sequence per (source, key), and held events.
    r#"
CREATE TABLE inbound_order (
    source_id TEXT NOT NULL,
    okey TEXT NOT NULL,
    last INTEGER,
    PRIMARY KEY (source_id, okey)
);
CREATE TABLE inbound_held (
    request_id TEXT PRIMARY KEY,
    source_id TEXT NOT NULL,
    okey TEXT NOT NULL,
    seq INTEGER NOT NULL,
    app_id TEXT NOT NULL,
    msg_id TEXT NOT NULL,
    event_type TEXT NOT NULL,
    payload TEXT,
    headers TEXT,
    ordering_key TEXT,
    deadline INTEGER NOT NULL,
    created_at INTEGER NOT NULL,
    UNIQUE (source_id, okey, seq)
);
CREATE INDEX inbound_held_deadline ON inbound_held (deadline);
"#,
    // `deliveries_queue` holds every waiting or leased delivery too, with `next_at`, so a
    // second index of them by `next_at` alone only cost a write on every publish, claim and
    // attempt (the queue summary scans `deliveries_queue` instead).
    r#"
DROP INDEX IF EXISTS deliveries_due;
"#,
];

fn open_conn(path: &Path, read_only: bool) -> rusqlite::Result<Connection> {
    let flags = if read_only {
        OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX
    } else {
        OpenFlags::SQLITE_OPEN_READ_WRITE
            | OpenFlags::SQLITE_OPEN_CREATE
            | OpenFlags::SQLITE_OPEN_NO_MUTEX
    };
    let conn = Connection::open_with_flags(path, flags)?;
    conn.busy_timeout(std::time::Duration::from_secs(5))?;
    if !read_only {
        conn.pragma_update(None, "journal_mode", "WAL")?;
        // FULL: the WAL is fsync'd at every commit, so an acknowledged write survives power
        // loss, not only a process crash.
        conn.pragma_update(None, "synchronous", "FULL")?;
    }
    conn.set_prepared_statement_cache_capacity(64);
    Ok(conn)
}

fn migrate(conn: &mut Connection) -> rusqlite::Result<()> {
    let version: i64 = conn.pragma_query_value(None, "user_version", |r| r.get(0))?;
    for (i, sql) in MIGRATIONS.iter().enumerate().skip(version as usize) {
        let tx = conn.transaction()?;
        tx.execute_batch(sql)?;
        tx.pragma_update(None, "user_version", (i + 1) as i64)?;
        tx.commit()?;
    }
    Ok(())
}

impl SqliteStore {
    /// Opens (creating if needed) the database at `path`, applies migrations and starts the
    /// writer thread.
    pub fn open(path: impl AsRef<Path>) -> Result<Self> {
        let path = path.as_ref().to_path_buf();
        let mut conn = open_conn(&path, false).map_err(unavailable)?;
        migrate(&mut conn).map_err(unavailable)?;
        let (tx, rx) = mpsc::unbounded_channel::<(Durability, Job)>();
        let write_health = Arc::new(crate::WriteHealth::default());
        let health = write_health.clone();
        std::thread::Builder::new()
            .name("herald-sqlite-writer".into())
            .spawn(move || writer_loop(conn, rx, &health))
            .map_err(unavailable)?;
        Ok(Self {
            inner: Arc::new(Inner {
                path,
                jobs: tx,
                readers: Mutex::new(Vec::new()),
                secrets: None,
                write_health,
            }),
        })
    }

    /// Opens the store with secrets encrypted at rest under `key`. The first open records a
    /// check value; a later open with another key fails with [`StoreError::KeyMismatch`]
    /// instead of starting with secrets it cannot read.
    pub fn open_encrypted(path: impl AsRef<Path>, key: SecretBox) -> Result<Self> {
        let mut store = Self::open(path)?;
        let conn = open_conn(&store.inner.path, false).map_err(unavailable)?;
        let check: Option<String> = conn
            .query_row("SELECT value FROM meta WHERE key = 'key_check'", [], |r| {
                r.get(0)
            })
            .optional()
            .map_err(map_sql)?;
        match check {
            Some(c) => match key.decrypt(&c) {
                Ok(v) if v == KEY_CHECK => {}
                _ => return Err(StoreError::KeyMismatch),
            },
            None => {
                conn.execute(
                    "INSERT INTO meta (key, value) VALUES ('key_check', ?1)",
                    [key.encrypt(KEY_CHECK)],
                )
                .map_err(map_sql)?;
            }
        }
        Arc::get_mut(&mut store.inner)
            .expect("not shared yet")
            .secrets = Some(key);
        Ok(store)
    }

    /// Encrypts every secret of `ep` for storage.
    fn seal(&self, mut ep: Endpoint) -> Endpoint {
        crate::seal_secrets(self.inner.secrets.as_ref(), &mut ep.secrets);
        ep
    }

    fn seal_source(&self, mut s: Source) -> Source {
        crate::seal_secrets(self.inner.secrets.as_ref(), &mut s.secrets);
        s
    }

    fn unseal_source(&self, mut s: Source) -> Result<Source> {
        crate::unseal_secrets(self.inner.secrets.as_ref(), &mut s.secrets)?;
        Ok(s)
    }

    /// Decrypts every secret of a stored endpoint.
    fn unseal(&self, mut ep: Endpoint) -> Result<Endpoint> {
        crate::unseal_secrets(self.inner.secrets.as_ref(), &mut ep.secrets)?;
        Ok(ep)
    }

    /// Caps the database file at `pages` pages (`None`: lifts the cap) on the writer's
    /// connection, and returns the cap in force. A cap below the current size holds the file
    /// at its current size. Writes that need the file to grow then fail exactly as on a full
    /// disk (`SQLITE_FULL`), which is how the full-disk handling is exercised without filling
    /// a disk: fault drills and tests only.
    pub async fn cap_file_pages(&self, pages: Option<u64>) -> Result<u64> {
        // SQLite's own ceiling; the pragma clamps larger values to it.
        let n = pages.unwrap_or(u32::MAX as u64 - 1);
        self.write(move |c| {
            c.query_row(&format!("PRAGMA max_page_count = {n}"), [], |r| {
                r.get::<_, i64>(0)
            })
            .map(|v| v as u64)
            .map_err(map_sql)
        })
        .await
    }

    /// Applies migrations and returns (for `herald migrate`).
    pub fn migrate_only(path: impl AsRef<Path>) -> Result<()> {
        let mut conn = open_conn(path.as_ref(), false).map_err(unavailable)?;
        migrate(&mut conn).map_err(unavailable)
    }

    /// Runs `f` inside the next group-commit transaction and returns its result after the
    /// commit is durable.
    async fn write<R, F>(&self, f: F) -> Result<R>
    where
        R: Send + 'static,
        F: FnOnce(&Connection) -> Result<R> + Send + 'static,
    {
        self.write_with(Durability::Full, f).await
    }

    /// [`Self::write`] for the engine's bookkeeping (see [`Durability::Relaxed`]).
    async fn write_relaxed<R, F>(&self, f: F) -> Result<R>
    where
        R: Send + 'static,
        F: FnOnce(&Connection) -> Result<R> + Send + 'static,
    {
        self.write_with(Durability::Relaxed, f).await
    }

    async fn write_with<R, F>(&self, durability: Durability, f: F) -> Result<R>
    where
        R: Send + 'static,
        F: FnOnce(&Connection) -> Result<R> + Send + 'static,
    {
        let (tx, rx) = oneshot::channel::<Result<R>>();
        let job: Job = Box::new(move |conn| {
            let r = f(conn);
            let ok = r.is_ok();
            let failure = match &r {
                Err(StoreError::Unavailable(e)) => Some(e.clone()),
                _ => None,
            };
            let fin: Finisher = Box::new(move |commit: Result<()>| {
                let _ = tx.send(match commit {
                    Ok(()) => r,
                    Err(e) => Err(e),
                });
            });
            (ok, failure, fin)
        });
        self.inner
            .jobs
            .send((durability, job))
            .map_err(|_| StoreError::Unavailable("writer stopped".into()))?;
        rx.await
            .map_err(|_| StoreError::Unavailable("writer stopped".into()))?
    }

    /// Runs a point lookup (one row by key) on a read connection right here, on the calling
    /// task. Such a read takes microseconds from the page cache and never waits for the writer
    /// (WAL), which is less than the thread hand-off of the blocking pool costs; reads that scan
    /// (lists, stats) use [`Self::read`].
    fn read_point<R>(&self, f: impl FnOnce(&Connection) -> Result<R>) -> Result<R> {
        let conn = self.inner.readers.lock().pop();
        let conn = match conn {
            Some(c) => c,
            None => open_conn(&self.inner.path, true).map_err(unavailable)?,
        };
        let r = f(&conn);
        let mut pool = self.inner.readers.lock();
        if pool.len() < READERS {
            pool.push(conn);
        }
        r
    }

    /// Runs `f` on a read connection in the blocking pool.
    async fn read<R, F>(&self, f: F) -> Result<R>
    where
        R: Send + 'static,
        F: FnOnce(&Connection) -> Result<R> + Send + 'static,
    {
        let inner = self.inner.clone();
        tokio::task::spawn_blocking(move || {
            let conn = inner.readers.lock().pop();
            let conn = match conn {
                Some(c) => c,
                None => open_conn(&inner.path, true).map_err(unavailable)?,
            };
            let r = f(&conn);
            let mut pool = inner.readers.lock();
            if pool.len() < READERS {
                pool.push(conn);
            }
            r
        })
        .await
        .map_err(unavailable)?
    }
}

/// Applies every job in batches; records in `health` whether the last batch that tried to
/// change data could (a batch that changed nothing, like a ping, proves nothing about a full
/// disk and leaves it as it was).
fn writer_loop(
    conn: Connection,
    mut rx: mpsc::UnboundedReceiver<(Durability, Job)>,
    health: &crate::WriteHealth,
) {
    let mut batch: Vec<Job> = Vec::with_capacity(MAX_BATCH);
    // The connection opens with synchronous=FULL.
    let mut current = Durability::Full;
    // Statements run once or twice per job: parsed once.
    let exec = |sql: &str| {
        conn.prepare_cached(sql)
            .and_then(|mut st| st.execute([]))
            .map(|_| ())
    };
    while let Some((d, first)) = rx.blocking_recv() {
        let mut durability = d;
        batch.push(first);
        while batch.len() < MAX_BATCH {
            match rx.try_recv() {
                Ok((d, j)) => {
                    if d == Durability::Full {
                        durability = Durability::Full;
                    }
                    batch.push(j)
                }
                Err(_) => break,
            }
        }
        // One acknowledged write in the batch makes the whole commit durable.
        if durability != current {
            let level = match durability {
                Durability::Full => "FULL",
                Durability::Relaxed => "NORMAL",
            };
            match conn.pragma_update(None, "synchronous", level) {
                Ok(()) => current = durability,
                // Staying at FULL is always safe; a failure to relax is only slower.
                Err(e) => tracing::warn!(error = %e, "could not change synchronous"),
            }
        }
        if let Err(e) = conn.execute_batch("BEGIN IMMEDIATE") {
            let err = unavailable(&e);
            health.failed(e.to_string());
            for job in batch.drain(..) {
                let (_, _, fin) = job(&conn);
                fin(Err(StoreError::Unavailable(err.to_string())));
            }
            let _ = conn.execute_batch("ROLLBACK");
            continue;
        }
        let mut finishers = Vec::with_capacity(batch.len());
        let changes_before = conn.total_changes();
        let mut failure = None;
        for job in batch.drain(..) {
            if exec("SAVEPOINT job").is_err() {
                // Dropping the job closes its reply channel: the caller sees `Unavailable`.
                drop(job);
                continue;
            }
            let (ok, failed, fin) = job(&conn);
            if failure.is_none() {
                failure = failed;
            }
            if !ok {
                let _ = exec("ROLLBACK TO job");
            }
            let _ = exec("RELEASE job");
            finishers.push(fin);
        }
        let changed = conn.total_changes() != changes_before;
        let commit = conn.execute_batch("COMMIT").map_err(unavailable);
        if commit.is_err() {
            let _ = conn.execute_batch("ROLLBACK");
        }
        // A job's own error first: SQLite rolls the whole transaction back on a full disk, so
        // the commit then only says "no transaction is active".
        match (&commit, failure) {
            (_, Some(e)) => health.failed(e),
            (Err(e), None) => health.failed(e.to_string()),
            (Ok(()), None) if changed => health.succeeded(),
            (Ok(()), None) => {}
        }
        for fin in finishers {
            fin(match &commit {
                Ok(()) => Ok(()),
                Err(e) => Err(StoreError::Unavailable(e.to_string())),
            });
        }
    }
}

// ---- row mapping ---------------------------------------------------------------------------

fn json<T: serde::Serialize>(v: &T) -> String {
    serde_json::to_string(v).expect("serializable")
}

fn json_opt<T: serde::Serialize>(v: &Option<T>) -> Option<String> {
    v.as_ref().map(json)
}

fn parse<T: serde::de::DeserializeOwned>(s: &str) -> rusqlite::Result<T> {
    serde_json::from_str(s).map_err(|e| {
        rusqlite::Error::FromSqlConversionFailure(0, rusqlite::types::Type::Text, Box::new(e))
    })
}

fn parse_opt<T: serde::de::DeserializeOwned>(s: Option<String>) -> rusqlite::Result<Option<T>> {
    s.map(|s| parse(&s)).transpose()
}

const APP_COLS: &str = "id, uid, name, throttle_rate, metadata, created_at, updated_at";

fn app_row(r: &Row) -> rusqlite::Result<Application> {
    Ok(Application {
        id: AppId(r.get(0)?),
        uid: r.get(1)?,
        name: r.get(2)?,
        throttle_rate: r.get(3)?,
        metadata: parse(&r.get::<_, String>(4)?)?,
        created_at: r.get(5)?,
        updated_at: r.get(6)?,
    })
}

const EP_COLS: &str = "id, app_id, uid, url, description, disabled, event_types, channels, \
    throttle_rate, metadata, headers, retry_schedule, permanent_statuses, ordering, \
    max_concurrency, signature_scheme, secrets, paused_until, created_at, updated_at";
/// Columns read back: the written ones plus state only the store maintains.
const EP_READ: &str = "id, app_id, uid, url, description, disabled, event_types, channels, \
    throttle_rate, metadata, headers, retry_schedule, permanent_statuses, ordering, \
    max_concurrency, signature_scheme, secrets, paused_until, created_at, updated_at, breaker";

fn ep_row(r: &Row) -> rusqlite::Result<Endpoint> {
    let ordering: String = r.get(13)?;
    let scheme: String = r.get(15)?;
    Ok(Endpoint {
        id: EndpointId(r.get(0)?),
        app_id: AppId(r.get(1)?),
        uid: r.get(2)?,
        url: r.get(3)?,
        description: r.get(4)?,
        disabled: r.get(5)?,
        event_types: parse_opt(r.get(6)?)?,
        channels: parse_opt(r.get(7)?)?,
        throttle_rate: r.get(8)?,
        metadata: parse(&r.get::<_, String>(9)?)?,
        headers: parse(&r.get::<_, String>(10)?)?,
        retry_schedule: parse_opt(r.get(11)?)?,
        permanent_statuses: parse(&r.get::<_, String>(12)?)?,
        ordering: if ordering == "fifo" {
            Ordering::Fifo
        } else {
            Ordering::None
        },
        max_concurrency: r.get(14)?,
        signature_scheme: SignatureScheme::parse(&scheme).unwrap_or_default(),
        secrets: parse::<Vec<StoredSecret>>(&r.get::<_, String>(16)?)?,
        paused_until: r.get(17)?,
        created_at: r.get(18)?,
        updated_at: r.get(19)?,
        breaker: BreakerState::from_i64(r.get(20)?),
    })
}

fn ep_params(ep: &Endpoint) -> [Box<dyn rusqlite::ToSql>; 20] {
    [
        Box::new(ep.id.0.clone()),
        Box::new(ep.app_id.0.clone()),
        Box::new(ep.uid.clone()),
        Box::new(ep.url.clone()),
        Box::new(ep.description.clone()),
        Box::new(ep.disabled),
        Box::new(json_opt(&ep.event_types)),
        Box::new(json_opt(&ep.channels)),
        Box::new(ep.throttle_rate),
        Box::new(json(&ep.metadata)),
        Box::new(json(&ep.headers)),
        Box::new(json_opt(&ep.retry_schedule)),
        Box::new(json(&ep.permanent_statuses)),
        Box::new(match ep.ordering {
            Ordering::Fifo => "fifo",
            Ordering::None => "none",
        }),
        Box::new(ep.max_concurrency),
        Box::new(ep.signature_scheme.as_str()),
        Box::new(json(&ep.secrets)),
        Box::new(ep.paused_until),
        Box::new(ep.created_at),
        Box::new(ep.updated_at),
    ]
}

const ET_COLS: &str = "name, description, archived, deprecated, schemas, created_at, updated_at";

fn et_row(r: &Row) -> rusqlite::Result<EventType> {
    Ok(EventType {
        name: r.get(0)?,
        description: r.get(1)?,
        archived: r.get(2)?,
        deprecated: r.get(3)?,
        schemas: parse_opt(r.get(4)?)?,
        created_at: r.get(5)?,
        updated_at: r.get(6)?,
    })
}

const MSG_COLS: &str =
    "m.id, m.app_id, m.event_id, m.event_type, m.payload, m.channels, m.created_at, m.retention_ms, \
     m.ordering_key, m.headers";

fn msg_row_at(r: &Row, o: usize) -> rusqlite::Result<Message> {
    Ok(Message {
        id: MessageId(r.get(o)?),
        app_id: AppId(r.get(o + 1)?),
        event_id: r.get(o + 2)?,
        event_type: r.get(o + 3)?,
        payload: r.get(o + 4)?,
        channels: parse_opt(r.get(o + 5)?)?,
        created_at: r.get(o + 6)?,
        retention_ms: r.get(o + 7)?,
        ordering_key: r.get(o + 8)?,
        headers: parse_opt(r.get(o + 9)?)?,
    })
}

const DLV_COLS: &str =
    "d.id, d.msg_id, d.endpoint_id, d.app_id, d.status, d.attempts, d.failures, d.next_at, d.updated_at";

fn dlv_row(r: &Row) -> rusqlite::Result<Delivery> {
    let status = DeliveryStatus::from_i64(r.get(4)?);
    let next: Option<i64> = r.get(7)?;
    Ok(Delivery {
        id: r.get(0)?,
        msg_id: MessageId(r.get(1)?),
        endpoint_id: EndpointId(r.get(2)?),
        app_id: AppId(r.get(3)?),
        status,
        attempts: r.get(5)?,
        failures: r.get(6)?,
        next_attempt_at: match status {
            DeliveryStatus::Pending | DeliveryStatus::Sending => next,
            _ => None,
        },
        updated_at: r.get(8)?,
    })
}

const ATT_COLS: &str = "id, msg_id, endpoint_id, app_id, delivery_id, url, response, status_code, \
    duration_ms, status, trigger_type, error, created_at";

fn att_row(r: &Row) -> rusqlite::Result<Attempt> {
    Ok(Attempt {
        id: AttemptId(r.get(0)?),
        msg_id: MessageId(r.get(1)?),
        endpoint_id: EndpointId(r.get(2)?),
        app_id: AppId(r.get(3)?),
        delivery_id: r.get(4)?,
        url: r.get(5)?,
        response: r.get(6)?,
        response_status_code: r.get(7)?,
        response_duration_ms: r.get(8)?,
        status: DeliveryStatus::from_i64(r.get(9)?),
        trigger_type: if r.get::<_, i64>(10)? == 1 {
            TriggerType::Manual
        } else {
            TriggerType::Scheduled
        },
        error: r.get(11)?,
        created_at: r.get(12)?,
    })
}

// ---- pagination ----------------------------------------------------------------------------

use rusqlite::types::Value as SqlValue;

/// Appends keyset conditions for `q` and returns the ORDER BY / LIMIT tail.
fn paginate(
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

fn where_sql(conds: &[String]) -> String {
    if conds.is_empty() {
        String::new()
    } else {
        format!(" WHERE {}", conds.join(" AND "))
    }
}

fn finish_page<T>(q: &ListQuery, mut items: Vec<T>) -> Page<T> {
    let has_more = items.len() > q.limit;
    items.truncate(q.limit);
    if q.backwards {
        items.reverse();
    }
    Page { items, has_more }
}

fn query_page<T, F>(
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

fn one<T>(r: rusqlite::Result<Option<T>>) -> Result<Option<T>> {
    r.map_err(map_sql)
}

fn endpoint_by(conn: &Connection, app: &str, id_or_uid: &str) -> Result<Option<Endpoint>> {
    one(conn
        .prepare_cached(&format!(
            "SELECT {EP_READ} FROM endpoints WHERE app_id = ?1 AND (id = ?2 OR uid = ?2)"
        ))
        .map_err(map_sql)?
        .query_row(params![app, id_or_uid], ep_row)
        .optional())
}

/// Queues a delivery, due at `now`, and makes its endpoint due. `ordering_key` is set for
/// FIFO endpoints only (the message's key, or `""` for messages without one).
#[allow(clippy::too_many_arguments)]
fn insert_delivery(
    conn: &Connection,
    msg: &str,
    ep: &str,
    app: &str,
    now: Millis,
    manual: bool,
    ordering_key: Option<&str>,
) -> Result<()> {
    conn.prepare_cached(
        "INSERT INTO deliveries (msg_id, endpoint_id, app_id, status, next_at, manual, updated_at, ordering_key) \
         VALUES (?1, ?2, ?3, 1, ?4, ?5, ?4, ?6)",
    )
    .and_then(|mut s| s.execute(params![msg, ep, app, now, manual, ordering_key]))
    .map_err(map_sql)?;
    sched::touch_due(conn, ep, now)
}

const SRC_COLS: &str =
    "id, app_id, uid, name, verification, secrets, options, created_at, updated_at";

fn src_row(r: &Row) -> rusqlite::Result<Source> {
    Ok(Source {
        id: SourceId(r.get(0)?),
        app_id: AppId(r.get(1)?),
        uid: r.get(2)?,
        name: r.get(3)?,
        verification: parse(&r.get::<_, String>(4)?)?,
        secrets: parse(&r.get::<_, String>(5)?)?,
        options: parse(&r.get::<_, String>(6)?)?,
        created_at: r.get(7)?,
        updated_at: r.get(8)?,
    })
}

const INREQ_COLS: &str =
    "id, source_id, app_id, status, reason, msg_id, headers, body, event_type, created_at";

fn inreq_row(r: &Row) -> rusqlite::Result<InboundRequest> {
    let status: String = r.get(3)?;
    Ok(InboundRequest {
        id: InboundRequestId(r.get(0)?),
        source_id: SourceId(r.get(1)?),
        app_id: AppId(r.get(2)?),
        status: InboundStatus::parse(&status).unwrap_or(InboundStatus::Rejected),
        reason: r.get(4)?,
        msg_id: r.get::<_, Option<String>>(5)?.map(MessageId),
        headers: parse(&r.get::<_, String>(6)?)?,
        body: r.get(7)?,
        event_type: r.get(8)?,
        created_at: r.get(9)?,
    })
}

fn insert_inbound(c: &Connection, q: &InboundRequest) -> Result<()> {
    c.prepare_cached(&format!(
        "INSERT INTO inbound_requests ({INREQ_COLS}) VALUES (?1,?2,?3,?4,?5,?6,?7,?8,?9,?10)"
    ))
    .and_then(|mut s| {
        s.execute(params![
            q.id.0,
            q.source_id.0,
            q.app_id.0,
            q.status.as_str(),
            q.reason,
            q.msg_id.as_ref().map(|m| m.0.clone()),
            json(&q.headers),
            q.body,
            q.event_type,
            q.created_at
        ])
    })
    .map_err(map_sql)?;
    Ok(())
}

/// Takes an inbound dedup key for `msg` (replacing an expired holder).
fn claim_dedup(c: &Connection, d: DedupCheck, msg: &MessageId, now: Millis) -> Result<()> {
    c.prepare_cached(
        "INSERT OR REPLACE INTO inbound_dedup (key, msg_id, created_at) VALUES (?1, ?2, ?3)",
    )
    .and_then(|mut s| s.execute(params![d.key.as_slice(), msg.0, now]))
    .map_err(map_sql)?;
    Ok(())
}

/// The publish transaction's work: the message and one delivery per matching endpoint.
fn publish_in(c: &Connection, msg: Message, only: Option<EndpointId>) -> Result<Published> {
    c.prepare_cached(
        "INSERT INTO messages (id, app_id, event_id, event_type, payload, channels, created_at, retention_ms, ordering_key, headers) \
         VALUES (?1,?2,?3,?4,?5,?6,?7,?8,?9,?10)",
    )
    .and_then(|mut s| {
        s.execute(params![
            msg.id.0, msg.app_id.0, msg.event_id, msg.event_type, msg.payload,
            json_opt(&msg.channels), msg.created_at, msg.retention_ms, msg.ordering_key,
            json_opt(&msg.headers)
        ])
    })
    .map_err(|e| match map_sql(e) {
        StoreError::Conflict(_) => StoreError::Conflict("eventId already used in this application".into()),
        other => other,
    })?;
    // Only what fan-out needs: this runs in the writer thread for every publish, so decoding
    // whole endpoint rows (secrets, headers, metadata) here would be paid per message.
    struct Target {
        id: String,
        event_types: Option<Vec<String>>,
        channels: Option<Vec<String>>,
        fifo: bool,
        paused_until: Option<Millis>,
    }
    let mut stmt = c
        .prepare_cached(
            "SELECT id, event_types, channels, ordering, paused_until FROM endpoints \
             WHERE app_id = ?1 AND disabled = 0",
        )
        .map_err(map_sql)?;
    let eps = stmt
        .query_map([&msg.app_id.0], |r| {
            Ok(Target {
                id: r.get(0)?,
                event_types: parse_opt(r.get(1)?)?,
                channels: parse_opt(r.get(2)?)?,
                fifo: r.get_ref(3)?.as_str().is_ok_and(|o| o == "fifo"),
                paused_until: r.get(4)?,
            })
        })
        .map_err(map_sql)?
        .collect::<rusqlite::Result<Vec<_>>>()
        .map_err(map_sql)?;
    let mut deliveries = 0;
    let wanted = |e: &Target| match &only {
        Some(id) => e.id == id.0,
        None => herald_core::model::subscribed(
            e.event_types.as_deref(),
            e.channels.as_deref(),
            &msg.event_type,
            msg.channels.as_deref(),
        ),
    };
    for ep in eps.iter().filter(|e| wanted(e)) {
        let at = ep
            .paused_until
            .map_or(msg.created_at, |p| p.max(msg.created_at));
        let key = ep.fifo.then(|| msg.ordering_key.as_deref().unwrap_or(""));
        insert_delivery(c, &msg.id.0, &ep.id, &msg.app_id.0, at, false, key)?;
        deliveries += 1;
    }
    Ok(Published {
        message: msg,
        deliveries,
    })
}

#[async_trait]
impl Store for SqliteStore {
    async fn ping(&self) -> Result<()> {
        self.read(|c| c.query_row("SELECT 1", [], |_| Ok(())).map_err(map_sql))
            .await?;
        // A read proves the file answers; a no-op write proves the writer thread is alive.
        self.write(|_| Ok(())).await
    }

    fn last_write_failure(&self) -> Option<crate::WriteFailure> {
        self.inner.write_health.last()
    }

    async fn create_app(&self, app: Application) -> Result<Application> {
        self.write(move |c| {
            c.prepare_cached(&format!(
                "INSERT INTO apps ({APP_COLS}) VALUES (?1,?2,?3,?4,?5,?6,?7)"
            ))
            .and_then(|mut s| {
                s.execute(params![
                    app.id.0,
                    app.uid,
                    app.name,
                    app.throttle_rate,
                    json(&app.metadata),
                    app.created_at,
                    app.updated_at
                ])
            })
            .map_err(map_sql)?;
            Ok(app)
        })
        .await
    }

    async fn get_app(&self, id_or_uid: &str) -> Result<Option<Application>> {
        let key = id_or_uid.to_string();
        self.read_point(|c| {
            one(c
                .prepare_cached(&format!(
                    "SELECT {APP_COLS} FROM apps WHERE id = ?1 OR uid = ?1"
                ))
                .map_err(map_sql)?
                .query_row([key], app_row)
                .optional())
        })
    }

    async fn list_apps(&self, q: &ListQuery) -> Result<Page<Application>> {
        let q = q.clone();
        self.read(move |c| {
            query_page(
                c,
                &format!("SELECT {APP_COLS} FROM apps"),
                vec![],
                vec![],
                &q,
                ("id", "created_at"),
                app_row,
            )
        })
        .await
    }

    async fn update_app(&self, app: Application) -> Result<Application> {
        self.write(move |c| {
            let n = c
                .prepare_cached(
                    "UPDATE apps SET uid = ?2, name = ?3, throttle_rate = ?4, metadata = ?5, updated_at = ?6 WHERE id = ?1",
                )
                .and_then(|mut s| {
                    s.execute(params![
                        app.id.0, app.uid, app.name, app.throttle_rate, json(&app.metadata), app.updated_at
                    ])
                })
                .map_err(map_sql)?;
            if n == 0 {
                return Err(StoreError::NotFound);
            }
            Ok(app)
        })
        .await
    }

    async fn delete_app(&self, id: &AppId) -> Result<()> {
        let id = id.0.clone();
        self.write(move |c| {
            for sql in [
                "DELETE FROM attempts WHERE app_id = ?1",
                "DELETE FROM deliveries WHERE app_id = ?1",
                "DELETE FROM messages WHERE app_id = ?1",
                "DELETE FROM endpoints WHERE app_id = ?1",
                "DELETE FROM tokens WHERE app_id = ?1",
                "DELETE FROM inbound_held WHERE app_id = ?1",
            ] {
                c.execute(sql, [&id]).map_err(map_sql)?;
            }
            if c.execute("DELETE FROM apps WHERE id = ?1", [&id])
                .map_err(map_sql)?
                == 0
            {
                return Err(StoreError::NotFound);
            }
            Ok(())
        })
        .await
    }

    async fn create_endpoint(&self, ep: Endpoint) -> Result<Endpoint> {
        let ep = self.seal(ep);
        self.write(move |c| {
            let p = ep_params(&ep);
            c.prepare_cached(&format!(
                "INSERT INTO endpoints ({EP_COLS}) VALUES (?1,?2,?3,?4,?5,?6,?7,?8,?9,?10,?11,?12,?13,?14,?15,?16,?17,?18,?19,?20)"
            ))
            .and_then(|mut s| s.execute(rusqlite::params_from_iter(p.iter())))
            .map_err(map_sql)?;
            Ok(ep)
        })
        .await
        .and_then(|e| self.unseal(e))
    }

    async fn get_endpoint(&self, app: &AppId, id_or_uid: &str) -> Result<Option<Endpoint>> {
        let (app, key) = (app.0.clone(), id_or_uid.to_string());
        self.read(move |c| endpoint_by(c, &app, &key))
            .await?
            .map(|e| self.unseal(e))
            .transpose()
    }

    async fn list_endpoints(&self, app: &AppId, q: &ListQuery) -> Result<Page<Endpoint>> {
        let (app, q) = (app.0.clone(), q.clone());
        let page = self
            .read(move |c| {
                query_page(
                    c,
                    &format!("SELECT {EP_READ} FROM endpoints"),
                    vec!["app_id = ?".into()],
                    vec![SqlValue::Text(app)],
                    &q,
                    ("id", "created_at"),
                    ep_row,
                )
            })
            .await?;
        page.try_map(|e| self.unseal(e))
    }

    async fn update_endpoint(&self, ep: Endpoint) -> Result<Endpoint> {
        let ep = self.seal(ep);
        self.write(move |c| {
            let was = endpoint_by(c, &ep.app_id.0, &ep.id.0)?.ok_or(StoreError::NotFound)?;
            let mut ep = ep;
            if was.disabled && !ep.disabled {
                ep.paused_until = None;
            }
            let p = ep_params(&ep);
            c.prepare_cached(
                "UPDATE endpoints SET app_id=?2, uid=?3, url=?4, description=?5, disabled=?6, event_types=?7, \
                 channels=?8, throttle_rate=?9, metadata=?10, headers=?11, retry_schedule=?12, \
                 permanent_statuses=?13, ordering=?14, max_concurrency=?15, signature_scheme=?16, \
                 secrets=?17, paused_until=?18, created_at=?19, updated_at=?20 WHERE id=?1",
            )
            .and_then(|mut s| s.execute(rusqlite::params_from_iter(p.iter())))
            .map_err(map_sql)?;
            let now = ep.updated_at;
            if was.disabled && !ep.disabled {
                // Re-enabled: the auto-disable window and the breaker start afresh, and the
                // throttle restarts with one token (no burst).
                c.execute(
                    "UPDATE endpoints SET failing_since = NULL, breaker = 0, breaker_until = 0, \
                     breaker_cooldown = 0, consec_failures = 0, win_total = 0, win_failed = 0, \
                     prev_total = 0, prev_failed = 0, tb_tokens = 1, tb_at = ?2 WHERE id = ?1",
                    params![&ep.id.0, now],
                )
                .map_err(map_sql)?;
            }
            if ep.ordering == Ordering::Fifo && was.ordering != Ordering::Fifo {
                sched::fix_fifo_keys(c, &ep.id.0)?;
            }
            sched::refresh_due(c, &ep.id.0, now)?;
            ep.breaker = endpoint_by(c, &ep.app_id.0, &ep.id.0)?
                .map_or(BreakerState::Closed, |e| e.breaker);
            Ok(ep)
        })
        .await
        .and_then(|e| self.unseal(e))
    }

    async fn delete_endpoint(&self, app: &AppId, id: &EndpointId) -> Result<()> {
        let (app, id) = (app.0.clone(), id.0.clone());
        self.write(move |c| {
            let n = c
                .execute(
                    "DELETE FROM endpoints WHERE app_id = ?1 AND id = ?2",
                    [&app, &id],
                )
                .map_err(map_sql)?;
            if n == 0 {
                return Err(StoreError::NotFound);
            }
            c.execute(
                "DELETE FROM deliveries WHERE endpoint_id = ?1 AND status IN (1, 3)",
                [&id],
            )
            .map_err(map_sql)?;
            Ok(())
        })
        .await
    }

    async fn endpoint_stats(
        &self,
        ep: &EndpointId,
        since: Option<Millis>,
        until: Option<Millis>,
    ) -> Result<EndpointStats> {
        let ep = ep.0.clone();
        self.read(move |c| {
            let mut stmt = c
                .prepare_cached(
                    "SELECT d.status, COUNT(*) FROM deliveries d JOIN messages m ON m.id = d.msg_id \
                     WHERE d.endpoint_id = ?1 AND m.created_at >= ?2 AND m.created_at < ?3 GROUP BY d.status",
                )
                .map_err(map_sql)?;
            let mut stats = EndpointStats::default();
            let rows = stmt
                .query_map(
                    params![ep, since.unwrap_or(i64::MIN), until.unwrap_or(i64::MAX)],
                    |r| Ok((r.get::<_, i64>(0)?, r.get::<_, u64>(1)?)),
                )
                .map_err(map_sql)?;
            for row in rows {
                let (status, n) = row.map_err(map_sql)?;
                match DeliveryStatus::from_i64(status) {
                    DeliveryStatus::Success => stats.success += n,
                    DeliveryStatus::Pending => stats.pending += n,
                    DeliveryStatus::Fail => stats.fail += n,
                    DeliveryStatus::Sending => stats.sending += n,
                }
            }
            Ok(stats)
        })
        .await
    }

    async fn create_event_type(&self, et: EventType) -> Result<EventType> {
        self.write(move |c| {
            c.prepare_cached(&format!(
                "INSERT INTO event_types ({ET_COLS}) VALUES (?1,?2,?3,?4,?5,?6,?7)"
            ))
            .and_then(|mut s| {
                s.execute(params![
                    et.name,
                    et.description,
                    et.archived,
                    et.deprecated,
                    json_opt(&et.schemas),
                    et.created_at,
                    et.updated_at
                ])
            })
            .map_err(map_sql)?;
            Ok(et)
        })
        .await
    }

    async fn get_event_type(&self, name: &str) -> Result<Option<EventType>> {
        let name = name.to_string();
        self.read_point(|c| {
            one(c
                .prepare_cached(&format!(
                    "SELECT {ET_COLS} FROM event_types WHERE name = ?1"
                ))
                .map_err(map_sql)?
                .query_row([name], et_row)
                .optional())
        })
    }

    async fn list_event_types(
        &self,
        q: &ListQuery,
        include_archived: bool,
    ) -> Result<Page<EventType>> {
        let q = q.clone();
        self.read(move |c| {
            let conds = if include_archived {
                vec![]
            } else {
                vec!["archived = 0".to_string()]
            };
            query_page(
                c,
                &format!("SELECT {ET_COLS} FROM event_types"),
                conds,
                vec![],
                &q,
                ("name", "created_at"),
                et_row,
            )
        })
        .await
    }

    async fn update_event_type(&self, et: EventType) -> Result<EventType> {
        self.write(move |c| {
            let n = c
                .prepare_cached(
                    "UPDATE event_types SET description=?2, archived=?3, deprecated=?4, schemas=?5, updated_at=?6 WHERE name=?1",
                )
                .and_then(|mut s| {
                    s.execute(params![et.name, et.description, et.archived, et.deprecated, json_opt(&et.schemas), et.updated_at])
                })
                .map_err(map_sql)?;
            if n == 0 {
                return Err(StoreError::NotFound);
            }
            Ok(et)
        })
        .await
    }

    async fn delete_event_type(&self, name: &str) -> Result<()> {
        let name = name.to_string();
        self.write(move |c| {
            // Svix archives rather than deletes, so existing endpoint filters keep their meaning.
            let n = c
                .execute(
                    "UPDATE event_types SET archived = 1 WHERE name = ?1",
                    [name],
                )
                .map_err(map_sql)?;
            if n == 0 {
                return Err(StoreError::NotFound);
            }
            Ok(())
        })
        .await
    }

    async fn publish(&self, msg: Message, only: Option<EndpointId>) -> Result<Published> {
        self.write(move |c| publish_in(c, msg, only)).await
    }

    async fn get_message(&self, app: &AppId, id_or_event_id: &str) -> Result<Option<Message>> {
        let (app, key) = (app.0.clone(), id_or_event_id.to_string());
        self.read(move |c| {
            one(c
                .prepare_cached(&format!(
                    "SELECT {MSG_COLS} FROM messages m WHERE m.app_id = ?1 AND (m.id = ?2 OR m.event_id = ?2)"
                ))
                .map_err(map_sql)?
                .query_row([app, key], |r| msg_row_at(r, 0))
                .optional())
        })
        .await
    }

    async fn list_messages(
        &self,
        app: &AppId,
        filter: &MessageFilter,
        q: &ListQuery,
    ) -> Result<Page<Message>> {
        let (app, filter, q) = (app.0.clone(), filter.clone(), q.clone());
        self.read(move |c| {
            let mut conds = vec!["m.app_id = ?".to_string()];
            let mut args = vec![SqlValue::Text(app)];
            if let Some(ch) = filter.channel {
                conds.push("EXISTS (SELECT 1 FROM json_each(m.channels) WHERE value = ?)".into());
                args.push(SqlValue::Text(ch));
            }
            if let Some(types) = filter.event_types.filter(|t| !t.is_empty()) {
                conds.push(format!(
                    "m.event_type IN ({})",
                    vec!["?"; types.len()].join(",")
                ));
                args.extend(types.into_iter().map(SqlValue::Text));
            }
            query_page(
                c,
                &format!("SELECT {MSG_COLS} FROM messages m"),
                conds,
                args,
                &q,
                ("m.id", "m.created_at"),
                |r| msg_row_at(r, 0),
            )
        })
        .await
    }

    async fn expunge_payload(&self, app: &AppId, msg: &MessageId) -> Result<()> {
        let (app, msg) = (app.0.clone(), msg.0.clone());
        self.write(move |c| {
            let n = c
                .execute(
                    "UPDATE messages SET payload = NULL WHERE app_id = ?1 AND id = ?2",
                    [app, msg],
                )
                .map_err(map_sql)?;
            if n == 0 {
                return Err(StoreError::NotFound);
            }
            Ok(())
        })
        .await
    }

    async fn deliveries_of_message(&self, msg: &MessageId) -> Result<Vec<Delivery>> {
        let msg = msg.0.clone();
        self.read(move |c| {
            let mut stmt = c
                .prepare_cached(&format!("SELECT {DLV_COLS} FROM deliveries d WHERE d.msg_id = ?1 ORDER BY d.endpoint_id"))
                .map_err(map_sql)?;
            let rows = stmt
                .query_map([msg], dlv_row)
                .map_err(map_sql)?
                .collect::<rusqlite::Result<Vec<_>>>()
                .map_err(map_sql)?;
            Ok(rows)
        })
        .await
    }

    async fn deliveries_of_endpoint(
        &self,
        ep: &EndpointId,
        status: Option<i64>,
        q: &ListQuery,
    ) -> Result<Page<(Delivery, Message)>> {
        let (ep, q) = (ep.0.clone(), q.clone());
        self.read(move |c| {
            let mut conds = vec!["d.endpoint_id = ?".to_string()];
            let mut args = vec![SqlValue::Text(ep)];
            if let Some(s) = status {
                conds.push("d.status = ?".into());
                args.push(SqlValue::Integer(s));
            }
            query_page(
                c,
                &format!("SELECT {DLV_COLS}, {MSG_COLS} FROM deliveries d JOIN messages m ON m.id = d.msg_id"),
                conds,
                args,
                &q,
                ("d.msg_id", "m.created_at"),
                |r| Ok((dlv_row(r)?, msg_row_at(r, 9)?)),
            )
        })
        .await
    }

    async fn resend(
        &self,
        app: &AppId,
        msg: &MessageId,
        ep: &EndpointId,
        now: Millis,
    ) -> Result<()> {
        let (app, msg, ep) = (app.0.clone(), msg.0.clone(), ep.0.clone());
        self.write(move |c| {
            let n = c
                .prepare_cached(
                    "UPDATE deliveries SET status = 1, failures = 0, manual = 1, next_at = ?3, lease_owner = NULL, updated_at = ?3 \
                     WHERE msg_id = ?1 AND endpoint_id = ?2 AND status != 3",
                )
                .and_then(|mut s| s.execute(params![msg, ep, now]))
                .map_err(map_sql)?;
            if n == 0 {
                let exists: bool = c
                    .query_row(
                        "SELECT EXISTS (SELECT 1 FROM deliveries WHERE msg_id = ?1 AND endpoint_id = ?2)",
                        [&msg, &ep],
                        |r| r.get(0),
                    )
                    .map_err(map_sql)?;
                // An attempt is in flight already: the resend is satisfied by it.
                if !exists {
                    insert_delivery(c, &msg, &ep, &app, now, true, None)?;
                }
            }
            sched::fix_fifo_keys_if_fifo(c, &ep)?;
            sched::touch_due(c, &ep, now)?;
            Ok(())
        })
        .await
    }

    async fn recover(
        &self,
        ep: &EndpointId,
        since: Millis,
        until: Option<Millis>,
        now: Millis,
    ) -> Result<u64> {
        let ep = ep.0.clone();
        self.write(move |c| {
            let n = c
                .prepare_cached(
                    "UPDATE deliveries SET status = 1, failures = 0, next_at = ?4, updated_at = ?4 \
                     WHERE endpoint_id = ?1 AND status = 2 AND msg_id IN \
                     (SELECT id FROM messages WHERE created_at >= ?2 AND created_at < ?3)",
                )
                .and_then(|mut s| s.execute(params![ep, since, until.unwrap_or(i64::MAX), now]))
                .map_err(map_sql)?;
            if n > 0 {
                sched::fix_fifo_keys_if_fifo(c, &ep)?;
                sched::touch_due(c, &ep, now)?;
            }
            Ok(n as u64)
        })
        .await
    }

    async fn list_attempts(
        &self,
        app: &AppId,
        scope: &AttemptScope,
        filter: &AttemptFilter,
        q: &ListQuery,
    ) -> Result<Page<Attempt>> {
        let (app, scope, filter, q) = (app.0.clone(), scope.clone(), filter.clone(), q.clone());
        self.read(move |c| {
            let mut conds = vec!["app_id = ?".to_string()];
            let mut args = vec![SqlValue::Text(app)];
            match scope {
                AttemptScope::Endpoint(e) => {
                    conds.push("endpoint_id = ?".into());
                    args.push(SqlValue::Text(e.0));
                }
                AttemptScope::Message(m) => {
                    conds.push("msg_id = ?".into());
                    args.push(SqlValue::Text(m.0));
                }
            }
            if let Some(s) = filter.status {
                conds.push("status = ?".into());
                args.push(SqlValue::Integer(s));
            }
            if let Some(e) = filter.endpoint_id {
                conds.push("endpoint_id = ?".into());
                args.push(SqlValue::Text(e.0));
            }
            query_page(
                c,
                &format!("SELECT {ATT_COLS} FROM attempts"),
                conds,
                args,
                &q,
                ("id", "created_at"),
                att_row,
            )
        })
        .await
    }

    async fn get_attempt(&self, app: &AppId, msg: &MessageId, id: &str) -> Result<Option<Attempt>> {
        let (app, msg, id) = (app.0.clone(), msg.0.clone(), id.to_string());
        self.read(move |c| {
            one(c
                .prepare_cached(&format!(
                    "SELECT {ATT_COLS} FROM attempts WHERE app_id = ?1 AND msg_id = ?2 AND id = ?3"
                ))
                .map_err(map_sql)?
                .query_row([app, msg, id], att_row)
                .optional())
        })
        .await
    }

    async fn claim_due(
        &self,
        owner: &str,
        now: Millis,
        lease_ms: i64,
        limit: usize,
    ) -> Result<ClaimBatch> {
        let owner = owner.to_string();
        self.write_relaxed(move |c| sched::claim(c, &owner, now, lease_ms, limit))
            .await
    }

    async fn load_for_delivery(
        &self,
        msgs: &[MessageId],
        eps: &[EndpointId],
    ) -> Result<(HashMap<MessageId, Message>, HashMap<EndpointId, Endpoint>)> {
        let msgs: Vec<String> = msgs.iter().map(|m| m.0.clone()).collect();
        let eps: Vec<String> = eps.iter().map(|e| e.0.clone()).collect();
        let (msgs, eps) = self
            .read(move |c| {
                let mut mout = HashMap::with_capacity(msgs.len());
                for chunk in msgs.chunks(500) {
                    let sql = format!(
                        "SELECT {MSG_COLS} FROM messages m WHERE m.id IN ({})",
                        vec!["?"; chunk.len()].join(",")
                    );
                    let mut stmt = c.prepare_cached(&sql).map_err(map_sql)?;
                    let rows = stmt
                        .query_map(rusqlite::params_from_iter(chunk), |r| msg_row_at(r, 0))
                        .map_err(map_sql)?;
                    for m in rows {
                        let m = m.map_err(map_sql)?;
                        mout.insert(m.id.clone(), m);
                    }
                }
                let mut eout = HashMap::with_capacity(eps.len());
                for chunk in eps.chunks(500) {
                    let sql = format!(
                        "SELECT {EP_READ} FROM endpoints WHERE id IN ({})",
                        vec!["?"; chunk.len()].join(",")
                    );
                    let mut stmt = c.prepare_cached(&sql).map_err(map_sql)?;
                    let rows = stmt
                        .query_map(rusqlite::params_from_iter(chunk), ep_row)
                        .map_err(map_sql)?;
                    for e in rows {
                        let e = e.map_err(map_sql)?;
                        eout.insert(e.id.clone(), e);
                    }
                }
                Ok((mout, eout))
            })
            .await?;
        let eps = eps
            .into_iter()
            .map(|(k, e)| self.unseal(e).map(|e| (k, e)))
            .collect::<Result<_>>()?;
        Ok((msgs, eps))
    }

    async fn record_attempt(&self, rec: AttemptRecord) -> Result<Option<BreakerState>> {
        self.write_relaxed(move |c| {
            let a = &rec.attempt;
            c.prepare_cached(&format!(
                "INSERT INTO attempts ({ATT_COLS}) VALUES (?1,?2,?3,?4,?5,?6,?7,?8,?9,?10,?11,?12,?13)"
            ))
            .and_then(|mut s| {
                s.execute(params![
                    a.id.0, a.msg_id.0, a.endpoint_id.0, a.app_id.0, a.delivery_id, a.url, a.response,
                    a.response_status_code, a.response_duration_ms, a.status as i64, a.trigger_type as i64,
                    a.error, a.created_at
                ])
            })
            .map_err(map_sql)?;
            let now = a.created_at;
            let id = a.delivery_id;
            let upd = |sql: &str, p: &[&dyn rusqlite::ToSql]| {
                c.prepare_cached(sql).and_then(|mut s| s.execute(p)).map_err(map_sql)
            };
            match &rec.next {
                NextState::Succeeded => {
                    upd("UPDATE endpoints SET failing_since = NULL WHERE id = ?1 AND failing_since IS NOT NULL",
                        &[&a.endpoint_id.0])?;
                    upd("UPDATE deliveries SET status = 0, attempts = attempts + 1, manual = 0, next_at = NULL, lease_owner = NULL, updated_at = ?2 WHERE id = ?1",
                        &[&id, &now])?;
                }
                NextState::RetryAt { at, failures } => {
                    upd("UPDATE endpoints SET failing_since = ?2 WHERE id = ?1 AND failing_since IS NULL",
                        &[&a.endpoint_id.0, &now])?;
                    upd("UPDATE deliveries SET status = 1, attempts = attempts + 1, failures = ?3, manual = 0, next_at = ?4, lease_owner = NULL, updated_at = ?2 WHERE id = ?1",
                        &[&id, &now, failures, at])?;
                }
                NextState::Failed { disable_endpoint } => {
                    upd("UPDATE endpoints SET failing_since = ?2 WHERE id = ?1 AND failing_since IS NULL",
                        &[&a.endpoint_id.0, &now])?;
                    upd("UPDATE deliveries SET status = 2, attempts = attempts + 1, manual = 0, next_at = NULL, lease_owner = NULL, updated_at = ?2 WHERE id = ?1",
                        &[&id, &now])?;
                    if *disable_endpoint {
                        upd("UPDATE endpoints SET disabled = 1, updated_at = ?2 WHERE id = ?1", &[&a.endpoint_id.0, &now])?;
                        // Nothing is dropped: the endpoint's waiting deliveries end `failed`,
                        // where `recover` can bring them back once the endpoint is re-enabled.
                        upd("UPDATE deliveries SET status = 2, next_at = NULL, lease_owner = NULL, updated_at = ?2 WHERE endpoint_id = ?1 AND status = 1 AND status IN (1, 3)",
                            &[&a.endpoint_id.0, &now])?;
                    }
                }
                NextState::EndpointPaused { until } => {
                    upd("UPDATE deliveries SET status = 1, attempts = attempts + 1, manual = 0, next_at = ?3, lease_owner = NULL, updated_at = ?2 WHERE id = ?1",
                        &[&id, &now, until])?;
                    upd("UPDATE endpoints SET paused_until = ?2 WHERE id = ?1", &[&a.endpoint_id.0, until])?;
                    upd("UPDATE deliveries SET next_at = ?2 WHERE endpoint_id = ?1 AND status = 1 AND status IN (1, 3) AND next_at < ?2",
                        &[&a.endpoint_id.0, until])?;
                }
            }
            // A pause is the receiver asking to wait, not a failure: the breaker ignores it.
            let change = match &rec.next {
                NextState::EndpointPaused { .. } => None,
                next => sched::record_result(c, &a.endpoint_id.0, now, *next == NextState::Succeeded, &rec.breaker)?,
            };
            sched::refresh_due(c, &a.endpoint_id.0, now)?;
            Ok(change)
        })
        .await
    }

    async fn release(&self, delivery_id: i64, at: Millis) -> Result<()> {
        self.write_relaxed(move |c| {
            let ep: Option<String> = c
                .prepare_cached("UPDATE deliveries SET status = 1, next_at = ?2, lease_owner = NULL WHERE id = ?1 AND status = 3 RETURNING endpoint_id")
                .and_then(|mut s| s.query_row(params![delivery_id, at], |r| r.get(0)).optional())
                .map_err(map_sql)?;
            if let Some(ep) = ep {
                sched::refresh_due(c, &ep, at.min(now_millis()))?;
            }
            Ok(())
        })
        .await
    }

    async fn abandon(&self, delivery_id: i64, now: Millis) -> Result<()> {
        self.write_relaxed(move |c| {
            let ep: Option<String> = c
                .prepare_cached("UPDATE deliveries SET status = 2, next_at = NULL, lease_owner = NULL, updated_at = ?2 WHERE id = ?1 RETURNING endpoint_id")
                .and_then(|mut s| s.query_row(params![delivery_id, now], |r| r.get(0)).optional())
                .map_err(map_sql)?;
            if let Some(ep) = ep {
                sched::refresh_due(c, &ep, now)?;
            }
            Ok(())
        })
        .await
    }

    async fn release_leases(&self, owner: Option<&str>, now: Millis) -> Result<u64> {
        let owner = owner.map(str::to_string);
        self.write_relaxed(move |c| {
            // Their endpoints become due now (the leases go back to the queue).
            let touch = match &owner {
                Some(_) => "UPDATE endpoints SET due_at = ?1 WHERE id IN (SELECT endpoint_id FROM deliveries WHERE status = 3 AND status IN (1, 3) AND lease_owner = ?2) AND (due_at IS NULL OR due_at > ?1)",
                None => "UPDATE endpoints SET due_at = ?1 WHERE id IN (SELECT endpoint_id FROM deliveries WHERE status = 3 AND status IN (1, 3)) AND (due_at IS NULL OR due_at > ?1)",
            };
            match &owner {
                Some(o) => c.execute(touch, params![now, o]),
                None => c.execute(touch, params![now]),
            }
            .map_err(map_sql)?;
            let n = match owner {
                Some(o) => c.execute(
                    "UPDATE deliveries SET status = 1, next_at = ?1, lease_owner = NULL WHERE status = 3 AND status IN (1, 3) AND lease_owner = ?2",
                    params![now, o],
                ),
                None => c.execute(
                    "UPDATE deliveries SET status = 1, next_at = ?1, lease_owner = NULL WHERE status = 3 AND status IN (1, 3)",
                    params![now],
                ),
            }
            .map_err(map_sql)?;
            Ok(n as u64)
        })
        .await
    }

    async fn next_due_at(&self) -> Result<Option<Millis>> {
        self.read(|c| {
            c.query_row("SELECT MIN(due_at) FROM endpoints", [], |r| r.get(0))
                .map_err(map_sql)
        })
        .await
    }

    async fn queue_summary(&self, now: Millis) -> Result<(u64, u64, Option<Millis>)> {
        self.read(move |c| {
            c.query_row(
                "SELECT COUNT(*) FILTER (WHERE next_at <= ?1), COUNT(*) FILTER (WHERE next_at > ?1), \
                 MIN(next_at) FILTER (WHERE next_at <= ?1 AND status = 1) \
                 FROM deliveries WHERE status IN (1, 3)",
                [now],
                |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
            )
            .map_err(map_sql)
        })
        .await
    }

    async fn disable_failing_endpoints(
        &self,
        now: Millis,
        window_ms: i64,
    ) -> Result<Vec<DisabledEndpoint>> {
        self.write(move |c| {
            let ids = c
                .prepare_cached(
                    "UPDATE endpoints SET disabled = 1, updated_at = ?1 \
                     WHERE disabled = 0 AND failing_since IS NOT NULL AND failing_since <= ?2 \
                     RETURNING id, app_id, uid, failing_since",
                )
                .and_then(|mut s| {
                    s.query_map(params![now, now - window_ms], |r| {
                        Ok(DisabledEndpoint {
                            endpoint_id: EndpointId(r.get(0)?),
                            app_id: AppId(r.get(1)?),
                            uid: r.get(2)?,
                            failing_since: r.get(3)?,
                        })
                    })?
                    .collect::<rusqlite::Result<Vec<_>>>()
                })
                .map_err(map_sql)?;
            for d in &ids {
                // Waiting deliveries end `failed` (recoverable), never vanish.
                sched::fail_waiting(c, &d.endpoint_id.0, now)?;
                sched::refresh_due(c, &d.endpoint_id.0, now)?;
            }
            Ok(ids)
        })
        .await
    }

    async fn purge_expired(
        &self,
        now: Millis,
        default_retention_ms: i64,
        batch: usize,
    ) -> Result<u64> {
        // IDs sort by creation time, so "created before the cutoff" is a primary-key range.
        let cutoff = now - default_retention_ms;
        let bound = |prefix: &str| {
            let ms = u64::try_from(cutoff.max(0)).unwrap_or(0);
            format!("{prefix}{}", ulid::Ulid::from_parts(ms, 0))
        };
        let (msg_bound, att_bound) = (bound(MessageId::PREFIX), bound(AttemptId::PREFIX));
        self.write(move |c| {
            // A payload still needed by a pending or in-flight delivery is never purged.
            let unfinished = "NOT EXISTS (SELECT 1 FROM deliveries d WHERE d.msg_id = messages.id AND d.status IN (1, 3))";
            let mut n = c
                .execute(
                    &format!(
                        "UPDATE messages SET payload = NULL WHERE id IN (SELECT id FROM messages \
                         WHERE id < ?1 AND retention_ms IS NULL AND payload IS NOT NULL AND {unfinished} LIMIT ?2)"
                    ),
                    params![msg_bound, batch as i64],
                )
                .map_err(map_sql)?;
            n += c
                .execute(
                    &format!(
                        "UPDATE messages SET payload = NULL WHERE id IN (SELECT id FROM messages \
                         WHERE retention_ms IS NOT NULL AND payload IS NOT NULL AND created_at + retention_ms < ?1 \
                         AND {unfinished} LIMIT ?2)"
                    ),
                    params![now, batch as i64],
                )
                .map_err(map_sql)?;
            n += c
                .execute(
                    "UPDATE attempts SET response = '' WHERE id IN \
                     (SELECT id FROM attempts WHERE id < ?1 AND response != '' LIMIT ?2)",
                    params![att_bound, batch as i64],
                )
                .map_err(map_sql)?;
            Ok(n as u64)
        })
        .await
    }

    async fn create_source(&self, s: Source) -> Result<Source> {
        let sealed = self.seal_source(s.clone());
        self.write(move |c| {
            c.prepare_cached(&format!(
                "INSERT INTO sources ({SRC_COLS}) VALUES (?1,?2,?3,?4,?5,?6,?7,?8,?9)"
            ))
            .and_then(|mut st| {
                st.execute(params![
                    sealed.id.0,
                    sealed.app_id.0,
                    sealed.uid,
                    sealed.name,
                    json(&sealed.verification),
                    json(&sealed.secrets),
                    json(&sealed.options),
                    sealed.created_at,
                    sealed.updated_at
                ])
            })
            .map_err(map_sql)?;
            Ok(())
        })
        .await?;
        Ok(s)
    }

    async fn get_source(&self, app: &AppId, id_or_uid: &str) -> Result<Option<Source>> {
        let (app, key) = (app.0.clone(), id_or_uid.to_string());
        self.read(move |c| {
            one(c
                .prepare_cached(&format!(
                    "SELECT {SRC_COLS} FROM sources WHERE app_id = ?1 AND (id = ?2 OR uid = ?2)"
                ))
                .map_err(map_sql)?
                .query_row([app, key], src_row)
                .optional())
        })
        .await?
        .map(|s| self.unseal_source(s))
        .transpose()
    }

    async fn find_source(&self, id: &SourceId) -> Result<Option<Source>> {
        let id = id.0.clone();
        self.read_point(|c| {
            one(c
                .prepare_cached(&format!("SELECT {SRC_COLS} FROM sources WHERE id = ?1"))
                .map_err(map_sql)?
                .query_row([id], src_row)
                .optional())
        })?
        .map(|s| self.unseal_source(s))
        .transpose()
    }

    async fn list_sources(&self, app: &AppId, q: &ListQuery) -> Result<Page<Source>> {
        let (app, q) = (app.0.clone(), q.clone());
        let page = self
            .read(move |c| {
                query_page(
                    c,
                    &format!("SELECT {SRC_COLS} FROM sources"),
                    vec!["app_id = ?".into()],
                    vec![SqlValue::Text(app)],
                    &q,
                    ("id", "created_at"),
                    src_row,
                )
            })
            .await?;
        page.try_map(|s| self.unseal_source(s))
    }

    async fn update_source(&self, s: Source) -> Result<Source> {
        let sealed = self.seal_source(s.clone());
        self.write(move |c| {
            let n = c
                .prepare_cached(
                    "UPDATE sources SET uid = ?3, name = ?4, verification = ?5, secrets = ?6, \
                     options = ?7, updated_at = ?8 WHERE id = ?1 AND app_id = ?2",
                )
                .and_then(|mut st| {
                    st.execute(params![
                        sealed.id.0,
                        sealed.app_id.0,
                        sealed.uid,
                        sealed.name,
                        json(&sealed.verification),
                        json(&sealed.secrets),
                        json(&sealed.options),
                        sealed.updated_at
                    ])
                })
                .map_err(map_sql)?;
            if n == 0 {
                return Err(StoreError::NotFound);
            }
            Ok(())
        })
        .await?;
        Ok(s)
    }

    async fn delete_source(&self, app: &AppId, id: &SourceId) -> Result<()> {
        let (app, id) = (app.0.clone(), id.0.clone());
        self.write(move |c| {
            let n = c
                .execute(
                    "DELETE FROM sources WHERE app_id = ?1 AND id = ?2",
                    [&app, &id],
                )
                .map_err(map_sql)?;
            if n == 0 {
                return Err(StoreError::NotFound);
            }
            for sql in [
                "DELETE FROM inbound_requests WHERE source_id = ?1",
                "DELETE FROM inbound_order WHERE source_id = ?1",
                "DELETE FROM inbound_held WHERE source_id = ?1",
            ] {
                c.execute(sql, [&id]).map_err(map_sql)?;
            }
            Ok(())
        })
        .await
    }

    async fn ingest(
        &self,
        req: InboundRequest,
        dedup: Option<DedupCheck>,
        msg: Message,
        order: Option<OrderCheck>,
    ) -> Result<IngestOutcome> {
        self.write(move |c| {
            let mut req = req;
            if let Some(d) = dedup {
                let first: Option<String> = c
                    .prepare_cached(
                        "SELECT msg_id FROM inbound_dedup WHERE key = ?1 AND created_at >= ?2",
                    )
                    .and_then(|mut s| {
                        s.query_row(params![d.key.as_slice(), d.since], |r| r.get(0))
                            .optional()
                    })
                    .map_err(map_sql)?;
                if let Some(first) = first {
                    req.status = InboundStatus::Duplicate;
                    req.msg_id = Some(MessageId(first.clone()));
                    insert_inbound(c, &req)?;
                    return Ok(IngestOutcome::Duplicate(MessageId(first)));
                }
            }
            // The writer thread serialises every ingest, so reading `last` here and writing it
            // below cannot interleave with another request of the same key.
            let source = req.source_id.0.clone();
            if let Some(o) = &order {
                let last = order::last_of(c, &source, &o.key)?;
                let decision = if order::is_held(c, &source, o)? {
                    None
                } else {
                    Some(herald_core::ordering::decide(last, o.seq, o.gap_timeout_ms))
                };
                match decision {
                    None | Some(herald_core::ordering::Decision::Stale) => {
                        // No dedup key: a retry of a stale event is stale again.
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
                        insert_inbound(c, &req)?;
                        return Ok(IngestOutcome::Stale);
                    }
                    Some(herald_core::ordering::Decision::Hold) => {
                        if let Some(d) = dedup {
                            claim_dedup(c, d, &msg.id, req.created_at)?;
                        }
                        order::hold(c, &req.id.0, &source, o, &msg, req.created_at)?;
                        req.status = InboundStatus::Held;
                        req.reason = Some(format!(
                            "waiting for sequence {} (last accepted: {})",
                            last.unwrap_or_default().saturating_add(1),
                            last.unwrap_or_default()
                        ));
                        req.msg_id = Some(msg.id.clone());
                        insert_inbound(c, &req)?;
                        return Ok(IngestOutcome::Held(msg.id));
                    }
                    Some(herald_core::ordering::Decision::Accept) => {}
                }
            }
            if let Some(d) = dedup {
                claim_dedup(c, d, &msg.id, req.created_at)?;
            }
            let id = msg.id.clone();
            publish_in(c, msg, None)?;
            req.status = InboundStatus::Accepted;
            req.msg_id = Some(id.clone());
            insert_inbound(c, &req)?;
            if let Some(o) = &order {
                order::set_last(c, &source, &o.key, o.seq)?;
                order::release_key(c, &source, &o.key, o.seq, None, req.created_at)?;
            }
            Ok(IngestOutcome::Accepted(id))
        })
        .await
    }

    async fn release_held(&self, now: Millis, max_keys: usize) -> Result<u64> {
        self.write(move |c| order::sweep(c, now, max_keys)).await
    }

    async fn log_inbound(&self, req: InboundRequest) -> Result<()> {
        self.write(move |c| insert_inbound(c, &req)).await
    }

    async fn list_inbound(
        &self,
        source: &SourceId,
        status: Option<InboundStatus>,
        q: &ListQuery,
    ) -> Result<Page<InboundRequest>> {
        let (source, q) = (source.0.clone(), q.clone());
        self.read(move |c| {
            let mut conds = vec!["source_id = ?".to_string()];
            let mut args = vec![SqlValue::Text(source)];
            if let Some(s) = status {
                conds.push("status = ?".into());
                args.push(SqlValue::Text(s.as_str().into()));
            }
            query_page(
                c,
                &format!("SELECT {INREQ_COLS} FROM inbound_requests"),
                conds,
                args,
                &q,
                ("id", "created_at"),
                inreq_row,
            )
        })
        .await
    }

    async fn get_inbound(
        &self,
        source: &SourceId,
        id: &InboundRequestId,
    ) -> Result<Option<InboundRequest>> {
        let (source, id) = (source.0.clone(), id.0.clone());
        self.read(move |c| {
            one(c
                .prepare_cached(&format!(
                    "SELECT {INREQ_COLS} FROM inbound_requests WHERE source_id = ?1 AND id = ?2"
                ))
                .map_err(map_sql)?
                .query_row([source, id], inreq_row)
                .optional())
        })
        .await
    }

    async fn release_inbound(
        &self,
        source: &SourceId,
        id: &InboundRequestId,
        msg: Message,
    ) -> Result<Published> {
        let (source, id) = (source.0.clone(), id.0.clone());
        self.write(move |c| {
            let n = c
                .prepare_cached(
                    "UPDATE inbound_requests SET status = 'released', msg_id = ?3 \
                     WHERE source_id = ?1 AND id = ?2 AND status = 'quarantined'",
                )
                .and_then(|mut s| s.execute(params![source, id, msg.id.0]))
                .map_err(map_sql)?;
            if n == 0 {
                return Err(StoreError::NotFound);
            }
            publish_in(c, msg, None)
        })
        .await
    }

    async fn rekey(&self, new: SecretBox) -> Result<u64> {
        let old =
            self.inner.secrets.clone().ok_or_else(|| {
                StoreError::Unavailable("the store was opened without a key".into())
            })?;
        self.write(move |c| {
            let mut n = 0;
            for table in ["endpoints", "sources"] {
                let rows: Vec<(String, String)> = c
                    .prepare(&format!("SELECT id, secrets FROM {table}"))
                    .and_then(|mut s| {
                        s.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?
                            .collect::<rusqlite::Result<Vec<_>>>()
                    })
                    .map_err(map_sql)?;
                for (id, text) in rows {
                    let mut secrets: Vec<StoredSecret> = parse(&text).map_err(map_sql)?;
                    for s in &mut secrets {
                        let plain = old.decrypt(&s.key).map_err(|_| StoreError::KeyMismatch)?;
                        s.key = new.encrypt(&plain);
                    }
                    c.execute(
                        &format!("UPDATE {table} SET secrets = ?2 WHERE id = ?1"),
                        params![id, json(&secrets)],
                    )
                    .map_err(map_sql)?;
                    n += 1;
                }
            }
            c.execute(
                "INSERT OR REPLACE INTO meta (key, value) VALUES ('key_check', ?1)",
                [new.encrypt(KEY_CHECK)],
            )
            .map_err(map_sql)?;
            Ok(n)
        })
        .await
    }

    async fn create_token(&self, rec: TokenRecord, hash: [u8; 32]) -> Result<TokenRecord> {
        self.write(move |c| {
            c.execute(
                "INSERT INTO tokens (id, hash, name, app_id, created_at) VALUES (?1,?2,?3,?4,?5)",
                params![
                    rec.id.0,
                    hash.as_slice(),
                    rec.name,
                    rec.app_id.as_ref().map(|a| a.0.clone()),
                    rec.created_at
                ],
            )
            .map_err(map_sql)?;
            Ok(rec)
        })
        .await
    }

    async fn find_token(&self, hash: [u8; 32]) -> Result<Option<TokenRecord>> {
        self.read_point(|c| {
            one(c
                .prepare_cached("SELECT id, name, app_id, created_at FROM tokens WHERE hash = ?1")
                .map_err(map_sql)?
                .query_row([hash.as_slice()], token_row)
                .optional())
        })
    }

    async fn list_tokens(&self) -> Result<Vec<TokenRecord>> {
        self.read(|c| {
            let mut stmt = c
                .prepare_cached("SELECT id, name, app_id, created_at FROM tokens ORDER BY id")
                .map_err(map_sql)?;
            let rows = stmt
                .query_map([], token_row)
                .map_err(map_sql)?
                .collect::<rusqlite::Result<Vec<_>>>()
                .map_err(map_sql)?;
            Ok(rows)
        })
        .await
    }

    async fn delete_token(&self, id: &TokenId) -> Result<()> {
        let id = id.0.clone();
        self.write(move |c| {
            if c.execute("DELETE FROM tokens WHERE id = ?1", [id])
                .map_err(map_sql)?
                == 0
            {
                return Err(StoreError::NotFound);
            }
            Ok(())
        })
        .await
    }

    async fn get_idempotent(
        &self,
        key: [u8; 32],
        since: Millis,
    ) -> Result<Option<IdempotentResponse>> {
        self.read_point(|c| {
            one(c
                .prepare_cached(
                    "SELECT status, body FROM idempotency WHERE key = ?1 AND created_at >= ?2",
                )
                .map_err(map_sql)?
                .query_row(params![key.as_slice(), since], |r| {
                    Ok(IdempotentResponse {
                        status: r.get(0)?,
                        body: r.get(1)?,
                    })
                })
                .optional())
        })
    }

    async fn put_idempotent(
        &self,
        key: [u8; 32],
        resp: IdempotentResponse,
        now: Millis,
    ) -> Result<()> {
        self.write(move |c| {
            c.prepare_cached("INSERT OR REPLACE INTO idempotency (key, status, body, created_at) VALUES (?1,?2,?3,?4)")
                .and_then(|mut s| s.execute(params![key.as_slice(), resp.status, resp.body, now]))
                .map_err(map_sql)?;
            Ok(())
        })
        .await
    }
}

fn token_row(r: &Row) -> rusqlite::Result<TokenRecord> {
    Ok(TokenRecord {
        id: TokenId(r.get(0)?),
        name: r.get(1)?,
        app_id: r.get::<_, Option<String>>(2)?.map(AppId),
        created_at: r.get(3)?,
    })
}
