//! Herald's durable state: the [`Store`] trait every backend implements, the embedded SQLite
//! backend (one node) and the PostgreSQL backend (a cluster of nodes).
//!
//! The store owns transactions and durability. A publish commits the message *and* its pending
//! deliveries in one transaction, and only returns after that commit is on disk, so an API 2xx
//! never precedes durability. Claims of due deliveries are leases stored in the database (a
//! delivery in `sending` whose lease expired is due again), never in-memory state, so another
//! process — or this one after a crash — takes over. The store does not decide retry timing or
//! outcomes (that is `herald-core`), and does not speak HTTP.

use std::collections::HashMap;

use async_trait::async_trait;
use herald_core::breaker::BreakerState;
use herald_core::ids::{AppId, EndpointId, InboundRequestId, MessageId, SourceId, TokenId};
use herald_core::model::{
    Application, Attempt, Delivery, Endpoint, EndpointStats, EventType, InboundRequest,
    InboundStatus, Message, Source,
};
use herald_core::Millis;

pub mod ops;
pub mod postgres;
pub mod sqlite;

pub use ops::OpsLog;
pub use postgres::PostgresStore;
pub use sqlite::SqliteStore;

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// A unique constraint (uid, eventId, name) is already taken.
    #[error("conflict: {0}")]
    Conflict(String),
    /// The thing to change does not exist.
    #[error("not found")]
    NotFound,
    /// The backend failed or is unreachable; callers answer 503.
    #[error("storage unavailable: {0}")]
    Unavailable(String),
    /// The configured encryption key cannot decrypt this database's secrets.
    #[error("the configured encryption_key cannot decrypt this database's secrets (wrong key?)")]
    KeyMismatch,
    /// Stored data could not be decoded (a bug or manual tampering).
    #[error("corrupt record: {0}")]
    Corrupt(String),
    /// The database answered and refused the statement for a reason that retrying will not
    /// change (e.g. a value it cannot store). Not an outage: never spooled, callers answer 500.
    #[error("the database refused the write: {0}")]
    Rejected(String),
}

pub type Result<T> = std::result::Result<T, StoreError>;

/// A write the backend could not make (disk full, I/O error, database gone), kept until a
/// later write succeeds — so health can say why publishes fail while reads still work.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WriteFailure {
    /// When it failed (Unix millis).
    pub at: Millis,
    /// The backend's error text.
    pub error: String,
}

/// The state of a node's outage spool.
#[derive(Clone, Debug, PartialEq)]
pub struct SpoolHealth {
    /// Bytes spooled and not yet drained into the database.
    pub bytes: u64,
    pub max_bytes: u64,
    /// Why the last append was refused (full, or the disk failed), until one succeeds.
    pub refusing: Option<String>,
}

/// The last write failure of a store, shared by its writers. A conflict or a refused value is
/// not a failure of the storage and is never recorded here.
#[derive(Debug, Default)]
pub(crate) struct WriteHealth(parking_lot::Mutex<Option<WriteFailure>>);

impl WriteHealth {
    pub(crate) fn failed(&self, error: impl Into<String>) {
        let failure = WriteFailure {
            at: herald_core::now_millis(),
            error: error.into(),
        };
        *self.0.lock() = Some(failure);
    }

    pub(crate) fn succeeded(&self) {
        let mut last = self.0.lock();
        if last.is_some() {
            *last = None;
        }
    }

    /// Records the outcome of a write that changed data.
    pub(crate) fn observe<T>(&self, r: &Result<T>) {
        match r {
            Ok(_) => self.succeeded(),
            Err(StoreError::Unavailable(e)) => self.failed(e.clone()),
            Err(_) => {}
        }
    }

    pub(crate) fn last(&self) -> Option<WriteFailure> {
        self.0.lock().clone()
    }
}

/// Encrypts secrets for storage under `key` (none: stored as given, for tests).
pub(crate) fn seal_secrets(
    key: Option<&herald_core::crypto::SecretBox>,
    secrets: &mut [herald_core::model::StoredSecret],
) {
    if let Some(b) = key {
        for s in secrets {
            s.key = b.encrypt(&s.key);
        }
    }
}

