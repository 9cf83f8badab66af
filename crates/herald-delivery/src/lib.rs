//! Herald's delivery engine: the one outbound HTTP client, the broker transports (AMQP, Redis
//! Streams, NATS JetStream), and the workers that claim due deliveries, sign and send them,
//! and record every attempt.
//!
//! Decisions (what an answer means, when to retry, which addresses are allowed) come from
//! `herald-core`; durability and leases come from `herald-store`. This crate owns the
//! mechanics in between, including the `herald listen` hub that carries deliveries of
//! temporary endpoints over a CLI's WebSocket instead of HTTP. It must not build a second HTTP
//! client anywhere else (clippy's `disallowed-methods` enforces that for the rest of the
//! workspace).

pub mod client;
pub mod encrypt;
pub mod engine;
pub mod listen;
pub mod telemetry;
pub mod tls;
pub mod transform;
pub mod transport;
pub mod upkeep;

pub use client::{validate_tls, ClientConfig, DeliveryClient, Fetched, SendResult};
pub use engine::{decide, Engine, EngineConfig};
pub use listen::ListenHub;
pub use transform::{TransformLimits, TransformPool};
pub use transport::Transports;
