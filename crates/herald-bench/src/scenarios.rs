//! The measurements. Each scenario starts its own Herald (fresh data directory), sets up apps
//! and endpoints pointing at the bench receiver, drives load, and stops Herald with SIGTERM.

use parking_lot::Mutex;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context as _};
use bytes::Bytes;
use hyper::header::HeaderValue;
use hyper::{StatusCode, Uri};
use serde_json::{json, Value};

use crate::herald_proc::Herald;
use crate::http::{self, post, Api, HttpClient};
use crate::load::{closed_loop, message, open_loop, payload, LoopResult};
use crate::receiver::{Mode, PathStats, Receiver};
use crate::relay::Relay;
use crate::stats::{now_us, percentiles, round1, round3};

/// Sizes and rates of a run.
#[derive(Clone, Debug)]
pub struct Params {
    /// Concurrent publishing clients (closed loop).
    pub clients: usize,
    /// Multiplies every message count (1.0 = the documented sizes).
    pub scale: f64,
    /// Multiplies every measuring window (publish 20 s, latency 30 s, throttle window, …).
    pub time_scale: f64,
    /// Connections of the receiver-ceiling load generator.
    pub ceiling_connections: usize,
    /// `maxConcurrency` given to the endpoints of the throughput scenarios.
    pub max_concurrency: u32,
    /// `throttleRate` of the throttle and cluster-throttle scenarios.
    pub throttle_rate: u32,
    /// Length of the throttle scenarios' measuring window before `time_scale`.
    pub throttle_secs: f64,
    /// Endpoints of the isolation scenario (half of them hang in the second case).
    pub isolation_endpoints: usize,
    /// Publish rate of the latency scenario.
    pub latency_rate: f64,
    /// Scrape Herald's `/metrics` at this interval (0 = never).
    pub scrape_metrics_secs: f64,
    /// Run Herald on PostgreSQL: an admin URL of a cluster (`postgres://user@host:port/db`);
    /// every Herald start gets a fresh database created there with `psql`. SQLite when absent.
    pub database_url: Option<String>,
    /// Herald nodes of the `cluster` and `cluster-throttle` scenarios (all on one database of
    /// the `database_url` cluster).
    pub nodes: usize,
}

impl Params {
    fn count(&self, n: u64) -> u64 {
        ((n as f64 * self.scale).round() as u64).max(1)
    }

    fn window(&self, secs: f64) -> Duration {
        Duration::from_secs_f64((secs * self.time_scale).max(1.0))
    }
}

/// Everything scenarios share.
pub struct Ctx {
    pub bin: PathBuf,
    pub rx: Receiver,
    pub p: Params,
    /// Requests per second the receiver took straight from the bench load generator.
    pub ceiling: Option<f64>,
}

/// One line of the printed table.
pub struct Row {
    pub metric: String,
    pub value: String,
    /// The figure divided by the receiver ceiling, for delivery throughputs.
    pub ratio: Option<f64>,
    pub target: String,
}

/// What a scenario reports: JSON for the file, rows for the table.
pub struct Outcome {
    pub json: Value,
    pub rows: Vec<Row>,
}

fn row(metric: &str, value: String, ratio: Option<f64>, target: &str) -> Row {
    Row {
        metric: metric.to_string(),
        value,
        ratio,
        target: target.to_string(),
    }
}

/// 12345.6 → "12,346".
pub fn thousands(x: f64) -> String {
    let n = x.round() as i64;
    let digits: Vec<char> = n.unsigned_abs().to_string().chars().rev().collect();
    let mut out: Vec<char> = Vec::new();
    for (i, c) in digits.into_iter().enumerate() {
        if i > 0 && i % 3 == 0 {
            out.push(',');
        }
        out.push(c);
    }
    if n < 0 {
        out.push('-');
    }
    out.into_iter().rev().collect()
}

fn ms(v: &Value) -> String {
    v.as_f64().map_or("-".into(), |x| format!("{x:.2} ms"))
}

// ---- helpers ---------------------------------------------------------------------------------

/// Publishes bench messages to one app.
#[derive(Clone)]
struct Publisher {
    http: HttpClient,
    uri: Uri,
    auth: HeaderValue,
}

impl Publisher {
    fn new(api: &Api, app: &str) -> anyhow::Result<Self> {
        Ok(Self {
            http: api.http.clone(),
            uri: api.uri(&format!("/app/{app}/msg"))?,
            auth: api.auth.clone(),
        })
    }

    async fn send(self, seq: u64, sent_us: u64) -> anyhow::Result<StatusCode> {
        let body = message(seq, sent_us);
        post(&self.http, &self.uri, Some(&self.auth), body).await
    }

    /// Closed loop of `clients` publishers, `cap` messages at most, `within` at most.
    async fn closed(&self, clients: usize, cap: u64, within: Duration) -> LoopResult {
        let p = self.clone();
        closed_loop(clients, cap, within, 202, move |seq| {
            p.clone().send(seq, now_us())
        })
        .await
    }
}

/// `{sent, ok, errors, secs, rate, api_latency}` of a publish loop.
fn loop_json(r: &LoopResult) -> Value {
    json!({
        "ok": r.ok,
        "errors": r.errors,
        "error_samples": r.error_samples,
        "secs": round3(r.secs()),
        "rate_per_s": round1(r.rate()),
        "hit_deadline": r.hit_deadline,
        "api_latency": percentiles(&r.latency),
    })
}

