//! The `herald` command line, run as the real binary: `verify` (success and each failure
//! reason, for every outbound scheme) and `token create` against a live server's store.

use std::process::Command;

use serde_json::json;

use crate::common::{output_with_stdin, Client, TestServer};

const BIN: &str = env!("CARGO_BIN_EXE_herald");
/// Standard Webhooks reference vector (tests/vectors/vectors.json).
const SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
const ID: &str = "msg_p5jXN8AQM9LWM0D4loKWxJek";
const TS: &str = "1614265330";
const SIG: &str = "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=";
const BODY: &str = r#"{"test": 2432232314}"#;

/// Runs `herald verify` with `args` and `body` on stdin; returns (exit code, stdout).
fn verify(args: &[&str], body: &str) -> (i32, String) {
    let out = output_with_stdin(
        Command::new(BIN)
            .arg("verify")
            .args(args)
            .env_remove("HERALD_URL"),
        body.as_bytes(),
    );
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
    )
}

fn std_args<'a>(secret: &'a str, sig: &'a str, now: &'a str) -> Vec<String> {
    vec![
        "--secret".into(),
        secret.into(),
        "-H".into(),
        format!("webhook-id: {ID}"),
        "-H".into(),
        format!("webhook-timestamp: {TS}"),
        "-H".into(),
        format!("webhook-signature: {sig}"),
        "--now".into(),
        now.into(),
    ]
}

fn run(args: Vec<String>, body: &str) -> (i32, String) {
    let refs: Vec<&str> = args.iter().map(String::as_str).collect();
    verify(&refs, body)
}

#[test]
fn verify_accepts_the_reference_vector_and_names_each_failure() {
    assert_eq!(run(std_args(SECRET, SIG, TS), BODY), (0, "valid\n".into()));

    let (code, out) = run(
        std_args("whsec_C2FVsBQIhrscChlQIMV+b5sSYspob7oD", SIG, TS),
        BODY,
    );
    assert_eq!(code, 1);
    assert!(out.contains("wrong secret"), "{out}");

    let (code, out) = run(std_args(SECRET, SIG, TS), r#"{"test": 2432232315}"#);
    assert_eq!(code, 1);
    assert!(out.contains("body was modified"), "{out}");

    let (code, out) = run(std_args(SECRET, SIG, "1614266000"), BODY);
    assert_eq!(code, 1);
    assert!(
        out.contains("stale timestamp") && out.contains("670 s"),
        "{out}"
    );

    let (code, out) = run(std_args(SECRET, "v1,not base64 at all", TS), BODY);
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("mismatch"), "{out}");

    let (code, out) = run(std_args(SECRET, "sig-without-version", TS), BODY);
    assert_eq!(code, 1);
    assert!(
        out.contains("malformed header `webhook-signature`"),
        "{out}"
    );

    let mut missing = std_args(SECRET, SIG, TS);
    missing.drain(2..4); // drop webhook-id
    let (code, out) = run(missing, BODY);
    assert_eq!(code, 1);
    assert!(out.contains("missing header `webhook-id`"), "{out}");

    let (code, out) = run(std_args("whsec_***", SIG, TS), BODY);
    assert_eq!(code, 1);
    assert!(out.contains("malformed secret"), "{out}");
}

