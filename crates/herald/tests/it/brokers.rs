//! Broker destinations (destinations.md) against real brokers (`broker_procs`): Redis
//! Streams, NATS JetStream and RabbitMQ. For each, many messages go through Herald while the
//! broker is stopped and started again; the consumer — written with the same client crates a
//! consumer would use — finds every message (duplicates allowed, deduplicated by ID) with a
//! Standard Webhooks signature that verifies. Credentials never show in an answer or in
//! Herald's logs. Schemes are refused until the operator enables them, and malformed broker
//! URLs are refused with 422.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use herald_core::config::Config;
use herald_core::destination::BrokerKind;
use parking_lot::Mutex;
use serde_json::{json, Value};

use crate::broker_procs::{available, Broker, Kind, BROKER_PASSWORD, BROKER_USER};
use crate::common::{
    assert_error_body, eventually, signatures, standard_signature, Client, TestServer,
};

/// Messages per scheme: half before the broker stops, half while it is down.
const MESSAGES: usize = 200;
/// Bounds a wait through a broker restart (RabbitMQ boots in several seconds).
const THROUGH_RESTART: Duration = Duration::from_secs(120);

/// One message as a consumer read it from the broker.
#[derive(Clone, Debug)]
pub(crate) struct Received {
    pub(crate) id: String,
    pub(crate) event_type: String,
    pub(crate) timestamp: String,
    pub(crate) signature: String,
    pub(crate) payload: Vec<u8>,
}

/// Test defaults plus the broker scheme, a retry schedule long enough to outlast a broker
/// restart, and a short breaker cool-down.
fn config(kinds: &[BrokerKind]) -> impl FnOnce(&mut Config) + '_ {
    move |c: &mut Config| {
        c.destination_schemes = kinds.to_vec();
        c.retry_schedule = vec![
            1, 1, 1, 2, 2, 2, 2, 2, 3, 3, 3, 3, 3, 5, 5, 5, 5, 5, 5, 5, 5, 5,
        ];
        c.breaker_cooldown_ms = 200;
        c.breaker_max_cooldown_ms = 1_000;
    }
}

// ---- captured logs ---------------------------------------------------------------------------

/// Everything Herald logs on this test's thread (the tests run on a current-thread runtime,
/// so the server's tasks log here).
#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl std::io::Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Captured {
    fn install(&self) -> tracing::subscriber::DefaultGuard {
        let me = self.clone();
        let sub = tracing_subscriber::fmt()
            .with_env_filter(tracing_subscriber::EnvFilter::new("debug"))
            .with_writer(move || me.clone())
            .with_ansi(false)
            .finish();
        tracing::subscriber::set_default(sub)
    }

    fn text(&self) -> String {
        String::from_utf8_lossy(&self.0.lock()).into_owned()
    }
}

// ---- the shared scenario ---------------------------------------------------------------------

struct Scenario {
    server: TestServer,
    app: String,
    ep: String,
    secret: String,
    published: Vec<String>,
}

impl Scenario {
    fn c(&self) -> &Client {
        &self.server.client
    }

    async fn publish(&mut self, n: usize) {
        for i in 0..n {
            let k = self.published.len();
            let id = self
                .server
                .client
                .publish(
                    &self.app,
                    json!({"eventType": "invoice.paid", "payload": {"n": k, "i": i, "text": "ünïcode ✓"}}),
                )
                .await;
            self.published.push(id);
        }
    }

    async fn stats(&self) -> Value {
        self.c()
            .get(
                &format!("/app/{}/endpoint/{}/stats", self.app, self.ep),
                200,
            )
            .await
    }

    async fn wait_success(&self, n: usize, what: &str) {
        eventually(THROUGH_RESTART, what, || async {
            let s = self.stats().await;
            (s["success"].as_u64() == Some(n as u64)).then_some(())
        })
        .await;
    }

