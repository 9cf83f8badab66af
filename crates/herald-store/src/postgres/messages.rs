//! The [`crate::MessageStore`] methods PostgreSQL writes its own way ([`MessageHooks`]): publishing
//! (wake rows, `NOTIFY`, the outage spool), resends and recoveries (endpoint row lock, queue
//! positions, FIFO keys). The reads of the role are `crate::backend`'s, once for both backends; row
//! mapping is `crate::backend::rows`'. This file only holds the PostgreSQL statements of its role.

use super::*;

/// The publish work inside the caller's transaction.
pub(super) async fn publish_tx(
    c: &mut PgConnection,
    msg: Message,
    only: Option<EndpointId>,
) -> Result<Published> {
    sqlx::query(
        "INSERT INTO messages (id, app_id, event_id, event_type, payload, channels, created_at, retention_ms, ordering_key, headers) \
         VALUES ($1,$2,$3,$4,$5,$6,$7,$8,$9,$10)",
    )
    .bind(&msg.id.0)
    .bind(&msg.app_id.0)
    .bind(&msg.event_id)
    .bind(&msg.event_type)
    .bind(&msg.payload)
    .bind(json_opt(&msg.channels))
    .bind(msg.created_at)
    .bind(msg.retention_ms)
    .bind(&msg.ordering_key)
    .bind(json_opt(&msg.headers))
    .execute(&mut *c)
    .await
    .map_err(|e| match map_pg(e) {
        StoreError::Conflict(_) => {
            StoreError::Conflict("eventId already used in this application".into())
        }
        other => other,
    })?;
    // Ordered by ID so concurrent publishes touch endpoint rows in the same order.
    let targets = sqlx::query(
        "SELECT id, event_types, channels, ordering, paused_until, \
         (options::json -> 'filter')::text AS filter FROM endpoints \
         WHERE app_id = $1 AND NOT disabled ORDER BY id",
    )
    .bind(&msg.app_id.0)
    .rows(&mut *c, target_row)
    .await?;
    let fanned = common::fan_out(&msg, only.as_ref(), &targets);
    let ep_ids: Vec<&str> = fanned.iter().map(|f| f.endpoint_id.as_str()).collect();
    let due: Vec<Millis> = fanned.iter().map(|f| f.due).collect();
    let keys: Vec<Option<&str>> = fanned.iter().map(|f| f.ordering_key.as_deref()).collect();
    let deliveries = ep_ids.len();
    if deliveries > 0 {
        // One statement each for every matching endpoint, and no endpoint row touched: the
        // wake rows tell the claims (see the migration that adds `endpoint_wakes`).
        sqlx::query(
            "INSERT INTO deliveries (msg_id, endpoint_id, app_id, status, next_at, manual, updated_at, ordering_key) \
             SELECT $1, e, $2, 1, d, FALSE, d, k FROM UNNEST($3::text[], $4::bigint[], $5::text[]) AS u(e, d, k)",
        )
        .bind(&msg.id.0)
        .bind(&msg.app_id.0)
        .bind(&ep_ids)
        .bind(&due)
        .bind(&keys)
        .run(&mut *c).await?;
        sqlx::query(
            "INSERT INTO endpoint_wakes (endpoint_id, at) SELECT * FROM UNNEST($1::text[], $2::bigint[])",
        )
        .bind(&ep_ids)
        .bind(&due)
        .run(&mut *c).await?;
        notify(&mut *c).await?;
    }
    Ok(Published {
        message: msg,
        deliveries,
    })
}
/// Queues the delivery `d` and makes its endpoint due.
pub(super) async fn insert_delivery(c: &mut PgConnection, d: NewDelivery<'_>) -> Result<()> {
    sqlx::query(
        "INSERT INTO deliveries (msg_id, endpoint_id, app_id, status, next_at, manual, updated_at, ordering_key) \
         VALUES ($1, $2, $3, 1, $4, $5, $4, $6)",
    )
    .bind(d.msg)
    .bind(d.ep)
    .bind(d.app)
    .bind(d.due)
    .bind(d.manual)
    .bind(d.ordering_key)
    .run(&mut *c).await?;
    sched::touch_due(c, d.ep, d.due).await
}
pub(super) async fn notify(c: &mut PgConnection) -> Result<()> {
    let sql = "SELECT pg_notify($1, '')";
    sqlx::query(sql).bind(WAKE_CHANNEL).run(c).await?;
    Ok(())
}

#[async_trait]
impl MessageHooks for PostgresStore {
    async fn publish_one(&self, msg: Message, only: Option<EndpointId>) -> Result<Published> {
        let Some(spool) = &self.spool else {
            return self.publish_db(msg, only).await;
        };
        if spool.active() {
            return self.spool_publish(spool, msg, only).await;
        }
        match self.publish_db(msg.clone(), only.clone()).await {
            Err(StoreError::Unavailable(why)) => {
                tracing::warn!(error = %why, "database unreachable: publishing into the local spool");
                self.mark_down();
                self.spool_publish(spool, msg, only).await
            }
            other => other,
        }
    }

    async fn resend_one(&self, r: Resend<'_>) -> Result<()> {
        let Resend { app, msg, ep, now } = r;
        let mut tx = self.begin().await?;
        sched::lock(&mut tx, &ep.0).await?;
        let n = sqlx::query(
            &format!("UPDATE deliveries SET status = {PENDING}, failures = 0, manual = TRUE, next_at = $3, lease_owner = NULL, updated_at = $3 \
             WHERE msg_id = $1 AND endpoint_id = $2 AND status != {SENDING}"),
        )
        .bind(&msg.0)
        .bind(&ep.0)
        .bind(now)
        .affected(&mut *tx).await?;
        if n == 0 {
            let exists: bool = sqlx::query_scalar(
                "SELECT EXISTS (SELECT 1 FROM deliveries WHERE msg_id = $1 AND endpoint_id = $2)",
            )
            .bind(&msg.0)
            .bind(&ep.0)
            .fetch_one(&mut *tx)
            .await
            .map_err(map_pg)?;
            // An attempt is in flight already: the resend is satisfied by it.
            if !exists {
                let d = NewDelivery::resend(&msg.0, &ep.0, &app.0, now);
                insert_delivery(&mut tx, d).await?;
            }
        }
        sched::fix_fifo_keys_if_fifo(&mut tx, &ep.0).await?;
        sched::touch_due(&mut tx, &ep.0, now).await?;
        notify(&mut tx).await?;
        tx.commit().await.map_err(map_pg)
    }

    async fn recover_failed(&self, r: Recover<'_>) -> Result<u64> {
        let Recover {
            ep,
            since,
            until,
            now,
        } = r;
        let mut tx = self.begin().await?;
        sched::lock(&mut tx, &ep.0).await?;
        let n = sqlx::query(
            &format!("UPDATE deliveries SET status = {PENDING}, failures = 0, next_at = $4, updated_at = $4 \
             WHERE endpoint_id = $1 AND status = {FAIL} AND msg_id IN \
             (SELECT id FROM messages WHERE created_at >= $2 AND created_at < $3)"),
        )
        .bind(&ep.0)
        .bind(since)
        .bind(until.unwrap_or(i64::MAX))
        .bind(now)
        .affected(&mut *tx)
        .await?;
        if n > 0 {
            sched::fix_fifo_keys_if_fifo(&mut tx, &ep.0).await?;
            sched::touch_due(&mut tx, &ep.0, now).await?;
            notify(&mut tx).await?;
        }
        tx.commit().await.map_err(map_pg)?;
        Ok(n)
    }
}
