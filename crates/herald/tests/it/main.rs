//! Herald's integration tests: one binary, real servers on `127.0.0.1:0`.
//!
//! - `brokers`: broker destinations (Redis Streams, NATS JetStream, RabbitMQ) against real
//!   brokers started by `broker_procs`, through a broker restart
//! - `brokers_tls`: `rediss` and `amqps` against real TLS brokers: the operator's CA bundle,
//!   an untrusted certificate, a certificate for another name
//! - `common`: the harness (server, asserting client, scriptable receiver, polling, verifier)
//! - `batch`: batching endpoints: signed JSON-array requests, per-delivery attempts, FIFO
//! - `api`: the management API of outbound-api.md, route by route
//! - `console`: the operator console's sign-in, sessions, headers, CSRF and escaping
//! - `delivery`: what a receiver observes, per delivery.md
//! - `guardrails`: isolation, caps, throttle, breaker, FIFO, operational events
//! - `inbound`: sources and the ingestion endpoint, vectors through real sources
//! - `listen`: `herald listen` as a real process between a real server and a real receiver
//! - `openapi`: the OpenAPI document covers every route; the docs page is served
//! - `pull`: polling endpoints (`url` `poll:`): pages, acknowledgement, poll-only tokens
//! - `reconcile`: reconciliation sources (`poll` on a source) against a fake provider
//! - `ops`: operational hardening (connection timeouts, start-up environment, health after a
//!   failed write, attempt errors of reset connections), one test per defect

mod api;
mod batch;
mod broker_procs;
mod brokers;
mod brokers_tls;
mod cli;
mod common;
mod console;
mod console_endpoints;
mod console_ops;
mod delivery;
mod encryption;
mod guardrails;
mod hardening;
mod inbound;
mod listen;
mod metrics;
mod mtls;
mod openapi;
mod ops;
/// Fresh PostgreSQL databases, shared with the store's tests.
#[allow(dead_code)] // `admin_url` is for the binaries that fail under CI without a database
#[path = "../../../herald-store/tests/pg_support/mod.rs"]
mod pg_support;
mod pki;
mod portal;
mod pull;
mod reconcile;
mod routing;
mod transformation;
