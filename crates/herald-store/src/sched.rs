//! The scheduling decisions both backends make the same way when they claim deliveries: which
//! endpoints may be served and with how many leases, what the throttle grants, and where an
//! endpoint queues next (`due_at`). Each backend loads an endpoint's [`Sched`] columns, asks
//! these functions what to do, and writes the outcome in its own SQL.
//!
//! No I/O here, and nothing that depends on a backend's dialect or locking: the SQL, and when
//! a query runs at all, stay in `sqlite/sched.rs` and `postgres/sched.rs`.

use herald_core::breaker::{Allowance, Breaker, BreakerState};
use herald_core::ids::{AppId, EndpointId};
use herald_core::throttle::Bucket;
use herald_core::Millis;

use crate::BreakerChange;

/// Most endpoints looked at by one claim.
pub(crate) const SCAN: usize = 64;

/// The scheduling columns of an endpoint, in this order.
pub(crate) const SCHED_COLS: &str = "id, app_id, disabled, paused_until, max_concurrency, \
    throttle_rate, ordering, breaker, breaker_until, breaker_cooldown, consec_failures, \
    win_start, win_total, win_failed, prev_total, prev_failed, tb_tokens, tb_at, options";

/// How many deliveries one request of the endpoint carries, from its `options` document: its
/// `batch.maxEvents`, else 1. A batching endpoint's concurrency cap counts requests, so the
/// claim may lease `maxConcurrency × maxEvents` of its deliveries at once. A document that
/// does not decode counts as no batching (reading the endpoint reports it).
pub(crate) fn per_request(options: &str) -> u32 {
    // Most endpoints have no batch: skip decoding their document on every claim.
    if !options.contains("\"batch\"") {
        return 1;
    }
    serde_json::from_str::<herald_core::endpoint_options::EndpointOptions>(options)
        .ok()
        .and_then(|o| o.batch)
        .map_or(1, |b| b.max_events.max(1))
}

/// The scheduling state of an endpoint ([`SCHED_COLS`]), decoded.
pub(crate) struct Sched {
    pub id: String,
    pub app_id: String,
    pub disabled: bool,
    pub paused_until: Option<Millis>,
    /// Concurrency cap in deliveries, at least 1 (`maxConcurrency`, times
    /// [`per_request`] for a batching endpoint).
    pub cap: u32,
    /// Throttle rate per second; `None` when unthrottled.
    pub rate: Option<u32>,
    pub fifo: bool,
    pub breaker: Breaker,
    pub bucket: Bucket,
}

/// What a claim may do with an endpoint before it looks at the endpoint's deliveries.
pub(crate) enum Gate {
    /// Disabled: its waiting deliveries fail, and it queues by what is still in flight.
    Disabled,
    /// Paused, or its breaker is open: nothing before this time.
    Wait(Millis),
    /// May have up to this many deliveries in flight.
    Serve(u32),
}

/// What the throttle granted one serve of an endpoint.
pub(crate) struct Grant {
    /// How many deliveries to lease.
    pub want: u32,
    /// When the next token comes, if the bucket ran dry.
    throttled_until: Option<Millis>,
}

impl Sched {
    /// The gate for a claim at `now`, and the breaker change (to be saved and reported) that
    /// looking at the breaker caused.
    pub fn admit(&mut self, now: Millis) -> (Gate, Option<BreakerChange>) {
        if self.disabled {
            return (Gate::Disabled, None);
        }
        if let Some(p) = self.paused_until.filter(|p| *p > now) {
            return (Gate::Wait(p), None);
        }
        let (allow, transition) = self.breaker.allowance(now);
        let change = transition.map(|t| BreakerChange {
            endpoint_id: EndpointId(self.id.clone()),
            app_id: AppId(self.app_id.clone()),
            to: t.to,
        });
        let gate = match allow {
            Allowance::Normal => Gate::Serve(self.cap),
            Allowance::Probe => Gate::Serve(1),
            Allowance::Blocked { until } => Gate::Wait(until),
        };
        (gate, change)
    }

    /// Takes up to `want` tokens from the throttle bucket (all of `want` when unthrottled).
    pub fn grant(&mut self, now: Millis, want: u32) -> Grant {
        match self.rate {
            Some(rate) => {
                let (want, throttled_until) = self.bucket.take(rate, now, want);
                Grant {
                    want,
                    throttled_until,
                }
            }
            None => Grant {
                want,
                throttled_until: None,
            },
        }
    }

