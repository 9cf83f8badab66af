//! What a scenario reads about processes from `/proc`: CPU seconds (whole process and per
//! thread) and resident memory. Linux only, read-only; it starts and stops nothing and knows no
//! scenario.

use std::collections::HashMap;
use std::time::Instant;

use serde_json::{json, Value};

use crate::herald_proc::Herald;
use crate::stats::{round1, round3};

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
pub(super) fn status_mib(pid: u32, field: &str) -> Option<f64> {
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

pub(super) fn rss_mib_of(pid: u32) -> Option<f64> {
    status_mib(pid, "VmRSS")
}

/// CPU seconds of every thread of a process, by thread id, with the thread's name.
fn thread_cpu(pid: &str) -> HashMap<String, (String, f64)> {
    let mut out = HashMap::new();
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
pub(super) struct CpuMeter {
    pid: String,
    herald0: f64,
    bench0: f64,
    threads0: HashMap<String, (String, f64)>,
    t0: Instant,
}

impl CpuMeter {
    pub(super) fn start(h: &Herald) -> Self {
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
    pub(super) fn json(&self) -> Value {
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
