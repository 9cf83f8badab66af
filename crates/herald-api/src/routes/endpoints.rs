//! Endpoints: `/api/v1/app/{app_id}/endpoint…` — CRUD, secrets and rotation, custom headers,
//! stats, recover and send-example.

use std::collections::BTreeMap;

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use herald_core::destination::{self, BrokerKind};
use herald_core::ids::EndpointId;
use herald_core::model::{is_sensitive_header, Application, Endpoint, StoredSecret};
use herald_core::now_millis;
use herald_core::signing::{answer_text, EndpointSecret, SignatureScheme};
use serde::Deserialize;
use serde_json::json;

use crate::dto::{
    apply, apply_encryption, apply_or_default, apply_tls, check_endpoint_extras, check_filter,
    check_headers, check_list, check_timeout, patch_routing, set_routing, signing_secret, to_u32,
    ts, Checks, EndpointIn, EndpointOut, EndpointPatch, EndpointStatsOut, HeadersIn, HeadersOut,
    HeadersPatchIn, ListOut, MessageOut, RecoverData, RecoverIn, RecoverOut, SecretOut,
    SecretRotateIn, SendExampleIn, SignatureAlgorithm,
};
use crate::error::{ApiError, ApiResult, ErrorBody};
use crate::extract::{body_time, query_time, ListParams, Q};
use crate::paths::{AppPath, EndpointPath};
use crate::routes::{uid_from_path, ApiList};
use crate::scope::{At, AtEndpoint, InApp};
use crate::service::{apps, endpoints, secrets};
use crate::state::AppState;

/// Checks an endpoint URL and returns the one to store: HTTP(S) under the egress rules, or a
/// broker URL whose scheme the operator enabled (destinations.md). A broker URL sent back as
/// answered, credentials redacted (`user:***@`), keeps the stored credentials when it names
/// the same account (scheme, user, host, port): a client that reads, edits and writes an
/// endpoint must not replace its password with `***`, nor send it to another host.
fn check_url(st: &AppState, c: &mut Checks, url: &str, stored: Option<&str>) -> String {
    let egress = &st.inner.egress;
    // A polling endpoint's `poll:` names no host: nothing leaves Herald.
    if herald_core::pull::is_poll_url(url) {
        return url.to_string();
    }
    if BrokerKind::of_url(url).is_none() {
        if let Err(e) = egress.validate_url(url) {
            c.fail("url", e.to_string());
        }
        return url.to_string();
    }
    let url = match stored.and_then(|s| Some((s, destination::secret_of(s)?))) {
        Some((stored, secret))
            if destination::is_redacted(url) && destination::same_account(stored, url) =>
        {
            destination::with_secret(url, secret)
        }
        _ => url.to_string(),
    };
    if let Err(e) = destination::validate(egress, &egress.destination_schemes, &url) {
        c.fail("url", e.to_string());
    }
    url
}

/// The `github` scheme sends one HMAC signature: it cannot carry an Ed25519 one.
fn check_scheme(
    c: &mut Checks,
    scheme: Option<SignatureScheme>,
    new: Option<&EndpointSecret>,
    existing: Option<&Endpoint>,
) {
    let scheme = scheme.or(existing.map(|e| e.signature_scheme));
    let ed25519 = match new {
        Some(s) => s.is_ed25519(),
        None => existing
            .is_some_and(|e| SignatureAlgorithm::of_endpoint(e) == SignatureAlgorithm::Ed25519),
    };
    if ed25519 && scheme == Some(SignatureScheme::Github) {
        c.fail(
            "signatureScheme",
            "`github` signs with HMAC only; not with an Ed25519 key",
        );
    }
}

