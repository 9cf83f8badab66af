//! Publishing load: concurrent tasks publish numbered messages (`{"seq": n, …}`) until told to
//! stop or a count is reached, and record what each request came to: accepted (2xx, with the
//! message ID), refused (an error status, with whether its body was the `{code, detail}` JSON
//! the contract promises), or in doubt (no answer: the server died or the request timed out).

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use parking_lot::Mutex;
use serde_json::{json, Value};

use crate::api::Api;

#[derive(Default)]
pub struct Ledger {
    /// seq → msg id, for every publish answered 2xx.
    pub accepted: HashMap<u64, String>,
    /// Error answers by status.
    pub refused: BTreeMap<u16, u64>,
    /// Error answers whose body was not `{"code": …, "detail": …}`.
    pub refused_without_json: u64,
    /// Requests that got no answer.
    pub in_doubt: u64,
}

#[derive(Clone)]
pub struct Publisher {
    pub ledger: Arc<Mutex<Ledger>>,
    next_seq: Arc<AtomicU64>,
    pad: Arc<String>,
}

impl Publisher {
    /// `pad_bytes` of filler per payload.
    pub fn new(pad_bytes: usize) -> Self {
        Self {
            ledger: Arc::default(),
            next_seq: Arc::new(AtomicU64::new(1)),
            pad: Arc::new("x".repeat(pad_bytes)),
        }
    }

    /// Runs `tasks` concurrent publishers against `app` until `stop` is set or `max` publishes
    /// were started in all (across runs of this publisher).
    pub async fn run(&self, api: &Api, app: &str, tasks: usize, max: u64, stop: Arc<AtomicBool>) {
        let mut handles = Vec::new();
        for _ in 0..tasks {
            let (me, api, app, stop) = (self.clone(), api.clone(), app.to_string(), stop.clone());
            handles.push(tokio::spawn(async move {
                while !stop.load(Ordering::Relaxed) {
                    let seq = me.next_seq.fetch_add(1, Ordering::Relaxed);
                    if seq > max {
                        break;
                    }
                    me.publish_one(&api, &app, seq).await;
                }
            }));
        }
        for h in handles {
            let _ = h.await;
        }
    }

    async fn publish_one(&self, api: &Api, app: &str, seq: u64) {
        let body = json!({"eventType": "torture.event", "payload": {"seq": seq, "pad": *self.pad}});
        let r = tokio::time::timeout(
            Duration::from_secs(30),
            api.post(&format!("/app/{app}/msg"), &body),
        )
        .await;
        let mut l = self.ledger.lock();
        match r {
            Ok(Ok((s, v))) if (200..300).contains(&s) => {
                if let Some(id) = v["id"].as_str() {
                    l.accepted.insert(seq, id.to_string());
                }
            }
            Ok(Ok((s, v))) => {
                *l.refused.entry(s).or_default() += 1;
                if !(v["code"].is_string() && (v["detail"].is_string() || v["detail"].is_array())) {
                    l.refused_without_json += 1;
                }
            }
            _ => l.in_doubt += 1,
        }
    }

    pub fn accepted(&self) -> HashMap<u64, String> {
        self.ledger.lock().accepted.clone()
    }

    pub fn published_up_to(&self) -> u64 {
        self.next_seq.load(Ordering::Relaxed).saturating_sub(1)
    }
}

/// Sets up one application with `endpoints` endpoints at `url_of(i)`; returns the app ID.
pub async fn setup_app(
    api: &Api,
    name: &str,
    endpoints: usize,
    url_of: impl Fn(usize) -> String,
) -> anyhow::Result<String> {
    let app = api.post_ok("/app", &json!({"name": name}), 201).await?;
    let app = app["id"].as_str().unwrap_or_default().to_string();
    for i in 0..endpoints {
        api.post_ok(
            &format!("/app/{app}/endpoint"),
            &json!({"url": url_of(i), "uid": format!("ep-{i}")}),
            201,
        )
        .await?;
    }
    Ok(app)
}