    async fn attempts_text(&self) -> String {
        let v = self
            .c()
            .get(
                &format!("/app/{}/attempt/endpoint/{}?limit=250", self.app, self.ep),
                200,
            )
            .await;
        v.to_string()
    }
}

/// Creates the endpoint for `url` on a server with the scheme enabled, sends the first half
/// of the messages, stops the broker (attempts then fail as `connect_error`), sends the other
/// half, starts the broker again and waits until every delivery succeeded. Answers never
/// show the broker password.
async fn through_restart(broker: &mut Broker, kind: BrokerKind, url: &str) -> Scenario {
    let server = TestServer::start(config(&[kind])).await;
    let c = server.client.clone();
    let app = c.create_app("brokers").await;
    let ep_json = c
        .create_endpoint(&app, json!({"url": url, "description": "broker"}))
        .await;
    let shown = ep_json["url"].as_str().expect("url").to_string();
    assert!(
        !shown.contains(BROKER_PASSWORD),
        "answer shows the password: {shown}"
    );
    assert!(shown.contains(":***@"), "credentials redacted: {shown}");
    let ep = ep_json["id"].as_str().expect("id").to_string();
    // A client that writes back what it read keeps the stored password.
    let back = c
        .put(
            &format!("/app/{app}/endpoint/{ep}"),
            json!({"url": shown, "description": "written back"}),
            200,
        )
        .await;
    assert_eq!(back["url"], ep_json["url"]);
    let secret = c.secret(&app, &ep).await;
    let mut s = Scenario {
        server,
        app,
        ep,
        secret,
        published: Vec::new(),
    };
    s.publish(MESSAGES / 2).await;
    s.wait_success(MESSAGES / 2, "first half delivered").await;

    broker.down().await;
    s.publish(MESSAGES - MESSAGES / 2).await;
    eventually(
        THROUGH_RESTART,
        "an attempt failed as connect_error",
        || async {
            s.attempts_text()
                .await
                .contains("\"connect_error\"")
                .then_some(())
        },
    )
    .await;
    broker.up().await;
    s.wait_success(MESSAGES, "every delivery succeeded after the restart")
        .await;

    let attempts = s.attempts_text().await;
    assert!(
        !attempts.contains(BROKER_PASSWORD),
        "attempt log leaks: {attempts}"
    );
    let ep_text = s
        .c()
        .get(&format!("/app/{}/endpoint/{}", s.app, s.ep), 200)
        .await
        .to_string();
    assert!(!ep_text.contains(BROKER_PASSWORD));
    s
}

/// Every published message arrived at least once, each copy signed correctly.
fn assert_all_received(s: &Scenario, got: &[Received]) {
    let mut by_id: BTreeMap<&str, &Received> = BTreeMap::new();
    for r in got {
        let expected = standard_signature(&s.secret, &r.id, &r.timestamp, &r.payload);
        assert!(
            signatures(&r.signature).contains(&expected),
            "signature of {} does not verify: {}",
            r.id,
            r.signature
        );
        assert_eq!(r.event_type, "invoice.paid");
        let v: Value = serde_json::from_slice(&r.payload).expect("payload is the JSON published");
        assert_eq!(v["text"], "ünïcode ✓");
        by_id.insert(&r.id, r);
    }
    for id in &s.published {
        assert!(
            by_id.contains_key(id.as_str()),
            "message {id} never reached the broker"
        );
    }
    assert_eq!(
        by_id.len(),
        s.published.len(),
        "only published messages arrive"
    );
}

fn assert_logs_clean(logs: &Captured) {
    let text = logs.text();
    assert!(
        text.contains("delivery succeeded") && text.contains("connect_error"),
        "the attempts were logged on this thread"
    );
    assert!(
        !text.contains(BROKER_PASSWORD),
        "a log line shows the broker password"
    );
}

