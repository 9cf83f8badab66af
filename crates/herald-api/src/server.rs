//! The HTTP/1 accept loop behind [`crate::serve`] and the limits it puts on every connection:
//! how long a request head and a request body may take to arrive, how long a keep-alive
//! connection may sit idle, and how many connections are served at once.
//!
//! `axum::serve` has none of these, so a client that stops half-way through its headers or its
//! body (or just never sends a request) holds a connection, a task and a file descriptor
//! forever. This module serves each connection with hyper directly and watches it: every read
//! and write through [`Tracked`] stamps the connection's [`Activity`], the service marks when a
//! request is being handled, and a per-connection check closes the connection once a head has
//! been arriving for longer than the header timeout, or nothing has happened on an idle
//! connection for longer than the idle timeout. The body timeout is a deadline on the whole
//! body ([`DeadlineBody`]), counted from when the head was read; a body that misses it is
//! answered `408` and the connection is closed.
//!
//! WebSocket upgrades (`herald listen`) leave this module's watch once upgraded: their
//! sessions keep themselves alive.

use std::convert::Infallible;
use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use axum::body::Body;
use axum::extract::Request;
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use http_body::Frame;
use hyper::body::Incoming;
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{watch, Semaphore};
use tower::ServiceExt as _;

/// How long requests may take to arrive, and how many connections are served at once.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ConnectionLimits {
    /// From accepting a connection, or from the first byte of a later request on a keep-alive
    /// connection, until the whole request head (request line and headers) has arrived.
    pub header_read_timeout: Duration,
    /// From the end of the request head until the whole body has arrived.
    pub body_read_timeout: Duration,
    /// Longest a connection with no request in progress stays open without any traffic.
    pub idle_timeout: Duration,
    /// Connections served at once; further ones wait in the listen backlog.
    pub max_connections: usize,
}

impl Default for ConnectionLimits {
    fn default() -> Self {
        Self {
            header_read_timeout: Duration::from_secs(10),
            body_read_timeout: Duration::from_secs(30),
            idle_timeout: Duration::from_secs(60),
            max_connections: 10_000,
        }
    }
}

/// `head_since` when no request head is on its way.
const NO_HEAD: u64 = u64::MAX;

/// What has happened on one connection, in milliseconds since `epoch`. Written by the I/O
/// wrapper and the service, read by the connection's watch.
struct Activity {
    epoch: Instant,
    /// Last successful read or write.
    last_io: AtomicU64,
    /// When the request head now arriving began (accept, or its first byte), else [`NO_HEAD`].
    head_since: AtomicU64,
    /// Requests handed to the router and not yet answered.
    in_flight: AtomicUsize,
}

/// Why a connection is closed by its watch.
#[derive(Debug, PartialEq, Eq)]
enum Expired {
    Header,
    Idle,
}

impl Activity {
    fn new() -> Self {
        Self {
            epoch: Instant::now(),
            last_io: AtomicU64::new(0),
            // A new connection owes its first request head from the moment it is accepted.
            head_since: AtomicU64::new(0),
            in_flight: AtomicUsize::new(0),
        }
    }

    fn now(&self) -> u64 {
        self.epoch.elapsed().as_millis() as u64
    }

    fn read(&self, n: usize) {
        if n == 0 {
            return;
        }
        let now = self.now();
        self.last_io.store(now, Ordering::Relaxed);
        // Bytes while no request is being handled belong to the next request's head.
        if self.in_flight.load(Ordering::Acquire) == 0 {
            let _ =
                self.head_since
                    .compare_exchange(NO_HEAD, now, Ordering::AcqRel, Ordering::Relaxed);
        }
    }

    fn wrote(&self, n: usize) {
        if n > 0 {
            self.last_io.store(self.now(), Ordering::Relaxed);
        }
    }

