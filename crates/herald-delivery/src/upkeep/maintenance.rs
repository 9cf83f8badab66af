//! The once-a-minute pass: auto-disable endpoints without a success for too long, then purge
//! expired payloads and attempt bodies. It must keep its write batches small, because delivery
//! shares the store's writer.

use std::sync::Arc;
use std::time::Duration;

use herald_core::ops::OperationalEvent;
use herald_store::{OpsLog, Store};
use tokio::sync::watch;

use crate::telemetry;

/// How often upkeep (auto-disable, retention) runs.
const RETENTION_EVERY: Duration = Duration::from_secs(60);
/// Rows purged per retention statement: small, so delivery's writes interleave.
const RETENTION_BATCH: usize = 500;

/// How long things are kept before upkeep acts; 0 turns a policy off.
#[derive(Clone, Copy, Debug)]
pub struct Retention {
    /// Payloads and attempt bodies older than this are purged (millis).
    pub keep_ms: i64,
    /// Endpoints with no success for this long are disabled (millis).
    pub disable_ms: i64,
}

/// Runs until `shutdown` turns true.
pub async fn maintenance_loop(
    store: Arc<dyn Store>,
    ops: OpsLog,
    retention: Retention,
    mut shutdown: watch::Receiver<bool>,
) {
    loop {
        if retention.disable_ms > 0 {
            disable_failing(store.as_ref(), &ops, retention.disable_ms).await;
        }
        if retention.keep_ms > 0
            && !purge_expired(store.as_ref(), retention.keep_ms, &shutdown).await
        {
            return;
        }
        tokio::select! {
            _ = tokio::time::sleep(RETENTION_EVERY) => {}
            _ = shutdown.wait_for(|s| *s) => return,
        }
    }
}

async fn disable_failing(store: &dyn Store, ops: &OpsLog, disable_ms: i64) {
    match store
        .disable_failing_endpoints(herald_core::now_millis(), disable_ms)
        .await
    {
        Ok(disabled) => {
            for d in disabled {
                let id = d.endpoint_id;
                telemetry::endpoint_disabled();
                tracing::warn!(endpoint_id = %id, "endpoint disabled: no successful delivery within endpoint_disable_after_hours; its waiting deliveries are failed and recoverable");
                if !ops.is_ops_app(&d.app_id) {
                    ops.emit(OperationalEvent::EndpointDisabled {
                        app_id: d.app_id,
                        endpoint_id: id,
                        endpoint_uid: d.uid,
                        trigger: "automatic",
                        fail_since: Some(d.failing_since),
                    })
                    .await;
                }
            }
        }
        Err(e) => tracing::warn!(error = %e, "auto-disable pass failed; will retry"),
    }
}

/// Purges in batches until a pass finds nothing; false when shutdown came first.
async fn purge_expired(store: &dyn Store, keep_ms: i64, shutdown: &watch::Receiver<bool>) -> bool {
    let mut purged = 0u64;
    loop {
        match store
            .purge_expired(herald_core::now_millis(), keep_ms, RETENTION_BATCH)
            .await
        {
            Ok(0) => break,
            Ok(n) => purged += n,
            Err(e) => {
                tracing::warn!(error = %e, "retention pass failed; will retry");
                break;
            }
        }
        if *shutdown.borrow() {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    if purged > 0 {
        tracing::info!(
            purged,
            "retention purged expired payloads and attempt bodies"
        );
    }
    true
}
