//! The [`crate::InboundStore`] methods PostgreSQL writes its own way ([`InboundHooks`]):
//! ingestion (dedup, ordering locks, the outage spool), the release of held events, the request
//! log's writes and the release of a quarantined request. Sources and the log's reads are
//! `crate::backend`'s, once for both backends; decisions both share are in `crate::common`. This
//! file only holds the PostgreSQL statements of its role.

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
impl InboundHooks for PostgresStore {
    async fn ingest_work(&self, work: Ingestion) -> Result<IngestOutcome> {
        let (req, dedup, msg, order) = work;
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

    async fn sweep_held(&self, now: Millis, max_keys: usize) -> Result<u64> {
        order::sweep(&self.pool, now, max_keys).await
    }

    async fn log_request(&self, req: InboundRequest) -> Result<()> {
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

    async fn publish_guarded(&self, guard: Step, msg: Message) -> Result<Published> {
        let mut tx = self.begin().await?;
        bound(&guard.sql, guard.args).must_change(&mut *tx).await?;
        let p = publish_tx(&mut tx, msg, None).await?;
        tx.commit().await.map_err(map_pg)?;
        Ok(p)
    }
}
