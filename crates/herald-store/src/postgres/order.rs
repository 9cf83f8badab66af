//! Per-resource ordering of inbound events for the PostgreSQL backend: the `inbound_order`
//! state (last accepted sequence per source and key) and the `inbound_held` events waiting for a
//! gap.
//!
//! Every decision runs in the caller's transaction with the key's `inbound_order` row locked
//! (`FOR UPDATE`), so concurrent ingests and sweeps of one key — on this node or another — take
//! turns and each sees the other's committed `last` and held rows. Lock order: dedup key, then
//! the ordering row, then endpoint rows (publish). The rules are `herald_core::ordering`.

use herald_core::model::{InboundRequest, Message};
use herald_core::Millis;
use sqlx::{PgConnection, PgPool, Row};

use super::{get, held_row, json_opt, map_pg, publish_tx, Run};
use crate::common::{self, OrderKey, HELD_COLS};
use crate::{OrderCheck, Result};

/// Locks the key's state row (creating it if needed) and returns its last accepted sequence
/// (`None`: no event of this key was accepted yet).
pub(super) async fn lock_last(c: &mut PgConnection, k: OrderKey<'_>) -> Result<Option<i64>> {
    // Insert-then-lock: a concurrent first event of the key waits on the inserted row
    // instead of both seeing "no row" and both deciding alone.
    sqlx::query(
        "INSERT INTO inbound_order (source_id, okey, last) VALUES ($1, $2, NULL) \
         ON CONFLICT (source_id, okey) DO NOTHING",
    )
    .bind(k.source)
    .bind(k.key)
    .run(&mut *c)
    .await?;
    sqlx::query_scalar(
        "SELECT last FROM inbound_order WHERE source_id = $1 AND okey = $2 FOR UPDATE",
    )
    .bind(k.source)
    .bind(k.key)
    .fetch_one(&mut *c)
    .await
    .map_err(map_pg)
}

/// Whether an event with this very sequence is already waiting.
pub(super) async fn is_held(c: &mut PgConnection, source: &str, o: &OrderCheck) -> Result<bool> {
    let n: Option<i32> = sqlx::query_scalar(
        "SELECT 1 FROM inbound_held WHERE source_id = $1 AND okey = $2 AND seq = $3",
    )
    .bind(source)
    .bind(&o.key)
    .bind(o.seq)
    .fetch_optional(&mut *c)
    .await
    .map_err(map_pg)?;
    Ok(n.is_some())
}

pub(super) async fn set_last(c: &mut PgConnection, k: OrderKey<'_>, last: i64) -> Result<()> {
    sqlx::query(
        "INSERT INTO inbound_order (source_id, okey, last) VALUES ($1, $2, $3) \
         ON CONFLICT (source_id, okey) DO UPDATE SET last = EXCLUDED.last",
    )
    .bind(k.source)
    .bind(k.key)
    .bind(last)
    .run(&mut *c)
    .await?;
    Ok(())
}

/// Keeps `msg` (not yet a message) as the held event of the request `req`.
pub(super) async fn hold(
    c: &mut PgConnection,
    req: &InboundRequest,
    o: &OrderCheck,
    msg: &Message,
) -> Result<()> {
    let now = req.created_at;
    sqlx::query(
        "INSERT INTO inbound_held (request_id, source_id, okey, seq, app_id, msg_id, event_type, \
         payload, headers, ordering_key, deadline, created_at) \
         VALUES ($1,$2,$3,$4,$5,$6,$7,$8,$9,$10,$11,$12)",
    )
    .bind(&req.id.0)
    .bind(&req.source_id.0)
    .bind(&o.key)
    .bind(o.seq)
    .bind(&msg.app_id.0)
    .bind(&msg.id.0)
    .bind(&msg.event_type)
    .bind(&msg.payload)
    .bind(json_opt(&msg.headers))
    .bind(&msg.ordering_key)
    .bind(now + o.gap_timeout_ms)
    .bind(now)
    .run(&mut *c)
    .await?;
    Ok(())
}

