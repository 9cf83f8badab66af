//! The harness every test in this binary shares: a real Herald on `127.0.0.1:0`
//! ([`TestServer`]), a client that asserts the expected status of every call ([`Client`]), a
//! real webhook receiver whose answers can be scripted ([`Receiver`]), bounded polling
//! ([`eventually`]) and an independent Standard Webhooks verifier (it deliberately does not use
//! `herald_core::signing`, so a signing bug cannot hide behind the same code).

#![allow(dead_code)]

use parking_lot::Mutex;
use std::collections::{HashMap, VecDeque};
use std::future::Future;
use std::net::SocketAddr;
use std::sync::{Arc, Once};
use std::time::{Duration, Instant};

use axum::body::Bytes;
use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderName, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Router;
use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine as _;
use herald_core::config::Config;
use hmac::{Hmac, Mac};
use reqwest::Method;
use serde_json::{json, Value};
use sha2::Sha256;
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinHandle;

/// The admin token every test server is configured with.
pub const ADMIN_TOKEN: &str = "test-admin-token-0123456789";
/// Upper bound for anything a test waits for. Generous: it only bounds a failure, it is never
/// a measurement.
pub const WAIT: Duration = Duration::from_secs(30);
/// Delivery request timeout of test servers (the lease, 30 s, must exceed it).
pub const REQUEST_TIMEOUT_MS: u64 = 3_000;

static LOGGING: Once = Once::new();

/// `HERALD_TEST_LOG=debug cargo test …` shows the servers' logs.
fn init_logging() {
    LOGGING.call_once(|| {
        if let Ok(filter) = std::env::var("HERALD_TEST_LOG") {
            let _ = tracing_subscriber::fmt()
                .with_env_filter(tracing_subscriber::EnvFilter::new(filter))
                .with_test_writer()
                .try_init();
        }
    });
}

// ---- server ----------------------------------------------------------------------------------

/// A Herald instance running in this process on its own temporary data directory.
pub struct TestServer {
    pub addr: SocketAddr,
    /// Authenticated with the admin token.
    pub client: Client,
    shutdown: watch::Sender<bool>,
    task: Option<JoinHandle<Result<(), String>>>,
    dir: Option<tempfile::TempDir>,
}

impl TestServer {
    /// Starts Herald with the test defaults (allow-listed loopback, retry schedule `[1,1,1]` s,
    /// 3 s request timeout, 30 s lease), adjusted by `extra`, and waits until it answers.
    pub async fn start(extra: impl FnOnce(&mut Config)) -> Self {
        let dir = tempfile::tempdir().expect("create temp data dir");
        Self::start_in(dir, extra).await
    }

