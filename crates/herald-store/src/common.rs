//! What both backends decide the same way, kept out of their SQL: the verdicts an ingestion
//! writes into its request-log row, the statements of a retention pass and the SQL fragments
//! both spell alike (parameter marks given by the caller), the typed JSON columns of a source, a
//! publish's fan-out, what a release of held inbound events does request by request, and the
//! check value that proves the configured encryption key is the database's. No I/O here, and
//! nothing that depends on a backend's dialect.

use std::collections::BTreeMap;

use herald_core::crypto::SecretBox;
use herald_core::ids::{AppId, AttemptId, EndpointId, MessageId};
use herald_core::model::{InboundRequest, InboundStatus, Message};
use herald_core::ordering::{decide, plan_release, Decision};
use herald_core::Millis;

use herald_core::inbound::Verification;
use herald_core::source::SourceOptions;
use serde::de::DeserializeOwned;

use crate::page::Arg;
use crate::status::{PENDING, SENDING};
use crate::{Claimed, IngestOutcome, OrderCheck, Result, StoreError};

/// Plaintext of the check value (`meta.key_check`) that proves the configured key matches the
/// database: stored encrypted under the key the secrets are sealed with.
const KEY_CHECK: &str = "herald-encryption-key-check";

/// The check value to store for `key`.
pub(crate) fn key_check(key: &SecretBox) -> String {
    key.encrypt(KEY_CHECK)
}

/// Whether the stored check value `stored` was written with `key`; any other key (or a value
/// it cannot open) is [`StoreError::KeyMismatch`].
pub(crate) fn verify_key(key: &SecretBox, stored: &str) -> Result<()> {
    match key.decrypt(stored) {
        Ok(v) if v == KEY_CHECK => Ok(()),
        _ => Err(StoreError::KeyMismatch),
    }
}

/// The ordering decision for `o` after `last`; `None` when that sequence is already held.
pub(crate) fn order_decision(held: bool, last: Option<i64>, o: &OrderCheck) -> Option<Decision> {
    (!held).then(|| decide(last, o.seq, o.gap_timeout_ms))
}

/// Marks `req` as a repeat of the message `first` (its dedup key was seen in the window).
pub(crate) fn duplicate(req: &mut InboundRequest, first: String) -> IngestOutcome {
    req.status = InboundStatus::Duplicate;
    req.msg_id = Some(MessageId(first.clone()));
    IngestOutcome::Duplicate(MessageId(first))
}

/// Marks `req` stale: its sequence is already waiting (`decision` `None`) or not above `last`.
pub(crate) fn stale(
    req: &mut InboundRequest,
    o: &OrderCheck,
    decision: Option<Decision>,
    last: Option<i64>,
) -> IngestOutcome {
    req.status = InboundStatus::Stale;
    req.reason = Some(match decision {
        None => format!("sequence {} is already waiting", o.seq),
        _ => format!(
            "sequence {} is not above the last accepted ({})",
            o.seq,
            last.unwrap_or_default()
        ),
    });
    req.msg_id = None;
    IngestOutcome::Stale
}

/// Marks `req` held behind a gap after `last`; it becomes `msg` once the gap closes.
pub(crate) fn held(req: &mut InboundRequest, msg: &MessageId, last: Option<i64>) -> IngestOutcome {
    req.status = InboundStatus::Held;
    req.reason = Some(format!(
        "waiting for sequence {} (last accepted: {})",
        last.unwrap_or_default().saturating_add(1),
        last.unwrap_or_default()
    ));
    req.msg_id = Some(msg.clone());
    IngestOutcome::Held(msg.clone())
}

/// Marks `req` accepted as the message `id`.
pub(crate) fn accepted(req: &mut InboundRequest, id: &MessageId) -> IngestOutcome {
    req.status = InboundStatus::Accepted;
    req.msg_id = Some(id.clone());
    IngestOutcome::Accepted(id.clone())
}

/// The tables whose rows (by `app_id`) belong to an application and go with it. Endpoints
/// first: PostgreSQL then takes their row locks before any delivery's, the order claims and
/// attempt records take them in.
pub(crate) const APP_OWNED: [&str; 7] = [
    "endpoints",
    "attempts",
    "deliveries",
    "messages",
    "tokens",
    "inbound_held",
    "source_poll",
];

