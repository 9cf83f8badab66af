//! Row mapping: the column lists of this dialect (those both backends spell alike are in
//! `crate::cols`) and the functions that turn a row into a domain value (and back into
//! parameters). Queries live in the role files; this module must not run any.

use super::*;

pub(super) fn json<T: serde::Serialize>(v: &T) -> String {
    serde_json::to_string(v).expect("serializable")
}

pub(super) fn json_opt<T: serde::Serialize>(v: &Option<T>) -> Option<String> {
    v.as_ref().map(json)
}

pub(super) fn parse<T: serde::de::DeserializeOwned>(s: &str) -> Result<T> {
    serde_json::from_str(s).map_err(|e| StoreError::Corrupt(e.to_string()))
}

pub(super) fn parse_opt<T: serde::de::DeserializeOwned>(s: Option<String>) -> Result<Option<T>> {
    s.map(|s| parse(&s)).transpose()
}

pub(super) fn get<'r, T: sqlx::Decode<'r, Postgres> + sqlx::Type<Postgres>>(
    r: &'r PgRow,
    col: &str,
) -> Result<T> {
    r.try_get(col).map_err(map_pg)
}

pub(super) fn get_u32(r: &PgRow, col: &str) -> Result<u32> {
    Ok(get::<i64>(r, col)?.clamp(0, u32::MAX as i64) as u32)
}

pub(super) fn get_u32_opt(r: &PgRow, col: &str) -> Result<Option<u32>> {
    Ok(get::<Option<i64>>(r, col)?.map(|v| v.clamp(0, u32::MAX as i64) as u32))
}

pub(super) fn app_row(r: &PgRow) -> Result<Application> {
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

pub(super) const EP_COLS: &str =
    "id, app_id, uid, url, description, disabled, event_types, channels, \
    throttle_rate, metadata, headers, retry_schedule, permanent_statuses, ordering, \
    max_concurrency, signature_scheme, secrets, paused_until, created_at, updated_at, options, \
    breaker";

/// A publish's fan-out target (see [`common::Target`] for the columns).
pub(super) fn target_row(r: &PgRow) -> Result<common::Target> {
    Ok(common::Target {
        id: get(r, "id")?,
        event_types: parse_opt(get(r, "event_types")?)?,
        channels: parse_opt(get(r, "channels")?)?,
        fifo: get::<String>(r, "ordering")? == "fifo",
        paused_until: get(r, "paused_until")?,
        filter: get(r, "filter")?,
    })
}

pub(super) fn held_row(r: &PgRow) -> Result<common::HeldEvent> {
    Ok(common::HeldEvent {
        app_id: get(r, "app_id")?,
        msg_id: get(r, "msg_id")?,
        event_type: get(r, "event_type")?,
        payload: get(r, "payload")?,
        headers: parse_opt(get(r, "headers")?)?,
        ordering_key: get(r, "ordering_key")?,
    })
}

pub(super) fn ep_row(r: &PgRow) -> Result<Endpoint> {
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

pub(super) fn ordering_str(o: Ordering) -> &'static str {
    match o {
        Ordering::Fifo => "fifo",
        Ordering::None => "none",
    }
}

/// Binds the 21 written endpoint columns, in `EP_COLS` order, starting at `$1`.
pub(super) fn bind_ep<'q>(
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

pub(super) fn et_row(r: &PgRow) -> Result<EventType> {
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

pub(super) fn msg_row(r: &PgRow) -> Result<Message> {
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

pub(super) fn dlv_row(r: &PgRow) -> Result<Delivery> {
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

pub(super) fn att_row(r: &PgRow) -> Result<Attempt> {
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

pub(super) fn src_row(r: &PgRow) -> Result<Source> {
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

pub(super) fn inreq_row(r: &PgRow) -> Result<InboundRequest> {
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

pub(super) fn token_row(r: &PgRow) -> Result<TokenRecord> {
    Ok(TokenRecord {
        id: TokenId(get(r, "id")?),
        name: get(r, "name")?,
        app_id: get::<Option<String>>(r, "app_id")?.map(AppId),
        created_at: get(r, "created_at")?,
    })
}

/// A statement with parameters, as the bind helpers take and return it.
pub(super) type PgQuery<'q> = sqlx::query::Query<'q, Postgres, sqlx::postgres::PgArguments>;

/// A record the generic writes ([`PostgresStore::insert`], [`PostgresStore::update`]) store:
/// its table and columns (the statements, [`crate::cols`]) and its values.
pub(super) trait Entity: Table + Send + Sync + 'static {
    /// Binds the values in `COLS` order; an update leaves `created_at` out.
    fn bind<'q>(&'q self, q: PgQuery<'q>, insert: bool) -> PgQuery<'q>;
}

/// The stamps closing every entity's parameters: `created_at` on insert only, then `updated_at`.
fn stamped(q: PgQuery<'_>, insert: bool, created_at: Millis, updated_at: Millis) -> PgQuery<'_> {
    let q = if insert { q.bind(created_at) } else { q };
    q.bind(updated_at)
}

impl Entity for Application {
    fn bind<'q>(&'q self, q: PgQuery<'q>, insert: bool) -> PgQuery<'q> {
        let q = q
            .bind(&self.id.0)
            .bind(&self.uid)
            .bind(&self.name)
            .bind(self.throttle_rate.map(i64::from))
            .bind(json(&self.metadata));
        stamped(q, insert, self.created_at, self.updated_at)
    }
}

impl Entity for EventType {
    fn bind<'q>(&'q self, q: PgQuery<'q>, insert: bool) -> PgQuery<'q> {
        let q = q
            .bind(&self.name)
            .bind(&self.description)
            .bind(self.archived)
            .bind(self.deprecated)
            .bind(json_opt(&self.schemas));
        stamped(q, insert, self.created_at, self.updated_at)
    }
}

impl Entity for Source {
    fn bind<'q>(&'q self, q: PgQuery<'q>, insert: bool) -> PgQuery<'q> {
        let q = q
            .bind(&self.id.0)
            .bind(&self.app_id.0)
            .bind(&self.uid)
            .bind(&self.name)
            .bind(common::verification_json(&self.verification))
            .bind(json(&self.secrets))
            .bind(json(&self.options));
        stamped(q, insert, self.created_at, self.updated_at)
    }
}
