//! The storage roles: one trait per area of Herald's state, and [`Store`], every role at once.
//!
//! Callers holding an `Arc<dyn Store>` (or a generic `S: Store`) call every role's methods as
//! before; callers holding a concrete backend bring the roles into scope with
//! `use herald_store::prelude::*;`. This module only declares the contract; it must not
//! hold backend code. The traits are written one line a method (`rustfmt::skip`): the contract
//! reads as a table, and each backend's impl already spells every signature out in full.

use async_trait::async_trait;
use herald_core::breaker::BreakerState;
use herald_core::ids::{AppId, EndpointId, InboundRequestId, MessageId, SourceId, TokenId};
use herald_core::model::{
    Application, Attempt, Delivery, Endpoint, EndpointStats, EventType, InboundRequest,
    InboundStatus, Message, Source,
};
use herald_core::Millis;

use crate::{
    AttemptFilter, AttemptRecord, AttemptScope, Claim, ClaimBatch, Claimed, ConsoleStore,
    DedupCheck, DisabledEndpoint, ForDelivery, HourCount, IdempotentResponse, IngestOutcome,
    ListQuery, MessageFilter, OrderCheck, Page, PollPage, PollRequest, PollToken, Published,
    Result, SpoolHealth, TokenRecord, WriteFailure,
};

/// Declares [`Store`] from the list of roles, and implements it for anything that implements
/// them all: the list is written once.
macro_rules! roles {
    ($($role:path),* $(,)?) => {
        /// Durable storage: every role. Implemented for anything that implements them all, so a
        /// backend implements the roles and callers keep holding `Arc<dyn Store>`.
        pub trait Store: $($role +)* {}

        impl<T> Store for T where T: $($role +)* {}
    };
}

/// Liveness, health and the maintenance sweeps (auto-disable, retention, key rotation). Every method is atomic on its own.
#[rustfmt::skip]
#[async_trait]
pub trait OpsStore: Send + Sync + 'static {
    /// Cheap round trip proving the backend answers.
    async fn ping(&self) -> Result<()>;

    /// The most recent write that failed for a storage reason, unless a write that changed
    /// data has succeeded since. A ping cannot see a full disk (it writes nothing); this can.
    fn last_write_failure(&self) -> Option<WriteFailure> {
        None
    }

    /// The outage spool of a PostgreSQL node (`None` where there is none): what health
    /// reports while the database is unreachable.
    fn spool_health(&self) -> Option<SpoolHealth> {
        None
    }

    /// Auto-disable: disables every enabled endpoint whose attempts have all failed since
    /// `now - window_ms` or earlier (no success in the window) and ends its waiting deliveries
    /// `failed`. Returns the endpoints disabled.
    async fn disable_failing_endpoints(&self, now: Millis, window_ms: i64) -> Result<Vec<DisabledEndpoint>>;

    /// Retention: clears payloads of messages past their retention (the message's own, else
    /// `default_retention_ms`) whose deliveries are all finished, and response bodies of
    /// attempts older than `default_retention_ms`. Touches at most `batch` rows of each kind, so
    /// callers loop while it returns a full count; returns how many rows changed.
    async fn purge_expired(&self, now: Millis, default_retention_ms: i64, batch: usize) -> Result<u64>;

    /// Encryption-key rotation: re-encrypts every stored secret (endpoint and source secrets)
    /// under `new` and records `new`'s key check, in one transaction. The store must have been
    /// opened with the current key. Returns how many records were re-encrypted.
    async fn rekey(&self, new: herald_core::crypto::SecretBox) -> Result<u64>;
}

