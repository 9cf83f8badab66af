//! Records the store's test binaries build alike (the storage suite through `storage_sqlite.rs`
//! and `storage_postgres.rs`, and `fuzz_pagination.rs`): plain values, no store access.

use herald_core::ids::AppId;
use herald_core::model::Application;

/// A new application named `a`, created and updated at `now`.
pub fn app(now: i64) -> Application {
    Application {
        id: AppId::generate(),
        uid: None,
        name: "a".into(),
        throttle_rate: None,
        metadata: Default::default(),
        created_at: now,
        updated_at: now,
    }
}
