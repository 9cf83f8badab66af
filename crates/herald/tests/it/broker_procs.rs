//! Real message brokers for the broker-destination tests (`brokers`): Redis, NATS (with
//! JetStream) and RabbitMQ, each a child process on a free loopback port with a temporary data
//! directory, which a test can stop and start again on the same port and data (a broker
//! restart). Everything listens on 127.0.0.1 only.
//!
//! Redis and RabbitMQ can also serve TLS (`start_tls`) on a second port, with certificates from
//! a test CA ([`crate::pki::TestPki`], shared with the mutual-TLS tests);
//! the plain port stays open for the test's own consumer.
//!
//! A broker whose binary is missing skips its test with a note, except under `CI=true`, where
//! that is a failure (scripts/test.sh installs the Debian packages).

#![allow(dead_code)]

use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub use crate::pki::{TestPki, TlsFiles};

/// How long a broker may take to accept connections (RabbitMQ boots in several seconds).
const BOOT: Duration = Duration::from_secs(90);

/// The password every test broker requires.
pub const BROKER_PASSWORD: &str = "s3cret-Br0ker-pw";
/// The user of NATS and RabbitMQ test brokers.
pub const BROKER_USER: &str = "herald";

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    Redis,
    Nats,
    Rabbit,
}

/// A broker process (and, for RabbitMQ, its own `epmd`).
pub struct Broker {
    pub kind: Kind,
    pub port: u16,
    /// The TLS port of a broker started with `start_tls`.
    pub tls_port: Option<u16>,
    tls: Option<TlsFiles>,
    dir: tempfile::TempDir,
    child: Option<Child>,
    epmd: Option<Child>,
    epmd_port: u16,
    dist_port: u16,
}

/// A port nobody listens on right now.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("bind a free port")
        .port()
}

fn binary(kind: Kind) -> PathBuf {
    match kind {
        Kind::Redis => "/usr/bin/redis-server".into(),
        Kind::Nats => "/usr/sbin/nats-server".into(),
        Kind::Rabbit => "/usr/lib/rabbitmq/bin/rabbitmq-server".into(),
    }
}

/// Whether the broker can run here; under CI a missing binary fails the test.
pub fn available(kind: Kind) -> bool {
    let bin = binary(kind);
    if bin.exists() {
        return true;
    }
    assert!(
        std::env::var("CI").as_deref() != Ok("true"),
        "{} is missing under CI: scripts/test.sh installs redis-server, nats-server and rabbitmq-server",
        bin.display()
    );
    eprintln!("skipped: {} is not installed", bin.display());
    false
}

impl Broker {
    /// Starts a broker of `kind` and waits until it accepts connections.
    pub async fn start(kind: Kind) -> Self {
        Self::start_with(kind, None).await
    }

    /// Starts a Redis or RabbitMQ broker that also serves TLS with `files` on `tls_port`
    /// (no client certificate asked for), and waits until both ports accept connections.
    pub async fn start_tls(kind: Kind, files: TlsFiles) -> Self {
        assert!(kind != Kind::Nats, "the tests start no NATS over TLS");
        Self::start_with(kind, Some(files)).await
    }

    async fn start_with(kind: Kind, tls: Option<TlsFiles>) -> Self {
        let mut b = Self {
            kind,
            port: free_port(),
            tls_port: tls.as_ref().map(|_| free_port()),
            tls,
            dir: tempfile::tempdir().expect("broker data dir"),
            child: None,
            epmd: None,
            epmd_port: free_port(),
            dist_port: free_port(),
        };
        b.up().await;
        b
    }

    pub fn data_dir(&self) -> &Path {
        self.dir.path()
    }

