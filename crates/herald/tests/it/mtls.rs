//! Mutual TLS and private CAs (routing.md "Mutual TLS and private CAs") against a real HTTPS
//! receiver on 127.0.0.1 that requires a client certificate. Certificates are made per test
//! with the `openssl` command line (`crate::pki`): a private CA, a server certificate for IP 127.0.0.1 and a
//! client certificate, all from that CA.

use std::sync::Arc;

use http_body_util::Full;
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use parking_lot::Mutex;
use serde_json::json;
use tokio::net::TcpListener;
use tokio_rustls::rustls;
use tokio_rustls::rustls::pki_types::pem::PemObject;
use tokio_rustls::rustls::pki_types::{CertificateDer, PrivateKeyDer};

use crate::common::*;
use crate::pki::TestPki;

/// PEM texts of a CA, a server certificate for 127.0.0.1 and a client certificate.
struct Pki {
    _pki: TestPki,
    ca: String,
    server_cert: String,
    server_key: String,
    client_cert: String,
    client_key: String,
}

fn make_pki() -> Pki {
    let pki = TestPki::new();
    let (ca, server_cert, server_key) = pki.server("server", "127.0.0.1", "IP:127.0.0.1").read();
    let (_, client_cert, client_key) = pki.client("client", "herald-client").read();
    Pki {
        _pki: pki,
        ca,
        server_cert,
        server_key,
        client_cert,
        client_key,
    }
}

/// An HTTPS server on 127.0.0.1 that requires a client certificate from `pki`'s CA; records
/// the body of each request it answers (200).
struct TlsReceiver {
    port: u16,
    bodies: Arc<Mutex<Vec<Vec<u8>>>>,
    handshake_failures: Arc<Mutex<usize>>,
}

impl TlsReceiver {
    async fn start(pki: &Pki) -> Self {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let mut roots = rustls::RootCertStore::empty();
        roots
            .add(CertificateDer::from_pem_slice(pki.ca.as_bytes()).unwrap())
            .unwrap();
        let verifier = rustls::server::WebPkiClientVerifier::builder_with_provider(
            Arc::new(roots),
            provider.clone(),
        )
        .build()
        .unwrap();
        let certs: Vec<_> = CertificateDer::pem_slice_iter(pki.server_cert.as_bytes())
            .map(|c| c.unwrap())
            .collect();
        let key = PrivateKeyDer::from_pem_slice(pki.server_key.as_bytes()).unwrap();
        let cfg = rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_client_cert_verifier(verifier)
            .with_single_cert(certs, key)
            .unwrap();
        let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(cfg));
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let bodies = Arc::new(Mutex::new(Vec::new()));
        let failures = Arc::new(Mutex::new(0));
        let (b, f) = (bodies.clone(), failures.clone());
        tokio::spawn(async move {
            while let Ok((tcp, _)) = listener.accept().await {
                let (acceptor, b, f) = (acceptor.clone(), b.clone(), f.clone());
                tokio::spawn(async move {
                    let tls = match acceptor.accept(tcp).await {
                        Ok(t) => t,
                        Err(_) => {
                            *f.lock() += 1;
                            return;
                        }
                    };
                    let svc = service_fn(move |req: hyper::Request<Incoming>| {
                        let b = b.clone();
                        async move {
                            use http_body_util::BodyExt;
                            let body = req.into_body().collect().await?.to_bytes();
                            b.lock().push(body.to_vec());
                            Ok::<_, hyper::Error>(hyper::Response::new(Full::new(
                                bytes::Bytes::from_static(b"ok"),
                            )))
                        }
                    });
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(TokioIo::new(tls), svc)
                        .await;
                });
            }
        });
        Self {
            port,
            bodies,
            handshake_failures: failures,
        }
    }

    fn url(&self) -> String {
        format!("https://127.0.0.1:{}/hook", self.port)
    }
}

/// A PKI, a receiver requiring its client certificate, a server and an application `mtls`.
async fn start_with_receiver() -> (Pki, TlsReceiver, TestServer, String) {
    let pki = make_pki();
    let recv = TlsReceiver::start(&pki).await;
    let server = TestServer::start(|_| {}).await;
    let app = server.client.create_app("mtls").await;
    (pki, recv, server, app)
}

/// The endpoint `tls` object with the PKI's client certificate, key and CA.
fn full_tls(pki: &Pki) -> serde_json::Value {
    json!({
        "clientCertificate": pki.client_cert,
        "clientKey": pki.client_key,
        "caCertificates": pki.ca,
    })
}

/// Sets the endpoint's `tls` (the `json!({"tls": …})` body of a PATCH), publishes an empty
/// message and waits for its first attempt; returns the message's attempts.
async fn set_tls_and_publish(
    c: &Client,
    app: &str,
    ep: &str,
    tls: serde_json::Value,
) -> Vec<serde_json::Value> {
    c.patch(&format!("/app/{app}/endpoint/{ep}"), tls, 200)
        .await;
    let msg = c.publish_empty(app).await;
    c.wait_attempts(app, &msg, 1).await
}

