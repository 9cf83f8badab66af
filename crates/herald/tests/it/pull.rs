//! Polling endpoints (`url` `poll:`) through the real server: pages in publish order, signed
//! like webhooks, acknowledgement by iterator, poll-only tokens, and the hostile cases
//! (garbage and foreign iterators, bad limits, cross-tenant polls, a poll token used elsewhere).

use reqwest::Method;
use serde_json::{json, Value};

use crate::common::*;

struct Polled {
    json: Value,
    resp: Resp,
}

async fn poll(c: &Client, app: &str, ep: &str, query: &str, expect: u16) -> Polled {
    let path = format!("/app/{app}/endpoint/{ep}/poll{query}");
    let resp = c.send(c.req(Method::GET, &path), expect).await;
    Polled {
        json: resp.json.clone(),
        resp,
    }
}

fn ids(p: &Polled) -> Vec<String> {
    p.json["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["id"].as_str().unwrap().to_string())
        .collect()
}

/// Verifies the page's signature the way a consumer would, with the endpoint's secret.
fn assert_page_signed(p: &Polled, secret: &str, msg_ids: &[String]) {
    let h = |n: &str| p.resp.headers[n].to_str().unwrap().to_string();
    let (id, ts, sig) = (
        h("webhook-id"),
        h("webhook-timestamp"),
        h("webhook-signature"),
    );
    assert!(id.starts_with("batch_"), "{id}");
    assert!(!msg_ids.contains(&id), "a page has an ID of its own");
    let expected = standard_signature(secret, &id, &ts, p.resp.text.as_bytes());
    assert!(signatures(&sig).contains(&expected), "{sig}");
}

async fn poll_app(c: &Client) -> (String, String) {
    let app = c.create_app("pull").await;
    let ep = c.create_endpoint(&app, json!({"url": "poll:"})).await;
    (app, id_of(&ep))
}

#[tokio::test]
async fn a_consumer_pages_acknowledges_and_rereads_after_a_crash() {
    let s = TestServer::start(|_| {}).await;
    let c = &s.client;
    let (app, ep) = poll_app(c).await;
    let mut sent = Vec::new();
    for i in 0..5 {
        sent.push(
            c.publish(&app, json!({"eventType": "t", "payload": {"n": i}}))
                .await,
        );
    }
    let p1 = poll(c, &app, &ep, "?limit=3", 200).await;
    assert_eq!(ids(&p1), sent[..3]);
    assert_eq!(p1.json["done"], false);
    assert_eq!(p1.json["data"][0]["payload"], json!({"n": 0}));
    assert_eq!(p1.json["data"][0]["eventType"], "t");
    let secret = c.secret(&app, &ep).await;
    assert_page_signed(&p1, &secret, &sent);

    // The consumer crashed before using page 1: without an iterator it reads it again.
    let again = poll(c, &app, &ep, "?limit=3", 200).await;
    assert_eq!(ids(&again), sent[..3]);

    let it = p1.json["iterator"].as_str().unwrap().to_string();
    let p2 = poll(c, &app, &ep, &format!("?limit=3&iterator={it}"), 200).await;
    assert_eq!(ids(&p2), sent[3..]);
    assert_eq!(p2.json["done"], true);
    for m in &sent[..3] {
        assert_eq!(
            c.delivery_status(&app, m, &ep).await,
            Some(0),
            "acknowledged: success"
        );
        assert_eq!(
            c.attempts_of_msg(&app, m).await.len(),
            1,
            "one attempt record"
        );
    }
    assert_eq!(
        c.delivery_status(&app, &sent[3], &ep).await,
        Some(1),
        "still held"
    );

    let it2 = p2.json["iterator"].as_str().unwrap().to_string();
    let p3 = poll(c, &app, &ep, &format!("?iterator={it2}"), 200).await;
    assert_eq!(p3.json["data"], json!([]));
    assert_eq!(p3.json["done"], true);
    let it3 = p3.json["iterator"].as_str().unwrap();
    assert!(!it3.is_empty(), "the iterator is never null");
    // An empty page's iterator is where the next poll starts.
    let next = c
        .publish(&app, json!({"eventType": "t", "payload": {}}))
        .await;
    let p4 = poll(c, &app, &ep, &format!("?iterator={it3}"), 200).await;
    assert_eq!(ids(&p4), vec![next]);
    s.stop().await;
}

#[tokio::test]
async fn since_seeks_and_the_seek_holds_on_the_next_pages() {
    let s = TestServer::start(|_| {}).await;
    let c = &s.client;
    let (app, ep) = poll_app(c).await;
    c.publish(&app, json!({"eventType": "t", "payload": {}}))
        .await;
    tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
    let since = rfc3339_ago(0);
    let newer = c
        .publish(&app, json!({"eventType": "t", "payload": {}}))
        .await;
    let since = since.replace('+', "%2B");
    let p = poll(c, &app, &ep, &format!("?since={since}&limit=1"), 200).await;
    assert_eq!(ids(&p), vec![newer.clone()]);
    let it = p.json["iterator"].as_str().unwrap();
    let p2 = poll(c, &app, &ep, &format!("?iterator={it}"), 200).await;
    assert_eq!(
        p2.json["data"],
        json!([]),
        "the older event stays behind the seek"
    );
    s.stop().await;
}

#[tokio::test]
async fn poll_only_tokens_poll_their_endpoint_and_nothing_else() {
    let s = TestServer::start(|_| {}).await;
    let c = &s.client;
    let (app, ep) = poll_app(c).await;
    let other_ep = id_of(&c.create_endpoint(&app, json!({"url": "poll:"})).await);
    let msg = c
        .publish(&app, json!({"eventType": "t", "payload": {}}))
        .await;
    let tok = c
        .post(
            &format!("/app/{app}/endpoint/{ep}/poll/token"),
            json!({}),
            201,
        )
        .await["token"]
        .as_str()
        .unwrap()
        .to_string();
    let pc = c.with_token(&tok);
    assert_eq!(ids(&poll(&pc, &app, &ep, "", 200).await), vec![msg.clone()]);
    // Elsewhere the token is known but refused.
    poll(&pc, &app, &other_ep, "", 403).await;
    pc.get(&format!("/app/{app}"), 403).await;
    pc.get(&format!("/app/{app}/msg/{msg}"), 403).await;
    pc.get("/app", 403).await;
    pc.post(
        &format!("/app/{app}/endpoint/{ep}/poll/token"),
        json!({}),
        403,
    )
    .await;
    // Another tenant's app with the same token: refused.
    let (app2, ep2) = poll_app(c).await;
    poll(&pc, &app2, &ep2, "", 403).await;
    poll(&pc, &app2, &ep, "", 403).await;
    // An unknown token is a 401, as everywhere.
    poll(&c.with_token("hk_nope"), &app, &ep, "", 401).await;
    poll(&c.anonymous(), &app, &ep, "", 401).await;
    s.stop().await;
}

#[tokio::test]
async fn poll_tokens_are_listed_without_secrets_revoked_and_capped() {
    let s = TestServer::start(|_| {}).await;
    let c = &s.client;
    let (app, ep) = poll_app(c).await;
    let path = format!("/app/{app}/endpoint/{ep}/poll/token");
    let a = c.post(&path, json!({}), 201).await;
    let b = c.post(&path, json!({}), 201).await;
    let (a_id, a_tok) = (a["id"].as_str().unwrap(), a["token"].as_str().unwrap());
    let b_tok = b["token"].as_str().unwrap();
    assert!(a_id.starts_with("tok_"), "{a}");
    assert!(a["createdAt"].as_str().unwrap().ends_with('Z'), "{a}");
    let listed = c.get(&path, 200).await;
    let ids: Vec<&str> = listed["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, vec![a_id, b["id"].as_str().unwrap()]);
    let text = listed.to_string();
    assert!(!text.contains(a_tok) && !text.contains(b_tok), "{text}");
    // Revoked: that token no longer polls; the other still does.
    c.delete(&format!("{path}/{a_id}"), 204).await;
    poll(&c.with_token(a_tok), &app, &ep, "", 401).await;
    poll(&c.with_token(b_tok), &app, &ep, "", 200).await;
    c.delete(&format!("{path}/{a_id}"), 404).await;
    c.delete(&format!("{path}/tok_nope"), 404).await;
    c.delete(&format!("{path}/{}", "x".repeat(5000)), 404).await;
    assert_eq!(c.get(&path, 200).await["data"].as_array().unwrap().len(), 1);
    // Another endpoint (and another tenant's) cannot see or revoke them.
    let (app2, ep2) = poll_app(c).await;
    let b_id = b["id"].as_str().unwrap();
    c.delete(
        &format!("/app/{app2}/endpoint/{ep2}/poll/token/{b_id}"),
        404,
    )
    .await;
    let t = c
        .post("/token", json!({"name": "other", "appId": app2}), 201)
        .await["token"]
        .as_str()
        .unwrap()
        .to_string();
    let other = c.with_token(&t);
    other.get(&path, 403).await;
    other.delete(&format!("{path}/{b_id}"), 403).await;
    // The poll token itself may not manage tokens.
    c.with_token(b_tok).get(&path, 403).await;
    c.with_token(b_tok)
        .delete(&format!("{path}/{b_id}"), 403)
        .await;
    poll(&c.with_token(b_tok), &app, &ep, "", 200).await;
    // At most 100 per endpoint.
    for _ in 1..100 {
        c.post(&path, json!({}), 201).await;
    }
    let refused = c.post(&path, json!({}), 409).await;
    assert_eq!(refused["code"], "conflict", "{refused}");
    assert_eq!(
        c.get(&path, 200).await["data"].as_array().unwrap().len(),
        100
    );
    s.stop().await;
}

#[tokio::test]
async fn app_tokens_poll_only_their_own_application() {
    let s = TestServer::start(|_| {}).await;
    let c = &s.client;
    let (app, ep) = poll_app(c).await;
    let (app2, ep2) = poll_app(c).await;
    let t = c
        .post("/token", json!({"name": "a", "appId": app}), 201)
        .await["token"]
        .as_str()
        .unwrap()
        .to_string();
    let ac = c.with_token(&t);
    poll(&ac, &app, &ep, "", 200).await;
    poll(&ac, &app2, &ep2, "", 403).await;
    // Naming the other app's endpoint under one's own app: not found there.
    poll(&ac, &app, &ep2, "", 404).await;
    ac.post(
        &format!("/app/{app2}/endpoint/{ep2}/poll/token"),
        json!({}),
        403,
    )
    .await;
    s.stop().await;
}

#[tokio::test]
async fn hostile_polls_are_refused() {
    let s = TestServer::start(|_| {}).await;
    let c = &s.client;
    let (app, ep) = poll_app(c).await;
    let (_, ep_b) = {
        let e = c.create_endpoint(&app, json!({"url": "poll:"})).await;
        (app.clone(), id_of(&e))
    };
    c.publish(&app, json!({"eventType": "t", "payload": {}}))
        .await;
    for q in [
        "?limit=0",
        "?limit=1001",
        "?limit=-5",
        "?limit=abc",
        "?since=yesterday",
    ] {
        poll(c, &app, &ep, q, 422).await;
    }
    let long = "A".repeat(5000);
    for it in ["garbage", "%00%01", "cDEuZXBfeC4xLjA", long.as_str()] {
        poll(c, &app, &ep, &format!("?iterator={it}"), 422).await;
    }
    // Another endpoint's iterator is refused, and acknowledges nothing there.
    let p = poll(c, &app, &ep_b, "", 200).await;
    let foreign = p.json["iterator"].as_str().unwrap();
    poll(c, &app, &ep, &format!("?iterator={foreign}"), 403).await;
    // A push endpoint cannot be polled nor get a poll token.
    let r = Receiver::start().await;
    let push = c.endpoint_for(&app, &r.url()).await;
    poll(c, &app, &push, "", 409).await;
    c.post(
        &format!("/app/{app}/endpoint/{push}/poll/token"),
        json!({}),
        409,
    )
    .await;
    // `poll:` with anything after it is not a polling endpoint: refused like any bad URL.
    for url in ["poll://x", "poll:abc", "POLL:"] {
        c.post(&format!("/app/{app}/endpoint"), json!({"url": url}), 422)
            .await;
    }
    s.stop().await;
}

#[tokio::test]
async fn the_engine_never_sends_a_polling_endpoints_deliveries() {
    let s = TestServer::start(|_| {}).await;
    let c = &s.client;
    let (app, ep) = poll_app(c).await;
    let r = Receiver::start().await;
    let push = c.endpoint_for(&app, &r.url()).await;
    let msg = c
        .publish(&app, json!({"eventType": "t", "payload": {}}))
        .await;
    c.wait_delivery(&app, &msg, &push, 0).await;
    assert_eq!(c.delivery_status(&app, &msg, &ep).await, Some(1), "held");
    assert!(
        c.attempts_of_msg(&app, &msg).await.len() == 1,
        "only the push endpoint's"
    );
    // Switching the endpoint to a URL releases its held deliveries to the engine.
    c.patch(
        &format!("/app/{app}/endpoint/{ep}"),
        json!({"url": r.url_path("/was-poll")}),
        200,
    )
    .await;
    c.wait_delivery(&app, &msg, &ep, 0).await;
    assert_eq!(r.requests_to("/was-poll").len(), 1);
    s.stop().await;
}
