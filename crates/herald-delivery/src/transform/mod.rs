//! Endpoint transformations (routing.md "Transformation"): a JavaScript `handler(webhook)` that
//! may rewrite a delivery's method, URL, headers and payload, or cancel it.
//!
//! Owns the bounded pool of sandbox threads and the shape of what goes in and comes out. Each
//! worker is a dedicated OS thread holding one QuickJS runtime reused across calls (a fresh
//! context per call), so a runaway script occupies at most its own worker until the CPU limit
//! interrupts it and never blocks the async delivery tasks. It must not send anything, decide
//! outcomes or touch the store: the engine turns its answer into an attempt (see `hook`).

mod hook;
mod sandbox;

use std::collections::BTreeMap;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use parking_lot::Mutex;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use tokio::sync::{mpsc, oneshot};

pub use hook::{prepare, step, Prepared, Step};

/// Longest transformation code accepted (bytes of JavaScript).
pub const MAX_CODE_BYTES: usize = 64 * 1024;
/// Calls waiting for a free worker before callers wait to enqueue.
const QUEUE: usize = 256;
/// The worker threads' own stack (QuickJS's stack limit is set well below it).
const THREAD_STACK: usize = 8 * 1024 * 1024;

/// Limits of one call and the pool's size (configuration `transform_*`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TransformLimits {
    /// CPU time one call may use before it is interrupted.
    pub cpu: Duration,
    /// Memory one call's runtime may allocate.
    pub memory_bytes: usize,
    /// Calls running at once (one OS thread each).
    pub workers: usize,
}

impl Default for TransformLimits {
    fn default() -> Self {
        Self {
            cpu: Duration::from_millis(50),
            memory_bytes: 16 * 1024 * 1024,
            workers: 2,
        }
    }
}

/// Why a transformation gave no result.
#[derive(Debug, Clone, thiserror::Error)]
pub enum TransformError {
    /// The script threw, timed out, ran out of memory or returned something unusable.
    #[error("{0}")]
    Script(String),
    /// The sandbox itself could not run (thread or runtime creation failed).
    #[error("transformation sandbox unavailable: {0}")]
    Internal(String),
}

/// What the handler receives (Svix's shape).
#[derive(Clone, Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Webhook {
    pub method: String,
    pub url: String,
    pub payload: Value,
    pub event_type: String,
    pub headers: BTreeMap<String, String>,
    pub cancel: bool,
}

/// What the handler returned, checked.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Transformed {
    pub method: String,
    pub url: String,
    pub payload: Value,
    pub headers: BTreeMap<String, String>,
    pub cancel: bool,
}

/// The raw result before checking; unknown members are ignored.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RawOut {
    method: Option<Value>,
    url: Option<Value>,
    payload: Option<Value>,
    headers: Option<Value>,
    cancel: Option<Value>,
}

impl Transformed {
    /// Checks the handler's JSON result; `input` fills what the handler removed.
    fn from_json(text: &str, input: &Webhook) -> Result<Self, TransformError> {
        let bad = |m: String| TransformError::Script(m);
        let raw: RawOut = serde_json::from_str(text)
            .map_err(|e| bad(format!("the handler's result is not usable: {e}")))?;
        let method = match raw.method {
            None | Some(Value::Null) => input.method.clone(),
            Some(Value::String(m)) if m == "POST" || m == "PUT" => m,
            Some(other) => {
                return Err(bad(format!(
                    "`method` must be \"POST\" or \"PUT\", not {other}"
                )))
            }
        };
        let url = match raw.url {
            None | Some(Value::Null) => input.url.clone(),
            Some(Value::String(u)) => u,
            Some(_) => return Err(bad("`url` must be a string".into())),
        };
        let payload = match raw.payload {
            None => return Err(bad("the handler's result has no `payload`".into())),
            Some(p) => p,
        };
        let headers = match raw.headers {
            None | Some(Value::Null) => BTreeMap::new(),
            Some(Value::Object(map)) => {
                let mut out = BTreeMap::new();
                for (k, v) in map {
                    match v {
                        Value::String(s) => out.insert(k, s),
                        _ => return Err(bad(format!("header `{k}` must be a string"))),
                    };
                }
                out
            }
            Some(_) => return Err(bad("`headers` must be an object of strings".into())),
        };
        let cancel = matches!(raw.cancel, Some(Value::Bool(true)));
        Ok(Self {
            method,
            url,
            payload,
            headers,
            cancel,
        })
    }
}

