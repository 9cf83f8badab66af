//! `herald-bench`: Herald's reproducible benchmark harness (issue 7).
//!
//! The harness owns everything a measurement needs except the server under test, so figures
//! can be compared between commits and machines:
//! - **Herald as a child process**: the release `herald` binary it is given (it builds
//!   nothing), started per scenario on a fresh temporary data directory with an admin token,
//!   `allow_networks = ["127.0.0.0/8"]` and a free loopback port, stopped with SIGTERM.
//! - **A receiver** (hyper 1, HTTP/1.1 keep-alive, answers 204) that records per path what it
//!   received and when, de-duplicates by `webhook-id`, measures publish→receipt latency from a
//!   timestamp in the payload (same process, same clock), and can hang or gate paths.
//! - **A load generator** (hyper-util client, keep-alive): closed loops for throughput, an open
//!   loop for latency; every loop is bounded in request count and in time.
//! - **The receiver ceiling**: the load generator POSTing 1 KiB JSON straight to the receiver,
//!   measured in the same run, so every delivery figure is also a ratio of what this machine's
//!   loopback HTTP can do at all.
//! - **A TCP relay** between Herald and PostgreSQL (`spool` scenario) that can cut the
//!   database off and restore it, so an outage needs no control over the PostgreSQL server.
//! - **The report**: a table on stdout and a JSON file with the machine (cores, kernel), git
//!   commit and date.
//!
//! Only loopback addresses (127.0.0.1) are ever contacted.

mod herald_proc;
mod http;
mod load;
mod receiver;
mod relay;
mod scenarios;
mod serve_cmd;
mod stats;

use std::future::Future;
use std::path::PathBuf;
use std::pin::Pin;
use std::time::{Duration, Instant};

use anyhow::{bail, Context as _};
use clap::Parser;
use serde_json::{json, Value};

use crate::receiver::Receiver;
use crate::scenarios::{Ctx, Outcome, Params, Row};

/// What runs one scenario.
type Runner = for<'a> fn(&'a Ctx) -> Pin<Box<dyn Future<Output = anyhow::Result<Outcome>> + 'a>>;

/// One scenario: its name, whether `all` includes it (the others need extra setup, e.g.
/// PostgreSQL), and what runs it.
struct Scenario {
    name: &'static str,
    in_all: bool,
    run: Runner,
}

/// Every scenario, in the documented order: the one list that names, selection and dispatch
/// share.
const SCENARIOS: &[Scenario] = &[
    scenario("publish", true, |c| Box::pin(scenarios::publish(c))),
    scenario("e2e", true, |c| Box::pin(scenarios::e2e(c))),
    scenario("fanout", true, |c| Box::pin(scenarios::fanout(c))),
    // The batched twin of `e2e`.
    scenario("batch", true, |c| Box::pin(scenarios::batch(c))),
    scenario("latency", true, |c| Box::pin(scenarios::latency(c))),
    scenario("backlog", true, |c| Box::pin(scenarios::backlog(c))),
    scenario("isolation", true, |c| Box::pin(scenarios::isolation(c))),
    scenario("throttle", true, |c| Box::pin(scenarios::throttle(c))),
    scenario("inbound", true, |c| Box::pin(scenarios::inbound(c))),
    scenario("cluster", false, |c| Box::pin(scenarios::cluster(c))),
    scenario("spool", false, |c| Box::pin(scenarios::spool(c))),
    scenario("cluster-throttle", false, |c| {
        Box::pin(scenarios::cluster_throttle(c))
    }),
    scenario("filters", false, |c| Box::pin(scenarios::filters(c))),
    scenario("drain", false, |c| Box::pin(scenarios::drain(c))),
];

const fn scenario(name: &'static str, in_all: bool, run: Runner) -> Scenario {
    Scenario { name, in_all, run }
}

/// The names of the scenarios `all` includes (`true`) or leaves out (`false`), joined.
fn names(in_all: bool) -> String {
    let names: Vec<&str> = SCENARIOS
        .iter()
        .filter(|s| s.in_all == in_all)
        .map(|s| s.name)
        .collect();
    names.join(", ")
}

