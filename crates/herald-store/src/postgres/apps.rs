//! [`crate::AppStore`] on PostgreSQL: applications, endpoints (with their stats) and event types.
//! Row mapping stays in `rows.rs` and decisions both backends share in `crate::common`; this file
//! only holds the PostgreSQL statements of its role.

use super::*;
use crate::HourCount;

pub(super) async fn endpoint_by(
    c: &mut PgConnection,
    app: &str,
    id_or_uid: &str,
) -> Result<Option<Endpoint>> {
    let sql =
        format!("SELECT {EP_COLS} FROM endpoints WHERE app_id = $1 AND (id = $2 OR uid = $2)");
    row_by(c, &sql, [app, id_or_uid], ep_row).await
}

/// Finished attempts of an endpoint per hour since `$3`: a range of `attempts_endpoint
/// (endpoint_id, id)` from the first attempt ID of `$3` (`$2`) — see the
/// `endpoint_hours_read_one_index_range` test.
const HOURS_SQL: &str = "SELECT (created_at - $3) / 3600000 AS h, status, COUNT(*) AS n \
     FROM attempts WHERE endpoint_id = $1 AND id >= $2 AND created_at >= $3 \
     GROUP BY h, status ORDER BY h";

#[async_trait]
impl AppStore for PostgresStore {
    async fn create_app(&self, app: Application) -> Result<Application> {
        self.insert(app).await
    }

    async fn get_app(&self, id_or_uid: &str) -> Result<Option<Application>> {
        let sql = format!("SELECT {APP_COLS} FROM apps WHERE id = $1 OR uid = $1");
        let read = sqlx::query(&sql).bind(id_or_uid).row(&self.pool, app_row);
        let note = |app: &Option<Application>| {
            if let Some(a) = app {
                remember(&self.seen.apps, id_or_uid.to_string(), a.clone());
            }
        };
        let seen = || self.seen.apps.lock().get(id_or_uid).cloned().map(Some);
        self.read_or_seen(read, note, seen).await
    }

    async fn list_apps(&self, q: &ListQuery) -> Result<Page<Application>> {
        query_page(
            &self.pool,
            Listing::new(format!("SELECT {APP_COLS} FROM apps")),
            q,
            app_row,
        )
        .await
    }

    async fn update_app(&self, app: Application) -> Result<Application> {
        self.update(app).await
    }

    async fn delete_app(&self, id: &AppId) -> Result<()> {
        let mut tx = self.begin().await?;
        for table in common::APP_OWNED {
            let sql = format!("DELETE FROM {table} WHERE app_id = $1");
            exec(&mut tx, &sql, &id.0).await?;
        }
        if exec(&mut tx, "DELETE FROM apps WHERE id = $1", &id.0).await? == 0 {
            return Err(StoreError::NotFound);
        }
        tx.commit().await.map_err(map_pg)
    }

    async fn create_endpoint(&self, ep: Endpoint) -> Result<Endpoint> {
        let ep = self.seal(ep);
        bind_ep(
            sqlx::query(&format!(
                "INSERT INTO endpoints ({}) VALUES ($1,$2,$3,$4,$5,$6,$7,$8,$9,$10,$11,$12,$13,$14,$15,$16,$17,$18,$19,$20,$21)",
                EP_COLS.trim_end_matches(", breaker")
            )),
            &ep,
        )
        .run(&self.pool).await?;
        self.unseal(ep)
    }

    async fn get_endpoint(&self, app: &AppId, id_or_uid: &str) -> Result<Option<Endpoint>> {
        let mut c = self.pool.acquire().await.map_err(map_pg)?;
        endpoint_by(&mut c, &app.0, id_or_uid)
            .await?
            .map(|e| self.unseal(e))
            .transpose()
    }

    async fn list_endpoints(&self, app: &AppId, q: &ListQuery) -> Result<Page<Endpoint>> {
        let l = Listing::of_app(format!("SELECT {EP_COLS} FROM endpoints"), app);
        query_page(&self.pool, l, q, ep_row)
            .await?
            .try_map(|e| self.unseal(e))
    }

