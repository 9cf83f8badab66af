//! Fair claiming for the SQLite backend: per-endpoint queues, concurrency caps, the throttle
//! bucket and the circuit breaker, all applied inside the writer's transaction.
//!
//! Each endpoint row carries `due_at`, the earliest time it may have claimable work (its queue
//! position). A claim walks the endpoints whose `due_at` has come, oldest first, gives each at
//! most its fair share, and then moves each served endpoint behind those still waiting
//! (round-robin). An endpoint at its concurrency cap is parked until its earliest lease expires
//! (an attempt that finishes sooner refreshes it at once), an open breaker until its cool-down
//! ends, a throttled one until its next token. So the walk never touches a blocked endpoint's
//! backlog, and one endpoint with a million due deliveries costs the others one row of the
//! walk. Every caller that changes an endpoint's deliveries must keep `due_at` no later than
//! the truth ([`touch_due`] or [`refresh_due`]); earlier is harmless (one wasted visit).
//!
//! The policies themselves (breaker rules, bucket arithmetic) live in `herald_core`, and the
//! decisions both backends make alike (gate, throttle grant, queue position, fair shares) in
//! `crate::sched`; this module only loads and stores their state.

use herald_core::breaker::{Breaker, BreakerState};
use herald_core::throttle::Bucket;
use herald_core::Millis;
use rusqlite::{params, Connection, OptionalExtension};

use super::{cells, claimed_row, exec, map_sql, row_opt, sched_row};
use crate::common;
use crate::sched::{fifo_waits, FairRound, Gate, Sched, Turn, SCAN, SCHED_COLS};
use crate::status::*;
use crate::{Claim, ClaimBatch, Claimed, Result};

pub(super) fn load(c: &Connection, ep: &str) -> Result<Option<Sched>> {
    c.prepare_cached(&format!("SELECT {SCHED_COLS} FROM endpoints WHERE id = ?1"))
        .map_err(map_sql)?
        .query_row([ep], |r| cells(r, sched_row))
        .optional()
        .map_err(map_sql)
}

pub(super) fn save_breaker(c: &Connection, ep: &str, b: &Breaker) -> Result<()> {
    exec(
        c,
        "UPDATE endpoints SET breaker = ?2, breaker_until = ?3, breaker_cooldown = ?4, \
         consec_failures = ?5, win_start = ?6, win_total = ?7, win_failed = ?8, prev_total = ?9, \
         prev_failed = ?10 WHERE id = ?1",
        params![
            ep,
            b.state as i64,
            b.open_until,
            b.cooldown_ms,
            b.consecutive_failures,
            b.window_start,
            b.window_total,
            b.window_failed,
            b.prev_total,
            b.prev_failed
        ],
    )?;
    Ok(())
}

pub(super) fn save_bucket(c: &Connection, ep: &str, b: &Bucket) -> Result<()> {
    exec(
        c,
        "UPDATE endpoints SET tb_tokens = ?2, tb_at = ?3 WHERE id = ?1",
        params![ep, b.tokens, b.at],
    )?;
    Ok(())
}

fn set_due(c: &Connection, ep: &str, due: Option<Millis>) -> Result<()> {
    exec(
        c,
        "UPDATE endpoints SET due_at = ?2 WHERE id = ?1",
        params![ep, due],
    )?;
    Ok(())
}

/// Makes the endpoint due no later than `at` (new or re-queued work).
pub(super) fn touch_due(c: &Connection, ep: &str, at: Millis) -> Result<()> {
    exec(
        c,
        "UPDATE endpoints SET due_at = ?2 WHERE id = ?1 AND (due_at IS NULL OR due_at > ?2)",
        params![ep, at],
    )?;
    Ok(())
}

fn scalar_opt(c: &Connection, sql: &str, p: impl rusqlite::Params) -> Result<Option<Millis>> {
    c.prepare_cached(sql)
        .and_then(|mut s| s.query_row(p, |r| r.get(0)))
        .map_err(map_sql)
}

fn leased_now(c: &Connection, ep: &str, now: Millis) -> Result<u32> {
    c.prepare_cached(
        &format!("SELECT COUNT(*) FROM deliveries WHERE endpoint_id = ?1 AND status = {SENDING} AND status IN ({PENDING}, {SENDING}) AND next_at > ?2"),
    )
    .and_then(|mut s| s.query_row(params![ep, now], |r| r.get(0)))
    .map_err(map_sql)
}