/// Builds an endpoint from a POST/PUT body; `existing` keeps identity, secrets and state.
fn from_in(
    st: &AppState,
    app: &Application,
    body: EndpointIn,
    existing: Option<Endpoint>,
) -> ApiResult<Endpoint> {
    let mut c = Checks::default();
    let url = check_url(
        st,
        &mut c,
        &body.url,
        existing.as_ref().map(|e| e.url.as_str()),
    );
    c.uid("uid", body.uid.as_deref());
    if body.description.as_ref().is_some_and(|d| d.len() > 4096) {
        c.fail("description", "at most 4096 characters");
    }
    check_list(&mut c, "eventTypes", body.event_types.as_ref());
    check_list(&mut c, "channels", body.channels.as_ref());
    c.rate("throttleRate", body.throttle_rate);
    if let Some(h) = &body.headers {
        check_headers(&mut c, "headers", h);
    }
    check_endpoint_extras(
        &mut c,
        body.retry_schedule.as_ref(),
        body.permanent_statuses.as_ref(),
        body.max_concurrency,
    );
    let batch = body.batch.map(|b| b.to_options(&body.url));
    if let Some(Err(e)) = &batch {
        c.fail("batch", e);
    }
    check_filter(&mut c, body.filter.as_ref());
    check_timeout(&mut c, body.timeout_ms);
    let secret = match (&existing, &body.secret, body.signature_algorithm) {
        // PUT without a secret keeps the current one, unless it names another algorithm.
        (Some(e), None, Some(a)) if a == SignatureAlgorithm::of_endpoint(e) => None,
        (Some(_), None, None) => None,
        _ => signing_secret(
            &mut c,
            body.secret.as_deref(),
            body.signature_algorithm,
            true,
        ),
    };
    check_scheme(
        &mut c,
        body.signature_scheme,
        secret.as_ref(),
        existing.as_ref(),
    );
    // Options a body does not mention (the transformation has its own route) survive a PUT.
    let mut options = existing
        .as_ref()
        .map(|e| e.options.clone())
        .unwrap_or_default();
    apply_tls(&mut c, &mut options, body.tls.map(Some));
    apply_encryption(&mut c, &mut options, body.encryption.map(Some));
    if let Some(Ok(b)) = batch {
        options.batch = Some(b);
    }
    c.finish()?;
    let now = now_millis();
    let (id, created_at, mut secrets, headers, paused_until, breaker) = match existing {
        Some(e) => (
            e.id,
            e.created_at,
            e.secrets,
            e.headers,
            e.paused_until,
            e.breaker,
        ),
        None => (
            EndpointId::generate(),
            now,
            vec![],
            BTreeMap::new(),
            None,
            Default::default(),
        ),
    };
    set_routing(&mut options, body.filter, body.timeout_ms);
    if let Some(s) = secret {
        secrets = vec![StoredSecret::current(s.expose())];
    }
    Ok(Endpoint {
        id,
        app_id: app.id.clone(),
        uid: body.uid,
        url,
        description: body.description.unwrap_or_default(),
        disabled: body.disabled.unwrap_or(false),
        event_types: body.event_types,
        channels: body.channels,
        throttle_rate: to_u32(body.throttle_rate),
        metadata: body.metadata.unwrap_or_default(),
        headers: body.headers.unwrap_or(headers),
        retry_schedule: body.retry_schedule,
        permanent_statuses: body.permanent_statuses.unwrap_or_default(),
        ordering: body.ordering.unwrap_or_default(),
        max_concurrency: to_u32(body.max_concurrency),
        signature_scheme: body.signature_scheme.unwrap_or(st.inner.default_scheme),
        secrets,
        paused_until,
        breaker,
        options,
        created_at,
        updated_at: now,
    })
}

/// Creates an endpoint from a POST/PUT body: 201 with it.
async fn insert(st: &AppState, app: &Application, body: EndpointIn) -> ApiResult<Response> {
    let ep = from_in(st, app, body, None)?;
    let ep = st
        .store()
        .create_endpoint(ep)
        .await
        .map_err(ApiError::conflict_as(UID_TAKEN))?;
    Ok((
        StatusCode::CREATED,
        Json(EndpointOut::new(&ep, now_millis())),
    )
        .into_response())
}

