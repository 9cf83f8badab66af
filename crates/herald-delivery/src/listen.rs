//! The `herald listen` transport: an in-process hub that maps a listen session (one WebSocket
//! held by the API on this node) to a channel, so the engine can hand a signed request to the
//! CLI at the other end instead of sending it over HTTP.
//!
//! A temporary endpoint's URL is `herald-listen://<session id>`: a scheme the public endpoint
//! API refuses (`EgressPolicy::validate_url` accepts only http and https), so only the listen
//! route creates such endpoints, and the engine never opens an outbound connection for them.
//! This module owns the session registry and the request/reply rendezvous; it must not decide
//! what an answer means (the engine classifies the reply like any HTTP answer) nor touch the
//! store.

use parking_lot::Mutex;
use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use herald_core::outcome::TransportError;
use tokio::sync::{mpsc, oneshot, watch};

use crate::client::{SendResult, MAX_STORED_RESPONSE};

/// URL scheme of temporary listen endpoints.
pub const LISTEN_SCHEME: &str = "herald-listen";
/// uid prefix of temporary listen endpoints.
pub const LISTEN_UID_PREFIX: &str = "herald-listen-";
/// Requests queued towards one session before the engine waits (bounded memory per session).
const SESSION_QUEUE: usize = 64;

/// The session a temporary endpoint's URL names, or `None` for an ordinary URL.
pub fn session_of(url: &str) -> Option<&str> {
    url.strip_prefix(LISTEN_SCHEME)
        .and_then(|r| r.strip_prefix("://"))
        .filter(|s| !s.is_empty())
}

/// The URL of a session's temporary endpoint.
pub fn listen_url(session: &str) -> String {
    format!("{LISTEN_SCHEME}://{session}")
}

/// One signed request handed to a session.
#[derive(Debug)]
pub struct ListenRequest {
    pub msg_id: String,
    pub event_type: String,
    /// Every header Herald would send over HTTP, signature included.
    pub headers: Vec<(String, String)>,
    pub body: Bytes,
    pub reply: oneshot::Sender<ListenReply>,
}

/// What the CLI reported for one request.
#[derive(Clone, Debug)]
pub enum ListenReply {
    /// The local server answered.
    Response {
        status: u16,
        retry_after: Option<String>,
        location: Option<String>,
        body: String,
    },
    /// The local server could not be reached (connection refused, timeout, …).
    Failed {
        error: TransportError,
        detail: String,
    },
}

/// Sessions held by this node. Cheap to clone.
#[derive(Clone)]
pub struct ListenHub {
    inner: Arc<HubInner>,
}

struct HubInner {
    sessions: Mutex<HashMap<String, mpsc::Sender<ListenRequest>>>,
    /// How long the engine waits for a reply (the delivery request timeout).
    timeout: Duration,
    /// Turns true when the server shuts down; sessions close themselves.
    shutdown: watch::Receiver<bool>,
    /// Number of open sessions, so shutdown can wait for their clean-up.
    open: watch::Sender<usize>,
}

/// Keeps a session registered; dropping it unregisters the session.
pub struct SessionGuard {
    hub: ListenHub,
    id: String,
}

impl Drop for SessionGuard {
    fn drop(&mut self) {
        {
            let mut s = self.hub.inner.sessions.lock();
            s.remove(&self.id);
        }
        self.hub
            .inner
            .open
            .send_modify(|n| *n = n.saturating_sub(1));
    }
}

impl ListenHub {
    /// `timeout` bounds the wait for each reply; `shutdown` ends every session.
    pub fn new(timeout: Duration, shutdown: watch::Receiver<bool>) -> Self {
        Self {
            inner: Arc::new(HubInner {
                sessions: Mutex::new(HashMap::new()),
                timeout,
                shutdown,
                open: watch::channel(0).0,
            }),
        }
    }

    /// How long the engine waits for one reply.
    pub fn timeout(&self) -> Duration {
        self.inner.timeout
    }

    /// A receiver that turns true when the server shuts down.
    pub fn shutdown(&self) -> watch::Receiver<bool> {
        self.inner.shutdown.clone()
    }

    /// Registers session `id`: requests for its endpoint arrive on the receiver until the
    /// guard is dropped.
    pub fn register(&self, id: &str) -> (SessionGuard, mpsc::Receiver<ListenRequest>) {
        let (tx, rx) = mpsc::channel(SESSION_QUEUE);
        {
            let mut s = self.inner.sessions.lock();
            s.insert(id.to_string(), tx);
        }
        self.inner.open.send_modify(|n| *n += 1);
        (
            SessionGuard {
                hub: self.clone(),
                id: id.to_string(),
            },
            rx,
        )
    }

