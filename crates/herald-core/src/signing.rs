//! Outbound request signing: endpoint secrets and the `standard`, `svix` and `github` schemes.
//!
//! Owns the byte-exact construction of signature headers (Standard Webhooks: HMAC-SHA256 over
//! `{id}.{timestamp}.{body}`, `v1,<base64>`, or Ed25519 over the same content, `v1a,<base64>`,
//! for `whsk_` secrets), secret parsing and generation, and a verifier used by tests and the
//! CLI. An Ed25519 secret's private seed is only ever used to sign here; what may be shown of
//! it is its public key ([`answer_text`]). It must not decide *which* secrets are valid (rotation grace is the
//! store's and the caller's job) and must never log or format a secret.

use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine;
use hmac::{Hmac, Mac};
use rand::RngCore;
use serde::{Deserialize, Serialize};
use sha2::Sha256;
use subtle::ConstantTimeEq;

type HmacSha256 = Hmac<Sha256>;

/// Prefix of Standard Webhooks secrets.
pub const SECRET_PREFIX: &str = "whsec_";
/// Prefix of Ed25519 signing secrets (base64 of the 32-byte seed), Standard Webhooks' `v1a`.
pub const ED25519_SECRET_PREFIX: &str = "whsk_";
/// Prefix of Ed25519 public keys, the only form of an Ed25519 secret Herald shows.
pub const ED25519_PUBLIC_PREFIX: &str = "whpk_";
/// Random bytes in a generated secret (Svix uses 24; the spec asks for 24 or more).
pub const GENERATED_SECRET_BYTES: usize = 24;
/// Accepted decoded key length for user-provided secrets (Svix's bounds).
pub const MIN_KEY_BYTES: usize = 24;
pub const MAX_KEY_BYTES: usize = 64;

/// Which headers carry the signature on outbound requests.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SignatureScheme {
    /// `webhook-id`, `webhook-timestamp`, `webhook-signature` (Standard Webhooks).
    #[default]
    Standard,
    /// The same values under `svix-id`, `svix-timestamp`, `svix-signature`.
    Svix,
    /// `X-Hub-Signature-256: sha256=<hex>` over the body, keyed with the whole secret string.
    Github,
}

impl SignatureScheme {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Standard => "standard",
            Self::Svix => "svix",
            Self::Github => "github",
        }
    }
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "standard" => Some(Self::Standard),
            "svix" => Some(Self::Svix),
            "github" => Some(Self::Github),
            _ => None,
        }
    }
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum SecretError {
    #[error("secret must be base64, optionally prefixed with `whsec_`")]
    NotBase64,
    #[error("secret key must decode to between 24 and 64 bytes")]
    BadLength,
    #[error("an Ed25519 secret must be `whsk_` followed by the base64 of a 32-byte seed")]
    BadEd25519,
}

/// An endpoint signing secret in its canonical text form `whsec_<base64>`.
///
/// `Debug` is redacted on purpose so that a secret never ends up in a log line by accident.
#[derive(Clone, PartialEq, Eq)]
pub struct EndpointSecret {
    text: String,
    key: Vec<u8>,
}

impl std::fmt::Debug for EndpointSecret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("EndpointSecret(<redacted>)")
    }
}

impl EndpointSecret {
    /// A fresh random secret.
    pub fn generate() -> Self {
        let mut bytes = [0u8; GENERATED_SECRET_BYTES];
        rand::thread_rng().fill_bytes(&mut bytes);
        Self {
            text: format!("{SECRET_PREFIX}{}", B64.encode(bytes)),
            key: bytes.to_vec(),
        }
    }

    /// Parses a user-supplied secret: base64 with or without the `whsec_` prefix.
    pub fn parse(s: &str) -> Result<Self, SecretError> {
        let b64 = s.strip_prefix(SECRET_PREFIX).unwrap_or(s);
        let key = B64.decode(b64).map_err(|_| SecretError::NotBase64)?;
        if !(MIN_KEY_BYTES..=MAX_KEY_BYTES).contains(&key.len()) {
            return Err(SecretError::BadLength);
        }
        Ok(Self {
            text: format!("{SECRET_PREFIX}{b64}"),
            key,
        })
    }

    /// A fresh random Ed25519 secret (`whsk_…`).
    pub fn generate_ed25519() -> Self {
        let mut seed = [0u8; 32];
        rand::thread_rng().fill_bytes(&mut seed);
        Self {
            text: format!("{ED25519_SECRET_PREFIX}{}", B64.encode(seed)),
            key: seed.to_vec(),
        }
    }

