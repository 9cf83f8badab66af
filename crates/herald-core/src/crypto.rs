//! Encryption at rest for secrets (endpoint signing secrets today; inbound source secrets
//! later): XChaCha20-Poly1305 with a 32-byte key from `encryption_key` or generated into
//! `data_dir` at first start.
//!
//! Stored form: `enc:v1:<base64(24-byte nonce || ciphertext+tag)>`. Values without the prefix
//! are legacy plaintext and are read as they are (and encrypted on their next write). This
//! module only transforms bytes; it never logs or formats a key or a plaintext.

use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine;
use chacha20poly1305::aead::{Aead, AeadCore, KeyInit, OsRng};
use chacha20poly1305::{XChaCha20Poly1305, XNonce};

const PREFIX: &str = "enc:v1:";
const NONCE_LEN: usize = 24;

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum CryptoError {
    #[error("encryption_key must be base64 of exactly 32 bytes")]
    BadKey,
    #[error(
        "stored value cannot be decrypted with this encryption_key (wrong key or corrupt data)"
    )]
    Undecryptable,
}

/// Encrypts and decrypts stored secrets. `Debug` never shows the key.
#[derive(Clone)]
pub struct SecretBox {
    cipher: XChaCha20Poly1305,
}

impl std::fmt::Debug for SecretBox {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SecretBox(<key redacted>)")
    }
}

impl SecretBox {
    /// From the configured base64 text.
    pub fn from_base64(key_b64: &str) -> Result<Self, CryptoError> {
        let key = B64
            .decode(key_b64.trim())
            .map_err(|_| CryptoError::BadKey)?;
        if key.len() != 32 {
            return Err(CryptoError::BadKey);
        }
        Ok(Self {
            cipher: XChaCha20Poly1305::new_from_slice(&key).map_err(|_| CryptoError::BadKey)?,
        })
    }

    /// A fresh random key in its base64 text form.
    pub fn generate_key() -> String {
        B64.encode(XChaCha20Poly1305::generate_key(&mut OsRng))
    }

    /// A separate key for `purpose`, derived from the configured base64 text (SHA-256 of the
    /// purpose, a zero byte and the key): what one purpose seals, another cannot open, and a
    /// derived key reveals nothing about the key at rest.
    pub fn derive(key_b64: &str, purpose: &str) -> Result<Self, CryptoError> {
        use sha2::{Digest, Sha256};
        let key = B64
            .decode(key_b64.trim())
            .map_err(|_| CryptoError::BadKey)?;
        if key.len() != 32 {
            return Err(CryptoError::BadKey);
        }
        let mut h = Sha256::new();
        h.update(purpose.as_bytes());
        h.update([0u8]);
        h.update(&key);
        Self::from_base64(&B64.encode(h.finalize()))
    }

    pub fn encrypt(&self, plaintext: &str) -> String {
        let nonce = XChaCha20Poly1305::generate_nonce(&mut OsRng);
        let ct = self
            .cipher
            .encrypt(&nonce, plaintext.as_bytes())
            .expect("XChaCha20-Poly1305 encryption of an in-memory buffer cannot fail");
        let mut out = nonce.to_vec();
        out.extend_from_slice(&ct);
        format!("{PREFIX}{}", B64.encode(out))
    }

    /// Decrypts a sealed value only: anything without the `enc:v1:` prefix is refused (for
    /// values that come from outside, such as cookies, where "legacy plaintext" would let a
    /// client write its own).
    pub fn open_sealed(&self, sealed: &str) -> Result<String, CryptoError> {
        if !sealed.starts_with(PREFIX) {
            return Err(CryptoError::Undecryptable);
        }
        self.decrypt(sealed)
    }

    /// Decrypts a stored value; values without the `enc:v1:` prefix are legacy plaintext.
    pub fn decrypt(&self, stored: &str) -> Result<String, CryptoError> {
        let Some(b64) = stored.strip_prefix(PREFIX) else {
            return Ok(stored.to_string());
        };
        let raw = B64.decode(b64).map_err(|_| CryptoError::Undecryptable)?;
        if raw.len() < NONCE_LEN {
            return Err(CryptoError::Undecryptable);
        }
        let (nonce, ct) = raw.split_at(NONCE_LEN);
        let pt = self
            .cipher
            .decrypt(XNonce::from_slice(nonce), ct)
            .map_err(|_| CryptoError::Undecryptable)?;
        String::from_utf8(pt).map_err(|_| CryptoError::Undecryptable)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_derived_key_cannot_open_what_the_key_at_rest_sealed() {
        let text = SecretBox::generate_key();
        let at_rest = SecretBox::from_base64(&text).unwrap();
        let a = SecretBox::derive(&text, "console-session").unwrap();
        let b = SecretBox::derive(&text, "console-session").unwrap();
        let sealed = a.encrypt("x");
        assert_eq!(b.open_sealed(&sealed).unwrap(), "x", "same key every time");
        assert!(at_rest.open_sealed(&sealed).is_err());
        let other = SecretBox::derive(&text, "other").unwrap();
        assert!(other.open_sealed(&sealed).is_err());
        assert_eq!(
            SecretBox::derive("c2hvcnQ=", "p").unwrap_err(),
            CryptoError::BadKey
        );
    }

    #[test]
    fn round_trip_hides_plaintext_and_wrong_key_fails() {
        let k = SecretBox::from_base64(&SecretBox::generate_key()).unwrap();
        let stored = k.encrypt("whsec_secret-value");
        assert!(stored.starts_with("enc:v1:"));
        assert!(!stored.contains("secret-value"));
        assert_ne!(
            stored,
            k.encrypt("whsec_secret-value"),
            "fresh nonce per write"
        );
        assert_eq!(k.decrypt(&stored).unwrap(), "whsec_secret-value");
        let other = SecretBox::from_base64(&SecretBox::generate_key()).unwrap();
        assert_eq!(other.decrypt(&stored), Err(CryptoError::Undecryptable));
        assert_eq!(k.decrypt("legacy plaintext").unwrap(), "legacy plaintext");
        assert_eq!(
            k.open_sealed("legacy plaintext"),
            Err(CryptoError::Undecryptable)
        );
        assert_eq!(
            SecretBox::from_base64("c2hvcnQ=").unwrap_err(),
            CryptoError::BadKey
        );
    }
}
