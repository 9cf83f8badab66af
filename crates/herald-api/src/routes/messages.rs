//! Messages, delivery status and the attempt log: `/api/v1/app/{app_id}/msg…` and
//! `/api/v1/app/{app_id}/attempt…`.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use herald_core::ids::{AppId, EndpointId, MessageId};
use herald_core::model::Message;
use herald_core::now_millis;
use herald_store::{AttemptFilter, AttemptScope, MessageFilter};
use serde::Deserialize;

use crate::dto::{
    delivery_fields, valid_uid, AttemptOut, Checks, EmptyOut, EndpointMessageOut, EndpointOut,
    ListOut, MessageEndpointOut, MessageIn, MessageOut,
};
use crate::error::{ApiError, ApiResult, ErrorBody};
use crate::extract::{de_opt, JsonBody, ListParams, Q};
use crate::paths::{AppPath, AttemptPath, EndpointPath, MsgEndpointPath, MsgPath};
use crate::routes::ApiList;
use crate::scope::{At, AtEndpoint, AtMessage, InApp};
use crate::service::{apps, endpoints};
use crate::state::AppState;

#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ContentParam {
    /// `false` answers `"payload": {}` (default `true`).
    #[serde(default, deserialize_with = "de_opt")]
    with_content: Option<bool>,
}

/// Publish a message: it is committed with one pending delivery per matching endpoint.
#[utoipa::path(post, path = "/api/v1/app/{app_id}/msg", tag = "Message", operation_id = "create_message",
    params(AppPath, ContentParam), request_body = MessageIn,
    responses(
        (status = 202, description = "Accepted and stored", body = MessageOut),
        (status = 409, description = "A message with this eventId exists", body = ErrorBody)))]
pub async fn create(
    At { st, auth, path, .. }: At<AppPath>,
    Q(cp): Q<ContentParam>,
    JsonBody(body): JsonBody<MessageIn>,
) -> ApiResult<Response> {
    let payload = body.payload.get();
    if payload.len() > st.inner.max_payload_bytes {
        return Err(ApiError::PayloadTooLarge(st.inner.max_payload_bytes));
    }
    let mut c = Checks::default();
    if !valid_uid(&body.event_type) {
        c.fail(
            "eventType",
            "must match ^[a-zA-Z0-9\\-_.]+$ and be 1-256 characters",
        );
    }
    if !payload.trim_start().starts_with('{') {
        c.fail("payload", "must be a JSON object");
    }
    if let Some(e) = &body.event_id {
        if e.is_empty() || e.len() > 256 {
            c.fail("eventId", "must be 1-256 characters");
        }
    }
    crate::dto::check_list(&mut c, "channels", body.channels.as_ref());
    if body.channels.as_ref().is_some_and(|ch| ch.len() > 10) {
        c.fail("channels", "at most 10 channels");
    }
    if body
        .payload_retention_period
        .is_some_and(|d| !(1..=3650).contains(&d))
    {
        c.fail("payloadRetentionPeriod", "must be between 1 and 3650 days");
    }
    if body
        .payload_retention_hours
        .is_some_and(|h| !(1..=87_600).contains(&h))
    {
        c.fail("payloadRetentionHours", "must be between 1 and 87600 hours");
    }
    if let Some(a) = &body.application {
        a.check(&mut c);
    }
    if let Some(k) = &body.ordering_key {
        if k.is_empty() || k.len() > 256 {
            c.fail("orderingKey", "must be 1 to 256 characters");
        }
    }
    c.finish()?;

    // One read: the app's existence and the caller's right to it are decided together.
    let app = apps::get_or_create(&st, &auth, &path.app_id, body.application).await?;
    st.inner
        .schemas
        .check_payload(st.store(), &body.event_type, payload)
        .await?;
    let msg = Message {
        id: MessageId::generate(),
        app_id: app.id.clone(),
        event_id: body.event_id,
        event_type: body.event_type,
        payload: Some(payload.to_string()),
        channels: body.channels,
        created_at: now_millis(),
        retention_ms: body
            .payload_retention_hours
            .map(|h| h * 3_600_000)
            .or(body.payload_retention_period.map(|d| d * 86_400_000)),
        ordering_key: body.ordering_key,
        headers: None,
    };
    let published = st
        .store()
        .publish(msg, None)
        .await
        .map_err(ApiError::conflict_as(
            "a message with this eventId already exists in this application",
        ))?;
    herald_delivery::telemetry::messages_published("api", 1);
    if published.deliveries > 0 {
        st.wake();
    }
    Ok((
        StatusCode::ACCEPTED,
        Json(MessageOut::new(
            &published.message,
            cp.with_content.unwrap_or(true),
        )),
    )
        .into_response())
}

#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct MsgListParams {
    #[serde(flatten)]
    #[param(ignore)]
    list: ListParams,
    /// Only messages published on this channel.
    channel: Option<String>,
    /// Only these event types (comma-separated).
    event_types: Option<String>,
    /// `false` answers `"payload": {}` (default `true`).
    #[serde(default, deserialize_with = "de_opt")]
    with_content: Option<bool>,
}

