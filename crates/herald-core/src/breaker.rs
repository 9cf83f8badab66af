//! The per-endpoint circuit breaker (delivery.md "Circuit breaker and auto-disable").
//!
//! This module owns the breaker's arithmetic only: which results open it, how long it stays
//! open, when a probe may go and what the probe's result does. The state itself is a small
//! value the store keeps in the endpoint's row and updates in the same transaction as the
//! attempt, so every node of a cluster sees one breaker per endpoint. Nothing here touches a
//! clock or the network: callers pass `now`.
//!
//! The failure-rate rule ("≥ 50 % of ≥ 20 attempts in the last 60 s") uses a sliding-window
//! counter: the counts of the current fixed 60 s window plus the previous window's counts
//! weighted by how much of it still overlaps the last 60 s. That is the usual approximation
//! (it keeps the state to five integers instead of a log of attempts) and is exact whenever
//! traffic is steady within a window.

use crate::Millis;

/// Consecutive failed attempts that open the breaker.
pub const CONSECUTIVE_FAILURES: u32 = 5;
/// Length of the failure-rate window.
pub const WINDOW_MS: i64 = 60_000;
/// The failure-rate rule needs at least this many attempts in the window.
pub const MIN_ATTEMPTS: u32 = 20;
/// First cool-down; it doubles on each failed probe.
pub const BASE_COOLDOWN_MS: i64 = 30_000;
/// Longest cool-down.
pub const MAX_COOLDOWN_MS: i64 = 600_000;

/// The operator's cool-down settings (`breaker_cooldown_ms`, `breaker_max_cooldown_ms`).
/// The opening rules (5 in a row, or half of 20 in 60 s) are fixed by the contract; how long
/// an open breaker waits is an operator's trade-off between sparing a struggling receiver and
/// delivering soon after it recovers.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BreakerPolicy {
    /// First cool-down; it doubles on each failed probe.
    pub cooldown_ms: i64,
    /// Longest cool-down.
    pub max_cooldown_ms: i64,
}

impl Default for BreakerPolicy {
    fn default() -> Self {
        Self {
            cooldown_ms: BASE_COOLDOWN_MS,
            max_cooldown_ms: MAX_COOLDOWN_MS,
        }
    }
}

crate::codes::coded_enum! {
    #[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
    pub enum BreakerState {
        /// Deliveries flow (subject to concurrency and throttle).
        #[default]
        Closed = 0 => "closed",
        /// Nothing is sent until `open_until`.
        Open = 1 => "open",
        /// One probe is in flight; its result closes or re-opens the breaker.
        HalfOpen = 2 => "half_open",
    }
    else Closed;
    /// The label used in the API's `state` field and the transition metric.
    label as_str;
}

/// One endpoint's breaker, as stored.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Breaker {
    pub state: BreakerState,
    /// While open: when the probe may go.
    pub open_until: Millis,
    /// The cool-down used by the last opening (0 when never opened since the last close).
    pub cooldown_ms: i64,
    pub consecutive_failures: u32,
    /// Start of the current fixed window (a multiple of [`WINDOW_MS`]).
    pub window_start: Millis,
    pub window_total: u32,
    pub window_failed: u32,
    pub prev_total: u32,
    pub prev_failed: u32,
}

/// What a call changed, for metrics and logs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Transition {
    pub to: BreakerState,
}

/// How many deliveries the breaker lets an endpoint have in flight right now.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Allowance {
    /// Closed: the endpoint's own caps apply.
    Normal,
    /// Half-open: exactly one probe; nothing more until it ends.
    Probe,
    /// Open: nothing before this time.
    Blocked { until: Millis },
}

impl Breaker {
    /// What may be sent at `now`. An open breaker whose cool-down has passed turns half-open
    /// here (the caller is about to send the probe), which is reported as a transition.
    pub fn allowance(&mut self, now: Millis) -> (Allowance, Option<Transition>) {
        match self.state {
            BreakerState::Closed => (Allowance::Normal, None),
            BreakerState::HalfOpen => (Allowance::Probe, None),
            BreakerState::Open if now < self.open_until => (
                Allowance::Blocked {
                    until: self.open_until,
                },
                None,
            ),
            BreakerState::Open => {
                self.state = BreakerState::HalfOpen;
                (
                    Allowance::Probe,
                    Some(Transition {
                        to: BreakerState::HalfOpen,
                    }),
                )
            }
        }
    }

