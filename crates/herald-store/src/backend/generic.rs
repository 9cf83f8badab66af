//! The storage roles implemented once for every [`Backend`]: the methods whose logic is the same
//! on SQLite and PostgreSQL (statements written once with `$n` marks, the dialect's spelling
//! taken from the backend), with the per-backend ones handed to its hooks. This module must not
//! hold SQL that only one dialect understands, nor decide anything a hook decides.

use async_trait::async_trait;
use herald_core::ids::{AppId, EndpointId, InboundRequestId, MessageId, SourceId, TokenId};
use herald_core::model::{
    Application, Attempt, Delivery, DeliveryStatus, Endpoint, EndpointStats, EventType,
    InboundRequest, InboundStatus, Message, Source,
};
use herald_core::Millis;

use super::{AppHooks, Backend, InboundHooks, MessageHooks, OpsHooks, Recover, Resend, Step};
use crate::cols::{
    APP_COLS, ATT_COLS, DLV_COLS, DLV_JOIN, EP_READ, ET_COLS, INREQ_COLS, MSG_COLS, SRC_COLS,
};
use crate::common::{self, purge_steps};
use crate::console::{self as shared, AttemptRate, OpenBreaker};
use crate::page::{self, Arg, Listing};
use crate::roles::{AppStore, AuthStore, InboundStore, MessageStore, OpsStore};
use crate::{
    AttemptFilter, AttemptScope, ConsoleStore, DedupCheck, DisabledEndpoint, HourCount,
    IdempotentResponse, IngestOutcome, ListQuery, MessageFilter, OrderCheck, Page, Published,
    Result, SpoolHealth, TokenRecord, WriteFailure,
};

/// The messages of `app` that pass `filter` and, with `status`, have a delivery in it: one
/// listing for the API's message list and the console's filter by delivery status.
fn messages_of<B: Backend>(
    app: &AppId,
    filter: &MessageFilter,
    status: Option<DeliveryStatus>,
) -> Listing {
    match status {
        None => {
            let select = format!("SELECT {} FROM messages m", MSG_COLS);
            page::messages(select, app, filter, B::CHANNEL)
        }
        Some(s) => {
            let select = format!("SELECT {} FROM {}", MSG_COLS, B::BY_STATUS);
            shared::messages_by_status(select, app, s, filter, B::CHANNEL)
        }
    }
}

/// Two text arguments.
fn texts(a: &str, b: &str) -> Vec<Arg> {
    vec![Arg::text(a), Arg::text(b)]
}

#[async_trait]
impl<B: Backend + AppHooks> AppStore for B {
    async fn create_app(&self, app: Application) -> Result<Application> {
        self.insert_row(app).await
    }

    async fn get_app(&self, id_or_uid: &str) -> Result<Option<Application>> {
        let sql = format!("SELECT {APP_COLS} FROM apps WHERE id = $1 OR uid = $1");
        let read = self.fetch_point(sql, vec![Arg::text(id_or_uid)]);
        self.recall_app(id_or_uid, read).await
    }

    async fn list_apps(&self, q: &ListQuery) -> Result<Page<Application>> {
        let l = Listing::new(format!("SELECT {APP_COLS} FROM apps"));
        self.fetch_page(l, q).await
    }

    async fn update_app(&self, app: Application) -> Result<Application> {
        self.update_row(app).await
    }

    async fn delete_app(&self, id: &AppId) -> Result<()> {
        let mut steps: Vec<Step> = common::APP_OWNED
            .iter()
            .map(|t| {
                Step::new(
                    format!("DELETE FROM {t} WHERE app_id = $1"),
                    vec![Arg::text(&id.0)],
                )
            })
            .collect();
        steps.push(Step::must(
            "DELETE FROM apps WHERE id = $1",
            vec![Arg::text(&id.0)],
        ));
        self.apply(steps).await.map(|_| ())
    }

    async fn create_endpoint(&self, ep: Endpoint) -> Result<Endpoint> {
        self.insert_endpoint(ep).await
    }