/// The tables whose rows (by `source_id`) belong to an inbound source and go with it.
pub(crate) const SOURCE_OWNED: [&str; 4] = [
    "inbound_requests",
    "inbound_order",
    "inbound_held",
    "source_poll",
];

/// The IDs of the messages and of the endpoints `claimed` refer to, each once, sorted.
pub(crate) fn referenced_ids(claimed: &[Claimed]) -> (Vec<String>, Vec<String>) {
    let ids = |of: fn(&Claimed) -> &String| {
        let mut v: Vec<String> = claimed.iter().map(|c| of(c).clone()).collect();
        v.sort();
        v.dedup();
        v
    };
    (ids(|c| &c.msg_id.0), ids(|c| &c.endpoint_id.0))
}

/// The smallest message and attempt IDs created at the retention cutoff: IDs sort by creation
/// time, so "created before the cutoff" is a primary-key range.
pub(crate) fn retention_bounds(now: Millis, default_retention_ms: i64) -> (String, String) {
    let cutoff = now - default_retention_ms;
    let bound = |prefix: &str| {
        let ms = u64::try_from(cutoff.max(0)).unwrap_or(0);
        format!("{prefix}{}", ulid::Ulid::from_parts(ms, 0))
    };
    (bound(MessageId::PREFIX), bound(AttemptId::PREFIX))
}

/// The smallest attempt ID created at `ms`: attempts since then are an ID range.
pub(crate) fn attempt_bound(ms: Millis) -> String {
    let ms = u64::try_from(ms.max(0)).unwrap_or(0);
    format!("{}{}", AttemptId::PREFIX, ulid::Ulid::from_parts(ms, 0))
}

/// The hourly counts from `(hour, status, count)` rows of attempts since `since`.
pub(crate) fn hour_counts(since: Millis, rows: Vec<(i64, i64, u64)>) -> Vec<crate::HourCount> {
    let mut out: Vec<crate::HourCount> = Vec::new();
    for (hour, status, n) in rows {
        let start = since + hour * 3_600_000;
        if out.last().is_none_or(|h| h.start != start) {
            out.push(crate::HourCount {
                start,
                ..Default::default()
            });
        }
        if let Some(h) = out.last_mut() {
            match herald_core::model::DeliveryStatus::from_i64(status) {
                herald_core::model::DeliveryStatus::Success => h.success += n,
                herald_core::model::DeliveryStatus::Fail => h.fail += n,
                _ => {}
            }
        }
    }
    out
}

/// The condition of a message whose payload a waiting or in-flight delivery still needs.
pub(crate) fn unfinished_deliveries() -> String {
    format!(
        "NOT EXISTS (SELECT 1 FROM deliveries d WHERE d.msg_id = messages.id \
         AND d.status IN ({PENDING}, {SENDING}))"
    )
}

/// The statements of one retention pass, each with its first parameter; the second is the
/// batch size. The parameters are numbered after `mark` (`?1`… on SQLite, `$1`… on PostgreSQL).
/// Payloads past their message's retention are dropped (the default retention as an ID range,
/// a message's own `retention_ms` by its creation time), never one a waiting or in-flight
/// delivery still needs; attempts keep their row but lose the response body.
pub(crate) fn purge_steps(
    now: Millis,
    default_retention_ms: i64,
    mark: char,
) -> [(String, Arg); 3] {
    let (msg_bound, att_bound) = retention_bounds(now, default_retention_ms);
    let unfinished = unfinished_deliveries();
    [
        (
            format!(
                "UPDATE messages SET payload = NULL WHERE id IN (SELECT id FROM messages \
                 WHERE id < {mark}1 AND retention_ms IS NULL AND payload IS NOT NULL AND {unfinished} LIMIT {mark}2)"
            ),
            Arg::Text(msg_bound),
        ),
        (
            format!(
                "UPDATE messages SET payload = NULL WHERE id IN (SELECT id FROM messages \
                 WHERE retention_ms IS NOT NULL AND payload IS NOT NULL AND created_at + retention_ms < {mark}1 \
                 AND {unfinished} LIMIT {mark}2)"
            ),
            Arg::Int(now),
        ),
        (
            format!(
                "UPDATE attempts SET response = '' WHERE id IN \
                 (SELECT id FROM attempts WHERE id < {mark}1 AND response != '' LIMIT {mark}2)"
            ),
            Arg::Text(att_bound),
        ),
    ]
}

