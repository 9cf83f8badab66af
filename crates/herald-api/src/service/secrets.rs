//! Secret rotation shared by endpoints (signing secrets) and sources (verification secrets):
//! the new secret goes first, the older ones stay valid for a grace period.
//!
//! Pure list handling on stored secrets; it must not log or return a secret itself.

use herald_core::model::StoredSecret;

use crate::dto::Checks;

/// Default grace period of a rotated secret.
const DEFAULT_GRACE_S: i64 = 24 * 3600;
/// Longest grace period (7 days).
const MAX_GRACE_S: i64 = 7 * 86_400;
/// Secrets kept (the newest plus those still in grace).
const MAX_SECRETS: usize = 5;

/// The grace period a rotation asked for (default one day); out of range is a field problem.
pub fn grace_period(c: &mut Checks, asked: Option<i64>) -> i64 {
    let grace = asked.unwrap_or(DEFAULT_GRACE_S);
    if !(0..=MAX_GRACE_S).contains(&grace) {
        c.fail("gracePeriodSeconds", "must be between 0 and 604800");
    }
    grace
}

/// `secrets` after a rotation to `key` at `now`: the older ones expire within `grace_s`
/// seconds (never later than they already did), expired ones are dropped, and at most
/// [`MAX_SECRETS`] are kept.
pub fn rotate(secrets: &mut Vec<StoredSecret>, key: String, grace_s: i64, now: i64) {
    let until = now + grace_s * 1000;
    for old in secrets.iter_mut() {
        old.expires_at = Some(old.expires_at.map_or(until, |e| e.min(until)));
    }
    secrets.retain(|s| s.expires_at.is_some_and(|e| e > now));
    secrets.insert(0, StoredSecret::current(key));
    secrets.truncate(MAX_SECRETS);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn secret(key: &str, expires_at: Option<i64>) -> StoredSecret {
        StoredSecret {
            key: key.into(),
            expires_at,
        }
    }

    #[test]
    fn rotation_keeps_older_secrets_for_the_grace_period_only() {
        let mut s = vec![
            secret("b", None),
            secret("a", Some(1_500)),
            secret("x", Some(900)),
        ];
        rotate(&mut s, "c".into(), 1, 1_000);
        let kept: Vec<_> = s.iter().map(|s| (s.key.as_str(), s.expires_at)).collect();
        assert_eq!(kept, [("c", None), ("b", Some(2_000)), ("a", Some(1_500))]);
        rotate(&mut s, "d".into(), 0, 1_000);
        assert_eq!(s.len(), 1);
    }
}
