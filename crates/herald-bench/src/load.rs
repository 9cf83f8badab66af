//! Load generation: closed loops (N workers, each sending its next request when the previous
//! one answered) and an open loop (requests started on a fixed schedule, whatever the answers
//! do). Every loop has a hard cap on the number of requests and a deadline.

use parking_lot::Mutex;
use std::future::Future;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use bytes::Bytes;
use hdrhistogram::Histogram;
use hyper::StatusCode;
use tokio::sync::Semaphore;

use crate::stats::{epoch, new_histogram, now_us};

/// Size of the padding that makes a payload about 1 KiB.
const PAD_LEN: usize = 990;

fn pad() -> &'static str {
    static PAD: OnceLock<String> = OnceLock::new();
    PAD.get_or_init(|| "x".repeat(PAD_LEN))
}

/// A 1 KiB JSON object carrying a sequence number and the time it was meant to be sent
/// (µs since the bench epoch; the receiver reads it back for publish→receipt latency).
pub fn payload(seq: u64, sent_us: u64) -> String {
    format!(r#"{{"seq":{seq},"sent_us":{sent_us},"pad":"{}"}}"#, pad())
}

/// The body of `POST /api/v1/app/{app}/msg` around [`payload`].
pub fn message(seq: u64, sent_us: u64) -> Bytes {
    Bytes::from(format!(
        r#"{{"eventType":"bench.event","payload":{}}}"#,
        payload(seq, sent_us)
    ))
}

/// What a loop did.
pub struct LoopResult {
    /// Requests answered with the expected status.
    pub ok: u64,
    /// Requests that failed or answered another status.
    pub errors: u64,
    /// Up to five distinct error descriptions.
    pub error_samples: Vec<String>,
    /// When the first request started / the last one ended (µs since the bench epoch).
    pub started_us: u64,
    pub ended_us: u64,
    /// Latency of the answered-as-expected requests (µs).
    pub latency: Histogram<u64>,
    /// Whether the loop stopped on its deadline rather than its count.
    pub hit_deadline: bool,
}

impl LoopResult {
    pub fn secs(&self) -> f64 {
        (self.ended_us.saturating_sub(self.started_us)) as f64 / 1e6
    }

    pub fn rate(&self) -> f64 {
        let s = self.secs();
        if s > 0.0 {
            self.ok as f64 / s
        } else {
            0.0
        }
    }
}

struct Shared {
    ok: AtomicU64,
    errors: AtomicU64,
    samples: Mutex<Vec<String>>,
    latency: Mutex<Histogram<u64>>,
}

impl Shared {
    fn new() -> Arc<Self> {
        Arc::new(Self {
            ok: AtomicU64::new(0),
            errors: AtomicU64::new(0),
            samples: Mutex::new(Vec::new()),
            latency: Mutex::new(new_histogram()),
        })
    }

    fn error(&self, e: String) {
        self.errors.fetch_add(1, Ordering::Relaxed);
        let mut s = self.samples.lock();
        if s.len() < 5 && !s.contains(&e) {
            s.push(e);
        }
    }

    fn outcome(&self, r: anyhow::Result<StatusCode>, expect: u16, lat_us: u64) -> bool {
        match r {
            Ok(s) if s.as_u16() == expect => {
                self.ok.fetch_add(1, Ordering::Relaxed);
                let _ = self.latency.lock().record(lat_us.max(1));
                true
            }
            Ok(s) => {
                self.error(format!("status {s}"));
                false
            }
            Err(e) => {
                self.error(format!("{e:#}"));
                false
            }
        }
    }

    fn finish(&self, started_us: u64, hit_deadline: bool) -> LoopResult {
        LoopResult {
            ok: self.ok.load(Ordering::Relaxed),
            errors: self.errors.load(Ordering::Relaxed),
            error_samples: self.samples.lock().clone(),
            started_us,
            ended_us: now_us(),
            latency: self.latency.lock().clone(),
            hit_deadline,
        }
    }
}

/// `workers` tasks each call `send(seq)` in turn until `cap` requests were started or
/// `duration` has passed. `expect` is the status that counts as success.
pub async fn closed_loop<F, Fut>(
    workers: usize,
    cap: u64,
    duration: Duration,
    expect: u16,
    send: F,
) -> LoopResult
where
    F: Fn(u64) -> Fut + Clone + Send + Sync + 'static,
    Fut: Future<Output = anyhow::Result<StatusCode>> + Send,
{
    let shared = Shared::new();
    let next = Arc::new(AtomicU64::new(0));
    let started_us = now_us();
    let deadline = Instant::now() + duration;
    let mut tasks = Vec::with_capacity(workers);
    for _ in 0..workers.max(1) {
        let (shared, next, send) = (shared.clone(), next.clone(), send.clone());
        tasks.push(tokio::spawn(async move {
            while Instant::now() < deadline {
                let seq = next.fetch_add(1, Ordering::Relaxed);
                if seq >= cap {
                    break;
                }
                let t = now_us();
                let r = send(seq).await;
                if !shared.outcome(r, expect, now_us() - t) {
                    // Do not spin on a refusing server.
                    tokio::time::sleep(Duration::from_millis(5)).await;
                }
            }
        }));
    }
    for t in tasks {
        let _ = t.await;
    }
    let hit_deadline = next.load(Ordering::Relaxed) < cap;
    shared.finish(started_us, hit_deadline)
}

/// Starts `send(seq, scheduled_us)` at `rate` per second for `count` requests, whatever the
/// answers do (at most `max_in_flight` outstanding; beyond that the schedule slips and the
/// slip is part of the measured latency, which runs from the scheduled time). Waits for the
/// outstanding requests at the end, at most `drain` long.
pub async fn open_loop<F, Fut>(
    rate: f64,
    count: u64,
    max_in_flight: usize,
    drain: Duration,
    expect: u16,
    send: F,
) -> LoopResult
where
    F: Fn(u64, u64) -> Fut + Clone + Send + Sync + 'static,
    Fut: Future<Output = anyhow::Result<StatusCode>> + Send,
{
    let shared = Shared::new();
    let slots = Arc::new(Semaphore::new(max_in_flight));
    let t0 = tokio::time::Instant::now();
    let started_us = now_us();
    let start_offset = t0.into_std().duration_since(epoch());
    for seq in 0..count {
        let at = Duration::from_secs_f64(seq as f64 / rate);
        tokio::time::sleep_until(t0 + at).await;
        let scheduled_us = (start_offset + at).as_micros() as u64;
        let Ok(permit) = slots.clone().acquire_owned().await else {
            break;
        };
        let (shared, send) = (shared.clone(), send.clone());
        tokio::spawn(async move {
            let r = send(seq, scheduled_us).await;
            shared.outcome(r, expect, now_us().saturating_sub(scheduled_us));
            drop(permit);
        });
    }
    let all = max_in_flight as u32;
    let _ = tokio::time::timeout(drain, slots.acquire_many(all)).await;
    shared.finish(started_us, false)
}
