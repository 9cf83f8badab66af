//! Operational events: what Herald tells the operator about its own endpoints
//! (`endpoint.disabled`, `endpoint.enabled`, `message.attempt.exhausted`,
//! `message.attempt.failing`, `message.attempt.recovered`).
//!
//! An event becomes an ordinary message of the operational application (uid
//! [`OPERATIONAL_APP_UID`]), so it is recorded, listable, and — when `operational_webhook_url`
//! is configured — delivered to it, signed, by the same engine. The payload shape follows
//! Svix's operational webhooks: `{"type", "timestamp", "data": {…}}`. This module only builds
//! the message; recording it is the caller's job.

use serde_json::{json, Value};

use crate::ids::{AppId, EndpointId, MessageId};
use crate::model::Message;
use crate::Millis;

/// The `uid` of the application that holds operational events.
pub const OPERATIONAL_APP_UID: &str = "herald-operational";
/// The `uid` of its endpoint pointing at `operational_webhook_url`.
pub const OPERATIONAL_ENDPOINT_UID: &str = "operational-webhook";

/// After how many failed attempts of one delivery `message.attempt.failing` is sent.
pub const FAILING_AFTER: u32 = 4;

/// The last attempt an event refers to.
#[derive(Clone, Debug, PartialEq)]
pub struct AttemptRef {
    pub id: String,
    pub response_status_code: u16,
    pub timestamp: Millis,
}

#[derive(Clone, Debug, PartialEq)]
pub enum OperationalEvent {
    EndpointDisabled {
        app_id: AppId,
        endpoint_id: EndpointId,
        endpoint_uid: Option<String>,
        /// `automatic` (no success for too long, or 410 Gone) or `manual` (API).
        trigger: &'static str,
        fail_since: Option<Millis>,
    },
    EndpointEnabled {
        app_id: AppId,
        endpoint_id: EndpointId,
        endpoint_uid: Option<String>,
    },
    /// `kind` is `exhausted`, `failing` or `recovered`.
    Attempt {
        kind: AttemptEventKind,
        app_id: AppId,
        msg_id: MessageId,
        msg_event_id: Option<String>,
        endpoint_id: EndpointId,
        last_attempt: AttemptRef,
    },
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AttemptEventKind {
    Exhausted,
    Failing,
    Recovered,
}

fn ts(ms: Millis) -> String {
    chrono::DateTime::from_timestamp_millis(ms)
        .unwrap_or_default()
        .to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

impl OperationalEvent {
    pub fn event_type(&self) -> &'static str {
        match self {
            Self::EndpointDisabled { .. } => "endpoint.disabled",
            Self::EndpointEnabled { .. } => "endpoint.enabled",
            Self::Attempt { kind, .. } => match kind {
                AttemptEventKind::Exhausted => "message.attempt.exhausted",
                AttemptEventKind::Failing => "message.attempt.failing",
                AttemptEventKind::Recovered => "message.attempt.recovered",
            },
        }
    }

    fn data(&self) -> Value {
        match self {
            Self::EndpointDisabled {
                app_id,
                endpoint_id,
                endpoint_uid,
                trigger,
                fail_since,
            } => json!({
                "appId": app_id, "endpointId": endpoint_id, "endpointUid": endpoint_uid,
                "trigger": trigger, "failSince": fail_since.map(ts),
            }),
            Self::EndpointEnabled {
                app_id,
                endpoint_id,
                endpoint_uid,
            } => json!({"appId": app_id, "endpointId": endpoint_id, "endpointUid": endpoint_uid}),
            Self::Attempt {
                app_id,
                msg_id,
                msg_event_id,
                endpoint_id,
                last_attempt,
                ..
            } => json!({
                "appId": app_id, "msgId": msg_id, "msgEventId": msg_event_id,
                "endpointId": endpoint_id,
                "lastAttempt": {
                    "id": last_attempt.id,
                    "responseStatusCode": last_attempt.response_status_code,
                    "timestamp": ts(last_attempt.timestamp),
                },
            }),
        }
    }

    /// The message recording this event in the operational application `app`.
    pub fn to_message(&self, app: &AppId, now: Millis) -> Message {
        let payload = json!({
            "type": self.event_type(),
            "timestamp": ts(now),
            "data": self.data(),
        });
        Message {
            id: MessageId::generate(),
            app_id: app.clone(),
            event_id: None,
            event_type: self.event_type().to_string(),
            payload: Some(payload.to_string()),
            channels: None,
            created_at: now,
            retention_ms: None,
            ordering_key: None,
            headers: None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn svix_shaped_payload() {
        let ev = OperationalEvent::EndpointDisabled {
            app_id: AppId("app_1".into()),
            endpoint_id: EndpointId("ep_1".into()),
            endpoint_uid: None,
            trigger: "automatic",
            fail_since: Some(0),
        };
        let m = ev.to_message(&AppId("app_ops".into()), 1_000);
        assert_eq!(m.event_type, "endpoint.disabled");
        let v: Value = serde_json::from_str(m.payload.as_deref().unwrap()).unwrap();
        assert_eq!(v["type"], "endpoint.disabled");
        assert_eq!(v["timestamp"], "1970-01-01T00:00:01.000Z");
        assert_eq!(v["data"]["endpointId"], "ep_1");
        assert_eq!(v["data"]["trigger"], "automatic");
        assert_eq!(v["data"]["failSince"], "1970-01-01T00:00:00.000Z");
    }
}
