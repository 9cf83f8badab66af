//! The row mappers: how every type read from the database is made from a row, written once
//! for both backends over [`Cells`]. Each mapper reads its columns by the names of the lists
//! in `crate::cols` (or of the statement named in its documentation) and in their order, which
//! SQLite's [`Cells`] uses to find each column without a search.
//!
//! No SQL runs here and no driver is named: a backend hands a row in and maps the driver's
//! error its own way. The parameter side (binding a record) stays in each backend's `rows.rs`.

use herald_core::breaker::{Breaker, BreakerState};
use herald_core::ids::{
    AppId, AttemptId, EndpointId, InboundRequestId, MessageId, SourceId, TokenId,
};
use herald_core::model::{
    Application, Attempt, Delivery, DeliveryStatus, Endpoint, EventType, InboundRequest,
    InboundStatus, Message, Ordering, Source, StoredSecret, TriggerType, DEFAULT_MAX_CONCURRENCY,
};
use herald_core::signing::SignatureScheme;
use herald_core::throttle::Bucket;

use super::Cells;
use crate::common::{self, HeldEvent, Target};
use crate::console::OpenBreaker;
use crate::pull::PolledEvent;
use crate::reconcile::PollState;
use crate::sched::{per_request, Sched};
use crate::{Claimed, DisabledEndpoint, IdempotentResponse, PollToken, Result, TokenRecord};

/// What a mapper returns: the value, or the driver's error.
pub(crate) type Read<T, C> = std::result::Result<T, <C as Cells>::Error>;

/// An application ([`crate::cols::APP_COLS`]).
pub(crate) fn app_row<C: Cells>(r: &C) -> Read<Application, C> {
    Ok(Application {
        id: AppId(r.text("id")?),
        uid: r.text_opt("uid")?,
        name: r.text("name")?,
        throttle_rate: r.count_opt("throttle_rate")?,
        metadata: r.json("metadata")?,
        created_at: r.int("created_at")?,
        updated_at: r.int("updated_at")?,
    })
}

/// An endpoint as read back ([`crate::cols::EP_READ`]).
pub(crate) fn ep_row<C: Cells>(r: &C) -> Read<Endpoint, C> {
    Ok(Endpoint {
        id: EndpointId(r.text("id")?),
        app_id: AppId(r.text("app_id")?),
        uid: r.text_opt("uid")?,
        url: r.text("url")?,
        description: r.text("description")?,
        disabled: r.flag("disabled")?,
        event_types: r.json_opt("event_types")?,
        channels: r.json_opt("channels")?,
        throttle_rate: r.count_opt("throttle_rate")?,
        metadata: r.json("metadata")?,
        headers: r.json("headers")?,
        retry_schedule: r.json_opt("retry_schedule")?,
        permanent_statuses: r.json("permanent_statuses")?,
        ordering: match r.text("ordering")?.as_str() {
            "fifo" => Ordering::Fifo,
            _ => Ordering::None,
        },
        max_concurrency: r.count_opt("max_concurrency")?,
        signature_scheme: SignatureScheme::parse(&r.text("signature_scheme")?).unwrap_or_default(),
        secrets: r.json::<Vec<StoredSecret>>("secrets")?,
        paused_until: r.int_opt("paused_until")?,
        created_at: r.int("created_at")?,
        updated_at: r.int("updated_at")?,
        options: r.json("options")?,
        breaker: BreakerState::from_i64(r.int("breaker")?),
    })
}

/// A publish's fan-out target (see [`Target`] for the columns, the options' filter as
/// `filter`).
pub(crate) fn target_row<C: Cells>(r: &C) -> Read<Target, C> {
    Ok(Target {
        id: r.text("id")?,
        event_types: r.json_opt("event_types")?,
        channels: r.json_opt("channels")?,
        fifo: r.text_is("ordering", "fifo")?,
        paused_until: r.int_opt("paused_until")?,
        filter: r.text_opt("filter")?,
    })
}

/// A held inbound event ([`common::HELD_COLS`]).
pub(crate) fn held_row<C: Cells>(r: &C) -> Read<HeldEvent, C> {
    Ok(HeldEvent {
        app_id: r.text("app_id")?,
        msg_id: r.text("msg_id")?,
        event_type: r.text("event_type")?,
        payload: r.text_opt("payload")?,
        headers: r.json_opt("headers")?,
        ordering_key: r.text_opt("ordering_key")?,
    })
}

/// An event type ([`crate::cols::ET_COLS`]).
pub(crate) fn et_row<C: Cells>(r: &C) -> Read<EventType, C> {
    Ok(EventType {
        name: r.text("name")?,
        description: r.text("description")?,
        archived: r.flag("archived")?,
        deprecated: r.flag("deprecated")?,
        schemas: r.json_opt("schemas")?,
        created_at: r.int("created_at")?,
        updated_at: r.int("updated_at")?,
    })
}

