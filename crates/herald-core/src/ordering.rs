//! Per-resource ordering of inbound events (inbound.md, source option `ordering`): which events
//! are stale, which wait for a missing sequence, and which held events may go on.
//!
//! This module owns the rules only: parsing a sequence, the decision for one arriving event and
//! the plan for releasing held ones. It is pure — the per-key state (`last`, the held events)
//! lives in the store, which applies these rules inside the ingest transaction so that every
//! node decides the same way. It must not do I/O or look at the clock (callers pass deadlines).

use serde::{Deserialize, Serialize};

use crate::inbound::Extract;

/// Gap timeout when the source does not say (seconds).
pub const DEFAULT_GAP_TIMEOUT_S: i64 = 60;
/// Longest accepted gap timeout (one day): a held event keeps its body in the store.
pub const MAX_GAP_TIMEOUT_S: i64 = 86_400;

/// A source's `ordering` option: where the resource key and its sequence number come from.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct OrderingRule {
    /// The resource the sequence counts (e.g. `{"json": "/repository/id"}`).
    pub key: Extract,
    /// A number that increases per resource (e.g. `{"header": "X-Sequence"}`).
    pub sequence: Extract,
    /// How long later events wait for a missing sequence; 0 = never wait (only drop stale).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gap_timeout_seconds: Option<i64>,
}

impl OrderingRule {
    /// The gap timeout in milliseconds (default [`DEFAULT_GAP_TIMEOUT_S`]).
    pub fn gap_timeout_ms(&self) -> i64 {
        self.gap_timeout_seconds.unwrap_or(DEFAULT_GAP_TIMEOUT_S) * 1000
    }

    /// Every problem with the rule, as (field below `ordering`, message).
    pub fn problems(&self) -> Vec<(&'static str, String)> {
        let mut out = Vec::new();
        if matches!(self.key, Extract::BodyHash(_)) {
            out.push((
                "key",
                "must be {\"header\": name}, {\"json\": \"/pointer\"} or {\"value\": text}: a body hash names no resource".to_string(),
            ));
        }
        if !matches!(self.sequence, Extract::Header(_) | Extract::Json(_)) {
            out.push((
                "sequence",
                "must be {\"header\": name} or {\"json\": \"/pointer\"}: the number comes from the request".to_string(),
            ));
        }
        for (field, rule) in [("key", &self.key), ("sequence", &self.sequence)] {
            if let Extract::Json(p) = rule {
                if !p.is_empty() && !p.starts_with('/') {
                    out.push((
                        field,
                        format!("`{p}` is not a JSON Pointer (starts with `/`)"),
                    ));
                }
            }
            if let Extract::Header(h) = rule {
                if http::HeaderName::try_from(h.as_str()).is_err() {
                    out.push((field, format!("`{h}` is not a header name")));
                }
            }
        }
        if self
            .gap_timeout_seconds
            .is_some_and(|g| !(0..=MAX_GAP_TIMEOUT_S).contains(&g))
        {
            out.push((
                "gapTimeoutSeconds",
                format!("must be between 0 and {MAX_GAP_TIMEOUT_S}"),
            ));
        }
        out
    }
}

/// The sequence number in an extracted value: an integer, or a JSON number / numeric string
/// holding an integer (`"42"`, `42`, `42.0`). Anything else is no sequence.
pub fn parse_sequence(text: &str) -> Option<i64> {
    let t = text.trim();
    if let Ok(n) = t.parse::<i64>() {
        return Some(n);
    }
    // JSON numbers such as `1e3` or `42.0` reach us as their f64 text.
    let f = t.parse::<f64>().ok()?;
    let in_range = f.is_finite() && f.fract() == 0.0 && f.abs() < 9.0e15;
    in_range.then_some(f as i64)
}

/// What happens to an arriving event of a key whose last accepted sequence is `last`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Decision {
    /// Becomes a message now (and may release held successors).
    Accept,
    /// Not above `last`: logged as `stale`, not forwarded.
    Stale,
    /// A gap before it: waits for the missing sequence (or its deadline).
    Hold,
}

/// The rule for one event: the first event of a key sets the baseline; `seq <= last` is stale;
/// `last + 1` goes on; beyond it the event waits unless the source does not wait (`gap_ms` 0,
/// for sequences that are not contiguous counters, such as timestamps).
pub fn decide(last: Option<i64>, seq: i64, gap_ms: i64) -> Decision {
    match last {
        None => Decision::Accept,
        Some(l) if seq <= l => Decision::Stale,
        Some(l) if seq == l.saturating_add(1) || gap_ms <= 0 => Decision::Accept,
        Some(_) => Decision::Hold,
    }
}

