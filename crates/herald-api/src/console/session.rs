//! Console and portal sessions: a sealed cookie, re-authorised on every request.
//!
//! Both interfaces share this code and differ only by their [`Realm`]: the console's cookie
//! admits the admin token and unscoped API tokens, the portal's only a token scoped to one
//! application (whose rights the portal session then has, exactly). A cookie of one realm
//! never opens in the other (its sealed purpose differs).
//!
//! The cookie holds the SHA-256 of the token that signed in (never the token), the session's
//! CSRF token and the time it was last used, sealed with XChaCha20-Poly1305 under a key
//! derived from the key at rest (so every node of a cluster opens it and nothing is stored).
//! Each request re-checks the hash exactly as the API checks a bearer token: a deleted API
//! token or a changed admin token ends its sessions at once. This module owns the cookie's
//! format and attributes; it must not render pages or decide what a caller may see.

use axum::http::{header, HeaderMap, HeaderValue};
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use base64::Engine;
use herald_core::Millis;
use herald_store::StoreError;
use rand::RngCore;
use serde::{Deserialize, Serialize};
use subtle::ConstantTimeEq;

use crate::extract::{sha256, Auth, Caller};
use crate::state::AppState;

/// The interface a session belongs to: where its pages live and which tokens may sign in.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Realm {
    /// `/console/`: the operator (admin token or an unscoped API token).
    Console,
    /// `/portal/`: one application's consumer (a token scoped to that application).
    Portal,
}

impl Realm {
    /// The realm whose pages `path` is under.
    pub fn of_path(path: &str) -> Self {
        if path == "/portal" || path.starts_with("/portal/") {
            Self::Portal
        } else {
            Self::Console
        }
    }

    /// The path every page and link of the realm starts with (also the cookie's `Path`).
    pub fn base(self) -> &'static str {
        match self {
            Self::Console => "/console",
            Self::Portal => "/portal",
        }
    }

    /// The session cookie's name.
    pub fn cookie(self) -> &'static str {
        match self {
            Self::Console => "herald_console",
            Self::Portal => "herald_portal",
        }
    }

    /// Purpose and format version sealed into the cookie.
    fn version(self) -> &'static str {
        match self {
            Self::Console => "console-session-1",
            Self::Portal => "portal-session-1",
        }
    }
}
/// A cookie longer than this is not ours (ours is about 200 bytes); it is ignored unread.
const MAX_COOKIE: usize = 1024;
/// A session used again after this long gets a fresh cookie (sliding idle expiry) — not on
/// every request, so an open page does not rewrite its cookie every second. A quarter of the
/// idle time when that is shorter, so a short idle time still slides.
const REFRESH_AFTER_MS: Millis = 60_000;

fn refresh_after(st: &AppState) -> Millis {
    REFRESH_AFTER_MS.min(idle_ms(st) / 4)
}

fn idle_ms(st: &AppState) -> Millis {
    i64::try_from(st.inner.console.idle_secs)
        .unwrap_or(i64::MAX)
        .saturating_mul(1000)
}

/// What the sealed cookie holds.
#[derive(Serialize, Deserialize)]
struct Sealed {
    /// Purpose and format version: a sealed value of any other kind never opens as a session.
    v: String,
    /// SHA-256 of the token (base64url).
    h: String,
    /// CSRF token of the session.
    c: String,
    /// Last use (Unix millis).
    t: Millis,
}

/// A signed-in operator (or, in the portal, consumer): who the token is now, and the
/// session's CSRF token.
#[derive(Clone, Debug)]
pub struct Operator {
    pub realm: Realm,
    pub caller: Caller,
    pub token_hash: [u8; 32],
    pub csrf: String,
    pub last_used: Millis,
}

impl Operator {
    /// The same authorisation the JSON routes get for this token.
    pub fn auth(&self) -> Auth {
        Auth {
            caller: self.caller.clone(),
            token_hash: self.token_hash,
        }
    }
}

/// Who a token (by its hash) is, if it may use `realm`: for the console the admin token or an
/// API token without an application scope; for the portal only a token scoped to one
/// application. Any other token is refused (`None`), as is an unknown one.
pub async fn caller_of(
    st: &AppState,
    realm: Realm,
    hash: [u8; 32],
) -> Result<Option<Caller>, StoreError> {
    if bool::from(hash.ct_eq(&st.inner.admin_token_hash)) {
        return Ok((realm == Realm::Console).then_some(Caller::Admin));
    }
    Ok(match (realm, st.store().find_token(hash).await?) {
        (Realm::Console, Some(rec)) if rec.app_id.is_none() => Some(Caller::Token),
        (Realm::Portal, Some(rec)) => rec.app_id.map(Caller::App),
        _ => None,
    })
}