/// A message ([`crate::cols::MSG_COLS`]: the columns a delivery has too are aliased `m_…`).
pub(crate) fn msg_row<C: Cells>(r: &C) -> Read<Message, C> {
    Ok(Message {
        id: MessageId(r.text("m_id")?),
        app_id: AppId(r.text("m_app_id")?),
        event_id: r.text_opt("event_id")?,
        event_type: r.text("event_type")?,
        payload: r.text_opt("payload")?,
        channels: r.json_opt("channels")?,
        created_at: r.int("m_created_at")?,
        retention_ms: r.int_opt("retention_ms")?,
        ordering_key: r.text_opt("m_ordering_key")?,
        headers: r.json_opt("m_headers")?,
    })
}

/// A delivery ([`crate::cols::DLV_COLS`]: the columns a message has too are aliased `d_…`).
pub(crate) fn dlv_row<C: Cells>(r: &C) -> Read<Delivery, C> {
    let (id, msg_id, endpoint_id, app_id) = (
        r.int("d_id")?,
        MessageId(r.text("d_msg_id")?),
        EndpointId(r.text("d_endpoint_id")?),
        AppId(r.text("d_app_id")?),
    );
    let status = DeliveryStatus::from_i64(r.int("d_status")?);
    let (attempts, failures) = (r.count("attempts")?, r.count("failures")?);
    let next = r.int_opt("next_at")?;
    Ok(Delivery {
        id,
        msg_id,
        endpoint_id,
        app_id,
        status,
        attempts,
        failures,
        next_attempt_at: match status {
            DeliveryStatus::Pending | DeliveryStatus::Sending => next,
            _ => None,
        },
        updated_at: r.int("d_updated_at")?,
    })
}

/// A delivery attempt ([`crate::cols::ATT_COLS`]).
pub(crate) fn att_row<C: Cells>(r: &C) -> Read<Attempt, C> {
    Ok(Attempt {
        id: AttemptId(r.text("id")?),
        msg_id: MessageId(r.text("msg_id")?),
        endpoint_id: EndpointId(r.text("endpoint_id")?),
        app_id: AppId(r.text("app_id")?),
        delivery_id: r.int("delivery_id")?,
        url: r.text("url")?,
        response: r.text("response")?,
        response_status_code: r.u16("status_code")?,
        response_duration_ms: r.int("duration_ms")?,
        status: DeliveryStatus::from_i64(r.int("status")?),
        trigger_type: match r.int("trigger_type")? {
            1 => TriggerType::Manual,
            _ => TriggerType::Scheduled,
        },
        error: r.text_opt("error")?,
        created_at: r.int("created_at")?,
    })
}

/// An inbound source ([`crate::cols::SRC_COLS`]). Its verification and options decode apart
/// from the row, so that a corrupt one is [`crate::StoreError::CorruptRecord`] naming the
/// source (see [`Cells::join`]).
pub(crate) fn src_row<C: Cells>(r: &C) -> Read<Result<Source>, C> {
    let id = r.text("id")?;
    let config = common::source_config(&id, &r.text("verification")?, &r.text("options")?);
    let rest = || {
        let who = (
            AppId(r.text("app_id")?),
            r.text_opt("uid")?,
            r.text("name")?,
        );
        let secrets: Vec<StoredSecret> = r.json("secrets")?;
        Ok((who, secrets, r.int("created_at")?, r.int("updated_at")?))
    };
    Ok(r.join(config, rest)?.map(
        |((verification, options), ((app_id, uid, name), secrets, created_at, updated_at))| {
            Source {
                id: SourceId(id),
                app_id,
                uid,
                name,
                verification,
                secrets,
                options,
                created_at,
                updated_at,
            }
        },
    ))
}

/// A request of a source's log ([`crate::cols::INREQ_COLS`]).
pub(crate) fn inreq_row<C: Cells>(r: &C) -> Read<InboundRequest, C> {
    Ok(InboundRequest {
        id: InboundRequestId(r.text("id")?),
        source_id: SourceId(r.text("source_id")?),
        app_id: AppId(r.text("app_id")?),
        status: InboundStatus::parse(&r.text("status")?).unwrap_or(InboundStatus::Rejected),
        reason: r.text_opt("reason")?,
        msg_id: r.text_opt("msg_id")?.map(MessageId),
        headers: r.json("headers")?,
        body: r.text_opt("body")?,
        event_type: r.text_opt("event_type")?,
        created_at: r.int("created_at")?,
    })
}

/// An API token (`id, name, app_id, created_at`).
pub(crate) fn token_row<C: Cells>(r: &C) -> Read<TokenRecord, C> {
    Ok(TokenRecord {
        id: TokenId(r.text("id")?),
        name: r.text("name")?,
        app_id: r.text_opt("app_id")?.map(AppId),
        created_at: r.int("created_at")?,
    })
}

