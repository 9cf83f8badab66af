//! The OpenAPI document (`/api/v1/openapi.json`) and the docs page (`/docs`): the document is
//! OpenAPI 3.1, documents exactly the router's routes (each of which really answers), declares
//! every path parameter, the bearer scheme and the error answers; the docs page and its
//! embedded assets are served without a token.

use std::collections::BTreeSet;

use reqwest::Method;
use serde_json::Value;

use crate::common::TestServer;

/// Every route of `herald_api`'s router (keep in step with `routes/mod.rs`), except the
/// document and the docs page themselves.
const ROUTES: &[(&str, &str)] = &[
    ("get", "/api/v1/health"),
    ("get", "/api/v1/app"),
    ("post", "/api/v1/app"),
    ("get", "/api/v1/app/{app_id}"),
    ("put", "/api/v1/app/{app_id}"),
    ("patch", "/api/v1/app/{app_id}"),
    ("delete", "/api/v1/app/{app_id}"),
    ("get", "/api/v1/app/{app_id}/endpoint"),
    ("post", "/api/v1/app/{app_id}/endpoint"),
    ("get", "/api/v1/app/{app_id}/endpoint/{endpoint_id}"),
    ("put", "/api/v1/app/{app_id}/endpoint/{endpoint_id}"),
    ("patch", "/api/v1/app/{app_id}/endpoint/{endpoint_id}"),
    ("delete", "/api/v1/app/{app_id}/endpoint/{endpoint_id}"),
    ("get", "/api/v1/app/{app_id}/endpoint/{endpoint_id}/secret"),
    (
        "post",
        "/api/v1/app/{app_id}/endpoint/{endpoint_id}/secret/rotate",
    ),
    (
        "get",
        "/api/v1/app/{app_id}/endpoint/{endpoint_id}/transformation",
    ),
    (
        "patch",
        "/api/v1/app/{app_id}/endpoint/{endpoint_id}/transformation",
    ),
    (
        "post",
        "/api/v1/app/{app_id}/endpoint/{endpoint_id}/transformation/test",
    ),
    (
        "post",
        "/api/v1/app/{app_id}/endpoint/{endpoint_id}/filter/test",
    ),
    ("get", "/api/v1/app/{app_id}/endpoint/{endpoint_id}/headers"),
    ("put", "/api/v1/app/{app_id}/endpoint/{endpoint_id}/headers"),
    (
        "patch",
        "/api/v1/app/{app_id}/endpoint/{endpoint_id}/headers",
    ),
    ("get", "/api/v1/app/{app_id}/endpoint/{endpoint_id}/stats"),
    (
        "post",
        "/api/v1/app/{app_id}/endpoint/{endpoint_id}/recover",
    ),
    (
        "post",
        "/api/v1/app/{app_id}/endpoint/{endpoint_id}/send-example",
    ),
    ("get", "/api/v1/app/{app_id}/endpoint/{endpoint_id}/poll"),
    (
        "post",
        "/api/v1/app/{app_id}/endpoint/{endpoint_id}/poll/token",
    ),
    (
        "get",
        "/api/v1/app/{app_id}/endpoint/{endpoint_id}/poll/token",
    ),
    (
        "delete",
        "/api/v1/app/{app_id}/endpoint/{endpoint_id}/poll/token/{token_id}",
    ),
    ("get", "/api/v1/app/{app_id}/endpoint/{endpoint_id}/msg"),
    ("get", "/api/v1/app/{app_id}/msg"),
    ("post", "/api/v1/app/{app_id}/msg"),
    ("get", "/api/v1/app/{app_id}/msg/{msg_id}"),
    ("delete", "/api/v1/app/{app_id}/msg/{msg_id}/content"),
    ("get", "/api/v1/app/{app_id}/msg/{msg_id}/endpoint"),
    (
        "post",
        "/api/v1/app/{app_id}/msg/{msg_id}/endpoint/{endpoint_id}/resend",
    ),
    (
        "get",
        "/api/v1/app/{app_id}/msg/{msg_id}/attempt/{attempt_id}",
    ),
    ("get", "/api/v1/app/{app_id}/attempt/endpoint/{endpoint_id}"),
    ("get", "/api/v1/app/{app_id}/attempt/msg/{msg_id}"),
    ("get", "/api/v1/event-type"),
    ("post", "/api/v1/event-type"),
    ("get", "/api/v1/event-type/{name}"),
    ("put", "/api/v1/event-type/{name}"),
    ("patch", "/api/v1/event-type/{name}"),
    ("delete", "/api/v1/event-type/{name}"),
    ("post", "/api/v1/auth/app-portal-access/{app_id}"),
    ("get", "/api/v1/token"),
    ("get", "/api/v1/listen"),
    ("post", "/api/v1/token"),
    ("delete", "/api/v1/token/{token_id}"),
    ("get", "/metrics"),
    ("get", "/healthz"),
    ("get", "/api/v1/app/{app_id}/source"),
    ("post", "/api/v1/app/{app_id}/source"),
    ("get", "/api/v1/app/{app_id}/source/{source_id}"),
    ("patch", "/api/v1/app/{app_id}/source/{source_id}"),
    ("delete", "/api/v1/app/{app_id}/source/{source_id}"),
    (
        "post",
        "/api/v1/app/{app_id}/source/{source_id}/secret/rotate",
    ),
    ("get", "/api/v1/app/{app_id}/source/{source_id}/request"),
    ("post", "/api/v1/app/{app_id}/source/{source_id}/poll"),
    (
        "post",
        "/api/v1/app/{app_id}/source/{source_id}/quarantine/{request_id}/release",
    ),
    (
        "post",
        "/api/v1/app/{app_id}/source/{source_id}/quarantine/{request_id}/reject",
    ),
    ("post", "/in/{source_id}"),
];

