//! Broker destinations over TLS (`rediss`, `amqps`; destinations.md) against real Redis and
//! RabbitMQ serving TLS on loopback with a certificate from a test CA
//! (`broker_procs::TestPki`, for `localhost` and 127.0.0.1). Herald trusts that CA only through
//! its `ca_bundle`: with it the deliveries arrive (read back by a consumer on the broker's
//! plain port); without it, or with a certificate for another name, every attempt fails as
//! `tls_error` naming the certificate and nothing is delivered.

use std::path::PathBuf;
use std::sync::Arc;

use herald_core::config::Config;
use herald_core::destination::BrokerKind;
use serde_json::{json, Value};
use tokio_rustls::rustls;
use tokio_rustls::rustls::pki_types::pem::PemObject;
use tokio_rustls::rustls::pki_types::{CertificateDer, PrivateKeyDer};

use crate::broker_procs::{
    available, Broker, Kind, TestPki, TlsFiles, BROKER_PASSWORD, BROKER_USER,
};
use crate::brokers::{rabbit_messages, rabbit_topology, redis_entries};
use crate::common::TestServer;

/// Messages each happy path delivers.
const MESSAGES: usize = 5;

/// The broker scheme enabled and, when given, the test CA as `ca_bundle`. Loopback is allowed
/// by the test defaults (`allow_networks` 127.0.0.0/8).
fn config(kind: BrokerKind, ca: Option<PathBuf>) -> impl FnOnce(&mut Config) {
    move |c: &mut Config| {
        c.destination_schemes = vec![kind];
        c.ca_bundle = ca;
    }
}

/// The certificate every TLS broker here serves: `localhost` and 127.0.0.1.
fn localhost_cert(pki: &TestPki) -> TlsFiles {
    pki.server("broker", "localhost", "DNS:localhost,IP:127.0.0.1")
}

/// Creates an endpoint for `url`, publishes `n` messages and returns the app, the endpoint
/// and the message IDs.
async fn publish_to(server: &TestServer, url: &str, n: usize) -> (String, String, Vec<String>) {
    let c = &server.client;
    let app = c.create_app("brokers-tls").await;
    let ep = c
        .create_endpoint(&app, json!({"url": url, "description": "tls broker"}))
        .await;
    let ep = ep["id"].as_str().expect("id").to_string();
    let mut ids = Vec::new();
    for i in 0..n {
        ids.push(
            c.publish(
                &app,
                json!({"eventType": "invoice.paid", "payload": {"i": i, "text": "ünïcode ✓"}}),
            )
            .await,
        );
    }
    (app, ep, ids)
}

/// Every message was delivered (status 0) with the broker's acknowledgement as response.
async fn assert_delivered(server: &TestServer, app: &str, ep: &str, ids: &[String], ack: &str) {
    let c = &server.client;
    for id in ids {
        c.wait_delivery(app, id, ep, 0).await;
        let attempts = c.attempts_of_msg(app, id).await;
        let last = attempts.last().expect("an attempt");
        assert_eq!(last["responseStatusCode"], 200, "{last:#}");
        assert!(
            last["response"].as_str().is_some_and(|r| r.contains(ack)),
            "{last:#}"
        );
    }
}

/// The first attempt of the message failed as `tls_error`, naming the certificate, and no
/// credential shows in it.
async fn assert_tls_refused(server: &TestServer, app: &str, id: &str) -> Value {
    let attempts = server.client.wait_attempts(app, id, 1).await;
    let first = attempts[0].clone();
    assert_eq!(first["error"], "tls_error", "{first:#}");
    let detail = first["response"].as_str().unwrap_or_default();
    assert!(
        detail.to_ascii_lowercase().contains("certificate"),
        "the detail names the certificate: {first:#}"
    );
    assert!(!first.to_string().contains(BROKER_PASSWORD), "{first:#}");
    first
}

// ---- Redis -----------------------------------------------------------------------------------

#[tokio::test(flavor = "current_thread")]
async fn rediss_delivers_with_the_ca_bundle_and_is_refused_without_it() {
    if !available(Kind::Redis) {
        return;
    }
    let pki = TestPki::new();
    let broker = Broker::start_tls(Kind::Redis, localhost_cert(&pki)).await;
    let tls_port = broker.tls_port.expect("tls port");
    let url = |stream: &str| {
        format!("rediss://:{BROKER_PASSWORD}@localhost:{tls_port}/0?stream={stream}")
    };

    let server = TestServer::start(config(BrokerKind::Redis, Some(pki.ca()))).await;
    let (app, ep, ids) = publish_to(&server, &url("tls-events"), MESSAGES).await;
    assert_delivered(&server, &app, &ep, &ids, "XADD tls-events: ").await;
    let got = redis_entries(broker.port, "tls-events").await;
    let mut got_ids: Vec<String> = got.iter().map(|r| r.id.clone()).collect();
    got_ids.sort();
    got_ids.dedup();
    let mut want = ids.clone();
    want.sort();
    assert_eq!(got_ids, want, "every message is in the stream");
    server.stop().await;

    // The same broker without the CA in `ca_bundle`: the platform roots do not know it.
    let server = TestServer::start(config(BrokerKind::Redis, None)).await;
    let (app, _, ids) = publish_to(&server, &url("untrusted"), 1).await;
    assert_tls_refused(&server, &app, &ids[0]).await;
    assert!(redis_entries(broker.port, "untrusted").await.is_empty());
    server.stop().await;
}

// ---- RabbitMQ --------------------------------------------------------------------------------

