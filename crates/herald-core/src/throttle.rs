//! The per-endpoint token bucket behind `throttleRate` (delivery.md "Isolation and fairness").
//!
//! A bucket is two numbers (tokens, last refill) that the store keeps in the endpoint's row and
//! updates in the transaction that claims deliveries, so the limit holds across every node that
//! claims from the same database. This module only does the arithmetic; it never sleeps.
//!
//! Capacity is a tenth of a second's worth of tokens (at least one): the limit is smooth — a
//! receiver never sees more than `rate + capacity` requests in any one-second span — while a
//! fast endpoint is still served in batches rather than one claim per token.

use crate::Millis;

/// Bucket capacity for `rate` deliveries per second.
pub fn capacity(rate: u32) -> f64 {
    (rate as f64 / 10.0).max(1.0)
}

/// Stored bucket state.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Bucket {
    pub tokens: f64,
    pub at: Millis,
}

impl Bucket {
    /// A bucket holding one token: after creation, re-enabling or a breaker closing, delivery
    /// restarts at the rate rather than with a burst.
    pub fn fresh(now: Millis) -> Self {
        Self {
            tokens: 1.0,
            at: now,
        }
    }

    /// Refills for the time since the last call and takes up to `want` whole tokens.
    /// Returns how many were granted and, when none is left, when the next one is due.
    pub fn take(&mut self, rate: u32, now: Millis, want: u32) -> (u32, Option<Millis>) {
        let rate = rate.max(1) as f64;
        let elapsed = (now - self.at).max(0) as f64 / 1000.0;
        self.tokens = (self.tokens + elapsed * rate).min(capacity(rate as u32));
        self.at = now.max(self.at);
        let granted = (self.tokens.floor() as u32).min(want);
        self.tokens -= granted as f64;
        let next = if self.tokens < 1.0 {
            let wait_ms = ((1.0 - self.tokens) / rate * 1000.0).ceil() as i64;
            Some(now + wait_ms.max(1))
        } else {
            None
        };
        (granted, next)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn starts_with_one_token_then_follows_the_rate() {
        let mut b = Bucket::fresh(0);
        assert_eq!(b.take(5, 0, 10).0, 1);
        let (got, next) = b.take(5, 0, 10);
        assert_eq!(got, 0);
        assert_eq!(next, Some(200));
        assert_eq!(b.take(5, 200, 10).0, 1);
    }

    #[test]
    fn capacity_caps_a_burst_after_idleness() {
        let mut b = Bucket::fresh(0);
        // An hour idle at 100/s still grants at most 10 at once.
        assert_eq!(b.take(100, 3_600_000, 1000).0, 10);
        assert_eq!(capacity(1), 1.0);
        assert_eq!(capacity(5), 1.0);
        assert_eq!(capacity(1000), 100.0);
    }

    proptest! {
        /// Over any run of claims, grants never exceed rate × elapsed + capacity + the
        /// initial token.
        #[test]
        fn never_exceeds_rate(rate in 1u32..2000, steps in proptest::collection::vec((0i64..700, 1u32..500), 1..300)) {
            let mut b = Bucket::fresh(0);
            let mut now = 0;
            let mut granted = 0u64;
            for (dt, want) in steps {
                now += dt;
                granted += b.take(rate, now, want).0 as u64;
            }
            let bound = rate as f64 * now as f64 / 1000.0 + capacity(rate) + 1.0;
            prop_assert!(granted as f64 <= bound, "granted {granted} > {bound}");
        }
    }
}