/// The JSON text a value is stored as.
pub(crate) fn json<T: serde::Serialize>(v: &T) -> String {
    serde_json::to_string(v).expect("serializable")
}

/// The JSON text of an optional value (`NULL` when absent).
pub(crate) fn json_opt<T: serde::Serialize>(v: &Option<T>) -> Option<String> {
    v.as_ref().map(json)
}

/// Decodes the stored JSON column `what` of the record `id`. A value that does not decode is
/// [`StoreError::CorruptRecord`], never a default: a corrupt configuration must not quietly
/// become a permissive one.
pub(crate) fn decode<T: DeserializeOwned>(what: &'static str, id: &str, json: &str) -> Result<T> {
    serde_json::from_str(json).map_err(|e| StoreError::CorruptRecord {
        what,
        id: id.to_string(),
        detail: e.to_string(),
    })
}

/// A source's stored verification and options, decoded (see [`decode`]).
pub(crate) fn source_config(
    id: &str,
    verification: &str,
    options: &str,
) -> Result<(Verification, SourceOptions)> {
    let v = decode("source verification", id, verification)?;
    Ok((v, decode("source options", id, options)?))
}

/// A source's verification as stored: without its secrets, which are kept apart (sealed).
pub(crate) fn verification_json(v: &Verification) -> String {
    herald_core::source::verification_without_secrets(v).to_string()
}

/// The deliveries a FIFO endpoint may lease now: of each ordering key's head `(delivery id,
/// status, due at)`, those due by `now`, oldest delivery first, at most `want`.
pub(crate) fn fifo_candidates(
    mut heads: Vec<(i64, i64, Millis)>,
    now: Millis,
    want: u32,
) -> Vec<i64> {
    heads.retain(|h| h.2 <= now);
    heads.sort_by_key(|h| h.0);
    heads.into_iter().take(want as usize).map(|h| h.0).collect()
}

/// What a publish's fan-out needs of an endpoint (the columns `id, event_types, channels,
/// ordering, paused_until` of an enabled one, and its options' `filter`), and no more: fan-out runs for every publish,
/// so decoding whole endpoint rows (secrets, headers, metadata) would be paid per message.
pub(crate) struct Target {
    pub id: String,
    pub event_types: Option<Vec<String>>,
    pub channels: Option<Vec<String>>,
    pub fifo: bool,
    pub paused_until: Option<Millis>,
    /// The endpoint's content filter document as stored (JSON text), if it has one.
    pub filter: Option<String>,
}

/// Compiled content filters, shared by every store of the process: a filter is compiled when
/// first met and again only when its stored document changes (see
/// [`herald_core::filter::FilterCache`]), not on every publish.
static FILTERS: std::sync::LazyLock<herald_core::filter::FilterCache> =
    std::sync::LazyLock::new(Default::default);

/// One delivery a publish queues.
pub(crate) struct FanOut {
    pub endpoint_id: String,
    /// The message's creation time, or the end of the endpoint's pause.
    pub due: Millis,
    /// For FIFO endpoints only: the message's key, or `""` for messages without one.
    pub ordering_key: Option<String>,
}

/// One delivery row to insert: a publish's fan-out, or a manual resend.
pub(crate) struct NewDelivery<'a> {
    pub msg: &'a str,
    pub ep: &'a str,
    pub app: &'a str,
    /// When it is first due (also its `updated_at`).
    pub due: Millis,
    /// Asked for by hand (a resend), not by a publish.
    pub manual: bool,
    /// For FIFO endpoints only (see [`FanOut::ordering_key`]).
    pub ordering_key: Option<&'a str>,
}

impl<'a> NewDelivery<'a> {
    /// The delivery a resend of `msg` to `ep` adds when there is none: due `now`, without an
    /// ordering key (the resend fixes the keys of a FIFO endpoint afterwards).
    pub(crate) fn resend(msg: &'a str, ep: &'a str, app: &'a str, now: Millis) -> Self {
        Self {
            msg,
            ep,
            app,
            due: now,
            manual: true,
            ordering_key: None,
        }
    }
}

