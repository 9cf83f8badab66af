//! Row mapping: the column lists of this dialect (those both backends spell alike are in
//! `crate::cols`) and the functions that turn a row into a domain value (and back into
//! parameters). Queries live in the role files; this module must not run any.

use super::*;

pub(super) use crate::common::{json, json_opt};

pub(crate) fn parse<T: serde::de::DeserializeOwned>(s: &str) -> Result<T> {
    serde_json::from_str(s).map_err(|e| StoreError::Corrupt(e.to_string()))
}

pub(crate) fn parse_opt<T: serde::de::DeserializeOwned>(s: Option<String>) -> Result<Option<T>> {
    s.map(|s| parse(&s)).transpose()
}

pub(crate) fn get<'r, T: sqlx::Decode<'r, Postgres> + sqlx::Type<Postgres>>(
    r: &'r PgRow,
    col: &str,
) -> Result<T> {
    r.try_get(col).map_err(map_pg)
}

pub(crate) fn get_u32(r: &PgRow, col: &str) -> Result<u32> {
    Ok(get::<i64>(r, col)?.clamp(0, u32::MAX as i64) as u32)
}

pub(crate) fn get_u32_opt(r: &PgRow, col: &str) -> Result<Option<u32>> {
    Ok(get::<Option<i64>>(r, col)?.map(|v| v.clamp(0, u32::MAX as i64) as u32))
}

pub(crate) fn app_row(r: &PgRow) -> Result<Application> {
    Ok(Application {
        id: AppId(get(r, "id")?),
        uid: get(r, "uid")?,
        name: get(r, "name")?,
        throttle_rate: get_u32_opt(r, "throttle_rate")?,
        metadata: parse(&get::<String>(r, "metadata")?)?,
        created_at: get(r, "created_at")?,
        updated_at: get(r, "updated_at")?,
    })
}

/// An endpoint's columns as read back (see [`EP_READ`]).
pub(super) const EP_COLS: &str = EP_READ;

/// A publish's fan-out target (see [`common::Target`] for the columns).
pub(crate) fn target_row(r: &PgRow) -> Result<common::Target> {
    Ok(common::Target {
        id: get(r, "id")?,
        event_types: parse_opt(get(r, "event_types")?)?,
        channels: parse_opt(get(r, "channels")?)?,
        fifo: get::<String>(r, "ordering")? == "fifo",
        paused_until: get(r, "paused_until")?,
        filter: get(r, "filter")?,
    })
}

pub(crate) fn held_row(r: &PgRow) -> Result<common::HeldEvent> {
    Ok(common::HeldEvent {
        app_id: get(r, "app_id")?,
        msg_id: get(r, "msg_id")?,
        event_type: get(r, "event_type")?,
        payload: get(r, "payload")?,
        headers: parse_opt(get(r, "headers")?)?,
        ordering_key: get(r, "ordering_key")?,
    })
}

pub(crate) fn ep_row(r: &PgRow) -> Result<Endpoint> {
    let ordering: String = get(r, "ordering")?;
    let scheme: String = get(r, "signature_scheme")?;
    Ok(Endpoint {
        id: EndpointId(get(r, "id")?),
        app_id: AppId(get(r, "app_id")?),
        uid: get(r, "uid")?,
        url: get(r, "url")?,
        description: get(r, "description")?,
        disabled: get(r, "disabled")?,
        event_types: parse_opt(get(r, "event_types")?)?,
        channels: parse_opt(get(r, "channels")?)?,
        throttle_rate: get_u32_opt(r, "throttle_rate")?,
        metadata: parse(&get::<String>(r, "metadata")?)?,
        headers: parse(&get::<String>(r, "headers")?)?,
        retry_schedule: parse_opt(get(r, "retry_schedule")?)?,
        permanent_statuses: parse(&get::<String>(r, "permanent_statuses")?)?,
        ordering: if ordering == "fifo" {
            Ordering::Fifo
        } else {
            Ordering::None
        },
        max_concurrency: get_u32_opt(r, "max_concurrency")?,
        signature_scheme: SignatureScheme::parse(&scheme).unwrap_or_default(),
        secrets: parse::<Vec<StoredSecret>>(&get::<String>(r, "secrets")?)?,
        paused_until: get(r, "paused_until")?,
        created_at: get(r, "created_at")?,
        updated_at: get(r, "updated_at")?,
        options: parse(&get::<String>(r, "options")?)?,
        breaker: BreakerState::from_i64(get(r, "breaker")?),
    })
}

