//! Content filters of endpoints: compiling a filter document into a [`Filter`] and matching it
//! against a message payload.
//!
//! A filter is a JSON object of dot paths (`data.customer.tier`, `items.0.sku`) mapped to a
//! bare value (equality) or an operator object (`$eq`, `$ne`, `$gt`, `$gte`, `$lt`, `$lte`,
//! `$in`, `$nin`, `$exists`, `$startsWith`, `$endsWith`, `$contains`, `$not`), combined with
//! `$and`, `$or` and `$not`. Compilation rejects what the API must answer 422 for (unknown
//! operators, bad operands, nesting deeper than [`MAX_DEPTH`], documents over [`MAX_BYTES`]),
//! naming the offending path. This module owns those rules and the match semantics; it must not
//! parse payloads more than once per message (callers hand it a parsed [`Value`]) nor do I/O.

use std::collections::HashMap;
use std::sync::Arc;

use parking_lot::Mutex;

use serde_json::{Map, Value};

/// Deepest nesting of objects and arrays a filter document may have.
pub const MAX_DEPTH: usize = 16;
/// Largest filter document (compact JSON) in bytes.
pub const MAX_BYTES: usize = 16 * 1024;

/// Why a filter document was refused; `path` names where (`$and.1.data.amount.$gte`).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{path}: {msg}")]
pub struct FilterError {
    pub path: String,
    pub msg: String,
}

fn err<T>(path: &str, msg: impl Into<String>) -> Result<T, FilterError> {
    Err(FilterError {
        path: if path.is_empty() {
            "filter".into()
        } else {
            path.into()
        },
        msg: msg.into(),
    })
}

fn join(base: &str, seg: &str) -> String {
    if base.is_empty() {
        seg.to_string()
    } else {
        format!("{base}.{seg}")
    }
}

/// A compiled filter: what an endpoint's `filter` document means, ready to match payloads.
#[derive(Debug, Clone, PartialEq)]
pub enum Filter {
    /// Every part must match (a document's keys, or `$and`). Empty matches everything.
    All(Vec<Filter>),
    /// At least one part must match (`$or`).
    Any(Vec<Filter>),
    /// The part must not match (top-level `$not`).
    Not(Box<Filter>),
    /// A condition on the value at one path.
    Field { path: Vec<String>, cond: Vec<Op> },
}

/// One operator on a field's value; a field's operators must all hold.
#[derive(Debug, Clone, PartialEq)]
pub enum Op {
    Eq(Value),
    Ne(Value),
    Gt(Value),
    Gte(Value),
    Lt(Value),
    Lte(Value),
    In(Vec<Value>),
    Nin(Vec<Value>),
    Exists(bool),
    StartsWith(String),
    EndsWith(String),
    Contains(Value),
    /// Field-level `$not`: the value is present and the operators do not all hold.
    Not(Vec<Op>),
}

impl Filter {
    /// Compiles a filter document, checking size and depth first.
    pub fn compile(doc: &Value) -> Result<Self, FilterError> {
        let size = serde_json::to_vec(doc)
            .map(|v| v.len())
            .unwrap_or(usize::MAX);
        if size > MAX_BYTES {
            return err("", format!("is {size} bytes, at most {MAX_BYTES} allowed"));
        }
        check_depth(doc, "", 1)?;
        compile_doc(doc, "")
    }

    /// Whether `payload` matches.
    pub fn matches(&self, payload: &Value) -> bool {
        match self {
            Self::All(parts) => parts.iter().all(|p| p.matches(payload)),
            Self::Any(parts) => parts.iter().any(|p| p.matches(payload)),
            Self::Not(inner) => !inner.matches(payload),
            Self::Field { path, cond } => {
                let v = lookup(payload, path);
                cond.iter().all(|op| op.holds(v))
            }
        }
    }
}

fn check_depth(v: &Value, path: &str, depth: usize) -> Result<(), FilterError> {
    let children: Box<dyn Iterator<Item = (String, &Value)>> = match v {
        Value::Object(m) => Box::new(m.iter().map(|(k, v)| (k.clone(), v))),
        Value::Array(a) => Box::new(a.iter().enumerate().map(|(i, v)| (i.to_string(), v))),
        _ => return Ok(()),
    };
    if depth > MAX_DEPTH {
        return err(path, format!("nesting deeper than {MAX_DEPTH}"));
    }
    for (k, child) in children {
        check_depth(child, &join(path, &k), depth + 1)?;
    }
    Ok(())
}

