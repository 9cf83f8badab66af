//! Applications: `/api/v1/app`.

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use herald_core::ids::AppId;
use herald_core::model::Application;
use herald_core::now_millis;
use serde::Deserialize;

use crate::dto::{ApplicationIn, ApplicationOut, ApplicationPatch, Checks, ListOut};
use crate::error::{ApiError, ApiResult, ErrorBody};
use crate::extract::{de_opt, Auth, JsonBody, ListParams, Path, Q};
use crate::openapi::AppPath;
use crate::AppState;

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
pub async fn list(
    State(st): State<AppState>,
    auth: Auth,
    Q(p): Q<ListParams>,
) -> ApiResult<Json<ListOut<ApplicationOut>>> {
    auth.caller.require_admin()?;
    let page = st.store().list_apps(&p.to_query(false)?).await?;
    Ok(Json(ListOut::new(
        &page.items,
        page.has_more,
        |a| a.id.0.clone(),
        |a| ApplicationOut::from(a),
    )))
}

/// Create an application (admin only).
#[utoipa::path(post, path = "/api/v1/app", tag = "Application", operation_id = "create_application",
    params(CreateParams), request_body = ApplicationIn,
    responses(
        (status = 201, description = "Created", body = ApplicationOut),
        (status = 200, description = "`get_if_exists=true` and the uid exists: that application", body = ApplicationOut),
        (status = 409, description = "The uid is taken", body = ErrorBody)))]
pub async fn create(
    State(st): State<AppState>,
    auth: Auth,
    Q(q): Q<CreateParams>,
    JsonBody(body): JsonBody<ApplicationIn>,
) -> ApiResult<Response> {
    auth.caller.require_admin()?;
    let mut c = Checks::default();
    body.check(&mut c);
    c.finish()?;
    if let Some(uid) = &body.uid {
        if let Some(existing) = st.store().get_app(uid).await? {
            if q.get_if_exists.unwrap_or(false) {
                return Ok((StatusCode::OK, Json(ApplicationOut::from(&existing))).into_response());
            }
            return Err(ApiError::Conflict(
                "an application with this uid already exists".into(),
            ));
        }
    }
    let get_if_exists = q.get_if_exists.unwrap_or(false);
    match create_app(&st, body.clone()).await {
        Ok(app) => Ok((StatusCode::CREATED, Json(ApplicationOut::from(&app))).into_response()),
        // Another request created the uid between the read above and this insert: with
        // `get_if_exists` every concurrent caller gets that application, not a 409.
        Err(ApiError::Conflict(_)) if get_if_exists => {
            let uid = body.uid.as_deref().unwrap_or_default();
            match st.store().get_app(uid).await? {
                Some(existing) => {
                    Ok((StatusCode::OK, Json(ApplicationOut::from(&existing))).into_response())
                }
                None => Err(ApiError::Conflict(
                    "an application with this uid already exists".into(),
                )),
            }
        }
        Err(e) => Err(e),
    }
}

/// The application `key` (ID or uid) names, created from `create` when it does not exist and
/// `create` is given (the `application` field of a publish and of portal access, as in Svix):
/// the path segment becomes its `uid`. Creating needs admin rights; two concurrent first uses
/// both get the one application.
pub async fn get_or_create(
    st: &AppState,
    auth: &Auth,
    key: &str,
    create: Option<ApplicationIn>,
) -> ApiResult<Application> {
    match (st.app(auth, key).await, create) {
        (Ok(app), _) => Ok(app),
        (Err(ApiError::NotFound(_)), Some(mut a)) => {
            auth.caller.require_admin()?;
            if a.uid.is_none() {
                a.uid = Some(key.to_string());
            }
            match create_app(st, a).await {
                Err(ApiError::Conflict(_)) => st.app(auth, key).await,
                other => other,
            }
        }
        (Err(e), _) => Err(e),
    }
}

