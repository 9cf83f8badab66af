//! The backlog-memory scenario: a large backlog held behind a gated receiver path, then
//! drained, with Herald's resident memory sampled throughout. It reads memory; it does not
//! judge it (the printed target says what is expected).

use parking_lot::Mutex;
use std::sync::Arc;
use std::time::Duration;

use serde_json::{json, Value};

use super::meter::{rss_mib_of, status_mib, CpuMeter};
use super::{
    bench_app, loop_json, mark_incomplete, open_and_drain, row, thousands, Ctx, Drained, Outcome,
};
use crate::herald_proc::Herald;
use crate::receiver::{Mode, PathStats};
use crate::stats::{now_us, round1, round3};

// ---- 5. backlog memory -----------------------------------------------------------------------

/// 1,000,000 deliveries queued behind an endpoint whose receiver path is gated (held, not
/// answered), then drained by opening the gate; RSS sampled throughout.
pub async fn backlog(ctx: &Ctx) -> anyhow::Result<Outcome> {
    // Held requests must not time out while the backlog builds up (lease > request timeout).
    let extra = [
        ("request_timeout_ms", "55000".to_string()),
        ("lease_seconds", "60".to_string()),
    ];
    ctx.on_herald(&extra, |ctx, h| Box::pin(backlog_inner(ctx, h)))
        .await
}

async fn backlog_inner(ctx: &Ctx, h: &Herald) -> anyhow::Result<Outcome> {
    let (_, ps, p) = bench_app(ctx, h, "backlog", Mode::Gate, false).await?;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let rss_before = rss_mib_of(h.pid);
    let messages = ctx.p.count(1_000_000);

    let (samples, sampler) = spawn_sampler(ps.clone(), h.pid);
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
    let opened_idx = samples.lock().len();
    let Drained {
        complete,
        snap,
        secs: drain_secs,
        rate: drain_rate,
    } = open_and_drain(&ps, r.ok).await;
    let cpu_drain = cpu_drain.json();
    tokio::time::sleep(Duration::from_secs(2)).await;
    let rss_after = rss_mib_of(h.pid);
    let rss_anon_after = status_mib(h.pid, "RssAnon");
    sampler.abort();
    let samples = samples.lock().clone();
    let (publishing, draining) = samples.split_at(opened_idx.min(samples.len()));
    let (peak_publish, peak_drain) = (peak_rss(publishing), peak_rss(draining));
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
    mark_incomplete(&mut drain, complete, snap.unique, r.ok);
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

/// Samples Herald's RSS and the delivery progress every second until aborted.
fn spawn_sampler(
    ps: Arc<PathStats>,
    pid: u32,
) -> (Arc<Mutex<Vec<Value>>>, tokio::task::JoinHandle<()>) {
    let samples: Arc<Mutex<Vec<Value>>> = Arc::default();
    let sampler = {
        let samples = samples.clone();
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
    (samples, sampler)
}

/// The largest `rss_mib` of `samples`, if any has one.
fn peak_rss(samples: &[Value]) -> Option<f64> {
    samples
        .iter()
        .filter_map(|s| s["rss_mib"].as_f64())
        .fold(None, |m: Option<f64>, x| Some(m.map_or(x, |m| m.max(x))))
}
