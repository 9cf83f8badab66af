//! A webhook receiver at the TCP level, so that it can misbehave the ways real receivers do:
//! answer 5xx, hang past Herald's timeout, or reset the connection after reading a request
//! (`SO_LINGER` 0, so the kernel sends RST). It parses just enough HTTP/1.1 (headers,
//! `Content-Length`) and keeps connections alive between requests.
//!
//! It records every request it read, keyed by (`webhook-id`, path), and every request it
//! answered 2xx; the scenarios compare those records with what Herald accepted and logged.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use parking_lot::Mutex;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// Shares of requests that get each fault; the rest are answered 204.
#[derive(Clone, Copy, Debug, Default)]
pub struct Faults {
    pub status_5xx: f64,
    pub hang: f64,
    pub reset: f64,
    /// How long a hanging request is held before the connection is dropped.
    pub hang_for: Duration,
    /// Delay before every answer (makes deliveries slower than publishing, so a backlog and
    /// in-flight requests exist).
    pub delay: Duration,
}

impl Faults {
    /// No failures, only `delay` before every answer.
    pub fn delay_only(delay: Duration) -> Self {
        Self {
            delay,
            ..Self::default()
        }
    }
}

#[derive(Clone, Debug, Default)]
pub struct Seen {
    /// Requests read (each attempt Herald made that reached the receiver).
    pub requests: u32,
    /// Requests answered 2xx.
    pub successes: u32,
    /// `seq` from the payload, when present.
    pub seq: Option<u64>,
    /// The scenario's generation (see [`Receiver::set_generation`]) of each 2xx, in order.
    pub success_generations: Vec<u32>,
}

#[derive(Default)]
pub struct Counters {
    pub answered_5xx: u64,
    pub hung: u64,
    pub reset: u64,
    pub ok: u64,
    pub without_id: u64,
}

struct Inner {
    faults: Mutex<Faults>,
    rng: Mutex<StdRng>,
    seen: Mutex<HashMap<(String, String), Seen>>,
    counters: Mutex<Counters>,
    stop: AtomicBool,
    generation: std::sync::atomic::AtomicU32,
}

#[derive(Clone)]
pub struct Receiver {
    pub addr: SocketAddr,
    inner: Arc<Inner>,
}

enum Fate {
    Ok,
    Status5xx,
    Hang,
    Reset,
}

