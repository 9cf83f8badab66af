//! NATS JetStream destinations (`nats`): one JetStream publish per delivery with the signed
//! headers, `event-type`, and `Nats-Msg-Id` = the message ID (the server drops duplicates
//! within the stream's duplicate window); the stream's publish ack is the acknowledgement.
//!
//! One client per destination. The client reconnects by itself after a broker restart;
//! while it is disconnected a delivery fails at once as `connect_error` instead of waiting
//! for the ack to time out. Servers the broker advertises are ignored: Herald connects only
//! to the address it checked against the egress rules.

use async_nats::connection::State;
use async_nats::jetstream;
use herald_core::destination::BrokerTarget;
use herald_core::outcome::TransportError;

use super::pool::Pooled;
use super::{checked_addr, message_headers, percent_decode, timed, Acked, Failure, Outgoing};

#[derive(Clone)]
pub(crate) struct Conn {
    client: async_nats::Client,
    js: jetstream::Context,
}

pub(crate) type NatsTransport = Pooled<Conn>;

impl Pooled<Conn> {
    pub async fn publish(&self, url: &str, target: &BrokerTarget, out: &Outgoing<'_>) -> Acked {
        let conn = self
            .pool
            .get(url, |_| true, || self.connect(target))
            .await?;
        if conn.client.connection_state() != State::Connected {
            return Err(Failure::new(
                TransportError::Connect,
                "nats: not connected (the client is reconnecting)",
            ));
        }
        let mut headers = async_nats::HeaderMap::new();
        for (k, v) in message_headers(out) {
            headers.insert(k.as_str(), v.as_str());
        }
        headers.insert(async_nats::header::NATS_MESSAGE_ID, out.msg_id);
        let subject = target.subject.clone();
        let ack = timed(&self.limits, "JetStream publish", async {
            let pending = conn
                .js
                .publish_with_headers(subject, headers, out.body.clone())
                .await
                .map_err(|e| Failure::new(TransportError::Other, format!("nats: {e}")))?;
            pending
                .await
                .map_err(|e| Failure::new(TransportError::Other, format!("nats: {e}")))
        })
        .await?;
        Ok(format!(
            "JetStream ack: stream {} seq {}{}",
            ack.stream,
            ack.sequence,
            if ack.duplicate { " (duplicate)" } else { "" }
        ))
    }

    async fn connect(&self, target: &BrokerTarget) -> Result<Conn, Failure> {
        let addr = checked_addr(&self.limits, target).await?;
        let url = url::Url::parse(&target.connect_url)
            .map_err(|e| Failure::new(TransportError::Other, e))?;
        let user = percent_decode(url.username()).unwrap_or_default();
        let mut opts = async_nats::ConnectOptions::new()
            .connection_timeout(self.limits.connect_timeout)
            .ignore_discovered_servers()
            .max_reconnects(None::<usize>);
        opts = match url.password() {
            Some(p) => opts.user_and_password(user, percent_decode(p).unwrap_or_default()),
            None if !user.is_empty() => opts.token(user),
            None => opts,
        };
        let client = opts
            .connect(format!("nats://{addr}"))
            .await
            .map_err(|e| Failure::new(TransportError::Connect, format!("nats: {e}")))?;
        let mut js = jetstream::new(client.clone());
        js.set_timeout(self.limits.request_timeout);
        Ok(Conn { client, js })
    }
}
