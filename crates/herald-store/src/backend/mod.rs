//! The crate-internal seam between the storage roles and the two backends. [`Backend`] is what
//! a backend supplies so that the role methods whose logic is the same on both can be written
//! once (`generic.rs`): a few primitives (statements run in one transaction, one row, all rows
//! or a page, decoded through [`Record`]), the spelling of what differs by dialect, and hooks
//! where a backend must behave its own way — PostgreSQL remembers what publishing reads, to
//! serve it while the database is unreachable; SQLite answers point reads on the calling task.
//! The hook traits (`AppHooks`, `MessageHooks`, `InboundHooks`, `OpsHooks`) hold the role
//! methods that stay per backend (locks, queue positions, the outage spool).
//!
//! Statements given to the primitives are written once with `$1`… marks (SQLite reads them as
//! `?1`…). This module holds no statement of one dialect and runs nothing itself. The traits are
//! `pub` in a private module: they bound the public role impls but cannot be named outside the
//! crate, so no third backend can appear.

use std::future::Future;
use std::pin::Pin;

use async_trait::async_trait;
use herald_core::crypto::SecretBox;
use herald_core::ids::{AppId, EndpointId, MessageId, SourceId, TokenId};
use herald_core::model::{Application, Endpoint, EventType, InboundRequest, Message, Source};
use herald_core::Millis;

use crate::cols::{insert_sql, update_sql, Table};
use crate::page::{Arg, Listing};
use crate::{
    DedupCheck, DisabledEndpoint, HourCount, IngestOutcome, ListQuery, OrderCheck, Page, Published,
    Result, SpoolHealth, TokenRecord, WriteFailure,
};

mod cells;
mod generic;
mod records;
pub(crate) mod rows;

pub use cells::Cells;
pub(crate) use records::Record;

/// One statement of a write: `$n` marks, the arguments they take, and whether it must change a
/// row ([`crate::StoreError::NotFound`] otherwise, and the write is undone).
pub struct Step {
    pub(crate) sql: String,
    pub(crate) args: Vec<Arg>,
    pub(crate) must_change: bool,
}

impl Step {
    pub(crate) fn new(sql: impl Into<String>, args: Vec<Arg>) -> Self {
        Self {
            sql: sql.into(),
            args,
            must_change: false,
        }
    }

    /// A statement that must change a row.
    pub(crate) fn must(sql: impl Into<String>, args: Vec<Arg>) -> Self {
        Self {
            must_change: true,
            ..Self::new(sql, args)
        }
    }
}

/// A read that may be answered from memory (see [`Recall`]).
pub(crate) type Reading<'a, T> = Pin<Box<dyn Future<Output = Result<Option<T>>> + Send + 'a>>;

/// A manual resend of one message to one endpoint (`MessageStore::resend`).
pub struct Resend<'a> {
    pub(crate) app: &'a AppId,
    pub(crate) msg: &'a MessageId,
    pub(crate) ep: &'a EndpointId,
    pub(crate) now: Millis,
}

/// A recovery of an endpoint's failed deliveries (`MessageStore::recover`).
pub struct Recover<'a> {
    pub(crate) ep: &'a EndpointId,
    pub(crate) since: Millis,
    pub(crate) until: Option<Millis>,
    pub(crate) now: Millis,
}

/// What one ingestion commits: the request, its dedup and ordering checks, and its message.
pub(crate) type Ingestion = (
    InboundRequest,
    Option<DedupCheck>,
    Message,
    Option<OrderCheck>,
);