pub(crate) fn ordering_str(o: Ordering) -> &'static str {
    match o {
        Ordering::Fifo => "fifo",
        Ordering::None => "none",
    }
}

/// Binds the 21 written endpoint columns, in `EP_COLS` order, starting at `$1`.
pub(crate) fn bind_ep<'q>(
    q: sqlx::query::Query<'q, Postgres, sqlx::postgres::PgArguments>,
    ep: &'q Endpoint,
) -> sqlx::query::Query<'q, Postgres, sqlx::postgres::PgArguments> {
    q.bind(&ep.id.0)
        .bind(&ep.app_id.0)
        .bind(&ep.uid)
        .bind(&ep.url)
        .bind(&ep.description)
        .bind(ep.disabled)
        .bind(json_opt(&ep.event_types))
        .bind(json_opt(&ep.channels))
        .bind(ep.throttle_rate.map(i64::from))
        .bind(json(&ep.metadata))
        .bind(json(&ep.headers))
        .bind(json_opt(&ep.retry_schedule))
        .bind(json(&ep.permanent_statuses))
        .bind(ordering_str(ep.ordering))
        .bind(ep.max_concurrency.map(i64::from))
        .bind(ep.signature_scheme.as_str())
        .bind(json(&ep.secrets))
        .bind(ep.paused_until)
        .bind(ep.created_at)
        .bind(ep.updated_at)
        .bind(json(&ep.options))
}

pub(crate) fn et_row(r: &PgRow) -> Result<EventType> {
    Ok(EventType {
        name: get(r, "name")?,
        description: get(r, "description")?,
        archived: get(r, "archived")?,
        deprecated: get(r, "deprecated")?,
        schemas: parse_opt(get(r, "schemas")?)?,
        created_at: get(r, "created_at")?,
        updated_at: get(r, "updated_at")?,
    })
}

pub(super) const MSG_COLS: &str =
    "m.id AS m_id, m.app_id AS m_app_id, m.event_id, m.event_type, m.payload, \
    m.channels, m.created_at AS m_created_at, m.retention_ms, m.ordering_key AS m_ordering_key, \
    m.headers AS m_headers";

pub(crate) fn msg_row(r: &PgRow) -> Result<Message> {
    Ok(Message {
        id: MessageId(get(r, "m_id")?),
        app_id: AppId(get(r, "m_app_id")?),
        event_id: get(r, "event_id")?,
        event_type: get(r, "event_type")?,
        payload: get(r, "payload")?,
        channels: parse_opt(get(r, "channels")?)?,
        created_at: get(r, "m_created_at")?,
        retention_ms: get(r, "retention_ms")?,
        ordering_key: get(r, "m_ordering_key")?,
        headers: parse_opt(get(r, "m_headers")?)?,
    })
}

pub(super) const DLV_COLS: &str =
    "d.id AS d_id, d.msg_id AS d_msg_id, d.endpoint_id AS d_endpoint_id, \
    d.app_id AS d_app_id, d.status AS d_status, d.attempts, d.failures, d.next_at, \
    d.updated_at AS d_updated_at";

pub(crate) fn dlv_row(r: &PgRow) -> Result<Delivery> {
    let status = DeliveryStatus::from_i64(get(r, "d_status")?);
    let next: Option<i64> = get(r, "next_at")?;
    Ok(Delivery {
        id: get(r, "d_id")?,
        msg_id: MessageId(get(r, "d_msg_id")?),
        endpoint_id: EndpointId(get(r, "d_endpoint_id")?),
        app_id: AppId(get(r, "d_app_id")?),
        status,
        attempts: get_u32(r, "attempts")?,
        failures: get_u32(r, "failures")?,
        next_attempt_at: match status {
            DeliveryStatus::Pending | DeliveryStatus::Sending => next,
            _ => None,
        },
        updated_at: get(r, "d_updated_at")?,
    })
}