/// Decrypts stored secrets; a value the key cannot open means the wrong key.
pub(crate) fn unseal_secrets(
    key: Option<&herald_core::crypto::SecretBox>,
    secrets: &mut [herald_core::model::StoredSecret],
) -> Result<()> {
    if let Some(b) = key {
        for s in secrets {
            s.key = b.decrypt(&s.key).map_err(|_| StoreError::KeyMismatch)?;
        }
    }
    Ok(())
}

/// Keyset pagination over time-sortable IDs.
#[derive(Clone, Debug, Default)]
pub struct ListQuery {
    pub limit: usize,
    /// Last ID of the previous page (exclusive bound).
    pub iterator: Option<String>,
    /// Page towards the start (`iterator` was given with a leading `-`).
    pub backwards: bool,
    /// Newest first.
    pub descending: bool,
    /// Only items created before / after these times.
    pub before: Option<Millis>,
    pub after: Option<Millis>,
}

/// One page of results; `has_more` says whether further items exist in the paging direction.
#[derive(Clone, Debug)]
pub struct Page<T> {
    pub items: Vec<T>,
    pub has_more: bool,
}

impl<T> Page<T> {
    /// The same page with every item passed through `f` (e.g. decrypting secrets).
    pub fn try_map<U>(self, f: impl FnMut(T) -> Result<U>) -> Result<Page<U>> {
        Ok(Page {
            items: self.items.into_iter().map(f).collect::<Result<_>>()?,
            has_more: self.has_more,
        })
    }
}

/// Filters for message lists.
#[derive(Clone, Debug, Default)]
pub struct MessageFilter {
    pub channel: Option<String>,
    pub event_types: Option<Vec<String>>,
}

/// Which attempts to list.
#[derive(Clone, Debug)]
pub enum AttemptScope {
    Endpoint(EndpointId),
    Message(MessageId),
}

/// Filters for attempt lists.
#[derive(Clone, Debug, Default)]
pub struct AttemptFilter {
    pub status: Option<i64>,
    pub endpoint_id: Option<EndpointId>,
}

/// A delivery claimed by a worker under a lease.
#[derive(Clone, Debug)]
pub struct Claimed {
    pub delivery_id: i64,
    pub msg_id: MessageId,
    pub endpoint_id: EndpointId,
    pub app_id: AppId,
    pub attempts: u32,
    pub failures: u32,
    pub manual: bool,
}

/// An endpoint the auto-disable check just disabled.
#[derive(Clone, Debug, PartialEq)]
pub struct DisabledEndpoint {
    pub endpoint_id: EndpointId,
    pub app_id: AppId,
    pub uid: Option<String>,
    /// Its first failure without a success since.
    pub failing_since: Millis,
}

/// A circuit-breaker transition that happened inside a store operation.
#[derive(Clone, Debug, PartialEq)]
pub struct BreakerChange {
    pub endpoint_id: EndpointId,
    pub app_id: AppId,
    pub to: BreakerState,
}

/// What one claim leased, and the breakers it turned half-open to send their probe.
#[derive(Clone, Debug, Default)]
pub struct ClaimBatch {
    pub claimed: Vec<Claimed>,
    pub breaker_changes: Vec<BreakerChange>,
}

/// How a recorded attempt changes its delivery (and possibly its endpoint).
#[derive(Clone, Debug, PartialEq)]
pub enum NextState {
    Succeeded,
    /// Failed; try again at `at`. `failures` is the new count of retries consumed.
    RetryAt {
        at: Millis,
        failures: u32,
    },
    /// Retries exhausted or a permanent status: the delivery ends `failed`.
    Failed {
        disable_endpoint: bool,
    },
    /// 429 / 503 + Retry-After: the endpoint pauses and this delivery waits; no retry consumed.
    EndpointPaused {
        until: Millis,
    },
}

/// An attempt and what follows from it, committed together.
#[derive(Clone, Debug)]
pub struct AttemptRecord {
    pub attempt: Attempt,
    pub next: NextState,
    /// The cool-downs the endpoint's breaker uses if this result opens it.
    pub breaker: herald_core::breaker::BreakerPolicy,
}

