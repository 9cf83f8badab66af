//! Operational hardening, one test per defect of the hardening issue, named after it:
//! connection timeouts (7), start-up next to Kubernetes service variables and offline commands
//! without configuration (9), health after a failed write (13a) and the attempt error of a
//! reset connection (13b). Every peer is on 127.0.0.1; waits are bounded by `WAIT` and assert
//! outcomes, never durations.

use std::process::{Command, Stdio};
use std::sync::Arc;

use herald_api::{ApiConfig, AppState, ConnectionLimits};
use herald_core::ssrf::EgressPolicy;
use herald_store::{SqliteStore, Store};
use serde_json::json;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

use crate::common::{eventually, output_with_stdin, Client, TestServer, ADMIN_TOKEN, WAIT};

const BIN: &str = env!("CARGO_BIN_EXE_herald");
/// Small enough that the tests do not wait long, large enough for a loaded CI machine to
/// send a whole request in time when it means to.
const SHORT_MS: u64 = 300;

/// Reads until the server closes the connection (EOF or reset) and returns what it sent;
/// panics if it is still open after `WAIT`.
async fn read_until_closed(stream: &mut TcpStream) -> Vec<u8> {
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    let closed = tokio::time::timeout(WAIT, async {
        loop {
            match stream.read(&mut buf).await {
                Ok(0) | Err(_) => return,
                Ok(n) => got.extend_from_slice(&buf[..n]),
            }
        }
    })
    .await;
    assert!(
        closed.is_ok(),
        "the server kept the connection open; it sent: {}",
        String::from_utf8_lossy(&got)
    );
    got
}

