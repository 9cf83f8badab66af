//! Inbound sources: `/api/v1/app/{app_id}/source…` — CRUD, secret rotation, the request log and
//! quarantine release (inbound.md "API").
//!
//! This module validates and stores a source's configuration; ingestion
//! (`crate::service::ingest`) interprets it, and `crate::service::sources` decodes it.
//! Verification secrets are write-only: no answer ever contains one, except a secret Herald
//! generated itself in a rotation, returned once.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use herald_core::ids::SourceId;
use herald_core::inbound::{Extract, Scheme, Verification};
use herald_core::model::{InboundStatus, Source, StoredSecret};
use herald_core::now_millis;
use herald_core::ordering::OrderingRule;
use herald_core::signing::EndpointSecret;
use herald_core::source::{Dedup, OnInvalid, SourceOptions};
use serde::Deserialize;
use serde_json::Value;

use crate::dto::{
    apply, Checks, InboundRequestOut, ListOut, ReleasedOut, SourceIn, SourceOut, SourcePatch,
    SourceRotateIn, SourceRotateOut,
};
use crate::error::{ApiError, ApiResult, ErrorBody};
use crate::extract::{ListParams, Q};
use crate::paths::{AppPath, SourcePath, SourceRequestPath};
use crate::routes::ApiList;
use crate::scope::{At, AtSource, InApp};
use crate::service::reconcile;
use crate::service::secrets;
use crate::service::sources;

/// Longest dedup window (30 days).
const MAX_WINDOW_S: i64 = 30 * 86_400;

/// Splits a verification object into its stored form (no secrets) and its secrets.
fn parse_verification(c: &mut Checks, v: &Value) -> Option<(Verification, Option<Vec<String>>)> {
    let parsed: Verification = match serde_json::from_value(v.clone()) {
        Ok(p) => p,
        Err(e) => {
            c.fail("verification", e.to_string());
            return None;
        }
    };
    for problem in herald_core::inbound::validate(&parsed) {
        c.fail("verification", problem);
    }
    let mut stored = parsed;
    let secrets = std::mem::take(&mut stored.secrets);
    Some((stored, v.get("secrets").map(|_| secrets)))
}

fn parse_rule(c: &mut Checks, field: &str, v: &Value) -> Option<Extract> {
    match serde_json::from_value::<Extract>(v.clone()) {
        Ok(r) => Some(r),
        Err(_) => {
            c.fail(
                field,
                r#"must be {"header": name}, {"json": "/pointer"}, {"value": text} or {"bodyHash": true}"#,
            );
            None
        }
    }
}

fn parse_dedup(c: &mut Checks, v: &Value) -> Option<Dedup> {
    match serde_json::from_value::<Dedup>(v.clone()) {
        Ok(d) => {
            if d.window_seconds
                .is_some_and(|w| !(1..=MAX_WINDOW_S).contains(&w))
            {
                c.fail(
                    "dedup.windowSeconds",
                    "must be between 1 and 2592000 (30 days)",
                );
            }
            Some(d)
        }
        Err(e) => {
            c.fail("dedup", e.to_string());
            None
        }
    }
}

fn parse_on_invalid(c: &mut Checks, v: &Value) -> OnInvalid {
    serde_json::from_value(v.clone()).unwrap_or_else(|_| {
        c.fail("onInvalid", "must be \"quarantine\" or \"reject\"");
        OnInvalid::default()
    })
}

fn check_schema(c: &mut Checks, v: &Value) {
    if let Err(e) = crate::schema::compile_one(v) {
        c.fail("schema", format!("not a valid JSON Schema: {e}"));
    }
}

fn check_rate(c: &mut Checks, v: Option<i64>) -> Option<u32> {
    match v {
        Some(r) if !(1..=100_000).contains(&r) => {
            c.fail(
                "rateLimit",
                "must be between 1 and 100000 requests per second",
            );
            None
        }
        r => r.map(|r| r as u32),
    }
}

fn check_public_url(c: &mut Checks, u: &str) {
    match url::Url::parse(u) {
        Ok(p) if p.scheme() == "http" || p.scheme() == "https" => {}
        _ => c.fail("publicUrl", "must be an absolute http(s) URL"),
    }
}

fn check_forward(c: &mut Checks, h: &[String]) {
    for name in h {
        if http::HeaderName::try_from(name.as_str()).is_err() {
            c.fail("forwardHeaders", format!("`{name}` is not a header name"));
        }
    }
}

