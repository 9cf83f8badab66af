//! Inbound verification: deciding whether a request that arrived at a source really comes from
//! the provider the source is configured for.
//!
//! This module owns the per-provider rules of `shared/spec/inbound.md` ("Provider schemes"):
//! which header carries the signature, which bytes are signed, how the key is derived from the
//! configured secret, how far the provider's timestamp may drift, and the provider handshakes
//! (Slack, Zoom, Twitch, Discord) that must be answered before deduplication. It also knows each
//! provider's defaults: where the event type and the deduplication key come from, which headers
//! are worth forwarding and which must never be forwarded.
//!
//! It is pure: it sees a [`Request`] (URL, headers, raw body bytes) and the clock as an argument,
//! and answers. It must not do I/O — no storage (rotation grace, the request log and dedup
//! windows are the store's job), no HTTP (status codes other than the handshake answers are the
//! API layer's job) and no logging. Secrets never appear in an error or in `Debug` output.
//!
//! Every signature comparison is constant-time ([`subtle`]) and runs over the raw body bytes:
//! re-serialising JSON would change the bytes the provider signed.

use std::collections::BTreeMap;

use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine;
use hmac::digest::KeyInit;
use hmac::{Hmac, Mac};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use sha1::Sha1;
use sha2::{Digest, Sha256, Sha512};
use subtle::ConstantTimeEq;

/// The `verification` object of `SourceIn` (camelCase JSON).
///
/// Unknown fields are kept in [`Verification::extra`] and reported by [`validate`] rather than
/// rejected by serde, so that a 422 lists every problem at once.
#[derive(Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Verification {
    pub scheme: Scheme,
    /// Write-only secrets, newest first. For `sendgrid` and `discord`: the provider's public key.
    /// For `basic-auth`: `user:password`.
    #[serde(default)]
    pub secrets: Vec<String>,
    /// Overrides the scheme's timestamp tolerance; `0` turns the timestamp check off.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tolerance_seconds: Option<i64>,
    /// `hmac`: the signature header. `api-key`: the header carrying the key.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub header: Option<String>,
    /// `hmac`: the digest (default sha256).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub algorithm: Option<HmacAlgorithm>,
    /// `hmac`: how the MAC is written in the header (default hex).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub encoding: Option<SignatureEncoding>,
    /// `hmac`: text before the signature, such as `sha256=`. `api-key`: text before the key, such
    /// as `Bearer `.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prefix: Option<String>,
    /// `hmac`: template of the signed bytes over `{body}`, `{timestamp}`, `{id}`, `{url}`
    /// (default `{body}`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub signed_content: Option<String>,
    /// `hmac`: header with the unix timestamp (seconds) used for `{timestamp}` and the tolerance.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timestamp_header: Option<String>,
    /// `hmac`: header with the delivery id used for `{id}`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id_header: Option<String>,
    /// Fields this version does not know; [`validate`] reports them.
    #[serde(flatten, default, skip_serializing)]
    pub extra: BTreeMap<String, Value>,
}

impl Verification {
    /// A configuration with only a scheme and secrets; every optional field unset.
    pub fn new(scheme: Scheme, secrets: Vec<String>) -> Self {
        Self {
            scheme,
            secrets,
            tolerance_seconds: None,
            header: None,
            algorithm: None,
            encoding: None,
            prefix: None,
            signed_content: None,
            timestamp_header: None,
            id_header: None,
            extra: BTreeMap::new(),
        }
    }
}

/// Redacted on purpose: a verification config holds secrets and must be safe to log.
impl std::fmt::Debug for Verification {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Verification")
            .field("scheme", &self.scheme)
            .field(
                "secrets",
                &format_args!("<{} redacted>", self.secrets.len()),
            )
            .field("tolerance_seconds", &self.tolerance_seconds)
            .field("header", &self.header)
            .field("algorithm", &self.algorithm)
            .field("encoding", &self.encoding)
            .field("prefix", &self.prefix)
            .field("signed_content", &self.signed_content)
            .field("timestamp_header", &self.timestamp_header)
            .field("id_header", &self.id_header)
            .finish_non_exhaustive()
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Scheme {
    StandardWebhooks,
    Github,
    Stripe,
    Slack,
    Shopify,
    Twilio,
    Paddle,
    Square,
    Zoom,
    Twitch,
    Linear,
    Pagerduty,
    Intercom,
    Mailgun,
    Sendgrid,
    Discord,
    GitlabToken,
    Hmac,
    BasicAuth,
    ApiKey,
    None,
}

impl Scheme {
    /// Every scheme, in the order of the spec.
    pub const ALL: [Scheme; 21] = [
        Scheme::StandardWebhooks,
        Scheme::Github,
        Scheme::Stripe,
        Scheme::Slack,
        Scheme::Shopify,
        Scheme::Twilio,
        Scheme::Paddle,
        Scheme::Square,
        Scheme::Zoom,
        Scheme::Twitch,
        Scheme::Linear,
        Scheme::Pagerduty,
        Scheme::Intercom,
        Scheme::Mailgun,
        Scheme::Sendgrid,
        Scheme::Discord,
        Scheme::GitlabToken,
        Scheme::Hmac,
        Scheme::BasicAuth,
        Scheme::ApiKey,
        Scheme::None,
    ];

    /// The JSON spelling (`standard-webhooks`, `gitlab-token`, …).
    pub fn as_str(self) -> &'static str {
        match self {
            Scheme::StandardWebhooks => "standard-webhooks",
            Scheme::Github => "github",
            Scheme::Stripe => "stripe",
            Scheme::Slack => "slack",
            Scheme::Shopify => "shopify",
            Scheme::Twilio => "twilio",
            Scheme::Paddle => "paddle",
            Scheme::Square => "square",
            Scheme::Zoom => "zoom",
            Scheme::Twitch => "twitch",
            Scheme::Linear => "linear",
            Scheme::Pagerduty => "pagerduty",
            Scheme::Intercom => "intercom",
            Scheme::Mailgun => "mailgun",
            Scheme::Sendgrid => "sendgrid",
            Scheme::Discord => "discord",
            Scheme::GitlabToken => "gitlab-token",
            Scheme::Hmac => "hmac",
            Scheme::BasicAuth => "basic-auth",
            Scheme::ApiKey => "api-key",
            Scheme::None => "none",
        }
    }
}

impl std::fmt::Display for Scheme {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Digest of the generic `hmac` scheme.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum HmacAlgorithm {
    Sha1,
    #[default]
    Sha256,
    Sha512,
}

/// How the generic `hmac` scheme's MAC is written in its header.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SignatureEncoding {
    #[default]
    Hex,
    Base64,
}

/// What the verifier sees of a request. `url` is the full URL the provider posted to
/// (the source's publicUrl with the request's query string when set, else Herald's own URL).
///
/// No `Debug` on purpose: the headers may carry credentials (`Authorization`, `X-Gitlab-Token`).
#[derive(Clone, Copy)]
pub struct Request<'a> {
    pub url: &'a str,
    pub headers: &'a http::HeaderMap,
    pub body: &'a [u8],
}

