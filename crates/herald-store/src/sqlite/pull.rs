//! [`crate::PullStore`] on SQLite: pages of a polling endpoint's held deliveries, their
//! acknowledgement, and the tokens that may only poll. What both backends share (types, the
//! acknowledgement's attempt record, why pages are stamped) is `crate::pull`; this file only
//! holds the SQLite statements of its role.

use super::*;
use crate::pull::{ack_attempt, Acked, SERVED};

/// The page read: the endpoint's pending deliveries in publish (ID) order, each with its
/// message, through the partial index `deliveries_pull (endpoint_id, id) WHERE status = 1` —
/// one indexed range scan, no sort (see the `poll_reads_one_index_range` test).
pub(crate) fn page_sql() -> String {
    format!(
        "SELECT d.id, d.msg_id, m.event_type, m.created_at, m.payload \
         FROM deliveries d JOIN messages m ON m.id = d.msg_id \
         WHERE d.endpoint_id = ?1 AND d.status = {PENDING} AND m.created_at >= ?2 \
         ORDER BY d.id LIMIT ?3"
    )
}

fn acknowledge(c: &Connection, req: &PollRequest) -> Result<u64> {
    if req.ack_upto <= 0 {
        return Ok(0);
    }
    let acked: Vec<Acked> = c
        .prepare_cached(&format!(
            "UPDATE deliveries SET status = {SUCCESS}, attempts = attempts + 1, next_at = NULL, \
             lease_owner = NULL, updated_at = ?3 \
             WHERE endpoint_id = ?1 AND status = {PENDING} AND id <= ?2 AND lease_owner = '{SERVED}' \
             RETURNING id, msg_id"
        ))
        .and_then(|mut s| {
            s.query_map(params![req.endpoint_id.0, req.ack_upto, req.now], |r| {
                Ok((r.get(0)?, r.get(1)?))
            })?
            .collect::<rusqlite::Result<Vec<_>>>()
        })
        .map_err(map_sql)?;
    for d in &acked {
        super::queue::insert_attempt(c, &ack_attempt(req, d))?;
    }
    Ok(acked.len() as u64)
}

fn read_page(c: &Connection, req: &PollRequest) -> Result<PollPage> {
    let mut events = c
        .prepare_cached(&page_sql())
        .and_then(|mut s| {
            s.query_map(
                params![req.endpoint_id.0, req.since, (req.limit + 1) as i64],
                |r| cells(r, polled_row),
            )?
            .collect::<rusqlite::Result<Vec<_>>>()
        })
        .map_err(map_sql)?;
    let has_more = events.len() > req.limit;
    events.truncate(req.limit);
    let stamp = format!(
        "UPDATE deliveries SET lease_owner = '{SERVED}' WHERE id = ?1 AND lease_owner IS NULL"
    );
    for e in &events {
        exec(c, &stamp, [e.position])?;
    }
    Ok(PollPage {
        events,
        has_more,
        acknowledged: 0,
    })
}

#[async_trait]
impl PullStore for SqliteStore {
    async fn poll_page(&self, req: PollRequest) -> Result<PollPage> {
        // The engine's kind of bookkeeping: a power loss that undoes an acknowledgement only
        // hands those events out again (a duplicate, never a loss).
        self.write_relaxed(move |c| {
            let acknowledged = acknowledge(c, &req)?;
            let page = read_page(c, &req)?;
            Ok(PollPage {
                acknowledged,
                ..page
            })
        })
        .await
    }

    async fn create_poll_token(&self, rec: PollToken, hash: [u8; 32]) -> Result<PollToken> {
        let sql = "INSERT INTO poll_tokens (hash, id, app_id, endpoint_id, created_at) VALUES (?1,?2,?3,?4,?5)";
        self.write(move |c| {
            let p = params![
                hash.as_slice(),
                rec.id.0,
                rec.app_id.0,
                rec.endpoint_id.0,
                rec.created_at
            ];
            exec(c, sql, p).map(|_| rec)
        })
        .await
    }

    async fn find_poll_token(&self, hash: [u8; 32]) -> Result<Option<PollToken>> {
        let sql = "SELECT id, app_id, endpoint_id, created_at FROM poll_tokens WHERE hash = ?1";
        self.read_point(|c| row_opt(c, sql, [hash.as_slice()], |r| cells(r, poll_token_row)))
    }

    async fn list_poll_tokens(
        &self,
        endpoint: &EndpointId,
        limit: usize,
    ) -> Result<Vec<PollToken>> {
        let ep = endpoint.0.clone();
        self.read(move |c| {
            let sql = "SELECT id, app_id, endpoint_id, created_at FROM poll_tokens \
                       WHERE endpoint_id = ?1 ORDER BY created_at, id LIMIT ?2";
            c.prepare_cached(sql)
                .and_then(|mut s| {
                    s.query_map(params![ep, limit as i64], |r| cells(r, poll_token_row))?
                        .collect::<rusqlite::Result<Vec<_>>>()
                })
                .map_err(map_sql)
        })
        .await
    }

    async fn delete_poll_token(&self, endpoint: &EndpointId, id: &str) -> Result<bool> {
        let (ep, id) = (endpoint.0.clone(), id.to_string());
        self.write(move |c| {
            let sql = "DELETE FROM poll_tokens WHERE endpoint_id = ?1 AND id = ?2";
            exec(c, sql, params![ep, id]).map(|n| n > 0)
        })
        .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// One poll of 100 events is one range scan of `deliveries_pull` in ID order (no sort,
    /// no scan of the queue), plus a primary-key lookup of each message.
    #[tokio::test]
    async fn poll_reads_one_index_range() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("h.db");
        SqliteStore::open(&path).unwrap();
        let c = open_conn(&path, true).unwrap();
        let plan: Vec<String> = c
            .prepare(&format!("EXPLAIN QUERY PLAN {}", page_sql()))
            .unwrap()
            .query_map(params!["ep_x", 0, 101], |r| r.get::<_, String>(3))
            .unwrap()
            .collect::<rusqlite::Result<_>>()
            .unwrap();
        let text = plan.join("\n");
        assert!(
            text.contains("USING INDEX deliveries_pull (endpoint_id=?)")
                || text.contains("USING COVERING INDEX deliveries_pull (endpoint_id=?)"),
            "{text}"
        );
        assert!(
            text.contains("USING INDEX sqlite_autoindex_messages_1 (id=?)"),
            "{text}"
        );
        assert!(!text.contains("TEMP B-TREE"), "no sort: {text}");
    }
}
