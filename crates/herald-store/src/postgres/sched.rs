//! Fair claiming for the PostgreSQL backend: the same per-endpoint queues, caps, throttle and
//! breaker as `sqlite/sched.rs` (read that module's docs; the shared storage suite holds both
//! to the same behaviour), with the locking a cluster needs.
//!
//! A claim locks the endpoint rows it serves with `FOR UPDATE SKIP LOCKED`: while one node
//! serves an endpoint, other nodes skip it and serve others, so the lease count, the token
//! bucket and the breaker of an endpoint are only ever changed by one transaction at a time.
//! Every other writer of those columns (attempt records, resend, recover, release) locks the
//! endpoint row first with [`lock`]. The decisions both backends make alike live in
//! `crate::sched`.

use herald_core::breaker::Breaker;
use herald_core::throttle::Bucket;
use herald_core::Millis;
use sqlx::{PgConnection, Row};

use super::{claimed_row, map_pg, sched_row, u32_of, Run};
use crate::common;
use crate::sched::{fifo_waits, FairRound, Gate, Sched, Turn, SCAN, SCHED_COLS};
use crate::status::*;
use crate::{Claim, ClaimBatch, Claimed, Result};

/// Locks the endpoint row for the rest of the transaction (waits for a claim holding it).
pub(super) async fn lock(c: &mut PgConnection, ep: &str) -> Result<()> {
    sqlx::query("SELECT 1 FROM endpoints WHERE id = $1 FOR UPDATE")
        .bind(ep)
        .run(c)
        .await?;
    Ok(())
}

async fn load(c: &mut PgConnection, ep: &str) -> Result<Option<Sched>> {
    sqlx::query(&format!("SELECT {SCHED_COLS} FROM endpoints WHERE id = $1"))
        .bind(ep)
        .row(c, sched_row)
        .await
}

pub(super) async fn save_breaker(c: &mut PgConnection, ep: &str, b: &Breaker) -> Result<()> {
    sqlx::query(
        "UPDATE endpoints SET breaker = $2, breaker_until = $3, breaker_cooldown = $4, \
         consec_failures = $5, win_start = $6, win_total = $7, win_failed = $8, prev_total = $9, \
         prev_failed = $10 WHERE id = $1",
    )
    .bind(ep)
    .bind(b.state as i64)
    .bind(b.open_until)
    .bind(b.cooldown_ms)
    .bind(b.consecutive_failures as i64)
    .bind(b.window_start)
    .bind(b.window_total as i64)
    .bind(b.window_failed as i64)
    .bind(b.prev_total as i64)
    .bind(b.prev_failed as i64)
    .run(c)
    .await?;
    Ok(())
}

pub(super) async fn save_bucket(c: &mut PgConnection, ep: &str, b: &Bucket) -> Result<()> {
    sqlx::query("UPDATE endpoints SET tb_tokens = $2, tb_at = $3 WHERE id = $1")
        .bind(ep)
        .bind(b.tokens)
        .bind(b.at)
        .run(c)
        .await?;
    Ok(())
}

async fn set_due(c: &mut PgConnection, ep: &str, due: Option<Millis>) -> Result<()> {
    sqlx::query("UPDATE endpoints SET due_at = $2 WHERE id = $1")
        .bind(ep)
        .bind(due)
        .run(c)
        .await?;
    Ok(())
}

/// Makes the endpoint due no later than `at`.
pub(super) async fn touch_due(c: &mut PgConnection, ep: &str, at: Millis) -> Result<()> {
    sqlx::query(
        "UPDATE endpoints SET due_at = $2 WHERE id = $1 AND (due_at IS NULL OR due_at > $2)",
    )
    .bind(ep)
    .bind(at)
    .run(c)
    .await?;
    Ok(())
}

async fn min_next(c: &mut PgConnection, ep: &str, status: i64) -> Result<Option<Millis>> {
    sqlx::query_scalar(&format!("SELECT MIN(next_at) FROM deliveries WHERE endpoint_id = $1 AND status IN ({PENDING}, {SENDING}) AND status = $2"))
        .bind(ep)
        .bind(status)
        .fetch_one(c)
        .await
        .map_err(map_pg)
}

async fn leased_now(c: &mut PgConnection, ep: &str, now: Millis) -> Result<u32> {
    let n: i64 = sqlx::query_scalar(
        &format!("SELECT COUNT(*) FROM deliveries WHERE endpoint_id = $1 AND status IN ({PENDING}, {SENDING}) AND status = {SENDING} AND next_at > $2"),
    )
    .bind(ep)
    .bind(now)
    .fetch_one(c)
    .await
    .map_err(map_pg)?;
    Ok(u32_of(n))
}