/// The whole scenario for one broker: start it, let the consumer `prepare` it (stream,
/// exchange and queue), deliver through a restart (`through_restart`), `consume` what
/// arrived and check it, and check the logs this thread captured.
async fn round_trip<P, PF, C, CF>(
    kind: Kind,
    scheme: BrokerKind,
    prepare: P,
    url: impl Fn(u16) -> String,
    consume: C,
) where
    P: FnOnce(u16) -> PF,
    PF: std::future::Future<Output = ()>,
    C: FnOnce(u16) -> CF,
    CF: std::future::Future<Output = Vec<Received>>,
{
    if !available(kind) {
        return;
    }
    let logs = Captured::default();
    let _guard = logs.install();
    let mut broker = Broker::start(kind).await;
    prepare(broker.port).await;
    let url = url(broker.port);
    let s = through_restart(&mut broker, scheme, &url).await;
    let got = consume(broker.port).await;
    assert_all_received(&s, &got);
    assert_logs_clean(&logs);
    s.server.stop().await;
    broker.down().await;
}

// ---- Redis -----------------------------------------------------------------------------------

#[tokio::test(flavor = "current_thread")]
async fn redis_stream_receives_every_message_through_a_restart() {
    let url = |port| {
        format!("redis://:{BROKER_PASSWORD}@127.0.0.1:{port}/0?stream=herald-events&maxLen=100000")
    };
    round_trip(
        Kind::Redis,
        BrokerKind::Redis,
        |_| async {},
        url,
        |port| redis_entries(port, "herald-events"),
    )
    .await;
}

pub(crate) async fn redis_entries(port: u16, stream: &str) -> Vec<Received> {
    use redis::streams::StreamRangeReply;
    let client = redis::Client::open(format!("redis://:{BROKER_PASSWORD}@127.0.0.1:{port}/0"))
        .expect("redis client");
    let mut conn = client
        .get_multiplexed_async_connection()
        .await
        .expect("connect to redis");
    let reply: StreamRangeReply = redis::cmd("XRANGE")
        .arg(stream)
        .arg("-")
        .arg("+")
        .query_async(&mut conn)
        .await
        .expect("XRANGE");
    reply
        .ids
        .iter()
        .map(|e| {
            let field = |k: &str| -> Vec<u8> {
                redis::from_redis_value(e.map.get(k).unwrap_or_else(|| panic!("no field {k}")))
                    .expect("bytes")
            };
            let text = |k: &str| String::from_utf8(field(k)).expect("text field");
            Received {
                id: text("id"),
                event_type: text("event_type"),
                timestamp: text("timestamp"),
                signature: text("signature"),
                payload: field("payload"),
            }
        })
        .collect()
}

// ---- NATS JetStream --------------------------------------------------------------------------

#[tokio::test(flavor = "current_thread")]
async fn nats_jetstream_receives_every_message_through_a_restart() {
    let url = |port| {
        format!("nats://{BROKER_USER}:{BROKER_PASSWORD}@127.0.0.1:{port}?subject=events.invoice")
    };
    round_trip(
        Kind::Nats,
        BrokerKind::Nats,
        nats_stream,
        url,
        nats_messages,
    )
    .await;
}

async fn nats_js(port: u16) -> async_nats::jetstream::Context {
    let client = async_nats::ConnectOptions::with_user_and_password(
        BROKER_USER.into(),
        BROKER_PASSWORD.into(),
    )
    .connect(format!("nats://127.0.0.1:{port}"))
    .await
    .expect("connect to nats");
    async_nats::jetstream::new(client)
}

/// The stream a consumer sets up: file storage, so it survives the restart.
async fn nats_stream(port: u16) {
    use async_nats::jetstream::stream::{Config as StreamConfig, StorageType};
    nats_js(port)
        .await
        .create_stream(StreamConfig {
            name: "EVENTS".into(),
            subjects: vec!["events.>".into()],
            storage: StorageType::File,
            ..Default::default()
        })
        .await
        .expect("create stream");
}

