//! What an attempt's result means for its delivery and its endpoint (delivery.md "Outcome of
//! an attempt").
//!
//! A pure decision table: given the HTTP status (or transport error), the `Retry-After` header,
//! the endpoint's `permanentStatuses` and the time, say whether the delivery succeeded, must be
//! retried, ended for good, or whether the whole endpoint pauses. It does not schedule anything
//! and does not know about storage.

use chrono::{DateTime, Utc};

use crate::Millis;

/// Longest pause a `Retry-After` can impose on an endpoint.
pub const MAX_PAUSE_MS: i64 = 3_600_000;
/// Pause when a 429 carries no usable `Retry-After`.
pub const DEFAULT_PAUSE_MS: i64 = 60_000;
/// Shortest pause: `Retry-After: 0` must not turn into a tight loop of attempts that never
/// consume a retry.
pub const MIN_PAUSE_MS: i64 = 1_000;

/// Why no HTTP response was received; the stable codes prefix the stored `response` text.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TransportError {
    BlockedAddress,
    Timeout,
    Connect,
    Tls,
    Dns,
    Other,
    /// The endpoint's transformation threw, timed out, ran out of memory or returned something
    /// unusable: nothing was sent.
    Transformation,
}

impl TransportError {
    pub fn code(self) -> &'static str {
        match self {
            Self::BlockedAddress => "blocked_address",
            Self::Timeout => "timeout",
            Self::Connect => "connect_error",
            Self::Tls => "tls_error",
            Self::Dns => "dns_error",
            Self::Other => "request_error",
            Self::Transformation => "transformation_error",
        }
    }
    /// Label for the `outcome` metric and log field.
    pub fn outcome_label(self) -> &'static str {
        match self {
            Self::BlockedAddress => "blocked",
            Self::Timeout => "timeout",
            Self::Transformation => "transformation_error",
            _ => "connect_error",
        }
    }
}

/// The decision for one attempt.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// 2xx: the delivery is done.
    Success,
    /// A failure that consumes one retry of the schedule.
    Retry,
    /// Ends the delivery without further retries; `disable_endpoint` on 410 Gone.
    Permanent { disable_endpoint: bool },
    /// 429, or 503 with `Retry-After`: the endpoint pauses until `until`; the attempt does not
    /// consume a retry.
    PauseEndpoint { until: Millis },
}

/// Classifies an HTTP response.
pub fn classify_status(
    status: u16,
    retry_after: Option<&str>,
    permanent_statuses: &[u16],
    now: Millis,
) -> Outcome {
    if (200..300).contains(&status) {
        return Outcome::Success;
    }
    if status == 410 {
        return Outcome::Permanent {
            disable_endpoint: true,
        };
    }
    if permanent_statuses.contains(&status) {
        return Outcome::Permanent {
            disable_endpoint: false,
        };
    }
    let parsed = retry_after.and_then(|v| parse_retry_after(v, now));
    match (status, parsed) {
        (429, p) => Outcome::PauseEndpoint {
            until: now
                + p.unwrap_or(DEFAULT_PAUSE_MS)
                    .clamp(MIN_PAUSE_MS, MAX_PAUSE_MS),
        },
        (503, Some(p)) => Outcome::PauseEndpoint {
            until: now + p.clamp(MIN_PAUSE_MS, MAX_PAUSE_MS),
        },
        _ => Outcome::Retry,
    }
}

/// Parses `Retry-After` (delta-seconds or an HTTP-date) into a delay in ms from `now`.
pub fn parse_retry_after(value: &str, now: Millis) -> Option<i64> {
    let v = value.trim();
    if let Ok(secs) = v.parse::<u64>() {
        return Some((secs.min(i64::MAX as u64 / 1000) as i64) * 1000);
    }
    // IMF-fixdate ("Sun, 06 Nov 1994 08:49:37 GMT") is a subset of RFC 2822.
    let at: DateTime<Utc> = DateTime::parse_from_rfc2822(v).ok()?.with_timezone(&Utc);
    Some((at.timestamp_millis() - now).max(0))
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: Millis = 1_700_000_000_000;

    #[test]
    fn decision_table() {
        assert_eq!(classify_status(200, None, &[], NOW), Outcome::Success);
        assert_eq!(classify_status(204, None, &[], NOW), Outcome::Success);
        assert_eq!(
            classify_status(301, None, &[], NOW),
            Outcome::Retry,
            "3xx is a failure"
        );
        assert_eq!(classify_status(500, None, &[], NOW), Outcome::Retry);
        assert_eq!(
            classify_status(503, None, &[], NOW),
            Outcome::Retry,
            "503 without Retry-After"
        );
        assert_eq!(
            classify_status(410, None, &[], NOW),
            Outcome::Permanent {
                disable_endpoint: true
            }
        );
        assert_eq!(
            classify_status(400, None, &[400, 422], NOW),
            Outcome::Permanent {
                disable_endpoint: false
            }
        );
        assert_eq!(
            classify_status(429, None, &[], NOW),
            Outcome::PauseEndpoint {
                until: NOW + 60_000
            }
        );
        assert_eq!(
            classify_status(429, Some("7"), &[], NOW),
            Outcome::PauseEndpoint { until: NOW + 7_000 }
        );
        assert_eq!(
            classify_status(503, Some("99999"), &[], NOW),
            Outcome::PauseEndpoint {
                until: NOW + MAX_PAUSE_MS
            },
            "capped at one hour"
        );
        assert_eq!(
            classify_status(429, Some("0"), &[], NOW),
            Outcome::PauseEndpoint {
                until: NOW + MIN_PAUSE_MS
            },
            "Retry-After: 0 still pauses briefly"
        );
        assert_eq!(
            classify_status(429, Some("garbage"), &[], NOW),
            Outcome::PauseEndpoint {
                until: NOW + 60_000
            }
        );
    }

    #[test]
    fn retry_after_http_date() {
        // 2023-11-14T22:13:20Z is NOW; the date is 30 s later.
        let d = parse_retry_after("Tue, 14 Nov 2023 22:13:50 GMT", NOW).unwrap();
        assert_eq!(d, 30_000);
        assert_eq!(
            parse_retry_after("Tue, 14 Nov 2023 22:00:00 GMT", NOW),
            Some(0)
        );
    }
}
