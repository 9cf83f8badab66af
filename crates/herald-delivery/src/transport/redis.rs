//! Redis Streams destinations (`redis`, `rediss`): one `XADD` per delivery with the fields
//! `id`, `event_type`, `timestamp`, `signature` and `payload`; the reply (the entry's ID) is
//! the acknowledgement.
//!
//! One `ConnectionManager` per destination, which multiplexes concurrent deliveries over one
//! connection and reconnects by itself; a connection-level error also drops it from the pool
//! so the next attempt starts from a fresh connect (and a fresh egress check). It must not
//! retry a command itself: the engine's retry schedule decides.

use herald_core::destination::BrokerTarget;
use herald_core::outcome::TransportError;
use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use redis::{ConnectionAddr, IntoConnectionInfo, RedisError};

use super::pool::Pooled;
use super::{checked_addr, signature_of, timed, Acked, Failure, Outgoing};

pub(crate) type RedisTransport = Pooled<ConnectionManager>;

impl Pooled<ConnectionManager> {
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
                if matches!(f.kind, TransportError::Connect | TransportError::Timeout) {
                    self.pool.forget(url).await;
                }
                Err(f)
            }
        }
    }

    async fn connect(&self, target: &BrokerTarget) -> Result<ConnectionManager, Failure> {
        let addr = checked_addr(&self.limits, target).await?;
        let mut info = target
            .connect_url
            .as_str()
            .into_connection_info()
            .map_err(|e| Failure::new(TransportError::Other, e))?;
        // Plain TCP goes to the checked address; TLS needs the name for the certificate.
        if let ConnectionAddr::Tcp(host, port) = &mut info.addr {
            *host = addr.ip().to_string();
            *port = addr.port();
        }
        let client = redis::Client::open(info).map_err(classify)?;
        let cfg = ConnectionManagerConfig::new()
            .set_connection_timeout(self.limits.connect_timeout)
            .set_response_timeout(self.limits.request_timeout)
            .set_number_of_retries(1);
        let connecting = ConnectionManager::new_with_config(client, cfg);
        match tokio::time::timeout(self.limits.connect_timeout, connecting).await {
            Ok(r) => r.map_err(classify),
            Err(_) => Err(Failure::new(
                TransportError::Timeout,
                "connecting to redis timed out",
            )),
        }
    }
}

fn classify(e: RedisError) -> Failure {
    let kind = if e.is_timeout() {
        TransportError::Timeout
    } else if e.is_connection_refusal() || e.is_io_error() || e.is_connection_dropped() {
        TransportError::Connect
    } else {
        TransportError::Other
    };
    Failure::new(kind, format!("redis: {e}"))
}
