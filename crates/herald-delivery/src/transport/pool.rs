//! Per-destination connection slots shared by the broker transports: one live connection
//! (or client handle) per broker URL, opened on first use and opened again when the broker
//! transport finds it dead.
//!
//! It knows nothing about any broker; it must not hold its map lock across an await (each
//! destination has its own async lock, so a slow broker never delays another one).

use std::collections::HashMap;
use std::future::Future;
use std::sync::Arc;

use super::Failure;

/// More destinations than this and the pool starts afresh (connections of endpoints that
/// changed their URL would otherwise accumulate forever).
const MAX_DESTINATIONS: usize = 4096;

type Slot<C> = Arc<tokio::sync::Mutex<Option<C>>>;

pub(crate) struct Pool<C> {
    slots: parking_lot::Mutex<HashMap<String, Slot<C>>>,
}

impl<C: Clone + Send> Pool<C> {
    pub fn new() -> Self {
        Self {
            slots: parking_lot::Mutex::new(HashMap::new()),
        }
    }

    fn slot(&self, key: &str) -> Slot<C> {
        let mut slots = self.slots.lock();
        if !slots.contains_key(key) && slots.len() >= MAX_DESTINATIONS {
            slots.clear();
        }
        slots.entry(key.to_string()).or_default().clone()
    }

    /// The pooled connection for `key`, connecting when there is none or `alive` says the
    /// pooled one is dead. Concurrent callers for one destination wait for a single connect
    /// rather than each opening a connection (hundreds of deliveries arrive at once after an
    /// outage).
    pub async fn get<Fut>(
        &self,
        key: &str,
        alive: impl Fn(&C) -> bool,
        connect: impl FnOnce() -> Fut,
    ) -> Result<C, Failure>
    where
        Fut: Future<Output = Result<C, Failure>>,
    {
        let slot = self.slot(key);
        let mut held = slot.lock().await;
        if let Some(c) = held.as_ref().filter(|c| alive(c)) {
            return Ok(c.clone());
        }
        *held = None;
        let c = connect().await?;
        *held = Some(c.clone());
        Ok(c)
    }

    /// Drops the pooled connection of `key`; the next delivery connects again.
    pub async fn forget(&self, key: &str) {
        let slot = self.slot(key);
        *slot.lock().await = None;
    }
}

/// A broker transport: the shared limits and the pool of its connections `C`. Each broker
/// module adds `publish` and `connect` for its own `C`.
pub(crate) struct Pooled<C> {
    pub limits: super::Limits,
    pub pool: Pool<C>,
}

impl<C: Clone + Send> Pooled<C> {
    pub fn new(limits: super::Limits) -> Self {
        Self {
            limits,
            pool: Pool::new(),
        }
    }
}