async fn nats_messages(port: u16) -> Vec<Received> {
    let js = nats_js(port).await;
    let mut stream = js.get_stream("EVENTS").await.expect("stream");
    let last = stream
        .info()
        .await
        .expect("stream info")
        .state
        .last_sequence;
    let mut out = Vec::new();
    for seq in 1..=last {
        let Ok(m) = stream.get_raw_message(seq).await else {
            continue;
        };
        let h = |k: &str| {
            m.headers
                .get(k)
                .unwrap_or_else(|| panic!("no header {k} in {:?}", m.headers))
                .as_str()
                .to_string()
        };
        let dedup = m.headers.get(async_nats::header::NATS_MESSAGE_ID);
        assert_eq!(dedup.map(|v| v.as_str().to_string()), Some(h("webhook-id")));
        out.push(Received {
            id: h("webhook-id"),
            event_type: h("event-type"),
            timestamp: h("webhook-timestamp"),
            signature: h("webhook-signature"),
            payload: m.payload.to_vec(),
        });
    }
    out
}

// ---- RabbitMQ --------------------------------------------------------------------------------

#[tokio::test(flavor = "current_thread")]
async fn rabbitmq_queue_receives_every_message_through_a_restart() {
    let url = |port| {
        format!(
            "amqp://{BROKER_USER}:{BROKER_PASSWORD}@127.0.0.1:{port}/%2f?exchange=herald&routingKey=invoice"
        )
    };
    round_trip(
        Kind::Rabbit,
        BrokerKind::Amqp,
        rabbit_topology,
        url,
        rabbit_messages,
    )
    .await;
}

async fn rabbit_channel(port: u16) -> (lapin::Connection, lapin::Channel) {
    let props = lapin::ConnectionProperties::default()
        .with_executor(tokio_executor_trait::Tokio::current())
        .with_reactor(tokio_reactor_trait::Tokio);
    let conn = lapin::Connection::connect(
        &format!("amqp://{BROKER_USER}:{BROKER_PASSWORD}@127.0.0.1:{port}/%2f"),
        props,
    )
    .await
    .expect("connect to rabbitmq");
    let ch = conn.create_channel().await.expect("channel");
    (conn, ch)
}

/// What a consumer declares: a durable direct exchange and a durable queue bound to it.
pub(crate) async fn rabbit_topology(port: u16) {
    use lapin::options::{ExchangeDeclareOptions, QueueBindOptions, QueueDeclareOptions};
    use lapin::types::FieldTable;
    let (_conn, ch) = rabbit_channel(port).await;
    let durable = ExchangeDeclareOptions {
        durable: true,
        ..Default::default()
    };
    ch.exchange_declare(
        "herald",
        lapin::ExchangeKind::Direct,
        durable,
        FieldTable::default(),
    )
    .await
    .expect("exchange");
    let q = QueueDeclareOptions {
        durable: true,
        ..Default::default()
    };
    ch.queue_declare("herald-events", q, FieldTable::default())
        .await
        .expect("queue");
    ch.queue_bind(
        "herald-events",
        "herald",
        "invoice",
        QueueBindOptions::default(),
        FieldTable::default(),
    )
    .await
    .expect("bind");
}

pub(crate) async fn rabbit_messages(port: u16) -> Vec<Received> {
    use lapin::options::BasicGetOptions;
    use lapin::types::AMQPValue;
    let (_conn, ch) = rabbit_channel(port).await;
    let mut out = Vec::new();
    let get = BasicGetOptions { no_ack: true };
    while let Some(m) = ch.basic_get("herald-events", get).await.expect("basic.get") {
        let headers = m.delivery.properties.headers().clone().unwrap_or_default();
        let h = |k: &str| match headers.inner().get(k) {
            Some(AMQPValue::LongString(s)) => String::from_utf8_lossy(s.as_bytes()).into_owned(),
            other => panic!("header {k}: {other:?}"),
        };
        assert_eq!(
            m.delivery.properties.delivery_mode(),
            &Some(2),
            "persistent"
        );
        out.push(Received {
            id: h("webhook-id"),
            event_type: h("event-type"),
            timestamp: h("webhook-timestamp"),
            signature: h("webhook-signature"),
            payload: m.delivery.data.clone(),
        });
    }
    out
}

