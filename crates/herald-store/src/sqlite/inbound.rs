//! [`crate::InboundStore`] on SQLite: inbound sources, ingestion (dedup, ordering holds), the
//! request log and quarantine. Row mapping stays in `rows.rs` and decisions both backends share in
//! `crate::common`; this file only holds the SQLite statements of its role.

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
impl InboundStore for SqliteStore {
    async fn create_source(&self, s: Source) -> Result<Source> {
        self.insert(self.seal_source(s.clone())).await?;
        Ok(s)
    }

    async fn get_source(&self, app: &AppId, id_or_uid: &str) -> Result<Option<Source>> {
        let (app, key) = (app.0.clone(), id_or_uid.to_string());
        self.read(move |c| {
            row_opt(
                c,
                &format!(
                    "SELECT {SRC_COLS} FROM sources WHERE app_id = ?1 AND (id = ?2 OR uid = ?2)"
                ),
                [app, key],
                src_row,
            )
        })
        .await?
        .map(|s| s.and_then(|s| self.unseal_source(s)))
        .transpose()
    }

    async fn find_source(&self, id: &SourceId) -> Result<Option<Source>> {
        let sql = format!("SELECT {SRC_COLS} FROM sources WHERE id = ?1");
        let found = self.read_point(|c| row_opt(c, &sql, [&id.0], src_row))?;
        found
            .map(|s| s.and_then(|s| self.unseal_source(s)))
            .transpose()
    }

    async fn list_sources(&self, app: &AppId, q: &ListQuery) -> Result<Page<Source>> {
        let page = self.app_page(format!("SELECT {SRC_COLS} FROM sources"), app, q, src_row);
        page.await?
            .try_map(|s| s.and_then(|s| self.unseal_source(s)))
    }

    async fn update_source(&self, s: Source) -> Result<Source> {
        self.update(self.seal_source(s.clone())).await?;
        Ok(s)
    }

    async fn delete_source(&self, app: &AppId, id: &SourceId) -> Result<()> {
        let (app, id) = (app.0.clone(), id.0.clone());
        self.write(move |c| {
            let n = exec(
                c,
                "DELETE FROM sources WHERE app_id = ?1 AND id = ?2",
                [&app, &id],
            )?;
            found(n)?;
            for table in common::SOURCE_OWNED {
                exec(
                    c,
                    &format!("DELETE FROM {table} WHERE source_id = ?1"),
                    [&id],
                )?;
            }
            Ok(())
        })
        .await
    }

    async fn ingest(
        &self,
        req: InboundRequest,
        dedup: Option<DedupCheck>,
        msg: Message,
        order: Option<OrderCheck>,
    ) -> Result<IngestOutcome> {
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

    async fn release_held(&self, now: Millis, max_keys: usize) -> Result<u64> {
        self.write(move |c| order::sweep(c, now, max_keys)).await
    }

    async fn log_inbound(&self, req: InboundRequest) -> Result<()> {
        self.write(move |c| insert_inbound(c, &req)).await
    }

    async fn list_inbound(
        &self,
        source: &SourceId,
        status: Option<InboundStatus>,
        q: &ListQuery,
    ) -> Result<Page<InboundRequest>> {
        let select = format!("SELECT {INREQ_COLS} FROM inbound_requests");
        let (l, q) = (page::inbound(select, source, status), q.clone());
        self.read(move |c| query_page(c, l, &q, inreq_row)).await
    }

    async fn get_inbound(
        &self,
        source: &SourceId,
        id: &InboundRequestId,
    ) -> Result<Option<InboundRequest>> {
        let (source, id) = (source.0.clone(), id.0.clone());
        self.read(move |c| {
            row_opt(
                c,
                &format!(
                    "SELECT {INREQ_COLS} FROM inbound_requests WHERE source_id = ?1 AND id = ?2"
                ),
                [source, id],
                inreq_row,
            )
        })
        .await
    }

    async fn release_inbound(
        &self,
        source: &SourceId,
        id: &InboundRequestId,
        msg: Message,
    ) -> Result<Published> {
        let (source, id) = (source.0.clone(), id.0.clone());
        self.write(move |c| {
            let n = exec(
                c,
                "UPDATE inbound_requests SET status = 'released', msg_id = ?3 \
                     WHERE source_id = ?1 AND id = ?2 AND status = 'quarantined'",
                params![source, id, msg.id.0],
            )?;
            found(n)?;
            publish_in(c, msg, None)
        })
        .await
    }
}
