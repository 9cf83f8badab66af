//! Regression tests for the defects hostile testing found (issue "Hardening"), each named
//! after its defect, against a real server on loopback.

use reqwest::Method;
use serde_json::{json, Value};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::common::{hmac_sha256, id_of, to_hex, Client, Resp, TestServer, WAIT};

const CYCLIC: &str = r##"{"$ref":"#/definitions/a","definitions":{"a":{"$ref":"#/definitions/b"},"b":{"$ref":"#/definitions/a"}}}"##;

/// Sends raw bytes on a fresh connection and reads until the server closes it or `WAIT`
/// passes; returns what arrived.
/// Creates a source without verification (anyone may post to it) and returns its ID.
async fn unverified_source(c: &Client, app: &str) -> String {
    id_of(
        &c.post(
            &format!("/app/{app}/source"),
            json!({"name": "s", "verification": {"scheme": "none"}}),
            201,
        )
        .await,
    )
}

/// POSTs `body` to the source's ingestion URL, expecting `expect`.
async fn ingest(anon: &Client, src: &str, body: impl Into<reqwest::Body>, expect: u16) -> Resp {
    anon.send(
        anon.req(Method::POST, &format!("//in/{src}")).body(body),
        expect,
    )
    .await
}

async fn raw_exchange(addr: std::net::SocketAddr, request: &[u8]) -> String {
    let mut s = TcpStream::connect(addr).await.expect("connect");
    s.write_all(request).await.expect("write");
    let mut out = Vec::new();
    let mut buf = [0u8; 4096];
    let _ = tokio::time::timeout(WAIT, async {
        loop {
            match s.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(n) => {
                    out.extend_from_slice(&buf[..n]);
                    // One full answer is enough: headers plus the declared body.
                    if let Ok(text) = std::str::from_utf8(&out) {
                        if let Some((head, body)) = text.split_once("\r\n\r\n") {
                            let len = head
                                .lines()
                                .find_map(|l| {
                                    let (k, v) = l.split_once(':')?;
                                    k.eq_ignore_ascii_case("content-length")
                                        .then(|| v.trim().parse::<usize>().ok())?
                                })
                                .unwrap_or(0);
                            if body.len() >= len {
                                break;
                            }
                        }
                    }
                }
            }
        }
    })
    .await;
    String::from_utf8_lossy(&out).into_owned()
}

#[tokio::test]
async fn defect_01_cyclic_json_schema_is_refused_and_publishing_stays_up() {
    let srv = TestServer::start(|_| {}).await;
    let c = &srv.client;
    let cyclic: Value = serde_json::from_str(CYCLIC).unwrap();
    let r = c
        .post(
            "/event-type",
            json!({"name": "loop.created", "description": "x", "schemas": {"1": cyclic}}),
            422,
        )
        .await;
    assert!(r.to_string().contains("cycle"), "{r}");
    // A fan-out that doubles at every level is refused too (exponential validation work).
    let mut defs = serde_json::Map::new();
    for i in 0..30 {
        let next = format!("#/$defs/d{}", i + 1);
        defs.insert(
            format!("d{i}"),
            json!({"anyOf": [{"$ref": next}, {"$ref": next}]}),
        );
    }
    defs.insert("d30".into(), json!({"type": "object"}));
    c.post(
        "/event-type",
        json!({"name": "fan.out", "description": "x", "schemas": {"1": {"$defs": defs, "$ref": "#/$defs/d0"}}}),
        422,
    )
    .await;
    // Through the update paths as well.
    c.post(
        "/event-type",
        json!({"name": "ok.created", "description": "x", "schemas": {"1": {"type": "object"}}}),
        201,
    )
    .await;
    c.put(
        "/event-type/ok.created",
        json!({"description": "x", "schemas": {"1": {"type": "object"}, "2": cyclic}}),
        422,
    )
    .await;
    c.patch(
        "/event-type/ok.created",
        json!({"schemas": {"1": cyclic}}),
        422,
    )
    .await;
    // And for an inbound source's quarantine schema.
    let app = c.create_app("schemas").await;
    c.post(
        &format!("/app/{app}/source"),
        json!({"name": "s", "verification": {"scheme": "none"}, "schema": cyclic}),
        422,
    )
    .await;
    // The server keeps answering: publishing the type with the good schema works.
    c.publish(
        &app,
        json!({"eventType": "ok.created", "payload": {"a": 1}}),
    )
    .await;
    c.get("/health", 200).await;
}

