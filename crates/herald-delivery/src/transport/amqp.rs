//! RabbitMQ destinations (`amqp`, `amqps`): one persistent, mandatory publish per delivery
//! on a channel in confirm mode; the broker's publisher confirm is the acknowledgement. The
//! body is the payload; the signed headers and `event-type` are message headers, and the
//! message ID is also the AMQP `message_id` property.
//!
//! One connection and one confirm channel per destination. lapin does not reconnect by
//! itself, so a connection or channel found closed is replaced on the next delivery (after a
//! broker restart the first attempts fail as `connect_error` until the broker accepts
//! connections again). A message the broker could not route (no queue bound) comes back with
//! the confirm and counts as a failure: it was not stored anywhere.
//!
//! The TCP connection is opened here, to the address `checked_addr` returned, and handed to
//! lapin; for `amqps` the TLS handshake runs over it with the URL's host as server name and the
//! roots of `tls` (platform roots plus `ca_bundle`). lapin never resolves the name itself.

use herald_core::destination::BrokerTarget;
use herald_core::outcome::TransportError;
use lapin::options::{BasicPublishOptions, ConfirmSelectOptions};
use lapin::publisher_confirm::Confirmation;
use lapin::tcp::{HandshakeError, HandshakeResult, RustlsConnector, TcpStream};
use lapin::types::{AMQPValue, FieldTable, LongString, ShortString};
use lapin::uri::AMQPUri;
use lapin::{BasicProperties, Channel, Connection, ConnectionProperties};
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use super::pool::Pooled;
use super::tls::is_tls_error;
use super::{checked_addr, host_of, message_headers, timed, Acked, Failure, Outgoing};

/// The connection is kept beside its channel: dropping a lapin `Connection` does not close it,
/// but holding it keeps its status readable.
#[derive(Clone)]
pub(crate) struct Conn {
    conn: std::sync::Arc<Connection>,
    channel: Channel,
}

impl Conn {
    fn alive(&self) -> bool {
        self.conn.status().connected() && self.channel.status().connected()
    }
}

pub(crate) type AmqpTransport = Pooled<Conn>;

/// AMQP delivery mode of a message the broker writes to disk (on a durable queue).
const PERSISTENT: u8 = 2;