    /// Parses an endpoint's signing secret: an Ed25519 `whsk_` seed, or what [`Self::parse`]
    /// accepts. Sources' verification secrets use [`Self::parse`], never this.
    pub fn parse_signing(s: &str) -> Result<Self, SecretError> {
        let Some(b64) = s.strip_prefix(ED25519_SECRET_PREFIX) else {
            return Self::parse(s);
        };
        match B64.decode(b64) {
            Ok(seed) if seed.len() == 32 => Ok(Self {
                text: s.to_string(),
                key: seed,
            }),
            _ => Err(SecretError::BadEd25519),
        }
    }

    /// Whether this secret signs with Ed25519 (`v1a`) rather than HMAC (`v1`).
    pub fn is_ed25519(&self) -> bool {
        self.text.starts_with(ED25519_SECRET_PREFIX)
    }

    /// Parses a secret that was stored by Herald itself. Stored secrets were validated on the
    /// way in, but the base64 part is decoded leniently so that a legacy length never blocks
    /// delivery.
    pub fn from_stored(s: &str) -> Result<Self, SecretError> {
        if s.starts_with(ED25519_SECRET_PREFIX) {
            return Self::parse_signing(s);
        }
        let b64 = s.strip_prefix(SECRET_PREFIX).unwrap_or(s);
        let key = B64.decode(b64).map_err(|_| SecretError::NotBase64)?;
        Ok(Self {
            text: s.to_string(),
            key,
        })
    }

    /// The canonical `whsec_…` text, as returned by `GET …/secret`.
    pub fn expose(&self) -> &str {
        &self.text
    }

    /// The HMAC key bytes (base64-decoded part after `whsec_`).
    pub fn key(&self) -> &[u8] {
        &self.key
    }
}

/// `v1,<base64 HMAC-SHA256(key, "{id}.{timestamp}.{body}")>`.
pub fn sign_standard(key: &[u8], msg_id: &str, timestamp: i64, body: &[u8]) -> String {
    let mut mac = HmacSha256::new_from_slice(key).expect("HMAC accepts any key length");
    mac.update(msg_id.as_bytes());
    mac.update(b".");
    mac.update(timestamp.to_string().as_bytes());
    mac.update(b".");
    mac.update(body);
    format!("v1,{}", B64.encode(mac.finalize().into_bytes()))
}

fn ed25519_key(seed: &[u8]) -> Option<ed25519_dalek::SigningKey> {
    let seed: &[u8; 32] = seed.try_into().ok()?;
    Some(ed25519_dalek::SigningKey::from_bytes(seed))
}

/// `v1a,<base64 Ed25519(seed, "{id}.{timestamp}.{body}")>`; `None` for a seed that is not 32
/// bytes (never stored: [`EndpointSecret::parse_signing`] checks it).
pub fn sign_v1a(seed: &[u8], msg_id: &str, timestamp: i64, body: &[u8]) -> Option<String> {
    use ed25519_dalek::Signer;
    let key = ed25519_key(seed)?;
    let mut content = Vec::with_capacity(msg_id.len() + body.len() + 24);
    content.extend_from_slice(msg_id.as_bytes());
    content.push(b'.');
    content.extend_from_slice(timestamp.to_string().as_bytes());
    content.push(b'.');
    content.extend_from_slice(body);
    Some(format!("v1a,{}", B64.encode(key.sign(&content).to_bytes())))
}

/// What `GET …/secret` (and anything else that shows a secret) may show of a stored secret:
/// an HMAC secret as it is, an Ed25519 secret as its public key `whpk_<base64>`.
pub fn answer_text(stored: &str) -> String {
    match EndpointSecret::from_stored(stored) {
        Ok(s) if s.is_ed25519() => match ed25519_key(s.key()) {
            Some(k) => format!(
                "{ED25519_PUBLIC_PREFIX}{}",
                B64.encode(k.verifying_key().to_bytes())
            ),
            None => String::new(),
        },
        _ => stored.to_string(),
    }
}

/// `sha256=<hex HMAC-SHA256(secret text, body)>` as GitHub sends it.
pub fn sign_github(secret_text: &str, body: &[u8]) -> String {
    let mut mac =
        HmacSha256::new_from_slice(secret_text.as_bytes()).expect("HMAC accepts any key length");
    mac.update(body);
    format!("sha256={}", hex::encode(mac.finalize().into_bytes()))
}