    async fn get_endpoint(&self, app: &AppId, id_or_uid: &str) -> Result<Option<Endpoint>> {
        let sql =
            format!("SELECT {EP_READ} FROM endpoints WHERE app_id = $1 AND (id = $2 OR uid = $2)");
        let found = self.fetch_opt(sql, texts(&app.0, id_or_uid));
        found.await?.map(|e| self.unseal_endpoint(e)).transpose()
    }

    async fn list_endpoints(&self, app: &AppId, q: &ListQuery) -> Result<Page<Endpoint>> {
        let l = Listing::of_app(format!("SELECT {EP_READ} FROM endpoints"), app);
        let page: Page<Endpoint> = self.fetch_page(l, q).await?;
        page.try_map(|e| self.unseal_endpoint(e))
    }

    async fn update_endpoint(&self, ep: Endpoint) -> Result<Endpoint> {
        self.replace_endpoint(ep).await
    }

    async fn delete_endpoint(&self, app: &AppId, id: &EndpointId) -> Result<()> {
        use crate::status::{PENDING, SENDING};
        let sql = "DELETE FROM endpoints WHERE app_id = $1 AND id = $2";
        let unfinished = format!(
            "DELETE FROM deliveries WHERE endpoint_id = $1 AND status IN ({PENDING}, {SENDING})"
        );
        let steps = vec![
            Step::must(sql, texts(&app.0, &id.0)),
            Step::new(unfinished, vec![Arg::text(&id.0)]),
        ];
        self.apply(steps).await.map(|_| ())
    }

    async fn endpoint_stats(
        &self,
        ep: &EndpointId,
        since: Option<Millis>,
        until: Option<Millis>,
    ) -> Result<EndpointStats> {
        let sql = "SELECT d.status, COUNT(*) AS n FROM deliveries d JOIN messages m ON m.id = d.msg_id \
             WHERE d.endpoint_id = $1 AND m.created_at >= $2 AND m.created_at < $3 GROUP BY d.status";
        let args = vec![
            Arg::text(&ep.0),
            Arg::Int(since.unwrap_or(i64::MIN)),
            Arg::Int(until.unwrap_or(i64::MAX)),
        ];
        let mut stats = EndpointStats::default();
        for (status, n) in self.fetch_all::<(i64, i64)>(sql.into(), args).await? {
            let n = n as u64;
            match DeliveryStatus::from_i64(status) {
                DeliveryStatus::Success => stats.success += n,
                DeliveryStatus::Pending => stats.pending += n,
                DeliveryStatus::Fail => stats.fail += n,
                DeliveryStatus::Sending => stats.sending += n,
            }
        }
        Ok(stats)
    }

    async fn endpoint_hours(&self, ep: &EndpointId, since: Millis) -> Result<Vec<HourCount>> {
        self.hour_counts(ep, since).await
    }

    async fn get_event_type(&self, name: &str) -> Result<Option<EventType>> {
        let sql = format!("SELECT {ET_COLS} FROM event_types WHERE name = $1");
        let read = self.fetch_point(sql, vec![Arg::text(name)]);
        self.recall_event_type(name, read).await
    }

    async fn create_event_type(&self, et: EventType) -> Result<EventType> {
        self.insert_row(et).await
    }

    async fn list_event_types(
        &self,
        q: &ListQuery,
        include_archived: bool,
    ) -> Result<Page<EventType>> {
        let select = format!("SELECT {ET_COLS} FROM event_types");
        let l = page::event_types(select, include_archived, "NOT archived");
        self.fetch_page(l, q).await
    }

    async fn update_event_type(&self, et: EventType) -> Result<EventType> {
        self.update_row(et).await
    }

    async fn delete_event_type(&self, name: &str) -> Result<()> {
        // Svix archives rather than deletes, so existing endpoint filters keep their meaning.
        let sql = "UPDATE event_types SET archived = TRUE WHERE name = $1";
        self.apply(vec![Step::must(sql, vec![Arg::text(name)])])
            .await
            .map(|_| ())
    }
}

#[async_trait]
impl<B: Backend + MessageHooks> MessageStore for B {
    async fn publish(&self, msg: Message, only: Option<EndpointId>) -> Result<Published> {
        self.publish_one(msg, only).await
    }

