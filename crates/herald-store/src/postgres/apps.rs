//! The [`crate::AppStore`] methods PostgreSQL writes its own way ([`AppHooks`]): creating and
//! replacing endpoints (row lock, queue position, FIFO keys, `NOTIFY`) and the 24 h chart. The rest
//! of the role is `crate::backend`'s, once for both backends; row mapping is
//! `crate::backend::rows`'. This file only holds the PostgreSQL statements of its role.

use super::*;
use crate::HourCount;

pub(super) async fn endpoint_by(
    c: &mut PgConnection,
    app: &str,
    id_or_uid: &str,
) -> Result<Option<Endpoint>> {
    let sql =
        format!("SELECT {EP_READ} FROM endpoints WHERE app_id = $1 AND (id = $2 OR uid = $2)");
    row_by(c, &sql, [app, id_or_uid], ep_row).await
}

/// Finished attempts of an endpoint per hour since `$3`: a range of `attempts_endpoint
/// (endpoint_id, id)` from the first attempt ID of `$3` (`$2`) — see the
/// `endpoint_hours_read_one_index_range` test.
const HOURS_SQL: &str = "SELECT (created_at - $3) / 3600000 AS h, status, COUNT(*) AS n \
     FROM attempts WHERE endpoint_id = $1 AND id >= $2 AND created_at >= $3 \
     GROUP BY h, status ORDER BY h";

#[async_trait]
impl AppHooks for PostgresStore {
    async fn insert_endpoint(&self, ep: Endpoint) -> Result<Endpoint> {
        let ep = self.seal(ep);
        bound(EP_INSERT, ep_args(&ep)).run(&self.pool).await?;
        self.unseal(ep)
    }

    async fn replace_endpoint(&self, ep: Endpoint) -> Result<Endpoint> {
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
        bound(EP_UPDATE, ep_args(&ep)).run(&mut *tx).await?;
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

    async fn hour_counts(&self, ep: &EndpointId, since: Millis) -> Result<Vec<HourCount>> {
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
