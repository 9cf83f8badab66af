//! The operational application's one endpoint, kept in line with `operational_webhook_url`:
//! created with a fresh secret when the URL is first set, re-pointed when it changes, disabled
//! when it is removed. The operator reads the secret through the API
//! (`GET /api/v1/app/herald-operational/endpoint/operational-webhook/secret`). It must not
//! touch any other application's endpoints.

use herald_core::model::Endpoint;
use herald_core::ops::{OPERATIONAL_APP_UID, OPERATIONAL_ENDPOINT_UID};
use herald_core::signing::EndpointSecret;
use herald_core::ssrf::{EgressPolicy, UrlError};
use herald_store::{OpsLog, Store, StoreError};

/// Why upkeep could not bring the store in line with the configuration.
#[derive(Debug, thiserror::Error)]
pub enum UpkeepError {
    /// The configured operational webhook URL is refused by the egress policy.
    #[error("operational_webhook_url: {0}")]
    OperationalUrl(#[from] UrlError),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Creates, re-points or disables the operational endpoint to match `url`.
pub async fn ensure_operational_endpoint(
    store: &dyn Store,
    ops: &OpsLog,
    url: Option<&str>,
    egress: &EgressPolicy,
) -> Result<(), UpkeepError> {
    let now = herald_core::now_millis();
    let app_id = match (url, store.get_app(OPERATIONAL_APP_UID).await?) {
        (None, None) => return Ok(()),
        _ => ops.app().await?,
    };
    let existing = store
        .get_endpoint(&app_id, OPERATIONAL_ENDPOINT_UID)
        .await?;
    match (url, existing) {
        (Some(url), existing) => {
            egress.validate_url(url)?;
            match existing {
                Some(mut ep) if ep.url != url || ep.disabled => {
                    ep.url = url.to_string();
                    ep.disabled = false;
                    ep.updated_at = now;
                    store.update_endpoint(ep).await?;
                }
                Some(_) => {}
                None => {
                    store
                        .create_endpoint(Endpoint::internal(
                            app_id,
                            OPERATIONAL_ENDPOINT_UID.into(),
                            url.to_string(),
                            "operational_webhook_url".into(),
                            &EndpointSecret::generate(),
                            now,
                        ))
                        .await?;
                }
            }
        }
        (None, Some(mut ep)) if !ep.disabled => {
            ep.disabled = true;
            ep.updated_at = now;
            store.update_endpoint(ep).await?;
        }
        (None, _) => {}
    }
    Ok(())
}
