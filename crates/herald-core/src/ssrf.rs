//! SSRF classification: which destination addresses Herald may connect to, and validation of
//! endpoint URLs (delivery.md "SSRF and egress rules").
//!
//! Pure: it classifies addresses and parses URLs, it never resolves names or opens sockets. The
//! delivery client's DNS resolver calls [`EgressPolicy::is_allowed`] on every resolved address;
//! the API calls [`EgressPolicy::validate_url`] when an endpoint is created or changed.

use std::net::IpAddr;

use ipnet::{IpNet, Ipv4Net, Ipv6Net};
use url::{Host, Url};

/// Longest accepted endpoint URL.
pub const MAX_URL_LEN: usize = 65_536;

const BLOCKED_V4: &[(&str, u8)] = &[
    ("0.0.0.0", 8),
    ("10.0.0.0", 8),
    ("100.64.0.0", 10),
    ("127.0.0.0", 8),
    ("169.254.0.0", 16),
    ("172.16.0.0", 12),
    ("192.0.0.0", 24),
    ("192.0.2.0", 24),
    ("192.88.99.0", 24),
    ("192.168.0.0", 16),
    ("198.18.0.0", 15),
    ("198.51.100.0", 24),
    ("203.0.113.0", 24),
    ("224.0.0.0", 4),
    ("240.0.0.0", 4),
    ("255.255.255.255", 32),
];

const BLOCKED_V6: &[(&str, u8)] = &[
    ("::", 128),
    ("::1", 128),
    ("fc00::", 7),
    ("fe80::", 10),
    ("ff00::", 8),
    ("2001:db8::", 32),
    ("64:ff9b::", 96),
];

fn in_blocklist(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => BLOCKED_V4.iter().any(|(net, len)| {
            Ipv4Net::new(net.parse().expect("static"), *len)
                .expect("static")
                .contains(&v4)
        }),
        IpAddr::V6(v6) => {
            // An IPv4-mapped address (::ffff:a.b.c.d) reaches the IPv4 host: judge that host.
            if let Some(v4) = v6.to_ipv4_mapped() {
                return in_blocklist(IpAddr::V4(v4));
            }
            BLOCKED_V6.iter().any(|(net, len)| {
                Ipv6Net::new(net.parse().expect("static"), *len)
                    .expect("static")
                    .contains(&v6)
            })
        }
    }
}

/// Why an endpoint URL is refused.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum UrlError {
    #[error("URL is longer than 65536 characters")]
    TooLong,
    #[error("URL is not valid: {0}")]
    Invalid(String),
    #[error("URL scheme must be http or https")]
    BadScheme,
    #[error("URL scheme must be https (https_only is set)")]
    HttpsRequired,
    #[error("URL must have a host")]
    NoHost,
    #[error("URL must not carry credentials")]
    Credentials,
    #[error("address {0} is private, loopback, link-local or reserved and is not allow-listed")]
    BlockedAddress(IpAddr),
}

/// The operator's egress rules.
#[derive(Clone, Debug, Default)]
pub struct EgressPolicy {
    /// CIDRs exempt from the block list (`allow_networks`).
    pub allow_networks: Vec<IpNet>,
    /// Refuse `http://` endpoints.
    pub https_only: bool,
    /// Broker schemes the operator enabled (`destination_schemes`); see
    /// [`crate::destination`].
    pub destination_schemes: Vec<crate::broker::BrokerKind>,
}

impl EgressPolicy {
    /// Whether Herald may connect to `ip`.
    pub fn is_allowed(&self, ip: IpAddr) -> bool {
        let canonical = match ip {
            IpAddr::V6(v6) => v6.to_ipv4_mapped().map(IpAddr::V4).unwrap_or(ip),
            v4 => v4,
        };
        if self
            .allow_networks
            .iter()
            .any(|n| n.contains(&canonical) || n.contains(&ip))
        {
            return true;
        }
        !in_blocklist(ip)
    }

    /// Parses and checks an endpoint URL. Literal addresses are classified here; host names are
    /// classified at delivery time, after Herald resolves them itself. Note that the WHATWG
    /// parser already turns decimal (`http://2130706433/`), hex (`0x7f.1`) and shortened IPv4
    /// forms into dotted quads, so they cannot slip past the literal check.
    pub fn validate_url(&self, raw: &str) -> Result<Url, UrlError> {
        if raw.len() > MAX_URL_LEN {
            return Err(UrlError::TooLong);
        }
        let url = Url::parse(raw).map_err(|e| UrlError::Invalid(e.to_string()))?;
        match url.scheme() {
            "https" => {}
            "http" if self.https_only => return Err(UrlError::HttpsRequired),
            "http" => {}
            _ => return Err(UrlError::BadScheme),
        }
        if !url.username().is_empty() || url.password().is_some() {
            return Err(UrlError::Credentials);
        }
        let ip = match url.host() {
            None => return Err(UrlError::NoHost),
            Some(Host::Domain("")) => return Err(UrlError::NoHost),
            Some(Host::Domain(_)) => None,
            Some(Host::Ipv4(v4)) => Some(IpAddr::V4(v4)),
            Some(Host::Ipv6(v6)) => Some(IpAddr::V6(v6)),
        };
        if let Some(ip) = ip {
            if !self.is_allowed(ip) {
                return Err(UrlError::BlockedAddress(ip));
            }
        }
        Ok(url)
    }
}

