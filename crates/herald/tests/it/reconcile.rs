//! Reconciliation sources (destinations.md "Pulling from providers") end to end: a fake
//! provider on 127.0.0.1 serves Stripe-shaped (`/v1/events`, `starting_after`) and
//! GitHub-shaped (hook deliveries, `Link` paging, per-delivery detail) pages; events only
//! available through the list reach the app's endpoint once, whichever way (webhook or poll)
//! an event came first; a failing provider (500, garbage, a huge body) is recorded on the
//! source without touching webhook ingestion; the poll's headers never come back; hostile
//! `poll` objects are 422. Every scenario runs on SQLite and, with `TEST_DATABASE_URL`, on a
//! fresh PostgreSQL database.

use std::collections::HashSet;
use std::net::SocketAddr;
use std::sync::Arc;

use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use parking_lot::Mutex;
use reqwest::Method;
use serde_json::{json, Value};

use crate::common::{
    eventually, hmac_sha256, id_of, to_hex, unix_now, Receiver, Resp, TestServer, WAIT,
};

const STRIPE_SECRET: &str = "whsec_reconcile_test";
const GITHUB_SECRET: &str = "gh-reconcile-secret";
const API_KEY: &str = "sk_test_never_shown_0123";

// ---- the fake provider -----------------------------------------------------------------------

#[derive(Clone, Copy, PartialEq)]
enum Mode {
    Ok,
    Status500,
    Garbage,
    Huge,
}

struct ProviderState {
    addr: Mutex<Option<SocketAddr>>,
    /// Newest first, as both providers list.
    stripe: Mutex<Vec<Value>>,
    github: Mutex<Vec<(Value, Value)>>,
    mode: Mutex<Mode>,
    page_size: usize,
    /// `Authorization` headers seen.
    auth: Mutex<Vec<String>>,
}

struct Provider {
    state: Arc<ProviderState>,
    addr: SocketAddr,
}

