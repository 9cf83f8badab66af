//! `GET /api/v1/listen` — the server side of `herald listen`: a WebSocket over which an
//! application's deliveries reach a developer's machine without a tunnel.
//!
//! On upgrade the session creates a temporary endpoint (uid `herald-listen-<session>`, URL
//! `herald-listen://<session>`), registers itself in the node's [`ListenHub`] and says hello.
//! The delivery engine hands each signed request of that endpoint to the hub; this module
//! writes it to the socket as an `event` frame and turns the CLI's `result` frame back into the
//! engine's answer, which the engine records like any HTTP attempt. When the socket closes
//! (Ctrl-C, crash, network drop, shutdown) the temporary endpoint is deleted.
//!
//! This module owns the wire protocol and the session's life; it must not classify answers or
//! record attempts (the engine does), and it never opens an outbound connection.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use axum::extract::ws::rejection::WebSocketUpgradeRejection;
use axum::extract::ws::{CloseFrame, Message as WsMessage, WebSocket, WebSocketUpgrade};
use axum::response::Response;
use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine as _;
use futures::{SinkExt, StreamExt};
use herald_core::ids::{EndpointId, SourceId};
use herald_core::model::{Application, Endpoint};
use herald_core::now_millis;
use herald_core::outcome::TransportError;
use herald_core::signing::EndpointSecret;
use herald_delivery::listen::{listen_url, ListenReply, LISTEN_UID_PREFIX};
use herald_delivery::ListenHub;
use serde::Deserialize;
use serde_json::json;
use tokio::sync::oneshot;

use crate::dto::{check_list, Checks};
use crate::error::{ApiError, ApiResult, ErrorBody};
use crate::extract::{Auth, Q};
use crate::scope::Ctx;
use crate::service::apps;
use crate::state::AppState;

/// How often the server pings an idle session.
const PING_EVERY: Duration = Duration::from_secs(15);
/// A session that sent nothing (not even a pong) for this long is dropped: the network is gone.
const IDLE_LIMIT: Duration = Duration::from_secs(45);
/// Longest wait to write one frame; a client that stops reading is dropped.
const SEND_LIMIT: Duration = Duration::from_secs(10);
/// Largest frame accepted from the CLI (a result carries at most 16 KiB of body, escaped).
const MAX_FRAME: usize = 256 * 1024;
/// Attempts at deleting the temporary endpoint when the session ends.
const CLEANUP_TRIES: u32 = 5;

/// Query of `GET /api/v1/listen`.
#[derive(Debug, Default, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ListenParams {
    /// Application ID (`app_…`) or uid: listen to all its messages. Optional with a source ID.
    pub app: Option<String>,
    /// Source ID (`src_…`), or a source uid together with `app`: only messages accepted from
    /// this source (they carry the channel `herald-source.<source id>`).
    pub source: Option<String>,
    /// Comma-separated event types to receive (default: all).
    pub types: Option<String>,
}

/// What the session subscribes to.
struct Filter {
    app: Application,
    source: Option<SourceId>,
    channel: Option<String>,
    types: Option<Vec<String>>,
}

/// Open a `herald listen` session **(herald)**: a WebSocket that creates a temporary endpoint
/// of the application and carries its signed deliveries to the client, which answers each with
/// the local server's response (see docs/inbound.md "Local development with herald listen").
#[utoipa::path(get, path = "/api/v1/listen", tag = "Endpoint", operation_id = "listen",
    params(ListenParams),
    responses(
        (status = 101, description = "Switching to the WebSocket protocol (frames: hello, event, result)"),
        (status = 400, description = "Not a WebSocket upgrade request", body = ErrorBody),
        (status = 404, description = "No such application or source", body = ErrorBody),
        (status = 422, description = "Neither app nor source, or invalid types", body = crate::error::ValidationErrorBody),
        (status = 503, description = "This node runs no delivery workers (role `api`): `listen_unavailable`", body = ErrorBody)))]
pub async fn listen(
    Ctx { st, auth, .. }: Ctx,
    Q(p): Q<ListenParams>,
    ws: Result<WebSocketUpgrade, WebSocketUpgradeRejection>,
) -> ApiResult<Response> {
    let filter = resolve(&st, &auth, p).await?;
    let Some(hub) = st.inner.listen.clone() else {
        // API-only nodes send nothing; the session must be held where workers run.
        return Err(ApiError::ListenUnavailable(
            "this node runs no delivery workers; connect to a node with role `all`".into(),
        ));
    };
    let ws = match ws {
        Ok(ws) => ws,
        Err(rej) => {
            return Err(ApiError::WebSocketRequired(format!(
                "this route speaks WebSocket only: {}",
                rej.body_text()
            )))
        }
    };
    Ok(ws
        .max_message_size(MAX_FRAME)
        .on_upgrade(move |socket| session(st, hub, filter, socket)))
}

