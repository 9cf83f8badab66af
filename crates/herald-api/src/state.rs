//! The state every handler shares ([`AppState`]), the settings it is built from
//! ([`ApiConfig`]) and the per-node limits and caches it holds.
//!
//! It owns construction and the small side effects any handler may trigger (waking the local
//! workers, recording `endpoint.enabled`/`endpoint.disabled`). It must not know about requests,
//! tenancy or error rendering: those live in `extract`, `service` and `error`, which use it.

use std::collections::HashMap;
use std::sync::Arc;

use herald_core::ids::SourceId;
use herald_core::model::Endpoint;
use herald_core::ops::OperationalEvent;
use herald_core::ssrf::EgressPolicy;
use herald_core::throttle::Bucket;
use herald_store::{OpsLog, Store};
use parking_lot::Mutex;
use sha2::{Digest, Sha256};
use tokio::sync::Notify;

use crate::schema::{SchemaCache, SourceSchemaCache};

/// Settings the API needs from the configuration.
#[derive(Clone, Debug)]
pub struct ApiConfig {
    pub admin_token: String,
    pub egress: EgressPolicy,
    pub max_payload_bytes: usize,
    pub public_url: String,
    /// Renders `/metrics`; `None` answers 404 there.
    pub metrics: Option<metrics_exporter_prometheus::PrometheusHandle>,
    /// When set, `/metrics` requires it as a bearer token.
    pub metrics_token: Option<String>,
    /// The local delivery loop's heartbeat (millis), when this process runs workers.
    pub worker_heartbeat: Option<Arc<std::sync::atomic::AtomicI64>>,
}

/// Shared state of all handlers.
#[derive(Clone)]
pub struct AppState {
    pub(crate) inner: Arc<StateInner>,
}

pub(crate) struct StateInner {
    pub store: Arc<dyn Store>,
    pub admin_token_hash: [u8; 32],
    pub egress: EgressPolicy,
    pub max_payload_bytes: usize,
    pub public_url: String,
    pub metrics: Option<metrics_exporter_prometheus::PrometheusHandle>,
    pub metrics_token_hash: Option<[u8; 32]>,
    pub worker_heartbeat: Option<Arc<std::sync::atomic::AtomicI64>>,
    pub waker: Option<Arc<Notify>>,
    pub ops: Option<OpsLog>,
    pub idem_locks: Mutex<HashMap<[u8; 32], Arc<tokio::sync::Mutex<()>>>>,
    /// Event types' payload validators.
    pub schemas: SchemaCache,
    /// Sources' quarantine-schema validators.
    pub source_schemas: SourceSchemaCache,
    pub inbound: InboundLimits,
    /// `herald listen` sessions of this node; `None` where no delivery workers run.
    pub listen: Option<herald_delivery::ListenHub>,
    /// The console's session key and idle expiry.
    pub console: ConsoleSettings,
    /// Runs `…/transformation/test` (the same sandbox as the delivery workers when they run
    /// in this process).
    pub transforms: herald_delivery::TransformPool,
    /// `default_signature_scheme`: the scheme of endpoints written without one.
    pub default_scheme: herald_core::signing::SignatureScheme,
    /// Wakes this node's reconciliation poller (a poll was created, changed or asked for).
    pub poll_wake: Arc<Notify>,
}

/// How console sessions are sealed and when they end (`console_session_idle_secs`).
#[derive(Clone, Debug)]
pub struct ConsoleSettings {
    /// Seals the session cookie. Derived from the key at rest, so every node opens it.
    pub key: herald_core::crypto::SecretBox,
    /// A session ends after this long without a page being opened.
    pub idle_secs: u64,
    /// The consumer portal's branding and framing.
    pub portal: PortalSettings,
    /// Sign-in attempts per client address (`console_sign_in_per_minute`), shared by the
    /// console and the portal.
    pub sign_ins: std::sync::Arc<crate::SignInLimiter>,
}

/// The consumer portal's branding (`portal_title`, `portal_accent_color`, `portal_logo_url`)
/// and who may frame it (`portal_frame_ancestors`), all checked when the configuration loads.
#[derive(Clone, Debug)]
pub struct PortalSettings {
    pub title: String,
    /// `#rgb` or `#rrggbb`.
    pub accent_color: Option<String>,
    /// An http(s) image URL.
    pub logo_url: Option<String>,
    /// The `frame-ancestors` sources.
    pub frame_ancestors: String,
}

impl Default for PortalSettings {
    fn default() -> Self {
        Self {
            title: "Webhooks".into(),
            accent_color: None,
            logo_url: None,
            frame_ancestors: "'self'".into(),
        }
    }
}

impl Default for ConsoleSettings {
    /// A random per-process key: sessions end when the process does.
    fn default() -> Self {
        let text = herald_core::crypto::SecretBox::generate_key();
        Self {
            key: herald_core::crypto::SecretBox::from_base64(&text)
                .expect("a generated key is valid"),
            idle_secs: 43_200,
            portal: PortalSettings::default(),
            sign_ins: std::sync::Arc::new(crate::SignInLimiter::new(10)),
        }
    }
}