/// A pull consumer's token (`id, app_id, endpoint_id, created_at`).
pub(crate) fn poll_token_row<C: Cells>(r: &C) -> Read<PollToken, C> {
    Ok(PollToken {
        id: TokenId(r.text("id")?),
        app_id: AppId(r.text("app_id")?),
        endpoint_id: EndpointId(r.text("endpoint_id")?),
        created_at: r.int("created_at")?,
    })
}

/// A pull consumer's event (`crate::pull`'s page: `d.id, d.msg_id, m.event_type, m.created_at,
/// m.payload`).
pub(crate) fn polled_row<C: Cells>(r: &C) -> Read<PolledEvent, C> {
    Ok(PolledEvent {
        position: r.int("id")?,
        msg_id: MessageId(r.text("msg_id")?),
        event_type: r.text("event_type")?,
        created_at: r.int("created_at")?,
        payload: r.text_opt("payload")?,
    })
}

/// An endpoint the failure window disabled (`RETURNING id, app_id, uid, failing_since`).
pub(crate) fn disabled_row<C: Cells>(r: &C) -> Read<DisabledEndpoint, C> {
    Ok(DisabledEndpoint {
        endpoint_id: EndpointId(r.text("id")?),
        app_id: AppId(r.text("app_id")?),
        uid: r.text_opt("uid")?,
        failing_since: r.int("failing_since")?,
    })
}

/// A delivery as its lease returns it (`RETURNING id, msg_id, endpoint_id, app_id, attempts,
/// failures, manual`).
pub(crate) fn claimed_row<C: Cells>(r: &C) -> Read<Claimed, C> {
    Ok(Claimed {
        delivery_id: r.int("id")?,
        msg_id: MessageId(r.text("msg_id")?),
        endpoint_id: EndpointId(r.text("endpoint_id")?),
        app_id: AppId(r.text("app_id")?),
        attempts: r.count("attempts")?,
        failures: r.count("failures")?,
        manual: r.flag("manual")?,
    })
}

/// A stored idempotent response (`status, body`).
pub(crate) fn idempotent_row<C: Cells>(r: &C) -> Read<IdempotentResponse, C> {
    Ok(IdempotentResponse {
        status: r.u16_wrapping("status")?,
        body: r.bytes("body")?,
    })
}

/// An endpoint whose breaker is not closed (`app_id, id, url, breaker, breaker_until`).
pub(crate) fn breaker_row<C: Cells>(r: &C) -> Read<OpenBreaker, C> {
    Ok(OpenBreaker {
        app_id: AppId(r.text("app_id")?),
        endpoint_id: EndpointId(r.text("id")?),
        url: r.text("url")?,
        state: BreakerState::from_i64(r.int("breaker")?),
        until: r.int("breaker_until")?,
    })
}

/// A polling source's state ([`crate::reconcile::POLL_COLS`]).
pub(crate) fn poll_row<C: Cells>(r: &C) -> Read<PollState, C> {
    Ok(PollState {
        source_id: SourceId(r.text("source_id")?),
        app_id: AppId(r.text("app_id")?),
        cursor: r.text_opt("cursor")?,
        next_at: r.int("next_at")?,
        last_success_at: r.int_opt("last_success_at")?,
        last_error: r.text_opt("last_error")?,
        last_error_at: r.int_opt("last_error_at")?,
        failures: r.int("failures")?.clamp(0, u32::MAX as i64) as u32,
    })
}

/// An endpoint's scheduling state ([`crate::sched::SCHED_COLS`]): read for every endpoint a
/// claim looks at, so its options document is only looked at, not copied.
pub(crate) fn sched_row<C: Cells>(r: &C) -> Read<Sched, C> {
    let (id, app_id, disabled, paused_until) = (
        r.text("id")?,
        r.text("app_id")?,
        r.flag("disabled")?,
        r.int_opt("paused_until")?,
    );
    let max_concurrency = r.count_opt("max_concurrency")?;
    let rate = r.count_opt("throttle_rate")?.filter(|r| *r > 0);
    let fifo = r.text("ordering")? == "fifo";
    let breaker = Breaker {
        state: BreakerState::from_i64(r.int("breaker")?),
        open_until: r.int("breaker_until")?,
        cooldown_ms: r.int("breaker_cooldown")?,
        consecutive_failures: r.count("consec_failures")?,
        window_start: r.int("win_start")?,
        window_total: r.count("win_total")?,
        window_failed: r.count("win_failed")?,
        prev_total: r.count("prev_total")?,
        prev_failed: r.count("prev_failed")?,
    };
    let bucket = Bucket {
        tokens: r.real("tb_tokens")?,
        at: r.int("tb_at")?,
    };
    let cap = max_concurrency
        .unwrap_or(DEFAULT_MAX_CONCURRENCY)
        .max(1)
        .saturating_mul(r.with_text("options", per_request)?);
    Ok(Sched {
        id,
        app_id,
        disabled,
        paused_until,
        cap,
        rate,
        fifo,
        breaker,
        bucket,
    })
}