/// An API token as stored: only the SHA-256 of the secret is kept.
#[derive(Clone, Debug, PartialEq)]
pub struct TokenRecord {
    pub id: TokenId,
    pub name: String,
    pub app_id: Option<AppId>,
    pub created_at: Millis,
}

/// A stored idempotent answer.
#[derive(Clone, Debug, PartialEq)]
pub struct IdempotentResponse {
    pub status: u16,
    pub body: Vec<u8>,
}

/// What a publish committed.
#[derive(Clone, Debug)]
pub struct Published {
    pub message: Message,
    /// Deliveries created by the fan-out.
    pub deliveries: usize,
}

/// The dedup check of an inbound request: `sha256(source_id:value)` and the start of its window.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DedupCheck {
    pub key: [u8; 32],
    pub since: Millis,
}

/// The ordering check of an inbound request (source option `ordering`): its resource key and
/// sequence, and how long it may wait for a missing earlier sequence.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OrderCheck {
    /// The resource key as extracted (the state is per source and key).
    pub key: String,
    pub seq: i64,
    /// 0: never hold (only stale events are dropped).
    pub gap_timeout_ms: i64,
}

/// What [`Store::ingest`] committed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum IngestOutcome {
    /// A new message (with `ordering`: and every held successor it let go on, in order).
    Accepted(MessageId),
    /// The key was seen within the window: the first message's ID; nothing new was published.
    Duplicate(MessageId),
    /// `ordering`: the sequence was not above the last one accepted for its key; only the
    /// request was logged (`stale`), and its dedup key was not taken.
    Stale,
    /// `ordering`: a sequence is missing before this one; the request is held (logged `held`)
    /// and becomes the message with this ID when the gap is filled or its wait ends.
    Held(MessageId),
}

