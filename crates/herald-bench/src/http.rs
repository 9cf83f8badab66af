//! The bench's HTTP/1.1 client (hyper-util, keep-alive pool) and the few Herald API calls the
//! scenarios need. It only ever talks to loopback addresses this process chose: the Herald
//! child and the bench receiver. It is not Herald's delivery path, so the SSRF-guarded
//! `DeliveryClient` rule of `clippy.toml` does not apply (and no `reqwest` is used).

use std::time::Duration;

use anyhow::{anyhow, bail, Context as _};
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::header::{HeaderValue, AUTHORIZATION, CONTENT_TYPE};
use hyper::{Method, Request, StatusCode, Uri};
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use serde_json::Value;

/// Upper bound of any single request the bench makes.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);

pub type HttpClient = Client<HttpConnector, Full<Bytes>>;

/// A keep-alive client; each concurrent caller ends up with a connection of its own.
pub fn client() -> HttpClient {
    let mut conn = HttpConnector::new();
    conn.set_nodelay(true);
    conn.enforce_http(true);
    Client::builder(TokioExecutor::new())
        .pool_max_idle_per_host(4096)
        .pool_idle_timeout(Duration::from_secs(120))
        .build(conn)
}

/// POSTs `body` as JSON and returns the status (the answer body is read and dropped).
pub async fn post(
    http: &HttpClient,
    uri: &Uri,
    auth: Option<&HeaderValue>,
    body: Bytes,
) -> anyhow::Result<StatusCode> {
    match auth {
        Some(a) => send(http, uri, &[(AUTHORIZATION.as_str(), a.clone())], body).await,
        None => send(http, uri, &[], body).await,
    }
}

/// POSTs `body` with extra headers (an inbound provider's signature headers) and no token.
pub async fn post_signed(
    http: &HttpClient,
    uri: &Uri,
    headers: &[(&'static str, String)],
    body: Bytes,
) -> anyhow::Result<StatusCode> {
    let headers = headers
        .iter()
        .map(|(k, v)| Ok((*k, HeaderValue::from_str(v)?)))
        .collect::<anyhow::Result<Vec<_>>>()?;
    send(http, uri, &headers, body).await
}

/// One JSON POST with `headers`, bounded by [`REQUEST_TIMEOUT`].
async fn send(
    http: &HttpClient,
    uri: &Uri,
    headers: &[(&str, HeaderValue)],
    body: Bytes,
) -> anyhow::Result<StatusCode> {
    let mut b = Request::post(uri.clone()).header(CONTENT_TYPE, "application/json");
    for (k, v) in headers {
        b = b.header(*k, v.clone());
    }
    let req = b.body(Full::new(body))?;
    let fut = async {
        let resp = http.request(req).await?;
        let status = resp.status();
        resp.into_body().collect().await?;
        anyhow::Ok(status)
    };
    tokio::time::timeout(REQUEST_TIMEOUT, fut)
        .await
        .map_err(|_| anyhow!("request timed out after {REQUEST_TIMEOUT:?}"))?
}

/// Herald's management API, authenticated with the admin token.
#[derive(Clone)]
pub struct Api {
    pub http: HttpClient,
    pub base: String,
    pub auth: HeaderValue,
}

impl Api {
    pub fn new(base: String, token: &str) -> anyhow::Result<Self> {
        Ok(Self {
            http: client(),
            base,
            auth: HeaderValue::from_str(&format!("Bearer {token}"))?,
        })
    }

    /// `{base}/api/v1{path}`
    pub fn uri(&self, path: &str) -> anyhow::Result<Uri> {
        Ok(format!("{}/api/v1{}", self.base, path).parse()?)
    }

    /// One JSON call; returns the status and the parsed answer (`Null` when empty).
    pub async fn call(
        &self,
        method: Method,
        path: &str,
        body: Option<&Value>,
    ) -> anyhow::Result<(StatusCode, Value)> {
        let bytes = match body {
            Some(v) => Bytes::from(serde_json::to_vec(v)?),
            None => Bytes::new(),
        };
        let req = Request::builder()
            .method(method.clone())
            .uri(self.uri(path)?)
            .header(CONTENT_TYPE, "application/json")
            .header(AUTHORIZATION, self.auth.clone())
            .body(Full::new(bytes))?;
        let fut = async {
            let resp = self.http.request(req).await?;
            let status = resp.status();
            let body = resp.into_body().collect().await?.to_bytes();
            let v = if body.is_empty() {
                Value::Null
            } else {
                serde_json::from_slice(&body)
                    .unwrap_or(Value::String(String::from_utf8_lossy(&body).into_owned()))
            };
            anyhow::Ok((status, v))
        };
        tokio::time::timeout(REQUEST_TIMEOUT, fut)
            .await
            .map_err(|_| anyhow!("{method} {path} timed out"))?
            .with_context(|| format!("{method} {path}"))
    }

    /// A call that must answer `expect`; returns the answer.
    pub async fn expect(
        &self,
        method: Method,
        path: &str,
        body: Option<&Value>,
        expect: u16,
    ) -> anyhow::Result<Value> {
        let (status, v) = self.call(method.clone(), path, body).await?;
        if status.as_u16() != expect {
            bail!("{method} {path}: expected {expect}, got {status}: {v}");
        }
        Ok(v)
    }

    /// The text of `GET {base}/metrics` (Prometheus exposition format).
    pub async fn metrics(&self) -> anyhow::Result<String> {
        let req = Request::get(format!("{}/metrics", self.base))
            .header(AUTHORIZATION, self.auth.clone())
            .body(Full::new(Bytes::new()))?;
        let fut = async {
            let resp = self.http.request(req).await?;
            let status = resp.status();
            let body = resp.into_body().collect().await?.to_bytes();
            anyhow::ensure!(status == StatusCode::OK, "GET /metrics: {status}");
            anyhow::Ok(String::from_utf8_lossy(&body).into_owned())
        };
        tokio::time::timeout(REQUEST_TIMEOUT, fut)
            .await
            .map_err(|_| anyhow!("GET /metrics timed out"))?
    }

    /// Creates an application and returns its ID.
    pub async fn create_app(&self, name: &str) -> anyhow::Result<String> {
        let v = self
            .expect(
                Method::POST,
                "/app",
                Some(&serde_json::json!({ "name": name })),
                201,
            )
            .await?;
        id_of(&v)
    }

    /// Creates an endpoint from `body` and returns its ID.
    pub async fn create_endpoint(&self, app: &str, body: Value) -> anyhow::Result<String> {
        let v = self
            .expect(
                Method::POST,
                &format!("/app/{app}/endpoint"),
                Some(&body),
                201,
            )
            .await?;
        id_of(&v)
    }
}

fn id_of(v: &Value) -> anyhow::Result<String> {
    v["id"]
        .as_str()
        .map(str::to_string)
        .ok_or_else(|| anyhow!("no id in {v}"))
}
