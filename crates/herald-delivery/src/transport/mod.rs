//! Where one signed delivery goes: the HTTP client for `http`/`https` endpoints, a broker
//! for `amqp`, `redis` and `nats` endpoints (destinations.md).
//!
//! The engine builds the signed request the same way for every destination and hands it
//! here; whatever happens comes back as a [`SendResult`], so retries, the breaker, the
//! throttle, the attempt log and stats treat a broker exactly like an HTTP receiver. A broker's
//! durable acknowledgement is recorded as status 200 with the broker's reply as the response
//! text; anything short of it is a failed attempt (`connect_error` when the broker cannot be
//! reached, `timeout`, or `request_error` when it refused or did not confirm).
//!
//! This module owns the per-destination connection pools and the egress check of broker
//! addresses. It must not decide what a result means (that is `engine::decide`) and never
//! puts a credential into a result, a log line or an error text.

mod amqp;
mod nats;
mod pool;
mod redis;
mod tls;

use std::net::{IpAddr, SocketAddr};
use std::time::{Duration, Instant};

use bytes::Bytes;
use herald_core::destination::{self, BrokerKind, BrokerTarget};
use herald_core::model::{Endpoint, Message};
use herald_core::outcome::TransportError;
use herald_core::Millis;
use http::HeaderMap;

use crate::client::{DeliveryClient, SendResult};

/// One delivery as every transport sends it.
pub struct Outgoing<'a> {
    pub msg_id: &'a str,
    pub event_type: &'a str,
    /// Unix seconds, as signed.
    pub timestamp: i64,
    /// The signed headers (signature, content type, custom and forwarded headers).
    pub headers: &'a HeaderMap,
    pub body: Bytes,
}

/// A failed broker operation, before it becomes a [`SendResult`].
#[derive(Debug)]
pub(crate) struct Failure {
    pub kind: TransportError,
    pub detail: String,
}

impl Failure {
    pub(crate) fn new(kind: TransportError, detail: impl std::fmt::Display) -> Self {
        Self {
            kind,
            detail: detail.to_string(),
        }
    }
}

/// What a transport's successful publish answered (recorded as the attempt's response).
pub(crate) type Acked = Result<String, Failure>;

/// Timeouts and egress rules the broker transports share with the HTTP client.
#[derive(Clone)]
pub(crate) struct Limits {
    pub policy: std::sync::Arc<herald_core::ssrf::EgressPolicy>,
    pub connect_timeout: Duration,
    pub request_timeout: Duration,
    /// The roots broker TLS trusts (platform roots plus `ca_bundle`).
    pub trust: std::sync::Arc<tls::Trust>,
}

/// Every way out of Herald, with a connection pool per broker destination.
pub struct Transports {
    http: DeliveryClient,
    limits: Limits,
    redis: redis::RedisTransport,
    nats: nats::NatsTransport,
    amqp: amqp::AmqpTransport,
}

impl Transports {
    /// The HTTP client (also the holder of the egress rules).
    pub fn http(&self) -> &DeliveryClient {
        &self.http
    }

    pub fn new(http: DeliveryClient) -> Self {
        let (connect_timeout, request_timeout) = http.timeouts();
        let limits = Limits {
            policy: http.policy().clone(),
            connect_timeout,
            request_timeout,
            trust: std::sync::Arc::new(tls::Trust::new(http.ca_bundle_pem().map(<[u8]>::to_vec))),
        };
        Self {
            http,
            redis: redis::RedisTransport::new(limits.clone()),
            nats: nats::NatsTransport::new(limits.clone()),
            amqp: amqp::AmqpTransport::new(limits.clone()),
            limits,
        }
    }

    /// Sends one signed delivery of `msg` to `ep`; `now` is the signing time (millis).
    pub async fn send(
        &self,
        ep: &Endpoint,
        msg: &Message,
        now: Millis,
        method: reqwest::Method,
        headers: HeaderMap,
        body: Bytes,
    ) -> SendResult {
        if BrokerKind::of_url(&ep.url).is_none() {
            return self.http.send_for(ep, method, headers, body).await;
        }
        let start = Instant::now();
        let out = Outgoing {
            msg_id: msg.id.as_str(),
            event_type: &msg.event_type,
            timestamp: now / 1000,
            headers: &headers,
            body,
        };
        let acked = self.publish(&ep.url, &out).await;
        let duration = start.elapsed();
        match acked {
            Ok(reply) => SendResult::Response {
                status: 200,
                retry_after: None,
                location: None,
                body: reply,
                duration,
            },
            Err(f) => SendResult::Failed {
                error: f.kind,
                detail: scrub(&f.detail, &ep.url),
                duration,
            },
        }
    }

    async fn publish(&self, url: &str, out: &Outgoing<'_>) -> Acked {
        let policy = &self.limits.policy;
        // Checked again here: the operator may have dropped the scheme or narrowed
        // `allow_networks` since the endpoint was created.
        let target = destination::validate(policy, &policy.destination_schemes, url)
            .map_err(|e| Failure::new(TransportError::Other, e))?;
        match target.kind {
            BrokerKind::Redis => self.redis.publish(url, &target, out).await,
            BrokerKind::Nats => self.nats.publish(url, &target, out).await,
            BrokerKind::Amqp => self.amqp.publish(url, &target, out).await,
        }
    }
}