/// Checks the query and tenancy before the upgrade, so mistakes answer with a status.
async fn resolve(st: &AppState, auth: &Auth, p: ListenParams) -> ApiResult<Filter> {
    let types: Option<Vec<String>> = p.types.as_deref().map(|t| {
        t.split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(str::to_string)
            .collect()
    });
    let mut c = Checks::default();
    check_list(&mut c, "types", types.as_ref());
    if p.app.is_none() && p.source.is_none() {
        c.fail("app", "give `app`, `source`, or both");
    }
    if p.app.is_none()
        && p.source
            .as_deref()
            .is_some_and(|s| !SourceId::looks_like(s))
    {
        c.fail(
            "source",
            "a source uid needs `app`; or give the source ID (`src_…`)",
        );
    }
    c.finish()?;
    let types = types.filter(|t| !t.is_empty());
    let (app, source) = match (p.app, p.source) {
        (Some(app), None) => (apps::load(st, auth, &app).await?, None),
        (Some(app), Some(src)) => {
            let app = apps::load(st, auth, &app).await?;
            let source = st
                .store()
                .get_source(&app.id, &src)
                .await?
                .ok_or_else(|| ApiError::not_found("source"))?;
            (app, Some(source))
        }
        (None, Some(src)) => {
            let source = st
                .store()
                .find_source(&SourceId(src))
                .await?
                .ok_or_else(|| ApiError::not_found("source"))?;
            (
                apps::load(st, auth, source.app_id.as_str()).await?,
                Some(source),
            )
        }
        (None, None) => return Err(ApiError::field("app", "give `app`, `source`, or both")),
    };
    Ok(Filter {
        app,
        channel: source.as_ref().map(|s| s.channel()),
        source: source.map(|s| s.id),
        types,
    })
}

/// A `result` frame from the CLI.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct ResultFrame {
    id: u64,
    status: Option<u16>,
    #[serde(default)]
    body: Option<String>,
    #[serde(default)]
    retry_after: Option<String>,
    #[serde(default)]
    location: Option<String>,
    /// `connect` or `timeout` when the local server could not be reached.
    #[serde(default)]
    error: Option<String>,
    #[serde(default)]
    detail: Option<String>,
}

impl ResultFrame {
    fn into_reply(self) -> ListenReply {
        match (self.status, self.error) {
            (Some(status), None) => ListenReply::Response {
                status,
                retry_after: self.retry_after,
                location: self.location,
                body: self.body.unwrap_or_default(),
            },
            (_, err) => ListenReply::Failed {
                error: match err.as_deref() {
                    Some("timeout") => TransportError::Timeout,
                    Some("connect") => TransportError::Connect,
                    _ => TransportError::Other,
                },
                detail: format!(
                    "herald listen: {}",
                    self.detail
                        .as_deref()
                        .unwrap_or("the local server did not answer")
                ),
            },
        }
    }
}

fn text(v: serde_json::Value) -> WsMessage {
    WsMessage::Text(v.to_string().into())
}

/// One session, from upgrade to clean-up.
async fn session(st: AppState, hub: ListenHub, filter: Filter, socket: WebSocket) {
    let session_id = ulid::Ulid::new().to_string().to_lowercase();
    let (mut sink, mut stream) = socket.split();
    // Registered before the endpoint exists, so its first delivery already finds the session.
    let (guard, mut requests) = hub.register(&session_id);
    let secret = EndpointSecret::generate();
    let now = now_millis();
    let mut ep = Endpoint::internal(
        filter.app.id.clone(),
        format!("{LISTEN_UID_PREFIX}{session_id}"),
        listen_url(&session_id),
        "herald listen session (temporary: removed when the CLI disconnects)".into(),
        &secret,
        now,
    );
    ep.event_types = filter.types.clone();
    ep.channels = filter.channel.clone().map(|c| vec![c]);
    let ep_id = ep.id.clone();
    if let Err(e) = st.store().create_endpoint(ep).await {
        tracing::warn!(error = %e, "herald listen: cannot create the temporary endpoint");
        let frame = json!({"type": "error", "code": "storage_unavailable",
            "detail": "cannot create the temporary endpoint; retry later"});
        let _ = tokio::time::timeout(SEND_LIMIT, sink.send(text(frame))).await;
        return;
    }
    tracing::info!(app_id = %filter.app.id, endpoint_id = %ep_id, session = %session_id, "herald listen session opened");
    let hello = json!({
        "type": "hello",
        "sessionId": session_id,
        "appId": filter.app.id.as_str(),
        "appName": filter.app.name,
        "endpointId": ep_id.as_str(),
        "sourceId": filter.source.as_ref().map(|s| s.as_str().to_string()),
        "eventTypes": filter.types,
        "secret": secret.expose(),
        "timeoutMs": hub.timeout().as_millis() as u64,
    });
    let ended = match tokio::time::timeout(SEND_LIMIT, sink.send(text(hello))).await {
        Ok(Ok(())) => pump(&hub, &mut sink, &mut stream, &mut requests).await,
        _ => "the client did not take the hello frame",
    };
    // Stop taking requests first; requests still queued fail as "session closed".
    drop(guard);
    drop(requests);
    tracing::info!(endpoint_id = %ep_id, session = %session_id, reason = ended, "herald listen session closed");
    remove_endpoint(&st, &filter.app, &ep_id).await;
}

