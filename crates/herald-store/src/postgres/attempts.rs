//! Attempt records for the PostgreSQL backend, written in batches.
//!
//! Every attempt record changes its endpoint's row (breaker, failing-since, queue position), so
//! it must hold that row's lock. One transaction per attempt made the endpoint row the
//! cluster's bottleneck: attempts of one endpoint committed one at a time, each holding the row
//! through a dozen round trips and a WAL flush. Here the attempts that finish while a batch is
//! being written wait for the next one, and a batch locks each of its endpoints once, writes
//! all its attempts in one statement, applies the results to each breaker in order and
//! recomputes each queue position once.
//!
//! A caller is answered only after the batch holding its record committed, so an attempt
//! answered as recorded is durable as before. When a batch fails, its records are written one
//! by one, so one bad record fails alone.
//!
//! This module owns nothing but the writing of attempt records; what an attempt means for its
//! delivery (`NextState`) is decided by the engine.

use std::sync::Arc;

use herald_core::breaker::{BreakerPolicy, BreakerState};
use herald_core::model::Attempt;
use herald_core::throttle::Bucket;
use herald_core::Millis;
use sqlx::{PgConnection, PgPool};
use tokio::sync::{mpsc, oneshot, Mutex};

use super::{map_pg, sched, Run};
use crate::status::*;
use crate::{AttemptRecord, NextState, Result, StoreError};

/// Most records written in one transaction.
const BATCH: usize = 256;
/// Transactions writing batches at the same time on one node.
const WRITERS: usize = 2;

type Reply = oneshot::Sender<Result<Option<BreakerState>>>;

/// Hands attempt records to this node's batch writers.
pub(super) struct Recorder {
    queue: mpsc::UnboundedSender<(AttemptRecord, Reply)>,
}

impl Recorder {
    /// Starts the writers; they stop when the last `Recorder` handle is dropped.
    pub(super) fn start(pool: PgPool) -> Self {
        let (queue, rx) = mpsc::unbounded_channel();
        let rx = Arc::new(Mutex::new(rx));
        for _ in 0..WRITERS {
            tokio::spawn(writer(pool.clone(), rx.clone()));
        }
        Self { queue }
    }

    /// Records one attempt; returns the breaker transition it caused, if any.
    pub(super) async fn record(&self, rec: AttemptRecord) -> Result<Option<BreakerState>> {
        let (reply, answer) = oneshot::channel();
        let stopped = || StoreError::Unavailable("the attempt writer stopped".into());
        self.queue.send((rec, reply)).map_err(|_| stopped())?;
        answer.await.map_err(|_| stopped())?
    }

    /// Records several attempts, queued together so that they share the writers' batches;
    /// answers in their order.
    pub(super) async fn record_many(
        &self,
        recs: Vec<AttemptRecord>,
    ) -> Result<Vec<Option<BreakerState>>> {
        let stopped = || StoreError::Unavailable("the attempt writer stopped".into());
        let mut answers = Vec::with_capacity(recs.len());
        for rec in recs {
            let (reply, answer) = oneshot::channel();
            self.queue.send((rec, reply)).map_err(|_| stopped())?;
            answers.push(answer);
        }
        let mut out = Vec::with_capacity(answers.len());
        for a in answers {
            out.push(a.await.map_err(|_| stopped())??);
        }
        Ok(out)
    }
}

async fn writer(pool: PgPool, rx: Arc<Mutex<mpsc::UnboundedReceiver<(AttemptRecord, Reply)>>>) {
    loop {
        let mut jobs = Vec::new();
        {
            let mut rx = rx.lock().await;
            match rx.recv().await {
                Some(job) => jobs.push(job),
                None => return,
            }
            while jobs.len() < BATCH {
                match rx.try_recv() {
                    Ok(job) => jobs.push(job),
                    Err(_) => break,
                }
            }
        }
        let recs: Vec<&AttemptRecord> = jobs.iter().map(|j| &j.0).collect();
        match write(&pool, &recs).await {
            Ok(changes) => {
                for ((_, reply), change) in jobs.into_iter().zip(changes) {
                    let _ = reply.send(Ok(change));
                }
            }
            Err(e) if jobs.len() == 1 => {
                let (_, reply) = jobs.pop().expect("one job");
                let _ = reply.send(Err(e));
            }
            Err(e) => {
                tracing::debug!(error = %e, records = jobs.len(), "attempt batch failed; writing its records one by one");
                for (rec, reply) in jobs {
                    let r = write(&pool, &[&rec]).await.map(|mut v| v.pop().flatten());
                    let _ = reply.send(r);
                }
            }
        }
    }
}