/// Stores a changed endpoint (PUT, PATCH), tells the workers when it was enabled or disabled,
/// and answers it.
async fn save(st: &AppState, was_disabled: bool, ep: Endpoint) -> ApiResult<Json<EndpointOut>> {
    let ep = st
        .store()
        .update_endpoint(ep)
        .await
        .map_err(ApiError::conflict_as(UID_TAKEN))?;
    st.endpoint_toggled(was_disabled, &ep).await;
    st.wake();
    Ok(Json(EndpointOut::new(&ep, now_millis())))
}

/// 409 wording of a taken uid.
const UID_TAKEN: &str = "an endpoint with this uid already exists";

/// List an application's endpoints, oldest first.
#[utoipa::path(get, path = "/api/v1/app/{app_id}/endpoint", tag = "Endpoint", operation_id = "list_endpoints",
    params(AppPath, ListParams),
    responses((status = 200, description = "A page of endpoints", body = ListOut<EndpointOut>)))]
pub async fn list(at: InApp<Q<ListParams>>) -> ApiList<EndpointOut> {
    let (st, app, Q(p)) = (at.st, at.app, at.input);
    let page = st
        .store()
        .list_endpoints(&app.id, &p.to_query(false)?)
        .await?;
    let now = now_millis();
    Ok(Json(ListOut::page(&page, |e| EndpointOut::new(e, now))))
}

/// Create an endpoint.
#[utoipa::path(post, path = "/api/v1/app/{app_id}/endpoint", tag = "Endpoint", operation_id = "create_endpoint",
    params(AppPath), request_body = EndpointIn,
    responses(
        (status = 201, description = "Created", body = EndpointOut),
        (status = 409, description = "The uid is taken", body = ErrorBody)))]
pub async fn create(at: InApp<EndpointIn>) -> ApiResult<Response> {
    let (st, app, body) = (at.st, at.app, at.input);
    insert(&st, &app, body).await
}

/// Get an endpoint by ID or uid.
#[utoipa::path(get, path = "/api/v1/app/{app_id}/endpoint/{endpoint_id}", tag = "Endpoint", operation_id = "get_endpoint",
    params(EndpointPath),
    responses((status = 200, description = "The endpoint", body = EndpointOut)))]
pub async fn get(AtEndpoint { ep, .. }: AtEndpoint) -> ApiResult<Json<EndpointOut>> {
    Ok(Json(EndpointOut::new(&ep, now_millis())))
}

/// Replace an endpoint (secrets and delivery state are kept), or create it with the path
/// segment as `uid` when none exists.
#[utoipa::path(put, path = "/api/v1/app/{app_id}/endpoint/{endpoint_id}", tag = "Endpoint", operation_id = "update_endpoint",
    params(EndpointPath), request_body = EndpointIn,
    responses(
        (status = 200, description = "Updated", body = EndpointOut),
        (status = 201, description = "Created", body = EndpointOut),
        (status = 409, description = "The uid is taken", body = ErrorBody)))]
pub async fn update(at: At<EndpointPath, EndpointIn>) -> ApiResult<Response> {
    let (st, auth, path, body) = (at.st, at.auth, at.path, at.input);
    let app = apps::load(&st, &auth, &path.app_id).await?;
    match st.store().get_endpoint(&app.id, &path.endpoint_id).await? {
        Some(existing) => {
            let was_disabled = existing.disabled;
            let ep = from_in(&st, &app, body, Some(existing))?;
            Ok(save(&st, was_disabled, ep).await?.into_response())
        }
        None => {
            let mut body = body;
            uid_from_path(&mut body.uid, path.endpoint_id, EndpointId::looks_like);
            insert(&st, &app, body).await
        }
    }
}

/// Change some fields of an endpoint: absent = unchanged, `null` = cleared.
#[utoipa::path(patch, path = "/api/v1/app/{app_id}/endpoint/{endpoint_id}", tag = "Endpoint", operation_id = "patch_endpoint",
    params(EndpointPath), request_body = EndpointPatch,
    responses(
        (status = 200, description = "Updated", body = EndpointOut),
        (status = 409, description = "The uid is taken", body = ErrorBody)))]