pub(crate) fn att_row(r: &PgRow) -> Result<Attempt> {
    Ok(Attempt {
        id: AttemptId(get(r, "id")?),
        msg_id: MessageId(get(r, "msg_id")?),
        endpoint_id: EndpointId(get(r, "endpoint_id")?),
        app_id: AppId(get(r, "app_id")?),
        delivery_id: get(r, "delivery_id")?,
        url: get(r, "url")?,
        response: get(r, "response")?,
        response_status_code: get::<i64>(r, "status_code")?.clamp(0, u16::MAX as i64) as u16,
        response_duration_ms: get(r, "duration_ms")?,
        status: DeliveryStatus::from_i64(get(r, "status")?),
        trigger_type: if get::<i64>(r, "trigger_type")? == 1 {
            TriggerType::Manual
        } else {
            TriggerType::Scheduled
        },
        error: get(r, "error")?,
        created_at: get(r, "created_at")?,
    })
}

pub(crate) fn src_row(r: &PgRow) -> Result<Source> {
    let id: String = get(r, "id")?;
    let (verification, options) = common::source_config(
        &id,
        &get::<String>(r, "verification")?,
        &get::<String>(r, "options")?,
    )?;
    Ok(Source {
        id: SourceId(id),
        app_id: AppId(get(r, "app_id")?),
        uid: get(r, "uid")?,
        name: get(r, "name")?,
        verification,
        secrets: parse(&get::<String>(r, "secrets")?)?,
        options,
        created_at: get(r, "created_at")?,
        updated_at: get(r, "updated_at")?,
    })
}

pub(crate) fn inreq_row(r: &PgRow) -> Result<InboundRequest> {
    let status: String = get(r, "status")?;
    Ok(InboundRequest {
        id: InboundRequestId(get(r, "id")?),
        source_id: SourceId(get(r, "source_id")?),
        app_id: AppId(get(r, "app_id")?),
        status: InboundStatus::parse(&status).unwrap_or(InboundStatus::Rejected),
        reason: get(r, "reason")?,
        msg_id: get::<Option<String>>(r, "msg_id")?.map(MessageId),
        headers: parse(&get::<String>(r, "headers")?)?,
        body: get(r, "body")?,
        event_type: get(r, "event_type")?,
        created_at: get(r, "created_at")?,
    })
}

pub(crate) fn token_row(r: &PgRow) -> Result<TokenRecord> {
    Ok(TokenRecord {
        id: TokenId(get(r, "id")?),
        name: get(r, "name")?,
        app_id: get::<Option<String>>(r, "app_id")?.map(AppId),
        created_at: get(r, "created_at")?,
    })
}

/// A statement with parameters, as the bind helpers take and return it.
pub(super) type PgQuery<'q> = sqlx::query::Query<'q, Postgres, sqlx::postgres::PgArguments>;

/// The `i`th column of `r` (for statements whose columns have no names worth giving).
pub(crate) fn at<'r, T: sqlx::Decode<'r, Postgres> + sqlx::Type<Postgres>>(
    r: &'r PgRow,
    i: usize,
) -> Result<T> {
    r.try_get(i).map_err(map_pg)
}

pub(crate) fn idempotent_row(r: &PgRow) -> Result<crate::IdempotentResponse> {
    Ok(crate::IdempotentResponse {
        status: get::<i64>(r, "status")? as u16,
        body: get(r, "body")?,
    })
}

/// An endpoint whose breaker is not closed (`app_id, id, url, breaker, breaker_until`).
pub(crate) fn breaker_row(r: &PgRow) -> Result<crate::OpenBreaker> {
    Ok(crate::OpenBreaker {
        app_id: AppId(at(r, 0)?),
        endpoint_id: EndpointId(at(r, 1)?),
        url: at(r, 2)?,
        state: BreakerState::from_i64(at(r, 3)?),
        until: at(r, 4)?,
    })
}
