//! The measurements. Each scenario starts its own Herald (fresh data directory), sets up apps
//! and endpoints pointing at the bench receiver, drives load, and stops Herald with SIGTERM.
//!
//! This module owns what every scenario shares: the run's [`Params`], the [`Ctx`] that starts
//! Heralds, the report types ([`Row`], [`Outcome`]) and the helpers that publish, wait and stop.
//! One submodule per scenario family holds the measurements themselves; nothing here knows a
//! particular scenario.

mod backlog;
mod cluster;
mod drain;
mod filters;
mod isolation;
mod latency;
mod meter;
mod throttle;
mod throughput;

pub use backlog::backlog;
pub use cluster::{cluster, spool};
pub use drain::drain;
pub use filters::filters;
pub use isolation::isolation;
pub use latency::{inbound, latency};
pub use throttle::{cluster_throttle, throttle};
pub use throughput::{batch, ceiling, e2e, fanout, publish};

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::bail;
use futures::future::BoxFuture;
use hyper::header::HeaderValue;
use hyper::{StatusCode, Uri};
use serde_json::{json, Value};

use crate::herald_proc::Herald;
use crate::http::{post, Api, HttpClient};
use crate::load::{closed_loop, message, LoopResult};
use crate::receiver::{Mode, PathStats, Receiver, Snapshot};
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
    /// `batch.maxEvents` / `batch.maxWaitMs` of the `batch` scenario's endpoint.
    pub batch_events: u32,
    pub batch_wait_ms: u32,
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

/// "p50 / p99" of a [`percentiles`] object.
fn p50_p99(v: &Value) -> String {
    format!("{} / {}", ms(&v["p50_ms"]), ms(&v["p99_ms"]))
}

/// "p50 / p99 / p999" of a [`percentiles`] object.
fn p50_p99_p999(v: &Value) -> String {
    format!("{} / {}", p50_p99(v), ms(&v["p999_ms"]))
}

/// `n` per second over `secs`; 0 for an empty span (nothing arrived, or all at one instant).
fn per_sec(n: f64, secs: f64) -> f64 {
    if secs > 0.0 {
        n / secs
    } else {
        0.0
    }
}

/// Marks a printed figure as measured on a run that hit its deadline.
fn mark_incomplete(value: &mut String, complete: bool, got: u64, expected: u64) {
    if !complete {
        value.push_str(&format!(" (INCOMPLETE {got}/{expected})"));
    }
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

/// A gated backlog after its gate opened: whether every expected delivery arrived, what the
/// receiver counted, and the time from the opening to the last arrival with its rate.
struct Drained {
    complete: bool,
    snap: Snapshot,
    secs: f64,
    rate: f64,
}

/// Opens the gate of `ps` and waits (30 minutes at most) until `expected` distinct deliveries
/// arrived.
async fn open_and_drain(ps: &PathStats, expected: u64) -> Drained {
    let opened_us = now_us();
    Receiver::open_gate(ps);
    let bound = Instant::now() + Duration::from_secs(1800);
    let complete = wait_until(bound, || ps.unique() >= expected).await;
    let snap = ps.snapshot();
    let secs = snap.last_us.unwrap_or(opened_us).saturating_sub(opened_us) as f64 / 1e6;
    Drained {
        complete,
        rate: per_sec(snap.unique as f64, secs),
        snap,
        secs,
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

    /// Starts a Herald with `extra` (see [`Ctx::herald`]), runs `scenario` on it and stops it
    /// (see [`finish`]) whatever the scenario returned.
    async fn on_herald<F>(&self, extra: &[(&str, String)], scenario: F) -> anyhow::Result<Outcome>
    where
        F: for<'a> FnOnce(&'a Ctx, &'a Herald) -> BoxFuture<'a, anyhow::Result<Outcome>>,
    {
        let h = self.herald(extra).await?;
        let res = scenario(self, &h).await;
        finish(h, res).await
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

// ---- endpoints -------------------------------------------------------------------------------

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

/// The app `bench-<name>` with one endpoint on the receiver path `/<name>/0` (`mode`; receipt
/// times kept when `timed`), and a publisher to it.
async fn bench_app(
    ctx: &Ctx,
    h: &Herald,
    name: &str,
    mode: Mode,
    timed: bool,
) -> anyhow::Result<(String, Arc<PathStats>, Publisher)> {
    let app = h.api.create_app(&format!("bench-{name}")).await?;
    let path = format!("/{name}/0");
    let ps = bench_endpoint(ctx, &h.api, &app, &path, mode, timed).await?;
    let p = Publisher::new(&h.api, &app)?;
    Ok((app, ps, p))
}

/// `n` endpoints of `app` at `/<name>/<i>` on the receiver (answering 2xx, no receipt times).
async fn bench_endpoints(
    ctx: &Ctx,
    api: &Api,
    app: &str,
    name: &str,
    n: usize,
) -> anyhow::Result<Vec<Arc<PathStats>>> {
    let mut paths = Vec::with_capacity(n);
    for i in 0..n {
        let path = format!("/{name}/{i}");
        paths.push(bench_endpoint(ctx, api, app, &path, Mode::Ok, false).await?);
    }
    Ok(paths)
}

/// What the receiver got on a set of paths, counted from the first publish.
struct Received {
    /// Every expected delivery arrived before the deadline.
    complete: bool,
    got: u64,
    dups: u64,
    /// Receipt time of the last delivery (the first publish when there was none).
    last_us: u64,
    /// First publish → last delivery.
    secs: f64,
    /// Deliveries per second over `secs`.
    rate: f64,
}

impl Received {
    /// Waits until `paths` hold `expected` unique deliveries or `deadline` passes, then counts
    /// them against `started_us`, the first publish.
    async fn wait(
        paths: &[Arc<PathStats>],
        expected: u64,
        deadline: Instant,
        started_us: u64,
    ) -> Self {
        let delivered = || paths.iter().map(|p| p.unique()).sum::<u64>();
        let complete = wait_until(deadline, || delivered() >= expected).await;
        let snaps: Vec<_> = paths.iter().map(|p| p.snapshot()).collect();
        let got: u64 = snaps.iter().map(|s| s.unique).sum();
        let dups: u64 = snaps.iter().map(|s| s.duplicates).sum();
        let last_us = snaps
            .iter()
            .filter_map(|s| s.last_us)
            .max()
            .unwrap_or(started_us);
        let secs = (last_us.saturating_sub(started_us)) as f64 / 1e6;
        Self {
            complete,
            got,
            dups,
            last_us,
            secs,
            rate: per_sec(got as f64, secs),
        }
    }

    /// "N deliveries/s", marked when incomplete.
    fn value(&self, expected: u64) -> String {
        let mut value = format!("{} deliveries/s", thousands(self.rate));
        mark_incomplete(&mut value, self.complete, self.got, expected);
        value
    }
}

#[cfg(test)]
mod tests {
    use super::thousands;

    #[test]
    fn groups_thousands() {
        assert_eq!(thousands(0.0), "0");
        assert_eq!(thousands(999.4), "999");
        assert_eq!(thousands(1000.0), "1,000");
        assert_eq!(thousands(1234567.0), "1,234,567");
        assert_eq!(thousands(-12345.0), "-12,345");
    }
}