    /// Waits until every session has closed, at most `limit`.
    pub async fn wait_closed(&self, limit: Duration) {
        let mut rx = self.inner.open.subscribe();
        let _ = tokio::time::timeout(limit, rx.wait_for(|n| *n == 0)).await;
    }

    /// Hands a request to `session` and waits for the reply. `None` when this node holds no
    /// such session (it closed, or another node of a cluster holds it): the caller puts the
    /// delivery back without spending an attempt.
    pub async fn forward(
        &self,
        session: &str,
        msg_id: &str,
        event_type: &str,
        headers: &http::HeaderMap,
        body: Bytes,
    ) -> Option<SendResult> {
        let tx = self.inner.sessions.lock().get(session).cloned()?;
        let start = Instant::now();
        let (reply_tx, reply_rx) = oneshot::channel();
        let req = ListenRequest {
            msg_id: msg_id.to_string(),
            event_type: event_type.to_string(),
            headers: headers
                .iter()
                .filter_map(|(k, v)| Some((k.as_str().to_string(), v.to_str().ok()?.to_string())))
                .collect(),
            body,
            reply: reply_tx,
        };
        let failed = |error, detail: &str| SendResult::Failed {
            error,
            detail: detail.to_string(),
            duration: start.elapsed(),
        };
        let waited = tokio::time::timeout(self.inner.timeout, async {
            if tx.send(req).await.is_err() {
                return Err("the herald listen session closed");
            }
            reply_rx
                .await
                .map_err(|_| "the herald listen session closed before answering")
        })
        .await;
        Some(match waited {
            Err(_) => failed(
                TransportError::Timeout,
                "herald listen: no answer from the local server within the request timeout",
            ),
            Ok(Err(detail)) => failed(TransportError::Connect, detail),
            Ok(Ok(ListenReply::Failed { error, detail })) => failed(error, &detail),
            Ok(Ok(ListenReply::Response {
                status,
                retry_after,
                location,
                mut body,
            })) => {
                if body.len() > MAX_STORED_RESPONSE {
                    let mut cut = MAX_STORED_RESPONSE;
                    while !body.is_char_boundary(cut) {
                        cut -= 1;
                    }
                    body.truncate(cut);
                }
                SendResult::Response {
                    status,
                    retry_after,
                    location,
                    body,
                    duration: start.elapsed(),
                }
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_listen_scheme_names_a_session() {
        assert_eq!(session_of("herald-listen://abc"), Some("abc"));
        assert_eq!(session_of(&listen_url("s1")), Some("s1"));
        assert_eq!(session_of("herald-listen://"), None);
        assert_eq!(session_of("https://herald-listen://x"), None);
        assert_eq!(session_of("http://example.com"), None);
    }

    #[tokio::test]
    async fn a_reply_becomes_a_send_result_and_an_unknown_session_is_none() {
        let (_tx, rx) = watch::channel(false);
        let hub = ListenHub::new(Duration::from_secs(5), rx);
        let h = http::HeaderMap::new();
        assert!(hub
            .forward("nope", "msg_1", "a.b", &h, Bytes::new())
            .await
            .is_none());
        let (guard, mut reqs) = hub.register("s1");
        let answer = tokio::spawn(async move {
            let r = reqs.recv().await.expect("one request");
            assert_eq!(r.body.as_ref(), b"{}");
            let _ = r.reply.send(ListenReply::Response {
                status: 204,
                retry_after: None,
                location: None,
                body: "x".repeat(MAX_STORED_RESPONSE + 10),
            });
        });
        let res = hub
            .forward("s1", "msg_1", "a.b", &h, Bytes::from_static(b"{}"))
            .await;
        answer.await.expect("answer task");
        match res {
            Some(SendResult::Response { status, body, .. }) => {
                assert_eq!(status, 204);
                assert_eq!(body.len(), MAX_STORED_RESPONSE);
            }
            other => panic!("unexpected {other:?}"),
        }
        drop(guard);
        assert!(hub
            .forward("s1", "msg_1", "a.b", &h, Bytes::new())
            .await
            .is_none());
        hub.wait_closed(Duration::from_secs(1)).await;
    }
}