/// The signature headers for one attempt. `secrets` are the currently valid secrets, newest
/// first (more than one only during a rotation grace period).
pub fn signature_headers(
    scheme: SignatureScheme,
    secrets: &[EndpointSecret],
    msg_id: &str,
    timestamp: i64,
    body: &[u8],
) -> Vec<(&'static str, String)> {
    let ts = timestamp.to_string();
    let joined = || {
        secrets
            .iter()
            .filter_map(|s| match s.is_ed25519() {
                true => sign_v1a(s.key(), msg_id, timestamp, body),
                false => Some(sign_standard(s.key(), msg_id, timestamp, body)),
            })
            .collect::<Vec<_>>()
            .join(" ")
    };
    match scheme {
        SignatureScheme::Standard => vec![
            ("webhook-id", msg_id.to_string()),
            ("webhook-timestamp", ts),
            ("webhook-signature", joined()),
        ],
        SignatureScheme::Svix => vec![
            ("svix-id", msg_id.to_string()),
            ("svix-timestamp", ts),
            ("svix-signature", joined()),
        ],
        // GitHub's header has room for one HMAC signature only: the newest HMAC secret signs.
        SignatureScheme::Github => {
            let mut h = vec![
                ("x-webhook-id", msg_id.to_string()),
                ("x-webhook-timestamp", ts),
            ];
            if let Some(newest) = secrets.iter().find(|s| !s.is_ed25519()) {
                h.push(("x-hub-signature-256", sign_github(newest.expose(), body)));
            }
            h
        }
    }
}

