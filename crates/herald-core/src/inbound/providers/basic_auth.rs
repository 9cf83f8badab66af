//! HTTP Basic authentication: `Authorization: Basic base64(user:password)` against secrets of
//! the form `user:password`.

use super::prelude::*;

pub(super) const PROVIDER: Provider = Provider {
    secret_format: Some(SecretFormat {
        valid: |s| s.contains(':'),
        must_be: "`user:password`",
    }),
    ..Provider::new(verify, &["Authorization"])
};

fn verify(v: &Verification, req: &Request, _: i64, _: Tolerance) -> Result<(), VerifyError> {
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
