//! Scenarios that need PostgreSQL: `cluster` (fan-out over several Herald nodes on one
//! database) and `spool` (publishing through a database outage, then the drain). They refuse to
//! run without `--database-url`; they never touch a database they did not create.

use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context as _};
use hyper::StatusCode;
use serde_json::{json, Value};

use super::meter::CpuMeter;
use super::{
    bench_app, bench_endpoints, finish, finish_nodes, fresh_pg_database, loop_json,
    mark_incomplete, p50_p99, per_sec, row, thousands, wait_until, Ctx, Outcome, Publisher,
    Received,
};
use crate::herald_proc::Herald;
use crate::load::LoopResult;
use crate::receiver::{Mode, PathStats, Snapshot};
use crate::relay::Relay;
use crate::stats::{now_us, round1, round3};

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
    let paths = bench_endpoints(ctx, &hs[0].api, &app, "cluster", ENDPOINTS).await?;
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
    let got = Received::wait(&paths, expected, start + bound, started).await;
    let publish_secs = (ended.saturating_sub(started)) as f64 / 1e6;
    let publish_rate = per_sec(ok as f64, publish_secs);
    let json = json!({
        "nodes": hs.len(),
        "endpoints": ENDPOINTS,
        "messages": messages,
        "clients_per_node": clients,
        "published": ok,
        "publish_errors": errors,
        "publish_rate_per_s": round1(publish_rate),
        "deliveries_expected": expected,
        "deliveries_received": got.got,
        "duplicates": got.dups,
        "complete": got.complete,
        "first_publish_to_last_delivery_secs": round3(got.secs),
        "deliveries_per_s": round1(got.rate),
        "ratio_to_ceiling": ctx.ratio(got.rate),
        "cpu": cpus.iter().map(CpuMeter::json).collect::<Vec<_>>(),
    });
    Ok(Outcome {
        rows: vec![
            row(
                &format!(
                    "{} nodes on PostgreSQL: {} msgs × {ENDPOINTS} endpoints",
                    hs.len(),
                    thousands(messages as f64)
                ),
                got.value(expected),
                ctx.ratio(got.rate),
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
    let (ps, p) = spool_warm_up(ctx, h).await?;
    let outage = Outage::run(ctx, h, relay, &p, cap).await?;
    let expected = SPOOL_WARMUP + outage.accepted;
    let drain = Drain::wait(h, relay, &ps, expected).await;
    Ok(spool_report(cap, spool_max, &outage, &drain, expected))
}

/// Sets up the endpoint and publishes [`SPOOL_WARMUP`] messages with the database reachable,
/// waiting until they are delivered.
async fn spool_warm_up(ctx: &Ctx, h: &Herald) -> anyhow::Result<(Arc<PathStats>, Publisher)> {
    let (_, ps, p) = bench_app(ctx, h, "spool", Mode::Ok, false).await?;
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
    Ok((ps, p))
}

/// The publishing done while the database is cut off.
struct Outage {
    window: Duration,
    /// Time to the answer of the first publish of the outage.
    first_ms: f64,
    /// The closed loop after that first publish.
    r: LoopResult,
    cpu: Value,
    spooled_bytes: u64,
    /// Publishes answered 202, the first one included.
    accepted: u64,
}

impl Outage {
    /// Cuts the relay and publishes for the spool window.
    async fn run(
        ctx: &Ctx,
        h: &Herald,
        relay: &Relay,
        p: &Publisher,
        cap: u64,
    ) -> anyhow::Result<Self> {
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
        Ok(Self {
            window,
            first_ms,
            r,
            cpu,
            spooled_bytes,
            accepted,
        })
    }
}

/// What happened after the relay let connections through again.
struct Drain {
    restored_us: u64,
    spool_empty_us: Option<u64>,
    first_after: Option<u64>,
    complete: bool,
    cpu: Value,
    snap: Snapshot,
    /// Last delivery (or now, when incomplete) since the restore.
    secs: f64,
}

impl Drain {
    /// Restores the relay and waits until `expected` messages were delivered (600 s at most).
    async fn wait(h: &Herald, relay: &Relay, ps: &PathStats, expected: u64) -> Self {
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
        let cpu = drain_cpu.json();
        // Late duplicates (a redelivery after a lost answer) would arrive within moments.
        tokio::time::sleep(Duration::from_millis(500)).await;
        let snap = ps.snapshot();
        let first_after = ps.times().into_iter().filter(|t| *t >= restored_us).min();
        let end_us = if complete {
            snap.last_us.unwrap_or(restored_us)
        } else {
            now_us()
        };
        Self {
            restored_us,
            spool_empty_us,
            first_after,
            complete,
            cpu,
            secs: end_us.saturating_sub(restored_us) as f64 / 1e6,
            snap,
        }
    }

    fn secs_since_restore(&self, t: u64) -> f64 {
        round3(t.saturating_sub(self.restored_us) as f64 / 1e6)
    }
}

fn spool_report(
    cap: u64,
    spool_max: u64,
    outage: &Outage,
    drain: &Drain,
    expected: u64,
) -> Outcome {
    let (r, snap, accepted) = (&outage.r, &drain.snap, outage.accepted);
    let delivered = snap.unique.saturating_sub(SPOOL_WARMUP);
    let drain_rate = per_sec(delivered as f64, drain.secs);
    let lost = expected.saturating_sub(snap.unique);
    let json = json!({
        "method": "Herald's database_url points at a loopback TCP relay to PostgreSQL; after \
                   the warm-up the relay closes its connections and refuses new ones (an \
                   outage), the publishers run, then the relay lets connections through again",
        "window_secs": outage.window.as_secs_f64(),
        "publish_cap": cap,
        "spool_max_bytes": spool_max,
        "warmup_messages": SPOOL_WARMUP,
        "first_outage_publish_ms": round1(outage.first_ms),
        "publish": loop_json(r),
        "expected_status": 202,
        "accepted": accepted,
        "spooled_bytes": outage.spooled_bytes,
        "spooled_bytes_per_message": (accepted > 0).then(|| outage.spooled_bytes / accepted),
        "outage_cpu": outage.cpu,
        "restore_to_spool_empty_secs": drain.spool_empty_us.map(|t| drain.secs_since_restore(t)),
        "restore_to_first_delivery_secs": drain.first_after.map(|t| drain.secs_since_restore(t)),
        "restore_to_last_delivery_secs": round3(drain.secs),
        "deliveries_expected": expected,
        "delivered": snap.unique,
        "duplicates": snap.duplicates,
        "lost": lost,
        "complete": drain.complete,
        "drain_per_s": round1(drain_rate),
        "drain_cpu": drain.cpu,
    });
    let lat = &json["publish"]["api_latency"];
    let mut drained = format!(
        "{} msgs in {:.1} s = {} msg/s",
        thousands(accepted as f64),
        drain.secs,
        thousands(drain_rate)
    );
    mark_incomplete(&mut drained, drain.complete, snap.unique, expected);
    let spool_empty = drain.spool_empty_us.map_or("-".to_string(), |t| {
        format!("{:.1} s", drain.secs_since_restore(t))
    });
    Outcome {
        rows: vec![
            row(
                "spool (PostgreSQL unreachable): accepted publishes",
                format!("{} msg/s (202)", thousands(r.rate())),
                None,
                "",
            ),
            row(
                "  spooled publish latency p50 / p99",
                p50_p99(lat),
                None,
                "",
            ),
            row(
                "  non-202 answers / first outage publish",
                format!("{} / {:.0} ms", r.errors, outage.first_ms),
                None,
                "0",
            ),
            row("  drain after restore: all delivered", drained, None, ""),
            row(
                "  spool empty after / duplicates / lost",
                format!("{spool_empty} / {} / {lost}", snap.duplicates),
                None,
                "lost 0",
            ),
        ],
        json,
    }
}