/// Why a request was refused. The strings name headers or fields, never secret material.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum VerifyError {
    /// -> 401 `invalid_signature`
    #[error("signature missing: {0}")]
    Missing(String),
    /// -> 401 `invalid_signature`
    #[error("signature does not match")]
    Mismatch,
    /// -> 401 `invalid_signature`
    #[error("malformed signature: {0}")]
    Malformed(String),
    /// -> 401 `timestamp_out_of_tolerance`
    #[error("timestamp outside tolerance")]
    Stale,
}

impl VerifyError {
    /// The stable `code` of the API's 401 answer for this refusal.
    pub fn code(&self) -> &'static str {
        match self {
            VerifyError::Stale => "timestamp_out_of_tolerance",
            _ => "invalid_signature",
        }
    }
}

/// How far a provider's signed timestamp may be from `now`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Tolerance {
    /// No timestamp check (the scheme has none, or `toleranceSeconds: 0`).
    Unchecked,
    /// `|now - ts| <= n` ("±300 s" in the spec).
    Both(i64),
    /// `now - ts <= n`: only too-old requests are refused ("past 300 s" in the spec).
    PastOnly(i64),
}

impl Tolerance {
    /// `Ok` when `ts` (unix seconds) is acceptable at `now`.
    pub fn check(self, ts: i64, now: i64) -> Result<(), VerifyError> {
        let ok = match self {
            Tolerance::Unchecked => true,
            Tolerance::Both(n) => now.saturating_sub(ts).saturating_abs() <= n,
            Tolerance::PastOnly(n) => now.saturating_sub(ts) <= n,
        };
        if ok {
            Ok(())
        } else {
            Err(VerifyError::Stale)
        }
    }
}

/// Default tolerance for the standard-webhooks family, Slack and Zoom (their SDKs use 5 min).
pub const DEFAULT_TOLERANCE_SECONDS: i64 = 300;
/// Paddle's SDK refuses notifications older than 5 s by default.
pub const PADDLE_TOLERANCE_SECONDS: i64 = 5;
/// Twitch asks receivers to refuse messages older than 10 minutes.
pub const TWITCH_TOLERANCE_SECONDS: i64 = 600;
/// Linear's SDK allows one minute either way on `webhookTimestamp`.
pub const LINEAR_TOLERANCE_SECONDS: i64 = 60;

/// Whether the scheme carries a timestamp that `toleranceSeconds` can act on.
fn has_timestamp(v: &Verification) -> bool {
    match v.scheme {
        Scheme::StandardWebhooks
        | Scheme::Stripe
        | Scheme::Slack
        | Scheme::Paddle
        | Scheme::Zoom
        | Scheme::Twitch
        | Scheme::Linear
        | Scheme::Mailgun
        | Scheme::Sendgrid
        | Scheme::Discord => true,
        Scheme::Hmac => v.timestamp_header.is_some(),
        _ => false,
    }
}

/// The effective timestamp rule of a configuration: the scheme's default direction and window,
/// with `toleranceSeconds` replacing the window. Schemes whose provider signs a timestamp but
/// documents no window (mailgun, sendgrid, discord) check nothing unless `toleranceSeconds` is
/// set, and then both directions; so does the generic `hmac` with a `timestampHeader`, whose
/// window defaults to 300 s.
pub fn tolerance(v: &Verification) -> Tolerance {
    if !has_timestamp(v) || v.tolerance_seconds == Some(0) {
        return Tolerance::Unchecked;
    }
    let or = |d: i64| v.tolerance_seconds.unwrap_or(d);
    match v.scheme {
        Scheme::StandardWebhooks | Scheme::Slack | Scheme::Zoom => {
            Tolerance::Both(or(DEFAULT_TOLERANCE_SECONDS))
        }
        Scheme::Stripe => Tolerance::PastOnly(or(DEFAULT_TOLERANCE_SECONDS)),
        Scheme::Paddle => Tolerance::PastOnly(or(PADDLE_TOLERANCE_SECONDS)),
        Scheme::Twitch => Tolerance::PastOnly(or(TWITCH_TOLERANCE_SECONDS)),
        Scheme::Linear => Tolerance::Both(or(LINEAR_TOLERANCE_SECONDS)),
        Scheme::Hmac => Tolerance::Both(or(DEFAULT_TOLERANCE_SECONDS)),
        _ => match v.tolerance_seconds {
            Some(n) => Tolerance::Both(n),
            None => Tolerance::Unchecked,
        },
    }
}

// ---------------------------------------------------------------------------------------------
// Primitives

fn mac(alg: HmacAlgorithm, key: &[u8], parts: &[&[u8]]) -> Vec<u8> {
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
fn ct_eq(a: &[u8], b: &[u8]) -> bool {
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

fn header<'r>(req: &'r Request, name: &str) -> Result<Option<&'r str>, VerifyError> {
    match req.headers.get(name) {
        None => Ok(None),
        Some(v) => v
            .to_str()
            .map(|s| Some(s.trim()))
            .map_err(|_| VerifyError::Malformed(format!("{name} is not visible ASCII"))),
    }
}

fn require<'r>(req: &'r Request, name: &str) -> Result<&'r str, VerifyError> {
    match header(req, name)? {
        Some(v) if !v.is_empty() => Ok(v),
        _ => Err(VerifyError::Missing(name.to_string())),
    }
}

fn parse_ts(text: &str, what: &str) -> Result<i64, VerifyError> {
    text.trim()
        .parse()
        .map_err(|_| VerifyError::Malformed(format!("{what} is not a unix timestamp")))
}

/// The configured secrets as UTF-8 key bytes (most providers key the HMAC with the secret text).
fn utf8_keys(v: &Verification) -> Vec<Vec<u8>> {
    v.secrets.iter().map(|s| s.as_bytes().to_vec()).collect()
}

/// Standard Webhooks keys: the base64 part after `whsec_`. Undecodable secrets are skipped
/// (`validate` refuses them at configuration time).
fn standard_keys(v: &Verification) -> Vec<Vec<u8>> {
    v.secrets
        .iter()
        .filter_map(|s| decode_standard_secret(s))
        .collect()
}

fn decode_standard_secret(s: &str) -> Option<Vec<u8>> {
    let b64 = s.strip_prefix(crate::signing::SECRET_PREFIX).unwrap_or(s);
    B64.decode(b64).ok().filter(|k| !k.is_empty())
}

fn decode_hex(s: &str) -> Option<Vec<u8>> {
    hex::decode(s.trim()).ok()
}

fn decode_b64(s: &str) -> Option<Vec<u8>> {
    B64.decode(s.trim()).ok()
}