fn parse_ordering(c: &mut Checks, v: &Value) -> Option<OrderingRule> {
    match serde_json::from_value::<OrderingRule>(v.clone()) {
        Ok(r) => {
            let problems = r.problems();
            for (field, msg) in &problems {
                let mut e = crate::error::FieldError::new("ordering", msg.clone());
                e.loc.push((*field).into());
                c.0.push(e);
            }
            problems.is_empty().then_some(r)
        }
        Err(e) => {
            c.fail(
                "ordering",
                format!(
                    "must be {{\"key\": rule, \"sequence\": rule, \"gapTimeoutSeconds\"?: N}} \
                     with rules such as {{\"json\": \"/pointer\"}} or {{\"header\": name}}: {e}"
                ),
            );
            None
        }
    }
}

/// 409 wording of a taken uid.
const UID_TAKEN: &str = "a source with this uid already exists";

/// A PATCH of an optional option: absent keeps it, `null` clears it, a value is checked.
fn patch_opt<T>(
    c: &mut Checks,
    slot: &mut Option<T>,
    v: Option<Option<T>>,
    check: impl FnOnce(&mut Checks, &T),
) {
    if let Some(v) = v {
        if let Some(x) = &v {
            check(c, x);
        }
        *slot = v;
    }
}

/// Create a source.
#[utoipa::path(post, path = "/api/v1/app/{app_id}/source", tag = "Source", operation_id = "create_source",
    params(AppPath), request_body = SourceIn,
    responses(
        (status = 201, description = "Created", body = SourceOut),
        (status = 409, description = "The uid is taken", body = ErrorBody)))]
pub async fn create(at: InApp<SourceIn>) -> ApiResult<Response> {
    let (st, app, body) = (at.st, at.app, at.input);
    let mut c = Checks::default();
    c.name("name", &body.name);
    c.uid("uid", body.uid.as_deref());
    if body.uid.as_deref().is_some_and(|u| u.starts_with("src_")) {
        c.fail("uid", "must not start with an ID prefix (src_)");
    }
    let verification = parse_verification(&mut c, &body.verification);
    let mut opts = SourceOptions {
        event_type: body
            .event_type
            .as_ref()
            .and_then(|v| parse_rule(&mut c, "eventType", v)),
        dedup: body.dedup.as_ref().and_then(|v| parse_dedup(&mut c, v)),
        schema: body.schema.clone(),
        on_invalid: body
            .on_invalid
            .as_ref()
            .map(|v| parse_on_invalid(&mut c, v))
            .unwrap_or_default(),
        forward_headers: body.forward_headers.clone(),
        rate_limit: check_rate(&mut c, body.rate_limit),
        public_url: body.public_url.clone(),
        ordering: body
            .ordering
            .as_ref()
            .and_then(|v| parse_ordering(&mut c, v)),
        poll: body
            .poll
            .as_ref()
            .and_then(|v| reconcile::parse_poll(&st, &mut c, v, None)),
    };
    if let Some(s) = &opts.schema {
        check_schema(&mut c, s);
    }
    if let Some(u) = &opts.public_url {
        check_public_url(&mut c, u);
    }
    if let Some(h) = &opts.forward_headers {
        check_forward(&mut c, h);
    }
    let (verification, secrets) = c.finish_with(verification)?;
    let now = now_millis();
    opts.dedup = opts.dedup.filter(|d| *d != Dedup::default());
    let src = Source {
        id: SourceId::generate(),
        app_id: app.id.clone(),
        uid: body.uid,
        name: body.name,
        verification,
        secrets: secrets
            .unwrap_or_default()
            .into_iter()
            .map(StoredSecret::current)
            .collect(),
        options: opts,
        created_at: now,
        updated_at: now,
    };
    let src = st
        .store()
        .create_source(src)
        .await
        .map_err(ApiError::conflict_as(UID_TAKEN))?;
    reconcile::reschedule(&st, &src, None).await?;
    let out = reconcile::with_status(&st, &src, sources::out(&st, &src)).await?;
    Ok((StatusCode::CREATED, Json(out)).into_response())
}

/// List the application's sources.
#[utoipa::path(get, path = "/api/v1/app/{app_id}/source", tag = "Source", operation_id = "list_sources",
    params(AppPath, ListParams),
    responses((status = 200, description = "A page of sources", body = ListOut<SourceOut>)))]
pub async fn list(at: InApp<Q<ListParams>>) -> ApiList<SourceOut> {
    let (st, app, Q(p)) = (at.st, at.app, at.input);
    let page = st
        .store()
        .list_sources(&app.id, &p.to_query(false)?)
        .await?;
    Ok(Json(ListOut::page(&page, |s| sources::out(&st, s))))
}

