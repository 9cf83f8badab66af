//! The driver every property-based fuzz target (`tests/fuzz_*.rs` of herald-core, herald-api
//! and herald-store) runs its properties through. The other crates include this file with
//! `#[path]`, so there is one copy of the knobs:
//!
//! - `HERALD_FUZZ_CASES`: cases per property (default: the property's own, small enough that the
//!   ordinary `cargo test` run stays short).
//! - `HERALD_FUZZ_SECONDS`: a time budget per property. The property then runs in batches until
//!   the budget is spent (or `HERALD_FUZZ_CASES` cases ran, when that is also set); this is what
//!   `scripts/fuzz.sh` uses for long runs.
//!
//! Each property prints `fuzz <name>: <n> cases in <s>s` (visible with `--nocapture`). A failure
//! is shrunk by proptest, its seed is saved under the crate's `proptest-regressions/` (replayed
//! first on every later run; commit those files), and the test panics with the minimal input.

#![allow(dead_code)]

use std::fmt::Debug;
use std::time::{Duration, Instant};

use proptest::strategy::Strategy;
use proptest::test_runner::{
    Config, FileFailurePersistence, RngSeed, TestCaseResult, TestError, TestRunner,
};

fn env_u64(name: &str) -> Option<u64> {
    std::env::var(name).ok().and_then(|s| s.trim().parse().ok())
}

/// Cases per property: `HERALD_FUZZ_CASES`, else `default`.
pub fn cases(default: u32) -> u32 {
    env_u64("HERALD_FUZZ_CASES")
        .map(|n| n.clamp(1, u64::from(u32::MAX)) as u32)
        .unwrap_or(default)
}

/// Runs `test` over `strategy`. `persist` is the regression file, relative to the crate
/// (`proptest-regressions/<target>.txt`).
pub fn run<S>(
    name: &str,
    persist: &'static str,
    default_cases: u32,
    strategy: S,
    test: impl Fn(S::Value) -> TestCaseResult,
) where
    S: Strategy,
    S::Value: Debug,
{
    let started = Instant::now();
    let base = Config {
        failure_persistence: Some(Box::new(FileFailurePersistence::Direct(persist))),
        // Shrinking a crash may take a while on big inputs; keep it bounded.
        max_shrink_iters: 4096,
        ..Config::default()
    };
    let budget = env_u64("HERALD_FUZZ_SECONDS").map(Duration::from_secs);
    let total_cases = match (budget, env_u64("HERALD_FUZZ_CASES")) {
        (Some(_), None) => u64::MAX,
        _ => u64::from(cases(default_cases)),
    };
    let batch = match budget {
        // Small batches so the deadline is checked often.
        Some(_) => u64::from(default_cases.clamp(1, 1024)),
        None => total_cases,
    };
    let mut done: u64 = 0;
    let mut round: u64 = 0;
    let mut last_report = Instant::now();
    loop {
        let n = batch.min(total_cases - done);
        let mut config = Config {
            cases: n as u32,
            ..base.clone()
        };
        if let RngSeed::Fixed(seed) = base.rng_seed {
            // A fixed PROPTEST_RNG_SEED would otherwise repeat the same batch forever.
            config.rng_seed = RngSeed::Fixed(seed.wrapping_add(round));
        }
        let mut runner = TestRunner::new(config);
        match runner.run(&strategy, &test) {
            Ok(()) => {}
            Err(TestError::Fail(why, input)) => {
                panic!("fuzz {name}: failed after {done}+ cases: {why}\nminimal input: {input:#?}")
            }
            Err(TestError::Abort(why)) => panic!("fuzz {name}: aborted: {why}"),
        }
        done += n;
        round += 1;
        let out_of_time = budget.is_none_or(|b| started.elapsed() >= b);
        if done >= total_cases || out_of_time {
            break;
        }
        if last_report.elapsed() >= Duration::from_secs(60) {
            last_report = Instant::now();
            eprintln!(
                "fuzz {name}: {done} cases so far ({:.0}s)",
                started.elapsed().as_secs_f64()
            );
        }
    }
    eprintln!(
        "fuzz {name}: {done} cases in {:.1}s",
        started.elapsed().as_secs_f64()
    );
}