    fn expired(&self, limits: &ConnectionLimits) -> Option<Expired> {
        let now = self.now();
        let head = self.head_since.load(Ordering::Acquire);
        if head != NO_HEAD {
            let late = now.saturating_sub(head) >= limits.header_read_timeout.as_millis() as u64;
            return late.then_some(Expired::Header);
        }
        if self.in_flight.load(Ordering::Acquire) > 0 {
            // The body deadline and the handler bound a request in progress.
            return None;
        }
        let quiet = now.saturating_sub(self.last_io.load(Ordering::Relaxed));
        (quiet >= limits.idle_timeout.as_millis() as u64).then_some(Expired::Idle)
    }

    /// Marks a request as handed to the router until the guard drops (also when cancelled).
    fn begin_request(self: &Arc<Self>) -> InFlight {
        self.in_flight.fetch_add(1, Ordering::AcqRel);
        self.head_since.store(NO_HEAD, Ordering::Release);
        InFlight(self.clone())
    }
}

struct InFlight(Arc<Activity>);

impl Drop for InFlight {
    fn drop(&mut self) {
        // The answer is written after this; its writes stamp `last_io`, so the idle clock
        // starts when the connection really goes quiet.
        self.0.last_io.store(self.0.now(), Ordering::Relaxed);
        self.0.in_flight.fetch_sub(1, Ordering::AcqRel);
    }
}

/// The TCP stream, stamping [`Activity`] on every read and write. Dropped, it closes lingering
/// ([`linger`]); `io` is `None` only from then on.
struct Tracked {
    io: Option<TcpStream>,
    activity: Arc<Activity>,
}

impl Tracked {
    /// Runs `f` on the stream; after [`Drop`] took it there is none, which reads as
    /// "not connected".
    fn on_io<T>(
        &mut self,
        f: impl FnOnce(Pin<&mut TcpStream>) -> Poll<io::Result<T>>,
    ) -> Poll<io::Result<T>> {
        match self.io.as_mut() {
            Some(io) => f(Pin::new(io)),
            None => Poll::Ready(Err(io::ErrorKind::NotConnected.into())),
        }
    }
}

impl Drop for Tracked {
    fn drop(&mut self) {
        if let (Some(io), Ok(rt)) = (self.io.take(), tokio::runtime::Handle::try_current()) {
            rt.spawn(linger(io));
        }
    }
}

/// Longest a closed connection keeps reading what its client still sends.
const LINGER_TIME: Duration = Duration::from_secs(2);
/// Most bytes a closed connection reads and throws away.
const LINGER_BYTES: usize = 16 * 1024 * 1024;

/// Closes a connection the way nginx's `lingering_close` does: send FIN, then read and discard
/// what the client still sends (bounded in time and bytes) before the socket is dropped.
///
/// Why: closing a socket with unread bytes makes the kernel send a reset. A client that was
/// still sending its body when it was answered early (413 on a declared length, 401, a
/// replay) then fails its next write and reports a connection error instead of the answer
/// waiting in its buffer. Reading on for a moment lets it finish sending and read the answer.
async fn linger(mut io: TcpStream) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    // Already shut down by hyper on a normal close; an error only means the peer is gone.
    let _ = io.shutdown().await;
    let mut buf = vec![0u8; 64 * 1024];
    let mut left = LINGER_BYTES;
    let _ = tokio::time::timeout(LINGER_TIME, async {
        while left > 0 {
            match io.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(n) => left = left.saturating_sub(n),
            }
        }
    })
    .await;
}

impl AsyncRead for Tracked {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let before = buf.filled().len();
        let res = self.on_io(|io| io.poll_read(cx, buf));
        if let Poll::Ready(Ok(())) = res {
            self.activity.read(buf.filled().len() - before);
        }
        res
    }
}

impl AsyncWrite for Tracked {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let res = self.on_io(|io| io.poll_write(cx, buf));
        if let Poll::Ready(Ok(n)) = res {
            self.activity.wrote(n);
        }
        res
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let res = self.on_io(|io| io.poll_write_vectored(cx, bufs));
        if let Poll::Ready(Ok(n)) = res {
            self.activity.wrote(n);
        }
        res
    }

    fn is_write_vectored(&self) -> bool {
        self.io.as_ref().is_some_and(|io| io.is_write_vectored())
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.on_io(|io| io.poll_flush(cx))
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.on_io(|io| io.poll_shutdown(cx))
    }
}