/// Applications, their endpoints and the event-type catalogue. Every method is atomic on its own.
#[rustfmt::skip]
#[async_trait]
pub trait AppStore: Send + Sync + 'static {
    async fn create_app(&self, app: Application) -> Result<Application>;

    /// By ID or `uid`.
    async fn get_app(&self, id_or_uid: &str) -> Result<Option<Application>>;

    async fn list_apps(&self, q: &ListQuery) -> Result<Page<Application>>;

    async fn update_app(&self, app: Application) -> Result<Application>;

    /// Deletes the app with its endpoints, messages, deliveries and attempts.
    async fn delete_app(&self, id: &AppId) -> Result<()>;

    async fn create_endpoint(&self, ep: Endpoint) -> Result<Endpoint>;

    async fn get_endpoint(&self, app: &AppId, id_or_uid: &str) -> Result<Option<Endpoint>>;

    async fn list_endpoints(&self, app: &AppId, q: &ListQuery) -> Result<Page<Endpoint>>;

    /// Replaces the stored endpoint. Re-enabling (`disabled` true → false) also clears a pause.
    async fn update_endpoint(&self, ep: Endpoint) -> Result<Endpoint>;

    /// Deletes the endpoint and its unfinished deliveries (attempt history stays).
    async fn delete_endpoint(&self, app: &AppId, id: &EndpointId) -> Result<()>;

    async fn endpoint_stats(&self, ep: &EndpointId, since: Option<Millis>, until: Option<Millis>) -> Result<EndpointStats>;

    /// Finished attempts to the endpoint since `since`, per hour from `since` (hours without
    /// attempts left out), oldest first. Bounded by the attempt ID (which sorts by time) on the
    /// `(endpoint_id, id)` index, so it reads only that window's attempts.
    async fn endpoint_hours(&self, ep: &EndpointId, since: Millis) -> Result<Vec<HourCount>>;

    async fn create_event_type(&self, et: EventType) -> Result<EventType>;

    async fn get_event_type(&self, name: &str) -> Result<Option<EventType>>;

    async fn list_event_types(&self, q: &ListQuery, include_archived: bool) -> Result<Page<EventType>>;

    async fn update_event_type(&self, et: EventType) -> Result<EventType>;

    async fn delete_event_type(&self, name: &str) -> Result<()>;
}

/// Messages, their deliveries and the attempt history. Every method is atomic on its own.
#[rustfmt::skip]
#[async_trait]
pub trait MessageStore: Send + Sync + 'static {
    /// Commits the message and one pending delivery per matching endpoint, in one durable
    /// transaction. `Conflict` on a repeated `eventId` within the app. With `only`, the message
    /// goes to that one endpoint (send-example) whatever its filters.
    async fn publish(&self, msg: Message, only: Option<EndpointId>) -> Result<Published>;

    /// By message ID or `eventId`.
    async fn get_message(&self, app: &AppId, id_or_event_id: &str) -> Result<Option<Message>>;

    async fn list_messages(&self, app: &AppId, filter: &MessageFilter, q: &ListQuery) -> Result<Page<Message>>;

    /// Removes a payload, keeping the message record.
    async fn expunge_payload(&self, app: &AppId, msg: &MessageId) -> Result<()>;

    async fn deliveries_of_message(&self, msg: &MessageId) -> Result<Vec<Delivery>>;

    async fn deliveries_of_endpoint(&self, ep: &EndpointId, status: Option<i64>, q: &ListQuery) -> Result<Page<(Delivery, Message)>>;

    /// Queues one manual attempt of (message, endpoint) now, creating the delivery if the
    /// endpoint did not receive the message originally.
    async fn resend(&self, app: &AppId, msg: &MessageId, ep: &EndpointId, now: Millis) -> Result<()>;

    /// Re-queues the endpoint's `failed` deliveries of messages created in [since, until).
    /// Returns how many were re-queued.
    async fn recover(&self, ep: &EndpointId, since: Millis, until: Option<Millis>, now: Millis) -> Result<u64>;

    async fn list_attempts(&self, app: &AppId, scope: &AttemptScope, filter: &AttemptFilter, q: &ListQuery) -> Result<Page<Attempt>>;

    async fn get_attempt(&self, app: &AppId, msg: &MessageId, id: &str) -> Result<Option<Attempt>>;
}