    async fn get_message(&self, app: &AppId, id_or_event_id: &str) -> Result<Option<Message>> {
        let sql = format!(
            "SELECT {} FROM messages m WHERE m.app_id = $1 AND (m.id = $2 OR m.event_id = $2)",
            MSG_COLS
        );
        self.fetch_opt(sql, texts(&app.0, id_or_event_id)).await
    }

    async fn list_messages(
        &self,
        app: &AppId,
        filter: &MessageFilter,
        q: &ListQuery,
    ) -> Result<Page<Message>> {
        self.fetch_page(messages_of::<B>(app, filter, None), q)
            .await
    }

    async fn expunge_payload(&self, app: &AppId, msg: &MessageId) -> Result<()> {
        let sql = "UPDATE messages SET payload = NULL WHERE app_id = $1 AND id = $2";
        self.apply(vec![Step::must(sql, texts(&app.0, &msg.0))])
            .await
            .map(|_| ())
    }

    async fn deliveries_of_message(&self, msg: &MessageId) -> Result<Vec<Delivery>> {
        let sql = format!(
            "SELECT {} FROM deliveries d WHERE d.msg_id = $1 ORDER BY d.endpoint_id",
            DLV_COLS
        );
        self.fetch_all(sql, vec![Arg::text(&msg.0)]).await
    }

    async fn deliveries_of_endpoint(
        &self,
        ep: &EndpointId,
        status: Option<i64>,
        q: &ListQuery,
    ) -> Result<Page<(Delivery, Message)>> {
        let select = format!("SELECT {}, {} FROM {DLV_JOIN}", DLV_COLS, MSG_COLS);
        self.fetch_page(page::deliveries(select, ep, status), q)
            .await
    }

    async fn resend(
        &self,
        app: &AppId,
        msg: &MessageId,
        ep: &EndpointId,
        now: Millis,
    ) -> Result<()> {
        self.resend_one(Resend { app, msg, ep, now }).await
    }

    async fn recover(
        &self,
        ep: &EndpointId,
        since: Millis,
        until: Option<Millis>,
        now: Millis,
    ) -> Result<u64> {
        self.recover_failed(Recover {
            ep,
            since,
            until,
            now,
        })
        .await
    }

    async fn list_attempts(
        &self,
        app: &AppId,
        scope: &AttemptScope,
        filter: &AttemptFilter,
        q: &ListQuery,
    ) -> Result<Page<Attempt>> {
        let select = format!("SELECT {ATT_COLS} FROM attempts");
        self.fetch_page(page::attempts(select, app, scope, filter), q)
            .await
    }

    async fn get_attempt(&self, app: &AppId, msg: &MessageId, id: &str) -> Result<Option<Attempt>> {
        let sql = format!(
            "SELECT {ATT_COLS} FROM attempts WHERE app_id = $1 AND msg_id = $2 AND id = $3"
        );
        let args = vec![Arg::text(&app.0), Arg::text(&msg.0), Arg::text(id)];
        self.fetch_opt(sql, args).await
    }
}

#[async_trait]
impl<B: Backend + InboundHooks> InboundStore for B {
    async fn create_source(&self, s: Source) -> Result<Source> {
        self.insert_row(self.seal_source(s.clone())).await?;
        Ok(s)
    }

    async fn get_source(&self, app: &AppId, id_or_uid: &str) -> Result<Option<Source>> {
        let sql =
            format!("SELECT {SRC_COLS} FROM sources WHERE app_id = $1 AND (id = $2 OR uid = $2)");
        let found = self.fetch_opt(sql, texts(&app.0, id_or_uid));
        found.await?.map(|s| self.unseal_source(s)).transpose()
    }

    async fn find_source(&self, id: &SourceId) -> Result<Option<Source>> {
        // Remembered as stored (sealed), unsealed for the caller only.
        let sql = format!("SELECT {SRC_COLS} FROM sources WHERE id = $1");
        let read = self.fetch_point(sql, vec![Arg::text(&id.0)]);
        let found = self.recall_source(&id.0, read).await?;
        found.map(|s| self.unseal_source(s)).transpose()
    }