/// Lets a key's held events go on from `last` (see [`common::release`]): publishes each one in
/// sequence order, marks its request `accepted`, turns overtaken ones `stale`, and stores the
/// new `last`. The caller holds the key's row lock. Returns how many messages it published.
pub(super) async fn release_key(
    c: &mut PgConnection,
    k: OrderKey<'_>,
    last: i64,
    force_through: Option<i64>,
    now: Millis,
) -> Result<u64> {
    let held: Vec<(String, i64)> =
        sqlx::query("SELECT request_id, seq FROM inbound_held WHERE source_id = $1 AND okey = $2")
            .bind(k.source)
            .bind(k.key)
            .fetch_all(&mut *c)
            .await
            .map_err(map_pg)?
            .iter()
            .map(|r| Ok((get(r, "request_id")?, get(r, "seq")?)))
            .collect::<Result<_>>()?;
    let Some(plan) = common::release(&held, last, force_through) else {
        return Ok(0);
    };
    for (req, reason) in &plan.stale {
        sqlx::query(
            "UPDATE inbound_requests SET status = 'stale', msg_id = NULL, reason = $2 WHERE id = $1",
        )
        .bind(req)
        .bind(reason)
        .run(&mut *c)
        .await?;
        delete_held(c, req).await?;
    }
    let mut published = 0;
    for req in &plan.go {
        let sql = format!("SELECT {HELD_COLS} FROM inbound_held WHERE request_id = $1");
        let r = sqlx::query(&sql)
            .bind(req)
            .fetch_one(&mut *c)
            .await
            .map_err(map_pg)?;
        let held = held_row(&r)?;
        publish_tx(&mut *c, held.into_message(k.source, now), None).await?;
        sqlx::query("UPDATE inbound_requests SET status = 'accepted', reason = $2 WHERE id = $1")
            .bind(req)
            .bind(common::HELD_REASON)
            .run(&mut *c)
            .await?;
        delete_held(c, req).await?;
        published += 1;
    }
    if plan.last != last {
        set_last(c, k, plan.last).await?;
    }
    Ok(published)
}

async fn delete_held(c: &mut PgConnection, request_id: &str) -> Result<()> {
    sqlx::query("DELETE FROM inbound_held WHERE request_id = $1")
        .bind(request_id)
        .run(&mut *c)
        .await?;
    Ok(())
}

/// The gap-timeout sweep: each key with an expired held event (up to `max_keys`) is released in
/// its own transaction under the key's row lock. A key another node is working on (locked) is
/// skipped and seen again at the next sweep; a key already released by another sweep finds no
/// expired event any more, so nothing is published twice.
pub(super) async fn sweep(pool: &PgPool, now: Millis, max_keys: usize) -> Result<u64> {
    let keys: Vec<(String, String)> = sqlx::query(
        "SELECT DISTINCT source_id, okey FROM inbound_held WHERE deadline <= $1 LIMIT $2",
    )
    .bind(now)
    .bind(max_keys as i64)
    .fetch_all(pool)
    .await
    .map_err(map_pg)?
    .iter()
    .map(|r| {
        Ok((
            r.try_get("source_id").map_err(map_pg)?,
            r.try_get("okey").map_err(map_pg)?,
        ))
    })
    .collect::<Result<_>>()?;
    let mut published = 0;
    for (source, key) in keys {
        let mut tx = pool.begin().await.map_err(map_pg)?;
        let locked: Option<Option<i64>> = sqlx::query_scalar(
            "SELECT last FROM inbound_order WHERE source_id = $1 AND okey = $2 \
             FOR UPDATE SKIP LOCKED",
        )
        .bind(&source)
        .bind(&key)
        .fetch_optional(&mut *tx)
        .await
        .map_err(map_pg)?;
        let Some(last) = locked else { continue };
        // Re-read under the lock: another sweep may have released these already.
        let through: Option<i64> = sqlx::query_scalar(
            "SELECT MAX(seq) FROM inbound_held WHERE source_id = $1 AND okey = $2 AND deadline <= $3",
        )
        .bind(&source)
        .bind(&key)
        .bind(now)
        .fetch_one(&mut *tx)
        .await
        .map_err(map_pg)?;
        let Some(through) = through else { continue };
        let k = OrderKey {
            source: &source,
            key: &key,
        };
        let last = last.unwrap_or(i64::MIN);
        published += release_key(&mut tx, k, last, Some(through), now).await?;
        tx.commit().await.map_err(map_pg)?;
    }
    Ok(published)
}
