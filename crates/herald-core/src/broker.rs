//! The broker kinds an endpoint URL can name (destinations.md) and how a URL's scheme maps to
//! one. Only names and schemes: checking a broker URL is `destination`'s, and the egress
//! policy (`ssrf`) only lists which kinds the operator enabled.

/// The broker kinds, each enabled separately by `destination_schemes`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum BrokerKind {
    /// RabbitMQ over AMQP 0-9-1 (`amqp`, `amqps`).
    Amqp,
    /// Redis Streams (`redis`, `rediss`).
    Redis,
    /// NATS JetStream (`nats`).
    Nats,
}

impl BrokerKind {
    /// The name used in `destination_schemes`.
    pub fn name(self) -> &'static str {
        match self {
            Self::Amqp => "amqp",
            Self::Redis => "redis",
            Self::Nats => "nats",
        }
    }

    /// Parses a `destination_schemes` entry.
    pub fn from_name(s: &str) -> Option<Self> {
        match s {
            "amqp" => Some(Self::Amqp),
            "redis" => Some(Self::Redis),
            "nats" => Some(Self::Nats),
            _ => None,
        }
    }

    /// The broker a URL names, from its scheme (case-insensitive); `None` for anything else,
    /// HTTP included.
    pub fn of_url(url: &str) -> Option<Self> {
        let scheme = url.split_once("://")?.0.to_ascii_lowercase();
        match scheme.as_str() {
            "amqp" | "amqps" => Some(Self::Amqp),
            "redis" | "rediss" => Some(Self::Redis),
            "nats" => Some(Self::Nats),
            _ => None,
        }
    }

    /// Query parameters this kind accepts; anything else is refused so a typo (`routingkey`)
    /// fails at creation instead of delivering somewhere unexpected.
    pub(crate) fn params(self) -> &'static [&'static str] {
        match self {
            Self::Amqp => &["exchange", "routingKey"],
            Self::Redis => &["stream", "maxLen"],
            Self::Nats => &["subject"],
        }
    }
}
