//! Batching endpoints (`batch: {maxEvents, maxWaitMs}`): their claimed deliveries wait here,
//! per endpoint, until `maxEvents` are together or the first has waited `maxWaitMs`, then go
//! out as one request — a JSON array of `{id, eventType, timestamp, payload}` signed once with
//! a batch ID of its own — and the one outcome is recorded for every delivery, each with its
//! own attempt record. The endpoint's circuit breaker counts the request once.
//!
//! It owns only that grouping and the batch request. The claim (how many of an endpoint's
//! deliveries may be leased at once: `maxConcurrency × maxEvents`) is the store's; what an
//! answer means and when to retry is `herald_core`'s, through [`crate::engine::decide`]. The
//! deliveries waiting here are leased in the store, so a crash loses nothing: their leases
//! expire and they are claimed again. The wait is capped at half the lease, so a waiting batch
//! is sent well before another node may take its deliveries over.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use herald_core::endpoint_options::BatchOptions;
use herald_core::ids::{BatchId, EndpointId, MessageId};
use herald_core::model::{Endpoint, Message};
use herald_core::signing::signature_headers;
use herald_core::{now_millis, Millis};
use herald_store::Claimed;
use http::{HeaderMap, HeaderName, HeaderValue};
use rand::SeedableRng;
use serde_json::value::RawValue;

use super::{decide, Engine};
use crate::listen;

/// The deliveries of each batching endpoint that wait for their batch to fill.
#[derive(Default)]
pub(crate) struct Batches(parking_lot::Mutex<HashMap<EndpointId, Waiting>>);

struct Waiting {
    /// Tells this batch's timer from a later one's.
    generation: u64,
    items: Vec<(Claimed, Message)>,
}

/// One item of a batch request's body.
#[derive(serde::Serialize)]
#[serde(rename_all = "camelCase")]
struct Item<'a> {
    id: &'a str,
    event_type: &'a str,
    timestamp: String,
    payload: &'a RawValue,
}

/// The batch option of an endpoint this module sends for: an HTTP endpoint that is enabled
/// and not paused (the engine's one-by-one path settles the others as usual).
fn batching(ep: &Endpoint, now: Millis) -> Option<BatchOptions> {
    let b = ep.options.batch?;
    let usable = !ep.disabled
        && ep.paused_until.is_none_or(|p| p <= now)
        && listen::session_of(&ep.url).is_none();
    usable.then_some(b)
}

/// Takes the claimed deliveries of batching endpoints into their batches and returns the rest
/// for the one-by-one path. Full batches (and, with `maxWaitMs` 0, every batch) are sent at once.
pub(crate) fn take(
    engine: &Arc<Engine>,
    claimed: Vec<Claimed>,
    msgs: &HashMap<MessageId, Message>,
    eps: &HashMap<EndpointId, Endpoint>,
) -> Vec<Claimed> {
    let now = now_millis();
    let mut rest = Vec::new();
    let mut touched: Vec<(Endpoint, BatchOptions)> = Vec::new();
    let mut lock = engine.batches.0.lock();
    for c in claimed {
        let ep = eps.get(&c.endpoint_id);
        let msg = msgs.get(&c.msg_id).filter(|m| m.payload.is_some());
        let (Some(ep), Some(msg)) = (ep, msg) else {
            rest.push(c);
            continue;
        };
        let Some(b) = batching(ep, now) else {
            rest.push(c);
            continue;
        };
        let w = lock.entry(ep.id.clone()).or_insert_with(|| {
            touched.push((ep.clone(), b));
            Waiting {
                generation: rand::random(),
                items: Vec::new(),
            }
        });
        w.items.push((c, msg.clone()));
        if w.items.len() >= b.max_events as usize {
            let full = std::mem::take(&mut w.items);
            spawn_send(engine, ep.clone(), full);
        }
    }
    // A batch that started now gets its timer (or, with no wait, goes out at once).
    let max_wait = engine.cfg.lease / 2;
    for (ep, b) in touched {
        let Some(w) = lock.get(&ep.id) else { continue };
        let wait = Duration::from_millis(b.max_wait_ms.into()).min(max_wait);
        if wait.is_zero() || w.items.is_empty() {
            if let Some(w) = lock.remove(&ep.id) {
                if !w.items.is_empty() {
                    spawn_send(engine, ep, w.items);
                }
            }
            continue;
        }
        let (engine, generation) = (engine.clone(), w.generation);
        tokio::spawn(async move {
            tokio::time::sleep(wait).await;
            let due = {
                let mut lock = engine.batches.0.lock();
                match lock.get(&ep.id) {
                    Some(w) if w.generation == generation => lock.remove(&ep.id),
                    _ => None,
                }
            };
            if let Some(w) = due.filter(|w| !w.items.is_empty()) {
                send(engine, ep, w.items).await;
            }
        });
    }
    rest
}

fn spawn_send(engine: &Arc<Engine>, ep: Endpoint, items: Vec<(Claimed, Message)>) {
    tokio::spawn(send(engine.clone(), ep, items));
}