/// What a batch does to an endpoint's `failing_since`, from its records in order.
#[derive(Clone, Copy, PartialEq)]
enum Failing {
    Unchanged,
    Clear,
    /// Set when not set yet (the endpoint may be failing since earlier).
    SetIfNull(Millis),
    /// Set (it was cleared earlier in the batch).
    Set(Millis),
}

/// Writes `recs` in one transaction; the answer holds each record's breaker transition.
async fn write(pool: &PgPool, recs: &[&AttemptRecord]) -> Result<Vec<Option<BreakerState>>> {
    let mut eps: Vec<&str> = recs
        .iter()
        .map(|r| r.attempt.endpoint_id.0.as_str())
        .collect();
    eps.sort_unstable();
    eps.dedup();
    let mut tx = pool.begin().await.map_err(map_pg)?;
    // Endpoint rows first, in ID order (the lock order of every multi-endpoint writer).
    sqlx::query("SELECT id FROM endpoints WHERE id = ANY($1) ORDER BY id FOR UPDATE")
        .bind(&eps)
        .run(&mut *tx)
        .await?;
    insert_attempts(&mut tx, recs).await?;
    update_deliveries(&mut tx, recs).await?;
    let mut changes = vec![None; recs.len()];
    for ep in eps {
        update_endpoint(&mut tx, recs, ep, &mut changes).await?;
    }
    tx.commit().await.map_err(map_pg)?;
    Ok(changes)
}

/// The attempts of the batch, in one statement.
async fn insert_attempts(c: &mut PgConnection, recs: &[&AttemptRecord]) -> Result<()> {
    let attempts: Vec<&Attempt> = recs.iter().map(|r| &r.attempt).collect();
    insert_attempt_rows(c, &attempts).await
}

/// Stores `attempts` in one statement (also the acknowledgements of a polling endpoint).
pub(super) async fn insert_attempt_rows(c: &mut PgConnection, attempts: &[&Attempt]) -> Result<()> {
    let col = |f: fn(&Attempt) -> String| attempts.iter().map(|a| f(a)).collect::<Vec<_>>();
    let int = |f: fn(&Attempt) -> i64| attempts.iter().map(|a| f(a)).collect::<Vec<_>>();
    sqlx::query(
        "INSERT INTO attempts (id, msg_id, endpoint_id, app_id, delivery_id, url, response, status_code, \
         duration_ms, status, trigger_type, error, created_at) \
         SELECT * FROM UNNEST($1::text[], $2::text[], $3::text[], $4::text[], $5::bigint[], $6::text[], \
         $7::text[], $8::bigint[], $9::bigint[], $10::bigint[], $11::bigint[], $12::text[], $13::bigint[])",
    )
    .bind(col(|a| a.id.0.clone()))
    .bind(col(|a| a.msg_id.0.clone()))
    .bind(col(|a| a.endpoint_id.0.clone()))
    .bind(col(|a| a.app_id.0.clone()))
    .bind(int(|a| a.delivery_id))
    .bind(col(|a| a.url.clone()))
    .bind(col(|a| a.response.clone()))
    .bind(int(|a| a.response_status_code as i64))
    .bind(int(|a| a.response_duration_ms))
    .bind(int(|a| a.status as i64))
    .bind(int(|a| a.trigger_type as i64))
    .bind(attempts.iter().map(|a| a.error.clone()).collect::<Vec<_>>())
    .bind(int(|a| a.created_at))
    .run(c)
    .await
}

