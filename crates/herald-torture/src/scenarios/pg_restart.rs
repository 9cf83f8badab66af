//! PostgreSQL restart and crash under load: Herald runs on PostgreSQL (with its outage spool)
//! while publishers publish; the database is stopped (`fast`) or crashed (`immediate`, crash
//! recovery at the next start, as after a failover onto the same data) and started again
//! several times. Every publish answered 2xx must be delivered; a refusal must be a JSON 5xx.
//!
//! The cluster is controlled through `scripts/pg-cluster.sh stop|crash|resume <dir>`, the
//! script the test command starts it with.

use std::path::Path;
use std::sync::atomic::AtomicBool;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context as _;
use serde_json::{json, Value};

use crate::herald::{free_port, Herald};
use crate::publisher::{ledger_json, setup_app, Delivery, Publisher};
use crate::receiver::{Faults, Receiver};
use crate::Opts;

const ENDPOINTS: usize = 2;
pub(crate) const ENCRYPTION_KEY: &str = "dG9ydHVyZS10ZXN0LWtleS0zMi1ieXRlcy1sb25nISE=";

pub(crate) fn pg(script: &Path, cmd: &str, dir: &Path) -> anyhow::Result<()> {
    let status = std::process::Command::new("bash")
        .arg(script)
        .arg(cmd)
        .arg(dir)
        .status()
        .with_context(|| format!("{} {cmd}", script.display()))?;
    anyhow::ensure!(status.success(), "pg-cluster.sh {cmd} failed ({status})");
    Ok(())
}

/// A database of its own on the server of `admin_url` (through `psql`).
pub(crate) fn fresh_database(admin_url: &str, seed: u64) -> anyhow::Result<String> {
    let name = format!("torture_{seed}_{}", std::process::id());
    for sql in [
        format!("DROP DATABASE IF EXISTS {name}"),
        format!("CREATE DATABASE {name}"),
    ] {
        let out = std::process::Command::new("psql")
            .arg(admin_url)
            .args(["-v", "ON_ERROR_STOP=1", "-q", "-c", &sql])
            .output()
            .context("run psql")?;
        anyhow::ensure!(
            out.status.success(),
            "psql: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let base = admin_url
        .rsplit_once('/')
        .map(|(b, _)| b)
        .unwrap_or(admin_url);
    Ok(format!("{base}/{name}"))
}

pub async fn run(
    o: &Opts,
    database_url: &str,
    pg_dir: &Path,
    script: &Path,
    restarts: usize,
) -> anyhow::Result<(Value, bool)> {
    let started = Instant::now();
    let db = fresh_database(database_url, o.seed)?;
    let dir = tempfile::Builder::new()
        .prefix("herald-torture-")
        .tempdir()?;
    let rx = Receiver::start(
        Faults {
            delay: Duration::from_millis(1),
            ..Faults::default()
        },
        o.seed,
    )
    .await?;
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
        pg(script, mode, pg_dir)?;
        tokio::time::sleep(Duration::from_millis(1_500)).await;
        pg(script, "resume", pg_dir)?;
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
    let mut report = json!({
        "scenario": "pg-restart",
        "seed": o.seed,
        "outages": outages,
        "endpoints": ENDPOINTS,
        "publishes": ledger_json(&ledger),
        "duplicates": rx.duplicates(),
        "seconds": started.elapsed().as_secs_f64(),
        "ok": ok,
    });
    d.report_into(&mut report);
    Ok((report, ok))
}
