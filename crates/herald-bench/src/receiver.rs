//! The bench's own webhook receiver: a hyper 1 HTTP/1.1 server on `127.0.0.1:0` with
//! keep-alive that answers 204 at once and records, per path, every request it answered
//! (receipt time, de-duplicated by `webhook-id`, and publish→receipt latency for timed
//! paths). A path can instead *hang* (hold the request unanswered until the client gives up)
//! or sit behind a *gate* (hold until [`Receiver::open_gate`]).

use parking_lot::Mutex;
use std::collections::{HashMap, HashSet};
use std::convert::Infallible;
use std::hash::{DefaultHasher, Hash, Hasher};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, AtomicU8, Ordering};
use std::sync::{Arc, RwLock};
use std::time::Duration;

use bytes::Bytes;
use hdrhistogram::Histogram;
use http_body_util::{BodyExt, Empty};
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::stats::{new_histogram, now_us};

/// How a path answers.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    /// 204 at once.
    Ok = 0,
    /// Hold the request without answering for the hang limit, then 503 (the client has
    /// normally timed out long before).
    Hang = 1,
    /// Hold until the gate opens (then 204), at most the gate limit (then 503).
    Gate = 2,
}

/// What happened on one path. Only answered (2xx) requests count as received.
pub struct PathStats {
    mode: AtomicU8,
    gate: watch::Sender<bool>,
    timed: bool,
    /// Requests currently held by `Hang` or `Gate`.
    pub held: AtomicU64,
    /// Requests that arrived while the path hung.
    pub hung_total: AtomicU64,
    inner: Mutex<Inner>,
}

struct Inner {
    /// Hashes of the `webhook-id`s answered so far.
    seen: HashSet<u64>,
    /// Receipt time (µs since the bench epoch) of each first answer of a message.
    times: Vec<u64>,
    /// Answers beyond the first for the same `webhook-id` (at-least-once redeliveries).
    duplicates: u64,
    /// Answered requests in total (including duplicates and requests without `webhook-id`).
    total: u64,
    /// publish → receipt latency (µs), for timed paths.
    latency: Histogram<u64>,
}

/// A consistent copy of one path's figures.
#[derive(Clone, Debug)]
pub struct Snapshot {
    pub unique: u64,
    pub duplicates: u64,
    pub total: u64,
    pub first_us: Option<u64>,
    pub last_us: Option<u64>,
}

impl PathStats {
    fn new(mode: Mode, timed: bool) -> Self {
        Self {
            mode: AtomicU8::new(mode as u8),
            gate: watch::channel(false).0,
            timed,
            held: AtomicU64::new(0),
            hung_total: AtomicU64::new(0),
            inner: Mutex::new(Inner {
                seen: HashSet::new(),
                times: Vec::new(),
                duplicates: 0,
                total: 0,
                latency: new_histogram(),
            }),
        }
    }

    fn mode(&self) -> Mode {
        match self.mode.load(Ordering::Relaxed) {
            1 => Mode::Hang,
            2 => Mode::Gate,
            _ => Mode::Ok,
        }
    }

    fn record(&self, id: Option<u64>, body: &[u8], at: u64) {
        self.count_request();
        self.record_event(id, body, at);
    }

    /// One answered request (`total`).
    fn count_request(&self) {
        self.inner.lock().total += 1;
    }

    /// One delivered message (a request, or one event of a batch request).
    fn record_event(&self, id: Option<u64>, body: &[u8], at: u64) {
        let lat = if self.timed { sent_us(body) } else { None };
        let mut g = self.inner.lock();
        let first = match id {
            Some(h) => g.seen.insert(h),
            None => true,
        };
        if first {
            g.times.push(at);
            if let Some(sent) = lat {
                let _ = g.latency.record(at.saturating_sub(sent).max(1));
            }
        } else {
            g.duplicates += 1;
        }
    }

    pub fn snapshot(&self) -> Snapshot {
        let g = self.inner.lock();
        Snapshot {
            unique: g.times.len() as u64,
            duplicates: g.duplicates,
            total: g.total,
            first_us: g.times.iter().copied().min(),
            last_us: g.times.iter().copied().max(),
        }
    }

    /// Number of distinct messages answered so far.
    pub fn unique(&self) -> u64 {
        self.inner.lock().times.len() as u64
    }

    /// Receipt times (µs since the bench epoch) of the distinct messages, in arrival order.
    pub fn times(&self) -> Vec<u64> {
        self.inner.lock().times.clone()
    }

    /// publish → receipt latency histogram (µs) of a timed path.
    pub fn latency(&self) -> Histogram<u64> {
        self.inner.lock().latency.clone()
    }
}

/// Reads the `"sent_us":<digits>` field the bench writes into timed payloads.
fn sent_us(body: &[u8]) -> Option<u64> {
    const KEY: &[u8] = b"\"sent_us\":";
    let pos = body.windows(KEY.len()).position(|w| w == KEY)? + KEY.len();
    let digits = body[pos..]
        .iter()
        .take_while(|b| b.is_ascii_digit())
        .fold(None, |acc: Option<u64>, b| {
            Some(acc.unwrap_or(0) * 10 + u64::from(b - b'0'))
        });
    digits
}

struct State {
    paths: RwLock<HashMap<String, Arc<PathStats>>>,
    unknown: AtomicU64,
    hang_limit: Duration,
    gate_limit: Duration,
}

