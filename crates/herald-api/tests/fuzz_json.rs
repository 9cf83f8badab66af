//! Property-based fuzzing of the API's request parsing (`herald_api::extract`).
//!
//! - JSON bodies: arbitrary bytes, near-JSON mutations of real request bodies and deep nesting,
//!   parsed into the real DTO types with `parse_json` (and their field checks run on success):
//!   `Ok`, or an `ApiError` rendering 400 or 422 — never a panic, never another status, never
//!   a stack overflow.
//! - List parameters: arbitrary query strings through the `Q<ListParams>` extractor and
//!   `ListParams::to_query`: `Ok` with a limit in 1–250, or a 422.
//!
//! Run long: `HERALD_FUZZ_SECONDS=600 cargo test --release -p herald-api --test fuzz_json
//! -- --nocapture`.

#[path = "../../herald-core/tests/fuzz_support/mod.rs"]
mod fuzz_support;

use axum::extract::FromRequestParts;
use axum::http::StatusCode;
use axum::response::IntoResponse;
use herald_api::dto::{
    check_endpoint_extras, check_headers, check_list, ApplicationIn, ApplicationPatch, Checks,
    EndpointIn, EndpointPatch, EventTypeIn, MessageIn, RecoverIn, SecretRotateIn, TokenIn,
};
use herald_api::error::ApiError;
use herald_api::extract::{parse_json, ListParams, Q};
use herald_core::inbound::Verification;
use proptest::prelude::*;
use proptest::sample::select;
use proptest::test_runner::TestCaseResult;

const PERSIST: &str = "proptest-regressions/fuzz_json.txt";

/// Real bodies the mutations start from.
const SEEDS: &[&str] = &[
    r#"{"name":"app","uid":"u-1","throttleRate":10,"metadata":{"k":"v"}}"#,
    r#"{"url":"https://example.com/h","description":"d","eventTypes":["a","b"],"channels":["c"],"headers":{"X-A":"1"},"retrySchedule":[1,5],"permanentStatuses":[410],"ordering":"fifo","maxConcurrency":4,"signatureScheme":"standard","secret":"whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"}"#,
    r#"{"eventType":"user.created","payload":{"a":[1,2,{"b":null}]},"eventId":"e1","channels":["x"],"payloadRetentionHours":1,"application":{"name":"n"},"orderingKey":"k"}"#,
    r#"{"name":"tok","appId":"app_1"}"#,
    r#"{"name":"user.created","description":"d","schemas":{"1":{"type":"object"}}}"#,
    r#"{"since":"2024-01-01T00:00:00Z","until":"2024-01-02T00:00:00Z"}"#,
    r#"{"key":"whsec_abc","gracePeriodSeconds":60}"#,
    r#"{"scheme":"hmac","secrets":["s"],"header":"x-sig","toleranceSeconds":30}"#,
];

const TOKENS: &[&str] = &[
    "{",
    "}",
    "[",
    "]",
    "\"",
    ":",
    ",",
    "null",
    "true",
    "1e999",
    "-",
    "-0",
    "1.5e-400",
    "18446744073709551616",
    "-9223372036854775809",
    "\\u0000",
    "\\ud800",
    "\\uDFFF",
    "\\",
    "\u{0}",
    "\u{feff}",
    " ",
    "\"name\"",
    "\"payload\"",
    "\"eventType\"",
    "\"url\"",
    "\"__proto__\"",
];

#[derive(Debug, Clone)]
enum Edit {
    Delete(usize, usize),
    Insert(usize, Vec<u8>),
    Replace(usize, u8),
}

fn edit() -> impl Strategy<Value = Edit> {
    prop_oneof![
        (any::<usize>(), 1usize..8).prop_map(|(a, n)| Edit::Delete(a, n)),
        (
            any::<usize>(),
            prop_oneof![
                select(TOKENS).prop_map(|t| t.as_bytes().to_vec()),
                prop::collection::vec(any::<u8>(), 1..4),
            ]
        )
            .prop_map(|(a, b)| Edit::Insert(a, b)),
        (any::<usize>(), any::<u8>()).prop_map(|(a, b)| Edit::Replace(a, b)),
    ]
}