#[tokio::test]
async fn client_certificate_and_private_ca_reach_a_receiver_that_requires_them() {
    let (pki, recv, server, app) = start_with_receiver().await;
    let c = &server.client;
    let ep = c
        .create_endpoint(&app, json!({"url": recv.url(), "tls": full_tls(&pki)}))
        .await;
    // The key is never answered.
    assert!(!ep.to_string().contains("PRIVATE KEY"), "{ep}");
    assert_eq!(ep["tls"]["hasClientKey"], true);
    assert_eq!(ep["tls"]["caCertificates"], pki.ca.as_str());
    let ep_id = id_of(&ep);
    let got = c.get(&format!("/app/{app}/endpoint/{ep_id}"), 200).await;
    assert!(!got.to_string().contains("PRIVATE KEY"), "{got}");
    let msg = c
        .publish(&app, json!({"eventType": "t", "payload": {"secure": true}}))
        .await;
    c.wait_delivery(&app, &msg, &ep_id, 0).await;
    assert_eq!(
        recv.bodies.lock().as_slice(),
        [br#"{"secure":true}"#.to_vec()]
    );

    // The key is encrypted at rest: not in the database file in clear.
    let key_line = pki
        .client_key
        .lines()
        .find(|l| !l.starts_with("-----"))
        .unwrap()
        .to_string();
    let mut found = false;
    for entry in std::fs::read_dir(server.data_dir()).unwrap() {
        let bytes = std::fs::read(entry.unwrap().path()).unwrap_or_default();
        found |= bytes
            .windows(key_line.len())
            .any(|w| w == key_line.as_bytes());
    }
    assert!(!found, "the client key is stored in clear");

    // Without the client certificate the handshake fails: an attempt with tls_error.
    let attempts = set_tls_and_publish(
        c,
        &app,
        &ep_id,
        json!({"tls": {"clientCertificate": "", "clientKey": ""}}),
    )
    .await;
    assert_eq!(attempts[0]["error"], "tls_error", "{:#?}", attempts[0]);
    assert_eq!(recv.bodies.lock().len(), 1);
    assert!(
        *recv.handshake_failures.lock() >= 1,
        "the receiver refused the handshake"
    );

    // Without the private CA the receiver's certificate is not trusted (the default roots
    // do not know it): the CA adds to them.
    let attempts = set_tls_and_publish(c, &app, &ep_id, json!({"tls": null})).await;
    assert_eq!(attempts[0]["error"], "tls_error", "{:#?}", attempts[0]);
    assert!(
        attempts[0]["response"]
            .as_str()
            .unwrap()
            .to_ascii_lowercase()
            .contains("certificate"),
        "{:#?}",
        attempts[0]
    );
}

#[tokio::test]
async fn a_certificate_for_another_host_is_refused_despite_the_private_ca() {
    let (pki, recv, server, app) = start_with_receiver().await;
    let c = &server.client;
    // `localhost` resolves to 127.0.0.1, but the certificate names only the IP.
    let url = format!("https://localhost:{}/hook", recv.port);
    let ep = c
        .create_endpoint(&app, json!({"url": url, "tls": full_tls(&pki)}))
        .await;
    let msg = c.publish_empty(&app).await;
    let attempts = c.wait_attempts(&app, &msg, 1).await;
    assert_eq!(attempts[0]["error"], "tls_error", "{:#?}", attempts[0]);
    assert!(recv.bodies.lock().is_empty());
    let _ = ep;
}

#[tokio::test]
async fn bad_pems_are_refused_with_the_field_named() {
    let pki = make_pki();
    let other = make_pki();
    let server = TestServer::start(|_| {}).await;
    let c = &server.client;
    let app = c.create_app("mtls").await;
    let path = format!("/app/{app}/endpoint");
    let cases = [
        (
            json!({"clientCertificate": "not a pem", "clientKey": pki.client_key}),
            "tls.clientCertificate",
        ),
        (
            json!({"clientCertificate": pki.client_cert, "clientKey": "garbage"}),
            "tls.clientKey",
        ),
        (
            json!({"clientCertificate": pki.client_cert}),
            "tls.clientKey",
        ),
        (
            json!({"clientKey": pki.client_key}),
            "tls.clientCertificate",
        ),
        (
            json!({"clientCertificate": pki.client_cert, "clientKey": other.client_key}),
            "tls.clientKey",
        ),
        (
            json!({"caCertificates": "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n"}),
            "tls.caCertificates",
        ),
        (
            json!({"caCertificates": "x".repeat(70 * 1024)}),
            "tls.caCertificates",
        ),
    ];
    for (tls, field) in cases {
        let v = c
            .post(
                &path,
                json!({"url": "https://example.com/", "tls": tls}),
                422,
            )
            .await;
        let text = v.to_string();
        assert!(text.contains(field), "{tls} → {text}");
        assert!(!text.contains("PRIVATE KEY"), "{text}");
    }
}
