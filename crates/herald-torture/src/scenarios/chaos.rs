//! Chaos receiver: every endpoint answers 30 % of requests 5xx, holds 10 % past Herald's
//! request timeout and resets the connection on 10 % after reading the request. Every
//! accepted message must still be delivered to every endpoint (the retry schedule is long
//! enough that 21 failures in a row are vanishingly rare), and the attempt log must hold exactly
//! one attempt for every request the receiver read — none missing, none invented — with the
//! error kinds the faults should produce.

use std::collections::HashMap;
use std::sync::atomic::AtomicBool;
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::{json, Value};

use crate::herald::{free_port, scratch_dir, Herald};
use crate::publisher::{setup_app, Delivery, Publisher};
use crate::receiver::{Faults, Receiver};
use crate::Opts;

const ENDPOINTS: usize = 3;

pub async fn run(o: &Opts, messages: u64) -> anyhow::Result<(Value, bool)> {
    let started = Instant::now();
    let dir = scratch_dir()?;
    let rx = Receiver::start(
        Faults {
            status_5xx: 0.30,
            hang: 0.10,
            reset: 0.10,
            hang_for: Duration::from_millis(1_500),
            delay: Duration::ZERO,
        },
        o.seed,
    )
    .await?;
    let schedule = format!("[{}]", vec!["1"; 20].join(","));
    let h = Herald::start(
        &o.bin,
        &dir.path().join("data"),
        free_port()?,
        &[
            ("retry_schedule", schedule),
            ("request_timeout_ms", "1000".into()),
            ("lease_seconds", "10".into()),
            // Half the requests fail, so breakers open all the time (as they should); short
            // cool-downs keep the run bounded while still exercising them.
            ("breaker_cooldown_ms", "1000".into()),
            ("breaker_max_cooldown_ms", "2000".into()),
        ],
    )
    .await?;
    let app = setup_app(&h.api, "chaos", ENDPOINTS, |i| rx.url(&format!("/ep/{i}"))).await?;
    let pubs = Publisher::new(128);
    pubs.run(&h.api, &app, 8, messages, Arc::new(AtomicBool::new(false)))
        .await;
    let accepted = pubs.accepted();
    let d = Delivery::wait(&pubs, &rx, ENDPOINTS, o.deadline).await;
    // The attempt log of every message, against what the receiver read.
    let seen = &d.seen;
    let mut attempts_logged = 0u64;
    let mut mismatched = Vec::new();
    let mut by_error: HashMap<String, u64> = HashMap::new();
    for id in accepted.values() {
        let attempts = h
            .api
            .list_all(&format!("/app/{app}/attempt/msg/{id}"))
            .await?;
        let mut per_path: HashMap<String, u32> = HashMap::new();
        for a in &attempts {
            let url = a["url"].as_str().unwrap_or_default();
            let path = url.rsplit_once('/').map(|(_, p)| format!("/ep/{p}"));
            *per_path.entry(path.unwrap_or_default()).or_default() += 1;
            let kind = match a["responseStatusCode"].as_u64() {
                Some(0) | None => a["error"]
                    .as_str()
                    .and_then(|e| e.split(':').next())
                    .unwrap_or("none")
                    .to_string(),
                Some(s) => format!("http_{s}"),
            };
            *by_error.entry(kind).or_default() += 1;
        }
        attempts_logged += attempts.len() as u64;
        for i in 0..ENDPOINTS {
            let path = format!("/ep/{i}");
            let read = seen
                .get(&(id.clone(), path.clone()))
                .map(|s| s.requests)
                .unwrap_or(0);
            let logged = per_path.get(&path).copied().unwrap_or(0);
            if read != logged {
                mismatched.push(format!(
                    "{id} {path}: receiver read {read}, log has {logged}"
                ));
            }
        }
    }
    let c = rx.counters();
    h.stop().await?;
    let ledger = pubs.ledger.lock();
    // The receiver accepts every connection: a failure after that is never a connect error.
    let connect_errors = by_error.get("connect_error").copied().unwrap_or(0);
    let ok = d.complete()
        && mismatched.is_empty()
        && connect_errors == 0
        && ledger.in_doubt == 0
        && ledger.refused.is_empty()
        && c.without_id == 0;
    let mut errors: Vec<(String, u64)> = by_error.into_iter().collect();
    errors.sort();
    let fields = json!({
        "scenario": "chaos",
        "endpoints": ENDPOINTS,
        "receiver": {"ok": c.ok, "answered5xx": c.answered_5xx, "hung": c.hung, "reset": c.reset},
        "attemptsLogged": attempts_logged,
        "attemptsByOutcome": errors.into_iter().map(|(k, v)| (k, json!(v))).collect::<serde_json::Map<_, _>>(),
        "logMismatches": mismatched.len(),
        "logMismatchSample": mismatched.iter().take(10).collect::<Vec<_>>(),
        "duplicates": rx.duplicates(),
    });
    Ok(d.report(o.seed, started, &ledger, ok, fields))
}
