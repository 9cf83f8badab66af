//! [`crate::InboundStore`] on PostgreSQL: inbound sources, ingestion (dedup, ordering holds), the
//! request log and quarantine. Row mapping stays in `rows.rs` and decisions both backends share in
//! `crate::common`; this file only holds the PostgreSQL statements of its role.

use super::*;

pub(super) async fn insert_inbound(c: &mut PgConnection, q: &InboundRequest) -> Result<()> {
    let sql = format!(
        "INSERT INTO inbound_requests ({INREQ_COLS}) VALUES ($1,$2,$3,$4,$5,$6,$7,$8,$9,$10)"
    );
    sqlx::query(&sql)
        .bind(&q.id.0)
        .bind(&q.source_id.0)
        .bind(&q.app_id.0)
        .bind(q.status.as_str())
        .bind(&q.reason)
        .bind(q.msg_id.as_ref().map(|m| m.0.clone()))
        .bind(json(&q.headers))
        .bind(&q.body)
        .bind(&q.event_type)
        .bind(q.created_at)
        .run(c)
        .await?;
    Ok(())
}

/// What one ingestion commits: the request, its dedup and ordering checks, and its message.
pub(super) type Ingestion = (
    InboundRequest,
    Option<DedupCheck>,
    Message,
    Option<OrderCheck>,
);

impl PostgresStore {
    /// The ingestion transaction itself: dedup key, ordering state, message and request log
    /// row, committed together (also the replay of a spooled ingestion).
    pub(super) async fn ingest_db(&self, work: Ingestion) -> Result<IngestOutcome> {
        let (mut req, dedup, msg, order) = work;
        let r: Result<IngestOutcome> = async {
            let mut tx = self.begin().await?;
            if let Some(d) = dedup {
                // Claims the key, or finds who holds it within the window. The row lock makes a
                // concurrent duplicate (on any node) wait for this transaction, then see the key.
                let claimed: Option<String> = sqlx::query_scalar(
                    "INSERT INTO inbound_dedup (key, msg_id, created_at) VALUES ($1, $2, $3) \
                     ON CONFLICT (key) DO UPDATE SET msg_id = EXCLUDED.msg_id, created_at = EXCLUDED.created_at \
                     WHERE inbound_dedup.created_at < $4 RETURNING msg_id",
                )
                .bind(d.key.as_slice())
                .bind(&msg.id.0)
                .bind(req.created_at)
                .bind(d.since)
                .fetch_optional(&mut *tx)
                .await
                .map_err(map_pg)?;
                if claimed.is_none() {
                    let first: String =
                        sqlx::query_scalar("SELECT msg_id FROM inbound_dedup WHERE key = $1")
                            .bind(d.key.as_slice())
                            .fetch_one(&mut *tx)
                            .await
                            .map_err(map_pg)?;
                    let out = common::duplicate(&mut req, first);
                    insert_inbound(&mut tx, &req).await?;
                    tx.commit().await.map_err(map_pg)?;
                    return Ok(out);
                }
            }
            let source = req.source_id.0.clone();
            if let Some(o) = &order {
                let last = order::lock_last(&mut tx, o.key_of(&source)).await?;
                let held = order::is_held(&mut tx, &source, o).await?;
                let decision = common::order_decision(held, last, o);
                match decision {
                    None | Some(herald_core::ordering::Decision::Stale) => {
                        if let Some(d) = dedup {
                            // Give the key back: a retry of a stale event is stale again.
                            let sql = "DELETE FROM inbound_dedup WHERE key = $1";
                            sqlx::query(sql)
                                .bind(d.key.as_slice())
                                .execute(&mut *tx)
                                .await
                                .map_err(map_pg)?;
                        }
                        let out = common::stale(&mut req, o, decision, last);
                        insert_inbound(&mut tx, &req).await?;
                        tx.commit().await.map_err(map_pg)?;
                        return Ok(out);
                    }
                    Some(herald_core::ordering::Decision::Hold) => {
                        order::hold(&mut tx, &req, o, &msg).await?;
                        let out = common::held(&mut req, &msg.id, last);
                        insert_inbound(&mut tx, &req).await?;
                        tx.commit().await.map_err(map_pg)?;
                        return Ok(out);
                    }
                    Some(herald_core::ordering::Decision::Accept) => {}
                }
            }
            let out = common::accepted(&mut req, &msg.id);
            publish_tx(&mut tx, msg, None).await?;
            insert_inbound(&mut tx, &req).await?;
            if let Some(o) = &order {
                let k = o.key_of(&source);
                order::set_last(&mut tx, k, o.seq).await?;
                order::release_key(&mut tx, k, o.seq, None, req.created_at).await?;
            }
            tx.commit().await.map_err(map_pg)?;
            Ok(out)
        }
        .await;
        self.write_health.observe(&r);
        r
    }
}

#[async_trait]
impl InboundStore for PostgresStore {
    async fn create_source(&self, s: Source) -> Result<Source> {
        self.insert(self.seal_source(s.clone())).await?;
        Ok(s)
    }

