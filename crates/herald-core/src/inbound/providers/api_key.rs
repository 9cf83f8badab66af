//! A static key in a configured header (`header`), optionally after a `prefix` such as
//! `Bearer `, compared with the secrets.

use crate::inbound::validate::check_header_name;

use super::prelude::*;

pub(super) const PROVIDER: Provider = Provider {
    fields: &["header", "prefix"],
    check_config: Some(|v, problems| {
        check_header_name(problems, "header", v.header.as_deref(), true)
    }),
    // The key's header is configured, so it is hidden per configuration.
    configured_headers: Some(|v| v.header.iter().map(String::as_str).collect()),
    ..Provider::new(verify, &[])
};

fn verify(v: &Verification, req: &Request, _: i64, _: Tolerance) -> Result<(), VerifyError> {
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