/// Routes that need no token.
const PUBLIC: &[&str] = &["/api/v1/health", "/healthz", "/metrics", "/in/{source_id}"];

const METHODS: &[&str] = &[
    "get", "put", "post", "patch", "delete", "head", "options", "trace",
];

fn documented(doc: &Value) -> BTreeSet<(String, String)> {
    let mut out = BTreeSet::new();
    for (path, item) in doc["paths"].as_object().expect("paths object") {
        for m in METHODS {
            if item.get(*m).is_some() {
                out.insert((m.to_string(), path.clone()));
            }
        }
    }
    out
}

/// The path's `{name}` segments.
fn path_params(path: &str) -> Vec<&str> {
    path.split('/')
        .filter_map(|s| s.strip_prefix('{').and_then(|s| s.strip_suffix('}')))
        .collect()
}

/// Follows a `$ref` into `#/components/...`.
fn resolve<'a>(doc: &'a Value, v: &'a Value) -> &'a Value {
    match v.get("$ref").and_then(Value::as_str) {
        Some(r) => {
            let ptr = r.strip_prefix('#').expect("local $ref");
            doc.pointer(ptr)
                .unwrap_or_else(|| panic!("dangling $ref {r}"))
        }
        None => v,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn openapi_document_covers_every_route() {
    let srv = TestServer::start(|_| {}).await;
    let anon = srv.client.anonymous();
    let r = anon.send(anon.req(Method::GET, "/openapi.json"), 200).await;
    let ct = r.headers["content-type"].to_str().expect("ascii");
    assert!(ct.starts_with("application/json"), "content-type {ct}");
    let doc = r.json;
    assert!(
        doc["openapi"]
            .as_str()
            .is_some_and(|v| v.starts_with("3.1")),
        "not OpenAPI 3.1: {}",
        doc["openapi"]
    );

    // Exactly the router's routes.
    let want: BTreeSet<(String, String)> = ROUTES
        .iter()
        .map(|(m, p)| (m.to_string(), p.to_string()))
        .collect();
    let have = documented(&doc);
    let missing: Vec<_> = want.difference(&have).collect();
    let extra: Vec<_> = have.difference(&want).collect();
    assert!(
        missing.is_empty() && extra.is_empty(),
        "undocumented routes: {missing:?}; documented routes the test does not know: {extra:?}"
    );

    // A source's `ordering` option is described field by field, in and out, and ingestion
    // documents its `stale` and `held` answers.
    // (SourceOut carries it through the flattened SourceOptions.)
    assert!(doc["components"]["schemas"]["SourceOut"]
        .to_string()
        .contains("#/components/schemas/SourceOptions"));
    for dto in ["SourceIn", "SourceOptions", "SourcePatch"] {
        let prop = doc["components"]["schemas"][dto]["properties"]["ordering"].to_string();
        assert!(
            prop.contains("#/components/schemas/SourceOrdering"),
            "{dto}.ordering: {prop}"
        );
    }
    let ordering = &doc["components"]["schemas"]["SourceOrdering"];
    for field in ["key", "sequence", "gapTimeoutSeconds"] {
        assert!(
            ordering["properties"].get(field).is_some(),
            "SourceOrdering.{field}: {ordering}"
        );
    }
    let ingest_out = &doc["components"]["schemas"]["IngestOut"]["properties"];
    assert!(ingest_out.get("stale").is_some() && ingest_out.get("held").is_some());

    // The bearer scheme.
    let scheme = &doc["components"]["securitySchemes"]["bearer"];
    assert_eq!(scheme["type"], "http", "{scheme}");
    assert_eq!(scheme["scheme"], "bearer", "{scheme}");

    let mut operation_ids = BTreeSet::new();
    for (method, path) in ROUTES {
        let op = &doc["paths"][*path][*method];
        let what = format!("{} {path}", method.to_uppercase());
        let id = op["operationId"].as_str().unwrap_or_default().to_string();
        assert!(!id.is_empty(), "{what}: no operationId");
        assert!(
            operation_ids.insert(id.clone()),
            "{what}: duplicate operationId {id}"
        );

        // Every `{param}` of the path is declared as a required path parameter.
        let params = op["parameters"].as_array().cloned().unwrap_or_default();
        for name in path_params(path) {
            assert!(
                params
                    .iter()
                    .any(|p| p["name"] == name && p["in"] == "path" && p["required"] == true),
                "{what}: path parameter {name} not declared"
            );
        }
        assert_eq!(
            params.iter().filter(|p| p["in"] == "path").count(),
            path_params(path).len(),
            "{what}: path parameters that are not in the path"
        );

        // Security: bearer everywhere but the public routes.
        let security = op["security"].as_array().expect("security list");
        if PUBLIC.contains(path) {
            assert!(security.is_empty(), "{what}: public route with security");
        } else {
            assert!(
                security.iter().any(|s| s.get("bearer").is_some()),
                "{what}: no bearer requirement"
            );
            for status in ["401", "403", "503"] {
                assert!(
                    op["responses"].get(status).is_some(),
                    "{what}: {status} not documented"
                );
            }
        }

        // A success answer, with a JSON schema unless it is 204.
        let responses = op["responses"].as_object().expect("responses");
        // The listen route's success is the WebSocket upgrade (101, no body).
        let success: Vec<_> = responses
            .keys()
            .filter(|k| k.starts_with('2') || (*path == "/api/v1/listen" && *k == "101"))
            .collect();
        assert!(!success.is_empty(), "{what}: no 2xx response");
        for code in success {
            let resp = resolve(&doc, &responses[code]);
            if code != "204" && code != "101" {
                assert!(
                    resp["content"].as_object().is_some_and(|c| !c.is_empty()),
                    "{what}: {code} has no content"
                );
            }
        }

        // Error answers carry the `{code, detail}` body (422: the validation body).
        for (code, resp) in responses.iter().filter(|(k, _)| k.starts_with(['4', '5'])) {
            let resp = resolve(&doc, resp);
            let schema = &resp["content"]["application/json"]["schema"]["$ref"];
            let want = if code == "422" {
                "#/components/schemas/ValidationErrorBody"
            } else if *path == "/api/v1/health" {
                "#/components/schemas/HealthOut"
            } else {
                "#/components/schemas/ErrorBody"
            };
            assert_eq!(schema, want, "{what}: {code} body");
        }

        // Bodies are declared where the handler reads one.
        if op.get("requestBody").is_some() {
            assert_eq!(op["requestBody"]["required"], true, "{what}: optional body");
            // Ingestion takes any bytes: no "not JSON" 400 and no schema 422 of the API's kind
            // apply there (its own answers are listed on it).
            let statuses: &[&str] = if *path == "/in/{source_id}" {
                &["413"]
            } else {
                &["400", "413", "422"]
            };
            for status in statuses {
                assert!(
                    op["responses"].get(status).is_some(),
                    "{what}: {status} not documented"
                );
            }
        }

        // The documented route really exists: an anonymous call reaches it (401 or an answer
        // of its own), never the router's 404 fallback or 405.
        let concrete = path_params(path).iter().fold(path.to_string(), |p, n| {
            p.replace(&format!("{{{n}}}"), "x-1")
        });
        let method = Method::from_bytes(method.to_uppercase().as_bytes()).expect("method");
        let resp = anon
            .req(method, &format!("/{concrete}"))
            .send()
            .await
            .expect("request");
        let status = resp.status().as_u16();
        let body: Value = resp.json().await.unwrap_or(Value::Null);
        assert_ne!(status, 405, "{what}: method not routed");
        assert!(
            !(status == 404 && body["detail"] == "no such route"),
            "{what}: path not routed"
        );
        if !PUBLIC.contains(path) {
            assert_eq!(status, 401, "{what}: answered {status} without a token");
        }
    }

    // The schemas every error answer refers to.
    let schemas = &doc["components"]["schemas"];
    for name in ["ErrorBody", "ValidationErrorBody", "FieldError"] {
        assert!(schemas.get(name).is_some(), "schema {name} missing");
    }
    srv.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn docs_page_and_its_assets_are_served() {
    let srv = TestServer::start(|_| {}).await;
    let anon = srv.client.anonymous();
    let page = anon.send(anon.req(Method::GET, "//docs"), 200).await;
    let ct = page.headers["content-type"].to_str().expect("ascii");
    assert!(ct.starts_with("text/html"), "content-type {ct}");
    assert!(page.text.contains("swagger-ui"), "{}", page.text);
    // The server trims trailing slashes, so the page names its base for relative assets.
    assert!(
        page.text.contains(r#"<base href="/docs/">"#),
        "{}",
        page.text
    );
    let js = anon
        .send(anon.req(Method::GET, "//docs/swagger-ui-bundle.js"), 200)
        .await;
    assert!(
        js.text.len() > 100_000,
        "bundle too small: {}",
        js.text.len()
    );
    let init = anon
        .send(anon.req(Method::GET, "//docs/swagger-initializer.js"), 200)
        .await;
    assert!(init.text.contains("/api/v1/openapi.json"), "{}", init.text);
    anon.send(anon.req(Method::GET, "//docs/no-such-file.js"), 404)
        .await;
    // A trailing slash reaches the same page (it does not redirect in a loop).
    let again = anon.send(anon.req(Method::GET, "//docs/"), 200).await;
    assert_eq!(again.text, page.text);
    srv.stop().await;
}

/// Found by schemathesis: a JSON array body filled a struct whose fields are all optional, so
/// `PATCH /event-type/{name}` with `[null, null]` answered 200.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_json_array_body_is_refused_with_422() {
    let srv = TestServer::start(|_| {}).await;
    let c = &srv.client;
    c.post("/event-type", serde_json::json!({"name": "arr.body"}), 201)
        .await;
    let r = c
        .send(
            c.req(Method::PATCH, "/event-type/arr.body")
                .header("content-type", "application/json")
                .body("[null, null]"),
            422,
        )
        .await;
    assert_eq!(r.json["code"], "validation_error", "{}", r.text);
    c.send(
        c.req(Method::POST, "/app")
            .header("content-type", "application/json")
            .body(r#"["name"]"#),
        422,
    )
    .await;
    srv.stop().await;
}
