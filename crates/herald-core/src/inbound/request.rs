//! What the verifier sees of a request, why it may refuse it, and header reading helpers.
//!
//! Pure: no I/O. The helpers never put a header's value in an error, only its name.

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

/// A header's trimmed value; `Malformed` when it is not visible ASCII.
pub(crate) fn header<'r>(req: &'r Request, name: &str) -> Result<Option<&'r str>, VerifyError> {
    match req.headers.get(name) {
        None => Ok(None),
        Some(v) => v
            .to_str()
            .map(|s| Some(s.trim()))
            .map_err(|_| VerifyError::Malformed(format!("{name} is not visible ASCII"))),
    }
}

/// A header that must be present and non-empty.
pub(crate) fn require<'r>(req: &'r Request, name: &str) -> Result<&'r str, VerifyError> {
    match header(req, name)? {
        Some(v) if !v.is_empty() => Ok(v),
        _ => Err(VerifyError::Missing(name.to_string())),
    }
}

/// A header's trimmed value, `None` when absent or not ASCII (for lookups that never refuse).
pub(crate) fn header_value(req: &Request, name: &str) -> Option<String> {
    let v = req.headers.get(name)?.to_str().ok()?.trim();
    Some(v.to_string())
}

/// Unix seconds written as decimal text; `what` names the field in the error.
pub(crate) fn parse_ts(text: &str, what: &str) -> Result<i64, VerifyError> {
    text.trim()
        .parse()
        .map_err(|_| VerifyError::Malformed(format!("{what} is not a unix timestamp")))
}
