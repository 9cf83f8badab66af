//! Wiring: turns a validated [`Config`] into a running Herald — data directory, admin token,
//! store, delivery engine and HTTP server — and shuts it down gracefully.
//!
//! [`run`] takes an optional pre-bound listener so integration tests start the real server on
//! port 0. This crate holds no business logic; it only assembles the library crates.

pub mod client;
pub mod listen;
pub mod verify;

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::Context;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use herald_api::{ApiConfig, AppState};
use herald_core::config::Config;
use herald_core::crypto::SecretBox;
use herald_core::model::Endpoint;
use herald_core::ops::{OperationalEvent, OPERATIONAL_APP_UID, OPERATIONAL_ENDPOINT_UID};
use herald_core::retry::RetryPolicy;
use herald_core::signing::EndpointSecret;
use herald_core::ssrf::EgressPolicy;
use herald_delivery::{ClientConfig, DeliveryClient, Engine, EngineConfig, ListenHub};
use herald_store::{OpsLog, PostgresStore, SqliteStore, Store};
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};
use rand::RngCore;
use std::sync::OnceLock;
use tokio::net::TcpListener;
use tokio::sync::{watch, Notify};

/// Name of the generated admin token file inside `data_dir`.
pub const ADMIN_TOKEN_FILE: &str = "admin-token";

/// Where the server listens once bound (useful with port 0).
pub type BoundAddr = std::net::SocketAddr;

/// Creates `data_dir` and returns the admin token: from configuration, else from
/// `data_dir/admin-token`, else freshly generated into that file (mode 0600) and printed once.
pub fn ensure_admin_token(cfg: &Config) -> anyhow::Result<String> {
    std::fs::create_dir_all(&cfg.data_dir)
        .with_context(|| format!("cannot create data_dir {}", cfg.data_dir.display()))?;
    if let Some(t) = &cfg.admin_token {
        return Ok(t.clone());
    }
    let path = cfg.data_dir.join(ADMIN_TOKEN_FILE);
    if path.exists() {
        let t = std::fs::read_to_string(&path)
            .with_context(|| format!("cannot read {}", path.display()))?;
        return Ok(t.trim().to_string());
    }
    let mut bytes = [0u8; 32];
    rand::thread_rng().fill_bytes(&mut bytes);
    let token = format!("hk_admin_{}", URL_SAFE_NO_PAD.encode(bytes));
    write_private(&path, token.as_bytes())?;
    // Printed once, on the terminal of the operator who started Herald the first time; it is
    // never logged through tracing.
    println!(
        "Generated admin token (saved to {}):\n  {token}",
        path.display()
    );
    Ok(token)
}

fn write_private(path: &Path, bytes: &[u8]) -> anyhow::Result<()> {
    let mut opts = OpenOptions::new();
    opts.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        opts.mode(0o600);
    }
    let mut f = opts
        .open(path)
        .with_context(|| format!("cannot create {}", path.display()))?;
    f.write_all(bytes)?;
    f.sync_all()?;
    Ok(())
}

/// Holds the exclusive lock that keeps a second process off the same SQLite file.
pub struct DataLock(#[allow(dead_code)] File);

pub fn lock_database(db: &Path) -> anyhow::Result<DataLock> {
    let lock_path = PathBuf::from(format!("{}.lock", db.display()));
    let f = OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&lock_path)
        .with_context(|| format!("cannot open {}", lock_path.display()))?;
    f.try_lock().map_err(|_| {
        anyhow::anyhow!(
            "{} is in use by another Herald process (lock {} held); one SQLite store serves one process",
            db.display(),
            lock_path.display()
        )
    })?;
    Ok(DataLock(f))
}

/// Name of the generated encryption key file inside `data_dir`.
pub const ENCRYPTION_KEY_FILE: &str = "encryption-key";

/// The key that encrypts secrets at rest: `encryption_key` from configuration, else
/// `data_dir/encryption-key`, else a new random key written there (mode 0600).
pub fn encryption_key(cfg: &Config) -> anyhow::Result<SecretBox> {
    let text = match &cfg.encryption_key {
        Some(k) => k.clone(),
        None => {
            let path = cfg.data_dir.join(ENCRYPTION_KEY_FILE);
            if path.exists() {
                std::fs::read_to_string(&path)
                    .with_context(|| format!("cannot read {}", path.display()))?
            } else {
                let k = SecretBox::generate_key();
                write_private(&path, k.as_bytes())?;
                k
            }
        }
    };
    SecretBox::from_base64(&text).map_err(|e| anyhow::anyhow!("encryption_key: {e}"))
}

