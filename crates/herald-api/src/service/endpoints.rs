//! Endpoints: resolving `{app_id}/…/{endpoint_id}` (ID or uid) under the caller's tenancy.
//!
//! Lookups, and publishing a message to one endpoint only ("send example" / the console's
//! "Send test event"); building and checking endpoints from bodies stays in the endpoint
//! routes.

use herald_core::ids::{AppId, MessageId};
use herald_core::model::{Application, Endpoint, Message};
use herald_core::now_millis;

use crate::error::{ApiError, ApiResult};
use crate::extract::Auth;
use crate::paths::EndpointPath;
use crate::service::apps;
use crate::state::AppState;

/// The application and the endpoint `path` names; 404 when either does not exist.
pub async fn load(
    st: &AppState,
    auth: &Auth,
    path: &EndpointPath,
) -> ApiResult<(Application, Endpoint)> {
    let ep = path.endpoint_id.as_str();
    apps::load_in(st, auth, &path.app_id, "endpoint", |app| async move {
        st.store().get_endpoint(&app, ep).await
    })
    .await
}

/// An endpoint (ID or uid) of an application already resolved; 404 when it does not exist.
pub async fn of_app(st: &AppState, app: &AppId, ep: &str) -> ApiResult<Endpoint> {
    st.store()
        .get_endpoint(app, ep)
        .await?
        .ok_or_else(|| ApiError::not_found("endpoint"))
}

/// Whether [`send_to`] checks the payload against the event type's schema.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SchemaCheck {
    /// As a published message ("Send test event": the consumer's own payload).
    Check,
    /// The API's `send-example`, which sends the schema's own example (or a stand-in).
    Skip,
}

/// Publishes a message of `event_type` with `payload` whose only delivery goes to `ep`,
/// whatever its event type and channel filters (the store's `publish` with `only`), and wakes
/// the workers.
pub async fn send_to(
    st: &AppState,
    (app, ep): (&Application, &Endpoint),
    event_type: String,
    payload: String,
    check: SchemaCheck,
) -> ApiResult<Message> {
    if check == SchemaCheck::Check {
        st.inner
            .schemas
            .check_payload(st.store(), &event_type, &payload)
            .await?;
    }
    let msg = Message {
        id: MessageId::generate(),
        app_id: app.id.clone(),
        event_id: None,
        event_type,
        payload: Some(payload),
        channels: None,
        created_at: now_millis(),
        retention_ms: None,
        ordering_key: None,
        headers: None,
    };
    let published = st.store().publish(msg, Some(ep.id.clone())).await?;
    st.wake();
    Ok(published.message)
}

/// The example payload number `index` of an event type's newest schema (its `examples`), when
/// it is a JSON object.
pub fn example_of(schemas: &serde_json::Value, index: usize) -> Option<serde_json::Value> {
    let examples = schemas
        .as_object()?
        .values()
        .next_back()?
        .get("examples")?
        .as_array()?;
    examples.get(index).filter(|v| v.is_object()).cloned()
}
