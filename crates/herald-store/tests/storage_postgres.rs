//! The shared storage suite (`suite/body.rs`) against the PostgreSQL backend. Each test gets
//! a fresh database in the cluster named by `TEST_DATABASE_URL` (`scripts/test.sh` starts a
//! throwaway cluster on loopback and sets it). Without that variable the tests are skipped
//! with a note — except under `CI=true`, where a missing database is a failure.

use std::sync::Arc;

use herald_core::ids::{AppId, AttemptId, EndpointId, MessageId};
use herald_core::model::{
    Application, Attempt, DeliveryStatus, Endpoint, Message, Ordering, TriggerType,
};
use herald_core::signing::SignatureScheme;
use herald_store::PostgresStore;
use herald_store::{AttemptRecord, ListQuery, NextState, Store, StoreError};

async fn setup() -> Option<(String, Arc<dyn Store>, Application)> {
    let Ok(admin_url) = std::env::var("TEST_DATABASE_URL") else {
        assert!(
            std::env::var("CI").is_err(),
            "TEST_DATABASE_URL is not set under CI: scripts/test.sh starts PostgreSQL and sets it"
        );
        eprintln!("skipped: TEST_DATABASE_URL not set (run scripts/test.sh to start PostgreSQL)");
        return None;
    };
    let url = fresh_database(&admin_url).await;
    let store: Arc<dyn Store> = Arc::new(PostgresStore::connect(&url, None).await.unwrap());
    let a = store.create_app(app(1)).await.unwrap();
    Some((url, store, a))
}

/// The same database, connected again (what a restart sees).
async fn reopen(url: &str) -> Arc<dyn Store> {
    Arc::new(PostgresStore::connect(url, None).await.unwrap())
}

/// Creates an empty database and returns its URL.
async fn fresh_database(admin_url: &str) -> String {
    use sqlx::Connection;
    let name = format!("suite_{}", ulid::Ulid::new().to_string().to_lowercase());
    let mut c = sqlx::PgConnection::connect(admin_url).await.unwrap();
    sqlx::query(&format!("CREATE DATABASE {name}"))
        .execute(&mut c)
        .await
        .unwrap();
    let (base, _) = admin_url
        .rsplit_once('/')
        .expect("URL with a database name");
    format!("{base}/{name}")
}

macro_rules! setup {
    () => {
        match setup().await {
            Some(s) => s,
            None => return,
        }
    };
}

include!("suite/body.rs");

#[tokio::test]
async fn rekey_re_encrypts_secrets_under_the_new_key() {
    use herald_core::crypto::SecretBox;
    let Ok(admin_url) = std::env::var("TEST_DATABASE_URL") else {
        return;
    };
    let url = fresh_database(&admin_url).await;
    let old = SecretBox::from_base64(&SecretBox::generate_key()).unwrap();
    let new = SecretBox::from_base64(&SecretBox::generate_key()).unwrap();
    let store = PostgresStore::connect(&url, Some(old.clone()))
        .await
        .unwrap();
    let a = store.create_app(app(1)).await.unwrap();
    let mut e = endpoint(&a.id, None);
    e.secrets = vec![herald_core::model::StoredSecret {
        key: "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw".into(),
        expires_at: None,
    }];
    let e = store.create_endpoint(e).await.unwrap();
    assert_eq!(store.rekey(new.clone()).await.unwrap(), 1);
    assert!(matches!(
        PostgresStore::connect(&url, Some(old)).await,
        Err(StoreError::KeyMismatch)
    ));
    let again = PostgresStore::connect(&url, Some(new)).await.unwrap();
    let got = again
        .get_endpoint(&a.id, e.id.as_str())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(got.secrets, e.secrets);
}
