//! [`crate::AuthStore`] on PostgreSQL: API tokens and idempotent answers. Row mapping stays in
//! `rows.rs` and decisions both backends share in `crate::common`; this file only holds the
//! PostgreSQL statements of its role.

use super::*;

#[async_trait]
impl AuthStore for PostgresStore {
    async fn create_token(&self, rec: TokenRecord, hash: [u8; 32]) -> Result<TokenRecord> {
        sqlx::query(
            "INSERT INTO tokens (id, hash, name, app_id, created_at) VALUES ($1,$2,$3,$4,$5)",
        )
        .bind(&rec.id.0)
        .bind(hash.as_slice())
        .bind(&rec.name)
        .bind(rec.app_id.as_ref().map(|a| a.0.clone()))
        .bind(rec.created_at)
        .run(&self.pool)
        .await?;
        Ok(rec)
    }

    async fn find_token(&self, hash: [u8; 32]) -> Result<Option<TokenRecord>> {
        let sql = "SELECT id, name, app_id, created_at FROM tokens WHERE hash = $1";
        let read = sqlx::query(sql)
            .bind(hash.as_slice())
            .row(&self.pool, token_row);
        let note = |t: &Option<TokenRecord>| match t {
            Some(t) => remember(&self.seen.tokens, hash, t.clone()),
            // Revoked (or never existed): forget it at once.
            None => {
                self.seen.tokens.lock().remove(&hash);
            }
        };
        let seen = || self.seen.tokens.lock().get(&hash).cloned().map(Some);
        self.read_or_seen(read, note, seen).await
    }

    async fn list_tokens(&self) -> Result<Vec<TokenRecord>> {
        sqlx::query("SELECT id, name, app_id, created_at FROM tokens ORDER BY id")
            .rows(&self.pool, token_row)
            .await
    }

    async fn delete_token(&self, id: &TokenId) -> Result<()> {
        self.seen.tokens.lock().retain(|_, t| t.id != *id);
        let sql = "DELETE FROM tokens WHERE id = $1";
        sqlx::query(sql).bind(&id.0).must_change(&self.pool).await?;
        Ok(())
    }

    async fn get_idempotent(
        &self,
        key: [u8; 32],
        since: Millis,
    ) -> Result<Option<IdempotentResponse>> {
        let sql = "SELECT status, body FROM idempotency WHERE key = $1 AND created_at >= $2";
        let r = sqlx::query(sql)
            .bind(key.as_slice())
            .bind(since)
            .fetch_optional(&self.pool)
            .await
            .map_err(map_pg)?;
        r.map(|r| {
            Ok(IdempotentResponse {
                status: get::<i64>(&r, "status")? as u16,
                body: get(&r, "body")?,
            })
        })
        .transpose()
    }

    async fn put_idempotent(
        &self,
        key: [u8; 32],
        resp: IdempotentResponse,
        now: Millis,
    ) -> Result<()> {
        sqlx::query(
            "INSERT INTO idempotency (key, status, body, created_at) VALUES ($1,$2,$3,$4) \
             ON CONFLICT (key) DO UPDATE SET status = EXCLUDED.status, body = EXCLUDED.body, created_at = EXCLUDED.created_at",
        )
        .bind(key.as_slice())
        .bind(resp.status as i64)
        .bind(&resp.body)
        .bind(now)
        .run(&self.pool).await?;
        Ok(())
    }
}
