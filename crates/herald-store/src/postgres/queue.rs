//! [`crate::QueueStore`] on PostgreSQL: the delivery queue: claims, attempt outcomes, releases and
//! the queue summary. Row mapping is `crate::backend::rows`' and decisions both backends share in
//! `crate::common`; this file only holds the PostgreSQL statements of its role.

use super::*;

impl PostgresStore {
    /// Hands back or ends a claimed delivery without an attempt: `sql` (`$1` the delivery, `$2`
    /// `at`) under its endpoint's lock, then the endpoint's queue position from `due`.
    async fn settle(&self, delivery_id: i64, sql: &str, at: Millis, due: Millis) -> Result<()> {
        let mut tx = self.begin().await?;
        let ep: Option<String> =
            sqlx::query_scalar("SELECT endpoint_id FROM deliveries WHERE id = $1")
                .bind(delivery_id)
                .fetch_optional(&mut *tx)
                .await
                .map_err(map_pg)?;
        if let Some(ep) = ep {
            sched::lock(&mut tx, &ep).await?;
            sqlx::query(sql)
                .bind(delivery_id)
                .bind(at)
                .run(&mut *tx)
                .await?;
            sched::refresh_due(&mut tx, &ep, due).await?;
        }
        tx.commit().await.map_err(map_pg)
    }
}

#[async_trait]
impl QueueStore for PostgresStore {
    async fn claim_due(&self, claim: Claim) -> Result<ClaimBatch> {
        let mut tx = self.begin().await?;
        let batch = sched::claim(&mut tx, &claim).await?;
        tx.commit().await.map_err(map_pg)?;
        Ok(batch)
    }

    async fn load_for_delivery(&self, claimed: &[Claimed]) -> Result<ForDelivery> {
        let (msg_ids, ep_ids) = common::referenced_ids(claimed);
        let sql = format!("SELECT {MSG_COLS} FROM messages m WHERE m.id = ANY($1)");
        let found = sqlx::query(&sql).bind(&msg_ids).rows(&self.pool, msg_row);
        let mout = found.await?.into_iter().map(|m| (m.id.clone(), m));
        let sql = format!("SELECT {EP_READ} FROM endpoints WHERE id = ANY($1)");
        let found = sqlx::query(&sql).bind(&ep_ids).rows(&self.pool, ep_row);
        let eout = found
            .await?
            .into_iter()
            .map(|e| self.unseal(e).map(|e| (e.id.clone(), e)));
        Ok((mout.collect(), eout.collect::<Result<_>>()?))
    }

    async fn record_attempt(&self, rec: AttemptRecord) -> Result<Option<BreakerState>> {
        self.attempts.record(rec).await
    }

    async fn record_attempts(&self, recs: Vec<AttemptRecord>) -> Result<Vec<Option<BreakerState>>> {
        self.attempts.record_many(recs).await
    }

    async fn release(&self, delivery_id: i64, at: Millis) -> Result<()> {
        let sql = format!("UPDATE deliveries SET status = {PENDING}, next_at = $2, lease_owner = NULL WHERE id = $1 AND status = {SENDING}");
        self.settle(delivery_id, &sql, at, at.min(now_millis()))
            .await
    }

    async fn abandon(&self, delivery_id: i64, now: Millis) -> Result<()> {
        let sql = format!("UPDATE deliveries SET status = {FAIL}, next_at = NULL, lease_owner = NULL, updated_at = $2 WHERE id = $1");
        self.settle(delivery_id, &sql, now, now).await
    }

    async fn release_leases(&self, owner: Option<&str>, now: Millis) -> Result<u64> {
        let mut tx = self.begin().await?;
        sqlx::query(
            &format!("UPDATE endpoints SET due_at = $1 WHERE id IN \
             (SELECT endpoint_id FROM deliveries WHERE status = {SENDING} AND ($2::TEXT IS NULL OR lease_owner = $2)) \
             AND (due_at IS NULL OR due_at > $1)"),
        )
        .bind(now)
        .bind(owner)
        .run(&mut *tx).await?;
        let n = sqlx::query(&format!(
            "UPDATE deliveries SET status = {PENDING}, next_at = $1, lease_owner = NULL \
             WHERE status = {SENDING} AND ($2::TEXT IS NULL OR lease_owner = $2)"
        ))
        .bind(now)
        .bind(owner)
        .affected(&mut *tx)
        .await?;
        if n > 0 {
            notify(&mut tx).await?;
        }
        tx.commit().await.map_err(map_pg)?;
        Ok(n)
    }

    async fn next_due_at(&self) -> Result<Option<Millis>> {
        // Unfolded wake rows count: they are work a claim will find.
        sqlx::query_scalar(
            "SELECT LEAST((SELECT MIN(due_at) FROM endpoints), \
             (SELECT MIN(w.at) FROM endpoint_wakes w JOIN endpoints e ON e.id = w.endpoint_id))",
        )
        .fetch_one(&self.pool)
        .await
        .map_err(map_pg)
    }

    async fn queue_summary(&self, now: Millis) -> Result<(u64, u64, Option<Millis>)> {
        let r = sqlx::query(
            &format!("SELECT COUNT(*) FILTER (WHERE next_at <= $1) AS due, COUNT(*) FILTER (WHERE next_at > $1) AS later, \
             MIN(next_at) FILTER (WHERE next_at <= $1 AND status = {PENDING}) AS oldest \
             FROM deliveries WHERE status IN ({PENDING}, {SENDING})"),
        )
        .bind(now)
        .fetch_one(&self.pool)
        .await
        .map_err(map_pg)?;
        Ok((
            get::<i64>(&r, "due")? as u64,
            get::<i64>(&r, "later")? as u64,
            get(&r, "oldest")?,
        ))
    }
}