#[test]
fn verify_handles_the_svix_and_github_schemes() {
    let svix = vec![
        "--scheme",
        "svix",
        "--secret",
        SECRET,
        "-H",
        "svix-id: msg_p5jXN8AQM9LWM0D4loKWxJek",
        "-H",
        "svix-timestamp: 1614265330",
        "-H",
        "svix-signature: v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=",
        "--now",
        "1614265330",
    ];
    assert_eq!(verify(&svix, BODY).0, 0);
    // Standard headers do not satisfy the svix scheme.
    let (code, out) = run(
        std_args(SECRET, SIG, TS)
            .into_iter()
            .chain(["--scheme".into(), "svix".into()])
            .collect(),
        BODY,
    );
    assert_eq!(code, 1);
    assert!(out.contains("missing header `svix-"), "{out}");

    // GitHub docs vector.
    let gh = |sig: &str| {
        verify(
            &[
                "--scheme",
                "github",
                "--secret",
                "It's a Secret to Everybody",
                "-H",
                &format!("X-Hub-Signature-256: {sig}"),
            ],
            "Hello, World!",
        )
    };
    assert_eq!(
        gh("sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17").0,
        0
    );
    let (code, out) = gh("sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e18");
    assert_eq!(code, 1);
    assert!(out.contains("mismatch"), "{out}");
    let (code, out) = gh("md5=abc");
    assert_eq!(code, 1);
    assert!(out.contains("malformed header"), "{out}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn token_create_mints_a_scoped_token_for_a_running_server() {
    let srv = TestServer::start(|_| {}).await;
    let c = &srv.client;
    let app = c.create_app("cli").await;
    let other = c.create_app("other").await;
    let out = Command::new(BIN)
        .args(["token", "create", "--app", &app, "--name", "ci"])
        .env("HERALD_DATA_DIR", srv.data_dir())
        .env("HERALD_ADMIN_TOKEN", "test-admin-token-0123456789")
        .output()
        .expect("run herald token create");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let token = String::from_utf8(out.stdout).unwrap().trim().to_string();
    assert!(token.starts_with("hk_"), "{token}");
    let scoped = Client::new(c.base.clone(), Some(&token));
    scoped.get(&format!("/app/{app}"), 200).await;
    scoped.get(&format!("/app/{other}"), 403).await;
    scoped.post("/app", json!({"name": "x"}), 403).await;

    // An unknown application is a clear failure with a non-zero exit code.
    let out = Command::new(BIN)
        .args(["token", "create", "--app", "no-such-app"])
        .env("HERALD_DATA_DIR", srv.data_dir())
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("not found"));
    srv.stop().await;
}

/// Runs the real binary against a live server with `HERALD_URL`/`HERALD_TOKEN`.
fn cli(srv: &TestServer, args: &[&str]) -> (i32, String, String) {
    let out = Command::new(BIN)
        .args(args)
        .env("HERALD_URL", srv.client.base.clone())
        .env("HERALD_TOKEN", "test-admin-token-0123456789")
        .env_remove("HERALD_DATA_DIR")
        .output()
        .expect("run herald");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn send_list_get_attempts_and_recover_through_the_cli() {
    let srv = TestServer::start(|_| {}).await;
    let c = &srv.client;
    let rx = crate::common::Receiver::start().await;
    rx.set_default(crate::common::Reply::Status(500));
    let app = c.create_app("cli-app").await;
    let ep = c.endpoint_for(&app, &rx.url_path("/h")).await;

    let (code, out, err) = cli(
        &srv,
        &[
            "send",
            "--app",
            &app,
            "--type",
            "order.created",
            "--data",
            r#"{"n": 7}"#,
            "--json",
        ],
    );
    assert_eq!(code, 0, "{err}");
    let sent: serde_json::Value = serde_json::from_str(&out).expect("--json prints JSON");
    let msg = sent["id"].as_str().unwrap().to_string();
    assert_eq!(sent["eventType"], "order.created");

    // Human table by default, with a header row and the message.
    let (code, out, _) = cli(&srv, &["message", "list", "--app", &app]);
    assert_eq!(code, 0);
    assert!(out.lines().next().unwrap().starts_with("ID"), "{out}");
    assert!(out.contains(&msg) && out.contains("order.created"), "{out}");
    let (code, out, _) = cli(&srv, &["message", "get", "--app", &app, &msg, "--json"]);
    assert_eq!(code, 0);
    assert_eq!(
        serde_json::from_str::<serde_json::Value>(&out).unwrap()["id"],
        msg.as_str()
    );
    let (code, out, _) = cli(&srv, &["endpoint", "list", "--app", &app]);
    assert_eq!(code, 0);
    assert!(out.contains(&ep), "{out}");

    // The receiver fails every attempt: the delivery ends failed after the schedule.
    c.wait_delivery(&app, &msg, &ep, 2).await;
    let (code, out, _) = cli(&srv, &["attempt", "--app", &app, "--msg", &msg, "--json"]);
    assert_eq!(code, 0);
    let atts: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(atts["data"].as_array().unwrap().len(), 4);
    // One attempt by ID.
    let first = atts["data"][0]["id"].as_str().unwrap().to_string();
    let (code, out, err) = cli(
        &srv,
        &[
            "attempt", "--app", &app, "--msg", &msg, "--id", &first, "--json",
        ],
    );
    assert_eq!(code, 0, "{err}");
    let one: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(one["id"], first.as_str());

    // recover re-queues it; with the receiver healthy again it succeeds.
    rx.set_default(crate::common::Reply::Status(204));
    let recover = [
        "recover",
        "--app",
        &app,
        "--endpoint",
        &ep,
        "--since",
        "2000-01-01T00:00:00Z",
    ];
    let (code, out, err) = cli(&srv, &recover);
    assert_eq!(code, 0, "{err}");
    // It follows the re-queued deliveries to the end (a progress bar on a terminal).
    assert!(
        out.contains("recovered 1 deliveries: 1 succeeded, 0 failed again"),
        "{out}"
    );
    c.wait_delivery(&app, &msg, &ep, 0).await;
    // --no-wait answers with the task at once.
    let (code, out, err) = cli(&srv, &[&recover[..], &["--no-wait"]].concat());
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("endpoint.recover"), "{out}");

    // API errors: exit 1 with Herald's code on stderr.
    let (code, _, err) = cli(&srv, &["message", "list", "--app", "no-such-app"]);
    assert_eq!(code, 1);
    assert!(err.contains("404") && err.contains("not_found"), "{err}");
    let (code, _, err) = cli(
        &srv,
        &["send", "--app", &app, "--type", "t", "--data", "not json"],
    );
    assert_ne!(code, 0);
    assert!(err.contains("--data is not JSON"), "{err}");
    srv.stop().await;
}

