//! The published inbound vectors in `tests/vectors/vectors.json` (the published vectors, kept in the repository): every entry must verify with
//! `herald_core::inbound::verify` (at the entry's own clock, URL and key), and flipping one byte
//! of the body or of the decoded signature must make it fail.

use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine;
use herald_core::inbound::{verify, Request, Scheme, Verification, VerifyError};
use http::{HeaderMap, HeaderName, HeaderValue};
use serde_json::Value;

/// Where a vector has no URL of its own (the scheme does not sign the URL).
const DEFAULT_URL: &str = "https://herald.example/in/src_test";

fn vectors() -> Vec<Value> {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../tests/vectors/vectors.json"
    );
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("read {path}: {e}"));
    let doc: Value = serde_json::from_str(&text).expect("vectors.json is JSON");
    doc["vectors"].as_array().expect("vectors array").clone()
}

fn flip(bytes: &[u8], at: usize) -> Vec<u8> {
    let mut b = bytes.to_vec();
    b[at] ^= 0x01;
    b
}

/// One vector, turned into the pieces a `Request` borrows.
struct Case {
    name: String,
    scheme: Scheme,
    verification: Verification,
    url: String,
    headers: HeaderMap,
    body: Vec<u8>,
    now: i64,
}

impl Case {
    fn from(v: &Value, i: usize) -> Self {
        let scheme_text = v["scheme"].as_str().expect("scheme");
        let scheme: Scheme = serde_json::from_value(v["scheme"].clone())
            .unwrap_or_else(|_| panic!("vector {i}: scheme {scheme_text} is not implemented"));
        // The key: a shared secret, or the provider's public key for asymmetric schemes.
        let secret = v["secret"]
            .as_str()
            .or_else(|| v["publicKey"].as_str())
            .expect("secret or publicKey");
        let mut headers = HeaderMap::new();
        for (k, val) in v["headers"].as_object().expect("headers") {
            headers.insert(
                HeaderName::from_bytes(k.as_bytes()).unwrap(),
                HeaderValue::from_str(val.as_str().unwrap()).unwrap(),
            );
        }
        // A form vector lists its parameters; they travel as an urlencoded body.
        let body = match (&v["body"], &v["form"]) {
            (Value::String(b), _) => b.as_bytes().to_vec(),
            (_, Value::Object(form)) => {
                let mut ser = url::form_urlencoded::Serializer::new(String::new());
                for (k, val) in form {
                    ser.append_pair(k, val.as_str().unwrap());
                }
                headers.insert(
                    http::header::CONTENT_TYPE,
                    HeaderValue::from_static("application/x-www-form-urlencoded"),
                );
                ser.finish().into_bytes()
            }
            _ => panic!("vector {i}: neither body nor form"),
        };
        Case {
            name: format!("vector {i} ({scheme_text})"),
            scheme,
            verification: Verification::new(scheme, vec![secret.to_string()]),
            url: v["url"].as_str().unwrap_or(DEFAULT_URL).to_string(),
            now: clock(v, &headers),
            headers,
            body,
        }
    }

    fn run(&self, headers: &HeaderMap, body: &[u8]) -> Result<(), VerifyError> {
        let req = Request {
            url: &self.url,
            headers,
            body,
        };
        verify(&self.verification, &req, self.now)
    }
}

/// The entry's fixed clock: an explicit `now`, else "clock fixed at N" in its note, else the
/// timestamp it carries, else any time (the scheme has no tolerance).
fn clock(v: &Value, headers: &HeaderMap) -> i64 {
    if let Some(n) = v["now"].as_i64() {
        return n;
    }
    if let Some(note) = v["note"].as_str() {
        if let Some(rest) = note.split("fixed at ").nth(1) {
            let digits: String = rest.chars().take_while(char::is_ascii_digit).collect();
            if let Ok(n) = digits.parse() {
                return n;
            }
        }
    }
    let h = |n: &str| headers.get(n).and_then(|v| v.to_str().ok());
    for name in [
        "webhook-timestamp",
        "svix-timestamp",
        "X-Slack-Request-Timestamp",
        "x-zm-request-timestamp",
        "X-Twilio-Email-Event-Webhook-Timestamp",
        "X-Signature-Timestamp",
    ] {
        if let Some(n) = h(name).and_then(|t| t.parse().ok()) {
            return n;
        }
    }
    if let Some(t) = h("Twitch-Eventsub-Message-Timestamp") {
        return chrono::DateTime::parse_from_rfc3339(t).unwrap().timestamp();
    }
    for (name, sep, key) in [
        ("Stripe-Signature", ',', "t="),
        ("Paddle-Signature", ';', "ts="),
    ] {
        if let Some(n) = h(name).and_then(|t| {
            t.split(sep)
                .find_map(|p| p.strip_prefix(key))
                .and_then(|t| t.parse().ok())
        }) {
            return n;
        }
    }
    1_700_000_000
}