/// Per-source request buckets for `rateLimit` (per node; abuse protection, not accounting).
#[derive(Default)]
pub struct InboundLimits {
    buckets: Mutex<HashMap<SourceId, Bucket>>,
}

impl InboundLimits {
    /// Takes one request from the source's bucket; `false` when it is empty.
    pub fn take(&self, source: &SourceId, rate: u32, now: i64) -> bool {
        let mut b = self.buckets.lock();
        let bucket = b
            .entry(source.clone())
            .or_insert_with(|| Bucket::fresh(now));
        bucket.take(rate, now, 1).0 > 0
    }
}

/// Room for the envelope around a maximal payload.
const ENVELOPE_BYTES: usize = 64 * 1024;

/// SHA-256 of a token: tokens are only ever kept and compared as their hashes.
pub fn sha256(bytes: &[u8]) -> [u8; 32] {
    Sha256::digest(bytes).into()
}

impl AppState {
    /// `waker` is poked after each publish so local workers start at once; `ops` records
    /// operational events (`endpoint.enabled` / `endpoint.disabled` from the API).
    pub fn new(
        store: Arc<dyn Store>,
        cfg: ApiConfig,
        waker: Option<Arc<Notify>>,
        ops: Option<OpsLog>,
    ) -> Self {
        Self {
            inner: Arc::new(StateInner {
                store,
                admin_token_hash: sha256(cfg.admin_token.as_bytes()),
                egress: cfg.egress,
                max_payload_bytes: cfg.max_payload_bytes,
                public_url: cfg.public_url,
                metrics: cfg.metrics,
                worker_heartbeat: cfg.worker_heartbeat,
                metrics_token_hash: cfg.metrics_token.as_deref().map(|t| sha256(t.as_bytes())),
                waker,
                ops,
                idem_locks: Mutex::new(HashMap::new()),
                schemas: Default::default(),
                source_schemas: Default::default(),
                inbound: Default::default(),
                listen: None,
                console: Default::default(),
                transforms: Default::default(),
                default_scheme: Default::default(),
                poll_wake: Arc::new(Notify::new()),
            }),
        }
    }

    /// Serves `herald listen` sessions through `hub` (the one this node's engine forwards
    /// temporary endpoints' deliveries to). Call before the state is cloned.
    pub fn with_listen(mut self, hub: herald_delivery::ListenHub) -> Self {
        match Arc::get_mut(&mut self.inner) {
            Some(inner) => inner.listen = Some(hub),
            None => tracing::error!(
                "AppState::with_listen called on a shared state; herald listen stays off"
            ),
        }
        self
    }

    /// Seals console sessions with `settings` (a key every node of a cluster shares, so a
    /// session survives restarts and works on any node). Call before the state is cloned.
    pub fn with_console(mut self, settings: ConsoleSettings) -> Self {
        match Arc::get_mut(&mut self.inner) {
            Some(inner) => inner.console = settings,
            None => tracing::error!(
                "AppState::with_console called on a shared state; console sessions use a per-process key"
            ),
        }
        self
    }

    /// Runs transformation tests in `pool`. Call before the state is cloned.
    pub fn with_transforms(mut self, pool: herald_delivery::TransformPool) -> Self {
        match Arc::get_mut(&mut self.inner) {
            Some(inner) => inner.transforms = pool,
            None => tracing::error!(
                "AppState::with_transforms called on a shared state; tests use the default limits"
            ),
        }
        self
    }

    /// Sets `default_signature_scheme`. Call before the state is cloned.
    pub fn with_default_scheme(mut self, scheme: herald_core::signing::SignatureScheme) -> Self {
        match Arc::get_mut(&mut self.inner) {
            Some(inner) => inner.default_scheme = scheme,
            None => tracing::error!("AppState::with_default_scheme called on a shared state"),
        }
        self
    }

    pub(crate) fn store(&self) -> &dyn Store {
        self.inner.store.as_ref()
    }

    pub(crate) fn body_limit(&self) -> usize {
        self.inner.max_payload_bytes + ENVELOPE_BYTES
    }

    /// Records `endpoint.enabled` / `endpoint.disabled` when an update flipped `disabled`.
    pub(crate) async fn endpoint_toggled(&self, was_disabled: bool, ep: &Endpoint) {
        let Some(ops) = &self.inner.ops else { return };
        if was_disabled == ep.disabled || ops.is_ops_app(&ep.app_id) {
            return;
        }
        let ev = if ep.disabled {
            OperationalEvent::EndpointDisabled {
                app_id: ep.app_id.clone(),
                endpoint_id: ep.id.clone(),
                endpoint_uid: ep.uid.clone(),
                trigger: "manual",
                fail_since: None,
            }
        } else {
            OperationalEvent::EndpointEnabled {
                app_id: ep.app_id.clone(),
                endpoint_id: ep.id.clone(),
                endpoint_uid: ep.uid.clone(),
            }
        };
        ops.emit(ev).await;
    }

    /// Wakes this node's reconciliation poller, if it runs.
    pub(crate) fn wake_poller(&self) {
        self.inner.poll_wake.notify_one();
    }

    pub(crate) fn wake(&self) {
        if let Some(w) = &self.inner.waker {
            w.notify_one();
        }
    }
}
