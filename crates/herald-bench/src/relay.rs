//! A loopback TCP relay between Herald and PostgreSQL that the `spool` scenario can cut (a
//! database outage as Herald sees it: live connections closed, new ones closed at once) and
//! restore, without stopping the PostgreSQL cluster other scenarios (or other users) share.
//! Adapted from the relay of `crates/herald-store/tests/storage_postgres.rs`.

use parking_lot::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use anyhow::Context as _;
use tokio::net::{TcpListener, TcpStream};
use tokio::task::{AbortHandle, JoinHandle};

/// A running relay on `127.0.0.1:port`.
pub struct Relay {
    pub port: u16,
    cut: Arc<AtomicBool>,
    /// The copying tasks of the connections relayed so far (finished ones included: aborting
    /// those is a no-op, and a bench run relays a few dozen connections at most).
    live: Arc<Mutex<Vec<AbortHandle>>>,
    accept: JoinHandle<()>,
}

impl Relay {
    /// Starts a relay to the server `url` (a PostgreSQL URL) names, and returns it with the
    /// URL that reaches the same database through it.
    pub async fn in_front_of(url: &str) -> anyhow::Result<(Self, String)> {
        let (upstream, through) = split_url(url)?;
        let relay = Self::start(upstream).await?;
        let url = through(relay.port);
        Ok((relay, url))
    }

    /// Listens on a free loopback port and relays every connection to `upstream`
    /// (`host:port`).
    async fn start(upstream: String) -> anyhow::Result<Self> {
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .context("bind the relay")?;
        let port = listener.local_addr()?.port();
        let cut = Arc::new(AtomicBool::new(false));
        let live: Arc<Mutex<Vec<AbortHandle>>> = Arc::default();
        let (c, l) = (cut.clone(), live.clone());
        let accept = tokio::spawn(async move {
            while let Ok((mut down, _)) = listener.accept().await {
                if c.load(Ordering::SeqCst) {
                    // Dropped: the client sees the connection closed at once, as when the
                    // database host refuses connections (not a hang until a timeout).
                    continue;
                }
                let upstream = upstream.clone();
                let t = tokio::spawn(async move {
                    if let Ok(mut up) = TcpStream::connect(&upstream).await {
                        let _ = tokio::io::copy_bidirectional(&mut down, &mut up).await;
                    }
                });
                l.lock().push(t.abort_handle());
            }
        });
        Ok(Self {
            port,
            cut,
            live,
            accept,
        })
    }

    /// The outage begins: closes every relayed connection and refuses new ones.
    pub fn cut(&self) {
        self.cut.store(true, Ordering::SeqCst);
        for t in self.live.lock().drain(..) {
            t.abort();
        }
    }

    /// The database is back: new connections are relayed again.
    pub fn restore(&self) {
        self.cut.store(false, Ordering::SeqCst);
    }
}

impl Drop for Relay {
    fn drop(&mut self) {
        self.accept.abort();
        self.cut();
    }
}

/// Splits a `postgres://[user[:password]@]host[:port]/db[?query]` URL into the upstream
/// address (`host:port`, port 5432 when absent) and a function giving the same URL with the
/// authority's `host:port` replaced by `127.0.0.1:<port>`.
fn split_url(url: &str) -> anyhow::Result<(String, impl Fn(u16) -> String + '_)> {
    let (scheme, rest) = url
        .split_once("://")
        .context("database URL without scheme")?;
    let (authority, tail) = match rest.find('/') {
        Some(i) => rest.split_at(i),
        None => (rest, ""),
    };
    let (user, hostport) = match authority.rsplit_once('@') {
        Some((u, h)) => (format!("{u}@"), h),
        None => (String::new(), authority),
    };
    anyhow::ensure!(
        !hostport.is_empty(),
        "the database URL names no host (a Unix socket cannot be relayed)"
    );
    let upstream = match hostport.rsplit_once(':') {
        // `host:5432` or `[::1]:5432`; in a bare `[::1]` the colons are inside the brackets.
        Some((h, p)) if !p.contains(']') => format!("{h}:{p}"),
        _ => format!("{hostport}:5432"),
    };
    Ok((upstream, move |port| {
        format!("{scheme}://{user}127.0.0.1:{port}{tail}")
    }))
}

#[cfg(test)]
mod tests {
    use super::split_url;

    fn split(url: &str) -> (String, String) {
        let (up, through) = split_url(url).unwrap();
        (up, through(4000))
    }

    #[test]
    fn replaces_only_host_and_port() {
        assert_eq!(
            split("postgres://herald@127.0.0.1:33953/bench_1"),
            (
                "127.0.0.1:33953".to_string(),
                "postgres://herald@127.0.0.1:4000/bench_1".to_string()
            )
        );
        assert_eq!(
            split("postgresql://u:p@localhost/db?sslmode=disable"),
            (
                "localhost:5432".to_string(),
                "postgresql://u:p@127.0.0.1:4000/db?sslmode=disable".to_string()
            )
        );
        assert_eq!(split("postgres://[::1]:6000/db").0, "[::1]:6000");
        assert_eq!(split("postgres://[::1]/db").0, "[::1]:5432");
        assert!(split_url("postgres:///db?host=/run/postgresql").is_err());
    }
}
