//! Row mapping: the column lists of this dialect (those both backends spell alike are in
//! `crate::cols`) and the functions that turn a row into a domain value (and back into
//! parameters). Queries live in the role files; this module must not run any.

use super::*;

pub(super) use crate::common::{json, json_opt};

pub(crate) fn parse<T: serde::de::DeserializeOwned>(s: &str) -> rusqlite::Result<T> {
    serde_json::from_str(s).map_err(|e| {
        rusqlite::Error::FromSqlConversionFailure(0, rusqlite::types::Type::Text, Box::new(e))
    })
}

pub(crate) fn parse_opt<T: serde::de::DeserializeOwned>(
    s: Option<String>,
) -> rusqlite::Result<Option<T>> {
    s.map(|s| parse(&s)).transpose()
}

pub(crate) fn app_row(r: &Row) -> rusqlite::Result<Application> {
    Ok(Application {
        id: AppId(r.get(0)?),
        uid: r.get(1)?,
        name: r.get(2)?,
        throttle_rate: r.get(3)?,
        metadata: parse(&r.get::<_, String>(4)?)?,
        created_at: r.get(5)?,
        updated_at: r.get(6)?,
    })
}

pub(super) const EP_COLS: &str =
    "id, app_id, uid, url, description, disabled, event_types, channels, \
    throttle_rate, metadata, headers, retry_schedule, permanent_statuses, ordering, \
    max_concurrency, signature_scheme, secrets, paused_until, created_at, updated_at, options";

pub(crate) fn ep_row(r: &Row) -> rusqlite::Result<Endpoint> {
    let ordering: String = r.get(13)?;
    let scheme: String = r.get(15)?;
    Ok(Endpoint {
        id: EndpointId(r.get(0)?),
        app_id: AppId(r.get(1)?),
        uid: r.get(2)?,
        url: r.get(3)?,
        description: r.get(4)?,
        disabled: r.get(5)?,
        event_types: parse_opt(r.get(6)?)?,
        channels: parse_opt(r.get(7)?)?,
        throttle_rate: r.get(8)?,
        metadata: parse(&r.get::<_, String>(9)?)?,
        headers: parse(&r.get::<_, String>(10)?)?,
        retry_schedule: parse_opt(r.get(11)?)?,
        permanent_statuses: parse(&r.get::<_, String>(12)?)?,
        ordering: if ordering == "fifo" {
            Ordering::Fifo
        } else {
            Ordering::None
        },
        max_concurrency: r.get(14)?,
        signature_scheme: SignatureScheme::parse(&scheme).unwrap_or_default(),
        secrets: parse::<Vec<StoredSecret>>(&r.get::<_, String>(16)?)?,
        paused_until: r.get(17)?,
        created_at: r.get(18)?,
        updated_at: r.get(19)?,
        options: parse(&r.get::<_, String>(20)?)?,
        breaker: BreakerState::from_i64(r.get(21)?),
    })
}

pub(crate) fn ep_params(ep: &Endpoint) -> [Box<dyn rusqlite::ToSql>; 21] {
    [
        Box::new(ep.id.0.clone()),
        Box::new(ep.app_id.0.clone()),
        Box::new(ep.uid.clone()),
        Box::new(ep.url.clone()),
        Box::new(ep.description.clone()),
        Box::new(ep.disabled),
        Box::new(json_opt(&ep.event_types)),
        Box::new(json_opt(&ep.channels)),
        Box::new(ep.throttle_rate),
        Box::new(json(&ep.metadata)),
        Box::new(json(&ep.headers)),
        Box::new(json_opt(&ep.retry_schedule)),
        Box::new(json(&ep.permanent_statuses)),
        Box::new(match ep.ordering {
            Ordering::Fifo => "fifo",
            Ordering::None => "none",
        }),
        Box::new(ep.max_concurrency),
        Box::new(ep.signature_scheme.as_str()),
        Box::new(json(&ep.secrets)),
        Box::new(ep.paused_until),
        Box::new(ep.created_at),
        Box::new(ep.updated_at),
        Box::new(json(&ep.options)),
    ]
}

pub(crate) fn held_row(r: &Row) -> rusqlite::Result<common::HeldEvent> {
    Ok(common::HeldEvent {
        app_id: r.get(0)?,
        msg_id: r.get(1)?,
        event_type: r.get(2)?,
        payload: r.get(3)?,
        headers: parse_opt(r.get(4)?)?,
        ordering_key: r.get(5)?,
    })
}

pub(crate) fn et_row(r: &Row) -> rusqlite::Result<EventType> {
    Ok(EventType {
        name: r.get(0)?,
        description: r.get(1)?,
        archived: r.get(2)?,
        deprecated: r.get(3)?,
        schemas: parse_opt(r.get(4)?)?,
        created_at: r.get(5)?,
        updated_at: r.get(6)?,
    })
}

pub(super) const MSG_COLS: &str =
    "m.id, m.app_id, m.event_id, m.event_type, m.payload, m.channels, m.created_at, m.retention_ms, \
     m.ordering_key, m.headers";