/// Raised by [`DeadlineBody`] when the body misses its deadline.
#[derive(Debug, thiserror::Error)]
#[error("the request body did not arrive within the body read timeout")]
pub struct BodyTimeout;

/// A request body that fails with [`BodyTimeout`] once its deadline passes, and sets `fired`
/// so the service can answer 408 whatever the handler made of the error.
struct DeadlineBody {
    inner: Incoming,
    deadline: tokio::time::Instant,
    /// Created on the first read that has to wait, so bodiless requests cost no timer.
    sleep: Option<Pin<Box<tokio::time::Sleep>>>,
    fired: Arc<AtomicBool>,
}

impl http_body::Body for DeadlineBody {
    type Data = Bytes;
    type Error = Box<dyn std::error::Error + Send + Sync>;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
        if self.fired.load(Ordering::Acquire) {
            return Poll::Ready(Some(Err(Box::new(BodyTimeout))));
        }
        if let Poll::Ready(frame) = Pin::new(&mut self.inner).poll_frame(cx) {
            return Poll::Ready(frame.map(|r| r.map_err(Into::into)));
        }
        let deadline = self.deadline;
        let sleep = self
            .sleep
            .get_or_insert_with(|| Box::pin(tokio::time::sleep_until(deadline)));
        if sleep.as_mut().poll(cx).is_ready() {
            self.fired.store(true, Ordering::Release);
            return Poll::Ready(Some(Err(Box::new(BodyTimeout))));
        }
        Poll::Pending
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> http_body::SizeHint {
        self.inner.size_hint()
    }
}

/// The answer to a request whose body missed its deadline; the connection is closed after it
/// because the rest of the body may still be on its way.
fn body_timeout_response() -> Response {
    let mut resp = (
        StatusCode::REQUEST_TIMEOUT,
        axum::Json(serde_json::json!({
            "code": "request_timeout",
            "detail": BodyTimeout.to_string(),
        })),
    )
        .into_response();
    resp.headers_mut()
        .insert(header::CONNECTION, HeaderValue::from_static("close"));
    resp
}