    /// Starts Herald on an existing data directory (see [`TestServer::restart`]).
    pub async fn start_in(dir: tempfile::TempDir, extra: impl FnOnce(&mut Config)) -> Self {
        init_logging();
        let mut cfg = Config {
            data_dir: dir.path().to_path_buf(),
            admin_token: Some(ADMIN_TOKEN.to_string()),
            allow_networks: vec!["127.0.0.0/8".parse().expect("static CIDR")],
            retry_schedule: vec![1, 1, 1],
            lease_seconds: 30,
            request_timeout_ms: REQUEST_TIMEOUT_MS,
            ..Config::default()
        };
        extra(&mut cfg);
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind 127.0.0.1:0");
        let addr = listener.local_addr().expect("local addr");
        cfg.listen = addr;
        let (tx, rx) = watch::channel(false);
        let task = tokio::spawn(async move {
            herald::run(cfg, Some(listener), rx, |_| {})
                .await
                .map_err(|e| format!("{e:#}"))
        });
        let mut server = Self {
            addr,
            client: Client::new(format!("http://{addr}"), Some(ADMIN_TOKEN)),
            shutdown: tx,
            task: Some(task),
            dir: Some(dir),
        };
        let deadline = Instant::now() + WAIT;
        loop {
            if server.task.as_ref().is_some_and(|t| t.is_finished()) {
                let res = server.task.take().expect("server task").await;
                panic!("herald::run ended during start-up: {res:?}");
            }
            if server.client.status_of(Method::GET, "/health").await == Some(200) {
                break;
            }
            assert!(Instant::now() < deadline, "Herald did not answer /health");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        server
    }

    /// The same server without `allow_networks`: loopback and private ranges are refused.
    pub async fn start_without_allow_list() -> Self {
        Self::start(|c| c.allow_networks.clear()).await
    }

    /// Signals shutdown and waits for `herald::run` to return successfully.
    pub async fn stop(mut self) {
        self.shutdown_and_wait().await;
    }

    /// Stops this server and starts a new one on the same data directory, configured by the
    /// test defaults and `extra` (the admin token stays the same).
    pub async fn restart(mut self, extra: impl FnOnce(&mut Config)) -> Self {
        self.shutdown_and_wait().await;
        let dir = self.dir.take().expect("data dir");
        Self::start_in(dir, extra).await
    }

    /// The server's data directory.
    pub fn data_dir(&self) -> std::path::PathBuf {
        self.dir.as_ref().expect("data dir").path().to_path_buf()
    }

    /// Stops this server and hands back its data directory.
    pub async fn stop_keep_dir(mut self) -> tempfile::TempDir {
        self.shutdown_and_wait().await;
        self.dir.take().expect("data dir")
    }

    async fn shutdown_and_wait(&mut self) {
        let _ = self.shutdown.send(true);
        let task = self.task.take().expect("server task");
        let res = tokio::time::timeout(Duration::from_secs(60), task)
            .await
            .expect("Herald did not stop within 60 s")
            .expect("server task panicked");
        res.expect("herald::run failed");
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        let _ = self.shutdown.send(true);
    }
}

// ---- client ----------------------------------------------------------------------------------

/// An answer from Herald.
#[derive(Debug)]
pub struct Resp {
    pub status: u16,
    pub headers: reqwest::header::HeaderMap,
    /// The raw body text, for byte-exact assertions.
    pub text: String,
    /// The body parsed as JSON (`Null` when empty or not JSON).
    pub json: Value,
}

/// Raw HTTP access to Herald's API. Every call names the status it expects and panics on any
/// other; every error answer is checked for the `{code, detail}` shape.
#[derive(Clone)]
pub struct Client {
    http: reqwest::Client,
    pub base: String,
    token: Option<String>,
}

impl Client {
    // Talking to Herald itself, not to a webhook endpoint: no SSRF guard needed. Proxies from
    // the environment are ignored so that a CI proxy cannot intercept loopback traffic.
    #[allow(clippy::disallowed_methods)]
    pub fn new(base: String, token: Option<&str>) -> Self {
        let http = reqwest::Client::builder()
            .no_proxy()
            .redirect(reqwest::redirect::Policy::none())
            .timeout(Duration::from_secs(30))
            .build()
            .expect("build test client");
        Self {
            http,
            base,
            token: token.map(str::to_string),
        }
    }

    /// The same client with another bearer token.
    pub fn with_token(&self, token: &str) -> Self {
        Self {
            token: Some(token.to_string()),
            ..self.clone()
        }
    }

    /// The same client without an `Authorization` header.
    pub fn anonymous(&self) -> Self {
        Self {
            token: None,
            ..self.clone()
        }
    }

    /// `path` is relative to `/api/v1` unless it starts with `//` (then relative to the root).
    pub fn url(&self, path: &str) -> String {
        match path.strip_prefix("//") {
            Some(rest) => format!("{}/{rest}", self.base),
            None => format!("{}/api/v1{path}", self.base),
        }
    }

    pub fn req(&self, method: Method, path: &str) -> reqwest::RequestBuilder {
        let rb = self.http.request(method, self.url(path));
        match &self.token {
            Some(t) => rb.bearer_auth(t),
            None => rb,
        }
    }

    /// Sends `rb` and asserts the answer's status is `expect`.
    pub async fn send(&self, rb: reqwest::RequestBuilder, expect: u16) -> Resp {
        let req = rb.build().expect("build request");
        let what = format!("{} {}", req.method(), req.url());
        let resp = self
            .http
            .execute(req)
            .await
            .unwrap_or_else(|e| panic!("{what}: request failed: {e}"));
        let status = resp.status().as_u16();
        let headers = resp.headers().clone();
        let text = resp.text().await.expect("read body");
        let json = serde_json::from_str(&text).unwrap_or(Value::Null);
        assert_eq!(status, expect, "{what} answered {status}: {text}");
        if status >= 400 {
            assert_error_body(&json, &what);
        }
        Resp {
            status,
            headers,
            text,
            json,
        }
    }