/// Accepts when any key's MAC over `parts` equals any presented candidate.
///
/// `candidates` are the already-decoded signatures of the request; undecodable ones were dropped
/// by the caller, so an empty list means the header held nothing usable.
fn match_any(
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

// ---------------------------------------------------------------------------------------------
// Verification

/// Checks the request against every valid secret (constant-time comparisons; raw body bytes).
/// `now` = unix seconds.
///
/// The signature is checked before the timestamp, so that `Stale` is only ever reported for a
/// request that really comes from the provider.
pub fn verify(v: &Verification, req: &Request, now: i64) -> Result<(), VerifyError> {
    let tol = tolerance(v);
    match v.scheme {
        Scheme::None => Ok(()),
        Scheme::StandardWebhooks => verify_standard_webhooks(v, req, now, tol),
        Scheme::Github => {
            let h = "X-Hub-Signature-256";
            let sig = require(req, h)?;
            let cands = prefixed_hex(sig, "sha256=");
            match_any(HmacAlgorithm::Sha256, &utf8_keys(v), &[req.body], &cands, h)
        }
        Scheme::Intercom => {
            let h = "X-Hub-Signature";
            let sig = require(req, h)?;
            let cands = prefixed_hex(sig, "sha1=");
            match_any(HmacAlgorithm::Sha1, &utf8_keys(v), &[req.body], &cands, h)
        }
        Scheme::Stripe => verify_stripe(v, req, now, tol),
        Scheme::Slack => {
            let ts_text = require(req, "X-Slack-Request-Timestamp")?;
            let h = "X-Slack-Signature";
            let sig = require(req, h)?;
            let ts = parse_ts(ts_text, "X-Slack-Request-Timestamp")?;
            let cands = prefixed_hex(sig, "v0=");
            let parts: [&[u8]; 4] = [b"v0:", ts_text.as_bytes(), b":", req.body];
            match_any(HmacAlgorithm::Sha256, &utf8_keys(v), &parts, &cands, h)?;
            tol.check(ts, now)
        }
        Scheme::Zoom => {
            let ts_text = require(req, "x-zm-request-timestamp")?;
            let h = "x-zm-signature";
            let sig = require(req, h)?;
            let ts = parse_ts(ts_text, "x-zm-request-timestamp")?;
            let cands = prefixed_hex(sig, "v0=");
            let parts: [&[u8]; 4] = [b"v0:", ts_text.as_bytes(), b":", req.body];
            match_any(HmacAlgorithm::Sha256, &utf8_keys(v), &parts, &cands, h)?;
            tol.check(ts, now)
        }
        Scheme::Shopify => {
            let h = "X-Shopify-Hmac-Sha256";
            let sig = require(req, h)?;
            let cands: Vec<_> = decode_b64(sig).into_iter().collect();
            match_any(HmacAlgorithm::Sha256, &utf8_keys(v), &[req.body], &cands, h)
        }
        Scheme::Twilio => verify_twilio(v, req),
        Scheme::Paddle => verify_paddle(v, req, now, tol),
        Scheme::Square => {
            let h = "x-square-hmacsha256-signature";
            let sig = require(req, h)?;
            let cands: Vec<_> = decode_b64(sig).into_iter().collect();
            let parts: [&[u8]; 2] = [req.url.as_bytes(), req.body];
            match_any(HmacAlgorithm::Sha256, &utf8_keys(v), &parts, &cands, h)
        }
        Scheme::Twitch => verify_twitch(v, req, now, tol),
        Scheme::Linear => verify_linear(v, req, now, tol),
        Scheme::Pagerduty => {
            let h = "X-PagerDuty-Signature";
            let sig = require(req, h)?;
            // PagerDuty lists one `v1=` per active secret of the subscription.
            let cands: Vec<_> = sig
                .split(',')
                .filter_map(|p| p.trim().strip_prefix("v1="))
                .filter_map(decode_hex)
                .collect();
            match_any(HmacAlgorithm::Sha256, &utf8_keys(v), &[req.body], &cands, h)
        }
        Scheme::Mailgun => verify_mailgun(v, req, now, tol),
        Scheme::Sendgrid => verify_sendgrid(v, req, now, tol),
        Scheme::Discord => verify_discord(v, req, now, tol),
        Scheme::GitlabToken => {
            let token = require(req, "X-Gitlab-Token")?;
            match_secret(v, token.as_bytes())
        }
        Scheme::ApiKey => {
            let Some(name) = v.header.as_deref() else {
                return Err(VerifyError::Missing("api-key header not configured".into()));
            };
            let value = require(req, name)?;
            let key = match v.prefix.as_deref() {
                Some(p) => value
                    .strip_prefix(p)
                    .ok_or_else(|| VerifyError::Malformed(format!("{name} lacks its prefix")))?,
                None => value,
            };
            match_secret(v, key.as_bytes())
        }
        Scheme::BasicAuth => verify_basic(v, req),
        Scheme::Hmac => verify_generic(v, req, now, tol),
    }
}

/// `sha256=<hex>` and the like: the one signature after `prefix`, if it decodes.
fn prefixed_hex(value: &str, prefix: &str) -> Vec<Vec<u8>> {
    value
        .strip_prefix(prefix)
        .and_then(decode_hex)
        .into_iter()
        .collect()
}

fn match_secret(v: &Verification, presented: &[u8]) -> Result<(), VerifyError> {
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

/// Standard Webhooks, also sent by Svix and Clerk under `svix-*` header names.
fn verify_standard_webhooks(
    v: &Verification,
    req: &Request,
    now: i64,
    tol: Tolerance,
) -> Result<(), VerifyError> {
    let brand = if req.headers.contains_key("webhook-signature")
        || req.headers.contains_key("webhook-id")
    {
        "webhook"
    } else if req.headers.contains_key("svix-signature") || req.headers.contains_key("svix-id") {
        "svix"
    } else {
        return Err(VerifyError::Missing("webhook-signature".into()));
    };
    let id = require(req, &format!("{brand}-id"))?;
    let ts_name = format!("{brand}-timestamp");
    let ts = parse_ts(require(req, &ts_name)?, &ts_name)?;
    let sig_name = format!("{brand}-signature");
    let sigs = require(req, &sig_name)?;
    let cands: Vec<_> = sigs
        .split(' ')
        .filter_map(|p| p.strip_prefix("v1,"))
        .filter_map(decode_b64)
        .collect();
    // The signed timestamp is the integer re-rendered, as the reference libraries do.
    let ts_text = ts.to_string();
    let parts: [&[u8]; 5] = [id.as_bytes(), b".", ts_text.as_bytes(), b".", req.body];
    match_any(
        HmacAlgorithm::Sha256,
        &standard_keys(v),
        &parts,
        &cands,
        &sig_name,
    )?;
    tol.check(ts, now)
}

/// `Stripe-Signature: t=…,v1=…[,v1=…]`, signed `t.body` with the whole `whsec_…` text as key.
/// `v0` (test-mode legacy) and unknown schemes are ignored, as Stripe's libraries do.
fn verify_stripe(
    v: &Verification,
    req: &Request,
    now: i64,
    tol: Tolerance,
) -> Result<(), VerifyError> {
    let h = "Stripe-Signature";
    let value = require(req, h)?;
    let mut t = None;
    let mut cands = Vec::new();
    for item in value.split(',') {
        match item.trim().split_once('=') {
            Some(("t", ts)) => t = Some(ts),
            Some(("v1", sig)) => cands.extend(decode_hex(sig)),
            _ => {}
        }
    }
    let t = t.ok_or_else(|| VerifyError::Malformed(format!("{h} has no t=")))?;
    let ts = parse_ts(t, "Stripe-Signature t")?;
    let parts: [&[u8]; 3] = [t.as_bytes(), b".", req.body];
    match_any(HmacAlgorithm::Sha256, &utf8_keys(v), &parts, &cands, h)?;
    tol.check(ts, now)
}

/// `Paddle-Signature: ts=…;h1=…[;h1=…]`, signed `ts:body` with the whole secret as key.
fn verify_paddle(
    v: &Verification,
    req: &Request,
    now: i64,
    tol: Tolerance,
) -> Result<(), VerifyError> {
    let h = "Paddle-Signature";
    let value = require(req, h)?;
    let mut t = None;
    let mut cands = Vec::new();
    for item in value.split(';') {
        match item.trim().split_once('=') {
            Some(("ts", ts)) => t = Some(ts),
            Some(("h1", sig)) => cands.extend(decode_hex(sig)),
            _ => {}
        }
    }
    let t = t.ok_or_else(|| VerifyError::Malformed(format!("{h} has no ts=")))?;
    let ts = parse_ts(t, "Paddle-Signature ts")?;
    let parts: [&[u8]; 3] = [t.as_bytes(), b":", req.body];
    match_any(HmacAlgorithm::Sha256, &utf8_keys(v), &parts, &cands, h)?;
    tol.check(ts, now)
}

/// Twilio: base64 HMAC-SHA1 keyed with the auth token over the URL followed by the form
/// parameters sorted by name (`name` + `value`, no separators). JSON bodies are signed over the
/// URL alone, whose `bodySHA256` query parameter must then equal the hex SHA-256 of the body.
///
/// Like Twilio's own helpers, the URL is also tried with its default port added or removed,
/// because proxies disagree about `:443`.
fn verify_twilio(v: &Verification, req: &Request) -> Result<(), VerifyError> {
    let h = "X-Twilio-Signature";
    let sig = require(req, h)?;
    let cands: Vec<_> = decode_b64(sig).into_iter().collect();
    let body_sha = query_param(req.url, "bodySHA256");
    let params: String = match &body_sha {
        Some(_) => String::new(),
        None if is_form(req) => {
            let mut pairs: Vec<(String, String)> = url::form_urlencoded::parse(req.body)
                .map(|(k, v)| (k.into_owned(), v.into_owned()))
                .collect();
            pairs.sort();
            pairs.into_iter().map(|(k, v)| k + &v).collect()
        }
        None => String::new(),
    };
    let mut result = Err(VerifyError::Mismatch);
    for url in twilio_url_variants(req.url) {
        let parts: [&[u8]; 2] = [url.as_bytes(), params.as_bytes()];
        result = match_any(HmacAlgorithm::Sha1, &utf8_keys(v), &parts, &cands, h);
        if result.is_ok() {
            break;
        }
    }
    result?;
    if let Some(expected) = body_sha {
        let actual = sha256_hex(req.body);
        if !ct_eq(actual.as_bytes(), expected.to_ascii_lowercase().as_bytes()) {
            return Err(VerifyError::Mismatch);
        }
    }
    Ok(())
}

fn is_form(req: &Request) -> bool {
    match req.headers.get(http::header::CONTENT_TYPE) {
        None => true,
        Some(ct) => ct
            .to_str()
            .map(|s| {
                s.trim()
                    .to_ascii_lowercase()
                    .starts_with("application/x-www-form-urlencoded")
            })
            .unwrap_or(false),
    }
}

fn query_param(url: &str, name: &str) -> Option<String> {
    let query = url.split_once('?')?.1;
    let query = query.split('#').next().unwrap_or(query);
    url::form_urlencoded::parse(query.as_bytes())
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.into_owned())
}

/// The URL as given, then the same URL with its port removed (if it has one) or the scheme's
/// default port added (if it has none).
fn twilio_url_variants(url: &str) -> Vec<String> {
    let mut out = vec![url.to_string()];
    let Some((scheme, rest)) = url.split_once("://") else {
        return out;
    };
    let default_port = match scheme.to_ascii_lowercase().as_str() {
        "https" => 443,
        "http" => 80,
        _ => return out,
    };
    let end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let (authority, tail) = rest.split_at(end);
    // Skip user info and an IPv6 literal before looking for the port colon.
    let host_start = authority.rfind('@').map_or(0, |i| i + 1);
    let host_start = authority[host_start..]
        .rfind(']')
        .map_or(host_start, |i| host_start + i + 1);
    match authority[host_start..].rfind(':') {
        Some(i) => out.push(format!("{scheme}://{}{tail}", &authority[..host_start + i])),
        None => out.push(format!("{scheme}://{authority}:{default_port}{tail}")),
    }
    out
}

/// Twitch EventSub: `sha256=<hex>` over message id + timestamp (RFC 3339 text) + body.
fn verify_twitch(
    v: &Verification,
    req: &Request,
    now: i64,
    tol: Tolerance,
) -> Result<(), VerifyError> {
    let id = require(req, "Twitch-Eventsub-Message-Id")?;
    let ts_text = require(req, "Twitch-Eventsub-Message-Timestamp")?;
    let h = "Twitch-Eventsub-Message-Signature";
    let sig = require(req, h)?;
    let ts = chrono::DateTime::parse_from_rfc3339(ts_text)
        .map_err(|_| {
            VerifyError::Malformed("Twitch-Eventsub-Message-Timestamp is not RFC 3339".into())
        })?
        .timestamp();
    let cands = prefixed_hex(sig, "sha256=");
    let parts: [&[u8]; 3] = [id.as_bytes(), ts_text.as_bytes(), req.body];
    match_any(HmacAlgorithm::Sha256, &utf8_keys(v), &parts, &cands, h)?;
    tol.check(ts, now)
}

/// Linear: hex HMAC-SHA256 of the body; the timestamp is `webhookTimestamp` (milliseconds)
/// inside the signed body, so it is read only after the signature matched.
fn verify_linear(
    v: &Verification,
    req: &Request,
    now: i64,
    tol: Tolerance,
) -> Result<(), VerifyError> {
    let h = "Linear-Signature";
    let sig = require(req, h)?;
    let cands: Vec<_> = decode_hex(sig).into_iter().collect();
    match_any(HmacAlgorithm::Sha256, &utf8_keys(v), &[req.body], &cands, h)?;
    if tol == Tolerance::Unchecked {
        return Ok(());
    }
    let ms = serde_json::from_slice::<Value>(req.body)
        .ok()
        .and_then(|b| b.get("webhookTimestamp").and_then(Value::as_i64))
        .ok_or_else(|| VerifyError::Missing("webhookTimestamp".into()))?;
    // Compared in milliseconds so that a 60 s window means 60 s, not 60 s plus rounding.
    let skew_ms = now.saturating_mul(1000).saturating_sub(ms);
    let ok = match tol {
        Tolerance::Unchecked => true,
        Tolerance::Both(n) => skew_ms.saturating_abs() <= n.saturating_mul(1000),
        Tolerance::PastOnly(n) => skew_ms <= n.saturating_mul(1000),
    };
    if ok {
        Ok(())
    } else {
        Err(VerifyError::Stale)
    }
}

/// Mailgun: the signature travels in the body, `{"signature": {timestamp, token, signature}}`
/// (JSON webhooks) or as top-level `timestamp`, `token`, `signature` form fields (legacy
/// webhooks); hex HMAC-SHA256 over `timestamp + token`.
fn verify_mailgun(
    v: &Verification,
    req: &Request,
    now: i64,
    tol: Tolerance,
) -> Result<(), VerifyError> {
    let (ts_text, token, sig) = mailgun_fields(req.body)?;
    let ts = parse_ts(&ts_text, "signature.timestamp")?;
    let cands: Vec<_> = decode_hex(&sig).into_iter().collect();
    let parts: [&[u8]; 2] = [ts_text.as_bytes(), token.as_bytes()];
    match_any(
        HmacAlgorithm::Sha256,
        &utf8_keys(v),
        &parts,
        &cands,
        "signature.signature",
    )?;
    tol.check(ts, now)
}

fn mailgun_fields(body: &[u8]) -> Result<(String, String, String), VerifyError> {
    fn text(v: &Value) -> Option<String> {
        match v {
            Value::String(s) => Some(s.clone()),
            Value::Number(n) => Some(n.to_string()),
            _ => None,
        }
    }
    if let Ok(doc) = serde_json::from_slice::<Value>(body) {
        let s = doc
            .get("signature")
            .ok_or_else(|| VerifyError::Missing("signature".into()))?;
        let field = |name: &str| {
            s.get(name)
                .and_then(text)
                .ok_or_else(|| VerifyError::Missing(format!("signature.{name}")))
        };
        return Ok((field("timestamp")?, field("token")?, field("signature")?));
    }
    let mut fields: BTreeMap<String, String> = BTreeMap::new();
    for (k, v) in url::form_urlencoded::parse(body) {
        fields.entry(k.into_owned()).or_insert(v.into_owned());
    }
    let mut take = |name: &str| {
        fields
            .remove(name)
            .ok_or_else(|| VerifyError::Missing(format!("signature.{name}")))
    };
    Ok((take("timestamp")?, take("token")?, take("signature")?))
}

/// SendGrid Event Webhook: ECDSA P-256 / SHA-256 over `timestamp + body`; the key is the base64
/// SPKI DER shown in SendGrid's settings, the signature base64 DER.
fn verify_sendgrid(
    v: &Verification,
    req: &Request,
    now: i64,
    tol: Tolerance,
) -> Result<(), VerifyError> {
    use p256::ecdsa::signature::Verifier;
    let h = "X-Twilio-Email-Event-Webhook-Signature";
    let ts_name = "X-Twilio-Email-Event-Webhook-Timestamp";
    let sig = require(req, h)?;
    let ts_text = require(req, ts_name)?;
    let sig = decode_b64(sig)
        .and_then(|der| p256::ecdsa::Signature::from_der(&der).ok())
        .ok_or_else(|| VerifyError::Malformed(format!("{h} is not a base64 DER signature")))?;
    let mut signed = Vec::with_capacity(ts_text.len() + req.body.len());
    signed.extend_from_slice(ts_text.as_bytes());
    signed.extend_from_slice(req.body);
    let hit = v
        .secrets
        .iter()
        .filter_map(|k| sendgrid_key(k))
        .any(|key| key.verify(&signed, &sig).is_ok());
    if !hit {
        return Err(VerifyError::Mismatch);
    }
    if tol == Tolerance::Unchecked {
        return Ok(());
    }
    tol.check(parse_ts(ts_text, ts_name)?, now)
}

/// A SendGrid verification key: base64 SPKI DER, with or without PEM armour.
fn sendgrid_key(text: &str) -> Option<p256::ecdsa::VerifyingKey> {
    use p256::pkcs8::DecodePublicKey;
    let b64: String = text
        .lines()
        .filter(|l| !l.trim_start().starts_with("-----"))
        .flat_map(|l| l.chars())
        .filter(|c| !c.is_whitespace())
        .collect();
    let der = B64.decode(b64).ok()?;
    p256::ecdsa::VerifyingKey::from_public_key_der(&der).ok()
}

/// Discord interactions: Ed25519 over `timestamp + body`; key and signature in hex.
fn verify_discord(
    v: &Verification,
    req: &Request,
    now: i64,
    tol: Tolerance,
) -> Result<(), VerifyError> {
    let h = "X-Signature-Ed25519";
    let ts_name = "X-Signature-Timestamp";
    let sig = require(req, h)?;
    let ts_text = require(req, ts_name)?;
    let sig = decode_hex(sig)
        .and_then(|b| <[u8; 64]>::try_from(b.as_slice()).ok())
        .map(|b| ed25519_dalek::Signature::from_bytes(&b))
        .ok_or_else(|| VerifyError::Malformed(format!("{h} is not 64 hex-encoded bytes")))?;
    let mut signed = Vec::with_capacity(ts_text.len() + req.body.len());
    signed.extend_from_slice(ts_text.as_bytes());
    signed.extend_from_slice(req.body);
    // `verify_strict` also refuses small-order keys and malleable signatures; a genuine Discord
    // signature always passes it.
    let hit = v
        .secrets
        .iter()
        .filter_map(|k| discord_key(k))
        .any(|key| key.verify_strict(&signed, &sig).is_ok());
    if !hit {
        return Err(VerifyError::Mismatch);
    }
    if tol == Tolerance::Unchecked {
        return Ok(());
    }
    tol.check(parse_ts(ts_text, ts_name)?, now)
}

fn discord_key(text: &str) -> Option<ed25519_dalek::VerifyingKey> {
    let bytes = <[u8; 32]>::try_from(decode_hex(text)?.as_slice()).ok()?;
    ed25519_dalek::VerifyingKey::from_bytes(&bytes).ok()
}

/// `Authorization: Basic base64(user:password)` against secrets of the form `user:password`.
fn verify_basic(v: &Verification, req: &Request) -> Result<(), VerifyError> {
    let value = require(req, "Authorization")?;
    let (kind, creds) = value
        .split_once(' ')
        .ok_or_else(|| VerifyError::Malformed("Authorization is not Basic".into()))?;
    if !kind.eq_ignore_ascii_case("basic") {
        return Err(VerifyError::Malformed("Authorization is not Basic".into()));
    }
    let decoded = decode_b64(creds)
        .ok_or_else(|| VerifyError::Malformed("Authorization credentials are not base64".into()))?;
    match_secret(v, &decoded)
}

/// The generic scheme: `header` carries `prefix` + the MAC (hex or base64) of `signedContent`;
/// several signatures separated by commas or spaces are accepted (sender-side rotation).
fn verify_generic(
    v: &Verification,
    req: &Request,
    now: i64,
    tol: Tolerance,
) -> Result<(), VerifyError> {
    let Some(h) = v.header.as_deref() else {
        return Err(VerifyError::Missing("hmac header not configured".into()));
    };
    let value = require(req, h)?;
    let ts = match v.timestamp_header.as_deref() {
        Some(name) => Some(require(req, name)?),
        None => None,
    };
    let id = match v.id_header.as_deref() {
        Some(name) => Some(require(req, name)?),
        None => None,
    };
    let encoding = v.encoding.unwrap_or_default();
    let prefix = v.prefix.as_deref().unwrap_or("");
    let cands: Vec<_> = value
        .split([',', ' '])
        .filter_map(|p| p.trim().strip_prefix(prefix))
        .filter(|p| !p.is_empty())
        .filter_map(|p| match encoding {
            SignatureEncoding::Hex => decode_hex(p),
            SignatureEncoding::Base64 => decode_b64(p),
        })
        .collect();
    let template = v.signed_content.as_deref().unwrap_or("{body}");
    let signed = render_template(template, req, ts, id);
    match_any(
        v.algorithm.unwrap_or_default(),
        &utf8_keys(v),
        &[&signed],
        &cands,
        h,
    )?;
    match ts {
        Some(t) => tol.check(
            parse_ts(t, v.timestamp_header.as_deref().unwrap_or(""))?,
            now,
        ),
        None => Ok(()),
    }
}

/// Placeholders of the generic scheme's `signedContent`.
const PLACEHOLDERS: [&str; 4] = ["{body}", "{timestamp}", "{id}", "{url}"];

fn render_template(template: &str, req: &Request, ts: Option<&str>, id: Option<&str>) -> Vec<u8> {
    let mut out = Vec::with_capacity(template.len() + req.body.len());
    let mut rest = template;
    while let Some(start) = rest.find('{') {
        out.extend_from_slice(&rest.as_bytes()[..start]);
        let tail = &rest[start..];
        let hit = PLACEHOLDERS.iter().find(|p| tail.starts_with(**p));
        match hit {
            Some(p) => {
                match *p {
                    "{body}" => out.extend_from_slice(req.body),
                    "{timestamp}" => out.extend_from_slice(ts.unwrap_or("").as_bytes()),
                    "{id}" => out.extend_from_slice(id.unwrap_or("").as_bytes()),
                    _ => out.extend_from_slice(req.url.as_bytes()),
                }
                rest = &tail[p.len()..];
            }
            None => {
                out.push(b'{');
                rest = &tail[1..];
            }
        }
    }
    out.extend_from_slice(rest.as_bytes());
    out
}

// ---------------------------------------------------------------------------------------------
// Configuration checks

/// Problems with a verification config, for a 422 (e.g. hmac without header, missing secrets,
/// bad public key). `none` is valid (choosing it is already explicit, since `scheme` has no
/// default); see [`warnings`] for what to tell the user about it.
pub fn validate(v: &Verification) -> Vec<String> {
    let mut problems = Vec::new();
    for k in v.extra.keys() {
        problems.push(format!("verification: unknown field `{k}`"));
    }
    let s = v.scheme;
    let applies = |field: &str| -> bool {
        match field {
            "header" | "prefix" => matches!(s, Scheme::Hmac | Scheme::ApiKey),
            _ => s == Scheme::Hmac,
        }
    };
    let set: [(&str, bool); 7] = [
        ("header", v.header.is_some()),
        ("prefix", v.prefix.is_some()),
        ("algorithm", v.algorithm.is_some()),
        ("encoding", v.encoding.is_some()),
        ("signedContent", v.signed_content.is_some()),
        ("timestampHeader", v.timestamp_header.is_some()),
        ("idHeader", v.id_header.is_some()),
    ];
    for (field, is_set) in set {
        if is_set && !applies(field) {
            problems.push(format!("verification.{field} does not apply to scheme {s}"));
        }
    }
    if let Some(t) = v.tolerance_seconds {
        if t < 0 {
            problems.push("verification.toleranceSeconds must be 0 or more".into());
        } else if !has_timestamp(v) {
            problems.push(format!(
                "verification.toleranceSeconds has no effect: scheme {s} carries no timestamp"
            ));
        }
    }
    if s == Scheme::None {
        if !v.secrets.is_empty() {
            problems.push("verification.secrets must be empty for scheme none".into());
        }
        return problems;
    }
    if v.secrets.is_empty() {
        problems.push(format!(
            "verification.secrets: scheme {s} needs at least one secret"
        ));
    }
    // Problems name the secret's position only: the value itself must never be echoed.
    for (i, secret) in v.secrets.iter().enumerate() {
        let at = format!("verification.secrets[{i}]");
        if secret.trim().is_empty() {
            problems.push(format!("{at} is empty"));
            continue;
        }
        match s {
            Scheme::StandardWebhooks if decode_standard_secret(secret).is_none() => {
                problems.push(format!("{at} must be base64, optionally after `whsec_`"))
            }
            Scheme::Sendgrid if sendgrid_key(secret).is_none() => problems.push(format!(
                "{at} must be SendGrid's verification key (base64 SPKI of a P-256 key)"
            )),
            Scheme::Discord if discord_key(secret).is_none() => problems.push(format!(
                "{at} must be the application's Ed25519 public key (64 hex digits)"
            )),
            Scheme::BasicAuth if !secret.contains(':') => {
                problems.push(format!("{at} must be `user:password`"))
            }
            _ => {}
        }
    }
    match s {
        Scheme::ApiKey => check_header_name(&mut problems, "header", v.header.as_deref(), true),
        Scheme::Hmac => {
            check_header_name(&mut problems, "header", v.header.as_deref(), true);
            check_header_name(
                &mut problems,
                "timestampHeader",
                v.timestamp_header.as_deref(),
                false,
            );
            check_header_name(&mut problems, "idHeader", v.id_header.as_deref(), false);
            let template = v.signed_content.as_deref().unwrap_or("{body}");
            for name in placeholders_in(template) {
                if !PLACEHOLDERS.contains(&name.as_str()) {
                    problems.push(format!(
                        "verification.signedContent: unknown placeholder {name} (use {{body}}, {{timestamp}}, {{id}}, {{url}})"
                    ));
                }
            }
            if template.contains("{timestamp}") && v.timestamp_header.is_none() {
                problems.push(
                    "verification.signedContent uses {timestamp} but timestampHeader is not set"
                        .into(),
                );
            }
            if template.contains("{id}") && v.id_header.is_none() {
                problems
                    .push("verification.signedContent uses {id} but idHeader is not set".into());
            }
            if v.timestamp_header.is_some() && !template.contains("{timestamp}") {
                // An unsigned timestamp can be rewritten by anyone, so checking it protects
                // against nothing while looking like replay protection.
                problems.push(
                    "verification.timestampHeader is set but signedContent does not sign {timestamp}"
                        .into(),
                );
            }
        }
        _ => {}
    }
    problems
}

fn check_header_name(problems: &mut Vec<String>, field: &str, name: Option<&str>, required: bool) {
    match name {
        None if required => problems.push(format!("verification.{field} is required")),
        None => {}
        Some(n) if http::HeaderName::from_bytes(n.as_bytes()).is_err() => {
            problems.push(format!("verification.{field} is not a valid header name"))
        }
        Some(_) => {}
    }
}

fn placeholders_in(template: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut rest = template;
    while let Some(start) = rest.find('{') {
        let tail = &rest[start..];
        match tail.find('}') {
            Some(end) => {
                out.push(tail[..=end].to_string());
                rest = &tail[end + 1..];
            }
            None => break,
        }
    }
    out
}

/// Advice that does not make the configuration invalid: `none` accepts anything.
pub fn warnings(v: &Verification) -> Vec<String> {
    scheme_warnings(v.scheme)
}

/// [`warnings`] for a scheme alone (what a source's API answer reports).
pub fn scheme_warnings(scheme: Scheme) -> Vec<String> {
    match scheme {
        Scheme::None => vec![
            "scheme none is insecure: anyone who knows the ingestion URL can post events".into(),
        ],
        _ => Vec::new(),
    }
}

// ---------------------------------------------------------------------------------------------
// Provider defaults and extraction

/// Where a value comes from. JSON: `{"header": "X-GitHub-Event"}`, `{"json": "/type"}`,
/// `{"value": "x"}`, `{"bodyHash": true}`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum Extract {
    Header(String),
    /// RFC 6901 JSON Pointer into the body.
    Json(String),
    Value(String),
    BodyHash(bool),
}