/// The deliveries publishing `msg` queues: one per target subscribed to it whose content
/// filter (if any) matches the payload, or only to the target `only` when the publish names one
/// (an explicit target, e.g. a resend or send-example, is not filtered). The payload is parsed
/// once per publish, and only when some target has a filter.
pub(crate) fn fan_out(msg: &Message, only: Option<&EndpointId>, targets: &[Target]) -> Vec<FanOut> {
    let mut payload: Option<serde_json::Value> = None;
    let mut wanted = |t: &Target| match only {
        Some(id) => t.id == id.0,
        None => {
            herald_core::model::subscribed(
                t.event_types.as_deref(),
                t.channels.as_deref(),
                &msg.event_type,
                msg.channels.as_deref(),
            ) && t.filter.as_deref().is_none_or(|text| {
                FILTERS.get(&t.id, text).is_none_or(|f| {
                    let p = payload.get_or_insert_with(|| {
                        msg.payload
                            .as_deref()
                            .and_then(|p| serde_json::from_str(p).ok())
                            .unwrap_or(serde_json::Value::Null)
                    });
                    f.matches(p)
                })
            })
        }
    };
    targets
        .iter()
        .filter(|t| wanted(t))
        .map(|t| FanOut {
            endpoint_id: t.id.clone(),
            due: t
                .paused_until
                .map_or(msg.created_at, |p| p.max(msg.created_at)),
            ordering_key: t.fifo.then(|| msg.ordering_key.clone().unwrap_or_default()),
        })
        .collect()
}

/// One ordering key of an inbound source: what `inbound_order` keeps a last accepted sequence
/// for and `inbound_held` holds events under.
#[derive(Clone, Copy)]
pub(crate) struct OrderKey<'a> {
    pub source: &'a str,
    pub key: &'a str,
}

impl OrderCheck {
    /// The ordering key this check is about, of the inbound source `source`.
    pub(crate) fn key_of<'a>(&'a self, source: &'a str) -> OrderKey<'a> {
        OrderKey {
            source,
            key: &self.key,
        }
    }
}

/// The log reason of a held request once it went on.
pub(crate) const HELD_REASON: &str = "ordering: was held for an earlier sequence, then went on";

/// What releasing a key's held events does, request by request (see [`plan_release`]).
pub(crate) struct Release {
    /// Held requests overtaken while they waited (now stale), each with the reason to log.
    pub stale: Vec<(String, String)>,
    /// Held requests whose events become messages now, in sequence order.
    pub go: Vec<String>,
    /// The key's new last accepted sequence.
    pub last: i64,
}

/// Plans the release of a key's `held` requests `(request id, sequence)` after `last`;
/// `None` when nothing is held.
pub(crate) fn release(
    held: &[(String, i64)],
    last: i64,
    force_through: Option<i64>,
) -> Option<Release> {
    if held.is_empty() {
        return None;
    }
    let seqs: Vec<i64> = held.iter().map(|(_, s)| *s).collect();
    let plan = plan_release(last, &seqs, force_through);
    let request_of = |seq: &i64| held.iter().find(|(_, s)| s == seq).map(|(r, _)| r.clone());
    let stale = plan.stale.iter().filter_map(|seq| {
        let reason = format!(
            "sequence {seq} was overtaken while it waited (last accepted: {})",
            plan.last
        );
        request_of(seq).map(|r| (r, reason))
    });
    Some(Release {
        stale: stale.collect(),
        go: plan.go.iter().filter_map(request_of).collect(),
        last: plan.last,
    })
}

/// The columns of a held event in `inbound_held`, in [`HeldEvent`]'s order.
pub(crate) const HELD_COLS: &str = "app_id, msg_id, event_type, payload, headers, ordering_key";

/// A held event as `inbound_held` stores it ([`HELD_COLS`]).
pub(crate) struct HeldEvent {
    pub app_id: String,
    pub msg_id: String,
    pub event_type: String,
    pub payload: Option<String>,
    pub headers: Option<BTreeMap<String, String>>,
    pub ordering_key: Option<String>,
}

impl HeldEvent {
    /// The message the event of `source` becomes when it goes on at `now`. Held events carry
    /// their source's channel like every inbound message.
    pub fn into_message(self, source: &str, now: Millis) -> Message {
        Message {
            app_id: AppId(self.app_id),
            id: MessageId(self.msg_id),
            event_type: self.event_type,
            payload: self.payload,
            headers: self.headers,
            ordering_key: self.ordering_key,
            event_id: None,
            channels: Some(vec![herald_core::model::source_channel(source)]),
            created_at: now,
            retention_ms: None,
        }
    }
}
