//! Retry schedule arithmetic: when the next attempt of a failed delivery is due.
//!
//! Pure functions of (schedule, failures so far, random draw). Every delay carries ±20 % jitter
//! so that endpoints which failed together do not retry together (no retry storms). This module
//! does not classify responses (see `outcome`) and does not touch the clock.

use rand::Rng;

/// Default schedule after the first attempt, in seconds (overview.md "Defaults").
pub const DEFAULT_SCHEDULE_SECS: [u64; 10] = [1, 5, 30, 60, 300, 1800, 7200, 21600, 43200, 86400];
/// Jitter as a fraction of each delay.
pub const JITTER_FRACTION: f64 = 0.20;

/// The retry policy of one endpoint (global schedule or the endpoint's `retrySchedule`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Delay before retry n+1 (index 0 = delay after the first failed attempt), in milliseconds.
    pub schedule_ms: Vec<u64>,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        Self::from_secs(&DEFAULT_SCHEDULE_SECS)
    }
}

impl RetryPolicy {
    pub fn from_secs(secs: &[u64]) -> Self {
        Self {
            schedule_ms: secs.iter().map(|s| s.saturating_mul(1000)).collect(),
        }
    }

    /// Total attempts a delivery may get: the first one plus one per schedule entry.
    pub fn max_attempts(&self) -> u32 {
        self.schedule_ms.len() as u32 + 1
    }

    /// The un-jittered delay after `failures` failed attempts (1 = after the first failure), or
    /// `None` when the schedule is exhausted and the delivery must end `failed`.
    pub fn base_delay_ms(&self, failures: u32) -> Option<u64> {
        let idx = failures.checked_sub(1)? as usize;
        self.schedule_ms.get(idx).copied()
    }

    /// The jittered delay after `failures` failed attempts, drawing from `rng`.
    pub fn next_delay_ms<R: Rng + ?Sized>(&self, failures: u32, rng: &mut R) -> Option<u64> {
        self.base_delay_ms(failures)
            .map(|base| jitter(base, rng.gen_range(-1.0..=1.0)))
    }
}

/// Applies jitter: `unit` in [-1, 1] maps to a factor in [1 - 20 %, 1 + 20 %].
pub fn jitter(base_ms: u64, unit: f64) -> u64 {
    let unit = unit.clamp(-1.0, 1.0);
    let factor = 1.0 + JITTER_FRACTION * unit;
    (base_ms as f64 * factor).round().max(0.0) as u64
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn default_schedule_has_ten_retries_and_ends() {
        let p = RetryPolicy::default();
        assert_eq!(p.max_attempts(), 11);
        assert_eq!(p.base_delay_ms(0), None, "no delay before any failure");
        assert_eq!(p.base_delay_ms(1), Some(1_000));
        assert_eq!(p.base_delay_ms(10), Some(86_400_000));
        assert_eq!(p.base_delay_ms(11), None, "schedule exhausted");
    }

    #[test]
    fn jitter_bounds_are_exactly_twenty_percent() {
        assert_eq!(jitter(1000, -1.0), 800);
        assert_eq!(jitter(1000, 1.0), 1200);
        assert_eq!(jitter(1000, 0.0), 1000);
        assert_eq!(jitter(1000, 7.0), 1200, "out-of-range draws are clamped");
    }

    proptest! {
        #[test]
        fn jittered_delay_stays_within_bounds(
            secs in proptest::collection::vec(0u64..200_000, 1..20),
            failures in 1u32..20,
            seed in any::<u64>(),
        ) {
            use rand::SeedableRng;
            let p = RetryPolicy::from_secs(&secs);
            let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
            match p.next_delay_ms(failures, &mut rng) {
                Some(d) => {
                    let base = secs[(failures - 1) as usize] * 1000;
                    prop_assert!(d as f64 >= base as f64 * 0.8 - 1.0);
                    prop_assert!(d as f64 <= base as f64 * 1.2 + 1.0);
                }
                None => prop_assert!(failures as usize > secs.len()),
            }
        }
    }
}
