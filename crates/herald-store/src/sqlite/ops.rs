//! The [`crate::OpsStore`] methods SQLite answers its own way ([`OpsHooks`]): liveness, the
//! last write failure, auto-disable and key rotation. Retention is `crate::backend`'s, once for
//! both backends. This file only holds the SQLite statements of its role.

use super::*;

#[async_trait]
impl OpsHooks for SqliteStore {
    async fn alive(&self) -> Result<()> {
        self.read(|c| c.query_row("SELECT 1", [], |_| Ok(())).map_err(map_sql))
            .await?;
        // A read proves the file answers; a no-op write proves the writer thread is alive.
        self.write(|_| Ok(())).await
    }

    fn write_failure(&self) -> Option<crate::WriteFailure> {
        self.inner.write_health.last()
    }

    async fn disable_failing(&self, now: Millis, window_ms: i64) -> Result<Vec<DisabledEndpoint>> {
        self.write(move |c| {
            let ids = c
                .prepare_cached(
                    "UPDATE endpoints SET disabled = 1, updated_at = ?1 \
                     WHERE disabled = 0 AND failing_since IS NOT NULL AND failing_since <= ?2 \
                     RETURNING id, app_id, uid, failing_since",
                )
                .and_then(|mut s| {
                    s.query_map(params![now, now - window_ms], |r| cells(r, disabled_row))?
                        .collect::<rusqlite::Result<Vec<_>>>()
                })
                .map_err(map_sql)?;
            for d in &ids {
                // Waiting deliveries end `failed` (recoverable), never vanish.
                sched::fail_waiting(c, &d.endpoint_id.0, now)?;
                sched::refresh_due(c, &d.endpoint_id.0, now)?;
            }
            Ok(ids)
        })
        .await
    }

    async fn rekey_all(&self, new: SecretBox) -> Result<u64> {
        let old =
            self.inner.secrets.clone().ok_or_else(|| {
                StoreError::Unavailable("the store was opened without a key".into())
            })?;
        self.write(move |c| {
            let mut n = 0;
            for table in ["endpoints", "sources"] {
                let rows: Vec<(String, String)> = c
                    .prepare(&format!("SELECT id, secrets FROM {table}"))
                    .and_then(|mut s| {
                        s.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?
                            .collect::<rusqlite::Result<Vec<_>>>()
                    })
                    .map_err(map_sql)?;
                for (id, text) in rows {
                    let mut secrets: Vec<StoredSecret> = parse(&text).map_err(map_sql)?;
                    crate::reseal_secrets(&old, &new, &mut secrets)?;
                    exec(
                        c,
                        &format!("UPDATE {table} SET secrets = ?2 WHERE id = ?1"),
                        params![id, json(&secrets)],
                    )?;
                    n += 1;
                }
            }
            let rows: Vec<(String, String, String)> = c
                .prepare("SELECT id, options, url FROM endpoints")
                .and_then(|mut s| {
                    s.query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?
                        .collect::<rusqlite::Result<Vec<_>>>()
                })
                .map_err(map_sql)?;
            for (id, text, url) in rows {
                let options = crate::rekey_options(&old, &new, &id, &text)?;
                let url = crate::reseal_url(&old, &new, &url)?;
                exec(
                    c,
                    "UPDATE endpoints SET options = ?2, url = ?3 WHERE id = ?1",
                    params![id, options, url],
                )?;
            }
            let rows: Vec<(String, String)> = c
                .prepare("SELECT id, options FROM sources")
                .and_then(|mut s| {
                    s.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?
                        .collect::<rusqlite::Result<Vec<_>>>()
                })
                .map_err(map_sql)?;
            for (id, text) in rows {
                let options = crate::reconcile::reseal::<herald_core::source::SourceOptions>(
                    &old, &new, &id, &text,
                )?;
                exec(
                    c,
                    "UPDATE sources SET options = ?2 WHERE id = ?1",
                    params![id, options],
                )?;
            }
            exec(
                c,
                "INSERT OR REPLACE INTO meta (key, value) VALUES ('key_check', ?1)",
                [common::key_check(&new)],
            )?;
            Ok(n)
        })
        .await
    }
}
