//! Polling endpoints (`url` = `poll:`): the URL that marks them and the consumer's position
//! (the opaque `iterator` of `GET …/endpoint/{ep}/poll`).
//!
//! It owns the iterator's encoding and its validation (which endpoint it belongs to); it must
//! not read or acknowledge deliveries (the store does) nor authenticate callers (the API does).
//! The iterator is base64url text, opaque to consumers: they pass back what they were given.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;

use crate::Millis;

/// The `url` of a polling endpoint: Herald holds its deliveries for the consumer to fetch.
pub const POLL_URL: &str = "poll:";

/// Whether `url` names a polling endpoint.
pub fn is_poll_url(url: &str) -> bool {
    url == POLL_URL
}

/// Most events one poll answers.
pub const MAX_POLL_LIMIT: usize = 1000;
/// Events one poll answers when the consumer names no `limit`.
pub const DEFAULT_POLL_LIMIT: usize = 100;

/// Version tag of the encoding, so a later encoding can tell old iterators apart.
const TAG: &str = "p1";

/// Where a consumer of a polling endpoint stands.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PollCursor {
    /// The endpoint the iterator belongs to (an iterator of another endpoint is refused).
    pub endpoint_id: String,
    /// Every delivery handed out up to this delivery position is acknowledged when the
    /// iterator comes back (0: nothing yet).
    pub acked: i64,
    /// Only messages created at or after this time (`since`), carried so the seek holds for
    /// the following pages.
    pub since: Millis,
}

/// Why an iterator was refused.
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub enum CursorError {
    #[error("the iterator is not one this server issued")]
    Malformed,
    #[error("the iterator belongs to another endpoint")]
    OtherEndpoint,
}

impl PollCursor {
    /// The position before anything was handed out.
    pub fn start(endpoint_id: &str, since: Millis) -> Self {
        Self {
            endpoint_id: endpoint_id.to_string(),
            acked: 0,
            since,
        }
    }

    /// The opaque text handed to the consumer.
    pub fn encode(&self) -> String {
        let plain = format!("{TAG}.{}.{}.{}", self.endpoint_id, self.acked, self.since);
        URL_SAFE_NO_PAD.encode(plain)
    }

    /// Reads an iterator back and checks that it belongs to `endpoint_id`.
    pub fn decode(text: &str, endpoint_id: &str) -> Result<Self, CursorError> {
        // Far longer than any iterator this server issues: refuse before decoding.
        if text.len() > 256 {
            return Err(CursorError::Malformed);
        }
        let bytes = URL_SAFE_NO_PAD
            .decode(text)
            .map_err(|_| CursorError::Malformed)?;
        let plain = String::from_utf8(bytes).map_err(|_| CursorError::Malformed)?;
        let mut parts = plain.split('.');
        let (Some(TAG), Some(ep), Some(acked), Some(since), None) = (
            parts.next(),
            parts.next(),
            parts.next(),
            parts.next(),
            parts.next(),
        ) else {
            return Err(CursorError::Malformed);
        };
        let acked: i64 = acked.parse().map_err(|_| CursorError::Malformed)?;
        let since: Millis = since.parse().map_err(|_| CursorError::Malformed)?;
        if acked < 0 || since < 0 || !crate::ids::EndpointId::looks_like(ep) {
            return Err(CursorError::Malformed);
        }
        if ep != endpoint_id {
            return Err(CursorError::OtherEndpoint);
        }
        Ok(Self {
            endpoint_id: ep.to_string(),
            acked,
            since,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ids::EndpointId;

    #[test]
    fn an_iterator_round_trips_and_stays_with_its_endpoint() {
        let ep = EndpointId::generate();
        let c = PollCursor {
            endpoint_id: ep.0.clone(),
            acked: 42,
            since: 1_700_000_000_000,
        };
        let text = c.encode();
        assert!(!text.contains(&ep.0), "opaque: {text}");
        assert_eq!(PollCursor::decode(&text, &ep.0), Ok(c));
        let other = EndpointId::generate();
        assert_eq!(
            PollCursor::decode(&text, &other.0),
            Err(CursorError::OtherEndpoint)
        );
    }

    #[test]
    fn garbage_iterators_are_refused() {
        let ep = EndpointId::generate();
        let forged = |s: &str| URL_SAFE_NO_PAD.encode(s);
        for bad in [
            String::new(),
            "!!!".into(),
            "x".repeat(10_000),
            forged("p1"),
            forged(&format!("p2.{}.1.0", ep.0)),
            forged(&format!("p1.{}.-1.0", ep.0)),
            forged(&format!("p1.{}.1.0.9", ep.0)),
            forged(&format!("p1.{}.1e9.0", ep.0)),
            forged("p1.ep_nope.1.0"),
            URL_SAFE_NO_PAD.encode([0xff, 0xfe, 0x00]),
        ] {
            assert_eq!(
                PollCursor::decode(&bad, &ep.0),
                Err(CursorError::Malformed),
                "{bad}"
            );
        }
    }

    #[test]
    fn only_the_poll_url_marks_a_polling_endpoint() {
        assert!(is_poll_url("poll:"));
        for u in ["poll://x", "POLL:", "poll", "https://poll:"] {
            assert!(!is_poll_url(u), "{u}");
        }
    }
}