    /// Settles `grant` after `got` deliveries were leased. Tokens not used by a delivery go
    /// back: a throttle never loses capacity to an empty queue. True when the bucket changed
    /// and must be saved.
    pub fn settle(&mut self, grant: &mut Grant, got: u32) -> bool {
        if self.rate.is_none() {
            return false;
        }
        self.bucket.tokens += (grant.want - got) as f64;
        if got < grant.want {
            grant.throttled_until = None;
        }
        true
    }

    /// Earliest time the endpoint may have something to claim, ignoring the throttle, given
    /// its earliest waiting delivery `pending`, its earliest lease expiry `lease`, and (looked
    /// up only when something is pending) how many leases it holds `leased`.
    pub fn due(
        &self,
        pending: Option<Millis>,
        lease: Option<Millis>,
        leased: Option<u32>,
    ) -> Option<Millis> {
        let cap = match self.breaker.state {
            BreakerState::Closed => self.cap,
            _ => 1,
        };
        let due = if leased.is_some_and(|n| n >= cap) {
            // Full: the next chance is a lease expiring (an attempt finishing refreshes sooner).
            lease
        } else {
            [pending, lease].into_iter().flatten().min()
        };
        if self.disabled {
            return due;
        }
        let mut hold = self.paused_until.unwrap_or(0);
        if self.breaker.state == BreakerState::Open {
            hold = hold.max(self.breaker.open_until);
        }
        due.map(|d| d.max(hold))
    }
}

impl Grant {
    /// Where a served endpoint queues next, `due` being its [`Sched::due`]. Round-robin: it
    /// queues behind those waiting since before `now`, and a throttled one waits for a token.
    pub fn requeue(&self, due: Option<Millis>, now: Millis) -> Option<Millis> {
        due.map(|d| d.max(now).max(self.throttled_until.unwrap_or(now)))
    }
}

/// A fair claim's walk over the endpoints that are due, in queue order: first everyone gets
/// at most an equal share; then what is left goes to the endpoints that took their whole share
/// (they may have more waiting), in the same order. An endpoint the walk does not reach keeps
/// its place at the front of the queue.
pub(crate) struct FairRound {
    limit: usize,
    share: u32,
    first: std::vec::IntoIter<Sched>,
    hungry: Vec<Sched>,
    second: Option<std::vec::IntoIter<Sched>>,
}

/// One endpoint's turn in a [`FairRound`]: its state, and how many deliveries it may take.
pub(crate) struct Turn {
    pub s: Sched,
    pub take: u32,
}

impl FairRound {
    /// The walk of a claim of `limit` over the `ready` endpoints.
    pub fn new(limit: usize, ready: Vec<Sched>) -> Self {
        FairRound {
            limit,
            share: (limit / ready.len().max(1)).max(1) as u32,
            first: ready.into_iter(),
            hungry: Vec::new(),
            second: None,
        }
    }

    /// The next endpoint to serve and how many it may take once `claimed` are leased; `None`
    /// when the claim is full or every endpoint was served.
    pub fn next(&mut self, claimed: usize) -> Option<Turn> {
        let left = self.limit.saturating_sub(claimed) as u32;
        if left == 0 {
            return None;
        }
        if let Some(second) = &mut self.second {
            return second.next().map(|s| Turn { s, take: left });
        }
        if let Some(s) = self.first.next() {
            let take = self.share.min(left);
            return Some(Turn { s, take });
        }
        self.second = Some(std::mem::take(&mut self.hungry).into_iter());
        self.next(claimed)
    }

    /// Reports that the endpoint of `turn`, from [`Self::next`], leased `got` deliveries.
    pub fn served(&mut self, turn: Turn, got: u32) {
        if self.second.is_none() && got == turn.take {
            self.hungry.push(turn.s);
        }
    }
}

/// The earliest waiting and the earliest leased delivery of a FIFO endpoint, from its heads
/// `(delivery id, status, next_at)`: only heads may be sent.
pub(crate) fn fifo_waits(heads: &[(i64, i64, Millis)]) -> (Option<Millis>, Option<Millis>) {
    let min_of = |status: i64| heads.iter().filter(|h| h.1 == status).map(|h| h.2).min();
    (
        min_of(crate::status::PENDING),
        min_of(crate::status::SENDING),
    )
}
