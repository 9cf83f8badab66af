//! The delivery workers: claim due deliveries under a lease, send them concurrently, record
//! every attempt with its consequence, and hand work back on shutdown.
//!
//! The loop never keeps delivery state in memory beyond what is in flight: everything due lives
//! in the store, so memory does not grow with the backlog, and a crash loses nothing (leases
//! expire and the work is claimed again). It must not decide policy itself — outcome and
//! retry timing come from `herald_core::{outcome, retry}`.

use std::collections::HashMap;
use std::sync::atomic::{AtomicI64, Ordering as AtomicOrdering};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use herald_core::ids::AttemptId;
use herald_core::model::{Attempt, DeliveryStatus, Endpoint, Message, TriggerType};
use herald_core::ops::{AttemptEventKind, AttemptRef, OperationalEvent, FAILING_AFTER};
use herald_core::outcome::{classify_status, Outcome};
use herald_core::retry::RetryPolicy;
use herald_core::signing::signature_headers;
use herald_core::{now_millis, Millis};
use herald_store::{AttemptRecord, Claim, Claimed, NextState, OpsLog, Store};
use http::{HeaderMap, HeaderName, HeaderValue};

use tokio::sync::{watch, Notify, Semaphore};

use crate::client::{DeliveryClient, SendResult};
use crate::listen::{self, ListenHub};
use crate::telemetry;
use crate::transport::Transports;

mod batch;
use batch::Batches;

/// Most deliveries claimed in one round trip.
const CLAIM_BATCH: usize = 256;
/// Longest idle sleep between looks at the queue (scheduled retries become due on their own).
const MAX_IDLE: Duration = Duration::from_millis(500);
/// How long shutdown waits for in-flight requests before handing their leases back.
pub const SHUTDOWN_GRACE: Duration = Duration::from_secs(30);
/// When a temporary listen endpoint's session is not on this node, its delivery is looked at
/// again after this long, without spending an attempt (another node of a cluster may hold the
/// session, or it is closing and its endpoint is about to be deleted).
const LISTEN_ABSENT_RETRY_MS: i64 = 1_000;

#[derive(Clone, Debug)]
pub struct EngineConfig {
    pub retry: RetryPolicy,
    /// Cool-downs of endpoints' circuit breakers.
    pub breaker: herald_core::breaker::BreakerPolicy,
    pub lease: Duration,
    pub max_in_flight: usize,
    /// Identifies this process's leases.
    pub owner: String,
    /// Runs endpoints' transformations.
    pub transform: crate::transform::TransformPool,
}

/// The delivery engine of one process.
pub struct Engine {
    store: Arc<dyn Store>,
    /// HTTP and broker destinations (`transport`).
    transports: Transports,
    cfg: EngineConfig,
    wake: Arc<Notify>,
    slots: Arc<Semaphore>,
    /// Wall-clock millis of the loop's last turn, read by the health check.
    heartbeat: Arc<AtomicI64>,
    ops: Option<OpsLog>,
    /// Sessions of `herald listen` held by this node.
    listen: Option<ListenHub>,
    /// Deliveries of batching endpoints waiting for their batch to fill.
    batches: Batches,
}

impl Engine {
    /// `wake` is the handle publishers poke (see [`Engine::waker`]); `ops` records
    /// operational events when set.
    pub fn new(
        store: Arc<dyn Store>,
        client: DeliveryClient,
        cfg: EngineConfig,
        wake: Arc<Notify>,
        ops: Option<OpsLog>,
    ) -> Arc<Self> {
        Self::build(store, client, cfg, wake, ops, None)
    }

    /// Like [`Engine::new`], with the hub that carries deliveries of temporary
    /// `herald listen` endpoints to their sessions.
    pub fn with_listen(
        store: Arc<dyn Store>,
        client: DeliveryClient,
        cfg: EngineConfig,
        wake: Arc<Notify>,
        ops: Option<OpsLog>,
        hub: ListenHub,
    ) -> Arc<Self> {
        Self::build(store, client, cfg, wake, ops, Some(hub))
    }

    fn build(
        store: Arc<dyn Store>,
        client: DeliveryClient,
        cfg: EngineConfig,
        wake: Arc<Notify>,
        ops: Option<OpsLog>,
        listen: Option<ListenHub>,
    ) -> Arc<Self> {
        let slots = Arc::new(Semaphore::new(cfg.max_in_flight));
        Arc::new(Self {
            store,
            transports: Transports::new(client),
            cfg,
            wake,
            slots,
            heartbeat: Arc::new(AtomicI64::new(now_millis())),
            ops,
            listen,
            batches: Batches::default(),
        })
    }

