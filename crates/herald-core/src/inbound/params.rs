//! Signature headers written as a `k=v` list with a timestamp and one or more signatures
//! (`t=…,v1=…,v1=…`, `ts=…;h1=…`), signed as `timestamp + joiner + body`.
//!
//! The providers that use this shape declare a [`Params`] layout; this file owns the parsing
//! and the check, and knows no provider by name.

use super::digest::{decode_hex, match_any, utf8_keys};
use super::request::{parse_ts, require};
use super::{HmacAlgorithm, Request, Verification, VerifyError};

/// The layout of a `k=v` signature header.
pub(crate) struct Params {
    pub(crate) header: &'static str,
    pub(crate) separator: char,
    /// Key of the (unix seconds) timestamp.
    pub(crate) timestamp: &'static str,
    /// Key of a hex HMAC-SHA256; repeated during a provider-side rotation. Other keys (older
    /// versions, unknown schemes) are ignored, as the providers' libraries do.
    pub(crate) signature: &'static str,
    /// What stands between the timestamp and the body in the signed bytes.
    pub(crate) joiner: &'static [u8],
}

impl Params {
    /// The timestamp of a request one of whose signatures (keyed with the secret text) matched;
    /// the caller checks it against its tolerance only then.
    pub(crate) fn signed_at(&self, v: &Verification, req: &Request) -> Result<i64, VerifyError> {
        let h = self.header;
        let value = require(req, h)?;
        let mut t = None;
        let mut cands = Vec::new();
        for item in value.split(self.separator) {
            match item.trim().split_once('=') {
                Some((k, ts)) if k == self.timestamp => t = Some(ts),
                Some((k, sig)) if k == self.signature => cands.extend(decode_hex(sig)),
                _ => {}
            }
        }
        let t =
            t.ok_or_else(|| VerifyError::Malformed(format!("{h} has no {}=", self.timestamp)))?;
        let ts = parse_ts(t, &format!("{h} {}", self.timestamp))?;
        let parts: [&[u8]; 3] = [t.as_bytes(), self.joiner, req.body];
        match_any(HmacAlgorithm::Sha256, &utf8_keys(v), &parts, &cands, h)?;
        Ok(ts)
    }
}
