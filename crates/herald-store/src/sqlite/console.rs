//! [`crate::ConsoleStore`] on SQLite: the quarantine's "Reject", the application name search,
//! messages by delivery status and the health page's figures. The listings and bounds both
//! backends share are `crate::console`'s; this file only holds the SQLite statements.

use super::*;
use crate::console::{self as shared, AttemptRate, OpenBreaker};

#[async_trait]
impl crate::ConsoleStore for SqliteStore {
    async fn reject_inbound(
        &self,
        source: &SourceId,
        id: &InboundRequestId,
        reason: String,
    ) -> Result<()> {
        let (source, id) = (source.0.clone(), id.0.clone());
        self.write(move |c| {
            let n = exec(
                c,
                "UPDATE inbound_requests SET status = 'rejected', reason = ?3, body = NULL \
                     WHERE source_id = ?1 AND id = ?2 AND status = 'quarantined'",
                params![source, id, reason],
            )?;
            found(n)
        })
        .await
    }

    async fn search_apps(&self, text: &str, q: &ListQuery) -> Result<Page<Application>> {
        let l = shared::app_search(format!("SELECT {APP_COLS} FROM apps"), text);
        let q = q.clone();
        self.read(move |c| query_page(c, l, &q, app_row)).await
    }

    async fn list_messages_by_status(
        &self,
        app: &AppId,
        status: DeliveryStatus,
        filter: &MessageFilter,
        q: &ListQuery,
    ) -> Result<Page<Message>> {
        let channel = "EXISTS (SELECT 1 FROM json_each(m.channels) WHERE value = ?)";
        let select = format!(
            "SELECT {MSG_COLS} FROM deliveries d INDEXED BY deliveries_app_status \
             JOIN messages m ON m.id = d.msg_id"
        );
        let l = shared::messages_by_status(select, app, status, filter, channel);
        let q = q.clone();
        self.read(move |c| query_page(c, l, &q, |r| msg_row_at(r, 0)))
            .await
    }

    async fn attempt_rate(&self, since: Millis) -> Result<AttemptRate> {
        let floor = shared::attempt_id_floor(since);
        self.read(move |c| {
            let sql = shared::rate_sql("?1", "?2");
            let mut stmt = c.prepare_cached(&sql).map_err(map_sql)?;
            stmt.query_row(params![floor, since], |r| {
                Ok(AttemptRate::of(r.get(0)?, r.get(1)?, r.get(2)?))
            })
            .map_err(map_sql)
        })
        .await
    }

    async fn open_breakers(&self, limit: usize) -> Result<Vec<OpenBreaker>> {
        self.read(move |c| {
            let sql = format!(
                "SELECT app_id, id, url, breaker, breaker_until FROM endpoints \
                 WHERE breaker <> 0 ORDER BY breaker_until DESC, id LIMIT {limit}"
            );
            let mut stmt = c.prepare_cached(&sql).map_err(map_sql)?;
            let rows = stmt
                .query_map([], |r| {
                    Ok(OpenBreaker {
                        app_id: AppId(r.get(0)?),
                        endpoint_id: EndpointId(r.get(1)?),
                        url: r.get(2)?,
                        state: BreakerState::from_i64(r.get(3)?),
                        until: r.get(4)?,
                    })
                })
                .map_err(map_sql)?
                .collect::<rusqlite::Result<Vec<_>>>()
                .map_err(map_sql)?;
            Ok(rows)
        })
        .await
    }
}
