//! Timestamp windows: how far a provider's signed timestamp may be from `now`.
//!
//! Providers declare a [`Window`] in their descriptor; this file turns it and the
//! configuration's `toleranceSeconds` into the [`Tolerance`] a verifier checks. It knows no
//! provider by name.

use super::{Verification, VerifyError};

/// Default tolerance for the standard-webhooks family, Slack and Zoom (their SDKs use 5 min).
pub const DEFAULT_TOLERANCE_SECONDS: i64 = 300;

/// How far a provider's signed timestamp may be from `now`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Tolerance {
    /// No timestamp check (the scheme has none, or `toleranceSeconds: 0`).
    Unchecked,
    /// `|now - ts| <= n` ("±300 s" in the spec).
    Both(i64),
    /// `now - ts <= n`: only too-old requests are refused ("past 300 s" in the spec).
    PastOnly(i64),
}

impl Tolerance {
    /// `Ok` when `ts` (unix seconds) is acceptable at `now`.
    pub fn check(self, ts: i64, now: i64) -> Result<(), VerifyError> {
        self.check_skew(now.saturating_sub(ts), 1)
    }

    /// [`Tolerance::check`] in milliseconds, for providers whose timestamp is in milliseconds
    /// (so that a 60 s window means 60 s, not 60 s plus rounding).
    pub(crate) fn check_millis(self, ts_ms: i64, now: i64) -> Result<(), VerifyError> {
        self.check_skew(now.saturating_mul(1000).saturating_sub(ts_ms), 1000)
    }

    /// `skew` = now - ts in units of `1/per_second` seconds.
    fn check_skew(self, skew: i64, per_second: i64) -> Result<(), VerifyError> {
        let ok = match self {
            Tolerance::Unchecked => true,
            Tolerance::Both(n) => skew.saturating_abs() <= n.saturating_mul(per_second),
            Tolerance::PastOnly(n) => skew <= n.saturating_mul(per_second),
        };
        if ok {
            Ok(())
        } else {
            Err(VerifyError::Stale)
        }
    }
}

/// A provider's timestamp rule, before `toleranceSeconds` is applied.
#[derive(Clone, Copy)]
pub(crate) enum Window {
    /// The scheme carries no timestamp: `toleranceSeconds` has no effect.
    None,
    /// Both directions, with this default window in seconds.
    Both(i64),
    /// Only too-old requests, with this default window in seconds.
    PastOnly(i64),
    /// The provider signs a timestamp but documents no window: checked (both directions) only
    /// when `toleranceSeconds` is set.
    OptIn,
    /// Decided by the configuration (the generic scheme's optional timestamp header).
    Configured(fn(&Verification) -> Window),
}

impl Window {
    /// The window for this configuration (resolves [`Window::Configured`]).
    pub(crate) fn effective(self, v: &Verification) -> Window {
        match self {
            Window::Configured(f) => f(v).effective(v),
            w => w,
        }
    }

    /// The effective [`Tolerance`]: the default window replaced by `toleranceSeconds`, `0`
    /// switching the check off.
    pub(crate) fn tolerance(self, v: &Verification) -> Tolerance {
        if v.tolerance_seconds == Some(0) {
            return Tolerance::Unchecked;
        }
        let or = |d: i64| v.tolerance_seconds.unwrap_or(d);
        match self.effective(v) {
            Window::Both(d) => Tolerance::Both(or(d)),
            Window::PastOnly(d) => Tolerance::PastOnly(or(d)),
            Window::OptIn => v
                .tolerance_seconds
                .map_or(Tolerance::Unchecked, Tolerance::Both),
            Window::None | Window::Configured(_) => Tolerance::Unchecked,
        }
    }
}
