//! Broker destinations (destinations.md): which endpoint `url` schemes name a message broker
//! instead of an HTTP receiver, how such a URL is checked, and how the credentials it carries
//! are redacted for answers and logs and sealed for storage.
//!
//! Pure, like the rest of herald-core: it parses strings and classifies literal addresses with
//! the same [`EgressPolicy`] as HTTP endpoints; it never resolves names or opens connections
//! (herald-delivery's transports do, and check every resolved address again).
//!
//! Credentials are handled on the raw string, not through `url::Url`'s setters, so that what
//! is stored is exactly what the operator sent apart from the password (re-serialising would
//! normalise paths and percent-encoding, and the broker clients parse the string themselves).

use std::borrow::Cow;
use std::net::IpAddr;

use url::{Host, Url};

pub use crate::broker::BrokerKind;
use crate::ssrf::{EgressPolicy, UrlError, MAX_URL_LEN};

/// What stands for a redacted credential in answers and logs.
pub const REDACTED: &str = "***";

/// Why a broker URL is refused.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum DestinationError {
    #[error("URL scheme `{0}` is not enabled (destination_schemes)")]
    NotEnabled(&'static str),
    #[error("{0}")]
    Url(#[from] UrlError),
    #[error("broker URL: {0}")]
    Broker(String),
}

/// Where and how a broker URL publishes, as the transports use it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BrokerTarget {
    pub kind: BrokerKind,
    /// The URL without Herald's own query parameters (what the client library connects to).
    pub connect_url: String,
    /// AMQP exchange (empty: the default exchange).
    pub exchange: String,
    /// AMQP routing key.
    pub routing_key: String,
    /// Redis stream key.
    pub stream: String,
    /// Redis `MAXLEN ~` trim (`None`: no trimming).
    pub max_len: Option<u64>,
    /// NATS subject.
    pub subject: String,
}

/// Checks a broker URL for an endpoint: the scheme is enabled, the URL parses, names a host
/// the egress policy does not refuse (literal addresses here; names when connecting), and
/// carries the parameters its kind needs. `enabled` lists the `destination_schemes`.
pub fn validate(
    policy: &EgressPolicy,
    enabled: &[BrokerKind],
    raw: &str,
) -> Result<BrokerTarget, DestinationError> {
    let kind = BrokerKind::of_url(raw).ok_or(UrlError::BadScheme)?;
    if !enabled.contains(&kind) {
        return Err(DestinationError::NotEnabled(kind.name()));
    }
    if raw.len() > MAX_URL_LEN {
        return Err(UrlError::TooLong.into());
    }
    let url = Url::parse(raw).map_err(|e| UrlError::Invalid(e.to_string()))?;
    let ip = match url.host() {
        None | Some(Host::Domain("")) => return Err(UrlError::NoHost.into()),
        Some(Host::Domain(d)) => literal_in_domain(d),
        Some(Host::Ipv4(v4)) => Some(IpAddr::V4(v4)),
        Some(Host::Ipv6(v6)) => Some(IpAddr::V6(v6)),
    };
    if let Some(ip) = ip.filter(|ip| !policy.is_allowed(*ip)) {
        return Err(UrlError::BlockedAddress(ip).into());
    }
    if url.fragment().is_some() {
        return Err(broker("a fragment (#…) is not allowed"));
    }
    target(kind, &url)
}

/// The address a host of a non-special scheme stands for, if it is one: the URL parser keeps
/// such hosts opaque (`redis://10.0.0.1` has a *domain* `10.0.0.1`), while the resolver would
/// read it — and decimal or hex forms like `2130706433` — as an address. Reading the host the
/// way an `http` URL's host is read catches every form the resolver accepts.
fn literal_in_domain(domain: &str) -> Option<IpAddr> {
    match Url::parse(&format!("http://{domain}/")).ok()?.host()? {
        Host::Ipv4(v4) => Some(IpAddr::V4(v4)),
        Host::Ipv6(v6) => Some(IpAddr::V6(v6)),
        Host::Domain(_) => None,
    }
}

fn broker(msg: impl Into<String>) -> DestinationError {
    DestinationError::Broker(msg.into())
}