// ---- refusals --------------------------------------------------------------------------------

#[tokio::test]
async fn broker_schemes_are_refused_until_enabled() {
    let server = TestServer::start(|_| {}).await;
    let c = &server.client;
    let app = c.create_app("no-brokers").await;
    for url in [
        "amqp://u:p@127.0.0.1:5672/%2f?exchange=e&routingKey=k",
        "amqps://127.0.0.1/%2f?routingKey=q",
        "redis://:p@127.0.0.1:6379/0?stream=s",
        "rediss://127.0.0.1?stream=s",
        "nats://127.0.0.1:4222?subject=a.b",
    ] {
        let v = c
            .post(&format!("/app/{app}/endpoint"), json!({"url": url}), 422)
            .await;
        assert_error_body(&v, url);
        assert!(v.to_string().contains("destination_schemes"), "{v}");
        assert!(
            !v.to_string().contains("u:p@"),
            "the answer echoes credentials: {v}"
        );
    }
    server.stop().await;
}

#[tokio::test]
async fn malformed_broker_urls_are_refused() {
    let all = [BrokerKind::Amqp, BrokerKind::Redis, BrokerKind::Nats];
    let server = TestServer::start(config(&all)).await;
    let c = &server.client;
    let app = c.create_app("malformed").await;
    for url in [
        "redis://",
        "redis://127.0.0.1:6379",
        "redis://127.0.0.1:notaport?stream=s",
        "redis://127.0.0.1/db?stream=s",
        "redis://127.0.0.1?stream=s&maxLen=-1",
        "redis://127.0.0.1?stream=s&bogus=1",
        "amqp://127.0.0.1/%2f",
        "amqp://127.0.0.1/%2f?exchange=e&exchange=f",
        "nats://127.0.0.1",
        "nats://127.0.0.1?subject=a.>",
        "nats://127.0.0.1?subject=a%20b",
        "kafka://127.0.0.1/topic",
    ] {
        let v = c
            .post(&format!("/app/{app}/endpoint"), json!({"url": url}), 422)
            .await;
        assert_error_body(&v, url);
    }
    // The egress rules apply to brokers: private ranges are refused unless allow-listed.
    let v = c
        .post(
            &format!("/app/{app}/endpoint"),
            json!({"url": "redis://10.1.2.3:6379?stream=s"}),
            422,
        )
        .await;
    assert_error_body(&v, "private address");
    // PATCH checks the same way, and a valid broker URL is accepted.
    let ep = c
        .create_endpoint(&app, json!({"url": "nats://127.0.0.1:4222?subject=a.b"}))
        .await;
    let ep = ep["id"].as_str().expect("id");
    c.patch(
        &format!("/app/{app}/endpoint/{ep}"),
        json!({"url": "nats://127.0.0.1?subject=*"}),
        422,
    )
    .await;
    server.stop().await;
}