/// The request body: the deliveries in publish order (so a FIFO endpoint's batch is in order).
fn body(items: &[(Claimed, Message)]) -> Vec<u8> {
    let expired = RawValue::from_string(r#"{"expired":true}"#.into()).expect("static JSON");
    let payloads: Vec<Box<RawValue>> = items
        .iter()
        .map(|(_, m)| {
            m.payload
                .as_deref()
                .and_then(|p| RawValue::from_string(p.to_string()).ok())
                .unwrap_or_else(|| expired.clone())
        })
        .collect();
    let list: Vec<Item> = items
        .iter()
        .zip(&payloads)
        .map(|((_, m), p)| Item {
            id: m.id.as_str(),
            event_type: &m.event_type,
            timestamp: chrono::DateTime::from_timestamp_millis(m.created_at)
                .unwrap_or_default()
                .to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
            payload: p,
        })
        .collect();
    serde_json::to_vec(&list).expect("serializable")
}

fn headers(ep: &Endpoint, id: &BatchId, now: Millis, body: &[u8]) -> HeaderMap {
    let mut h = HeaderMap::new();
    for (k, v) in &ep.headers {
        if let (Ok(name), Ok(val)) = (
            HeaderName::try_from(k.as_str()),
            HeaderValue::try_from(v.as_str()),
        ) {
            h.insert(name, val);
        }
    }
    h.insert(
        http::header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    let secrets = ep.valid_secrets(now);
    for (name, value) in signature_headers(ep.signature_scheme, &secrets, &id.0, now / 1000, body) {
        if let Ok(v) = HeaderValue::try_from(value) {
            h.insert(HeaderName::from_static(name), v);
        }
    }
    h
}

/// Sends one batch under one of the engine's request slots and records its outcome for every
/// delivery in it.
async fn send(engine: Arc<Engine>, ep: Endpoint, mut items: Vec<(Claimed, Message)>) {
    let Ok(permit) = engine.slots.clone().acquire_owned().await else {
        return;
    };
    items.sort_by_key(|(c, _)| c.delivery_id);
    let now = now_millis();
    let payload = body(&items);
    let id = BatchId::generate();
    let hdrs = headers(&ep, &id, now, &payload);
    // The endpoint's own client, so its `tls` settings apply to batches too.
    let result = engine
        .transports
        .http()
        .send_for(&ep, reqwest::Method::POST, hdrs, Bytes::from(payload))
        .await;
    let done = now_millis();
    // One draw of retry jitter for the whole batch, so deliveries that failed together are
    // due together and leave again as one batch.
    let seed: u64 = rand::random();
    let records = items
        .iter()
        .enumerate()
        .map(|(i, (c, msg))| {
            let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
            let mut rec = decide(&engine.cfg, c, msg, &ep, result.clone(), done, &mut rng);
            // One request, one result for the breaker.
            rec.breaker.counts = i == 0;
            rec
        })
        .collect();
    // Stored together: one write for the batch, not one per delivery.
    let refs: Vec<(&Claimed, &Message)> = items.iter().map(|(c, m)| (c, m)).collect();
    engine.record_all(&refs, &ep, records, now).await;
    tracing::debug!(batch_id = %id, endpoint_id = %ep.id, deliveries = items.len(), "batch sent");
    drop(permit);
    engine.wake.notify_one();
}

#[cfg(test)]
mod tests {
    use super::*;
    use herald_core::ids::AppId;

    fn item(id: i64, payload: Option<&str>) -> (Claimed, Message) {
        let msg = Message {
            id: MessageId::generate(),
            app_id: AppId::generate(),
            event_id: None,
            event_type: "t".into(),
            payload: payload.map(String::from),
            channels: None,
            created_at: 1_700_000_000_000,
            retention_ms: None,
            ordering_key: None,
            headers: None,
        };
        let c = Claimed {
            delivery_id: id,
            msg_id: msg.id.clone(),
            endpoint_id: EndpointId::generate(),
            app_id: msg.app_id.clone(),
            attempts: 0,
            failures: 0,
            manual: false,
        };
        (c, msg)
    }

    #[test]
    fn the_body_is_an_array_of_events_with_their_payloads_verbatim() {
        let items = vec![item(1, Some(r#"{"a": [1, 2]}"#)), item(2, None)];
        let v: serde_json::Value = serde_json::from_slice(&body(&items)).unwrap();
        assert_eq!(v[0]["id"], items[0].1.id.as_str());
        assert_eq!(v[0]["eventType"], "t");
        assert_eq!(v[0]["timestamp"], "2023-11-14T22:13:20.000Z");
        assert_eq!(v[0]["payload"], serde_json::json!({"a": [1, 2]}));
        assert_eq!(v[1]["payload"], serde_json::json!({"expired": true}));
        let text = String::from_utf8(body(&items)).unwrap();
        assert!(
            text.contains(r#"{"a": [1, 2]}"#),
            "payload bytes kept: {text}"
        );
    }
}