fn mutate(seed: &str, edits: &[Edit]) -> Vec<u8> {
    let mut b = seed.as_bytes().to_vec();
    for e in edits {
        let len = b.len();
        match e {
            Edit::Delete(at, n) if len > 0 => {
                let at = at % len;
                let end = (at + n).min(len);
                b.drain(at..end);
            }
            Edit::Insert(at, bytes) => {
                let at = at % (len + 1);
                b.splice(at..at, bytes.iter().copied());
            }
            Edit::Replace(at, byte) if len > 0 => {
                let at = at % len;
                b[at] = *byte;
            }
            _ => {}
        }
    }
    b
}

fn body() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        4 => (select(SEEDS), prop::collection::vec(edit(), 0..6)).prop_map(|(s, e)| mutate(s, &e)),
        2 => prop::collection::vec(any::<u8>(), 0..200),
        1 => prop::collection::vec(select(TOKENS), 0..40).prop_map(|t| t.concat().into_bytes()),
        1 => (select(SEEDS), 1usize..20_000, select(vec!["[", "{\"a\":", "[{\"a\":"]))
            .prop_map(|(s, n, open)| {
                // A deep value where the seed's first field value starts.
                let at = s.find(':').map_or(1, |i| i + 1);
                format!("{}{}{}", &s[..at], open.repeat(n), &s[at..]).into_bytes()
            }),
    ]
}

/// `parse_json` into `T` must answer 2xx-less: `Ok`, 400 or 422 (the 413 is the reader's).
fn parse<T: serde::de::DeserializeOwned>(bytes: &[u8]) -> Result<Option<T>, TestCaseError> {
    match parse_json::<T>(bytes) {
        Ok(v) => Ok(Some(v)),
        Err(e) => {
            let status = e.into_response().status();
            prop_assert!(
                matches!(
                    status,
                    StatusCode::BAD_REQUEST
                        | StatusCode::UNPROCESSABLE_ENTITY
                        | StatusCode::PAYLOAD_TOO_LARGE
                ),
                "status {}",
                status
            );
            Ok(None)
        }
    }
}

fn parse_all(bytes: &[u8]) -> TestCaseResult {
    if let Some(a) = parse::<ApplicationIn>(bytes)? {
        let mut c = Checks::default();
        a.check(&mut c);
        let _ = c.finish();
    }
    let _ = parse::<ApplicationPatch>(bytes)?;
    if let Some(e) = parse::<EndpointIn>(bytes)? {
        let mut c = Checks::default();
        check_list(&mut c, "eventTypes", e.event_types.as_ref());
        check_list(&mut c, "channels", e.channels.as_ref());
        check_endpoint_extras(
            &mut c,
            e.retry_schedule.as_ref(),
            e.permanent_statuses.as_ref(),
            e.max_concurrency,
        );
        if let Some(h) = &e.headers {
            check_headers(&mut c, "headers", h);
        }
        let _ = c.finish();
    }
    let _ = parse::<EndpointPatch>(bytes)?;
    if let Some(m) = parse::<MessageIn>(bytes)? {
        // The payload is kept as the exact text sent; it must be JSON again.
        prop_assert!(serde_json::from_str::<serde::de::IgnoredAny>(m.payload.get()).is_ok());
    }
    let _ = parse::<TokenIn>(bytes)?;
    let _ = parse::<EventTypeIn>(bytes)?;
    let _ = parse::<RecoverIn>(bytes)?;
    let _ = parse::<SecretRotateIn>(bytes)?;
    if let Some(v) = parse::<Verification>(bytes)? {
        let _ = herald_core::inbound::validate(&v);
    }
    Ok(())
}

#[test]
fn fuzz_json_bodies_answer_ok_400_or_422() {
    fuzz_support::run(
        "extract::parse_json (DTOs, mutated bodies)",
        PERSIST,
        512,
        body(),
        |b| parse_all(&b),
    );
}