/// A new session for a token already checked with [`caller_of`].
pub fn start(realm: Realm, caller: Caller, token: &str, now: Millis) -> Operator {
    let mut raw = [0u8; 24];
    rand::thread_rng().fill_bytes(&mut raw);
    Operator {
        realm,
        caller,
        token_hash: sha256(token.as_bytes()),
        csrf: B64.encode(raw),
        last_used: now,
    }
}

/// How a request's cookie turned out.
pub enum Opened {
    /// No console cookie at all.
    Absent,
    /// A cookie that does not open, has expired, or whose token no longer may: it is cleared.
    Invalid,
    Valid(Operator),
}

/// Opens the `realm` session of a request and re-authorises its token.
pub async fn open(
    st: &AppState,
    realm: Realm,
    headers: &HeaderMap,
    now: Millis,
) -> Result<Opened, StoreError> {
    let Some(value) = cookie_value(headers, realm.cookie()) else {
        return Ok(Opened::Absent);
    };
    let Some(sealed) = unseal(st, realm, value) else {
        return Ok(Opened::Invalid);
    };
    // A last use in the future (beyond clock skew between nodes) was not written by us.
    if now.saturating_sub(sealed.t) > idle_ms(st) || sealed.t > now + REFRESH_AFTER_MS {
        return Ok(Opened::Invalid);
    }
    let Some(hash) = B64
        .decode(&sealed.h)
        .ok()
        .and_then(|h| <[u8; 32]>::try_from(h).ok())
    else {
        return Ok(Opened::Invalid);
    };
    Ok(match caller_of(st, realm, hash).await? {
        Some(caller) => Opened::Valid(Operator {
            realm,
            caller,
            token_hash: hash,
            csrf: sealed.c,
            last_used: sealed.t,
        }),
        None => Opened::Invalid,
    })
}

fn unseal(st: &AppState, realm: Realm, value: &str) -> Option<Sealed> {
    if value.len() > MAX_COOKIE {
        return None;
    }
    let text = st.inner.console.key.open_sealed(value).ok()?;
    let s: Sealed = serde_json::from_str(&text).ok()?;
    (s.v == realm.version() && !s.c.is_empty()).then_some(s)
}

/// The first cookie called `name` of the request.
fn cookie_value<'h>(headers: &'h HeaderMap, name: &str) -> Option<&'h str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|kv| kv.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v.trim())
}

/// Whether the session should get a fresh cookie now.
pub fn needs_refresh(st: &AppState, op: &Operator, now: Millis) -> bool {
    now - op.last_used > refresh_after(st)
}

/// `Set-Cookie` carrying `op` as last used at `now`.
pub fn set_cookie(st: &AppState, op: &Operator, now: Millis) -> HeaderValue {
    let sealed = Sealed {
        v: op.realm.version().into(),
        h: B64.encode(op.token_hash),
        c: op.csrf.clone(),
        t: now,
    };
    let text = serde_json::to_string(&sealed).expect("a plain struct serialises");
    let value = st.inner.console.key.encrypt(&text);
    attributes(st, op.realm, &value, st.inner.console.idle_secs)
}

/// `Set-Cookie` that removes the session cookie of `realm`.
pub fn clear_cookie(st: &AppState, realm: Realm) -> HeaderValue {
    attributes(st, realm, "", 0)
}

fn attributes(st: &AppState, realm: Realm, value: &str, max_age: u64) -> HeaderValue {
    let https = st.inner.public_url.starts_with("https://");
    // The portal lives in an <iframe> of the operator's product, another site: its cookie must
    // be sent there, which browsers allow only for `SameSite=None; Secure`, so over HTTPS.
    // Over plain HTTP it stays `Strict` (a frame of the same site still gets it).
    let same_site = match (realm, https) {
        (Realm::Portal, true) => "None",
        _ => "Strict",
    };
    let secure = if https { "; Secure" } else { "" };
    let (name, path) = (realm.cookie(), realm.base());
    HeaderValue::from_str(&format!(
        "{name}={value}; Path={path}; HttpOnly; SameSite={same_site}; Max-Age={max_age}{secure}"
    ))
    .expect("base64 and fixed attributes are valid header text")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_first_console_cookie_is_read() {
        let mut h = HeaderMap::new();
        h.insert(
            header::COOKIE,
            HeaderValue::from_static("a=1; herald_console=x; herald_console=y"),
        );
        assert_eq!(cookie_value(&h, "herald_console"), Some("x"));
        h.insert(
            header::COOKIE,
            HeaderValue::from_static("herald_consolex=1"),
        );
        assert_eq!(cookie_value(&h, "herald_console"), None);
    }
}
