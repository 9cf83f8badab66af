use super::*;
use serde_json::json;

/// Decrypts what [`encrypt_compact`] produced for an ECDH-ES+A256KW key, the way a receiver
/// would (only the tests decrypt; the Python suite checks with an independent library).
fn decrypt_ecdh(jwe: &str, shared: impl Fn(&Value) -> Vec<u8>) -> (Value, Vec<u8>) {
    let parts: Vec<_> = jwe.split('.').collect();
    assert_eq!(parts.len(), 5);
    let header: Value = serde_json::from_slice(&B64URL.decode(parts[0]).unwrap()).unwrap();
    assert_eq!(header["alg"], "ECDH-ES+A256KW");
    assert_eq!(header["enc"], "A256GCM");
    let z = shared(&header["epk"]);
    let kek = kek(&z, "ECDH-ES+A256KW").unwrap();
    let mut cek = [0u8; 32];
    aes_kw::KekAes256::from(kek)
        .unwrap(&B64URL.decode(parts[1]).unwrap(), &mut cek)
        .unwrap();
    let mut sealed = B64URL.decode(parts[3]).unwrap();
    sealed.extend(B64URL.decode(parts[4]).unwrap());
    let iv = B64URL.decode(parts[2]).unwrap();
    let plain = Aes256Gcm::new_from_slice(&cek)
        .unwrap()
        .decrypt(
            Nonce::from_slice(&iv),
            Payload {
                msg: &sealed,
                aad: parts[0].as_bytes(),
            },
        )
        .unwrap();
    (header, plain)
}

#[test]
fn p256_round_trip() {
    let sk = p256::SecretKey::random(&mut rand::thread_rng());
    let point = p256::EncodedPoint::from(sk.public_key());
    let jwk = json!({"kty": "EC", "crv": "P-256", "kid": "k1",
        "x": B64URL.encode(point.x().unwrap()), "y": B64URL.encode(point.y().unwrap())});
    let key = RecipientKey::from_jwk(&jwk).unwrap();
    let body = br#"{"amount": 100}"#;
    let jwe = encrypt_compact(&key, Some("k1"), body, &mut rand::thread_rng()).unwrap();
    let (header, plain) = decrypt_ecdh(&jwe, |epk| {
        let mut sec1 = vec![4u8];
        sec1.extend(B64URL.decode(epk["x"].as_str().unwrap()).unwrap());
        sec1.extend(B64URL.decode(epk["y"].as_str().unwrap()).unwrap());
        let epk = p256::PublicKey::from_sec1_bytes(&sec1).unwrap();
        p256::ecdh::diffie_hellman(sk.to_nonzero_scalar(), epk.as_affine())
            .raw_secret_bytes()
            .to_vec()
    });
    assert_eq!(plain, body);
    assert_eq!(header["kid"], "k1");
    // Every encryption is fresh.
    let again = encrypt_compact(&key, None, body, &mut rand::thread_rng()).unwrap();
    assert_ne!(again, jwe);
}

#[test]
fn x25519_round_trip() {
    let sk = x25519_dalek::StaticSecret::random_from_rng(rand::thread_rng());
    let pk = x25519_dalek::PublicKey::from(&sk);
    let jwk = json!({"kty": "OKP", "crv": "X25519", "x": B64URL.encode(pk.as_bytes())});
    let key = RecipientKey::from_jwk(&jwk).unwrap();
    let body = b"\x00binary\xffbytes";
    let jwe = encrypt_compact(&key, None, body, &mut rand::thread_rng()).unwrap();
    let (header, plain) = decrypt_ecdh(&jwe, |epk| {
        let x: [u8; 32] = B64URL
            .decode(epk["x"].as_str().unwrap())
            .unwrap()
            .try_into()
            .unwrap();
        sk.diffie_hellman(&x25519_dalek::PublicKey::from(x))
            .as_bytes()
            .to_vec()
    });
    assert_eq!(plain, body);
    assert!(header.get("kid").is_none());
}

#[test]
fn bad_keys_are_refused_with_a_reason() {
    let x = B64URL.encode([9u8; 32]);
    let small_n = B64URL.encode([0xffu8; 128]); // 1024 bits
    let cases = [
        (json!("a string"), "JWK object"),
        (json!({"kty": "oct", "k": "AAAA"}), "private member `k`"),
        (json!({"kty": "XYZ"}), "not supported"),
        (json!({"crv": "P-256"}), "`kty`"),
        (
            json!({"kty": "EC", "crv": "P-384", "x": x, "y": x}),
            "P-256",
        ),
        (
            json!({"kty": "EC", "crv": "P-256", "x": x, "y": x}),
            "not a point",
        ),
        (
            json!({"kty": "EC", "crv": "P-256", "x": "***", "y": x}),
            "base64url",
        ),
        (
            json!({"kty": "EC", "crv": "P-256", "x": "AAAA", "y": x}),
            "32 bytes",
        ),
        (json!({"kty": "OKP", "crv": "Ed25519", "x": x}), "X25519"),
        (
            json!({"kty": "OKP", "crv": "X25519", "x": B64URL.encode([0u8; 32])}),
            "low-order",
        ),
        (
            json!({"kty": "OKP", "crv": "X25519", "x": x, "d": x}),
            "private member `d`",
        ),
        (
            json!({"kty": "OKP", "crv": "X25519", "x": x, "use": "sig"}),
            "`use`",
        ),
        (
            json!({"kty": "RSA", "n": small_n, "e": "AQAB"}),
            "at least 2048 bits",
        ),
        (json!({"kty": "RSA", "n": small_n}), "`e`"),
    ];
    for (jwk, want) in cases {
        match RecipientKey::from_jwk(&jwk) {
            Err(JweError::Key(m)) => assert!(m.contains(want), "{jwk}: {m} (wanted {want})"),
            other => panic!("{jwk}: {other:?}"),
        }
    }
    // A 2048-bit modulus with a valid exponent is accepted.
    let mut n = vec![0xffu8; 256];
    n[255] = 0xfd;
    let ok = json!({"kty": "RSA", "n": B64URL.encode(&n), "e": "AQAB", "use": "enc"});
    assert!(RecipientKey::from_jwk(&ok).is_ok());
}
