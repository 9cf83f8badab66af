//! OpenAPI schemas of the wire values whose types are defined outside this crate (endpoint
//! ordering and signature scheme, delivery state and status text), for the DTOs'
//! `#[schema(schema_with = …)]`.
//!
//! The enum values are the types' own serde forms, so the document cannot drift from the wire.
//! Schema construction only: no route, state or handler belongs here.

use herald_core::model::Ordering;
use herald_core::signing::SignatureScheme;
use serde_json::Value;
use utoipa::openapi::schema::{ObjectBuilder, SchemaType, Type};
use utoipa::openapi::Object;

fn string_enum(values: Vec<Value>, nullable: bool, description: &str) -> Object {
    let ty = if nullable {
        SchemaType::from_iter([Type::String, Type::Null])
    } else {
        SchemaType::Type(Type::String)
    };
    let mut values = values;
    if nullable {
        values.push(Value::Null);
    }
    ObjectBuilder::new()
        .schema_type(ty)
        .enum_values(Some(values))
        .description(Some(description))
        .build()
}

fn wire<T: serde::Serialize>(v: T) -> Value {
    serde_json::to_value(v).unwrap_or(Value::Null)
}

fn ordering_values() -> Vec<Value> {
    vec![wire(Ordering::None), wire(Ordering::Fifo)]
}

fn scheme_values() -> Vec<Value> {
    vec![
        wire(SignatureScheme::Standard),
        wire(SignatureScheme::Svix),
        wire(SignatureScheme::Github),
    ]
}

const ORDERING_DOC: &str =
    "**(herald)** `fifo` delivers messages with the same `orderingKey` in publish order.";
const SCHEME_DOC: &str = "**(herald)** Which headers carry the signature.";

pub fn ordering() -> Object {
    string_enum(ordering_values(), false, ORDERING_DOC)
}
pub fn ordering_nullable() -> Object {
    string_enum(ordering_values(), true, ORDERING_DOC)
}
pub fn signature_scheme() -> Object {
    string_enum(scheme_values(), false, SCHEME_DOC)
}
pub fn signature_scheme_nullable() -> Object {
    string_enum(scheme_values(), true, SCHEME_DOC)
}
pub fn endpoint_state() -> Object {
    string_enum(
        ["healthy", "open", "half_open", "paused", "disabled"]
            .map(Value::from)
            .to_vec(),
        false,
        "**(herald)** Delivery state: circuit breaker, pause, or disabled.",
    )
}
pub fn status_text() -> Object {
    string_enum(
        ["success", "pending", "fail", "sending"]
            .map(Value::from)
            .to_vec(),
        false,
        "The delivery status as text.",
    )
}