/// The delivery queue: claims under lease, attempt outcomes, releases and the queue's shape. Every method is atomic on its own.
#[rustfmt::skip]
#[async_trait]
pub trait QueueStore: Send + Sync + 'static {
    /// Leases up to `claim.limit` due deliveries (pending and due, or sending with an expired
    /// lease) to `claim.owner` until `now + lease_ms`, fairly across endpoints: round-robin between
    /// endpoints with due work, never more in flight per endpoint than its `maxConcurrency`
    /// (counting every node's leases), within its `throttleRate` token bucket, nothing while
    /// its breaker is open and one probe while half-open, one delivery per ordering key at a
    /// time for `fifo` endpoints.
    async fn claim_due(&self, claim: Claim) -> Result<ClaimBatch>;

    /// The messages and endpoints the `claimed` deliveries refer to, by ID.
    async fn load_for_delivery(&self, claimed: &[Claimed]) -> Result<ForDelivery>;

    /// Stores an attempt and applies its consequence to the delivery and to the endpoint
    /// (breaker, pause, disable). Returns the breaker's new state if the attempt moved it.
    async fn record_attempt(&self, rec: AttemptRecord) -> Result<Option<BreakerState>>;

    /// [`Self::record_attempt`] for several attempts at once (the deliveries of one batch
    /// request); one answer per record, in their order. A backend may write them together (SQLite:
    /// one transaction, each endpoint's queue position recomputed once).
    async fn record_attempts(
        &self,
        recs: Vec<AttemptRecord>,
    ) -> Result<Vec<Option<BreakerState>>> {
        let mut out = Vec::with_capacity(recs.len());
        for r in recs {
            out.push(self.record_attempt(r).await?);
        }
        Ok(out)
    }

    /// Hands a claimed delivery back without an attempt, due at `at`.
    async fn release(&self, delivery_id: i64, at: Millis) -> Result<()>;

    /// Ends a claimed delivery without an attempt (its endpoint is gone or disabled).
    async fn abandon(&self, delivery_id: i64, now: Millis) -> Result<()>;

    /// Makes every leased delivery due now. Only safe when no other process can hold a
    /// lease (single-node SQLite behind the data-dir lock, at start-up or shutdown).
    async fn release_leases(&self, owner: Option<&str>, now: Millis) -> Result<u64>;

    /// When the earliest endpoint may have claimable work, if any.
    async fn next_due_at(&self) -> Result<Option<Millis>>;

    /// (due now, scheduled later, oldest due time) for health and metrics.
    async fn queue_summary(&self, now: Millis) -> Result<(u64, u64, Option<Millis>)>;
}

