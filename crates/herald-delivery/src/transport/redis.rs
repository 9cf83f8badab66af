//! Redis Streams destinations (`redis`, `rediss`): one `XADD` per delivery with the fields
//! `id`, `event_type`, `timestamp`, `signature` and `payload`; the reply (the entry's ID) is
//! the acknowledgement.
//!
//! One multiplexed connection per destination carries concurrent deliveries. It is opened to
//! the address Herald checked, for `rediss` too (the URL's host is only the TLS server name),
//! and never reconnects by itself: any failure drops it from the pool, so the next attempt
//! starts from a fresh connect and a fresh egress check (a self-reconnecting connection would
//! resolve the name again, unchecked). It must not retry a command itself: the engine's retry
//! schedule decides.

use herald_core::destination::BrokerTarget;
use herald_core::outcome::TransportError;
use redis::aio::MultiplexedConnection;
use redis::io::AsyncDNSResolver;
use redis::{
    AsyncConnectionConfig, ConnectionAddr, IntoConnectionInfo, RedisError, RedisFuture,
    TlsCertificates,
};
use std::net::SocketAddr;

use super::pool::Pooled;
use super::tls::is_tls_error;
use super::{checked_addr, signature_of, timed, Acked, Failure, Outgoing};

pub(crate) type RedisTransport = Pooled<MultiplexedConnection>;

impl Pooled<MultiplexedConnection> {
    pub async fn publish(&self, url: &str, target: &BrokerTarget, out: &Outgoing<'_>) -> Acked {
        let mut conn = self
            .pool
            .get(url, |_| true, || self.connect(target))
            .await?;
        let mut cmd = redis::cmd("XADD");
        cmd.arg(&target.stream);
        if let Some(n) = target.max_len {
            // Approximate trimming: exact MAXLEN makes Redis trim on every XADD.
            cmd.arg("MAXLEN").arg("~").arg(n);
        }
        cmd.arg("*")
            .arg("id")
            .arg(out.msg_id)
            .arg("event_type")
            .arg(out.event_type)
            .arg("timestamp")
            .arg(out.timestamp)
            .arg("signature")
            .arg(signature_of(out))
            .arg("payload")
            .arg(out.body.as_ref());
        let sent = timed(&self.limits, "XADD", async {
            cmd.query_async::<String>(&mut conn).await.map_err(classify)
        })
        .await;
        match sent {
            Ok(entry) => Ok(format!("XADD {}: {entry}", target.stream)),
            Err(f) => {
                // The connection does not reconnect by itself and says nothing of its health:
                // after any failure the next delivery connects afresh (and checks the address
                // again), at the cost of one reconnect after a refused command.
                self.pool.forget(url).await;
                Err(f)
            }
        }
    }

    async fn connect(&self, target: &BrokerTarget) -> Result<MultiplexedConnection, Failure> {
        let addr = checked_addr(&self.limits, target).await?;
        let mut info = target
            .connect_url
            .as_str()
            .into_connection_info()
            .map_err(|e| Failure::new(TransportError::Other, e))?;
        let client = match &mut info.addr {
            ConnectionAddr::TcpTls { insecure, .. } => {
                // Verification stays on whatever the URL says (Herald refuses fragments, so
                // `#insecure` cannot arrive here; this holds even if that changed).
                *insecure = false;
                let roots = self.limits.trust.roots()?;
                let certs = TlsCertificates {
                    client_tls: None,
                    root_cert: Some(roots.pem.clone()),
                };
                redis::Client::build_with_tls(info, certs)
            }
            _ => redis::Client::open(info),
        }
        .map_err(classify)?;
        // The library resolves the host through this resolver, which answers only the checked
        // address; the host name itself stays the TLS server name.
        let cfg = AsyncConnectionConfig::new()
            .set_connection_timeout(self.limits.connect_timeout)
            .set_response_timeout(self.limits.request_timeout)
            .set_dns_resolver(Pinned(addr));
        let connecting = client.get_multiplexed_async_connection_with_config(&cfg);
        match tokio::time::timeout(self.limits.connect_timeout, connecting).await {
            Ok(r) => r.map_err(classify),
            Err(_) => Err(Failure::new(
                TransportError::Timeout,
                "connecting to redis timed out",
            )),
        }
    }
}

/// A DNS resolver that knows one answer: the address Herald checked.
struct Pinned(SocketAddr);

impl AsyncDNSResolver for Pinned {
    fn resolve<'a, 'b: 'a>(
        &'a self,
        _host: &'b str,
        _port: u16,
    ) -> RedisFuture<'a, Box<dyn Iterator<Item = SocketAddr> + Send + 'a>> {
        let addr = self.0;
        Box::pin(async move {
            Ok(Box::new(std::iter::once(addr)) as Box<dyn Iterator<Item = SocketAddr> + Send>)
        })
    }
}

fn classify(e: RedisError) -> Failure {
    let kind = if is_tls_error(&e) {
        TransportError::Tls
    } else if e.is_timeout() {
        TransportError::Timeout
    } else if e.is_connection_refusal() || e.is_io_error() || e.is_connection_dropped() {
        TransportError::Connect
    } else {
        TransportError::Other
    };
    Failure::new(kind, format!("redis: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;
    use tokio::io::AsyncReadExt;

    /// The client connects where the pinned resolver says, never resolving the URL's host
    /// itself, and still names that host in the TLS handshake (SNI).
    #[tokio::test]
    async fn rediss_connects_to_the_pinned_address_with_the_host_as_server_name() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        // A name no resolver knows and a port nobody listens on.
        let client = redis::Client::open("rediss://broker.invalid:1/").unwrap();
        let cfg = AsyncConnectionConfig::new()
            .set_connection_timeout(Duration::from_secs(10))
            .set_dns_resolver(Pinned(addr));
        let connecting = tokio::spawn(async move {
            client
                .get_multiplexed_async_connection_with_config(&cfg)
                .await
                .map(|_| ())
        });
        let (mut sock, _) = tokio::time::timeout(Duration::from_secs(10), listener.accept())
            .await
            .expect("the client connected to the pinned address")
            .unwrap();
        let hello = read_some(&mut sock).await;
        assert!(
            hello.windows(14).any(|w| w == b"broker.invalid"),
            "the ClientHello names the URL's host"
        );
        drop(sock);
        let _ = tokio::time::timeout(Duration::from_secs(10), connecting).await;
    }

    async fn read_some(sock: &mut tokio::net::TcpStream) -> Vec<u8> {
        let mut buf = vec![0u8; 4096];
        let mut seen = Vec::new();
        for _ in 0..20 {
            match tokio::time::timeout(Duration::from_secs(5), sock.read(&mut buf)).await {
                Ok(Ok(n)) if n > 0 => seen.extend_from_slice(&buf[..n]),
                _ => break,
            }
            if seen.len() > 64 {
                break;
            }
        }
        seen
    }
}