pub async fn patch(at: AtEndpoint<EndpointPatch>) -> ApiResult<Json<EndpointOut>> {
    let (st, mut ep, p) = (at.st, at.ep, at.input);
    let was_disabled = ep.disabled;
    let mut c = Checks::default();
    let url = p
        .url
        .as_deref()
        .map(|u| check_url(&st, &mut c, u, Some(&ep.url)));
    if let Some(Some(u)) = &p.uid {
        c.uid("uid", Some(u));
    }
    if let Some(Some(l)) = &p.event_types {
        check_list(&mut c, "eventTypes", Some(l));
    }
    if let Some(Some(l)) = &p.channels {
        check_list(&mut c, "channels", Some(l));
    }
    if let Some(r) = p.throttle_rate {
        c.rate("throttleRate", r);
    }
    check_endpoint_extras(
        &mut c,
        p.retry_schedule.as_ref().and_then(|o| o.as_ref()),
        p.permanent_statuses.as_ref().and_then(|o| o.as_ref()),
        p.max_concurrency.flatten(),
    );
    check_filter(&mut c, p.filter.as_ref().and_then(|o| o.as_ref()));
    check_timeout(&mut c, p.timeout_ms.flatten());
    let algorithm = p
        .signature_algorithm
        .filter(|a| p.secret.is_some() || *a != SignatureAlgorithm::of_endpoint(&ep));
    let secret = signing_secret(&mut c, p.secret.as_deref(), algorithm, false);
    check_scheme(
        &mut c,
        p.signature_scheme.flatten(),
        secret.as_ref(),
        Some(&ep),
    );
    apply_tls(&mut c, &mut ep.options, p.tls);
    apply_encryption(&mut c, &mut ep.options, p.encryption);
    c.finish()?;
    apply(&mut ep.url, url);
    apply_or_default(&mut ep.description, p.description);
    apply(&mut ep.uid, p.uid);
    apply(&mut ep.disabled, p.disabled);
    apply(&mut ep.event_types, p.event_types);
    apply(&mut ep.channels, p.channels);
    apply(&mut ep.throttle_rate, p.throttle_rate.map(to_u32));
    apply_or_default(&mut ep.metadata, p.metadata);
    apply(&mut ep.retry_schedule, p.retry_schedule);
    apply_or_default(&mut ep.permanent_statuses, p.permanent_statuses);
    apply_or_default(&mut ep.ordering, p.ordering);
    apply(&mut ep.max_concurrency, p.max_concurrency.map(to_u32));
    if let Some(scheme) = p.signature_scheme {
        ep.signature_scheme = scheme.unwrap_or(st.inner.default_scheme);
    }
    patch_routing(&mut ep.options, p.filter, p.timeout_ms);
    if let Some(s) = secret {
        ep.secrets = vec![StoredSecret::current(s.expose())];
    }
    if let Some(b) = p.batch {
        ep.options.batch = None;
        if let Some(b) = b {
            ep.options.batch = Some(
                b.to_options(&ep.url)
                    .map_err(|e| ApiError::field("batch", e))?,
            );
        }
    } else if ep.options.batch.is_some() && herald_core::pull::is_poll_url(&ep.url) {
        return Err(ApiError::field(
            "batch",
            "batch applies to HTTP endpoints only",
        ));
    }
    ep.updated_at = now_millis();
    save(&st, was_disabled, ep).await
}

/// Delete an endpoint.
#[utoipa::path(delete, path = "/api/v1/app/{app_id}/endpoint/{endpoint_id}", tag = "Endpoint", operation_id = "delete_endpoint",
    params(EndpointPath),
    responses((status = 204, description = "Deleted")))]
pub async fn remove(AtEndpoint { st, app, ep, .. }: AtEndpoint) -> ApiResult<StatusCode> {
    st.store().delete_endpoint(&app.id, &ep.id).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// The endpoint's current signing secret.
#[utoipa::path(get, path = "/api/v1/app/{app_id}/endpoint/{endpoint_id}/secret", tag = "Endpoint", operation_id = "get_endpoint_secret",
    params(EndpointPath),
    responses((status = 200, description = "The newest secret", body = SecretOut)))]
