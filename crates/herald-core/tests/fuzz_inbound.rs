//! Property-based fuzzing of inbound verification (`herald_core::inbound`), every scheme.
//!
//! - Arbitrary requests (the schemes' real header names with garbage values: non-UTF-8 bytes,
//!   huge values, `t=…,v1=…` fragments, comma/`=`/space soup, hex and base64 noise), arbitrary
//!   bodies and URLs, arbitrary verification configs and clocks: `verify`, `handshake`,
//!   `extract`, `validate`, `tolerance` and friends answer and never panic (debug builds also
//!   catch integer overflow).
//! - Correctly signed requests (standard-webhooks, github, stripe, slack, shopify, zoom, paddle,
//!   pagerduty, intercom, linear, generic hmac) verify, and any single-byte change of the body
//!   makes them fail. The signatures are computed here with the `hmac`/`sha2` crates directly.
//! - `Tolerance::check` agrees with exact (i128) arithmetic at the extremes of `i64`.
//!
//! Run long: `HERALD_FUZZ_SECONDS=600 cargo test --release -p herald-core --test fuzz_inbound
//! -- --nocapture` (see `scripts/fuzz.sh` and docs/reliability.md "Fuzzing").

mod fuzz_support;

use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine;
use herald_core::inbound::{
    self, Extract, HmacAlgorithm, Request, Scheme, SignatureEncoding, Tolerance, Verification,
};
use hmac::{Hmac, Mac};
use http::{HeaderMap, HeaderName, HeaderValue};
use proptest::prelude::*;
use proptest::sample::select;
use proptest::test_runner::TestCaseResult;
use sha1::Sha1;
use sha2::Sha256;

const PERSIST: &str = "proptest-regressions/fuzz_inbound.txt";

// ---------------------------------------------------------------------------------------------
// Generators

/// Every header name any scheme reads, plus a few generic ones.
const KNOWN_HEADERS: &[&str] = &[
    "webhook-id",
    "webhook-timestamp",
    "webhook-signature",
    "svix-id",
    "svix-timestamp",
    "svix-signature",
    "X-Hub-Signature-256",
    "X-Hub-Signature",
    "Stripe-Signature",
    "X-Slack-Signature",
    "X-Slack-Request-Timestamp",
    "X-Shopify-Hmac-Sha256",
    "X-Twilio-Signature",
    "Paddle-Signature",
    "x-square-hmacsha256-signature",
    "x-zm-signature",
    "x-zm-request-timestamp",
    "Twitch-Eventsub-Message-Id",
    "Twitch-Eventsub-Message-Timestamp",
    "Twitch-Eventsub-Message-Signature",
    "Twitch-Eventsub-Message-Type",
    "Linear-Signature",
    "X-PagerDuty-Signature",
    "X-Twilio-Email-Event-Webhook-Signature",
    "X-Twilio-Email-Event-Webhook-Timestamp",
    "X-Signature-Ed25519",
    "X-Signature-Timestamp",
    "X-Gitlab-Token",
    "Authorization",
    "Content-Type",
    "X-GitHub-Event",
    "X-GitHub-Delivery",
    "x-signature",
    "x-timestamp",
    "x-id",
    "x-api-key",
];

/// Fragments the signature parsers split on or look for.
const FRAGMENTS: &[&str] = &[
    "t=",
    "v1=",
    "v0=",
    "v1,",
    "h1=",
    "ts=",
    "sha256=",
    "sha1=",
    ",",
    ";",
    "=",
    " ",
    "  ",
    "\t",
    "-",
    "+",
    ":",
    "Basic ",
    "Bearer ",
    "whsec_",
    "0",
    "1700000000",
    "-1",
    "9223372036854775807",
    "-9223372036854775808",
    "9223372036854775808",
    "99999999999999999999999",
    "2024-01-01T00:00:00Z",
    "+262143-12-31T23:59:59Z",
    "-262143-01-01T00:00:00Z",
    "9999-99-99T99:99:99Z",
    "deadbeef",
    "00",
    "==",
    "AAAA",
    "////",
    "application/x-www-form-urlencoded",
    "application/json",
    "url_verification",
    "webhook_callback_verification",
];