    /// The status of a request, or `None` when nothing answered.
    pub async fn status_of(&self, method: Method, path: &str) -> Option<u16> {
        self.req(method, path)
            .send()
            .await
            .ok()
            .map(|r| r.status().as_u16())
    }

    pub async fn get(&self, path: &str, expect: u16) -> Value {
        self.send(self.req(Method::GET, path), expect).await.json
    }

    pub async fn post(&self, path: &str, body: Value, expect: u16) -> Value {
        self.send(self.req(Method::POST, path).json(&body), expect)
            .await
            .json
    }

    pub async fn put(&self, path: &str, body: Value, expect: u16) -> Value {
        self.send(self.req(Method::PUT, path).json(&body), expect)
            .await
            .json
    }

    pub async fn patch(&self, path: &str, body: Value, expect: u16) -> Value {
        self.send(self.req(Method::PATCH, path).json(&body), expect)
            .await
            .json
    }

    pub async fn delete(&self, path: &str, expect: u16) -> Value {
        self.send(self.req(Method::DELETE, path), expect).await.json
    }

    /// POSTs `body` verbatim as `application/json`.
    pub async fn post_raw(&self, path: &str, body: impl Into<reqwest::Body>, expect: u16) -> Resp {
        let rb = self
            .req(Method::POST, path)
            .header("content-type", "application/json")
            .body(body);
        self.send(rb, expect).await
    }

    // ---- resource helpers ----

    /// Creates an application and returns its ID.
    pub async fn create_app(&self, name: &str) -> String {
        let app = self.post("/app", json!({ "name": name }), 201).await;
        id_of(&app)
    }

    /// Creates an endpoint from `body` and returns the endpoint as served.
    pub async fn create_endpoint(&self, app: &str, body: Value) -> Value {
        self.post(&format!("/app/{app}/endpoint"), body, 201).await
    }

    /// Creates an endpoint for `url` and returns its ID.
    pub async fn endpoint_for(&self, app: &str, url: &str) -> String {
        id_of(&self.create_endpoint(app, json!({ "url": url })).await)
    }

    /// Publishes a message and returns its ID.
    pub async fn publish(&self, app: &str, body: Value) -> String {
        id_of(&self.post(&format!("/app/{app}/msg"), body, 202).await)
    }

    /// Publishes `{"eventType": "t", "payload": {}}`, the message of tests whose content does
    /// not matter, and returns its ID.
    pub async fn publish_empty(&self, app: &str) -> String {
        self.publish(app, json!({"eventType": "t", "payload": {}}))
            .await
    }

    /// Creates an endpoint for `url` with an empty retry schedule (its first failure is final)
    /// and returns its ID.
    pub async fn endpoint_without_retries(&self, app: &str, url: &str) -> String {
        id_of(
            &self
                .create_endpoint(app, json!({"url": url, "retrySchedule": []}))
                .await,
        )
    }

    /// Publishes an empty message, waits until its delivery to `ep` has failed for good
    /// (status 2) and returns the message's attempts, oldest first.
    pub async fn publish_until_failed(&self, app: &str, ep: &str) -> Vec<Value> {
        let msg = self.publish_empty(app).await;
        self.wait_delivery(app, &msg, ep, 2).await;
        self.attempts_of_msg(app, &msg).await
    }

    /// The endpoint's current signing secret (`whsec_…`).
    pub async fn secret(&self, app: &str, ep: &str) -> String {
        let v = self
            .get(&format!("/app/{app}/endpoint/{ep}/secret"), 200)
            .await;
        v["key"].as_str().expect("secret key").to_string()
    }

    /// All attempts of a message, oldest first.
    pub async fn attempts_of_msg(&self, app: &str, msg: &str) -> Vec<Value> {
        let v = self
            .get(&format!("/app/{app}/attempt/msg/{msg}?limit=250"), 200)
            .await;
        let mut list = v["data"].as_array().expect("attempt list").clone();
        list.sort_by(|a, b| a["id"].as_str().cmp(&b["id"].as_str()));
        list
    }

    /// The delivery status (0 success, 1 pending, 2 fail, 3 sending) of `msg` at `ep`.
    pub async fn delivery_status(&self, app: &str, msg: &str, ep: &str) -> Option<i64> {
        let v = self
            .get(&format!("/app/{app}/msg/{msg}/endpoint"), 200)
            .await;
        v["data"]
            .as_array()
            .expect("delivery list")
            .iter()
            .find(|d| d["id"] == ep)
            .and_then(|d| d["status"].as_i64())
    }