/// What a release pass does with a key's held events.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ReleasePlan {
    /// Held sequences that become messages now, in this order.
    pub go: Vec<i64>,
    /// Held sequences overtaken by `last` (not above it any more): now stale.
    pub stale: Vec<i64>,
    /// The key's new last accepted sequence.
    pub last: i64,
}

/// Plans a release for a key: `held` are its held sequences (any order, distinct). Every held
/// sequence up to `force_through` goes on (its wait is over, so the gap before it is given up),
/// then every consecutive one after `last`. Held sequences not above `last` are stale: letting
/// them go would break the order already delivered.
pub fn plan_release(last: i64, held: &[i64], force_through: Option<i64>) -> ReleasePlan {
    let mut sorted = held.to_vec();
    sorted.sort_unstable();
    sorted.dedup();
    let mut plan = ReleasePlan {
        last,
        ..ReleasePlan::default()
    };
    for h in sorted {
        if h <= plan.last {
            plan.stale.push(h);
        } else if h == plan.last.saturating_add(1) || force_through.is_some_and(|f| h <= f) {
            plan.go.push(h);
            plan.last = h;
        } else {
            break;
        }
    }
    plan
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sequences_parse_from_integers_numbers_and_numeric_strings() {
        assert_eq!(parse_sequence("42"), Some(42));
        assert_eq!(parse_sequence(" -3 "), Some(-3));
        assert_eq!(parse_sequence("1000.0"), Some(1000));
        assert_eq!(parse_sequence("1.5"), None);
        assert_eq!(parse_sequence("abc"), None);
        assert_eq!(parse_sequence(""), None);
        assert_eq!(parse_sequence("NaN"), None);
        assert_eq!(parse_sequence("1e300"), None);
    }

    #[test]
    fn decisions_follow_the_last_accepted_sequence() {
        assert_eq!(decide(None, 7, 60_000), Decision::Accept);
        assert_eq!(decide(Some(3), 3, 60_000), Decision::Stale);
        assert_eq!(decide(Some(3), 2, 60_000), Decision::Stale);
        assert_eq!(decide(Some(3), 4, 60_000), Decision::Accept);
        assert_eq!(decide(Some(3), 5, 60_000), Decision::Hold);
        assert_eq!(decide(Some(3), 5, 0), Decision::Accept);
        assert_eq!(decide(Some(3), 3, 0), Decision::Stale);
        assert_eq!(decide(Some(i64::MAX), i64::MAX, 1), Decision::Stale);
    }

    #[test]
    fn a_filled_gap_releases_consecutive_held_events_only() {
        let p = plan_release(4, &[7, 5, 6, 9], None);
        assert_eq!(p.go, vec![5, 6, 7]);
        assert_eq!(p.last, 7);
        assert!(p.stale.is_empty());
        assert_eq!(plan_release(4, &[6], None).go, Vec::<i64>::new());
    }

    #[test]
    fn an_expired_wait_gives_up_the_gaps_below_it_in_order() {
        let p = plan_release(2, &[8, 5, 7, 9, 12], Some(7));
        assert_eq!(p.go, vec![5, 7, 8, 9]);
        assert_eq!(p.last, 9);
        assert_eq!(plan_release(2, &[5, 7, 9], Some(7)).go, vec![5, 7]);
        assert_eq!(plan_release(2, &[], Some(7)).last, 2);
    }

    #[test]
    fn held_events_overtaken_by_last_become_stale() {
        let p = plan_release(6, &[4, 6, 7, 9], None);
        assert_eq!(p.stale, vec![4, 6]);
        assert_eq!(p.go, vec![7]);
        assert_eq!(p.last, 7);
    }

    #[test]
    fn rules_report_every_problem() {
        let r = OrderingRule {
            key: Extract::BodyHash(true),
            sequence: Extract::Value("1".into()),
            gap_timeout_seconds: Some(-1),
        };
        let fields: Vec<_> = r.problems().into_iter().map(|(f, _)| f).collect();
        assert_eq!(fields, vec!["key", "sequence", "gapTimeoutSeconds"]);
        let ok = OrderingRule {
            key: Extract::Json("/id".into()),
            sequence: Extract::Header("X-Seq".into()),
            gap_timeout_seconds: Some(0),
        };
        assert!(ok.problems().is_empty());
        assert_eq!(ok.gap_timeout_ms(), 0);
    }
}