    async fn list_sources(&self, app: &AppId, q: &ListQuery) -> Result<Page<Source>> {
        let l = Listing::of_app(format!("SELECT {SRC_COLS} FROM sources"), app);
        let page: Page<Source> = self.fetch_page(l, q).await?;
        page.try_map(|s| self.unseal_source(s))
    }

    async fn update_source(&self, s: Source) -> Result<Source> {
        self.update_row(self.seal_source(s.clone())).await?;
        Ok(s)
    }

    async fn delete_source(&self, app: &AppId, id: &SourceId) -> Result<()> {
        let sql = "DELETE FROM sources WHERE app_id = $1 AND id = $2";
        let mut steps = vec![Step::must(sql, texts(&app.0, &id.0))];
        steps.extend(common::SOURCE_OWNED.iter().map(|t| {
            Step::new(
                format!("DELETE FROM {t} WHERE source_id = $1"),
                vec![Arg::text(&id.0)],
            )
        }));
        self.apply(steps).await?;
        self.forget_source(id);
        Ok(())
    }

    async fn ingest(
        &self,
        req: InboundRequest,
        dedup: Option<DedupCheck>,
        msg: Message,
        order: Option<OrderCheck>,
    ) -> Result<IngestOutcome> {
        self.ingest_work((req, dedup, msg, order)).await
    }

    async fn release_held(&self, now: Millis, max_keys: usize) -> Result<u64> {
        self.sweep_held(now, max_keys).await
    }

    async fn log_inbound(&self, req: InboundRequest) -> Result<()> {
        self.log_request(req).await
    }

    async fn list_inbound(
        &self,
        source: &SourceId,
        status: Option<InboundStatus>,
        q: &ListQuery,
    ) -> Result<Page<InboundRequest>> {
        let select = format!("SELECT {INREQ_COLS} FROM inbound_requests");
        let log = page::inbound(select, source, status);
        self.fetch_page(log, q).await
    }

    async fn get_inbound(
        &self,
        source: &SourceId,
        id: &InboundRequestId,
    ) -> Result<Option<InboundRequest>> {
        let sql =
            format!("SELECT {INREQ_COLS} FROM inbound_requests WHERE source_id = $1 AND id = $2");
        self.fetch_opt(sql, texts(&source.0, &id.0)).await
    }

    async fn release_inbound(
        &self,
        source: &SourceId,
        id: &InboundRequestId,
        msg: Message,
    ) -> Result<Published> {
        let sql = "UPDATE inbound_requests SET status = 'released', msg_id = $3 \
             WHERE source_id = $1 AND id = $2 AND status = 'quarantined'";
        let args = vec![Arg::text(&source.0), Arg::text(&id.0), Arg::text(&msg.id.0)];
        self.publish_guarded(Step::must(sql, args), msg).await
    }
}

#[async_trait]
impl<B: Backend> AuthStore for B {
    async fn create_token(&self, rec: TokenRecord, hash: [u8; 32]) -> Result<TokenRecord> {
        let sql = "INSERT INTO tokens (id, hash, name, app_id, created_at) VALUES ($1,$2,$3,$4,$5)";
        let args = vec![
            Arg::text(&rec.id.0),
            Arg::Bytes(hash.to_vec()),
            Arg::text(&rec.name),
            Arg::OptText(rec.app_id.as_ref().map(|a| a.0.clone())),
            Arg::Int(rec.created_at),
        ];
        self.apply(vec![Step::new(sql, args)]).await?;
        Ok(rec)
    }

    async fn find_token(&self, hash: [u8; 32]) -> Result<Option<TokenRecord>> {
        let sql = "SELECT id, name, app_id, created_at FROM tokens WHERE hash = $1";
        let read = self.fetch_point(sql.into(), vec![Arg::Bytes(hash.to_vec())]);
        self.recall_token(hash, read).await
    }

    async fn list_tokens(&self) -> Result<Vec<TokenRecord>> {
        let sql = "SELECT id, name, app_id, created_at FROM tokens ORDER BY id";
        self.fetch_all(sql.into(), Vec::new()).await
    }

    async fn delete_token(&self, id: &TokenId) -> Result<()> {
        self.forget_token(id);
        let sql = "DELETE FROM tokens WHERE id = $1";
        self.apply(vec![Step::must(sql, vec![Arg::text(&id.0)])])
            .await
            .map(|_| ())
    }

