//! Throttle accuracy: the received rate of one endpoint with a `throttleRate`, on one node
//! (`throttle`) or on several sharing one PostgreSQL database (`cluster-throttle`).

use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context as _};
use serde_json::json;

use super::meter::CpuMeter;
use super::{finish_nodes, loop_json, row, wait_until, Ctx, Outcome, Publisher, Row};
use crate::herald_proc::Herald;
use crate::load::closed_loop;
use crate::receiver::{Mode, PathStats};
use crate::stats::{now_us, round1, round3};

// ---- 7. throttle accuracy --------------------------------------------------------------------

/// One endpoint with `throttleRate = R` and a backlog that outlasts the window; the received
/// rate over the window after a 5 s warm-up.
pub async fn throttle(ctx: &Ctx) -> anyhow::Result<Outcome> {
    ctx.on_herald(&[], |ctx, h| {
        Box::pin(throttle_on(ctx, "throttle", std::slice::from_ref(h)))
    })
    .await
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
    let (app, ps) = throttled_endpoint(ctx, name, first_node).await?;
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
    let rows = throttle_rows(hs.len(), rate, value, max_1s, &by_node);
    Ok(Outcome { rows, json })
}

/// Creates the app `bench-<name>` and its endpoint with `throttleRate` through `node`,
/// delivering to the receiver path `/<name>/0`.
async fn throttled_endpoint(
    ctx: &Ctx,
    name: &str,
    node: &Herald,
) -> anyhow::Result<(String, Arc<PathStats>)> {
    let app = node.api.create_app(&format!("bench-{name}")).await?;
    let path = format!("/{name}/0");
    let ps = ctx.rx.path(&path, Mode::Ok, false);
    node.api
        .create_endpoint(
            &app,
            json!({ "url": ctx.rx.url(&path), "throttleRate": ctx.p.throttle_rate }),
        )
        .await
        .context("create endpoint with throttleRate")?;
    Ok((app, ps))
}

/// The printed rows: the measured rate (`value`), the busiest second and, with several
/// nodes, what each delivered.
fn throttle_rows(
    nodes: usize,
    rate: u32,
    value: String,
    max_1s: u64,
    by_node: &[Option<u64>],
) -> Vec<Row> {
    let mut rows = vec![
        row(
            &if nodes == 1 {
                format!("throttle accuracy, throttleRate {rate}")
            } else {
                format!("throttle accuracy across {nodes} nodes, throttleRate {rate}")
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
    if nodes > 1 {
        let f = |n: &Option<u64>| n.map_or("?".to_string(), |n| n.to_string());
        rows.push(row(
            "  deliveries made by each node",
            by_node.iter().map(f).collect::<Vec<_>>().join(" / "),
            None,
            "",
        ));
    }
    rows
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
    use super::successful_attempts;

    #[test]
    fn counts_successful_attempts() {
        let m = "# TYPE herald_delivery_attempts_total counter\n\
                 herald_delivery_attempts_total{outcome=\"success\",status_class=\"2xx\"} 1500\n\
                 herald_delivery_attempts_total{outcome=\"failure\",status_class=\"5xx\"} 7\n\
                 herald_messages_published_total{origin=\"api\"} 2250\n";
        assert_eq!(successful_attempts(m), 1500);
        assert_eq!(successful_attempts(""), 0);
    }
}
