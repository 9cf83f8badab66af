//! The batch-drain scenario: the same backlog to one endpoint drained once unbatched and once
//! with `batch`, so that the delivery side is measured without the publish rate in the way
//! (the `batch` scenario is bound by how fast events are published). It reports; it does not
//! judge.

use std::time::Duration;

use serde_json::{json, Value};

use super::{
    mark_incomplete, open_and_drain, row, thousands, Ctx, Drained, Outcome, Publisher, Row,
};
use crate::herald_proc::Herald;
use crate::load::LoopResult;
use crate::receiver::Mode;
use crate::stats::{round1, round3};

/// For each mode (unbatched, then `batch` with `--batch-events`/`--batch-wait-ms`): a fresh
/// Herald, one endpoint whose receiver path is gated, a backlog of messages published, the
/// gate opened, and the time from opening to the last delivery.
pub async fn drain(ctx: &Ctx) -> anyhow::Result<Outcome> {
    // Held requests must not time out while the backlog builds up (lease > request timeout).
    let extra = [
        ("request_timeout_ms", "55000".to_string()),
        ("lease_seconds", "60".to_string()),
    ];
    let batch = json!({"maxEvents": ctx.p.batch_events, "maxWaitMs": ctx.p.batch_wait_ms});
    let mut rows: Vec<Row> = Vec::new();
    let mut runs = Vec::new();
    let mut rates = Vec::new();
    for (label, b) in [("unbatched", None), ("batched", Some(batch))] {
        let out = ctx
            .on_herald(&extra, |ctx, h| Box::pin(drain_one(ctx, h, label, b)))
            .await?;
        rates.push(out.json["drain_per_s"].as_f64().unwrap_or(0.0));
        rows.extend(out.rows);
        runs.push(out.json);
    }
    let speedup = match rates.as_slice() {
        [u, b] if *u > 0.0 => Some(b / u),
        _ => None,
    };
    if let Some(s) = speedup {
        rows.push(row(
            "  batched / unbatched drain rate",
            format!("{s:.1}×"),
            None,
            "several times",
        ));
    }
    Ok(Outcome {
        rows,
        json: json!({
            "method": "endpoint enabled, its receiver path gated: Herald's in-flight requests \
                       are held unanswered so every other delivery stays pending in the store; \
                       then the gate opens and the backlog drains. Same backlog and endpoint \
                       settings in both runs; only `batch` differs",
            "runs": runs,
            "batched_over_unbatched": speedup.map(round3),
        }),
    })
}

async fn drain_one(
    ctx: &Ctx,
    h: &Herald,
    label: &str,
    batch: Option<Value>,
) -> anyhow::Result<Outcome> {
    let name = format!("drain-{label}");
    let app = h.api.create_app(&format!("bench-{name}")).await?;
    let path = format!("/{name}/0");
    let ps = ctx.rx.path(&path, Mode::Gate, false);
    let mut body = json!({"url": ctx.rx.url(&path), "maxConcurrency": ctx.p.max_concurrency});
    if let Some(b) = &batch {
        body["batch"] = b.clone();
    }
    h.api.create_endpoint(&app, body).await?;
    let messages = ctx.p.count(100_000);
    let r: LoopResult = Publisher::new(&h.api, &app)?
        .closed(ctx.p.clients, messages, Duration::from_secs(900))
        .await;
    // Let the engine claim what it will and build its batches before the gate opens.
    tokio::time::sleep(Duration::from_secs(3)).await;
    let held = ps.held.load(std::sync::atomic::Ordering::Relaxed);
    let Drained {
        complete,
        snap,
        secs,
        rate,
    } = open_and_drain(&ps, r.ok).await;
    let mut value = format!(
        "{} deliveries/s in {} requests",
        thousands(rate),
        thousands(snap.total as f64)
    );
    mark_incomplete(&mut value, complete, snap.unique, r.ok);
    Ok(Outcome {
        rows: vec![row(
            &format!(
                "drain {label}, {} msgs → 1 endpoint",
                thousands(messages as f64)
            ),
            value,
            ctx.ratio(rate),
            "",
        )],
        json: json!({
            "mode": label,
            "batch": batch,
            "messages": messages,
            "published": r.ok,
            "max_concurrency": ctx.p.max_concurrency,
            "requests_held_at_gate": held,
            "drained": snap.unique,
            "duplicates": snap.duplicates,
            "requests_received": snap.total,
            "complete": complete,
            "drain_secs": round3(secs),
            "drain_per_s": round1(rate),
            "ratio_to_ceiling": ctx.ratio(rate),
        }),
    })
}