    /// A handle the API pokes after a publish so new work starts without waiting for a poll.
    pub fn waker(&self) -> Arc<Notify> {
        self.wake.clone()
    }

    /// When the delivery loop last turned (millis); stale means the workers are stuck.
    pub fn heartbeat(&self) -> Arc<AtomicI64> {
        self.heartbeat.clone()
    }

    /// Runs until `shutdown` turns true, then waits up to [`SHUTDOWN_GRACE`] for in-flight
    /// attempts and releases the leases of any that did not finish.
    pub async fn run(self: Arc<Self>, mut shutdown: watch::Receiver<bool>) {
        let mut backoff = Duration::from_millis(100);
        loop {
            if *shutdown.borrow() {
                break;
            }
            self.heartbeat.store(now_millis(), AtomicOrdering::Relaxed);
            let free = self.slots.available_permits().min(CLAIM_BATCH);
            if free == 0 {
                // Wait for any slot to free up (or shutdown).
                tokio::select! {
                    p = self.slots.clone().acquire_owned() => drop(p),
                    _ = shutdown.changed() => {}
                }
                continue;
            }
            let now = now_millis();
            let batch = match self
                .store
                .claim_due(Claim {
                    owner: self.cfg.owner.clone(),
                    now,
                    lease_ms: self.cfg.lease.as_millis() as i64,
                    limit: free,
                })
                .await
            {
                Ok(c) => {
                    backoff = Duration::from_millis(100);
                    c
                }
                Err(e) => {
                    tracing::error!(error = %e, "claiming due deliveries failed; backing off");
                    tokio::select! {
                        _ = tokio::time::sleep(backoff) => {}
                        _ = shutdown.changed() => {}
                    }
                    backoff = (backoff * 2).min(Duration::from_secs(5));
                    continue;
                }
            };
            for ch in &batch.breaker_changes {
                telemetry::circuit_transition(ch.to.as_str());
                tracing::info!(endpoint_id = %ch.endpoint_id, to = ch.to.as_str(), "circuit breaker: cool-down over, sending one probe");
            }
            let claimed = batch.claimed;
            if claimed.is_empty() {
                let idle = match self.store.next_due_at().await {
                    Ok(Some(t)) => {
                        Duration::from_millis((t - now).clamp(1, MAX_IDLE.as_millis() as i64) as u64)
                    }
                    _ => MAX_IDLE,
                };
                tokio::select! {
                    _ = self.wake.notified() => {}
                    _ = tokio::time::sleep(idle) => {}
                    _ = shutdown.changed() => {}
                }
                continue;
            }
            self.dispatch(claimed).await;
        }
        self.drain().await;
    }

    async fn dispatch(self: &Arc<Self>, claimed: Vec<Claimed>) {
        let (msgs, eps) = match self.store.load_for_delivery(&claimed).await {
            Ok(x) => x,
            Err(e) => {
                // The leases expire and the work is claimed again; nothing is lost.
                tracing::error!(error = %e, "loading claimed deliveries failed");
                return;
            }
        };
        // Deliveries of batching endpoints go out in batches (`batch`); the rest here.
        let claimed = batch::take(self, claimed, &msgs, &eps);
        let msgs = Arc::new(msgs);
        let eps: Arc<HashMap<_, _>> = Arc::new(eps);
        for c in claimed {
            let permit = match self.slots.clone().acquire_owned().await {
                Ok(p) => p,
                Err(_) => return,
            };
            let this = self.clone();
            let (msgs, eps) = (msgs.clone(), eps.clone());
            tokio::spawn(async move {
                let msg = msgs.get(&c.msg_id);
                let ep = eps.get(&c.endpoint_id);
                this.deliver(c, msg, ep).await;
                drop(permit);
                // A finished attempt frees a slot of its endpoint (`maxConcurrency`), which
                // the store does not announce: look at the queue again now rather than after
                // the idle sleep.
                this.wake.notify_one();
            });
        }
    }

