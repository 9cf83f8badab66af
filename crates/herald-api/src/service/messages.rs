//! Messages: resolving `{app_id}/…/{msg_id}` (ID or `eventId`) under the caller's tenancy.

use herald_core::model::{Application, Message};

use crate::error::ApiResult;
use crate::extract::Auth;
use crate::service::apps;
use crate::state::AppState;

/// The application and one of its messages; 404 when either does not exist.
pub async fn load(
    st: &AppState,
    auth: &Auth,
    app_id: &str,
    msg_id: &str,
) -> ApiResult<(Application, Message)> {
    apps::load_in(st, auth, app_id, "message", |app| async move {
        st.store().get_message(&app, msg_id).await
    })
    .await
}
