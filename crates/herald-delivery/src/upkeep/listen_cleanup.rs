//! Removal of the temporary endpoints of `herald listen` sessions that a crash left behind.
//! Only safe where nothing else can hold a session open: the binary calls it on single-node
//! SQLite, whose data-dir lock proves that; in a cluster another node may hold one
//! (docs/inbound.md says how those are cleaned up).

use herald_store::{ListQuery, Store, StoreError};

use crate::listen::{session_of, LISTEN_UID_PREFIX};

/// Pages walked per list when looking for leftover listen endpoints (bounds the start-up scan).
const LISTEN_SCAN_PAGES: usize = 10_000;

fn page(iterator: Option<String>) -> ListQuery {
    ListQuery {
        limit: 250,
        iterator,
        backwards: false,
        descending: false,
        before: None,
        after: None,
    }
}

/// Deletes every leftover listen endpoint; returns how many.
pub async fn remove_stale_listen_endpoints(store: &dyn Store) -> Result<u64, StoreError> {
    let mut removed = 0;
    let mut apps_after = None;
    for _ in 0..LISTEN_SCAN_PAGES {
        let apps = store.list_apps(&page(apps_after.take())).await?;
        for app in &apps.items {
            removed += remove_in_app(store, &app.id).await?;
        }
        match apps.items.last() {
            Some(last) if apps.has_more => apps_after = Some(last.id.0.clone()),
            _ => break,
        }
    }
    Ok(removed)
}

async fn remove_in_app(
    store: &dyn Store,
    app: &herald_core::ids::AppId,
) -> Result<u64, StoreError> {
    let mut removed = 0;
    let mut eps_after = None;
    for _ in 0..LISTEN_SCAN_PAGES {
        let eps = store.list_endpoints(app, &page(eps_after.take())).await?;
        for ep in &eps.items {
            let temporary = ep
                .uid
                .as_deref()
                .is_some_and(|u| u.starts_with(LISTEN_UID_PREFIX))
                && session_of(&ep.url).is_some();
            if temporary {
                store.delete_endpoint(app, &ep.id).await?;
                removed += 1;
            }
        }
        match eps.items.last() {
            Some(last) if eps.has_more => eps_after = Some(last.id.0.clone()),
            _ => break,
        }
    }
    Ok(removed)
}