    /// Makes one attempt of a claimed delivery and records it.
    async fn deliver(&self, c: Claimed, msg: Option<&Message>, ep: Option<&Endpoint>) {
        let now = now_millis();
        let (Some(msg), Some(ep)) = (msg, ep) else {
            self.settle(self.store.abandon(c.delivery_id, now).await, &c);
            return;
        };
        if ep.disabled {
            // A disabled endpoint's deliveries end `failed` (recoverable), never vanish.
            self.settle(self.store.abandon(c.delivery_id, now).await, &c);
            return;
        }
        if let Some(until) = ep.paused_until.filter(|p| *p > now) {
            self.settle(self.store.release(c.delivery_id, until).await, &c);
            return;
        }
        let Some(wire) = msg.wire_body() else {
            self.settle(self.store.abandon(c.delivery_id, now).await, &c);
            return;
        };
        // The endpoint's transformation may rewrite the request, or settle the attempt unsent.
        let crate::transform::Step {
            endpoint,
            method,
            wire,
            settled,
        } = crate::transform::step(
            &self.cfg.transform,
            self.transports.http().policy(),
            ep,
            msg,
            wire,
        )
        .await;
        let ep: &Endpoint = &endpoint;
        // Then the body may be encrypted to the receiver's key (the signature covers the JWE).
        let (wire, settled) = crate::encrypt::seal(ep, wire, settled);
        let headers = build_headers(ep, msg, now, &wire.bytes, wire.content_type.as_deref());
        let body = Bytes::from(wire.bytes);
        let result = match (settled, listen::session_of(&ep.url)) {
            (Some(settled), _) => settled,
            // A temporary `herald listen` endpoint: the same signed request goes over the
            // session's WebSocket instead of HTTP, and the CLI's report of the local answer is
            // classified and recorded below like any HTTP answer. Never an outbound request.
            (None, Some(session)) => {
                let forwarded = match &self.listen {
                    Some(hub) => {
                        hub.forward(session, msg.id.as_str(), &msg.event_type, &headers, body)
                            .await
                    }
                    None => None,
                };
                match forwarded {
                    Some(r) => r,
                    None => {
                        let at = now + LISTEN_ABSENT_RETRY_MS;
                        self.settle(self.store.release(c.delivery_id, at).await, &c);
                        return;
                    }
                }
            }
            (None, None) => {
                self.transports
                    .send(ep, msg, now, method, headers, body)
                    .await
            }
        };
        let record = decide(
            &self.cfg,
            &c,
            msg,
            ep,
            result,
            now_millis(),
            &mut rand::thread_rng(),
        );
        self.record(&c, msg, ep, record, now).await;
    }

    /// Stores an attempt and what follows from it (retried a few times: a record that cannot
    /// be stored leaves the lease to expire, so the delivery is made again — a duplicate, never
    /// a loss), then logs it and emits its operational events. `now` is when it was sent.
    async fn record(
        &self,
        c: &Claimed,
        msg: &Message,
        ep: &Endpoint,
        record: AttemptRecord,
        now: Millis,
    ) {
        self.record_all(&[(c, msg)], ep, vec![record], now).await;
    }

    /// [`Self::record`] for the deliveries of one request to `ep` (a batch), stored together.
    async fn record_all(
        &self,
        items: &[(&Claimed, &Message)],
        ep: &Endpoint,
        records: Vec<AttemptRecord>,
        now: Millis,
    ) {
        let mut tries = 0;
        let changes = loop {
            let result = match records.as_slice() {
                [one] => self
                    .store
                    .record_attempt(one.clone())
                    .await
                    .map(|c| vec![c]),
                _ => self.store.record_attempts(records.clone()).await,
            };
            match result {
                Ok(changes) => break changes,
                Err(e) if tries < 5 => {
                    tries += 1;
                    tracing::warn!(error = %e, delivery_id = items[0].0.delivery_id, deliveries = items.len(), "recording attempt failed; retrying");
                    tokio::time::sleep(Duration::from_millis(200 * tries)).await;
                }
                Err(e) => {
                    tracing::error!(error = %e, delivery_id = items[0].0.delivery_id, deliveries = items.len(), "could not record attempt");
                    return;
                }
            }
        };
        for to in changes.into_iter().flatten() {
            telemetry::circuit_transition(to.as_str());
            tracing::warn!(endpoint_id = %ep.id, to = to.as_str(), "circuit breaker transition");
        }
        for ((c, msg), record) in items.iter().zip(&records) {
            let permanent = ep
                .permanent_statuses
                .contains(&record.attempt.response_status_code);
            report_attempt(
                c,
                &record.attempt,
                &record.next,
                now,
                msg.created_at,
                permanent,
            );
            self.operational(c, msg, ep, record).await;
        }
    }

