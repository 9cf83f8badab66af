//! The shared storage suite (`suite/body.rs`) against the embedded SQLite backend, on a real
//! file in a temporary directory.

mod records;

use std::sync::Arc;

use herald_core::ids::{AppId, AttemptId, EndpointId, MessageId};
use herald_core::model::{
    Application, Attempt, DeliveryStatus, Endpoint, Message, Ordering, TriggerType,
};
use herald_core::signing::SignatureScheme;
use herald_store::SqliteStore;
use herald_store::{AttemptRecord, ListQuery, NextState, Store, StoreError};
use records::app;

async fn setup() -> (tempfile::TempDir, Arc<dyn Store>, Application) {
    let dir = tempfile::tempdir().unwrap();
    let store: Arc<dyn Store> = Arc::new(SqliteStore::open(dir.path().join("h.db")).unwrap());
    let a = store.create_app(app(1)).await.unwrap();
    (dir, store, a)
}

/// The same database, opened again (what a restart sees).
async fn reopen(dir: &tempfile::TempDir) -> Arc<dyn Store> {
    Arc::new(SqliteStore::open(dir.path().join("h.db")).unwrap())
}

/// The same database, opened with secrets encrypted at rest under `key`.
async fn reopen_keyed(
    dir: &tempfile::TempDir,
    key: herald_core::crypto::SecretBox,
) -> Arc<dyn Store> {
    Arc::new(SqliteStore::open_encrypted(dir.path().join("h.db"), key).unwrap())
}

/// Runs `sql` on the database file directly, around the store (to store what it never would).
async fn raw_sql(dir: &tempfile::TempDir, sql: &str) {
    let c = rusqlite::Connection::open(dir.path().join("h.db")).unwrap();
    c.execute_batch(sql).unwrap();
}

macro_rules! setup {
    () => {
        setup().await
    };
}

include!("suite/body.rs");
include!("suite/console.rs");
include!("suite/broker_urls.rs");
include!("suite/pull.rs");
include!("suite/reconcile.rs");
include!("suite/routing.rs");