/// Get a source by ID or uid.
#[utoipa::path(get, path = "/api/v1/app/{app_id}/source/{source_id}", tag = "Source", operation_id = "get_source",
    params(SourcePath),
    responses((status = 200, description = "The source", body = SourceOut)))]
pub async fn get(AtSource { st, src, .. }: AtSource) -> ApiResult<Json<SourceOut>> {
    let out = sources::out(&st, &src);
    Ok(Json(reconcile::with_status(&st, &src, out).await?))
}

/// Change some fields of a source.
#[utoipa::path(patch, path = "/api/v1/app/{app_id}/source/{source_id}", tag = "Source", operation_id = "patch_source",
    params(SourcePath), request_body = SourcePatch,
    responses(
        (status = 200, description = "Updated", body = SourceOut),
        (status = 409, description = "The uid is taken", body = ErrorBody)))]
pub async fn patch(at: AtSource<SourcePatch>) -> ApiResult<Json<SourceOut>> {
    let (st, mut s, p) = (at.st, at.src, at.input);
    let mut opts = s.options.clone();
    let mut c = Checks::default();
    if let Some(n) = &p.name {
        c.name("name", n);
    }
    if let Some(Some(u)) = &p.uid {
        c.uid("uid", Some(u));
    }
    let verification = p
        .verification
        .as_ref()
        .and_then(|v| parse_verification(&mut c, v));
    if let Some(v) = p.event_type {
        opts.event_type = v.and_then(|v| parse_rule(&mut c, "eventType", &v));
    }
    if let Some(v) = p.dedup {
        opts.dedup = v.and_then(|v| parse_dedup(&mut c, &v));
    }
    patch_opt(&mut c, &mut opts.schema, p.schema, check_schema);
    if let Some(v) = p.on_invalid {
        opts.on_invalid = v.map(|v| parse_on_invalid(&mut c, &v)).unwrap_or_default();
    }
    if let Some(v) = p.ordering {
        opts.ordering = v.and_then(|v| parse_ordering(&mut c, &v));
    }
    patch_opt(
        &mut c,
        &mut opts.forward_headers,
        p.forward_headers,
        |c, h| check_forward(c, h),
    );
    if let Some(v) = p.rate_limit {
        opts.rate_limit = check_rate(&mut c, v);
    }
    patch_opt(&mut c, &mut opts.public_url, p.public_url, |c, u| {
        check_public_url(c, u)
    });
    let poll_before = s.options.poll.clone();
    if let Some(v) = p.poll {
        opts.poll = v.and_then(|v| reconcile::parse_poll(&st, &mut c, &v, poll_before.as_ref()));
    }
    c.finish()?;
    apply(&mut s.name, p.name);
    apply(&mut s.uid, p.uid);
    if let Some((v, secrets)) = verification {
        s.verification = v;
        if let Some(secrets) = secrets {
            s.secrets = secrets.into_iter().map(StoredSecret::current).collect();
        }
    }
    s.options = opts;
    s.updated_at = now_millis();
    let s = st
        .store()
        .update_source(s)
        .await
        .map_err(ApiError::conflict_as(UID_TAKEN))?;
    reconcile::reschedule(&st, &s, poll_before.as_ref()).await?;
    Ok(Json(
        reconcile::with_status(&st, &s, sources::out(&st, &s)).await?,
    ))
}

/// Delete a source and its request log.
#[utoipa::path(delete, path = "/api/v1/app/{app_id}/source/{source_id}", tag = "Source", operation_id = "delete_source",
    params(SourcePath),
    responses((status = 204, description = "Deleted")))]
pub async fn remove(AtSource { st, src, .. }: AtSource) -> ApiResult<StatusCode> {
    st.store().delete_source(&src.app_id, &src.id).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Add a verification secret; the previous ones stay valid for `gracePeriodSeconds`.
#[utoipa::path(post, path = "/api/v1/app/{app_id}/source/{source_id}/secret/rotate", tag = "Source", operation_id = "rotate_source_secret",
    params(SourcePath), request_body = SourceRotateIn,
    responses((status = 200, description = "Rotated; `key` only when Herald generated it", body = SourceRotateOut)))]