/// Each record's delivery: the common outcomes in one statement, the others one by one.
async fn update_deliveries(c: &mut PgConnection, recs: &[&AttemptRecord]) -> Result<()> {
    // The common outcomes in one statement; a delivery that appears twice in the batch, and
    // the outcomes that change the whole endpoint, one by one in order after it.
    let mut seen = std::collections::HashMap::new();
    for r in recs {
        *seen.entry(r.attempt.delivery_id).or_insert(0u32) += 1;
    }
    let (mut ids, mut status, mut failures, mut next_at, mut at) =
        (Vec::new(), Vec::new(), Vec::new(), Vec::new(), Vec::new());
    let mut one_by_one = Vec::new();
    for r in recs {
        let a = &r.attempt;
        match &r.next {
            NextState::Succeeded if seen[&a.delivery_id] == 1 => {
                ids.push(a.delivery_id);
                status.push(SUCCESS);
                failures.push(None::<i64>);
                next_at.push(None::<i64>);
                at.push(a.created_at);
            }
            NextState::RetryAt {
                at: when,
                failures: f,
            } if seen[&a.delivery_id] == 1 => {
                ids.push(a.delivery_id);
                status.push(PENDING);
                failures.push(Some(*f as i64));
                next_at.push(Some(*when));
                at.push(a.created_at);
            }
            _ => one_by_one.push(*r),
        }
    }
    if !ids.is_empty() {
        sqlx::query(
            "UPDATE deliveries d SET status = u.st, attempts = d.attempts + 1, \
             failures = COALESCE(u.f, d.failures), manual = FALSE, next_at = u.nx, \
             lease_owner = NULL, updated_at = u.t \
             FROM UNNEST($1::bigint[], $2::bigint[], $3::bigint[], $4::bigint[], $5::bigint[]) \
             AS u(id, st, f, nx, t) WHERE d.id = u.id",
        )
        .bind(&ids)
        .bind(&status)
        .bind(&failures)
        .bind(&next_at)
        .bind(&at)
        .run(&mut *c)
        .await?;
    }
    for r in one_by_one {
        apply_one(c, r).await?;
    }
    Ok(())
}

/// `ep`'s failing-since mark, breaker and queue position after the batch's attempts to it;
/// its breaker transitions land in `changes` (by record index).
async fn update_endpoint(
    c: &mut PgConnection,
    recs: &[&AttemptRecord],
    ep: &str,
    changes: &mut [Option<BreakerState>],
) -> Result<()> {
    let mut failing = Failing::Unchanged;
    let mut results = Vec::new();
    for (i, r) in recs.iter().enumerate() {
        if r.attempt.endpoint_id.0 != ep {
            continue;
        }
        let now = r.attempt.created_at;
        let success = match &r.next {
            NextState::Succeeded => true,
            NextState::RetryAt { .. } | NextState::Failed { .. } => false,
            NextState::EndpointPaused { .. } => continue,
        };
        failing = match (success, failing) {
            (true, _) => Failing::Clear,
            (false, Failing::Clear) => Failing::Set(now),
            (false, Failing::Unchanged) => Failing::SetIfNull(now),
            (false, f) => f,
        };
        if r.breaker.counts {
            results.push((i, now, success, r.breaker.policy));
        }
    }
    let (sql, at) = match failing {
        Failing::Unchanged => ("", None),
        Failing::Clear => (
            "UPDATE endpoints SET failing_since = NULL WHERE id = $1 AND failing_since IS NOT NULL",
            None,
        ),
        Failing::SetIfNull(t) => (
            "UPDATE endpoints SET failing_since = $2 WHERE id = $1 AND failing_since IS NULL",
            Some(t),
        ),
        Failing::Set(t) => (
            "UPDATE endpoints SET failing_since = $2 WHERE id = $1",
            Some(t),
        ),
    };
    if !sql.is_empty() {
        let q = sqlx::query(sql).bind(ep);
        let q = match at {
            Some(t) => q.bind(t),
            None => q,
        };
        q.run(&mut *c).await?;
    }
    if !results.is_empty() {
        for (i, to) in breaker_results(c, ep, &results).await? {
            changes[i] = Some(to);
        }
    }
    sched::refresh_due(c, ep, now_of(recs, ep)).await
}

