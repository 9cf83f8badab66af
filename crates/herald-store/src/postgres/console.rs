//! [`crate::ConsoleStore`] on PostgreSQL: the quarantine's "Reject", the application name
//! search, messages by delivery status and the health page's figures. The listings and bounds
//! both backends share are `crate::console`'s; this file only holds the PostgreSQL statements.

use super::*;
use crate::console::{self as shared, AttemptRate, OpenBreaker};

#[async_trait]
impl crate::ConsoleStore for PostgresStore {
    async fn reject_inbound(
        &self,
        source: &SourceId,
        id: &InboundRequestId,
        reason: String,
    ) -> Result<()> {
        sqlx::query(
            "UPDATE inbound_requests SET status = 'rejected', reason = $3, body = NULL \
             WHERE source_id = $1 AND id = $2 AND status = 'quarantined'",
        )
        .bind(&source.0)
        .bind(&id.0)
        .bind(reason)
        .must_change(&self.pool)
        .await
    }

    async fn search_apps(&self, text: &str, q: &ListQuery) -> Result<Page<Application>> {
        let l = shared::app_search(format!("SELECT {APP_COLS} FROM apps"), text);
        query_page(&self.pool, l, q, app_row).await
    }

    async fn list_messages_by_status(
        &self,
        app: &AppId,
        status: DeliveryStatus,
        filter: &MessageFilter,
        q: &ListQuery,
    ) -> Result<Page<Message>> {
        let channel = "m.channels::jsonb @> jsonb_build_array(?::text)";
        let select =
            format!("SELECT {MSG_COLS} FROM deliveries d JOIN messages m ON m.id = d.msg_id");
        let l = shared::messages_by_status(select, app, status, filter, channel);
        query_page(&self.pool, l, q, msg_row).await
    }

    async fn attempt_rate(&self, since: Millis) -> Result<AttemptRate> {
        let row = sqlx::query(&shared::rate_sql("$1", "$2"))
            .bind(shared::attempt_id_floor(since))
            .bind(since)
            .fetch_one(&self.pool)
            .await
            .map_err(map_pg)?;
        let get = || -> std::result::Result<AttemptRate, sqlx::Error> {
            Ok(AttemptRate::of(
                row.try_get(0)?,
                row.try_get(1)?,
                row.try_get(2)?,
            ))
        };
        get().map_err(map_pg)
    }

    async fn open_breakers(&self, limit: usize) -> Result<Vec<OpenBreaker>> {
        let rows = sqlx::query(
            "SELECT app_id, id, url, breaker, breaker_until FROM endpoints \
             WHERE breaker <> 0 ORDER BY breaker_until DESC, id LIMIT $1",
        )
        .bind(limit as i64)
        .fetch_all(&self.pool)
        .await
        .map_err(map_pg)?;
        rows.iter()
            .map(|r| {
                Ok(OpenBreaker {
                    app_id: AppId(r.try_get(0)?),
                    endpoint_id: EndpointId(r.try_get(1)?),
                    url: r.try_get(2)?,
                    state: BreakerState::from_i64(r.try_get(3)?),
                    until: r.try_get(4)?,
                })
            })
            .collect::<std::result::Result<Vec<_>, sqlx::Error>>()
            .map_err(map_pg)
    }
}
