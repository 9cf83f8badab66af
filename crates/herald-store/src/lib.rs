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

use herald_core::breaker::BreakerState;
use herald_core::ids::{AppId, EndpointId, MessageId, TokenId};
use herald_core::model::{Attempt, Endpoint, Message};
use herald_core::Millis;

mod backend;
mod cols;
mod common;
pub mod console;
mod internal;
pub mod ops;
pub(crate) mod page;
pub mod postgres;
pub mod pull;
pub mod reconcile;
pub mod roles;
mod sched;
mod schema;
pub mod sqlite;
pub(crate) mod status;

pub use console::{AttemptRate, ConsoleStore, OpenBreaker};
pub use ops::OpsLog;
pub use pull::{PollPage, PollRequest, PollToken, PolledEvent};
pub use reconcile::{PollClaim, PollFinish, PollState, ReconcileStore};
pub use roles::{
    AppStore, AuthStore, InboundStore, MessageStore, OpsStore, PullStore, QueueStore, Store,
};

/// The role traits, for `use herald_store::prelude::*;` where methods are called on a store.
pub mod prelude {
    pub use crate::console::ConsoleStore;
    pub use crate::reconcile::ReconcileStore;
    pub use crate::roles::{
        AppStore, AuthStore, InboundStore, MessageStore, OpsStore, PullStore, QueueStore, Store,
    };
}
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
    /// A stored record's JSON column no longer decodes into its type (written by another
    /// version, or changed by hand): reading the record fails visibly instead of reading
    /// defaults. Callers answer 500.
    #[error("corrupt {what} of {id}: {detail}")]
    CorruptRecord {
        /// Which column of which kind of record, e.g. `source options`.
        what: &'static str,
        /// The record's ID.
        id: String,
        /// Why it does not decode.
        detail: String,
    },
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

/// Attempts to one endpoint within one hour, by outcome (the console's 24 h chart).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct HourCount {
    /// The first millisecond of the hour, counted from the `since` the query was given.
    pub start: Millis,
    pub success: u64,
    pub fail: u64,
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

/// Encrypts the credentials of a broker endpoint's URL in place (destinations.md): the
/// stored URL keeps scheme, user, host and parameters readable, and only the secret part
/// becomes `sealed.<hex>`. HTTP URLs never carry credentials and pass unchanged.
pub(crate) fn seal_url(key: Option<&herald_core::crypto::SecretBox>, url: &mut String) {
    if let Some(b) = key {
        *url = herald_core::destination::seal_secret(url, |s| b.encrypt(s));
    }
}

/// Reverses [`seal_url`].
pub(crate) fn unseal_url(
    key: Option<&herald_core::crypto::SecretBox>,
    url: &mut String,
) -> Result<()> {
    if let Some(b) = key {
        *url = herald_core::destination::unseal_secret(
            url,
            |s| b.decrypt(s).map_err(|_| StoreError::KeyMismatch),
            StoreError::KeyMismatch,
        )?;
    }
    Ok(())
}

/// A stored broker URL sealed under `old`, sealed under `new` instead (`rekey`).
pub(crate) fn reseal_url(
    old: &herald_core::crypto::SecretBox,
    new: &herald_core::crypto::SecretBox,
    url: &str,
) -> Result<String> {
    let mut url = url.to_string();
    unseal_url(Some(old), &mut url)?;
    seal_url(Some(new), &mut url);
    Ok(url)
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

/// Re-encrypts stored signing secrets sealed under `old` under `new` instead (`rekey`).
pub(crate) fn reseal_secrets(
    old: &herald_core::crypto::SecretBox,
    new: &herald_core::crypto::SecretBox,
    secrets: &mut [herald_core::model::StoredSecret],
) -> Result<()> {
    unseal_secrets(Some(old), secrets)?;
    seal_secrets(Some(new), secrets);
    Ok(())
}

/// Encrypts every secret of an endpoint for storage: its signing secrets and the secret
/// strings among its options.
pub(crate) fn seal_endpoint(
    key: Option<&herald_core::crypto::SecretBox>,
    mut ep: herald_core::model::Endpoint,
) -> herald_core::model::Endpoint {
    seal_secrets(key, &mut ep.secrets);
    seal_url(key, &mut ep.url);
    if let Some(b) = key {
        for f in ep.options.sealed_fields_mut() {
            *f = b.encrypt(f);
        }
    }
    ep
}

/// Decrypts what [`seal_endpoint`] encrypted.
pub(crate) fn unseal_endpoint(
    key: Option<&herald_core::crypto::SecretBox>,
    mut ep: herald_core::model::Endpoint,
) -> Result<herald_core::model::Endpoint> {
    unseal_secrets(key, &mut ep.secrets)?;
    unseal_url(key, &mut ep.url)?;
    if let Some(b) = key {
        for f in ep.options.sealed_fields_mut() {
            *f = b.decrypt(f).map_err(|_| StoreError::KeyMismatch)?;
        }
    }
    Ok(ep)
}

/// Re-encrypts the sealed fields of a stored options document from `old` to `new` (key
/// rotation); answers the document to store.
pub(crate) fn rekey_options(
    old: &herald_core::crypto::SecretBox,
    new: &herald_core::crypto::SecretBox,
    id: &str,
    stored: &str,
) -> Result<String> {
    reconcile::reseal::<herald_core::endpoint_options::EndpointOptions>(old, new, id, stored)
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

/// One claim of due deliveries ([`QueueStore::claim_due`]).
#[derive(Clone, Debug)]
pub struct Claim {
    /// Who holds the leases (this node).
    pub owner: String,
    pub now: Millis,
    /// How long each lease lasts: a delivery leased now is claimable again at `now + lease_ms`.
    pub lease_ms: i64,
    /// Most deliveries to lease.
    pub limit: usize,
}

/// The messages and endpoints claimed deliveries refer to, by ID
/// ([`QueueStore::load_for_delivery`]).
pub type ForDelivery = (HashMap<MessageId, Message>, HashMap<EndpointId, Endpoint>);

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
    /// How this result counts for the endpoint's breaker.
    pub breaker: BreakerUse,
}

/// How an attempt counts for its endpoint's circuit breaker.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BreakerUse {
    /// The cool-downs the breaker uses if this result opens it.
    pub policy: herald_core::breaker::BreakerPolicy,
    /// Whether the result counts at all: every attempt's does, except that a batch (one
    /// request carrying several deliveries) counts once, through its first delivery.
    pub counts: bool,
}

impl Default for BreakerUse {
    fn default() -> Self {
        herald_core::breaker::BreakerPolicy::default().into()
    }
}

impl From<herald_core::breaker::BreakerPolicy> for BreakerUse {
    fn from(policy: herald_core::breaker::BreakerPolicy) -> Self {
        Self {
            policy,
            counts: true,
        }
    }
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

/// What [`InboundStore::ingest`] committed.
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

/// A change that had to touch a row: [`StoreError::NotFound`] when it touched none.
pub(crate) fn found(n: usize) -> Result<()> {
    match n {
        0 => Err(StoreError::NotFound),
        _ => Ok(()),
    }
}
