//! One item of a provider's list: its event ID (the value the source's webhooks deduplicate
//! on), skipped when already ingested or older than the dedup window, otherwise its payload
//! (fetched from the detail URL for GitHub deliveries) ingested through the same steps as a
//! webhook (`crate::service::ingest`: schema, dedup claim, message and request log in one
//! commit), so an event is forwarded once whichever way it came first.
//!
//! It must not verify a signature (Herald fetched the item itself, with the poll's
//! credentials) nor log the poll's headers.

use axum::body::Bytes;
use herald_core::inbound::Request;
use herald_core::model::Source;
use herald_core::reconcile::item_millis;
use http::{HeaderMap, HeaderName, HeaderValue};
use serde_json::Value;
use sha2::{Digest, Sha256};

use super::fetch::Run;
use crate::service::ingest::{clean_event_type, Ingested, Intake};

/// Header marking a request-log row that came from a poll rather than a webhook.
const POLL_MARK: &str = "x-herald-reconciled";

/// What happened to one item.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Seen {
    Accepted,
    Duplicate,
    Quarantined,
    /// Older than the dedup window: left alone (a webhook of it may be forgotten by now).
    Old,
    /// No event ID at `idPath`.
    NoId,
}

impl Seen {
    pub fn label(self) -> &'static str {
        match self {
            Seen::Accepted => "accepted",
            Seen::Duplicate => "duplicate",
            Seen::Quarantined => "quarantined",
            Seen::Old => "old",
            Seen::NoId => "no_id",
        }
    }
}

/// The oldest time an item may have to be taken: the source's dedup window back from `now`.
pub(super) fn window_start(s: &Source, now: i64) -> i64 {
    crate::service::ingest::window_start(&s.options, now)
}

/// The dedup key of an event ID, as ingestion computes it from a webhook.
fn dedup_key(s: &Source, id: &str) -> [u8; 32] {
    Sha256::digest(format!("{}:{id}", s.id).as_bytes()).into()
}

/// Takes one item of a page.
pub(super) async fn take(run: &Run<'_>, it: &Value, since: i64) -> Result<Seen, String> {
    let plan = run.plan;
    let Some(id) = plan.id.text(it) else {
        return Ok(Seen::NoId);
    };
    let at = plan
        .timestamp
        .as_ref()
        .and_then(|p| p.get(it))
        .and_then(item_millis);
    if at.is_some_and(|t| t < since) {
        return Ok(Seen::Old);
    }
    let key = dedup_key(run.source, &id);
    let store = run.st.store();
    if store
        .dedup_seen(key, since)
        .await
        .map_err(|e| format!("storage: {e}"))?
    {
        return Ok(Seen::Duplicate);
    }
    let (payload, headers) = payload_of(run, it).await?;
    let event_type = plan.event_type.as_ref().and_then(|p| p.text(it));
    ingest(run, key, payload, headers, event_type).await
}

/// The item's payload and the original headers that came with it (GitHub keeps them).
async fn payload_of(run: &Run<'_>, it: &Value) -> Result<(Value, HeaderMap), String> {
    let mut headers = HeaderMap::new();
    let payload = match &run.plan.detail {
        Some(d) => {
            let did = d.id.text(it).ok_or("a delivery without an id")?;
            let base = run.plan.url.split('?').next().unwrap_or(&run.plan.url);
            let page = run
                .fetch(&format!("{}/{did}", base.trim_end_matches('/')))
                .await?;
            if let Some(Value::Object(h)) = d.headers.get(&page.doc) {
                for (k, v) in h {
                    let v = v.as_str().and_then(|v| HeaderValue::try_from(v).ok());
                    if let (Ok(k), Some(v)) = (HeaderName::try_from(k.as_str()), v) {
                        headers.insert(k, v);
                    }
                }
            }
            d.payload
                .get(&page.doc)
                .cloned()
                .ok_or("the delivery's detail has no payload")?
        }
        None => match &run.plan.payload {
            Some(p) => p
                .get(it)
                .cloned()
                .ok_or("payloadPath finds nothing in an item")?,
            None => it.clone(),
        },
    };
    headers.insert("content-type", HeaderValue::from_static("application/json"));
    headers.insert(POLL_MARK, HeaderValue::from_static("poll"));
    Ok((payload, headers))
}

/// Ingests a new item through the webhook pipeline's steps after verification.
async fn ingest(
    run: &Run<'_>,
    key: [u8; 32],
    payload: Value,
    headers: HeaderMap,
    event_type: Option<String>,
) -> Result<Seen, String> {
    let body = Bytes::from(payload.to_string());
    let intake = Intake::new(run.st, run.source.clone(), &headers, body, run.now);
    let v = intake.verification().map_err(|e| e.to_string())?;
    let req = Request {
        url: &run.plan.url,
        headers: &headers,
        body: &intake.body,
    };
    let event_type = match event_type {
        Some(t) => clean_event_type(&t),
        None => intake.event_type(&v, &req),
    };
    if intake
        .check_schema(&event_type)
        .await
        .map_err(|e| e.to_string())?
        .is_some()
    {
        return Ok(Seen::Quarantined);
    }
    let mut dedup = intake.dedup(&v, &req);
    dedup.key = key;
    match intake
        .commit(event_type, dedup, &req)
        .await
        .map_err(|e| e.to_string())?
    {
        Ingested::Duplicate(_) => Ok(Seen::Duplicate),
        Ingested::Quarantined(_) => Ok(Seen::Quarantined),
        _ => {
            herald_delivery::telemetry::messages_published("inbound", 1);
            Ok(Seen::Accepted)
        }
    }
}
