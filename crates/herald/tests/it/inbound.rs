//! The inbound gateway (inbound.md) through real sources on a real server: the published
//! vectors verify through `POST /in/{source}` (and fail with one byte flipped), the checks come
//! in the contract's order with its status codes, dedup collapses repeats, a quarantined request
//! is released later, and an accepted request reaches the application's endpoint with the
//! original body, Herald's own signature and the forwarded provider headers. With `ordering`,
//! stale events are logged and not forwarded, and a gap holds later events until it is filled
//! or the gap timeout ends, after which a FIFO endpoint receives them in sequence order.

use std::time::Duration;

use reqwest::Method;
use serde_json::{json, Value};

use crate::common::{
    assert_standard_signed, eventually, hmac_sha256, id_of, to_hex, unix_now, Receiver, Resp,
    TestServer, WAIT,
};

/// A tolerance wide enough for vectors signed years ago ("verify with a clock fixed at …"):
/// `toleranceSeconds` is per-source configuration, so the server's own clock stays real.
const FOREVER: i64 = 4_000_000_000;

fn vectors() -> Vec<Value> {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../tests/vectors/vectors.json"
    );
    let doc: Value = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    doc["vectors"].as_array().unwrap().clone()
}

async fn create_source(c: &crate::common::Client, app: &str, body: Value) -> Value {
    c.post(&format!("/app/{app}/source"), body, 201).await
}

/// POSTs to the ingestion URL with the given headers and raw body; no bearer token.
async fn ingest(
    c: &crate::common::Client,
    src: &str,
    query: &str,
    headers: &[(String, String)],
    body: Vec<u8>,
    expect: u16,
) -> Resp {
    let anon = c.anonymous();
    anon.send(post_in(&anon, src, query, headers, body), expect)
        .await
}

fn post_in(
    anon: &crate::common::Client,
    src: &str,
    query: &str,
    headers: &[(String, String)],
    body: Vec<u8>,
) -> reqwest::RequestBuilder {
    let mut rb = anon
        .req(Method::POST, &format!("//in/{src}{query}"))
        .body(body);
    for (k, v) in headers {
        rb = rb.header(k.as_str(), v.as_str());
    }
    rb
}