impl Receiver {
    pub async fn start(faults: Faults, seed: u64) -> anyhow::Result<Self> {
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let inner = Arc::new(Inner {
            faults: Mutex::new(faults),
            rng: Mutex::new(StdRng::seed_from_u64(seed)),
            seen: Mutex::default(),
            counters: Mutex::default(),
            stop: AtomicBool::new(false),
            generation: std::sync::atomic::AtomicU32::new(0),
        });
        let state = Arc::clone(&inner);
        tokio::spawn(async move {
            while !state.stop.load(Ordering::Relaxed) {
                let Ok((sock, _)) = listener.accept().await else {
                    continue;
                };
                let st = Arc::clone(&state);
                // A connection belongs to the process that opened it, which was alive (the
                // current generation) when it connected; answers written after that process
                // died still count for it.
                let generation = st.generation.load(Ordering::Relaxed);
                tokio::spawn(async move {
                    let _ = serve(sock, st, generation).await;
                });
            }
        });
        Ok(Self { addr, inner })
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    pub fn snapshot(&self) -> HashMap<(String, String), Seen> {
        self.inner.seen.lock().clone()
    }

    /// Marks the Herald process now being served (the kill loop counts them), so that each
    /// duplicate can be laid at the door of the kill that ended its first delivery's process.
    pub fn set_generation(&self, g: u32) {
        self.inner.generation.store(g, Ordering::Relaxed);
    }

    /// Duplicates by the kill that caused them: a delivery answered 2xx whose process was
    /// killed before it recorded the answer is sent again by a later process, so each 2xx
    /// after the first belongs to the generation of the 2xx before it. One that follows a 2xx
    /// of the same generation had no kill in between (reported under `u32::MAX`).
    pub fn duplicates_by_generation(&self) -> HashMap<u32, u64> {
        let mut out = HashMap::new();
        for s in self.inner.seen.lock().values() {
            for w in s.success_generations.windows(2) {
                let cause = if w[0] == w[1] { u32::MAX } else { w[0] };
                *out.entry(cause).or_default() += 1;
            }
        }
        out
    }

    /// (msg id, path) of duplicates whose predecessor 2xx came from the same generation.
    pub fn same_generation_duplicates(&self) -> Vec<(String, String)> {
        self.inner
            .seen
            .lock()
            .iter()
            .filter(|(_, s)| s.success_generations.windows(2).any(|w| w[0] == w[1]))
            .map(|(k, _)| k.clone())
            .collect()
    }

    /// 2xx answers beyond the first per (msg id, path): duplicate deliveries.
    pub fn duplicates(&self) -> u64 {
        self.inner
            .seen
            .lock()
            .values()
            .map(|s| u64::from(s.successes.saturating_sub(1)))
            .sum()
    }

    pub fn counters(&self) -> Counters {
        let c = self.inner.counters.lock();
        Counters {
            answered_5xx: c.answered_5xx,
            hung: c.hung,
            reset: c.reset,
            ok: c.ok,
            without_id: c.without_id,
        }
    }
}

fn find(buf: &[u8], pat: &[u8]) -> Option<usize> {
    buf.windows(pat.len()).position(|w| w == pat)
}

/// One connection: requests until the peer closes or a fault ends it.
async fn serve(mut sock: TcpStream, st: Arc<Inner>, generation: u32) -> anyhow::Result<()> {
    let mut buf: Vec<u8> = Vec::with_capacity(8192);
    let mut chunk = vec![0u8; 64 * 1024];
    loop {
        // Headers.
        let head_end = loop {
            if let Some(i) = find(&buf, b"\r\n\r\n") {
                break i + 4;
            }
            anyhow::ensure!(buf.len() < 64 * 1024, "headers too large");
            let n = sock.read(&mut chunk).await?;
            if n == 0 {
                return Ok(());
            }
            buf.extend_from_slice(&chunk[..n]);
        };
        let head = String::from_utf8_lossy(&buf[..head_end]).into_owned();
        let mut lines = head.split("\r\n");
        let path = lines
            .next()
            .and_then(|l| l.split(' ').nth(1))
            .unwrap_or("/")
            .to_string();
        let mut len = 0usize;
        let mut id = None;
        for l in lines {
            if let Some((k, v)) = l.split_once(':') {
                let k = k.trim().to_ascii_lowercase();
                if k == "content-length" {
                    len = v.trim().parse().unwrap_or(0);
                } else if k == "webhook-id" {
                    id = Some(v.trim().to_string());
                }
            }
        }
        while buf.len() < head_end + len {
            let n = sock.read(&mut chunk).await?;
            if n == 0 {
                return Ok(());
            }
            buf.extend_from_slice(&chunk[..n]);
        }
        let body: Vec<u8> = buf[head_end..head_end + len].to_vec();
        buf.drain(..head_end + len);
        let seq = serde_json::from_slice::<serde_json::Value>(&body)
            .ok()
            .and_then(|v| v.get("seq").and_then(serde_json::Value::as_u64));
        let key = match id {
            Some(id) => (id, path),
            None => {
                st.counters.lock().without_id += 1;
                (String::new(), path)
            }
        };
        {
            let mut seen = st.seen.lock();
            let e = seen.entry(key.clone()).or_default();
            e.requests += 1;
            e.seq = e.seq.or(seq);
        }
        let faults = *st.faults.lock();
        let fate = {
            let x: f64 = st.rng.lock().gen();
            if x < faults.reset {
                Fate::Reset
            } else if x < faults.reset + faults.hang {
                Fate::Hang
            } else if x < faults.reset + faults.hang + faults.status_5xx {
                Fate::Status5xx
            } else {
                Fate::Ok
            }
        };
        if !faults.delay.is_zero() {
            tokio::time::sleep(faults.delay).await;
        }
        match fate {
            Fate::Reset => {
                st.counters.lock().reset += 1;
                // Linger 0: close() sends RST instead of FIN. (Deprecated because a non-zero
                // linger blocks the thread on drop; a zero one never does.)
                #[allow(deprecated)]
                sock.set_linger(Some(Duration::ZERO))?;
                return Ok(());
            }
            Fate::Hang => {
                st.counters.lock().hung += 1;
                tokio::time::sleep(faults.hang_for).await;
                return Ok(());
            }
            Fate::Status5xx => {
                st.counters.lock().answered_5xx += 1;
                sock.write_all(b"HTTP/1.1 500 Internal Server Error\r\ncontent-length: 0\r\n\r\n")
                    .await?;
            }
            Fate::Ok => {
                sock.write_all(b"HTTP/1.1 204 No Content\r\n\r\n").await?;
                st.counters.lock().ok += 1;
                let mut seen = st.seen.lock();
                let e = seen.entry(key).or_default();
                e.successes += 1;
                e.success_generations.push(generation);
            }
        }
    }
}
