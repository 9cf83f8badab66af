//! The OpenAPI 3.1 document of the HTTP API, generated from the handlers' `#[utoipa::path]`
//! attributes and the DTOs' `ToSchema` derives, served at `/api/v1/openapi.json`, and the
//! browsable docs page at `/docs` (Swagger UI, its assets embedded in the binary).
//!
//! This module owns what every operation shares so that handlers only declare what is theirs:
//! the bearer security scheme, the `{code, detail}` error answers each kind of input can cause
//! (see [`Conventions`]) and the optional `idempotency-key` header (path parameters are
//! `crate::paths`, value schemas `crate::dto::schemas`). It must not describe behaviour the
//! code does not have: shapes come from the types the handlers return, and the integration
//! test `openapi` checks that every route is documented. Only the router uses this module.

use std::sync::{Arc, OnceLock};

use axum::extract::Path;
use axum::http::header;
use axum::response::{IntoResponse, Response};
use utoipa::openapi::path::{Operation, Parameter, ParameterBuilder, ParameterIn};
use utoipa::openapi::request_body::RequestBody;
use utoipa::openapi::response::ResponseBuilder;
use utoipa::openapi::schema::{ObjectBuilder, Type};
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityRequirement, SecurityScheme};
use utoipa::openapi::{
    Content, HeaderBuilder, OpenApi as OpenApiDoc, Ref, RefOr, Required, Response as OaResponse,
};
use utoipa::{Modify, OpenApi};

use crate::dto;
use crate::error::{ApiError, ErrorBody, FieldError, ValidationErrorBody};
use crate::routes::{
    apps, endpoints, inbound, listen, messages, misc, pull, routing, sources, transformation,
};

/// Where the document is served.
pub const OPENAPI_PATH: &str = "/api/v1/openapi.json";
/// Where the docs page is served (its assets under `/docs/…`).
pub const DOCS_PATH: &str = "/docs";

/// Name of the bearer security scheme in the document.
const BEARER: &str = "bearer";
/// Operations that need no token.
const PUBLIC: &[&str] = &["/api/v1/health", "/healthz", "/metrics", INGEST_PATH];
/// The ingestion route: public (the provider's signature authenticates), any body.
const INGEST_PATH: &str = "/in/{source_id}";
/// POST routes whose answers carry a secret and so are never replayed by `idempotency-key`.
const NOT_IDEMPOTENT: &[&str] = &[
    "/api/v1/app/{app_id}/endpoint/{endpoint_id}/secret/rotate",
    "/api/v1/auth/app-portal-access/{app_id}",
    "/api/v1/app/{app_id}/endpoint/{endpoint_id}/poll/token",
    "/api/v1/token",
    INGEST_PATH,
];

#[derive(OpenApi)]
#[openapi(
    info(
        title = "Herald",
        description = "Herald's management API: Svix v1 compatible, plus Herald fields marked **(herald)**. \
            Every error answers `{\"code\", \"detail\"}`; 422 answers list every problem in `detail`.",
        license(name = "Apache-2.0", identifier = "Apache-2.0"),
    ),
    paths(
        misc::health,
        apps::list, apps::create, apps::get, apps::update, apps::patch, apps::remove,
        endpoints::list, endpoints::create, endpoints::get, endpoints::update, endpoints::patch,
        endpoints::remove, endpoints::secret, endpoints::rotate, endpoints::headers,
        endpoints::put_headers, endpoints::patch_headers, endpoints::stats, endpoints::recover,
        endpoints::send_example, routing::test_filter, listen::listen, pull::poll,
        pull::create_token, pull::list_tokens, pull::delete_token, transformation::get, transformation::patch, transformation::test,
        messages::by_endpoint, messages::list, messages::create, messages::get, messages::expunge,
        messages::endpoints_of, messages::resend, messages::attempt,
        messages::attempts_by_endpoint, messages::attempts_by_msg,
        misc::list_event_types, misc::create_event_type, misc::get_event_type,
        misc::update_event_type, misc::patch_event_type, misc::delete_event_type,
        misc::app_portal_access, misc::list_tokens, misc::create_token, misc::delete_token,
        misc::metrics, misc::healthz,
        sources::list, sources::create, sources::get, sources::patch, sources::remove,
        sources::rotate, sources::requests, sources::release, sources::reject,
        sources::poll_now,
        inbound::ingest,
    ),
    components(schemas(ErrorBody, ValidationErrorBody, FieldError, dto::LivenessOut)),
    modifiers(&Conventions),
    tags(
        (name = "Application"), (name = "Endpoint"), (name = "Message"),
        (name = "Message Attempt"), (name = "Event Type"), (name = "Authentication"),
        (name = "Health"), (name = "Source"), (name = "Inbound"),
    ),
)]
pub struct ApiDoc;