fn hex_noise() -> impl Strategy<Value = String> {
    prop::collection::vec(select(b"0123456789abcdefABCDEFg".to_vec()), 0..140)
        .prop_map(|b| String::from_utf8(b).expect("ascii"))
}

fn b64_noise() -> impl Strategy<Value = String> {
    prop::collection::vec(
        select(b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/=-_".to_vec()),
        0..120,
    )
    .prop_map(|b| String::from_utf8(b).expect("ascii"))
}

/// Text made of parser fragments and noise: `t=1,v1=zz, v1=…`.
fn fragment_soup() -> impl Strategy<Value = String> {
    prop::collection::vec(
        prop_oneof![
            4 => select(FRAGMENTS).prop_map(str::to_string),
            1 => hex_noise(),
            1 => b64_noise(),
            1 => any::<i64>().prop_map(|n| n.to_string()),
        ],
        0..12,
    )
    .prop_map(|parts| parts.concat())
}

/// Header value bytes: visible text, non-UTF-8 (obs-text) bytes, huge values, fragment soup.
/// Only bytes `HeaderValue` accepts, so every generated header really reaches the verifier.
fn header_value() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        4 => fragment_soup().prop_map(String::into_bytes),
        2 => prop::collection::vec(
            prop_oneof![0x20u8..0x7f, 0x80u8..=0xff, Just(b'\t')],
            0..64
        ),
        1 => (fragment_soup(), 1usize..5000).prop_map(|(s, n)| s.repeat(n.min(65_536 / (s.len() + 1))).into_bytes()),
        1 => (1usize..40_000).prop_map(|n| vec![b','; n]),
        1 => (1usize..20_000).prop_map(|n| "v1=".repeat(n).into_bytes()),
    ]
    .prop_map(|mut b| {
        b.retain(|c| *c == b'\t' || (*c >= 0x20 && *c != 0x7f));
        b
    })
}

fn header_name() -> impl Strategy<Value = String> {
    prop_oneof![
        4 => select(KNOWN_HEADERS).prop_map(str::to_string),
        1 => "[a-zA-Z0-9-]{1,24}",
    ]
}

fn headers() -> impl Strategy<Value = Vec<(String, Vec<u8>)>> {
    prop::collection::vec((header_name(), header_value()), 0..12)
}

fn build_headers(pairs: &[(String, Vec<u8>)]) -> HeaderMap {
    let mut map = HeaderMap::new();
    for (k, v) in pairs {
        if let (Ok(k), Ok(v)) = (
            HeaderName::from_bytes(k.as_bytes()),
            HeaderValue::from_bytes(v),
        ) {
            map.append(k, v);
        }
    }
    map
}

fn json_scalar() -> impl Strategy<Value = String> {
    prop_oneof![
        fragment_soup().prop_map(|s| serde_json::to_string(&s).expect("string")),
        any::<i64>().prop_map(|n| n.to_string()),
        any::<f64>().prop_map(|f| serde_json::to_string(&f).unwrap_or_else(|_| "0".into())),
        Just("null".to_string()),
        Just("true".to_string()),
        Just("1e400".to_string()),
        Just("-0".to_string()),
        Just("{}".to_string()),
        Just("[]".to_string()),
    ]
}

