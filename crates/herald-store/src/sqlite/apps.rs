//! The [`crate::AppStore`] methods SQLite writes its own way ([`AppHooks`]): creating and replacing
//! endpoints (queue position, FIFO keys) and the 24 h chart. The rest of the role is
//! `crate::backend`'s, once for both backends; row mapping is `crate::backend::rows`'. This file
//! only holds the SQLite statements of its role.

use super::*;
use crate::HourCount;

pub(super) fn endpoint_by(
    conn: &Connection,
    app: &str,
    id_or_uid: &str,
) -> Result<Option<Endpoint>> {
    row_opt(
        conn,
        &format!("SELECT {EP_READ} FROM endpoints WHERE app_id = ?1 AND (id = ?2 OR uid = ?2)"),
        params![app, id_or_uid],
        |r| cells(r, ep_row),
    )
}

/// Finished attempts of an endpoint per hour since `?3`: a range of `attempts_endpoint
/// (endpoint_id, id)` from the first attempt ID of `?3` (`?2`) — see the
/// `endpoint_hours_read_one_index_range` test.
const HOURS_SQL: &str = "SELECT (created_at - ?3) / 3600000 AS h, status, COUNT(*) FROM attempts \
     WHERE endpoint_id = ?1 AND id >= ?2 AND created_at >= ?3 GROUP BY h, status ORDER BY h";

#[async_trait]
impl AppHooks for SqliteStore {
    async fn insert_endpoint(&self, ep: Endpoint) -> Result<Endpoint> {
        let ep = self.seal(ep);
        self.write(move |c| {
            exec(c, &marks(EP_INSERT), values(ep_args(&ep)))?;
            Ok(ep)
        })
        .await
        .and_then(|e| self.unseal(e))
    }

    async fn replace_endpoint(&self, ep: Endpoint) -> Result<Endpoint> {
        let ep = self.seal(ep);
        self.write(move |c| {
            let was = endpoint_by(c, &ep.app_id.0, &ep.id.0)?.ok_or(StoreError::NotFound)?;
            let mut ep = ep;
            if was.disabled && !ep.disabled {
                ep.paused_until = None;
            }
            exec(c, &marks(EP_UPDATE), values(ep_args(&ep)))?;
            let now = ep.updated_at;
            if was.disabled && !ep.disabled {
                // Re-enabled: the auto-disable window and the breaker start afresh, and the
                // throttle restarts with one token (no burst).
                exec(c, &format!("UPDATE endpoints SET failing_since = NULL, breaker = {CLOSED}, breaker_until = 0, \
                     breaker_cooldown = 0, consec_failures = 0, win_total = 0, win_failed = 0, \
                     prev_total = 0, prev_failed = 0, tb_tokens = 1, tb_at = ?2 WHERE id = ?1"),
                    params![&ep.id.0, now])?;
            }
            if ep.ordering == Ordering::Fifo && was.ordering != Ordering::Fifo {
                sched::fix_fifo_keys(c, &ep.id.0)?;
            }
            sched::refresh_due(c, &ep.id.0, now)?;
            ep.breaker = endpoint_by(c, &ep.app_id.0, &ep.id.0)?
                .map_or(BreakerState::Closed, |e| e.breaker);
            Ok(ep)
        })
        .await
        .and_then(|e| self.unseal(e))
    }

    async fn hour_counts(&self, ep: &EndpointId, since: Millis) -> Result<Vec<HourCount>> {
        let (ep, bound) = (ep.0.clone(), common::attempt_bound(since));
        self.read(move |c| {
            let mut stmt = c.prepare_cached(HOURS_SQL).map_err(map_sql)?;
            let rows = stmt
                .query_map(params![ep, bound, since], |r| {
                    Ok((
                        r.get::<_, i64>(0)?,
                        r.get::<_, i64>(1)?,
                        r.get::<_, u64>(2)?,
                    ))
                })
                .map_err(map_sql)?
                .collect::<std::result::Result<Vec<_>, _>>()
                .map_err(map_sql)?;
            Ok(common::hour_counts(since, rows))
        })
        .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The 24 h chart reads one range of `attempts_endpoint`, never the whole table.
    #[test]
    fn endpoint_hours_read_one_index_range() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("h.db");
        SqliteStore::open(&path).unwrap();
        let c = open_conn(&path, true).unwrap();
        let plan: Vec<String> = c
            .prepare(&format!("EXPLAIN QUERY PLAN {HOURS_SQL}"))
            .unwrap()
            .query_map(params!["ep_x", "atmpt_0", 0], |r| r.get::<_, String>(3))
            .unwrap()
            .collect::<rusqlite::Result<_>>()
            .unwrap();
        let text = plan.join("\n");
        assert!(
            text.contains("INDEX attempts_endpoint (endpoint_id=? AND id>?)"),
            "{text}"
        );
        assert!(!text.contains("SCAN attempts"), "{text}");
    }
}
