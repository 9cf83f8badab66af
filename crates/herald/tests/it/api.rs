//! The management API of outbound-api.md, route by route, through raw HTTP.

use reqwest::Method;
use serde_json::{json, Value};

use crate::common::{assert_error_body, id_of, rfc3339_ago, Receiver, TestServer, ADMIN_TOKEN};

fn ids(list: &Value) -> Vec<String> {
    list["data"]
        .as_array()
        .expect("list data")
        .iter()
        .map(id_of)
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn health_answers_without_a_token() {
    let srv = TestServer::start(|_| {}).await;
    let v = srv.client.anonymous().get("/health", 200).await;
    assert_eq!(v["status"], "ok");
    assert_eq!(v["storage"], "ok");
    assert_eq!(v["workers"], "ok");
    assert_eq!(v["queue"]["due"], 0);
    let v = srv.client.anonymous().get("/health/", 200).await;
    assert_eq!(v["status"], "ok", "trailing slash accepted");
    srv.stop().await;

    // An API-only node reports that it runs no workers, and is still healthy.
    let api_only = TestServer::start(|c| c.role = herald_core::config::Role::Api).await;
    let v = api_only.client.anonymous().get("/health", 200).await;
    assert_eq!(v["workers"], "not_running");
    let v = api_only.client.anonymous().get("//healthz", 200).await;
    assert_eq!(v["status"], "ok");
    api_only.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn missing_or_wrong_token_is_401() {
    let srv = TestServer::start(|_| {}).await;
    let c = &srv.client;
    let v = c.anonymous().get("/app", 401).await;
    assert_eq!(v["code"], "authentication_failed");
    c.with_token("not-the-admin-token-at-all")
        .get("/app", 401)
        .await;
    c.anonymous().post("/app", json!({"name": "x"}), 401).await;
    // A non-Bearer scheme is not a token.
    let rb = c
        .anonymous()
        .req(Method::GET, "/app")
        .header("authorization", format!("Basic {ADMIN_TOKEN}"));
    c.send(rb, 401).await;
    // Nothing was created by the refused POST.
    assert!(ids(&c.get("/app", 200).await).is_empty());
    srv.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unknown_routes_and_resources_are_404_with_code_and_detail() {
    let srv = TestServer::start(|_| {}).await;
    let c = &srv.client;
    let v = c.get("/no-such-route", 404).await;
    assert_eq!(v["code"], "not_found");
    let v = c.get("/app/app_01ARZ3NDEKTSV4RRFFQ69G5FAV", 404).await;
    assert_eq!(v["code"], "not_found");
    c.get("/app/nobody", 404).await;
    let app = c.create_app("a").await;
    c.get(
        &format!("/app/{app}/endpoint/ep_01ARZ3NDEKTSV4RRFFQ69G5FAV"),
        404,
    )
    .await;
    c.get(&format!("/app/{app}/endpoint/no-such-uid/secret"), 404)
        .await;
    c.get(
        &format!("/app/{app}/msg/msg_01ARZ3NDEKTSV4RRFFQ69G5FAV"),
        404,
    )
    .await;
    c.get(
        &format!("/app/{app}/attempt/msg/msg_01ARZ3NDEKTSV4RRFFQ69G5FAV"),
        404,
    )
    .await;
    c.delete(&format!("/app/{app}/msg/nothing/content"), 404)
        .await;
    c.post(
        "/app/nobody/msg",
        json!({"eventType": "a", "payload": {}}),
        404,
    )
    .await;
    c.get("/event-type/never.defined", 404).await;
    srv.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn apps_crud_uid_lookup_get_if_exists_and_trailing_slash() {
    let srv = TestServer::start(|_| {}).await;
    let c = &srv.client;
    let app = c
        .post(
            "/app",
            json!({"name": "Acme", "uid": "acme", "metadata": {"plan": "pro"}, "throttleRate": 10}),
            201,
        )
        .await;
    let id = id_of(&app);
    assert!(id.starts_with("app_"), "{id}");
    assert_eq!(app["uid"], "acme");
    assert_eq!(app["name"], "Acme");
    assert_eq!(app["metadata"], json!({"plan": "pro"}));
    assert_eq!(app["throttleRate"], 10);
    for f in ["createdAt", "updatedAt"] {
        assert!(app[f].is_string(), "{f} in {app}");
    }

    // By ID, by uid, with and without a trailing slash.
    assert_eq!(c.get(&format!("/app/{id}"), 200).await["uid"], "acme");
    assert_eq!(c.get("/app/acme", 200).await["id"], id.as_str());
    assert_eq!(c.get("/app/acme/", 200).await["id"], id.as_str());
    assert_eq!(ids(&c.get("/app/", 200).await), vec![id.clone()]);

    // A second app with the same uid: 409, or the existing one with get_if_exists.
    let v = c
        .post("/app", json!({"name": "Other", "uid": "acme"}), 409)
        .await;
    assert_eq!(v["code"], "conflict");
    let same = c
        .post(
            "/app?get_if_exists=true",
            json!({"name": "Other", "uid": "acme"}),
            200,
        )
        .await;
    assert_eq!(same["id"], id.as_str());
    assert_eq!(
        same["name"], "Acme",
        "get_if_exists returns the existing app unchanged"
    );
    let fresh = c
        .post(
            "/app?get_if_exists=true",
            json!({"name": "New", "uid": "newco"}),
            201,
        )
        .await;
    assert_ne!(fresh["id"], id.as_str());

    // PUT replaces, PATCH changes only what it names; `null` clears.
    let put = c
        .put(
            "/app/acme",
            json!({"name": "Acme Inc", "uid": "acme", "metadata": {"plan": "team"}}),
            200,
        )
        .await;
    assert_eq!(put["name"], "Acme Inc");
    assert_eq!(put["metadata"], json!({"plan": "team"}));
    assert_eq!(put["throttleRate"], Value::Null);
    let patched = c
        .patch(&format!("/app/{id}"), json!({"name": "Acme 2"}), 200)
        .await;
    assert_eq!(patched["name"], "Acme 2");
    assert_eq!(patched["uid"], "acme", "absent uid is unchanged");
    assert_eq!(patched["metadata"], json!({"plan": "team"}));
    let patched = c
        .patch(&format!("/app/{id}"), json!({"uid": null}), 200)
        .await;
    assert_eq!(patched["uid"], Value::Null, "null clears the uid");
    assert_eq!(patched["name"], "Acme 2");
    assert_eq!(
        patched["metadata"],
        json!({"plan": "team"}),
        "absent metadata unchanged"
    );
    let patched = c
        .patch(&format!("/app/{id}"), json!({"metadata": null}), 200)
        .await;
    assert_eq!(patched["metadata"], json!({}), "null clears the metadata");
    assert_eq!(patched["name"], "Acme 2");
    c.get("/app/acme", 404).await;

    // PUT on an unknown uid creates the application (upsert).
    let created = c.put("/app/upserted", json!({"name": "Up"}), 201).await;
    assert_eq!(created["uid"], "upserted");

    // Validation.
    let v = c.post("/app", json!({"name": ""}), 422).await;
    assert_eq!(v["code"], "validation_error");
    assert!(v["detail"][0]["loc"].is_array(), "{v}");
    c.post("/app", json!({"name": "x", "uid": "has space"}), 422)
        .await;
    c.post("/app", json!({"uid": "no-name"}), 422).await;

    // DELETE.
    c.delete(&format!("/app/{id}"), 204).await;
    c.get(&format!("/app/{id}"), 404).await;
    c.delete(&format!("/app/{id}"), 404).await;
    srv.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn list_pagination_with_iterator_prev_iterator_and_limit_bounds() {
    let srv = TestServer::start(|_| {}).await;
    let c = &srv.client;
    for i in 0..5 {
        c.create_app(&format!("app {i}")).await;
    }
    let all = ids(&c.get("/app?limit=250", 200).await);
    assert_eq!(all.len(), 5);
    let mut sorted = all.clone();
    sorted.sort();
    assert_eq!(all, sorted, "applications list in ascending ID order");

    let p1 = c.get("/app?limit=2", 200).await;
    assert_eq!(ids(&p1), all[0..2].to_vec());
    assert_eq!(p1["done"], false);
    assert_eq!(p1["iterator"], all[1].as_str());
    let it = p1["iterator"].as_str().unwrap();
    let p2 = c.get(&format!("/app?limit=2&iterator={it}"), 200).await;
    assert_eq!(ids(&p2), all[2..4].to_vec());
    assert_eq!(p2["done"], false);
    assert_eq!(p2["prevIterator"], format!("-{}", all[2]));
    let it = p2["iterator"].as_str().unwrap();
    let p3 = c.get(&format!("/app?limit=2&iterator={it}"), 200).await;
    assert_eq!(ids(&p3), all[4..5].to_vec());
    assert_eq!(p3["done"], true);

    // prevIterator pages backwards to the previous page.
    let prev = p2["prevIterator"].as_str().unwrap();
    let back = c.get(&format!("/app?limit=2&iterator={prev}"), 200).await;
    assert_eq!(ids(&back), all[0..2].to_vec());

    // Descending order.
    let desc = c.get("/app?limit=2&order=descending", 200).await;
    assert_eq!(ids(&desc), vec![all[4].clone(), all[3].clone()]);

    // limit above 250 (or below 1) is a validation error.
    let v = c.get("/app?limit=251", 422).await;
    assert_eq!(v["code"], "validation_error");
    c.get("/app?limit=0", 422).await;
    c.get("/app?limit=250", 200).await;
    c.get("/app?order=sideways", 422).await;

    // The same envelope on message lists.
    let app = &all[0];
    for i in 0..3 {
        c.publish(app, json!({"eventType": "t", "payload": {"i": i}}))
            .await;
    }
    let m1 = c.get(&format!("/app/{app}/msg?limit=2"), 200).await;
    assert_eq!(m1["data"].as_array().unwrap().len(), 2);
    assert_eq!(m1["done"], false);
    let it = m1["iterator"].as_str().unwrap();
    let m2 = c
        .get(&format!("/app/{app}/msg?limit=2&iterator={it}"), 200)
        .await;
    assert_eq!(m2["data"].as_array().unwrap().len(), 1);
    assert_eq!(m2["done"], true);
    c.get(&format!("/app/{app}/msg?limit=251"), 422).await;
    srv.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn endpoints_crud_with_patch_null_versus_absent_and_filter_types_alias() {
    let srv = TestServer::start(|_| {}).await;
    let c = &srv.client;
    let app = c.create_app("a").await;
    let base = format!("/app/{app}/endpoint");
    let ep = c
        .create_endpoint(
            &app,
            json!({
                "url": "https://example.com/hook",
                "uid": "main-ep",
                "description": "primary",
                "filterTypes": ["invoice.paid"],
                "channels": ["eu"],
                "rateLimit": 5,
                "metadata": {"team": "billing"},
            }),
        )
        .await;
    let id = id_of(&ep);
    assert!(id.starts_with("ep_"), "{id}");
    assert_eq!(ep["url"], "https://example.com/hook");
    assert_eq!(
        ep["eventTypes"],
        json!(["invoice.paid"]),
        "filterTypes is an alias"
    );
    assert_eq!(ep["channels"], json!(["eu"]));
    assert_eq!(ep["throttleRate"], 5, "rateLimit is an alias");
    assert_eq!(ep["disabled"], false);
    assert_eq!(ep["state"], "healthy");
    assert_eq!(ep["metadata"], json!({"team": "billing"}));

    assert_eq!(
        c.get(&format!("{base}/main-ep"), 200).await["id"],
        id.as_str()
    );
    assert_eq!(c.get(&format!("{base}/{id}/"), 200).await["uid"], "main-ep");
    assert_eq!(ids(&c.get(&base, 200).await), vec![id.clone()]);
    let v = c
        .post(
            &base,
            json!({"url": "https://example.com/3", "uid": "main-ep"}),
            409,
        )
        .await;
    assert_eq!(v["code"], "conflict");

    // PATCH: absent fields stay.
    let p = c
        .patch(
            &format!("{base}/{id}"),
            json!({"description": "changed"}),
            200,
        )
        .await;
    assert_eq!(p["description"], "changed");
    assert_eq!(p["eventTypes"], json!(["invoice.paid"]));
    assert_eq!(p["channels"], json!(["eu"]));
    assert_eq!(p["throttleRate"], 5);
    assert_eq!(p["uid"], "main-ep");
    assert_eq!(p["metadata"], json!({"team": "billing"}));
    // PATCH: null clears.
    let p = c
        .patch(
            &format!("{base}/{id}"),
            json!({"eventTypes": null, "throttleRate": null}),
            200,
        )
        .await;
    assert_eq!(p["eventTypes"], Value::Null);
    assert_eq!(p["throttleRate"], Value::Null);
    assert_eq!(p["channels"], json!(["eu"]), "absent channels unchanged");
    assert_eq!(p["description"], "changed");
    let p = c
        .patch(
            &format!("{base}/{id}"),
            json!({"filterTypes": ["a.b"], "channels": null}),
            200,
        )
        .await;
    assert_eq!(p["eventTypes"], json!(["a.b"]));
    assert_eq!(p["channels"], Value::Null);
    let p = c.patch(&format!("{base}/{id}"), json!({}), 200).await;
    assert_eq!(p["eventTypes"], json!(["a.b"]));
    assert_eq!(p["url"], "https://example.com/hook");

    // PUT replaces.
    let p = c
        .put(
            &format!("{base}/{id}"),
            json!({"url": "https://example.org/new", "uid": "main-ep"}),
            200,
        )
        .await;
    assert_eq!(p["url"], "https://example.org/new");
    assert_eq!(p["eventTypes"], Value::Null);
    assert_eq!(p["description"], "");

    // Validation.
    for bad in [
        json!({"url": "ftp://example.com/"}),
        json!({"url": "not a url"}),
        json!({"url": "https://example.com/", "eventTypes": ["bad type"]}),
        json!({"url": "https://example.com/", "uid": "bad uid"}),
        json!({"url": "https://example.com/", "secret": "short"}),
    ] {
        let v = c.post(&base, bad, 422).await;
        assert_eq!(v["code"], "validation_error");
    }
    c.patch(&format!("{base}/{id}"), json!({"url": "gopher://x/"}), 422)
        .await;

    c.delete(&format!("{base}/{id}"), 204).await;
    c.get(&format!("{base}/{id}"), 404).await;
    srv.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn endpoint_secret_get_and_rotation() {
    let srv = TestServer::start(|_| {}).await;
    let c = &srv.client;
    let app = c.create_app("a").await;
    let ep = c.endpoint_for(&app, "https://example.com/hook").await;
    let path = format!("/app/{app}/endpoint/{ep}/secret");
    let old = c.secret(&app, &ep).await;
    assert!(old.starts_with("whsec_"), "{old}");
    assert!(crate::common::secret_key(&old).len() >= 24);

    let rotated = c.post(&format!("{path}/rotate"), json!({}), 200).await;
    let new = rotated["key"].as_str().expect("rotation answers the key");
    assert!(new.starts_with("whsec_"));
    assert_ne!(new, old);
    assert_eq!(c.secret(&app, &ep).await, new);

    // A chosen key.
    let chosen = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
    let v = c
        .post(&format!("{path}/rotate"), json!({"key": chosen}), 200)
        .await;
    assert_eq!(v["key"], chosen);
    assert_eq!(c.get(&path, 200).await["key"], chosen);
    c.post(
        &format!("{path}/rotate"),
        json!({"key": "whsec_tooShort"}),
        422,
    )
    .await;

    // A secret supplied at creation is served back.
    let ep2 = c
        .create_endpoint(
            &app,
            json!({"url": "https://example.com/2", "secret": chosen}),
        )
        .await;
    assert_eq!(c.secret(&app, &id_of(&ep2)).await, chosen);
    srv.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn endpoint_headers_get_put_patch_redact_sensitive_values() {
    let srv = TestServer::start(|_| {}).await;
    let c = &srv.client;
    let app = c.create_app("a").await;
    let ep = c.endpoint_for(&app, "https://example.com/hook").await;
    let path = format!("/app/{app}/endpoint/{ep}/headers");
    let empty = c.get(&path, 200).await;
    assert_eq!(empty["headers"], json!({}));

    c.put(
        &path,
        json!({"headers": {"X-Tenant": "t1", "Authorization": "Bearer s3cr3t-value"}}),
        204,
    )
    .await;
    let resp = c.send(c.req(Method::GET, &path), 200).await;
    assert!(
        !resp.text.contains("s3cr3t-value"),
        "sensitive value leaked: {}",
        resp.text
    );
    assert_eq!(resp.json["headers"]["X-Tenant"], "t1");
    assert!(resp.json["headers"].get("Authorization").is_none());
    assert_eq!(resp.json["sensitive"], json!(["Authorization"]));

    c.patch(
        &path,
        json!({"headers": {"X-Extra": "e"}, "deleteHeaders": ["X-Tenant"]}),
        204,
    )
    .await;
    let v = c.get(&path, 200).await;
    assert_eq!(v["headers"], json!({"X-Extra": "e"}));
    assert_eq!(v["sensitive"], json!(["Authorization"]));

    // Herald's own headers cannot be overridden.
    for name in ["webhook-signature", "Content-Type", "svix-id", "User-Agent"] {
        c.put(&path, json!({"headers": {name: "x"}}), 422).await;
    }
    c.put(&path, json!({"headers": {"bad header": "x"}}), 422)
        .await;
    srv.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn endpoint_stats_count_deliveries_by_status() {
    let srv = TestServer::start(|_| {}).await;
    let c = &srv.client;
    let rx = Receiver::start().await;
    let app = c.create_app("a").await;
    let ep = c.endpoint_for(&app, &rx.url()).await;
    let path = format!("/app/{app}/endpoint/{ep}/stats");
    let zero = c.get(&path, 200).await;
    for f in ["success", "pending", "sending", "fail"] {
        assert_eq!(zero[f], 0, "{f} in {zero}");
    }
    let msg = c
        .publish(&app, json!({"eventType": "t", "payload": {}}))
        .await;
    c.wait_delivery(&app, &msg, &ep, 0).await;
    let v = c.get(&path, 200).await;
    assert_eq!(v["success"], 1, "{v}");
    assert_eq!(v["fail"], 0);
    let since = rfc3339_ago(3600);
    let v = c
        .get(&format!("{path}?since={}", urlencode(&since)), 200)
        .await;
    assert_eq!(v["success"], 1, "{v}");
    c.get(&format!("{path}?since=yesterday"), 422).await;
    srv.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn event_types_crud() {
    let srv = TestServer::start(|_| {}).await;
    let c = &srv.client;
    let schema = json!({"1": {"type": "object", "properties": {"id": {"type": "string"}}}});
    let et = c
        .post(
            "/event-type",
            json!({"name": "invoice.paid", "description": "An invoice was paid", "schemas": schema}),
            201,
        )
        .await;
    assert_eq!(et["name"], "invoice.paid");
    assert_eq!(et["description"], "An invoice was paid");
    assert_eq!(et["archived"], false);
    assert_eq!(et["schemas"], schema);
    let v = c
        .post(
            "/event-type",
            json!({"name": "invoice.paid", "description": "again"}),
            409,
        )
        .await;
    assert_eq!(v["code"], "conflict");
    c.post(
        "/event-type",
        json!({"name": "bad name", "description": ""}),
        422,
    )
    .await;

    c.post(
        "/event-type",
        json!({"name": "user.created", "description": "u"}),
        201,
    )
    .await;
    let list = c.get("/event-type", 200).await;
    let names: Vec<&str> = list["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, vec!["invoice.paid", "user.created"]);
    assert_eq!(list["done"], true);

    assert_eq!(
        c.get("/event-type/invoice.paid", 200).await["name"],
        "invoice.paid"
    );
    let put = c
        .put(
            "/event-type/invoice.paid",
            json!({"description": "replaced"}),
            200,
        )
        .await;
    assert_eq!(put["description"], "replaced");
    assert_eq!(put["schemas"], Value::Null);
    let patched = c
        .patch("/event-type/invoice.paid", json!({"deprecated": true}), 200)
        .await;
    assert_eq!(patched["deprecated"], true);
    assert_eq!(patched["description"], "replaced");
    let created = c
        .put(
            "/event-type/order.shipped",
            json!({"description": "o"}),
            201,
        )
        .await;
    assert_eq!(created["name"], "order.shipped");

    c.delete("/event-type/user.created", 204).await;
    let list = c.get("/event-type", 200).await;
    assert!(
        !list["data"]
            .as_array()
            .unwrap()
            .iter()
            .any(|e| e["name"] == "user.created"),
        "deleted event type still listed: {list}"
    );
    c.delete("/event-type/never.existed", 404).await;
    srv.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn publish_keeps_the_payload_byte_for_byte() {
    let srv = TestServer::start(|_| {}).await;
    let c = &srv.client;
    let rx = Receiver::start().await;
    let app = c.create_app("a").await;
    let ep = c.endpoint_for(&app, &rx.url()).await;
    let payload = r#"{"b":1,  "a":[1,2 ,3], "z": {"y" :null,"x":"é\u00e9"}}"#;
    let body = format!(r#"{{"eventType":"user.created","payload":{payload},"eventId":"evt-1"}}"#);
    let resp = c.post_raw(&format!("/app/{app}/msg"), body, 202).await;
    assert!(
        resp.text.contains(payload),
        "publish answer does not carry the payload verbatim: {}",
        resp.text
    );
    let msg = id_of(&resp.json);
    assert!(msg.starts_with("msg_"), "{msg}");
    assert_eq!(resp.json["eventType"], "user.created");
    assert_eq!(resp.json["eventId"], "evt-1");
    assert!(resp.json["timestamp"].is_string());

    let got = c
        .send(c.req(Method::GET, &format!("/app/{app}/msg/{msg}")), 200)
        .await;
    assert!(
        got.text.contains(payload),
        "stored payload changed: {}",
        got.text
    );
    // By eventId as well.
    let got = c
        .send(c.req(Method::GET, &format!("/app/{app}/msg/evt-1")), 200)
        .await;
    assert_eq!(got.json["id"], msg.as_str());

    let reqs = rx.wait_for(1).await;
    assert_eq!(
        reqs[0].body.as_ref(),
        payload.as_bytes(),
        "delivered body differs from the published payload"
    );
    c.wait_delivery(&app, &msg, &ep, 0).await;
    srv.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn publish_validation_conflicts_and_limits() {
    let srv = TestServer::start(|_| {}).await;
    let c = &srv.client;
    let app = c.create_app("a").await;
    let path = format!("/app/{app}/msg");

    c.publish(
        &app,
        json!({"eventType": "a.b", "payload": {"k": 1}, "eventId": "e-1"}),
    )
    .await;
    let v = c
        .post(
            &path,
            json!({"eventType": "a.b", "payload": {}, "eventId": "e-1"}),
            409,
        )
        .await;
    assert_eq!(v["code"], "conflict");

    // with_content=false keeps the field, empty.
    let v = c
        .post(
            &format!("{path}?with_content=false"),
            json!({"eventType": "a.b", "payload": {"big": "x"}}),
            202,
        )
        .await;
    assert_eq!(v["payload"], json!({}));
    let msg = id_of(&v);
    let full = c.get(&format!("{path}/{msg}"), 200).await;
    assert_eq!(full["payload"], json!({"big": "x"}));
    let bare = c
        .get(&format!("{path}/{msg}?with_content=false"), 200)
        .await;
    assert_eq!(bare["payload"], json!({}));
    let list = c.get(&format!("{path}?with_content=false"), 200).await;
    assert!(list["data"]
        .as_array()
        .unwrap()
        .iter()
        .all(|m| m["payload"] == json!({})));

    // The payload must be a JSON object.
    for payload in [
        json!([1, 2]),
        json!("text"),
        json!(42),
        Value::Null,
        json!(true),
    ] {
        let v = c
            .post(&path, json!({"eventType": "a.b", "payload": payload}), 422)
            .await;
        assert_eq!(v["code"], "validation_error", "{payload}");
    }
    c.post(&path, json!({"eventType": "a.b"}), 422).await;
    // eventType syntax.
    for et in ["", "has space", "a/b", "ünïcode"] {
        c.post(&path, json!({"eventType": et, "payload": {}}), 422)
            .await;
    }
    // Malformed JSON is 400, not 422.
    let r = c
        .post_raw(&path, r#"{"eventType": "a.b", "payload": {"#, 400)
        .await;
    assert_eq!(r.json["code"], "bad_request");
    c.post_raw(&path, "not json at all", 400).await;

    // A payload just over 2 MiB is 413.
    let filler = "x".repeat(2 * 1024 * 1024);
    let big = format!(r#"{{"eventType":"big","payload":{{"data":"{filler}"}}}}"#);
    let r = c.post_raw(&path, big, 413).await;
    assert_eq!(r.json["code"], "payload_too_large");
    // Just under the limit is accepted.
    let fits = "y".repeat(2 * 1024 * 1024 - 64);
    let ok = format!(r#"{{"eventType":"big","payload":{{"data":"{fits}"}}}}"#);
    c.post_raw(&path, ok, 202).await;
    // A body far beyond the limit is 413 too (not a reset connection).
    let huge = format!(
        r#"{{"eventType":"big","payload":{{"data":"{}"}}}}"#,
        "z".repeat(3 * 1024 * 1024)
    );
    let r = c.post_raw(&path, huge, 413).await;
    assert_eq!(r.json["code"], "payload_too_large");
    srv.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn expunge_removes_the_payload_but_keeps_the_message() {
    let srv = TestServer::start(|_| {}).await;
    let c = &srv.client;
    let app = c.create_app("a").await;
    let msg = c
        .publish(
            &app,
            json!({"eventType": "t", "payload": {"card": "4242-secret"}}),
        )
        .await;
    c.delete(&format!("/app/{app}/msg/{msg}/content"), 204)
        .await;
    let resp = c
        .send(c.req(Method::GET, &format!("/app/{app}/msg/{msg}")), 200)
        .await;
    assert!(
        !resp.text.contains("4242-secret"),
        "payload survived: {}",
        resp.text
    );
    assert!(resp.json["payload"].is_object(), "{}", resp.text);
    assert_eq!(resp.json["eventType"], "t");
    srv.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idempotency_key_returns_the_first_answer_without_a_second_message() {
    let srv = TestServer::start(|_| {}).await;
    let c = &srv.client;
    let app = c.create_app("a").await;
    let path = format!("/app/{app}/msg");
    let body = json!({"eventType": "t", "payload": {"n": 1}});
    let send = || {
        c.req(Method::POST, &path)
            .header("idempotency-key", "key-123")
            .json(&body)
    };
    let first = c.send(send(), 202).await;
    let second = c.send(send(), 202).await;
    assert_eq!(first.json["id"], second.json["id"]);
    let list = c.get(&path, 200).await;
    assert_eq!(list["data"].as_array().unwrap().len(), 1, "{list}");

    // Another key is another message.
    let third = c
        .send(
            c.req(Method::POST, &path)
                .header("idempotency-key", "key-456")
                .json(&body),
            202,
        )
        .await;
    assert_ne!(third.json["id"], first.json["id"]);

    // Application creation honours the key too.
    let mk = || {
        c.req(Method::POST, "/app")
            .header("idempotency-key", "app-key")
            .json(&json!({"name": "dup"}))
    };
    let a1 = c.send(mk(), 201).await;
    let a2 = c.send(mk(), 201).await;
    assert_eq!(a1.json["id"], a2.json["id"]);
    assert_eq!(ids(&c.get("/app", 200).await).len(), 2);
    srv.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn app_portal_token_is_scoped_to_one_application() {
    let srv = TestServer::start(|_| {}).await;
    let admin = &srv.client;
    let a = admin.create_app("mine").await;
    let b = admin.create_app("theirs").await;
    let b_ep = admin.endpoint_for(&b, "https://example.com/b").await;
    let b_msg = admin
        .publish(&b, json!({"eventType": "t", "payload": {}}))
        .await;
    let access = admin
        .post(&format!("/auth/app-portal-access/{a}"), json!({}), 200)
        .await;
    let token = access["token"].as_str().expect("token");
    assert!(access["url"].is_string(), "{access}");
    let scoped = admin.with_token(token);

    // Its own application works.
    assert_eq!(
        scoped.get(&format!("/app/{a}"), 200).await["id"],
        a.as_str()
    );
    let ep = scoped
        .create_endpoint(&a, json!({"url": "https://example.com/a"}))
        .await;
    scoped
        .get(&format!("/app/{a}/endpoint/{}", id_of(&ep)), 200)
        .await;
    scoped
        .publish(&a, json!({"eventType": "t", "payload": {}}))
        .await;
    scoped.get(&format!("/app/{a}/msg"), 200).await;
    scoped.get("/event-type", 200).await;

    // Anything else is 403.
    let v = scoped.get(&format!("/app/{b}"), 403).await;
    assert_eq!(v["code"], "forbidden");
    scoped.get("/app", 403).await;
    scoped.get(&format!("/app/{b}/endpoint"), 403).await;
    scoped
        .get(&format!("/app/{b}/endpoint/{b_ep}/secret"), 403)
        .await;
    scoped.get(&format!("/app/{b}/msg/{b_msg}"), 403).await;
    scoped
        .post(
            &format!("/app/{b}/msg"),
            json!({"eventType": "t", "payload": {}}),
            403,
        )
        .await;
    scoped.delete(&format!("/app/{b}"), 403).await;
    scoped
        .patch(&format!("/app/{b}"), json!({"name": "x"}), 403)
        .await;
    scoped.get("/app/does-not-exist", 403).await;
    scoped.post("/app", json!({"name": "new"}), 403).await;
    scoped
        .post(
            "/event-type",
            json!({"name": "x.y", "description": ""}),
            403,
        )
        .await;
    scoped
        .post(&format!("/auth/app-portal-access/{a}"), json!({}), 403)
        .await;
    scoped.get("/token", 403).await;
    // And b is untouched.
    assert_eq!(admin.get(&format!("/app/{b}"), 200).await["name"], "theirs");
    srv.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn api_tokens_can_be_created_scoped_and_revoked() {
    let srv = TestServer::start(|_| {}).await;
    let admin = &srv.client;
    let a = admin.create_app("a").await;
    let b = admin.create_app("b").await;
    let t = admin
        .post("/token", json!({"name": "ci", "appId": a}), 201)
        .await;
    let secret = t["token"].as_str().expect("token secret");
    assert!(secret.starts_with("hk_"), "{secret}");
    let scoped = admin.with_token(secret);
    scoped.get(&format!("/app/{a}"), 200).await;
    scoped.get(&format!("/app/{b}"), 403).await;
    let list = admin.get("/token", 200).await;
    assert!(
        !list.to_string().contains(secret),
        "token list leaks the secret"
    );
    admin.delete(&format!("/token/{}", id_of(&t)), 204).await;
    scoped.get(&format!("/app/{a}"), 401).await;
    admin.delete(&format!("/token/{}", id_of(&t)), 404).await;
    srv.stop().await;
}

/// Endpoint URLs with literal blocked addresses are refused at creation — in every spelling the
/// URL parser normalises to such an address. Nothing is ever published to them.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ssrf_literal_blocked_addresses_are_422_at_creation() {
    let srv = TestServer::start_without_allow_list().await;
    let c = &srv.client;
    let app = c.create_app("a").await;
    let base = format!("/app/{app}/endpoint");
    let blocked = [
        "http://169.254.169.254/latest/meta-data/",
        "http://10.0.0.1/",
        "http://127.0.0.1:8080/",
        "http://[::1]/",
        "http://2130706433/",
        "http://0x7f.1/",
        "http://[::ffff:169.254.169.254]/",
        "http://[::ffff:127.0.0.1]/",
        "http://0.0.0.0/",
        "http://192.168.1.1/",
        "http://[fe80::1]/",
        "http://[fc00::1]/",
        "https://100.64.0.1/",
    ];
    for url in blocked {
        let v = c.post(&base, json!({"url": url}), 422).await;
        assert_eq!(v["code"], "validation_error", "{url}: {v}");
        assert!(
            v["detail"][0]["loc"]
                .as_array()
                .is_some_and(|l| l.iter().any(|p| p == "url")),
            "{url}: {v}"
        );
    }
    // The same through PUT and PATCH of an existing endpoint.
    let ep = c.endpoint_for(&app, "https://example.com/hook").await;
    for url in blocked {
        c.patch(&format!("{base}/{ep}"), json!({"url": url}), 422)
            .await;
        c.put(&format!("{base}/{ep}"), json!({"url": url}), 422)
            .await;
    }
    c.put(
        &format!("{base}/new-uid"),
        json!({"url": "http://10.1.2.3/"}),
        422,
    )
    .await;
    let list = c.get(&base, 200).await;
    assert_eq!(
        ids(&list),
        vec![ep.clone()],
        "no blocked endpoint was stored"
    );
    assert_eq!(
        c.get(&format!("{base}/{ep}"), 200).await["url"],
        "https://example.com/hook"
    );
    srv.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn allow_networks_permits_loopback_endpoints() {
    let srv = TestServer::start(|_| {}).await;
    let c = &srv.client;
    let app = c.create_app("a").await;
    c.create_endpoint(&app, json!({"url": "http://127.0.0.1:9/"}))
        .await;
    // Still refused outside the allow-list.
    c.post(
        &format!("/app/{app}/endpoint"),
        json!({"url": "http://169.254.169.254/"}),
        422,
    )
    .await;
    srv.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn error_bodies_have_code_and_detail() {
    let srv = TestServer::start(|_| {}).await;
    let c = &srv.client;
    // Each of these goes through Client::send, which checks the shape; a few odd ones here.
    let r = c
        .send(
            c.req(Method::POST, "/app")
                .header("content-type", "application/json")
                .body("{"),
            400,
        )
        .await;
    assert_error_body(&r.json, "truncated JSON");
    let r = c
        .send(c.req(Method::POST, "/app").json(&json!({"name": 5})), 422)
        .await;
    assert_error_body(&r.json, "wrong type");
    c.get("/app?limit=abc", 422).await;
    let r = c.send(c.req(Method::DELETE, "/app"), 405).await;
    assert_error_body(&r.json, "method not allowed");
    let allow = r.headers.get("allow").and_then(|v| v.to_str().ok());
    assert!(
        allow.is_some_and(|a| a.contains("GET") && a.contains("POST")),
        "405 lists the allowed methods: {allow:?}"
    );
    srv.stop().await;
}

fn urlencode(s: &str) -> String {
    s.replace('+', "%2B").replace(':', "%3A")
}

/// Concurrent requests with the same idempotency key wait for the first and share its answer.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_duplicates_with_one_idempotency_key_publish_once() {
    let srv = TestServer::start(|_| {}).await;
    let c = &srv.client;
    let app = c.create_app("a").await;
    let path = format!("/app/{app}/msg");
    let tasks: Vec<_> = (0..8)
        .map(|_| {
            let c = c.clone();
            let path = path.clone();
            tokio::spawn(async move {
                let rb = c
                    .req(Method::POST, &path)
                    .header("idempotency-key", "burst")
                    .json(&json!({"eventType": "t", "payload": {"n": 1}}));
                id_of(&c.send(rb, 202).await.json)
            })
        })
        .collect();
    let mut ids_seen = Vec::new();
    for t in tasks {
        ids_seen.push(t.await.expect("request task"));
    }
    ids_seen.dedup();
    assert_eq!(ids_seen.len(), 1, "{ids_seen:?}");
    assert_eq!(ids(&c.get(&path, 200).await).len(), 1);
    // The key is per token: another token's identical request is a new message.
    let access = c
        .post(&format!("/auth/app-portal-access/{app}"), json!({}), 200)
        .await;
    let other = c.with_token(access["token"].as_str().unwrap());
    let rb = other
        .req(Method::POST, &path)
        .header("idempotency-key", "burst")
        .json(&json!({"eventType": "t", "payload": {"n": 1}}));
    let second = id_of(&other.send(rb, 202).await.json);
    assert_ne!(second, ids_seen[0]);
    srv.stop().await;
}

/// uids and eventIds are unique per application, not globally.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn uids_and_event_ids_are_scoped_to_their_application() {
    let srv = TestServer::start(|_| {}).await;
    let c = &srv.client;
    let a = c.create_app("a").await;
    let b = c.create_app("b").await;
    for app in [&a, &b] {
        c.create_endpoint(app, json!({"url": "https://example.com/", "uid": "same"}))
            .await;
        c.publish(
            app,
            json!({"eventType": "t", "payload": {}, "eventId": "evt-same"}),
        )
        .await;
    }
    let ea = c.get(&format!("/app/{a}/endpoint/same"), 200).await;
    let eb = c.get(&format!("/app/{b}/endpoint/same"), 200).await;
    assert_ne!(ea["id"], eb["id"]);
    let ma = c.get(&format!("/app/{a}/msg/evt-same"), 200).await;
    let mb = c.get(&format!("/app/{b}/msg/evt-same"), 200).await;
    assert_ne!(ma["id"], mb["id"]);
    // A message of one app is not visible through another.
    c.get(&format!("/app/{b}/msg/{}", id_of(&ma)), 404).await;
    c.get(&format!("/app/{b}/endpoint/{}", id_of(&ea)), 404)
        .await;
    srv.stop().await;
}

/// Publishing with an `application` body creates the application on first use.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn publish_with_application_creates_it() {
    let srv = TestServer::start(|_| {}).await;
    let c = &srv.client;
    c.post(
        "/app/auto-created/msg",
        json!({"eventType": "t", "payload": {}, "application": {"name": "Auto"}}),
        202,
    )
    .await;
    let app = c.get("/app/auto-created", 200).await;
    assert_eq!(app["name"], "Auto");
    assert_eq!(ids(&c.get("/app/auto-created/msg", 200).await).len(), 1);
    srv.stop().await;
}

/// (herald) A payload that does not validate against its event type's newest schema is 422.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn publish_validates_the_payload_against_the_event_type_schema() {
    let srv = TestServer::start(|_| {}).await;
    let c = &srv.client;
    let app = c.create_app("a").await;
    let path = format!("/app/{app}/msg");
    let schema = json!({
        "type": "object",
        "required": ["id"],
        "properties": {"id": {"type": "string"}},
    });
    c.post(
        "/event-type",
        json!({"name": "invoice.paid", "description": "", "schemas": {"1": schema}}),
        201,
    )
    .await;
    for bad in [json!({}), json!({"id": 5})] {
        let v = c
            .post(
                &path,
                json!({"eventType": "invoice.paid", "payload": bad}),
                422,
            )
            .await;
        assert_eq!(v["code"], "validation_error", "{v}");
    }
    c.publish(
        &app,
        json!({"eventType": "invoice.paid", "payload": {"id": "in_1"}}),
    )
    .await;
    // Other event types are not checked.
    c.publish(&app, json!({"eventType": "invoice.void", "payload": {}}))
        .await;
    // A newer version wins; clearing the schemas lifts the check.
    c.patch(
        "/event-type/invoice.paid",
        json!({"schemas": {"1": schema, "2": {"type": "object", "required": ["total"]}}}),
        200,
    )
    .await;
    c.post(
        &path,
        json!({"eventType": "invoice.paid", "payload": {"id": "in_2"}}),
        422,
    )
    .await;
    c.publish(
        &app,
        json!({"eventType": "invoice.paid", "payload": {"total": 3}}),
    )
    .await;
    c.patch("/event-type/invoice.paid", json!({"schemas": null}), 200)
        .await;
    c.publish(&app, json!({"eventType": "invoice.paid", "payload": {}}))
        .await;
    assert_eq!(ids(&c.get(&path, 200).await).len(), 4);
    srv.stop().await;
}
