use super::*;
use serde_json::json;

fn input() -> Webhook {
    Webhook {
        method: "POST".into(),
        url: "https://example.com/hook".into(),
        payload: json!({"a": 1}),
        event_type: "user.created".into(),
        headers: BTreeMap::new(),
        cancel: false,
    }
}

fn pool() -> TransformPool {
    TransformPool::new(TransformLimits {
        workers: 1,
        ..TransformLimits::default()
    })
}

async fn err(p: &TransformPool, code: &str) -> String {
    match p.run(code, &input()).await {
        Err(TransformError::Script(s)) => s,
        other => panic!("expected a script error, got {other:?}"),
    }
}

#[tokio::test]
async fn rewrites_payload_url_and_headers() {
    let p = pool();
    let code = r#"function handler(w) {
        w.payload = {wrapped: w.payload, type: w.eventType};
        w.url = w.url + "?x=1"; w.headers["x-t"] = "1"; w.method = "PUT"; return w; }"#;
    let out = p.run(code, &input()).await.unwrap();
    assert_eq!(
        out.payload,
        json!({"wrapped": {"a": 1}, "type": "user.created"})
    );
    assert_eq!(out.url, "https://example.com/hook?x=1");
    assert_eq!(out.headers.get("x-t").map(String::as_str), Some("1"));
    assert_eq!(out.method, "PUT");
    assert!(!out.cancel);
}

#[tokio::test]
async fn cancel_is_reported() {
    let p = pool();
    let out = p
        .run(
            "function handler(w) { w.cancel = true; return w; }",
            &input(),
        )
        .await
        .unwrap();
    assert!(out.cancel);
}

#[tokio::test]
async fn throws_and_bad_results_are_errors() {
    let p = pool();
    assert!(err(&p, "function handler(w) { throw new Error('boom'); }")
        .await
        .contains("boom"));
    assert!(err(&p, "function handler(w) { throw 'plain'; }")
        .await
        .contains("plain"));
    assert!(err(&p, "function handler(w) { return 5; }")
        .await
        .contains("object"));
    assert!(err(&p, "function handler(w) { return [w]; }")
        .await
        .contains("object"));
    assert!(err(&p, "function handler(w) { }").await.contains("object"));
    assert!(err(&p, "var x = 1;").await.contains("handler"));
    assert!(!err(&p, "function handler(w) {").await.is_empty());
    assert!(err(&p, "function handler(w) { return {url: 'x'}; }")
        .await
        .contains("payload"));
    assert!(
        err(&p, "function handler(w) { w.method = 'DELETE'; return w; }")
            .await
            .contains("method")
    );
    // The pool still works after every kind of failure.
    p.run("function handler(w) { return w; }", &input())
        .await
        .unwrap();
}

#[tokio::test]
async fn runaway_script_is_interrupted_and_others_continue() {
    let p = TransformPool::new(TransformLimits {
        workers: 2,
        ..TransformLimits::default()
    });
    let i = input();
    let spin = p.run("function handler(w) { while (true) {} }", &i);
    let ok = p.run("function handler(w) { return w; }", &i);
    let (spin, ok) = tokio::join!(spin, ok);
    assert!(ok.is_ok(), "{ok:?}");
    match spin {
        Err(TransformError::Script(s)) => assert!(s.contains("interrupted"), "{s}"),
        other => panic!("{other:?}"),
    }
    // A loop that catches its own interruption is still stopped.
    let e = err(
        &p,
        "function handler(w) { for(;;) { try { while(true){} } catch (e) {} } }",
    )
    .await;
    assert!(e.contains("interrupted"), "{e}");
}

#[tokio::test]
async fn memory_bomb_is_stopped() {
    let p = pool();
    let e = err(
        &p,
        "function handler(w) { let a = []; for(;;) a.push(new Array(100000).fill(1.5)); }",
    )
    .await;
    assert!(e.contains("memory") || e.contains("interrupted"), "{e}");
    let e = err(
        &p,
        "function handler(w) { let s = 'x'; for(;;) s = s + s; }",
    )
    .await;
    assert!(
        e.contains("memory") || e.contains("interrupted") || e.contains("length"),
        "{e}"
    );
    let e = err(
        &p,
        "function f(n) { return f(n + 1) + 1; } function handler(w) { return f(0); }",
    )
    .await;
    assert!(!e.is_empty());
    p.run("function handler(w) { return w; }", &input())
        .await
        .unwrap();
}

#[tokio::test]
async fn nothing_survives_between_calls_and_no_host_objects() {
    let p = pool();
    p.run(
        "globalThis.leak = 'secret'; function handler(w) { return w; }",
        &input(),
    )
    .await
    .unwrap();
    let out = p
        .run(
            r#"function handler(w) {
                w.payload = {
                    leak: typeof leak, req: typeof require, proc: typeof process,
                    timer: typeof setTimeout, fetch: typeof fetch, std: typeof std, os: typeof os
                };
                return w; }"#,
            &input(),
        )
        .await
        .unwrap();
    for v in out.payload.as_object().unwrap().values() {
        assert_eq!(v, "undefined");
    }
}
