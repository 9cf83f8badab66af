//! Per-endpoint routing and delivery policy (routing.md): content filters at fan-out and their
//! test route, `timeoutMs`, Ed25519 `v1a` signatures and the default signature scheme — each
//! observed from a real receiver, with the hostile inputs next to the happy paths.

use serde_json::{json, Value};

use crate::common::{id_of, Receiver, TestServer};

/// The 422 entry of `v`, whose `loc` must name `want` (`["body", "filter", …]`).
fn loc_of(v: &Value) -> Vec<String> {
    v["detail"][0]["loc"]
        .as_array()
        .expect("loc")
        .iter()
        .map(|s| s.as_str().unwrap_or_default().to_string())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn filters_decide_fan_out_and_stats_do_not_count_filtered_messages() {
    let srv = TestServer::start(|_| {}).await;
    let c = &srv.client;
    let rx = Receiver::start().await;
    let app = c.create_app("a").await;
    let filter = json!({"data.amount": {"$gte": 100}, "data.currency": {"$in": ["EUR", "USD"]}});
    let big = c
        .create_endpoint(&app, json!({"url": rx.url_path("/big"), "filter": filter}))
        .await;
    assert_eq!(big["filter"], filter);
    let big = id_of(&big);
    let all = c.endpoint_for(&app, &rx.url_path("/all")).await;
    let small = json!({"eventType": "t", "payload": {"data": {"amount": 5, "currency": "EUR"}}});
    let large = json!({"eventType": "t", "payload": {"data": {"amount": 500, "currency": "USD"}}});
    let m1 = c.publish(&app, small).await;
    let m2 = c.publish(&app, large).await;
    c.wait_delivery(&app, &m1, &all, 0).await;
    c.wait_delivery(&app, &m2, &all, 0).await;
    c.wait_delivery(&app, &m2, &big, 0).await;
    assert_eq!(rx.requests_to("/big").len(), 1);
    assert_eq!(rx.requests_to("/all").len(), 2);
    assert_eq!(c.delivery_status(&app, &m1, &big).await, None);
    let stats = c
        .get(&format!("/app/{app}/endpoint/{big}/stats"), 200)
        .await;
    assert_eq!(stats["success"], 1, "{stats}");
    assert_eq!(stats["pending"], 0, "{stats}");

    // A PATCH changes the filter and the next publish follows it (the cache is invalidated).
    c.patch(
        &format!("/app/{app}/endpoint/{big}"),
        json!({"filter": {"data.amount": {"$lt": 10}}}),
        200,
    )
    .await;
    let m3 = c
        .publish(
            &app,
            json!({"eventType": "t", "payload": {"data": {"amount": 5}}}),
        )
        .await;
    c.wait_delivery(&app, &m3, &big, 0).await;
    // `null` clears it: everything matches again.
    let cleared = c
        .patch(
            &format!("/app/{app}/endpoint/{big}"),
            json!({"filter": null}),
            200,
        )
        .await;
    assert!(cleared["filter"].is_null(), "{cleared}");
    let m4 = c
        .publish(
            &app,
            json!({"eventType": "t", "payload": {"data": {"amount": 50}}}),
        )
        .await;
    c.wait_delivery(&app, &m4, &big, 0).await;
    srv.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn filter_test_route_answers_matches_and_is_tenant_scoped() {
    let srv = TestServer::start(|_| {}).await;
    let c = &srv.client;
    let a = c.create_app("a").await;
    let b = c.create_app("b").await;
    let ep = id_of(
        &c.create_endpoint(
            &a,
            json!({"url": "https://example.com/h", "filter": {"items.0.sku": {"$startsWith": "A-"}}}),
        )
        .await,
    );
    let plain = c.endpoint_for(&a, "https://example.com/p").await;
    let test = |ep: &str| format!("/app/{a}/endpoint/{ep}/filter/test");
    let yes = json!({"payload": {"items": [{"sku": "A-1"}]}});
    let no = json!({"payload": {"items": [{"sku": "B-1"}]}});
    assert_eq!(
        c.post(&test(&ep), yes.clone(), 200).await,
        json!({"matches": true})
    );
    assert_eq!(
        c.post(&test(&ep), no.clone(), 200).await,
        json!({"matches": false})
    );
    assert_eq!(
        c.post(&test(&plain), no.clone(), 200).await["matches"],
        true
    );
    // Nothing was published by testing.
    let msgs = c.get(&format!("/app/{a}/msg"), 200).await;
    assert_eq!(msgs["data"].as_array().map(Vec::len), Some(0));
    // Another application's path does not reach the endpoint; a token of app b gets 403.
    c.post(
        &format!("/app/{b}/endpoint/{ep}/filter/test"),
        yes.clone(),
        404,
    )
    .await;
    let access = c
        .post(&format!("/auth/app-portal-access/{b}"), json!({}), 200)
        .await;
    let scoped = c.with_token(access["token"].as_str().expect("token"));
    scoped.post(&test(&ep), yes, 403).await;
    srv.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_filters_are_refused_with_the_offending_path() {
    let srv = TestServer::start(|_| {}).await;
    let c = &srv.client;
    let app = c.create_app("a").await;
    let create = |filter: Value| json!({"url": "https://example.com/h", "filter": filter});
    let path = format!("/app/{app}/endpoint");
    let v = c
        .post(&path, create(json!({"data.amount": {"$regex": "^1"}})), 422)
        .await;
    assert_eq!(loc_of(&v), ["body", "filter", "data.amount.$regex"], "{v}");
    let v = c
        .post(&path, create(json!({"$or": [{"a": 1}, "x"]})), 422)
        .await;
    assert_eq!(loc_of(&v), ["body", "filter", "$or.1"], "{v}");
    let v = c
        .post(&path, create(json!(["not", "an", "object"])), 422)
        .await;
    assert_eq!(loc_of(&v), ["body", "filter"], "{v}");
    // Nesting deeper than 16.
    let mut deep = json!({"a": 1});
    for _ in 0..20 {
        deep = json!({"$not": deep});
    }
    let v = c.post(&path, create(deep), 422).await;
    assert!(
        v["detail"][0]["msg"].as_str().unwrap().contains("nesting"),
        "{v}"
    );
    // Nesting far beyond what a JSON parser recurses into is still a 4xx, never a crash.
    let very_deep = format!("{}1{}", r#"{"$not":"#.repeat(5000), "}".repeat(5000));
    let body = format!(r#"{{"url":"https://example.com/h","filter":{very_deep}}}"#);
    let r = c
        .req(reqwest::Method::POST, &path)
        .header("content-type", "application/json")
        .body(body);
    let status = r.send().await.expect("send").status().as_u16();
    assert!((400..500).contains(&status), "{status}");
    // Over 16 KiB.
    let huge: serde_json::Map<String, Value> =
        (0..2000).map(|i| (format!("field{i}"), json!(i))).collect();
    let v = c.post(&path, create(Value::Object(huge)), 422).await;
    assert!(
        v["detail"][0]["msg"].as_str().unwrap().contains("16384"),
        "{v}"
    );
    // The same checks on PATCH and PUT; nothing was created.
    let ep = c.endpoint_for(&app, "https://example.com/ok").await;
    c.patch(
        &format!("{path}/{ep}"),
        json!({"filter": {"$where": "1"}}),
        422,
    )
    .await;
    c.put(
        &format!("{path}/{ep}"),
        create(json!({"a": {"$exists": "yes"}})),
        422,
    )
    .await;
    let list = c.get(&path, 200).await;
    assert_eq!(list["data"].as_array().map(Vec::len), Some(1));
    assert!(list["data"][0]["filter"].is_null());
    srv.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn timeout_ms_is_validated_answered_and_applied_per_endpoint() {
    use crate::common::Reply;
    use std::time::Duration;
    let srv = TestServer::start(|_| {}).await;
    let c = &srv.client;
    let rx = Receiver::start().await;
    rx.set_default(Reply::Sleep(Duration::from_millis(1500), 204));
    let app = c.create_app("a").await;
    let path = format!("/app/{app}/endpoint");
    for bad in [json!(99), json!(30_001), json!(-1)] {
        let v = c
            .post(&path, json!({"url": rx.url(), "timeoutMs": bad}), 422)
            .await;
        assert_eq!(loc_of(&v), ["body", "timeoutMs"], "{v}");
    }
    let v = c
        .post(&path, json!({"url": rx.url(), "timeoutMs": "fast"}), 422)
        .await;
    assert!(v["detail"].is_array(), "{v}");
    let too_long: Vec<u64> = vec![1; 21];
    c.post(
        &path,
        json!({"url": rx.url(), "retrySchedule": too_long}),
        422,
    )
    .await;
    let ep = c
        .create_endpoint(
            &app,
            json!({"url": rx.url(), "timeoutMs": 200, "retrySchedule": []}),
        )
        .await;
    assert_eq!(ep["timeoutMs"], 200);
    let ep = id_of(&ep);
    let got = c.get(&format!("{path}/{ep}"), 200).await;
    assert_eq!(got["timeoutMs"], 200);
    let msg = c
        .publish(&app, json!({"eventType": "t", "payload": {"a": 1}}))
        .await;
    c.wait_delivery(&app, &msg, &ep, 2).await;
    let attempts = c.attempts_of_msg(&app, &msg).await;
    let a = &attempts[0];
    assert_eq!(a["error"], "timeout", "{a}");
    let response = a["response"].as_str().unwrap();
    assert!(response.starts_with("timeout"), "{a}");
    assert!(response.contains("timeoutMs 200"), "{a}");
    // PATCH changes and clears it.
    let p = c
        .patch(&format!("{path}/{ep}"), json!({"timeoutMs": 30000}), 200)
        .await;
    assert_eq!(p["timeoutMs"], 30000);
    let p = c
        .patch(&format!("{path}/{ep}"), json!({"timeoutMs": null}), 200)
        .await;
    assert!(p["timeoutMs"].is_null(), "{p}");
    srv.stop().await;
}

/// Verifies every `v1a` signature of `header` over `{id}.{ts}.{body}` with `public`
/// (`whpk_…`) and answers how many verified.
fn v1a_verified(public: &str, id: &str, ts: &str, body: &[u8], header: &str) -> usize {
    use base64::engine::general_purpose::STANDARD as B64;
    use base64::Engine as _;
    use ed25519_dalek::Verifier;
    let pk: [u8; 32] = B64
        .decode(public.strip_prefix("whpk_").expect("whpk_ key"))
        .expect("base64")
        .try_into()
        .expect("32 bytes");
    let vk = ed25519_dalek::VerifyingKey::from_bytes(&pk).expect("public key");
    let mut content = format!("{id}.{ts}.").into_bytes();
    content.extend_from_slice(body);
    header
        .split(' ')
        .filter_map(|p| p.strip_prefix("v1a,"))
        .filter(|b64| {
            let raw = B64.decode(b64).expect("base64 signature");
            let sig = ed25519_dalek::Signature::from_slice(&raw).expect("64 bytes");
            vk.verify(&content, &sig).is_ok()
        })
        .count()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ed25519_endpoints_sign_v1a_and_never_show_the_private_key() {
    use base64::engine::general_purpose::STANDARD as B64;
    use base64::Engine as _;
    let srv = TestServer::start(|_| {}).await;
    let c = &srv.client;
    let rx = Receiver::start().await;
    let app = c.create_app("a").await;
    let created = c
        .create_endpoint(
            &app,
            json!({"url": rx.url_path("/gen"), "signatureAlgorithm": "ed25519"}),
        )
        .await;
    assert_eq!(created["signatureAlgorithm"], "ed25519");
    let generated = id_of(&created);
    let public = c.secret(&app, &generated).await;
    assert!(public.starts_with("whpk_"), "{public}");
    // A seed given by the user: its public key is the one answered.
    let seed = [7u8; 32];
    let whsk = format!("whsk_{}", B64.encode(seed));
    let given = c
        .create_endpoint(&app, json!({"url": rx.url_path("/given"), "secret": whsk}))
        .await;
    let given = id_of(&given);
    let expected_pk = ed25519_dalek::SigningKey::from_bytes(&seed).verifying_key();
    assert_eq!(
        c.secret(&app, &given).await,
        format!("whpk_{}", B64.encode(expected_pk.to_bytes()))
    );
    // The seed appears in no answer.
    let listing = c
        .get(&format!("/app/{app}/endpoint"), 200)
        .await
        .to_string();
    assert!(!listing.contains(&whsk[5..]) && !listing.contains("whsk_"));

    let msg = c
        .publish(&app, json!({"eventType": "t", "payload": {"a": 1}}))
        .await;
    let reqs = rx.wait_for(2).await;
    for r in &reqs {
        let pk = if r.path == "/gen" {
            &public
        } else {
            &c.secret(&app, &given).await
        };
        let (ts, sig) = (
            r.header("webhook-timestamp").unwrap(),
            r.header("webhook-signature").unwrap(),
        );
        assert!(sig.starts_with("v1a,"), "{sig}");
        assert_eq!(v1a_verified(pk, &msg, ts, &r.body, sig), 1, "{sig}");
    }

    // Rotation without a key generates a new pair; the old one signs during the grace period.
    let rotated = c
        .post(
            &format!("/app/{app}/endpoint/{generated}/secret/rotate"),
            json!({}),
            200,
        )
        .await;
    let new_public = rotated["key"].as_str().unwrap().to_string();
    assert!(new_public.starts_with("whpk_") && new_public != public);
    let msg2 = c
        .publish(&app, json!({"eventType": "t", "payload": {"a": 2}}))
        .await;
    let reqs = rx.wait_for(4).await;
    let r = reqs
        .iter()
        .find(|r| r.path == "/gen" && r.header("webhook-id") == Some(msg2.as_str()))
        .expect("second delivery");
    let (ts, sig) = (
        r.header("webhook-timestamp").unwrap(),
        r.header("webhook-signature").unwrap(),
    );
    assert_eq!(sig.split(' ').count(), 2, "{sig}");
    assert_eq!(v1a_verified(&new_public, &msg2, ts, &r.body, sig), 1);
    assert_eq!(v1a_verified(&public, &msg2, ts, &r.body, sig), 1);
    srv.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_ed25519_inputs_are_refused() {
    let srv = TestServer::start(|_| {}).await;
    let c = &srv.client;
    let app = c.create_app("a").await;
    let path = format!("/app/{app}/endpoint");
    let url = "https://example.com/h";
    for bad in ["whsk_", "whsk_c2hvcnQ=", "whsk_!!!", "whpk_AAAA"] {
        let v = c.post(&path, json!({"url": url, "secret": bad}), 422).await;
        assert_eq!(loc_of(&v), ["body", "secret"], "{bad}: {v}");
    }
    let v = c
        .post(&path, json!({"url": url, "signatureAlgorithm": "rsa"}), 422)
        .await;
    assert!(v["detail"].is_array(), "{v}");
    let whsec = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
    let v = c
        .post(
            &path,
            json!({"url": url, "secret": whsec, "signatureAlgorithm": "ed25519"}),
            422,
        )
        .await;
    assert_eq!(loc_of(&v), ["body", "signatureAlgorithm"], "{v}");
    let v = c
        .post(
            &path,
            json!({"url": url, "signatureAlgorithm": "ed25519", "signatureScheme": "github"}),
            422,
        )
        .await;
    assert_eq!(loc_of(&v), ["body", "signatureScheme"], "{v}");
    // An HMAC endpoint switched by PATCH gets a fresh Ed25519 key at once.
    let ep = c.endpoint_for(&app, url).await;
    assert!(c.secret(&app, &ep).await.starts_with("whsec_"));
    let p = c
        .patch(
            &format!("{path}/{ep}"),
            json!({"signatureAlgorithm": "ed25519"}),
            200,
        )
        .await;
    assert_eq!(p["signatureAlgorithm"], "ed25519");
    assert!(c.secret(&app, &ep).await.starts_with("whpk_"));
    // Rotating to a malformed Ed25519 key is refused and changes nothing.
    let before = c.secret(&app, &ep).await;
    c.post(
        &format!("{path}/{ep}/secret/rotate"),
        json!({"key": "whsk_AAAA"}),
        422,
    )
    .await;
    assert_eq!(c.secret(&app, &ep).await, before);
    srv.stop().await;
}

/// `default_signature_scheme = "svix"`: endpoints written without a scheme sign with `svix-*`
/// headers, so receivers written for Svix verify unchanged; an explicit scheme still wins, and
/// PATCH `null` falls back to the default.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_default_signature_scheme_applies_to_endpoints_without_one() {
    use base64::engine::general_purpose::STANDARD as B64;
    use base64::Engine as _;
    let srv = TestServer::start(|cfg| {
        cfg.default_signature_scheme = herald_core::signing::SignatureScheme::Svix;
    })
    .await;
    let c = &srv.client;
    let rx = Receiver::start().await;
    let app = c.create_app("a").await;
    let svix = c
        .create_endpoint(&app, json!({"url": rx.url_path("/svix")}))
        .await;
    assert_eq!(svix["signatureScheme"], "svix", "{svix}");
    let svix = id_of(&svix);
    let std_ep = c
        .create_endpoint(
            &app,
            json!({"url": rx.url_path("/std"), "signatureScheme": "standard"}),
        )
        .await;
    assert_eq!(std_ep["signatureScheme"], "standard");
    let std_ep = id_of(&std_ep);

    let msg = c
        .publish(&app, json!({"eventType": "t", "payload": {"n": 1}}))
        .await;
    c.wait_delivery(&app, &msg, &svix, 0).await;
    c.wait_delivery(&app, &msg, &std_ep, 0).await;

    let got = &rx.requests_to("/svix")[0];
    assert!(
        got.header("webhook-signature").is_none(),
        "only svix-* headers"
    );
    let (id, ts, sig) = (
        got.header("svix-id").expect("svix-id"),
        got.header("svix-timestamp").expect("svix-timestamp"),
        got.header("svix-signature").expect("svix-signature"),
    );
    assert_eq!(id, msg);
    let secret = c.secret(&app, &svix).await;
    let key = B64
        .decode(secret.trim_start_matches("whsec_"))
        .expect("base64 secret");
    let signed = format!("{id}.{ts}.{}", got.body_text());
    let want = format!(
        "v1,{}",
        B64.encode(crate::common::hmac_sha256(&key, signed.as_bytes()))
    );
    assert!(sig.split(' ').any(|s| s == want), "{sig} lacks {want}");
    let std_got = &rx.requests_to("/std")[0];
    assert!(std_got.header("webhook-signature").is_some());
    assert!(std_got.header("svix-signature").is_none());

    // PATCH null: back to the server's default.
    let back = c
        .patch(
            &format!("/app/{app}/endpoint/{std_ep}"),
            json!({"signatureScheme": null}),
            200,
        )
        .await;
    assert_eq!(back["signatureScheme"], "svix", "{back}");
    // An unknown scheme is refused, not defaulted.
    c.patch(
        &format!("/app/{app}/endpoint/{std_ep}"),
        json!({"signatureScheme": "nope"}),
        422,
    )
    .await;
}
