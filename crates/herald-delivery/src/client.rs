//! The outbound HTTP client: the only place in Herald that builds a `reqwest::Client`.
//!
//! SSRF defence lives here. Herald resolves host names itself through [`GuardedResolver`],
//! drops every address the egress policy refuses, and hands reqwest only the checked
//! addresses — so the connection goes to an address that was checked, and DNS rebinding
//! between check and connect is impossible. Literal IP hosts never reach a resolver, so they
//! are checked before the request is built. Redirects are never followed and proxy environment
//! variables are ignored; TLS is rustls with verification always on. Endpoints with their own
//! TLS settings (client certificate, private CAs) get a client of their own built on the same
//! configuration (see `crate::tls`).

use std::error::Error as StdError;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::{Duration, Instant};

use herald_core::endpoint_options::TlsOptions;
use herald_core::model::Endpoint;
use herald_core::outcome::TransportError;
use herald_core::ssrf::EgressPolicy;
use reqwest::dns::{Addrs, Name, Resolve, Resolving};
use url::{Host, Url};

/// Bytes of a response body kept in the attempt log.
pub const MAX_STORED_RESPONSE: usize = 16 * 1024;

/// Raised by the resolver when every address of a name is refused.
#[derive(Debug, thiserror::Error)]
#[error("{0} resolves only to refused addresses (e.g. {1})")]
pub struct BlockedAddress(pub String, pub IpAddr);

/// Resolves names with the system resolver and keeps only addresses the policy allows.
#[derive(Clone)]
pub struct GuardedResolver {
    policy: Arc<EgressPolicy>,
}

impl Resolve for GuardedResolver {
    fn resolve(&self, name: Name) -> Resolving {
        let policy = self.policy.clone();
        Box::pin(async move {
            let host = name.as_str().to_string();
            let addrs: Vec<SocketAddr> = tokio::net::lookup_host((host.as_str(), 0))
                .await
                .map_err(|e| Box::new(e) as Box<dyn StdError + Send + Sync>)?
                .collect();
            let allowed: Vec<SocketAddr> = addrs
                .iter()
                .copied()
                .filter(|a| policy.is_allowed(a.ip()))
                .collect();
            if allowed.is_empty() {
                if let Some(first) = addrs.first() {
                    return Err(Box::new(BlockedAddress(host, first.ip()))
                        as Box<dyn StdError + Send + Sync>);
                }
            }
            Ok(Box::new(allowed.into_iter()) as Addrs)
        })
    }
}

#[derive(Clone, Debug)]
pub struct ClientConfig {
    pub policy: EgressPolicy,
    pub connect_timeout: Duration,
    pub request_timeout: Duration,
    pub proxy_url: Option<String>,
    pub ca_bundle_pem: Option<Vec<u8>>,
}

/// What one request produced.
#[derive(Clone, Debug)]
pub enum SendResult {
    Response {
        status: u16,
        retry_after: Option<String>,
        location: Option<String>,
        /// First 16 KiB of the body, lossily decoded.
        body: String,
        duration: Duration,
    },
    Failed {
        error: TransportError,
        detail: String,
        duration: Duration,
    },
    /// Nothing was sent, on purpose (the endpoint's transformation cancelled the delivery):
    /// the delivery is done.
    Cancelled { detail: String },
}

#[derive(Debug, thiserror::Error)]
pub enum ClientBuildError {
    #[error("invalid proxy_url: {0}")]
    Proxy(String),
    #[error("invalid CA bundle: {0}")]
    CaBundle(String),
    #[error("cannot build HTTP client: {0}")]
    Build(String),
}

/// Sends webhook requests. Cheap to clone; connections are pooled per host (and per endpoint
/// for endpoints with their own TLS settings).
#[derive(Clone)]
pub struct DeliveryClient {
    http: reqwest::Client,
    policy: Arc<EgressPolicy>,
    cfg: Arc<ClientConfig>,
    /// Clients of endpoints with a `tls` option.
    endpoints: crate::tls::SharedClients,
}

