//! MACs, hashes, decoders and constant-time comparisons shared by the providers, including the
//! common shapes ("a MAC of these bytes, written in this header as hex after a prefix").
//!
//! Every comparison here is constant-time ([`subtle`]); callers must not compare MACs or
//! secrets any other way. No provider is named in this file.

use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine;
use hmac::digest::KeyInit;
use hmac::{Hmac, Mac};
use sha1::Sha1;
use sha2::{Digest, Sha256, Sha512};
use subtle::ConstantTimeEq;

use super::request::{parse_ts, require};
use super::{HmacAlgorithm, Request, Tolerance, Verification, VerifyError};

/// The HMAC of the concatenation of `parts`.
pub(crate) fn mac(alg: HmacAlgorithm, key: &[u8], parts: &[&[u8]]) -> Vec<u8> {
    fn run<M: Mac + KeyInit>(key: &[u8], parts: &[&[u8]]) -> Vec<u8> {
        let mut m = <M as KeyInit>::new_from_slice(key).expect("HMAC accepts any key length");
        for p in parts {
            m.update(p);
        }
        m.finalize().into_bytes().to_vec()
    }
    match alg {
        HmacAlgorithm::Sha1 => run::<Hmac<Sha1>>(key, parts),
        HmacAlgorithm::Sha256 => run::<Hmac<Sha256>>(key, parts),
        HmacAlgorithm::Sha512 => run::<Hmac<Sha512>>(key, parts),
    }
}

/// Constant-time equality of two MACs (their length is public).
pub(crate) fn ct_eq(a: &[u8], b: &[u8]) -> bool {
    a.ct_eq(b).into()
}

/// Constant-time equality of a presented credential with a stored one. Both sides are hashed
/// first so that neither the content nor the length of the stored secret leaks through timing.
fn ct_eq_secret(presented: &[u8], stored: &[u8]) -> bool {
    let a = Sha256::digest(presented);
    let b = Sha256::digest(stored);
    a.ct_eq(&b).into()
}