/// Benchmarks a release `herald` binary over loopback. See docs/benchmarks.md.
#[derive(Parser, Debug)]
#[command(version)]
struct Args {
    /// The herald binary to run (default: `herald` next to this executable).
    #[arg(long)]
    herald_bin: Option<PathBuf>,
    /// Run Herald on PostgreSQL: the admin URL of a cluster on loopback; each Herald start
    /// gets a fresh database there (created with `psql`). SQLite when absent.
    #[arg(long)]
    database_url: Option<String>,
    /// Where to write the JSON results.
    #[arg(long, default_value = "bench-results.json")]
    out: PathBuf,
    /// Comma-separated scenarios: publish, e2e, fanout, batch, latency, backlog, isolation, throttle,
    /// inbound, or all. Run only when named, and need --database-url: `cluster` (fan-out over
    /// --nodes nodes), `spool` (publishing while PostgreSQL is unreachable, then the drain) and
    /// `cluster-throttle` (throttleRate held across --nodes nodes). Run only when named:
    /// `filters` (publish rate to 10 endpoints without, then with content filters) and `drain`
    /// (a backlog to one endpoint drained unbatched, then with `batch`). The receiver ceiling
    /// is always measured.
    #[arg(long, default_value = "all", value_delimiter = ',')]
    scenario: Vec<String>,
    /// Quick run: message counts ÷ 10, measuring windows ÷ 4 (same as --scale 0.1
    /// --time-scale 0.25).
    #[arg(long)]
    quick: bool,
    /// Multiplies every message count.
    #[arg(long)]
    scale: Option<f64>,
    /// Multiplies every measuring window (publish 20 s, latency 30 s, throttle window, …).
    #[arg(long)]
    time_scale: Option<f64>,
    /// Concurrent publishing clients.
    #[arg(long, default_value_t = 32)]
    clients: usize,
    /// Connections of the receiver-ceiling load generator.
    #[arg(long, default_value_t = 64)]
    ceiling_connections: usize,
    /// `maxConcurrency` of the endpoints in the throughput scenarios (Herald allows 1–1000).
    #[arg(long, default_value_t = 256)]
    max_concurrency: u32,
    /// `throttleRate` of the throttle and cluster-throttle scenarios.
    #[arg(long, default_value_t = 50)]
    throttle_rate: u32,
    /// Measuring window of the throttle and cluster-throttle scenarios, seconds (before
    /// --time-scale).
    #[arg(long, default_value_t = 60.0)]
    throttle_secs: f64,
    /// Endpoints of the isolation scenario (half hang in its second case).
    #[arg(long, default_value_t = 10)]
    isolation_endpoints: usize,
    /// Publish rate of the latency scenario, messages per second.
    #[arg(long, default_value_t = 1000.0)]
    latency_rate: f64,
    /// Scrape Herald's `/metrics` every this many seconds during each scenario, as Prometheus
    /// would in production (0 = never).
    #[arg(long, default_value_t = 0.0)]
    scrape_metrics_secs: f64,
    /// Herald nodes of the `cluster` and `cluster-throttle` scenarios (need --database-url).
    #[arg(long, default_value_t = 2)]
    nodes: usize,
    /// `batch.maxEvents` of the endpoint in the `batch` scenario (compare with `e2e`).
    #[arg(long, default_value_t = 100)]
    batch_events: u32,
    /// `batch.maxWaitMs` of the endpoint in the `batch` scenario.
    #[arg(long, default_value_t = 50)]
    batch_wait_ms: u32,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    stats::epoch();
    let selected = selected_scenarios(&args.scenario)?;
    let bin = herald_bin(args.herald_bin.as_ref())?;
    let params = params(&args);
    let herald_version = std::process::Command::new(&bin)
        .arg("--version")
        .output()
        .ok()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string());
    let started = chrono::Utc::now();
    let loadavg_start = stats::loadavg();
    let run_start = Instant::now();
    // Hung requests are held 30 s (Herald gives up after its 10 s request timeout); gated ones
    // at most 30 min.
    let rx = Receiver::start(Duration::from_secs(30), Duration::from_secs(1800)).await?;
    let mut ctx = Ctx {
        bin: bin.clone(),
        rx,
        p: params.clone(),
        ceiling: None,
    };

    eprintln!(
        "herald-bench: receiver on {}, herald {}",
        ctx.rx.addr,
        bin.display()
    );
    let mut results = Results::default();
    eprintln!("herald-bench: receiver ceiling …");
    let t = Instant::now();
    let c = scenarios::ceiling(&ctx).await;
    if let Ok(o) = &c {
        ctx.ceiling = o.json["rate_per_s"].as_f64();
    }
    results.record("receiver_ceiling", c, t);
    for s in &selected {
        eprintln!("herald-bench: {} …", s.name);
        let t = Instant::now();
        let r = (s.run)(&ctx).await;
        results.record(s.name, r, t);
    }

    let report = json!({
        "date": started.to_rfc3339(),
        "machine": stats::machine(),
        "loadavg_at_start": loadavg_start,
        "loadavg_at_end": stats::loadavg(),
        "git_commit": stats::git_commit(),
        "git_dirty": stats::git_dirty(),
        "herald_bin": bin.display().to_string(),
        "herald_version": herald_version,
        "params": params_json(&selected, &params),
        "receiver_unknown_path_requests": ctx.rx.unknown(),
        "total_secs": stats::round1(run_start.elapsed().as_secs_f64()),
        "results": Value::Object(results.json),
    });
    std::fs::write(&args.out, serde_json::to_string_pretty(&report)? + "\n")
        .with_context(|| format!("write {}", args.out.display()))?;
    print_table(&report, &results.table);
    eprintln!("herald-bench: wrote {}", args.out.display());
    Ok(())
}