/// (id, status, next_at) of the first waiting delivery of each ordering key.
async fn fifo_heads(c: &mut PgConnection, ep: &str) -> Result<Vec<(i64, i64, Millis)>> {
    let rows = sqlx::query(&format!(
        "SELECT d.id, d.status, d.next_at FROM deliveries d JOIN \
         (SELECT MIN(id) AS id FROM deliveries \
          WHERE endpoint_id = $1 AND ordering_key IS NOT NULL AND status IN ({PENDING}, {SENDING}) \
          GROUP BY ordering_key) h ON d.id = h.id"
    ))
    .bind(ep)
    .fetch_all(c)
    .await
    .map_err(map_pg)?;
    rows.iter()
        .map(|r| {
            Ok((
                r.try_get("id").map_err(map_pg)?,
                r.try_get("status").map_err(map_pg)?,
                r.try_get("next_at").map_err(map_pg)?,
            ))
        })
        .collect()
}

async fn next_due(c: &mut PgConnection, s: &Sched, now: Millis) -> Result<Option<Millis>> {
    let (pending, lease) = if s.fifo {
        fifo_waits(&fifo_heads(c, &s.id).await?)
    } else {
        (
            min_next(c, &s.id, PENDING).await?,
            min_next(c, &s.id, SENDING).await?,
        )
    };
    let leased = match pending {
        Some(_) => Some(leased_now(c, &s.id, now).await?),
        None => None,
    };
    Ok(s.due(pending, lease, leased))
}

/// Recomputes the endpoint's queue position. The caller holds the endpoint row lock.
pub(super) async fn refresh_due(c: &mut PgConnection, ep: &str, now: Millis) -> Result<()> {
    if let Some(s) = load(c, ep).await? {
        let due = next_due(c, &s, now).await?;
        set_due(c, ep, due).await?;
    }
    Ok(())
}

pub(super) async fn fix_fifo_keys(c: &mut PgConnection, ep: &str) -> Result<()> {
    sqlx::query(&format!(
        "UPDATE deliveries SET ordering_key = COALESCE( \
           (SELECT m.ordering_key FROM messages m WHERE m.id = deliveries.msg_id), '') \
         WHERE endpoint_id = $1 AND status IN ({PENDING}, {SENDING}) AND ordering_key IS NULL"
    ))
    .bind(ep)
    .run(c)
    .await?;
    Ok(())
}

pub(super) async fn fix_fifo_keys_if_fifo(c: &mut PgConnection, ep: &str) -> Result<()> {
    match load(c, ep).await? {
        Some(s) if s.fifo => fix_fifo_keys(c, ep).await,
        _ => Ok(()),
    }
}

async fn candidates(c: &mut PgConnection, s: &Sched, now: Millis, want: u32) -> Result<Vec<i64>> {
    if s.fifo {
        return Ok(common::fifo_candidates(
            fifo_heads(c, &s.id).await?,
            now,
            want,
        ));
    }
    // Expired leases first, then pending work: each status is its own index range, and one
    // round trip asks for both (at most `want` of each, the expired ones first).
    let due = |rank: u8, status: i64| {
        format!(
            "(SELECT id, {rank} AS rank, next_at FROM deliveries WHERE endpoint_id = $1 \
             AND status IN ({PENDING}, {SENDING}) AND status = {status} AND next_at <= $2 \
             ORDER BY next_at LIMIT $3)"
        )
    };
    let sql = format!(
        "SELECT id FROM ({} UNION ALL {}) d ORDER BY rank, next_at LIMIT $3",
        due(0, SENDING),
        due(1, PENDING)
    );
    sqlx::query_scalar(&sql)
        .bind(&s.id)
        .bind(now)
        .bind(want as i64)
        .fetch_all(&mut *c)
        .await
        .map_err(map_pg)
}

async fn lease(c: &mut PgConnection, ids: &[i64], claim: &Claim) -> Result<Vec<Claimed>> {
    let rows = sqlx::query(
        &format!("UPDATE deliveries SET status = {SENDING}, next_at = $2, lease_owner = $3, updated_at = $4 \
         WHERE id = ANY($1) RETURNING id, msg_id, endpoint_id, app_id, attempts, failures, manual"),
    )
    .bind(ids)
    .bind(claim.now + claim.lease_ms)
    .bind(&claim.owner)
    .bind(claim.now)
    .fetch_all(c)
    .await
    .map_err(map_pg)?;
    let mut out: Vec<Claimed> = rows.iter().map(claimed_row).collect::<Result<_>>()?;
    // Keep the queue's order (RETURNING does not promise one).
    out.sort_by_key(|cl| ids.iter().position(|i| *i == cl.delivery_id));
    Ok(out)
}

