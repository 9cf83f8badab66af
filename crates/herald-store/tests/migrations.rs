//! Databases written by the previous release (`fixtures/`), opened by this one: every
//! migration since applies, and what they hold stays readable — secrets still decrypt, and
//! options added since read as their defaults. PostgreSQL runs when `TEST_DATABASE_URL` is set
//! (always under `CI=true`, see `storage_postgres.rs`).

mod pg_support;

use std::sync::Arc;

use herald_core::crypto::SecretBox;
use herald_store::prelude::*;
use herald_store::{ListQuery, MessageFilter, PostgresStore, SqliteStore};

const SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";

fn key() -> SecretBox {
    let text = include_str!("fixtures/previous-release.key");
    SecretBox::from_base64(text.trim()).unwrap()
}

/// What the previous release stored, read through the current store.
async fn check(store: Arc<dyn Store>) {
    let app = store
        .get_app("acme")
        .await
        .unwrap()
        .expect("the app survives");
    let mut ep = store
        .get_endpoint(&app.id, "main")
        .await
        .unwrap()
        .expect("the endpoint survives");
    assert_eq!(ep.url, "https://receiver.example/hooks");
    assert_eq!(ep.event_types, Some(vec!["invoice.paid".to_string()]));
    assert_eq!(ep.secrets[0].key, SECRET, "the secret still decrypts");
    assert!(
        ep.options.is_default(),
        "options added since read as defaults"
    );

    let msgs = store
        .list_messages(
            &app.id,
            &MessageFilter::default(),
            &ListQuery {
                limit: 10,
                ..Default::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(msgs.items.len(), 1);
    assert_eq!(msgs.items[0].event_type, "invoice.paid");

    // The migrated row takes writes of the new shape.
    ep.description = "after the upgrade".into();
    ep.updated_at += 1;
    let back = store.update_endpoint(ep).await.unwrap();
    assert_eq!(back.description, "after the upgrade");
    let again = store.get_endpoint(&app.id, "main").await.unwrap().unwrap();
    assert_eq!(again.description, "after the upgrade");
    assert_eq!(again.secrets[0].key, SECRET);
}

#[tokio::test]
async fn a_sqlite_database_of_the_previous_release_opens_and_reads() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("herald.db");
    std::fs::copy(
        concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/fixtures/previous-release.sqlite"
        ),
        &path,
    )
    .unwrap();
    let store = SqliteStore::open_encrypted(&path, key()).unwrap();
    check(Arc::new(store)).await;
    // Opening again (a restart) applies nothing twice.
    let store = SqliteStore::open_encrypted(&path, key()).unwrap();
    check(Arc::new(store)).await;
}

#[tokio::test]
async fn a_postgres_database_of_the_previous_release_opens_and_reads() {
    use sqlx::Connection;
    let Some(admin_url) = pg_support::admin_url() else {
        return;
    };
    let url = pg_support::fresh_database(&admin_url, "prev").await;
    let mut c = sqlx::PgConnection::connect(&url).await.unwrap();
    let dump = include_str!("fixtures/previous-release.postgres.sql");
    sqlx::Executor::execute(&mut c, dump).await.unwrap();
    c.close().await.unwrap();

    let store = PostgresStore::connect(&url, Some(key())).await.unwrap();
    check(Arc::new(store)).await;
    let store = PostgresStore::connect(&url, Some(key())).await.unwrap();
    check(Arc::new(store)).await;
}
