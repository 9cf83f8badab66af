//! Payload encryption to a receiver's public key (routing.md "Payload encryption"): JWE in
//! compact serialisation with `ECDH-ES+A256KW` (EC P-256, OKP X25519) or `RSA-OAEP-256` (RSA
//! ≥ 2048 bits) for the key and `A256GCM` for the content (RFC 7516, RFC 7518, RFC 8037).
//!
//! Owns the checks of a public JWK and the encryption of one body. Composed from RustCrypto
//! primitives so no OpenSSL is needed. It must not decrypt (Herald never holds the receiver's
//! private key) and refuses a JWK that carries private parts, so a key pasted by mistake is not
//! stored.

use aes_gcm::aead::{Aead, KeyInit, Payload};
use aes_gcm::{Aes256Gcm, Nonce};
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64URL;
use base64::Engine as _;
use rand::{CryptoRng, RngCore};
use serde_json::{json, Map, Value};
use sha2::Sha256;

/// Smallest RSA modulus accepted.
pub const MIN_RSA_BITS: usize = 2048;
/// Largest RSA modulus accepted (bigger keys only slow every delivery down).
pub const MAX_RSA_BITS: usize = 8192;
/// Longest JWK text accepted.
pub const MAX_JWK_BYTES: usize = 16 * 1024;

/// Why a JWK is refused or a body could not be encrypted.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum JweError {
    #[error("{0}")]
    Key(String),
    #[error("encryption failed: {0}")]
    Encrypt(String),
}

fn bad(msg: impl Into<String>) -> JweError {
    JweError::Key(msg.into())
}

/// A checked recipient public key.
#[derive(Clone, Debug)]
pub enum RecipientKey {
    P256(p256::PublicKey),
    X25519([u8; 32]),
    Rsa(rsa::RsaPublicKey),
}

fn member<'a>(jwk: &'a Map<String, Value>, name: &str) -> Result<&'a str, JweError> {
    jwk.get(name)
        .and_then(Value::as_str)
        .ok_or_else(|| bad(format!("`{name}` is missing or not a string")))
}

fn b64(jwk: &Map<String, Value>, name: &str) -> Result<Vec<u8>, JweError> {
    B64URL
        .decode(member(jwk, name)?)
        .map_err(|_| bad(format!("`{name}` is not base64url without padding")))
}

fn fixed32(jwk: &Map<String, Value>, name: &str) -> Result<[u8; 32], JweError> {
    b64(jwk, name)?
        .try_into()
        .map_err(|_| bad(format!("`{name}` must be 32 bytes")))
}

impl RecipientKey {
    /// Checks a public JWK: EC P-256 (a point on the curve), OKP X25519, or RSA with a
    /// 2048–8192-bit modulus. Private members (`d`, `p`, …) and `use` other than `enc` are
    /// refused.
    pub fn from_jwk(v: &Value) -> Result<Self, JweError> {
        let jwk = v.as_object().ok_or_else(|| bad("must be a JWK object"))?;
        if v.to_string().len() > MAX_JWK_BYTES {
            return Err(bad(format!("at most {MAX_JWK_BYTES} bytes")));
        }
        for private in ["d", "p", "q", "dp", "dq", "qi", "oth", "k"] {
            if jwk.contains_key(private) {
                return Err(bad(format!(
                    "carries the private member `{private}`: give the public key only"
                )));
            }
        }
        if let Some(u) = jwk.get("use") {
            if u != "enc" {
                return Err(bad("`use` must be \"enc\" when present"));
            }
        }
        match member(jwk, "kty")? {
            "EC" => {
                if member(jwk, "crv")? != "P-256" {
                    return Err(bad("EC keys must be on curve P-256"));
                }
                let (x, y) = (fixed32(jwk, "x")?, fixed32(jwk, "y")?);
                let mut sec1 = vec![4u8];
                sec1.extend_from_slice(&x);
                sec1.extend_from_slice(&y);
                p256::PublicKey::from_sec1_bytes(&sec1)
                    .map(Self::P256)
                    .map_err(|_| bad("`x`/`y` is not a point on P-256"))
            }
            "OKP" => {
                if member(jwk, "crv")? != "X25519" {
                    return Err(bad("OKP keys must be X25519"));
                }
                let x = fixed32(jwk, "x")?;
                // A low-order point would make the shared secret known to anyone.
                let probe = x25519_dalek::StaticSecret::from([7u8; 32]);
                if !probe
                    .diffie_hellman(&x25519_dalek::PublicKey::from(x))
                    .was_contributory()
                {
                    return Err(bad("`x` is a low-order X25519 point"));
                }
                Ok(Self::X25519(x))
            }
            "RSA" => {
                let n = rsa::BigUint::from_bytes_be(&b64(jwk, "n")?);
                let e = rsa::BigUint::from_bytes_be(&b64(jwk, "e")?);
                let bits = n.bits();
                if bits < MIN_RSA_BITS {
                    return Err(bad(format!(
                        "RSA keys must have at least {MIN_RSA_BITS} bits (this one has {bits})"
                    )));
                }
                rsa::RsaPublicKey::new_with_max_size(n, e, MAX_RSA_BITS)
                    .map(Self::Rsa)
                    .map_err(|e| bad(format!("not a usable RSA public key: {e}")))
            }
            other => Err(bad(format!(
                "`kty` {other:?} is not supported (EC P-256, OKP X25519 or RSA)"
            ))),
        }
    }

