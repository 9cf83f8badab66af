//! kill -9 loop: Herald is killed with SIGKILL at a random moment while publishers publish and
//! workers deliver, then started again on the same data directory, `cycles` times. At the end
//! every publish answered 2xx must have reached every endpoint; duplicates are allowed (and
//! counted per kill) because a delivery in flight at the kill is sent again after the restart.

use std::sync::atomic::AtomicBool;
use std::sync::Arc;
use std::time::{Duration, Instant};

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde_json::{json, Value};

use crate::herald::{free_port, scratch_dir, Herald};
use crate::publisher::{phantoms, setup_app, Delivery, Publisher};
use crate::receiver::{Faults, Receiver};
use crate::Opts;

const ENDPOINTS: usize = 2;
const PUBLISHERS: usize = 8;
/// Herald's default `maxConcurrency` per endpoint (delivery.md): the most deliveries one
/// endpoint can have in flight at a kill.
const DEFAULT_MAX_CONCURRENCY: u32 = 16;

pub async fn run(o: &Opts, cycles: usize) -> anyhow::Result<(Value, bool)> {
    let started = Instant::now();
    let mut rng = StdRng::seed_from_u64(o.seed);
    let dir = scratch_dir()?;
    let data = dir.path().join("data");
    let port = free_port()?;
    // Slower than publishing, so a backlog builds and deliveries are in flight at each kill.
    let rx = Receiver::start(Faults::delay_only(Duration::from_millis(2)), o.seed).await?;
    let settings = [
        ("retry_schedule", "[1,1,1,2,2,2,5,5,5,5]".to_string()),
        ("request_timeout_ms", "2000".to_string()),
        ("lease_seconds", "60".to_string()),
    ];
    let pubs = Publisher::new(256);
    let mut app = String::new();
    let mut per_kill = Vec::new();
    for cycle in 0..cycles {
        rx.set_generation(cycle as u32);
        let h = Herald::start(&o.bin, &data, port, &settings).await?;
        if cycle == 0 {
            app = setup_app(&h.api, "kill-loop", ENDPOINTS, |i| {
                rx.url(&format!("/ep/{i}"))
            })
            .await?;
        }
        let stop = Arc::new(AtomicBool::new(false));
        let load = {
            let (p, api, app, stop) = (pubs.clone(), h.api.clone(), app.clone(), stop.clone());
            tokio::spawn(async move { p.run(&api, &app, PUBLISHERS, u64::MAX, stop).await })
        };
        let live_ms = rng.gen_range(150..900);
        tokio::time::sleep(Duration::from_millis(live_ms)).await;
        h.kill9().await?;
        stop.store(true, std::sync::atomic::Ordering::Relaxed);
        let _ = load.await;
        per_kill.push(live_ms);
    }
    // Final generation: no kill; wait until everything accepted is delivered.
    rx.set_generation(cycles as u32);
    let h = Herald::start(&o.bin, &data, port, &settings).await?;
    let mut d = Delivery::wait(&pubs, &rx, ENDPOINTS, o.deadline).await;
    // Let redeliveries settle before counting duplicates.
    tokio::time::sleep(Duration::from_millis(500)).await;
    d.phantoms = phantoms(pubs.published_up_to(), &rx.snapshot());
    // A duplicate without a kill is legitimate only when Herald recorded a failed attempt in
    // between (it timed out while the receiver's 2xx was on its way): check the attempt log.
    let mut unexplained = Vec::new();
    for (id, path) in rx.same_generation_duplicates() {
        let attempts = h
            .api
            .list_all(&format!("/app/{app}/attempt/msg/{id}"))
            .await?;
        let failed_before = attempts.iter().any(|a| {
            a["url"].as_str().is_some_and(|u| u.ends_with(&path))
                && !(200..300).contains(&a["responseStatusCode"].as_u64().unwrap_or(0))
        });
        if !failed_before {
            unexplained.push(format!("{id} {path}"));
        }
    }
    h.stop().await?;
    // Duplicates per kill: a delivery answered 2xx by the receiver whose process was killed
    // before it recorded the answer is sent again by a later process — so each duplicate
    // belongs to the kill that ended the process of the 2xx before it. At most the deliveries
    // in flight at that kill (`maxConcurrency` per endpoint); none without a kill unless the
    // attempt log shows the failure (a timeout) that caused it.
    let total_dup = rx.duplicates();
    let by_gen = rx.duplicates_by_generation();
    let dups: Vec<u64> = (0..cycles as u32)
        .map(|g| by_gen.get(&g).copied().unwrap_or(0))
        .collect();
    let without_kill = by_gen.get(&u32::MAX).copied().unwrap_or(0);
    let in_flight_cap = (ENDPOINTS as u64) * u64::from(DEFAULT_MAX_CONCURRENCY);
    let max_per_kill = dups.iter().max().copied().unwrap_or(0);
    let ledger = pubs.ledger.lock();
    let ok = d.complete()
        && ledger.refused_without_json == 0
        && max_per_kill <= in_flight_cap
        && unexplained.is_empty();
    let fields = json!({
        "scenario": "kill-loop",
        "cycles": cycles,
        "endpoints": ENDPOINTS,
        "duplicates": total_dup,
        "duplicatesPerKill": dups,
        "maxDuplicatesPerKill": max_per_kill,
        "inFlightCap": in_flight_cap,
        "duplicatesWithoutKill": without_kill,
        "duplicatesWithoutKillUnexplained": unexplained,
        "killAfterMs": per_kill,
    });
    Ok(d.report(o.seed, started, &ledger, ok, fields))
}
