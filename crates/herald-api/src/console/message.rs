//! The console's message screen: the message, its payload pretty-printed as text, and per
//! endpoint every attempt with the receiver's response body, with "Resend".
//!
//! Lookups and tenancy are `service::messages`' and `service::endpoints`' (as the
//! `/api/v1/app/{app}/msg/…` routes); resending calls the same store operation as
//! `POST …/resend`.

use askama::Template;
use axum::extract::State;
use axum::response::{IntoResponse, Redirect, Response};
use herald_core::model::{Delivery, DeliveryStatus, Message};
use herald_core::now_millis;
use herald_store::{AttemptFilter, AttemptScope};

use super::csrf::Posted;
use super::endpoint::AttemptRow;
use super::page::{ok, page_query, Chrome, ConsoleError, ConsoleResult, When};
use super::session::Operator;
use crate::extract::Path;
use crate::paths::MsgPath;
use crate::service::{endpoints, messages};
use crate::state::AppState;

/// Attempts shown per endpoint.
const ATTEMPTS_PER_ENDPOINT: i64 = 20;

pub struct MessageView {
    id: String,
    event_id: Option<String>,
    event_type: String,
    channels: String,
    created: When,
    payload: String,
}

pub struct DeliveryView {
    endpoint_id: String,
    endpoint_url: String,
    status: &'static str,
    attempts_made: u32,
    next_attempt: Option<When>,
    attempts: Vec<AttemptRow>,
}

#[derive(Template)]
#[template(path = "console/message.html")]
struct MessagePage {
    chrome: Chrome,
    csrf: String,
    app_id: String,
    msg: MessageView,
    deliveries: Vec<DeliveryView>,
}

/// The payload as indented JSON text (the published text when it does not parse).
fn pretty(m: &Message) -> String {
    match &m.payload {
        None => "(expired: the payload was removed after its retention period)".into(),
        Some(text) => serde_json::from_str::<serde_json::Value>(text)
            .ok()
            .and_then(|v| serde_json::to_string_pretty(&v).ok())
            .unwrap_or_else(|| text.clone()),
    }
}

fn status_of(d: &Delivery) -> &'static str {
    match d.status {
        DeliveryStatus::Success => "success",
        DeliveryStatus::Pending => "pending",
        DeliveryStatus::Fail => "fail",
        DeliveryStatus::Sending => "sending",
    }
}

/// `GET {base}/app/{app_id}/msg/{msg_id}` (`/console` or `/portal`).
pub async fn show(
    State(st): State<AppState>,
    op: Operator,
    Path(path): Path<MsgPath>,
) -> ConsoleResult<Response> {
    let (app, msg) = messages::load(&st, &op.auth(), &path.app_id, &path.msg_id).await?;
    // A message reaches a bounded number of endpoints (as in `GET …/msg/{id}/endpoint`).
    let deliveries = st.store().deliveries_of_message(&msg.id).await?;
    let mut views = Vec::with_capacity(deliveries.len());
    for d in &deliveries {
        let Some(ep) = st
            .store()
            .get_endpoint(&app.id, d.endpoint_id.as_str())
            .await?
        else {
            continue;
        };
        let filter = AttemptFilter {
            status: None,
            endpoint_id: Some(ep.id.clone()),
        };
        let attempts = st
            .store()
            .list_attempts(
                &app.id,
                &AttemptScope::Message(msg.id.clone()),
                &filter,
                &page_query(ATTEMPTS_PER_ENDPOINT, None, true)?,
            )
            .await?;
        views.push(DeliveryView {
            endpoint_id: ep.id.0.clone(),
            endpoint_url: herald_core::destination::redact(&ep.url).into_owned(),
            status: status_of(d),
            attempts_made: d.attempts,
            next_attempt: d.next_attempt_at.map(When::at),
            attempts: attempts.items.iter().map(AttemptRow::of).collect(),
        });
    }
    Ok(ok(&MessagePage {
        chrome: Chrome::in_app(&st, &op, &app.id.0, &app.name),
        csrf: op.csrf.clone(),
        app_id: app.id.0.clone(),
        msg: MessageView {
            id: msg.id.0.clone(),
            event_id: msg.event_id.clone(),
            event_type: msg.event_type.clone(),
            channels: msg
                .channels
                .as_ref()
                .map_or("none".into(), |c| c.join(", ")),
            created: When::at(msg.created_at),
            payload: pretty(&msg),
        },
        deliveries: views,
    }))
}

/// `POST …/resend` (form field `endpoint`): one manual attempt now, then back to the message.
pub async fn resend(
    State(st): State<AppState>,
    Path(path): Path<MsgPath>,
    posted: Posted,
) -> ConsoleResult<Response> {
    let (app, msg) = messages::load(&st, &posted.op.auth(), &path.app_id, &path.msg_id).await?;
    let Some(ep_key) = posted.fields.get("endpoint").filter(|e| !e.is_empty()) else {
        return Err(ConsoleError::Api(
            axum::http::StatusCode::BAD_REQUEST,
            "choose the endpoint to resend to".into(),
        ));
    };
    let ep = endpoints::of_app(&st, &app.id, ep_key).await?;
    st.store()
        .resend(&app.id, &msg.id, &ep.id, now_millis())
        .await?;
    st.wake();
    let base = posted.op.realm.base();
    Ok(Redirect::to(&format!("{base}/app/{}/msg/{}", app.id, msg.id)).into_response())
}