/// Where the event type comes from when the source does not say; `None` when the provider has
/// no reliable place for it (the caller picks its own fallback).
pub fn default_event_type(s: Scheme) -> Option<Extract> {
    let h = |n: &str| Some(Extract::Header(n.to_string()));
    let j = |p: &str| Some(Extract::Json(p.to_string()));
    match s {
        Scheme::StandardWebhooks => j("/type"),
        Scheme::Github => h("X-GitHub-Event"),
        Scheme::Stripe => j("/type"),
        // Events API: `/type` is always `event_callback`; the useful type is the inner one.
        Scheme::Slack => j("/event/type"),
        Scheme::Shopify => h("X-Shopify-Topic"),
        Scheme::Paddle => j("/event_type"),
        Scheme::Square => j("/type"),
        Scheme::Zoom => j("/event"),
        Scheme::Twitch => h("Twitch-Eventsub-Subscription-Type"),
        Scheme::Linear => h("Linear-Event"),
        Scheme::Pagerduty => j("/event/event_type"),
        Scheme::Intercom => j("/topic"),
        Scheme::Mailgun => j("/event-data/event"),
        Scheme::Discord => j("/type"),
        Scheme::GitlabToken => h("X-Gitlab-Event"),
        // Twilio posts forms without a type; SendGrid posts batches of differently typed events.
        Scheme::Twilio
        | Scheme::Sendgrid
        | Scheme::Hmac
        | Scheme::BasicAuth
        | Scheme::ApiKey
        | Scheme::None => None,
    }
}

