//! Each scheme is signed here with the `hmac`/`sha1`/`sha2` crates (or the curve crates)
//! directly, following the provider's documented recipe, rather than with the module's own
//! helpers: a shared bug in both would otherwise go unnoticed.

use super::providers::hmac::render_template;
use super::providers::twilio::url_variants as twilio_url_variants;
use super::*;
use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine;
use hmac::{Hmac, Mac};
use http::{HeaderMap, HeaderName, HeaderValue};
use serde_json::Value;
use sha1::Sha1;
use sha2::{Digest, Sha256, Sha512};

const T: i64 = 1_700_000_000;
const URL: &str = "https://hooks.example.com/in/src_1?x=1";

fn hm(pairs: &[(String, String)]) -> HeaderMap {
    let mut h = HeaderMap::new();
    for (k, v) in pairs {
        h.append(
            HeaderName::from_bytes(k.as_bytes()).unwrap(),
            HeaderValue::from_str(v).unwrap(),
        );
    }
    h
}

fn hmac256(key: &[u8], msg: &[u8]) -> Vec<u8> {
    let mut m = <Hmac<Sha256> as Mac>::new_from_slice(key).unwrap();
    m.update(msg);
    m.finalize().into_bytes().to_vec()
}

fn hmac1(key: &[u8], msg: &[u8]) -> Vec<u8> {
    let mut m = <Hmac<Sha1> as Mac>::new_from_slice(key).unwrap();
    m.update(msg);
    m.finalize().into_bytes().to_vec()
}

fn hmac512(key: &[u8], msg: &[u8]) -> Vec<u8> {
    let mut m = <Hmac<Sha512> as Mac>::new_from_slice(key).unwrap();
    m.update(msg);
    m.finalize().into_bytes().to_vec()
}

fn kv(k: &str, v: impl Into<String>) -> (String, String) {
    (k.to_string(), v.into())
}

type Signed = (Vec<(String, String)>, Vec<u8>);

