//! Static limits on user-supplied JSON Schemas (event types' `schemas`, sources' `schema`),
//! checked before a schema is stored or compiled.
//!
//! A validator follows `$ref`s while it checks an instance, so a schema whose references loop
//! without moving into the instance (`a → b → a`, or `allOf: [{"$ref": "#"}]`) never ends, and
//! one whose references fan out (`allOf` of two references to a level that does the same, forty
//! levels deep) does exponential work on every publish. This module refuses both by walking
//! the schema once, with every reference resolved inside the document, and bounding the work
//! one instance value can cause. Recursion through a keyword that moves into the instance
//! (`properties`, `items`, …) is legitimate — each step consumes a level of the payload, whose
//! depth the JSON parser bounds — so it is allowed.
//!
//! It owns no validation of instances; the `jsonschema` crate does that once a schema passes.
//! References must stay inside the document (`#`, `#/json/pointer`, `#anchor`): remote
//! references are never fetched (SSRF) and `$id`-relative ones below the root could not be
//! resolved here, so they are refused rather than trusted.

use std::collections::HashMap;

use serde_json::Value;

/// Largest schema accepted, as serialized JSON.
pub const MAX_SCHEMA_BYTES: usize = 512 * 1024;
/// Most schema evaluations one instance value may cause, with every reference inlined once
/// (recursion through the instance counted once). Real payload schemas stay far below it.
pub const MAX_EXPANDED_NODES: u64 = 100_000;
/// Deepest chain of nested subschemas and references the walk follows. The walk recurses once
/// per level, so without a bound a long `$ref` chain (`d0 → d1 → … → d10000`, well within
/// [`MAX_SCHEMA_BYTES`]) overflowed the stack of the thread checking it, aborting the process.
pub const MAX_DEPTH: usize = 512;

/// Why a schema is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SchemaGuardError {
    #[error("schema is larger than {MAX_SCHEMA_BYTES} bytes")]
    TooLarge,
    #[error("`$ref` cycle that never moves into the payload, through {0}")]
    Cycle(String),
    #[error("references expand to more than {MAX_EXPANDED_NODES} evaluations per value")]
    TooExpensive,
    #[error("subschemas and references nest more than {MAX_DEPTH} levels deep")]
    TooDeep,
    #[error("`{0}` is not a reference inside this schema (only `#`, `#/pointer` and `#anchor` are supported)")]
    NonLocalRef(String),
    #[error("`{0}` points at nothing in this schema")]
    Unresolved(String),
    #[error("`$id` is only supported at the schema's root (found at `{0}`)")]
    NestedId(String),
}

/// Keywords whose subschemas apply to the same instance value.
const SAME_ONE: &[&str] = &["not", "if", "then", "else"];
const SAME_LIST: &[&str] = &["allOf", "anyOf", "oneOf"];
const SAME_MAP: &[&str] = &["dependentSchemas", "dependencies"];
/// Keywords whose subschemas apply to values inside the instance.
const CHILD_ONE: &[&str] = &[
    "additionalProperties",
    "additionalItems",
    "contains",
    "propertyNames",
    "unevaluatedProperties",
    "unevaluatedItems",
    "contentSchema",
    "items",
];
const CHILD_LIST: &[&str] = &["prefixItems", "items"];
const CHILD_MAP: &[&str] = &["properties", "patternProperties"];

/// Checks `schema` against the limits above.
pub fn check(schema: &Value) -> Result<(), SchemaGuardError> {
    // serde_json's writer cannot fail on a Value; a length count avoids building the string.
    let size = serde_json::to_vec(schema)
        .map(|v| v.len())
        .unwrap_or(usize::MAX);
    if size > MAX_SCHEMA_BYTES {
        return Err(SchemaGuardError::TooLarge);
    }
    let mut anchors = HashMap::new();
    collect_anchors(schema, String::new(), &mut anchors)?;
    let mut walk = Walk {
        root: schema,
        anchors,
        path: Vec::new(),
        memo: HashMap::new(),
    };
    let cost = walk.cost(String::new(), false)?;
    if cost > MAX_EXPANDED_NODES {
        return Err(SchemaGuardError::TooExpensive);
    }
    Ok(())
}

fn escape(token: &str) -> String {
    token.replace('~', "~0").replace('/', "~1")
}

