//! Deterministic simulation of the delivery engine: the real SQLite store (its claims, leases,
//! concurrency caps, throttle buckets, FIFO rules, breakers and attempt records) and the
//! engine's own decision function ([`herald_delivery::decide`]: outcome, retry with jitter,
//! pauses, permanent failures), driven by a discrete-event loop on a virtual clock instead of
//! the engine's real-time loop and HTTP client.
//!
//! Everything random comes from one seed: the endpoints' settings and behaviour (failure,
//! timeout, 429 with `Retry-After`, 410), the publish times, each request's duration,
//! injected faults (a claim that fails, an attempt record that is lost so the lease has to
//! expire) and crashes (every request in flight dropped; the restart either releases the
//! leases, as a single node does, or leaves them to expire, as a dead cluster node does).
//! Because every store call is awaited before the next event, a seed replays the same run:
//! the trace of one seed run twice is compared.
//!
//! Invariants checked on every claim and at the end of every run:
//! - no endpoint has more requests in flight than its `maxConcurrency`, and the node never
//!   more than `max_in_flight`;
//! - no endpoint receives more than `throttleRate + capacity` requests in any one-second span;
//! - a `fifo` endpoint receives each ordering key one message at a time, in publish order;
//! - when the queue is empty, every delivery is `success` (and was answered 2xx at least once)
//!   or `failed` (visible, recoverable) — nothing pending, nothing lost.
//!
//! `HERALD_SIM_SEEDS=N` runs N seeds (default 1,000); `HERALD_SIM_SEED=S` runs seed S alone
//! with its trace printed. What is not simulated: the engine's task scheduling and its HTTP
//! client (the torture runs cover those with the real binary).

use std::cmp::Reverse;
use std::collections::{BTreeMap, BinaryHeap, HashMap, VecDeque};
use std::sync::Arc;
use std::time::Duration;

use herald_core::breaker::BreakerPolicy;
use herald_core::ids::{AppId, EndpointId, MessageId};
use herald_core::model::{Application, DeliveryStatus, Endpoint, Message, Ordering};
use herald_core::outcome::TransportError;
use herald_core::retry::RetryPolicy;
use herald_core::signing::SignatureScheme;
use herald_core::throttle::capacity;
use herald_core::Millis;
use herald_delivery::{decide, EngineConfig, SendResult};
use herald_store::{Claim, Claimed, SqliteStore, Store};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

const T0: Millis = 1_800_000_000_000;
const LEASE_MS: i64 = 10_000;
/// Virtual time after which a run must have settled (retries and breakers included).
const HORIZON_MS: i64 = 6 * 3_600_000;
/// Events per run before it is declared stuck.
const MAX_EVENTS: usize = 200_000;

#[derive(Clone, Copy, Debug)]
struct Behaviour {
    fail: f64,
    timeout: f64,
    too_many: f64,
    gone: f64,
}

struct EpSim {
    max_conc: u32,
    rate: Option<u32>,
    fifo: bool,
    b: Behaviour,
    /// Claim times (virtual), for the throttle check.
    claims: VecDeque<Millis>,
}

enum Event {
    Publish(usize),
    Complete(u64),
    Crash,
    Claim,
}

struct Flight {
    c: Claimed,
    msg: usize,
    ep: usize,
    result: Option<SendResult>,
    generation: u32,
}

struct Run {
    rng: StdRng,
    store: Arc<dyn Store>,
    cfg: EngineConfig,
    max_in_flight: usize,
    eps: Vec<EpSim>,
    msgs: Vec<(Message, Option<String>)>,
    msg_index: HashMap<MessageId, usize>,
    ep_index: HashMap<EndpointId, usize>,
    heap: BinaryHeap<Reverse<(Millis, u64, u64)>>,
    events: HashMap<u64, Event>,
    next_event: u64,
    flights: BTreeMap<u64, Flight>,
    generation: u32,
    /// (msg, ep) → 2xx answers seen / finished (success or failed recorded).
    answered: HashMap<(usize, usize), u32>,
    /// Endpoints a 410 disabled (publishes skip them), and each message's fan-out.
    disabled: Vec<bool>,
    fan_out: HashMap<usize, usize>,
    finished: HashMap<(usize, usize), bool>,
    trace: Vec<String>,
    now: Millis,
    faults: Faults,
}

#[derive(Clone, Copy, Default, Debug)]
struct Faults {
    claim_errors: u32,
    lost_records: u32,
    crashes: u32,
    attempts: u32,
}