pub async fn rotate(at: AtSource<SourceRotateIn>) -> ApiResult<Json<SourceRotateOut>> {
    let (st, mut s, body) = (at.st, at.src, at.input);
    let scheme = Some(s.verification.scheme);
    let mut c = Checks::default();
    let grace = secrets::grace_period(&mut c, body.grace_period_seconds);
    let (key, generated) = match (body.key, scheme) {
        (Some(k), _) if k.is_empty() || k.len() > 4096 => {
            c.fail("key", "must be 1 to 4096 characters");
            (String::new(), false)
        }
        (Some(k), _) => (k, false),
        (None, Some(Scheme::StandardWebhooks)) => {
            (EndpointSecret::generate().expose().to_string(), true)
        }
        (None, _) => {
            c.fail(
                "key",
                "required: this scheme's secret comes from the provider",
            );
            (String::new(), false)
        }
    };
    c.finish()?;
    let now = now_millis();
    secrets::rotate(&mut s.secrets, key.clone(), grace, now);
    s.updated_at = now;
    st.store().update_source(s).await?;
    Ok(Json(SourceRotateOut {
        key: generated.then_some(key),
    }))
}

/// Poll the provider now (reconciliation sources): the next run starts at once, or right after
/// the one in progress.
#[utoipa::path(post, path = "/api/v1/app/{app_id}/source/{source_id}/poll", tag = "Source", operation_id = "poll_source_now",
    params(SourcePath),
    responses(
        (status = 202, description = "A run is due now: the source with its `pollStatus`", body = SourceOut),
        (status = 409, description = "The source has no `poll`", body = ErrorBody)))]
pub async fn poll_now(AtSource { st, src, .. }: AtSource) -> ApiResult<Response> {
    if !reconcile::poll_now(&st, &src).await? {
        return Err(ApiError::Conflict("this source has no poll".into()));
    }
    let out = reconcile::with_status(&st, &src, sources::out(&st, &src)).await?;
    Ok((StatusCode::ACCEPTED, Json(out)).into_response())
}

#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct RequestListParams {
    #[serde(flatten)]
    #[param(ignore)]
    list: ListParams,
    /// Only requests in this state: `accepted`, `duplicate`, `rejected`, `quarantined`,
    /// `released`, `handshake`, `stale` or `held`.
    status: Option<String>,
}

/// The source's request log, newest first (rejected requests included, with their reason).
#[utoipa::path(get, path = "/api/v1/app/{app_id}/source/{source_id}/request", tag = "Source", operation_id = "list_source_requests",
    params(SourcePath, ListParams, RequestListParams),
    responses((status = 200, description = "A page of requests", body = ListOut<InboundRequestOut>)))]
pub async fn requests(at: At<SourcePath, Q<RequestListParams>>) -> ApiList<InboundRequestOut> {
    // The status is checked before the source is looked up (422 before 404).
    let status = match at.input.0.status.as_deref() {
        None => None,
        Some(v) => Some(InboundStatus::parse(v).ok_or_else(|| {
            ApiError::field(
                "status",
                "one of accepted, duplicate, rejected, quarantined, released, handshake, stale, held",
            )
        })?),
    };
    let at = at.source().await?;
    let (st, s, Q(p)) = (at.st, at.src, at.input);
    let page = st
        .store()
        .list_inbound(&s.id, status, &p.list.to_query(true)?)
        .await?;
    Ok(Json(ListOut::page(&page, |r| InboundRequestOut::from(r))))
}

/// Accepts a quarantined request as it is (after the schema or the sender was fixed).
#[utoipa::path(post, path = "/api/v1/app/{app_id}/source/{source_id}/quarantine/{request_id}/release", tag = "Source", operation_id = "release_quarantined",
    params(SourceRequestPath),
    responses(
        (status = 202, description = "Released: the message it became", body = ReleasedOut),
        (status = 409, description = "The request was rejected: it is never forwarded", body = ErrorBody)))]
pub async fn release(At { st, auth, path, .. }: At<SourceRequestPath>) -> ApiResult<Response> {
    let s = sources::load(&st, &auth, &path.app_id, &path.source_id).await?;
    let msg = sources::release(&st, &s, &path.request_id).await?;
    Ok((StatusCode::ACCEPTED, Json(ReleasedOut { id: msg.0 })).into_response())
}

/// Rejects a quarantined request: it is never forwarded and stays in the log as `rejected`,
/// its reason naming who rejected it and when. Releasing it afterwards answers 409.
#[utoipa::path(post, path = "/api/v1/app/{app_id}/source/{source_id}/quarantine/{request_id}/reject", tag = "Source", operation_id = "reject_quarantined",
    params(SourceRequestPath),
    responses((status = 204, description = "Rejected")))]
pub async fn reject(At { st, auth, path, .. }: At<SourceRequestPath>) -> ApiResult<StatusCode> {
    let s = sources::load(&st, &auth, &path.app_id, &path.source_id).await?;
    sources::reject(&st, &auth, &s, &path.request_id).await?;
    Ok(StatusCode::NO_CONTENT)
}