#[tokio::test]
async fn defect_02_revoked_token_gets_no_idempotent_replay() {
    let srv = TestServer::start(|_| {}).await;
    let c = &srv.client;
    let app = c.create_app("revoked").await;
    let tok = c.post("/token", json!({"name": "ci"}), 201).await;
    let secret = tok["token"].as_str().expect("token").to_string();
    let tc = c.with_token(&secret);
    let publish = |client: &crate::common::Client| {
        client
            .req(Method::POST, &format!("/app/{app}/msg"))
            .header("idempotency-key", "same-key")
            .json(&json!({"eventType": "a.b", "payload": {"n": 1}}))
    };
    tc.send(publish(&tc), 202).await;
    let replay = tc.send(publish(&tc), 202).await;
    assert_eq!(
        replay
            .headers
            .get("idempotent-replayed")
            .and_then(|v| v.to_str().ok()),
        Some("true")
    );
    c.delete(&format!("/token/{}", id_of(&tok)), 204).await;
    tc.send(publish(&tc), 401).await;
}

#[tokio::test]
async fn defect_03_idempotent_replays_of_large_requests_are_answered() {
    let srv = TestServer::start(|_| {}).await;
    let c = &srv.client;
    let app = c.create_app("large").await;
    let big = "x".repeat(1024 * 1024);
    let body = json!({"eventType": "a.b", "payload": {"blob": big}}).to_string();
    // The same client (one keep-alive connection) retries the same 1 MiB publish: every answer
    // arrives, and the connection stays usable for the next request.
    for i in 0..4 {
        let r = c
            .send(
                c.req(Method::POST, &format!("/app/{app}/msg"))
                    .header("idempotency-key", "big-one")
                    .header("content-type", "application/json")
                    .body(body.clone()),
                202,
            )
            .await;
        assert_eq!(
            r.headers.contains_key("idempotent-replayed"),
            i > 0,
            "attempt {i}"
        );
        c.get(&format!("/app/{app}"), 200).await;
    }
    // An early 401 with a large body is answered, not reset.
    let anon = c.anonymous();
    anon.send(
        anon.req(Method::POST, &format!("/app/{app}/msg"))
            .header("content-type", "application/json")
            .body(body.clone()),
        401,
    )
    .await;
    // A declared length over the limit is answered 413 at once, with `Connection: close`,
    // while the body has not been sent.
    let head = format!(
        "POST /api/v1/app/{app}/msg HTTP/1.1\r\nhost: x\r\nauthorization: Bearer {}\r\ncontent-type: application/json\r\ncontent-length: 900000000\r\n\r\n",
        crate::common::ADMIN_TOKEN
    );
    let answer = raw_exchange(srv.addr, head.as_bytes()).await;
    assert!(answer.starts_with("HTTP/1.1 413"), "{answer}");
    assert!(
        answer.to_ascii_lowercase().contains("connection: close"),
        "{answer}"
    );
    assert!(answer.contains("payload_too_large"), "{answer}");
}

#[tokio::test]
async fn defect_04_source_verification_headers_are_redacted_in_the_request_log() {
    let srv = TestServer::start(|_| {}).await;
    let c = &srv.client;
    let app = c.create_app("redact").await;
    let key_src = id_of(
        &c.post(
            &format!("/app/{app}/source"),
            json!({"name": "k", "verification": {"scheme": "api-key", "header": "X-Partner-Key", "secrets": ["partner-key-123"]}}),
            201,
        )
        .await,
    );
    let hmac_src = id_of(
        &c.post(
            &format!("/app/{app}/source"),
            json!({"name": "h", "verification": {"scheme": "hmac", "header": "X-Body-Mac", "secrets": ["mac-secret"]}}),
            201,
        )
        .await,
    );
    let anon = c.anonymous();
    let body = br#"{"id": 1}"#.to_vec();
    for (key, expect) in [("partner-key-123", 202), ("wrong-key-456", 401)] {
        anon.send(
            anon.req(Method::POST, &format!("//in/{key_src}"))
                .header("X-Partner-Key", key)
                .header("x-trace", "kept")
                .body(body.clone()),
            expect,
        )
        .await;
    }
    let mac = to_hex(&hmac_sha256(b"mac-secret", &body));
    for (mac, expect) in [(mac.as_str(), 202), ("00ff", 401)] {
        anon.send(
            anon.req(Method::POST, &format!("//in/{hmac_src}"))
                .header("X-Body-Mac", mac)
                .header("x-trace", "kept")
                .body(body.clone()),
            expect,
        )
        .await;
    }
    for (src, secret_header, secret) in [
        (&key_src, "x-partner-key", "partner-key-123"),
        (&hmac_src, "x-body-mac", mac.as_str()),
    ] {
        let log = c
            .get(&format!("/app/{app}/source/{src}/request"), 200)
            .await;
        let items = log["data"].as_array().expect("data");
        assert_eq!(items.len(), 2, "{log}");
        for item in items {
            let headers = item["headers"].as_object().expect("headers");
            assert_eq!(headers.get("x-trace"), Some(&json!("kept")), "{item}");
            assert!(!headers.contains_key(secret_header), "{item}");
        }
        assert!(!log.to_string().contains(secret), "{log}");
        assert!(!log.to_string().contains("wrong-key-456"), "{log}");
    }
}