impl Run {
    fn push(&mut self, at: Millis, e: Event) {
        let k = self.next_event;
        self.next_event += 1;
        self.heap.push(Reverse((at, k, k)));
        self.events.insert(k, e);
    }

    fn owner(&self) -> String {
        format!("sim-node-{}", self.generation)
    }

    async fn claim(&mut self) {
        let free = self.max_in_flight.saturating_sub(self.flights.len());
        if free == 0 {
            return;
        }
        if self.rng.gen_bool(0.02) {
            // The store did not answer: the engine backs off and tries again.
            self.faults.claim_errors += 1;
            self.trace.push(format!("{} claim-error", self.now - T0));
            let at = self.now + 100;
            self.push(at, Event::Claim);
            return;
        }
        let batch = self
            .store
            .claim_due(Claim {
                owner: self.owner(),
                now: self.now,
                lease_ms: LEASE_MS,
                limit: free,
            })
            .await
            .expect("claim");
        if batch.claimed.is_empty() {
            return;
        }
        let (msgs, eps) = self
            .store
            .load_for_delivery(&batch.claimed)
            .await
            .expect("load");
        for c in batch.claimed {
            let mi = self.msg_index[&c.msg_id];
            let ei = self.ep_index[&c.endpoint_id];
            self.check_claim(mi, ei);
            let ep = &eps[&c.endpoint_id];
            let _msg = &msgs[&c.msg_id];
            if ep.disabled {
                self.store
                    .abandon(c.delivery_id, self.now)
                    .await
                    .expect("abandon");
                self.finished.insert((mi, ei), true);
                self.trace
                    .push(format!("{} abandon m{mi} e{ei}", self.now - T0));
                continue;
            }
            if let Some(until) = ep.paused_until.filter(|p| *p > self.now) {
                self.store
                    .release(c.delivery_id, until)
                    .await
                    .expect("release");
                self.trace
                    .push(format!("{} paused m{mi} e{ei}", self.now - T0));
                continue;
            }
            let b = self.eps[ei].b;
            let x: f64 = self.rng.gen();
            let (dur, result) = if x < b.gone {
                (20, resp(410, None))
            } else if x < b.gone + b.too_many {
                let secs = self.rng.gen_range(1..4);
                (20, resp(429, Some(secs.to_string())))
            } else if x < b.gone + b.too_many + b.timeout {
                (
                    2_000,
                    SendResult::Failed {
                        error: TransportError::Timeout,
                        detail: "simulated".into(),
                        duration: Duration::from_millis(2_000),
                    },
                )
            } else if x < b.gone + b.too_many + b.timeout + b.fail {
                (self.rng.gen_range(5..300), resp(500, None))
            } else {
                (self.rng.gen_range(5..300), resp(204, None))
            };
            self.trace.push(format!(
                "{} send m{mi} e{ei} d{}",
                self.now - T0,
                c.delivery_id
            ));
            let key = self.next_event;
            self.flights.insert(
                key,
                Flight {
                    c,
                    msg: mi,
                    ep: ei,
                    result: Some(result),
                    generation: self.generation,
                },
            );
            let at = self.now + dur;
            self.push(at, Event::Complete(key));
            assert!(
                self.flights.len() <= self.max_in_flight,
                "max_in_flight {} exceeded",
                self.max_in_flight
            );
        }
    }

    fn check_claim(&mut self, mi: usize, ei: usize) {
        let now = self.now;
        let live = self.flights.values().filter(|f| f.ep == ei).count() as u32;
        assert!(
            live < self.eps[ei].max_conc,
            "maxConcurrency {} exceeded on e{ei} at {}",
            self.eps[ei].max_conc,
            now - T0
        );
        if let Some(rate) = self.eps[ei].rate {
            let q = &mut self.eps[ei].claims;
            q.push_back(now);
            while q.front().is_some_and(|t| *t <= now - 1_000) {
                q.pop_front();
            }
            let allowed = rate as f64 + capacity(rate);
            assert!(
                q.len() as f64 <= allowed,
                "throttleRate {rate} exceeded on e{ei}: {} claims in 1 s at {}",
                q.len(),
                now - T0
            );
        }
        if self.eps[ei].fifo {
            if let Some(key) = &self.msgs[mi].1 {
                for (mj, (_, k)) in self.msgs.iter().enumerate() {
                    if mj == mi || k.as_ref() != Some(key) {
                        continue;
                    }
                    if mj < mi {
                        assert!(
                            self.finished.contains_key(&(mj, ei)),
                            "fifo e{ei}: m{mi} sent before m{mj} (same key) finished"
                        );
                    }
                    assert!(
                        !self.flights.values().any(|f| f.ep == ei && f.msg == mj),
                        "fifo e{ei}: m{mi} sent while m{mj} (same key) is in flight"
                    );
                }
            }
        }
    }

