//! Records operational events as messages of the operational application, through the same
//! publish path as any API message (so they are durable, listable and delivered by the
//! engine when an operational endpoint exists).
//!
//! The application is created on first use, so an installation that never had an event (and
//! no `operational_webhook_url`) has no extra application. Recording is best effort relative
//! to the change it reports: the event is written just after that change commits, so a crash
//! in between can lose the event (never the change itself).

use std::sync::Arc;

use herald_core::ids::AppId;
use herald_core::model::Application;
use herald_core::now_millis;
use herald_core::ops::{OperationalEvent, OPERATIONAL_APP_UID};
use tokio::sync::OnceCell;

use crate::{Result, Store, StoreError};

type Wake = Arc<dyn Fn() + Send + Sync>;

/// Where operational events go. Cheap to clone.
#[derive(Clone)]
pub struct OpsLog {
    store: Arc<dyn Store>,
    app: Arc<OnceCell<AppId>>,
    wake: Wake,
}

impl OpsLog {
    /// `wake` is called after each recorded event so local workers deliver it at once.
    pub fn new(store: Arc<dyn Store>, wake: Wake) -> Self {
        Self {
            store,
            app: Arc::new(OnceCell::new()),
            wake,
        }
    }

    /// The operational application, created if missing.
    pub async fn app(&self) -> Result<AppId> {
        self.app
            .get_or_try_init(|| async {
                if let Some(a) = self.store.get_app(OPERATIONAL_APP_UID).await? {
                    return Ok(a.id);
                }
                let now = now_millis();
                let created = self
                    .store
                    .create_app(Application {
                        id: AppId::generate(),
                        uid: Some(OPERATIONAL_APP_UID.into()),
                        name: "Herald operational events".into(),
                        throttle_rate: None,
                        metadata: Default::default(),
                        created_at: now,
                        updated_at: now,
                    })
                    .await;
                match created {
                    Ok(a) => Ok(a.id),
                    // Created concurrently (another node): use theirs.
                    Err(StoreError::Conflict(_)) => self
                        .store
                        .get_app(OPERATIONAL_APP_UID)
                        .await?
                        .map(|a| a.id)
                        .ok_or(StoreError::NotFound),
                    Err(e) => Err(e),
                }
            })
            .await
            .cloned()
    }

    /// Whether `app` is the operational application: events about its own endpoints are not
    /// recorded (a failing operational endpoint must not feed itself events).
    pub fn is_ops_app(&self, app: &AppId) -> bool {
        self.app.get() == Some(app)
    }

    pub async fn emit(&self, ev: OperationalEvent) {
        let kind = ev.event_type();
        let app = match self.app().await {
            Ok(a) => a,
            Err(e) => {
                tracing::warn!(event = kind, error = %e, "could not record operational event");
                return;
            }
        };
        match self
            .store
            .publish(ev.to_message(&app, now_millis()), None)
            .await
        {
            Ok(p) => {
                tracing::info!(event = kind, msg_id = %p.message.id, "operational event recorded");
                (self.wake)();
            }
            Err(e) => {
                tracing::warn!(event = kind, error = %e, "could not record operational event")
            }
        }
    }
}
