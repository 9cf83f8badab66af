//! The PostgreSQL backend's inbound sources, ingestion (dedup, ordering holds), the request log and quarantine ([`crate::InboundStore`]).

use super::*;

pub(super) async fn insert_inbound(c: &mut PgConnection, q: &InboundRequest) -> Result<()> {
    sqlx::query(&format!(
        "INSERT INTO inbound_requests ({INREQ_COLS}) VALUES ($1,$2,$3,$4,$5,$6,$7,$8,$9,$10)"
    ))
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

#[async_trait]
impl InboundStore for PostgresStore {
    async fn create_source(&self, s: Source) -> Result<Source> {
        let sealed = self.seal_source(s.clone());
        sqlx::query(&format!(
            "INSERT INTO sources ({SRC_COLS}) VALUES ($1,$2,$3,$4,$5,$6,$7,$8,$9)"
        ))
        .bind(&sealed.id.0)
        .bind(&sealed.app_id.0)
        .bind(&sealed.uid)
        .bind(&sealed.name)
        .bind(json(&sealed.verification))
        .bind(json(&sealed.secrets))
        .bind(json(&sealed.options))
        .bind(sealed.created_at)
        .bind(sealed.updated_at)
        .run(&self.pool)
        .await?;
        Ok(s)
    }

    async fn get_source(&self, app: &AppId, id_or_uid: &str) -> Result<Option<Source>> {
        sqlx::query(&format!(
            "SELECT {SRC_COLS} FROM sources WHERE app_id = $1 AND (id = $2 OR uid = $2)"
        ))
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
        let page = query_page(
            &self.pool,
            &format!("SELECT {SRC_COLS} FROM sources"),
            vec!["app_id = ?".into()],
            vec![Arg::Text(app.0.clone())],
            q,
            ("id", "created_at"),
            src_row,
        )
        .await?;
        page.try_map(|s| self.unseal_source(s))
    }

    async fn update_source(&self, s: Source) -> Result<Source> {
        let sealed = self.seal_source(s.clone());
        sqlx::query(
            "UPDATE sources SET uid = $3, name = $4, verification = $5, secrets = $6, \
             options = $7, updated_at = $8 WHERE id = $1 AND app_id = $2",
        )
        .bind(&sealed.id.0)
        .bind(&sealed.app_id.0)
        .bind(&sealed.uid)
        .bind(&sealed.name)
        .bind(json(&sealed.verification))
        .bind(json(&sealed.secrets))
        .bind(json(&sealed.options))
        .bind(sealed.updated_at)
        .must_change(&self.pool)
        .await?;
        Ok(s)
    }

    async fn delete_source(&self, app: &AppId, id: &SourceId) -> Result<()> {
        let mut tx = self.begin().await?;
        sqlx::query("DELETE FROM sources WHERE app_id = $1 AND id = $2")
            .bind(&app.0)
            .bind(&id.0)
            .must_change(&mut *tx)
            .await?;
        for sql in [
            "DELETE FROM inbound_requests WHERE source_id = $1",
            "DELETE FROM inbound_order WHERE source_id = $1",
            "DELETE FROM inbound_held WHERE source_id = $1",
        ] {
            exec(&mut tx, sql, &id.0).await?;
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
            return self.ingest_db(req, dedup, msg, order).await;
        };
        // Behind anything already spooled (publishes included): one file, one order. Known
        // down (the drainer clears that within 250 ms of the database answering): no need to
        // wait for a connection attempt first.
        if spool.active() || self.is_down() {
            return self.spool_ingest(spool, req, dedup, msg, order).await;
        }
        match self
            .ingest_db(req.clone(), dedup, msg.clone(), order.clone())
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
        let mut conds = vec!["source_id = ?".to_string()];
        let mut args = vec![Arg::Text(source.0.clone())];
        if let Some(s) = status {
            conds.push("status = ?".into());
            args.push(Arg::Text(s.as_str().into()));
        }
        query_page(
            &self.pool,
            &format!("SELECT {INREQ_COLS} FROM inbound_requests"),
            conds,
            args,
            q,
            ("id", "created_at"),
            inreq_row,
        )
        .await
    }

    async fn get_inbound(
        &self,
        source: &SourceId,
        id: &InboundRequestId,
    ) -> Result<Option<InboundRequest>> {
        sqlx::query(&format!(
            "SELECT {INREQ_COLS} FROM inbound_requests WHERE source_id = $1 AND id = $2"
        ))
        .bind(&source.0)
        .bind(&id.0)
        .row(&self.pool, inreq_row)
        .await
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
