//! The gap-timeout sweep of inbound ordering: held events whose `gapTimeoutSeconds` ran out
//! go on in sequence order. It must stay safe when every node sweeps at once, which
//! `Store::release_held` guarantees; this loop only paces it and wakes the engine.

use std::sync::Arc;
use std::time::Duration;

use herald_store::Store;
use tokio::sync::{watch, Notify};

use crate::telemetry;

/// How often held inbound events (source `ordering`) are checked for an ended wait.
const HELD_SWEEP_EVERY: Duration = Duration::from_secs(1);
/// Keys released per sweep call; the sweep calls again at once until a call finds nothing.
const HELD_SWEEP_KEYS: usize = 100;
/// Calls per tick: a backlog larger than this many full calls waits for the next tick.
const HELD_SWEEP_CALLS: usize = 10;

/// Runs once a second until `shutdown` turns true, waking the engine for the messages that the
/// released events became.
pub async fn held_sweep_loop(
    store: Arc<dyn Store>,
    wake: Arc<Notify>,
    mut shutdown: watch::Receiver<bool>,
) {
    loop {
        for _ in 0..HELD_SWEEP_CALLS {
            match store
                .release_held(herald_core::now_millis(), HELD_SWEEP_KEYS)
                .await
            {
                Ok(0) => break,
                Ok(n) => {
                    telemetry::messages_published("inbound", n);
                    tracing::info!(
                        messages = n,
                        "held inbound events went on after their gap timeout"
                    );
                    wake.notify_one();
                }
                Err(e) => {
                    tracing::warn!(error = %e, "held-event sweep failed; will retry");
                    break;
                }
            }
        }
        tokio::select! {
            _ = tokio::time::sleep(HELD_SWEEP_EVERY) => {}
            _ = shutdown.wait_for(|s| *s) => return,
        }
    }
}