/// The default deduplication key of a scheme, per the spec's table.
pub fn default_dedup_key(s: Scheme) -> Extract {
    let h = |n: &str| Extract::Header(n.to_string());
    let j = |p: &str| Extract::Json(p.to_string());
    match s {
        // `extract` also reads `svix-id` for this header (see `extract`).
        Scheme::StandardWebhooks => h("webhook-id"),
        Scheme::Github => h("X-GitHub-Delivery"),
        Scheme::Stripe => j("/id"),
        Scheme::Slack => j("/event_id"),
        Scheme::Shopify => h("X-Shopify-Event-Id"),
        Scheme::Twilio => h("I-Twilio-Idempotency-Token"),
        Scheme::Paddle => j("/event_id"),
        Scheme::Square => j("/event_id"),
        Scheme::Twitch => h("Twitch-Eventsub-Message-Id"),
        Scheme::Linear => h("Linear-Delivery"),
        Scheme::Pagerduty => h("X-Webhook-Id"),
        Scheme::Intercom => j("/id"),
        Scheme::Mailgun => j("/event-data/id"),
        Scheme::Discord => j("/id"),
        Scheme::GitlabToken => h("Idempotency-Key"),
        Scheme::Zoom
        | Scheme::Sendgrid
        | Scheme::Hmac
        | Scheme::BasicAuth
        | Scheme::ApiKey
        | Scheme::None => Extract::BodyHash(true),
    }
}