/// Writing back a redacted URL keeps the stored password only for the same account: pointed at
/// another port (here a listener standing in for someone else's Redis), `***` is taken
/// literally and the real password never leaves Herald.
#[tokio::test]
async fn a_redacted_url_moved_elsewhere_does_not_carry_the_password() {
    use tokio::io::AsyncReadExt;
    let server = TestServer::start(config(&[BrokerKind::Redis])).await;
    let c = &server.client;
    let app = c.create_app("moved").await;
    let nobody = crate::broker_procs::free_port();
    let ep = c
        .create_endpoint(
            &app,
            json!({"url": format!("redis://:{BROKER_PASSWORD}@127.0.0.1:{nobody}/0?stream=s")}),
        )
        .await;
    let ep = ep["id"].as_str().expect("id").to_string();
    let thief = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let port = thief.local_addr().expect("addr").port();
    c.patch(
        &format!("/app/{app}/endpoint/{ep}"),
        json!({"url": format!("redis://:***@127.0.0.1:{port}/0?stream=s")}),
        200,
    )
    .await;
    c.publish(&app, json!({"eventType": "invoice.paid", "payload": {}}))
        .await;
    let (mut sock, _) = tokio::time::timeout(Duration::from_secs(30), thief.accept())
        .await
        .expect("Herald connected")
        .expect("accept");
    let mut seen = Vec::new();
    let mut buf = [0u8; 4096];
    while !String::from_utf8_lossy(&seen).contains("***") {
        match tokio::time::timeout(Duration::from_secs(10), sock.read(&mut buf)).await {
            Ok(Ok(n)) if n > 0 => seen.extend_from_slice(&buf[..n]),
            _ => break,
        }
    }
    let text = String::from_utf8_lossy(&seen);
    assert!(
        text.contains("***"),
        "the client authenticated with `***`: {text:?}"
    );
    assert!(
        !text.contains(BROKER_PASSWORD),
        "the password went elsewhere"
    );
    drop(sock);
    server.stop().await;
}

/// A broker endpoint whose deliveries ran out of retries while the broker was down is
/// recovered like an HTTP one, and `resend` publishes another copy (same message ID).
#[tokio::test]
async fn recover_and_resend_work_for_a_broker_endpoint() {
    if !available(Kind::Redis) {
        return;
    }
    let mut broker = Broker::start(Kind::Redis).await;
    broker.down().await;
    let server = TestServer::start(|c| c.destination_schemes = vec![BrokerKind::Redis]).await;
    let c = &server.client;
    let app = c.create_app("recover").await;
    let url = format!(
        "redis://:{BROKER_PASSWORD}@127.0.0.1:{}/0?stream=recovered",
        broker.port
    );
    let ep = c.create_endpoint(&app, json!({"url": url})).await;
    let ep = ep["id"].as_str().expect("id").to_string();
    let msg = c
        .publish(
            &app,
            json!({"eventType": "invoice.paid", "payload": {"text": "ünïcode ✓"}}),
        )
        .await;
    c.wait_delivery(&app, &msg, &ep, 2).await;
    let attempts = c.attempts_of_msg(&app, &msg).await;
    assert_eq!(attempts.len(), 4, "first attempt + 3 retries of [1,1,1]");
    assert!(
        attempts.iter().all(|a| a["error"] == "connect_error"),
        "{attempts:?}"
    );

    broker.up().await;
    c.post(
        &format!("/app/{app}/endpoint/{ep}/recover"),
        json!({"since": crate::common::rfc3339_ago(3600)}),
        202,
    )
    .await;
    c.wait_delivery(&app, &msg, &ep, 0).await;
    let last = &c.attempts_of_msg(&app, &msg).await[4];
    assert_eq!(last["responseStatusCode"], 200);
    assert!(last["response"]
        .as_str()
        .is_some_and(|r| r.starts_with("XADD recovered: ")));
    assert!(last["url"].as_str().is_some_and(|u| u.contains(":***@")));

    c.post(
        &format!("/app/{app}/msg/{msg}/endpoint/{ep}/resend"),
        json!({}),
        202,
    )
    .await;
    let got = eventually(Duration::from_secs(30), "the resent copy", || async {
        let got = redis_entries(broker.port, "recovered").await;
        (got.len() == 2).then_some(got)
    })
    .await;
    assert!(
        got.iter().all(|r| r.id == msg),
        "both copies carry the message ID"
    );
    // The copy is in the stream before its attempt is recorded: wait for the record.
    c.wait_delivery(&app, &msg, &ep, 0).await;
    eventually(Duration::from_secs(30), "the resend's attempt", || async {
        let n = c.attempts_of_msg(&app, &msg).await.len();
        (n == 6).then_some(())
    })
    .await;
    let stats = c.get(&format!("/app/{app}/endpoint/{ep}/stats"), 200).await;
    assert_eq!(stats["success"], 1, "{stats}");
    server.stop().await;
}