fn compile_doc(doc: &Value, path: &str) -> Result<Filter, FilterError> {
    let Value::Object(m) = doc else {
        return err(path, "must be a JSON object");
    };
    let mut parts = Vec::with_capacity(m.len());
    for (k, v) in m {
        let at = join(path, k);
        parts.push(match k.as_str() {
            "$and" => Filter::All(compile_list(v, &at)?),
            "$or" => Filter::Any(compile_list(v, &at)?),
            "$not" => Filter::Not(Box::new(compile_doc(v, &at)?)),
            _ if k.starts_with('$') => return err(&at, format!("unknown operator `{k}`")),
            _ if k.is_empty() || k.split('.').any(str::is_empty) => {
                return err(&at, "field paths must be non-empty dot-separated names")
            }
            _ => Filter::Field {
                path: k.split('.').map(str::to_string).collect(),
                cond: compile_cond(v, &at)?,
            },
        });
    }
    Ok(if parts.len() == 1 {
        parts.pop().expect("one part")
    } else {
        Filter::All(parts)
    })
}

fn compile_list(v: &Value, path: &str) -> Result<Vec<Filter>, FilterError> {
    match v {
        Value::Array(a) if !a.is_empty() => a
            .iter()
            .enumerate()
            .map(|(i, d)| compile_doc(d, &join(path, &i.to_string())))
            .collect(),
        _ => err(path, "must be a non-empty array of filter objects"),
    }
}

/// A field's condition: an object whose keys are all operators, or a bare value (`$eq`).
fn compile_cond(v: &Value, path: &str) -> Result<Vec<Op>, FilterError> {
    match v {
        Value::Object(m) if m.keys().any(|k| k.starts_with('$')) => m
            .iter()
            .map(|(k, operand)| compile_op(k, operand, &join(path, k)))
            .collect(),
        other => Ok(vec![Op::Eq(other.clone())]),
    }
}

fn compile_op(name: &str, operand: &Value, path: &str) -> Result<Op, FilterError> {
    let scalar = |o: &Value| match o {
        Value::Number(_) | Value::String(_) => Ok(o.clone()),
        _ => err(path, "must be a number or a string"),
    };
    let list = |o: &Value| match o {
        Value::Array(a) => Ok(a.clone()),
        _ => err(path, "must be an array"),
    };
    let text = |o: &Value| match o {
        Value::String(s) => Ok(s.clone()),
        _ => err(path, "must be a string"),
    };
    Ok(match name {
        "$eq" => Op::Eq(operand.clone()),
        "$ne" => Op::Ne(operand.clone()),
        "$gt" => Op::Gt(scalar(operand)?),
        "$gte" => Op::Gte(scalar(operand)?),
        "$lt" => Op::Lt(scalar(operand)?),
        "$lte" => Op::Lte(scalar(operand)?),
        "$in" => Op::In(list(operand)?),
        "$nin" => Op::Nin(list(operand)?),
        "$exists" => match operand {
            Value::Bool(b) => Op::Exists(*b),
            _ => return err(path, "must be true or false"),
        },
        "$startsWith" => Op::StartsWith(text(operand)?),
        "$endsWith" => Op::EndsWith(text(operand)?),
        "$contains" => Op::Contains(operand.clone()),
        "$not" => match operand {
            Value::Object(m) if !m.is_empty() && m.keys().all(|k| k.starts_with('$')) => {
                Op::Not(compile_cond(operand, path)?)
            }
            _ => return err(path, "must be an object of operators"),
        },
        _ if name.starts_with('$') => return err(path, format!("unknown operator `{name}`")),
        _ => {
            return err(
                path,
                "operator objects must not mix operators and field names",
            )
        }
    })
}

/// The value at `path`: object keys by name, array elements by decimal index.
fn lookup<'a>(mut v: &'a Value, path: &[String]) -> Option<&'a Value> {
    for seg in path {
        v = match v {
            Value::Object(m) => m.get(seg)?,
            Value::Array(a) => a.get(seg.parse::<usize>().ok()?)?,
            _ => return None,
        };
    }
    Some(v)
}