// ---- defect 7: read timeouts -----------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn defect_07_a_request_head_that_stalls_half_way_is_closed() {
    let srv = TestServer::start(|c| c.header_read_timeout_ms = SHORT_MS).await;
    let mut stream = TcpStream::connect(srv.addr).await.unwrap();
    stream
        .write_all(b"POST /api/v1/app HTTP/1.1\r\nHost: herald\r\nContent-")
        .await
        .unwrap();
    let got = read_until_closed(&mut stream).await;
    assert!(
        got.is_empty() || got.starts_with(b"HTTP/1.1 408"),
        "a stalled head gets no answer but a close: {}",
        String::from_utf8_lossy(&got)
    );
    // The server itself is fine.
    srv.client.get("//healthz", 200).await;
    srv.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn defect_07_a_request_body_that_stalls_half_way_is_answered_408_and_closed() {
    let srv = TestServer::start(|c| c.body_read_timeout_ms = SHORT_MS).await;
    let mut stream = TcpStream::connect(srv.addr).await.unwrap();
    let head = format!(
        "POST /api/v1/app HTTP/1.1\r\nHost: herald\r\nAuthorization: Bearer {ADMIN_TOKEN}\r\n\
         Content-Type: application/json\r\nContent-Length: 100\r\n\r\n{{\"name\": \"sta"
    );
    stream.write_all(head.as_bytes()).await.unwrap();
    let got = String::from_utf8_lossy(&read_until_closed(&mut stream).await).into_owned();
    assert!(got.starts_with("HTTP/1.1 408"), "{got}");
    assert!(got.contains("request_timeout"), "{got}");
    // Nothing was created from the partial body.
    let apps = srv.client.get("/app", 200).await;
    assert_eq!(apps["data"].as_array().map(Vec::len), Some(0), "{apps}");
    srv.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn defect_07_an_idle_keep_alive_connection_is_closed() {
    // The head timeout is longer than any wait here, so only the idle cap can close it.
    let srv = TestServer::start(|c| {
        c.idle_timeout_ms = SHORT_MS;
        c.header_read_timeout_ms = 600_000;
    })
    .await;
    let mut stream = TcpStream::connect(srv.addr).await.unwrap();
    stream
        .write_all(b"GET /healthz HTTP/1.1\r\nHost: herald\r\n\r\n")
        .await
        .unwrap();
    // The answer comes, and the connection stays open for keep-alive until it idles out.
    let got = String::from_utf8_lossy(&read_until_closed(&mut stream).await).into_owned();
    assert!(got.starts_with("HTTP/1.1 200"), "{got}");
    assert!(
        !got.to_ascii_lowercase().contains("connection: close"),
        "the server closed for idleness, not after the answer: {got}"
    );
    srv.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn defect_07_keep_alive_requests_and_trailing_slashes_still_work() {
    let srv = TestServer::start(|c| c.idle_timeout_ms = 60_000).await;
    let c = &srv.client;
    // One pooled connection serves several requests; a trailing slash is accepted.
    for i in 0..3 {
        c.post("/app/", json!({ "name": format!("a{i}") }), 201)
            .await;
    }
    let apps = c.get("/app/", 200).await;
    assert_eq!(apps["data"].as_array().map(Vec::len), Some(3), "{apps}");
    srv.stop().await;
}

// ---- defect 9: Kubernetes service variables, offline commands -------------------------------

/// What a Service named `herald` injects into every pod of its namespace.
const KUBERNETES_SERVICE_ENV: [(&str, &str); 7] = [
    ("HERALD_SERVICE_HOST", "10.0.0.1"),
    ("HERALD_SERVICE_PORT", "8787"),
    ("HERALD_PORT", "tcp://10.0.0.1:8787"),
    ("HERALD_PORT_8787_TCP", "tcp://10.0.0.1:8787"),
    ("HERALD_PORT_8787_TCP_PROTO", "tcp"),
    ("HERALD_PORT_8787_TCP_PORT", "8787"),
    ("HERALD_PORT_8787_TCP_ADDR", "10.0.0.1"),
];

/// `herald` with none of this process's `HERALD_*` variables.
fn herald() -> Command {
    let mut cmd = Command::new(BIN);
    for (k, _) in std::env::vars_os() {
        if k.to_string_lossy().starts_with("HERALD_") {
            cmd.env_remove(k);
        }
    }
    cmd
}

/// Kills and reaps the child on drop, also when a test fails.
struct Child(Option<std::process::Child>);

impl Child {
    fn stop(mut self) -> std::process::Output {
        let mut c = self.0.take().expect("running");
        let _ = c.kill();
        c.wait_with_output().expect("reap herald")
    }
}

impl Drop for Child {
    fn drop(&mut self) {
        if let Some(mut c) = self.0.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

/// `herald serve` on a fresh data directory in `dir` and a free loopback port; the caller
/// adds environment and output handles.
fn serve_cmd(dir: &std::path::Path) -> (Command, u16) {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let mut cmd = herald();
    cmd.arg("serve")
        .current_dir(dir)
        .env("HERALD_DATA_DIR", dir.join("data"))
        .env("HERALD_LISTEN", format!("127.0.0.1:{port}"))
        .env("HERALD_ADMIN_TOKEN", ADMIN_TOKEN)
        .stdin(Stdio::null());
    (cmd, port)
}

/// Waits until the child answers health, failing if it exits first.
async fn wait_healthy(child: &mut Child, client: &Client) {
    eventually(WAIT, "herald serve answering /api/v1/health", || {
        let exited = child.0.as_mut().and_then(|c| c.try_wait().unwrap());
        let client = client.clone();
        async move {
            assert!(exited.is_none(), "herald serve exited: {exited:?}");
            (client.status_of(reqwest::Method::GET, "/health").await == Some(200)).then_some(())
        }
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn defect_09_kubernetes_service_env_vars_do_not_block_startup() {
    let dir = tempfile::tempdir().unwrap();
    let (mut cmd, port) = serve_cmd(dir.path());
    cmd.env("HERALD_LOG_FORMAT", "json")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    for (k, v) in KUBERNETES_SERVICE_ENV {
        cmd.env(k, v);
    }
    let mut child = Child(Some(cmd.spawn().expect("spawn herald serve")));
    let client = Client::new(format!("http://127.0.0.1:{port}"), None);
    wait_healthy(&mut child, &client).await;
    let out = child.stop();
    let log = String::from_utf8_lossy(&out.stderr);
    let warnings: Vec<&str> = log
        .lines()
        .filter(|l| l.contains("name no configuration key"))
        .collect();
    assert_eq!(warnings.len(), 1, "one warning line: {log}");
    for (k, _) in KUBERNETES_SERVICE_ENV {
        assert!(warnings[0].contains(k), "{k} is listed: {}", warnings[0]);
    }
}

/// Standard Webhooks reference vector (shared/spec/vectors.json).
const VECTOR_ARGS: [&str; 10] = [
    "--secret",
    "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",
    "-H",
    "webhook-id: msg_p5jXN8AQM9LWM0D4loKWxJek",
    "-H",
    "webhook-timestamp: 1614265330",
    "-H",
    "webhook-signature: v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=",
    "--now",
    "1614265330",
];

#[test]
fn defect_09_verify_works_with_a_broken_server_configuration() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("herald.toml"), "no_such_key = [").unwrap();
    let cases: [(&str, &str); 3] = [
        ("HERALD_RETRY_SCHEDULE", "garbage"),
        ("HERALD_CONFIG", "/nonexistent/herald.toml"),
        ("HERALD_SERVICE_HOST", "10.0.0.1"),
    ];
    for (k, v) in cases {
        let out = output_with_stdin(
            herald()
                .arg("verify")
                .args(VECTOR_ARGS)
                // A broken ./herald.toml is not read either.
                .current_dir(dir.path())
                .env(k, v),
            br#"{"test": 2432232314}"#,
        );
        assert_eq!(
            (
                out.status.code(),
                String::from_utf8_lossy(&out.stdout).as_ref()
            ),
            (Some(0), "valid\n"),
            "with {k}={v}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

#[test]
fn defect_09_serve_still_refuses_a_broken_setting() {
    let dir = tempfile::tempdir().unwrap();
    let out = herald()
        .arg("serve")
        .current_dir(dir.path())
        .env("HERALD_RETRY_SCHEDULE", "garbage")
        .stdin(Stdio::null())
        .output()
        .expect("run herald serve");
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("`retry_schedule`"), "{err}");
}

// ---- defect 13a: health after a failed write ------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn defect_13a_health_reports_the_last_write_failure_until_a_write_succeeds() {
    let dir = tempfile::tempdir().unwrap();
    let sqlite = SqliteStore::open(dir.path().join("herald.db")).unwrap();
    let store: Arc<dyn Store> = Arc::new(sqlite.clone());
    let state = AppState::new(
        store,
        ApiConfig {
            admin_token: ADMIN_TOKEN.into(),
            egress: EgressPolicy::default(),
            max_payload_bytes: 1 << 20,
            public_url: "http://127.0.0.1".into(),
            metrics: None,
            metrics_token: None,
            worker_heartbeat: None,
        },
        None,
        None,
    );
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(herald_api::serve(
        listener,
        herald_api::router(state),
        ConnectionLimits::default(),
        async move {
            let _ = stop_rx.await;
        },
    ));
    let c = Client::new(format!("http://{addr}"), Some(ADMIN_TOKEN));
    let app = c.create_app("full-disk").await;
    let health = c.get("/health", 200).await;
    assert_eq!(health["storage"], "ok", "{health}");

    // The file may not grow any more: a full disk, as SQLite sees it.
    sqlite.cap_file_pages(Some(1)).await.unwrap();
    let big = "x".repeat(64 * 1024);
    let mut refused = false;
    for _ in 0..200 {
        let resp = c
            .req(reqwest::Method::POST, &format!("/app/{app}/msg"))
            .json(&json!({"eventType": "t", "payload": {"fill": big}}))
            .send()
            .await
            .expect("publish answered");
        let status = resp.status().as_u16();
        if status == 503 {
            refused = true;
            break;
        }
        assert_eq!(status, 202, "{}", resp.text().await.unwrap_or_default());
    }
    assert!(refused, "publishes kept succeeding on a full database");
    // Not an error body: health answers its own shape with 503.
    let resp = c
        .req(reqwest::Method::GET, "/health")
        .send()
        .await
        .expect("health answered");
    assert_eq!(resp.status().as_u16(), 503);
    let health: serde_json::Value = resp.json().await.expect("health JSON");
    assert_eq!(health["status"], "unavailable", "{health}");
    assert_eq!(health["storage"], "degraded", "{health}");
    let detail = health["detail"].as_str().unwrap_or_default();
    assert!(
        detail.starts_with("last write failed at ") && detail.contains("full"),
        "{health}"
    );

    // Room again: the next write clears the report.
    sqlite.cap_file_pages(None).await.unwrap();
    let msg = c
        .publish(&app, json!({"eventType": "t", "payload": {"fill": big}}))
        .await;
    assert!(!msg.is_empty());
    let health = c.get("/health", 200).await;
    assert_eq!(health["storage"], "ok", "{health}");
    assert_eq!(health.get("detail"), None, "{health}");

    let _ = stop_tx.send(());
    tokio::time::timeout(WAIT, server)
        .await
        .expect("server stops")
        .expect("server task")
        .expect("serve");
}

// ---- defect 13b: the attempt error of a reset connection ------------------------------------

/// A receiver that accepts one connection, reads the request head, and resets the connection
/// without answering.
async fn resetting_receiver() -> (std::net::SocketAddr, tokio::task::JoinHandle<()>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let task = tokio::spawn(async move {
        // Bounded: Herald makes one attempt (no retries); a few spare turns for safety.
        for _ in 0..4 {
            let Ok((mut s, _)) = listener.accept().await else {
                return;
            };
            let mut got = Vec::new();
            let mut buf = [0u8; 4096];
            while !got.windows(4).any(|w| w == b"\r\n\r\n") {
                match s.read(&mut buf).await {
                    Ok(0) | Err(_) => break,
                    Ok(n) => got.extend_from_slice(&buf[..n]),
                }
            }
            // SO_LINGER 0: closing sends RST instead of FIN.
            s.set_zero_linger().unwrap();
            drop(s);
        }
    });
    (addr, task)
}

async fn single_attempt_error(srv: &TestServer, url: &str) -> serde_json::Value {
    let c = &srv.client;
    let app = c.create_app("a").await;
    let ep = c.endpoint_without_retries(&app, url).await;
    let attempts = c.publish_until_failed(&app, &ep).await;
    assert_eq!(attempts.len(), 1, "{attempts:?}");
    attempts[0].clone()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn defect_13b_a_reset_after_the_request_was_sent_is_a_request_error() {
    let srv = TestServer::start(|_| {}).await;
    let (addr, task) = resetting_receiver().await;
    let a = single_attempt_error(&srv, &format!("http://{addr}/hook")).await;
    assert_eq!(a["error"], "request_error", "{a}");
    assert!(
        a["response"]
            .as_str()
            .unwrap_or_default()
            .starts_with("request_error:"),
        "{a}"
    );
    task.abort();
    srv.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn defect_13b_a_refused_connection_is_still_a_connect_error() {
    let srv = TestServer::start(|_| {}).await;
    // A port nobody listens on any more.
    let addr = TcpListener::bind("127.0.0.1:0")
        .await
        .unwrap()
        .local_addr()
        .unwrap();
    let a = single_attempt_error(&srv, &format!("http://{addr}/hook")).await;
    assert_eq!(a["error"], "connect_error", "{a}");
    srv.stop().await;
}

/// Found by herald-torture's disk-full run: with stderr on a full disk, tracing-subscriber
/// reported each failed log write with `eprintln!`, which panicked inside the request being
/// logged, so every logged request lost its connection without an answer. `/dev/full` fails
/// every write the way a full disk does.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn defect_torture_01_a_log_that_cannot_be_written_never_fails_a_request() {
    let dir = tempfile::tempdir().unwrap();
    let full = std::fs::OpenOptions::new()
        .write(true)
        .open("/dev/full")
        .expect("/dev/full");
    let (mut cmd, port) = serve_cmd(dir.path());
    cmd.env("HERALD_LOG", "debug")
        .stdout(Stdio::null())
        .stderr(Stdio::from(full));
    let mut child = Child(Some(cmd.spawn().expect("spawn herald serve")));
    let client = Client::new(format!("http://127.0.0.1:{port}"), Some(ADMIN_TOKEN));
    wait_healthy(&mut child, &client).await;
    for i in 0..20 {
        client
            .post(
                "/app/logless/msg",
                serde_json::json!({"eventType": "a.b", "payload": {"i": i}, "application": {"name": "x"}}),
                202,
            )
            .await;
        client.get("/app/nope", 404).await;
    }
    drop(child);
}
