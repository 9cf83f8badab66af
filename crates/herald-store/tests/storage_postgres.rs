//! The shared storage suite (`suite/body.rs`) against the PostgreSQL backend. Each test gets
//! a fresh database in the cluster named by `TEST_DATABASE_URL` (`scripts/test.sh` starts a
//! throwaway cluster on loopback and sets it). Without that variable the tests are skipped
//! with a note — except under `CI=true`, where a missing database is a failure.

mod pg_support;

mod records;

use std::sync::Arc;

use herald_core::ids::{AppId, AttemptId, EndpointId, MessageId};
use herald_core::model::{
    Application, Attempt, DeliveryStatus, Endpoint, Message, Ordering, TriggerType,
};
use herald_core::signing::SignatureScheme;
use herald_store::prelude::*;
use herald_store::PostgresStore;
use herald_store::{AttemptRecord, ListQuery, NextState, StoreError};
use records::app;

async fn setup() -> Option<(String, Arc<dyn Store>, Application)> {
    let admin_url = pg_support::admin_url()?;
    let url = fresh_database(&admin_url).await;
    let store: Arc<dyn Store> = Arc::new(PostgresStore::connect(&url, None).await.unwrap());
    let a = store.create_app(app(1)).await.unwrap();
    Some((url, store, a))
}

/// The same database, connected again (what a restart sees).
async fn reopen(url: &str) -> Arc<dyn Store> {
    Arc::new(PostgresStore::connect(url, None).await.unwrap())
}

/// The same database, connected with secrets encrypted at rest under `key`.
async fn reopen_keyed(url: &str, key: herald_core::crypto::SecretBox) -> Arc<dyn Store> {
    Arc::new(PostgresStore::connect(url, Some(key)).await.unwrap())
}

/// Creates an empty database and returns its URL.
async fn fresh_database(admin_url: &str) -> String {
    pg_support::fresh_database(admin_url, "suite").await
}