/// A store opened from the configuration.
pub struct OpenedStore {
    pub store: Arc<dyn Store>,
    /// SQLite only: the lock proving this process is the file's only user.
    pub lock: Option<DataLock>,
    /// PostgreSQL only: the backend, for `LISTEN` wake-ups.
    pub postgres: Option<PostgresStore>,
}

/// Opens the store named by the configuration: PostgreSQL for `postgres://` URLs, else the
/// SQLite file. With `exclusive`, a SQLite file is locked to this process (a server); without,
/// it is shared (a CLI command next to a running server).
pub async fn open_store(cfg: &Config, exclusive: bool) -> anyhow::Result<OpenedStore> {
    let key = encryption_key(cfg)?;
    if let Some(url) = cfg.postgres_url() {
        let mut pg = PostgresStore::connect(url, Some(key))
            .await
            .context("cannot open the PostgreSQL database")?;
        // A server keeps accepting publishes and ingestions through a database outage (its own
        // spool in its own data_dir); a CLI command does not spool.
        if exclusive && cfg.spool_max_bytes > 0 {
            let dir = cfg.data_dir.join("spool");
            let spool = herald_store::postgres::Spool::open(&dir, cfg.spool_max_bytes)
                .with_context(|| format!("cannot open the spool in {}", dir.display()))?;
            pg = pg.with_spool(spool);
        }
        return Ok(OpenedStore {
            store: Arc::new(pg.clone()),
            lock: None,
            postgres: Some(pg),
        });
    }
    let db = cfg.sqlite_path();
    if let Some(parent) = db.parent() {
        std::fs::create_dir_all(parent).ok();
    }
    let lock = if exclusive {
        Some(lock_database(&db)?)
    } else {
        None
    };
    let store = SqliteStore::open_encrypted(&db, key)
        .with_context(|| format!("cannot open {}", db.display()))?;
    Ok(OpenedStore {
        store: Arc::new(store),
        lock,
        postgres: None,
    })
}

/// The process-wide Prometheus recorder, installed on first use. Metrics are per process, so
/// several servers in one test process share it.
pub fn metrics_handle() -> PrometheusHandle {
    static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();
    HANDLE
        .get_or_init(|| {
            let recorder = PrometheusBuilder::new()
                .set_buckets_for_metric(
                    Matcher::Suffix("_seconds".into()),
                    &[
                        0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0,
                        10.0, 30.0, 60.0, 300.0, 3600.0,
                    ],
                )
                .expect("bucket list is not empty")
                .build_recorder();
            let handle = recorder.handle();
            if metrics::set_global_recorder(recorder).is_err() {
                tracing::warn!("a metrics recorder was already installed; /metrics may be empty");
            }
            register_metrics();
            handle
        })
        .clone()
}

/// Makes every contract metric visible from the first scrape (at zero) so dashboards and
/// alerts never query a missing series.
fn register_metrics() {
    use metrics::{counter, gauge};
    counter!("herald_messages_published_total", "origin" => "api").absolute(0);
    counter!("herald_messages_published_total", "origin" => "inbound").absolute(0);
    counter!("herald_retries_scheduled_total").absolute(0);
    counter!("herald_endpoints_disabled_total").absolute(0);
    counter!("herald_inbound_dedup_hits_total").absolute(0);
    for reason in ["exhausted", "permanent_status", "gone"] {
        counter!("herald_deliveries_failed_total", "reason" => reason).absolute(0);
    }
    for (outcome, class) in [
        ("success", "2xx"),
        ("http_error", "3xx"),
        ("http_error", "4xx"),
        ("http_error", "5xx"),
        ("timeout", "none"),
        ("connect_error", "none"),
        ("blocked", "none"),
    ] {
        counter!("herald_delivery_attempts_total", "outcome" => outcome, "status_class" => class)
            .absolute(0);
    }
    for to in ["open", "half_open", "closed"] {
        counter!("herald_circuit_transitions_total", "to" => to).absolute(0);
    }
    for outcome in [
        "accepted",
        "duplicate",
        "invalid_signature",
        "stale_timestamp",
        "quarantined",
        "too_large",
        "rate_limited",
    ] {
        counter!("herald_inbound_requests_total", "outcome" => outcome).absolute(0);
    }
    for g in [
        "herald_queue_due",
        "herald_queue_scheduled",
        "herald_queue_oldest_due_seconds",
    ] {
        gauge!(g).set(0.0);
    }
}

