//! `herald listen`, run as the real binary against a real server, forwarding to a real receiver
//! on loopback: signed events arrive byte for byte, each local answer is recorded as an attempt
//! (and a failure retried), the temporary endpoint goes away when the CLI stops or dies, and
//! the route enforces the usual token rules.

use parking_lot::Mutex;
use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;

use serde_json::{json, Value};

use crate::common::{
    assert_standard_signed, eventually, id_of, Client, Receiver, Reply, TestServer, ADMIN_TOKEN,
    WAIT,
};

const BIN: &str = env!("CARGO_BIN_EXE_herald");

/// A running `herald listen` whose stdout lines are collected as they come.
struct Cli {
    child: Child,
    lines: Arc<Mutex<Vec<String>>>,
}

impl Cli {
    fn start(srv: &TestServer, token: &str, args: &[&str]) -> Self {
        let mut child = Command::new(BIN)
            .arg("listen")
            .args(args)
            .env("HERALD_URL", format!("http://{}", srv.addr))
            .env("HERALD_TOKEN", token)
            .env_remove("HERALD_CONFIG")
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("run herald listen");
        let lines = Arc::new(Mutex::new(Vec::new()));
        let stdout = child.stdout.take().expect("stdout");
        let sink = lines.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                sink.lock().push(line);
            }
        });
        Self { child, lines }
    }

    fn output(&self) -> Vec<String> {
        self.lines.lock().clone()
    }

    /// Waits until a printed line contains every one of `parts`; returns it.
    async fn wait_line(&self, parts: &[&str]) -> String {
        eventually(WAIT, &format!("a CLI line with {parts:?}"), || async {
            self.output()
                .into_iter()
                .find(|l| parts.iter().all(|p| l.contains(p)))
        })
        .await
    }

    /// Sends SIGINT (what Ctrl-C sends) and waits for the exit code.
    async fn interrupt(mut self) -> Option<i32> {
        let pid = self.child.id().to_string();
        let sent = Command::new("kill")
            .args(["-INT", &pid])
            .status()
            .expect("run kill");
        assert!(sent.success());
        eventually(WAIT, "herald listen to exit after SIGINT", || {
            let done = self.child.try_wait().expect("try_wait");
            async move { done.map(|s| s.code()) }
        })
        .await
    }
}

