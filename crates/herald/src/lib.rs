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
use herald_core::retry::RetryPolicy;
use herald_core::ssrf::EgressPolicy;
use herald_delivery::{upkeep, ClientConfig, DeliveryClient, Engine, EngineConfig, ListenHub};
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
    let text = encryption_key_text(cfg)?;
    SecretBox::from_base64(&text).map_err(|e| anyhow::anyhow!("encryption_key: {e}"))
}

/// The console's and portal's session settings and the portal's branding: a key derived from the key at rest (so every node of a
/// cluster, and the same node after a restart, opens the same sessions) and the idle expiry.
pub fn console_settings(cfg: &Config) -> anyhow::Result<herald_api::ConsoleSettings> {
    let text = encryption_key_text(cfg)?;
    Ok(herald_api::ConsoleSettings {
        key: SecretBox::derive(&text, "herald console session v1")
            .map_err(|e| anyhow::anyhow!("encryption_key: {e}"))?,
        idle_secs: cfg.console_session_idle_secs,
        portal: herald_api::PortalSettings {
            title: cfg.portal_title.trim().to_string(),
            accent_color: cfg.portal_accent_color.clone(),
            logo_url: cfg.portal_logo_url.clone(),
            frame_ancestors: cfg.portal_frame_ancestors.clone(),
        },
        sign_ins: std::sync::Arc::new(herald_api::SignInLimiter::new(
            cfg.console_sign_in_per_minute,
        )),
    })
}