/// The document, built once.
pub fn document() -> &'static OpenApiDoc {
    static DOC: OnceLock<OpenApiDoc> = OnceLock::new();
    DOC.get_or_init(ApiDoc::openapi)
}

/// `GET /api/v1/openapi.json`.
pub async fn openapi_json() -> Response {
    static JSON: OnceLock<Result<String, String>> = OnceLock::new();
    match JSON.get_or_init(|| document().to_json().map_err(|e| e.to_string())) {
        Ok(text) => ([(header::CONTENT_TYPE, "application/json")], text.clone()).into_response(),
        Err(e) => ApiError::Internal(format!("OpenAPI document: {e}")).into_response(),
    }
}

fn swagger_config() -> Arc<utoipa_swagger_ui::Config<'static>> {
    static CONFIG: OnceLock<Arc<utoipa_swagger_ui::Config<'static>>> = OnceLock::new();
    CONFIG
        .get_or_init(|| Arc::new(utoipa_swagger_ui::Config::new([OPENAPI_PATH])))
        .clone()
}

/// `GET /docs`: Swagger UI's page. Its assets are referenced relative to `/docs/` (the server
/// trims trailing slashes, so the page itself lives at `/docs` and says where its base is).
pub async fn docs_index() -> Response {
    docs_file("index.html").await
}

/// `GET /docs/{file}`: one of Swagger UI's embedded assets.
pub async fn docs_asset(Path(file): Path<String>) -> Response {
    docs_file(&file).await
}

async fn docs_file(file: &str) -> Response {
    match utoipa_swagger_ui::serve(file, swagger_config()) {
        Ok(Some(f)) => {
            let body = if file == "index.html" {
                let html = String::from_utf8_lossy(&f.bytes);
                html.replacen("<head>", "<head>\n    <base href=\"/docs/\">", 1)
                    .into_bytes()
            } else {
                f.bytes.into_owned()
            };
            ([(header::CONTENT_TYPE, f.content_type)], body).into_response()
        }
        Ok(None) => ApiError::NotFound("no such file".into()).into_response(),
        Err(e) => ApiError::Internal(format!("docs page: {e}")).into_response(),
    }
}

// ---- conventions shared by every operation -------------------------------------------------

/// Adds what every operation shares: the bearer scheme and its requirement (except on public
/// routes), the error answers that follow from the operation's inputs, and the optional
/// `idempotency-key` header on POSTs.
///
/// Which errors follow from what (see `error.rs` and `extract.rs`):
/// - a token is needed → 401 (missing or unknown token), 403 (token scoped to another app);
/// - path parameters → 400 (a segment that does not decode), 404 (no such resource);
/// - a JSON body → 400 (not JSON), 413 (too large), 422 (wrong shape or invalid values);
/// - query parameters → 422 (a value of the wrong type or out of range);
/// - storage is read → 503 (storage unavailable, with `Retry-After`).
pub struct Conventions;

