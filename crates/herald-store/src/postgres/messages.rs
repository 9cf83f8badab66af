//! [`crate::MessageStore`] on PostgreSQL: publishing, messages, their deliveries and the attempt
//! history. Row mapping stays in `rows.rs` and decisions both backends share in `crate::common`;
//! this file only holds the PostgreSQL statements of its role.

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
pub(super) async fn exec(c: &mut PgConnection, sql: &str, id: &str) -> Result<u64> {
    sqlx::query(sql).bind(id).affected(c).await
}

#[async_trait]
impl MessageStore for PostgresStore {
    async fn publish(&self, msg: Message, only: Option<EndpointId>) -> Result<Published> {
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

    async fn get_message(&self, app: &AppId, id_or_event_id: &str) -> Result<Option<Message>> {
        let sql = format!("SELECT {MSG_COLS} FROM messages m WHERE m.app_id = $1 AND (m.id = $2 OR m.event_id = $2)");
        row_by(&self.pool, &sql, [&app.0, id_or_event_id], msg_row).await
    }

    async fn list_messages(
        &self,
        app: &AppId,
        filter: &MessageFilter,
        q: &ListQuery,
    ) -> Result<Page<Message>> {
        let channel = "m.channels::jsonb @> jsonb_build_array(?::text)";
        let l = page::messages(
            format!("SELECT {MSG_COLS} FROM messages m"),
            app,
            filter,
            channel,
        );
        query_page(&self.pool, l, q, msg_row).await
    }

    async fn expunge_payload(&self, app: &AppId, msg: &MessageId) -> Result<()> {
        let sql = "UPDATE messages SET payload = NULL WHERE app_id = $1 AND id = $2";
        sqlx::query(sql)
            .bind(&app.0)
            .bind(&msg.0)
            .must_change(&self.pool)
            .await?;
        Ok(())
    }

    async fn deliveries_of_message(&self, msg: &MessageId) -> Result<Vec<Delivery>> {
        let sql = format!(
            "SELECT {DLV_COLS} FROM deliveries d WHERE d.msg_id = $1 ORDER BY d.endpoint_id"
        );
        let found = sqlx::query(&sql).bind(&msg.0).rows(&self.pool, dlv_row);
        found.await
    }

    async fn deliveries_of_endpoint(
        &self,
        ep: &EndpointId,
        status: Option<i64>,
        q: &ListQuery,
    ) -> Result<Page<(Delivery, Message)>> {
        let select = format!("SELECT {DLV_COLS}, {MSG_COLS} FROM {DLV_JOIN}");
        let l = page::deliveries(select, ep, status);
        query_page(&self.pool, l, q, |r| Ok((dlv_row(r)?, msg_row(r)?))).await
    }

    async fn resend(
        &self,
        app: &AppId,
        msg: &MessageId,
        ep: &EndpointId,
        now: Millis,
    ) -> Result<()> {
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

    async fn recover(
        &self,
        ep: &EndpointId,
        since: Millis,
        until: Option<Millis>,
        now: Millis,
    ) -> Result<u64> {
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

    async fn list_attempts(
        &self,
        app: &AppId,
        scope: &AttemptScope,
        filter: &AttemptFilter,
        q: &ListQuery,
    ) -> Result<Page<Attempt>> {
        let select = format!("SELECT {ATT_COLS} FROM attempts");
        query_page(
            &self.pool,
            page::attempts(select, app, scope, filter),
            q,
            att_row,
        )
        .await
    }

    async fn get_attempt(&self, app: &AppId, msg: &MessageId, id: &str) -> Result<Option<Attempt>> {
        let sql = format!(
            "SELECT {ATT_COLS} FROM attempts WHERE app_id = $1 AND msg_id = $2 AND id = $3"
        );
        sqlx::query(&sql)
            .bind(&app.0)
            .bind(&msg.0)
            .bind(id)
            .row(&self.pool, att_row)
            .await
    }
}