/// The scenarios to run, in the documented order: `all` is every scenario marked `in_all`;
/// otherwise every named one must be known.
fn selected_scenarios(named: &[String]) -> anyhow::Result<Vec<&'static Scenario>> {
    if named.iter().any(|s| s == "all") {
        return Ok(SCENARIOS.iter().filter(|s| s.in_all).collect());
    }
    for s in named {
        if !SCENARIOS.iter().any(|k| k.name == s) {
            bail!(
                "unknown scenario `{s}`; expected one of {}, {} or all",
                names(true),
                names(false)
            );
        }
    }
    Ok(SCENARIOS
        .iter()
        .filter(|k| named.iter().any(|s| s == k.name))
        .collect())
}

/// `--herald-bin`, or `herald` next to this executable; it must exist.
fn herald_bin(given: Option<&PathBuf>) -> anyhow::Result<PathBuf> {
    let bin = match given {
        Some(b) => b.clone(),
        None => std::env::current_exe()?
            .parent()
            .context("executable directory")?
            .join("herald"),
    };
    if !bin.is_file() {
        bail!(
            "no herald binary at {} (build it: cargo build --release -p herald, or pass --herald-bin)",
            bin.display()
        );
    }
    Ok(bin)
}

fn params(args: &Args) -> Params {
    let (scale, time_scale) = if args.quick { (0.1, 0.25) } else { (1.0, 1.0) };
    Params {
        clients: args.clients,
        scale: args.scale.unwrap_or(scale),
        time_scale: args.time_scale.unwrap_or(time_scale),
        ceiling_connections: args.ceiling_connections,
        max_concurrency: args.max_concurrency,
        throttle_rate: args.throttle_rate,
        throttle_secs: args.throttle_secs,
        isolation_endpoints: args.isolation_endpoints,
        latency_rate: args.latency_rate,
        scrape_metrics_secs: args.scrape_metrics_secs,
        database_url: args.database_url.clone(),
        nodes: args.nodes,
        batch_events: args.batch_events,
        batch_wait_ms: args.batch_wait_ms,
    }
}

/// The run's parameters as written to the JSON file (the database URL is left out).
fn params_json(selected: &[&Scenario], params: &Params) -> Value {
    let names: Vec<&str> = selected.iter().map(|s| s.name).collect();
    json!({
        "scenarios": names,
        "clients": params.clients,
        "scale": params.scale,
        "time_scale": params.time_scale,
        "ceiling_connections": params.ceiling_connections,
        "max_concurrency": params.max_concurrency,
        "throttle_rate": params.throttle_rate,
        "throttle_secs": params.throttle_secs,
        "isolation_endpoints": params.isolation_endpoints,
        "latency_rate": params.latency_rate,
        "scrape_metrics_secs": params.scrape_metrics_secs,
        "nodes": params.nodes,
        "batch_events": params.batch_events,
        "batch_wait_ms": params.batch_wait_ms,
    })
}

/// Every scenario's JSON and table rows, in the order they ran.
#[derive(Default)]
struct Results {
    json: serde_json::Map<String, Value>,
    table: Vec<(String, Row)>,
}

impl Results {
    /// Files a scenario's outcome (started at `t`); a failure becomes an `error` entry and a
    /// FAILED row, and the run goes on.
    fn record(&mut self, name: &str, r: anyhow::Result<Outcome>, t: Instant) {
        match r {
            Ok(o) => {
                let mut j = o.json;
                j["elapsed_secs"] = json!(stats::round1(t.elapsed().as_secs_f64()));
                self.json.insert(name.to_string(), j);
                self.table
                    .extend(o.rows.into_iter().map(|r| (name.to_string(), r)));
            }
            Err(e) => {
                eprintln!("herald-bench: {name} failed: {e:#}");
                self.json
                    .insert(name.to_string(), json!({ "error": format!("{e:#}") }));
                self.table.push((
                    name.to_string(),
                    Row {
                        metric: name.to_string(),
                        value: format!("FAILED: {e}"),
                        ratio: None,
                        target: String::new(),
                    },
                ));
            }
        }
    }
}

fn print_table(report: &Value, table: &[(String, Row)]) {
    let m = &report["machine"];
    println!(
        "herald-bench {} — {} cores, kernel {}, commit {}{}",
        report["date"].as_str().unwrap_or("?"),
        m["cores"],
        m["kernel"].as_str().unwrap_or("?"),
        report["git_commit"].as_str().unwrap_or("?"),
        if report["git_dirty"] == json!(true) {
            " (dirty)"
        } else {
            ""
        },
    );
    let w0 = table
        .iter()
        .map(|(_, r)| r.metric.chars().count())
        .max()
        .unwrap_or(10);
    let w1 = table
        .iter()
        .map(|(_, r)| r.value.chars().count())
        .max()
        .unwrap_or(10);
    println!(
        "{:<w0$} | {:<w1$} | {:>8} | target",
        "scenario", "result", "÷ceiling"
    );
    println!("{}", "-".repeat(w0 + w1 + 30));
    for (_, r) in table {
        let ratio = r.ratio.map_or(String::new(), |x| format!("{:.2}", x));
        println!(
            "{:<w0$} | {:<w1$} | {:>8} | {}",
            r.metric, r.value, ratio, r.target
        );
    }
}
