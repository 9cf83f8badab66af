//! Property-based fuzzing of the fan-out filters and the JSON Schema guard.
//!
//! - `model::subscribed` (event-type and channel filters) with arbitrary lists: never panics and
//!   follows its documented rules; `Message::wire_body` (inbound raw-body envelopes) and the
//!   small parsers next to it never panic.
//! - `schema_guard::check` on random JSON schemas whose `$ref`s point at random (existing,
//!   missing, anchor, percent-encoded, remote) places, and on long reference chains: it answers
//!   (no hang, no stack overflow) and an accepted schema has only local references.
//!
//! Run long: `HERALD_FUZZ_SECONDS=600 cargo test --release -p herald-core --test fuzz_filters
//! -- --nocapture`.

mod fuzz_support;

use herald_core::ids::{AppId, MessageId};
use herald_core::model::{self, InboundStatus, Message};
use herald_core::schema_guard::{self, SchemaGuardError};
use proptest::prelude::*;
use proptest::sample::select;
use serde_json::{json, Map, Value};

const PERSIST: &str = "proptest-regressions/fuzz_filters.txt";

fn name() -> impl Strategy<Value = String> {
    prop_oneof![
        select(vec![
            "a",
            "b",
            "user.created",
            "",
            " ",
            "herald-source.src_1",
            "A"
        ])
        .prop_map(str::to_string),
        ".{0,12}",
    ]
}

fn names() -> impl Strategy<Value = Option<Vec<String>>> {
    prop::option::of(prop::collection::vec(name(), 0..6))
}

#[test]
fn fuzz_subscribed_follows_its_rules() {
    fuzz_support::run(
        "model::subscribed (event types, channels)",
        PERSIST,
        2048,
        (names(), names(), name(), names()),
        |(types, want, event_type, channels)| {
            let got = model::subscribed(
                types.as_deref(),
                want.as_deref(),
                &event_type,
                channels.as_deref(),
            );
            let type_ok = match &types {
                None => true,
                Some(t) => t.is_empty() || t.contains(&event_type),
            };
            let channel_ok = match (&want, &channels) {
                (None, _) => true,
                (Some(w), _) if w.is_empty() => true,
                (Some(_), None) => false,
                (Some(w), Some(have)) => w.iter().any(|c| have.contains(c)),
            };
            prop_assert_eq!(got, type_ok && channel_ok);
            Ok(())
        },
    );
}

#[test]
fn fuzz_message_wire_body_and_small_parsers_never_panic() {
    let payload = prop_oneof![
        ".{0,40}",
        (
            ".{0,20}",
            prop::option::of(select(vec!["base64", "hex", ""]))
        )
            .prop_map(|(raw, enc)| {
                let mut env = json!({ "raw": raw, "contentType": "text/plain" });
                if let Some(e) = enc {
                    env["encoding"] = json!(e);
                }
                env.to_string()
            }),
        "[A-Za-z0-9+/=]{0,40}".prop_map(|r| json!({"raw": r, "encoding": "base64"}).to_string()),
    ];
    let headers = prop::option::of(prop::collection::btree_map(
        prop_oneof![
            Just("Herald-Raw-Body-Content-Type".to_string()),
            Just("herald-raw-body-content-type".to_string()),
            "[a-zA-Z-]{1,20}"
        ],
        ".{0,20}",
        0..4,
    ));
    fuzz_support::run(
        "model::Message::wire_body, is_sensitive_header, InboundStatus::parse",
        PERSIST,
        1024,
        (prop::option::of(payload), headers, ".{0,30}"),
        |(payload, headers, text)| {
            let m = Message {
                id: MessageId::generate(),
                app_id: AppId::generate(),
                event_id: None,
                event_type: "t".into(),
                payload: payload.clone(),
                channels: None,
                created_at: 0,
                retention_ms: None,
                ordering_key: None,
                headers: headers.map(|h| h.into_iter().collect()),
            };
            let body = m.wire_body();
            prop_assert_eq!(body.is_some(), payload.is_some());
            let _ = model::is_sensitive_header(&text);
            if let Some(s) = InboundStatus::parse(&text) {
                prop_assert_eq!(s.as_str(), text.as_str());
            }
            let _ = model::source_channel(&text);
            Ok(())
        },
    );
}

