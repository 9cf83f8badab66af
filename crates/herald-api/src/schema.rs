//! JSON Schema validation of published payloads against their event type's schema
//! (outbound-api.md: a payload that does not validate answers 422 with the validator's
//! messages).
//!
//! Compiled validators are cached per event type for a few seconds and dropped when this node
//! changes the event type; a source's quarantine schema is compiled once per version of the
//! source ([`SourceSchemaCache`]). This module must not know about requests or handlers: it is
//! given the store to read from. `jsonschema` is built without its remote-reference features, so a
//! `$ref` to a URL is never fetched (that would be an SSRF hole).

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use jsonschema::Validator;
use parking_lot::Mutex;

use herald_core::ids::SourceId;
use herald_core::model::Source;
use herald_core::Millis;
use herald_store::Store;

use crate::error::{ApiError, ApiResult, FieldError};

/// How long another node's event-type change may take to be seen here.
const TTL: Duration = Duration::from_secs(5);
/// At most this many messages are reported in one 422.
const MAX_ERRORS: usize = 20;

/// When an entry was loaded, and the validator (`None`: the event type has no schema).
type Entry = (Instant, Option<Arc<Validator>>);

#[derive(Default)]
pub struct SchemaCache {
    map: Mutex<HashMap<String, Entry>>,
}

impl SchemaCache {
    pub fn invalidate(&self, name: &str) {
        self.map.lock().remove(name);
    }
}

/// The schema of the newest version: numeric version keys compare as numbers.
fn newest(schemas: &serde_json::Value) -> Option<&serde_json::Value> {
    let obj = schemas.as_object()?;
    obj.iter()
        .max_by(
            |(a, _), (b, _)| match (a.parse::<f64>(), b.parse::<f64>()) {
                (Ok(x), Ok(y)) => x.total_cmp(&y),
                _ => a.cmp(b),
            },
        )
        .map(|(_, v)| v)
}

/// Compiles a schema, answering 422 when it is not a valid JSON Schema or when any version
/// breaks the limits of [`herald_core::schema_guard`] (a `$ref` loop would hang every publish).
pub fn compile(schemas: &serde_json::Value) -> ApiResult<Option<Validator>> {
    if let Some(versions) = schemas.as_object() {
        for (version, s) in versions {
            herald_core::schema_guard::check(s)
                .map_err(|e| ApiError::field("schemas", format!("version {version}: {e}")))?;
        }
    }
    match newest(schemas) {
        None => Ok(None),
        Some(s) => compile_one(s)
            .map(Some)
            .map_err(|e| ApiError::field("schemas", format!("not a valid JSON Schema: {e}"))),
    }
}

/// Compiles one schema that passed [`herald_core::schema_guard::check`]; the only place a
/// user's schema becomes a validator.
pub fn compile_one(schema: &serde_json::Value) -> Result<Validator, String> {
    herald_core::schema_guard::check(schema).map_err(|e| e.to_string())?;
    #[allow(clippy::disallowed_methods)]
    jsonschema::validator_for(schema).map_err(|e| e.to_string())
}

impl SchemaCache {
    async fn validator(
        &self,
        store: &dyn Store,
        event_type: &str,
    ) -> ApiResult<Option<Arc<Validator>>> {
        let cache = self;
        let stale = match cache.map.lock().get(event_type) {
            Some((at, v)) if at.elapsed() < TTL => return Ok(v.clone()),
            Some((_, v)) => v.clone(),
            None => None,
        };
        let et = match store.get_event_type(event_type).await {
            Ok(et) => et,
            // During a PostgreSQL outage a publish goes to the spool (overview.md "Database
            // outage"); an event type this node has not read yet cannot be checked then, like the
            // other checks that need the database. Refusing with 503 would drop the spool's promise
            // for every new event type (found by herald-torture's spool-full run). The miss is
            // cached for `TTL`, so the publishes behind it do not each wait for a database
            // connection that is not coming.
            // The schema last read, if any, still applies.
            Err(herald_store::StoreError::Unavailable(why)) => {
                if stale.is_none() {
                    tracing::warn!(event_type, error = %why, "database unreachable: payload schema not checked");
                }
                cache
                    .map
                    .lock()
                    .insert(event_type.to_string(), (Instant::now(), stale.clone()));
                return Ok(stale);
            }
            Err(e) => return Err(e.into()),
        };
        let v = match et.and_then(|e| e.schemas) {
            // A stored schema that no longer compiles must not block publishing.
            Some(s) => compile(&s).ok().flatten().map(Arc::new),
            None => None,
        };
        cache
            .map
            .lock()
            .insert(event_type.to_string(), (Instant::now(), v.clone()));
        Ok(v)
    }