    fn alg(&self) -> &'static str {
        match self {
            Self::Rsa(_) => "RSA-OAEP-256",
            _ => "ECDH-ES+A256KW",
        }
    }
}

/// JWA's Concat KDF for `ECDH-ES+A256KW` without `apu`/`apv`: a 256-bit key-wrapping key.
fn kek(z: &[u8], alg: &str) -> Result<[u8; 32], JweError> {
    let mut other = Vec::new();
    other.extend_from_slice(&(alg.len() as u32).to_be_bytes());
    other.extend_from_slice(alg.as_bytes());
    other.extend_from_slice(&0u32.to_be_bytes()); // PartyUInfo: empty
    other.extend_from_slice(&0u32.to_be_bytes()); // PartyVInfo: empty
    other.extend_from_slice(&256u32.to_be_bytes()); // SuppPubInfo: key length in bits
    let mut out = [0u8; 32];
    concat_kdf::derive_key_into::<Sha256>(z, &other, &mut out)
        .map_err(|e| JweError::Encrypt(format!("key derivation: {e:?}")))?;
    Ok(out)
}

fn wrap(kek: &[u8; 32], cek: &[u8; 32]) -> Result<Vec<u8>, JweError> {
    let mut out = [0u8; 40];
    aes_kw::KekAes256::from(*kek)
        .wrap(cek, &mut out)
        .map_err(|e| JweError::Encrypt(format!("key wrap: {e:?}")))?;
    Ok(out.to_vec())
}

/// Encrypts `plaintext` to `key`: answers the compact JWE text. `kid` (the JWK's, when it has
/// one) goes into the protected header so a receiver with several keys can pick its own.
pub fn encrypt_compact(
    key: &RecipientKey,
    kid: Option<&str>,
    plaintext: &[u8],
    rng: &mut (impl RngCore + CryptoRng),
) -> Result<String, JweError> {
    let mut cek = [0u8; 32];
    rng.fill_bytes(&mut cek);
    let mut header = json!({"alg": key.alg(), "enc": "A256GCM"});
    let encrypted_key = match key {
        RecipientKey::P256(pk) => {
            let eph = p256::ecdh::EphemeralSecret::random(&mut *rng);
            let z = eph.diffie_hellman(pk);
            let point = p256::EncodedPoint::from(eph.public_key());
            let (x, y) = (point.x(), point.y());
            let (Some(x), Some(y)) = (x, y) else {
                return Err(JweError::Encrypt("ephemeral key has no coordinates".into()));
            };
            header["epk"] = json!({"kty": "EC", "crv": "P-256",
                "x": B64URL.encode(x), "y": B64URL.encode(y)});
            wrap(&kek(z.raw_secret_bytes(), key.alg())?, &cek)?
        }
        RecipientKey::X25519(pk) => {
            let eph = x25519_dalek::EphemeralSecret::random_from_rng(&mut *rng);
            let epk = x25519_dalek::PublicKey::from(&eph);
            let z = eph.diffie_hellman(&x25519_dalek::PublicKey::from(*pk));
            header["epk"] =
                json!({"kty": "OKP", "crv": "X25519", "x": B64URL.encode(epk.as_bytes())});
            wrap(&kek(z.as_bytes(), key.alg())?, &cek)?
        }
        RecipientKey::Rsa(pk) => pk
            .encrypt(&mut *rng, rsa::Oaep::new::<Sha256>(), &cek)
            .map_err(|e| JweError::Encrypt(format!("RSA-OAEP: {e}")))?,
    };
    if let Some(kid) = kid {
        header["kid"] = Value::String(kid.to_string());
    }
    let protected = B64URL.encode(header.to_string());
    let mut iv = [0u8; 12];
    rng.fill_bytes(&mut iv);
    let cipher = Aes256Gcm::new_from_slice(&cek).map_err(|e| JweError::Encrypt(e.to_string()))?;
    let sealed = cipher
        .encrypt(
            Nonce::from_slice(&iv),
            Payload {
                msg: plaintext,
                aad: protected.as_bytes(),
            },
        )
        .map_err(|e| JweError::Encrypt(e.to_string()))?;
    let (ciphertext, tag) = sealed.split_at(sealed.len() - 16);
    Ok(format!(
        "{protected}.{}.{}.{}.{}",
        B64URL.encode(encrypted_key),
        B64URL.encode(iv),
        B64URL.encode(ciphertext),
        B64URL.encode(tag)
    ))
}

#[cfg(test)]
mod tests;