/// Ends the waiting deliveries of a disabled endpoint `failed` (recoverable).
pub(super) async fn fail_waiting(c: &mut PgConnection, ep: &str, now: Millis) -> Result<()> {
    sqlx::query(
        &format!("UPDATE deliveries SET status = {FAIL}, next_at = NULL, lease_owner = NULL, updated_at = $2 \
         WHERE endpoint_id = $1 AND status IN ({PENDING}, {SENDING}) AND (status = {PENDING} OR next_at <= $2)"),
    )
    .bind(ep)
    .bind(now)
    .run(c)
    .await?;
    Ok(())
}

/// Most endpoints whose wake rows one claim folds in.
const FOLD: i64 = 512;

/// Folds the wake rows that publishes left (`endpoint_wakes`) into the `due_at` of their
/// endpoints — only of the endpoints this transaction can lock at once. A wake row of an
/// endpoint another transaction holds stays for a later claim: that transaction may have read
/// the endpoint's queue before the publish committed, so the row must outlive it. Wake rows of
/// deleted endpoints are dropped.
async fn fold_wakes(c: &mut PgConnection) -> Result<()> {
    sqlx::query(
        "WITH orphans AS ( \
           DELETE FROM endpoint_wakes w WHERE NOT EXISTS (SELECT 1 FROM endpoints e WHERE e.id = w.endpoint_id)), \
         locked AS ( \
           SELECT id FROM endpoints WHERE id IN (SELECT endpoint_id FROM endpoint_wakes) \
           ORDER BY id LIMIT $1 FOR UPDATE SKIP LOCKED), \
         gone AS ( \
           DELETE FROM endpoint_wakes w USING locked l WHERE w.endpoint_id = l.id \
           RETURNING w.endpoint_id, w.at) \
         UPDATE endpoints e SET due_at = LEAST(COALESCE(e.due_at, g.at), g.at) \
         FROM (SELECT endpoint_id, MIN(at) AS at FROM gone GROUP BY endpoint_id) g \
         WHERE e.id = g.endpoint_id",
    )
    .bind(FOLD)
    .run(c).await?;
    Ok(())
}

/// Leases up to `limit` due deliveries fairly across the endpoints no other node is serving.
pub(super) async fn claim(c: &mut PgConnection, claim: &Claim) -> Result<ClaimBatch> {
    fold_wakes(c).await?;
    let ready = sqlx::query(&format!(
        "SELECT {SCHED_COLS} FROM endpoints WHERE due_at <= $1 ORDER BY due_at LIMIT $2 \
         FOR UPDATE SKIP LOCKED"
    ))
    .bind(claim.now)
    .bind(SCAN as i64)
    .rows(&mut *c, sched_row)
    .await?;
    let mut round = FairRound::new(claim.limit, ready);
    let mut batch = ClaimBatch::default();
    while let Some(mut turn) = round.next(batch.claimed.len()) {
        let got = serve(c, &mut turn, claim, &mut batch).await?;
        round.served(turn, got);
    }
    Ok(batch)
}

async fn serve(
    c: &mut PgConnection,
    turn: &mut Turn,
    claim: &Claim,
    batch: &mut ClaimBatch,
) -> Result<u32> {
    let (s, now) = (&mut turn.s, claim.now);
    let (gate, change) = s.admit(now);
    if let Some(change) = change {
        save_breaker(c, &s.id, &s.breaker).await?;
        batch.breaker_changes.push(change);
    }
    let cap = match gate {
        Gate::Disabled => {
            fail_waiting(c, &s.id, now).await?;
            let due = next_due(c, s, now).await?;
            set_due(c, &s.id, due).await?;
            return Ok(0);
        }
        Gate::Wait(until) => {
            set_due(c, &s.id, Some(until)).await?;
            return Ok(0);
        }
        Gate::Serve(cap) => cap,
    };
    let free = cap.saturating_sub(leased_now(c, &s.id, now).await?);
    if free == 0 {
        let due = next_due(c, s, now).await?;
        set_due(c, &s.id, due).await?;
        return Ok(0);
    }
    let mut grant = s.grant(now, free.min(turn.take));
    let mut got = 0;
    if grant.want > 0 {
        let ids = candidates(c, s, now, grant.want).await?;
        if !ids.is_empty() {
            let leased = lease(c, &ids, claim).await?;
            got = leased.len() as u32;
            batch.claimed.extend(leased);
        }
    }
    if s.settle(&mut grant, got) {
        save_bucket(c, &s.id, &s.bucket).await?;
    }
    let due = grant.requeue(next_due(c, s, now).await?, now);
    set_due(c, &s.id, due).await?;
    Ok(got)
}

/// The endpoint's breaker, and whether it has a `throttleRate` (the caller holds the row lock).
pub(super) async fn load_breaker(
    c: &mut PgConnection,
    ep: &str,
) -> Result<Option<(Breaker, bool)>> {
    Ok(load(c, ep).await?.map(|s| (s.breaker, s.rate.is_some())))
}