/// What `rotate_key` did with the new key.
pub enum RotatedKey {
    /// Replaced `data_dir/encryption-key`.
    Written { path: PathBuf, records: u64 },
    /// The key comes from configuration: the operator must put this one there.
    Configure { key: String, records: u64 },
}

/// `herald rotate-key`: re-encrypts every stored secret under a new key in one transaction.
/// The SQLite file is locked for the duration, so a running server makes this fail rather than
/// race. With a key file, the new key is first written beside it (`encryption-key.new`), then
/// the database is re-encrypted, then the file is renamed over the old one: a crash in between
/// leaves the new key on disk next to a database that needs it.
pub async fn rotate_key(cfg: &Config, new_key: Option<String>) -> anyhow::Result<RotatedKey> {
    let new_text = new_key.unwrap_or_else(SecretBox::generate_key);
    let new = SecretBox::from_base64(&new_text).map_err(|e| anyhow::anyhow!("--new-key: {e}"))?;
    let opened = open_store(cfg, true).await?;
    let pending = cfg.data_dir.join(format!("{ENCRYPTION_KEY_FILE}.new"));
    if cfg.encryption_key.is_none() {
        // The store opened with the current key file, so a leftover `.new` from an interrupted
        // earlier rotation is not needed by this database.
        let _ = std::fs::remove_file(&pending);
        write_private(&pending, new_text.as_bytes())?;
    }
    let records = opened
        .store
        .rekey(new)
        .await
        .context("re-encrypting the stored secrets")?;
    if cfg.encryption_key.is_some() {
        return Ok(RotatedKey::Configure {
            key: new_text,
            records,
        });
    }
    let path = cfg.data_dir.join(ENCRYPTION_KEY_FILE);
    std::fs::rename(&pending, &path)
        .with_context(|| format!("renaming {} to {}", pending.display(), path.display()))?;
    Ok(RotatedKey::Written { path, records })
}

/// Mints an API token straight into the configured store (`herald token create`). Works while
/// a server runs on the same database: SQLite serialises the two writers. Returns the bearer
/// secret, which is shown once and stored only as a hash.
pub async fn create_token(cfg: &Config, app: Option<&str>, name: &str) -> anyhow::Result<String> {
    use herald_core::ids::TokenId;
    use herald_store::TokenRecord;
    use sha2::Digest;
    std::fs::create_dir_all(&cfg.data_dir)?;
    let store = open_store(cfg, false).await?.store;
    let app_id = match app {
        Some(key) => Some(
            store
                .get_app(key)
                .await?
                .with_context(|| format!("application `{key}` not found"))?
                .id,
        ),
        None => None,
    };
    let secret = herald_core::ids::new_token_secret();
    let hash: [u8; 32] = sha2::Sha256::digest(secret.as_bytes()).into();
    let rec = TokenRecord {
        id: TokenId::generate(),
        name: name.to_string(),
        app_id,
        created_at: herald_core::now_millis(),
    };
    store.create_token(rec, hash).await?;
    Ok(secret)
}

/// Rows touched per retention transaction: small, so purging never holds the writer long.
const RETENTION_BATCH: usize = 500;
/// How often upkeep (auto-disable, retention) runs.
const RETENTION_EVERY: std::time::Duration = std::time::Duration::from_secs(60);