/// The one way a delivery client is configured; per-endpoint clients only add to it.
#[allow(clippy::disallowed_methods)] // this is the one place allowed to build a client
fn base_builder(
    cfg: &ClientConfig,
    policy: &Arc<EgressPolicy>,
) -> Result<reqwest::ClientBuilder, ClientBuildError> {
    let mut b = reqwest::Client::builder()
        .user_agent(format!("Herald/{}", herald_core::VERSION))
        .dns_resolver(Arc::new(GuardedResolver {
            policy: policy.clone(),
        }))
        .redirect(reqwest::redirect::Policy::none())
        .no_proxy()
        .connect_timeout(cfg.connect_timeout)
        .timeout(cfg.request_timeout)
        .pool_idle_timeout(Duration::from_secs(90))
        .pool_max_idle_per_host(64)
        .tcp_nodelay(true)
        .use_rustls_tls()
        .min_tls_version(reqwest::tls::Version::TLS_1_2)
        .https_only(policy.https_only);
    if let Some(p) = &cfg.proxy_url {
        b = b.proxy(reqwest::Proxy::all(p).map_err(|e| ClientBuildError::Proxy(e.to_string()))?);
    }
    if let Some(pem) = &cfg.ca_bundle_pem {
        for cert in reqwest::Certificate::from_pem_bundle(pem)
            .map_err(|e| ClientBuildError::CaBundle(e.to_string()))?
        {
            b = b.add_root_certificate(cert);
        }
    }
    Ok(b)
}

/// Checks an endpoint's `tls` option the way a delivery would use it (PEMs parse, the key
/// suits the certificate, the CAs are usable), field by field.
pub fn validate_tls(t: &TlsOptions) -> Result<(), crate::tls::TlsOptionError> {
    let base = ClientConfig {
        policy: EgressPolicy::default(),
        connect_timeout: Duration::from_secs(1),
        request_timeout: Duration::from_secs(1),
        proxy_url: None,
        ca_bundle_pem: None,
    };
    let policy = Arc::new(EgressPolicy::default());
    let identity = TlsOptions {
        ca_certificates: None,
        ..t.clone()
    };
    let roots = TlsOptions {
        ca_certificates: t.ca_certificates.clone(),
        ..TlsOptions::default()
    };
    for (part, field) in [(identity, "clientKey"), (roots, "caCertificates")] {
        let b = base_builder(&base, &policy).map_err(|e| crate::tls::TlsOptionError {
            field,
            detail: e.to_string(),
        })?;
        crate::tls::configure(b, &part)?
            .build()
            .map_err(|e| crate::tls::TlsOptionError {
                field,
                detail: format!("not usable: {}", error_chain(&e)),
            })?;
    }
    Ok(())
}

