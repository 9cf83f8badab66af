//! Latency scenarios: open-loop publishing (`latency`) and signed GitHub-style inbound
//! requests (`inbound`), each timed from the scheduled send to the receiver. They measure at a
//! fixed rate; throughput is the business of `throughput`.

use std::future::Future;
use std::time::{Duration, Instant};

use anyhow::Context as _;
use bytes::Bytes;
use hyper::{StatusCode, Uri};
use serde_json::{json, Value};

use super::meter::CpuMeter;
use super::{
    bench_app, loop_json, p50_p99, p50_p99_p999, row, thousands, wait_until, Ctx, Outcome,
};
use crate::herald_proc::Herald;
use crate::http;
use crate::load::{open_loop, payload, LoopResult};
use crate::receiver::{Mode, PathStats};
use crate::stats::percentiles;

/// An open-loop run at the latency rate over the latency window (30 s × time-scale).
struct OpenRun {
    window: Duration,
    rate: f64,
    /// Started just before the first request.
    cpu: CpuMeter,
    r: LoopResult,
    /// The receiver path got every accepted request within 30 s of the last send.
    complete: bool,
}

impl OpenRun {
    /// Sends with `send` (sequence number, scheduled send time in µs) open-loop, then waits up
    /// to 30 s until `ps` holds every request answered 202.
    async fn drive<F, Fut>(ctx: &Ctx, h: &Herald, ps: &PathStats, send: F) -> Self
    where
        F: Fn(u64, u64) -> Fut + Clone + Send + Sync + 'static,
        Fut: Future<Output = anyhow::Result<StatusCode>> + Send,
    {
        let window = ctx.p.window(30.0);
        let rate = ctx.p.latency_rate;
        let n = (rate * window.as_secs_f64()).round() as u64;
        let cpu = CpuMeter::start(h);
        let r = open_loop(rate, n, 4096, Duration::from_secs(30), 202, send).await;
        let complete = wait_until(Instant::now() + Duration::from_secs(30), || {
            ps.unique() >= r.ok
        })
        .await;
        Self {
            window,
            rate,
            cpu,
            r,
            complete,
        }
    }

    /// The scenario's `fields` (a JSON object) with the run's own figures added: `rate_per_s`,
    /// `window_secs`, `complete` and `cpu` (measured now).
    fn report(&self, mut fields: Value) -> Value {
        fields["rate_per_s"] = json!(self.rate);
        fields["window_secs"] = json!(self.window.as_secs_f64());
        fields["complete"] = json!(self.complete);
        fields["cpu"] = self.cpu.json();
        fields
    }
}

// ---- 4. latency ------------------------------------------------------------------------------

/// Open-loop publishing at `latency_rate` for 30 s; publish → receipt latency at the receiver.
pub async fn latency(ctx: &Ctx) -> anyhow::Result<Outcome> {
    ctx.on_herald(&[], |ctx, h| Box::pin(latency_inner(ctx, h)))
        .await
}

async fn latency_inner(ctx: &Ctx, h: &Herald) -> anyhow::Result<Outcome> {
    let (_, ps, p) = bench_app(ctx, h, "latency", Mode::Ok, true).await?;
    let run = OpenRun::drive(ctx, h, &ps, move |seq, at| p.clone().send(seq, at)).await;
    let e2e = percentiles(&ps.latency());
    let json = run.report(json!({
        "publish": loop_json(&run.r),
        "delivered": ps.unique(),
        "publish_to_receipt": e2e,
        "note": "latency runs from each message's scheduled send time (open loop), so a stall \
                 in the publisher counts against Herald rather than being hidden",
    }));
    let api = &json["publish"]["api_latency"];
    Ok(Outcome {
        rows: vec![
            row(
                &format!(
                    "latency at {} msg/s: publish→receipt p50 / p99 / p999",
                    thousands(run.rate)
                ),
                p50_p99_p999(&e2e),
                None,
                "",
            ),
            row("  publish API latency p50 / p99", p50_p99(api), None, ""),
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
    ctx.on_herald(&[], |ctx, h| Box::pin(inbound_inner(ctx, h)))
        .await
}

async fn inbound_inner(ctx: &Ctx, h: &Herald) -> anyhow::Result<Outcome> {
    use hmac::{Hmac, Mac};
    const SECRET: &[u8] = b"bench-github-secret";
    let (app, ps, _) = bench_app(ctx, h, "inbound", Mode::Ok, true).await?;
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
    let send = move |seq, at| {
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
    };
    let run = OpenRun::drive(ctx, h, &ps, send).await;
    let fwd = percentiles(&ps.latency());
    let json = run.report(json!({
        "ingest": loop_json(&run.r),
        "forwarded": ps.unique(),
        "request_to_forward": fwd,
        "note": "open loop from each request's scheduled send time; a GitHub source (HMAC-SHA256 \
                 check, dedup by X-GitHub-Delivery) forwarding to one endpoint during the run",
    }));
    let ack = &json["ingest"]["api_latency"];
    Ok(Outcome {
        rows: vec![
            row(
                &format!(
                    "inbound ack at {} req/s: p50 / p99 / p999",
                    thousands(run.rate)
                ),
                p50_p99_p999(ack),
                None,
                "p99 ≤ 10 ms",
            ),
            row(
                "  request→forward receipt p50 / p99",
                p50_p99(&fwd),
                None,
                "",
            ),
        ],
        json,
    })
}
