//! The generic scheme: `header` carries `prefix` + the MAC (hex or base64, `algorithm`) of
//! `signedContent`, a template over `{body}`, `{timestamp}`, `{id}` and `{url}`; several
//! signatures separated by commas or spaces are accepted (sender-side rotation). Everything is
//! configured, so this file also owns the configuration's checks.

use crate::inbound::validate::check_header_name;
use crate::inbound::SignatureEncoding;

use super::prelude::*;

pub(super) const PROVIDER: Provider = Provider {
    // A timestamp exists only when the configuration names its header.
    window: Window::Configured(|v| match v.timestamp_header {
        Some(_) => Window::Both(DEFAULT_TOLERANCE_SECONDS),
        None => Window::None,
    }),
    fields: &[
        "header",
        "prefix",
        "algorithm",
        "encoding",
        "signedContent",
        "timestampHeader",
        "idHeader",
    ],
    check_config: Some(check_config),
    configured_headers: Some(|v| {
        let named = [&v.header, &v.timestamp_header];
        named.into_iter().flatten().map(String::as_str).collect()
    }),
    // With an `idHeader`, the sender's delivery id is the deduplication key.
    configured_dedup_key: Some(|v| v.id_header.clone().map(crate::inbound::Extract::Header)),
    ..Provider::new(verify, &[])
};

/// Placeholders of `signedContent`.
const PLACEHOLDERS: [&str; 4] = ["{body}", "{timestamp}", "{id}", "{url}"];

fn verify(v: &Verification, req: &Request, now: i64, tol: Tolerance) -> Result<(), VerifyError> {
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
    let alg = v.algorithm.unwrap_or_default();
    match_any(alg, &utf8_keys(v), &[&signed], &cands, h)?;
    match ts {
        Some(t) => tol.check(
            parse_ts(t, v.timestamp_header.as_deref().unwrap_or(""))?,
            now,
        ),
        None => Ok(()),
    }
}

/// The signed bytes: `template` with its placeholders replaced; other braces are kept.
pub(in crate::inbound) fn render_template(
    template: &str,
    req: &Request,
    ts: Option<&str>,
    id: Option<&str>,
) -> Vec<u8> {
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

/// The configured headers are valid names and the template only uses placeholders whose
/// header is configured.
fn check_config(v: &Verification, problems: &mut Vec<String>) {
    check_header_name(problems, "header", v.header.as_deref(), true);
    let ts_header = v.timestamp_header.as_deref();
    check_header_name(problems, "timestampHeader", ts_header, false);
    check_header_name(problems, "idHeader", v.id_header.as_deref(), false);
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
            "verification.signedContent uses {timestamp} but timestampHeader is not set".into(),
        );
    }
    if template.contains("{id}") && v.id_header.is_none() {
        problems.push("verification.signedContent uses {id} but idHeader is not set".into());
    }
    if v.timestamp_header.is_some() && !template.contains("{timestamp}") {
        // An unsigned timestamp can be rewritten by anyone, so checking it protects against
        // nothing while looking like replay protection.
        problems.push(
            "verification.timestampHeader is set but signedContent does not sign {timestamp}"
                .into(),
        );
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
