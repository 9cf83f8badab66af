//! The reconciliation role (destinations.md "Pulling from providers"): per source with a
//! `poll`, when it runs next, where a paging run stopped (its cursor), how the last runs went,
//! and which node holds the run (a lease, so in a cluster one node polls a source at a time).
//!
//! This module declares the contract and the types both backends share; the statements are
//! in `sqlite/reconcile.rs` and `postgres/reconcile.rs`. It must not fetch anything or decide
//! when to poll (the API crate's poller does, with `herald_core::reconcile`).

use async_trait::async_trait;
use herald_core::ids::{AppId, SourceId};
use herald_core::Millis;

use crate::{Result, StoreError};

/// A source's poll bookkeeping (table `source_poll`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PollState {
    pub source_id: SourceId,
    pub app_id: AppId,
    /// Where the next run resumes (a cursor value or a next-page URL); `None`: the first page.
    pub cursor: Option<String>,
    pub next_at: Millis,
    pub last_success_at: Option<Millis>,
    pub last_error: Option<String>,
    pub last_error_at: Option<Millis>,
    /// Failed runs since the last success.
    pub failures: u32,
}

/// Leasing due polls to one node.
#[derive(Clone, Debug)]
pub struct PollClaim {
    pub owner: String,
    pub now: Millis,
    /// The lease lasts this long: a node that dies mid-run frees the source after it.
    pub lease_ms: i64,
    pub limit: usize,
}

/// How a leased run ended.
#[derive(Clone, Debug)]
pub struct PollFinish {
    pub source_id: SourceId,
    pub owner: String,
    pub now: Millis,
    pub next_at: Millis,
    /// `next_at` as the claim found it: when it changed during the run (a "poll now" or a new
    /// configuration), the earlier of the two times wins, so that request is not lost.
    pub claimed_next_at: Millis,
    /// `Ok(cursor)`: succeeded, resume there next time; `Err(reason)`: failed, keep the cursor.
    pub result: std::result::Result<Option<String>, String>,
}

/// Columns of `source_poll`, in the order the row mappers read them.
pub(crate) const POLL_COLS: &str = "source_id, app_id, cursor, next_at, last_success_at, \
     last_error, last_error_at, failures";

/// Error texts are kept short: a provider may answer with anything.
pub(crate) fn clip(reason: &str) -> String {
    reason.chars().take(1_000).collect()
}

/// A stored options document with encrypted strings (endpoint and source options).
pub(crate) trait Sealed: serde::Serialize + serde::de::DeserializeOwned {
    /// What a corrupt record is reported as.
    const WHAT: &'static str;
    fn sealed(&mut self) -> Vec<&mut String>;
}

impl Sealed for herald_core::source::SourceOptions {
    const WHAT: &'static str = "source options";
    fn sealed(&mut self) -> Vec<&mut String> {
        self.sealed_fields_mut().collect()
    }
}

impl Sealed for herald_core::endpoint_options::EndpointOptions {
    const WHAT: &'static str = "endpoint options";
    fn sealed(&mut self) -> Vec<&mut String> {
        self.sealed_fields_mut()
    }
}

/// Re-encrypts the sealed strings of a stored options document from `old` to `new` (key
/// rotation); answers the document to store.
pub(crate) fn reseal<T: Sealed>(
    old: &herald_core::crypto::SecretBox,
    new: &herald_core::crypto::SecretBox,
    id: &str,
    stored: &str,
) -> Result<String> {
    let corrupt = |e: serde_json::Error| StoreError::CorruptRecord {
        what: T::WHAT,
        id: id.to_string(),
        detail: e.to_string(),
    };
    let mut o: T = serde_json::from_str(stored).map_err(corrupt)?;
    for f in o.sealed() {
        let plain = old.decrypt(f).map_err(|_| StoreError::KeyMismatch)?;
        *f = new.encrypt(&plain);
    }
    serde_json::to_string(&o).map_err(corrupt)
}

/// Encrypts a source's sealed option strings for storage.
pub(crate) fn seal_options(
    key: Option<&herald_core::crypto::SecretBox>,
    o: &mut herald_core::source::SourceOptions,
) {
    if let Some(b) = key {
        for f in o.sealed_fields_mut() {
            *f = b.encrypt(f);
        }
    }
}

/// Reverses [`seal_options`].
pub(crate) fn unseal_options(
    key: Option<&herald_core::crypto::SecretBox>,
    o: &mut herald_core::source::SourceOptions,
) -> Result<()> {
    if let Some(b) = key {
        for f in o.sealed_fields_mut() {
            *f = b.decrypt(f).map_err(|_| StoreError::KeyMismatch)?;
        }
    }
    Ok(())
}

/// Reconciliation polls: schedule, lease, outcome. Every method is atomic on its own.
#[rustfmt::skip]
#[async_trait]
pub trait ReconcileStore: Send + Sync + 'static {
    /// `Some(at)`: the source polls, next at `at` (created or kept, its cursor cleared: a new
    /// configuration starts from the first page). `None`: the source does not poll (row gone).
    async fn schedule_poll(&self, source: &SourceId, app: &AppId, next_at: Option<Millis>) -> Result<()>;

    /// Leases up to `claim.limit` polls due at `claim.now` whose lease is free or expired.
    /// Safe when several nodes claim at once: each due poll goes to one of them.
    async fn claim_polls(&self, claim: PollClaim) -> Result<Vec<PollState>>;

    /// Records a run's outcome and frees the lease; nothing when `owner` lost the lease.
    async fn finish_poll(&self, f: PollFinish) -> Result<()>;

    async fn poll_state(&self, source: &SourceId) -> Result<Option<PollState>>;

    /// Whether an inbound dedup key was taken since `since` (a poll skips known items without
    /// fetching or logging them again).
    async fn dedup_seen(&self, key: [u8; 32], since: Millis) -> Result<bool>;
}