/// Background upkeep, once a minute: auto-disables endpoints that had no success for
/// `disable_ms` (0: never), then purges expired payloads and attempt bodies (`keep_ms`, 0:
/// never) in small batches. Delivery shares the writer thread, so batches are short and
/// spaced out.
async fn maintenance_loop(
    store: Arc<dyn Store>,
    ops: OpsLog,
    keep_ms: i64,
    disable_ms: i64,
    mut shutdown: watch::Receiver<bool>,
) {
    loop {
        if disable_ms > 0 {
            match store
                .disable_failing_endpoints(herald_core::now_millis(), disable_ms)
                .await
            {
                Ok(disabled) => {
                    for d in disabled {
                        let id = d.endpoint_id;
                        herald_delivery::telemetry::endpoint_disabled();
                        tracing::warn!(endpoint_id = %id, "endpoint disabled: no successful delivery within endpoint_disable_after_hours; its waiting deliveries are failed and recoverable");
                        if !ops.is_ops_app(&d.app_id) {
                            ops.emit(OperationalEvent::EndpointDisabled {
                                app_id: d.app_id,
                                endpoint_id: id,
                                endpoint_uid: d.uid,
                                trigger: "automatic",
                                fail_since: Some(d.failing_since),
                            })
                            .await;
                        }
                    }
                }
                Err(e) => tracing::warn!(error = %e, "auto-disable pass failed; will retry"),
            }
        }
        let mut purged = 0u64;
        // Loop until a pass finds nothing (or retention is off).
        loop {
            if keep_ms <= 0 {
                break;
            }
            match store
                .purge_expired(herald_core::now_millis(), keep_ms, RETENTION_BATCH)
                .await
            {
                Ok(0) => break,
                Ok(n) => purged += n,
                Err(e) => {
                    tracing::warn!(error = %e, "retention pass failed; will retry");
                    break;
                }
            }
            if *shutdown.borrow() {
                return;
            }
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
        if purged > 0 {
            tracing::info!(
                purged,
                "retention purged expired payloads and attempt bodies"
            );
        }
        tokio::select! {
            _ = tokio::time::sleep(RETENTION_EVERY) => {}
            _ = shutdown.wait_for(|s| *s) => return,
        }
    }
}

/// How often held inbound events (source `ordering`) are checked for an ended wait.
const HELD_SWEEP_EVERY: std::time::Duration = std::time::Duration::from_secs(1);
/// Keys released per sweep call; the sweep calls again at once until a call finds nothing.
const HELD_SWEEP_KEYS: usize = 100;

/// The gap-timeout sweep of inbound ordering, once a second: held events whose
/// `gapTimeoutSeconds` ran out go on in sequence order (`Store::release_held`, safe when every
/// node sweeps), and the engine is woken for the messages they became.
async fn held_sweep_loop(
    store: Arc<dyn Store>,
    wake: Arc<Notify>,
    mut shutdown: watch::Receiver<bool>,
) {
    loop {
        // Bounded: a backlog larger than this many full calls waits for the next tick.
        for _ in 0..10 {
            match store
                .release_held(herald_core::now_millis(), HELD_SWEEP_KEYS)
                .await
            {
                Ok(0) => break,
                Ok(n) => {
                    metrics::counter!("herald_messages_published_total", "origin" => "inbound")
                        .increment(n);
                    tracing::info!(
                        messages = n,
                        "held inbound events went on after their gap timeout"
                    );
                    wake.notify_one();
                }
                Err(e) => {
                    tracing::warn!(error = %e, "held-event sweep failed; will retry");
                    break;
                }
            }
        }
        tokio::select! {
            _ = tokio::time::sleep(HELD_SWEEP_EVERY) => {}
            _ = shutdown.wait_for(|s| *s) => return,
        }
    }
}

/// Keeps the operational application's one endpoint in line with `operational_webhook_url`:
/// created with a fresh secret when the URL is first set, re-pointed when it changes, disabled
/// when it is removed. The operator reads the secret through the API
/// (`GET /api/v1/app/herald-operational/endpoint/operational-webhook/secret`).
async fn ensure_operational_endpoint(
    store: &dyn Store,
    ops: &OpsLog,
    cfg: &Config,
    egress: &EgressPolicy,
) -> anyhow::Result<()> {
    let now = herald_core::now_millis();
    let app_id = match (
        &cfg.operational_webhook_url,
        store.get_app(OPERATIONAL_APP_UID).await?,
    ) {
        (None, None) => return Ok(()),
        _ => ops.app().await?,
    };
    let existing = store
        .get_endpoint(&app_id, OPERATIONAL_ENDPOINT_UID)
        .await?;
    match (&cfg.operational_webhook_url, existing) {
        (Some(url), existing) => {
            egress
                .validate_url(url)
                .map_err(|e| anyhow::anyhow!("operational_webhook_url: {e}"))?;
            match existing {
                Some(mut ep) if ep.url != *url || ep.disabled => {
                    ep.url = url.clone();
                    ep.disabled = false;
                    ep.updated_at = now;
                    store.update_endpoint(ep).await?;
                }
                Some(_) => {}
                None => {
                    store
                        .create_endpoint(Endpoint::internal(
                            app_id.clone(),
                            OPERATIONAL_ENDPOINT_UID.into(),
                            url.clone(),
                            "operational_webhook_url".into(),
                            &EndpointSecret::generate(),
                            now,
                        ))
                        .await?;
                }
            }
        }
        (None, Some(mut ep)) if !ep.disabled => {
            ep.disabled = true;
            ep.updated_at = now;
            store.update_endpoint(ep).await?;
        }
        (None, _) => {}
    }
    Ok(())
}

/// How long a stopping server waits for `herald listen` sessions to remove their endpoints.
const LISTEN_CLOSE_GRACE: std::time::Duration = std::time::Duration::from_secs(5);
/// Pages walked per list when looking for leftover listen endpoints (bounds the start-up scan).
const LISTEN_SCAN_PAGES: usize = 10_000;

/// Deletes the temporary endpoints of `herald listen` sessions that a crash left behind. Only
/// called on single-node SQLite, where the data-dir lock proves that no session is open: in a
/// cluster another node may hold one (docs/inbound.md says how those are cleaned up).
async fn remove_stale_listen_endpoints(store: &dyn Store) -> anyhow::Result<u64> {
    use herald_store::ListQuery;
    let page = |iterator: Option<String>| ListQuery {
        limit: 250,
        iterator,
        backwards: false,
        descending: false,
        before: None,
        after: None,
    };
    let mut removed = 0;
    let mut apps_after = None;
    for _ in 0..LISTEN_SCAN_PAGES {
        let apps = store.list_apps(&page(apps_after.take())).await?;
        for app in &apps.items {
            let mut eps_after = None;
            for _ in 0..LISTEN_SCAN_PAGES {
                let eps = store
                    .list_endpoints(&app.id, &page(eps_after.take()))
                    .await?;
                for ep in &eps.items {
                    let temporary =
                        ep.uid.as_deref().is_some_and(|u| {
                            u.starts_with(herald_delivery::listen::LISTEN_UID_PREFIX)
                        }) && herald_delivery::listen::session_of(&ep.url).is_some();
                    if temporary {
                        store.delete_endpoint(&app.id, &ep.id).await?;
                        removed += 1;
                    }
                }
                match eps.items.last() {
                    Some(last) if eps.has_more => eps_after = Some(last.id.0.clone()),
                    _ => break,
                }
            }
        }
        match apps.items.last() {
            Some(last) if apps.has_more => apps_after = Some(last.id.0.clone()),
            _ => break,
        }
    }
    Ok(removed)
}

/// Runs Herald until `shutdown` turns true. When `listener` is `None`, binds `cfg.listen`.
/// `on_bound` learns the bound address before requests are served.
pub async fn run(
    cfg: Config,
    listener: Option<TcpListener>,
    mut shutdown: watch::Receiver<bool>,
    on_bound: impl FnOnce(BoundAddr),
) -> anyhow::Result<()> {
    let admin_token = ensure_admin_token(&cfg)?;
    let opened = open_store(&cfg, true).await?;
    let store = opened.store.clone();
    if opened.lock.is_some() {
        // Single node: the lock proves no other process holds a lease, so leases left by a
        // crash are released now rather than after they expire. (In a cluster they expire.)
        let released = store
            .release_leases(None, herald_core::now_millis())
            .await?;
        if released > 0 {
            tracing::info!(
                released,
                "re-queued deliveries that were in flight when Herald last stopped"
            );
        }
        match remove_stale_listen_endpoints(store.as_ref()).await {
            Ok(0) => {}
            Ok(n) => tracing::info!(
                removed = n,
                "removed temporary herald listen endpoints left by the last run"
            ),
            Err(e) => {
                tracing::warn!(error = %e, "could not remove leftover herald listen endpoints")
            }
        }
    }

    let egress = EgressPolicy {
        allow_networks: cfg.allow_networks.clone(),
        https_only: cfg.https_only,
    };
    let wake = Arc::new(Notify::new());
    let ops = OpsLog::new(store.clone(), {
        let wake = wake.clone();
        Arc::new(move || wake.notify_one())
    });
    ensure_operational_endpoint(store.as_ref(), &ops, &cfg, &egress).await?;
    let mut tasks = tokio::task::JoinSet::new();
    let mut waker = None;
    let mut heartbeat = None;
    let mut listen_hub = None;
    if cfg.role.runs_workers() {
        let ca = match &cfg.ca_bundle {
            Some(p) => Some(
                std::fs::read(p)
                    .with_context(|| format!("cannot read ca_bundle {}", p.display()))?,
            ),
            None => None,
        };
        let client = DeliveryClient::new(ClientConfig {
            policy: egress.clone(),
            connect_timeout: std::time::Duration::from_millis(cfg.connect_timeout_ms),
            request_timeout: std::time::Duration::from_millis(cfg.request_timeout_ms),
            proxy_url: cfg.proxy_url.clone(),
            ca_bundle_pem: ca,
        })?;
        // `herald listen` sessions wait for the local answer as long as an HTTP endpoint.
        let hub = ListenHub::new(
            std::time::Duration::from_millis(cfg.request_timeout_ms),
            shutdown.clone(),
        );
        listen_hub = Some(hub.clone());
        let engine = Engine::with_listen(
            store.clone(),
            client,
            EngineConfig {
                retry: RetryPolicy::from_secs(&cfg.retry_schedule),
                breaker: cfg.breaker_policy(),
                lease: std::time::Duration::from_secs(cfg.lease_seconds),
                max_in_flight: cfg.max_in_flight,
                owner: format!("node-{}", ulid::Ulid::new()),
            },
            wake.clone(),
            Some(ops.clone()),
            hub,
        );
        if let Some(pg) = &opened.postgres {
            // Publishes on any node wake this node's workers.
            let w = wake.clone();
            pg.listen(Arc::new(move || w.notify_one()));
        }
        waker = Some(engine.waker());
        heartbeat = Some(engine.heartbeat());
        let (store, rx) = (store.clone(), shutdown.clone());
        let keep_ms = cfg.retention_days as i64 * 86_400_000;
        let disable_ms = cfg.endpoint_disable_after_hours as i64 * 3_600_000;
        tasks.spawn(maintenance_loop(
            store,
            ops.clone(),
            keep_ms,
            disable_ms,
            rx,
        ));
        tasks.spawn(held_sweep_loop(
            opened.store.clone(),
            wake.clone(),
            shutdown.clone(),
        ));
        let rx = shutdown.clone();
        tasks.spawn(async move { engine.run(rx).await });
    }

    let listener = match listener {
        Some(l) => l,
        None => TcpListener::bind(cfg.listen)
            .await
            .with_context(|| format!("cannot listen on {}", cfg.listen))?,
    };
    let addr = listener.local_addr()?;
    on_bound(addr);
    if cfg.role.runs_api() {
        let mut state = AppState::new(
            store.clone(),
            ApiConfig {
                admin_token,
                egress,
                max_payload_bytes: cfg.max_payload_bytes,
                public_url: cfg.public_url(),
                metrics: Some(metrics_handle()),
                metrics_token: cfg.metrics_token.clone(),
                worker_heartbeat: heartbeat,
            },
            waker,
            Some(ops),
        );
        if let Some(hub) = &listen_hub {
            state = state.with_listen(hub.clone());
        }
        let router = herald_api::router(state);
        let limits = herald_api::ConnectionLimits {
            header_read_timeout: std::time::Duration::from_millis(cfg.header_read_timeout_ms),
            body_read_timeout: std::time::Duration::from_millis(cfg.body_read_timeout_ms),
            idle_timeout: std::time::Duration::from_millis(cfg.idle_timeout_ms),
            max_connections: cfg.max_connections,
        };
        let mut rx = shutdown.clone();
        tasks.spawn(async move {
            let stop = async move {
                let _ = rx.wait_for(|s| *s).await;
            };
            if let Err(e) = herald_api::serve(listener, router, limits, stop).await {
                tracing::error!(error = %e, "HTTP server failed");
            }
        });
        tracing::info!(%addr, "Herald listening");
    } else {
        drop(listener);
    }
    let _ = shutdown.wait_for(|s| *s).await;
    while tasks.join_next().await.is_some() {}
    if let Some(hub) = &listen_hub {
        // Sessions close on shutdown and delete their temporary endpoints; give them a
        // moment so a clean stop leaves none behind.
        hub.wait_closed(LISTEN_CLOSE_GRACE).await;
    }
    tracing::info!("Herald stopped");
    Ok(())
}
