//! `herald listen`: local development without a tunnel. Opens a WebSocket to Herald
//! (`GET /api/v1/listen`, bearer token from `HERALD_TOKEN`), receives the signed deliveries of
//! the temporary endpoint Herald creates for the session, POSTs each one to the local
//! `--forward` URL with the same headers and body, prints one line per event and reports the
//! local answer back so Herald records the attempt (and retries it) like any other.
//!
//! The local request goes only to the URL the developer named on the command line, so this is
//! not the SSRF-guarded delivery client. This module owns the client side of the protocol; the
//! server side is `herald-api/src/routes/listen.rs`.

use std::io::Write;
use std::time::{Duration, Instant};

use futures::{SinkExt, StreamExt};
use herald_delivery::client::Reply;
use serde::Deserialize;
use serde_json::{json, Value};
use tokio::sync::mpsc;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::protocol::CloseFrame;
use tokio_tungstenite::tungstenite::Message as WsMessage;

/// Bytes of the local answer reported back (the attempt log keeps 16 KiB).
const MAX_REPORTED_BODY: usize = 16 * 1024;
/// How long Ctrl-C waits for Herald to acknowledge the close.
const CLOSE_GRACE: Duration = Duration::from_secs(3);
/// Frames waiting to be written to Herald.
const OUTBOX: usize = 256;
/// Local request timeout when Herald does not say (it sends its own in the hello frame).
const DEFAULT_TIMEOUT: Duration = Duration::from_secs(15);
/// Headers the local request gets from its own connection, never copied.
const HOP_BY_HOP: &[&str] = &[
    "host",
    "content-length",
    "connection",
    "transfer-encoding",
    "keep-alive",
    "upgrade",
    "te",
    "trailer",
];

/// What to listen to and where to forward.
#[derive(Clone, Debug)]
pub struct ListenOptions {
    /// Herald's base URL (`HERALD_URL`).
    pub server: String,
    pub token: String,
    pub app: Option<String>,
    pub source: Option<String>,
    pub types: Vec<String>,
    /// The local URL each event is POSTed to.
    pub forward: String,
}

#[derive(Debug, thiserror::Error)]
pub enum ListenError {
    #[error("invalid URL {0}")]
    Url(String),
    #[error("Herald answered {status}: {code}: {detail}")]
    Api {
        status: u16,
        code: String,
        detail: String,
    },
    #[error("cannot reach Herald at {url}: {detail}")]
    Unreachable { url: String, detail: String },
    #[error("the connection to Herald ended: {0}")]
    Lost(String),
    #[error("Herald refused the session: {0}")]
    Refused(String),
}

/// The WebSocket URL of the listen route for `opts`.
pub fn listen_url(opts: &ListenOptions) -> Result<url::Url, ListenError> {
    let mut u = url::Url::parse(&opts.server)
        .map_err(|e| ListenError::Url(format!("{}: {e}", opts.server)))?;
    let scheme = match u.scheme() {
        "http" => "ws",
        "https" => "wss",
        other => {
            return Err(ListenError::Url(format!(
                "{}: expected http or https, not {other}",
                opts.server
            )))
        }
    };
    u.set_scheme(scheme)
        .map_err(|_| ListenError::Url(opts.server.clone()))?;
    let path = format!("{}/api/v1/listen", u.path().trim_end_matches('/'));
    u.set_path(&path);
    u.set_query(None);
    {
        let mut q = u.query_pairs_mut();
        if let Some(a) = &opts.app {
            q.append_pair("app", a);
        }
        if let Some(s) = &opts.source {
            q.append_pair("source", s);
        }
        if !opts.types.is_empty() {
            q.append_pair("types", &opts.types.join(","));
        }
    }
    Ok(u)
}

/// An `event` frame from Herald.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct EventFrame {
    id: u64,
    msg_id: String,
    event_type: String,
    headers: Vec<(String, String)>,
    /// A text body, exactly.
    #[serde(default)]
    body: Option<String>,
    /// A body that is not UTF-8 (an inbound binary body), base64.
    #[serde(default)]
    body_base64: Option<String>,
}

impl EventFrame {
    fn body_bytes(&mut self) -> Vec<u8> {
        use base64::Engine as _;
        match (self.body.take(), self.body_base64.take()) {
            (Some(t), _) => t.into_bytes(),
            (None, Some(b)) => base64::engine::general_purpose::STANDARD
                .decode(b)
                .unwrap_or_default(),
            (None, None) => Vec::new(),
        }
    }
}