    /// Validates `payload` (JSON text) against the event type's newest schema, if it has one.
    pub async fn check_payload(
        &self,
        store: &dyn Store,
        event_type: &str,
        payload: &str,
    ) -> ApiResult<()> {
        let Some(v) = self.validator(store, event_type).await? else {
            return Ok(());
        };
        let instance: serde_json::Value =
            serde_json::from_str(payload).map_err(|e| ApiError::field("payload", e.to_string()))?;
        let errors: Vec<FieldError> = v
            .iter_errors(&instance)
            .take(MAX_ERRORS)
            .map(|e| FieldError {
                loc: vec!["body".into(), "payload".into(), e.instance_path.to_string()],
                msg: e.to_string(),
                kind: "schema_error".into(),
            })
            .collect();
        if errors.is_empty() {
            Ok(())
        } else {
            Err(ApiError::Validation(errors))
        }
    }
}

/// A source's compiled quarantine schema, or why it does not compile.
type Compiled = Result<Arc<Validator>, String>;

/// Sources' quarantine schemas, compiled once per version of the source: an entry is used only
/// while the source's `updated_at` and schema are the ones it was compiled from, so any change
/// of the source (on any node) recompiles it. The schema is compared too because two updates
/// within one millisecond share an `updated_at`.
#[derive(Default)]
pub struct SourceSchemaCache {
    map: Mutex<HashMap<SourceId, SourceEntry>>,
}

struct SourceEntry {
    updated_at: Millis,
    schema: serde_json::Value,
    compiled: Compiled,
}

/// Entries kept before the cache starts over (deleted sources leave theirs behind).
const MAX_SOURCE_SCHEMAS: usize = 10_000;

impl SourceSchemaCache {
    /// The validator of `schema`, the quarantine schema of `source` as it is now.
    pub fn get(&self, source: &Source, schema: &serde_json::Value) -> Compiled {
        if let Some(e) = self.map.lock().get(&source.id) {
            if e.updated_at == source.updated_at && e.schema == *schema {
                return e.compiled.clone();
            }
        }
        // Compiled outside the lock: a large schema must not stall other sources' requests.
        let compiled = compile_one(schema).map(Arc::new);
        let mut map = self.map.lock();
        if map.len() >= MAX_SOURCE_SCHEMAS {
            map.clear();
        }
        map.insert(
            source.id.clone(),
            SourceEntry {
                updated_at: source.updated_at,
                schema: schema.clone(),
                compiled: compiled.clone(),
            },
        );
        compiled
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A panic while a request held the cache lock used to poison it, and every later
    /// `lock().expect()` panicked too: one bad request took every publish down with it.
    #[test]
    fn defect_11_a_panic_while_the_schema_cache_is_locked_does_not_poison_it() {
        let cache = Arc::new(SchemaCache::default());
        cache
            .map
            .lock()
            .insert("a.b".into(), (Instant::now(), None));
        let held = Arc::clone(&cache);
        let crashed = std::thread::spawn(move || {
            let _guard = held.map.lock();
            panic!("a handler bug while the lock is held");
        })
        .join();
        assert!(crashed.is_err());
        cache.invalidate("a.b");
        assert!(cache.map.lock().is_empty());
    }

    #[test]
    fn compile_refuses_a_cyclic_version_even_when_it_is_not_the_newest() {
        let cyclic = serde_json::json!({"1": {"$ref": "#"}, "2": {"type": "object"}});
        assert!(compile(&cyclic).is_err());
        let fine = serde_json::json!({"1": {"type": "object"}});
        assert!(matches!(compile(&fine), Ok(Some(_))));
    }

    fn source(updated_at: Millis) -> Source {
        Source {
            id: SourceId("src_test".into()),
            app_id: herald_core::ids::AppId("app_test".into()),
            uid: None,
            name: "s".into(),
            verification: serde_json::from_value(serde_json::json!({"scheme": "none"})).unwrap(),
            secrets: vec![],
            options: Default::default(),
            created_at: 1,
            updated_at,
        }
    }

    /// The quarantine schema is compiled once per version of the source, not per request, and
    /// a changed source (new `updated_at` or new schema) gets a fresh validator.
    #[test]
    fn source_schemas_compile_once_per_source_version() {
        let cache = SourceSchemaCache::default();
        let strict = serde_json::json!({"type": "object", "required": ["a"]});
        let first = cache.get(&source(1), &strict).expect("compiles");
        let again = cache.get(&source(1), &strict).expect("compiles");
        assert!(
            Arc::ptr_eq(&first, &again),
            "recompiled an unchanged source"
        );
        let loose = serde_json::json!({"type": "object"});
        let updated = cache.get(&source(2), &loose).expect("compiles");
        assert!(updated.is_valid(&serde_json::json!({})));
        assert!(!first.is_valid(&serde_json::json!({})));
        let same_ms = cache.get(&source(2), &strict).expect("compiles");
        assert!(!same_ms.is_valid(&serde_json::json!({})));
        assert!(cache
            .get(&source(3), &serde_json::json!({"$ref": "#"}))
            .is_err());
    }
}
