//! Per-resource ordering of inbound events for the SQLite backend: the `inbound_order` state
//! (last accepted sequence per source and key) and the `inbound_held` events waiting for a gap.
//!
//! Everything here runs inside the writer's transaction (the ingest job or the sweep job), so
//! a decision and its effects — message, request log row, `last` — commit together. The rules
//! themselves are `herald_core::ordering`; this module only loads and stores their state.

use herald_core::model::{InboundRequest, Message};
use herald_core::Millis;
use rusqlite::{params, Connection, OptionalExtension};

use super::{cells, exec, held_row, json_opt, map_sql, publish_in};
use crate::common::{self, OrderKey, HELD_COLS};
use crate::{OrderCheck, Result};

/// The key's last accepted sequence (`None`: no event of this key was accepted yet).
pub(super) fn last_of(c: &Connection, k: OrderKey) -> Result<Option<i64>> {
    Ok(
        c.prepare_cached("SELECT last FROM inbound_order WHERE source_id = ?1 AND okey = ?2")
            .and_then(|mut s| {
                s.query_row(params![k.source, k.key], |r| r.get::<_, Option<i64>>(0))
                    .optional()
            })
            .map_err(map_sql)?
            .flatten(),
    )
}

/// Whether an event with this very sequence is already waiting.
pub(super) fn is_held(c: &Connection, source: &str, o: &OrderCheck) -> Result<bool> {
    c.prepare_cached("SELECT 1 FROM inbound_held WHERE source_id = ?1 AND okey = ?2 AND seq = ?3")
        .and_then(|mut s| s.exists(params![source, o.key, o.seq]))
        .map_err(map_sql)
}

pub(super) fn set_last(c: &Connection, k: OrderKey, last: i64) -> Result<()> {
    exec(
        c,
        "INSERT INTO inbound_order (source_id, okey, last) VALUES (?1, ?2, ?3) \
         ON CONFLICT (source_id, okey) DO UPDATE SET last = excluded.last",
        params![k.source, k.key, last],
    )?;
    Ok(())
}

/// Keeps `msg` (not yet a message) as the held event of the request `req`.
pub(super) fn hold(
    c: &Connection,
    req: &InboundRequest,
    o: &OrderCheck,
    msg: &Message,
) -> Result<()> {
    let now = req.created_at;
    exec(
        c,
        "INSERT INTO inbound_held (request_id, source_id, okey, seq, app_id, msg_id, event_type, \
         payload, headers, ordering_key, deadline, created_at) \
         VALUES (?1,?2,?3,?4,?5,?6,?7,?8,?9,?10,?11,?12)",
        params![
            req.id.0,
            req.source_id.0,
            o.key,
            o.seq,
            msg.app_id.0,
            msg.id.0,
            msg.event_type,
            msg.payload,
            json_opt(&msg.headers),
            msg.ordering_key,
            now + o.gap_timeout_ms,
            now
        ],
    )?;
    Ok(())
}

/// Lets a key's held events go on from `last` (see [`common::release`]): publishes each one in
/// sequence order, marks its request `accepted`, turns overtaken ones `stale`, and stores the
/// new `last`. Returns how many messages it published.
pub(super) fn release_key(
    c: &Connection,
    k: OrderKey,
    last: i64,
    force_through: Option<i64>,
    now: Millis,
) -> Result<u64> {
    let held: Vec<(String, i64)> = c
        .prepare_cached(
            "SELECT request_id, seq FROM inbound_held WHERE source_id = ?1 AND okey = ?2",
        )
        .and_then(|mut s| {
            s.query_map(params![k.source, k.key], |r| Ok((r.get(0)?, r.get(1)?)))?
                .collect::<rusqlite::Result<Vec<_>>>()
        })
        .map_err(map_sql)?;
    let Some(plan) = common::release(&held, last, force_through) else {
        return Ok(0);
    };
    for (req, reason) in &plan.stale {
        exec(
            c,
            "UPDATE inbound_requests SET status = 'stale', msg_id = NULL, reason = ?2 WHERE id = ?1",
            params![req, reason],
        )?;
        delete_held(c, req)?;
    }
    let mut published = 0;
    for req in &plan.go {
        let sql = format!("SELECT {HELD_COLS} FROM inbound_held WHERE request_id = ?1");
        let held = c
            .prepare_cached(&sql)
            .and_then(|mut s| s.query_row([req], |r| cells(r, held_row)))
            .map_err(map_sql)?;
        publish_in(c, held.into_message(k.source, now), None)?;
        exec(
            c,
            "UPDATE inbound_requests SET status = 'accepted', reason = ?2 WHERE id = ?1",
            params![req, common::HELD_REASON],
        )?;
        delete_held(c, req)?;
        published += 1;
    }
    if plan.last != last {
        set_last(c, k, plan.last)?;
    }
    Ok(published)
}

fn delete_held(c: &Connection, request_id: &str) -> Result<()> {
    exec(
        c,
        "DELETE FROM inbound_held WHERE request_id = ?1",
        [request_id],
    )?;
    Ok(())
}

/// The gap-timeout sweep (one writer job, so atomic): every key with an expired held event,
/// up to `max_keys`, releases through its highest expired sequence.
pub(super) fn sweep(c: &Connection, now: Millis, max_keys: usize) -> Result<u64> {
    let keys: Vec<(String, String, i64)> = c
        .prepare_cached(
            "SELECT source_id, okey, MAX(seq) FROM inbound_held WHERE deadline <= ?1 \
             GROUP BY source_id, okey LIMIT ?2",
        )
        .and_then(|mut s| {
            s.query_map(params![now, max_keys as i64], |r| {
                Ok((r.get(0)?, r.get(1)?, r.get(2)?))
            })?
            .collect::<rusqlite::Result<Vec<_>>>()
        })
        .map_err(map_sql)?;
    let mut published = 0;
    for (source, key, through) in keys {
        let k = OrderKey {
            source: &source,
            key: &key,
        };
        let last = last_of(c, k)?.unwrap_or(i64::MIN);
        published += release_key(c, k, last, Some(through), now)?;
    }
    Ok(published)
}