/// Records `$anchor`/`$dynamicAnchor` names and refuses `$id` below the root.
fn collect_anchors(
    v: &Value,
    at: String,
    out: &mut HashMap<String, String>,
) -> Result<(), SchemaGuardError> {
    match v {
        Value::Object(m) => {
            if !at.is_empty() && m.get("$id").is_some_and(Value::is_string) {
                return Err(SchemaGuardError::NestedId(at));
            }
            for key in ["$anchor", "$dynamicAnchor"] {
                if let Some(Value::String(name)) = m.get(key) {
                    out.entry(name.clone()).or_insert_with(|| at.clone());
                }
            }
            for (k, child) in m {
                collect_anchors(child, format!("{at}/{}", escape(k)), out)?;
            }
        }
        Value::Array(items) => {
            for (i, child) in items.iter().enumerate() {
                collect_anchors(child, format!("{at}/{i}"), out)?;
            }
        }
        _ => {}
    }
    Ok(())
}

/// Decodes the `%XX` escapes a URI fragment may carry.
fn percent_decode(s: &str) -> Option<String> {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = std::str::from_utf8(bytes.get(i + 1..i + 3)?).ok()?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

struct Walk<'a> {
    root: &'a Value,
    anchors: HashMap<String, String>,
    /// The nodes being expanded, each with whether it was entered through a keyword that moves
    /// into the instance.
    path: Vec<(String, bool)>,
    memo: HashMap<String, u64>,
}