/// Creates an application from a checked body (also used by publish's `application` field and
/// PUT's upsert). The uid is checked here again because those paths fill it in from the URL
/// after the body was checked: every way of creating an application applies the uid rules.
pub async fn create_app(st: &AppState, body: ApplicationIn) -> ApiResult<Application> {
    let mut c = Checks::default();
    c.uid("uid", body.uid.as_deref());
    c.finish()?;
    let now = now_millis();
    let app = Application {
        id: AppId::generate(),
        uid: body.uid,
        name: body.name,
        throttle_rate: body.throttle_rate.map(|r| r as u32),
        metadata: body.metadata.unwrap_or_default(),
        created_at: now,
        updated_at: now,
    };
    st.store().create_app(app).await.map_err(|e| match e {
        herald_store::StoreError::Conflict(_) => {
            ApiError::Conflict("an application with this uid already exists".into())
        }
        other => other.into(),
    })
}

/// Get an application by ID or uid.
#[utoipa::path(get, path = "/api/v1/app/{app_id}", tag = "Application", operation_id = "get_application",
    params(AppPath),
    responses((status = 200, description = "The application", body = ApplicationOut)))]
pub async fn get(
    State(st): State<AppState>,
    auth: Auth,
    Path(app_id): Path<String>,
) -> ApiResult<Json<ApplicationOut>> {
    let app = st.app(&auth, &app_id).await?;
    Ok(Json(ApplicationOut::from(&app)))
}

/// Replace an application, or create it with the path segment as `uid` when none exists.
#[utoipa::path(put, path = "/api/v1/app/{app_id}", tag = "Application", operation_id = "update_application",
    params(AppPath), request_body = ApplicationIn,
    responses(
        (status = 200, description = "Updated", body = ApplicationOut),
        (status = 201, description = "Created", body = ApplicationOut),
        (status = 409, description = "The uid is taken", body = ErrorBody)))]
pub async fn update(
    State(st): State<AppState>,
    auth: Auth,
    Path(app_id): Path<String>,
    JsonBody(body): JsonBody<ApplicationIn>,
) -> ApiResult<Response> {
    let mut c = Checks::default();
    body.check(&mut c);
    c.finish()?;
    let existing = match st.store().get_app(&app_id).await? {
        Some(_) => Some(st.app(&auth, &app_id).await?),
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
            app.throttle_rate = body.throttle_rate.map(|r| r as u32);
            app.metadata = body.metadata.unwrap_or_default();
            app.updated_at = now_millis();
            let app = st.store().update_app(app).await?;
            Ok(Json(ApplicationOut::from(&app)).into_response())
        }
        None => {
            let mut body = body;
            if body.uid.is_none() && !AppId::looks_like(&app_id) {
                body.uid = Some(app_id);
            }
            let app = create_app(&st, body).await?;
            Ok((StatusCode::CREATED, Json(ApplicationOut::from(&app))).into_response())
        }
    }
}

/// Change some fields of an application (`null` clears `uid`, `throttleRate`, `metadata`).
#[utoipa::path(patch, path = "/api/v1/app/{app_id}", tag = "Application", operation_id = "patch_application",
    params(AppPath), request_body = ApplicationPatch,
    responses(
        (status = 200, description = "Updated", body = ApplicationOut),
        (status = 409, description = "The uid is taken", body = ErrorBody)))]
pub async fn patch(
    State(st): State<AppState>,
    auth: Auth,
    Path(app_id): Path<String>,
    JsonBody(body): JsonBody<ApplicationPatch>,
) -> ApiResult<Json<ApplicationOut>> {
    let mut app = st.app(&auth, &app_id).await?;
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
    if let Some(n) = body.name {
        app.name = n;
    }
    if let Some(u) = body.uid {
        app.uid = u;
    }
    if let Some(r) = body.throttle_rate {
        app.throttle_rate = r.map(|r| r as u32);
    }
    if let Some(m) = body.metadata {
        app.metadata = m.unwrap_or_default();
    }
    app.updated_at = now_millis();
    Ok(Json(ApplicationOut::from(
        &st.store().update_app(app).await?,
    )))
}

/// Delete an application with its endpoints, messages and attempts.
#[utoipa::path(delete, path = "/api/v1/app/{app_id}", tag = "Application", operation_id = "delete_application",
    params(AppPath),
    responses((status = 204, description = "Deleted")))]
pub async fn remove(
    State(st): State<AppState>,
    auth: Auth,
    Path(app_id): Path<String>,
) -> ApiResult<StatusCode> {
    let app = st.app(&auth, &app_id).await?;
    st.store().delete_app(&app.id).await?;
    Ok(StatusCode::NO_CONTENT)
}