/// [`default_dedup_key`] refined by the configuration: a generic `hmac` source with an
/// `idHeader` deduplicates on that header.
pub fn dedup_key_for(v: &Verification) -> Extract {
    match (v.scheme, v.id_header.as_deref()) {
        (Scheme::Hmac, Some(h)) => Extract::Header(h.to_string()),
        _ => default_dedup_key(v.scheme),
    }
}

/// Original headers passed on to endpoints unless the source says otherwise. The
/// standard-webhooks family forwards none: its `webhook-*`/`svix-*` names are the ones Herald
/// signs its own deliveries with.
pub fn default_forward_headers(s: Scheme) -> &'static [&'static str] {
    match s {
        Scheme::Github => &["X-GitHub-Event", "X-GitHub-Delivery", "X-GitHub-Hook-ID"],
        Scheme::Shopify => &[
            "X-Shopify-Topic",
            "X-Shopify-Shop-Domain",
            "X-Shopify-Event-Id",
            "X-Shopify-Webhook-Id",
            "X-Shopify-API-Version",
            "X-Shopify-Triggered-At",
        ],
        Scheme::Twilio => &["I-Twilio-Idempotency-Token"],
        Scheme::Square => &["square-environment"],
        Scheme::Twitch => &[
            "Twitch-Eventsub-Message-Id",
            "Twitch-Eventsub-Message-Type",
            "Twitch-Eventsub-Message-Timestamp",
            "Twitch-Eventsub-Subscription-Type",
            "Twitch-Eventsub-Subscription-Version",
        ],
        Scheme::Linear => &["Linear-Delivery", "Linear-Event"],
        Scheme::Pagerduty => &["X-Webhook-Id", "X-Webhook-Subscription"],
        Scheme::GitlabToken => &[
            "X-Gitlab-Event",
            "X-Gitlab-Event-UUID",
            "X-Gitlab-Webhook-UUID",
            "X-Gitlab-Instance",
            "Idempotency-Key",
        ],
        _ => &[],
    }
}

