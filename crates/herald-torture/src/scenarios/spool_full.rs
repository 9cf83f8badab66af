//! Full disk under the PostgreSQL outage spool: Herald runs on PostgreSQL with its data
//! directory (where the spool lives) on a small tmpfs holding a ballast file. The database is
//! stopped, so every publish goes to the spool until the filesystem is full; meanwhile every
//! answer must be a 2xx or a JSON 5xx, with no crash and no hang. Then the ballast is deleted and
//! the database started again: the spool drains, publishing works again without a restart,
//! and everything accepted is delivered.
//!
//! Needs permission to mount a tmpfs (root) and a PostgreSQL started by
//! `scripts/pg-cluster.sh`; without a tmpfs the scenario reports itself skipped.

use std::path::Path;
use std::time::{Duration, Instant};

use serde_json::{json, Value};

use super::disk_full::{finish, FullFs, FullRun};
use super::pg_restart::{fresh_database, pg, ENCRYPTION_KEY};
use crate::herald::{free_port, Herald};
use crate::publisher::{health, setup_app, Delivery, Publisher};
use crate::receiver::{Faults, Receiver};
use crate::Opts;

const BALLAST_BYTES: usize = 4 * 1024 * 1024;

pub async fn run(
    o: &Opts,
    database_url: &str,
    pg_dir: &Path,
    script: &Path,
    fs_mib: u64,
) -> anyhow::Result<(Value, bool)> {
    let started = Instant::now();
    let db = fresh_database(database_url, o.seed.wrapping_add(7_000))?;
    let dir = tempfile::Builder::new()
        .prefix("herald-torture-")
        .tempdir()?;
    let FullFs { fs, mnt, ballast } =
        match FullFs::prepare(dir.path(), fs_mib, BALLAST_BYTES, "spool-full")? {
            Ok(f) => f,
            Err(skipped) => return Ok(skipped),
        };
    let rx = Receiver::start(Faults::default(), o.seed).await?;
    let mut h = Herald::start(
        &o.bin,
        &mnt.join("data"),
        free_port()?,
        &[
            ("database_url", db),
            ("encryption_key", ENCRYPTION_KEY.into()),
            ("retry_schedule", "[1,1,1,2,2,2,5,5,5,5,10,10]".into()),
            ("request_timeout_ms", "2000".into()),
            // Larger than the filesystem: the disk fills before the spool's own cap.
            ("spool_max_bytes", (1024 * 1024 * 1024u64).to_string()),
        ],
    )
    .await?;
    let app = setup_app(&h.api, "spool-full", 1, |i| rx.url(&format!("/ep/{i}"))).await?;
    let pubs = Publisher::new(16 * 1024);
    pg(script, "stop", pg_dir)?;
    let full_reached = pubs
        .fill_until_refused(&h.api, &app, Duration::from_secs(120))
        .await;
    let health_when_full = health(&h.api).await?;
    let alive_when_full = h.alive();
    std::fs::remove_file(&ballast)?;
    pg(script, "resume", pg_dir)?;
    // Publishing works again, without a restart, once the spool has room and the database is back.
    let recovered = pubs
        .until_accepted_again(&h.api, &app, Duration::from_secs(120))
        .await;
    let d = Delivery::wait(&pubs, &rx, 1, o.deadline).await;
    let extra = json!({"scenario": "spool-full", "duplicates": rx.duplicates()});
    let run = FullRun {
        full_reached,
        health_when_full,
        alive_when_full,
        recovered,
    };
    finish(o, h, fs, &pubs, d, run, fs_mib, started, extra).await
}
