//! The reconciliation poller (destinations.md "Pulling from providers"): a background loop
//! that leases due polls from the store (one node per source at a time, also in a cluster),
//! runs each (`pages`), and records how it went — the cursor to resume from, or the error and
//! the backoff before the next try.
//!
//! A poll's failure is only recorded on its source: it never touches webhook ingestion, and
//! it never logs a header value (the poll's headers are credentials).

mod fetch;
mod item;
mod pages;

use std::time::Duration;

use herald_core::now_millis;
use herald_core::reconcile::{backoff_ms, PollPlan, MIN_INTERVAL_S};
use herald_delivery::DeliveryClient;
use herald_store::{PollClaim, PollFinish, PollState};
use tokio::sync::watch;

use crate::state::AppState;

/// How long a node holds a poll it runs; a node that dies mid-run frees it after this.
const LEASE_MS: i64 = 5 * 60 * 1000;
/// A run is cut off well before its lease ends, so no other node starts it meanwhile.
const RUN_LIMIT: Duration = Duration::from_secs(4 * 60);
/// Polls run at once by one node.
const BATCH: usize = 8;
/// How often the loop looks for due polls when nothing wakes it.
const TICK: Duration = Duration::from_secs(1);

/// Runs due polls until `shutdown` turns true. `owner` names this node's leases; `client`
/// fetches under the egress rules of deliveries.
pub async fn poll_loop(
    st: AppState,
    client: DeliveryClient,
    owner: String,
    mut shutdown: watch::Receiver<bool>,
) {
    let wake = st.inner.poll_wake.clone();
    loop {
        if *shutdown.borrow() {
            return;
        }
        let claim = PollClaim {
            owner: owner.clone(),
            now: now_millis(),
            lease_ms: LEASE_MS,
            limit: BATCH,
        };
        let due = match st.store().claim_polls(claim).await {
            Ok(due) => due,
            Err(e) => {
                tracing::warn!(error = %e, "reconciliation: cannot claim due polls");
                Vec::new()
            }
        };
        let full = due.len() == BATCH;
        let mut runs = tokio::task::JoinSet::new();
        for state in due {
            runs.spawn(run_one(st.clone(), client.clone(), owner.clone(), state));
        }
        while runs.join_next().await.is_some() {}
        if full {
            continue;
        }
        tokio::select! {
            _ = shutdown.changed() => {}
            _ = wake.notified() => {}
            _ = tokio::time::sleep(TICK) => {}
        }
    }
}

/// One leased poll: runs it and records the outcome.
async fn run_one(st: AppState, client: DeliveryClient, owner: String, state: PollState) {
    let now = now_millis();
    let source = match st.store().find_source(&state.source_id).await {
        Ok(Some(s)) => s,
        Ok(None) => {
            let _ = st
                .store()
                .schedule_poll(&state.source_id, &state.app_id, None)
                .await;
            return;
        }
        Err(e) => {
            finish(&st, &state, &owner, now, 0, Err(format!("storage: {e}"))).await;
            return;
        }
    };
    let plan = match source.options.poll.as_ref().map(|p| p.plan()) {
        Some(Ok(plan)) => plan,
        Some(Err(problems)) => {
            let why = problems
                .iter()
                .map(|(f, m)| format!("{f}: {m}"))
                .collect::<Vec<_>>();
            finish(&st, &state, &owner, now, 0, Err(why.join("; "))).await;
            return;
        }
        None => {
            let _ = st
                .store()
                .schedule_poll(&source.id, &source.app_id, None)
                .await;
            return;
        }
    };
    let run = fetch::Run {
        st: &st,
        client: &client,
        source: &source,
        plan: &plan,
        now,
    };
    let result = match tokio::time::timeout(RUN_LIMIT, run.go(state.cursor.clone())).await {
        Ok(r) => r,
        Err(_) => Err(format!(
            "the run took longer than {} s",
            RUN_LIMIT.as_secs()
        )),
    };
    match &result {
        Ok(done) => {
            crate::telemetry::source_poll_run("ok");
            tracing::debug!(source_id = %source.id, accepted = done.accepted, pages = done.pages, "reconciliation poll done");
        }
        Err(e) => {
            crate::telemetry::source_poll_run("error");
            tracing::warn!(source_id = %source.id, error = %e, "reconciliation poll failed");
        }
    }
    finish(
        &st,
        &state,
        &owner,
        now,
        plan_interval(&plan),
        result.map(|d| d.resume),
    )
    .await;
}

fn plan_interval(plan: &PollPlan) -> i64 {
    plan.interval_seconds
}

/// Records the outcome: success polls again after the interval (soon when pages are left to
/// read); failure after the backoff.
async fn finish(
    st: &AppState,
    state: &PollState,
    owner: &str,
    now: i64,
    interval_s: i64,
    result: Result<Option<String>, String>,
) {
    let interval_s = interval_s.max(MIN_INTERVAL_S);
    let next_at = match &result {
        Ok(Some(_)) => now + MIN_INTERVAL_S * 1000,
        Ok(None) => now + interval_s * 1000,
        Err(_) => now + backoff_ms(interval_s, state.failures.saturating_add(1)),
    };
    let f = PollFinish {
        source_id: state.source_id.clone(),
        owner: owner.to_string(),
        now: now_millis(),
        next_at,
        claimed_next_at: state.next_at,
        result,
    };
    if let Err(e) = st.store().finish_poll(f).await {
        tracing::warn!(source_id = %state.source_id, error = %e, "reconciliation: cannot record a poll's outcome");
    }
}