/// Provider signature (and credential) headers of a scheme: never forwarded, whatever
/// `forwardHeaders` says. For `hmac` and `api-key` the header is configured: see
/// [`never_forward`].
pub fn signature_headers(s: Scheme) -> &'static [&'static str] {
    match s {
        Scheme::StandardWebhooks => &[
            "webhook-id",
            "webhook-timestamp",
            "webhook-signature",
            "svix-id",
            "svix-timestamp",
            "svix-signature",
        ],
        Scheme::Github => &["X-Hub-Signature-256", "X-Hub-Signature"],
        Scheme::Stripe => &["Stripe-Signature"],
        Scheme::Slack => &["X-Slack-Signature", "X-Slack-Request-Timestamp"],
        Scheme::Shopify => &["X-Shopify-Hmac-Sha256"],
        Scheme::Twilio => &["X-Twilio-Signature"],
        Scheme::Paddle => &["Paddle-Signature"],
        Scheme::Square => &["x-square-hmacsha256-signature", "x-square-signature"],
        Scheme::Zoom => &["x-zm-signature", "x-zm-request-timestamp"],
        Scheme::Twitch => &["Twitch-Eventsub-Message-Signature"],
        Scheme::Linear => &["Linear-Signature"],
        Scheme::Pagerduty => &["X-PagerDuty-Signature"],
        Scheme::Intercom => &["X-Hub-Signature"],
        Scheme::Mailgun => &[],
        Scheme::Sendgrid => &[
            "X-Twilio-Email-Event-Webhook-Signature",
            "X-Twilio-Email-Event-Webhook-Timestamp",
        ],
        Scheme::Discord => &["X-Signature-Ed25519", "X-Signature-Timestamp"],
        Scheme::GitlabToken => &["X-Gitlab-Token"],
        Scheme::BasicAuth => &["Authorization"],
        Scheme::Hmac | Scheme::ApiKey | Scheme::None => &[],
    }
}

