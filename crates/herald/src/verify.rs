//! `herald verify`: checks a received webhook's signature offline, for each outbound scheme,
//! and says precisely why it fails (missing or malformed header, stale timestamp, wrong secret
//! or modified body). Pure: the caller supplies headers, body and the current time.

use herald_core::signing::{
    sign_github, verify_standard, EndpointSecret, SignatureScheme, VerifyError,
};
use subtle::ConstantTimeEq;

/// Why verification failed, phrased for a person at a terminal.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum VerifyFailure {
    #[error("malformed secret: {0}")]
    MalformedSecret(String),
    #[error("missing header `{0}`")]
    MissingHeader(String),
    #[error("malformed header `{0}`")]
    MalformedHeader(String),
    #[error("stale timestamp: {skew_seconds} s away from now, tolerance is {tolerance} s")]
    StaleTimestamp { skew_seconds: i64, tolerance: i64 },
    #[error("signature mismatch: wrong secret, or the body was modified")]
    Mismatch,
}

fn header<'a>(headers: &'a [(String, String)], name: &str) -> Option<&'a str> {
    headers
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case(name))
        .map(|(_, v)| v.as_str())
}

/// Verifies `body` with `headers` under `scheme`.
pub fn verify(
    scheme: SignatureScheme,
    secret: &str,
    headers: &[(String, String)],
    body: &[u8],
    now_s: i64,
    tolerance_s: i64,
) -> Result<(), VerifyFailure> {
    match scheme {
        SignatureScheme::Github => {
            let name = "x-hub-signature-256";
            let got =
                header(headers, name).ok_or_else(|| VerifyFailure::MissingHeader(name.into()))?;
            let hex_part = got
                .strip_prefix("sha256=")
                .filter(|h| h.len() == 64 && h.bytes().all(|b| b.is_ascii_hexdigit()))
                .ok_or_else(|| VerifyFailure::MalformedHeader(name.into()))?;
            let want = sign_github(secret, body);
            if bool::from(want.as_bytes()[7..].ct_eq(hex_part.to_ascii_lowercase().as_bytes())) {
                Ok(())
            } else {
                Err(VerifyFailure::Mismatch)
            }
        }
        SignatureScheme::Standard | SignatureScheme::Svix => {
            let prefix = if scheme == SignatureScheme::Svix {
                "svix"
            } else {
                "webhook"
            };
            let key = EndpointSecret::parse(secret)
                .map_err(|e| VerifyFailure::MalformedSecret(e.to_string()))?;
            let h = |n: &str| header(headers, &format!("{prefix}-{n}"));
            verify_standard(
                key.key(),
                h("id"),
                h("timestamp"),
                h("signature"),
                body,
                now_s,
                tolerance_s,
            )
            .map_err(|e| match e {
                VerifyError::MissingHeader(n) => {
                    VerifyFailure::MissingHeader(n.replacen("webhook", prefix, 1))
                }
                VerifyError::MalformedHeader(n) => {
                    VerifyFailure::MalformedHeader(n.replacen("webhook", prefix, 1))
                }
                VerifyError::TimestampOutOfTolerance { skew_seconds } => {
                    VerifyFailure::StaleTimestamp {
                        skew_seconds,
                        tolerance: tolerance_s,
                    }
                }
                VerifyError::NoMatchingSignature => VerifyFailure::Mismatch,
            })
        }
    }
}