/// The first delivery of each ordering key of a FIFO endpoint: (id, status, next_at). Only
/// these may be sent; the rest wait for them.
fn fifo_heads(c: &Connection, ep: &str) -> Result<Vec<(i64, i64, Millis)>> {
    c.prepare_cached(&format!(
        "SELECT d.id, d.status, d.next_at FROM deliveries d JOIN \
         (SELECT MIN(id) AS id FROM deliveries \
          WHERE endpoint_id = ?1 AND ordering_key IS NOT NULL AND status IN ({PENDING}, {SENDING}) \
          GROUP BY ordering_key) h ON d.id = h.id"
    ))
    .and_then(|mut s| {
        s.query_map([ep], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?
            .collect::<rusqlite::Result<Vec<_>>>()
    })
    .map_err(map_sql)
}

/// Earliest time the endpoint may have something to claim, ignoring the throttle (a claim
/// finds that out and parks the endpoint until its next token).
fn next_due(c: &Connection, s: &Sched, now: Millis) -> Result<Option<Millis>> {
    next_due_counting(c, s, now, true)
}

/// [`next_due`]; without `count_leases` the endpoint is taken to be below its cap, which gives
/// a time no later than the truth.
fn next_due_counting(
    c: &Connection,
    s: &Sched,
    now: Millis,
    count_leases: bool,
) -> Result<Option<Millis>> {
    let (pending, lease) = if s.fifo {
        fifo_waits(&fifo_heads(c, &s.id)?)
    } else {
        (
            scalar_opt(
                c,
                &format!("SELECT MIN(next_at) FROM deliveries WHERE endpoint_id = ?1 AND status = {PENDING} AND status IN ({PENDING}, {SENDING})"),
                [&s.id],
            )?,
            scalar_opt(
                c,
                &format!("SELECT MIN(next_at) FROM deliveries WHERE endpoint_id = ?1 AND status = {SENDING} AND status IN ({PENDING}, {SENDING})"),
                [&s.id],
            )?,
        )
    };
    let leased = match pending {
        Some(_) if count_leases => Some(leased_now(c, &s.id, now)?),
        Some(_) => Some(0),
        None => None,
    };
    Ok(s.due(pending, lease, leased))
}

/// Recomputes the endpoint's queue position after its deliveries changed.
pub(super) fn refresh_due(c: &Connection, ep: &str, now: Millis) -> Result<()> {
    if let Some(s) = load(c, ep)? {
        let due = next_due(c, &s, now)?;
        set_due(c, ep, due)?;
    }
    Ok(())
}

/// [`refresh_due`] for an endpoint one of whose attempts just ended, without counting its
/// leases: the attempt gave one back, so the endpoint is taken to be below its cap. That may
/// put `due_at` earlier than the truth, which is harmless (a claim finds the endpoint full and
/// parks it), while a count per attempt made recording a batching endpoint's attempts
/// quadratic: it may hold `maxConcurrency × maxEvents` leases, and each of its attempts counted
/// them all.
pub(super) fn refresh_due_after_attempt(c: &Connection, ep: &str, now: Millis) -> Result<()> {
    if let Some(s) = load(c, ep)? {
        let due = next_due_counting(c, &s, now, false)?;
        set_due(c, ep, due)?;
    }
    Ok(())
}

/// Gives FIFO keys to an endpoint's waiting deliveries that have none (they were created
/// while the endpoint was not FIFO, or re-queued by resend/recover).
pub(super) fn fix_fifo_keys(c: &Connection, ep: &str) -> Result<()> {
    exec(
        c,
        &format!(
            "UPDATE deliveries SET ordering_key = COALESCE( \
           (SELECT m.ordering_key FROM messages m WHERE m.id = deliveries.msg_id), '') \
         WHERE endpoint_id = ?1 AND status IN ({PENDING}, {SENDING}) AND ordering_key IS NULL"
        ),
        [ep],
    )?;
    Ok(())
}

/// [`fix_fifo_keys`] when the endpoint is FIFO.
pub(super) fn fix_fifo_keys_if_fifo(c: &Connection, ep: &str) -> Result<()> {
    match load(c, ep)? {
        Some(s) if s.fifo => fix_fifo_keys(c, ep),
        _ => Ok(()),
    }
}

/// Delivery IDs of the endpoint that may be sent now, at most `want`.
fn candidates(c: &Connection, s: &Sched, now: Millis, want: u32) -> Result<Vec<i64>> {
    if s.fifo {
        return Ok(common::fifo_candidates(fifo_heads(c, &s.id)?, now, want));
    }
    let mut ids: Vec<i64> = Vec::new();
    // Expired leases first, then pending work.
    for status in [SENDING, PENDING] {
        let left = want as usize - ids.len();
        if left == 0 {
            break;
        }
        let sql = format!(
            "SELECT id FROM deliveries WHERE endpoint_id = ?1 AND status = {status} AND status IN ({PENDING}, {SENDING}) AND next_at <= ?2 \
             ORDER BY next_at LIMIT ?3"
        );
        let mut st = c.prepare_cached(&sql).map_err(map_sql)?;
        let rows = st
            .query_map(params![s.id, now, left as i64], |r| r.get(0))
            .and_then(|rows| rows.collect::<rusqlite::Result<Vec<i64>>>())
            .map_err(map_sql)?;
        ids.extend(rows);
    }
    Ok(ids)
}

fn lease(c: &Connection, id: i64, claim: &Claim) -> Result<Option<Claimed>> {
    let sql = format!(
        "UPDATE deliveries SET status = {SENDING}, next_at = ?2, lease_owner = ?3, updated_at = ?4 \
         WHERE id = ?1 RETURNING id, msg_id, endpoint_id, app_id, attempts, failures, manual"
    );
    let until = claim.now + claim.lease_ms;
    row_opt(c, &sql, params![id, until, claim.owner, claim.now], |r| {
        cells(r, claimed_row)
    })
}

/// Ends the waiting deliveries of a disabled endpoint `failed` (recoverable), never dropping
/// them. Deliveries in flight finish on their own.
pub(super) fn fail_waiting(c: &Connection, ep: &str, now: Millis) -> Result<()> {
    exec(
        c,
        &format!("UPDATE deliveries SET status = {FAIL}, next_at = NULL, lease_owner = NULL, updated_at = ?2 \
         WHERE endpoint_id = ?1 AND status IN ({PENDING}, {SENDING}) AND (status = {PENDING} OR next_at <= ?2)"),
        params![ep, now],
    )?;
    Ok(())
}

/// Leases up to `limit` due deliveries, fairly across endpoints, within every endpoint's
/// concurrency cap, throttle and breaker.
pub(super) fn claim(c: &Connection, claim: &Claim) -> Result<ClaimBatch> {
    let ready: Vec<Sched> = c
        .prepare_cached(&format!(
            "SELECT {SCHED_COLS} FROM endpoints WHERE due_at <= ?1 ORDER BY due_at LIMIT ?2"
        ))
        .and_then(|mut s| {
            s.query_map(params![claim.now, SCAN as i64], |r| cells(r, sched_row))?
                .collect::<rusqlite::Result<Vec<_>>>()
        })
        .map_err(map_sql)?;
    let mut round = FairRound::new(claim.limit, ready);
    let mut batch = ClaimBatch::default();
    while let Some(mut turn) = round.next(batch.claimed.len()) {
        let got = serve(c, &mut turn, claim, &mut batch)?;
        round.served(turn, got);
    }
    Ok(batch)
}

/// Leases up to `take` deliveries of one endpoint within its caps, then moves the endpoint to
/// its next queue position. Returns how many were leased.
fn serve(c: &Connection, turn: &mut Turn, claim: &Claim, batch: &mut ClaimBatch) -> Result<u32> {
    let (s, now) = (&mut turn.s, claim.now);
    let (gate, change) = s.admit(now);
    if let Some(change) = change {
        save_breaker(c, &s.id, &s.breaker)?;
        batch.breaker_changes.push(change);
    }
    let cap = match gate {
        Gate::Disabled => {
            fail_waiting(c, &s.id, now)?;
            let due = next_due(c, s, now)?;
            set_due(c, &s.id, due)?;
            return Ok(0);
        }
        Gate::Wait(until) => {
            set_due(c, &s.id, Some(until))?;
            return Ok(0);
        }
        Gate::Serve(cap) => cap,
    };
    let free = cap.saturating_sub(leased_now(c, &s.id, now)?);
    if free == 0 {
        let due = next_due(c, s, now)?;
        set_due(c, &s.id, due)?;
        return Ok(0);
    }
    let mut grant = s.grant(now, free.min(turn.take));
    let mut got = 0;
    if grant.want > 0 {
        for id in candidates(c, s, now, grant.want)? {
            if let Some(cl) = lease(c, id, claim)? {
                batch.claimed.push(cl);
                got += 1;
            }
        }
    }
    if s.settle(&mut grant, got) {
        save_bucket(c, &s.id, &s.bucket)?;
    }
    let due = grant.requeue(next_due(c, s, now)?, now);
    set_due(c, &s.id, due)?;
    Ok(got)
}

/// Applies an attempt's result to the endpoint's breaker. Returns the new state on a
/// transition. A breaker that closes restarts the throttle with one token (no burst).
pub(super) fn record_result(
    c: &Connection,
    ep: &str,
    now: Millis,
    success: bool,
    policy: &herald_core::breaker::BreakerPolicy,
) -> Result<Option<BreakerState>> {
    let Some(mut s) = load(c, ep)? else {
        return Ok(None);
    };
    let t = s.breaker.record_with(policy, now, success);
    save_breaker(c, ep, &s.breaker)?;
    if t.is_some_and(|t| t.to == BreakerState::Closed) && s.rate.is_some() {
        save_bucket(c, ep, &Bucket::fresh(now))?;
    }
    Ok(t.map(|t| t.to))
}