/// Durable storage. Every method is atomic on its own.
#[async_trait]
pub trait Store: Send + Sync + 'static {
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
    async fn endpoint_stats(
        &self,
        ep: &EndpointId,
        since: Option<Millis>,
        until: Option<Millis>,
    ) -> Result<EndpointStats>;

    async fn create_event_type(&self, et: EventType) -> Result<EventType>;
    async fn get_event_type(&self, name: &str) -> Result<Option<EventType>>;
    async fn list_event_types(
        &self,
        q: &ListQuery,
        include_archived: bool,
    ) -> Result<Page<EventType>>;
    async fn update_event_type(&self, et: EventType) -> Result<EventType>;
    async fn delete_event_type(&self, name: &str) -> Result<()>;

    /// Commits the message and one pending delivery per matching endpoint, in one durable
    /// transaction. `Conflict` on a repeated `eventId` within the app. With `only`, the message
    /// goes to that one endpoint (send-example) whatever its filters.
    async fn publish(&self, msg: Message, only: Option<EndpointId>) -> Result<Published>;
    /// By message ID or `eventId`.
    async fn get_message(&self, app: &AppId, id_or_event_id: &str) -> Result<Option<Message>>;
    async fn list_messages(
        &self,
        app: &AppId,
        filter: &MessageFilter,
        q: &ListQuery,
    ) -> Result<Page<Message>>;
    /// Removes a payload, keeping the message record.
    async fn expunge_payload(&self, app: &AppId, msg: &MessageId) -> Result<()>;

    async fn deliveries_of_message(&self, msg: &MessageId) -> Result<Vec<Delivery>>;
    async fn deliveries_of_endpoint(
        &self,
        ep: &EndpointId,
        status: Option<i64>,
        q: &ListQuery,
    ) -> Result<Page<(Delivery, Message)>>;
    /// Queues one manual attempt of (message, endpoint) now, creating the delivery if the
    /// endpoint did not receive the message originally.
    async fn resend(
        &self,
        app: &AppId,
        msg: &MessageId,
        ep: &EndpointId,
        now: Millis,
    ) -> Result<()>;
    /// Re-queues the endpoint's `failed` deliveries of messages created in [since, until).
    /// Returns how many were re-queued.
    async fn recover(
        &self,
        ep: &EndpointId,
        since: Millis,
        until: Option<Millis>,
        now: Millis,
    ) -> Result<u64>;

    async fn list_attempts(
        &self,
        app: &AppId,
        scope: &AttemptScope,
        filter: &AttemptFilter,
        q: &ListQuery,
    ) -> Result<Page<Attempt>>;
    async fn get_attempt(&self, app: &AppId, msg: &MessageId, id: &str) -> Result<Option<Attempt>>;

    /// Leases up to `limit` due deliveries (pending and due, or sending with an expired lease)
    /// to `owner` until `now + lease_ms`, fairly across endpoints: round-robin between
    /// endpoints with due work, never more in flight per endpoint than its `maxConcurrency`
    /// (counting every node's leases), within its `throttleRate` token bucket, nothing while
    /// its breaker is open and one probe while half-open, one delivery per ordering key at a
    /// time for `fifo` endpoints.
    async fn claim_due(
        &self,
        owner: &str,
        now: Millis,
        lease_ms: i64,
        limit: usize,
    ) -> Result<ClaimBatch>;
    /// The messages and endpoints claimed deliveries refer to.
    async fn load_for_delivery(
        &self,
        msgs: &[MessageId],
        eps: &[EndpointId],
    ) -> Result<(HashMap<MessageId, Message>, HashMap<EndpointId, Endpoint>)>;
    /// Stores an attempt and applies its consequence to the delivery and to the endpoint
    /// (breaker, pause, disable). Returns the breaker's new state if the attempt moved it.
    async fn record_attempt(&self, rec: AttemptRecord) -> Result<Option<BreakerState>>;
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

    /// Auto-disable: disables every enabled endpoint whose attempts have all failed since
    /// `now - window_ms` or earlier (no success in the window) and ends its waiting deliveries
    /// `failed`. Returns the endpoints disabled.
    async fn disable_failing_endpoints(
        &self,
        now: Millis,
        window_ms: i64,
    ) -> Result<Vec<DisabledEndpoint>>;

    /// Retention: clears payloads of messages past their retention (the message's own, else
    /// `default_retention_ms`) whose deliveries are all finished, and response bodies of
    /// attempts older than `default_retention_ms`. Touches at most `batch` rows of each kind, so
    /// callers loop while it returns a full count; returns how many rows changed.
    async fn purge_expired(
        &self,
        now: Millis,
        default_retention_ms: i64,
        batch: usize,
    ) -> Result<u64>;

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
    async fn ingest(
        &self,
        req: InboundRequest,
        dedup: Option<DedupCheck>,
        msg: Message,
        order: Option<OrderCheck>,
    ) -> Result<IngestOutcome>;
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
    async fn list_inbound(
        &self,
        source: &SourceId,
        status: Option<InboundStatus>,
        q: &ListQuery,
    ) -> Result<Page<InboundRequest>>;
    async fn get_inbound(
        &self,
        source: &SourceId,
        id: &InboundRequestId,
    ) -> Result<Option<InboundRequest>>;
    /// Publishes `msg` for a quarantined request and marks it released, atomically; `NotFound`
    /// unless the request exists and is quarantined.
    async fn release_inbound(
        &self,
        source: &SourceId,
        id: &InboundRequestId,
        msg: Message,
    ) -> Result<Published>;

    /// Encryption-key rotation: re-encrypts every stored secret (endpoint and source secrets)
    /// under `new` and records `new`'s key check, in one transaction. The store must have been
    /// opened with the current key. Returns how many records were re-encrypted.
    async fn rekey(&self, new: herald_core::crypto::SecretBox) -> Result<u64>;

    async fn create_token(&self, rec: TokenRecord, hash: [u8; 32]) -> Result<TokenRecord>;
    async fn find_token(&self, hash: [u8; 32]) -> Result<Option<TokenRecord>>;
    async fn list_tokens(&self) -> Result<Vec<TokenRecord>>;
    async fn delete_token(&self, id: &TokenId) -> Result<()>;

    async fn get_idempotent(
        &self,
        key: [u8; 32],
        since: Millis,
    ) -> Result<Option<IdempotentResponse>>;
    async fn put_idempotent(
        &self,
        key: [u8; 32],
        resp: IdempotentResponse,
        now: Millis,
    ) -> Result<()>;
}