/// Waits until `done()` or `deadline` passes, checking every 100 ms.
pub async fn wait_until(deadline: Duration, mut done: impl FnMut() -> bool) -> bool {
    let end = tokio::time::Instant::now() + deadline;
    while tokio::time::Instant::now() < end {
        if done() {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    done()
}

/// The figures every scenario reports about delivery against its ledger.
pub fn delivery_check(
    accepted: &HashMap<u64, String>,
    endpoints: usize,
    seen: &HashMap<(String, String), crate::receiver::Seen>,
) -> (usize, Vec<String>) {
    let mut lost = Vec::new();
    let mut delivered = 0;
    for id in accepted.values() {
        for i in 0..endpoints {
            let key = (id.clone(), format!("/ep/{i}"));
            match seen.get(&key) {
                Some(s) if s.successes > 0 => delivered += 1,
                _ => lost.push(format!("{id} → /ep/{i}")),
            }
        }
    }
    (delivered, lost)
}

/// Messages the receiver got that no publish produced (a seq above every started publish).
pub fn phantoms(max_seq: u64, seen: &HashMap<(String, String), crate::receiver::Seen>) -> usize {
    seen.values()
        .filter(|s| s.seq.is_none_or(|q| q == 0 || q > max_seq))
        .count()
}

fn ledger_json(l: &Ledger) -> Value {
    json!({
        "accepted": l.accepted.len(),
        "refused": l.refused.iter().map(|(k, v)| (k.to_string(), json!(v))).collect::<serde_json::Map<_, _>>(),
        "refusedWithoutJsonBody": l.refused_without_json,
        "inDoubt": l.in_doubt,
    })
}

/// What the receiver got of everything a publisher had accepted.
pub struct Delivery {
    pub want: usize,
    pub drained: bool,
    pub delivered: usize,
    pub lost: Vec<String>,
    pub phantoms: usize,
    pub seen: HashMap<(String, String), crate::receiver::Seen>,
}

impl Delivery {
    /// Waits until every accepted message reached every endpoint, or `deadline` passed.
    pub async fn wait(
        pubs: &Publisher,
        rx: &crate::receiver::Receiver,
        endpoints: usize,
        deadline: Duration,
    ) -> Self {
        let accepted = pubs.accepted();
        let want = accepted.len() * endpoints;
        let drained = wait_until(deadline, || {
            delivery_check(&accepted, endpoints, &rx.snapshot()).0 >= want
        })
        .await;
        let seen = rx.snapshot();
        let (delivered, lost) = delivery_check(&accepted, endpoints, &seen);
        Self {
            want,
            drained,
            delivered,
            lost,
            phantoms: phantoms(pubs.published_up_to(), &seen),
            seen,
        }
    }

    /// Nothing accepted is missing and nothing arrived that nobody published.
    pub fn complete(&self) -> bool {
        self.drained && self.lost.is_empty() && self.phantoms == 0
    }

    /// Adds the delivery figures to a scenario's report.
    /// A scenario's report: its own `fields` (a JSON object) with what every scenario reports
    /// added — `seed`, `publishes` (the ledger), `seconds` since `started`, `ok` and this
    /// delivery check — paired with `ok`, as the scenarios return it.
    pub fn report(
        &self,
        seed: u64,
        started: Instant,
        ledger: &Ledger,
        ok: bool,
        mut fields: Value,
    ) -> (Value, bool) {
        if let Value::Object(m) = &mut fields {
            m.insert("seed".into(), json!(seed));
            m.insert("publishes".into(), ledger_json(ledger));
            m.insert("seconds".into(), json!(started.elapsed().as_secs_f64()));
            m.insert("ok".into(), json!(ok));
        }
        self.report_into(&mut fields);
        (fields, ok)
    }

    fn report_into(&self, report: &mut Value) {
        if let Value::Object(m) = report {
            m.insert("deliveriesExpected".into(), json!(self.want));
            m.insert("deliveredAtLeastOnce".into(), json!(self.delivered));
            m.insert("lost".into(), json!(self.lost.len()));
            m.insert(
                "lostSample".into(),
                json!(self.lost.iter().take(10).collect::<Vec<_>>()),
            );
            m.insert("phantoms".into(), json!(self.phantoms));
        }
    }
}

impl Publisher {
    /// Publishes in rounds of 64 (4 tasks) until one round has at least 32 refusals (the disk
    /// is full) or `deadline` passes; returns whether the refusals came.
    pub async fn fill_until_refused(&self, api: &Api, app: &str, deadline: Duration) -> bool {
        let end = std::time::Instant::now() + deadline;
        for _ in 0..10_000 {
            if std::time::Instant::now() > end {
                break;
            }
            let before = self.ledger.lock().refused.values().sum::<u64>();
            let max = self.published_up_to() + 64;
            self.run(api, app, 4, max, Arc::new(AtomicBool::new(false)))
                .await;
            if self.ledger.lock().refused.values().sum::<u64>() - before >= 32 {
                return true;
            }
        }
        false
    }

    /// Publishes in rounds of 20 until 20 more were accepted or `deadline` passes.
    pub async fn until_accepted_again(&self, api: &Api, app: &str, deadline: Duration) -> bool {
        let before = self.ledger.lock().accepted.len();
        let end = std::time::Instant::now() + deadline;
        while std::time::Instant::now() < end {
            let max = self.published_up_to() + 20;
            self.run(api, app, 2, max, Arc::new(AtomicBool::new(false)))
                .await;
            if self.ledger.lock().accepted.len() >= before + 20 {
                return true;
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        false
    }
}

/// Health as `{status, body}` for a report.
pub async fn health(api: &Api) -> anyhow::Result<Value> {
    let (s, v) = api.get("/health").await?;
    Ok(json!({"status": s, "body": v}))
}