/// Runs `sql` on the database directly, around the store (to store what it never would).
async fn raw_sql(url: &str, sql: &str) {
    use sqlx::Connection;
    let mut c = sqlx::PgConnection::connect(url).await.unwrap();
    sqlx::query(sql).execute(&mut c).await.unwrap();
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
include!("suite/console.rs");
include!("suite/broker_urls.rs");
include!("suite/routing.rs");

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

/// Waits (60 s at most) until the message is in the database, e.g. once a spool drained.
async fn wait_for_message(store: &Arc<dyn Store>, app: &AppId, id: &MessageId, why: &str) {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    while store
        .get_message(app, id.as_str())
        .await
        .ok()
        .flatten()
        .is_none()
    {
        assert!(std::time::Instant::now() < deadline, "{why}");
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
}

/// A loopback TCP relay in front of PostgreSQL that a test can cut (an outage: live connections
/// closed, new ones dropped at once) and restore, without stopping the shared cluster.
struct Relay {
    port: u16,
    cut: Arc<std::sync::atomic::AtomicBool>,
    live: Arc<parking_lot::Mutex<Vec<tokio::task::AbortHandle>>>,
    accept: tokio::task::JoinHandle<()>,
}

impl Relay {
    /// A relay to the server of `url` (postgres://user@host:port/db), and the URL of the same
    /// database through it.
    async fn in_front_of(url: &str) -> (Self, String) {
        let (head, db) = url.rsplit_once('/').unwrap();
        let (userhost, port) = head.rsplit_once(':').unwrap();
        let host = userhost.rsplit(['@', '/']).next().unwrap();
        let relay = Self::start(format!("{host}:{port}")).await;
        let through = format!("{userhost}:{}/{db}", relay.port);
        (relay, through)
    }

    async fn start(upstream: String) -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let cut = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let live: Arc<parking_lot::Mutex<Vec<tokio::task::AbortHandle>>> = Arc::default();
        let (c, l) = (cut.clone(), live.clone());
        let accept = tokio::spawn(async move {
            while let Ok((mut down, _)) = listener.accept().await {
                if c.load(std::sync::atomic::Ordering::SeqCst) {
                    continue; // dropped: the client sees the connection closed
                }
                let upstream = upstream.clone();
                let t = tokio::spawn(async move {
                    if let Ok(mut up) = tokio::net::TcpStream::connect(&upstream).await {
                        let _ = tokio::io::copy_bidirectional(&mut down, &mut up).await;
                    }
                });
                l.lock().push(t.abort_handle());
            }
        });
        Self {
            port,
            cut,
            live,
            accept,
        }
    }

    fn cut(&self) {
        self.cut.store(true, std::sync::atomic::Ordering::SeqCst);
        for t in self.live.lock().drain(..) {
            t.abort();
        }
    }

    fn restore(&self) {
        self.cut.store(false, std::sync::atomic::Ordering::SeqCst);
    }
}

impl Drop for Relay {
    fn drop(&mut self) {
        self.accept.abort();
        self.cut();
    }
}

/// A store on a fresh database reached through a [`Relay`], spooling to `dir` (1 MiB), with
/// one application `a` and one endpoint taking every event type.
struct Spooling {
    relay: Relay,
    dir: tempfile::TempDir,
    store: Arc<dyn Store>,
    a: Application,
}

/// [`Spooling`] with secrets sealed under `key`; `None` (a note printed) without
/// `TEST_DATABASE_URL`.
async fn spooling(key: Option<herald_core::crypto::SecretBox>) -> Option<Spooling> {
    let Ok(admin_url) = std::env::var("TEST_DATABASE_URL") else {
        eprintln!("skipped: TEST_DATABASE_URL not set (run scripts/test.sh to start PostgreSQL)");
        return None;
    };
    let url = fresh_database(&admin_url).await;
    let (relay, relay_url) = Relay::in_front_of(&url).await;
    let dir = tempfile::tempdir().unwrap();
    let spool = herald_store::postgres::Spool::open(dir.path(), 1 << 20).unwrap();
    let store: Arc<dyn Store> = Arc::new(
        PostgresStore::connect(&relay_url, key)
            .await
            .unwrap()
            .with_spool(spool),
    );
    let a = store.create_app(app(1)).await.unwrap();
    store.create_endpoint(endpoint(&a.id, None)).await.unwrap();
    Some(Spooling {
        relay,
        dir,
        store,
        a,
    })
}

/// Ingestion while the database is unreachable goes to the spool, answered as accepted, in one
/// order with publishes; draining replays it through the live transaction, so dedup and
/// ordering are decided then. The source is served from memory meanwhile (secrets sealed).
#[tokio::test]
async fn ingestion_is_spooled_during_an_outage_and_decided_when_it_drains() {
    use herald_core::crypto::SecretBox;
    use herald_core::model::InboundStatus;
    use herald_store::{DedupCheck, IngestOutcome, OrderCheck};
    let key = SecretBox::from_base64(&SecretBox::generate_key()).unwrap();
    let Some(Spooling {
        relay,
        dir,
        store,
        a,
    }) = spooling(Some(key)).await
    else {
        return;
    };
    let s = store.create_source(source(&a.id, 10)).await.unwrap();
    // Read once before the outage: remembered.
    assert!(store.find_source(&s.id).await.unwrap().is_some());

    relay.cut();
    let during = store.find_source(&s.id).await.unwrap().expect("remembered");
    assert_eq!(during.secrets, s.secrets, "unsealed for the caller");
    let p1 = publish_at(&store, &a.id, "push", 100).await.message.id;
    let order = |seq| {
        Some(OrderCheck {
            key: "r1".into(),
            seq,
            gap_timeout_ms: 0,
        })
    };
    let dedup = |k: u8| {
        Some(DedupCheck {
            key: [k; 32],
            since: 0,
        })
    };
    let mut spooled = Vec::new();
    // First, its duplicate (same key), and a new key with an old sequence (stale).
    for (i, (k, seq)) in [(1u8, 1i64), (1, 1), (2, 1)].into_iter().enumerate() {
        let now = 200 + i as i64;
        let req = inbound(&s, now);
        let m = message(&a.id, "push", None, now);
        let mid = m.id.clone();
        let out = store.ingest(req.clone(), dedup(k), m, order(seq)).await;
        assert_eq!(
            out.unwrap(),
            IngestOutcome::Accepted(mid.clone()),
            "spooled {i}"
        );
        spooled.push((req.id, mid));
    }
    let p2 = publish_at(&store, &a.id, "push", 300).await.message.id;
    assert!(
        std::fs::metadata(dir.path().join("publish.jsonl"))
            .unwrap()
            .len()
            > 0,
        "nothing was spooled"
    );

    relay.restore();
    // The last spooled entry is in the database once everything before it is.
    wait_for_message(&store, &a.id, &p2, "the spool never drained").await;
    assert!(store
        .get_message(&a.id, p1.as_str())
        .await
        .unwrap()
        .is_some());
    let log = store
        .list_inbound(
            &s.id,
            None,
            &ListQuery {
                limit: 50,
                ..Default::default()
            },
        )
        .await
        .unwrap()
        .items;
    let row = |id: &herald_core::ids::InboundRequestId| {
        log.iter().find(|r| r.id == *id).expect("logged").clone()
    };
    let (first, dup, stale) = (row(&spooled[0].0), row(&spooled[1].0), row(&spooled[2].0));
    assert_eq!(first.status, InboundStatus::Accepted);
    assert_eq!(first.msg_id.as_ref(), Some(&spooled[0].1));
    assert_eq!(
        dup.status,
        InboundStatus::Duplicate,
        "collapsed at drain time"
    );
    assert_eq!(dup.msg_id.as_ref(), Some(&spooled[0].1));
    assert_eq!(stale.status, InboundStatus::Stale, "ordered at drain time");
    let first_msg = store
        .get_message(&a.id, spooled[0].1.as_str())
        .await
        .unwrap();
    assert_eq!(
        store
            .deliveries_of_message(&spooled[0].1)
            .await
            .unwrap()
            .len(),
        1
    );
    assert!(first_msg.is_some());
    for (_, mid) in &spooled[1..] {
        assert!(store
            .get_message(&a.id, mid.as_str())
            .await
            .unwrap()
            .is_none());
    }
}

/// A write the database refuses while it answers (here a payload PostgreSQL cannot store as
/// text) is an error, not an outage: answered at once and never spooled. If such an entry was
/// spooled during an outage, it must not stop the drain for good: it is tried a few times, then
/// set aside, fsync'd, in `rejected.jsonl`, and the entries behind it go in.
#[tokio::test]
async fn a_spooled_entry_the_database_refuses_is_set_aside_and_the_drain_goes_on() {
    let Some(Spooling {
        relay,
        dir,
        store,
        a,
    }) = spooling(None).await
    else {
        return;
    };
    let bad = |now| {
        let mut m = message(&a.id, "push", None, now);
        m.payload = Some("{\"k\":\"\0\"}".into());
        m
    };
    // Live: refused at once, nothing spooled.
    match store.publish(bad(99), None).await {
        Err(StoreError::Rejected(_)) => {}
        Err(e) => panic!("expected a refusal, got {e}"),
        Ok(_) => panic!("expected a refusal, got an accepted publish"),
    }
    assert_eq!(
        std::fs::metadata(dir.path().join("publish.jsonl"))
            .unwrap()
            .len(),
        0,
        "a refused write is not an outage"
    );

    relay.cut();
    let bad = store.publish(bad(100), None).await.unwrap().message.id;
    // Spooled behind it, in order.
    let after = publish_at(&store, &a.id, "push", 101).await.message.id;
    relay.restore();
    wait_for_message(
        &store,
        &a.id,
        &after,
        "the drain stopped at the refused entry",
    )
    .await;
    assert_eq!(store.deliveries_of_message(&after).await.unwrap().len(), 1);
    assert!(store
        .get_message(&a.id, bad.as_str())
        .await
        .unwrap()
        .is_none());
    let rejected = std::fs::read_to_string(dir.path().join("rejected.jsonl")).unwrap();
    assert_eq!(rejected.lines().count(), 1);
    assert!(rejected.contains(bad.as_str()), "kept for the operator");
    // Nothing else is left to drain: new publishes go straight to the database.
    let live = publish_at(&store, &a.id, "push", 102).await;
    assert_eq!(live.deliveries, 1);
}
include!("suite/pull.rs");
include!("suite/reconcile.rs");