/// The base64 text of the key at rest (see [`encryption_key`]).
fn encryption_key_text(cfg: &Config) -> anyhow::Result<String> {
    Ok(match &cfg.encryption_key {
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
    })
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
    herald_delivery::telemetry::register();
    herald_api::telemetry::register();
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

/// How long a stopping server waits for `herald listen` sessions to remove their endpoints.
const LISTEN_CLOSE_GRACE: std::time::Duration = std::time::Duration::from_secs(5);

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
        recover_single_node(store.as_ref()).await?;
    }

    let egress = EgressPolicy {
        allow_networks: cfg.allow_networks.clone(),
        https_only: cfg.https_only,
        destination_schemes: cfg.destination_schemes.clone(),
    };
    let wake = Arc::new(Notify::new());
    let ops = OpsLog::new(store.clone(), {
        let wake = wake.clone();
        Arc::new(move || wake.notify_one())
    });
    upkeep::ensure_operational_endpoint(
        store.as_ref(),
        &ops,
        cfg.operational_webhook_url.as_deref(),
        &egress,
    )
    .await?;
    let mut tasks = tokio::task::JoinSet::new();
    let workers = if cfg.role.runs_workers() {
        Some(start_workers(
            &cfg, &opened, &egress, &wake, &ops, &shutdown, &mut tasks,
        )?)
    } else {
        None
    };

    let listener = match listener {
        Some(l) => l,
        None => TcpListener::bind(cfg.listen)
            .await
            .with_context(|| format!("cannot listen on {}", cfg.listen))?,
    };
    let addr = listener.local_addr()?;
    on_bound(addr);
    let listen_hub = workers.as_ref().map(|w| w.listen_hub.clone());
    let transforms = match &workers {
        Some(w) => w.transforms.clone(),
        None => transform_pool(&cfg),
    };
    if cfg.role.runs_api() {
        let api = ApiConfig {
            admin_token,
            egress,
            max_payload_bytes: cfg.max_payload_bytes,
            public_url: cfg.public_url(),
            metrics: Some(metrics_handle()),
            metrics_token: cfg.metrics_token.clone(),
            worker_heartbeat: workers.as_ref().map(|w| w.heartbeat.clone()),
        };
        let mut state = AppState::new(store, api, workers.map(|w| w.waker), Some(ops))
            .with_console(console_settings(&cfg)?)
            .with_transforms(transforms)
            .with_default_scheme(cfg.default_signature_scheme);
        if let Some(hub) = &listen_hub {
            state = state.with_listen(hub.clone());
        }
        start_poller(&cfg, &state, &shutdown, &mut tasks)?;
        start_api(&cfg, state, listener, &shutdown, &mut tasks);
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

/// Single node: the data-dir lock proves no other process holds a lease or a listen session,
/// so what a crash left behind is cleaned now rather than after leases expire. (In a cluster
/// leases expire.)
async fn recover_single_node(store: &dyn Store) -> anyhow::Result<()> {
    let released = store
        .release_leases(None, herald_core::now_millis())
        .await?;
    if released > 0 {
        tracing::info!(
            released,
            "re-queued deliveries that were in flight when Herald last stopped"
        );
    }
    match upkeep::remove_stale_listen_endpoints(store).await {
        Ok(0) => {}
        Ok(n) => tracing::info!(
            removed = n,
            "removed temporary herald listen endpoints left by the last run"
        ),
        Err(e) => {
            tracing::warn!(error = %e, "could not remove leftover herald listen endpoints")
        }
    }
    Ok(())
}

/// What the API learns from the workers of the same process.
struct Workers {
    waker: Arc<Notify>,
    heartbeat: Arc<std::sync::atomic::AtomicI64>,
    listen_hub: ListenHub,
    /// Endpoint transformations' sandbox threads, shared with the API's `…/transformation/test`.
    transforms: herald_delivery::TransformPool,
}

/// The transformation sandbox as configured (`transform_*`).
fn transform_pool(cfg: &Config) -> herald_delivery::TransformPool {
    herald_delivery::TransformPool::new(herald_delivery::TransformLimits {
        cpu: std::time::Duration::from_millis(cfg.transform_cpu_ms),
        memory_bytes: usize::try_from(cfg.transform_memory_mib.saturating_mul(1024 * 1024))
            .unwrap_or(usize::MAX),
        workers: cfg.transform_workers,
    })
}

/// Starts the delivery engine and its upkeep loops on `tasks`.
fn start_workers(
    cfg: &Config,
    opened: &OpenedStore,
    egress: &EgressPolicy,
    wake: &Arc<Notify>,
    ops: &OpsLog,
    shutdown: &watch::Receiver<bool>,
    tasks: &mut tokio::task::JoinSet<()>,
) -> anyhow::Result<Workers> {
    let ca = match &cfg.ca_bundle {
        Some(p) => Some(
            std::fs::read(p).with_context(|| format!("cannot read ca_bundle {}", p.display()))?,
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
    let transforms = transform_pool(cfg);
    let engine = Engine::with_listen(
        opened.store.clone(),
        client,
        EngineConfig {
            retry: RetryPolicy::from_secs(&cfg.retry_schedule),
            breaker: cfg.breaker_policy(),
            lease: std::time::Duration::from_secs(cfg.lease_seconds),
            max_in_flight: cfg.max_in_flight,
            owner: format!("node-{}", ulid::Ulid::new()),
            transform: transforms.clone(),
        },
        wake.clone(),
        Some(ops.clone()),
        hub.clone(),
    );
    if let Some(pg) = &opened.postgres {
        // Publishes on any node wake this node's workers.
        let w = wake.clone();
        pg.listen(Arc::new(move || w.notify_one()));
    }
    let workers = Workers {
        waker: engine.waker(),
        heartbeat: engine.heartbeat(),
        listen_hub: hub,
        transforms,
    };
    let retention = upkeep::Retention {
        keep_ms: cfg.retention_days as i64 * 86_400_000,
        disable_ms: cfg.endpoint_disable_after_hours as i64 * 3_600_000,
    };
    tasks.spawn(upkeep::maintenance_loop(
        opened.store.clone(),
        ops.clone(),
        retention,
        shutdown.clone(),
    ));
    tasks.spawn(upkeep::held_sweep_loop(
        opened.store.clone(),
        wake.clone(),
        shutdown.clone(),
    ));
    let rx = shutdown.clone();
    tasks.spawn(async move { engine.run(rx).await });
    Ok(workers)
}

/// Starts the reconciliation poller (sources with `poll`) of an API node: it ingests through
/// the API's pipeline and fetches under the egress rules of deliveries.
fn start_poller(
    cfg: &Config,
    state: &AppState,
    shutdown: &watch::Receiver<bool>,
    tasks: &mut tokio::task::JoinSet<()>,
) -> anyhow::Result<()> {
    let client = DeliveryClient::new(ClientConfig {
        policy: EgressPolicy {
            allow_networks: cfg.allow_networks.clone(),
            https_only: cfg.https_only,
            destination_schemes: cfg.destination_schemes.clone(),
        },
        connect_timeout: std::time::Duration::from_millis(cfg.connect_timeout_ms),
        request_timeout: std::time::Duration::from_millis(cfg.request_timeout_ms),
        proxy_url: cfg.proxy_url.clone(),
        ca_bundle_pem: cfg.ca_bundle.as_ref().map(std::fs::read).transpose()?,
    })?;
    tasks.spawn(herald_api::reconcile::poll_loop(
        state.clone(),
        client,
        format!("poller-{}", ulid::Ulid::new()),
        shutdown.clone(),
    ));
    Ok(())
}

/// Serves the HTTP API on `listener` until shutdown.
fn start_api(
    cfg: &Config,
    state: AppState,
    listener: TcpListener,
    shutdown: &watch::Receiver<bool>,
    tasks: &mut tokio::task::JoinSet<()>,
) {
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
}