    /// Operational events that follow from a recorded attempt.
    async fn operational(&self, c: &Claimed, msg: &Message, ep: &Endpoint, rec: &AttemptRecord) {
        let Some(ops) = &self.ops else { return };
        if ops.is_ops_app(&ep.app_id) {
            return;
        }
        let kind = match &rec.next {
            NextState::Failed { .. } => Some(AttemptEventKind::Exhausted),
            NextState::RetryAt { failures, .. } if *failures == FAILING_AFTER => {
                Some(AttemptEventKind::Failing)
            }
            NextState::Succeeded if c.failures >= FAILING_AFTER => {
                Some(AttemptEventKind::Recovered)
            }
            _ => None,
        };
        if let Some(kind) = kind {
            let a = &rec.attempt;
            ops.emit(OperationalEvent::Attempt {
                kind,
                app_id: ep.app_id.clone(),
                msg_id: msg.id.clone(),
                msg_event_id: msg.event_id.clone(),
                endpoint_id: ep.id.clone(),
                last_attempt: AttemptRef {
                    id: a.id.0.clone(),
                    response_status_code: a.response_status_code,
                    timestamp: a.created_at,
                },
            })
            .await;
        }
        if matches!(
            rec.next,
            NextState::Failed {
                disable_endpoint: true
            }
        ) {
            ops.emit(OperationalEvent::EndpointDisabled {
                app_id: ep.app_id.clone(),
                endpoint_id: ep.id.clone(),
                endpoint_uid: ep.uid.clone(),
                trigger: "automatic",
                fail_since: None,
            })
            .await;
        }
    }

    fn settle(&self, r: herald_store::Result<()>, c: &Claimed) {
        if let Err(e) = r {
            tracing::warn!(error = %e, delivery_id = c.delivery_id, "could not update delivery; its lease will expire");
        }
    }

    /// Waits for in-flight attempts, then hands back the leases of those that did not finish.
    async fn drain(&self) {
        let all = self.cfg.max_in_flight as u32;
        let waited = tokio::time::timeout(SHUTDOWN_GRACE, self.slots.acquire_many(all)).await;
        if waited.is_err() {
            tracing::warn!("in-flight deliveries did not finish within the grace period; releasing their leases");
        }
        match self
            .store
            .release_leases(Some(&self.cfg.owner), now_millis())
            .await
        {
            Ok(n) if n > 0 => tracing::info!(released = n, "released delivery leases"),
            Ok(_) => {}
            Err(e) => tracing::warn!(error = %e, "could not release leases; they will expire"),
        }
    }
}

/// What one attempt's result means for its delivery: the attempt row and the delivery's next
/// state (succeeded, retry at a time, failed, endpoint paused). Pure apart from `rng`, which
/// draws the retry jitter: the engine passes the thread's generator, the deterministic
/// simulation (tests/simulation.rs) a seeded one, with its virtual `now`.
pub fn decide(
    cfg: &EngineConfig,
    c: &Claimed,
    msg: &Message,
    ep: &Endpoint,
    result: SendResult,
    now: Millis,
    rng: &mut impl rand::Rng,
) -> AttemptRecord {
    let policy = ep
        .retry_schedule
        .as_ref()
        .map(|s| RetryPolicy::from_secs(s))
        .unwrap_or_else(|| cfg.retry.clone());
    let mut retry_or_fail = |failures: u32| match policy.next_delay_ms(failures, rng) {
        Some(d) => NextState::RetryAt {
            at: now + d as i64,
            failures,
        },
        None => NextState::Failed {
            disable_endpoint: false,
        },
    };
    let (status_code, response, error, duration, next) = match result {
        SendResult::Response {
            status,
            retry_after,
            location,
            body,
            duration,
        } => {
            let outcome =
                classify_status(status, retry_after.as_deref(), &ep.permanent_statuses, now);
            let next = match outcome {
                Outcome::Success => NextState::Succeeded,
                Outcome::Retry => retry_or_fail(c.failures + 1),
                Outcome::Permanent { disable_endpoint } => NextState::Failed { disable_endpoint },
                Outcome::PauseEndpoint { until } => NextState::EndpointPaused { until },
            };
            let response = match location {
                Some(loc) if (300..400).contains(&status) => {
                    format!("redirect_not_followed: Location: {loc}\n{body}")
                }
                _ => body,
            };
            (status, response, None, duration, next)
        }
        SendResult::Cancelled { detail } => (0, detail, None, Duration::ZERO, NextState::Succeeded),
        SendResult::Failed {
            error,
            detail,
            duration,
        } => {
            let next = retry_or_fail(c.failures + 1);
            (
                0,
                format!("{}: {detail}", error.code()),
                Some(error.code().to_string()),
                duration,
                next,
            )
        }
    };
    let status = if matches!(next, NextState::Succeeded) {
        DeliveryStatus::Success
    } else {
        DeliveryStatus::Fail
    };
    AttemptRecord {
        breaker: cfg.breaker.into(),
        attempt: Attempt {
            id: AttemptId::generate(),
            msg_id: msg.id.clone(),
            endpoint_id: ep.id.clone(),
            app_id: ep.app_id.clone(),
            delivery_id: c.delivery_id,
            // Broker URLs carry credentials; the attempt log never does.
            url: herald_core::destination::redact(&ep.url).into_owned(),
            response,
            response_status_code: status_code,
            response_duration_ms: duration.as_millis() as i64,
            status,
            trigger_type: if c.manual {
                TriggerType::Manual
            } else {
                TriggerType::Scheduled
            },
            error,
            created_at: now,
        },
        next,
    }
}