pub(crate) fn msg_row_at(r: &Row, o: usize) -> rusqlite::Result<Message> {
    Ok(Message {
        id: MessageId(r.get(o)?),
        app_id: AppId(r.get(o + 1)?),
        event_id: r.get(o + 2)?,
        event_type: r.get(o + 3)?,
        payload: r.get(o + 4)?,
        channels: parse_opt(r.get(o + 5)?)?,
        created_at: r.get(o + 6)?,
        retention_ms: r.get(o + 7)?,
        ordering_key: r.get(o + 8)?,
        headers: parse_opt(r.get(o + 9)?)?,
    })
}

/// A message read alone (its columns first).
pub(crate) fn msg_row(r: &Row) -> rusqlite::Result<Message> {
    msg_row_at(r, 0)
}

pub(super) const DLV_COLS: &str =
    "d.id, d.msg_id, d.endpoint_id, d.app_id, d.status, d.attempts, d.failures, d.next_at, d.updated_at";

pub(crate) fn dlv_row(r: &Row) -> rusqlite::Result<Delivery> {
    let status = DeliveryStatus::from_i64(r.get(4)?);
    let next: Option<i64> = r.get(7)?;
    Ok(Delivery {
        id: r.get(0)?,
        msg_id: MessageId(r.get(1)?),
        endpoint_id: EndpointId(r.get(2)?),
        app_id: AppId(r.get(3)?),
        status,
        attempts: r.get(5)?,
        failures: r.get(6)?,
        next_attempt_at: match status {
            DeliveryStatus::Pending | DeliveryStatus::Sending => next,
            _ => None,
        },
        updated_at: r.get(8)?,
    })
}

pub(crate) fn att_row(r: &Row) -> rusqlite::Result<Attempt> {
    Ok(Attempt {
        id: AttemptId(r.get(0)?),
        msg_id: MessageId(r.get(1)?),
        endpoint_id: EndpointId(r.get(2)?),
        app_id: AppId(r.get(3)?),
        delivery_id: r.get(4)?,
        url: r.get(5)?,
        response: r.get(6)?,
        response_status_code: r.get(7)?,
        response_duration_ms: r.get(8)?,
        status: DeliveryStatus::from_i64(r.get(9)?),
        trigger_type: if r.get::<_, i64>(10)? == 1 {
            TriggerType::Manual
        } else {
            TriggerType::Scheduled
        },
        error: r.get(11)?,
        created_at: r.get(12)?,
    })
}

/// A source row; its JSON columns decode afterwards, so that a corrupt one is a
/// [`StoreError::CorruptRecord`] rather than a driver error.
pub(crate) fn src_row(r: &Row) -> rusqlite::Result<Result<Source>> {
    let id: String = r.get(0)?;
    let (verification, options): (String, String) = (r.get(4)?, r.get(6)?);
    let secrets = parse(&r.get::<_, String>(5)?)?;
    let (app_id, uid, name, created_at, updated_at) =
        (AppId(r.get(1)?), r.get(2)?, r.get(3)?, r.get(7)?, r.get(8)?);
    Ok(
        common::source_config(&id, &verification, &options).map(|(verification, options)| Source {
            id: SourceId(id),
            app_id,
            uid,
            name,
            verification,
            secrets,
            options,
            created_at,
            updated_at,
        }),
    )
}

pub(crate) fn inreq_row(r: &Row) -> rusqlite::Result<InboundRequest> {
    let status: String = r.get(3)?;
    Ok(InboundRequest {
        id: InboundRequestId(r.get(0)?),
        source_id: SourceId(r.get(1)?),
        app_id: AppId(r.get(2)?),
        status: InboundStatus::parse(&status).unwrap_or(InboundStatus::Rejected),
        reason: r.get(4)?,
        msg_id: r.get::<_, Option<String>>(5)?.map(MessageId),
        headers: parse(&r.get::<_, String>(6)?)?,
        body: r.get(7)?,
        event_type: r.get(8)?,
        created_at: r.get(9)?,
    })
}

pub(crate) fn token_row(r: &Row) -> rusqlite::Result<TokenRecord> {
    Ok(TokenRecord {
        id: TokenId(r.get(0)?),
        name: r.get(1)?,
        app_id: r.get::<_, Option<String>>(2)?.map(AppId),
        created_at: r.get(3)?,
    })
}

/// A delivery as its lease returns it (`RETURNING id, msg_id, endpoint_id, app_id, attempts,
/// failures, manual`).
pub(crate) fn claimed_row(r: &Row) -> rusqlite::Result<crate::Claimed> {
    Ok(crate::Claimed {
        delivery_id: r.get(0)?,
        msg_id: MessageId(r.get(1)?),
        endpoint_id: EndpointId(r.get(2)?),
        app_id: AppId(r.get(3)?),
        attempts: r.get(4)?,
        failures: r.get(5)?,
        manual: r.get(6)?,
    })
}

pub(crate) fn idempotent_row(r: &Row) -> rusqlite::Result<crate::IdempotentResponse> {
    Ok(crate::IdempotentResponse {
        status: r.get(0)?,
        body: r.get(1)?,
    })
}

/// An endpoint whose breaker is not closed (`app_id, id, url, breaker, breaker_until`).
pub(crate) fn breaker_row(r: &Row) -> rusqlite::Result<crate::OpenBreaker> {
    Ok(crate::OpenBreaker {
        app_id: AppId(r.get(0)?),
        endpoint_id: EndpointId(r.get(1)?),
        url: r.get(2)?,
        state: BreakerState::from_i64(r.get(3)?),
        until: r.get(4)?,
    })
}