/// One scheme's recipe: how a provider holding `secret` signs a request at time `ts`.
struct Recipe {
    scheme: Scheme,
    secrets: [&'static str; 2],
    sig_header: &'static str,
    /// Seconds into the past that make a request stale at the default tolerance.
    stale_after: Option<i64>,
    configure: fn(&mut Verification),
    sign: fn(&str, i64) -> Signed,
}

fn no_config(_: &mut Verification) {}

const WHSEC_A: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
const WHSEC_B: &str = "whsec_C2FVsBQIhrscChlQIMV+b5sSYspob7oD";

/// Every shared-secret scheme's recipe, in the order of the spec.
fn recipes() -> Vec<Recipe> {
    let mut all = recipes_standard_webhooks_to_twilio();
    all.extend(recipes_paddle_to_pagerduty());
    all.extend(recipes_intercom_to_hmac());
    all
}

/// The recipes of Standard Webhooks … Twilio.
fn recipes_standard_webhooks_to_twilio() -> Vec<Recipe> {
    vec![
        Recipe {
            scheme: Scheme::StandardWebhooks,
            secrets: [WHSEC_A, WHSEC_B],
            sig_header: "svix-signature",
            stale_after: Some(301),
            configure: no_config,
            // Svix brand: the same scheme under svix-* names; key = base64 after whsec_.
            sign: |secret, ts| {
                let key = B64.decode(&secret[6..]).unwrap();
                let body = br#"{"type":"user.created"}"#.to_vec();
                let mut msg = format!("msg_1.{ts}.").into_bytes();
                msg.extend_from_slice(&body);
                let sig = format!("v1,{}", B64.encode(hmac256(&key, &msg)));
                let other = format!("v1,{}", B64.encode([0u8; 32]));
                (
                    vec![
                        kv("svix-id", "msg_1"),
                        kv("svix-timestamp", ts.to_string()),
                        kv("svix-signature", format!("{other} {sig}")),
                    ],
                    body,
                )
            },
        },
        Recipe {
            scheme: Scheme::Github,
            secrets: ["gh-secret-a", "gh-secret-b"],
            sig_header: "X-Hub-Signature-256",
            stale_after: None,
            configure: no_config,
            sign: |secret, _| {
                let body = br#"{"action":"opened"}"#.to_vec();
                let sig = format!("sha256={}", hex::encode(hmac256(secret.as_bytes(), &body)));
                (vec![kv("X-Hub-Signature-256", sig)], body)
            },
        },
        Recipe {
            scheme: Scheme::Stripe,
            secrets: ["whsec_stripe_a", "whsec_stripe_b"],
            sig_header: "Stripe-Signature",
            stale_after: Some(301),
            configure: no_config,
            sign: |secret, ts| {
                let body = br#"{"id":"evt_1","type":"charge.succeeded"}"#.to_vec();
                let mut msg = format!("{ts}.").into_bytes();
                msg.extend_from_slice(&body);
                let sig = hex::encode(hmac256(secret.as_bytes(), &msg));
                let v0 = hex::encode([1u8; 32]);
                (
                    vec![kv("Stripe-Signature", format!("t={ts},v1={sig},v0={v0}"))],
                    body,
                )
            },
        },
        Recipe {
            scheme: Scheme::Slack,
            secrets: ["slack-a", "slack-b"],
            sig_header: "X-Slack-Signature",
            stale_after: Some(301),
            configure: no_config,
            sign: |secret, ts| {
                let body = br#"{"type":"event_callback","event_id":"Ev1"}"#.to_vec();
                let mut msg = format!("v0:{ts}:").into_bytes();
                msg.extend_from_slice(&body);
                let sig = format!("v0={}", hex::encode(hmac256(secret.as_bytes(), &msg)));
                (
                    vec![
                        kv("X-Slack-Signature", sig),
                        kv("X-Slack-Request-Timestamp", ts.to_string()),
                    ],
                    body,
                )
            },
        },
        Recipe {
            scheme: Scheme::Shopify,
            secrets: ["shpss_a", "shpss_b"],
            sig_header: "X-Shopify-Hmac-Sha256",
            stale_after: None,
            configure: no_config,
            sign: |secret, _| {
                let body = br#"{"id":820982911946154508}"#.to_vec();
                let sig = B64.encode(hmac256(secret.as_bytes(), &body));
                (vec![kv("X-Shopify-Hmac-Sha256", sig)], body)
            },
        },
        Recipe {
            scheme: Scheme::Twilio,
            secrets: ["auth-token-a", "auth-token-b"],
            sig_header: "X-Twilio-Signature",
            stale_after: None,
            configure: no_config,
            // URL, then each form parameter sorted by name as name + value (decoded).
            sign: |secret, _| {
                let body = b"To=%2B15551234567&From=%2B15557654321&Body=hi+there".to_vec();
                let data = format!("{URL}Bodyhi thereFrom+15557654321To+15551234567");
                let sig = B64.encode(hmac1(secret.as_bytes(), data.as_bytes()));
                (
                    vec![
                        kv("X-Twilio-Signature", sig),
                        kv("Content-Type", "application/x-www-form-urlencoded"),
                    ],
                    body,
                )
            },
        },
    ]
}

/// The recipes of Paddle … PagerDuty.
fn recipes_paddle_to_pagerduty() -> Vec<Recipe> {
    vec![
        Recipe {
            scheme: Scheme::Paddle,
            secrets: ["pdl_ntf_a", "pdl_ntf_b"],
            sig_header: "Paddle-Signature",
            stale_after: Some(6),
            configure: no_config,
            sign: |secret, ts| {
                let body = br#"{"event_id":"evt_1","event_type":"x"}"#.to_vec();
                let mut msg = format!("{ts}:").into_bytes();
                msg.extend_from_slice(&body);
                let sig = hex::encode(hmac256(secret.as_bytes(), &msg));
                (
                    vec![kv("Paddle-Signature", format!("ts={ts};h1={sig}"))],
                    body,
                )
            },
        },
        Recipe {
            scheme: Scheme::Square,
            secrets: ["sq-a", "sq-b"],
            sig_header: "x-square-hmacsha256-signature",
            stale_after: None,
            configure: no_config,
            sign: |secret, _| {
                let body = br#"{"event_id":"e1"}"#.to_vec();
                let mut msg = URL.as_bytes().to_vec();
                msg.extend_from_slice(&body);
                let sig = B64.encode(hmac256(secret.as_bytes(), &msg));
                (vec![kv("x-square-hmacsha256-signature", sig)], body)
            },
        },
        Recipe {
            scheme: Scheme::Zoom,
            secrets: ["zoom-a", "zoom-b"],
            sig_header: "x-zm-signature",
            stale_after: Some(301),
            configure: no_config,
            sign: |secret, ts| {
                let body = br#"{"event":"meeting.started"}"#.to_vec();
                let mut msg = format!("v0:{ts}:").into_bytes();
                msg.extend_from_slice(&body);
                let sig = format!("v0={}", hex::encode(hmac256(secret.as_bytes(), &msg)));
                (
                    vec![
                        kv("x-zm-signature", sig),
                        kv("x-zm-request-timestamp", ts.to_string()),
                    ],
                    body,
                )
            },
        },
        Recipe {
            scheme: Scheme::Twitch,
            secrets: ["twitch-a", "twitch-b"],
            sig_header: "Twitch-Eventsub-Message-Signature",
            stale_after: Some(601),
            configure: no_config,
            sign: |secret, ts| {
                let body = br#"{"event":{}}"#.to_vec();
                let stamp = chrono::DateTime::from_timestamp(ts, 123_456_700)
                    .unwrap()
                    .to_rfc3339_opts(chrono::SecondsFormat::AutoSi, true);
                let mut msg = format!("id-1{stamp}").into_bytes();
                msg.extend_from_slice(&body);
                let sig = format!("sha256={}", hex::encode(hmac256(secret.as_bytes(), &msg)));
                (
                    vec![
                        kv("Twitch-Eventsub-Message-Id", "id-1"),
                        kv("Twitch-Eventsub-Message-Timestamp", stamp),
                        kv("Twitch-Eventsub-Message-Signature", sig),
                    ],
                    body,
                )
            },
        },
        Recipe {
            scheme: Scheme::Linear,
            secrets: ["lin-a", "lin-b"],
            sig_header: "Linear-Signature",
            stale_after: Some(61),
            configure: no_config,
            sign: |secret, ts| {
                let body = format!(
                    r#"{{"action":"create","type":"Issue","webhookTimestamp":{}}}"#,
                    ts * 1000 + 250
                )
                .into_bytes();
                let sig = hex::encode(hmac256(secret.as_bytes(), &body));
                (vec![kv("Linear-Signature", sig)], body)
            },
        },
        Recipe {
            scheme: Scheme::Pagerduty,
            secrets: ["pd-a", "pd-b"],
            sig_header: "X-PagerDuty-Signature",
            stale_after: None,
            configure: no_config,
            sign: |secret, _| {
                let body = br#"{"event":{"id":"1","event_type":"incident.triggered"}}"#.to_vec();
                let sig = hex::encode(hmac256(secret.as_bytes(), &body));
                let other = hex::encode(hmac256(b"someone else", &body));
                (
                    vec![kv("X-PagerDuty-Signature", format!("v1={other},v1={sig}"))],
                    body,
                )
            },
        },
    ]
}

/// The recipes of Intercom … the generic hmac.
fn recipes_intercom_to_hmac() -> Vec<Recipe> {
    vec![
        Recipe {
            scheme: Scheme::Intercom,
            secrets: ["ic-a", "ic-b"],
            sig_header: "X-Hub-Signature",
            stale_after: None,
            configure: no_config,
            sign: |secret, _| {
                let body = br#"{"id":"notif_1","topic":"ping"}"#.to_vec();
                let sig = format!("sha1={}", hex::encode(hmac1(secret.as_bytes(), &body)));
                (vec![kv("X-Hub-Signature", sig)], body)
            },
        },
        Recipe {
            scheme: Scheme::Mailgun,
            secrets: ["key-a", "key-b"],
            sig_header: "",
            stale_after: None,
            configure: no_config,
            sign: |secret, ts| {
                let token = "a8ce0edb2dd8301dcc6c";
                let sig = hex::encode(hmac256(
                    secret.as_bytes(),
                    format!("{ts}{token}").as_bytes(),
                ));
                let body = serde_json::json!({
                    "signature": {"timestamp": ts.to_string(), "token": token, "signature": sig},
                    "event-data": {"id": "ev-1", "event": "delivered"},
                });
                (vec![], serde_json::to_vec(&body).unwrap())
            },
        },
        Recipe {
            scheme: Scheme::GitlabToken,
            secrets: ["glpat-a", "glpat-b"],
            sig_header: "X-Gitlab-Token",
            stale_after: None,
            configure: no_config,
            sign: |secret, _| (vec![kv("X-Gitlab-Token", secret)], b"{}".to_vec()),
        },
        Recipe {
            scheme: Scheme::ApiKey,
            secrets: ["key-one", "key-two"],
            sig_header: "Authorization",
            stale_after: None,
            configure: |v| {
                v.header = Some("Authorization".into());
                v.prefix = Some("Bearer ".into());
            },
            sign: |secret, _| {
                (
                    vec![kv("Authorization", format!("Bearer {secret}"))],
                    b"{}".to_vec(),
                )
            },
        },
        Recipe {
            scheme: Scheme::BasicAuth,
            secrets: ["alice:pw-one", "bob:pw-two"],
            sig_header: "Authorization",
            stale_after: None,
            configure: no_config,
            sign: |secret, _| {
                (
                    vec![kv("Authorization", format!("Basic {}", B64.encode(secret)))],
                    b"{}".to_vec(),
                )
            },
        },
        Recipe {
            scheme: Scheme::Hmac,
            secrets: ["generic-a", "generic-b"],
            sig_header: "X-Sig",
            stale_after: Some(301),
            configure: |v| {
                v.header = Some("X-Sig".into());
                v.algorithm = Some(HmacAlgorithm::Sha512);
                v.encoding = Some(SignatureEncoding::Base64);
                v.prefix = Some("sha512=".into());
                v.signed_content = Some("{timestamp}.{id}.{url}.{body}".into());
                v.timestamp_header = Some("X-Ts".into());
                v.id_header = Some("X-Id".into());
            },
            sign: |secret, ts| {
                let body = br#"{"kind":"thing"}"#.to_vec();
                let mut msg = format!("{ts}.d-1.{URL}.").into_bytes();
                msg.extend_from_slice(&body);
                let sig = format!("sha512={}", B64.encode(hmac512(secret.as_bytes(), &msg)));
                (
                    vec![
                        kv("X-Sig", sig),
                        kv("X-Ts", ts.to_string()),
                        kv("X-Id", "d-1"),
                    ],
                    body,
                )
            },
        },
    ]
}

fn config(r: &Recipe, secrets: &[&str]) -> Verification {
    let mut v = Verification::new(r.scheme, secrets.iter().map(|s| s.to_string()).collect());
    (r.configure)(&mut v);
    v
}

fn run(v: &Verification, signed: &Signed, now: i64) -> Result<(), VerifyError> {
    let headers = hm(&signed.0);
    verify(
        v,
        &Request {
            url: URL,
            headers: &headers,
            body: &signed.1,
        },
        now,
    )
}

#[test]
fn every_recipe_verifies_rotates_and_reports_each_failure() {
    for r in recipes() {
        let [a, b] = r.secrets;
        let name = r.scheme.as_str();
        assert!(validate(&config(&r, &[a, b])).is_empty(), "{name}: config");
        let signed = (r.sign)(a, T);
        assert_eq!(run(&config(&r, &[a]), &signed, T), Ok(()), "{name}: valid");
        assert_eq!(
            run(&config(&r, &[b]), &signed, T),
            Err(VerifyError::Mismatch),
            "{name}: wrong secret"
        );
        // Rotation: the request signed with the older (second) secret is still accepted.
        assert_eq!(
            run(&config(&r, &[b, a]), &signed, T),
            Ok(()),
            "{name}: rotation"
        );
        assert_eq!(
            run(&config(&r, &[]), &signed, T),
            Err(VerifyError::Mismatch),
            "{name}: no secrets accept nothing"
        );
        if !r.sig_header.is_empty() {
            let without: Vec<_> = signed
                .0
                .iter()
                .filter(|(k, _)| !k.eq_ignore_ascii_case(r.sig_header))
                .cloned()
                .collect();
            let err = run(&config(&r, &[a]), &(without, signed.1.clone()), T).unwrap_err();
            match err {
                VerifyError::Missing(h) => {
                    assert!(h.eq_ignore_ascii_case(r.sig_header), "{name}: {h}")
                }
                other => panic!("{name}: missing header gave {other:?}"),
            }
        }
        if let Some(stale) = r.stale_after {
            let old = (r.sign)(a, T - stale);
            assert_eq!(
                run(&config(&r, &[a]), &old, T),
                Err(VerifyError::Stale),
                "{name}: stale"
            );
            let fresh_enough = (r.sign)(a, T - stale + 1);
            assert_eq!(run(&config(&r, &[a]), &fresh_enough, T), Ok(()), "{name}");
            // toleranceSeconds overrides the window; 0 switches the check off.
            let mut wide = config(&r, &[a]);
            wide.tolerance_seconds = Some(stale + 10);
            assert_eq!(run(&wide, &old, T), Ok(()), "{name}: wider tolerance");
            wide.tolerance_seconds = Some(0);
            assert_eq!(run(&wide, &(r.sign)(a, T - 100_000), T), Ok(()), "{name}");
        }
    }
}

#[test]
fn no_recipe_is_missing_for_a_shared_secret_scheme() {
    let covered: Vec<_> = recipes().iter().map(|r| r.scheme).collect();
    for s in Scheme::ALL {
        let asymmetric = matches!(s, Scheme::Sendgrid | Scheme::Discord | Scheme::None);
        assert!(asymmetric || covered.contains(&s), "{s} has no recipe");
    }
}

#[test]
fn tolerance_directions_follow_the_spec() {
    let tol = |s: Scheme, t: Option<i64>| {
        let mut v = Verification::new(s, vec!["x".into()]);
        v.tolerance_seconds = t;
        tolerance(&v)
    };
    assert_eq!(tol(Scheme::StandardWebhooks, None), Tolerance::Both(300));
    assert_eq!(tol(Scheme::Slack, None), Tolerance::Both(300));
    assert_eq!(tol(Scheme::Zoom, None), Tolerance::Both(300));
    assert_eq!(tol(Scheme::Stripe, None), Tolerance::PastOnly(300));
    assert_eq!(tol(Scheme::Paddle, None), Tolerance::PastOnly(5));
    assert_eq!(tol(Scheme::Paddle, Some(30)), Tolerance::PastOnly(30));
    assert_eq!(tol(Scheme::Twitch, None), Tolerance::PastOnly(600));
    assert_eq!(tol(Scheme::Linear, None), Tolerance::Both(60));
    assert_eq!(tol(Scheme::Github, None), Tolerance::Unchecked);
    assert_eq!(tol(Scheme::Mailgun, None), Tolerance::Unchecked);
    assert_eq!(tol(Scheme::Mailgun, Some(900)), Tolerance::Both(900));
    assert_eq!(tol(Scheme::Stripe, Some(0)), Tolerance::Unchecked);
    assert_eq!(tol(Scheme::Hmac, None), Tolerance::Unchecked);
    // Future timestamps: refused by "±" windows only.
    assert_eq!(
        Tolerance::Both(300).check(T + 301, T),
        Err(VerifyError::Stale)
    );
    assert_eq!(Tolerance::PastOnly(300).check(T + 10_000, T), Ok(()));
    assert_eq!(Tolerance::PastOnly(300).check(T - 300, T), Ok(()));
    assert_eq!(
        Tolerance::PastOnly(300).check(T - 301, T),
        Err(VerifyError::Stale)
    );
}

#[test]
fn mailgun_checks_its_timestamp_only_when_configured_and_reads_form_bodies() {
    let r = recipes()
        .into_iter()
        .find(|r| r.scheme == Scheme::Mailgun)
        .unwrap();
    let old = (r.sign)("key-a", T - 3600);
    let mut v = config(&r, &["key-a"]);
    assert_eq!(run(&v, &old, T), Ok(()));
    v.tolerance_seconds = Some(900);
    assert_eq!(run(&v, &old, T), Err(VerifyError::Stale));
    assert_eq!(
        run(&v, &(vec![], br#"{"event-data":{}}"#.to_vec()), T),
        Err(VerifyError::Missing("signature".into()))
    );
    // Legacy webhooks post the same three fields as a form.
    let sig = hex::encode(hmac256(b"key-a", format!("{T}tok").as_bytes()));
    let form = format!("timestamp={T}&token=tok&signature={sig}&event=delivered");
    assert_eq!(run(&v, &(vec![], form.into_bytes()), T), Ok(()));
}

#[test]
fn twilio_json_bodies_are_checked_through_body_sha256() {
    let body = br#"{"property": "value"}"#.to_vec();
    let url = format!(
        "https://hooks.example.com/in/src_1?bodySHA256={}",
        hex::encode(Sha256::digest(&body))
    );
    let sig = B64.encode(hmac1(b"tok", url.as_bytes()));
    let headers = hm(&[
        kv("X-Twilio-Signature", sig),
        kv("Content-Type", "application/json"),
    ]);
    let v = Verification::new(Scheme::Twilio, vec!["tok".into()]);
    let req = |body: &[u8]| {
        verify(
            &v,
            &Request {
                url: &url,
                headers: &headers,
                body,
            },
            T,
        )
    };
    assert_eq!(req(&body), Ok(()));
    // The signature only covers the URL: the body hash is what protects the body.
    assert_eq!(req(br#"{"property": "other"}"#), Err(VerifyError::Mismatch));
}

#[test]
fn twilio_accepts_the_url_with_or_without_its_default_port() {
    let v = Verification::new(Scheme::Twilio, vec!["tok".into()]);
    let signed_url = "https://hooks.example.com:443/in/src_1?x=1";
    let sig = B64.encode(hmac1(b"tok", signed_url.as_bytes()));
    let headers = hm(&[kv("X-Twilio-Signature", sig)]);
    let ok = |url: &str| {
        verify(
            &v,
            &Request {
                url,
                headers: &headers,
                body: b"",
            },
            T,
        )
    };
    assert_eq!(ok(signed_url), Ok(()));
    assert_eq!(ok("https://hooks.example.com/in/src_1?x=1"), Ok(()));
    assert_eq!(
        ok("https://hooks.example.com/in/src_2?x=1"),
        Err(VerifyError::Mismatch)
    );
    assert_eq!(
        twilio_url_variants("https://u:p@[::1]:8443/a"),
        vec!["https://u:p@[::1]:8443/a", "https://u:p@[::1]/a"]
    );
}

#[test]
fn discord_ed25519_verifies_rotates_and_refuses_tampering() {
    use ed25519_dalek::{Signer, SigningKey};
    let key_a = SigningKey::from_bytes(&[7u8; 32]);
    let key_b = SigningKey::from_bytes(&[9u8; 32]);
    let pub_a = hex::encode(key_a.verifying_key().as_bytes());
    let pub_b = hex::encode(key_b.verifying_key().as_bytes());
    let body = br#"{"type":2,"id":"1"}"#.to_vec();
    let sign = |k: &SigningKey, ts: i64| {
        let mut msg = ts.to_string().into_bytes();
        msg.extend_from_slice(&body);
        (
            vec![
                kv("X-Signature-Ed25519", hex::encode(k.sign(&msg).to_bytes())),
                kv("X-Signature-Timestamp", ts.to_string()),
            ],
            body.clone(),
        )
    };
    let v = |keys: &[&String]| {
        Verification::new(
            Scheme::Discord,
            keys.iter().map(|k| k.to_string()).collect(),
        )
    };
    assert!(validate(&v(&[&pub_a])).is_empty());
    assert_eq!(run(&v(&[&pub_a]), &sign(&key_a, T), T), Ok(()));
    assert_eq!(
        run(&v(&[&pub_b]), &sign(&key_a, T), T),
        Err(VerifyError::Mismatch)
    );
    assert_eq!(run(&v(&[&pub_b, &pub_a]), &sign(&key_a, T), T), Ok(()));
    let mut tampered = sign(&key_a, T);
    tampered.1[3] ^= 1;
    assert_eq!(run(&v(&[&pub_a]), &tampered, T), Err(VerifyError::Mismatch));
    assert_eq!(
        run(&v(&[&pub_a]), &(vec![], body.clone()), T),
        Err(VerifyError::Missing("X-Signature-Ed25519".into()))
    );
    // No window by default; toleranceSeconds turns one on.
    let old = sign(&key_a, T - 3600);
    assert_eq!(run(&v(&[&pub_a]), &old, T), Ok(()));
    let mut strict = v(&[&pub_a]);
    strict.tolerance_seconds = Some(300);
    assert_eq!(run(&strict, &old, T), Err(VerifyError::Stale));
}

#[test]
fn sendgrid_ecdsa_verifies_rotates_and_honours_a_configured_tolerance() {
    use p256::ecdsa::{signature::Signer, Signature, SigningKey};
    let key_a = SigningKey::from_slice(&[5u8; 32]).unwrap();
    let key_b = SigningKey::from_slice(&[6u8; 32]).unwrap();
    // SPKI DER built by hand: the fixed AlgorithmIdentifier of id-ecPublicKey/prime256v1,
    // then the uncompressed point as a BIT STRING.
    let spki = |k: &SigningKey| {
        let mut der = hex::decode("3059301306072a8648ce3d020106082a8648ce3d030107034200").unwrap();
        der.extend_from_slice(k.verifying_key().to_encoded_point(false).as_bytes());
        B64.encode(der)
    };
    let body = b"[{\"event\":\"processed\"}]\r\n".to_vec();
    let sign = |k: &SigningKey, ts: i64| {
        let mut msg = ts.to_string().into_bytes();
        msg.extend_from_slice(&body);
        let sig: Signature = k.sign(&msg);
        (
            vec![
                kv(
                    "X-Twilio-Email-Event-Webhook-Signature",
                    B64.encode(sig.to_der().as_bytes()),
                ),
                kv("X-Twilio-Email-Event-Webhook-Timestamp", ts.to_string()),
            ],
            body.clone(),
        )
    };
    let v = |keys: Vec<String>| Verification::new(Scheme::Sendgrid, keys);
    assert!(validate(&v(vec![spki(&key_a)])).is_empty());
    assert_eq!(run(&v(vec![spki(&key_a)]), &sign(&key_a, T), T), Ok(()));
    assert_eq!(
        run(&v(vec![spki(&key_b)]), &sign(&key_a, T), T),
        Err(VerifyError::Mismatch)
    );
    assert_eq!(
        run(&v(vec![spki(&key_b), spki(&key_a)]), &sign(&key_a, T), T),
        Ok(())
    );
    // PEM armour around the same key is accepted.
    let pem = format!(
        "-----BEGIN PUBLIC KEY-----\n{}\n-----END PUBLIC KEY-----\n",
        spki(&key_a)
    );
    assert_eq!(run(&v(vec![pem]), &sign(&key_a, T), T), Ok(()));
    let mut strict = v(vec![spki(&key_a)]);
    strict.tolerance_seconds = Some(300);
    assert_eq!(
        run(&strict, &sign(&key_a, T - 301), T),
        Err(VerifyError::Stale)
    );
    assert_eq!(
        run(&strict, &(vec![], body.clone()), T),
        Err(VerifyError::Missing(
            "X-Twilio-Email-Event-Webhook-Signature".into()
        ))
    );
}

#[test]
fn error_codes_match_the_api_contract() {
    assert_eq!(VerifyError::Stale.code(), "timestamp_out_of_tolerance");
    for e in [
        VerifyError::Mismatch,
        VerifyError::Missing("h".into()),
        VerifyError::Malformed("h".into()),
    ] {
        assert_eq!(e.code(), "invalid_signature");
    }
}

#[test]
fn none_accepts_anything_and_is_reported_as_insecure() {
    let v = Verification::new(Scheme::None, vec![]);
    assert_eq!(run(&v, &(vec![], b"anything".to_vec()), T), Ok(()));
    assert!(validate(&v).is_empty());
    assert_eq!(warnings(&v).len(), 1);
    assert!(warnings(&Verification::new(Scheme::Github, vec!["s".into()])).is_empty());
}

#[test]
fn api_key_without_its_prefix_is_malformed_and_basic_auth_wants_basic() {
    let mut v = Verification::new(Scheme::ApiKey, vec!["k".into()]);
    v.header = Some("Authorization".into());
    v.prefix = Some("Bearer ".into());
    assert!(matches!(
        run(&v, &(vec![kv("Authorization", "k")], vec![]), T),
        Err(VerifyError::Malformed(_))
    ));
    let basic = Verification::new(Scheme::BasicAuth, vec!["u:p".into()]);
    assert!(matches!(
        run(
            &basic,
            &(vec![kv("Authorization", "Bearer u:p")], vec![]),
            T
        ),
        Err(VerifyError::Malformed(_))
    ));
    assert_eq!(
        run(
            &basic,
            &(vec![kv("Authorization", "basic dTpw")], vec![]),
            T
        ),
        Ok(())
    );
}

#[test]
fn errors_never_contain_secret_material() {
    for r in recipes() {
        let [a, b] = r.secrets;
        let v = config(&r, &[b]);
        let err = run(&v, &(r.sign)(a, T), T).unwrap_err();
        let text = format!("{err} {err:?} {v:?}");
        assert!(
            !text.contains(a) && !text.contains(b),
            "{}: {text}",
            r.scheme
        );
    }
}

// --- handshakes ------------------------------------------------------------------------

fn shake(v: &Verification, headers: &[(String, String)], body: &[u8]) -> Option<Handshake> {
    let headers = hm(headers);
    handshake(
        v,
        &Request {
            url: URL,
            headers: &headers,
            body,
        },
    )
}

fn json_of(h: &Handshake) -> Value {
    assert_eq!(h.status, 200);
    assert_eq!(h.content_type, "application/json");
    serde_json::from_slice(&h.body).unwrap()
}

#[test]
fn slack_url_verification_echoes_the_challenge() {
    let v = Verification::new(Scheme::Slack, vec!["s".into()]);
    let body = br#"{"token":"Jhj5dZrVaK7ZwHHjRyZWjbDl","challenge":"3eZbrw1aBm2rZgRNFdxV2595E9CY3gmdALWMmHkvFXO7tYXAYM8P","type":"url_verification"}"#;
    let h = shake(&v, &[], body).unwrap();
    assert_eq!(
        json_of(&h),
        serde_json::json!({"challenge": "3eZbrw1aBm2rZgRNFdxV2595E9CY3gmdALWMmHkvFXO7tYXAYM8P"})
    );
    assert_eq!(shake(&v, &[], br#"{"type":"event_callback"}"#), None);
    assert_eq!(shake(&v, &[], b"token=x&command=%2Fdo"), None);
}

#[test]
fn zoom_url_validation_encrypts_the_token_with_the_secret_that_signed() {
    let body = br#"{"payload":{"plainToken":"qgg8vlvZRS6UYooatFL8Aw"},"event_ts":1654503849680,"event":"endpoint.url_validation"}"#;
    let signed_by = |secret: &str| {
        let mut msg = format!("v0:{T}:").into_bytes();
        msg.extend_from_slice(body);
        vec![
            kv(
                "x-zm-signature",
                format!("v0={}", hex::encode(hmac256(secret.as_bytes(), &msg))),
            ),
            kv("x-zm-request-timestamp", T.to_string()),
        ]
    };
    let v = Verification::new(Scheme::Zoom, vec!["new".into(), "old".into()]);
    for secret in ["new", "old"] {
        let headers = signed_by(secret);
        assert_eq!(run(&v, &(headers.clone(), body.to_vec()), T), Ok(()));
        let h = shake(&v, &headers, body).unwrap();
        let expected = hex::encode(hmac256(secret.as_bytes(), b"qgg8vlvZRS6UYooatFL8Aw"));
        assert_eq!(
            json_of(&h),
            serde_json::json!({"plainToken": "qgg8vlvZRS6UYooatFL8Aw", "encryptedToken": expected})
        );
    }
    assert_eq!(
        shake(&v, &signed_by("new"), br#"{"event":"meeting.started"}"#),
        None
    );
}

#[test]
fn twitch_callback_verification_answers_the_challenge_as_text() {
    let v = Verification::new(Scheme::Twitch, vec!["s".into()]);
    let body = br#"{"challenge":"pogchamp-kappa-360noscope-vohiyo","subscription":{"type":"channel.follow"}}"#;
    let kind = |k: &str| vec![kv("Twitch-Eventsub-Message-Type", k)];
    let h = shake(&v, &kind("webhook_callback_verification"), body).unwrap();
    assert_eq!(h.status, 200);
    assert_eq!(h.content_type, "text/plain");
    assert_eq!(h.body, b"pogchamp-kappa-360noscope-vohiyo");
    assert_eq!(shake(&v, &kind("notification"), body), None);
    assert_eq!(shake(&v, &[], body), None);
}

#[test]
fn discord_ping_is_answered_with_a_pong() {
    let v = Verification::new(Scheme::Discord, vec!["00".repeat(32)]);
    let h = shake(&v, &[], br#"{"type":1,"id":"1","application_id":"2"}"#).unwrap();
    assert_eq!(json_of(&h), serde_json::json!({"type": 1}));
    assert_eq!(shake(&v, &[], br#"{"type":2}"#), None);
    // Another scheme never answers a handshake, whatever the body says.
    let gh = Verification::new(Scheme::Github, vec!["s".into()]);
    assert_eq!(shake(&gh, &[], br#"{"type":1}"#), None);
}

// --- extraction and defaults -------------------------------------------------------------

fn ex(rule: &Extract, headers: &[(String, String)], body: &[u8]) -> Option<String> {
    let headers = hm(headers);
    extract(
        rule,
        &Request {
            url: URL,
            headers: &headers,
            body,
        },
    )
}

#[test]
fn extract_reads_headers_json_pointers_literals_and_body_hashes() {
    let body = br#"{"id":"evt_1","n":42,"f":1.5,"nested":{"a/b":"slash"},"flag":true,"e":""}"#;
    let h = vec![kv("x-github-event", "push"), kv("svix-id", "msg_2")];
    let header = |n: &str| Extract::Header(n.into());
    let json = |p: &str| Extract::Json(p.into());
    assert_eq!(
        ex(&header("X-GitHub-Event"), &h, body).as_deref(),
        Some("push")
    );
    assert_eq!(ex(&header("X-Missing"), &h, body), None);
    // Standard Webhooks names also find the Svix spelling.
    assert_eq!(
        ex(&header("webhook-id"), &h, body).as_deref(),
        Some("msg_2")
    );
    assert_eq!(ex(&json("/id"), &h, body).as_deref(), Some("evt_1"));
    assert_eq!(ex(&json("/n"), &h, body).as_deref(), Some("42"));
    assert_eq!(ex(&json("/f"), &h, body).as_deref(), Some("1.5"));
    assert_eq!(
        ex(&json("/nested/a~1b"), &h, body).as_deref(),
        Some("slash")
    );
    assert_eq!(ex(&json("/flag"), &h, body), None);
    assert_eq!(ex(&json("/e"), &h, body), None);
    assert_eq!(ex(&json("/nope"), &h, body), None);
    assert_eq!(ex(&json("/id"), &h, b"id=evt_1"), None);
    assert_eq!(
        ex(&Extract::Value("custom.event".into()), &h, body).as_deref(),
        Some("custom.event")
    );
    assert_eq!(
        ex(&Extract::BodyHash(true), &h, b"abc").as_deref(),
        Some("ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad")
    );
    assert_eq!(ex(&Extract::BodyHash(false), &h, b"abc"), None);
}

#[test]
fn extract_rules_have_the_documented_json_shape() {
    let cases = [
        (
            Extract::Header("X-GitHub-Event".into()),
            r#"{"header":"X-GitHub-Event"}"#,
        ),
        (Extract::Json("/type".into()), r#"{"json":"/type"}"#),
        (Extract::Value("x".into()), r#"{"value":"x"}"#),
        (Extract::BodyHash(true), r#"{"bodyHash":true}"#),
    ];
    for (rule, text) in cases {
        assert_eq!(serde_json::to_string(&rule).unwrap(), text);
        assert_eq!(serde_json::from_str::<Extract>(text).unwrap(), rule);
    }
}

#[test]
fn provider_defaults_follow_the_table() {
    let h = |n: &str| Extract::Header(n.into());
    let j = |p: &str| Extract::Json(p.into());
    assert_eq!(default_dedup_key(Scheme::StandardWebhooks), h("webhook-id"));
    assert_eq!(default_dedup_key(Scheme::Github), h("X-GitHub-Delivery"));
    assert_eq!(default_dedup_key(Scheme::Stripe), j("/id"));
    assert_eq!(default_dedup_key(Scheme::Slack), j("/event_id"));
    assert_eq!(default_dedup_key(Scheme::Zoom), Extract::BodyHash(true));
    assert_eq!(default_dedup_key(Scheme::Sendgrid), Extract::BodyHash(true));
    assert_eq!(default_dedup_key(Scheme::Mailgun), j("/event-data/id"));
    assert_eq!(default_dedup_key(Scheme::GitlabToken), h("Idempotency-Key"));
    assert_eq!(
        default_event_type(Scheme::Github),
        Some(h("X-GitHub-Event"))
    );
    assert_eq!(default_event_type(Scheme::Stripe), Some(j("/type")));
    assert_eq!(
        default_forward_headers(Scheme::Github),
        &["X-GitHub-Event", "X-GitHub-Delivery", "X-GitHub-Hook-ID"]
    );
    let mut hmac = Verification::new(Scheme::Hmac, vec!["s".into()]);
    assert_eq!(dedup_key_for(&hmac), Extract::BodyHash(true));
    hmac.id_header = Some("X-Delivery".into());
    hmac.header = Some("X-Sig".into());
    assert_eq!(dedup_key_for(&hmac), h("X-Delivery"));
    assert_eq!(never_forward(&hmac), vec!["x-sig".to_string()]);
    // A signature header is never among the headers forwarded by default.
    for s in Scheme::ALL {
        for f in default_forward_headers(s) {
            assert!(
                !signature_headers(s)
                    .iter()
                    .any(|x| x.eq_ignore_ascii_case(f)),
                "{s}: {f}"
            );
        }
    }
}

// --- configuration ---------------------------------------------------------------------

#[test]
fn verification_json_is_camel_case_and_unknown_fields_reach_validate() {
    let v: Verification = serde_json::from_value(serde_json::json!({
        "scheme": "hmac",
        "secrets": ["s3cr3t"],
        "toleranceSeconds": 60,
        "header": "X-Sig",
        "algorithm": "sha1",
        "encoding": "base64",
        "signedContent": "{timestamp}.{body}",
        "timestampHeader": "X-Ts",
        "colour": "blue",
    }))
    .unwrap();
    assert_eq!(v.algorithm, Some(HmacAlgorithm::Sha1));
    assert_eq!(v.encoding, Some(SignatureEncoding::Base64));
    assert_eq!(v.tolerance_seconds, Some(60));
    assert_eq!(validate(&v), vec!["verification: unknown field `colour`"]);
    let out = serde_json::to_value(&v).unwrap();
    assert!(out.get("colour").is_none());
    assert_eq!(out["signedContent"], "{timestamp}.{body}");
    assert!(!format!("{v:?}").contains("s3cr3t"));
    for s in Scheme::ALL {
        let text = serde_json::to_string(&s).unwrap();
        assert_eq!(text, format!("\"{}\"", s.as_str()));
    }
    assert!(serde_json::from_str::<Verification>(r#"{"secrets":[]}"#).is_err());
}

#[test]
fn validate_reports_every_problem_without_echoing_secrets() {
    let has = |v: &Verification, needle: &str| {
        let p = validate(v);
        assert!(
            p.iter().any(|m| m.contains(needle)),
            "{needle} not in {p:?}"
        );
    };
    let hmac = Verification::new(Scheme::Hmac, vec!["s".into()]);
    has(&hmac, "verification.header is required");
    has(
        &Verification::new(Scheme::ApiKey, vec!["k".into()]),
        "header is required",
    );
    has(
        &Verification::new(Scheme::Github, vec![]),
        "at least one secret",
    );
    has(
        &Verification::new(Scheme::Github, vec!["  ".into()]),
        "secrets[0] is empty",
    );
    has(
        &Verification::new(Scheme::Sendgrid, vec!["not-a-key-secretvalue".into()]),
        "secrets[0] must be SendGrid",
    );
    has(
        &Verification::new(Scheme::Discord, vec!["abcd".into()]),
        "Ed25519",
    );
    has(
        &Verification::new(Scheme::BasicAuth, vec!["nocolon".into()]),
        "user:password",
    );
    has(
        &Verification::new(Scheme::StandardWebhooks, vec!["whsec_***".into()]),
        "base64",
    );
    has(
        &Verification::new(Scheme::None, vec!["s".into()]),
        "must be empty",
    );
    let mut v = Verification::new(Scheme::Github, vec!["s".into()]);
    v.tolerance_seconds = Some(60);
    v.header = Some("X-Other".into());
    has(&v, "toleranceSeconds has no effect");
    has(&v, "verification.header does not apply to scheme github");
    let mut v = Verification::new(Scheme::Stripe, vec!["s".into()]);
    v.tolerance_seconds = Some(-1);
    has(&v, "0 or more");
    let mut v = hmac.clone();
    v.header = Some("bad header".into());
    v.signed_content = Some("{timestamp}.{id}.{nonce}.{body}".into());
    has(&v, "not a valid header name");
    has(&v, "unknown placeholder {nonce}");
    has(&v, "uses {timestamp} but timestampHeader");
    has(&v, "uses {id} but idHeader");
    let mut v = hmac.clone();
    v.header = Some("X-Sig".into());
    v.timestamp_header = Some("X-Ts".into());
    has(&v, "does not sign {timestamp}");
    // The offending secret's value never appears in a problem.
    let bad = Verification::new(Scheme::Sendgrid, vec!["not-a-key-secretvalue".into()]);
    assert!(validate(&bad).iter().all(|p| !p.contains("secretvalue")));
    // Plain provider configs with a secret are fine.
    for s in Scheme::ALL {
        if matches!(
            s,
            Scheme::Hmac
                | Scheme::ApiKey
                | Scheme::Sendgrid
                | Scheme::Discord
                | Scheme::BasicAuth
                | Scheme::None
        ) {
            continue;
        }
        let secret = if s == Scheme::StandardWebhooks {
            WHSEC_A
        } else {
            "s"
        };
        assert_eq!(
            validate(&Verification::new(s, vec![secret.into()])),
            Vec::<String>::new(),
            "{s}"
        );
    }
}

#[test]
fn generic_template_renders_placeholders_and_keeps_other_braces() {
    let headers = HeaderMap::new();
    let req = Request {
        url: "https://u",
        headers: &headers,
        body: b"B",
    };
    assert_eq!(
        render_template(
            "{ {body}|{url}|{timestamp}|{id}|{x}",
            &req,
            Some("1"),
            Some("i")
        ),
        b"{ B|https://u|1|i|{x}".to_vec()
    );
}