/// The primitives of a backend (see the module documentation).
#[async_trait]
pub trait Backend: Recall + Send + Sync + 'static {
    /// The test that the message `m` has one channel (one `?`).
    const CHANNEL: &'static str;
    /// What the messages-by-status listing reads: `deliveries d` joined to `messages m`.
    const BY_STATUS: &'static str;

    /// The key secrets are sealed with (`None`: stored as given, for tests).
    fn key(&self) -> Option<&SecretBox>;

    /// Runs `steps` in order in one transaction, committed before it answers; how many rows
    /// they changed in all.
    async fn apply(&self, steps: Vec<Step>) -> Result<u64>;

    /// The row (if any) `sql` finds.
    async fn fetch_opt<T: Record>(&self, sql: String, args: Vec<Arg>) -> Result<Option<T>>;

    /// The row (if any) `sql` finds by key: a point lookup, which SQLite answers on the calling
    /// task from the page cache rather than in the blocking pool.
    async fn fetch_point<T: Record>(&self, sql: String, args: Vec<Arg>) -> Result<Option<T>> {
        self.fetch_opt(sql, args).await
    }

    /// Every row `sql` finds, in its order.
    async fn fetch_all<T: Record>(&self, sql: String, args: Vec<Arg>) -> Result<Vec<T>>;

    /// One page of `l` for `q`.
    async fn fetch_page<T: Record>(&self, l: Listing, q: &ListQuery) -> Result<Page<T>>;

    /// Stores a new `e` (a taken unique column is `Conflict`).
    async fn insert_row<E: Table>(&self, e: E) -> Result<E> {
        let sql = insert_sql::<E>('$');
        self.apply(vec![Step::new(sql, e.args(true))]).await?;
        Ok(e)
    }

    /// Rewrites the stored `e`; `NotFound` when there is none.
    async fn update_row<E: Table>(&self, e: E) -> Result<E> {
        let sql = update_sql::<E>('$');
        self.apply(vec![Step::must(sql, e.args(false))]).await?;
        Ok(e)
    }

    /// `s` with its secrets sealed for storage.
    fn seal_source(&self, mut s: Source) -> Source {
        crate::seal_secrets(self.key(), &mut s.secrets);
        crate::reconcile::seal_options(self.key(), &mut s.options);
        s
    }

    /// A stored source with its secrets opened.
    fn unseal_source(&self, mut s: Source) -> Result<Source> {
        crate::unseal_secrets(self.key(), &mut s.secrets)?;
        crate::reconcile::unseal_options(self.key(), &mut s.options)?;
        Ok(s)
    }

    /// A stored endpoint with its secrets opened.
    fn unseal_endpoint(&self, ep: Endpoint) -> Result<Endpoint> {
        crate::unseal_endpoint(self.key(), ep)
    }
}

/// The reads of what publishing needs, and the forgetting of them. PostgreSQL remembers each
/// answer and serves it while the database is unreachable (its outage spool takes the
/// publishes); SQLite reads through, the defaults. Written one line a method (`rustfmt::skip`),
/// as the roles are.
#[rustfmt::skip]
#[async_trait]
pub trait Recall: Send + Sync {
    /// The application `key` (ID or uid), read by `read`.
    async fn recall_app(&self, _key: &str, read: Reading<'_, Application>) -> Result<Option<Application>> { read.await }

    /// The event type `name`, read by `read`; an absent one is remembered as absent.
    async fn recall_event_type(&self, _name: &str, read: Reading<'_, EventType>) -> Result<Option<EventType>> { read.await }

    /// The API token of `hash`, read by `read`.
    async fn recall_token(&self, _hash: [u8; 32], read: Reading<'_, TokenRecord>) -> Result<Option<TokenRecord>> { read.await }

    /// The source `id` as stored (sealed), read by `read`.
    async fn recall_source(&self, _id: &str, read: Reading<'_, Source>) -> Result<Option<Source>> { read.await }

    /// The token `id` is about to be revoked: nothing may serve it from memory any more.
    fn forget_token(&self, _id: &TokenId) {}

    /// The source `id` was deleted: nothing may serve it from memory any more.
    fn forget_source(&self, _id: &SourceId) {}
}

/// The [`crate::AppStore`] methods each backend writes its own way (locks, queue positions).
#[async_trait]
pub trait AppHooks: Backend {
    async fn insert_endpoint(&self, ep: Endpoint) -> Result<Endpoint>;

    async fn replace_endpoint(&self, ep: Endpoint) -> Result<Endpoint>;

    async fn hour_counts(&self, ep: &EndpointId, since: Millis) -> Result<Vec<HourCount>>;
}

/// The [`crate::MessageStore`] methods each backend writes its own way.
#[async_trait]
pub trait MessageHooks: Backend {
    async fn publish_one(&self, msg: Message, only: Option<EndpointId>) -> Result<Published>;

    async fn resend_one(&self, r: Resend<'_>) -> Result<()>;

    async fn recover_failed(&self, r: Recover<'_>) -> Result<u64>;
}

/// The [`crate::InboundStore`] methods each backend writes its own way.
#[async_trait]
pub trait InboundHooks: Backend {
    async fn ingest_work(&self, work: Ingestion) -> Result<IngestOutcome>;

    async fn sweep_held(&self, now: Millis, max_keys: usize) -> Result<u64>;

    async fn log_request(&self, req: InboundRequest) -> Result<()>;

    /// Publishes `msg` in the transaction of `guard`, which must change a row.
    async fn publish_guarded(&self, guard: Step, msg: Message) -> Result<Published>;
}

/// The [`crate::OpsStore`] methods each backend answers its own way.
#[async_trait]
pub trait OpsHooks: Backend {
    async fn alive(&self) -> Result<()>;

    fn write_failure(&self) -> Option<WriteFailure>;

    fn spool_state(&self) -> Option<SpoolHealth> {
        None
    }

    async fn disable_failing(&self, now: Millis, window_ms: i64) -> Result<Vec<DisabledEndpoint>>;

    async fn rekey_all(&self, new: SecretBox) -> Result<u64>;
}
