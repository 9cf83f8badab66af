//! Applications: `/api/v1/app`. Creating and resolving applications is
//! `crate::service::apps`' job (publish and portal access create them too).

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use herald_core::ids::AppId;
use herald_core::now_millis;
use serde::Deserialize;

use crate::dto::{
    apply, apply_or_default, to_u32, ApplicationIn, ApplicationOut, ApplicationPatch, Checks,
    ListOut,
};
use crate::error::{ApiError, ApiResult, ErrorBody};
use crate::extract::{de_opt, JsonBody, ListParams, Q};
use crate::paths::AppPath;
use crate::routes::{uid_from_path, ApiList};
use crate::scope::{At, Ctx, InApp};
use crate::service::apps;

#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct CreateParams {
    /// Answer 200 with the existing application when the `uid` is taken, instead of 409.
    #[serde(default, deserialize_with = "de_opt")]
    get_if_exists: Option<bool>,
}

/// List applications (admin only), oldest first.
#[utoipa::path(get, path = "/api/v1/app", tag = "Application", operation_id = "list_applications",
    params(ListParams),
    responses((status = 200, description = "A page of applications", body = ListOut<ApplicationOut>)))]
pub async fn list(Ctx { st, auth, .. }: Ctx, Q(p): Q<ListParams>) -> ApiList<ApplicationOut> {
    auth.caller.require_admin()?;
    let page = st.store().list_apps(&p.to_query(false)?).await?;
    Ok(Json(ListOut::page(&page, |a| ApplicationOut::from(a))))
}

/// Create an application (admin only).
#[utoipa::path(post, path = "/api/v1/app", tag = "Application", operation_id = "create_application",
    params(CreateParams), request_body = ApplicationIn,
    responses(
        (status = 201, description = "Created", body = ApplicationOut),
        (status = 200, description = "`get_if_exists=true` and the uid exists: that application", body = ApplicationOut),
        (status = 409, description = "The uid is taken", body = ErrorBody)))]
pub async fn create(
    Ctx { st, auth, .. }: Ctx,
    Q(q): Q<CreateParams>,
    JsonBody(body): JsonBody<ApplicationIn>,
) -> ApiResult<Response> {
    auth.caller.require_admin()?;
    let mut c = Checks::default();
    body.check(&mut c);
    c.finish()?;
    let get_if_exists = q.get_if_exists.unwrap_or(false);
    if let Some(uid) = &body.uid {
        if let Some(existing) = st.store().get_app(uid).await? {
            if get_if_exists {
                return Ok(answer(StatusCode::OK, &existing));
            }
            return Err(apps::uid_taken());
        }
    }
    let uid = body.uid.clone().unwrap_or_default();
    match apps::create(&st, body).await {
        Ok(app) => Ok(answer(StatusCode::CREATED, &app)),
        // Another request created the uid between the read above and this insert: with
        // `get_if_exists` every concurrent caller gets that application, not a 409.
        Err(ApiError::Conflict(_)) if get_if_exists => {
            Ok(answer(StatusCode::OK, &apps::existing(&st, &uid).await?))
        }
        Err(e) => Err(e),
    }
}

/// Get an application by ID or uid.
#[utoipa::path(get, path = "/api/v1/app/{app_id}", tag = "Application", operation_id = "get_application",
    params(AppPath),
    responses((status = 200, description = "The application", body = ApplicationOut)))]
pub async fn get(InApp { app, .. }: InApp) -> ApiResult<Json<ApplicationOut>> {
    Ok(Json(ApplicationOut::from(&app)))
}

/// Replace an application, or create it with the path segment as `uid` when none exists.
#[utoipa::path(put, path = "/api/v1/app/{app_id}", tag = "Application", operation_id = "update_application",
    params(AppPath), request_body = ApplicationIn,
    responses(
        (status = 200, description = "Updated", body = ApplicationOut),
        (status = 201, description = "Created", body = ApplicationOut),
        (status = 409, description = "The uid is taken", body = ErrorBody)))]
pub async fn update(at: At<AppPath, ApplicationIn>) -> ApiResult<Response> {
    let (st, auth, path, body) = (at.st, at.auth, at.path, at.input);
    let mut c = Checks::default();
    body.check(&mut c);
    c.finish()?;
    let existing = match st.store().get_app(&path.app_id).await? {
        Some(_) => Some(apps::load(&st, &auth, &path.app_id).await?),
        None => {
            // PUT creates when the application does not exist (Svix upsert semantics).
            auth.caller.require_admin()?;
            None
        }
    };
    match existing {
        Some(mut app) => {
            app.name = body.name;
            app.uid = body.uid;
            app.throttle_rate = to_u32(body.throttle_rate);
            app.metadata = body.metadata.unwrap_or_default();
            app.updated_at = now_millis();
            let app = st.store().update_app(app).await?;
            Ok(Json(ApplicationOut::from(&app)).into_response())
        }
        None => {
            let mut body = body;
            uid_from_path(&mut body.uid, path.app_id, AppId::looks_like);
            Ok(answer(StatusCode::CREATED, &apps::create(&st, body).await?))
        }
    }
}

/// Change some fields of an application (`null` clears `uid`, `throttleRate`, `metadata`).
#[utoipa::path(patch, path = "/api/v1/app/{app_id}", tag = "Application", operation_id = "patch_application",
    params(AppPath), request_body = ApplicationPatch,
    responses(
        (status = 200, description = "Updated", body = ApplicationOut),
        (status = 409, description = "The uid is taken", body = ErrorBody)))]
pub async fn patch(at: InApp<ApplicationPatch>) -> ApiResult<Json<ApplicationOut>> {
    let (st, mut app, body) = (at.st, at.app, at.input);
    let mut c = Checks::default();
    if let Some(n) = &body.name {
        c.name("name", n);
    }
    if let Some(Some(u)) = &body.uid {
        c.uid("uid", Some(u));
    }
    if let Some(r) = body.throttle_rate {
        c.rate("throttleRate", r);
    }
    c.finish()?;
    apply(&mut app.name, body.name);
    apply(&mut app.uid, body.uid);
    apply(&mut app.throttle_rate, body.throttle_rate.map(to_u32));
    apply_or_default(&mut app.metadata, body.metadata);
    app.updated_at = now_millis();
    Ok(Json(ApplicationOut::from(
        &st.store().update_app(app).await?,
    )))
}

/// Delete an application with its endpoints, messages and attempts.
#[utoipa::path(delete, path = "/api/v1/app/{app_id}", tag = "Application", operation_id = "delete_application",
    params(AppPath),
    responses((status = 204, description = "Deleted")))]
pub async fn remove(InApp { st, app, .. }: InApp) -> ApiResult<StatusCode> {
    st.store().delete_app(&app.id).await?;
    Ok(StatusCode::NO_CONTENT)
}

fn answer(status: StatusCode, app: &herald_core::model::Application) -> Response {
    (status, Json(ApplicationOut::from(app))).into_response()
}
