//! [`crate::AppStore`] on SQLite: applications, endpoints (with their stats) and event types. Row
//! mapping stays in `rows.rs` and decisions both backends share in `crate::common`; this file only
//! holds the SQLite statements of its role.

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
        ep_row,
    )
}

/// Finished attempts of an endpoint per hour since `?3`: a range of `attempts_endpoint
/// (endpoint_id, id)` from the first attempt ID of `?3` (`?2`) — see the
/// `endpoint_hours_read_one_index_range` test.
const HOURS_SQL: &str = "SELECT (created_at - ?3) / 3600000 AS h, status, COUNT(*) FROM attempts \
     WHERE endpoint_id = ?1 AND id >= ?2 AND created_at >= ?3 GROUP BY h, status ORDER BY h";

#[async_trait]
impl AppStore for SqliteStore {
    async fn create_app(&self, app: Application) -> Result<Application> {
        self.insert(app).await
    }

    async fn get_app(&self, id_or_uid: &str) -> Result<Option<Application>> {
        let sql = format!("SELECT {APP_COLS} FROM apps WHERE id = ?1 OR uid = ?1");
        self.read_point(|c| row_opt(c, &sql, [id_or_uid], app_row))
    }

    async fn list_apps(&self, q: &ListQuery) -> Result<Page<Application>> {
        let q = q.clone();
        self.read(move |c| {
            query_page(
                c,
                Listing::new(format!("SELECT {APP_COLS} FROM apps")),
                &q,
                app_row,
            )
        })
        .await
    }

    async fn update_app(&self, app: Application) -> Result<Application> {
        self.update(app).await
    }

    async fn delete_app(&self, id: &AppId) -> Result<()> {
        let id = id.0.clone();
        self.write(move |c| {
            for table in common::APP_OWNED {
                exec(c, &format!("DELETE FROM {table} WHERE app_id = ?1"), [&id])?;
            }
            if exec(c, "DELETE FROM apps WHERE id = ?1", [&id])? == 0 {
                return Err(StoreError::NotFound);
            }
            Ok(())
        })
        .await
    }

    async fn create_endpoint(&self, ep: Endpoint) -> Result<Endpoint> {
        let ep = self.seal(ep);
        self.write(move |c| {
            let p = ep_params(&ep);
            exec(c, &format!(
                "INSERT INTO endpoints ({EP_COLS}) VALUES (?1,?2,?3,?4,?5,?6,?7,?8,?9,?10,?11,?12,?13,?14,?15,?16,?17,?18,?19,?20,?21)"
            ), rusqlite::params_from_iter(p.iter()))?;
            Ok(ep)
        })
        .await
        .and_then(|e| self.unseal(e))
    }

    async fn get_endpoint(&self, app: &AppId, id_or_uid: &str) -> Result<Option<Endpoint>> {
        let (app, key) = (app.0.clone(), id_or_uid.to_string());
        self.read(move |c| endpoint_by(c, &app, &key))
            .await?
            .map(|e| self.unseal(e))
            .transpose()
    }

    async fn list_endpoints(&self, app: &AppId, q: &ListQuery) -> Result<Page<Endpoint>> {
        let page = self.app_page(format!("SELECT {EP_READ} FROM endpoints"), app, q, ep_row);
        page.await?.try_map(|e| self.unseal(e))
    }

    async fn update_endpoint(&self, ep: Endpoint) -> Result<Endpoint> {
        let ep = self.seal(ep);
        self.write(move |c| {
            let was = endpoint_by(c, &ep.app_id.0, &ep.id.0)?.ok_or(StoreError::NotFound)?;
            let mut ep = ep;
            if was.disabled && !ep.disabled {
                ep.paused_until = None;
            }
            let p = ep_params(&ep);
            exec(c, "UPDATE endpoints SET app_id=?2, uid=?3, url=?4, description=?5, disabled=?6, event_types=?7, \
                 channels=?8, throttle_rate=?9, metadata=?10, headers=?11, retry_schedule=?12, \
                 permanent_statuses=?13, ordering=?14, max_concurrency=?15, signature_scheme=?16, \
                 secrets=?17, paused_until=?18, created_at=?19, updated_at=?20, options=?21 WHERE id=?1", rusqlite::params_from_iter(p.iter()))?;
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

    async fn delete_endpoint(&self, app: &AppId, id: &EndpointId) -> Result<()> {
        let (app, id) = (app.0.clone(), id.0.clone());
        self.write(move |c| {
            let n = exec(c, "DELETE FROM endpoints WHERE app_id = ?1 AND id = ?2",
                    [&app, &id])?;
            found(n)?;
            exec(c, &format!("DELETE FROM deliveries WHERE endpoint_id = ?1 AND status IN ({PENDING}, {SENDING})"),
                [&id])?;
            Ok(())
        })
        .await
    }

    async fn endpoint_stats(
        &self,
        ep: &EndpointId,
        since: Option<Millis>,
        until: Option<Millis>,
    ) -> Result<EndpointStats> {
        let ep = ep.0.clone();
        self.read(move |c| {
            let mut stmt = c
                .prepare_cached(
                    "SELECT d.status, COUNT(*) FROM deliveries d JOIN messages m ON m.id = d.msg_id \
                     WHERE d.endpoint_id = ?1 AND m.created_at >= ?2 AND m.created_at < ?3 GROUP BY d.status",
                )
                .map_err(map_sql)?;
            let mut stats = EndpointStats::default();
            let rows = stmt
                .query_map(
                    params![ep, since.unwrap_or(i64::MIN), until.unwrap_or(i64::MAX)],
                    |r| Ok((r.get::<_, i64>(0)?, r.get::<_, u64>(1)?)),
                )
                .map_err(map_sql)?;
            for row in rows {
                let (status, n) = row.map_err(map_sql)?;
                match DeliveryStatus::from_i64(status) {
                    DeliveryStatus::Success => stats.success += n,
                    DeliveryStatus::Pending => stats.pending += n,
                    DeliveryStatus::Fail => stats.fail += n,
                    DeliveryStatus::Sending => stats.sending += n,
                }
            }
            Ok(stats)
        })
        .await
    }

    async fn endpoint_hours(&self, ep: &EndpointId, since: Millis) -> Result<Vec<HourCount>> {
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

    async fn create_event_type(&self, et: EventType) -> Result<EventType> {
        self.insert(et).await
    }

    async fn get_event_type(&self, name: &str) -> Result<Option<EventType>> {
        let sql = format!("SELECT {ET_COLS} FROM event_types WHERE name = ?1");
        self.read_point(|c| row_opt(c, &sql, [name], et_row))
    }

    async fn list_event_types(
        &self,
        q: &ListQuery,
        include_archived: bool,
    ) -> Result<Page<EventType>> {
        let select = format!("SELECT {ET_COLS} FROM event_types");
        let l = page::event_types(select, include_archived, "archived = 0");
        let q = q.clone();
        self.read(move |c| query_page(c, l, &q, et_row)).await
    }

    async fn update_event_type(&self, et: EventType) -> Result<EventType> {
        self.update(et).await
    }

    async fn delete_event_type(&self, name: &str) -> Result<()> {
        let name = name.to_string();
        self.write(move |c| {
            // Svix archives rather than deletes, so existing endpoint filters keep their meaning.
            let n = exec(
                c,
                "UPDATE event_types SET archived = 1 WHERE name = ?1",
                [name],
            )?;
            found(n)?;
            Ok(())
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