/// Runs a session until Ctrl-C (Ok) or until the connection ends (Err). Lines go to `out`.
pub async fn listen(
    opts: ListenOptions,
    out: impl Write + Send + 'static,
) -> Result<(), ListenError> {
    let socket = connect(&opts).await?;
    let (mut sink, mut stream) = socket.split();
    let (outbox, mut outgoing) = mpsc::channel::<WsMessage>(OUTBOX);
    let writer = tokio::spawn(async move {
        while let Some(m) = outgoing.recv().await {
            let closing = matches!(m, WsMessage::Close(_));
            if sink.send(m).await.is_err() || closing {
                break;
            }
        }
    });
    let out = std::sync::Arc::new(parking_lot::Mutex::new(out));
    let mut local: Option<reqwest::Client> = None;
    let ctrl_c = interrupted();
    tokio::pin!(ctrl_c);
    let result = loop {
        tokio::select! {
            _ = &mut ctrl_c => {
                let _ = outbox.send(WsMessage::Close(Some(CloseFrame {
                    code: CloseCode::Normal,
                    reason: "herald listen stopped".into(),
                }))).await;
                // Herald deletes the temporary endpoint when it sees the close; wait briefly
                // for its answer so the deletion has started before the process exits.
                let _ = tokio::time::timeout(CLOSE_GRACE, async {
                    while let Some(Ok(m)) = stream.next().await {
                        if matches!(m, WsMessage::Close(_)) {
                            break;
                        }
                    }
                })
                .await;
                say(&out, "Stopped; Herald removes the temporary endpoint.");
                break Ok(());
            }
            msg = stream.next() => match msg {
                Some(Ok(WsMessage::Text(t))) => {
                    let frame: Value = serde_json::from_str(t.as_str()).unwrap_or(Value::Null);
                    match frame["type"].as_str() {
                        Some("hello") => {
                            let timeout = frame["timeoutMs"]
                                .as_u64()
                                .map(Duration::from_millis)
                                .unwrap_or(DEFAULT_TIMEOUT);
                            local = Some(local_client(timeout));
                            say(&out, &banner(&frame, &opts.forward));
                        }
                        Some("event") => {
                            let Ok(ev) = serde_json::from_value::<EventFrame>(frame) else {
                                continue;
                            };
                            let client = local.get_or_insert_with(|| local_client(DEFAULT_TIMEOUT)).clone();
                            let (forward, outbox, out) = (opts.forward.clone(), outbox.clone(), out.clone());
                            tokio::spawn(async move {
                                let (reply, line) = forward_one(&client, &forward, ev).await;
                                say(&out, &line);
                                let _ = outbox.send(WsMessage::Text(reply.to_string().into())).await;
                            });
                        }
                        Some("error") => {
                            break Err(ListenError::Refused(
                                frame["detail"].as_str().unwrap_or("unknown error").to_string(),
                            ));
                        }
                        _ => {}
                    }
                }
                Some(Ok(WsMessage::Close(frame))) => {
                    let why = frame
                        .map(|f| f.reason.to_string())
                        .filter(|r| !r.is_empty())
                        .unwrap_or_else(|| "closed by Herald".into());
                    break Err(ListenError::Lost(why));
                }
                Some(Ok(_)) => {}
                Some(Err(e)) => break Err(ListenError::Lost(e.to_string())),
                None => break Err(ListenError::Lost("closed".into())),
            }
        }
    };
    drop(outbox);
    let _ = tokio::time::timeout(CLOSE_GRACE, writer).await;
    result
}

/// Opens the session's WebSocket; an HTTP refusal becomes the API's `{code, detail}`.
async fn connect(
    opts: &ListenOptions,
) -> Result<
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>,
    ListenError,
> {
    let url = listen_url(opts)?;
    url::Url::parse(&opts.forward)
        .ok()
        .filter(|u| matches!(u.scheme(), "http" | "https"))
        .ok_or_else(|| {
            ListenError::Url(format!("--forward {}: expected http(s)://…", opts.forward))
        })?;
    let mut req = url
        .as_str()
        .into_client_request()
        .map_err(|e| ListenError::Url(format!("{url}: {e}")))?;
    let auth = format!("Bearer {}", opts.token)
        .parse()
        .map_err(|_| ListenError::Url("the token is not a valid header value".into()))?;
    req.headers_mut().insert(http::header::AUTHORIZATION, auth);
    match tokio_tungstenite::connect_async(req).await {
        Ok((socket, _)) => Ok(socket),
        Err(tokio_tungstenite::tungstenite::Error::Http(resp)) => {
            let status = resp.status().as_u16();
            let body: Value = resp
                .body()
                .as_deref()
                .and_then(|b| serde_json::from_slice(b).ok())
                .unwrap_or(Value::Null);
            Err(ListenError::Api {
                status,
                code: body["code"].as_str().unwrap_or("error").to_string(),
                detail: body["detail"]
                    .as_str()
                    .map(str::to_string)
                    .unwrap_or_else(|| body["detail"].to_string()),
            })
        }
        Err(e) => Err(ListenError::Unreachable {
            url: opts.server.clone(),
            detail: e.to_string(),
        }),
    }
}

