//! The [`crate::InboundStore`] methods SQLite writes its own way ([`InboundHooks`]): ingestion
//! (dedup, ordering holds), the release of held events, the request log's writes and the release
//! of a quarantined request. Sources and the log's reads are `crate::backend`'s, once for both
//! backends; decisions both share are in `crate::common`. This file only holds the SQLite
//! statements of its role.

use super::*;

pub(super) fn insert_inbound(c: &Connection, q: &InboundRequest) -> Result<()> {
    exec(
        c,
        &format!(
            "INSERT INTO inbound_requests ({INREQ_COLS}) VALUES (?1,?2,?3,?4,?5,?6,?7,?8,?9,?10)"
        ),
        params![
            q.id.0,
            q.source_id.0,
            q.app_id.0,
            q.status.as_str(),
            q.reason,
            q.msg_id.as_ref().map(|m| m.0.clone()),
            json(&q.headers),
            q.body,
            q.event_type,
            q.created_at
        ],
    )?;
    Ok(())
}
/// Takes an inbound dedup key for `msg` (replacing an expired holder).
pub(super) fn claim_dedup(
    c: &Connection,
    d: DedupCheck,
    msg: &MessageId,
    now: Millis,
) -> Result<()> {
    exec(
        c,
        "INSERT OR REPLACE INTO inbound_dedup (key, msg_id, created_at) VALUES (?1, ?2, ?3)",
        params![d.key.as_slice(), msg.0, now],
    )?;
    Ok(())
}

#[async_trait]
impl InboundHooks for SqliteStore {
    async fn ingest_work(&self, work: Ingestion) -> Result<IngestOutcome> {
        let (req, dedup, msg, order) = work;
        self.write(move |c| {
            let mut req = req;
            if let Some(d) = dedup {
                let first: Option<String> = c
                    .prepare_cached(
                        "SELECT msg_id FROM inbound_dedup WHERE key = ?1 AND created_at >= ?2",
                    )
                    .and_then(|mut s| {
                        s.query_row(params![d.key.as_slice(), d.since], |r| r.get(0))
                            .optional()
                    })
                    .map_err(map_sql)?;
                if let Some(first) = first {
                    let out = common::duplicate(&mut req, first);
                    insert_inbound(c, &req)?;
                    return Ok(out);
                }
            }
            // The writer thread serialises every ingest, so reading `last` here and writing it
            // below cannot interleave with another request of the same key.
            let source = req.source_id.0.clone();
            if let Some(o) = &order {
                let last = order::last_of(c, o.key_of(&source))?;
                let decision = common::order_decision(order::is_held(c, &source, o)?, last, o);
                match decision {
                    None | Some(herald_core::ordering::Decision::Stale) => {
                        // No dedup key: a retry of a stale event is stale again.
                        let out = common::stale(&mut req, o, decision, last);
                        insert_inbound(c, &req)?;
                        return Ok(out);
                    }
                    Some(herald_core::ordering::Decision::Hold) => {
                        if let Some(d) = dedup {
                            claim_dedup(c, d, &msg.id, req.created_at)?;
                        }
                        order::hold(c, &req, o, &msg)?;
                        let out = common::held(&mut req, &msg.id, last);
                        insert_inbound(c, &req)?;
                        return Ok(out);
                    }
                    Some(herald_core::ordering::Decision::Accept) => {}
                }
            }
            if let Some(d) = dedup {
                claim_dedup(c, d, &msg.id, req.created_at)?;
            }
            let out = common::accepted(&mut req, &msg.id);
            publish_in(c, msg, None)?;
            insert_inbound(c, &req)?;
            if let Some(o) = &order {
                let k = o.key_of(&source);
                order::set_last(c, k, o.seq)?;
                order::release_key(c, k, o.seq, None, req.created_at)?;
            }
            Ok(out)
        })
        .await
    }

    async fn sweep_held(&self, now: Millis, max_keys: usize) -> Result<u64> {
        self.write(move |c| order::sweep(c, now, max_keys)).await
    }

    async fn log_request(&self, req: InboundRequest) -> Result<()> {
        self.write(move |c| insert_inbound(c, &req)).await
    }

    async fn publish_guarded(&self, guard: Step, msg: Message) -> Result<Published> {
        self.write(move |c| {
            found(exec(c, &marks(&guard.sql), values(guard.args))?)?;
            publish_in(c, msg, None)
        })
        .await
    }
}