impl Drop for Cli {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The app's temporary listen endpoints.
async fn listen_endpoints(c: &Client, app: &str) -> Vec<Value> {
    let list = c.get(&format!("/app/{app}/endpoint"), 200).await;
    list["data"]
        .as_array()
        .expect("endpoint list")
        .iter()
        .filter(|e| {
            e["uid"]
                .as_str()
                .is_some_and(|u| u.starts_with("herald-listen-"))
        })
        .cloned()
        .collect()
}

/// Waits for the session's temporary endpoint to exist; returns it.
async fn wait_endpoint(c: &Client, app: &str) -> Value {
    eventually(WAIT, "the temporary listen endpoint", || async {
        listen_endpoints(c, app).await.into_iter().next()
    })
    .await
}

async fn wait_no_endpoint(c: &Client, app: &str) {
    eventually(WAIT, "the temporary endpoint to be removed", || async {
        listen_endpoints(c, app).await.is_empty().then_some(())
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn listen_forwards_a_sources_events_signed_and_records_the_local_answer() {
    let srv = TestServer::start(|_| {}).await;
    let c = &srv.client;
    let rx = Receiver::start().await;
    let app = c.create_app("dev").await;
    let src = c
        .post(
            &format!("/app/{app}/source"),
            json!({"name": "stripe", "verification": {"scheme": "none"}, "eventType": {"value": "inbound.test"}}),
            201,
        )
        .await;
    let src_id = id_of(&src);
    let cli = Cli::start(
        &srv,
        ADMIN_TOKEN,
        &["--source", &src_id, "--forward", &rx.url_path("/hook")],
    );
    cli.wait_line(&["Ready", &src_id]).await;
    let ep = wait_endpoint(c, &app).await;
    let ep_id = id_of(&ep);
    assert!(
        ep["url"].as_str().unwrap().starts_with("herald-listen://"),
        "{ep}"
    );
    let secret = c.secret(&app, &ep_id).await;

    // A message published through the API is not from the source: not forwarded.
    let api_msg = c
        .publish(
            &app,
            json!({"eventType": "inbound.test", "payload": {"via": "api"}}),
        )
        .await;
    // Odd spacing and key order: what arrives must be these bytes, not a re-serialisation.
    let body = "{\"b\":1,  \"a\": [true, null],\"s\":\"\\u00e9\"}";
    let accepted = c
        .post_raw(&format!("//in/{src_id}"), body.to_string(), 202)
        .await;
    let msg_id = accepted.json["id"]
        .as_str()
        .expect("message id")
        .to_string();

    // Messages from a source carry its channel; that is what the session filters on.
    let m = c.get(&format!("/app/{app}/msg/{msg_id}"), 200).await;
    assert_eq!(m["channels"], json!([format!("herald-source.{src_id}")]));

    let got = rx.wait_for(1).await;
    let hook = &got[0];
    assert_eq!(hook.path, "/hook");
    assert_eq!(hook.body.as_ref(), body.as_bytes());
    assert_eq!(hook.header("webhook-id"), Some(msg_id.as_str()));
    assert_standard_signed(hook, "webhook", &secret, &msg_id);

    let attempts = c.wait_attempts(&app, &msg_id, 1).await;
    assert_eq!(attempts[0]["responseStatusCode"], 204, "{attempts:?}");
    assert_eq!(attempts[0]["status"], 0, "{attempts:?}");
    assert_eq!(attempts[0]["endpointId"], ep_id);
    cli.wait_line(&["inbound.test", &msg_id, "204"]).await;
    assert!(c.attempts_of_msg(&app, &api_msg).await.is_empty());
    assert_eq!(rx.count(), 1, "only the source's message is forwarded");

    // A body that is not UTF-8 crosses the WebSocket too, byte for byte with its type.
    let binary: Vec<u8> = vec![0xff, 0x00, 0x80, b'{', 0xfe];
    let rb = c
        .req(reqwest::Method::POST, &format!("//in/{src_id}"))
        .header("content-type", "application/octet-stream")
        .body(binary.clone());
    let bin_msg = c.send(rb, 202).await.json["id"]
        .as_str()
        .expect("message id")
        .to_string();
    let got = rx.wait_for(2).await;
    assert_eq!(got[1].body.as_ref(), binary.as_slice());
    assert_eq!(
        got[1].header("content-type"),
        Some("application/octet-stream")
    );
    assert_standard_signed(&got[1], "webhook", &secret, &bin_msg);

    // The CLI dies without closing the socket: Herald notices and removes the endpoint.
    let mut cli = cli;
    cli.child.kill().expect("kill herald listen");
    let _ = cli.child.wait();
    wait_no_endpoint(c, &app).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failing_local_server_is_a_failed_attempt_that_is_retried_and_ctrl_c_cleans_up() {
    let srv = TestServer::start(|_| {}).await;
    let c = &srv.client;
    let rx = Receiver::start().await;
    rx.set_default(Reply::Status(500));
    let app = c.create_app("dev").await;
    let cli = Cli::start(
        &srv,
        ADMIN_TOKEN,
        &[
            "--app",
            &app,
            "--types",
            "order.created,order.paid",
            "--forward",
            &rx.url_path("/hook"),
        ],
    );
    cli.wait_line(&["Ready"]).await;
    let ep = wait_endpoint(c, &app).await;
    assert_eq!(ep["filterTypes"], json!(["order.created", "order.paid"]));

    let skipped = c
        .publish(&app, json!({"eventType": "user.created", "payload": {}}))
        .await;
    let msg = c
        .publish(
            &app,
            json!({"eventType": "order.paid", "payload": {"n": 1}}),
        )
        .await;
    // The test retry schedule is 1 s: the second attempt is the retry of the first.
    let attempts = c.wait_attempts(&app, &msg, 2).await;
    for a in &attempts[..2] {
        assert_eq!(a["responseStatusCode"], 500, "{attempts:?}");
        assert_eq!(a["status"], 2, "{attempts:?}");
    }
    cli.wait_line(&["order.paid", &msg, "500"]).await;
    assert!(c.attempts_of_msg(&app, &skipped).await.is_empty());

    // The local server comes back: the next retry succeeds.
    rx.set_default(Reply::Status(200));
    eventually(WAIT, "a successful attempt after the failures", || async {
        let list = c.attempts_of_msg(&app, &msg).await;
        list.iter().any(|a| a["status"] == 0).then_some(())
    })
    .await;

    // Ctrl-C: the CLI closes the session, exits 0, and the endpoint is gone.
    assert_eq!(cli.interrupt().await, Some(0));
    wait_no_endpoint(c, &app).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unreachable_local_server_is_a_connect_error_attempt() {
    let srv = TestServer::start(|_| {}).await;
    let c = &srv.client;
    // A port that was just free: nothing listens there.
    let closed = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        l.local_addr().expect("addr")
    };
    let app = c.create_app("dev").await;
    let cli = Cli::start(
        &srv,
        ADMIN_TOKEN,
        &["--app", &app, "--forward", &format!("http://{closed}/hook")],
    );
    cli.wait_line(&["Ready"]).await;
    wait_endpoint(c, &app).await;
    let msg = c
        .publish(&app, json!({"eventType": "a.b", "payload": {}}))
        .await;
    let attempts = c.wait_attempts(&app, &msg, 1).await;
    assert_eq!(attempts[0]["responseStatusCode"], 0, "{attempts:?}");
    assert_eq!(attempts[0]["status"], 2, "{attempts:?}");
    cli.wait_line(&[&msg, "connect error"]).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn listen_needs_a_token_that_may_see_the_app() {
    let srv = TestServer::start(|_| {}).await;
    let c = &srv.client;
    let a = c.create_app("a").await;
    let b = c.create_app("b").await;
    let t = c
        .post("/token", json!({"name": "b", "appId": b}), 201)
        .await;
    let b_token = t["token"].as_str().expect("token").to_string();

    // Plain HTTP: the route authenticates before it looks at the upgrade.
    let anon = c.anonymous();
    let r = anon
        .send(
            anon.req(reqwest::Method::GET, &format!("/listen?app={a}")),
            401,
        )
        .await;
    assert_eq!(r.json["code"], "authentication_failed");
    let scoped = c.with_token(&b_token);
    scoped
        .send(
            scoped.req(reqwest::Method::GET, &format!("/listen?app={a}")),
            403,
        )
        .await;
    // Right token, but not a WebSocket request.
    scoped
        .send(
            scoped.req(reqwest::Method::GET, &format!("/listen?app={b}")),
            400,
        )
        .await;
    c.send(c.req(reqwest::Method::GET, "/listen"), 422).await;

    // The CLI reports the refusal and exits 1; no endpoint is created.
    let rx = Receiver::start().await;
    for (token, status) in [("wrong-token", "401"), (b_token.as_str(), "403")] {
        let out = Command::new(BIN)
            .args(["listen", "--app", &a, "--forward", &rx.url_path("/hook")])
            .env("HERALD_URL", format!("http://{}", srv.addr))
            .env("HERALD_TOKEN", token)
            .output()
            .expect("run herald listen");
        assert_eq!(out.status.code(), Some(1));
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains(status), "{err}");
    }
    assert!(listen_endpoints(c, &a).await.is_empty());

    // The public endpoint API cannot create the special scheme.
    c.post(
        &format!("/app/{a}/endpoint"),
        json!({"url": "herald-listen://x"}),
        422,
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stopping_server_ends_sessions_and_a_restart_removes_leftover_endpoints() {
    let srv = TestServer::start(|_| {}).await;
    let c = srv.client.clone();
    let rx = Receiver::start().await;
    let app = c.create_app("dev").await;
    let mut cli = Cli::start(
        &srv,
        ADMIN_TOKEN,
        &["--app", &app, "--forward", &rx.url_path("/hook")],
    );
    cli.wait_line(&["Ready"]).await;
    wait_endpoint(&c, &app).await;

    // A clean stop closes the session (the CLI exits 1: the connection ended) and the
    // session removes its endpoint before the server is gone.
    let dir = srv.stop_keep_dir().await;
    let code = eventually(
        WAIT,
        "herald listen to exit after the server stopped",
        || {
            let done = cli.child.try_wait().expect("try_wait");
            async move { done.map(|s| s.code()) }
        },
    )
    .await;
    assert_eq!(code, Some(1));
    let cfg = herald_core::config::Config {
        data_dir: dir.path().to_path_buf(),
        ..Default::default()
    };
    let store = herald::open_store(&cfg, false)
        .await
        .expect("open store")
        .store;
    let app_id = store.get_app(&app).await.unwrap().expect("app").id;
    let all = herald_store::ListQuery {
        limit: 250,
        iterator: None,
        backwards: false,
        descending: false,
        before: None,
        after: None,
    };
    assert!(store
        .list_endpoints(&app_id, &all)
        .await
        .unwrap()
        .items
        .is_empty());

    // What a crash leaves behind: a temporary endpoint with no session. An ordinary endpoint
    // that merely has a similar uid is not touched.
    let leftover = temporary_row(&app_id, "herald-listen-crashed", "herald-listen://crashed");
    let ordinary = temporary_row(&app_id, "herald-listen-lookalike", &rx.url_path("/x"));
    store.create_endpoint(leftover).await.unwrap();
    store.create_endpoint(ordinary).await.unwrap();
    drop(store);

    let srv = TestServer::start_in(dir, |_| {}).await;
    let left: Vec<String> = srv.client.get(&format!("/app/{app}/endpoint"), 200).await["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["uid"].as_str().unwrap_or_default().to_string())
        .collect();
    assert_eq!(left, vec!["herald-listen-lookalike".to_string()]);
    srv.stop().await;
}

/// An endpoint row as the store takes it.
fn temporary_row(
    app: &herald_core::ids::AppId,
    uid: &str,
    url: &str,
) -> herald_core::model::Endpoint {
    herald_core::model::Endpoint::internal(
        app.clone(),
        uid.into(),
        url.into(),
        String::new(),
        &herald_core::signing::EndpointSecret::generate(),
        herald_core::now_millis(),
    )
}
