//! The [`crate::OpsStore`] methods PostgreSQL answers its own way ([`OpsHooks`]): liveness, the
//! last write failure, the outage spool's state, auto-disable and key rotation. Retention is
//! `crate::backend`'s, once for both backends. This file only holds the PostgreSQL statements of
//! its role.

use super::*;
use herald_core::source::SourceOptions;

#[async_trait]
impl OpsHooks for PostgresStore {
    async fn alive(&self) -> Result<()> {
        sqlx::query("SELECT 1").run(&self.pool).await?;
        Ok(())
    }

    fn write_failure(&self) -> Option<crate::WriteFailure> {
        self.write_health.last()
    }

    fn spool_state(&self) -> Option<crate::SpoolHealth> {
        self.spool.as_ref().map(Spool::health)
    }

    async fn disable_failing(&self, now: Millis, window_ms: i64) -> Result<Vec<DisabledEndpoint>> {
        let mut tx = self.begin().await?;
        let rows = sqlx::query(
            "UPDATE endpoints SET disabled = TRUE, updated_at = $1 \
             WHERE NOT disabled AND failing_since IS NOT NULL AND failing_since <= $2 \
             RETURNING id, app_id, uid, failing_since",
        )
        .bind(now)
        .bind(now - window_ms)
        .fetch_all(&mut *tx)
        .await
        .map_err(map_pg)?;
        let mut out = Vec::with_capacity(rows.len());
        for r in &rows {
            let d = disabled_row(r)?;
            // Waiting deliveries end `failed` (recoverable), never vanish.
            sched::fail_waiting(&mut tx, &d.endpoint_id.0, now).await?;
            sched::refresh_due(&mut tx, &d.endpoint_id.0, now).await?;
            out.push(d);
        }
        tx.commit().await.map_err(map_pg)?;
        Ok(out)
    }

    async fn rekey_all(&self, new: SecretBox) -> Result<u64> {
        let old = self
            .secrets
            .clone()
            .ok_or_else(|| StoreError::Unavailable("the store was opened without a key".into()))?;
        let mut tx = self.begin().await?;
        let mut n = 0;
        for table in ["endpoints", "sources"] {
            let rows = sqlx::query(&format!("SELECT id, secrets FROM {table} FOR UPDATE"))
                .fetch_all(&mut *tx)
                .await
                .map_err(map_pg)?;
            for r in &rows {
                let id: String = get(r, "id")?;
                let mut secrets: Vec<StoredSecret> = parse(&get::<String>(r, "secrets")?)?;
                crate::reseal_secrets(&old, &new, &mut secrets)?;
                sqlx::query(&format!("UPDATE {table} SET secrets = $2 WHERE id = $1"))
                    .bind(&id)
                    .bind(json(&secrets))
                    .run(&mut *tx)
                    .await?;
                n += 1;
            }
        }
        let rows = sqlx::query("SELECT id, options, url FROM endpoints FOR UPDATE")
            .fetch_all(&mut *tx)
            .await
            .map_err(map_pg)?;
        for r in &rows {
            let id: String = get(r, "id")?;
            let options = crate::rekey_options(&old, &new, &id, &get::<String>(r, "options")?)?;
            let url = crate::reseal_url(&old, &new, &get::<String>(r, "url")?)?;
            sqlx::query("UPDATE endpoints SET options = $2, url = $3 WHERE id = $1")
                .bind(&id)
                .bind(options)
                .bind(url)
                .run(&mut *tx)
                .await?;
        }
        // Sources' options (poll headers), re-sealed and written back in one statement.
        let stored: Vec<(String, String)> =
            sqlx::query_as("SELECT id, options FROM sources FOR UPDATE")
                .fetch_all(&mut *tx)
                .await
                .map_err(map_pg)?;
        let mut ids = Vec::with_capacity(stored.len());
        let mut docs = Vec::with_capacity(stored.len());
        for (id, text) in stored {
            docs.push(crate::reconcile::reseal::<SourceOptions>(
                &old, &new, &id, &text,
            )?);
            ids.push(id);
        }
        sqlx::query(
            "UPDATE sources s SET options = u.options \
             FROM UNNEST($1::text[], $2::text[]) AS u(id, options) WHERE s.id = u.id",
        )
        .bind(&ids)
        .bind(&docs)
        .run(&mut *tx)
        .await?;
        sqlx::query(
            "INSERT INTO meta (key, value) VALUES ('key_check', $1) \
             ON CONFLICT (key) DO UPDATE SET value = EXCLUDED.value",
        )
        .bind(common::key_check(&new))
        .run(&mut *tx)
        .await?;
        tx.commit().await.map_err(map_pg)?;
        Ok(n)
    }
}