/// The signature header of a scheme, and how its last signature is written: the text before it
/// (`None`: the whole value) and whether it is hex (else base64).
fn signature_layout(s: Scheme) -> (&'static str, Option<&'static str>, bool) {
    match s {
        Scheme::StandardWebhooks => ("webhook-signature", Some("v1,"), false),
        Scheme::Github => ("X-Hub-Signature-256", Some("sha256="), true),
        Scheme::Slack => ("X-Slack-Signature", Some("v0="), true),
        Scheme::Stripe => ("Stripe-Signature", Some("v1="), true),
        Scheme::Twilio => ("X-Twilio-Signature", None, false),
        Scheme::Paddle => ("Paddle-Signature", Some("h1="), true),
        Scheme::Square => ("x-square-hmacsha256-signature", None, false),
        Scheme::Twitch => ("Twitch-Eventsub-Message-Signature", Some("sha256="), true),
        Scheme::Sendgrid => ("X-Twilio-Email-Event-Webhook-Signature", None, false),
        Scheme::Discord => ("X-Signature-Ed25519", None, true),
        Scheme::Zoom => ("x-zm-signature", Some("v0="), true),
        Scheme::Shopify => ("X-Shopify-Hmac-Sha256", None, false),
        Scheme::Linear => ("Linear-Signature", None, true),
        Scheme::Pagerduty => ("X-PagerDuty-Signature", Some("v1="), true),
        Scheme::Intercom => ("X-Hub-Signature", Some("sha1="), true),
        other => panic!("no signature layout for {other} in this test"),
    }
}

/// The headers with one byte of the (last) decoded signature flipped and re-encoded.
fn tamper_signature(case: &Case, at: usize) -> HeaderMap {
    let (name, marker, is_hex) = signature_layout(case.scheme);
    let value = case.headers[name].to_str().unwrap();
    let split = match marker {
        Some(m) => value.rfind(m).expect("marker") + m.len(),
        None => 0,
    };
    let (head, sig) = value.split_at(split);
    let raw = if is_hex {
        hex::decode(sig).unwrap()
    } else {
        B64.decode(sig).unwrap()
    };
    let bad = flip(&raw, at % raw.len());
    let encoded = if is_hex {
        hex::encode(bad)
    } else {
        B64.encode(bad)
    };
    let mut headers = case.headers.clone();
    headers.insert(
        HeaderName::from_bytes(name.as_bytes()).unwrap(),
        HeaderValue::from_str(&format!("{head}{encoded}")).unwrap(),
    );
    headers
}

#[test]
fn every_published_vector_verifies_and_fails_when_tampered() {
    let all = vectors();
    assert!(all.len() >= 12, "expected the published vectors");
    let mut tested = std::collections::BTreeSet::new();
    for (i, v) in all.iter().enumerate() {
        let case = Case::from(v, i);
        tested.insert(case.scheme.as_str());
        case.run(&case.headers, &case.body)
            .unwrap_or_else(|e| panic!("{} must verify: {e}", case.name));

        for at in [0, case.body.len() / 2, case.body.len() - 1] {
            let r = case.run(&case.headers, &flip(&case.body, at));
            assert!(
                r.is_err(),
                "{}: body byte {at} flipped must fail",
                case.name
            );
        }
        for at in [0, 5, 17] {
            let r = case.run(&tamper_signature(&case, at), &case.body);
            assert!(
                r.is_err(),
                "{}: signature byte {at} flipped must fail",
                case.name
            );
        }
    }
    // Every scheme the vectors file publishes was exercised.
    for s in [
        "standard-webhooks",
        "github",
        "slack",
        "stripe",
        "twilio",
        "paddle",
        "square",
        "twitch",
        "sendgrid",
    ] {
        assert!(tested.contains(s), "no vector exercised {s}");
    }
}

#[test]
fn hmac_vectors_report_mismatch_for_a_flipped_body() {
    // The shared-secret schemes must say *why*: a flipped body is a mismatch, not a parse error.
    for (i, v) in vectors().iter().enumerate() {
        let case = Case::from(v, i);
        if matches!(case.scheme, Scheme::Sendgrid) {
            continue;
        }
        assert_eq!(
            case.run(&case.headers, &flip(&case.body, 0)),
            Err(VerifyError::Mismatch),
            "{}",
            case.name
        );
    }
}

#[test]
fn sendgrid_vector_fails_with_the_wrong_public_key() {
    for (i, v) in vectors().iter().enumerate() {
        let Some(wrong) = v["wrongPublicKey"].as_str() else {
            continue;
        };
        let mut case = Case::from(v, i);
        case.verification.secrets = vec![wrong.to_string()];
        assert_eq!(
            case.run(&case.headers, &case.body),
            Err(VerifyError::Mismatch),
            "{}",
            case.name
        );
        // Rotation: the right key next to the wrong one verifies.
        case.verification
            .secrets
            .push(v["publicKey"].as_str().unwrap().to_string());
        case.run(&case.headers, &case.body).unwrap();
    }
}

#[test]
fn vectors_are_refused_outside_the_tolerance_of_their_scheme() {
    for (i, v) in vectors().iter().enumerate() {
        let mut case = Case::from(v, i);
        let later = match case.scheme {
            Scheme::StandardWebhooks | Scheme::Slack | Scheme::Stripe => 301,
            Scheme::Paddle => 6,
            Scheme::Twitch => 601,
            _ => continue,
        };
        let base = case.now;
        case.now = base + later;
        assert_eq!(
            case.run(&case.headers, &case.body),
            Err(VerifyError::Stale),
            "{} at +{later}s",
            case.name
        );
        // "±" schemes also refuse a request from the future; "past"-only schemes accept it.
        case.now = base - later;
        let future = case.run(&case.headers, &case.body);
        match case.scheme {
            Scheme::StandardWebhooks | Scheme::Slack => {
                assert_eq!(future, Err(VerifyError::Stale), "{}", case.name)
            }
            _ => assert_eq!(future, Ok(()), "{}", case.name),
        }
    }
}
