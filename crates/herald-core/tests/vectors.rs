//! The published signature vectors in `tests/vectors/vectors.json` (the published vectors, kept in the repository): every standard-webhooks and
//! github entry must verify with Herald's signing code, and flipping one byte of the body or
//! the signature must make it fail.

use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine;
use herald_core::signing::{sign_github, verify_standard, EndpointSecret, VerifyError};
use serde_json::Value;

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

#[test]
fn standard_webhooks_vectors_verify_and_tampering_fails() {
    let std_vectors: Vec<_> = vectors()
        .into_iter()
        .filter(|v| v["scheme"] == "standard-webhooks")
        .collect();
    assert!(
        std_vectors.len() >= 2,
        "expected the published standard-webhooks vectors"
    );
    for v in std_vectors {
        let secret = EndpointSecret::parse(v["secret"].as_str().unwrap()).unwrap();
        let h = &v["headers"];
        let (id, ts, sig) = (
            h["webhook-id"].as_str().unwrap(),
            h["webhook-timestamp"].as_str().unwrap(),
            h["webhook-signature"].as_str().unwrap(),
        );
        let body = v["body"].as_str().unwrap().as_bytes();
        let now: i64 = ts.parse().unwrap();
        verify_standard(secret.key(), Some(id), Some(ts), Some(sig), body, now, 300)
            .unwrap_or_else(|e| panic!("vector {id} must verify: {e}"));
        // One byte of the body flipped.
        for at in [0, body.len() / 2, body.len() - 1] {
            assert_eq!(
                verify_standard(
                    secret.key(),
                    Some(id),
                    Some(ts),
                    Some(sig),
                    &flip(body, at),
                    now,
                    300
                ),
                Err(VerifyError::NoMatchingSignature)
            );
        }
        // One byte of the signature flipped (inside the decoded MAC).
        let mac = B64.decode(&sig[3..]).unwrap();
        let bad = format!("v1,{}", B64.encode(flip(&mac, 5)));
        assert_eq!(
            verify_standard(secret.key(), Some(id), Some(ts), Some(&bad), body, now, 300),
            Err(VerifyError::NoMatchingSignature)
        );
    }
}

#[test]
fn github_vectors_match_herald_github_scheme() {
    let gh: Vec<_> = vectors()
        .into_iter()
        .filter(|v| v["scheme"] == "github")
        .collect();
    assert!(!gh.is_empty());
    for v in gh {
        let secret = v["secret"].as_str().unwrap();
        let body = v["body"].as_str().unwrap().as_bytes();
        let expected = v["headers"]["X-Hub-Signature-256"].as_str().unwrap();
        assert_eq!(sign_github(secret, body), expected);
        assert_ne!(sign_github(secret, &flip(body, 0)), expected);
    }
}
