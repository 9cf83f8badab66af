//! The isolation scenario: the healthy endpoints' delivery rate with every endpoint healthy and
//! with half of them hanging. It uses Herald's endpoint defaults on purpose, not the bench's
//! `maxConcurrency`.

use std::time::Instant;

use serde_json::{json, Value};

use super::meter::CpuMeter;
use super::{finish, loop_json, per_sec, row, thousands, wait_until, Ctx, Outcome, Publisher};
use crate::receiver::Mode;
use crate::stats::{now_us, round1, round3};

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
        let per_ep = per_sec(got as f64 / healthy.len() as f64, secs);
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