struct Job {
    code: Arc<str>,
    input: String,
    reply: oneshot::Sender<Result<String, TransformError>>,
}

struct Inner {
    limits: TransformLimits,
    /// Started on first use, so a process whose endpoints have no transformation runs no
    /// sandbox threads.
    tx: OnceLock<mpsc::Sender<Job>>,
}

/// The process's transformation workers. Cheap to clone; the threads end when the last clone
/// is dropped.
#[derive(Clone)]
pub struct TransformPool {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for TransformPool {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TransformPool")
            .field("limits", &self.inner.limits)
            .finish()
    }
}

impl Default for TransformPool {
    fn default() -> Self {
        Self::new(TransformLimits::default())
    }
}

impl TransformPool {
    pub fn new(limits: TransformLimits) -> Self {
        Self {
            inner: Arc::new(Inner {
                limits,
                tx: OnceLock::new(),
            }),
        }
    }

    pub fn limits(&self) -> TransformLimits {
        self.inner.limits
    }

    /// Runs `code`'s handler on `input` in a worker; waits for a free worker when all are busy.
    pub async fn run(&self, code: &str, input: &Webhook) -> Result<Transformed, TransformError> {
        let json =
            serde_json::to_string(input).map_err(|e| TransformError::Internal(e.to_string()))?;
        let (reply, answer) = oneshot::channel();
        let job = Job {
            code: Arc::from(code),
            input: json,
            reply,
        };
        self.sender()?
            .send(job)
            .await
            .map_err(|_| TransformError::Internal("workers stopped".into()))?;
        let text = answer
            .await
            .map_err(|_| TransformError::Internal("worker ended during the call".into()))??;
        Transformed::from_json(&text, input)
    }

    fn sender(&self) -> Result<&mpsc::Sender<Job>, TransformError> {
        if let Some(tx) = self.inner.tx.get() {
            return Ok(tx);
        }
        let (tx, rx) = mpsc::channel::<Job>(QUEUE);
        let rx = Arc::new(Mutex::new(rx));
        let limits = self.inner.limits;
        if self.inner.tx.set(tx).is_ok() {
            for i in 0..limits.workers.max(1) {
                let rx = rx.clone();
                std::thread::Builder::new()
                    .name(format!("herald-transform-{i}"))
                    .stack_size(THREAD_STACK)
                    .spawn(move || worker(limits, rx))
                    .map_err(|e| TransformError::Internal(e.to_string()))?;
            }
        }
        // Another caller may have won the race; either way a sender is set now.
        self.inner
            .tx
            .get()
            .ok_or_else(|| TransformError::Internal("no workers".into()))
    }
}

/// One worker thread: takes calls until every sender is gone.
fn worker(limits: TransformLimits, rx: Arc<Mutex<mpsc::Receiver<Job>>>) {
    let mut sandbox: Option<sandbox::Sandbox> = None;
    loop {
        // One idle worker waits on the queue; the others wait for the lock.
        let Some(job) = rx.lock().blocking_recv() else {
            return;
        };
        if job.reply.is_closed() {
            continue;
        }
        let sb = match sandbox.take() {
            Some(s) => Ok(s),
            None => sandbox::Sandbox::new(limits),
        };
        let result = match sb {
            Ok(mut sb) => {
                let r = sb.call(&job.code, &job.input);
                // A runtime that hit a limit is replaced rather than trusted again.
                if r.is_ok() {
                    sandbox = Some(sb);
                }
                r
            }
            Err(e) => Err(e),
        };
        let _ = job.reply.send(result);
    }
}

#[cfg(test)]
mod tests;