pub async fn secret(AtEndpoint { ep, .. }: AtEndpoint) -> ApiResult<Json<SecretOut>> {
    let key = ep
        .secrets
        .first()
        .map(|s| answer_text(&s.key))
        .unwrap_or_default();
    Ok(Json(SecretOut { key }))
}

/// Rotate the signing secret; older secrets keep signing for `gracePeriodSeconds`.
#[utoipa::path(post, path = "/api/v1/app/{app_id}/endpoint/{endpoint_id}/secret/rotate", tag = "Endpoint", operation_id = "rotate_endpoint_secret",
    params(EndpointPath), request_body = SecretRotateIn,
    responses((status = 200, description = "The new secret", body = SecretOut)))]
pub async fn rotate(at: AtEndpoint<SecretRotateIn>) -> ApiResult<Json<SecretOut>> {
    let (st, mut ep, body) = (at.st, at.ep, at.input);
    let mut c = Checks::default();
    // Without a key, the new secret is of the same algorithm as the current one.
    let kind = SignatureAlgorithm::of_endpoint(&ep);
    let new = signing_secret(&mut c, body.key.as_deref(), None, false)
        .or_else(|| body.key.is_none().then(|| kind.generate()));
    let grace = secrets::grace_period(&mut c, body.grace_period_seconds);
    let new = c.finish_with(new)?;
    let now = now_millis();
    secrets::rotate(&mut ep.secrets, new.expose().to_string(), grace, now);
    ep.updated_at = now;
    st.store().update_endpoint(ep).await?;
    Ok(Json(SecretOut {
        key: answer_text(new.expose()),
    }))
}

fn headers_out(h: &BTreeMap<String, String>) -> HeadersOut {
    let (sensitive, plain): (Vec<_>, Vec<_>) = h.iter().partition(|(k, _)| is_sensitive_header(k));
    HeadersOut {
        headers: plain
            .into_iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect(),
        sensitive: sensitive.into_iter().map(|(k, _)| k.clone()).collect(),
    }
}

/// The endpoint's custom headers (sensitive ones by name only).
#[utoipa::path(get, path = "/api/v1/app/{app_id}/endpoint/{endpoint_id}/headers", tag = "Endpoint", operation_id = "get_endpoint_headers",
    params(EndpointPath),
    responses((status = 200, description = "Custom headers", body = HeadersOut)))]
pub async fn headers(AtEndpoint { ep, .. }: AtEndpoint) -> ApiResult<Json<HeadersOut>> {
    Ok(Json(headers_out(&ep.headers)))
}

/// Replace the endpoint's custom headers.
#[utoipa::path(put, path = "/api/v1/app/{app_id}/endpoint/{endpoint_id}/headers", tag = "Endpoint", operation_id = "update_endpoint_headers",
    params(EndpointPath), request_body = HeadersIn,
    responses((status = 204, description = "Replaced")))]
pub async fn put_headers(at: AtEndpoint<HeadersIn>) -> ApiResult<StatusCode> {
    change_headers(&at.st, at.ep, at.input.headers, None).await
}

/// Add, change or delete some custom headers.
#[utoipa::path(patch, path = "/api/v1/app/{app_id}/endpoint/{endpoint_id}/headers", tag = "Endpoint", operation_id = "patch_endpoint_headers",
    params(EndpointPath), request_body = HeadersPatchIn,
    responses((status = 204, description = "Changed")))]
pub async fn patch_headers(at: AtEndpoint<HeadersPatchIn>) -> ApiResult<StatusCode> {
    let delete = Some(at.input.delete_headers.as_slice());
    change_headers(&at.st, at.ep, at.input.headers, delete).await
}

