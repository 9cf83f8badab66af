use super::*;
use serde_json::json;

fn m(filter: Value, payload: Value) -> bool {
    Filter::compile(&filter).unwrap().matches(&payload)
}

fn refused(filter: Value) -> FilterError {
    Filter::compile(&filter).unwrap_err()
}

#[test]
fn the_contract_example_matches_and_rejects() {
    let f = json!({"data.amount": {"$gte": 100}, "data.currency": {"$in": ["EUR", "USD"]}});
    assert!(m(
        f.clone(),
        json!({"data": {"amount": 100, "currency": "EUR"}})
    ));
    assert!(m(
        f.clone(),
        json!({"data": {"amount": 250.5, "currency": "USD"}})
    ));
    assert!(!m(
        f.clone(),
        json!({"data": {"amount": 99, "currency": "EUR"}})
    ));
    assert!(!m(
        f.clone(),
        json!({"data": {"amount": 100, "currency": "GBP"}})
    ));
    assert!(!m(f, json!({"data": {"currency": "EUR"}})));
}

#[test]
fn paths_index_arrays_and_bare_values_mean_eq() {
    let p = json!({"items": [{"sku": "A-1"}, {"sku": "B-2"}], "n": 1});
    assert!(m(json!({"items.1.sku": "B-2"}), p.clone()));
    assert!(!m(json!({"items.2.sku": "B-2"}), p.clone()));
    assert!(!m(json!({"items.x.sku": "B-2"}), p.clone()));
    assert!(m(json!({"n": 1.0}), p.clone()));
    assert!(m(json!({"items.0": {"sku": "A-1"}}), p.clone()));
    assert!(m(json!({}), p));
}

#[test]
fn each_operator() {
    let p = json!({"s": "invoice.paid", "n": 5, "a": ["x", 2], "b": true, "z": null});
    let yes = [
        json!({"s": {"$eq": "invoice.paid"}}),
        json!({"s": {"$ne": "invoice.void"}}),
        json!({"n": {"$gt": 4, "$lt": 6}}),
        json!({"n": {"$gte": 5, "$lte": 5}}),
        json!({"s": {"$gt": "a"}}),
        json!({"n": {"$in": [1, 5]}}),
        json!({"n": {"$nin": [1, 2]}}),
        json!({"n": {"$exists": true}}),
        json!({"missing": {"$exists": false}}),
        json!({"z": {"$exists": true}}),
        json!({"z": null}),
        json!({"s": {"$startsWith": "invoice."}}),
        json!({"s": {"$endsWith": ".paid"}}),
        json!({"s": {"$contains": "ice.p"}}),
        json!({"a": {"$contains": 2}}),
        json!({"b": true}),
        json!({"n": {"$not": {"$gt": 10}}}),
        json!({"$or": [{"n": 1}, {"n": 5}]}),
        json!({"$and": [{"n": 5}, {"b": true}]}),
        json!({"$not": {"n": 6}}),
        json!({"$not": {"missing": 1}}),
    ];
    for f in yes {
        assert!(m(f.clone(), p.clone()), "{f} should match");
    }
    let no = [
        json!({"s": {"$ne": "invoice.paid"}}),
        json!({"n": {"$gt": 5}}),
        json!({"n": {"$nin": [5]}}),
        json!({"n": {"$exists": false}}),
        json!({"a": {"$contains": "2"}}),
        json!({"n": {"$startsWith": "5"}}),
        json!({"$or": [{"n": 1}, {"n": 2}]}),
        json!({"$and": [{"n": 5}, {"b": false}]}),
        json!({"$not": {"n": 5}}),
    ];
    for f in no {
        assert!(!m(f.clone(), p.clone()), "{f} should not match");
    }
}

#[test]
fn a_missing_path_matches_only_exists_false() {
    let p = json!({"a": 1});
    for f in [
        json!({"b": {"$ne": 1}}),
        json!({"b": {"$nin": [1]}}),
        json!({"b": {"$not": {"$eq": 1}}}),
        json!({"b": {"$lt": 10}}),
        json!({"b": null}),
        json!({"a.b": {"$exists": true}}),
    ] {
        assert!(!m(f.clone(), p.clone()), "{f}");
    }
    assert!(m(json!({"a.b": {"$exists": false}}), p));
}

#[test]
fn strings_and_numbers_never_compare() {
    let p = json!({"n": 5, "s": "5"});
    for f in [
        json!({"n": "5"}),
        json!({"s": 5}),
        json!({"n": {"$ne": "5"}}),
        json!({"s": {"$ne": 5}}),
        json!({"n": {"$gte": "1"}}),
        json!({"s": {"$lt": 9}}),
        json!({"n": {"$in": ["5"]}}),
        json!({"n": {"$nin": ["7"]}}),
    ] {
        assert!(!m(f.clone(), p.clone()), "{f}");
    }
}

#[test]
fn refusals_name_the_offending_path() {
    let e = refused(json!({"data.amount": {"$gte": 1, "$regex": "x"}}));
    assert_eq!(e.path, "data.amount.$regex");
    assert!(e.msg.contains("unknown operator"));
    assert_eq!(refused(json!({"$nor": []})).path, "$nor");
    assert_eq!(refused(json!({"$or": [{"a": 1}, 3]})).path, "$or.1");
    assert_eq!(refused(json!({"$and": []})).path, "$and");
    assert_eq!(refused(json!({"a": {"$in": 3}})).path, "a.$in");
    assert_eq!(refused(json!({"a": {"$exists": 1}})).path, "a.$exists");
    assert_eq!(refused(json!({"a": {"$gt": [1]}})).path, "a.$gt");
    assert_eq!(
        refused(json!({"a": {"$startsWith": 1}})).path,
        "a.$startsWith"
    );
    assert_eq!(refused(json!({"a": {"$eq": 1, "b": 2}})).path, "a.b");
    assert_eq!(refused(json!({"a..b": 1})).path, "a..b");
    assert_eq!(refused(json!([1])).path, "filter");
    assert_eq!(
        refused(json!({"$not": {"a": {"$bad": 1}}})).path,
        "$not.a.$bad"
    );
}

#[test]
fn depth_and_size_limits() {
    // 16 levels of objects are fine, 17 are not.
    let nest = |levels: usize| {
        let mut v = json!(1);
        for _ in 0..levels {
            v = json!({ "$not": v });
        }
        v
    };
    let mut ok = json!({"a": 1});
    for _ in 0..15 {
        ok = json!({ "$not": ok });
    }
    Filter::compile(&ok).unwrap();
    let e = refused(nest(17));
    assert!(e.msg.contains("nesting deeper than 16"), "{e}");
    assert!(e.path.starts_with("$not.$not"), "{e}");
    let big: Map<String, Value> = (0..2000).map(|i| (format!("k{i}"), json!(i))).collect();
    let e = refused(Value::Object(big));
    assert_eq!(e.path, "filter");
    assert!(e.msg.contains("at most 16384"), "{e}");
}

#[test]
fn the_cache_recompiles_when_the_document_changes() {
    let c = FilterCache::default();
    let a = c.get("ep_1", r#"{"n": 1}"#).unwrap();
    assert!(Arc::ptr_eq(&a, &c.get("ep_1", r#"{"n": 1}"#).unwrap()));
    let b = c.get("ep_1", r#"{"n": 2}"#).unwrap();
    assert!(b.matches(&json!({"n": 2})));
    assert!(c.get("ep_2", "null").is_none());
    assert!(c.get("ep_3", r#"{"$bad": 1}"#).is_none());
}
