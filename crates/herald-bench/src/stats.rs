//! Clock, histograms and facts about the machine.

use std::sync::OnceLock;
use std::time::Instant;

use hdrhistogram::Histogram;
use serde_json::{json, Value};

static EPOCH: OnceLock<Instant> = OnceLock::new();

/// The bench's single clock origin; load generator and receiver share it (same process).
pub fn epoch() -> Instant {
    *EPOCH.get_or_init(Instant::now)
}

/// Microseconds since [`epoch`].
pub fn now_us() -> u64 {
    epoch().elapsed().as_micros() as u64
}

/// A histogram of microseconds from 1 µs to 10 min, 3 significant digits.
pub fn new_histogram() -> Histogram<u64> {
    Histogram::new_with_bounds(1, 600_000_000, 3).expect("static histogram bounds")
}

/// `{p50_ms, p99_ms, p999_ms, max_ms, count}` of a µs histogram.
pub fn percentiles(h: &Histogram<u64>) -> Value {
    let ms = |q: f64| {
        if h.is_empty() {
            Value::Null
        } else {
            json!(round3(h.value_at_quantile(q) as f64 / 1000.0))
        }
    };
    json!({
        "count": h.len(),
        "p50_ms": ms(0.50),
        "p99_ms": ms(0.99),
        "p999_ms": ms(0.999),
        "max_ms": if h.is_empty() { Value::Null } else { json!(round3(h.max() as f64 / 1000.0)) },
    })
}

pub fn round3(x: f64) -> f64 {
    (x * 1000.0).round() / 1000.0
}

pub fn round1(x: f64) -> f64 {
    (x * 10.0).round() / 10.0
}

/// Output of a command, trimmed, when it runs and succeeds.
fn command_output(cmd: &str, args: &[&str]) -> Option<String> {
    let out = std::process::Command::new(cmd).args(args).output().ok()?;
    out.status
        .success()
        .then(|| String::from_utf8_lossy(&out.stdout).trim().to_string())
        .filter(|s| !s.is_empty())
}

/// Cores, kernel, memory and CPU model of this machine.
pub fn machine() -> Value {
    let cores = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(0);
    let meminfo = std::fs::read_to_string("/proc/meminfo").unwrap_or_default();
    let mem_kib = meminfo
        .lines()
        .find(|l| l.starts_with("MemTotal:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse::<u64>().ok());
    let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let cpu = cpuinfo
        .lines()
        .find(|l| l.starts_with("model name"))
        .and_then(|l| l.split(':').nth(1))
        .map(|s| s.trim().to_string());
    json!({
        "cores": cores,
        "kernel": command_output("uname", &["-r"]),
        "mem_total_gib": mem_kib.map(|k| round1(k as f64 / 1024.0 / 1024.0)),
        "cpu_model": cpu,
    })
}

/// `git rev-parse HEAD` of the current directory, when it is a git work tree.
pub fn git_commit() -> Option<String> {
    command_output("git", &["rev-parse", "HEAD"])
}

/// Whether the work tree has uncommitted changes (`None` outside git).
pub fn git_dirty() -> Option<bool> {
    command_output("git", &["rev-parse", "HEAD"])?;
    Some(command_output("git", &["status", "--porcelain", "--untracked-files=no"]).is_some())
}

/// The 1, 5 and 15 minute load averages (`/proc/loadavg`), to tell a quiet run from a busy one.
pub fn loadavg() -> Option<String> {
    let s = std::fs::read_to_string("/proc/loadavg").ok()?;
    Some(s.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
}