    async fn get_idempotent(
        &self,
        key: [u8; 32],
        since: Millis,
    ) -> Result<Option<IdempotentResponse>> {
        let sql = "SELECT status, body FROM idempotency WHERE key = $1 AND created_at >= $2";
        let args = vec![Arg::Bytes(key.to_vec()), Arg::Int(since)];
        self.fetch_point(sql.into(), args).await
    }

    async fn put_idempotent(
        &self,
        key: [u8; 32],
        resp: IdempotentResponse,
        now: Millis,
    ) -> Result<()> {
        let sql = "INSERT INTO idempotency (key, status, body, created_at) VALUES ($1,$2,$3,$4) \
             ON CONFLICT (key) DO UPDATE SET status = excluded.status, body = excluded.body, \
             created_at = excluded.created_at";
        let args = vec![
            Arg::Bytes(key.to_vec()),
            Arg::Int(i64::from(resp.status)),
            Arg::Bytes(resp.body),
            Arg::Int(now),
        ];
        self.apply(vec![Step::new(sql, args)]).await.map(|_| ())
    }
}

#[async_trait]
impl<B: Backend> ConsoleStore for B {
    async fn reject_inbound(
        &self,
        source: &SourceId,
        id: &InboundRequestId,
        reason: String,
    ) -> Result<()> {
        let sql = "UPDATE inbound_requests SET status = 'rejected', reason = $3, body = NULL \
             WHERE source_id = $1 AND id = $2 AND status = 'quarantined'";
        let args = vec![Arg::text(&source.0), Arg::text(&id.0), Arg::Text(reason)];
        self.apply(vec![Step::must(sql, args)]).await.map(|_| ())
    }

    async fn search_apps(&self, text: &str, q: &ListQuery) -> Result<Page<Application>> {
        let l = shared::app_search(format!("SELECT {APP_COLS} FROM apps"), text);
        self.fetch_page(l, q).await
    }

    async fn list_messages_by_status(
        &self,
        app: &AppId,
        status: DeliveryStatus,
        filter: &MessageFilter,
        q: &ListQuery,
    ) -> Result<Page<Message>> {
        self.fetch_page(messages_of::<B>(app, filter, Some(status)), q)
            .await
    }

    async fn attempt_rate(&self, since: Millis) -> Result<AttemptRate> {
        let args = vec![Arg::Text(shared::attempt_id_floor(since)), Arg::Int(since)];
        let rate = self.fetch_opt(shared::rate_sql("$1", "$2"), args);
        Ok(rate.await?.unwrap_or_default())
    }

    async fn open_breakers(&self, limit: usize) -> Result<Vec<OpenBreaker>> {
        let sql = "SELECT app_id, id, url, breaker, breaker_until FROM endpoints \
             WHERE breaker <> 0 ORDER BY breaker_until DESC, id LIMIT $1";
        self.fetch_all(sql.into(), vec![Arg::Int(limit as i64)])
            .await
    }
}

#[async_trait]
impl<B: Backend + OpsHooks> OpsStore for B {
    async fn ping(&self) -> Result<()> {
        self.alive().await
    }

    fn last_write_failure(&self) -> Option<WriteFailure> {
        self.write_failure()
    }

    fn spool_health(&self) -> Option<SpoolHealth> {
        self.spool_state()
    }

    async fn disable_failing_endpoints(
        &self,
        now: Millis,
        window_ms: i64,
    ) -> Result<Vec<DisabledEndpoint>> {
        self.disable_failing(now, window_ms).await
    }

    async fn purge_expired(
        &self,
        now: Millis,
        default_retention_ms: i64,
        batch: usize,
    ) -> Result<u64> {
        let steps = purge_steps(now, default_retention_ms, '$')
            .into_iter()
            .map(|(sql, first)| Step::new(sql, vec![first, Arg::Int(batch as i64)]));
        self.apply(steps.collect()).await
    }

    async fn rekey(&self, new: herald_core::crypto::SecretBox) -> Result<u64> {
        self.rekey_all(new).await
    }
}