impl Provider {
    async fn start(page_size: usize) -> Self {
        let state = Arc::new(ProviderState {
            addr: Mutex::new(None),
            stripe: Mutex::new(Vec::new()),
            github: Mutex::new(Vec::new()),
            mode: Mutex::new(Mode::Ok),
            page_size,
            auth: Mutex::new(Vec::new()),
        });
        let app = Router::new()
            .route("/v1/events", get(stripe_page))
            .route("/repos/o/r/hooks/1/deliveries", get(github_page))
            .route("/repos/o/r/hooks/1/deliveries/{id}", get(github_detail))
            .with_state(state.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        *state.addr.lock() = Some(addr);
        tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Self { state, addr }
    }

    fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    /// Adds a Stripe event (newest first) and returns its body.
    fn stripe_event(&self, id: &str) -> Value {
        let ev = json!({"id": id, "object": "event", "type": "charge.succeeded",
            "created": unix_now(), "data": {"object": {"id": format!("ch_{id}")}}});
        self.state.stripe.lock().insert(0, ev.clone());
        ev
    }

    /// Adds a GitHub delivery (newest first) and returns its payload.
    fn github_delivery(&self, id: i64, guid: &str) -> Value {
        let payload = json!({"action": "opened", "number": id, "guid_echo": guid});
        let summary = json!({"id": id, "guid": guid, "event": "pull_request", "action": "opened",
            "delivered_at": chrono::Utc::now().to_rfc3339(), "status_code": 502, "redelivery": false});
        self.state
            .github
            .lock()
            .insert(0, (summary, payload.clone()));
        payload
    }

    fn set_mode(&self, m: Mode) {
        *self.state.mode.lock() = m;
    }

    fn auth_seen(&self) -> Vec<String> {
        self.state.auth.lock().clone()
    }
}

fn failure(st: &ProviderState, headers: &HeaderMap) -> Option<Response> {
    if let Some(a) = headers.get("authorization").and_then(|v| v.to_str().ok()) {
        st.auth.lock().push(a.to_string());
    }
    match *st.mode.lock() {
        Mode::Ok => None,
        Mode::Status500 => Some((StatusCode::INTERNAL_SERVER_ERROR, "boom").into_response()),
        Mode::Garbage => Some((StatusCode::OK, "<html>not json").into_response()),
        Mode::Huge => Some((StatusCode::OK, vec![b' '; 5 * 1024 * 1024]).into_response()),
    }
}

async fn stripe_page(
    State(st): State<Arc<ProviderState>>,
    Query(q): Query<std::collections::HashMap<String, String>>,
    headers: HeaderMap,
) -> Response {
    if let Some(r) = failure(&st, &headers) {
        return r;
    }
    let all = st.stripe.lock().clone();
    let start = match q.get("starting_after") {
        Some(after) => all
            .iter()
            .position(|e| e["id"] == after.as_str())
            .map_or(all.len(), |i| i + 1),
        None => 0,
    };
    let page: Vec<Value> = all.iter().skip(start).take(st.page_size).cloned().collect();
    let has_more = start + page.len() < all.len();
    axum::Json(json!({"object": "list", "data": page, "has_more": has_more})).into_response()
}

async fn github_page(
    State(st): State<Arc<ProviderState>>,
    Query(q): Query<std::collections::HashMap<String, String>>,
    headers: HeaderMap,
) -> Response {
    if let Some(r) = failure(&st, &headers) {
        return r;
    }
    let all: Vec<Value> = st.github.lock().iter().map(|(s, _)| s.clone()).collect();
    let start: usize = q.get("cursor").and_then(|c| c.parse().ok()).unwrap_or(0);
    let page: Vec<Value> = all.iter().skip(start).take(st.page_size).cloned().collect();
    let mut resp = axum::Json(Value::Array(page.clone())).into_response();
    if start + page.len() < all.len() {
        let addr = st.addr.lock().unwrap();
        let next = format!(
            "<http://{addr}/repos/o/r/hooks/1/deliveries?per_page=100&cursor={}>; rel=\"next\"",
            start + page.len()
        );
        resp.headers_mut().insert("link", next.parse().unwrap());
    }
    resp
}

async fn github_detail(
    State(st): State<Arc<ProviderState>>,
    Path(id): Path<i64>,
    headers: HeaderMap,
) -> Response {
    if let Some(r) = failure(&st, &headers) {
        return r;
    }
    let found = st
        .github
        .lock()
        .iter()
        .find(|(s, _)| s["id"] == id)
        .cloned();
    match found {
        Some((s, payload)) => axum::Json(json!({
            "id": id, "guid": s["guid"], "event": s["event"],
            "request": {"headers": {"X-GitHub-Event": s["event"], "X-GitHub-Delivery": s["guid"],
                "X-Hub-Signature-256": "sha256=deadbeef"}, "payload": payload},
            "response": {"headers": {}, "payload": null}
        }))
        .into_response(),
        None => StatusCode::NOT_FOUND.into_response(),
    }
}

// ---- harness ---------------------------------------------------------------------------------

#[derive(Clone, Copy, Debug)]
enum Backend {
    Sqlite,
    Postgres,
}

/// A server on `backend`; `None` when PostgreSQL is asked for without `TEST_DATABASE_URL`.
async fn server(backend: Backend) -> Option<TestServer> {
    let db = match backend {
        Backend::Sqlite => None,
        Backend::Postgres => {
            let Ok(admin) = std::env::var("TEST_DATABASE_URL") else {
                eprintln!("skipped: TEST_DATABASE_URL not set");
                return None;
            };
            Some(crate::pg_support::fresh_database(&admin, "reconcile").await)
        }
    };
    Some(TestServer::start(move |c| c.database_url = db).await)
}

/// Runs `$body(backend)` once per backend.
macro_rules! both_backends {
    ($name:ident, $sqlite:ident, $pg:ident) => {
        #[tokio::test]
        async fn $sqlite() {
            $name(Backend::Sqlite).await
        }
        #[tokio::test]
        async fn $pg() {
            $name(Backend::Postgres).await
        }
    };
}

fn stripe_signed(body: &[u8]) -> Vec<(String, String)> {
    let t = unix_now().to_string();
    let mut signed = format!("{t}.").into_bytes();
    signed.extend_from_slice(body);
    let sig = to_hex(&hmac_sha256(STRIPE_SECRET.as_bytes(), &signed));
    vec![
        ("Stripe-Signature".into(), format!("t={t},v1={sig}")),
        ("Content-Type".into(), "application/json".into()),
    ]
}

fn github_signed(body: &[u8], guid: &str) -> Vec<(String, String)> {
    let sig = to_hex(&hmac_sha256(GITHUB_SECRET.as_bytes(), body));
    vec![
        ("X-Hub-Signature-256".into(), format!("sha256={sig}")),
        ("X-GitHub-Delivery".into(), guid.into()),
        ("X-GitHub-Event".into(), "pull_request".into()),
        ("Content-Type".into(), "application/json".into()),
    ]
}

/// POSTs a webhook to the source and answers the status and body.
async fn webhook(
    s: &TestServer,
    src: &str,
    headers: &[(String, String)],
    body: &[u8],
) -> (u16, Value) {
    let anon = s.client.anonymous();
    let mut rb = anon
        .req(Method::POST, &format!("//in/{src}"))
        .body(body.to_vec());
    for (k, v) in headers {
        rb = rb.header(k.as_str(), v.as_str());
    }
    let r = rb.send().await.unwrap();
    let status = r.status().as_u16();
    (status, r.json().await.unwrap_or(Value::Null))
}

/// The source's `pollStatus` as its GET answer shows it.
async fn status_of(s: &TestServer, app: &str, src: &str) -> Value {
    s.client.get(&format!("/app/{app}/source/{src}"), 200).await["pollStatus"].clone()
}

/// Asks for a poll now and waits until that run recorded its outcome.
async fn poll_once(s: &TestServer, app: &str, src: &str) -> Value {
    let before = status_of(s, app, src).await;
    let mark = |v: &Value| (v["lastSuccessAt"].clone(), v["lastErrorAt"].clone());
    s.client
        .post(&format!("/app/{app}/source/{src}/poll"), json!({}), 202)
        .await;
    eventually(WAIT, "a poll run", || async {
        let now = status_of(s, app, src).await;
        (mark(&now) != mark(&before)).then_some(now)
    })
    .await
}

async fn message_count(s: &TestServer, app: &str) -> usize {
    let page = s
        .client
        .get(&format!("/app/{app}/msg?limit=250"), 200)
        .await;
    page["data"].as_array().unwrap().len()
}

async fn stripe_source(s: &TestServer, app: &str, p: &Provider) -> String {
    let src = s
        .client
        .post(
            &format!("/app/{app}/source"),
            json!({"name": "stripe", "verification": {"scheme": "stripe", "secrets": [STRIPE_SECRET]},
                "poll": {"preset": "stripe", "url": p.url("/v1/events"), "intervalSeconds": 3600,
                    "headers": {"Authorization": format!("Bearer {API_KEY}")}}}),
            201,
        )
        .await;
    assert!(!src.to_string().contains(API_KEY), "{src}");
    id_of(&src)
}

/// POSTs the Stripe event `event` to the source as a signed webhook.
async fn stripe_webhook(s: &TestServer, src: &str, event: &Value) -> (u16, Value) {
    let body = serde_json::to_vec(event).unwrap();
    webhook(s, src, &stripe_signed(&body), &body).await
}

/// POSTs the GitHub delivery `payload` to the source as a signed webhook with `guid`.
async fn github_webhook(s: &TestServer, src: &str, payload: &Value, guid: &str) -> (u16, Value) {
    let body = serde_json::to_vec(payload).unwrap();
    webhook(s, src, &github_signed(&body, guid), &body).await
}

/// Waits until the source's poll has succeeded once (`what` names the run).
async fn wait_first_success(s: &TestServer, app: &str, src: &str, what: &str) {
    eventually(WAIT, what, || async {
        status_of(s, app, src).await["lastSuccessAt"]
            .as_str()
            .map(|_| ())
    })
    .await;
}

/// POSTs a source `body` that must be refused with 422; answers the response.
async fn create_source_refused(s: &TestServer, app: &str, body: &Value) -> Resp {
    s.client
        .send(
            s.client
                .req(Method::POST, &format!("/app/{app}/source"))
                .json(body),
            422,
        )
        .await
}

/// A server on `backend`, a provider paging `page` items, a receiver, and an application with
/// one endpoint to that receiver: what most scenarios start from. `None`: PostgreSQL is not
/// available here.
struct Setup {
    s: TestServer,
    p: Provider,
    rx: Receiver,
    app: String,
}

async fn setup(backend: Backend, page: usize) -> Option<Setup> {
    let s = server(backend).await?;
    let p = Provider::start(page).await;
    let rx = Receiver::start().await;
    let app = s.client.create_app("recon").await;
    s.client.endpoint_for(&app, &rx.url()).await;
    Some(Setup { s, p, rx, app })
}

// ---- scenarios -------------------------------------------------------------------------------

/// Events only in the provider's list are forwarded once each, across pages; polling again
/// forwards nothing new; a late webhook of a polled event is a duplicate.
async fn stripe_poll_forwards_missed_events_once(backend: Backend) {
    let Some(Setup { s, p, rx, app }) = setup(backend, 2).await else {
        return;
    };
    for i in 1..=5 {
        p.stripe_event(&format!("evt_{i}"));
    }
    let src = stripe_source(&s, &app, &p).await;

    let got = rx.wait_for(5).await;
    let ids: HashSet<String> = got
        .iter()
        .map(|r| {
            serde_json::from_slice::<Value>(&r.body).unwrap()["id"]
                .as_str()
                .unwrap()
                .to_string()
        })
        .collect();
    assert_eq!(ids.len(), 5, "each event once: {ids:?}");
    let status = poll_once(&s, &app, &src).await;
    assert_eq!(status["consecutiveFailures"], 0, "{status}");
    assert_eq!(
        message_count(&s, &app).await,
        5,
        "a second poll forwards nothing again"
    );
    assert!(p
        .auth_seen()
        .iter()
        .all(|a| a == &format!("Bearer {API_KEY}")));

    // A late webhook of a polled event collapses onto the polled message.
    let newest = p.state.stripe.lock()[0].clone();
    let (code, out) = stripe_webhook(&s, &src, &newest).await;
    assert_eq!(
        (code, out["duplicate"].clone()),
        (200, json!(true)),
        "{out}"
    );
    assert_eq!(message_count(&s, &app).await, 5);

    // The request log tells polled events apart; nothing shows the key.
    let log = s
        .client
        .get(&format!("/app/{app}/source/{src}/request"), 200)
        .await;
    assert!(log.to_string().contains("x-herald-reconciled"), "{log}");
    assert!(!log.to_string().contains(API_KEY));
    let shown = s.client.get(&format!("/app/{app}/source/{src}"), 200).await;
    assert_eq!(
        shown["poll"]["headers"]["Authorization"], "********",
        "{shown}"
    );
    s.stop().await;
}
both_backends!(
    stripe_poll_forwards_missed_events_once,
    stripe_poll_forwards_missed_events_once_sqlite,
    stripe_poll_forwards_missed_events_once_postgres
);

/// A webhook that came first is not forwarded again when the list shows it later.
async fn webhook_first_then_poll_forwards_once(backend: Backend) {
    let Some(Setup { s, p, rx, app }) = setup(backend, 10).await else {
        return;
    };
    let src = stripe_source(&s, &app, &p).await;
    wait_first_success(&s, &app, &src, "the first (empty) poll").await;

    let a = p.stripe_event("evt_a");
    let (code, _) = stripe_webhook(&s, &src, &a).await;
    assert_eq!(code, 202);
    p.stripe_event("evt_b");
    poll_once(&s, &app, &src).await;
    rx.wait_for(2).await;
    poll_once(&s, &app, &src).await;
    assert_eq!(
        message_count(&s, &app).await,
        2,
        "evt_a by webhook, evt_b by poll, once each"
    );
    s.stop().await;
}
both_backends!(
    webhook_first_then_poll_forwards_once,
    webhook_first_then_poll_forwards_once_sqlite,
    webhook_first_then_poll_forwards_once_postgres
);

/// GitHub hook deliveries: paged by `Link`, the payload fetched per delivery, deduplicated on
/// `guid` = `X-GitHub-Delivery` against webhooks.
async fn github_deliveries_reconcile(backend: Backend) {
    let Some(Setup { s, p, rx, app }) = setup(backend, 2).await else {
        return;
    };
    // Webhook first for delivery 1.
    let payload1 = p.github_delivery(1, "guid-1");
    let src = s
        .client
        .post(
            &format!("/app/{app}/source"),
            json!({"name": "gh", "verification": {"scheme": "github", "secrets": [GITHUB_SECRET]},
                "poll": {"preset": "github", "url": p.url("/repos/o/r/hooks/1/deliveries"),
                    "intervalSeconds": 3600, "headers": {"Authorization": format!("Bearer {API_KEY}")}}}),
            201,
        )
        .await;
    let src = id_of(&src);
    // The creation's first run may race the webhook: either way, one message for guid-1.
    let (code, _) = github_webhook(&s, &src, &payload1, "guid-1").await;
    assert!(code == 202 || code == 200, "{code}");
    wait_first_success(&s, &app, &src, "the first poll").await;
    for i in 2..=5 {
        p.github_delivery(i, &format!("guid-{i}"));
    }
    poll_once(&s, &app, &src).await;
    let got = rx.wait_for(5).await;
    poll_once(&s, &app, &src).await;
    assert_eq!(message_count(&s, &app).await, 5);
    let numbers: HashSet<i64> = got
        .iter()
        .map(|r| {
            serde_json::from_slice::<Value>(&r.body).unwrap()["number"]
                .as_i64()
                .unwrap()
        })
        .collect();
    assert_eq!(numbers, (1..=5).collect());
    assert!(got
        .iter()
        .all(|r| r.header("X-GitHub-Event") == Some("pull_request")));
    assert!(got
        .iter()
        .all(|r| r.header("X-Hub-Signature-256").is_none()));
    // Polled first, webhook later: a duplicate.
    let late = p.state.github.lock()[0].1.clone();
    let (code, out) = github_webhook(&s, &src, &late, "guid-5").await;
    assert_eq!((code, out["duplicate"].clone()), (200, json!(true)));
    s.stop().await;
}
both_backends!(
    github_deliveries_reconcile,
    github_deliveries_reconcile_sqlite,
    github_deliveries_reconcile_postgres
);

/// A failing provider is recorded on the source (error, failures) while webhooks go on; a
/// later success clears the failure count.
async fn provider_failures_are_recorded_not_blocking(backend: Backend) {
    let Some(Setup { s, p, rx, app }) = setup(backend, 10).await else {
        return;
    };
    p.set_mode(Mode::Status500);
    let src = stripe_source(&s, &app, &p).await;
    let st = eventually(WAIT, "a failed run", || async {
        let v = status_of(&s, &app, &src).await;
        (v["consecutiveFailures"].as_u64() >= Some(1)).then_some(v)
    })
    .await;
    assert!(st["lastError"].as_str().unwrap().contains("500"), "{st}");

    let ev = json!({"id": "evt_hook", "type": "charge.failed", "created": unix_now()});
    assert_eq!(stripe_webhook(&s, &src, &ev).await.0, 202);

    p.set_mode(Mode::Garbage);
    let st = poll_once(&s, &app, &src).await;
    assert!(
        st["lastError"].as_str().unwrap().contains("not JSON"),
        "{st}"
    );
    assert!(st["consecutiveFailures"].as_u64() >= Some(2));
    p.set_mode(Mode::Huge);
    let st = poll_once(&s, &app, &src).await;
    assert!(
        st["lastError"].as_str().unwrap().contains("larger than"),
        "{st}"
    );

    p.set_mode(Mode::Ok);
    p.stripe_event("evt_after");
    let st = poll_once(&s, &app, &src).await;
    assert_eq!(st["consecutiveFailures"], 0, "{st}");
    rx.wait_for(2).await;
    assert!(!st.to_string().contains(API_KEY));
    s.stop().await;
}
both_backends!(
    provider_failures_are_recorded_not_blocking,
    provider_failures_are_recorded_not_blocking_sqlite,
    provider_failures_are_recorded_not_blocking_postgres
);

/// PATCH: a poll without `headers` keeps them; `null` stops polling (no `pollStatus`).
async fn patch_keeps_headers_and_null_stops(backend: Backend) {
    let Some(s) = server(backend).await else {
        return;
    };
    let p = Provider::start(10).await;
    let app = s.client.create_app("recon").await;
    let src = stripe_source(&s, &app, &p).await;
    let path = format!("/app/{app}/source/{src}");
    s.client
        .patch(&path, json!({"poll": {"preset": "stripe", "url": p.url("/v1/events"), "intervalSeconds": 600}}), 200)
        .await;
    poll_once(&s, &app, &src).await;
    assert_eq!(p.auth_seen().last().unwrap(), &format!("Bearer {API_KEY}"));
    let out = s.client.patch(&path, json!({"poll": null}), 200).await;
    assert!(
        out.get("poll").is_none() && out.get("pollStatus").is_none(),
        "{out}"
    );
    s.client.post(&format!("{path}/poll"), json!({}), 409).await;
    s.stop().await;
}
both_backends!(
    patch_keeps_headers_and_null_stops,
    patch_keeps_headers_and_null_stops_sqlite,
    patch_keeps_headers_and_null_stops_postgres
);

// ---- hostile input ---------------------------------------------------------------------------

#[tokio::test]
async fn hostile_poll_objects_are_422() {
    let s = TestServer::start(|_| {}).await;
    let app = s.client.create_app("recon").await;
    let base = |poll: Value| json!({"name": "x", "verification": {"scheme": "stripe", "secrets": ["whsec_x"]}, "poll": poll});
    let generic = |extra: Value| {
        let mut p = json!({"url": "http://127.0.0.1:9/list", "itemsPath": "data", "idPath": "id"});
        for (k, v) in extra.as_object().unwrap() {
            p[k] = v.clone();
        }
        p
    };
    let cases = vec![
        (
            "interval 0",
            generic(json!({"intervalSeconds": 0})),
            "intervalSeconds",
        ),
        (
            "interval huge",
            generic(json!({"intervalSeconds": 10_000_000})),
            "intervalSeconds",
        ),
        (
            "file url",
            generic(json!({"url": "file:///etc/passwd"})),
            "url",
        ),
        (
            "ftp url",
            generic(json!({"url": "ftp://127.0.0.1/x"})),
            "url",
        ),
        (
            "private address",
            generic(json!({"url": "http://10.1.2.3/list"})),
            "url",
        ),
        (
            "metadata address",
            generic(json!({"url": "http://169.254.169.254/latest"})),
            "url",
        ),
        ("bad path", generic(json!({"idPath": "a..b"})), "idPath"),
        (
            "long path",
            generic(json!({"itemsPath": "a.".repeat(300)})),
            "itemsPath",
        ),
        (
            "cursor half",
            generic(json!({"cursorParam": "after"})),
            "cursorParam",
        ),
        (
            "no items",
            json!({"url": "http://127.0.0.1:9/x", "idPath": "id"}),
            "itemsPath",
        ),
        ("pages", generic(json!({"maxPages": 1000})), "maxPages"),
        (
            "header name",
            generic(json!({"headers": {"bad header": "x"}})),
            "headers",
        ),
        (
            "header value",
            generic(json!({"headers": {"X-Key": "a\nb"}})),
            "headers",
        ),
        (
            "huge",
            generic(json!({"headers": {"X-Big": "a".repeat(70_000)}})),
            "poll",
        ),
        ("unknown field", generic(json!({"surprise": true})), "poll"),
        ("preset", json!({"preset": "paypal"}), "poll"),
        ("not an object", json!([1, 2, 3]), "poll"),
        ("github without url", json!({"preset": "github"}), "url"),
    ];
    for (what, poll, field) in cases {
        let r = create_source_refused(&s, &app, &base(poll)).await;
        assert!(r.text.contains(field), "{what}: {}", r.text);
        assert!(
            !r.text.contains("aaaaaaaaaa"),
            "{what}: the value is not echoed"
        );
    }
    // Deeply nested JSON never reaches the checks.
    let mut deep = String::new();
    for _ in 0..5_000 {
        deep.push_str("{\"a\":");
    }
    deep.push('1');
    for _ in 0..5_000 {
        deep.push('}');
    }
    let body = format!(r#"{{"name":"x","verification":{{"scheme":"none"}},"poll":{deep}}}"#);
    let status = s
        .client
        .req(Method::POST, &format!("/app/{app}/source"))
        .header("content-type", "application/json")
        .body(body)
        .send()
        .await
        .unwrap()
        .status()
        .as_u16();
    assert!((400..500).contains(&status), "{status}");
    s.stop().await;
}

#[tokio::test]
async fn loopback_poll_needs_the_allow_list() {
    let s = TestServer::start_without_allow_list().await;
    let app = s.client.create_app("recon").await;
    let body = json!({"name": "x", "verification": {"scheme": "stripe", "secrets": ["whsec_x"]},
        "poll": {"preset": "stripe", "url": "http://127.0.0.1:9/v1/events"}});
    let r = create_source_refused(&s, &app, &body).await;
    assert!(r.text.contains("url"), "{}", r.text);
    s.stop().await;
}
