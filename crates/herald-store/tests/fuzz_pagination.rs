//! Property-based fuzzing of keyset pagination on the embedded SQLite backend (a real file in a
//! temporary directory; each case opens a fresh store, so the default case count is small).
//!
//! - Applications and one tenant's messages, paged forwards with random page sizes in both
//!   orders, then backwards from the last page through each page's `prevIterator` (its first
//!   ID with a leading `-`, i.e. `backwards`): every item is seen exactly once, in order, and
//!   `has_more` is true exactly when items remain.
//! - Garbage iterators (any text, with or without the backwards flag, with random
//!   `before`/`after` bounds): an error or a page — never a panic, never another tenant's
//!   message, never an item outside the bounds.
//!
//! Run long: `HERALD_FUZZ_SECONDS=600 cargo test --release -p herald-store --test
//! fuzz_pagination -- --nocapture`.

#[path = "../../herald-core/tests/fuzz_support/mod.rs"]
mod fuzz_support;
mod records;

use std::sync::Arc;

use herald_core::ids::{AppId, MessageId};
use herald_core::model::Message;
use herald_store::{ListQuery, MessageFilter, Page, SqliteStore, Store};
use proptest::prelude::*;
use proptest::test_runner::TestCaseResult;
use records::app;

const PERSIST: &str = "proptest-regressions/fuzz_pagination.txt";

fn message(app: &AppId, now: i64) -> Message {
    Message {
        id: MessageId::generate(),
        app_id: app.clone(),
        event_id: None,
        event_type: "t".into(),
        payload: Some("{}".into()),
        channels: None,
        created_at: now,
        retention_ms: None,
        ordering_key: None,
        headers: None,
    }
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime")
}

/// A fresh store with `apps` extra applications and two tenants (`a` with `mine` messages,
/// `b` with `theirs`).
struct World {
    _dir: tempfile::TempDir,
    store: Arc<dyn Store>,
    a: AppId,
    b: AppId,
    /// All application IDs, and tenant `a`'s message IDs, sorted ascending.
    app_ids: Vec<String>,
    msg_ids: Vec<String>,
}

async fn world(apps: usize, mine: usize, theirs: usize) -> World {
    let dir = tempfile::tempdir().expect("temp dir");
    let store: Arc<dyn Store> = Arc::new(SqliteStore::open(dir.path().join("h.db")).expect("open"));
    let mut app_ids = Vec::new();
    let a = store.create_app(app(1)).await.expect("app a").id;
    let b = store.create_app(app(2)).await.expect("app b").id;
    app_ids.extend([a.0.clone(), b.0.clone()]);
    for i in 0..apps {
        app_ids.push(
            store
                .create_app(app(10 + i as i64))
                .await
                .expect("app")
                .id
                .0,
        );
    }
    let mut msg_ids = Vec::new();
    // Interleaved, so the other tenant's IDs sit between ours.
    for i in 0..mine.max(theirs) {
        if i < mine {
            let m = store.publish(message(&a, 100 + i as i64), None).await;
            msg_ids.push(m.expect("publish").message.id.0);
        }
        if i < theirs {
            store
                .publish(message(&b, 100 + i as i64), None)
                .await
                .expect("publish");
        }
    }
    app_ids.sort();
    msg_ids.sort();
    World {
        _dir: dir,
        store,
        a,
        b,
        app_ids,
        msg_ids,
    }
}

#[derive(Clone, Copy)]
enum Kind {
    Apps,
    Messages,
}

async fn page(w: &World, kind: Kind, q: &ListQuery) -> herald_store::Result<Page<String>> {
    match kind {
        Kind::Apps => Ok(w.store.list_apps(q).await?.try_map(|a| Ok(a.id.0))?),
        Kind::Messages => {
            let p = w
                .store
                .list_messages(&w.a, &MessageFilter::default(), q)
                .await?;
            Ok(p.try_map(|m| Ok(m.id.0))?)
        }
    }
}