// ---------------------------------------------------------------------------------------------
// schema_guard

const DEF_NAMES: [&str; 6] = ["a", "b", "c", "d", "e", "f"];

fn reference() -> impl Strategy<Value = String> {
    prop_oneof![
        6 => select(DEF_NAMES.to_vec()).prop_map(|d| format!("#/$defs/{d}")),
        1 => Just("#".to_string()),
        1 => select(DEF_NAMES.to_vec()).prop_map(|d| format!("#{d}")),
        1 => select(DEF_NAMES.to_vec()).prop_map(|d| format!("#/$defs/{d}/properties/p")),
        1 => select(DEF_NAMES.to_vec()).prop_map(|d| format!("#/$defs/{d}/allOf/0")),
        1 => select(vec![
            "#/",
            "#/$defs",
            "#%2F%24defs%2Fa",
            "#%",
            "#%zz",
            "#%C3",
            "#/$defs/a~1b",
            "#/$defs/~2",
            "http://evil.example/s.json",
            "s.json#/a",
            "",
            "#/items/0",
            "#/properties/x/items",
        ])
        .prop_map(str::to_string),
    ]
}

/// A subschema: keywords that stay on the same instance value and keywords that move into it.
fn subschema() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        reference().prop_map(|r| json!({ "$ref": r })),
        Just(json!({ "type": "object" })),
        Just(json!(true)),
        Just(json!({})),
        select(DEF_NAMES.to_vec()).prop_map(|a| json!({ "$anchor": a })),
        reference().prop_map(|r| json!({ "$dynamicRef": r })),
        Just(json!({ "$recursiveRef": "#" })),
        Just(json!({ "$id": "nested" })),
        Just(json!(null)),
        Just(json!([1, 2])),
    ];
    leaf.prop_recursive(5, 48, 4, |inner| {
        let keyword = select(vec![
            "not",
            "if",
            "then",
            "else",
            "allOf",
            "anyOf",
            "oneOf",
            "dependentSchemas",
            "dependencies",
            "additionalProperties",
            "items",
            "contains",
            "prefixItems",
            "properties",
            "patternProperties",
            "unevaluatedItems",
            "$ref",
            "x-other",
        ]);
        prop::collection::vec(
            (
                keyword,
                prop_oneof![
                    inner.clone(),
                    prop::collection::vec(inner.clone(), 0..3).prop_map(Value::Array),
                    prop::collection::btree_map("[a-z~/]{1,3}", inner, 0..3)
                        .prop_map(|m| Value::Object(m.into_iter().collect())),
                    reference().prop_map(Value::String),
                ],
            ),
            0..4,
        )
        .prop_map(|kv| Value::Object(kv.into_iter().map(|(k, v)| (k.to_string(), v)).collect()))
    })
}

fn schema() -> impl Strategy<Value = Value> {
    (
        subschema(),
        prop::collection::vec(subschema(), DEF_NAMES.len()),
    )
        .prop_map(|(root, defs)| {
            let mut root = match root {
                Value::Object(m) => m,
                other => {
                    let mut m = Map::new();
                    m.insert("allOf".into(), json!([other]));
                    m
                }
            };
            let defs: Map<String, Value> =
                DEF_NAMES.iter().map(|d| d.to_string()).zip(defs).collect();
            root.insert("$defs".into(), Value::Object(defs));
            Value::Object(root)
        })
}

/// Every `$ref`/`$dynamicRef` string in the document (`$recursiveRef` counts as `#`).
fn refs(v: &Value, out: &mut Vec<String>) {
    match v {
        Value::Object(m) => {
            for (k, child) in m {
                match (k.as_str(), child) {
                    ("$ref" | "$dynamicRef", Value::String(r)) => out.push(r.clone()),
                    ("$recursiveRef", _) => out.push("#".into()),
                    _ => {}
                }
                refs(child, out);
            }
        }
        Value::Array(items) => items.iter().for_each(|c| refs(c, out)),
        _ => {}
    }
}