#[tokio::test]
async fn defect_05_every_path_that_creates_an_app_applies_the_uid_rules() {
    let srv = TestServer::start(|_| {}).await;
    let c = &srv.client;
    let long = "a".repeat(300);
    for bad in [
        "..%2F..%2Fetc",
        "a%20b",
        long.as_str(),
        "x%00y",
        "x%0D%0Ay",
        "caf%C3%A9",
    ] {
        let r = c
            .put(&format!("/app/{bad}"), json!({"name": "n"}), 422)
            .await;
        assert_eq!(r["code"], "validation_error", "{bad}: {r}");
        c.post(
            &format!("/app/{bad}/msg"),
            json!({"eventType": "a.b", "payload": {}, "application": {"name": "n"}}),
            422,
        )
        .await;
    }
    for bad in ["..", ".", "a/b", ""] {
        c.post("/app", json!({"name": "n", "uid": bad}), 422).await;
    }
    let listed = c.get("/app", 200).await;
    assert_eq!(listed["data"].as_array().map(Vec::len), Some(0), "{listed}");
    // The good cases still work on the same paths.
    c.put("/app/good.uid-1", json!({"name": "n"}), 201).await;
    c.post(
        "/app/good_2/msg",
        json!({"eventType": "a.b", "payload": {}, "application": {"name": "n"}}),
        202,
    )
    .await;
}

#[tokio::test]
async fn defect_06_ingestion_honours_max_payload_bytes() {
    let srv = TestServer::start(|cfg| cfg.max_payload_bytes = 1_000).await;
    let c = &srv.client;
    let app = c.create_app("ingest-limit").await;
    let src = unverified_source(c, &app).await;
    let anon = c.anonymous();
    let small = json!({"pad": "x".repeat(800)}).to_string();
    let large = json!({"pad": "x".repeat(1_200)}).to_string();
    ingest(&anon, &src, small, 202).await;
    ingest(&anon, &src, large, 413).await;
    // A declared length over the limit: 413 before any of the body is sent.
    let head = format!(
        "POST /in/{src} HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\ncontent-length: 5000\r\n\r\n"
    );
    let answer = raw_exchange(srv.addr, head.as_bytes()).await;
    assert!(answer.starts_with("HTTP/1.1 413"), "{answer}");
    assert!(
        answer.to_ascii_lowercase().contains("connection: close"),
        "{answer}"
    );
}

/// Found as a flaky `checks_come_in_the_contracts_order_with_its_codes`: the 413 for a declared
/// length over the limit went out at once, the server closed the socket with the client's
/// upload still arriving, and the kernel's reset destroyed the answer before the client read it.
#[tokio::test]
async fn defect_06_an_early_413_reaches_a_client_still_sending_its_body() {
    let srv = TestServer::start(|_| {}).await;
    let c = &srv.client;
    let app = c.create_app("early-413").await;
    let src = unverified_source(c, &app).await;
    // Deterministic: a client that sends its whole declared body before it reads (as most
    // do) must be able to, and then read the 413. Without lingering, the server closed with
    // unread bytes, the kernel reset the connection, and the client's next write failed.
    for _ in 0..3 {
        let declared = 3 * 1024 * 1024;
        let mut s = TcpStream::connect(srv.addr).await.expect("connect");
        let head = format!(
            "POST /in/{src} HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\ncontent-length: {declared}\r\n\r\n"
        );
        s.write_all(head.as_bytes()).await.expect("write head");
        // Let the answer (and, without lingering, the reset) arrive first.
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
        let chunk = vec![b'x'; 64 * 1024];
        for sent in (0..declared).step_by(chunk.len()) {
            if let Err(e) = s.write_all(&chunk).await {
                panic!("the body broke off after {sent} bytes: {e}");
            }
        }
        let mut answer = Vec::new();
        let read = tokio::time::timeout(WAIT, s.read_to_end(&mut answer)).await;
        let answer = String::from_utf8_lossy(&answer);
        assert!(
            matches!(read, Ok(Ok(_))) && answer.starts_with("HTTP/1.1 413"),
            "{read:?}: {answer}"
        );
    }
    // Through a real client, with bodies around the limit.
    for size in [2 * 1024 * 1024 + 1, 3 * 1024 * 1024, 8 * 1024 * 1024] {
        for _ in 0..4 {
            // A new client each time: a fresh connection sends head and body at once.
            let anon = c.anonymous();
            let body = vec![b'x'; size];
            let r = ingest(&anon, &src, body, 413).await;
            assert_eq!(r.json["code"], "payload_too_large");
        }
    }
}