/// Why a Standard Webhooks signature did not verify.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum VerifyError {
    #[error("missing header {0}")]
    MissingHeader(&'static str),
    #[error("malformed header {0}")]
    MalformedHeader(&'static str),
    #[error("timestamp outside tolerance ({skew_seconds} s away)")]
    TimestampOutOfTolerance { skew_seconds: i64 },
    #[error("no signature matches the secret")]
    NoMatchingSignature,
}

/// Verifies a Standard Webhooks request the way the official libraries do: the timestamp must
/// be within `tolerance_s` of `now_s`, and one `v1,` signature in the space-separated list must
/// match (constant-time comparison).
pub fn verify_standard(
    key: &[u8],
    msg_id: Option<&str>,
    timestamp: Option<&str>,
    signature: Option<&str>,
    body: &[u8],
    now_s: i64,
    tolerance_s: i64,
) -> Result<(), VerifyError> {
    let msg_id = msg_id.ok_or(VerifyError::MissingHeader("webhook-id"))?;
    let ts_text = timestamp.ok_or(VerifyError::MissingHeader("webhook-timestamp"))?;
    let sigs = signature.ok_or(VerifyError::MissingHeader("webhook-signature"))?;
    let ts: i64 = ts_text
        .trim()
        .parse()
        .map_err(|_| VerifyError::MalformedHeader("webhook-timestamp"))?;
    let skew = now_s - ts;
    if skew.abs() > tolerance_s {
        return Err(VerifyError::TimestampOutOfTolerance { skew_seconds: skew });
    }
    let expected = sign_standard(key, msg_id, ts, body);
    let expected_b64 = &expected.as_bytes()[3..];
    let mut any_v1 = false;
    for part in sigs.split(' ') {
        let Some(b64) = part.strip_prefix("v1,") else {
            continue;
        };
        any_v1 = true;
        if bool::from(b64.as_bytes().ct_eq(expected_b64)) {
            return Ok(());
        }
    }
    if any_v1 {
        Err(VerifyError::NoMatchingSignature)
    } else {
        Err(VerifyError::MalformedHeader("webhook-signature"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spec_vector_from_delivery_md() {
        let s = EndpointSecret::parse("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw").unwrap();
        let sig = sign_standard(
            s.key(),
            "msg_p5jXN8AQM9LWM0D4loKWxJek",
            1614265330,
            br#"{"test": 2432232314}"#,
        );
        assert_eq!(sig, "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=");
    }

    #[test]
    fn secrets_parse_with_and_without_prefix_and_reject_bad_lengths() {
        let a = EndpointSecret::parse("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw").unwrap();
        let b = EndpointSecret::parse("MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw").unwrap();
        assert_eq!(a, b);
        assert_eq!(
            EndpointSecret::parse("whsec_c2hvcnQ="),
            Err(SecretError::BadLength)
        );
        assert_eq!(
            EndpointSecret::parse("whsec_***"),
            Err(SecretError::NotBase64)
        );
        let g = EndpointSecret::generate();
        assert!(g.expose().starts_with("whsec_"));
        assert_eq!(EndpointSecret::parse(g.expose()).unwrap(), g);
        assert!(!format!("{g:?}").contains(&g.expose()[6..]));
    }

    #[test]
    fn rotation_signs_with_every_secret_newest_first() {
        let new = EndpointSecret::generate();
        let old = EndpointSecret::generate();
        let h = signature_headers(
            SignatureScheme::Standard,
            &[new.clone(), old.clone()],
            "msg_1",
            10,
            b"{}",
        );
        let sig = &h.iter().find(|(k, _)| *k == "webhook-signature").unwrap().1;
        let parts: Vec<_> = sig.split(' ').collect();
        assert_eq!(parts.len(), 2);
        assert_eq!(parts[0], sign_standard(new.key(), "msg_1", 10, b"{}"));
        assert_eq!(parts[1], sign_standard(old.key(), "msg_1", 10, b"{}"));
        for s in [&new, &old] {
            verify_standard(
                s.key(),
                Some("msg_1"),
                Some("10"),
                Some(sig),
                b"{}",
                10,
                300,
            )
            .unwrap();
        }
    }

    #[test]
    fn ed25519_secrets_sign_v1a_and_show_only_their_public_key() {
        use ed25519_dalek::Verifier;
        // RFC 8032 test 1: this seed has public key d75a9801…
        let seed = hex::decode("9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60")
            .unwrap();
        let text = format!("whsk_{}", B64.encode(&seed));
        let s = EndpointSecret::parse_signing(&text).unwrap();
        assert!(s.is_ed25519());
        assert_eq!(EndpointSecret::from_stored(&text).unwrap(), s);
        let public = answer_text(&text);
        let pk = B64.decode(public.strip_prefix("whpk_").unwrap()).unwrap();
        assert_eq!(
            hex::encode(&pk),
            "d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a"
        );
        assert!(!public.contains(&text[5..]));
        let sig = sign_v1a(s.key(), "msg_1", 10, b"{}").unwrap();
        let raw = B64.decode(sig.strip_prefix("v1a,").unwrap()).unwrap();
        let vk = ed25519_dalek::VerifyingKey::from_bytes(&pk.try_into().unwrap()).unwrap();
        let sig = ed25519_dalek::Signature::from_slice(&raw).unwrap();
        vk.verify(b"msg_1.10.{}", &sig).unwrap();
        assert!(vk.verify(b"msg_1.11.{}", &sig).is_err());
        // During a rotation from HMAC to Ed25519 both sign, newest first.
        let old = EndpointSecret::generate();
        let h = signature_headers(
            SignatureScheme::Standard,
            &[s.clone(), old.clone()],
            "m",
            1,
            b"x",
        );
        let v = &h.iter().find(|(k, _)| *k == "webhook-signature").unwrap().1;
        let parts: Vec<_> = v.split(' ').collect();
        assert!(
            parts[0].starts_with("v1a,") && parts[1].starts_with("v1,"),
            "{v}"
        );
        assert_eq!(answer_text(old.expose()), old.expose());
        for bad in ["whsk_", "whsk_c2hvcnQ=", "whsk_***"] {
            assert_eq!(
                EndpointSecret::parse_signing(bad),
                Err(SecretError::BadEd25519)
            );
        }
        // Sources' parser does not take Ed25519 secrets.
        assert!(EndpointSecret::parse(&text).is_err());
        let g = EndpointSecret::generate_ed25519();
        assert!(g.is_ed25519() && !format!("{g:?}").contains(&g.expose()[5..]));
    }

    #[test]
    fn github_scheme_matches_the_github_docs_vector() {
        // GitHub docs: secret "It's a Secret to Everybody", body "Hello, World!".
        assert_eq!(
            sign_github("It's a Secret to Everybody", b"Hello, World!"),
            "sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17"
        );
    }

    #[test]
    fn verify_reports_each_failure_reason() {
        let s = EndpointSecret::generate();
        let sig = sign_standard(s.key(), "msg_1", 1000, b"{}");
        let v = |id, ts, sig: Option<&str>, body: &[u8], now| {
            verify_standard(s.key(), id, ts, sig, body, now, 300)
        };
        assert_eq!(
            v(Some("msg_1"), Some("1000"), Some(&sig), b"{}", 1000),
            Ok(())
        );
        assert_eq!(
            v(None, Some("1000"), Some(&sig), b"{}", 1000),
            Err(VerifyError::MissingHeader("webhook-id"))
        );
        assert_eq!(
            v(Some("msg_1"), Some("x"), Some(&sig), b"{}", 1000),
            Err(VerifyError::MalformedHeader("webhook-timestamp"))
        );
        assert_eq!(
            v(Some("msg_1"), Some("1000"), Some(&sig), b"{}", 1301),
            Err(VerifyError::TimestampOutOfTolerance { skew_seconds: 301 })
        );
        assert_eq!(
            v(Some("msg_1"), Some("1000"), Some(&sig), b"{ }", 1000),
            Err(VerifyError::NoMatchingSignature)
        );
        assert_eq!(
            v(Some("msg_1"), Some("1000"), Some("v2,abc"), b"{}", 1000),
            Err(VerifyError::MalformedHeader("webhook-signature"))
        );
    }
}