#[test]
fn fuzz_schema_guard_answers_on_random_reference_graphs() {
    fuzz_support::run(
        "schema_guard::check (random $ref graphs)",
        PERSIST,
        512,
        schema(),
        |s| {
            let verdict = schema_guard::check(&s);
            // Only what the walk reaches is inspected (an unreachable `$defs` entry is never
            // evaluated), so the check is on the root's own references.
            for key in ["$ref", "$dynamicRef"] {
                if let Some(Value::String(r)) = s.get(key) {
                    if !r.starts_with('#') {
                        prop_assert!(
                            verdict.is_err(),
                            "accepted a non-local root reference {}",
                            r
                        );
                    }
                }
            }
            let mut found = Vec::new();
            refs(&s, &mut found);
            if found.is_empty() {
                // Without references nothing can loop or fan out; only `$id` below the root is
                // refused.
                prop_assert!(
                    !matches!(
                        verdict,
                        Err(SchemaGuardError::Cycle(_) | SchemaGuardError::TooExpensive)
                    ),
                    "{:?}",
                    verdict
                );
            }
            Ok(())
        },
    );
}

/// A chain `d0 → d1 → … → d{n-1}` of references that stay on the same value (`$ref`, or
/// `allOf`/`not` wrappers), optionally closed into a loop, optionally moving into the instance.
fn chain(n: usize, wrap: u8, close: bool, into: bool) -> Value {
    let mut defs = Map::new();
    for i in 0..n {
        let next = if i + 1 < n {
            format!("#/$defs/d{}", i + 1)
        } else if close {
            "#/$defs/d0".to_string()
        } else {
            String::new()
        };
        let node = if next.is_empty() {
            json!({ "type": "string" })
        } else if into && i % 7 == 3 {
            json!({ "properties": { "p": { "$ref": next } } })
        } else {
            match wrap % 3 {
                0 => json!({ "$ref": next }),
                1 => json!({ "allOf": [{ "$ref": next }] }),
                _ => json!({ "not": { "$ref": next } }),
            }
        };
        defs.insert(format!("d{i}"), node);
    }
    json!({ "$ref": "#/$defs/d0", "$defs": defs })
}

#[test]
fn fuzz_schema_guard_answers_on_long_reference_chains() {
    // Chains up to the size limit (512 KiB) are the deepest graphs a user can send.
    fuzz_support::run(
        "schema_guard::check (long $ref chains)",
        PERSIST,
        16,
        (1usize..20_000, any::<u8>(), any::<bool>(), any::<bool>()),
        |(n, wrap, close, into)| {
            let s = chain(n, wrap, close, into);
            let verdict = schema_guard::check(&s);
            if close && !into {
                prop_assert!(
                    matches!(
                        verdict,
                        Err(SchemaGuardError::Cycle(_)
                            | SchemaGuardError::TooLarge
                            | SchemaGuardError::TooDeep)
                    ),
                    "n={} {:?}",
                    n,
                    verdict
                );
            }
            Ok(())
        },
    );
}

/// Found by `fuzz_schema_guard_answers_on_long_reference_chains`: a chain of a few thousand
/// `$ref`s (well within the 512 KiB size limit) overflowed the stack of the thread running
/// `check` — an abort of the whole process, from one `POST …/event-type` body. The walk now
/// stops at `MAX_DEPTH` levels with `TooDeep`. Checked on a thread with tokio's default worker
/// stack (2 MiB), where the API runs it.
#[test]
fn fuzz_found_schema_guard_stack_overflow_on_long_ref_chain() {
    let verdicts = std::thread::Builder::new()
        .stack_size(2 * 1024 * 1024)
        .spawn(|| {
            [(10_000, 0), (10_000, 1), (10_000, 2), (3_000, 0)]
                .into_iter()
                .map(|(n, wrap)| {
                    let s = chain(n, wrap, false, false);
                    assert!(
                        serde_json::to_vec(&s).unwrap().len() <= schema_guard::MAX_SCHEMA_BYTES
                    );
                    schema_guard::check(&s)
                })
                .collect::<Vec<_>>()
        })
        .unwrap()
        .join()
        .expect("the guard answers on a 2 MiB stack");
    for v in verdicts {
        assert_eq!(v, Err(SchemaGuardError::TooDeep));
    }
    // A chain within the bound is still accepted.
    assert_eq!(schema_guard::check(&chain(100, 0, false, false)), Ok(()));
}