/// Forwards to the end, then back to the start through the `prevIterator`s.
async fn walk(w: &World, kind: Kind, descending: bool, limits: &[usize]) -> TestCaseResult {
    let mut expected = match kind {
        Kind::Apps => w.app_ids.clone(),
        Kind::Messages => w.msg_ids.clone(),
    };
    if descending {
        expected.reverse();
    }
    let mut limit = limits.iter().copied().cycle();
    let mut q = ListQuery {
        limit: limit.next().unwrap_or(1),
        descending,
        ..Default::default()
    };
    let mut seen: Vec<String> = Vec::new();
    let mut last_page;
    // Bounded: every page but the last holds at least one item.
    for _ in 0..=expected.len() + 1 {
        let p = page(w, kind, &q).await.expect("a valid page");
        prop_assert!(p.items.len() <= q.limit);
        seen.extend(p.items.iter().cloned());
        prop_assert_eq!(p.has_more, seen.len() < expected.len(), "has_more forwards");
        last_page = p.items.clone();
        if !p.has_more {
            prop_assert_eq!(&seen, &expected, "forwards");
            // Backwards from the last page.
            let mut back: Vec<String> = last_page.clone();
            let mut first = last_page.first().cloned();
            for _ in 0..=expected.len() + 1 {
                let Some(f) = first.take() else { break };
                let bq = ListQuery {
                    limit: limit.next().unwrap_or(1),
                    iterator: Some(f),
                    backwards: true,
                    descending,
                    ..Default::default()
                };
                let p = page(w, kind, &bq).await.expect("a valid page");
                prop_assert!(p.items.len() <= bq.limit);
                let mut items = p.items.clone();
                items.extend(back);
                back = items;
                prop_assert_eq!(
                    p.has_more,
                    back.len() < expected.len(),
                    "has_more backwards"
                );
                if p.has_more {
                    first = p.items.first().cloned();
                }
            }
            prop_assert_eq!(&back, &expected, "backwards");
            return Ok(());
        }
        q = ListQuery {
            limit: limit.next().unwrap_or(1),
            iterator: seen.last().cloned(),
            descending,
            ..Default::default()
        };
    }
    Err(TestCaseError::fail("forward paging did not end"))
}

#[test]
fn fuzz_pages_cover_every_item_once_in_order_both_ways() {
    fuzz_support::run(
        "store::list_apps/list_messages (forwards, then back via prevIterator)",
        PERSIST,
        16,
        (
            0usize..10,
            0usize..16,
            0usize..6,
            any::<bool>(),
            prop::collection::vec(1usize..=250, 1..6).prop_map(|v| {
                v.into_iter()
                    .map(|l| if l > 20 { l % 7 + 1 } else { l })
                    .collect::<Vec<_>>()
            }),
        ),
        |(apps, mine, theirs, descending, limits)| {
            runtime().block_on(async {
                let w = world(apps, mine, theirs).await;
                walk(&w, Kind::Apps, descending, &limits).await?;
                walk(&w, Kind::Messages, descending, &limits).await
            })
        },
    );
}

#[test]
fn fuzz_garbage_iterators_give_an_error_or_a_valid_page() {
    let iterator = prop_oneof![
        ".{0,30}",
        "[ -~]{0,30}",
        Just("msg_".to_string()),
        Just("\u{0}".to_string()),
        Just("' OR 1=1 --".to_string()),
        Just("zzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzz".to_string()),
    ];
    fuzz_support::run(
        "store::list_messages (garbage iterators, bounds)",
        PERSIST,
        16,
        (
            prop::collection::vec(
                (
                    iterator,
                    any::<bool>(),
                    any::<bool>(),
                    1usize..=250,
                    prop::option::of(any::<i64>()),
                    prop::option::of(any::<i64>()),
                ),
                1..8,
            ),
            0usize..8,
            0usize..8,
        ),
        |(queries, mine, theirs)| {
            runtime().block_on(async {
                let w = world(0, mine, theirs).await;
                for (it, backwards, descending, limit, before, after) in queries {
                    let q = ListQuery {
                        limit,
                        iterator: Some(it),
                        backwards,
                        descending,
                        before,
                        after,
                    };
                    let Ok(p) = w
                        .store
                        .list_messages(&w.a, &MessageFilter::default(), &q)
                        .await
                    else {
                        continue;
                    };
                    prop_assert!(p.items.len() <= limit);
                    for m in &p.items {
                        prop_assert_eq!(&m.app_id, &w.a, "another tenant's message");
                        prop_assert!(w.msg_ids.contains(&m.id.0));
                        prop_assert!(before.is_none_or(|b| m.created_at < b));
                        prop_assert!(after.is_none_or(|a| m.created_at > a));
                    }
                    // And the other tenant sees only its own.
                    if let Ok(p) = w
                        .store
                        .list_messages(&w.b, &MessageFilter::default(), &q)
                        .await
                    {
                        prop_assert!(p.items.iter().all(|m| m.app_id == w.b));
                    }
                }
                Ok(())
            })
        },
    );
}
