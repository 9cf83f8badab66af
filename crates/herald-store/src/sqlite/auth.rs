//! [`crate::AuthStore`] on SQLite: API tokens and idempotent answers. Row mapping stays in
//! `rows.rs` and decisions both backends share in `crate::common`; this file only holds the SQLite
//! statements of its role.

use super::*;

#[async_trait]
impl AuthStore for SqliteStore {
    async fn create_token(&self, rec: TokenRecord, hash: [u8; 32]) -> Result<TokenRecord> {
        self.write(move |c| {
            exec(
                c,
                "INSERT INTO tokens (id, hash, name, app_id, created_at) VALUES (?1,?2,?3,?4,?5)",
                params![
                    rec.id.0,
                    hash.as_slice(),
                    rec.name,
                    rec.app_id.as_ref().map(|a| a.0.clone()),
                    rec.created_at
                ],
            )?;
            Ok(rec)
        })
        .await
    }

    async fn find_token(&self, hash: [u8; 32]) -> Result<Option<TokenRecord>> {
        self.read_point(|c| {
            row_opt(
                c,
                "SELECT id, name, app_id, created_at FROM tokens WHERE hash = ?1",
                [hash.as_slice()],
                token_row,
            )
        })
    }

    async fn list_tokens(&self) -> Result<Vec<TokenRecord>> {
        self.read(|c| {
            let mut stmt = c
                .prepare_cached("SELECT id, name, app_id, created_at FROM tokens ORDER BY id")
                .map_err(map_sql)?;
            let rows = stmt
                .query_map([], token_row)
                .map_err(map_sql)?
                .collect::<rusqlite::Result<Vec<_>>>()
                .map_err(map_sql)?;
            Ok(rows)
        })
        .await
    }

    async fn delete_token(&self, id: &TokenId) -> Result<()> {
        let id = id.0.clone();
        self.write(move |c| {
            if exec(c, "DELETE FROM tokens WHERE id = ?1", [id])? == 0 {
                return Err(StoreError::NotFound);
            }
            Ok(())
        })
        .await
    }

    async fn get_idempotent(
        &self,
        key: [u8; 32],
        since: Millis,
    ) -> Result<Option<IdempotentResponse>> {
        self.read_point(|c| {
            row_opt(
                c,
                "SELECT status, body FROM idempotency WHERE key = ?1 AND created_at >= ?2",
                params![key.as_slice(), since],
                |r| {
                    Ok(IdempotentResponse {
                        status: r.get(0)?,
                        body: r.get(1)?,
                    })
                },
            )
        })
    }

    async fn put_idempotent(
        &self,
        key: [u8; 32],
        resp: IdempotentResponse,
        now: Millis,
    ) -> Result<()> {
        self.write(move |c| {
            exec(c, "INSERT OR REPLACE INTO idempotency (key, status, body, created_at) VALUES (?1,?2,?3,?4)", params![key.as_slice(), resp.status, resp.body, now])?;
            Ok(())
        })
        .await
    }
}