/// Lower-case hex SHA-256 of `bytes`.
pub fn sha256_hex(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

pub(crate) fn decode_hex(s: &str) -> Option<Vec<u8>> {
    hex::decode(s.trim()).ok()
}

pub(crate) fn decode_b64(s: &str) -> Option<Vec<u8>> {
    B64.decode(s.trim()).ok()
}

/// The configured secrets as UTF-8 key bytes (most providers key the HMAC with the secret text).
pub(crate) fn utf8_keys(v: &Verification) -> Vec<Vec<u8>> {
    v.secrets.iter().map(|s| s.as_bytes().to_vec()).collect()
}

/// Accepts when any key's MAC over `parts` equals any presented candidate.
///
/// `candidates` are the already-decoded signatures of the request; undecodable ones were dropped
/// by the caller, so an empty list means the header held nothing usable.
pub(crate) fn match_any(
    alg: HmacAlgorithm,
    keys: &[Vec<u8>],
    parts: &[&[u8]],
    candidates: &[Vec<u8>],
    header_name: &str,
) -> Result<(), VerifyError> {
    if candidates.is_empty() {
        return Err(VerifyError::Malformed(format!(
            "{header_name} holds no signature in the expected format"
        )));
    }
    for key in keys {
        let expected = mac(alg, key, parts);
        // No early exit inside the candidate loop: the answer may leak, the position may not.
        let hit = candidates
            .iter()
            .fold(false, |acc, c| acc | ct_eq(&expected, c));
        if hit {
            return Ok(());
        }
    }
    Err(VerifyError::Mismatch)
}

/// Accepts when the presented credential equals one of the secrets (compared hashed).
pub(crate) fn match_secret(v: &Verification, presented: &[u8]) -> Result<(), VerifyError> {
    let hit = v
        .secrets
        .iter()
        .fold(false, |acc, s| acc | ct_eq_secret(presented, s.as_bytes()));
    if hit {
        Ok(())
    } else {
        Err(VerifyError::Mismatch)
    }
}

/// `sha256=<hex>` and the like: the one signature after `prefix`, if it decodes.
pub(crate) fn prefixed_hex(value: &str, prefix: &str) -> Vec<Vec<u8>> {
    value
        .strip_prefix(prefix)
        .and_then(decode_hex)
        .into_iter()
        .collect()
}

/// How a provider writes one MAC in its header.
#[derive(Clone, Copy)]
pub(crate) enum Written {
    /// Lower- or upper-case hex after a fixed prefix (`sha256=`, `v0=`, or none).
    Hex(&'static str),
    /// Standard base64, nothing else.
    Base64,
}

impl Written {
    /// The decoded signature of a header value (empty when it does not decode).
    pub(crate) fn decode(self, value: &str) -> Vec<Vec<u8>> {
        match self {
            Written::Hex(prefix) => prefixed_hex(value, prefix),
            Written::Base64 => decode_b64(value).into_iter().collect(),
        }
    }
}

/// The most common shape: `header` carries one MAC (keyed with the secret text) of `parts`.
pub(crate) fn header_mac(
    v: &Verification,
    req: &Request,
    (alg, header, written): (HmacAlgorithm, &str, Written),
    parts: &[&[u8]],
) -> Result<(), VerifyError> {
    let candidates = written.decode(require(req, header)?);
    match_any(alg, &utf8_keys(v), parts, &candidates, header)
}

/// `timestamp` text followed by the body: what SendGrid and Discord sign.
fn timestamp_then_body(ts_text: &str, body: &[u8]) -> Vec<u8> {
    let mut signed = Vec::with_capacity(ts_text.len() + body.len());
    signed.extend_from_slice(ts_text.as_bytes());
    signed.extend_from_slice(body);
    signed
}

/// Slack's `v0` shape, also Zoom's: `v0=<hex>` HMAC-SHA256 over `v0:{timestamp}:{body}`, the
/// timestamp (unix seconds) in its own header.
pub(crate) struct V0 {
    pub(crate) ts_header: &'static str,
    pub(crate) sig_header: &'static str,
}

impl V0 {
    /// The timestamp of a request whose signature one of the secrets made (the caller checks
    /// it against its tolerance only then).
    pub(crate) fn signed_at(&self, v: &Verification, req: &Request) -> Result<i64, VerifyError> {
        // Both headers are required before anything is parsed: the order of the `Missing`
        // errors is part of the behaviour.
        let ts_text = require(req, self.ts_header)?;
        require(req, self.sig_header)?;
        let ts = parse_ts(ts_text, self.ts_header)?;
        self.check(&utf8_keys(v), req)?;
        Ok(ts)
    }

    /// The secret that made the signature (during a rotation, the one the provider uses).
    pub(crate) fn signed_with<'v>(&self, v: &'v Verification, req: &Request) -> Option<&'v str> {
        let hit = v
            .secrets
            .iter()
            .find(|s| self.check(&[s.as_bytes().to_vec()], req).is_ok());
        hit.map(String::as_str)
    }

    fn check(&self, keys: &[Vec<u8>], req: &Request) -> Result<(), VerifyError> {
        let ts_text = require(req, self.ts_header)?;
        let candidates = prefixed_hex(require(req, self.sig_header)?, "v0=");
        let parts: [&[u8]; 4] = [b"v0:", ts_text.as_bytes(), b":", req.body];
        match_any(
            HmacAlgorithm::Sha256,
            keys,
            &parts,
            &candidates,
            self.sig_header,
        )
    }
}

/// A public-key signature over `timestamp + body` (SendGrid, Discord): refused unless one of
/// the configured keys (`key` parses a secret; unparsable ones are skipped) verifies it; then
/// the timestamp, read only when a window applies.
pub(crate) fn public_key_check<K>(
    v: &Verification,
    (key, verifies): (fn(&str) -> Option<K>, impl Fn(&K, &[u8]) -> bool),
    (ts_name, ts_text, body): (&str, &str, &[u8]),
    (tol, now): (Tolerance, i64),
) -> Result<(), VerifyError> {
    let signed = timestamp_then_body(ts_text, body);
    let hit = v
        .secrets
        .iter()
        .filter_map(|s| key(s))
        .any(|k| verifies(&k, &signed));
    if !hit {
        return Err(VerifyError::Mismatch);
    }
    if tol == Tolerance::Unchecked {
        return Ok(());
    }
    tol.check(parse_ts(ts_text, ts_name)?, now)
}
