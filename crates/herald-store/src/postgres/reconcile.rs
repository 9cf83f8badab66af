//! [`crate::ReconcileStore`] on PostgreSQL: the `source_poll` rows of polling sources. The
//! types and what both backends share are `crate::reconcile`; this file only holds the
//! PostgreSQL statements of its role. Claims lock the due rows with `FOR UPDATE SKIP LOCKED`,
//! so nodes claiming at once each take different sources, and a lease keeps a running poll
//! on its node until it finishes or the lease expires.

use super::*;
use crate::reconcile::{clip, PollClaim, PollFinish, PollState, ReconcileStore, POLL_COLS};

#[async_trait]
impl ReconcileStore for PostgresStore {
    async fn schedule_poll(&self, s: &SourceId, a: &AppId, at: Option<Millis>) -> Result<()> {
        let q = match at {
            None => sqlx::query("DELETE FROM source_poll WHERE source_id = $1").bind(&s.0),
            Some(at) => sqlx::query(
                "INSERT INTO source_poll (source_id, app_id, next_at) VALUES ($1, $2, $3) \
                 ON CONFLICT (source_id) DO UPDATE SET next_at = EXCLUDED.next_at, cursor = NULL",
            )
            .bind(&s.0)
            .bind(&a.0)
            .bind(at),
        };
        q.run(&self.pool).await
    }

    async fn claim_polls(&self, claim: PollClaim) -> Result<Vec<PollState>> {
        sqlx::query(&format!(
            "UPDATE source_poll SET lease_owner = $1, lease_until = $2 + $3 \
             WHERE source_id IN (SELECT source_id FROM source_poll WHERE next_at <= $2 \
             AND (lease_until IS NULL OR lease_until < $2) ORDER BY next_at LIMIT $4 \
             FOR UPDATE SKIP LOCKED) \
             RETURNING {POLL_COLS}"
        ))
        .bind(&claim.owner)
        .bind(claim.now)
        .bind(claim.lease_ms)
        .bind(claim.limit as i64)
        .rows(&self.pool, poll_row)
        .await
    }

    async fn finish_poll(&self, f: PollFinish) -> Result<()> {
        let q = match &f.result {
            Ok(cursor) => sqlx::query(
                "UPDATE source_poll SET cursor = $3, last_success_at = $5, \
                 next_at = CASE WHEN next_at = $6 THEN $4 ELSE LEAST(next_at, $4) END, \
                 failures = 0, lease_owner = NULL, lease_until = NULL \
                 WHERE source_id = $1 AND lease_owner = $2",
            )
            .bind(&f.source_id.0)
            .bind(&f.owner)
            .bind(cursor.clone())
            .bind(f.next_at)
            .bind(f.now)
            .bind(f.claimed_next_at),
            Err(reason) => sqlx::query(
                "UPDATE source_poll SET last_error = $4, last_error_at = $5, \
                 next_at = CASE WHEN next_at = $6 THEN $3 ELSE LEAST(next_at, $3) END, \
                 failures = failures + 1, lease_owner = NULL, lease_until = NULL \
                 WHERE source_id = $1 AND lease_owner = $2",
            )
            .bind(&f.source_id.0)
            .bind(&f.owner)
            .bind(f.next_at)
            .bind(clip(reason))
            .bind(f.now)
            .bind(f.claimed_next_at),
        };
        q.run(&self.pool).await
    }

    async fn poll_state(&self, source: &SourceId) -> Result<Option<PollState>> {
        sqlx::query(&format!(
            "SELECT {POLL_COLS} FROM source_poll WHERE source_id = $1"
        ))
        .bind(&source.0)
        .row(&self.pool, poll_row)
        .await
    }

    async fn dedup_seen(&self, key: [u8; 32], since: Millis) -> Result<bool> {
        let found =
            sqlx::query("SELECT 1 AS one FROM inbound_dedup WHERE key = $1 AND created_at >= $2")
                .bind(key.as_slice())
                .bind(since)
                .row(&self.pool, |r| get::<i32>(r, "one"))
                .await?;
        Ok(found.is_some())
    }
}