fn split_csv(s: Option<&str>) -> Option<Vec<String>> {
    s.map(|s| {
        s.split(',')
            .map(str::trim)
            .filter(|t| !t.is_empty())
            .map(String::from)
            .collect()
    })
}

/// List an application's messages, newest first.
#[utoipa::path(get, path = "/api/v1/app/{app_id}/msg", tag = "Message", operation_id = "list_messages",
    params(AppPath, ListParams, MsgListParams),
    responses((status = 200, description = "A page of messages", body = ListOut<MessageOut>)))]
pub async fn list(at: InApp<Q<MsgListParams>>) -> ApiList<MessageOut> {
    let (st, app, Q(p)) = (at.st, at.app, at.input);
    let filter = MessageFilter {
        channel: p.channel,
        event_types: split_csv(p.event_types.as_deref()),
    };
    let page = st
        .store()
        .list_messages(&app.id, &filter, &p.list.to_query(true)?)
        .await?;
    Ok(Json(ListOut::page(&page, |m| {
        MessageOut::new(m, p.with_content.unwrap_or(true))
    })))
}

/// Get a message by ID or `eventId`.
#[utoipa::path(get, path = "/api/v1/app/{app_id}/msg/{msg_id}", tag = "Message", operation_id = "get_message",
    params(MsgPath, ContentParam),
    responses((status = 200, description = "The message", body = MessageOut)))]
pub async fn get(at: At<MsgPath>, Q(cp): Q<ContentParam>) -> ApiResult<Json<MessageOut>> {
    let AtMessage { msg, .. } = at.message().await?;
    Ok(Json(MessageOut::new(&msg, cp.with_content.unwrap_or(true))))
}

/// Delete a message's payload now (it then reads as `{"expired": true}`).
#[utoipa::path(delete, path = "/api/v1/app/{app_id}/msg/{msg_id}/content", tag = "Message", operation_id = "expunge_message_content",
    params(MsgPath),
    responses((status = 204, description = "Expunged")))]
pub async fn expunge(AtMessage { st, app, msg, .. }: AtMessage<MsgPath>) -> ApiResult<StatusCode> {
    st.store().expunge_payload(&app.id, &msg.id).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// The endpoints a message goes to, with its delivery status at each.
#[utoipa::path(get, path = "/api/v1/app/{app_id}/msg/{msg_id}/endpoint", tag = "Message Attempt", operation_id = "list_message_endpoints",
    params(MsgPath, ListParams),
    responses((status = 200, description = "A page of endpoints with delivery status", body = ListOut<MessageEndpointOut>)))]
pub async fn endpoints_of(at: At<MsgPath>, Q(p): Q<ListParams>) -> ApiList<MessageEndpointOut> {
    let q = p.to_query(false)?;
    let AtMessage { st, app, msg, .. } = at.message().await?;
    let deliveries = st.store().deliveries_of_message(&msg.id).await?;
    let now = now_millis();
    let mut out = Vec::new();
    for d in &deliveries {
        if let Some(ep) = st
            .store()
            .get_endpoint(&app.id, d.endpoint_id.as_str())
            .await?
        {
            let (status, status_text, next_attempt) = delivery_fields(d);
            out.push(MessageEndpointOut {
                endpoint: EndpointOut::new(&ep, now),
                status,
                status_text,
                next_attempt,
            });
        }
    }
    // A message reaches a bounded number of endpoints; page in memory by endpoint ID.
    let start = q.iterator.as_deref().map_or(0, |it| {
        out.iter()
            .position(|e| e.endpoint.id.as_str() > it)
            .unwrap_or(out.len())
    });
    let rest: Vec<_> = out.into_iter().skip(start).collect();
    let has_more = rest.len() > q.limit;
    let page: Vec<_> = rest.into_iter().take(q.limit).collect();
    Ok(Json(ListOut {
        iterator: page.last().map(|e| e.endpoint.id.clone()),
        prev_iterator: page.first().map(|e| format!("-{}", e.endpoint.id)),
        done: !has_more,
        data: page,
    }))
}

#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct EpMsgParams {
    #[serde(flatten)]
    #[param(ignore)]
    list: ListParams,
    /// Only deliveries in this status (0 success, 1 pending, 2 fail, 3 sending).
    #[serde(default, deserialize_with = "de_opt")]
    status: Option<i64>,
    /// `false` answers `"payload": {}` (default `true`).
    #[serde(default, deserialize_with = "de_opt")]
    with_content: Option<bool>,
}

/// The messages sent to an endpoint, with their delivery status, newest first.
#[utoipa::path(get, path = "/api/v1/app/{app_id}/endpoint/{endpoint_id}/msg", tag = "Message Attempt", operation_id = "list_endpoint_messages",
    params(EndpointPath, ListParams, EpMsgParams),
    responses((status = 200, description = "A page of messages with delivery status", body = ListOut<EndpointMessageOut>)))]
