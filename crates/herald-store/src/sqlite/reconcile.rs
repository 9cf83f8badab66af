//! [`crate::ReconcileStore`] on SQLite: the `source_poll` rows of polling sources. The types
//! and what both backends share are `crate::reconcile`; this file only holds the SQLite
//! statements of its role. One writer thread serialises every claim, so a lease is never
//! handed out twice.

use super::*;
use crate::reconcile::{clip, PollClaim, PollFinish, PollState, ReconcileStore, POLL_COLS};

#[async_trait]
impl ReconcileStore for SqliteStore {
    async fn schedule_poll(&self, s: &SourceId, a: &AppId, at: Option<Millis>) -> Result<()> {
        let (source, app, next_at) = (s.0.clone(), a.0.clone(), at);
        self.write(move |c| {
            match next_at {
                None => exec(c, "DELETE FROM source_poll WHERE source_id = ?1", [&source])?,
                Some(at) => exec(
                    c,
                    "INSERT INTO source_poll (source_id, app_id, next_at) VALUES (?1, ?2, ?3) \
                     ON CONFLICT (source_id) DO UPDATE SET next_at = excluded.next_at, cursor = NULL",
                    params![source, app, at],
                )?,
            };
            Ok(())
        })
        .await
    }

    async fn claim_polls(&self, claim: PollClaim) -> Result<Vec<PollState>> {
        self.write(move |c| {
            c.prepare_cached(&format!(
                "UPDATE source_poll SET lease_owner = ?1, lease_until = ?2 + ?3 \
                 WHERE source_id IN (SELECT source_id FROM source_poll WHERE next_at <= ?2 \
                 AND (lease_until IS NULL OR lease_until < ?2) ORDER BY next_at LIMIT ?4) \
                 RETURNING {POLL_COLS}"
            ))
            .and_then(|mut s| {
                s.query_map(
                    params![claim.owner, claim.now, claim.lease_ms, claim.limit as i64],
                    |r| cells(r, poll_row),
                )?
                .collect::<rusqlite::Result<Vec<_>>>()
            })
            .map_err(map_sql)
        })
        .await
    }

    async fn finish_poll(&self, f: PollFinish) -> Result<()> {
        self.write(move |c| {
            let id = &f.source_id.0;
            match &f.result {
                Ok(cursor) => exec(
                    c,
                    "UPDATE source_poll SET cursor = ?3, last_success_at = ?5, \
                     next_at = CASE WHEN next_at = ?6 THEN ?4 ELSE MIN(next_at, ?4) END, \
                     failures = 0, lease_owner = NULL, lease_until = NULL \
                     WHERE source_id = ?1 AND lease_owner = ?2",
                    params![id, f.owner, cursor, f.next_at, f.now, f.claimed_next_at],
                )?,
                Err(reason) => exec(
                    c,
                    "UPDATE source_poll SET last_error = ?4, last_error_at = ?5, \
                     next_at = CASE WHEN next_at = ?6 THEN ?3 ELSE MIN(next_at, ?3) END, \
                     failures = failures + 1, lease_owner = NULL, lease_until = NULL \
                     WHERE source_id = ?1 AND lease_owner = ?2",
                    params![
                        id,
                        f.owner,
                        f.next_at,
                        clip(reason),
                        f.now,
                        f.claimed_next_at
                    ],
                )?,
            };
            Ok(())
        })
        .await
    }

    async fn poll_state(&self, source: &SourceId) -> Result<Option<PollState>> {
        let sql = format!("SELECT {POLL_COLS} FROM source_poll WHERE source_id = ?1");
        self.read_point(|c| row_opt(c, &sql, [&source.0], |r| cells(r, poll_row)))
    }

    async fn dedup_seen(&self, key: [u8; 32], since: Millis) -> Result<bool> {
        let sql = "SELECT 1 FROM inbound_dedup WHERE key = ?1 AND created_at >= ?2";
        let found = self.read_point(|c| {
            row_opt(c, sql, params![key.as_slice(), since], |r| {
                r.get::<_, i64>(0)
            })
        })?;
        Ok(found.is_some())
    }
}