/// `detail` without the credentials of `url` (client libraries may quote the URL or the
/// password in an error).
fn scrub(detail: &str, url: &str) -> String {
    let mut d = detail.replace(url, &destination::redact(url));
    if let Some(secret) = destination::secret_of(url) {
        d = d.replace(secret, destination::REDACTED);
        if let Some(decoded) = percent_decode(secret).filter(|s| !s.is_empty()) {
            d = d.replace(&decoded, destination::REDACTED);
        }
    }
    d
}

fn percent_decode(s: &str) -> Option<String> {
    url::form_urlencoded::parse(format!("x={}", s.replace('+', "%2B")).as_bytes())
        .next()
        .map(|(_, v)| v.into_owned())
}

/// Resolves the broker's host and keeps the addresses the egress policy allows, like the
/// HTTP client's resolver: a name that resolves only to refused addresses is
/// `blocked_address`. The transports connect to the returned address, never to the name
/// again; with TLS the name is only the SNI and the name the certificate must carry.
pub(crate) async fn checked_addr(
    limits: &Limits,
    target: &BrokerTarget,
) -> Result<SocketAddr, Failure> {
    let url = url::Url::parse(&target.connect_url)
        .map_err(|e| Failure::new(TransportError::Other, format!("invalid URL: {e}")))?;
    let host = host_of(&url);
    let port = url.port().unwrap_or(default_port(url.scheme()));
    let lookup = tokio::time::timeout(
        limits.connect_timeout,
        tokio::net::lookup_host((host.as_str(), port)),
    );
    let addrs: Vec<SocketAddr> = match lookup.await {
        Ok(Ok(a)) => a.collect(),
        Ok(Err(e)) => return Err(Failure::new(TransportError::Dns, format!("{host}: {e}"))),
        Err(_) => {
            return Err(Failure::new(
                TransportError::Timeout,
                format!("resolving {host} timed out"),
            ))
        }
    };
    let blocked: Option<IpAddr> = addrs.first().map(|a| a.ip());
    match addrs.into_iter().find(|a| limits.policy.is_allowed(a.ip())) {
        Some(a) => Ok(a),
        None => Err(match blocked {
            Some(ip) => Failure::new(
                TransportError::BlockedAddress,
                format!("{host} resolves only to refused addresses (e.g. {ip})"),
            ),
            None => Failure::new(TransportError::Dns, format!("{host} has no address")),
        }),
    }
}

/// The URL's host without IPv6 brackets: what is resolved, and with TLS the server name.
pub(crate) fn host_of(url: &url::Url) -> String {
    url.host_str()
        .unwrap_or_default()
        .trim_start_matches('[')
        .trim_end_matches(']')
        .to_string()
}

fn default_port(scheme: &str) -> u16 {
    match scheme {
        "amqps" => 5671,
        "amqp" => 5672,
        "redis" | "rediss" => 6379,
        _ => 4222,
    }
}

/// The signed header values a broker message carries (the same names as on an HTTP request:
/// `webhook-id`, `webhook-timestamp`, `webhook-signature` for the standard scheme), plus
/// `event-type`. Header values that are not text are left out.
pub(crate) fn message_headers(out: &Outgoing<'_>) -> Vec<(String, String)> {
    let mut h: Vec<(String, String)> = out
        .headers
        .iter()
        .filter_map(|(k, v)| Some((k.as_str().to_string(), v.to_str().ok()?.to_string())))
        .collect();
    h.push(("event-type".into(), out.event_type.to_string()));
    h
}

/// The signature header's value whatever the endpoint's scheme (Redis has one field for it).
pub(crate) fn signature_of(out: &Outgoing<'_>) -> String {
    ["webhook-signature", "svix-signature", "x-hub-signature-256"]
        .iter()
        .find_map(|n| out.headers.get(*n)?.to_str().ok())
        .unwrap_or_default()
        .to_string()
}

/// Runs `fut` under the request timeout.
pub(crate) async fn timed<T>(
    limits: &Limits,
    what: &str,
    fut: impl std::future::Future<Output = Result<T, Failure>>,
) -> Result<T, Failure> {
    match tokio::time::timeout(limits.request_timeout, fut).await {
        Ok(r) => r,
        Err(_) => Err(Failure::new(
            TransportError::Timeout,
            format!(
                "{what}: no answer within {} ms",
                limits.request_timeout.as_millis()
            ),
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scrub_hides_encoded_and_decoded_credentials() {
        let url = "amqp://u:p%40ss@h/v?routingKey=q";
        let d = scrub(
            "auth failed for amqp://u:p%40ss@h/v?routingKey=q (p@ss)",
            url,
        );
        assert!(!d.contains("p%40ss") && !d.contains("p@ss"), "{d}");
        assert!(d.contains("amqp://u:***@h/v"), "{d}");
    }
}