#[tokio::test]
async fn defect_08_concurrent_get_if_exists_answers_the_existing_app() {
    let srv = TestServer::start(|_| {}).await;
    let c = srv.client.clone();
    let tasks: Vec<_> = (0..24)
        .map(|_| {
            let c = c.clone();
            tokio::spawn(async move {
                let r = c
                    .req(Method::POST, "/app?get_if_exists=true")
                    .json(&json!({"name": "Acme", "uid": "race-uid"}))
                    .send()
                    .await
                    .expect("send");
                let status = r.status().as_u16();
                let body: Value = r.json().await.expect("json");
                (status, body)
            })
        })
        .collect();
    let mut created = 0;
    let mut ids = std::collections::BTreeSet::new();
    for t in tasks {
        let (status, body) = t.await.expect("task");
        assert!(status == 200 || status == 201, "{status}: {body}");
        created += usize::from(status == 201);
        ids.insert(id_of(&body));
    }
    assert_eq!(created, 1);
    assert_eq!(ids.len(), 1, "{ids:?}");
}

#[tokio::test]
async fn defect_10_security_bodies_refuse_unknown_fields() {
    let srv = TestServer::start(|_| {}).await;
    let c = &srv.client;
    let app = c.create_app("typo").await;
    let r = c
        .post("/token", json!({"name": "x", "app": app}), 422)
        .await;
    assert!(r.to_string().contains("app"), "{r}");
    let tokens = c.get("/token", 200).await;
    assert_eq!(tokens["data"].as_array().map(Vec::len), Some(0), "{tokens}");
    let scoped = c
        .post("/token", json!({"name": "x", "appId": app}), 201)
        .await;
    assert_eq!(scoped["appId"], json!(app));

    let portal = format!("/auth/app-portal-access/{app}");
    c.post(&portal, json!({"bogus": true}), 422).await;
    c.post(&portal, json!({"readOnly": true}), 422).await;
    c.post(&portal, json!({"expiry": 3600}), 422).await;
    c.post(&portal, json!({"capabilities": ["ViewBase"]}), 422)
        .await;
    c.post(&portal, json!({}), 200).await;
    c.post(&portal, json!({"featureFlags": [], "readOnly": false}), 200)
        .await;
    c.send(c.req(Method::POST, &portal), 200).await;
    // Whitespace alone is not an absent body: it is not JSON (found by schemathesis).
    c.send(
        c.req(Method::POST, &portal)
            .header("content-type", "application/json")
            .body(" "),
        400,
    )
    .await;
    // `application` creates the app when the path names none (Svix semantics).
    c.post(
        "/auth/app-portal-access/portal-made",
        json!({"application": {"name": "Made"}}),
        200,
    )
    .await;
    c.get("/app/portal-made", 200).await;

    let src = format!("/app/{app}/source");
    c.post(
        &src,
        json!({"name": "s", "verification": {"scheme": "none"}, "verifcation": {}}),
        422,
    )
    .await;
    c.post(
        &src,
        json!({"name": "s", "verification": {"scheme": "github", "secrets": ["s"], "tolerence": 5}}),
        422,
    )
    .await;
    let s = c
        .post(
            &src,
            json!({"name": "s", "verification": {"scheme": "github", "secrets": ["s"]}}),
            201,
        )
        .await;
    c.patch(
        &format!("{src}/{}", id_of(&s)),
        json!({"verificaton": {"scheme": "none"}}),
        422,
    )
    .await;
}

#[tokio::test]
async fn defect_12_invalid_utf8_in_an_unknown_field_is_refused() {
    let srv = TestServer::start(|_| {}).await;
    let c = &srv.client;
    let mut body = br#"{"name": "x", "zz": ""#.to_vec();
    body.extend_from_slice(&[0xff, 0xfe]);
    body.extend_from_slice(br#""}"#);
    let r = c.post_raw("/app", body, 400).await;
    assert_eq!(r.json["code"], "bad_request");
    let listed = c.get("/app", 200).await;
    assert_eq!(listed["data"].as_array().map(Vec::len), Some(0));
}

/// Guards the drain of unread bodies: an answer without reading a body (404 for an unknown
/// route with a body) keeps the keep-alive connection usable.
#[tokio::test]
async fn unread_bodies_are_drained_so_the_connection_survives() {
    let srv = TestServer::start(|_| {}).await;
    let c = &srv.client;
    let body = vec![b'x'; 512 * 1024];
    for _ in 0..3 {
        c.send(
            c.req(Method::POST, "/no-such-route").body(body.clone()),
            404,
        )
        .await;
        c.get("/health", 200).await;
    }
}