    async fn complete(&mut self, key: u64) {
        let Some(mut f) = self.flights.remove(&key) else {
            return;
        };
        if f.generation != self.generation {
            return;
        }
        let (mi, ei) = (f.msg, f.ep);
        self.faults.attempts += 1;
        let Some(result) = f.result.take() else {
            return;
        };
        if let SendResult::Response { status, .. } = &result {
            if (200..300).contains(status) {
                *self.answered.entry((mi, ei)).or_default() += 1;
            }
        }
        if self.rng.gen_bool(0.01) {
            // Recording failed (every retry of it): the lease will expire and the delivery is
            // sent again — a duplicate, never a loss.
            self.faults.lost_records += 1;
            self.trace
                .push(format!("{} record-lost m{mi} e{ei}", self.now - T0));
            self.push(self.now + LEASE_MS + 1, Event::Claim);
            return;
        }
        let (msgs, eps) = self
            .store
            .load_for_delivery(std::slice::from_ref(&f.c))
            .await
            .expect("load");
        let msg = &msgs[&f.c.msg_id];
        let ep = &eps[&f.c.endpoint_id];
        let rec = decide(&self.cfg, &f.c, msg, ep, result, self.now, &mut self.rng);
        let next = rec.next.clone();
        self.store.record_attempt(rec).await.expect("record");
        let done = !matches!(
            next,
            herald_store::NextState::RetryAt { .. }
                | herald_store::NextState::EndpointPaused { .. }
        );
        if done {
            self.finished.insert((mi, ei), true);
        }
        if matches!(
            next,
            herald_store::NextState::Failed {
                disable_endpoint: true
            }
        ) {
            self.disabled[ei] = true;
        }
        self.trace
            .push(format!("{} done m{mi} e{ei} {next:?}", self.now - T0));
    }

    async fn crash(&mut self) {
        self.faults.crashes += 1;
        let dropped = self.flights.len();
        self.flights.clear();
        self.generation += 1;
        let release = self.rng.gen_bool(0.5);
        if release {
            // A single node restarting on its data directory hands every lease back.
            self.store
                .release_leases(None, self.now)
                .await
                .expect("release leases");
        } else {
            // A dead cluster node: its leases expire.
            let at = self.now + LEASE_MS + 1;
            self.push(at, Event::Claim);
        }
        self.trace.push(format!(
            "{} crash dropped={dropped} release={release}",
            self.now - T0
        ));
    }
}

fn resp(status: u16, retry_after: Option<String>) -> SendResult {
    SendResult::Response {
        status,
        retry_after,
        location: None,
        body: String::new(),
        duration: Duration::from_millis(10),
    }
}

fn endpoint(app: &AppId, rng: &mut StdRng) -> Endpoint {
    Endpoint {
        id: EndpointId::generate(),
        app_id: app.clone(),
        uid: None,
        url: "http://127.0.0.1:9/".into(),
        description: String::new(),
        disabled: false,
        event_types: None,
        channels: None,
        throttle_rate: rng.gen_bool(0.3).then(|| rng.gen_range(1..8)),
        metadata: Default::default(),
        headers: Default::default(),
        retry_schedule: rng.gen_bool(0.3).then(|| {
            (0..rng.gen_range(0..5))
                .map(|_| rng.gen_range(1..30))
                .collect()
        }),
        permanent_statuses: vec![],
        ordering: if rng.gen_bool(0.3) {
            Ordering::Fifo
        } else {
            Ordering::None
        },
        max_concurrency: Some(rng.gen_range(1..5)),
        signature_scheme: SignatureScheme::Standard,
        secrets: vec![],
        paused_until: None,
        breaker: Default::default(),
        options: Default::default(),
        created_at: T0,
        updated_at: T0,
    }
}

/// One seeded run; returns its trace and fault counts, panicking when an invariant breaks.
///
/// The store lives in a directory of its own that is removed whole afterwards: SQLite's
/// `-wal` and `-shm` files outlive the database file, and a stale pair under a reused name
/// (or thousands of them filling a small tmpfs) made CI fail with "disk I/O error".
async fn run_seed(seed: u64, parent: &std::path::Path) -> (Vec<String>, Faults) {
    let dir = tempfile::tempdir_in(parent).expect("seed dir");
    let r = run_seed_in(seed, dir.path()).await;
    drop(dir);
    r
}