/// Reads the kind's parameters out of the query and checks them.
fn target(kind: BrokerKind, url: &Url) -> Result<BrokerTarget, DestinationError> {
    let mut t = BrokerTarget {
        kind,
        connect_url: String::new(),
        exchange: String::new(),
        routing_key: String::new(),
        stream: String::new(),
        max_len: None,
        subject: String::new(),
    };
    let mut seen = Vec::new();
    for (k, v) in url.query_pairs() {
        if !kind.params().contains(&k.as_ref()) {
            return Err(broker(format!(
                "unknown query parameter `{k}` (accepted: {})",
                kind.params().join(", ")
            )));
        }
        if seen.contains(&k) {
            return Err(broker(format!("query parameter `{k}` is repeated")));
        }
        let v = v.into_owned();
        if v.len() > 255 || v.chars().any(char::is_control) {
            return Err(broker(format!(
                "`{k}` must be at most 255 characters without control characters"
            )));
        }
        match k.as_ref() {
            "exchange" => t.exchange = v,
            "routingKey" => t.routing_key = v,
            "stream" => t.stream = v,
            "maxLen" => {
                t.max_len = Some(
                    v.parse::<u64>()
                        .ok()
                        .filter(|n| *n > 0)
                        .ok_or_else(|| broker("`maxLen` must be a positive integer"))?,
                )
            }
            _ => t.subject = v,
        }
        seen.push(k);
    }
    match kind {
        BrokerKind::Amqp => {
            if t.exchange.is_empty() && t.routing_key.is_empty() {
                return Err(broker(
                    "amqp needs `exchange` or `routingKey` (the queue, on the default exchange)",
                ));
            }
        }
        BrokerKind::Redis => {
            if t.stream.is_empty() {
                return Err(broker("redis needs `stream`"));
            }
            let db = url.path().trim_start_matches('/');
            if !db.is_empty() && db.parse::<u16>().is_err() {
                return Err(broker("the redis path is a database number (`/0`)"));
            }
        }
        BrokerKind::Nats => {
            if !valid_subject(&t.subject) {
                return Err(broker(
                    "nats needs `subject`: dot-separated tokens, no spaces or wildcards",
                ));
            }
            if !matches!(url.path(), "" | "/") {
                return Err(broker("a nats URL has no path"));
            }
        }
    }
    let mut connect = url.clone();
    connect.set_query(None);
    t.connect_url = connect.to_string();
    Ok(t)
}

/// A NATS subject Herald may publish to: non-empty tokens, no wildcards or whitespace.
fn valid_subject(s: &str) -> bool {
    !s.is_empty()
        && s.split('.').all(|tok| {
            !tok.is_empty()
                && tok != "*"
                && tok != ">"
                && !tok.chars().any(|c| c.is_whitespace() || c.is_control())
        })
}

/// Byte range of the userinfo's secret part in `raw`: the password when there is one,
/// otherwise a bare user name (which NATS and Redis read as a token). `None` when the URL
/// carries no credentials or is not a broker URL.
fn secret_span(raw: &str) -> Option<(usize, usize)> {
    BrokerKind::of_url(raw)?;
    let start = raw.find("://")? + 3;
    let rest = &raw[start..];
    let auth_end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let at = rest[..auth_end].rfind('@')?;
    let userinfo = &rest[..at];
    let (s, e) = match userinfo.find(':') {
        Some(colon) => (colon + 1, at),
        None => (0, at),
    };
    (s < e).then_some((start + s, start + e))
}

/// `raw` with its credentials replaced by `***` (`amqp://user:***@host/…`); HTTP URLs and
/// broker URLs without credentials come back as they are.
pub fn redact(raw: &str) -> Cow<'_, str> {
    match secret_span(raw) {
        Some((s, e)) => Cow::Owned(format!("{}{REDACTED}{}", &raw[..s], &raw[e..])),
        None => Cow::Borrowed(raw),
    }
}

/// The credentials `raw` carries, exactly as written (still percent-encoded), for scrubbing
/// them out of client error messages.
pub fn secret_of(raw: &str) -> Option<&str> {
    secret_span(raw).map(|(s, e)| &raw[s..e])
}

/// Whether `raw`'s credentials are the redacted placeholder (an answer sent back unchanged).
pub fn is_redacted(raw: &str) -> bool {
    secret_of(raw) == Some(REDACTED)
}

/// `raw` with `secret` in the place of its credentials (used to keep the stored password when
/// a client sends back a redacted URL).
pub fn with_secret(raw: &str, secret: &str) -> String {
    match secret_span(raw) {
        Some((s, e)) => format!("{}{secret}{}", &raw[..s], &raw[e..]),
        None => raw.to_string(),
    }
}

/// Prefix of a sealed credential inside a stored URL.
const SEALED_PREFIX: &str = "sealed.";

/// Replaces the credentials with `seal(credentials)`, hex-encoded so any cipher text fits the
/// userinfo. Already sealed URLs are left alone.
pub fn seal_secret(raw: &str, seal: impl FnOnce(&str) -> String) -> String {
    match secret_of(raw) {
        Some(s) if !s.starts_with(SEALED_PREFIX) => {
            with_secret(raw, &format!("{SEALED_PREFIX}{}", hex::encode(seal(s))))
        }
        _ => raw.to_string(),
    }
}

/// Reverses [`seal_secret`]; URLs without a sealed credential come back as they are (written
/// before a key existed, or by an older version).
pub fn unseal_secret<E>(
    raw: &str,
    open: impl FnOnce(&str) -> Result<String, E>,
    invalid: E,
) -> Result<String, E> {
    let Some(hexed) = secret_of(raw).and_then(|s| s.strip_prefix(SEALED_PREFIX)) else {
        return Ok(raw.to_string());
    };
    match hex::decode(hexed)
        .ok()
        .and_then(|b| String::from_utf8(b).ok())
    {
        Some(sealed) => Ok(with_secret(raw, &open(&sealed)?)),
        None => Err(invalid),
    }
}

#[cfg(test)]
mod tests;
