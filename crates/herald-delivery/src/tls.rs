//! Per-endpoint TLS: a client certificate (mutual TLS) and private CAs from an endpoint's
//! `tls` option, the checks of those PEMs on write, and the cache of the HTTP clients built
//! from them.
//!
//! Every client built here starts from the process's delivery client configuration (guarded
//! resolver, no redirects, no proxy from the environment, TLS 1.2 minimum) and only adds: the
//! endpoint's CAs join the default roots (never replace them), hostname verification stays on,
//! and nothing can turn verification off. It must not log or return the private key.

use std::collections::HashMap;
use std::sync::Arc;

use herald_core::endpoint_options::TlsOptions;
use herald_core::model::Endpoint;
use herald_core::Millis;
use parking_lot::Mutex;

/// Endpoints with their own client kept at once; past it the cache starts over (a rebuild
/// costs a millisecond or two, and only endpoints with a `tls` option have one).
const MAX_CACHED: usize = 1024;

/// A problem with an endpoint's `tls` option, by field (camelCase, as in the API).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("tls.{field}: {detail}")]
pub struct TlsOptionError {
    pub field: &'static str,
    pub detail: String,
}

fn err(field: &'static str, detail: impl Into<String>) -> TlsOptionError {
    TlsOptionError {
        field,
        detail: detail.into(),
    }
}

/// Whether the option asks for anything.
pub fn is_set(t: &TlsOptions) -> bool {
    t.client_certificate.is_some() || t.client_key.is_some() || t.ca_certificates.is_some()
}

/// Adds `t` to a client builder: the identity (certificate chain + key) and the extra roots.
pub(crate) fn configure(
    mut b: reqwest::ClientBuilder,
    t: &TlsOptions,
) -> Result<reqwest::ClientBuilder, TlsOptionError> {
    match (&t.client_certificate, &t.client_key) {
        (Some(cert), Some(key)) => {
            let certs = reqwest::Certificate::from_pem_bundle(cert.as_bytes()).map_err(|e| {
                err(
                    "clientCertificate",
                    format!("not a PEM certificate chain: {e}"),
                )
            })?;
            if certs.is_empty() {
                return Err(err("clientCertificate", "no PEM certificate found"));
            }
            if !key.contains("PRIVATE KEY-----") {
                return Err(err("clientKey", "no PEM private key found"));
            }
            // The key is checked without echoing anything of it back.
            let mut pem = cert.clone().into_bytes();
            pem.push(b'\n');
            pem.extend_from_slice(key.as_bytes());
            let id = reqwest::Identity::from_pem(&pem).map_err(|_| {
                err(
                    "clientKey",
                    "not a PEM private key (PKCS#8, PKCS#1 or SEC1)",
                )
            })?;
            b = b.identity(id);
        }
        (Some(_), None) => {
            return Err(err("clientKey", "required with clientCertificate"));
        }
        (None, Some(_)) => {
            return Err(err("clientCertificate", "required with clientKey"));
        }
        (None, None) => {}
    }
    if let Some(ca) = &t.ca_certificates {
        let roots = reqwest::Certificate::from_pem_bundle(ca.as_bytes())
            .map_err(|e| err("caCertificates", format!("not PEM certificates: {e}")))?;
        if roots.is_empty() {
            return Err(err("caCertificates", "no PEM certificate found"));
        }
        for r in roots {
            b = b.add_root_certificate(r);
        }
    }
    Ok(b)
}

/// The clients of endpoints that have a `tls` option, by endpoint id, rebuilt when the
/// endpoint's `updated_at` changes.
#[derive(Default)]
pub(crate) struct EndpointClients {
    map: Mutex<HashMap<String, (Millis, reqwest::Client)>>,
}

impl EndpointClients {
    /// The cached client of `ep`, or the one `build` makes (then cached).
    pub(crate) fn get_or_build(
        &self,
        ep: &Endpoint,
        build: impl FnOnce() -> Result<reqwest::Client, String>,
    ) -> Result<reqwest::Client, String> {
        if let Some((at, c)) = self.map.lock().get(ep.id.as_str()) {
            if *at == ep.updated_at {
                return Ok(c.clone());
            }
        }
        let client = build()?;
        let mut map = self.map.lock();
        if map.len() >= MAX_CACHED {
            map.clear();
        }
        map.insert(ep.id.0.clone(), (ep.updated_at, client.clone()));
        Ok(client)
    }
}

/// Shared handle so clones of the delivery client share one cache.
pub(crate) type SharedClients = Arc<EndpointClients>;