/// [`signature_headers`] plus the headers a configuration names itself (`hmac`'s signature and
/// timestamp headers, `api-key`'s header), lower-cased.
pub fn never_forward(v: &Verification) -> Vec<String> {
    let mut out: Vec<String> = signature_headers(v.scheme)
        .iter()
        .map(|h| h.to_ascii_lowercase())
        .collect();
    if matches!(v.scheme, Scheme::Hmac | Scheme::ApiKey) {
        out.extend(v.header.iter().map(|h| h.to_ascii_lowercase()));
    }
    if v.scheme == Scheme::Hmac {
        out.extend(v.timestamp_header.iter().map(|h| h.to_ascii_lowercase()));
    }
    out
}

/// Extracts a value from the request by rule: a header value, a JSON Pointer to a string or
/// number (rendered as text), a literal, or the hex SHA-256 of the body for `BodyHash(true)`.
///
/// `None` when the value is absent or empty (an empty key would merge unrelated requests).
/// A Standard Webhooks header (`webhook-…`) is also looked up under its Svix name (`svix-…`),
/// because the two brands send the same headers under both names.
pub fn extract(rule: &Extract, req: &Request) -> Option<String> {
    let found = match rule {
        Extract::Header(name) => header_value(req, name).or_else(|| {
            let lower = name.to_ascii_lowercase();
            let alias = lower.strip_prefix("webhook-")?;
            header_value(req, &format!("svix-{alias}"))
        }),
        Extract::Json(pointer) => {
            let doc: Value = serde_json::from_slice(req.body).ok()?;
            match doc.pointer(pointer)? {
                Value::String(s) => Some(s.clone()),
                Value::Number(n) => Some(n.to_string()),
                _ => None,
            }
        }
        Extract::Value(v) => Some(v.clone()),
        Extract::BodyHash(true) => Some(sha256_hex(req.body)),
        Extract::BodyHash(false) => None,
    };
    found.filter(|s| !s.is_empty())
}

fn header_value(req: &Request, name: &str) -> Option<String> {
    let v = req.headers.get(name)?.to_str().ok()?.trim();
    Some(v.to_string())
}

// ---------------------------------------------------------------------------------------------
// Handshakes

/// An answer Herald gives the provider itself instead of accepting a message.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Handshake {
    pub status: u16,
    pub content_type: &'static str,
    pub body: Vec<u8>,
}

impl Handshake {
    fn json(v: Value) -> Self {
        Self {
            status: 200,
            content_type: "application/json",
            body: serde_json::to_vec(&v).expect("a JSON value serialises"),
        }
    }
}

/// Provider handshakes answered directly (before dedup): Slack `url_verification`
/// (200 `{"challenge": …}`), Zoom `endpoint.url_validation` (200 `{"plainToken",
/// "encryptedToken"}`, the latter hex HMAC-SHA256(secret, plainToken)), Twitch
/// `webhook_callback_verification` (200 text/plain challenge) and Discord PING (200
/// `{"type": 1}`). Called only after [`verify`] succeeded, so the body is the provider's.
pub fn handshake(v: &Verification, req: &Request) -> Option<Handshake> {
    match v.scheme {
        Scheme::Slack => {
            let doc: Value = serde_json::from_slice(req.body).ok()?;
            if doc.get("type")?.as_str()? != "url_verification" {
                return None;
            }
            let challenge = doc.get("challenge")?.as_str()?;
            Some(Handshake::json(
                serde_json::json!({ "challenge": challenge }),
            ))
        }
        Scheme::Zoom => {
            let doc: Value = serde_json::from_slice(req.body).ok()?;
            if doc.get("event")?.as_str()? != "endpoint.url_validation" {
                return None;
            }
            let plain = doc.pointer("/payload/plainToken")?.as_str()?;
            let secret = zoom_signing_secret(v, req)?;
            let encrypted = hex::encode(mac(
                HmacAlgorithm::Sha256,
                secret.as_bytes(),
                &[plain.as_bytes()],
            ));
            Some(Handshake::json(serde_json::json!({
                "plainToken": plain,
                "encryptedToken": encrypted,
            })))
        }
        Scheme::Twitch => {
            let kind = header_value(req, "Twitch-Eventsub-Message-Type")?;
            if kind != "webhook_callback_verification" {
                return None;
            }
            let doc: Value = serde_json::from_slice(req.body).ok()?;
            let challenge = doc.get("challenge")?.as_str()?;
            Some(Handshake {
                status: 200,
                content_type: "text/plain",
                body: challenge.as_bytes().to_vec(),
            })
        }
        Scheme::Discord => {
            let doc: Value = serde_json::from_slice(req.body).ok()?;
            if doc.get("type")?.as_i64()? != 1 {
                return None;
            }
            Some(Handshake::json(serde_json::json!({ "type": 1 })))
        }
        _ => None,
    }
}

/// The Zoom secret that signed this request: during a rotation the token must be encrypted with
/// the secret Zoom is configured with, which is the one whose signature matched.
fn zoom_signing_secret<'v>(v: &'v Verification, req: &Request) -> Option<&'v str> {
    let matched = (|| {
        let ts = header_value(req, "x-zm-request-timestamp")?;
        let sig = header_value(req, "x-zm-signature")?;
        let cands = prefixed_hex(&sig, "v0=");
        let parts: [&[u8]; 4] = [b"v0:", ts.as_bytes(), b":", req.body];
        v.secrets.iter().find(|s| {
            match_any(
                HmacAlgorithm::Sha256,
                &[s.as_bytes().to_vec()],
                &parts,
                &cands,
                "",
            )
            .is_ok()
        })
    })();
    matched.or_else(|| v.secrets.first()).map(String::as_str)
}

#[cfg(test)]
mod tests {
    //! Each scheme is signed here with the `hmac`/`sha1`/`sha2` crates (or the curve crates)
    //! directly, following the provider's documented recipe, rather than with the module's own
    //! helpers: a shared bug in both would otherwise go unnoticed.

    use super::*;
    use http::{HeaderMap, HeaderName, HeaderValue};

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

    fn recipes() -> Vec<Recipe> {
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
                    let body =
                        br#"{"event":{"id":"1","event_type":"incident.triggered"}}"#.to_vec();
                    let sig = hex::encode(hmac256(secret.as_bytes(), &body));
                    let other = hex::encode(hmac256(b"someone else", &body));
                    (
                        vec![kv("X-PagerDuty-Signature", format!("v1={other},v1={sig}"))],
                        body,
                    )
                },
            },
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
            let mut der =
                hex::decode("3059301306072a8648ce3d020106082a8648ce3d030107034200").unwrap();
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
}