    async fn get_source(&self, app: &AppId, id_or_uid: &str) -> Result<Option<Source>> {
        let sql =
            format!("SELECT {SRC_COLS} FROM sources WHERE app_id = $1 AND (id = $2 OR uid = $2)");
        sqlx::query(&sql)
            .bind(&app.0)
            .bind(id_or_uid)
            .row(&self.pool, |r| {
                src_row(r).and_then(|s| self.unseal_source(s))
            })
            .await
    }

    async fn find_source(&self, id: &SourceId) -> Result<Option<Source>> {
        // Remembered as stored (sealed), unsealed for the caller only.
        let sql = format!("SELECT {SRC_COLS} FROM sources WHERE id = $1");
        let read = sqlx::query(&sql).bind(&id.0).row(&self.pool, src_row);
        let note = |s: &Option<Source>| match s {
            Some(s) => remember(&self.seen.sources, id.0.clone(), s.clone()),
            // Deleted (or never existed): forget it at once.
            None => {
                self.seen.sources.lock().remove(&id.0);
            }
        };
        let seen = || self.seen.sources.lock().get(&id.0).cloned().map(Some);
        let s = self.read_or_seen(read, note, seen).await?;
        s.map(|s| self.unseal_source(s)).transpose()
    }

    async fn list_sources(&self, app: &AppId, q: &ListQuery) -> Result<Page<Source>> {
        let l = Listing::of_app(format!("SELECT {SRC_COLS} FROM sources"), app);
        let page = query_page(&self.pool, l, q, src_row).await?;
        page.try_map(|s| self.unseal_source(s))
    }

    async fn update_source(&self, s: Source) -> Result<Source> {
        self.update(self.seal_source(s.clone())).await?;
        Ok(s)
    }

    async fn delete_source(&self, app: &AppId, id: &SourceId) -> Result<()> {
        let mut tx = self.begin().await?;
        delete_of_app(&mut tx, "sources", app, &id.0).await?;
        for table in common::SOURCE_OWNED {
            let sql = format!("DELETE FROM {table} WHERE source_id = $1");
            exec(&mut tx, &sql, &id.0).await?;
        }
        tx.commit().await.map_err(map_pg)?;
        self.seen.sources.lock().remove(&id.0);
        Ok(())
    }

    async fn ingest(
        &self,
        req: InboundRequest,
        dedup: Option<DedupCheck>,
        msg: Message,
        order: Option<OrderCheck>,
    ) -> Result<IngestOutcome> {
        let Some(spool) = &self.spool else {
            return self.ingest_db((req, dedup, msg, order)).await;
        };
        // Behind anything already spooled (publishes included): one file, one order. Known
        // down (the drainer clears that within 250 ms of the database answering): no need to
        // wait for a connection attempt first.
        if spool.active() || self.is_down() {
            return self.spool_ingest(spool, req, dedup, msg, order).await;
        }
        match self
            .ingest_db((req.clone(), dedup, msg.clone(), order.clone()))
            .await
        {
            Err(StoreError::Unavailable(why)) => {
                tracing::warn!(error = %why, "database unreachable: ingesting into the local spool");
                self.mark_down();
                self.spool_ingest(spool, req, dedup, msg, order).await
            }
            other => other,
        }
    }

    async fn release_held(&self, now: Millis, max_keys: usize) -> Result<u64> {
        order::sweep(&self.pool, now, max_keys).await
    }

    async fn log_inbound(&self, req: InboundRequest) -> Result<()> {
        // During an outage the row is not spooled (rejected requests and handshakes are
        // answered without it; a quarantine answers 503 and the provider retries): fail at
        // once rather than wait for a connection on every such request. (`down` is only
        // cleared by the spool drainer, so without a spool it is not trusted here.)
        if self.spool.is_some() && self.is_down() {
            return Err(StoreError::Unavailable(
                "the database is unreachable; inbound request not logged".into(),
            ));
        }
        let mut c = self.pool.acquire().await.map_err(map_pg)?;
        insert_inbound(&mut c, &req).await
    }

    async fn list_inbound(
        &self,
        source: &SourceId,
        status: Option<InboundStatus>,
        q: &ListQuery,
    ) -> Result<Page<InboundRequest>> {
        let select = format!("SELECT {INREQ_COLS} FROM inbound_requests");
        query_page(
            &self.pool,
            page::inbound(select, source, status),
            q,
            inreq_row,
        )
        .await
    }

    async fn get_inbound(
        &self,
        source: &SourceId,
        id: &InboundRequestId,
    ) -> Result<Option<InboundRequest>> {
        let sql =
            format!("SELECT {INREQ_COLS} FROM inbound_requests WHERE source_id = $1 AND id = $2");
        row_by(&self.pool, &sql, [&source.0, &id.0], inreq_row).await
    }

    async fn release_inbound(
        &self,
        source: &SourceId,
        id: &InboundRequestId,
        msg: Message,
    ) -> Result<Published> {
        let mut tx = self.begin().await?;
        sqlx::query(
            "UPDATE inbound_requests SET status = 'released', msg_id = $3 \
             WHERE source_id = $1 AND id = $2 AND status = 'quarantined'",
        )
        .bind(&source.0)
        .bind(&id.0)
        .bind(&msg.id.0)
        .must_change(&mut *tx)
        .await?;
        let p = publish_tx(&mut tx, msg, None).await?;
        tx.commit().await.map_err(map_pg)?;
        Ok(p)
    }
}