impl Pooled<Conn> {
    pub async fn publish(&self, url: &str, target: &BrokerTarget, out: &Outgoing<'_>) -> Acked {
        let conn = self
            .pool
            .get(url, Conn::alive, || self.connect(target))
            .await?;
        let mut headers = FieldTable::default();
        for (k, v) in message_headers(out) {
            headers.insert(
                ShortString::from(k),
                AMQPValue::LongString(LongString::from(v)),
            );
        }
        let content_type = out
            .headers
            .get(http::header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("application/json");
        let props = BasicProperties::default()
            .with_delivery_mode(PERSISTENT)
            .with_message_id(ShortString::from(out.msg_id))
            .with_type(ShortString::from(out.event_type))
            .with_timestamp(out.timestamp.max(0) as u64)
            .with_content_type(ShortString::from(content_type))
            .with_headers(headers);
        let options = BasicPublishOptions {
            mandatory: true,
            ..Default::default()
        };
        let confirmed = timed(&self.limits, "AMQP publish", async {
            let pending = conn
                .channel
                .basic_publish(
                    &target.exchange,
                    &target.routing_key,
                    options,
                    &out.body,
                    props,
                )
                .await
                .map_err(classify)?;
            pending.await.map_err(classify)
        })
        .await;
        match confirmed {
            Ok(Confirmation::Ack(None)) => Ok(format!(
                "publisher confirm: ack (exchange `{}`, routing key `{}`)",
                target.exchange, target.routing_key
            )),
            Ok(Confirmation::Ack(Some(ret))) | Ok(Confirmation::Nack(Some(ret))) => {
                Err(Failure::new(
                    TransportError::Other,
                    format!(
                        "amqp: returned unroutable ({} {}): no queue is bound for routing key `{}`",
                        ret.reply_code, ret.reply_text, target.routing_key
                    ),
                ))
            }
            Ok(Confirmation::Nack(None)) => Err(Failure::new(
                TransportError::Other,
                "amqp: the broker refused the message (publisher nack)",
            )),
            Ok(Confirmation::NotRequested) => Err(Failure::new(
                TransportError::Other,
                "amqp: the channel is not in confirm mode",
            )),
            Err(f) => {
                // The channel may be closed (a refused exchange closes it): start afresh.
                self.pool.forget(url).await;
                Err(f)
            }
        }
    }

    // The stream opener's result type is lapin's (`HandshakeResult`), large error and all.
    #[allow(clippy::result_large_err)]
    async fn connect(&self, target: &BrokerTarget) -> Result<Conn, Failure> {
        let addr = checked_addr(&self.limits, target).await?;
        let url = url::Url::parse(&target.connect_url)
            .map_err(|e| Failure::new(TransportError::Other, e))?;
        let uri: AMQPUri = target
            .connect_url
            .parse()
            .map_err(|e: String| Failure::new(TransportError::Other, format!("amqp: {e}")))?;
        // TLS goes over the connection to the checked address too, with the URL's host as
        // the name the certificate must carry (lapin would resolve the name again).
        let tls = match url.scheme() {
            "amqps" => Some((self.limits.trust.roots()?.amqp.clone(), host_of(&url))),
            _ => None,
        };
        let timeout = self.limits.connect_timeout;
        let open = Box::new(move |_: &AMQPUri| open_stream(addr, tls, timeout));
        let props = ConnectionProperties::default()
            .with_executor(tokio_executor_trait::Tokio::current())
            .with_reactor(tokio_reactor_trait::Tokio);
        let connecting = async {
            let conn = Connection::connector(uri, open, props)
                .await
                .map_err(connect_failure)?;
            let channel = conn.create_channel().await.map_err(classify)?;
            channel
                .confirm_select(ConfirmSelectOptions::default())
                .await
                .map_err(classify)?;
            Ok(Conn {
                conn: std::sync::Arc::new(conn),
                channel,
            })
        };
        match tokio::time::timeout(self.limits.connect_timeout, connecting).await {
            Ok(r) => r,
            Err(_) => Err(Failure::new(
                TransportError::Timeout,
                "connecting to amqp timed out",
            )),
        }
    }
}

/// Opens the TCP connection to `addr` and, for `amqps`, completes the TLS handshake with
/// `name` as the server name. Runs on a blocking thread (lapin's connector API); every step
/// is bounded by `timeout`, so a broker that stalls the handshake cannot hold the thread.
#[allow(clippy::result_large_err)] // lapin's connector API fixes the result type
fn open_stream(
    addr: SocketAddr,
    tls: Option<(RustlsConnector, String)>,
    timeout: Duration,
) -> HandshakeResult {
    let stream = TcpStream::connect_timeout(addr, timeout)?;
    let stream = match tls {
        None => stream,
        Some((connector, name)) => {
            stream.set_read_timeout(Some(timeout))?;
            stream.set_write_timeout(Some(timeout))?;
            let deadline = Instant::now() + timeout;
            let mut res = stream.into_rustls(&connector, &name);
            loop {
                match res {
                    Ok(s) => break s,
                    Err(HandshakeError::WouldBlock(mid)) if Instant::now() < deadline => {
                        res = mid.handshake();
                    }
                    Err(HandshakeError::WouldBlock(_)) => {
                        return Err(std::io::Error::new(
                            std::io::ErrorKind::TimedOut,
                            "TLS handshake timed out",
                        )
                        .into())
                    }
                    Err(e) => return Err(e),
                }
            }
        }
    };
    stream.set_nonblocking(true)?;
    Ok(stream)
}

/// A failed connect: a certificate or handshake failure is `tls_error`, anything else
/// `connect_error` (the broker never saw a message).
fn connect_failure(e: lapin::Error) -> Failure {
    let kind = if is_tls_error(&e) {
        TransportError::Tls
    } else {
        TransportError::Connect
    };
    Failure::new(kind, format!("amqp: {e}"))
}

fn classify(e: lapin::Error) -> Failure {
    let kind = match &e {
        lapin::Error::IOError(_) | lapin::Error::InvalidConnectionState(_) => {
            TransportError::Connect
        }
        _ => TransportError::Other,
    };
    Failure::new(kind, format!("amqp: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Read;

    /// `amqps` connects to the checked address, not to the name, and names the URL's host in
    /// the TLS handshake (SNI); a stalled handshake ends within the timeout.
    #[test]
    fn amqps_connects_to_the_checked_address_with_the_host_as_server_name() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let roots = super::super::tls::Trust::new(None).roots().expect("roots");
        let tls = Some((roots.amqp.clone(), "broker.invalid".to_string()));
        let opening = std::thread::spawn(move || {
            open_stream(addr, tls, Duration::from_millis(500)).map_err(|e| e.to_string())
        });
        let (mut sock, _) = listener.accept().expect("connected to the checked address");
        sock.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        let mut hello = vec![0u8; 4096];
        let n = sock.read(&mut hello).unwrap_or(0);
        assert!(
            hello[..n].windows(14).any(|w| w == b"broker.invalid"),
            "the ClientHello names the URL's host"
        );
        // The listener never answers: the handshake gives up.
        let res = opening.join().expect("no panic");
        assert!(res.is_err(), "a handshake without an answer fails");
        drop(sock);
    }
}