impl Modify for Conventions {
    fn modify(&self, doc: &mut OpenApiDoc) {
        let components = doc.components.get_or_insert_with(Default::default);
        components.security_schemes.insert(
            BEARER.into(),
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .description(Some(
                        "The admin token, an `hk_…` API token, or an app-portal token (scoped \
                         to one application).",
                    ))
                    .build(),
            ),
        );
        for (name, description, schema) in ERRORS {
            components.responses.insert(
                (*name).into(),
                RefOr::T(error_response(name, description, schema)),
            );
        }
        for (path, item) in doc.paths.paths.iter_mut() {
            let public = PUBLIC.contains(&path.as_str());
            let ops = [
                (&mut item.get, false),
                (&mut item.put, false),
                (&mut item.post, !NOT_IDEMPOTENT.contains(&path.as_str())),
                (&mut item.patch, false),
                (&mut item.delete, false),
            ];
            for (op, idempotent) in ops {
                if let Some(op) = op.as_mut() {
                    apply(op, public, idempotent);
                    if path == INGEST_PATH {
                        // Any bytes are accepted: there is no "not JSON" 400 here.
                        op.responses.responses.remove("400");
                    }
                }
            }
        }
    }
}

/// Reusable error answers: (component name, description, body schema).
const ERRORS: &[(&str, &str, &str)] = &[
    ("BadRequest", "The body is not JSON, or a path segment does not decode (`bad_request`)", "ErrorBody"),
    ("Unauthorized", "Missing or unknown bearer token (`authentication_failed`)", "ErrorBody"),
    ("Forbidden", "The token may not do this: a token scoped to another application, or an admin-only route (`forbidden`)", "ErrorBody"),
    ("NotFound", "No such resource (`not_found`)", "ErrorBody"),
    ("PayloadTooLarge", "The body is larger than the configured limit (`payload_too_large`)", "ErrorBody"),
    ("ValidationError", "The input has the wrong shape or invalid values; `detail` lists every problem (`validation_error`)", "ValidationErrorBody"),
    ("StorageUnavailable", "Storage is unavailable; retry after `Retry-After` seconds (`storage_unavailable`)", "ErrorBody"),
];

fn error_response(name: &str, description: &str, schema: &str) -> OaResponse {
    let mut b = ResponseBuilder::new().description(description).content(
        "application/json",
        Content::new(Some(Ref::from_schema_name(schema))),
    );
    if name == "StorageUnavailable" {
        b = b.header(
            "retry-after",
            HeaderBuilder::new()
                .schema(ObjectBuilder::new().schema_type(Type::String))
                .description(Some("Seconds to wait before retrying"))
                .build(),
        );
    }
    b.build()
}

fn apply(op: &mut Operation, public: bool, idempotent: bool) {
    let params = op.parameters.as_deref().unwrap_or_default();
    let has_path = params.iter().any(|p| p.parameter_in == ParameterIn::Path);
    let has_query = params.iter().any(|p| p.parameter_in == ParameterIn::Query);
    let has_body = op.request_body.is_some();
    let mut add = |status: &str, name: &str| {
        op.responses
            .responses
            .entry(status.into())
            .or_insert_with(|| RefOr::Ref(Ref::from_response_name(name)));
    };
    if !public {
        add("401", "Unauthorized");
        add("403", "Forbidden");
        add("503", "StorageUnavailable");
    }
    if has_path {
        add("400", "BadRequest");
        add("404", "NotFound");
    }
    if has_body {
        add("400", "BadRequest");
        add("413", "PayloadTooLarge");
        add("422", "ValidationError");
    }
    if has_query {
        add("422", "ValidationError");
    }
    if public {
        op.security = Some(vec![]);
    } else {
        op.security = Some(vec![SecurityRequirement::new(BEARER, Vec::<String>::new())]);
    }
    if idempotent {
        op.parameters
            .get_or_insert_with(Vec::new)
            .push(idempotency_key());
    }
    if let Some(body) = op.request_body.as_mut() {
        mark_required(body);
    }
}

fn idempotency_key() -> Parameter {
    ParameterBuilder::new()
        .name("idempotency-key")
        .parameter_in(ParameterIn::Header)
        .required(Required::False)
        .description(Some(
            "Within 12 h, the same key from the same token on the same path answers the first \
             2xx again, with `idempotent-replayed: true`.",
        ))
        .schema(Some(ObjectBuilder::new().schema_type(Type::String)))
        .build()
}

/// Every JSON body is required: an empty body is not JSON (400).
fn mark_required(body: &mut RequestBody) {
    body.required = Some(Required::True);
}
