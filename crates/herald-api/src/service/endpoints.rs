//! Endpoints: resolving `{app_id}/…/{endpoint_id}` (ID or uid) under the caller's tenancy.
//!
//! Lookups only; building and checking endpoints from bodies stays in the endpoint routes.

use herald_core::ids::AppId;
use herald_core::model::{Application, Endpoint};

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