    /// Records the result of one attempt with the default cool-downs.
    pub fn record(&mut self, now: Millis, success: bool) -> Option<Transition> {
        self.record_with(&BreakerPolicy::default(), now, success)
    }

    /// Records the result of one attempt (a pause for 429/503 + Retry-After is not a result:
    /// the endpoint asked to wait, it did not fail).
    pub fn record_with(
        &mut self,
        policy: &BreakerPolicy,
        now: Millis,
        success: bool,
    ) -> Option<Transition> {
        let (base, max) = (
            policy.cooldown_ms,
            policy.max_cooldown_ms.max(policy.cooldown_ms),
        );
        self.roll(now);
        self.window_total += 1;
        if success {
            self.consecutive_failures = 0;
        } else {
            self.window_failed += 1;
            self.consecutive_failures += 1;
        }
        match (self.state, success) {
            (BreakerState::HalfOpen, true) => {
                // Closing resets the failure window and the cool-down.
                *self = Breaker {
                    window_start: self.window_start,
                    ..Breaker::default()
                };
                Some(Transition {
                    to: BreakerState::Closed,
                })
            }
            (BreakerState::HalfOpen, false) => {
                let cooldown = (self.cooldown_ms.max(base / 2).saturating_mul(2)).clamp(base, max);
                self.open(now, cooldown);
                Some(Transition {
                    to: BreakerState::Open,
                })
            }
            (BreakerState::Closed, false) if self.should_open(now) => {
                self.open(now, base);
                Some(Transition {
                    to: BreakerState::Open,
                })
            }
            // Results of attempts that started before the breaker opened change nothing more.
            _ => None,
        }
    }

    /// A manual reset (the endpoint was re-enabled): closed, with a fresh window.
    pub fn reset(&mut self) {
        *self = Breaker::default();
    }

    fn open(&mut self, now: Millis, cooldown: i64) {
        self.state = BreakerState::Open;
        self.cooldown_ms = cooldown;
        self.open_until = now + cooldown;
    }

    fn should_open(&self, now: Millis) -> bool {
        if self.consecutive_failures >= CONSECUTIVE_FAILURES {
            return true;
        }
        let (total, failed) = self.estimate(now);
        total >= MIN_ATTEMPTS as f64 && failed * 2.0 >= total
    }

    /// Attempts and failures in the last [`WINDOW_MS`], estimated.
    pub fn estimate(&self, now: Millis) -> (f64, f64) {
        let elapsed = (now - self.window_start).clamp(0, WINDOW_MS) as f64;
        let weight = 1.0 - elapsed / WINDOW_MS as f64;
        (
            self.window_total as f64 + self.prev_total as f64 * weight,
            self.window_failed as f64 + self.prev_failed as f64 * weight,
        )
    }

