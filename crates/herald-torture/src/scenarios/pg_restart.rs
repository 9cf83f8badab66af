//! PostgreSQL restart and crash under load: Herald runs on PostgreSQL (with its outage spool)
//! while publishers publish; the database is stopped (`fast`) or crashed (`immediate`, crash
//! recovery at the next start, as after a failover onto the same data) and started again
//! several times. Every publish answered 2xx must be delivered; a refusal must be a JSON 5xx.
//!
//! The cluster is controlled through `scripts/pg-cluster.sh stop|crash|resume <dir>` (see
//! [`crate::pg`]).

use std::sync::atomic::AtomicBool;
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::{json, Value};

use crate::herald::{free_port, scratch_dir, Herald};
use crate::pg::{PgCluster, ENCRYPTION_KEY};
use crate::publisher::{setup_app, Delivery, Publisher};
use crate::receiver::{Faults, Receiver};
use crate::Opts;

const ENDPOINTS: usize = 2;
pub async fn run(o: &Opts, pg: &PgCluster, restarts: usize) -> anyhow::Result<(Value, bool)> {
    let started = Instant::now();
    let db = pg.fresh_database(o.seed)?;
    let dir = scratch_dir()?;
    let rx = Receiver::start(Faults::delay_only(Duration::from_millis(1)), o.seed).await?;
    let h = Herald::start(
        &o.bin,
        &dir.path().join("data"),
        free_port()?,
        &[
            ("database_url", db),
            ("encryption_key", ENCRYPTION_KEY.into()),
            ("retry_schedule", "[1,1,1,2,2,2,5,5,5,5,10,10]".into()),
            ("request_timeout_ms", "2000".into()),
            ("lease_seconds", "5".into()),
        ],
    )
    .await?;
    let app = setup_app(&h.api, "pg-restart", ENDPOINTS, |i| {
        rx.url(&format!("/ep/{i}"))
    })
    .await?;
    let pubs = Publisher::new(256);
    let stop = Arc::new(AtomicBool::new(false));
    let load = {
        let (p, api, app, stop) = (pubs.clone(), h.api.clone(), app.clone(), stop.clone());
        tokio::spawn(async move { p.run(&api, &app, 8, u64::MAX, stop).await })
    };
    let mut outages = Vec::new();
    for i in 0..restarts {
        tokio::time::sleep(Duration::from_millis(800)).await;
        let mode = if i % 2 == 0 { "stop" } else { "crash" };
        let t = Instant::now();
        pg.control(mode)?;
        tokio::time::sleep(Duration::from_millis(1_500)).await;
        pg.control("resume")?;
        outages.push(json!({"mode": mode, "seconds": t.elapsed().as_secs_f64()}));
    }
    tokio::time::sleep(Duration::from_millis(800)).await;
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let _ = load.await;
    let d = Delivery::wait(&pubs, &rx, ENDPOINTS, o.deadline).await;
    h.stop().await?;
    let ledger = pubs.ledger.lock();
    let only_5xx = ledger.refused.keys().all(|s| *s >= 500);
    let ok = d.complete() && only_5xx && ledger.refused_without_json == 0;
    let fields = json!({
        "scenario": "pg-restart",
        "outages": outages,
        "endpoints": ENDPOINTS,
        "duplicates": rx.duplicates(),
    });
    Ok(d.report(o.seed, started, &ledger, ok, fields))
}