async fn run_seed_in(seed: u64, dir: &std::path::Path) -> (Vec<String>, Faults) {
    let mut rng = StdRng::seed_from_u64(seed);
    let store: Arc<dyn Store> =
        Arc::new(SqliteStore::open(dir.join(format!("sim-{seed}.db"))).expect("open store"));
    let app = store
        .create_app(Application {
            id: AppId::generate(),
            uid: None,
            name: "sim".into(),
            throttle_rate: None,
            metadata: Default::default(),
            created_at: T0,
            updated_at: T0,
        })
        .await
        .expect("app");
    let n_eps = rng.gen_range(1..5);
    let mut eps = Vec::new();
    let mut ep_index = HashMap::new();
    for i in 0..n_eps {
        let e = store
            .create_endpoint(endpoint(&app.id, &mut rng))
            .await
            .expect("endpoint");
        let risky = rng.gen_bool(0.5);
        let b = Behaviour {
            fail: if risky { rng.gen_range(0.0..0.6) } else { 0.0 },
            timeout: if risky { rng.gen_range(0.0..0.15) } else { 0.0 },
            too_many: if rng.gen_bool(0.2) { 0.05 } else { 0.0 },
            gone: if rng.gen_bool(0.05) { 0.02 } else { 0.0 },
        };
        ep_index.insert(e.id.clone(), i);
        eps.push(EpSim {
            max_conc: e.max_concurrency.unwrap_or(16),
            rate: e.throttle_rate,
            fifo: e.ordering == Ordering::Fifo,
            b,
            claims: VecDeque::new(),
        });
    }
    let n_msgs = rng.gen_range(1..40);
    let mut run = Run {
        rng,
        store,
        cfg: EngineConfig {
            retry: RetryPolicy::from_secs(&[1, 2, 4, 8, 16]),
            breaker: BreakerPolicy::default(),
            lease: Duration::from_millis(LEASE_MS as u64),
            max_in_flight: 0,
            owner: String::new(),
            transform: Default::default(),
        },
        max_in_flight: 0,
        eps,
        msgs: Vec::new(),
        msg_index: HashMap::new(),
        ep_index,
        heap: BinaryHeap::new(),
        events: HashMap::new(),
        next_event: 0,
        flights: BTreeMap::new(),
        generation: 0,
        answered: HashMap::new(),
        disabled: Vec::new(),
        fan_out: HashMap::new(),
        finished: HashMap::new(),
        trace: Vec::new(),
        now: T0,
        faults: Faults::default(),
    };
    run.max_in_flight = run.rng.gen_range(1..12);
    run.disabled = vec![false; run.eps.len()];
    for i in 0..n_msgs {
        let key = run
            .rng
            .gen_bool(0.7)
            .then(|| format!("k{}", run.rng.gen_range(0..3)));
        let at = T0 + run.rng.gen_range(0..5_000);
        run.msgs.push((
            Message {
                id: MessageId::generate(),
                app_id: app.id.clone(),
                event_id: None,
                event_type: "sim.event".into(),
                payload: Some(format!(r#"{{"i":{i}}}"#)),
                channels: None,
                created_at: at,
                retention_ms: None,
                ordering_key: key.clone(),
                headers: None,
            },
            key,
        ));
    }
    // Publish order is message order (FIFO is defined by it), at increasing virtual times.
    let mut times: Vec<Millis> = run.msgs.iter().map(|(m, _)| m.created_at).collect();
    times.sort();
    for (i, t) in times.into_iter().enumerate() {
        run.msgs[i].0.created_at = t;
        run.push(t, Event::Publish(i));
    }
    for _ in 0..run.rng.gen_range(0..3) {
        let at = T0 + run.rng.gen_range(0..60_000);
        run.push(at, Event::Crash);
    }

    let mut steps = 0;
    loop {
        steps += 1;
        assert!(
            steps < MAX_EVENTS,
            "seed {seed}: no quiescence after {MAX_EVENTS} events"
        );
        let next_due = run.store.next_due_at().await.expect("next due");
        let next_event = run.heap.peek().map(|Reverse((t, _, _))| *t);
        let t = match (next_event, next_due) {
            (None, None) if run.flights.is_empty() => break,
            (None, None) => unreachable!("flights without completion events"),
            (Some(e), Some(d)) => e.min(d.max(run.now + 1)),
            (Some(e), None) => e,
            (None, Some(d)) => d.max(run.now + 1),
        };
        assert!(
            t - T0 < HORIZON_MS,
            "seed {seed}: still busy after the horizon"
        );
        run.now = run.now.max(t);
        if next_event == Some(t) {
            let Some(Reverse((_, _, k))) = run.heap.pop() else {
                unreachable!()
            };
            match run.events.remove(&k) {
                Some(Event::Publish(i)) => {
                    let (mut m, _) = run.msgs[i].clone();
                    m.created_at = run.now;
                    let p = run.store.publish(m, None).await.expect("publish");
                    let enabled = run.disabled.iter().filter(|d| !**d).count();
                    assert_eq!(
                        p.deliveries, enabled,
                        "seed {seed}: m{i} fans out to every enabled endpoint"
                    );
                    run.fan_out.insert(i, p.deliveries);
                    run.msg_index.insert(p.message.id.clone(), i);
                    run.msgs[i].0.id = p.message.id.clone();
                    run.trace.push(format!("{} publish m{i}", run.now - T0));
                }
                Some(Event::Complete(key)) => run.complete(key).await,
                Some(Event::Crash) => run.crash().await,
                Some(Event::Claim) | None => {}
            }
        }
        run.claim().await;
    }

    // Quiescence: every delivery is finished and visible.
    for (i, (m, _)) in run.msgs.iter().enumerate() {
        let ds = run
            .store
            .deliveries_of_message(&m.id)
            .await
            .expect("deliveries");
        assert_eq!(
            ds.len(),
            run.fan_out[&i],
            "seed {seed}: m{i} keeps its deliveries"
        );
        for d in ds {
            let ei = run.ep_index[&d.endpoint_id];
            match d.status {
                DeliveryStatus::Success => assert!(
                    run.answered.get(&(i, ei)).copied().unwrap_or(0) > 0,
                    "seed {seed}: m{i} e{ei} success without a 2xx"
                ),
                DeliveryStatus::Fail => {}
                other => panic!("seed {seed}: m{i} e{ei} ends {other:?}, not finished"),
            }
        }
    }
    (run.trace, run.faults)
}

fn seeds() -> Vec<u64> {
    if let Ok(s) = std::env::var("HERALD_SIM_SEED") {
        return vec![s.parse().expect("HERALD_SIM_SEED is a number")];
    }
    let n: u64 = std::env::var("HERALD_SIM_SEEDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(1_000);
    (0..n).collect()
}

/// A directory on tmpfs where there is one: the simulation measures logic, not fsync.
fn sim_dir() -> tempfile::TempDir {
    let shm = std::path::Path::new("/dev/shm");
    if shm.is_dir() {
        if let Ok(d) = tempfile::tempdir_in(shm) {
            return d;
        }
    }
    tempfile::tempdir().expect("temp dir")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_seed_keeps_the_delivery_invariants() {
    let dir = sim_dir();
    let mut total = Faults::default();
    let list = seeds();
    let verbose = list.len() == 1;
    // Seeds are independent (a store each), so several run at once; each one's own steps
    // stay strictly in order, which is what makes it replayable.
    use futures::StreamExt;
    let path = dir.path().to_path_buf();
    let mut runs = futures::stream::iter(list.clone())
        .map(|seed| {
            let path = path.clone();
            async move { run_seed(seed, &path).await }
        })
        .buffer_unordered(16);
    while let Some((trace, f)) = runs.next().await {
        if verbose {
            println!("{}", trace.join("\n"));
        }
        total.claim_errors += f.claim_errors;
        total.lost_records += f.lost_records;
        total.crashes += f.crashes;
        total.attempts += f.attempts;
    }
    println!(
        "simulation: {} seeds, {} attempts, {} crashes, {} lost attempt records, {} failed claims",
        list.len(),
        total.attempts,
        total.crashes,
        total.lost_records,
        total.claim_errors
    );
    assert!(total.attempts > 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_seed_replays_the_same_run() {
    let dir = sim_dir();
    for seed in [3_u64, 77, 1_234] {
        let (a, _) = run_seed(seed, dir.path()).await;
        let (b, _) = run_seed(seed, dir.path()).await;
        assert_eq!(a, b, "seed {seed} replays differently");
        assert!(!a.is_empty());
    }
}