/// The newest attempt time of `ep` in the batch: the "now" its queue position is computed at.
fn now_of(recs: &[&AttemptRecord], ep: &str) -> Millis {
    recs.iter()
        .filter(|r| r.attempt.endpoint_id.0 == ep)
        .map(|r| r.attempt.created_at)
        .max()
        .unwrap_or_default()
}

/// Applies the attempts' results, in order, to the endpoint's breaker; returns the records
/// (by index) that changed its state, and the state they changed it to.
async fn breaker_results(
    c: &mut sqlx::PgConnection,
    ep: &str,
    results: &[(usize, Millis, bool, BreakerPolicy)],
) -> Result<Vec<(usize, BreakerState)>> {
    let Some((mut breaker, rate)) = sched::load_breaker(c, ep).await? else {
        return Ok(Vec::new());
    };
    let mut out = Vec::new();
    let mut bucket_reset = None;
    for &(i, now, success, policy) in results {
        if let Some(t) = breaker.record_with(&policy, now, success) {
            if t.to == BreakerState::Closed && rate {
                bucket_reset = Some(now);
            }
            out.push((i, t.to));
        }
    }
    sched::save_breaker(c, ep, &breaker).await?;
    if let Some(now) = bucket_reset {
        sched::save_bucket(c, ep, &Bucket::fresh(now)).await?;
    }
    Ok(out)
}

/// The delivery (and endpoint) changes of one record, for the outcomes not written in bulk.
async fn apply_one(c: &mut sqlx::PgConnection, rec: &AttemptRecord) -> Result<()> {
    let a = &rec.attempt;
    let (id, now, ep) = (a.delivery_id, a.created_at, a.endpoint_id.0.as_str());
    match &rec.next {
        NextState::Succeeded => {
            sqlx::query(&format!("UPDATE deliveries SET status = {SUCCESS}, attempts = attempts + 1, manual = FALSE, next_at = NULL, lease_owner = NULL, updated_at = $2 WHERE id = $1"))
                .bind(id).bind(now).run(&mut *c).await?;
        }
        NextState::RetryAt { at, failures } => {
            sqlx::query(&format!("UPDATE deliveries SET status = {PENDING}, attempts = attempts + 1, failures = $3, manual = FALSE, next_at = $4, lease_owner = NULL, updated_at = $2 WHERE id = $1"))
                .bind(id).bind(now).bind(*failures as i64).bind(*at).run(&mut *c).await?;
        }
        NextState::Failed { disable_endpoint } => {
            sqlx::query(&format!("UPDATE deliveries SET status = {FAIL}, attempts = attempts + 1, manual = FALSE, next_at = NULL, lease_owner = NULL, updated_at = $2 WHERE id = $1"))
                .bind(id).bind(now).run(&mut *c).await?;
            if *disable_endpoint {
                sqlx::query("UPDATE endpoints SET disabled = TRUE, updated_at = $2 WHERE id = $1")
                    .bind(ep)
                    .bind(now)
                    .run(&mut *c)
                    .await?;
                sqlx::query(&format!("UPDATE deliveries SET status = {FAIL}, next_at = NULL, lease_owner = NULL, updated_at = $2 WHERE endpoint_id = $1 AND status IN ({PENDING}, {SENDING}) AND status = {PENDING}"))
                    .bind(ep).bind(now).run(&mut *c).await?;
            }
        }
        NextState::EndpointPaused { until } => {
            sqlx::query(&format!("UPDATE deliveries SET status = {PENDING}, attempts = attempts + 1, manual = FALSE, next_at = $3, lease_owner = NULL, updated_at = $2 WHERE id = $1"))
                .bind(id).bind(now).bind(*until).run(&mut *c).await?;
            sqlx::query("UPDATE endpoints SET paused_until = $2 WHERE id = $1")
                .bind(ep)
                .bind(*until)
                .run(&mut *c)
                .await?;
            sqlx::query(&format!("UPDATE deliveries SET next_at = $2 WHERE endpoint_id = $1 AND status IN ({PENDING}, {SENDING}) AND status = {PENDING} AND next_at < $2"))
                .bind(ep).bind(*until).run(&mut *c).await?;
        }
    }
    Ok(())
}