/// An error and its sources, for details that must name the real cause.
fn error_chain(e: &(dyn StdError + 'static)) -> String {
    let mut parts = vec![e.to_string()];
    let mut src = e.source();
    while let Some(s) = src {
        parts.push(s.to_string());
        src = s.source();
    }
    parts.join(": ")
}

impl DeliveryClient {
    pub fn new(cfg: ClientConfig) -> Result<Self, ClientBuildError> {
        let policy = Arc::new(cfg.policy.clone());
        let http = base_builder(&cfg, &policy)?
            .build()
            .map_err(|e| ClientBuildError::Build(e.to_string()))?;
        Ok(Self {
            http,
            policy,
            cfg: Arc::new(cfg),
            endpoints: Default::default(),
        })
    }

    /// The operator's extra CA bundle (PEM), which broker TLS trusts too.
    pub(crate) fn ca_bundle_pem(&self) -> Option<&[u8]> {
        self.cfg.ca_bundle_pem.as_deref()
    }

    /// The client for `ep`: the shared one, or the endpoint's own when it has TLS settings.
    fn client_for(&self, ep: &Endpoint) -> Result<reqwest::Client, String> {
        let Some(t) = ep.options.tls.as_ref().filter(|t| crate::tls::is_set(t)) else {
            return Ok(self.http.clone());
        };
        self.endpoints.get_or_build(ep, || {
            let b = base_builder(&self.cfg, &self.policy).map_err(|e| e.to_string())?;
            crate::tls::configure(b, t)
                .map_err(|e| e.to_string())?
                .build()
                .map_err(|e| {
                    format!(
                        "the endpoint's tls settings are not usable: {}",
                        error_chain(&e)
                    )
                })
        })
    }

    /// Sends one delivery to `ep` (its URL, its TLS settings) with `method`.
    pub async fn send_for(
        &self,
        ep: &Endpoint,
        method: reqwest::Method,
        headers: http::HeaderMap,
        body: bytes::Bytes,
    ) -> SendResult {
        match self.client_for(ep) {
            Ok(http) => {
                let timeout = ep
                    .options
                    .timeout_ms
                    .map(|t| Duration::from_millis(t.into()));
                self.send_with(&http, method, &ep.url, headers, body, timeout)
                    .await
            }
            Err(detail) => SendResult::Failed {
                error: TransportError::Tls,
                detail,
                duration: Duration::ZERO,
            },
        }
    }

    /// The egress rules every destination's addresses are checked against.
    pub fn policy(&self) -> &Arc<EgressPolicy> {
        &self.policy
    }

    /// `(connect_timeout, request_timeout)`, which broker transports apply too.
    pub fn timeouts(&self) -> (Duration, Duration) {
        (self.cfg.connect_timeout, self.cfg.request_timeout)
    }

    /// POSTs `body` to `url` with `headers`. Never follows redirects; never connects to a
    /// refused address.
    pub async fn send(
        &self,
        url: &str,
        headers: http::HeaderMap,
        body: bytes::Bytes,
    ) -> SendResult {
        self.send_with(&self.http, reqwest::Method::POST, url, headers, body, None)
            .await
    }

    /// [`Self::send`] with the total request timeout `timeout` instead of the configured one
    /// (an endpoint's `timeoutMs`).
    pub async fn send_within(
        &self,
        url: &str,
        headers: http::HeaderMap,
        body: bytes::Bytes,
        timeout: Option<Duration>,
    ) -> SendResult {
        self.send_with(
            &self.http,
            reqwest::Method::POST,
            url,
            headers,
            body,
            timeout,
        )
        .await
    }

    /// GETs `url` for a reconciliation poll, under the same egress rules as deliveries (the
    /// guarded resolver, literal addresses checked, no redirects) and the configured
    /// timeouts. The body is read up to `cap` bytes; a longer one is an error, never a
    /// truncated page. Answers `(status, Link header, body)`.
    pub async fn get(
        &self,
        url: &str,
        headers: http::HeaderMap,
        cap: usize,
    ) -> Result<Fetched, String> {
        let parsed = Url::parse(url).map_err(|e| format!("invalid URL: {e}"))?;
        let literal = match parsed.host() {
            Some(Host::Ipv4(v4)) => Some(IpAddr::V4(v4)),
            Some(Host::Ipv6(v6)) => Some(IpAddr::V6(v6)),
            _ => None,
        };
        if let Some(ip) = literal.filter(|ip| !self.policy.is_allowed(*ip)) {
            return Err(format!(
                "{ip} is a private, loopback, link-local or reserved address"
            ));
        }
        let resp = self
            .http
            .get(parsed)
            .headers(headers)
            .send()
            .await
            .map_err(|e| classify_error(&e).1)?;
        let link = resp
            .headers()
            .get(http::header::LINK)
            .and_then(|v| v.to_str().ok())
            .map(str::to_string);
        let (reply, timeout) = Reply::read(resp, cap + 1).await;
        if let Some(e) = timeout {
            return Err(classify_error(&e).1);
        }
        if reply.body.len() > cap {
            return Err(format!("the answer is larger than {cap} bytes"));
        }
        Ok(Fetched {
            status: reply.status,
            link,
            body: reply.body,
        })
    }

    /// One request with `http`. A timeout given here (an endpoint's `timeoutMs`) replaces the
    /// configured one and is named in a timeout's detail, so the attempt log shows which limit
    /// applied.
    async fn send_with(
        &self,
        http: &reqwest::Client,
        method: reqwest::Method,
        url: &str,
        headers: http::HeaderMap,
        body: bytes::Bytes,
        timeout: Option<Duration>,
    ) -> SendResult {
        let start = Instant::now();
        let failed = |error, detail: String| SendResult::Failed {
            detail: match (error, timeout) {
                (TransportError::Timeout, Some(t)) => {
                    format!("{detail} (endpoint timeoutMs {})", t.as_millis())
                }
                _ => detail,
            },
            error,
            duration: start.elapsed(),
        };
        let parsed = match Url::parse(url) {
            Ok(u) => u,
            Err(e) => return failed(TransportError::Other, format!("invalid URL: {e}")),
        };
        let literal = match parsed.host() {
            Some(Host::Ipv4(v4)) => Some(IpAddr::V4(v4)),
            Some(Host::Ipv6(v6)) => Some(IpAddr::V6(v6)),
            _ => None,
        };
        if let Some(ip) = literal {
            if !self.policy.is_allowed(ip) {
                return failed(
                    TransportError::BlockedAddress,
                    format!("{ip} is a private, loopback, link-local or reserved address"),
                );
            }
        }
        let mut req = http.request(method, parsed).headers(headers).body(body);
        if let Some(t) = timeout {
            req = req.timeout(t);
        }
        let resp = req.send().await;
        let resp = match resp {
            Ok(r) => r,
            Err(e) => {
                let (kind, detail) = classify_error(&e);
                return failed(kind, detail);
            }
        };
        let (reply, timeout) = Reply::read(resp, MAX_STORED_RESPONSE).await;
        if let Some(e) = timeout {
            let (_, detail) = classify_error(&e);
            return failed(TransportError::Timeout, detail);
        }
        let Reply {
            status,
            retry_after,
            location,
            body: buf,
        } = reply;
        SendResult::Response {
            status,
            retry_after,
            location,
            body: String::from_utf8_lossy(&buf).into_owned(),
            duration: start.elapsed(),
        }
    }
}

/// A provider's answer to a reconciliation poll ([`DeliveryClient::get`]).
#[derive(Debug)]
pub struct Fetched {
    pub status: u16,
    /// The `Link` header (next-page URLs).
    pub link: Option<String>,
    pub body: Vec<u8>,
}

/// What Herald keeps of a receiver's answer: the status, the two headers the retry policy
/// reads, and at most `cap` bytes of the body. Shared by deliveries and `herald listen`'s local
/// forwards so both treat a receiver the same way.
#[derive(Debug)]
pub struct Reply {
    pub status: u16,
    pub retry_after: Option<String>,
    pub location: Option<String>,
    /// At most `cap` bytes; reading stops there (dropping the rest closes the connection
    /// rather than downloading an arbitrarily large body).
    pub body: Vec<u8>,
}

impl Reply {
    /// Reads the answer; a body that breaks off early is kept as far as it came. A timeout
    /// that cut the body short comes back beside it: a delivery records the attempt as timed
    /// out, `herald listen` reports what arrived.
    pub async fn read(mut resp: reqwest::Response, cap: usize) -> (Self, Option<reqwest::Error>) {
        let header = |name: http::header::HeaderName| {
            resp.headers()
                .get(name)
                .and_then(|v| v.to_str().ok())
                .map(str::to_string)
        };
        let retry_after = header(http::header::RETRY_AFTER);
        let location = header(http::header::LOCATION);
        let status = resp.status().as_u16();
        let mut body = Vec::new();
        let mut timeout = None;
        while body.len() < cap {
            match resp.chunk().await {
                Ok(Some(c)) => body.extend_from_slice(&c),
                Ok(None) => break,
                Err(e) => {
                    timeout = e.is_timeout().then_some(e);
                    break;
                }
            }
        }
        body.truncate(cap);
        let reply = Self {
            status,
            retry_after,
            location,
            body,
        };
        (reply, timeout)
    }
}

/// Maps a reqwest error to a stable code and a human detail.
fn classify_error(e: &reqwest::Error) -> (TransportError, String) {
    let mut src: Option<&(dyn StdError + 'static)> = Some(e);
    let mut chain = Vec::new();
    let mut refused = false;
    while let Some(s) = src {
        if let Some(b) = s.downcast_ref::<BlockedAddress>() {
            return (TransportError::BlockedAddress, b.to_string());
        }
        if let Some(io) = s.downcast_ref::<std::io::Error>() {
            refused |= io.kind() == std::io::ErrorKind::ConnectionRefused;
        }
        chain.push(s.to_string());
        src = s.source();
    }
    let detail = chain.last().cloned().unwrap_or_else(|| e.to_string());
    let lower = chain.join(" ").to_ascii_lowercase();
    let kind = if e.is_timeout() || lower.contains("timed out") {
        TransportError::Timeout
    } else if lower.contains("certificate") || lower.contains("tls") || lower.contains("handshake")
    {
        TransportError::Tls
    } else if lower.contains("dns")
        || lower.contains("failed to lookup")
        || lower.contains("name or service")
    {
        TransportError::Dns
    } else if e.is_connect() || refused {
        // The connection was never established (refused, unreachable, reset during the TCP
        // handshake): the receiver cannot have seen the request.
        TransportError::Connect
    } else {
        // The connection was up and the request (partly) sent when it failed — reset, closed
        // before an answer, a broken body. `is_request()` is true here too, which is why it
        // must not count as a connect error: the receiver may have processed the request.
        TransportError::Other
    };
    (kind, detail)
}