fn flip(s: &str, at_from_end: usize) -> String {
    let mut b = s.as_bytes().to_vec();
    let i = b.len() - at_from_end;
    b[i] = if b[i] == b'A' || b[i] == b'a' || b[i] == b'0' {
        if b[i] == b'0' {
            b'1'
        } else {
            b[i] + 1
        }
    } else if b[i].is_ascii_digit() {
        b'0'
    } else {
        b'a'
    };
    String::from_utf8(b).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_published_vector_verifies_through_a_real_source() {
    let srv = TestServer::start(|_| {}).await;
    let c = &srv.client;
    let app = c.create_app("vectors").await;
    for (i, v) in vectors().iter().enumerate() {
        let scheme = v["scheme"].as_str().unwrap();
        let secret = v["secret"]
            .as_str()
            .or(v["publicKey"].as_str())
            .unwrap()
            .to_string();
        let (public_url, query) = match v["url"].as_str() {
            Some(u) => match u.split_once('?') {
                Some((base, q)) => (Some(base.to_string()), format!("?{q}")),
                None => (Some(u.to_string()), String::new()),
            },
            None => (None, String::new()),
        };
        let mut src = json!({
            "name": format!("vector {i}"),
            "verification": {"scheme": scheme, "secrets": [secret]},
        });
        if ["standard-webhooks", "slack", "stripe", "paddle", "twitch"].contains(&scheme) {
            src["verification"]["toleranceSeconds"] = json!(FOREVER);
        }
        if let Some(u) = &public_url {
            src["publicUrl"] = json!(u);
        }
        let src = id_of(&create_source(c, &app, src).await);
        let mut headers: Vec<(String, String)> = v["headers"]
            .as_object()
            .unwrap()
            .iter()
            .map(|(k, v)| (k.clone(), v.as_str().unwrap().to_string()))
            .collect();
        let body: Vec<u8> = match (v["body"].as_str(), v["form"].as_object()) {
            (Some(b), _) => b.as_bytes().to_vec(),
            (None, Some(form)) => {
                headers.push((
                    "content-type".into(),
                    "application/x-www-form-urlencoded".into(),
                ));
                form.iter()
                    .map(|(k, v)| format!("{}={}", urlencode(k), urlencode(v.as_str().unwrap())))
                    .collect::<Vec<_>>()
                    .join("&")
                    .into_bytes()
            }
            _ => panic!("vector {i} has no body"),
        };
        let ok = ingest(c, &src, &query, &headers, body.clone(), 202).await;
        assert!(
            ok.json["id"].as_str().unwrap().starts_with("msg_"),
            "vector {i} ({scheme})"
        );
        // One byte of the body flipped.
        let mut bad = body.clone();
        let mid = bad.len() / 2;
        bad[mid] ^= 0x01;
        let r = ingest(c, &src, &query, &headers, bad, 401).await;
        assert_eq!(r.json["code"], "invalid_signature", "vector {i} ({scheme})");
        // One byte of the signature flipped.
        let sig = headers
            .iter()
            .position(|(k, _)| k.to_ascii_lowercase().contains("signature"))
            .unwrap();
        let mut flipped = headers.clone();
        flipped[sig].1 = flip(&flipped[sig].1, 6);
        let r = ingest(c, &src, &query, &flipped, body.clone(), 401).await;
        assert_eq!(r.json["code"], "invalid_signature", "vector {i} ({scheme})");
    }
    srv.stop().await;
}

fn urlencode(s: &str) -> String {
    url::form_urlencoded::byte_serialize(s.as_bytes()).collect()
}

fn github_headers(secret: &str, body: &[u8], event: &str, delivery: &str) -> Vec<(String, String)> {
    vec![
        (
            "X-Hub-Signature-256".into(),
            format!("sha256={}", to_hex(&hmac_sha256(secret.as_bytes(), body))),
        ),
        ("X-GitHub-Event".into(), event.into()),
        ("X-GitHub-Delivery".into(), delivery.into()),
        ("content-type".into(), "application/json".into()),
    ]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_accepted_request_is_forwarded_once_signed_by_herald() {
    let srv = TestServer::start(|_| {}).await;
    let c = &srv.client;
    let rx = Receiver::start().await;
    let app = c.create_app("gh").await;
    let ep = c.endpoint_for(&app, &rx.url_path("/internal")).await;
    let ep_secret = c.secret(&app, &ep).await;
    let src = create_source(
        c,
        &app,
        json!({"name": "GitHub", "uid": "github", "verification": {"scheme": "github", "secrets": ["gh-secret"]}}),
    )
    .await;
    assert!(src.get("secrets").is_none() && src["verification"].get("secrets").is_none());
    assert!(
        src.get("warnings").is_none(),
        "a signed source has no warnings"
    );
    assert_eq!(
        src["ingestUrl"],
        format!("http://{}/in/{}", srv.addr, id_of(&src))
    );
    let body = br#"{"action":  "opened", "number": 7}"#.to_vec();
    let h = github_headers("gh-secret", &body, "pull_request", "d-1");
    let r = ingest(c, &id_of(&src), "", &h, body.clone(), 202).await;
    let msg = r.json["id"].as_str().unwrap().to_string();

    let got = rx.wait_for(1).await;
    let req = &got[0];
    assert_eq!(req.body.as_ref(), body.as_slice(), "original bytes");
    assert_standard_signed(req, "webhook", &ep_secret, &msg);
    assert_eq!(req.header("x-github-event"), Some("pull_request"));
    assert!(
        req.header("x-hub-signature-256").is_none(),
        "provider signature forwarded"
    );
    let m = c.get(&format!("/app/{app}/msg/{msg}"), 200).await;
    assert_eq!(m["eventType"], "pull_request");

    // The same delivery again: 200 duplicate with the first ID, nothing forwarded.
    let r = ingest(c, &id_of(&src), "", &h, body.clone(), 200).await;
    assert_eq!(r.json, json!({"id": msg, "duplicate": true}));
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(rx.count(), 1);
    let log = c
        .get(&format!("/app/{app}/source/github/request"), 200)
        .await;
    let statuses: Vec<&str> = log["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["status"].as_str().unwrap())
        .collect();
    assert_eq!(statuses, vec!["duplicate", "accepted"]);
    // Filtered by status; an unknown status is a 422 naming the field.
    let dups = c
        .get(
            &format!("/app/{app}/source/github/request?status=duplicate"),
            200,
        )
        .await;
    let dups = dups["data"].as_array().unwrap();
    assert_eq!(dups.len(), 1);
    assert_eq!(dups[0]["status"], "duplicate");
    let bad = c
        .get(
            &format!("/app/{app}/source/github/request?status=lost"),
            422,
        )
        .await;
    assert!(bad.to_string().contains("status"), "{bad}");
    srv.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn checks_come_in_the_contracts_order_with_its_codes() {
    let srv = TestServer::start(|_| {}).await;
    let c = &srv.client;
    let app = c.create_app("errs").await;
    // Unknown source.
    let r = ingest(
        c,
        "src_01JAAAAAAAAAAAAAAAAAAAAAAA",
        "",
        &[],
        b"{}".to_vec(),
        404,
    )
    .await;
    assert_eq!(r.json["code"], "not_found");
    let src = id_of(
        &create_source(
            c,
            &app,
            json!({"name": "s", "verification": {"scheme": "github", "secrets": ["k"]}}),
        )
        .await,
    );
    let limited_src = id_of(
        &create_source(
            c,
            &app,
            json!({"name": "rl", "verification": {"scheme": "github", "secrets": ["k"]}, "rateLimit": 2}),
        )
        .await,
    );
    // Over 2 MiB: 413 whatever the signature.
    let big = vec![b'x'; 2 * 1024 * 1024 + 1];
    let r = ingest(c, &src, "", &[], big, 413).await;
    assert_eq!(r.json["code"], "payload_too_large");
    // Missing and wrong signatures: 401, logged with a reason, never the secret.
    let r = ingest(c, &src, "", &[], b"{}".to_vec(), 401).await;
    assert_eq!(r.json["code"], "invalid_signature");
    let wrong = github_headers("not-k", b"{}", "push", "x");
    ingest(c, &src, "", &wrong, b"{}".to_vec(), 401).await;
    let log = c
        .get(&format!("/app/{app}/source/{src}/request"), 200)
        .await;
    let rows = log["data"].as_array().unwrap();
    assert!(rows.len() >= 2);
    for row in rows {
        assert_eq!(row["status"], "rejected");
        assert!(row["reason"]
            .as_str()
            .unwrap()
            .starts_with("invalid_signature"));
        assert!(
            !row.to_string().contains("sha256="),
            "signature logged: {row}"
        );
    }
    // rateLimit 2/s: a burst is cut off with 429 and Retry-After.
    let mut limited = None;
    for i in 0..10 {
        let body = format!(r#"{{"n": {i}}}"#).into_bytes();
        let h = github_headers("k", &body, "push", &format!("rl-{i}"));
        let anon = c.anonymous();
        let r = post_in(&anon, &limited_src, "", &h, body)
            .send()
            .await
            .unwrap();
        let r = Resp {
            status: r.status().as_u16(),
            headers: r.headers().clone(),
            text: String::new(),
            json: r.json().await.unwrap_or(Value::Null),
        };
        if r.status == 429 {
            limited = Some(r);
            break;
        }
    }
    let r = limited.expect("no 429 within 10 requests at rateLimit 2");
    assert!(r.headers.get("retry-after").is_some());
    assert_eq!(r.json["code"], "rate_limited");
    srv.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn schema_failures_are_quarantined_then_released_or_rejected() {
    let srv = TestServer::start(|_| {}).await;
    let c = &srv.client;
    let rx = Receiver::start().await;
    let app = c.create_app("q").await;
    c.endpoint_for(&app, &rx.url()).await;
    let schema = json!({"type": "object", "required": ["id"]});
    let src = id_of(
        &create_source(
            c,
            &app,
            json!({"name": "q", "verification": {"scheme": "github", "secrets": ["k"]}, "schema": schema}),
        )
        .await,
    );
    let body = br#"{"no_id": true}"#.to_vec();
    let r = ingest(
        c,
        &src,
        "",
        &github_headers("k", &body, "push", "q1"),
        body.clone(),
        202,
    )
    .await;
    assert_eq!(r.json["quarantined"], true);
    let req_id = r.json["id"].as_str().unwrap().to_string();
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(rx.count(), 0, "a quarantined request was forwarded");
    let log = c
        .get(&format!("/app/{app}/source/{src}/request"), 200)
        .await;
    assert_eq!(log["data"][0]["status"], "quarantined");
    assert!(log["data"][0]["reason"].as_str().unwrap().contains("id"));
    let rel = c
        .post(
            &format!("/app/{app}/source/{src}/quarantine/{req_id}/release"),
            json!({}),
            202,
        )
        .await;
    let got = rx.wait_for(1).await;
    assert_eq!(got[0].body.as_ref(), body.as_slice());
    assert_eq!(got[0].header("webhook-id"), rel["id"].as_str());
    // Released once only.
    c.post(
        &format!("/app/{app}/source/{src}/quarantine/{req_id}/release"),
        json!({}),
        404,
    )
    .await;
    // onInvalid = reject answers 422.
    c.patch(
        &format!("/app/{app}/source/{src}"),
        json!({"onInvalid": "reject"}),
        200,
    )
    .await;
    let r = ingest(
        c,
        &src,
        "",
        &github_headers("k", &body, "push", "q2"),
        body.clone(),
        422,
    )
    .await;
    assert_eq!(r.json["code"], "validation_error");
    srv.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slack_url_verification_is_answered_directly() {
    let srv = TestServer::start(|_| {}).await;
    let c = &srv.client;
    let app = c.create_app("slack").await;
    let src = id_of(
        &create_source(
            c,
            &app,
            json!({"name": "slack", "verification": {"scheme": "slack", "secrets": ["slack-secret"]}}),
        )
        .await,
    );
    let body = br#"{"token":"t","challenge":"3eZbrw1aBm2rZgRNFdxV2595E9CY3gmdALWMmHkvFXO7tYXAYM8P","type":"url_verification"}"#.to_vec();
    let ts = unix_now().to_string();
    let mut base = format!("v0:{ts}:").into_bytes();
    base.extend_from_slice(&body);
    let sig = format!("v0={}", to_hex(&hmac_sha256(b"slack-secret", &base)));
    let h = vec![
        ("X-Slack-Signature".to_string(), sig),
        ("X-Slack-Request-Timestamp".to_string(), ts),
        ("content-type".to_string(), "application/json".to_string()),
    ];
    let r = ingest(c, &src, "", &h, body, 200).await;
    assert_eq!(
        r.json["challenge"],
        "3eZbrw1aBm2rZgRNFdxV2595E9CY3gmdALWMmHkvFXO7tYXAYM8P"
    );
    let msgs = c.get(&format!("/app/{app}/msg"), 200).await;
    assert!(
        msgs["data"].as_array().unwrap().is_empty(),
        "a handshake became a message"
    );
    srv.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sources_api_validates_and_rotates_with_grace() {
    let srv = TestServer::start(|_| {}).await;
    let c = &srv.client;
    let app = c.create_app("api").await;
    // Unknown scheme, missing verification, ordering rules that are not rule objects: 422.
    let r = c
        .post(
            &format!("/app/{app}/source"),
            json!({"name": "x", "verification": {"scheme": "nope"}}),
            422,
        )
        .await;
    assert_eq!(r["code"], "validation_error");
    c.post(&format!("/app/{app}/source"), json!({"name": "x"}), 422)
        .await;
    c.post(
        &format!("/app/{app}/source"),
        json!({"name": "x", "verification": {"scheme": "none"}, "ordering": {"key": "/id", "sequence": "/seq"}}),
        422,
    )
    .await;
    let src = create_source(
        c,
        &app,
        json!({"name": "gh", "verification": {"scheme": "github", "secrets": ["old"]}}),
    )
    .await;
    let id = id_of(&src);
    let listed = c.get(&format!("/app/{app}/source"), 200).await;
    assert_eq!(listed["data"][0]["id"], id);
    assert!(!listed.to_string().contains("\"old\""), "secret returned");
    // Rotation keeps the old secret valid during the grace period.
    c.post(
        &format!("/app/{app}/source/{id}/secret/rotate"),
        json!({"key": "new", "gracePeriodSeconds": 3600}),
        200,
    )
    .await;
    for (n, secret) in ["old", "new"].iter().enumerate() {
        let body = format!(r#"{{"n": {n}}}"#).into_bytes();
        ingest(
            c,
            &id,
            "",
            &github_headers(secret, &body, "push", &format!("r{n}")),
            body.clone(),
            202,
        )
        .await;
    }
    // Without grace the old one stops at once.
    c.post(
        &format!("/app/{app}/source/{id}/secret/rotate"),
        json!({"key": "newer", "gracePeriodSeconds": 0}),
        200,
    )
    .await;
    let body = br#"{"n": 9}"#.to_vec();
    ingest(
        c,
        &id,
        "",
        &github_headers("new", &body, "push", "r9"),
        body.clone(),
        401,
    )
    .await;
    ingest(
        c,
        &id,
        "",
        &github_headers("newer", &body, "push", "r9"),
        body,
        202,
    )
    .await;
    // Other tenants cannot see the source.
    let other = c.create_app("other").await;
    c.get(&format!("/app/{other}/source/{id}"), 404).await;
    c.delete(&format!("/app/{app}/source/{id}"), 204).await;
    eventually(WAIT, "source gone", || async {
        (c.status_of(Method::GET, &format!("/app/{app}/source/{id}"))
            .await
            == Some(404))
        .then_some(())
    })
    .await;
    srv.stop().await;
}

/// The `seq` of each JSON body the receiver got, in arrival order.
fn seqs(got: &[crate::common::Recorded]) -> Vec<i64> {
    got.iter()
        .map(|r| {
            serde_json::from_slice::<Value>(&r.body).unwrap()["seq"]
                .as_i64()
                .unwrap()
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ordering_drops_stale_events_and_holds_later_ones_until_the_gap_is_filled_or_times_out() {
    let srv = TestServer::start(|_| {}).await;
    let c = &srv.client;
    let rx = Receiver::start().await;
    let app = c.create_app("ordered").await;
    c.create_endpoint(&app, json!({ "url": rx.url(), "ordering": "fifo" }))
        .await;
    let src = create_source(
        c,
        &app,
        json!({"name": "GitHub", "uid": "gh",
               "verification": {"scheme": "github", "secrets": ["k"]},
               "ordering": {"key": {"json": "/repository/id"}, "sequence": {"json": "/seq"},
                            "gapTimeoutSeconds": 60}}),
    )
    .await;
    assert_eq!(src["ordering"]["key"], json!({"json": "/repository/id"}));
    assert_eq!(src["ordering"]["gapTimeoutSeconds"], 60);
    let src = id_of(&src);
    let send = |seq: i64, delivery: &str, expect: u16| {
        let body = format!(r#"{{"repository": {{"id": 42}}, "seq": {seq}}}"#).into_bytes();
        let h = github_headers("k", &body, "push", delivery);
        let src = src.clone();
        async move { ingest(c, &src, "", &h, body, expect).await.json }
    };

    // 1, 2, 3: delivered in order.
    for seq in 1..=3 {
        let r = send(seq, &format!("d-{seq}"), 202).await;
        assert!(r["id"].as_str().unwrap().starts_with("msg_"), "{r}");
    }
    assert_eq!(seqs(&rx.wait_for(3).await), vec![1, 2, 3]);

    // 2 again under a new delivery ID (not a dedup duplicate): 200 stale, never a message.
    let stale = send(2, "d-2-again", 200).await;
    assert_eq!(stale["stale"], true);
    let stale_id = stale["id"].as_str().unwrap().to_string();
    assert!(stale_id.starts_with("inreq_"), "{stale}");

    // 5 before 4: 5 is held (its message does not exist yet), 4 lets both go, 4 first.
    let held = send(5, "d-5", 202).await;
    assert_eq!(held["held"], true);
    let msg5 = held["id"].as_str().unwrap().to_string();
    c.get(&format!("/app/{app}/msg/{msg5}"), 404).await;
    let r = send(4, "d-4", 202).await;
    assert!(r.get("held").is_none(), "{r}");
    let got = rx.wait_for(5).await;
    assert_eq!(
        seqs(&got),
        vec![1, 2, 3, 4, 5],
        "the stale 2 was not forwarded"
    );
    // Released from the hold, it carries its source's channel like any inbound message
    // (`herald listen --source` filters on it).
    let m5 = c.get(&format!("/app/{app}/msg/{msg5}"), 200).await;
    assert_eq!(m5["channels"], json!([format!("herald-source.{src}")]));

    // A short gap timeout: 7 waits for 6, then goes on without it.
    c.patch(
        &format!("/app/{app}/source/{src}"),
        json!({"ordering": {"key": {"json": "/repository/id"}, "sequence": {"json": "/seq"},
                            "gapTimeoutSeconds": 1}}),
        200,
    )
    .await;
    let held = send(7, "d-7", 202).await;
    assert_eq!(held["held"], true);
    let got = rx.wait_for(6).await;
    assert_eq!(seqs(&got), vec![1, 2, 3, 4, 5, 7]);
    // 6 comes too late: stale.
    assert_eq!(send(6, "d-6", 200).await["stale"], true);

    // An event without a sequence is forwarded unordered (never a 4xx to the provider).
    let body = br#"{"repository": {"id": 42}, "seq": "n/a", "x": 1}"#.to_vec();
    let h = github_headers("k", &body, "push", "d-noseq");
    ingest(c, &src, "", &h, body, 202).await;
    rx.wait_for(7).await;

    // The log: stale requests listed as stale, held ones as accepted with their message.
    let log = c
        .get(&format!("/app/{app}/source/{src}/request?limit=50"), 200)
        .await;
    let rows = log["data"].as_array().unwrap();
    let row = |id: &str| rows.iter().find(|r| r["id"] == id).cloned();
    let stale_row = row(&stale_id).expect("stale request listed");
    assert_eq!(stale_row["status"], "stale");
    assert!(stale_row["msgId"].is_null());
    let held_row = rows
        .iter()
        .find(|r| r["msgId"] == msg5.as_str())
        .expect("held request listed");
    assert_eq!(held_row["status"], "accepted");
    assert_eq!(rows.iter().filter(|r| r["status"] == "stale").count(), 2);
    assert!(!rows.iter().any(|r| r["status"] == "held"));
    assert!(rows.iter().any(|r| r["reason"]
        .as_str()
        .is_some_and(|x| x.contains("unordered"))));
    srv.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_ordering_options_are_refused_with_field_errors() {
    let srv = TestServer::start(|_| {}).await;
    let c = &srv.client;
    let app = c.create_app("ord-api").await;
    let v = json!({"scheme": "none"});
    let locs = |r: &Value| -> Vec<String> {
        r["detail"]
            .as_array()
            .unwrap()
            .iter()
            .map(|d| {
                d["loc"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|x| x.as_str().unwrap())
                    .collect::<Vec<_>>()
                    .join(".")
            })
            .collect()
    };
    for bad in [
        json!("yes"),
        json!({"key": {"json": "/id"}}),
        json!({"key": {"json": "/id"}, "sequence": {"json": "/seq"}, "extra": 1}),
        json!({"key": "/id", "sequence": "/seq"}),
    ] {
        let r = c
            .post(
                &format!("/app/{app}/source"),
                json!({"name": "x", "verification": v, "ordering": bad}),
                422,
            )
            .await;
        assert_eq!(locs(&r), vec!["body.ordering"], "{bad}");
    }
    let r = c
        .post(
            &format!("/app/{app}/source"),
            json!({"name": "x", "verification": v, "ordering":
                {"key": {"bodyHash": true}, "sequence": {"value": "1"}, "gapTimeoutSeconds": -1}}),
            422,
        )
        .await;
    assert_eq!(
        locs(&r),
        vec![
            "body.ordering.key",
            "body.ordering.sequence",
            "body.ordering.gapTimeoutSeconds"
        ]
    );
    // Valid, then a bad PATCH (unchanged), then cleared with null.
    let good = json!({"key": {"header": "X-Resource"}, "sequence": {"header": "X-Seq"}, "gapTimeoutSeconds": 0});
    let src = create_source(
        c,
        &app,
        json!({"name": "ok", "verification": v, "ordering": good}),
    )
    .await;
    assert_eq!(src["ordering"], good);
    let id = id_of(&src);
    let r = c
        .patch(
            &format!("/app/{app}/source/{id}"),
            json!({"ordering": {"key": {"header": "X-Resource"}, "sequence": {"header": "X-Seq"}, "gapTimeoutSeconds": 86401}}),
            422,
        )
        .await;
    assert_eq!(locs(&r), vec!["body.ordering.gapTimeoutSeconds"]);
    assert_eq!(
        c.get(&format!("/app/{app}/source/{id}"), 200).await["ordering"],
        good
    );
    let cleared = c
        .patch(
            &format!("/app/{app}/source/{id}"),
            json!({"ordering": null}),
            200,
        )
        .await;
    assert!(cleared.get("ordering").is_none(), "{cleared}");
    srv.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn non_json_bodies_are_forwarded_byte_for_byte_with_their_content_type() {
    let srv = TestServer::start(|_| {}).await;
    let c = &srv.client;
    let rx = Receiver::start().await;
    let app = c.create_app("raw").await;
    let ep = c.endpoint_for(&app, &rx.url_path("/raw")).await;
    let ep_secret = c.secret(&app, &ep).await;
    // `Content-Type` configured as a forwarded header must not turn a JSON body into raw bytes.
    let created = create_source(
        c,
        &app,
        json!({"name": "raw", "verification": {"scheme": "none"},
               "forwardHeaders": ["Content-Type", "X-Kind"]}),
    )
    .await;
    // Scheme `none` is accepted but reported as insecure (inbound.md).
    assert!(
        created["warnings"][0]
            .as_str()
            .unwrap()
            .contains("insecure"),
        "{created}"
    );
    let src = id_of(&created);
    let cases: Vec<(&str, Vec<u8>, Value)> = vec![
        (
            "application/x-www-form-urlencoded",
            b"Body=hi+there&From=%2B15550001&SmsSid=SM1".to_vec(),
            json!({"raw": "Body=hi+there&From=%2B15550001&SmsSid=SM1",
                   "contentType": "application/x-www-form-urlencoded"}),
        ),
        (
            "text/plain; charset=utf-8",
            "  plain text, spaces kept \n".as_bytes().to_vec(),
            json!({"raw": "  plain text, spaces kept \n", "contentType": "text/plain; charset=utf-8"}),
        ),
        (
            "application/octet-stream",
            vec![0xff, 0x00, 0xfe, b'x'],
            json!({"raw": "/wD+eA==", "contentType": "application/octet-stream", "encoding": "base64"}),
        ),
        (
            "application/json",
            br#"{ "a" : [1, 2] }"#.to_vec(),
            json!({"a": [1, 2]}),
        ),
    ];
    let mut ids = Vec::new();
    for (i, (ct, body, _)) in cases.iter().enumerate() {
        let h = vec![
            ("content-type".to_string(), ct.to_string()),
            ("x-kind".to_string(), format!("k{i}")),
        ];
        let r = ingest(c, &src, "", &h, body.clone(), 202).await;
        ids.push(r.json["id"].as_str().unwrap().to_string());
    }
    let got = rx.wait_for(cases.len()).await;
    for (i, (ct, body, shown)) in cases.iter().enumerate() {
        let req = got
            .iter()
            .find(|r| r.header("x-kind") == Some(format!("k{i}").as_str()))
            .unwrap_or_else(|| panic!("case {i} not delivered"));
        assert_eq!(
            req.body.as_ref(),
            body.as_slice(),
            "case {i}: bytes changed"
        );
        assert_eq!(
            req.header("content-type"),
            Some(*ct),
            "case {i}: content type"
        );
        assert_standard_signed(req, "webhook", &ep_secret, &ids[i]);
        let m = c.get(&format!("/app/{app}/msg/{}", ids[i]), 200).await;
        assert_eq!(&m["payload"], shown, "case {i}: message API payload");
    }
    srv.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fifty_concurrent_copies_of_one_event_become_one_message_and_one_delivery() {
    let srv = TestServer::start(|_| {}).await;
    let c = &srv.client;
    let rx = Receiver::start().await;
    let app = c.create_app("copies").await;
    c.endpoint_for(&app, &rx.url_path("/copies")).await;
    let src = id_of(
        &create_source(
            c,
            &app,
            json!({"name": "gh", "verification": {"scheme": "github", "secrets": ["s"]}}),
        )
        .await,
    );
    let body = br#"{"action":"created","n":1}"#.to_vec();
    let h = github_headers("s", &body, "issues", "same-delivery");
    let anon = c.anonymous();
    let sends = (0..50).map(|_| {
        let rb = post_in(&anon, &src, "", &h, body.clone());
        async move {
            let r = rb.send().await.expect("request");
            let status = r.status().as_u16();
            (status, r.json::<Value>().await.expect("json answer"))
        }
    });
    let answers = futures::future::join_all(sends).await;
    let accepted: Vec<&Value> = answers
        .iter()
        .filter(|(s, _)| *s == 202)
        .map(|(_, v)| v)
        .collect();
    assert_eq!(accepted.len(), 1, "answers: {answers:?}");
    let id = accepted[0]["id"].as_str().unwrap();
    for (status, v) in &answers {
        assert!(*status == 202 || *status == 200, "{status} {v}");
        assert_eq!(v["id"], id, "every copy names the one message");
    }
    rx.wait_for(1).await;
    // Give any second delivery the time to arrive before counting.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_eq!(rx.count(), 1, "delivered more than once");
    let msgs = c.get(&format!("/app/{app}/msg"), 200).await;
    assert_eq!(msgs["data"].as_array().unwrap().len(), 1);
    srv.stop().await;
}

/// The 2 MiB limit is enforced while reading: a chunked body that never ends is answered 413
/// as soon as it passes the limit, instead of being read (or waited for) to the end.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_endless_body_is_refused_with_413_without_being_read_to_the_end() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let srv = TestServer::start(|_| {}).await;
    let c = &srv.client;
    let app = c.create_app("endless").await;
    let src = id_of(
        &create_source(
            c,
            &app,
            json!({"name": "none", "verification": {"scheme": "none"}}),
        )
        .await,
    );
    let stream = tokio::net::TcpStream::connect(srv.addr).await.unwrap();
    let (mut rd, mut wr) = stream.into_split();
    let head = format!(
        "POST /in/{src} HTTP/1.1\r\nHost: {}\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n",
        srv.addr
    );
    // The writer sends at most 16 MiB and never the final chunk; it stops at the first error
    // (the server closing the connection after answering).
    let writer = tokio::spawn(async move {
        wr.write_all(head.as_bytes()).await?;
        let chunk = vec![b' '; 64 * 1024];
        let mut sent = 0usize;
        while sent < 16 * 1024 * 1024 {
            wr.write_all(format!("{:x}\r\n", chunk.len()).as_bytes())
                .await?;
            wr.write_all(&chunk).await?;
            wr.write_all(b"\r\n").await?;
            sent += chunk.len();
        }
        // Keep the request open, unfinished, until the test ends.
        tokio::time::sleep(Duration::from_secs(30)).await;
        std::io::Result::Ok(sent)
    });
    let mut answer = Vec::new();
    let mut buf = [0u8; 4096];
    let read = tokio::time::timeout(Duration::from_secs(20), async {
        while !answer.windows(4).any(|w| w == b"\r\n\r\n") {
            let n = rd.read(&mut buf).await.unwrap_or(0);
            if n == 0 {
                break;
            }
            answer.extend_from_slice(&buf[..n]);
        }
    })
    .await;
    assert!(read.is_ok(), "no answer while the body was still streaming");
    let text = String::from_utf8_lossy(&answer);
    assert!(text.starts_with("HTTP/1.1 413"), "answer: {text}");
    writer.abort();
    srv.stop().await;
}