/// Resolves on Ctrl-C (or SIGTERM on Unix).
async fn interrupted() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = tokio::signal::ctrl_c() => {}
                    _ = term.recv() => {}
                }
            }
            Err(_) => {
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}

fn say<W: Write>(out: &parking_lot::Mutex<W>, line: &str) {
    {
        let mut w = out.lock();
        let _ = writeln!(w, "{line}");
        let _ = w.flush();
    }
}

fn banner(hello: &Value, forward: &str) -> String {
    let what = match hello["sourceId"].as_str() {
        Some(src) => format!(
            "source {src} of app {}",
            hello["appId"].as_str().unwrap_or("?")
        ),
        None => format!("app {}", hello["appId"].as_str().unwrap_or("?")),
    };
    let types = match hello["eventTypes"].as_array() {
        Some(t) => format!(
            " (types: {})",
            t.iter()
                .filter_map(Value::as_str)
                .collect::<Vec<_>>()
                .join(", ")
        ),
        None => String::new(),
    };
    format!(
        "Ready: forwarding events of {what}{types} to {forward}\n\
         Temporary endpoint {} — signing secret {}\n\
         Press Ctrl-C to stop.",
        hello["endpointId"].as_str().unwrap_or("?"),
        hello["secret"].as_str().unwrap_or("?"),
    )
}

/// The client for the developer's own server: no proxy (it is local), no redirects (an
/// attempt records the 3xx, as Herald does), the server's request timeout.
#[allow(clippy::disallowed_methods)] // talks to the URL the developer named, not to endpoints
fn local_client(timeout: Duration) -> reqwest::Client {
    reqwest::Client::builder()
        .no_proxy()
        .redirect(reqwest::redirect::Policy::none())
        .timeout(timeout)
        .user_agent(format!("Herald/{} (herald listen)", herald_core::VERSION))
        .build()
        .unwrap_or_default()
}

/// POSTs one event locally; returns the `result` frame and the terminal line.
async fn forward_one(
    client: &reqwest::Client,
    forward: &str,
    mut ev: EventFrame,
) -> (Value, String) {
    let start = Instant::now();
    let mut rb = client.post(forward).body(ev.body_bytes());
    for (k, v) in &ev.headers {
        if !HOP_BY_HOP.contains(&k.to_ascii_lowercase().as_str()) {
            rb = rb.header(k, v);
        }
    }
    let when = chrono::Local::now().format("%Y-%m-%d %H:%M:%S");
    let prefix = format!("{when}  {}  {}", ev.event_type, ev.msg_id);
    match rb.send().await {
        Ok(resp) => {
            let status = resp.status();
            // A local receiver that stalls mid-body is reported with what it sent so far.
            let (reply, _) = Reply::read(resp, MAX_REPORTED_BODY).await;
            let Reply {
                body,
                retry_after,
                location,
                ..
            } = reply;
            let ms = start.elapsed().as_millis();
            let reply = json!({
                "type": "result",
                "id": ev.id,
                "status": status.as_u16(),
                "body": String::from_utf8_lossy(&body),
                "retryAfter": retry_after,
                "location": location,
                "durationMs": ms as u64,
            });
            (reply, format!("{prefix}  -> {status}  ({ms} ms)"))
        }
        Err(e) => {
            let kind = if e.is_timeout() { "timeout" } else { "connect" };
            let mut detail = e.to_string();
            let mut src = std::error::Error::source(&e);
            while let Some(s) = src {
                detail = s.to_string();
                src = s.source();
            }
            let ms = start.elapsed().as_millis();
            let reply = json!({
                "type": "result",
                "id": ev.id,
                "error": kind,
                "detail": format!("{forward}: {detail}"),
                "durationMs": ms as u64,
            });
            (
                reply,
                format!("{prefix}  -> {kind} error: {detail}  ({ms} ms)"),
            )
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn opts(server: &str) -> ListenOptions {
        ListenOptions {
            server: server.into(),
            token: "t".into(),
            app: Some("acme".into()),
            source: None,
            types: vec!["a.b".into(), "c".into()],
            forward: "http://127.0.0.1:3000/hook".into(),
        }
    }

    #[test]
    fn the_websocket_url_follows_the_server_url() {
        assert_eq!(
            listen_url(&opts("http://127.0.0.1:8787")).unwrap().as_str(),
            "ws://127.0.0.1:8787/api/v1/listen?app=acme&types=a.b%2Cc"
        );
        assert_eq!(
            listen_url(&opts("https://h.example/herald/"))
                .unwrap()
                .as_str(),
            "wss://h.example/herald/api/v1/listen?app=acme&types=a.b%2Cc"
        );
        assert!(listen_url(&opts("ftp://x")).is_err());
    }
}
