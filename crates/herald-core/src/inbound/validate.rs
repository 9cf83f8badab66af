//! Configuration checks of a `verification` object, for a 422 listing every problem at once.
//!
//! The rules common to all schemes are here; what is particular to a scheme (the fields it
//! accepts, the format of its secrets, extra checks) comes from its provider descriptor.
//! A problem names a field or a secret's position, never a secret's value.

use super::providers::provider;
use super::tolerance::Window;
use super::Verification;

/// Problems with a verification config, for a 422 (e.g. hmac without header, missing secrets,
/// bad public key). `none` is valid (choosing it is already explicit, since `scheme` has no
/// default); see [`super::warnings`] for what to tell the user about it.
pub fn validate(v: &Verification) -> Vec<String> {
    let mut problems = Vec::new();
    for k in v.extra.keys() {
        problems.push(format!("verification: unknown field `{k}`"));
    }
    let s = v.scheme;
    let p = provider(s);
    for (field, is_set) in v.set_fields() {
        if is_set && !p.fields.contains(&field) {
            problems.push(format!("verification.{field} does not apply to scheme {s}"));
        }
    }
    if let Some(t) = v.tolerance_seconds {
        if t < 0 {
            problems.push("verification.toleranceSeconds must be 0 or more".into());
        } else if matches!(p.window.effective(v), Window::None) {
            problems.push(format!(
                "verification.toleranceSeconds has no effect: scheme {s} carries no timestamp"
            ));
        }
    }
    if !p.needs_secrets {
        if !v.secrets.is_empty() {
            problems.push(format!("verification.secrets must be empty for scheme {s}"));
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
        } else if let Some(format) = p.secret_format.filter(|f| !(f.valid)(secret)) {
            problems.push(format!("{at} must be {}", format.must_be));
        }
    }
    if let Some(check) = p.check_config {
        check(v, &mut problems);
    }
    problems
}

/// A configured header name: required or optional, and a valid HTTP header name when set.
pub(crate) fn check_header_name(
    problems: &mut Vec<String>,
    field: &str,
    name: Option<&str>,
    required: bool,
) {
    match name {
        None if required => problems.push(format!("verification.{field} is required")),
        None => {}
        Some(n) if http::HeaderName::from_bytes(n.as_bytes()).is_err() => {
            problems.push(format!("verification.{field} is not a valid header name"))
        }
        Some(_) => {}
    }
}