fn build_headers(
    ep: &Endpoint,
    msg: &Message,
    now: Millis,
    body: &[u8],
    content_type: Option<&str>,
) -> HeaderMap {
    let mut h = HeaderMap::new();
    // Forwarded and custom headers first, so the signature and content headers always win.
    for (k, v) in msg.headers.iter().flatten().chain(&ep.headers) {
        if let (Ok(name), Ok(val)) = (
            HeaderName::try_from(k.as_str()),
            HeaderValue::try_from(v.as_str()),
        ) {
            h.insert(name, val);
        }
    }
    let content_type = content_type
        .and_then(|ct| HeaderValue::try_from(ct).ok())
        .unwrap_or(HeaderValue::from_static("application/json"));
    h.insert(http::header::CONTENT_TYPE, content_type);
    let secrets = ep.valid_secrets(now);
    for (name, value) in signature_headers(
        ep.signature_scheme,
        &secrets,
        msg.id.as_str(),
        now / 1000,
        body,
    ) {
        if let Ok(v) = HeaderValue::try_from(value) {
            h.insert(HeaderName::from_static(name), v);
        }
    }
    h
}

/// The one structured line per attempt (operations.md "Logs") and its metrics. No secrets, no
/// signatures. `published_at` gives publish-to-success latency; `permanent` says a failure
/// came from the endpoint's `permanentStatuses`.
fn report_attempt(
    c: &Claimed,
    a: &Attempt,
    next: &NextState,
    now: Millis,
    published_at: Millis,
    permanent: bool,
) {
    let attempt = c.attempts + 1;
    let outcome = match (&a.error, a.status) {
        (Some(code), _) if code == "blocked_address" => "blocked",
        (Some(code), _) if code == "timeout" => "timeout",
        (Some(code), _) if code == "transformation_error" => "transformation_error",
        (None, DeliveryStatus::Success) if a.response_status_code == 0 => "cancelled",
        (Some(_), _) => "connect_error",
        (None, DeliveryStatus::Success) => "success",
        (None, _) => "http_error",
    };
    let status = (a.response_status_code != 0).then_some(a.response_status_code);
    let next_retry = match next {
        NextState::RetryAt { at, .. } => Some(((at - now).max(0) + 999) / 1000),
        NextState::EndpointPaused { until } => Some(((until - now).max(0) + 999) / 1000),
        _ => None,
    };
    let error = a.error.as_deref();
    telemetry::attempt_finished(
        outcome,
        status,
        Duration::from_millis(a.response_duration_ms.max(0) as u64),
    );
    match next {
        NextState::Succeeded => {
            telemetry::delivery_succeeded(Duration::from_millis((now - published_at).max(0) as u64))
        }
        NextState::RetryAt { .. } => telemetry::retry_scheduled(),
        NextState::Failed {
            disable_endpoint: true,
        } => {
            telemetry::delivery_failed("gone");
            telemetry::endpoint_disabled();
        }
        NextState::Failed { .. } if permanent => telemetry::delivery_failed("permanent_status"),
        NextState::Failed { .. } => telemetry::delivery_failed("exhausted"),
        NextState::EndpointPaused { .. } => {}
    }
    match next {
        NextState::Succeeded => tracing::info!(
            target: "herald::attempt",
            delivery_id = c.delivery_id, msg_id = %a.msg_id, endpoint_id = %a.endpoint_id,
            attempt, status, outcome, duration_ms = a.response_duration_ms,
            "delivery succeeded"
        ),
        NextState::Failed { .. } => tracing::warn!(
            target: "herald::attempt",
            delivery_id = c.delivery_id, msg_id = %a.msg_id, endpoint_id = %a.endpoint_id,
            attempt, status, outcome, duration_ms = a.response_duration_ms, error,
            "delivery failed permanently"
        ),
        _ => tracing::warn!(
            target: "herald::attempt",
            delivery_id = c.delivery_id, msg_id = %a.msg_id, endpoint_id = %a.endpoint_id,
            attempt, status, outcome, duration_ms = a.response_duration_ms, error,
            next_retry = next_retry.map(|s| format!("{s}s")),
            "delivery failed"
        ),
    }
}