type Sink = futures::stream::SplitSink<WebSocket, WsMessage>;
type Stream = futures::stream::SplitStream<WebSocket>;

/// Moves requests to the socket and results back until the session ends; says why it ended.
async fn pump(
    hub: &ListenHub,
    sink: &mut Sink,
    stream: &mut Stream,
    requests: &mut tokio::sync::mpsc::Receiver<herald_delivery::listen::ListenRequest>,
) -> &'static str {
    let mut pending: HashMap<u64, oneshot::Sender<ListenReply>> = HashMap::new();
    let mut next_id = 0u64;
    let mut last_seen = Instant::now();
    let mut ping = tokio::time::interval(PING_EVERY);
    ping.tick().await;
    let mut shutdown = hub.shutdown();
    loop {
        tokio::select! {
            req = requests.recv() => {
                let Some(req) = req else { return "hub closed" };
                next_id += 1;
                let mut frame = json!({
                    "type": "event",
                    "id": next_id,
                    "msgId": req.msg_id,
                    "eventType": req.event_type,
                    "headers": req.headers,
                });
                // Text bodies (JSON, forms) travel as a string, which round-trips byte for
                // byte; anything else (an inbound binary body) as base64.
                match std::str::from_utf8(&req.body) {
                    Ok(t) => frame["body"] = json!(t),
                    Err(_) => frame["bodyBase64"] = json!(B64.encode(&req.body)),
                }
                match tokio::time::timeout(SEND_LIMIT, sink.send(text(frame))).await {
                    Ok(Ok(())) => {}
                    _ => return "could not write to the client",
                }
                // Replies the engine stopped waiting for (timeout) are dropped here, so the
                // map stays as small as the endpoint's in-flight deliveries.
                pending.retain(|_, tx| !tx.is_closed());
                pending.insert(next_id, req.reply);
            }
            msg = stream.next() => {
                last_seen = Instant::now();
                match msg {
                    Some(Ok(WsMessage::Text(t))) => {
                        match serde_json::from_str::<ResultFrame>(t.as_str()) {
                            Ok(r) => {
                                if let Some(tx) = pending.remove(&r.id) {
                                    let _ = tx.send(r.into_reply());
                                }
                            }
                            Err(e) => tracing::debug!(error = %e, "herald listen: ignored a frame that is not a result"),
                        }
                    }
                    Some(Ok(WsMessage::Close(_))) | None => return "the client closed the connection",
                    Some(Err(_)) => return "the connection broke",
                    Some(Ok(_)) => {}
                }
            }
            _ = ping.tick() => {
                if last_seen.elapsed() > IDLE_LIMIT {
                    return "the client stopped answering pings";
                }
                match tokio::time::timeout(SEND_LIMIT, sink.send(WsMessage::Ping(Default::default()))).await {
                    Ok(Ok(())) => {}
                    _ => return "could not write to the client",
                }
            }
            _ = async { drop(shutdown.wait_for(|s| *s).await) } => {
                let close = WsMessage::Close(Some(CloseFrame {
                    code: 1001,
                    reason: "Herald is shutting down".into(),
                }));
                let _ = tokio::time::timeout(SEND_LIMIT, sink.send(close)).await;
                return "server shutdown";
            }
        }
    }
}

/// Deletes the temporary endpoint, retrying briefly through a storage hiccup. What is left
/// behind (storage down, process killed) is removed at the next start of a single-node server.
async fn remove_endpoint(st: &AppState, app: &Application, id: &EndpointId) {
    for attempt in 1..=CLEANUP_TRIES {
        match st.store().delete_endpoint(&app.id, id).await {
            Ok(()) | Err(herald_store::StoreError::NotFound) => return,
            Err(e) if attempt < CLEANUP_TRIES => {
                tracing::warn!(error = %e, endpoint_id = %id, "herald listen: deleting the temporary endpoint failed; retrying");
                tokio::time::sleep(Duration::from_millis(200 * attempt as u64)).await;
            }
            Err(e) => {
                tracing::error!(error = %e, endpoint_id = %id, "herald listen: could not delete the temporary endpoint");
            }
        }
    }
}
