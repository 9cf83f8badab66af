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
//!
//! Layout: the role methods both backends share are `crate::backend`'s; this backend supplies its
//! primitives (`list.rs`) and, one file per role, the methods it writes its own way (`apps.rs`,
//! `messages.rs`, `queue.rs`, `inbound.rs`, `ops.rs`, ...). Row mapping is `crate::backend::rows`',
//! read through this backend's `Cells` (`rows.rs`). What both backends decide alike lives in
//! `crate::common`, `crate::page` and `crate::schema`.

use parking_lot::Mutex;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use rusqlite::{params, Connection, OpenFlags, OptionalExtension, Row};
use tokio::sync::{mpsc, oneshot};

mod apps;
mod inbound;
mod list;
mod messages;
mod ops;
mod order;
mod pull;
mod queue;
mod reconcile;
pub(crate) mod rows;
mod sched;

use list::*;
use messages::*;
use rows::*;
use rusqlite::types::Value as SqlValue;

use crate::found;
use crate::internal::*;
use crate::schema::Migrations;
use crate::NextState;

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

/// [`MIGRATIONS`] as they run: the shared parts spelled in this dialect.
static SCHEMA: Migrations = Migrations::new(MIGRATIONS, &crate::schema::SQLITE);

/// The migrations in order, the shared parts of the schema named (`<<name>>`, see
/// [`crate::schema`]); [`SCHEMA`] is what runs.
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
<<attempts>>
<<tokens>>
"#,
    "<<meta>>",
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
    "<<inbound>>",
    // Inbound ordering: the last accepted sequence per (source, key), and held events.
    "<<ordering>>",
    // `deliveries_queue` holds every waiting or leased delivery too, with `next_at`, so a
    // second index of them by `next_at` alone only cost a write on every publish, claim and
    // attempt (the queue summary scans `deliveries_queue` instead).
    "<<drop_due>>",
    // Per-endpoint options (routing, transformation, transport, batching): one JSON document.
    "<<options>>",
    // Polling endpoints (`url` `poll:`): never due, so no claim ever visits them (every write
    // of `due_at` goes through this trigger, whichever path makes it); their held deliveries
    // read in publish order by `deliveries_pull`; the tokens that may only poll one endpoint.
    r#"
CREATE TRIGGER endpoints_poll_never_due AFTER UPDATE OF due_at ON endpoints
    WHEN NEW.url = 'poll:' AND NEW.due_at IS NOT NULL
BEGIN
    UPDATE endpoints SET due_at = NULL WHERE id = NEW.id;
END;
<<poll>>
"#,
    // The console's message filter by delivery status: an application's deliveries in one
    // status, in message order (`ConsoleStore::list_messages_by_status`).
    "<<app_status>>",
    // Reconciliation sources: per polling source, its schedule, resume cursor, last outcome
    // and the lease of the node running it.
    "<<source_poll>>",
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
    for (i, sql) in SCHEMA.get().iter().enumerate().skip(version as usize) {
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
            Some(c) => common::verify_key(&key, &c)?,
            None => {
                conn.execute(
                    "INSERT INTO meta (key, value) VALUES ('key_check', ?1)",
                    [common::key_check(&key)],
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
    fn seal(&self, ep: Endpoint) -> Endpoint {
        crate::seal_endpoint(self.inner.secrets.as_ref(), ep)
    }

    /// Decrypts every secret of a stored endpoint.
    fn unseal(&self, ep: Endpoint) -> Result<Endpoint> {
        crate::unseal_endpoint(self.inner.secrets.as_ref(), ep)
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

/// Runs a cached statement; how many rows it changed.
pub(crate) fn exec(c: &Connection, sql: &str, p: impl rusqlite::Params) -> Result<usize> {
    c.prepare_cached(sql)
        .and_then(|mut s| s.execute(p))
        .map_err(map_sql)
}

/// At most one row of a cached query, mapped with `f`.
pub(crate) fn row_opt<T>(
    c: &Connection,
    sql: &str,
    p: impl rusqlite::Params,
    f: impl FnOnce(&Row) -> rusqlite::Result<T>,
) -> Result<Option<T>> {
    c.prepare_cached(sql)
        .and_then(|mut s| s.query_row(p, f).optional())
        .map_err(map_sql)
}
