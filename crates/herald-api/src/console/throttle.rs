//! Sign-in rate limiting for the console and the portal: a token bucket per client address
//! (`console_sign_in_per_minute` attempts a minute, refilled continuously), spent by each
//! refused attempt that was checked against the store. When a client's bucket is empty, every
//! sign-in from it answers 429 — a right token too — until it refills.
//!
//! The client is the TCP peer's address (Herald has no trusted-proxy setting, so
//! `X-Forwarded-For` is never believed); IPv6 clients count per /64, the block one host
//! usually holds. The table is bounded: past [`MAX_CLIENTS`] entries, full buckets are dropped
//! first, then the least recently used. This module only counts; it must not log or see the
//! token.

use std::collections::HashMap;
use std::net::{IpAddr, Ipv6Addr};
use std::time::Instant;

use parking_lot::Mutex;

/// Client addresses remembered at most.
pub const MAX_CLIENTS: usize = 10_000;

/// The buckets of every client address that failed to sign in lately.
#[derive(Debug)]
pub struct SignInLimiter {
    per_minute: f64,
    buckets: Mutex<HashMap<IpAddr, Bucket>>,
}

#[derive(Clone, Copy, Debug)]
struct Bucket {
    tokens: f64,
    at: Instant,
}

impl SignInLimiter {
    pub fn new(per_minute: u64) -> Self {
        Self {
            per_minute: per_minute.max(1) as f64,
            buckets: Mutex::new(HashMap::new()),
        }
    }

    /// The key of a client: its address, or its /64 for IPv6.
    fn key(ip: IpAddr) -> IpAddr {
        match ip {
            IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
                Some(v4) => IpAddr::V4(v4),
                None => {
                    let s = v6.segments();
                    IpAddr::V6(Ipv6Addr::new(s[0], s[1], s[2], s[3], 0, 0, 0, 0))
                }
            },
            v4 => v4,
        }
    }

    fn refilled(&self, b: Bucket, now: Instant) -> f64 {
        let secs = now.saturating_duration_since(b.at).as_secs_f64();
        (b.tokens + secs * self.per_minute / 60.0).min(self.per_minute)
    }

    /// Whether `ip` may try to sign in now; `Err(seconds)` until its next attempt.
    pub fn check(&self, ip: IpAddr, now: Instant) -> Result<(), u64> {
        let map = self.buckets.lock();
        match map.get(&Self::key(ip)) {
            Some(b) => {
                let tokens = self.refilled(*b, now);
                if tokens >= 1.0 {
                    Ok(())
                } else {
                    Err(((1.0 - tokens) * 60.0 / self.per_minute).ceil().max(1.0) as u64)
                }
            }
            None => Ok(()),
        }
    }

    /// Spends one attempt of `ip` (a refused sign-in).
    pub fn failed(&self, ip: IpAddr, now: Instant) {
        let key = Self::key(ip);
        let mut map = self.buckets.lock();
        if !map.contains_key(&key) && map.len() >= MAX_CLIENTS {
            self.make_room(&mut map, now);
        }
        let full = Bucket {
            tokens: self.per_minute,
            at: now,
        };
        let b = map.entry(key).or_insert(full);
        b.tokens = (self.refilled(*b, now) - 1.0).max(0.0);
        b.at = now;
    }

    /// Drops the buckets that have refilled, else the least recently used one.
    fn make_room(&self, map: &mut HashMap<IpAddr, Bucket>, now: Instant) {
        map.retain(|_, b| self.refilled(*b, now) < self.per_minute);
        if map.len() >= MAX_CLIENTS {
            if let Some(oldest) = map.iter().min_by_key(|(_, b)| b.at).map(|(k, _)| *k) {
                map.remove(&oldest);
            }
        }
    }
}

/// The client address of a request: the TCP peer the server recorded (unspecified when the
/// router is driven without the server, as some tests do).
pub fn client_ip(
    peer: Option<axum::Extension<axum::extract::ConnectInfo<std::net::SocketAddr>>>,
) -> IpAddr {
    peer.map_or(IpAddr::V4(std::net::Ipv4Addr::UNSPECIFIED), |p| p.0 .0.ip())
}

/// Whether `ip` may sign in now; `Err(words, seconds)` for the 429 otherwise (logged, with the
/// address and never the token).
pub fn admit(
    st: &crate::state::AppState,
    ip: IpAddr,
    realm: &'static str,
) -> Result<(), (String, u64)> {
    st.inner
        .console
        .sign_ins
        .check(ip, Instant::now())
        .map_err(|secs| {
            tracing::warn!(client = %ip, realm, "sign-in refused: too many attempts");
            (
                format!(
                    "Too many sign-in attempts from your address. Wait {secs} seconds, then try again."
                ),
                secs,
            )
        })
}

/// Counts a refused sign-in of `ip` (logged with the address and reason, never the token).
pub fn refused(st: &crate::state::AppState, ip: IpAddr, realm: &'static str, why: &'static str) {
    tracing::info!(client = %ip, realm, reason = why, "sign-in refused");
    st.inner.console.sign_ins.failed(ip, Instant::now());
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn a_client_is_refused_after_its_attempts_and_refills() {
        let l = SignInLimiter::new(3);
        let (ip, other) = ("10.0.0.1".parse().unwrap(), "10.0.0.2".parse().unwrap());
        let t0 = Instant::now();
        for _ in 0..3 {
            assert!(l.check(ip, t0).is_ok());
            l.failed(ip, t0);
        }
        assert_eq!(l.check(ip, t0), Err(20));
        assert!(l.check(other, t0).is_ok(), "per client");
        assert!(l.check(ip, t0 + Duration::from_secs(20)).is_ok());
    }

    #[test]
    fn ipv6_counts_per_64_and_the_table_stays_bounded() {
        let l = SignInLimiter::new(1);
        let t0 = Instant::now();
        l.failed("2001:db8::1".parse().unwrap(), t0);
        assert!(l.check("2001:db8::ffff".parse().unwrap(), t0).is_err());
        assert!(l.check("2001:db8:0:1::1".parse().unwrap(), t0).is_ok());
        for i in 0..(MAX_CLIENTS as u32 + 50) {
            l.failed(IpAddr::V4(i.into()), t0);
        }
        assert!(l.buckets.lock().len() <= MAX_CLIENTS);
    }
}