/// Bodies: raw bytes, the JSON shapes the verifiers and handshakes read (with random values),
/// Mailgun-style forms and deep nesting.
fn body() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        3 => prop::collection::vec(any::<u8>(), 0..256),
        1 => (json_scalar(), json_scalar(), json_scalar()).prop_map(|(a, b, c)| format!(
            r#"{{"signature":{{"timestamp":{a},"token":{b},"signature":{c}}}}}"#
        ).into_bytes()),
        1 => (fragment_soup(), fragment_soup(), fragment_soup()).prop_map(|(a, b, c)| {
            let mut f = url::form_urlencoded::Serializer::new(String::new());
            f.append_pair("timestamp", &a).append_pair("token", &b).append_pair("signature", &c);
            f.finish().into_bytes()
        }),
        1 => json_scalar().prop_map(|t| format!(r#"{{"webhookTimestamp":{t},"type":"x"}}"#).into_bytes()),
        1 => json_scalar().prop_map(|c| format!(r#"{{"type":"url_verification","challenge":{c}}}"#).into_bytes()),
        1 => json_scalar().prop_map(|c| format!(r#"{{"event":"endpoint.url_validation","payload":{{"plainToken":{c}}}}}"#).into_bytes()),
        1 => json_scalar().prop_map(|c| format!(r#"{{"type":{c},"challenge":{c},"id":{c}}}"#).into_bytes()),
        1 => (1usize..5000).prop_map(|n| format!("{}{}", "[".repeat(n), "]".repeat(n)).into_bytes()),
    ]
}

fn url() -> impl Strategy<Value = String> {
    prop_oneof![
        Just("https://herald.example/in/src_1".to_string()),
        "https?://[a-z.@:\\[\\]0-9]{0,30}(/[a-z]{0,8})?(\\?[a-zA-Z0-9=&%]{0,40})?(#[a-z]{0,5})?",
        (fragment_soup(), hex_noise())
            .prop_map(|(a, h)| format!("https://h:443/p?bodySHA256={h}&{a}")),
        ".{0,60}",
        Just("https://[::1]".to_string()),
        Just("http://user@[::1]:80/x".to_string()),
        Just("https://a]@b:".to_string()),
        Just("://".to_string()),
    ]
}

fn secret() -> impl Strategy<Value = String> {
    prop_oneof![
        Just(String::new()),
        Just("whsec_".to_string()),
        Just("whsec_!!!not base64".to_string()),
        b64_noise().prop_map(|b| format!("whsec_{b}")),
        prop::collection::vec(any::<u8>(), 1..48).prop_map(|k| format!("whsec_{}", B64.encode(k))),
        hex_noise(),
        b64_noise(),
        ".{0,40}",
        (1usize..100_000).prop_map(|n| "k".repeat(n)),
        Just("-----BEGIN PUBLIC KEY-----\nMFkw\n-----END PUBLIC KEY-----".to_string()),
        Just("user:password".to_string()),
        Just(":".to_string()),
    ]
}

fn extreme_i64() -> impl Strategy<Value = i64> {
    prop_oneof![
        3 => any::<i64>(),
        2 => select(vec![i64::MIN, i64::MIN + 1, -1, 0, 1, 300, i64::MAX - 1, i64::MAX]),
        2 => 1_600_000_000i64..1_800_000_000,
    ]
}

fn opt<T: std::fmt::Debug + Clone + 'static>(
    s: impl Strategy<Value = T> + 'static,
) -> impl Strategy<Value = Option<T>> {
    prop::option::weighted(0.4, s)
}

fn template() -> impl Strategy<Value = String> {
    prop::collection::vec(
        prop_oneof![
            select(vec![
                "{body}",
                "{timestamp}",
                "{id}",
                "{url}",
                "{",
                "}",
                "{x}",
                ".",
                "{{"
            ])
            .prop_map(str::to_string),
            ".{0,4}",
        ],
        0..8,
    )
    .prop_map(|p| p.concat())
}

fn verification() -> impl Strategy<Value = Verification> {
    (
        select(Scheme::ALL.to_vec()),
        prop::collection::vec(secret(), 0..4),
        opt(extreme_i64()),
        opt(header_name()),
        opt(select(vec![
            HmacAlgorithm::Sha1,
            HmacAlgorithm::Sha256,
            HmacAlgorithm::Sha512,
        ])),
        opt(select(vec![
            SignatureEncoding::Hex,
            SignatureEncoding::Base64,
        ])),
        opt(select(vec!["sha256=", "v1=", "Bearer ", "", " ", ","]).prop_map(str::to_string)),
        opt(template()),
        opt(header_name()),
        opt(header_name()),
    )
        .prop_map(
            |(scheme, secrets, tol, header, alg, enc, prefix, tpl, ts, id)| {
                let mut v = Verification::new(scheme, secrets);
                v.tolerance_seconds = tol;
                v.header = header;
                v.algorithm = alg;
                v.encoding = enc;
                v.prefix = prefix;
                v.signed_content = tpl;
                v.timestamp_header = ts;
                v.id_header = id;
                v
            },
        )
}

fn extract_rule() -> impl Strategy<Value = Extract> {
    prop_oneof![
        header_name().prop_map(Extract::Header),
        prop_oneof![
            Just("".to_string()),
            Just("/".to_string()),
            "(/[a-z~0-9]{0,5}){0,6}",
            ".{0,20}"
        ]
        .prop_map(Extract::Json),
        ".{0,10}".prop_map(Extract::Value),
        any::<bool>().prop_map(Extract::BodyHash),
    ]
}

// ---------------------------------------------------------------------------------------------
// Properties: nothing panics

#[derive(Debug, Clone)]
struct Arbitrary {
    v: Verification,
    headers: Vec<(String, Vec<u8>)>,
    body: Vec<u8>,
    url: String,
    now: i64,
    rule: Extract,
}

fn arbitrary_request() -> impl Strategy<Value = Arbitrary> {
    (
        verification(),
        headers(),
        body(),
        url(),
        extreme_i64(),
        extract_rule(),
    )
        .prop_map(|(v, headers, body, url, now, rule)| Arbitrary {
            v,
            headers,
            body,
            url,
            now,
            rule,
        })
}

fn exercise(a: &Arbitrary) {
    let map = build_headers(&a.headers);
    let req = Request {
        url: &a.url,
        headers: &map,
        body: &a.body,
    };
    let v = &a.v;
    let verdict = inbound::verify(v, &req, a.now);
    if let Err(e) = &verdict {
        // Every refusal maps to one of the two API codes and never echoes a secret.
        assert!(matches!(
            e.code(),
            "invalid_signature" | "timestamp_out_of_tolerance"
        ));
        let text = e.to_string();
        for s in v.secrets.iter().filter(|s| s.len() >= 16) {
            assert!(!text.contains(s.as_str()), "error echoes a secret: {text}");
        }
    }
    if v.scheme == Scheme::None {
        assert!(verdict.is_ok(), "scheme none accepts anything");
    }
    let _ = inbound::handshake(v, &req);
    let _ = inbound::extract(&a.rule, &req);
    let _ = inbound::extract(&inbound::dedup_key_for(v), &req);
    if let Some(rule) = inbound::default_event_type(v.scheme) {
        let _ = inbound::extract(&rule, &req);
    }
    let problems = inbound::validate(v);
    for p in &problems {
        for s in v.secrets.iter().filter(|s| s.len() >= 16) {
            assert!(!p.contains(s.as_str()), "validate echoes a secret: {p}");
        }
    }
    let _ = inbound::warnings(v);
    let _ = inbound::never_forward(v);
    let _ = format!("{v:?}");
    let _ = inbound::tolerance(v).check(a.now, a.now.wrapping_neg());
}

#[test]
fn fuzz_verify_never_panics_on_arbitrary_requests() {
    fuzz_support::run(
        "inbound::verify (all schemes, arbitrary requests)",
        PERSIST,
        256,
        arbitrary_request(),
        |a| {
            exercise(&a);
            Ok(())
        },
    );
}

#[test]
fn fuzz_verify_never_panics_for_each_scheme() {
    // The arbitrary-config property picks schemes at random; this one walks each scheme in turn
    // with a minimal config, so no scheme is starved of cases.
    fuzz_support::run(
        "inbound::verify (each scheme, minimal config)",
        PERSIST,
        64,
        (
            prop::collection::vec(secret(), 1..3),
            headers(),
            body(),
            url(),
            extreme_i64(),
        ),
        |(secrets, headers, body, url, now)| {
            for scheme in Scheme::ALL {
                let mut v = Verification::new(scheme, secrets.clone());
                if matches!(scheme, Scheme::Hmac | Scheme::ApiKey) {
                    v.header = headers.first().map(|(k, _)| k.clone());
                }
                exercise(&Arbitrary {
                    v,
                    headers: headers.clone(),
                    body: body.clone(),
                    url: url.clone(),
                    now,
                    rule: Extract::BodyHash(true),
                });
            }
            Ok(())
        },
    );
}

#[test]
fn fuzz_verification_json_never_panics() {
    // The config as the API receives it: arbitrary JSON objects with the real field names.
    let field = select(vec![
        "scheme",
        "secrets",
        "toleranceSeconds",
        "header",
        "algorithm",
        "encoding",
        "prefix",
        "signedContent",
        "timestampHeader",
        "idHeader",
        "unknown",
    ]);
    let value = prop_oneof![
        select(Scheme::ALL.to_vec()).prop_map(|s| serde_json::json!(s.as_str())),
        json_scalar().prop_map(|s| serde_json::from_str(&s).unwrap_or(serde_json::Value::Null)),
        prop::collection::vec(secret(), 0..3).prop_map(|s| serde_json::json!(s)),
        Just(serde_json::json!("sha512")),
        Just(serde_json::json!("base64")),
        Just(serde_json::json!(1e300)),
    ];
    fuzz_support::run(
        "inbound::Verification from JSON + validate",
        PERSIST,
        256,
        prop::collection::vec((field, value), 0..10),
        |fields| {
            let obj: serde_json::Map<_, _> = fields
                .into_iter()
                .map(|(k, v)| (k.to_string(), v))
                .collect();
            if let Ok(v) = serde_json::from_value::<Verification>(serde_json::Value::Object(obj)) {
                let _ = inbound::validate(&v);
                let _ = serde_json::to_string(&v);
            }
            Ok(())
        },
    );
}

#[test]
fn fuzz_tolerance_check_is_exact_at_the_extremes() {
    fuzz_support::run(
        "inbound::Tolerance::check (i64 extremes)",
        PERSIST,
        1024,
        (0u8..3, extreme_i64(), extreme_i64(), extreme_i64()),
        |(kind, n, ts, now)| {
            let tol = match kind {
                0 => Tolerance::Unchecked,
                1 => Tolerance::Both(n),
                _ => Tolerance::PastOnly(n),
            };
            let got = tol.check(ts, now).is_ok();
            // Exact arithmetic; a window of i64::MAX is "anything" and saturates on purpose.
            let skew = i128::from(now) - i128::from(ts);
            let want = match tol {
                Tolerance::Unchecked => true,
                Tolerance::Both(n) => n == i64::MAX || skew.abs() <= i128::from(n),
                Tolerance::PastOnly(n) => n == i64::MAX || skew <= i128::from(n),
            };
            prop_assert_eq!(got, want, "{:?} ts={} now={}", tol, ts, now);
            Ok(())
        },
    );
}

// ---------------------------------------------------------------------------------------------
// Properties: correctly signed requests verify; a changed body byte fails

fn hmac256(key: &[u8], msg: &[u8]) -> Vec<u8> {
    let mut m = Hmac::<Sha256>::new_from_slice(key).expect("any key length");
    m.update(msg);
    m.finalize().into_bytes().to_vec()
}

fn hmac1(key: &[u8], msg: &[u8]) -> Vec<u8> {
    let mut m = Hmac::<Sha1>::new_from_slice(key).expect("any key length");
    m.update(msg);
    m.finalize().into_bytes().to_vec()
}

fn hmac512(key: &[u8], msg: &[u8]) -> Vec<u8> {
    let mut m = Hmac::<sha2::Sha512>::new_from_slice(key).expect("any key length");
    m.update(msg);
    m.finalize().into_bytes().to_vec()
}

fn cat(parts: &[&[u8]]) -> Vec<u8> {
    parts.concat()
}

/// The schemes this file can sign.
const SIGNABLE: [Scheme; 11] = [
    Scheme::StandardWebhooks,
    Scheme::Github,
    Scheme::Stripe,
    Scheme::Slack,
    Scheme::Shopify,
    Scheme::Zoom,
    Scheme::Paddle,
    Scheme::Pagerduty,
    Scheme::Intercom,
    Scheme::Linear,
    Scheme::Hmac,
];

#[derive(Debug, Clone)]
struct SignCase {
    scheme: Scheme,
    /// Shared secret text; for standard-webhooks the raw key bytes are `key`.
    secret: String,
    key: Vec<u8>,
    /// Extra secrets configured besides the signing one (rotation).
    others: Vec<String>,
    body: Vec<u8>,
    ts: i64,
    /// `now - ts`, within every scheme's default window.
    skew: i64,
    id: String,
    alg: HmacAlgorithm,
    enc: SignatureEncoding,
    /// Which byte of the body to change, and the XOR mask (never 0).
    at: usize,
    mask: u8,
}

fn sign_case() -> impl Strategy<Value = SignCase> {
    (
        (
            select(SIGNABLE.to_vec()),
            "[!-~][ -~]{0,63}",
            prop::collection::vec(any::<u8>(), 1..64),
            prop::collection::vec("[!-~][ -~]{0,31}", 0..3),
            prop::collection::vec(any::<u8>(), 0..512),
        ),
        (
            prop_oneof![
                3 => 1_600_000_000i64..1_800_000_000,
                1 => (i64::MIN + 10_000)..(i64::MAX - 10_000),
            ],
            -5i64..=5,
            "[a-zA-Z0-9_]{1,32}",
            select(vec![
                HmacAlgorithm::Sha1,
                HmacAlgorithm::Sha256,
                HmacAlgorithm::Sha512,
            ]),
            select(vec![SignatureEncoding::Hex, SignatureEncoding::Base64]),
            any::<usize>(),
            1u8..=255,
        ),
    )
        .prop_map(
            |((scheme, secret, key, others, body), (ts, skew, id, alg, enc, at, mask))| SignCase {
                scheme,
                secret,
                key,
                others,
                body,
                ts,
                skew,
                id,
                alg,
                enc,
                at,
                mask,
            },
        )
}

/// The configuration and headers of a correctly signed request for `body`.
fn signed(c: &SignCase, body: &[u8]) -> (Verification, Vec<(&'static str, String)>) {
    let t = c.ts.to_string();
    let s = c.secret.as_bytes();
    let mut secrets = c.others.clone();
    secrets.push(c.secret.clone());
    let mut v = Verification::new(c.scheme, Vec::new());
    let headers: Vec<(&'static str, String)> = match c.scheme {
        Scheme::StandardWebhooks => {
            let mac = hmac256(
                &c.key,
                &cat(&[c.id.as_bytes(), b".", t.as_bytes(), b".", body]),
            );
            secrets = vec![format!("whsec_{}", B64.encode(&c.key))];
            vec![
                ("webhook-id", c.id.clone()),
                ("webhook-timestamp", t.clone()),
                (
                    "webhook-signature",
                    format!("v1,{} v1,AAAA", B64.encode(mac)),
                ),
            ]
        }
        Scheme::Github => vec![(
            "X-Hub-Signature-256",
            format!("sha256={}", hex::encode(hmac256(s, body))),
        )],
        Scheme::Intercom => vec![(
            "X-Hub-Signature",
            format!("sha1={}", hex::encode(hmac1(s, body))),
        )],
        Scheme::Stripe => {
            let mac = hmac256(s, &cat(&[t.as_bytes(), b".", body]));
            vec![(
                "Stripe-Signature",
                format!("t={t},v1={},v0=00,v1=zz", hex::encode(mac)),
            )]
        }
        Scheme::Slack | Scheme::Zoom => {
            let mac = hmac256(s, &cat(&[b"v0:", t.as_bytes(), b":", body]));
            let (sig, ts) = if c.scheme == Scheme::Slack {
                ("X-Slack-Signature", "X-Slack-Request-Timestamp")
            } else {
                ("x-zm-signature", "x-zm-request-timestamp")
            };
            vec![(sig, format!("v0={}", hex::encode(mac))), (ts, t.clone())]
        }
        Scheme::Shopify => vec![("X-Shopify-Hmac-Sha256", B64.encode(hmac256(s, body)))],
        Scheme::Paddle => {
            let mac = hmac256(s, &cat(&[t.as_bytes(), b":", body]));
            vec![(
                "Paddle-Signature",
                format!("ts={t};h1=00;h1={}", hex::encode(mac)),
            )]
        }
        Scheme::Pagerduty => vec![(
            "X-PagerDuty-Signature",
            format!("v1=00, v1={}", hex::encode(hmac256(s, body))),
        )],
        Scheme::Linear => {
            // The timestamp lives in the (arbitrary) body, so only the signature is checked.
            v.tolerance_seconds = Some(0);
            vec![("Linear-Signature", hex::encode(hmac256(s, body)))]
        }
        Scheme::Hmac => {
            v.header = Some("x-signature".into());
            v.timestamp_header = Some("x-timestamp".into());
            v.id_header = Some("x-id".into());
            v.algorithm = Some(c.alg);
            v.encoding = Some(c.enc);
            v.prefix = Some("sig=".into());
            v.signed_content = Some("{id}.{timestamp}.{url}.{body}".into());
            let msg = cat(&[
                c.id.as_bytes(),
                b".",
                t.as_bytes(),
                b".",
                URL.as_bytes(),
                b".",
                body,
            ]);
            let mac = match c.alg {
                HmacAlgorithm::Sha1 => hmac1(s, &msg),
                HmacAlgorithm::Sha256 => hmac256(s, &msg),
                HmacAlgorithm::Sha512 => hmac512(s, &msg),
            };
            let text = match c.enc {
                SignatureEncoding::Hex => hex::encode(mac),
                SignatureEncoding::Base64 => B64.encode(mac),
            };
            vec![
                ("x-signature", format!("sig=00, sig={text}")),
                ("x-timestamp", t.clone()),
                ("x-id", c.id.clone()),
            ]
        }
        other => unreachable!("{other} is not in SIGNABLE"),
    };
    v.secrets = secrets;
    (v, headers)
}

const URL: &str = "https://herald.example/in/src_fuzz?x=1";

fn check_signed(c: &SignCase) -> TestCaseResult {
    let (v, pairs) = signed(c, &c.body);
    prop_assert_eq!(inbound::validate(&v), Vec::<String>::new());
    let mut map = HeaderMap::new();
    for (k, val) in &pairs {
        map.insert(*k, HeaderValue::from_str(val).expect("visible ASCII"));
    }
    let now = c.ts + c.skew;
    let req = Request {
        url: URL,
        headers: &map,
        body: &c.body,
    };
    prop_assert_eq!(inbound::verify(&v, &req, now), Ok(()), "{}", c.scheme);

    // Any single-byte change of the body (or one byte more for an empty body) must fail.
    let mut bad = c.body.clone();
    if bad.is_empty() {
        bad.push(c.mask);
    } else {
        let at = c.at % bad.len();
        bad[at] ^= c.mask;
    }
    let req = Request {
        url: URL,
        headers: &map,
        body: &bad,
    };
    prop_assert!(
        inbound::verify(&v, &req, now).is_err(),
        "{}: a changed body byte still verified",
        c.scheme
    );
    // So must a clock far outside the window, for the schemes with a default window.
    if matches!(
        inbound::tolerance(&v),
        Tolerance::Both(_) | Tolerance::PastOnly(_)
    ) {
        let req = Request {
            url: URL,
            headers: &map,
            body: &c.body,
        };
        prop_assert_eq!(
            inbound::verify(&v, &req, c.ts.saturating_add(100_000)),
            Err(inbound::VerifyError::Stale),
            "{}",
            c.scheme
        );
    }
    Ok(())
}

#[test]
fn fuzz_signed_requests_verify_and_any_body_change_fails() {
    fuzz_support::run(
        "inbound::verify (signed requests, body mutations)",
        PERSIST,
        256,
        sign_case(),
        |c| check_signed(&c),
    );
}
