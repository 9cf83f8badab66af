//! TLS for broker destinations (`amqps`, `rediss`): the roots a broker's certificate must
//! chain to — the platform's roots plus the operator's `ca_bundle`, as for HTTPS deliveries —
//! loaded once per process, and the recognition of certificate failures in the client
//! libraries' errors (so they are recorded as `tls_error`).
//!
//! It must not offer any way to skip or weaken verification, and it does not decide where a
//! transport connects: the transports open the TCP connection to the address `checked_addr`
//! returned and run TLS over it with the URL's host name as SNI and certificate name.

use std::error::Error as StdError;
use std::sync::{Arc, OnceLock};

use base64::Engine as _;
use herald_core::outcome::TransportError;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::CertificateDer;

use super::Failure;

/// The trust anchors of broker TLS, in the two forms the client libraries take.
pub(crate) struct Roots {
    /// For lapin's rustls connector.
    pub amqp: lapin::tcp::RustlsConnector,
    /// PEM text for redis-rs, whose own root store replaces (not extends) the platform's
    /// roots when given one: so it gets the platform's roots and the bundle together.
    pub pem: Vec<u8>,
}

/// The operator's bundle and, once a TLS broker is first used, the roots built from it.
pub(crate) struct Trust {
    bundle: Option<Vec<u8>>,
    roots: OnceLock<Result<Arc<Roots>, String>>,
}

impl Trust {
    pub fn new(bundle: Option<Vec<u8>>) -> Self {
        Self {
            bundle,
            roots: OnceLock::new(),
        }
    }

    /// The roots, built on first use (reading the platform's store takes a few milliseconds
    /// and is wasted on a deployment without TLS brokers).
    pub fn roots(&self) -> Result<Arc<Roots>, Failure> {
        self.roots
            .get_or_init(|| build(self.bundle.as_deref()).map(Arc::new))
            .clone()
            .map_err(|e| Failure::new(TransportError::Tls, e))
    }
}

fn build(bundle: Option<&[u8]>) -> Result<Roots, String> {
    // A platform store that is partly unreadable still gives the certificates it could read
    // (the libraries' own loaders would refuse or panic instead). Certificates that are no
    // usable trust anchor are left out: redis-rs refuses a whole store over one of them.
    let mut anchors: Vec<CertificateDer<'static>> = rustls_native_certs::load_native_certs()
        .certs
        .into_iter()
        .filter(usable_anchor)
        .collect();
    if let Some(pem) = bundle {
        let mut extra = 0;
        for cert in CertificateDer::pem_slice_iter(pem) {
            let cert = cert.map_err(|e| format!("ca_bundle: not a PEM certificate: {e}"))?;
            if !usable_anchor(&cert) {
                return Err("ca_bundle: a certificate is not usable as a trust anchor".into());
            }
            anchors.push(cert);
            extra += 1;
        }
        if extra == 0 {
            return Err("ca_bundle: no PEM certificate found".into());
        }
    }
    let mut cfg = lapin::tcp::RustlsConnectorConfig::default();
    cfg.add_parsable_certificates(anchors.clone());
    Ok(Roots {
        amqp: cfg.connector_with_no_client_auth(),
        pem: anchors.iter().flat_map(|c| to_pem(c)).collect(),
    })
}

fn usable_anchor(cert: &CertificateDer<'_>) -> bool {
    rustls::RootCertStore::empty().add(cert.clone()).is_ok()
}

fn to_pem(der: &CertificateDer<'_>) -> Vec<u8> {
    let b64 = base64::engine::general_purpose::STANDARD.encode(der.as_ref());
    let mut out = String::from("-----BEGIN CERTIFICATE-----\n");
    for line in b64.as_bytes().chunks(64) {
        out.push_str(&String::from_utf8_lossy(line));
        out.push('\n');
    }
    out.push_str("-----END CERTIFICATE-----\n");
    out.into_bytes()
}

/// Whether `e` (or one of its causes) is a TLS failure: a certificate that does not verify, a
/// refused handshake, an alert from the broker.
pub(crate) fn is_tls_error(e: &(dyn StdError + 'static)) -> bool {
    let mut src = Some(e);
    while let Some(s) = src {
        if s.downcast_ref::<rustls::Error>().is_some() {
            return true;
        }
        if let Some(io) = s.downcast_ref::<std::io::Error>() {
            if io
                .get_ref()
                .is_some_and(|inner| inner.downcast_ref::<rustls::Error>().is_some())
            {
                return true;
            }
        }
        src = s.source();
    }
    // Some library errors carry the cause only as text.
    let text = e.to_string().to_ascii_lowercase();
    text.contains("invalid peer certificate") || text.contains("certificate verify")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_bundle_joins_the_platform_roots() {
        let none = build(None).expect("platform roots");
        let bad = build(Some(b"not a pem")).err().expect("refused");
        assert!(bad.contains("ca_bundle"), "{bad}");
        // One of the platform's own roots as the "bundle": it is added once more.
        if let Some(end) = find(&none.pem, b"-----END CERTIFICATE-----\n") {
            let one = &none.pem[..end];
            let with = build(Some(one)).expect("bundle of one");
            assert_eq!(with.pem.len(), none.pem.len() + one.len());
        }
    }

    fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
        hay.windows(needle.len())
            .position(|w| w == needle)
            .map(|i| i + needle.len())
    }

    #[test]
    fn pem_round_trips() {
        let der = CertificateDer::from(vec![7u8; 100]);
        let pem = to_pem(&der);
        let back: Vec<_> = CertificateDer::pem_slice_iter(&pem)
            .collect::<Result<_, _>>()
            .expect("parses");
        assert_eq!(back, vec![der]);
    }

    #[test]
    fn certificate_errors_are_recognised() {
        let inner = rustls::Error::InvalidCertificate(rustls::CertificateError::UnknownIssuer);
        let io = std::io::Error::new(std::io::ErrorKind::InvalidData, inner);
        assert!(is_tls_error(&io));
        let plain = std::io::Error::new(std::io::ErrorKind::ConnectionRefused, "refused");
        assert!(!is_tls_error(&plain));
    }
}
