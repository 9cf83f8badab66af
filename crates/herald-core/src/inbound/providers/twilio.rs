//! Twilio: base64 HMAC-SHA1 keyed with the auth token over the URL followed by the form
//! parameters sorted by name (`name` + `value`, no separators). JSON bodies are signed over the
//! URL alone, whose `bodySHA256` query parameter must then equal the hex SHA-256 of the body.
//!
//! Like Twilio's own helpers, the URL is also tried with its default port added or removed,
//! because proxies disagree about `:443`.

use crate::inbound::digest::{ct_eq, sha256_hex};

use super::prelude::*;

pub(super) const PROVIDER: Provider = Provider {
    // Twilio posts forms without a type.
    dedup_key: Field::Header("I-Twilio-Idempotency-Token"),
    forward_headers: &["I-Twilio-Idempotency-Token"],
    ..Provider::new(verify, &["X-Twilio-Signature"])
};

fn verify(v: &Verification, req: &Request, _: i64, _: Tolerance) -> Result<(), VerifyError> {
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
    for url in url_variants(req.url) {
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
pub(in crate::inbound) fn url_variants(url: &str) -> Vec<String> {
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
