//! Full disk under the PostgreSQL outage spool: Herald runs on PostgreSQL with its data
//! directory (where the spool lives) on a small tmpfs holding a ballast file. The database is
//! stopped, so every publish goes to the spool until the filesystem is full; meanwhile every
//! answer must be a 2xx or a JSON 5xx, with no crash and no hang. Then the ballast is deleted and
//! the database started again: the spool drains, publishing works again without a restart,
//! and everything accepted is delivered.
//!
//! Needs permission to mount a tmpfs (root) and a PostgreSQL started by
//! `scripts/pg-cluster.sh`; without a tmpfs the scenario reports itself skipped.

use std::time::Instant;

use serde_json::{json, Value};

use super::disk_full::{finish, FullSetup};
use crate::pg::{PgCluster, ENCRYPTION_KEY};
use crate::publisher::Delivery;
use crate::Opts;

const BALLAST_BYTES: usize = 4 * 1024 * 1024;

pub async fn run(o: &Opts, pg: &PgCluster, fs_mib: u64) -> anyhow::Result<(Value, bool)> {
    let started = Instant::now();
    let db = pg.fresh_database(o.seed.wrapping_add(7_000))?;
    let settings = [
        ("database_url", db),
        ("encryption_key", ENCRYPTION_KEY.into()),
        ("retry_schedule", "[1,1,1,2,2,2,5,5,5,5,10,10]".into()),
        ("request_timeout_ms", "2000".into()),
        // Larger than the filesystem: the disk fills before the spool's own cap.
        ("spool_max_bytes", (1024 * 1024 * 1024u64).to_string()),
    ];
    let mut s = match FullSetup::start(o, fs_mib, BALLAST_BYTES, "spool-full", &settings).await? {
        Ok(s) => s,
        Err(skipped) => return Ok(skipped),
    };
    pg.control("stop")?;
    // Publishing works again, without a restart, once the spool has room and the database is back.
    let (run, ()) = s.fill_and_free(|_| pg.control("resume")).await?;
    let d = Delivery::wait(&s.pubs, &s.rx, 1, o.deadline).await;
    let extra = json!({"scenario": "spool-full", "duplicates": s.rx.duplicates()});
    finish(o, s, d, run, fs_mib, started, extra).await
}