/// Whether `ip` is in the built-in block list, ignoring any `allow_networks`.
pub fn is_blocked_by_default(ip: IpAddr) -> bool {
    in_blocklist(ip)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::net::Ipv4Addr;

    fn p() -> EgressPolicy {
        EgressPolicy::default()
    }

    #[test]
    fn blocked_ranges_and_public_addresses() {
        for ip in [
            "0.0.0.0",
            "10.1.2.3",
            "100.64.0.1",
            "127.0.0.1",
            "127.255.255.254",
            "169.254.169.254",
            "172.16.0.1",
            "172.31.255.255",
            "192.0.0.8",
            "192.0.2.1",
            "192.88.99.1",
            "192.168.1.1",
            "198.18.0.1",
            "198.19.255.255",
            "198.51.100.7",
            "203.0.113.9",
            "224.0.0.1",
            "239.1.1.1",
            "240.0.0.1",
            "255.255.255.255",
            "::",
            "::1",
            "fc00::1",
            "fd12::1",
            "fe80::1",
            "ff02::1",
            "2001:db8::1",
            "64:ff9b::a00:1",
            "::ffff:127.0.0.1",
            "::ffff:169.254.169.254",
            "::ffff:10.0.0.1",
        ] {
            let ip: IpAddr = ip.parse().unwrap();
            assert!(!p().is_allowed(ip), "{ip} must be blocked");
        }
        for ip in [
            "1.1.1.1",
            "8.8.8.8",
            "172.32.0.1",
            "100.128.0.1",
            "2606:4700::1111",
            "::ffff:8.8.8.8",
        ] {
            let ip: IpAddr = ip.parse().unwrap();
            assert!(p().is_allowed(ip), "{ip} must be allowed");
        }
    }

    #[test]
    fn allow_networks_exempt_ranges_including_mapped_forms() {
        let pol = EgressPolicy {
            allow_networks: vec!["127.0.0.0/8".parse().unwrap()],
            https_only: false,
            ..Default::default()
        };
        assert!(pol.is_allowed("127.0.0.1".parse().unwrap()));
        assert!(pol.is_allowed("::ffff:127.0.0.1".parse().unwrap()));
        assert!(!pol.is_allowed("10.0.0.1".parse().unwrap()));
        assert!(!pol.is_allowed("::1".parse().unwrap()));
    }

    #[test]
    fn url_validation_catches_obfuscated_literals() {
        for url in [
            "http://127.0.0.1/",
            "http://2130706433/",   // decimal
            "http://0x7f000001/",   // hex
            "http://0x7f.1/",       // hex, shortened
            "http://017700000001/", // octal
            "http://127.1/",        // shortened
            "http://[::1]/",
            "http://[::ffff:127.0.0.1]/",
            "http://[::ffff:a9fe:a9fe]/", // 169.254.169.254 mapped, hex form
            "http://169.254.169.254/latest/meta-data",
            "https://0.0.0.0:8443/",
        ] {
            assert!(
                matches!(p().validate_url(url), Err(UrlError::BlockedAddress(_))),
                "{url} must be refused"
            );
        }
        assert!(p().validate_url("https://example.com/hook").is_ok());
        assert!(
            p().validate_url("http://localhost/hook").is_ok(),
            "names are checked at delivery"
        );
        assert_eq!(
            p().validate_url("ftp://example.com/"),
            Err(UrlError::BadScheme)
        );
        assert!(matches!(
            p().validate_url("not a url"),
            Err(UrlError::Invalid(_))
        ));
        assert_eq!(
            p().validate_url("http://u:p@example.com/"),
            Err(UrlError::Credentials)
        );
        let https_only = EgressPolicy {
            https_only: true,
            ..Default::default()
        };
        assert_eq!(
            https_only.validate_url("http://example.com/"),
            Err(UrlError::HttpsRequired)
        );
        let long = format!("https://example.com/{}", "a".repeat(MAX_URL_LEN));
        assert_eq!(p().validate_url(&long), Err(UrlError::TooLong));
    }

    proptest! {
        #[test]
        fn mapped_v6_is_judged_like_its_v4(a in any::<u32>()) {
            let v4 = Ipv4Addr::from(a);
            let mapped = IpAddr::V6(v4.to_ipv6_mapped());
            prop_assert_eq!(p().is_allowed(IpAddr::V4(v4)), p().is_allowed(mapped));
        }

        #[test]
        fn every_ten_slash_eight_address_is_blocked(b in any::<u8>(), c in any::<u8>(), d in any::<u8>()) {
            prop_assert!(!p().is_allowed(IpAddr::V4(Ipv4Addr::new(10, b, c, d))));
        }

        #[test]
        fn decimal_form_is_classified_like_dotted(a in any::<u32>()) {
            let dotted = Ipv4Addr::from(a);
            let by_decimal = p().validate_url(&format!("http://{a}/")).map(|_| ()).map_err(|_| ());
            let expected = if p().is_allowed(IpAddr::V4(dotted)) { Ok(()) } else { Err(()) };
            prop_assert_eq!(by_decimal, expected);
        }
    }
}