/// `herald rotate-key`: refused while the server holds the data directory; once stopped, every
/// secret is re-encrypted under a new key written over `encryption-key`, and the restarted
/// server reads the same secrets with it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rotate_key_re_encrypts_stored_secrets() {
    let srv = TestServer::start(|_| {}).await;
    let c = &srv.client;
    let app = c.create_app("rk").await;
    let ep = c
        .create_endpoint(
            &app,
            json!({"url": "http://127.0.0.1:9/", "secret": SECRET}),
        )
        .await;
    let ep = ep["id"].as_str().unwrap().to_string();
    c.post(
        &format!("/app/{app}/source"),
        json!({"name": "s", "verification": {"scheme": "github", "secrets": ["gh-secret"]}}),
        201,
    )
    .await;
    let dir = srv.data_dir();
    let key_file = dir.join("encryption-key");
    let old_key = std::fs::read_to_string(&key_file).unwrap();
    let rotate = |dir: &std::path::Path| {
        Command::new(BIN)
            .arg("rotate-key")
            .env("HERALD_DATA_DIR", dir)
            .env_remove("HERALD_ENCRYPTION_KEY")
            .env_remove("HERALD_DATABASE_URL")
            .output()
            .expect("run herald rotate-key")
    };
    let busy = rotate(&dir);
    assert!(!busy.status.success(), "rotated under a running server");
    assert!(String::from_utf8_lossy(&busy.stderr).contains("in use"));

    let tmp = srv.stop_keep_dir().await;
    let out = rotate(tmp.path());
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("re-encrypted 2 records"));
    let new_key = std::fs::read_to_string(&key_file).unwrap();
    assert_ne!(new_key, old_key);
    assert!(!tmp.path().join("encryption-key.new").exists());

    let srv = TestServer::start_in(tmp, |_| {}).await;
    let got = srv.client.secret(&app, &ep).await;
    assert_eq!(got, SECRET, "the secret reads back under the new key");
    srv.stop().await;
}