    fn roll(&mut self, now: Millis) {
        let start = now - now.rem_euclid(WINDOW_MS);
        if start == self.window_start {
            return;
        }
        if start - self.window_start == WINDOW_MS {
            self.prev_total = self.window_total;
            self.prev_failed = self.window_failed;
        } else {
            self.prev_total = 0;
            self.prev_failed = 0;
        }
        self.window_start = start;
        self.window_total = 0;
        self.window_failed = 0;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const T0: Millis = 1_700_000_000_000;

    /// A breaker opened by five failures in a row, one a millisecond from `T0`.
    fn opened() -> Breaker {
        let mut b = Breaker::default();
        for i in 0..5 {
            b.record(T0 + i, false);
        }
        b
    }

    #[test]
    fn five_consecutive_failures_open() {
        let mut b = Breaker::default();
        for i in 0..4 {
            assert_eq!(b.record(T0 + i, false), None);
        }
        assert_eq!(
            b.record(T0 + 4, false),
            Some(Transition {
                to: BreakerState::Open
            })
        );
        assert_eq!(b.open_until, T0 + 4 + BASE_COOLDOWN_MS);
        assert_eq!(
            b.allowance(T0 + 5).0,
            Allowance::Blocked {
                until: T0 + 4 + BASE_COOLDOWN_MS
            }
        );
    }

    #[test]
    fn a_success_resets_the_consecutive_count() {
        let mut b = Breaker::default();
        for round in 0..10 {
            for i in 0..4 {
                b.record(T0 + round * 10 + i, false);
                assert!(b.consecutive_failures < 5);
            }
            if b.state == BreakerState::Closed {
                b.record(T0 + round * 10 + 5, true);
            }
            // 4 of 5 fail: the rate rule opens once 20 attempts are seen.
            if b.state == BreakerState::Open {
                assert!(round >= 3, "opened before 20 attempts (round {round})");
                return;
            }
        }
        panic!("80% failures over 50 attempts never opened the breaker");
    }

    #[test]
    fn failure_rate_rule_needs_twenty_attempts_and_half_failing() {
        let mut b = Breaker::default();
        // Alternate failure/success: 50 % failing, never 5 in a row.
        for i in 0..19 {
            b.record(T0 + i, i % 2 == 1);
        }
        assert_eq!(b.state, BreakerState::Closed, "19 attempts are not enough");
        // 20th attempt: a failure, 10 of 20 failed.
        assert!(b.record(T0 + 19, false).is_some());
        assert_eq!(b.state, BreakerState::Open);

        // 40 % failing never opens.
        let mut b = Breaker::default();
        for i in 0..200 {
            b.record(T0 + i, i % 5 >= 2);
        }
        assert_eq!(b.state, BreakerState::Closed);
    }

    #[test]
    fn old_failures_age_out_of_the_window() {
        let mut b = Breaker::default();
        for i in 0..15 {
            b.record(T0 + i, i % 4 == 0);
        }
        // Three windows later only successes are recent.
        let later = T0 + 3 * WINDOW_MS;
        for i in 0..10 {
            b.record(later + i, i % 3 != 0);
        }
        assert_eq!(b.state, BreakerState::Closed);
        let (total, _) = b.estimate(later + 10);
        assert!(total <= 10.0, "{total}");
    }

    #[test]
    fn probe_success_closes_and_resets() {
        let mut b = opened();
        let after = b.open_until;
        assert_eq!(
            b.allowance(after),
            (
                Allowance::Probe,
                Some(Transition {
                    to: BreakerState::HalfOpen
                })
            )
        );
        assert_eq!(
            b.allowance(after).0,
            Allowance::Probe,
            "still one probe, no new transition"
        );
        assert_eq!(
            b.record(after + 10, true),
            Some(Transition {
                to: BreakerState::Closed
            })
        );
        assert_eq!(b.consecutive_failures, 0);
        assert_eq!(b.cooldown_ms, 0);
        assert_eq!(b.allowance(after + 11).0, Allowance::Normal);
    }

    #[test]
    fn failed_probes_double_the_cooldown_up_to_ten_minutes() {
        let mut b = Breaker::default();
        let mut now = T0;
        for _ in 0..5 {
            b.record(now, false);
        }
        let mut seen = vec![b.cooldown_ms];
        for _ in 0..8 {
            now = b.open_until;
            assert_eq!(b.allowance(now).0, Allowance::Probe);
            assert_eq!(
                b.record(now + 1, false),
                Some(Transition {
                    to: BreakerState::Open
                })
            );
            seen.push(b.cooldown_ms);
        }
        assert_eq!(
            seen,
            vec![30_000, 60_000, 120_000, 240_000, 480_000, 600_000, 600_000, 600_000, 600_000]
        );
    }

    #[test]
    fn results_while_open_do_not_extend_it() {
        let mut b = opened();
        let until = b.open_until;
        assert_eq!(b.record(T0 + 100, false), None);
        assert_eq!(b.record(T0 + 101, true), None);
        assert_eq!(b.open_until, until);
        assert_eq!(b.state, BreakerState::Open);
    }

    #[test]
    fn operator_cool_downs_replace_the_defaults() {
        let p = BreakerPolicy {
            cooldown_ms: 1_000,
            max_cooldown_ms: 3_000,
        };
        let mut b = Breaker::default();
        let mut t = 0;
        for _ in 0..CONSECUTIVE_FAILURES {
            t += 1;
            b.record_with(&p, t, false);
        }
        assert_eq!(b.state, BreakerState::Open);
        assert_eq!(b.open_until, t + 1_000);
        for expect in [2_000, 3_000, 3_000] {
            t = b.open_until;
            assert_eq!(b.allowance(t).0, Allowance::Probe);
            b.record_with(&p, t, false);
            assert_eq!(b.open_until, t + expect);
        }
    }
}
