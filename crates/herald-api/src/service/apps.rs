//! Applications: resolving `{app_id}` under the caller's tenancy, and creating an application
//! (directly, by PUT, or on a publish or portal access that names one that does not exist).
//!
//! Every way of creating an application goes through [`create`], so the uid rules apply to all
//! of them. No HTTP shapes here beyond the error type.

use std::future::Future;

use herald_core::ids::AppId;
use herald_core::model::Application;
use herald_core::now_millis;
use herald_store::StoreError;

use crate::dto::{to_u32, ApplicationIn, Checks};
use crate::error::{ApiError, ApiResult};
use crate::extract::{Auth, Caller};
use crate::state::AppState;

const UID_TAKEN: &str = "an application with this uid already exists";

/// Resolves `{app_id}` (ID or uid) and enforces tenancy: a scoped token sees only its own
/// application and gets 403 for any other, existing or not.
pub async fn load(st: &AppState, auth: &Auth, key: &str) -> ApiResult<Application> {
    let app = st.store().get_app(key).await?;
    match (&auth.caller, app) {
        (Caller::App(own), Some(a)) if a.id == *own => Ok(a),
        (Caller::App(_), _) => Err(ApiError::Forbidden(
            "this token may only access its own application".into(),
        )),
        (_, Some(a)) => Ok(a),
        (_, None) => Err(ApiError::not_found("application")),
    }
}

/// Resolves `{app_id}` as [`load`] does, then one of its resources with `get`; 404 names
/// `what` when there is no such resource.
pub async fn load_in<T, Fut>(
    st: &AppState,
    auth: &Auth,
    app_id: &str,
    what: &str,
    get: impl FnOnce(AppId) -> Fut,
) -> ApiResult<(Application, T)>
where
    Fut: Future<Output = Result<Option<T>, StoreError>>,
{
    let app = load(st, auth, app_id).await?;
    let found = get(app.id.clone())
        .await?
        .ok_or_else(|| ApiError::not_found(what))?;
    Ok((app, found))
}

/// The application `key` (ID or uid) names, created from `create` when it does not exist and
/// `create` is given (the `application` field of a publish and of portal access, as in Svix):
/// the path segment becomes its `uid`. Creating needs admin rights; two concurrent first uses
/// both get the one application.
pub async fn get_or_create(
    st: &AppState,
    auth: &Auth,
    key: &str,
    create_from: Option<ApplicationIn>,
) -> ApiResult<Application> {
    match (load(st, auth, key).await, create_from) {
        (Ok(app), _) => Ok(app),
        (Err(ApiError::NotFound(_)), Some(mut a)) => {
            auth.caller.require_admin()?;
            if a.uid.is_none() {
                a.uid = Some(key.to_string());
            }
            match create(st, a).await {
                Err(ApiError::Conflict(_)) => load(st, auth, key).await,
                other => other,
            }
        }
        (Err(e), _) => Err(e),
    }
}

/// Creates an application from a checked body (also used by publish's `application` field and
/// PUT's upsert). The uid is checked here again because those paths fill it in from the URL
/// after the body was checked: every way of creating an application applies the uid rules.
pub async fn create(st: &AppState, body: ApplicationIn) -> ApiResult<Application> {
    let mut c = Checks::default();
    c.uid("uid", body.uid.as_deref());
    c.finish()?;
    let now = now_millis();
    let app = Application {
        id: AppId::generate(),
        uid: body.uid,
        name: body.name,
        throttle_rate: to_u32(body.throttle_rate),
        metadata: body.metadata.unwrap_or_default(),
        created_at: now,
        updated_at: now,
    };
    st.store()
        .create_app(app)
        .await
        .map_err(ApiError::conflict_as(UID_TAKEN))
}

/// The application a taken uid names, for `get_if_exists`; 409 when it vanished meanwhile.
pub async fn existing(st: &AppState, uid: &str) -> ApiResult<Application> {
    st.store()
        .get_app(uid)
        .await?
        .ok_or_else(|| ApiError::Conflict(UID_TAKEN.into()))
}

/// 409 for a uid that is taken, with the wording every application route uses.
pub fn uid_taken() -> ApiError {
    ApiError::Conflict(UID_TAKEN.into())
}