/// Serves `app` on `listener` under `limits` until `shutdown` resolves, then stops accepting,
/// lets open connections finish their requests, and returns once they are closed.
pub(crate) async fn serve<S>(
    listener: TcpListener,
    app: S,
    limits: ConnectionLimits,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> io::Result<()>
where
    S: tower::Service<Request, Response = Response, Error = Infallible> + Clone + Send + 'static,
    S::Future: Send + 'static,
{
    // Dropped (closed) to tell every connection to finish; each connection holds a clone of
    // `done_rx`, so `done_tx.closed()` resolves when the last one has ended.
    let (stop_tx, stop_rx) = watch::channel(());
    let (done_tx, done_rx) = watch::channel(());
    let permits = Arc::new(Semaphore::new(limits.max_connections.max(1)));
    let mut shutdown = std::pin::pin!(shutdown);
    loop {
        let permit = tokio::select! {
            p = permits.clone().acquire_owned() => p.expect("the semaphore is never closed"),
            () = &mut shutdown => break,
        };
        let (stream, peer) = tokio::select! {
            r = listener.accept() => match r {
                Ok(c) => c,
                Err(e) => {
                    // Typically out of file descriptors: wait rather than spin.
                    tracing::warn!(error = %e, "accepting a connection failed");
                    tokio::select! {
                        () = tokio::time::sleep(Duration::from_secs(1)) => continue,
                        () = &mut shutdown => break,
                    }
                }
            },
            () = &mut shutdown => break,
        };
        let (app, mut stop_rx, done_rx) = (app.clone(), stop_rx.clone(), done_rx.clone());
        tokio::spawn(async move {
            serve_connection(stream, peer, app, limits, &mut stop_rx).await;
            drop((permit, done_rx));
        });
    }
    drop(listener);
    drop(stop_rx);
    drop(stop_tx);
    drop(done_rx);
    done_tx.closed().await;
    Ok(())
}

async fn serve_connection<S>(
    stream: TcpStream,
    peer: std::net::SocketAddr,
    app: S,
    limits: ConnectionLimits,
    stop: &mut watch::Receiver<()>,
) where
    S: tower::Service<Request, Response = Response, Error = Infallible> + Clone + Send + 'static,
    S::Future: Send + 'static,
{
    let activity = Arc::new(Activity::new());
    let io = TokioIo::new(Tracked {
        io: Some(stream),
        activity: activity.clone(),
    });
    let service = {
        let activity = activity.clone();
        hyper::service::service_fn(move |req: hyper::Request<Incoming>| {
            let (app, activity) = (app.clone(), activity.clone());
            async move {
                let _in_flight = activity.begin_request();
                let fired = Arc::new(AtomicBool::new(false));
                let deadline = tokio::time::Instant::now() + limits.body_read_timeout;
                let mut req = req.map(|inner| {
                    Body::new(DeadlineBody {
                        inner,
                        deadline,
                        sleep: None,
                        fired: fired.clone(),
                    })
                });
                // The client's address, for what limits per client (console sign-in).
                req.extensions_mut()
                    .insert(axum::extract::ConnectInfo(peer));
                let resp = app.oneshot(req).await.unwrap_or_else(|e| match e {});
                if fired.load(Ordering::Acquire) {
                    tracing::debug!("request body missed its deadline; answering 408");
                    return Ok::<_, Infallible>(body_timeout_response());
                }
                Ok(resp)
            }
        })
    };
    let conn = hyper::server::conn::http1::Builder::new()
        .serve_connection(io, service)
        .with_upgrades();
    let mut conn = std::pin::pin!(conn);
    // Checked every quarter of the shorter timeout (10 ms to 1 s): a connection outlives its
    // timeout by about that much, and a quiet connection costs one wake-up per check.
    let every = (limits.header_read_timeout.min(limits.idle_timeout) / 4)
        .clamp(Duration::from_millis(10), Duration::from_secs(1));
    let mut check = tokio::time::interval(every);
    check.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut stopping = false;
    loop {
        tokio::select! {
            res = conn.as_mut() => {
                if let Err(e) = res {
                    tracing::trace!(error = %e, "connection ended with an error");
                }
                return;
            }
            r = stop.changed(), if !stopping => {
                // Err: the sender is gone, which is the stop signal.
                let _ = r;
                stopping = true;
                conn.as_mut().graceful_shutdown();
            }
            _ = check.tick() => {
                if let Some(why) = activity.expired(&limits) {
                    tracing::debug!(reason = ?why, "closing a connection that timed out");
                    // Dropping the connection closes the socket.
                    return;
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limits(ms: u64) -> ConnectionLimits {
        ConnectionLimits {
            header_read_timeout: Duration::from_millis(ms),
            body_read_timeout: Duration::from_millis(ms),
            idle_timeout: Duration::from_millis(ms),
            max_connections: 1,
        }
    }

    #[test]
    fn a_new_connection_owes_a_head_and_a_request_in_progress_is_never_idle() {
        let a = Arc::new(Activity::new());
        // Far in the future: nothing has expired yet.
        assert_eq!(a.expired(&limits(3_600_000)), None);
        // Zero timeouts: the head owed since accept is late.
        assert_eq!(a.expired(&limits(0)), Some(Expired::Header));
        let guard = a.begin_request();
        a.read(10);
        assert_eq!(a.expired(&limits(0)), None, "body bytes are not a new head");
        drop(guard);
        assert_eq!(a.expired(&limits(0)), Some(Expired::Idle));
        a.read(1);
        assert_eq!(a.expired(&limits(0)), Some(Expired::Header));
    }
}