/// Polls `done` every 20 ms until it is true or `deadline` passes; returns whether it became
/// true.
async fn wait_until(deadline: Instant, mut done: impl FnMut() -> bool) -> bool {
    loop {
        if done() {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// (user + system) CPU seconds of a process, from `/proc/<pid>/stat` (100 ticks per second).
fn cpu_secs(pid: &str) -> Option<f64> {
    let s = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let rest = &s[s.rfind(')')? + 2..];
    let f: Vec<&str> = rest.split_whitespace().collect();
    let utime: f64 = f.get(11)?.parse().ok()?;
    let stime: f64 = f.get(12)?.parse().ok()?;
    Some((utime + stime) / 100.0)
}

/// A field of `/proc/<pid>/status` in MiB (`VmRSS`, `RssAnon`, `RssFile`, …).
fn status_mib(pid: u32, field: &str) -> Option<f64> {
    let s = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let kib: f64 = s
        .lines()
        .find(|l| l.split(':').next() == Some(field))?
        .split_whitespace()
        .nth(1)?
        .parse()
        .ok()?;
    Some(round1(kib / 1024.0))
}

fn rss_mib_of(pid: u32) -> Option<f64> {
    status_mib(pid, "VmRSS")
}

/// CPU seconds of every thread of a process, by thread id, with the thread's name.
fn thread_cpu(pid: &str) -> std::collections::HashMap<String, (String, f64)> {
    let mut out = std::collections::HashMap::new();
    let Ok(rd) = std::fs::read_dir(format!("/proc/{pid}/task")) else {
        return out;
    };
    for e in rd.flatten() {
        let tid = e.file_name().to_string_lossy().into_owned();
        let name = std::fs::read_to_string(format!("/proc/{pid}/task/{tid}/comm"))
            .unwrap_or_default()
            .trim()
            .to_string();
        if let Some(c) = cpu_secs(&format!("{pid}/task/{tid}")) {
            out.insert(tid, (name, c));
        }
    }
    out
}

/// CPU used by Herald and by the bench process over a stretch of a scenario.
struct CpuMeter {
    pid: String,
    herald0: f64,
    bench0: f64,
    threads0: std::collections::HashMap<String, (String, f64)>,
    t0: Instant,
}

impl CpuMeter {
    fn start(h: &Herald) -> Self {
        let pid = h.pid.to_string();
        Self {
            herald0: cpu_secs(&pid).unwrap_or(0.0),
            bench0: cpu_secs("self").unwrap_or(0.0),
            threads0: thread_cpu(&pid),
            pid,
            t0: Instant::now(),
        }
    }

    /// Average cores used since `start`: `{herald_cores, bench_cores, herald_busiest_threads}`
    /// (a thread near 1.0 core is a serial bottleneck).
    fn json(&self) -> Value {
        let secs = self.t0.elapsed().as_secs_f64().max(1e-3);
        let h = cpu_secs(&self.pid).map(|c| round3((c - self.herald0) / secs));
        let b = cpu_secs("self").map(|c| round3((c - self.bench0) / secs));
        let mut threads: Vec<(String, f64)> = thread_cpu(&self.pid)
            .into_iter()
            .map(|(tid, (name, c))| {
                let c0 = self.threads0.get(&tid).map_or(0.0, |t| t.1);
                (format!("{name}/{tid}"), (c - c0) / secs)
            })
            .collect();
        threads.sort_by(|a, b| b.1.total_cmp(&a.1));
        let top: Vec<Value> = threads
            .into_iter()
            .take(4)
            .map(|(n, c)| json!({ "thread": n, "cores": round3(c) }))
            .collect();
        json!({ "herald_cores": h, "bench_cores": b, "herald_busiest_threads": top })
    }
}

/// Stops Herald after a scenario; a failed stop is reported inside a successful outcome.
async fn finish(h: Herald, res: anyhow::Result<Outcome>) -> anyhow::Result<Outcome> {
    let (log_lines, log_head) = h.log_summary(3);
    let rss = h.rss_kib().map(|k| round1(k as f64 / 1024.0));
    let stopped = h.stop().await;
    let mut o = res?;
    o.json["herald_rss_end_mib"] = json!(rss);
    o.json["herald_log_lines"] = json!(log_lines);
    o.json["herald_log_head"] = json!(log_head);
    o.json["herald_stopped_cleanly"] = json!(stopped.is_ok());
    if let Err(e) = stopped {
        o.json["herald_stop_error"] = json!(format!("{e:#}"));
    }
    Ok(o)
}

impl Ctx {
    fn ratio(&self, rate: f64) -> Option<f64> {
        self.ceiling.filter(|c| *c > 0.0).map(|c| round3(rate / c))
    }

    fn scrape_every(&self) -> Option<Duration> {
        (self.p.scrape_metrics_secs > 0.0)
            .then(|| Duration::from_secs_f64(self.p.scrape_metrics_secs))
    }

    /// Starts a Herald on SQLite, or on a fresh PostgreSQL database with `--database-url`.
    async fn herald(&self, extra: &[(&str, String)]) -> anyhow::Result<Herald> {
        match &self.p.database_url {
            Some(admin) => self.herald_on(&fresh_pg_database(admin)?, extra).await,
            None => Herald::start(&self.bin, extra, self.scrape_every()).await,
        }
    }

    /// Starts a Herald on the PostgreSQL database `url`; Heralds started on one URL form a
    /// cluster (they share the encryption key).
    async fn herald_on(&self, url: &str, extra: &[(&str, String)]) -> anyhow::Result<Herald> {
        let mut extra: Vec<(&str, String)> = extra.to_vec();
        extra.push(("database_url", url.to_string()));
        // A fixed key: every database the bench uses is new, so any key works.
        extra.push((
            "encryption_key",
            "YmVuY2gtZW5jcnlwdGlvbi1rZXktMzItYnl0ZXMhIS0=".into(),
        ));
        Herald::start(&self.bin, &extra, self.scrape_every()).await
    }

    /// Starts `--nodes` Heralds on one fresh PostgreSQL database (`--database-url` required;
    /// `scenario` names the caller in the error).
    async fn cluster_nodes(&self, scenario: &str) -> anyhow::Result<Vec<Herald>> {
        let Some(admin) = &self.p.database_url else {
            bail!("the {scenario} scenario needs --database-url (PostgreSQL)");
        };
        let db = fresh_pg_database(admin)?;
        let mut hs = Vec::new();
        for _ in 0..self.p.nodes.max(1) {
            // One after the other: the first applies the migrations.
            hs.push(self.herald_on(&db, &[]).await?);
        }
        Ok(hs)
    }
}

/// Stops every node of a cluster after a scenario; each node's stop report goes under
/// `node<i>` in the outcome.
async fn finish_nodes(hs: Vec<Herald>, res: anyhow::Result<Outcome>) -> anyhow::Result<Outcome> {
    let mut out = res;
    for (i, h) in hs.into_iter().enumerate() {
        let empty = Outcome {
            rows: vec![],
            json: json!({}),
        };
        let r = finish(h, Ok(empty)).await;
        if let (Ok(o), Ok(f)) = (&mut out, r) {
            o.json[format!("node{i}")] = f.json;
        }
    }
    out
}

/// Creates an empty database in the cluster `admin` names (with `psql`) and returns its URL.
fn fresh_pg_database(admin: &str) -> anyhow::Result<String> {
    let name = format!(
        "bench_{}",
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)?
            .as_nanos()
    );
    let out = std::process::Command::new("psql")
        .arg(admin)
        .arg("-qc")
        .arg(format!("CREATE DATABASE {name}"))
        .output()
        .map_err(|e| anyhow::anyhow!("psql: {e}"))?;
    anyhow::ensure!(
        out.status.success(),
        "psql CREATE DATABASE: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let (base, _) = admin
        .rsplit_once('/')
        .ok_or_else(|| anyhow::anyhow!("--database-url needs a database name"))?;
    Ok(format!("{base}/{name}"))
}

// ---- receiver ceiling ------------------------------------------------------------------------

/// The bench load generator POSTs 1 KiB JSON bodies straight to the receiver over
/// `ceiling_connections` keep-alive connections: the most any delivery figure could reach here.
/// Registers the receiver path `path` (`mode`; receipt times kept when `timed`) and an endpoint
/// of `app` delivering to it with the bench's `maxConcurrency`.
async fn bench_endpoint(
    ctx: &Ctx,
    api: &Api,
    app: &str,
    path: &str,
    mode: Mode,
    timed: bool,
) -> anyhow::Result<Arc<PathStats>> {
    let ps = ctx.rx.path(path, mode, timed);
    api.create_endpoint(
        app,
        json!({ "url": ctx.rx.url(path), "maxConcurrency": ctx.p.max_concurrency }),
    )
    .await?;
    Ok(ps)
}

pub async fn ceiling(ctx: &Ctx) -> anyhow::Result<Outcome> {
    let ps = ctx.rx.path("/ceiling", Mode::Ok, false);
    let uri: Uri = ctx.rx.url("/ceiling").parse()?;
    let http = http::client();
    let body = Bytes::from(payload(0, 0));
    let window = ctx.p.window(10.0);
    let res = closed_loop(
        ctx.p.ceiling_connections,
        50_000_000,
        window,
        204,
        move |_| {
            let (http, uri, body) = (http.clone(), uri.clone(), body.clone());
            async move { post(&http, &uri, None, body).await }
        },
    )
    .await;
    let received = ps.snapshot().total;
    if res.ok == 0 {
        bail!("the receiver answered nothing: {:?}", res.error_samples);
    }
    let rate = res.rate();
    let json = json!({
        "connections": ctx.p.ceiling_connections,
        "body_bytes": payload(0, 0).len(),
        "requests": res.ok,
        "received": received,
        "errors": res.errors,
        "secs": round3(res.secs()),
        "rate_per_s": round1(rate),
        "latency": percentiles(&res.latency),
    });
    Ok(Outcome {
        json,
        rows: vec![row(
            "receiver ceiling (bench → receiver)",
            format!("{} req/s", thousands(rate)),
            Some(1.0),
            "",
        )],
    })
}

// ---- 1. durable publish rate -----------------------------------------------------------------

/// `clients` concurrent publishers, 1 KiB messages, to an app without endpoints.
pub async fn publish(ctx: &Ctx) -> anyhow::Result<Outcome> {
    let h = ctx.herald(&[]).await?;
    let res = publish_inner(ctx, &h).await;
    finish(h, res).await
}

async fn publish_inner(ctx: &Ctx, h: &Herald) -> anyhow::Result<Outcome> {
    let app = h.api.create_app("bench-publish").await?;
    let p = Publisher::new(&h.api, &app)?;
    let cpu = CpuMeter::start(h);
    let window = ctx.p.window(20.0);
    let r = p.closed(ctx.p.clients, 5_000_000, window).await;
    let json = json!({
        "clients": ctx.p.clients,
        "window_secs": window.as_secs_f64(),
        "publish": loop_json(&r),
        "cpu": cpu.json(),
    });
    let lat = &json["publish"]["api_latency"];
    Ok(Outcome {
        rows: vec![
            row(
                "durable publish (no endpoints)",
                format!("{} msg/s", thousands(r.rate())),
                ctx.ratio(r.rate()),
                "≥ 20,000 msg/s",
            ),
            row(
                "  publish API latency p50 / p99",
                format!("{} / {}", ms(&lat["p50_ms"]), ms(&lat["p99_ms"])),
                None,
                "",
            ),
        ],
        json,
    })
}

// ---- 2./3. end-to-end and fan-out ------------------------------------------------------------

/// 100,000 messages to one endpoint.
pub async fn e2e(ctx: &Ctx) -> anyhow::Result<Outcome> {
    let h = ctx.herald(&[]).await?;
    let res = deliver_all(ctx, &h, "e2e", 1, ctx.p.count(100_000)).await;
    finish(h, res).await
}

/// 10,000 messages × 10 endpoints.
pub async fn fanout(ctx: &Ctx) -> anyhow::Result<Outcome> {
    let h = ctx.herald(&[]).await?;
    let res = deliver_all(ctx, &h, "fanout", 10, ctx.p.count(10_000)).await;
    finish(h, res).await
}

/// Publishes `messages` as fast as `clients` publishers can to an app with `endpoints`
/// endpoints on the receiver, and times first publish → last delivery.
async fn deliver_all(
    ctx: &Ctx,
    h: &Herald,
    name: &str,
    endpoints: usize,
    messages: u64,
) -> anyhow::Result<Outcome> {
    let app = h.api.create_app(&format!("bench-{name}")).await?;
    let mut paths: Vec<Arc<PathStats>> = Vec::new();
    for i in 0..endpoints {
        let path = format!("/{name}/{i}");
        paths.push(bench_endpoint(ctx, &h.api, &app, &path, Mode::Ok, false).await?);
    }
    let p = Publisher::new(&h.api, &app)?;
    let cpu = CpuMeter::start(h);
    let bound = Duration::from_secs(600);
    let start = Instant::now();
    let r = p.closed(ctx.p.clients, messages, bound).await;
    let expected = r.ok * endpoints as u64;
    let delivered = || paths.iter().map(|p| p.unique()).sum::<u64>();
    let complete = wait_until(start + bound, || delivered() >= expected).await;
    let snaps: Vec<_> = paths.iter().map(|p| p.snapshot()).collect();
    let got: u64 = snaps.iter().map(|s| s.unique).sum();
    let dups: u64 = snaps.iter().map(|s| s.duplicates).sum();
    let last = snaps
        .iter()
        .filter_map(|s| s.last_us)
        .max()
        .unwrap_or(r.started_us);
    let secs = (last.saturating_sub(r.started_us)) as f64 / 1e6;
    let rate = if secs > 0.0 { got as f64 / secs } else { 0.0 };
    let lag = (last.saturating_sub(r.ended_us)) as f64 / 1e6;
    let json = json!({
        "endpoints": endpoints,
        "messages": messages,
        "max_concurrency": ctx.p.max_concurrency,
        "clients": ctx.p.clients,
        "publish": loop_json(&r),
        "deliveries_expected": expected,
        "deliveries_received": got,
        "duplicates": dups,
        "complete": complete,
        "first_publish_to_last_delivery_secs": round3(secs),
        "last_publish_to_last_delivery_secs": round3(lag),
        "deliveries_per_s": round1(rate),
        "ratio_to_ceiling": ctx.ratio(rate),
        "cpu": cpu.json(),
    });
    let label = if endpoints == 1 {
        format!(
            "end-to-end, {} msgs → 1 endpoint",
            thousands(messages as f64)
        )
    } else {
        format!(
            "fan-out, {} msgs × {endpoints} endpoints",
            thousands(messages as f64)
        )
    };
    let mut value = format!("{} deliveries/s", thousands(rate));
    if !complete {
        value.push_str(&format!(" (INCOMPLETE {got}/{expected})"));
    }
    Ok(Outcome {
        rows: vec![
            row(&label, value, ctx.ratio(rate), ""),
            row(
                "  publish rate meanwhile",
                format!("{} msg/s", thousands(r.rate())),
                None,
                "",
            ),
        ],
        json,
    })
}

// ---- cluster: several nodes on one PostgreSQL ------------------------------------------------

/// 10,000 messages × 10 endpoints (the fan-out load, so that no single endpoint row is hot)
/// over `nodes` Herald processes sharing one fresh PostgreSQL database: the publishers are
/// split evenly between the nodes, every node also runs the delivery engine. Compare with
/// `fanout` run with the same `--database-url` (one node).
pub async fn cluster(ctx: &Ctx) -> anyhow::Result<Outcome> {
    let hs = ctx.cluster_nodes("cluster").await?;
    let res = cluster_inner(ctx, &hs).await;
    finish_nodes(hs, res).await
}

async fn cluster_inner(ctx: &Ctx, hs: &[Herald]) -> anyhow::Result<Outcome> {
    const ENDPOINTS: usize = 10;
    let messages = ctx.p.count(10_000);
    let app = hs[0].api.create_app("bench-cluster").await?;
    let mut paths: Vec<Arc<PathStats>> = Vec::new();
    for i in 0..ENDPOINTS {
        let path = format!("/cluster/{i}");
        paths.push(bench_endpoint(ctx, &hs[0].api, &app, &path, Mode::Ok, false).await?);
    }
    let cpus: Vec<CpuMeter> = hs.iter().map(CpuMeter::start).collect();
    let bound = Duration::from_secs(600);
    let start = Instant::now();
    let per_node = messages.div_ceil(hs.len() as u64);
    let clients = (ctx.p.clients / hs.len()).max(1);
    let loops = hs.iter().map(|h| {
        let p = Publisher::new(&h.api, &app);
        async move { anyhow::Ok(p?.closed(clients, per_node, bound).await) }
    });
    let results = futures::future::join_all(loops)
        .await
        .into_iter()
        .collect::<anyhow::Result<Vec<_>>>()?;
    let ok: u64 = results.iter().map(|r| r.ok).sum();
    let errors: u64 = results.iter().map(|r| r.errors).sum();
    let started = results.iter().map(|r| r.started_us).min().unwrap_or(0);
    let ended = results.iter().map(|r| r.ended_us).max().unwrap_or(started);
    let expected = ok * ENDPOINTS as u64;
    let delivered = || paths.iter().map(|p| p.unique()).sum::<u64>();
    let complete = wait_until(start + bound, || delivered() >= expected).await;
    let snaps: Vec<_> = paths.iter().map(|p| p.snapshot()).collect();
    let got: u64 = snaps.iter().map(|s| s.unique).sum();
    let dups: u64 = snaps.iter().map(|s| s.duplicates).sum();
    let last = snaps
        .iter()
        .filter_map(|s| s.last_us)
        .max()
        .unwrap_or(started);
    let secs = (last.saturating_sub(started)) as f64 / 1e6;
    let rate = if secs > 0.0 { got as f64 / secs } else { 0.0 };
    let publish_secs = (ended.saturating_sub(started)) as f64 / 1e6;
    let publish_rate = if publish_secs > 0.0 {
        ok as f64 / publish_secs
    } else {
        0.0
    };
    let json = json!({
        "nodes": hs.len(),
        "endpoints": ENDPOINTS,
        "messages": messages,
        "clients_per_node": clients,
        "published": ok,
        "publish_errors": errors,
        "publish_rate_per_s": round1(publish_rate),
        "deliveries_expected": expected,
        "deliveries_received": got,
        "duplicates": dups,
        "complete": complete,
        "first_publish_to_last_delivery_secs": round3(secs),
        "deliveries_per_s": round1(rate),
        "ratio_to_ceiling": ctx.ratio(rate),
        "cpu": cpus.iter().map(CpuMeter::json).collect::<Vec<_>>(),
    });
    let mut value = format!("{} deliveries/s", thousands(rate));
    if !complete {
        value.push_str(&format!(" (INCOMPLETE {got}/{expected})"));
    }
    Ok(Outcome {
        rows: vec![
            row(
                &format!(
                    "{} nodes on PostgreSQL: {} msgs × {ENDPOINTS} endpoints",
                    hs.len(),
                    thousands(messages as f64)
                ),
                value,
                ctx.ratio(rate),
                "",
            ),
            row(
                "  publish rate meanwhile (all nodes)",
                format!("{} msg/s", thousands(publish_rate)),
                None,
                "",
            ),
        ],
        json,
    })
}

// ---- spool: publishing through a PostgreSQL outage ------------------------------------------

/// Most publishes of the outage window (before `--scale`).
const SPOOL_CAP: u64 = 100_000;

/// Upper bound on the size of one spool line (a bench message spools as about 1.3 KiB): the
/// spool limit is set to `cap × this`, so the measured window can never fill it and turn
/// publishes into 503s.
const SPOOL_LINE_MAX: u64 = 4096;

/// Messages published (and delivered) before the outage: they make the node read, and so
/// remember, the application and the event type — all a publish reads — and prove the
/// endpoint is served.
const SPOOL_WARMUP: u64 = 20;

/// Herald on PostgreSQL through a loopback [`Relay`]. After a warm-up the relay is cut (live
/// connections closed, new ones refused), so the node spools every publish (fdatasync'd, 202);
/// the closed-loop publishers run for 10 s × time-scale. Then the relay is restored and the
/// scenario times the drain: spool written into the database, every accepted message
/// delivered to the receiver once.
pub async fn spool(ctx: &Ctx) -> anyhow::Result<Outcome> {
    let Some(admin) = &ctx.p.database_url else {
        bail!("the spool scenario needs --database-url (PostgreSQL)");
    };
    let (relay, url) = Relay::in_front_of(&fresh_pg_database(admin)?).await?;
    let cap = ctx.p.count(SPOOL_CAP);
    let spool_max = cap * SPOOL_LINE_MAX;
    let h = ctx
        .herald_on(&url, &[("spool_max_bytes", spool_max.to_string())])
        .await?;
    let res = spool_inner(ctx, &h, &relay, cap, spool_max).await;
    // Herald stops with the database reachable, whatever happened above.
    relay.restore();
    finish(h, res).await
}

async fn spool_inner(
    ctx: &Ctx,
    h: &Herald,
    relay: &Relay,
    cap: u64,
    spool_max: u64,
) -> anyhow::Result<Outcome> {
    let app = h.api.create_app("bench-spool").await?;
    let path = "/spool/0";
    let ps = bench_endpoint(ctx, &h.api, &app, path, Mode::Ok, false).await?;
    let p = Publisher::new(&h.api, &app)?;
    let warm = p.closed(4, SPOOL_WARMUP, Duration::from_secs(30)).await;
    anyhow::ensure!(
        warm.ok == SPOOL_WARMUP,
        "warm-up publishes failed: {:?}",
        warm.error_samples
    );
    let warm_deadline = Instant::now() + Duration::from_secs(30);
    if !wait_until(warm_deadline, || ps.unique() >= SPOOL_WARMUP).await {
        bail!("the warm-up messages were not delivered within 30 s");
    }

    relay.cut();
    // The first publish of the outage is the one that finds the database gone (it waits for
    // the connection attempts to fail); it is timed apart so that the window measures the
    // spool itself. Once anything is spooled, publishes go to the spool without trying the
    // database.
    let t = Instant::now();
    let first = tokio::time::timeout(Duration::from_secs(60), p.clone().send(0, now_us()))
        .await
        .context("the first publish of the outage did not answer within 60 s")?;
    let first_ms = t.elapsed().as_secs_f64() * 1e3;
    match first {
        Ok(s) if s == StatusCode::ACCEPTED => {}
        Ok(s) => bail!("the first publish of the outage answered {s}, not 202"),
        Err(e) => bail!("the first publish of the outage failed: {e:#}"),
    }
    let window = ctx.p.window(10.0);
    let cpu = CpuMeter::start(h);
    let r = p.closed(ctx.p.clients, cap, window).await;
    let cpu = cpu.json();
    let spooled_bytes = h.spool_bytes();
    let accepted = r.ok + 1;
    let expected = SPOOL_WARMUP + accepted;

    relay.restore();
    let restored_us = now_us();
    let drain_cpu = CpuMeter::start(h);
    let mut spool_empty_us = None;
    let bound = Instant::now() + Duration::from_secs(600);
    let complete = wait_until(bound, || {
        if spool_empty_us.is_none() && h.spool_bytes() == 0 {
            spool_empty_us = Some(now_us());
        }
        ps.unique() >= expected
    })
    .await;
    let drain_cpu = drain_cpu.json();
    // Late duplicates (a redelivery after a lost answer) would arrive within moments.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let snap = ps.snapshot();
    let first_after = ps.times().into_iter().filter(|t| *t >= restored_us).min();
    let end_us = if complete {
        snap.last_us.unwrap_or(restored_us)
    } else {
        now_us()
    };
    let secs_since_restore = |t: u64| round3(t.saturating_sub(restored_us) as f64 / 1e6);
    let drain_secs = end_us.saturating_sub(restored_us) as f64 / 1e6;
    let delivered = snap.unique.saturating_sub(SPOOL_WARMUP);
    let drain_rate = if drain_secs > 0.0 {
        delivered as f64 / drain_secs
    } else {
        0.0
    };
    let lost = expected.saturating_sub(snap.unique);
    let json = json!({
        "method": "Herald's database_url points at a loopback TCP relay to PostgreSQL; after \
                   the warm-up the relay closes its connections and refuses new ones (an \
                   outage), the publishers run, then the relay lets connections through again",
        "window_secs": window.as_secs_f64(),
        "publish_cap": cap,
        "spool_max_bytes": spool_max,
        "warmup_messages": SPOOL_WARMUP,
        "first_outage_publish_ms": round1(first_ms),
        "publish": loop_json(&r),
        "expected_status": 202,
        "accepted": accepted,
        "spooled_bytes": spooled_bytes,
        "spooled_bytes_per_message": (accepted > 0).then(|| spooled_bytes / accepted),
        "outage_cpu": cpu,
        "restore_to_spool_empty_secs": spool_empty_us.map(secs_since_restore),
        "restore_to_first_delivery_secs": first_after.map(secs_since_restore),
        "restore_to_last_delivery_secs": round3(drain_secs),
        "deliveries_expected": expected,
        "delivered": snap.unique,
        "duplicates": snap.duplicates,
        "lost": lost,
        "complete": complete,
        "drain_per_s": round1(drain_rate),
        "drain_cpu": drain_cpu,
    });
    let lat = &json["publish"]["api_latency"];
    let mut drain = format!(
        "{} msgs in {drain_secs:.1} s = {} msg/s",
        thousands(accepted as f64),
        thousands(drain_rate)
    );
    if !complete {
        drain.push_str(&format!(" (INCOMPLETE {}/{expected})", snap.unique));
    }
    let spool_empty = spool_empty_us.map_or("-".to_string(), |t| {
        format!("{:.1} s", secs_since_restore(t))
    });
    Ok(Outcome {
        rows: vec![
            row(
                "spool (PostgreSQL unreachable): accepted publishes",
                format!("{} msg/s (202)", thousands(r.rate())),
                None,
                "",
            ),
            row(
                "  spooled publish latency p50 / p99",
                format!("{} / {}", ms(&lat["p50_ms"]), ms(&lat["p99_ms"])),
                None,
                "",
            ),
            row(
                "  non-202 answers / first outage publish",
                format!("{} / {first_ms:.0} ms", r.errors),
                None,
                "0",
            ),
            row("  drain after restore: all delivered", drain, None, ""),
            row(
                "  spool empty after / duplicates / lost",
                format!("{spool_empty} / {} / {lost}", snap.duplicates),
                None,
                "lost 0",
            ),
        ],
        json,
    })
}

// ---- 4. latency ------------------------------------------------------------------------------

/// Open-loop publishing at `latency_rate` for 30 s; publish → receipt latency at the receiver.
pub async fn latency(ctx: &Ctx) -> anyhow::Result<Outcome> {
    let h = ctx.herald(&[]).await?;
    let res = latency_inner(ctx, &h).await;
    finish(h, res).await
}

async fn latency_inner(ctx: &Ctx, h: &Herald) -> anyhow::Result<Outcome> {
    let app = h.api.create_app("bench-latency").await?;
    let path = "/latency/0";
    let ps = bench_endpoint(ctx, &h.api, &app, path, Mode::Ok, true).await?;
    let p = Publisher::new(&h.api, &app)?;
    let window = ctx.p.window(30.0);
    let rate = ctx.p.latency_rate;
    let n = (rate * window.as_secs_f64()).round() as u64;
    let cpu = CpuMeter::start(h);
    let r = open_loop(
        rate,
        n,
        4096,
        Duration::from_secs(30),
        202,
        move |seq, at| p.clone().send(seq, at),
    )
    .await;
    let complete = wait_until(Instant::now() + Duration::from_secs(30), || {
        ps.unique() >= r.ok
    })
    .await;
    let e2e = percentiles(&ps.latency());
    let json = json!({
        "rate_per_s": rate,
        "window_secs": window.as_secs_f64(),
        "publish": loop_json(&r),
        "delivered": ps.unique(),
        "complete": complete,
        "publish_to_receipt": e2e,
        "cpu": cpu.json(),
        "note": "latency runs from each message's scheduled send time (open loop), so a stall \
                 in the publisher counts against Herald rather than being hidden",
    });
    let api = &json["publish"]["api_latency"];
    Ok(Outcome {
        rows: vec![
            row(
                &format!(
                    "latency at {} msg/s: publish→receipt p50 / p99 / p999",
                    thousands(rate)
                ),
                format!(
                    "{} / {} / {}",
                    ms(&e2e["p50_ms"]),
                    ms(&e2e["p99_ms"]),
                    ms(&e2e["p999_ms"])
                ),
                None,
                "",
            ),
            row(
                "  publish API latency p50 / p99",
                format!("{} / {}", ms(&api["p50_ms"]), ms(&api["p99_ms"])),
                None,
                "",
            ),
        ],
        json,
    })
}

// ---- 7. inbound acknowledgement --------------------------------------------------------------

/// A GitHub-style source (HMAC-SHA256 over the body, `X-GitHub-Delivery` as the dedup key)
/// receives signed 1 KiB requests open-loop at the latency rate for 30 s while Herald forwards
/// them to the receiver: the provider-visible acknowledgement latency (request → 202, which
/// includes the durable commit of dedup key, message and log row), and the forwarding latency.
pub async fn inbound(ctx: &Ctx) -> anyhow::Result<Outcome> {
    let h = ctx.herald(&[]).await?;
    let res = inbound_inner(ctx, &h).await;
    finish(h, res).await
}

async fn inbound_inner(ctx: &Ctx, h: &Herald) -> anyhow::Result<Outcome> {
    use hmac::{Hmac, Mac};
    const SECRET: &[u8] = b"bench-github-secret";
    let app = h.api.create_app("bench-inbound").await?;
    let path = "/inbound/0";
    let ps = bench_endpoint(ctx, &h.api, &app, path, Mode::Ok, true).await?;
    let src = h
        .api
        .expect(
            hyper::Method::POST,
            &format!("/app/{app}/source"),
            Some(&json!({
                "name": "bench-github",
                "verification": {"scheme": "github", "secrets": [String::from_utf8_lossy(SECRET)]},
            })),
            201,
        )
        .await?;
    let src_id = src["id"].as_str().context("source id")?.to_string();
    let uri: Uri = format!("{}/in/{src_id}", h.api.base).parse()?;
    let http = h.api.http.clone();
    let window = ctx.p.window(30.0);
    let rate = ctx.p.latency_rate;
    let n = (rate * window.as_secs_f64()).round() as u64;
    let cpu = CpuMeter::start(h);
    let r = open_loop(
        rate,
        n,
        4096,
        Duration::from_secs(30),
        202,
        move |seq, at| {
            let (http, uri) = (http.clone(), uri.clone());
            async move {
                let body = Bytes::from(payload(seq, at));
                let mut mac = Hmac::<sha2::Sha256>::new_from_slice(SECRET).expect("any key length");
                mac.update(&body);
                let sig = format!("sha256={}", hex::encode(mac.finalize().into_bytes()));
                let headers = [
                    ("x-hub-signature-256", sig),
                    ("x-github-event", "push".to_string()),
                    ("x-github-delivery", format!("bench-{seq}")),
                ];
                http::post_signed(&http, &uri, &headers, body).await
            }
        },
    )
    .await;
    let complete = wait_until(Instant::now() + Duration::from_secs(30), || {
        ps.unique() >= r.ok
    })
    .await;
    let fwd = percentiles(&ps.latency());
    let json = json!({
        "rate_per_s": rate,
        "window_secs": window.as_secs_f64(),
        "ingest": loop_json(&r),
        "forwarded": ps.unique(),
        "complete": complete,
        "request_to_forward": fwd,
        "cpu": cpu.json(),
        "note": "open loop from each request's scheduled send time; a GitHub source (HMAC-SHA256 \
                 check, dedup by X-GitHub-Delivery) forwarding to one endpoint during the run",
    });
    let ack = &json["ingest"]["api_latency"];
    Ok(Outcome {
        rows: vec![
            row(
                &format!("inbound ack at {} req/s: p50 / p99 / p999", thousands(rate)),
                format!(
                    "{} / {} / {}",
                    ms(&ack["p50_ms"]),
                    ms(&ack["p99_ms"]),
                    ms(&ack["p999_ms"])
                ),
                None,
                "p99 ≤ 10 ms",
            ),
            row(
                "  request→forward receipt p50 / p99",
                format!("{} / {}", ms(&fwd["p50_ms"]), ms(&fwd["p99_ms"])),
                None,
                "",
            ),
        ],
        json,
    })
}

// ---- 5. backlog memory -----------------------------------------------------------------------

/// 1,000,000 deliveries queued behind an endpoint whose receiver path is gated (held, not
/// answered), then drained by opening the gate; RSS sampled throughout.
pub async fn backlog(ctx: &Ctx) -> anyhow::Result<Outcome> {
    // Held requests must not time out while the backlog builds up (lease > request timeout).
    let h = ctx
        .herald(&[
            ("request_timeout_ms", "55000".to_string()),
            ("lease_seconds", "60".to_string()),
        ])
        .await?;
    let res = backlog_inner(ctx, &h).await;
    finish(h, res).await
}

async fn backlog_inner(ctx: &Ctx, h: &Herald) -> anyhow::Result<Outcome> {
    let app = h.api.create_app("bench-backlog").await?;
    let path = "/backlog/0";
    let ps = bench_endpoint(ctx, &h.api, &app, path, Mode::Gate, false).await?;
    let p = Publisher::new(&h.api, &app)?;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let rss_before = rss_mib_of(h.pid);
    let messages = ctx.p.count(1_000_000);

    // RSS and progress sampled every second for the whole scenario.
    let samples: Arc<Mutex<Vec<Value>>> = Arc::default();
    let sampler = {
        let (samples, ps, pid) = (samples.clone(), ps.clone(), h.pid);
        tokio::spawn(async move {
            let t0 = now_us();
            loop {
                tokio::time::sleep(Duration::from_secs(1)).await;
                let s = json!({
                    "t_s": round1((now_us() - t0) as f64 / 1e6),
                    "rss_mib": rss_mib_of(pid),
                    "rss_anon_mib": status_mib(pid, "RssAnon"),
                    "rss_file_mib": status_mib(pid, "RssFile"),
                    "delivered": ps.unique(),
                    "held": ps.held.load(std::sync::atomic::Ordering::Relaxed),
                });
                samples.lock().push(s);
            }
        })
    };
    let cpu_pub = CpuMeter::start(h);
    let r = p
        .closed(ctx.p.clients, messages, Duration::from_secs(900))
        .await;
    let cpu_pub = cpu_pub.json();
    tokio::time::sleep(Duration::from_secs(2)).await;
    let rss_full = rss_mib_of(h.pid);
    let disk_full = h.data_bytes();
    let held = ps.held.load(std::sync::atomic::Ordering::Relaxed);

    let cpu_drain = CpuMeter::start(h);
    let opened_us = now_us();
    let opened_idx = samples.lock().len();
    Receiver::open_gate(&ps);
    let bound = Instant::now() + Duration::from_secs(1800);
    let complete = wait_until(bound, || ps.unique() >= r.ok).await;
    let snap = ps.snapshot();
    let drain_secs = snap.last_us.unwrap_or(opened_us).saturating_sub(opened_us) as f64 / 1e6;
    let drain_rate = if drain_secs > 0.0 {
        snap.unique as f64 / drain_secs
    } else {
        0.0
    };
    let cpu_drain = cpu_drain.json();
    tokio::time::sleep(Duration::from_secs(2)).await;
    let rss_after = rss_mib_of(h.pid);
    let rss_anon_after = status_mib(h.pid, "RssAnon");
    sampler.abort();
    let samples = samples.lock().clone();
    let rss_of = |s: &Value| s["rss_mib"].as_f64();
    let peak_publish = samples[..opened_idx.min(samples.len())]
        .iter()
        .filter_map(rss_of)
        .fold(None, |m: Option<f64>, x| Some(m.map_or(x, |m| m.max(x))));
    let peak_drain = samples[opened_idx.min(samples.len())..]
        .iter()
        .filter_map(rss_of)
        .fold(None, |m: Option<f64>, x| Some(m.map_or(x, |m| m.max(x))));
    let json = json!({
        "messages": messages,
        "method": "endpoint enabled, its receiver path gated: Herald's in-flight requests are \
                   held unanswered (request_timeout_ms 55000) so every other delivery stays \
                   pending in the store; then the gate opens and the backlog drains",
        "max_concurrency": ctx.p.max_concurrency,
        "publish": loop_json(&r),
        "publish_cpu": cpu_pub,
        "held_at_gate_when_full": held,
        "rss_mib_before": rss_before,
        "rss_mib_peak_while_publishing": peak_publish,
        "rss_mib_at_full_backlog": rss_full,
        "rss_mib_peak_while_draining": peak_drain,
        "rss_mib_after_drain": rss_after,
        "rss_anon_mib_after_drain": rss_anon_after,
        "data_dir_mib_at_full_backlog": round1(disk_full as f64 / 1048576.0),
        "drained": snap.unique,
        "duplicates": snap.duplicates,
        "complete": complete,
        "drain_secs": round3(drain_secs),
        "drain_per_s": round1(drain_rate),
        "drain_ratio_to_ceiling": ctx.ratio(drain_rate),
        "drain_cpu": cpu_drain,
        "samples": samples,
    });
    let f = |x: Option<f64>| x.map_or("-".to_string(), |v| format!("{v:.0}"));
    let mut drain = format!("{} deliveries/s", thousands(drain_rate));
    if !complete {
        drain.push_str(&format!(" (INCOMPLETE {}/{})", snap.unique, r.ok));
    }
    Ok(Outcome {
        rows: vec![
            row(
                &format!(
                    "backlog {}: RSS before / full / peak drain / after",
                    thousands(messages as f64)
                ),
                format!(
                    "{} / {} / {} / {} MiB",
                    f(rss_before),
                    f(rss_full),
                    f(peak_drain),
                    f(rss_after)
                ),
                None,
                "flat (bounded memory)",
            ),
            row("  backlog drain rate", drain, ctx.ratio(drain_rate), ""),
            row(
                "  publish rate while building it",
                format!("{} msg/s", thousands(r.rate())),
                None,
                "",
            ),
        ],
        json,
    })
}

// ---- 6. isolation ----------------------------------------------------------------------------

/// K endpoints all healthy, then K endpoints of which half hang; the healthy endpoints'
/// delivery rate in both cases.
pub async fn isolation(ctx: &Ctx) -> anyhow::Result<Outcome> {
    let k = ctx.p.isolation_endpoints.max(2);
    let a = isolation_case(ctx, "healthy", k, 0).await?;
    let b = isolation_case(ctx, "half-hanging", k, k / 2).await?;
    let ra = a["healthy_rate_per_endpoint"].as_f64().unwrap_or(0.0);
    let rb = b["healthy_rate_per_endpoint"].as_f64().unwrap_or(0.0);
    let kept = if ra > 0.0 { rb / ra } else { 0.0 };
    let inc = |v: &Value| {
        if v["complete"].as_bool() == Some(true) {
            String::new()
        } else {
            " (INCOMPLETE at deadline)".to_string()
        }
    };
    let rows = vec![
        row(
            &format!("isolation, {k} endpoints all healthy: per healthy endpoint"),
            format!("{} deliveries/s{}", thousands(ra), inc(&a)),
            None,
            "",
        ),
        row(
            &format!("isolation, {} of {k} hanging: per healthy endpoint", k / 2),
            format!("{} deliveries/s{}", thousands(rb), inc(&b)),
            None,
            "",
        ),
        row(
            "  healthy rate kept",
            format!("{:.1} %", kept * 100.0),
            None,
            "≥ 95 %",
        ),
    ];
    Ok(Outcome {
        json: json!({ "endpoints": k, "all_healthy": a, "half_hanging": b, "kept": round3(kept) }),
        rows,
    })
}

async fn isolation_case(ctx: &Ctx, case: &str, k: usize, hanging: usize) -> anyhow::Result<Value> {
    let h = ctx.herald(&[]).await?;
    let res = async {
        let app = h.api.create_app(&format!("bench-isolation-{case}")).await?;
        let mut healthy = Vec::new();
        let mut hung = Vec::new();
        for i in 0..k {
            let hangs = i < hanging;
            let path = if hangs {
                format!("/isolation/{case}/hang/{i}")
            } else {
                format!("/isolation/{case}/ok/{i}")
            };
            let ps = ctx
                .rx
                .path(&path, if hangs { Mode::Hang } else { Mode::Ok }, false);
            if hangs {
                hung.push(ps);
            } else {
                healthy.push(ps);
            }
            // Herald's defaults (maxConcurrency, timeouts): isolation is about what a user gets.
            h.api
                .create_endpoint(&app, json!({ "url": ctx.rx.url(&path) }))
                .await?;
        }
        let p = Publisher::new(&h.api, &app)?;
        let messages = ctx.p.count(5_000);
        let cpu = CpuMeter::start(&h);
        let bound = ctx.p.window(120.0);
        let start = Instant::now();
        let r = p.closed(ctx.p.clients, messages, bound).await;
        let expected = r.ok * healthy.len() as u64;
        let delivered = || healthy.iter().map(|p| p.unique()).sum::<u64>();
        let held_after_publish: u64 = hung
            .iter()
            .map(|p| p.held.load(std::sync::atomic::Ordering::Relaxed))
            .sum();
        let complete = wait_until(start + bound, || delivered() >= expected).await;
        let got = delivered();
        let hung_requests: u64 = hung
            .iter()
            .map(|p| p.hung_total.load(std::sync::atomic::Ordering::Relaxed))
            .sum();
        let end_us = if complete {
            healthy
                .iter()
                .filter_map(|p| p.snapshot().last_us)
                .max()
                .unwrap_or(r.started_us)
        } else {
            now_us()
        };
        let secs = end_us.saturating_sub(r.started_us) as f64 / 1e6;
        let per_ep = if secs > 0.0 {
            got as f64 / healthy.len() as f64 / secs
        } else {
            0.0
        };
        anyhow::Ok(json!({
            "endpoints": k,
            "hanging": hanging,
            "messages": messages,
            "publish": loop_json(&r),
            "healthy_expected": expected,
            "healthy_received": got,
            "complete": complete,
            "secs": round3(secs),
            "healthy_rate_per_endpoint": round1(per_ep),
            "healthy_rate_total": round1(per_ep * healthy.len() as f64),
            "hanging_requests_held_after_publish": held_after_publish,
            "hanging_requests_total": hung_requests,
            "cpu": cpu.json(),
        }))
    }
    .await;
    let res = res.map(|json| Outcome { json, rows: vec![] });
    Ok(finish(h, res).await?.json)
}

// ---- 7. throttle accuracy --------------------------------------------------------------------

/// One endpoint with `throttleRate = R` and a backlog that outlasts the window; the received
/// rate over the window after a 5 s warm-up.
pub async fn throttle(ctx: &Ctx) -> anyhow::Result<Outcome> {
    let h = ctx.herald(&[]).await?;
    let res = throttle_on(ctx, "throttle", std::slice::from_ref(&h)).await;
    finish(h, res).await
}

/// The throttle measurement with `--nodes` Heralds on one PostgreSQL database, the backlog
/// published round-robin through them: the token bucket lives in the endpoint row, so the
/// nodes together must still deliver at `R`.
pub async fn cluster_throttle(ctx: &Ctx) -> anyhow::Result<Outcome> {
    let hs = ctx.cluster_nodes("cluster-throttle").await?;
    let res = throttle_on(ctx, "cluster-throttle", &hs).await;
    finish_nodes(hs, res).await
}

/// Sets up the throttled endpoint through the first of `hs`, publishes the backlog
/// round-robin through all of them (every node also delivers) and measures what the receiver
/// got on the path `/<name>/0`.
async fn throttle_on(ctx: &Ctx, name: &str, hs: &[Herald]) -> anyhow::Result<Outcome> {
    let rate = ctx.p.throttle_rate;
    let first_node = hs.first().context("no Herald to measure")?;
    let app = first_node.api.create_app(&format!("bench-{name}")).await?;
    let path = format!("/{name}/0");
    let ps = ctx.rx.path(&path, Mode::Ok, false);
    first_node
        .api
        .create_endpoint(
            &app,
            json!({ "url": ctx.rx.url(&path), "throttleRate": rate }),
        )
        .await
        .context("create endpoint with throttleRate")?;
    let warm = 5.0;
    let window = (ctx.p.throttle_secs * ctx.p.time_scale).max(5.0);
    let backlog = (f64::from(rate) * (warm + window + 10.0)).ceil() as u64;
    let pubs = Arc::new(
        hs.iter()
            .map(|h| Publisher::new(&h.api, &app))
            .collect::<anyhow::Result<Vec<_>>>()?,
    );
    let cpus: Vec<CpuMeter> = hs.iter().map(CpuMeter::start).collect();
    let r = closed_loop(
        ctx.p.clients,
        backlog,
        Duration::from_secs(300),
        202,
        move |seq| {
            pubs[(seq % pubs.len() as u64) as usize]
                .clone()
                .send(seq, now_us())
        },
    )
    .await;
    // Wait for the first delivery, then for the end of the window (or the whole backlog).
    let got_first = wait_until(Instant::now() + Duration::from_secs(60), || ps.unique() > 0).await;
    if !got_first {
        bail!("no delivery within 60 s of publishing");
    }
    let first = ps.snapshot().first_us.unwrap_or(0);
    let w0 = first + (warm * 1e6) as u64;
    let w1 = w0 + (window * 1e6) as u64;
    let end = Instant::now() + Duration::from_secs_f64(warm + window + 5.0);
    wait_until(end, || now_us() >= w1 + 500_000 || ps.unique() >= r.ok).await;
    let times = ps.times();
    let last = times.iter().copied().max().unwrap_or(first);
    let in_window = times.iter().filter(|t| **t >= w0 && **t < w1).count() as u64;
    let covered = last >= w1;
    let measured = if covered {
        in_window as f64 / window
    } else {
        // The backlog ran out before the window ended: not throttled (or throttled far
        // above R). Rate over the whole delivery span instead.
        let span = (last.saturating_sub(first)) as f64 / 1e6;
        if span > 0.0 {
            (times.len() as f64 - 1.0) / span
        } else {
            times.len() as f64
        }
    };
    // Largest count in any one second (from the first delivery on).
    let mut buckets = std::collections::BTreeMap::<u64, u64>::new();
    for t in &times {
        *buckets.entry((t - first) / 1_000_000).or_default() += 1;
    }
    let max_1s = buckets.values().copied().max().unwrap_or(0);
    let deviation = (measured - f64::from(rate)) / f64::from(rate) * 100.0;
    // Which node delivered what: with one node taking every claim, a cluster figure would
    // only repeat the single-node one.
    let mut by_node = Vec::new();
    for h in hs {
        by_node.push(h.api.metrics().await.ok().map(|m| successful_attempts(&m)));
    }
    let json = json!({
        "nodes": hs.len(),
        "delivered_by_node": by_node,
        "throttle_rate": rate,
        "backlog": backlog,
        "publish": loop_json(&r),
        "warmup_secs": warm,
        "window_secs": window,
        "received_in_window": in_window,
        "window_covered_by_backlog": covered,
        "received_total": times.len(),
        "measured_rate_per_s": round3(measured),
        "deviation_percent": round1(deviation),
        "max_in_one_second": max_1s,
        "per_second_counts": buckets.values().collect::<Vec<_>>(),
        "cpu": cpus.iter().map(CpuMeter::json).collect::<Vec<_>>(),
    });
    let mut value = format!("{measured:.1}/s vs {rate}/s ({deviation:+.1} %)");
    if !covered {
        value.push_str(" — backlog drained early: NOT throttled");
    }
    let mut rows = vec![
        row(
            &if hs.len() == 1 {
                format!("throttle accuracy, throttleRate {rate}")
            } else {
                format!(
                    "throttle accuracy across {} nodes, throttleRate {rate}",
                    hs.len()
                )
            },
            value,
            None,
            "±5 %",
        ),
        row(
            "  most deliveries in one second",
            max_1s.to_string(),
            None,
            "",
        ),
    ];
    if hs.len() > 1 {
        let f = |n: &Option<u64>| n.map_or("?".to_string(), |n| n.to_string());
        rows.push(row(
            "  deliveries made by each node",
            by_node.iter().map(f).collect::<Vec<_>>().join(" / "),
            None,
            "",
        ));
    }
    Ok(Outcome { rows, json })
}

/// Sum of Herald's `herald_delivery_attempts_total` series with `status_class="2xx"` in a
/// `/metrics` text: the deliveries this node made.
fn successful_attempts(metrics: &str) -> u64 {
    metrics
        .lines()
        .filter(|l| l.starts_with("herald_delivery_attempts_total{"))
        .filter(|l| l.contains(r#"status_class="2xx""#))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum::<f64>() as u64
}

#[cfg(test)]
mod tests {
    use super::{successful_attempts, thousands};

    #[test]
    fn counts_successful_attempts() {
        let m = "# TYPE herald_delivery_attempts_total counter\n\
                 herald_delivery_attempts_total{outcome=\"success\",status_class=\"2xx\"} 1500\n\
                 herald_delivery_attempts_total{outcome=\"failure\",status_class=\"5xx\"} 7\n\
                 herald_messages_published_total{origin=\"api\"} 2250\n";
        assert_eq!(successful_attempts(m), 1500);
        assert_eq!(successful_attempts(""), 0);
    }

    #[test]
    fn groups_thousands() {
        assert_eq!(thousands(0.0), "0");
        assert_eq!(thousands(999.4), "999");
        assert_eq!(thousands(1000.0), "1,000");
        assert_eq!(thousands(1234567.0), "1,234,567");
        assert_eq!(thousands(-12345.0), "-12,345");
    }
}