    async fn update_endpoint(&self, ep: Endpoint) -> Result<Endpoint> {
        let ep = self.seal(ep);
        let mut tx = self.begin().await?;
        sched::lock(&mut tx, &ep.id.0).await?;
        let was = endpoint_by(&mut tx, &ep.app_id.0, &ep.id.0)
            .await?
            .ok_or(StoreError::NotFound)?;
        let mut ep = ep;
        if was.disabled && !ep.disabled {
            ep.paused_until = None;
        }
        bind_ep(
            sqlx::query(
                "UPDATE endpoints SET app_id=$2, uid=$3, url=$4, description=$5, disabled=$6, event_types=$7, \
                 channels=$8, throttle_rate=$9, metadata=$10, headers=$11, retry_schedule=$12, \
                 permanent_statuses=$13, ordering=$14, max_concurrency=$15, signature_scheme=$16, \
                 secrets=$17, paused_until=$18, created_at=$19, updated_at=$20, options=$21 WHERE id=$1",
            ),
            &ep,
        )
        .run(&mut *tx).await?;
        let now = ep.updated_at;
        if was.disabled && !ep.disabled {
            sqlx::query(
                &format!("UPDATE endpoints SET failing_since = NULL, breaker = {CLOSED}, breaker_until = 0, \
                 breaker_cooldown = 0, consec_failures = 0, win_total = 0, win_failed = 0, \
                 prev_total = 0, prev_failed = 0, tb_tokens = 1, tb_at = $2 WHERE id = $1"),
            )
            .bind(&ep.id.0)
            .bind(now)
            .run(&mut *tx)
            .await?;
        }
        if ep.ordering == Ordering::Fifo && was.ordering != Ordering::Fifo {
            sched::fix_fifo_keys(&mut tx, &ep.id.0).await?;
        }
        sched::refresh_due(&mut tx, &ep.id.0, now).await?;
        ep.breaker = endpoint_by(&mut tx, &ep.app_id.0, &ep.id.0)
            .await?
            .map_or(BreakerState::Closed, |e| e.breaker);
        notify(&mut tx).await?;
        tx.commit().await.map_err(map_pg)?;
        self.unseal(ep)
    }

    async fn delete_endpoint(&self, app: &AppId, id: &EndpointId) -> Result<()> {
        let mut tx = self.begin().await?;
        delete_of_app(&mut tx, "endpoints", app, &id.0).await?;
        exec(
            &mut tx,
            &format!("DELETE FROM deliveries WHERE endpoint_id = $1 AND status IN ({PENDING}, {SENDING})"),
            &id.0,
        )
        .await?;
        tx.commit().await.map_err(map_pg)
    }

    async fn endpoint_stats(
        &self,
        ep: &EndpointId,
        since: Option<Millis>,
        until: Option<Millis>,
    ) -> Result<EndpointStats> {
        let rows = sqlx::query(
            "SELECT d.status, COUNT(*) AS n FROM deliveries d JOIN messages m ON m.id = d.msg_id \
             WHERE d.endpoint_id = $1 AND m.created_at >= $2 AND m.created_at < $3 GROUP BY d.status",
        )
        .bind(&ep.0)
        .bind(since.unwrap_or(i64::MIN))
        .bind(until.unwrap_or(i64::MAX))
        .fetch_all(&self.pool)
        .await
        .map_err(map_pg)?;
        let mut stats = EndpointStats::default();
        for r in rows {
            let n = get::<i64>(&r, "n")? as u64;
            match DeliveryStatus::from_i64(get(&r, "status")?) {
                DeliveryStatus::Success => stats.success += n,
                DeliveryStatus::Pending => stats.pending += n,
                DeliveryStatus::Fail => stats.fail += n,
                DeliveryStatus::Sending => stats.sending += n,
            }
        }
        Ok(stats)
    }

    async fn endpoint_hours(&self, ep: &EndpointId, since: Millis) -> Result<Vec<HourCount>> {
        let rows = sqlx::query(HOURS_SQL)
            .bind(&ep.0)
            .bind(common::attempt_bound(since))
            .bind(since)
            .fetch_all(&self.pool)
            .await
            .map_err(map_pg)?;
        let mut counts = Vec::with_capacity(rows.len());
        for r in rows {
            let n = get::<i64>(&r, "n")? as u64;
            counts.push((get::<i64>(&r, "h")?, get::<i64>(&r, "status")?, n));
        }
        Ok(common::hour_counts(since, counts))
    }

    async fn create_event_type(&self, et: EventType) -> Result<EventType> {
        self.insert(et).await
    }

    async fn get_event_type(&self, name: &str) -> Result<Option<EventType>> {
        let sql = format!("SELECT {ET_COLS} FROM event_types WHERE name = $1");
        let read = sqlx::query(&sql).bind(name).row(&self.pool, et_row);
        let note =
            |et: &Option<EventType>| remember(&self.seen.event_types, name.to_string(), et.clone());
        let seen = || self.seen.event_types.lock().get(name).cloned();
        self.read_or_seen(read, note, seen).await
    }

    async fn list_event_types(
        &self,
        q: &ListQuery,
        include_archived: bool,
    ) -> Result<Page<EventType>> {
        let select = format!("SELECT {ET_COLS} FROM event_types");
        let l = page::event_types(select, include_archived, "NOT archived");
        query_page(&self.pool, l, q, et_row).await
    }

    async fn update_event_type(&self, et: EventType) -> Result<EventType> {
        self.update(et).await
    }

    async fn delete_event_type(&self, name: &str) -> Result<()> {
        let sql = "UPDATE event_types SET archived = TRUE WHERE name = $1";
        sqlx::query(sql).bind(name).must_change(&self.pool).await?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The 24 h chart reads one range of `attempts_endpoint`, never the whole table.
    #[tokio::test]
    async fn endpoint_hours_read_one_index_range() {
        let Some(text) = super::plan_of(HOURS_SQL, "'ep_x', 'atmpt_0', 0").await else {
            return;
        };
        assert!(text.contains("attempts_endpoint"), "{text}");
        assert!(text.contains("id >="), "the ID bounds the range: {text}");
        assert!(!text.contains("Seq Scan"), "{text}");
    }
}