/// JSON equality, with numbers compared by value (`1 == 1.0`).
fn equal(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => match (x.as_i64(), y.as_i64()) {
            (Some(i), Some(j)) => i == j,
            _ => x.as_f64() == y.as_f64(),
        },
        (Value::Array(x), Value::Array(y)) => {
            x.len() == y.len() && x.iter().zip(y).all(|(a, b)| equal(a, b))
        }
        (Value::Object(x), Value::Object(y)) => objects_equal(x, y),
        _ => a == b,
    }
}

fn objects_equal(x: &Map<String, Value>, y: &Map<String, Value>) -> bool {
    x.len() == y.len() && x.iter().all(|(k, v)| y.get(k).is_some_and(|w| equal(v, w)))
}

/// A string compared with a number never matches, whatever the operator (also `$ne`/`$nin`).
fn mismatched(a: &Value, b: &Value) -> bool {
    matches!(
        (a, b),
        (Value::String(_), Value::Number(_)) | (Value::Number(_), Value::String(_))
    )
}

fn order(a: &Value, b: &Value) -> Option<std::cmp::Ordering> {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => x.as_f64()?.partial_cmp(&y.as_f64()?),
        (Value::String(x), Value::String(y)) => Some(x.cmp(y)),
        _ => None,
    }
}

impl Op {
    /// Whether the operator holds for the value at its path (`None`: the path is missing, which
    /// only `$exists: false` accepts).
    fn holds(&self, v: Option<&Value>) -> bool {
        use std::cmp::Ordering::*;
        let Some(v) = v else {
            return matches!(self, Op::Exists(false));
        };
        let ne = |o: &Value| !mismatched(v, o) && !equal(v, o);
        match self {
            Op::Eq(o) => equal(v, o),
            Op::Ne(o) => ne(o),
            Op::Gt(o) => order(v, o) == Some(Greater),
            Op::Gte(o) => matches!(order(v, o), Some(Greater | Equal)),
            Op::Lt(o) => order(v, o) == Some(Less),
            Op::Lte(o) => matches!(order(v, o), Some(Less | Equal)),
            Op::In(list) => list.iter().any(|o| equal(v, o)),
            Op::Nin(list) => list.iter().all(ne),
            Op::Exists(want) => *want,
            Op::StartsWith(p) => v.as_str().is_some_and(|s| s.starts_with(p.as_str())),
            Op::EndsWith(p) => v.as_str().is_some_and(|s| s.ends_with(p.as_str())),
            Op::Contains(o) => match (v, o) {
                (Value::String(s), Value::String(p)) => s.contains(p.as_str()),
                (Value::Array(a), _) => a.iter().any(|e| equal(e, o)),
                _ => false,
            },
            Op::Not(ops) => !ops.iter().all(|op| op.holds(Some(v))),
        }
    }
}

/// Compiled filters by endpoint, so a publish compiles an endpoint's filter only when its
/// document changed since the last publish (the document text is the cache key's check).
#[derive(Default)]
pub struct FilterCache {
    by_endpoint: Mutex<HashMap<String, Cached>>,
}

/// A cached entry: the document text it was compiled from, and the result.
type Cached = (String, Option<Arc<Filter>>);

/// Entries kept before the cache starts over (endpoints deleted since are dropped that way).
const CACHE_LIMIT: usize = 100_000;

impl FilterCache {
    /// The compiled filter of endpoint `id` whose stored document is `text`. A document that no
    /// longer compiles (it was validated on the way in) filters nothing out, so that a stored
    /// record never silently stops deliveries; `None` means "no filter".
    pub fn get(&self, id: &str, text: &str) -> Option<Arc<Filter>> {
        let mut map = self.by_endpoint.lock();
        if let Some((t, f)) = map.get(id) {
            if t == text {
                return f.clone();
            }
        }
        let compiled = serde_json::from_str::<Value>(text)
            .ok()
            .filter(|v| !v.is_null())
            .and_then(|v| Filter::compile(&v).ok())
            .map(Arc::new);
        if map.len() >= CACHE_LIMIT {
            map.clear();
        }
        map.insert(id.to_string(), (text.to_string(), compiled.clone()));
        compiled
    }
}

#[cfg(test)]
#[path = "filter_tests.rs"]
mod tests;
