//! Mailgun: the signature travels in the body, `{"signature": {timestamp, token, signature}}`
//! (JSON webhooks) or as top-level `timestamp`, `token`, `signature` form fields (legacy
//! webhooks); hex HMAC-SHA256 over `timestamp + token`. No signature header to hide.

use std::collections::BTreeMap;

use serde_json::Value;

use super::prelude::*;

pub(super) const PROVIDER: Provider = Provider {
    // Signed but without a documented window: checked only when `toleranceSeconds` is set.
    window: Window::OptIn,
    event_type: Some(Field::Json("/event-data/event")),
    dedup_key: Field::Json("/event-data/id"),
    ..Provider::new(verify, &[])
};

fn verify(v: &Verification, req: &Request, now: i64, tol: Tolerance) -> Result<(), VerifyError> {
    let (ts_text, token, sig) = fields(req.body)?;
    let ts = parse_ts(&ts_text, "signature.timestamp")?;
    let cands: Vec<_> = decode_hex(&sig).into_iter().collect();
    let parts: [&[u8]; 2] = [ts_text.as_bytes(), token.as_bytes()];
    let keys = utf8_keys(v);
    match_any(HmacAlgorithm::Sha256, &keys, &parts, &cands, "signature.signature")?;
    tol.check(ts, now)
}

/// `(timestamp, token, signature)` from a JSON or a form body.
fn fields(body: &[u8]) -> Result<(String, String, String), VerifyError> {
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