#[test]
fn fuzz_json_deep_nesting_is_refused_not_a_stack_overflow() {
    // Runs on the test thread (2 MiB stack, like a tokio worker).
    for open in ["[", "{\"a\":", "[{\"a\":"] {
        for n in [129, 10_000, 100_000] {
            let deep = open.repeat(n);
            let bodies = [
                deep.clone(),
                format!("{{\"name\":{deep}"),
                format!("{{\"eventType\":\"a\",\"payload\":{deep}"),
                format!("{{\"unknown\":{deep}"),
                format!("{{\"name\":\"n\",\"schemas\":{{\"1\":{deep}"),
            ];
            for b in bodies {
                parse_all(b.as_bytes()).unwrap();
                assert!(parse_json::<MessageIn>(b.as_bytes()).is_err());
                assert!(parse_json::<ApplicationIn>(b.as_bytes()).is_err());
            }
        }
    }
}

// ---------------------------------------------------------------------------------------------
// List parameters

fn query_value() -> impl Strategy<Value = String> {
    prop_oneof![
        select(vec![
            "",
            "0",
            "1",
            "250",
            "251",
            "-1",
            "50",
            "9223372036854775807",
            "9223372036854775808",
            "-9223372036854775808",
            "1e3",
            "0x10",
            " 5",
            "ascending",
            "descending",
            "ASCENDING",
            "-",
            "--",
            "-app_01H",
            "app_01H",
            "2024-01-01T00:00:00Z",
            "2024-13-01T00:00:00Z",
            "+262143-12-31T23:59:59Z",
            "-262143-01-01T00:00:00Z",
            "9999-12-31T23:59:59.999999999+23:59",
            "%",
            "%zz",
            "%00",
            "%FF",
            "&",
            "=",
            "+",
        ])
        .prop_map(str::to_string),
        "[ -~]{0,24}",
        ".{0,12}".prop_map(|s| url::form_urlencoded::byte_serialize(s.as_bytes()).collect()),
    ]
}

fn query() -> impl Strategy<Value = String> {
    prop::collection::vec(
        (
            select(vec![
                "limit", "iterator", "order", "before", "after", "other", "limit[]",
            ]),
            query_value(),
        ),
        0..7,
    )
    .prop_map(|kv| {
        kv.into_iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect::<Vec<_>>()
            .join("&")
    })
}

fn check_query(q: &str, default_desc: bool) -> TestCaseResult {
    let Ok(req) = axum::http::Request::builder()
        .uri(format!("/api/v1/app?{q}"))
        .body(())
    else {
        // Not a URI axum would ever route; nothing to check.
        return Ok(());
    };
    let (mut parts, ()) = req.into_parts();
    let params = futures::executor::block_on(Q::<ListParams>::from_request_parts(&mut parts, &()));
    let params = match params {
        Ok(Q(p)) => p,
        Err(e) => {
            prop_assert_eq!(e.into_response().status(), StatusCode::UNPROCESSABLE_ENTITY);
            return Ok(());
        }
    };
    match params.to_query(default_desc) {
        Ok(lq) => {
            prop_assert!((1..=250).contains(&lq.limit), "limit {}", lq.limit);
            if let Some(it) = &lq.iterator {
                prop_assert!(!it.is_empty() || lq.backwards);
            }
        }
        Err(e) => {
            prop_assert!(matches!(e, ApiError::Validation(_)), "{:?}", e);
            prop_assert_eq!(e.into_response().status(), StatusCode::UNPROCESSABLE_ENTITY);
        }
    }
    Ok(())
}

#[test]
fn fuzz_list_params_answer_ok_or_422() {
    fuzz_support::run(
        "extract::ListParams::to_query (query strings)",
        PERSIST,
        1024,
        (query(), any::<bool>()),
        |(q, desc)| check_query(&q, desc),
    );
}

#[test]
fn fuzz_list_params_fields_answer_ok_or_422() {
    // The struct directly, with any values (what a future extractor might produce).
    let text = || prop::option::of(query_value());
    fuzz_support::run(
        "extract::ListParams::to_query (fields)",
        PERSIST,
        1024,
        (
            prop::option::of(any::<i64>()),
            text(),
            text(),
            text(),
            text(),
            any::<bool>(),
        ),
        |(limit, iterator, order, before, after, desc)| {
            let p = ListParams {
                limit,
                iterator,
                order,
                before,
                after,
            };
            match p.to_query(desc) {
                Ok(q) => prop_assert!((1..=250).contains(&q.limit)),
                Err(e) => {
                    prop_assert_eq!(e.into_response().status(), StatusCode::UNPROCESSABLE_ENTITY)
                }
            }
            Ok(())
        },
    );
}