impl Walk<'_> {
    fn resolve(&self, reference: &str) -> Result<String, SchemaGuardError> {
        let Some(fragment) = reference.strip_prefix('#') else {
            return Err(SchemaGuardError::NonLocalRef(reference.to_string()));
        };
        let fragment = percent_decode(fragment)
            .ok_or_else(|| SchemaGuardError::Unresolved(reference.to_string()))?;
        let pointer = if fragment.is_empty() || fragment.starts_with('/') {
            fragment
        } else {
            self.anchors
                .get(&fragment)
                .cloned()
                .ok_or_else(|| SchemaGuardError::Unresolved(reference.to_string()))?
        };
        match self.root.pointer(&pointer) {
            Some(_) => Ok(pointer),
            None => Err(SchemaGuardError::Unresolved(reference.to_string())),
        }
    }

    /// Evaluations one instance value causes at `at`, references inlined.
    fn cost(&mut self, at: String, into_instance: bool) -> Result<u64, SchemaGuardError> {
        if let Some(pos) = self.path.iter().position(|(p, _)| *p == at) {
            // Back on a node being expanded: fine if some step since moved into the instance
            // (the payload's depth ends it), an endless loop otherwise.
            let moved = into_instance || self.path[pos + 1..].iter().any(|(_, child)| *child);
            return if moved {
                Ok(1)
            } else {
                Err(SchemaGuardError::Cycle(format!("`#{at}`")))
            };
        }
        if let Some(c) = self.memo.get(&at) {
            return Ok(*c);
        }
        let Some(node) = self.root.pointer(&at) else {
            return Ok(1);
        };
        if self.path.len() >= MAX_DEPTH {
            return Err(SchemaGuardError::TooDeep);
        }
        let Value::Object(m) = node else {
            return Ok(1);
        };
        let mut edges: Vec<(String, bool)> = Vec::new();
        for key in ["$ref", "$dynamicRef"] {
            if let Some(Value::String(r)) = m.get(key) {
                edges.push((self.resolve(r)?, false));
            }
        }
        if m.contains_key("$recursiveRef") {
            edges.push((String::new(), false));
        }
        let base = |k: &str| format!("{at}/{}", escape(k));
        for (keys, into) in [(SAME_ONE, false), (CHILD_ONE, true)] {
            for k in keys.iter().copied() {
                if m.get(k).is_some_and(Value::is_object) {
                    edges.push((base(k), into));
                }
            }
        }
        for (keys, into) in [(SAME_LIST, false), (CHILD_LIST, true)] {
            for k in keys.iter().copied() {
                if let Some(Value::Array(items)) = m.get(k) {
                    edges.extend((0..items.len()).map(|i| (format!("{}/{i}", base(k)), into)));
                }
            }
        }
        for (keys, into) in [(SAME_MAP, false), (CHILD_MAP, true)] {
            for k in keys.iter().copied() {
                if let Some(Value::Object(props)) = m.get(k) {
                    edges.extend(
                        props
                            .iter()
                            .filter(|(_, v)| v.is_object())
                            .map(|(name, _)| (format!("{}/{}", base(k), escape(name)), into)),
                    );
                }
            }
        }
        self.path.push((at.clone(), into_instance));
        let mut total: u64 = 1;
        for (next, into) in edges {
            let c = self.cost(next, into);
            match c {
                Ok(c) => total = total.saturating_add(c),
                Err(e) => {
                    self.path.pop();
                    return Err(e);
                }
            }
            if total > MAX_EXPANDED_NODES {
                self.path.pop();
                return Err(SchemaGuardError::TooExpensive);
            }
        }
        self.path.pop();
        self.memo.insert(at, total);
        Ok(total)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn defect_01_cyclic_refs_are_refused() {
        let s = json!({"$ref":"#/definitions/a","definitions":{"a":{"$ref":"#/definitions/b"},"b":{"$ref":"#/definitions/a"}}});
        assert!(matches!(check(&s), Err(SchemaGuardError::Cycle(_))));
        let s = json!({"allOf": [{"$ref": "#"}]});
        assert!(matches!(check(&s), Err(SchemaGuardError::Cycle(_))));
        let s = json!({"$defs": {"x": {"not": {"$ref": "#/$defs/x"}}}, "$ref": "#/$defs/x"});
        assert!(matches!(check(&s), Err(SchemaGuardError::Cycle(_))));
        let s = json!({"$ref": "#"});
        assert!(matches!(check(&s), Err(SchemaGuardError::Cycle(_))));
        let s = json!({"$anchor": "me", "anyOf": [{"$ref": "#me"}]});
        assert!(matches!(check(&s), Err(SchemaGuardError::Cycle(_))));
    }

    #[test]
    fn recursion_through_the_payload_is_allowed() {
        let tree = json!({
            "type": "object",
            "properties": {"children": {"type": "array", "items": {"$ref": "#"}}}
        });
        assert_eq!(check(&tree), Ok(()));
        let linked = json!({
            "$defs": {"node": {"properties": {"next": {"$ref": "#/$defs/node"}}}},
            "$ref": "#/$defs/node"
        });
        assert_eq!(check(&linked), Ok(()));
    }

    #[test]
    fn exponential_fan_out_is_refused() {
        let mut defs = serde_json::Map::new();
        for i in 0..40 {
            let next = format!("#/$defs/d{}", i + 1);
            defs.insert(
                format!("d{i}"),
                json!({"allOf": [{"$ref": next}, {"$ref": next}]}),
            );
        }
        defs.insert("d40".into(), json!({"type": "object"}));
        let s = json!({"$defs": defs, "$ref": "#/$defs/d0"});
        assert_eq!(check(&s), Err(SchemaGuardError::TooExpensive));
    }

    #[test]
    fn references_must_stay_inside_the_document() {
        let s = json!({"$ref": "http://169.254.169.254/latest/meta-data"});
        assert!(matches!(check(&s), Err(SchemaGuardError::NonLocalRef(_))));
        let s = json!({"$ref": "#/definitions/missing"});
        assert!(matches!(check(&s), Err(SchemaGuardError::Unresolved(_))));
        let s = json!({"$defs": {"a": {"$id": "http://x/a"}}});
        assert!(matches!(check(&s), Err(SchemaGuardError::NestedId(_))));
        let s = json!({"$ref": "#%"});
        assert!(matches!(check(&s), Err(SchemaGuardError::Unresolved(_))));
    }

    #[test]
    fn ordinary_schemas_pass() {
        let s = json!({
            "$id": "https://example.com/invoice",
            "type": "object",
            "required": ["id"],
            "properties": {
                "id": {"type": "string"},
                "amount": {"$ref": "#/$defs/money"},
                "lines": {"type": "array", "items": {"$ref": "#/$defs/money"}},
                "a/b": {"type": "string"}
            },
            "$defs": {"money": {"type": "integer", "minimum": 0}}
        });
        assert_eq!(check(&s), Ok(()));
        assert_eq!(check(&json!(true)), Ok(()));
        assert_eq!(check(&json!({})), Ok(()));
    }

    #[test]
    fn huge_schemas_are_refused() {
        let big: serde_json::Map<String, Value> = (0..40_000)
            .map(|i| (format!("p{i:06}"), json!({"type": "string"})))
            .collect();
        let s = json!({"properties": big});
        assert_eq!(check(&s), Err(SchemaGuardError::TooLarge));
    }

    proptest::proptest! {
        /// Whatever the shape, the guard answers (no panic, no endless walk).
        #[test]
        fn guard_always_terminates(refs in proptest::collection::vec((0usize..6, 0usize..6, 0u8..4), 0..20)) {
            let mut defs = serde_json::Map::new();
            for i in 0..6 {
                defs.insert(format!("n{i}"), json!({}));
            }
            for (from, to, kw) in refs {
                let r = json!({"$ref": format!("#/$defs/n{to}")});
                let node = defs.get_mut(&format!("n{from}")).and_then(Value::as_object_mut);
                if let Some(node) = node {
                    match kw {
                        0 => { node.insert("allOf".into(), json!([r])); }
                        1 => { node.insert("items".into(), r); }
                        2 => { node.insert("not".into(), r); }
                        _ => { node.insert("properties".into(), json!({"x": r})); }
                    }
                }
            }
            let s = json!({"$defs": defs, "$ref": "#/$defs/n0"});
            let _ = check(&s);
        }
    }
}
