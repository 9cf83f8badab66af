//! The content-filter scenario: the durable publish rate to an app with ten endpoints, first
//! without filters, then with a filter on each endpoint that every bench payload matches (so
//! both runs queue the same deliveries and the difference is the filters' cost at fan-out).
//! Each run has its own Herald; it measures and reports, nothing else.

use serde_json::json;

use super::meter::CpuMeter;
use super::{loop_json, p50_p99, row, thousands, Ctx, Outcome, Publisher};
use crate::herald_proc::Herald;
use crate::receiver::Mode;

/// Endpoints of each run.
const ENDPOINTS: usize = 10;

/// A filter every bench payload (`{"seq", "sent_us", "pad"}`) matches, exercising a range
/// comparison, a string operator, `$exists` and a combinator.
fn filter() -> serde_json::Value {
    json!({
        "seq": {"$gte": 0},
        "pad": {"$startsWith": "x"},
        "$or": [{"sent_us": {"$exists": true}}, {"kind": "never"}],
    })
}

/// Publish rate with ten endpoints, without and then with filters.
pub async fn filters(ctx: &Ctx) -> anyhow::Result<Outcome> {
    let plain = ctx
        .on_herald(&[], |ctx, h| Box::pin(run(ctx, h, false)))
        .await?;
    let filtered = ctx
        .on_herald(&[], |ctx, h| Box::pin(run(ctx, h, true)))
        .await?;
    let rate = |o: &Outcome| o.json["publish"]["rate_per_s"].as_f64().unwrap_or(0.0);
    let (a, b) = (rate(&plain), rate(&filtered));
    let change = if a > 0.0 { (b - a) / a * 100.0 } else { 0.0 };
    let mut rows = plain.rows;
    rows.extend(filtered.rows);
    rows.push(row(
        "  change with filters",
        format!("{change:+.1} %"),
        None,
        "within −10 %",
    ));
    Ok(Outcome {
        rows,
        json: json!({
            "without_filters": plain.json,
            "with_filters": filtered.json,
            "change_percent": (change * 10.0).round() / 10.0,
        }),
    })
}

async fn run(ctx: &Ctx, h: &Herald, with_filters: bool) -> anyhow::Result<Outcome> {
    let name = if with_filters {
        "filtered"
    } else {
        "unfiltered"
    };
    let app = h.api.create_app(&format!("bench-{name}")).await?;
    for i in 0..ENDPOINTS {
        let path = format!("/{name}/{i}");
        ctx.rx.path(&path, Mode::Ok, false);
        let mut body = json!({ "url": ctx.rx.url(&path), "maxConcurrency": ctx.p.max_concurrency });
        if with_filters {
            body["filter"] = filter();
        }
        h.api.create_endpoint(&app, body).await?;
    }
    let p = Publisher::new(&h.api, &app)?;
    let cpu = CpuMeter::start(h);
    let window = ctx.p.window(20.0);
    let r = p.closed(ctx.p.clients, 5_000_000, window).await;
    let json = json!({
        "endpoints": ENDPOINTS,
        "filters": with_filters,
        "clients": ctx.p.clients,
        "window_secs": window.as_secs_f64(),
        "publish": loop_json(&r),
        "cpu": cpu.json(),
    });
    let lat = &json["publish"]["api_latency"];
    let label = format!(
        "publish, {ENDPOINTS} endpoints {}",
        if with_filters {
            "with filters"
        } else {
            "without filters"
        }
    );
    Ok(Outcome {
        rows: vec![
            row(&label, format!("{} msg/s", thousands(r.rate())), None, ""),
            row("  publish API latency p50 / p99", p50_p99(lat), None, ""),
        ],
        json,
    })
}