    /// Waits until the delivery of `msg` to `ep` has `status`.
    pub async fn wait_delivery(&self, app: &str, msg: &str, ep: &str, status: i64) {
        eventually(WAIT, &format!("delivery {msg} -> {ep} with status {status}"), || async move {
            (self.delivery_status(app, msg, ep).await == Some(status)).then_some(())
        })
        .await
    }

    /// Waits until `msg` has at least `n` attempts and returns them, oldest first.
    pub async fn wait_attempts(&self, app: &str, msg: &str, n: usize) -> Vec<Value> {
        eventually(WAIT, &format!("{n} attempts of {msg}"), || async move {
            let list = self.attempts_of_msg(app, msg).await;
            (list.len() >= n).then_some(list)
        })
        .await
    }
}

/// Runs `cmd` with `stdin` written to its standard input (stdout and stderr captured) and
/// waits for it to exit.
pub fn output_with_stdin(cmd: &mut std::process::Command, stdin: &[u8]) -> std::process::Output {
    use std::io::Write as _;
    use std::process::Stdio;
    let mut child = cmd
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run herald verify");
    child.stdin.take().unwrap().write_all(stdin).unwrap();
    child.wait_with_output().unwrap()
}

/// The `id` field of a resource.
pub fn id_of(v: &Value) -> String {
    v["id"]
        .as_str()
        .unwrap_or_else(|| panic!("no id in {v}"))
        .to_string()
}

/// Every error answer carries a non-empty `code` and a `detail` (text, or the 422 list).
pub fn assert_error_body(v: &Value, what: &str) {
    let code_ok = v
        .get("code")
        .and_then(Value::as_str)
        .is_some_and(|c| !c.is_empty());
    assert!(code_ok, "{what}: error body lacks `code`: {v}");
    let detail_ok = match v.get("detail") {
        Some(Value::String(s)) => !s.is_empty(),
        Some(Value::Array(a)) => !a.is_empty(),
        _ => false,
    };
    assert!(detail_ok, "{what}: error body lacks `detail`: {v}");
}

/// Current Unix time in seconds.
pub fn unix_now() -> i64 {
    chrono::Utc::now().timestamp()
}

/// RFC 3339 time `secs` seconds ago (for `since` parameters).
pub fn rfc3339_ago(secs: i64) -> String {
    (chrono::Utc::now() - chrono::Duration::seconds(secs)).to_rfc3339()
}

// ---- polling ---------------------------------------------------------------------------------

/// Calls `probe` every 50 ms until it returns `Some`, and returns that value; panics naming
/// `what` when `timeout` passes first. Bounds a wait; asserts nothing about timing.
pub async fn eventually<T, F, Fut>(timeout: Duration, what: &str, mut probe: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(v) = probe().await {
            return v;
        }
        assert!(
            Instant::now() < deadline,
            "timed out after {timeout:?} waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

// ---- receiver --------------------------------------------------------------------------------

/// How the receiver answers one request.
#[derive(Clone, Debug)]
pub enum Reply {
    /// This status, empty body.
    Status(u16),
    /// This status with these headers (e.g. `Retry-After`, `Location`).
    WithHeaders(u16, Vec<(&'static str, String)>),
    /// Sleeps, then answers with the status (to provoke Herald's request timeout).
    Sleep(Duration, u16),
    /// 500 for every `n`-th request the receiver has seen (counting all paths), else 204.
    EveryNthFails(usize),
    /// 500 for the first `n` requests to this path, then 204 (use with `set_path_reply`).
    FailFirst(usize),
}

/// Requests being answered right now, and the most ever at once.
#[derive(Default)]
struct Concurrency {
    now: HashMap<String, usize>,
    max: HashMap<String, usize>,
    total_now: usize,
    total_max: usize,
}

/// Counts a request as in flight until dropped — also when Herald gives up and the handler is
/// cancelled.
struct InFlight {
    st: Arc<RecvState>,
    path: String,
}

impl Drop for InFlight {
    fn drop(&mut self) {
        let mut c = self.st.conc.lock();
        if let Some(n) = c.now.get_mut(&self.path) {
            *n -= 1;
        }
        c.total_now -= 1;
    }
}

/// One request the receiver got.
#[derive(Clone, Debug)]
pub struct Recorded {
    pub method: String,
    pub path: String,
    pub headers: HeaderMap,
    pub body: Bytes,
    pub at: Instant,
}

impl Recorded {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    pub fn body_text(&self) -> &str {
        std::str::from_utf8(&self.body).expect("UTF-8 body")
    }
}

struct RecvState {
    log: Mutex<Vec<Recorded>>,
    script: Mutex<VecDeque<Reply>>,
    default: Mutex<Reply>,
    per_path: Mutex<HashMap<String, Reply>>,
    conc: Mutex<Concurrency>,
    count: watch::Sender<usize>,
}

/// A real HTTP server on `127.0.0.1:0` that records every request and answers from a script
/// (then from a default, 204 unless changed).
pub struct Receiver {
    pub addr: SocketAddr,
    state: Arc<RecvState>,
    task: JoinHandle<()>,
}

impl Receiver {
    pub async fn start() -> Self {
        let state = Arc::new(RecvState {
            log: Mutex::new(Vec::new()),
            script: Mutex::new(VecDeque::new()),
            default: Mutex::new(Reply::Status(204)),
            per_path: Mutex::new(HashMap::new()),
            conc: Mutex::new(Concurrency::default()),
            count: watch::channel(0).0,
        });
        let router = Router::new()
            .fallback(record)
            .layer(axum::extract::DefaultBodyLimit::disable())
            .with_state(state.clone());
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind receiver");
        let addr = listener.local_addr().expect("receiver addr");
        let task = tokio::spawn(async move {
            let _ = axum::serve(listener, router).await;
        });
        Self { addr, state, task }
    }

    /// `http://127.0.0.1:PORT/`
    pub fn url(&self) -> String {
        format!("http://{}/", self.addr)
    }

    /// `http://127.0.0.1:PORT/<path>`
    pub fn url_path(&self, path: &str) -> String {
        format!("http://{}/{}", self.addr, path.trim_start_matches('/'))
    }

    /// Queues `reply` for the next request not yet answered from the script.
    pub fn then(&self, reply: Reply) -> &Self {
        self.state.script.lock().push_back(reply);
        self
    }

    /// The answer once the script is used up.
    pub fn set_default(&self, reply: Reply) {
        *self.state.default.lock() = reply;
    }

    /// How requests to `path` are answered (wins over the script and the default).
    pub fn set_path_reply(&self, path: &str, reply: Reply) {
        self.state.per_path.lock().insert(path.to_string(), reply);
    }

    /// Requests to `path` being answered right now.
    pub fn in_flight(&self, path: &str) -> usize {
        let c = self.state.conc.lock();
        c.now.get(path).copied().unwrap_or(0)
    }

    /// The most requests to `path` ever answered at once.
    pub fn max_in_flight(&self, path: &str) -> usize {
        let c = self.state.conc.lock();
        c.max.get(path).copied().unwrap_or(0)
    }

    /// The most requests (all paths) ever answered at once.
    pub fn max_in_flight_total(&self) -> usize {
        self.state.conc.lock().total_max
    }

    pub fn requests(&self) -> Vec<Recorded> {
        self.state.log.lock().clone()
    }

    pub fn count(&self) -> usize {
        self.state.log.lock().len()
    }

    /// Requests whose path is `path`.
    pub fn requests_to(&self, path: &str) -> Vec<Recorded> {
        self.requests()
            .into_iter()
            .filter(|r| r.path == path)
            .collect()
    }

    /// Waits until at least `n` requests arrived and returns all of them.
    pub async fn wait_for(&self, n: usize) -> Vec<Recorded> {
        let mut rx = self.state.count.subscribe();
        tokio::time::timeout(WAIT, rx.wait_for(|c| *c >= n))
            .await
            .unwrap_or_else(|_| {
                panic!(
                    "receiver {} got {} requests, expected at least {n}",
                    self.addr,
                    self.count()
                )
            })
            .expect("receiver state dropped");
        self.requests()
    }
}

impl Drop for Receiver {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn record(State(st): State<Arc<RecvState>>, req: Request) -> Response {
    let (parts, body) = req.into_parts();
    let path = parts.uri.path().to_string();
    let _guard = {
        let mut c = st.conc.lock();
        let n = c.now.entry(path.clone()).or_default();
        *n += 1;
        let n = *n;
        let m = c.max.entry(path.clone()).or_default();
        *m = (*m).max(n);
        c.total_now += 1;
        c.total_max = c.total_max.max(c.total_now);
        InFlight {
            st: st.clone(),
            path: path.clone(),
        }
    };
    let body = axum::body::to_bytes(body, usize::MAX)
        .await
        .unwrap_or_default();
    let rec = Recorded {
        method: parts.method.to_string(),
        path: parts.uri.path().to_string(),
        headers: parts.headers,
        body,
        at: Instant::now(),
    };
    let reply = match st.per_path.lock().get(&path).cloned() {
        Some(r) => r,
        None => {
            let next = st.script.lock().pop_front();
            next.unwrap_or_else(|| st.default.lock().clone())
        }
    };
    let (seen, seen_on_path) = {
        let mut log = st.log.lock();
        log.push(rec);
        st.count.send_replace(log.len());
        (log.len(), log.iter().filter(|r| r.path == path).count())
    };
    let status = |s: u16| StatusCode::from_u16(s).expect("valid status");
    match reply {
        Reply::Status(s) => status(s).into_response(),
        Reply::WithHeaders(s, headers) => {
            let mut resp = status(s).into_response();
            for (k, v) in headers {
                resp.headers_mut().insert(
                    HeaderName::from_static(k),
                    HeaderValue::from_str(&v).expect("header value"),
                );
            }
            resp
        }
        Reply::Sleep(d, s) => {
            tokio::time::sleep(d).await;
            status(s).into_response()
        }
        Reply::EveryNthFails(n) if seen % n == 0 => status(500).into_response(),
        Reply::EveryNthFails(_) => status(204).into_response(),
        Reply::FailFirst(n) if seen_on_path <= n => status(500).into_response(),
        Reply::FailFirst(_) => status(204).into_response(),
    }
}

// ---- signatures (independent of herald_core::signing) ----------------------------------------

pub fn hmac_sha256(key: &[u8], data: &[u8]) -> Vec<u8> {
    let mut mac = Hmac::<Sha256>::new_from_slice(key).expect("any key length");
    mac.update(data);
    mac.finalize().into_bytes().to_vec()
}

pub fn to_hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// The HMAC key of a `whsec_<base64>` secret.
pub fn secret_key(secret: &str) -> Vec<u8> {
    let b64 = secret.strip_prefix("whsec_").unwrap_or(secret);
    B64.decode(b64).expect("secret is base64")
}

/// `v1,<base64 HMAC-SHA256(key, "{id}.{ts}.{body}")>` per the Standard Webhooks spec.
pub fn standard_signature(secret: &str, id: &str, ts: &str, body: &[u8]) -> String {
    let mut content = format!("{id}.{ts}.").into_bytes();
    content.extend_from_slice(body);
    format!(
        "v1,{}",
        B64.encode(hmac_sha256(&secret_key(secret), &content))
    )
}

/// The signatures of a `webhook-signature` header, in order.
pub fn signatures(header: &str) -> Vec<String> {
    header
        .split(' ')
        .filter(|s| !s.is_empty())
        .map(String::from)
        .collect()
}

/// Verifies a request signed with the Standard Webhooks scheme under header prefix `prefix`
/// (`webhook` or `svix`) the way a receiver would: id equals `msg_id`, timestamp within 5 min
/// of now, and one `v1` signature made with `secret`.
pub fn assert_standard_signed(rec: &Recorded, prefix: &str, secret: &str, msg_id: &str) {
    let h = |n: &str| {
        rec.header(&format!("{prefix}-{n}"))
            .unwrap_or_else(|| panic!("missing {prefix}-{n} header"))
            .to_string()
    };
    let (id, ts, sig) = (h("id"), h("timestamp"), h("signature"));
    assert_eq!(id, msg_id, "{prefix}-id is the message id");
    let t: i64 = ts.parse().expect("timestamp is integer seconds");
    assert!(
        (unix_now() - t).abs() <= 300,
        "timestamp {t} is not within 5 minutes of now"
    );
    let expected = standard_signature(secret, &id, &ts, &rec.body);
    assert!(
        signatures(&sig).contains(&expected),
        "no signature in `{sig}` verifies with the endpoint secret"
    );
}