#[tokio::test(flavor = "current_thread")]
async fn amqps_delivers_with_the_ca_bundle_and_is_refused_without_it() {
    if !available(Kind::Rabbit) {
        return;
    }
    let pki = TestPki::new();
    let mut broker = Broker::start_tls(Kind::Rabbit, localhost_cert(&pki)).await;
    let tls_port = broker.tls_port.expect("tls port");
    rabbit_topology(broker.port).await;
    let url = format!(
        "amqps://{BROKER_USER}:{BROKER_PASSWORD}@localhost:{tls_port}/%2f?exchange=herald&routingKey=invoice"
    );

    let server = TestServer::start(config(BrokerKind::Amqp, Some(pki.ca()))).await;
    let (app, ep, ids) = publish_to(&server, &url, MESSAGES).await;
    assert_delivered(&server, &app, &ep, &ids, "publisher confirm: ack").await;
    server.stop().await;
    let mut got_ids: Vec<String> = rabbit_messages(broker.port)
        .await
        .into_iter()
        .map(|r| r.id)
        .collect();
    got_ids.sort();
    got_ids.dedup();
    let mut want = ids.clone();
    want.sort();
    assert_eq!(got_ids, want, "every message is in the queue");

    let server = TestServer::start(config(BrokerKind::Amqp, None)).await;
    let (app, _, ids) = publish_to(&server, &url, 1).await;
    assert_tls_refused(&server, &app, &ids[0]).await;
    server.stop().await;
    assert!(
        rabbit_messages(broker.port).await.is_empty(),
        "nothing was published without a trusted certificate"
    );
    broker.down().await;
}

// ---- a certificate for another name ----------------------------------------------------------

/// A TLS listener on 127.0.0.1 serving `files` (a certificate from the trusted CA, but for
/// another name); counts the handshakes it saw fail. It never speaks a broker protocol: a
/// client that verified the name correctly never gets that far.
async fn wrong_name_listener(files: &TlsFiles) -> (u16, Arc<parking_lot::Mutex<usize>>) {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let certs: Vec<_> = CertificateDer::pem_file_iter(&files.cert)
        .expect("cert file")
        .map(|c| c.expect("cert"))
        .collect();
    let key = PrivateKeyDer::from_pem_file(&files.key).expect("key");
    let cfg = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .expect("versions")
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .expect("server config");
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(cfg));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let port = listener.local_addr().expect("addr").port();
    let failures = Arc::new(parking_lot::Mutex::new(0));
    let f = failures.clone();
    tokio::spawn(async move {
        while let Ok((tcp, _)) = listener.accept().await {
            let (acceptor, f) = (acceptor.clone(), f.clone());
            tokio::spawn(async move {
                let handshake =
                    tokio::time::timeout(std::time::Duration::from_secs(30), acceptor.accept(tcp));
                if !matches!(handshake.await, Ok(Ok(_))) {
                    *f.lock() += 1;
                }
            });
        }
    });
    (port, failures)
}

#[tokio::test(flavor = "current_thread")]
async fn a_broker_certificate_for_another_name_is_refused() {
    let pki = TestPki::new();
    let files = pki.server("elsewhere", "elsewhere.test", "DNS:elsewhere.test");
    let (port, failures) = wrong_name_listener(&files).await;
    for (kind, url) in [
        (
            BrokerKind::Redis,
            format!("rediss://:{BROKER_PASSWORD}@localhost:{port}/0?stream=s"),
        ),
        (
            BrokerKind::Amqp,
            format!("amqps://{BROKER_USER}:{BROKER_PASSWORD}@localhost:{port}/%2f?routingKey=q"),
        ),
    ] {
        let server = TestServer::start(config(kind, Some(pki.ca()))).await;
        let (app, _, ids) = publish_to(&server, &url, 1).await;
        let first = assert_tls_refused(&server, &app, &ids[0]).await;
        assert!(
            first.to_string().contains("NotValidForName")
                || first.to_string().contains("not valid for name"),
            "{kind:?}: the name is what failed: {first:#}"
        );
        server.stop().await;
    }
    crate::common::eventually(
        std::time::Duration::from_secs(30),
        "both clients' handshakes reached the listener",
        || async { (*failures.lock() >= 2).then_some(()) },
    )
    .await;
}

// ---- the egress rules still decide ------------------------------------------------------------

/// Without loopback in `allow_networks`, a TLS broker named `localhost` is refused before any
/// connection: its name resolves only to refused addresses (`blocked_address`), and the
/// listener standing in for the broker is never contacted.
#[tokio::test(flavor = "current_thread")]
async fn a_tls_broker_name_resolving_to_a_refused_address_is_never_contacted() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let port = listener.local_addr().expect("addr").port();
    let contacted = Arc::new(parking_lot::Mutex::new(0usize));
    let seen = contacted.clone();
    let accepting = tokio::spawn(async move {
        while let Ok((_sock, _)) = listener.accept().await {
            *seen.lock() += 1;
        }
    });
    for (kind, url) in [
        (
            BrokerKind::Redis,
            format!("rediss://:{BROKER_PASSWORD}@localhost:{port}/0?stream=s"),
        ),
        (
            BrokerKind::Amqp,
            format!("amqps://{BROKER_USER}:{BROKER_PASSWORD}@localhost:{port}/%2f?routingKey=q"),
        ),
    ] {
        let server = TestServer::start(|c| {
            c.allow_networks.clear();
            c.destination_schemes = vec![kind];
        })
        .await;
        let (app, _, ids) = publish_to(&server, &url, 1).await;
        let attempts = server.client.wait_attempts(&app, &ids[0], 1).await;
        assert_eq!(attempts[0]["error"], "blocked_address", "{:#}", attempts[0]);
        server.stop().await;
    }
    assert_eq!(*contacted.lock(), 0, "no connection reached the listener");
    accepting.abort();
}