    /// Starts the process (again, on the same port and data) and waits for its port.
    pub async fn up(&mut self) {
        assert!(self.child.is_none(), "broker already running");
        let mut cmd = match self.kind {
            Kind::Redis => self.redis(),
            Kind::Nats => self.nats(),
            Kind::Rabbit => self.rabbit(),
        };
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.dir.path().join("broker.log"))
            .expect("broker log");
        cmd.stdin(Stdio::null())
            .stdout(log.try_clone().expect("log handle"))
            .stderr(log)
            // Its own process group, so stopping it reaches RabbitMQ's BEAM behind the script.
            .process_group(0);
        self.child = Some(cmd.spawn().expect("spawn broker"));
        let deadline = Instant::now() + BOOT;
        loop {
            let tls_up = match self.tls_port {
                Some(p) => listening(p).await,
                None => true,
            };
            if tls_up && listening(self.port).await {
                return;
            }
            if let Some(st) = self
                .child
                .as_mut()
                .and_then(|c| c.try_wait().ok().flatten())
            {
                panic!(
                    "{:?} exited during start-up ({st}): {}",
                    self.kind,
                    self.log_tail()
                );
            }
            assert!(
                Instant::now() < deadline,
                "{:?} did not listen within {BOOT:?}: {}",
                self.kind,
                self.log_tail()
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Stops the process (SIGTERM to its group, SIGKILL after 30 s) and waits for its exit;
    /// the data directory stays.
    pub async fn down(&mut self) {
        let Some(mut child) = self.child.take() else {
            return;
        };
        signal_group(child.id(), "TERM");
        let deadline = Instant::now() + Duration::from_secs(30);
        while child.try_wait().ok().flatten().is_none() {
            if Instant::now() > deadline {
                signal_group(child.id(), "KILL");
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        // The group's other members (RabbitMQ's BEAM) go with it.
        signal_group(child.id(), "KILL");
        // Wait until the port is free again, so the restart can bind it.
        for _ in 0..200 {
            if tokio::net::TcpStream::connect(("127.0.0.1", self.port))
                .await
                .is_err()
            {
                break;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    fn log_tail(&self) -> String {
        let text = std::fs::read_to_string(self.dir.path().join("broker.log")).unwrap_or_default();
        let start = text.len().saturating_sub(3000);
        text[start..].to_string()
    }

    fn redis(&self) -> Command {
        let mut c = Command::new(binary(Kind::Redis));
        c.args(["--bind", "127.0.0.1", "--port", &self.port.to_string()])
            .args(["--dir", &self.dir.path().display().to_string()])
            .args(["--requirepass", BROKER_PASSWORD])
            // An XADD reply is durable only with an fsync per write: without it a restart
            // could lose acknowledged entries.
            .args(["--appendonly", "yes", "--appendfsync", "always"])
            .args(["--save", "", "--daemonize", "no"]);
        if let (Some(port), Some(t)) = (self.tls_port, &self.tls) {
            c.args(["--tls-port", &port.to_string()])
                .args(["--tls-cert-file", &t.cert.display().to_string()])
                .args(["--tls-key-file", &t.key.display().to_string()])
                .args(["--tls-ca-cert-file", &t.ca.display().to_string()])
                .args(["--tls-auth-clients", "no"]);
        }
        c
    }

    fn nats(&self) -> Command {
        let mut c = Command::new(binary(Kind::Nats));
        c.args(["-a", "127.0.0.1", "-p", &self.port.to_string()])
            .args([
                "-js",
                "-sd",
                &self.dir.path().join("js").display().to_string(),
            ])
            .args(["--user", BROKER_USER, "--pass", BROKER_PASSWORD]);
        c
    }

    fn rabbit(&mut self) -> Command {
        let d = self.dir.path().to_path_buf();
        if self.epmd.is_none() {
            // Its own epmd on a private port, ended with the broker (a shared or daemonised
            // epmd would outlive the test).
            let epmd = Command::new("epmd")
                .args([
                    "-address",
                    "127.0.0.1",
                    "-port",
                    &self.epmd_port.to_string(),
                ])
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .expect("spawn epmd");
            self.epmd = Some(epmd);
            std::fs::write(d.join("enabled_plugins"), "[].\n").expect("plugins file");
            let mut conf = format!(
                "loopback_users = none\ndefault_user = {BROKER_USER}\ndefault_pass = {BROKER_PASSWORD}\n"
            );
            if let (Some(port), Some(t)) = (self.tls_port, &self.tls) {
                conf.push_str(&format!(
                    "listeners.ssl.1 = 127.0.0.1:{port}\n\
                     ssl_options.cacertfile = {}\n\
                     ssl_options.certfile = {}\n\
                     ssl_options.keyfile = {}\n\
                     ssl_options.verify = verify_none\n\
                     ssl_options.fail_if_no_peer_cert = false\n",
                    t.ca.display(),
                    t.cert.display(),
                    t.key.display()
                ));
            }
            std::fs::write(d.join("rabbitmq.conf"), conf).expect("rabbitmq.conf");
        }
        let p = |s: &str| d.join(s).display().to_string();
        let mut c = Command::new(binary(Kind::Rabbit));
        c.current_dir(&d)
            .env("HOME", &d)
            .env(
                "RABBITMQ_NODENAME",
                format!("herald{}@localhost", self.port),
            )
            .env("RABBITMQ_NODE_IP_ADDRESS", "127.0.0.1")
            .env("RABBITMQ_NODE_PORT", self.port.to_string())
            .env("RABBITMQ_DIST_PORT", self.dist_port.to_string())
            .env("ERL_EPMD_ADDRESS", "127.0.0.1")
            .env("ERL_EPMD_PORT", self.epmd_port.to_string())
            .env(
                "RABBITMQ_SERVER_ADDITIONAL_ERL_ARGS",
                "-kernel inet_dist_use_interface {127,0,0,1}",
            )
            .env("RABBITMQ_MNESIA_BASE", p("mnesia"))
            .env("RABBITMQ_LOG_BASE", p("log"))
            .env("RABBITMQ_ENABLED_PLUGINS_FILE", p("enabled_plugins"))
            .env("RABBITMQ_CONFIG_FILE", p("rabbitmq"))
            .env("RABBITMQ_ADVANCED_CONFIG_FILE", p("advanced.config"))
            .env("RABBITMQ_PID_FILE", p("rabbit.pid"))
            .env("RABBITMQ_GENERATED_CONFIG_DIR", p("generated"));
        c
    }
}

async fn listening(port: u16) -> bool {
    tokio::net::TcpStream::connect(("127.0.0.1", port))
        .await
        .is_ok()
}

fn signal_group(pid: u32, sig: &str) {
    let _ = Command::new("kill")
        .args([format!("-{sig}"), "--".into(), format!("-{pid}")])
        .stderr(Stdio::null())
        .status();
}

impl Drop for Broker {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            signal_group(c.id(), "KILL");
            let _ = c.wait();
        }
        if let Some(mut e) = self.epmd.take() {
            let _ = e.kill();
            let _ = e.wait();
        }
    }
}