/// Sets the custom headers `set` after deleting those named in `delete`, or all of them when
/// `delete` is `None` (PUT replaces, PATCH amends): 204.
async fn change_headers(
    st: &AppState,
    mut ep: Endpoint,
    set: BTreeMap<String, String>,
    delete: Option<&[String]>,
) -> ApiResult<StatusCode> {
    let mut c = Checks::default();
    check_headers(&mut c, "headers", &set);
    c.finish()?;
    match delete {
        None => ep.headers.clear(),
        Some(names) => {
            for k in names {
                ep.headers.retain(|name, _| !name.eq_ignore_ascii_case(k));
            }
        }
    }
    ep.headers.extend(set);
    ep.updated_at = now_millis();
    st.store().update_endpoint(ep).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct StatsParams {
    /// Count deliveries created at or after this RFC 3339 date-time.
    #[param(format = DateTime)]
    since: Option<String>,
    /// Count deliveries created before this RFC 3339 date-time.
    #[param(format = DateTime)]
    until: Option<String>,
}

/// Delivery counts of the endpoint by status.
#[utoipa::path(get, path = "/api/v1/app/{app_id}/endpoint/{endpoint_id}/stats", tag = "Endpoint", operation_id = "get_endpoint_stats",
    params(EndpointPath, StatsParams),
    responses((status = 200, description = "Counts", body = EndpointStatsOut)))]
pub async fn stats(at: AtEndpoint<Q<StatsParams>>) -> ApiResult<Json<EndpointStatsOut>> {
    let (st, ep, Q(q)) = (at.st, at.ep, at.input);
    let since = query_time("since", q.since.as_deref())?;
    let until = query_time("until", q.until.as_deref())?;
    let s = st.store().endpoint_stats(&ep.id, since, until).await?;
    Ok(Json(EndpointStatsOut {
        success: s.success,
        pending: s.pending,
        sending: s.sending,
        fail: s.fail,
        canceled: 0,
    }))
}

/// Re-queue every failed delivery to this endpoint since `since` (until `until`).
#[utoipa::path(post, path = "/api/v1/app/{app_id}/endpoint/{endpoint_id}/recover", tag = "Endpoint", operation_id = "recover_endpoint",
    params(EndpointPath), request_body = RecoverIn,
    responses((status = 202, description = "Re-queued (the task is already finished)", body = RecoverOut)))]
pub async fn recover(at: AtEndpoint<RecoverIn>) -> ApiResult<Response> {
    let (st, ep, body) = (at.st, at.ep, at.input);
    let since = body_time("since", &body.since)?;
    let until = body
        .until
        .as_deref()
        .map(|u| body_time("until", u))
        .transpose()?;
    let now = now_millis();
    let n = st.store().recover(&ep.id, since, until, now).await?;
    st.wake();
    let task = RecoverOut {
        id: format!("qtask_{}", ulid::Ulid::new()),
        status: "finished".into(),
        task: "endpoint.recover".into(),
        updated_at: ts(now),
        data: RecoverData { messages_sent: n },
    };
    Ok((StatusCode::ACCEPTED, Json(task)).into_response())
}

/// Publish an example message of an event type to this one endpoint.
#[utoipa::path(post, path = "/api/v1/app/{app_id}/endpoint/{endpoint_id}/send-example", tag = "Endpoint", operation_id = "send_endpoint_example",
    params(EndpointPath), request_body = SendExampleIn,
    responses((status = 202, description = "Published", body = MessageOut)))]
pub async fn send_example(at: AtEndpoint<SendExampleIn>) -> ApiResult<Response> {
    let (st, app, ep, body) = (at.st, at.app, at.ep, at.input);
    if !crate::dto::valid_uid(&body.event_type) {
        return Err(ApiError::field(
            "eventType",
            "must match ^[a-zA-Z0-9\\-_.]+$",
        ));
    }
    // The example comes from the event type's schema `examples` when it has one.
    let example = st
        .store()
        .get_event_type(&body.event_type)
        .await?
        .and_then(|et| endpoints::example_of(et.schemas.as_ref()?, body.example_index.unwrap_or(0)))
        .unwrap_or_else(|| json!({ "type": body.event_type, "example": true }));
    let (event_type, payload) = (body.event_type, example.to_string());
    let skip = endpoints::SchemaCheck::Skip;
    let published = endpoints::send_to(&st, (&app, &ep), event_type, payload, skip).await?;
    Ok((
        StatusCode::ACCEPTED,
        Json(MessageOut::new(&published, true)),
    )
        .into_response())
}