/// The running receiver. Dropping it stops accepting connections.
pub struct Receiver {
    pub addr: SocketAddr,
    state: Arc<State>,
    task: JoinHandle<()>,
}

impl Receiver {
    /// Binds `127.0.0.1:0` and serves until dropped.
    pub async fn start(hang_limit: Duration, gate_limit: Duration) -> anyhow::Result<Self> {
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let state = Arc::new(State {
            paths: RwLock::new(HashMap::new()),
            unknown: AtomicU64::new(0),
            hang_limit,
            gate_limit,
        });
        let st = state.clone();
        let task = tokio::spawn(async move {
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    tokio::time::sleep(Duration::from_millis(10)).await;
                    continue;
                };
                let _ = stream.set_nodelay(true);
                let st = st.clone();
                tokio::spawn(async move {
                    let svc = service_fn(move |req| {
                        let st = st.clone();
                        async move { Ok::<_, Infallible>(handle(st, req).await) }
                    });
                    let _ = http1::Builder::new()
                        .keep_alive(true)
                        .serve_connection(TokioIo::new(stream), svc)
                        .await;
                });
            }
        });
        Ok(Self { addr, state, task })
    }

    /// Registers `path` (which must start with `/`) and returns its statistics.
    pub fn path(&self, path: &str, mode: Mode, timed: bool) -> Arc<PathStats> {
        let ps = Arc::new(PathStats::new(mode, timed));
        self.state
            .paths
            .write()
            .expect("receiver paths")
            .insert(path.to_string(), ps.clone());
        ps
    }

    /// `http://127.0.0.1:PORT<path>`
    pub fn url(&self, path: &str) -> String {
        format!("http://{}{}", self.addr, path)
    }

    /// Lets every held and future request of a gated path through.
    pub fn open_gate(ps: &PathStats) {
        ps.mode.store(Mode::Ok as u8, Ordering::Relaxed);
        ps.gate.send_replace(true);
    }

    /// Requests to paths never registered (answered 404).
    pub fn unknown(&self) -> u64 {
        self.state.unknown.load(Ordering::Relaxed)
    }
}

impl Drop for Receiver {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Counts a held request for as long as it lives: hyper drops the handler future when the
/// client closes the connection (e.g. Herald's request timeout), so a decrement after the
/// `await` would never run for those.
struct Held<'a>(&'a AtomicU64);

impl<'a> Held<'a> {
    fn new(counter: &'a AtomicU64) -> Self {
        counter.fetch_add(1, Ordering::Relaxed);
        Self(counter)
    }
}

impl Drop for Held<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }
}

fn reply(status: StatusCode) -> Response<Empty<Bytes>> {
    let mut r = Response::new(Empty::new());
    *r.status_mut() = status;
    r
}

async fn handle(st: Arc<State>, req: Request<Incoming>) -> Response<Empty<Bytes>> {
    let ps = st
        .paths
        .read()
        .expect("receiver paths")
        .get(req.uri().path())
        .cloned();
    let batch = req
        .headers()
        .get("webhook-id")
        .is_some_and(|v| v.as_bytes().starts_with(b"batch_"));
    let id = req.headers().get("webhook-id").map(|v| {
        let mut h = DefaultHasher::new();
        v.as_bytes().hash(&mut h);
        h.finish()
    });
    let body = match req.into_body().collect().await {
        Ok(b) => b.to_bytes(),
        Err(_) => return reply(StatusCode::BAD_REQUEST),
    };
    let Some(ps) = ps else {
        st.unknown.fetch_add(1, Ordering::Relaxed);
        return reply(StatusCode::NOT_FOUND);
    };
    match ps.mode() {
        Mode::Ok => {}
        Mode::Hang => {
            ps.hung_total.fetch_add(1, Ordering::Relaxed);
            let _held = Held::new(&ps.held);
            tokio::time::sleep(st.hang_limit).await;
            return reply(StatusCode::SERVICE_UNAVAILABLE);
        }
        Mode::Gate => {
            let held = Held::new(&ps.held);
            let mut rx = ps.gate.subscribe();
            let opened = tokio::time::timeout(st.gate_limit, rx.wait_for(|open| *open)).await;
            drop(held);
            if !matches!(opened, Ok(Ok(_))) {
                return reply(StatusCode::SERVICE_UNAVAILABLE);
            }
        }
    }
    let at = now_us();
    if batch {
        // A batch request (`webhook-id` `batch_…`): each event of the JSON array counts as one
        // delivery, de-duplicated by its own message ID. The request itself counts once.
        let events: Vec<serde_json::Value> = serde_json::from_slice(&body).unwrap_or_default();
        ps.count_request();
        for e in &events {
            let id = e["id"].as_str().map(|s| {
                let mut h = DefaultHasher::new();
                s.as_bytes().hash(&mut h);
                h.finish()
            });
            ps.record_event(id, e["payload"].to_string().as_bytes(), at);
        }
    } else {
        ps.record(id, &body, at);
    }
    reply(StatusCode::NO_CONTENT)
}

#[cfg(test)]
mod tests {
    use super::sent_us;

    #[test]
    fn reads_sent_us() {
        assert_eq!(
            sent_us(br#"{"seq":1,"sent_us":12345,"pad":"x"}"#),
            Some(12345)
        );
        assert_eq!(sent_us(br#"{"seq":1}"#), None);
    }
}
