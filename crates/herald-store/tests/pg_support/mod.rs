//! PostgreSQL for test binaries (the store's `storage_postgres.rs` and `migrations.rs`; the
//! `herald` crate's `cluster.rs` and `it` through `#[path]`): the admin URL of the cluster
//! `TEST_DATABASE_URL` names, and fresh databases in it. It starts no server
//! (`scripts/pg-cluster.sh` does) and opens no store.

/// The admin URL from `TEST_DATABASE_URL`; without it `None` and a note, except under
/// `CI=true`, where a missing database is a failure.
pub fn admin_url() -> Option<String> {
    let Ok(admin_url) = std::env::var("TEST_DATABASE_URL") else {
        assert!(
            std::env::var("CI").is_err(),
            "TEST_DATABASE_URL is not set under CI: scripts/test.sh starts PostgreSQL and sets it"
        );
        eprintln!("skipped: TEST_DATABASE_URL not set (run scripts/test.sh to start PostgreSQL)");
        return None;
    };
    Some(admin_url)
}

/// Creates an empty database named `<prefix>_<ulid>` and returns its URL.
pub async fn fresh_database(admin_url: &str, prefix: &str) -> String {
    use sqlx::Connection;
    let name = format!("{prefix}_{}", ulid::Ulid::new().to_string().to_lowercase());
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