/// Inbound sources, their request log, dedup, ordering holds and quarantine. Every method is atomic on its own.
#[rustfmt::skip]
#[async_trait]
pub trait InboundStore: Send + Sync + 'static {
    async fn create_source(&self, s: Source) -> Result<Source>;

    /// By ID or `uid` within the application.
    async fn get_source(&self, app: &AppId, id_or_uid: &str) -> Result<Option<Source>>;

    /// By ID alone: the ingestion URL names no application.
    async fn find_source(&self, id: &SourceId) -> Result<Option<Source>>;

    async fn list_sources(&self, app: &AppId, q: &ListQuery) -> Result<Page<Source>>;

    async fn update_source(&self, s: Source) -> Result<Source>;

    /// Deletes the source; its request log goes with it.
    async fn delete_source(&self, app: &AppId, id: &SourceId) -> Result<()>;

    /// Commits an accepted inbound request in one transaction: when `dedup`'s key was seen
    /// within its window, only the request (as a duplicate of the first message); otherwise the
    /// key, `msg` with its deliveries, and the request. Concurrent duplicates collapse to one
    /// message because the key is claimed in the same transaction as the message.
    ///
    /// With `order`, the same transaction reads and updates the key's ordering state (locked on
    /// PostgreSQL, so nodes decide consistently), after the dedup check: a stale sequence is
    /// only logged; a sequence after a gap is held (with everything needed to publish `msg`
    /// later); an accepted one publishes `msg` (its `ordering_key` as the caller set it) and
    /// then every held successor that is now consecutive, in sequence order.
    async fn ingest(&self, req: InboundRequest, dedup: Option<DedupCheck>, msg: Message, order: Option<OrderCheck>) -> Result<IngestOutcome>;

    /// The gap-timeout sweep: for up to `max_keys` keys holding an event whose wait ended by
    /// `now`, publishes their held events in sequence order (every one up to the highest
    /// expired sequence, then consecutive ones) and moves the key's `last`. Atomic per key and
    /// safe when several nodes sweep at once: each held event becomes one message. Returns how
    /// many messages it published.
    async fn release_held(&self, now: Millis, max_keys: usize) -> Result<u64>;

    /// Logs a request that did not become a message (rejected, quarantined, handshake).
    async fn log_inbound(&self, req: InboundRequest) -> Result<()>;

    /// The source's request log, newest first unless `q` says otherwise.
    /// The source's request log; `status` keeps only requests in that state.
    async fn list_inbound(&self, source: &SourceId, status: Option<InboundStatus>, q: &ListQuery) -> Result<Page<InboundRequest>>;

    async fn get_inbound(&self, source: &SourceId, id: &InboundRequestId) -> Result<Option<InboundRequest>>;

    /// Publishes `msg` for a quarantined request and marks it released, atomically; `NotFound`
    /// unless the request exists and is quarantined.
    async fn release_inbound(&self, source: &SourceId, id: &InboundRequestId, msg: Message) -> Result<Published>;
}

/// API tokens and stored idempotent answers. Every method is atomic on its own.
#[rustfmt::skip]
#[async_trait]
pub trait AuthStore: Send + Sync + 'static {
    async fn create_token(&self, rec: TokenRecord, hash: [u8; 32]) -> Result<TokenRecord>;

    async fn find_token(&self, hash: [u8; 32]) -> Result<Option<TokenRecord>>;

    async fn list_tokens(&self) -> Result<Vec<TokenRecord>>;

    async fn delete_token(&self, id: &TokenId) -> Result<()>;

    async fn get_idempotent(&self, key: [u8; 32], since: Millis) -> Result<Option<IdempotentResponse>>;

    async fn put_idempotent(&self, key: [u8; 32], resp: IdempotentResponse, now: Millis) -> Result<()>;
}

/// Polling endpoints (`url` `poll:`): pages of held deliveries and the tokens that may only poll.
#[rustfmt::skip]
#[async_trait]
pub trait PullStore: Send + Sync + 'static {
    /// In one transaction: acknowledges the handed-out deliveries up to `ack_upto` (each becomes
    /// `success` with an attempt record), then answers the next held events in publish order and
    /// marks them handed out. The page is one indexed read of the endpoint's pending deliveries.
    async fn poll_page(&self, req: PollRequest) -> Result<PollPage>;

    async fn create_poll_token(&self, rec: PollToken, hash: [u8; 32]) -> Result<PollToken>;

    async fn find_poll_token(&self, hash: [u8; 32]) -> Result<Option<PollToken>>;

    /// The endpoint's poll-only tokens, oldest first, at most `limit` (never their secrets:
    /// only a hash is stored).
    async fn list_poll_tokens(&self, endpoint: &EndpointId, limit: usize) -> Result<Vec<PollToken>>;

    /// Revokes one of the endpoint's poll-only tokens; `false` when it has no such token.
    async fn delete_poll_token(&self, endpoint: &EndpointId, id: &str) -> Result<bool>;
}

roles! {
    OpsStore, AppStore, MessageStore, QueueStore, InboundStore, AuthStore, PullStore,
    ConsoleStore, crate::reconcile::ReconcileStore,
}
