//! Throughput scenarios: the receiver ceiling, the durable publish rate, end-to-end delivery to
//! one endpoint and fan-out to ten. Each measures and reports; the Herald start/stop and the
//! shared measurement helpers live in the parent module.

use std::time::{Duration, Instant};

use anyhow::bail;
use bytes::Bytes;
use hyper::Uri;
use serde_json::json;

use super::meter::CpuMeter;
use super::{
    bench_endpoints, loop_json, p50_p99, row, thousands, Ctx, Outcome, Publisher, Received,
};
use crate::herald_proc::Herald;
use crate::http::{self, post};
use crate::load::{closed_loop, payload};
use crate::receiver::Mode;
use crate::stats::{percentiles, round1, round3};

// ---- receiver ceiling ------------------------------------------------------------------------

/// The bench load generator POSTs 1 KiB JSON bodies straight to the receiver over
/// `ceiling_connections` keep-alive connections: the most any delivery figure could reach here.
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
    ctx.on_herald(&[], |ctx, h| Box::pin(publish_inner(ctx, h)))
        .await
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
            row("  publish API latency p50 / p99", p50_p99(lat), None, ""),
        ],
        json,
    })
}

// ---- 2./3. end-to-end and fan-out ------------------------------------------------------------

/// 100,000 messages to one endpoint.
pub async fn e2e(ctx: &Ctx) -> anyhow::Result<Outcome> {
    ctx.on_herald(&[], |ctx, h| {
        Box::pin(deliver_all(ctx, h, "e2e", 1, ctx.p.count(100_000), None))
    })
    .await
}

/// 10,000 messages × 10 endpoints.
pub async fn fanout(ctx: &Ctx) -> anyhow::Result<Outcome> {
    ctx.on_herald(&[], |ctx, h| {
        Box::pin(deliver_all(ctx, h, "fanout", 10, ctx.p.count(10_000), None))
    })
    .await
}

/// 100,000 messages to one endpoint with `batch` (`--batch-events`, `--batch-wait-ms`): the
/// same measurement as `e2e`, so the two compare directly.
pub async fn batch(ctx: &Ctx) -> anyhow::Result<Outcome> {
    let batch = json!({"maxEvents": ctx.p.batch_events, "maxWaitMs": ctx.p.batch_wait_ms});
    ctx.on_herald(&[], |ctx, h| {
        Box::pin(deliver_all(
            ctx,
            h,
            "batch",
            1,
            ctx.p.count(100_000),
            Some(batch),
        ))
    })
    .await
}

/// Publishes `messages` as fast as `clients` publishers can to an app with `endpoints`
/// endpoints on the receiver (with `batch` as their batch option when given), and times first
/// publish → last delivery.
async fn deliver_all(
    ctx: &Ctx,
    h: &Herald,
    name: &str,
    endpoints: usize,
    messages: u64,
    batch: Option<serde_json::Value>,
) -> anyhow::Result<Outcome> {
    let app = h.api.create_app(&format!("bench-{name}")).await?;
    let paths = match &batch {
        None => bench_endpoints(ctx, &h.api, &app, name, endpoints).await?,
        Some(b) => {
            let path = format!("/{name}/0");
            let ps = ctx.rx.path(&path, Mode::Ok, false);
            let body = json!({"url": ctx.rx.url(&path), "maxConcurrency": ctx.p.max_concurrency, "batch": b});
            h.api.create_endpoint(&app, body).await?;
            vec![ps]
        }
    };
    let p = Publisher::new(&h.api, &app)?;
    let cpu = CpuMeter::start(h);
    let bound = Duration::from_secs(600);
    let start = Instant::now();
    let r = p.closed(ctx.p.clients, messages, bound).await;
    let expected = r.ok * endpoints as u64;
    let got = Received::wait(&paths, expected, start + bound, r.started_us).await;
    let lag = (got.last_us.saturating_sub(r.ended_us)) as f64 / 1e6;
    let json = json!({
        "endpoints": endpoints,
        "batch": batch,
        "requests_received": paths.iter().map(|p| p.snapshot().total).sum::<u64>(),
        "messages": messages,
        "max_concurrency": ctx.p.max_concurrency,
        "clients": ctx.p.clients,
        "publish": loop_json(&r),
        "deliveries_expected": expected,
        "deliveries_received": got.got,
        "duplicates": got.dups,
        "complete": got.complete,
        "first_publish_to_last_delivery_secs": round3(got.secs),
        "last_publish_to_last_delivery_secs": round3(lag),
        "deliveries_per_s": round1(got.rate),
        "ratio_to_ceiling": ctx.ratio(got.rate),
        "cpu": cpu.json(),
    });
    let label = if batch.is_some() {
        format!(
            "end-to-end batched ({} per request), {} msgs → 1 endpoint",
            ctx.p.batch_events,
            thousands(messages as f64)
        )
    } else if endpoints == 1 {
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
    Ok(Outcome {
        rows: vec![
            row(&label, got.value(expected), ctx.ratio(got.rate), ""),
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
