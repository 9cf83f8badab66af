//! Endpoint signing secrets are encrypted at rest: the plaintext never appears in the database
//! files, deliveries still sign with it after a restart, and a node whose key cannot decrypt
//! the stored secrets refuses to start.

use herald_core::config::Config;
use serde_json::json;
use tokio::sync::watch;

use crate::common::{Receiver, TestServer};

/// A secret whose base64 text is easy to search for in raw bytes.
const SECRET: &str = "whsec_SGVyYWxkU2VjcmV0QXRSZXN0VGVzdEtleTEyMzQ1";
const SEARCH: &[u8] = b"SGVyYWxkU2VjcmV0QXRSZXN0VGVzdEtleTEyMzQ1";
const ROTATED: &str = "whsec_Um90YXRlZFNlY3JldEF0UmVzdFRlc3RLZXk5ODc2";
const ROTATED_SEARCH: &[u8] = b"Um90YXRlZFNlY3JldEF0UmVzdFRlc3RLZXk5ODc2";

fn files_contain(dir: &std::path::Path, needle: &[u8]) -> bool {
    std::fs::read_dir(dir).unwrap().any(|e| {
        let bytes = std::fs::read(e.unwrap().path()).unwrap_or_default();
        bytes.windows(needle.len()).any(|w| w == needle)
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn secrets_are_encrypted_at_rest_and_a_wrong_key_refuses_to_start() {
    let srv = TestServer::start(|_| {}).await;
    let c = &srv.client;
    let rx = Receiver::start().await;
    let app = c.create_app("enc").await;
    let ep = c
        .create_endpoint(&app, json!({"url": rx.url_path("/h"), "secret": SECRET}))
        .await["id"]
        .as_str()
        .unwrap()
        .to_string();
    assert_eq!(
        c.secret(&app, &ep).await,
        SECRET,
        "the API still returns the plaintext"
    );
    // A rotation with an idempotency key: its answer (the new secret) must not be stored.
    let rotated = c
        .send(
            c.req(
                reqwest::Method::POST,
                &format!("/app/{app}/endpoint/{ep}/secret/rotate"),
            )
            .header("idempotency-key", "rotate-1")
            .json(&json!({"key": ROTATED})),
            200,
        )
        .await;
    assert_eq!(rotated.json["key"], ROTATED);
    // An app-portal token is a bearer secret too.
    let portal = c
        .post(&format!("/auth/app-portal-access/{app}"), json!({}), 200)
        .await;
    let portal_token = portal["token"].as_str().unwrap().to_string();
    let dir = srv.stop_keep_dir().await;
    assert!(
        dir.path().join("encryption-key").exists(),
        "key generated into data_dir"
    );
    assert!(
        !files_contain(dir.path(), SEARCH),
        "plaintext secret found in the data directory"
    );
    assert!(
        !files_contain(dir.path(), ROTATED_SEARCH),
        "rotated secret found in the data directory"
    );
    assert!(
        !files_contain(dir.path(), portal_token.as_bytes()),
        "bearer token found in the data directory"
    );
    // The check is not vacuous: the same search finds a value that is stored in plaintext.
    assert!(files_contain(dir.path(), app.as_bytes()));

    // A node configured with another key refuses to start, with a clear error.
    let mut cfg = Config {
        data_dir: dir.path().to_path_buf(),
        admin_token: Some("test-admin-token-0123456789".into()),
        encryption_key: Some(herald_core::crypto::SecretBox::generate_key()),
        ..Config::default()
    };
    cfg.listen = "127.0.0.1:0".parse().unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let (_tx, rx_stop) = watch::channel(false);
    let err = herald::run(cfg, Some(listener), rx_stop, |_| {})
        .await
        .expect_err("a wrong encryption_key must stop start-up");
    assert!(format!("{err:#}").contains("encryption_key"), "{err:#}");
}