pub async fn by_endpoint(at: AtEndpoint<Q<EpMsgParams>>) -> ApiList<EndpointMessageOut> {
    let (st, ep, Q(p)) = (at.st, at.ep, at.input);
    let page = st
        .store()
        .deliveries_of_endpoint(&ep.id, p.status, &p.list.to_query(true)?)
        .await?;
    Ok(Json(ListOut::page(&page, |(d, m)| {
        let (status, status_text, next_attempt) = delivery_fields(d);
        EndpointMessageOut {
            message: MessageOut::new(m, p.with_content.unwrap_or(true)),
            status,
            status_text,
            next_attempt,
        }
    })))
}

/// Queue one manual attempt of a message to an endpoint now.
#[utoipa::path(post, path = "/api/v1/app/{app_id}/msg/{msg_id}/endpoint/{endpoint_id}/resend", tag = "Message Attempt", operation_id = "resend_message",
    params(MsgEndpointPath),
    responses((status = 202, description = "Queued", body = EmptyOut)))]
pub async fn resend(at: AtMessage<MsgEndpointPath>) -> ApiResult<Response> {
    let (st, path, app, msg) = (at.st, at.path, at.app, at.msg);
    let ep = endpoints::of_app(&st, &app.id, &path.endpoint_id).await?;
    st.store()
        .resend(&app.id, &msg.id, &ep.id, now_millis())
        .await?;
    st.wake();
    Ok((StatusCode::ACCEPTED, Json(EmptyOut::default())).into_response())
}

#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct AttemptParams {
    #[serde(flatten)]
    #[param(ignore)]
    list: ListParams,
    /// Only attempts with this status (0 success, 1 pending, 2 fail, 3 sending).
    #[serde(default, deserialize_with = "de_opt")]
    status: Option<i64>,
    /// Only attempts to this endpoint (ID or uid; the by-message list only).
    endpoint_id: Option<String>,
}

/// One page of the application's attempts in `scope`, newest first.
async fn attempt_page(
    st: &AppState,
    app: &AppId,
    scope: AttemptScope,
    p: &AttemptParams,
    endpoint_id: Option<EndpointId>,
) -> ApiList<AttemptOut> {
    let filter = AttemptFilter {
        status: p.status,
        endpoint_id,
    };
    let query = p.list.to_query(true)?;
    let page = st
        .store()
        .list_attempts(app, &scope, &filter, &query)
        .await?;
    Ok(Json(ListOut::page(&page, |a| AttemptOut::from(a))))
}

/// Attempts made to an endpoint, newest first.
#[utoipa::path(get, path = "/api/v1/app/{app_id}/attempt/endpoint/{endpoint_id}", tag = "Message Attempt", operation_id = "list_attempts_by_endpoint",
    params(EndpointPath, ListParams, AttemptParams),
    responses((status = 200, description = "A page of attempts", body = ListOut<AttemptOut>)))]
pub async fn attempts_by_endpoint(at: AtEndpoint<Q<AttemptParams>>) -> ApiList<AttemptOut> {
    let (st, app, ep, Q(p)) = (at.st, at.app, at.ep, at.input);
    attempt_page(&st, &app.id, AttemptScope::Endpoint(ep.id), &p, None).await
}

/// Attempts made for a message, newest first.
#[utoipa::path(get, path = "/api/v1/app/{app_id}/attempt/msg/{msg_id}", tag = "Message Attempt", operation_id = "list_attempts_by_message",
    params(MsgPath, ListParams, AttemptParams),
    responses((status = 200, description = "A page of attempts", body = ListOut<AttemptOut>)))]
pub async fn attempts_by_msg(at: At<MsgPath>, Q(p): Q<AttemptParams>) -> ApiList<AttemptOut> {
    let AtMessage { st, app, msg, .. } = at.message().await?;
    let endpoint_id = match &p.endpoint_id {
        Some(key) => Some(
            st.store()
                .get_endpoint(&app.id, key)
                .await?
                .map(|e| e.id)
                .unwrap_or_else(|| EndpointId(key.clone())),
        ),
        None => None,
    };
    attempt_page(&st, &app.id, AttemptScope::Message(msg.id), &p, endpoint_id).await
}

/// One attempt.
#[utoipa::path(get, path = "/api/v1/app/{app_id}/msg/{msg_id}/attempt/{attempt_id}", tag = "Message Attempt", operation_id = "get_attempt",
    params(AttemptPath),
    responses((status = 200, description = "The attempt", body = AttemptOut)))]
pub async fn attempt(at: AtMessage<AttemptPath>) -> ApiResult<Json<AttemptOut>> {
    let (st, path, app, msg) = (at.st, at.path, at.app, at.msg);
    let a = st
        .store()
        .get_attempt(&app.id, &msg.id, &path.attempt_id)
        .await?
        .ok_or_else(|| ApiError::not_found("attempt"))?;
    Ok(Json(AttemptOut::from(&a)))
}
