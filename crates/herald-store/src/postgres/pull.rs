//! [`crate::PullStore`] on PostgreSQL: pages of a polling endpoint's held deliveries, their
//! acknowledgement, and the tokens that may only poll. What both backends share (types, the
//! acknowledgement's attempt record, why pages are stamped) is `crate::pull`; this file only
//! holds the PostgreSQL statements of its role.

use super::*;
use crate::pull::{ack_attempt, Acked, SERVED};

/// The page read: the endpoint's pending deliveries in publish (ID) order, each with its
/// message, through the partial index `deliveries_pull (endpoint_id, id) WHERE status = 1`.
pub(crate) fn page_sql() -> String {
    format!(
        "SELECT d.id, d.msg_id, m.event_type, m.created_at, m.payload \
         FROM deliveries d JOIN messages m ON m.id = d.msg_id \
         WHERE d.endpoint_id = $1 AND d.status = {PENDING} AND m.created_at >= $2 \
         ORDER BY d.id LIMIT $3"
    )
}

async fn acknowledge(c: &mut PgConnection, req: &PollRequest) -> Result<u64> {
    if req.ack_upto <= 0 {
        return Ok(0);
    }
    let acked: Vec<Acked> = sqlx::query(&format!(
        "UPDATE deliveries SET status = {SUCCESS}, attempts = attempts + 1, next_at = NULL, \
         lease_owner = NULL, updated_at = $3 \
         WHERE endpoint_id = $1 AND status = {PENDING} AND id <= $2 AND lease_owner = '{SERVED}' \
         RETURNING id, msg_id"
    ))
    .bind(&req.endpoint_id.0)
    .bind(req.ack_upto)
    .bind(req.now)
    .rows(&mut *c, |r| Ok((get(r, "id")?, get(r, "msg_id")?)))
    .await?;
    if !acked.is_empty() {
        let attempts: Vec<Attempt> = acked.iter().map(|d| ack_attempt(req, d)).collect();
        let refs: Vec<&Attempt> = attempts.iter().collect();
        attempts::insert_attempt_rows(c, &refs).await?;
    }
    Ok(acked.len() as u64)
}

async fn read_page(c: &mut PgConnection, req: &PollRequest) -> Result<PollPage> {
    let mut events = sqlx::query(&page_sql())
        .bind(&req.endpoint_id.0)
        .bind(req.since)
        .bind((req.limit + 1) as i64)
        .rows(&mut *c, polled_row)
        .await?;
    let has_more = events.len() > req.limit;
    events.truncate(req.limit);
    let ids: Vec<i64> = events.iter().map(|e| e.position).collect();
    sqlx::query(&format!(
        "UPDATE deliveries SET lease_owner = '{SERVED}' WHERE id = ANY($1) AND lease_owner IS NULL"
    ))
    .bind(&ids)
    .run(&mut *c)
    .await?;
    Ok(PollPage {
        events,
        has_more,
        acknowledged: 0,
    })
}

#[async_trait]
impl PullStore for PostgresStore {
    async fn poll_page(&self, req: PollRequest) -> Result<PollPage> {
        let mut tx = self.begin().await?;
        let acknowledged = acknowledge(&mut tx, &req).await?;
        let page = read_page(&mut tx, &req).await?;
        tx.commit().await.map_err(map_pg)?;
        Ok(PollPage {
            acknowledged,
            ..page
        })
    }

    async fn create_poll_token(&self, rec: PollToken, hash: [u8; 32]) -> Result<PollToken> {
        sqlx::query(
            "INSERT INTO poll_tokens (hash, id, app_id, endpoint_id, created_at) VALUES ($1,$2,$3,$4,$5)",
        )
        .bind(hash.as_slice())
        .bind(&rec.id.0)
        .bind(&rec.app_id.0)
        .bind(&rec.endpoint_id.0)
        .bind(rec.created_at)
        .run(&self.pool)
        .await?;
        Ok(rec)
    }

    async fn find_poll_token(&self, hash: [u8; 32]) -> Result<Option<PollToken>> {
        sqlx::query("SELECT id, app_id, endpoint_id, created_at FROM poll_tokens WHERE hash = $1")
            .bind(hash.as_slice())
            .row(&self.pool, poll_token_row)
            .await
    }

    async fn list_poll_tokens(
        &self,
        endpoint: &EndpointId,
        limit: usize,
    ) -> Result<Vec<PollToken>> {
        sqlx::query(
            "SELECT id, app_id, endpoint_id, created_at FROM poll_tokens \
             WHERE endpoint_id = $1 ORDER BY created_at, id LIMIT $2",
        )
        .bind(&endpoint.0)
        .bind(limit as i64)
        .fetch_all(&self.pool)
        .await
        .map_err(map_pg)?
        .iter()
        .map(poll_token_row)
        .collect()
    }

    async fn delete_poll_token(&self, endpoint: &EndpointId, id: &str) -> Result<bool> {
        sqlx::query("DELETE FROM poll_tokens WHERE endpoint_id = $1 AND id = $2")
            .bind(&endpoint.0)
            .bind(id)
            .affected(&self.pool)
            .await
            .map(|n| n > 0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// One poll of 100 events is one range scan of `deliveries_pull` (no sort), plus a
    /// primary-key lookup of each message. Needs `TEST_DATABASE_URL`; skipped without it.
    #[tokio::test]
    async fn poll_reads_one_index_range() {
        let Some(text) = super::plan_of(&page_sql(), "'ep_x', 0, 101").await else {
            return;
        };
        assert!(text.contains("Index Scan using deliveries_pull"), "{text}");
        assert!(text.contains("messages_pkey"), "{text}");
        assert!(!text.contains("Sort"), "no sort: {text}");
    }
}
