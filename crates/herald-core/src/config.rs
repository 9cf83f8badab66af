//! Herald's configuration: the typed settings, their defaults, layered loading and validation
//! (operations.md "Configuration").
//!
//! Layers, later wins: built-in defaults → TOML file (`--config`, else `./herald.toml` when
//! present) → `HERALD_<KEY>` environment variables (nested keys joined by `__`). Every problem
//! — unknown key in the file, wrong type, invalid value — is collected and reported at once.
//!
//! The environment is not the operator's alone: Kubernetes injects `HERALD_SERVICE_HOST`,
//! `HERALD_PORT=tcp://…` and friends into every pod when a Service is named `herald`. So a
//! `HERALD_*` variable that names no key is ignored and handed back in [`Loaded::ignored_env`]
//! for the binary to log once (logging is not set up while configuration loads); only the file
//! is strict about unknown keys. This module only reads; it does not create `data_dir` or
//! generate tokens (the binary does that).

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use figment::providers::{Env, Format, Toml};
use figment::value::Dict;
use figment::Figment;
use ipnet::IpNet;
use serde::{Deserialize, Serialize};

use crate::retry::DEFAULT_SCHEDULE_SECS;

/// Which parts of Herald a process runs.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    Api,
    Worker,
    #[default]
    All,
}

impl Role {
    pub fn runs_api(self) -> bool {
        matches!(self, Role::Api | Role::All)
    }
    pub fn runs_workers(self) -> bool {
        matches!(self, Role::Worker | Role::All)
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    Text,
    Json,
}

/// Validated configuration.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Config {
    pub listen: SocketAddr,
    pub public_url: Option<String>,
    pub metrics_token: Option<String>,
    pub data_dir: PathBuf,
    pub database_url: Option<String>,
    #[serde(skip)]
    pub admin_token: Option<String>,
    #[serde(skip)]
    pub encryption_key: Option<String>,
    pub role: Role,
    pub retry_schedule: Vec<u64>,
    pub connect_timeout_ms: u64,
    pub request_timeout_ms: u64,
    pub max_payload_bytes: usize,
    pub allow_networks: Vec<IpNet>,
    pub https_only: bool,
    /// Broker schemes endpoints may use (destinations.md); empty: HTTP endpoints only.
    pub destination_schemes: Vec<crate::broker::BrokerKind>,
    pub proxy_url: Option<String>,
    pub max_in_flight: usize,
    pub endpoint_disable_after_hours: u64,
    pub retention_days: u64,
    /// Signature scheme of endpoints written without a `signatureScheme` (`standard` or `svix`).
    pub default_signature_scheme: crate::signing::SignatureScheme,
    pub log_format: Option<LogFormat>,
    pub operational_webhook_url: Option<String>,
    /// How long a worker owns a claimed delivery before another may take it over (≤ 60 s).
    pub lease_seconds: u64,
    /// First cool-down of an open circuit breaker (doubles on each failed probe).
    pub breaker_cooldown_ms: u64,
    /// Longest cool-down of an open circuit breaker.
    pub breaker_max_cooldown_ms: u64,
    /// Extra CA bundle (PEM) trusted for HTTPS deliveries, in addition to the system roots.
    pub ca_bundle: Option<PathBuf>,
    /// PostgreSQL only: most bytes the local outage spool may hold (0 turns it off).
    pub spool_max_bytes: u64,
    /// Time a client has to send a request head: from accepting the connection, or from the
    /// first byte of a later request on a keep-alive connection.
    pub header_read_timeout_ms: u64,
    /// Time a client has to send a whole request body once its head has arrived.
    pub body_read_timeout_ms: u64,
    /// Longest a connection with no request in progress stays open without traffic.
    pub idle_timeout_ms: u64,
    /// Connections served at once; further ones wait in the listen backlog.
    pub max_connections: usize,
    /// A console session ends after this many seconds without a page being opened.
    pub console_session_idle_secs: u64,
    /// Sign-in attempts (console and portal) one client address may make per minute.
    pub console_sign_in_per_minute: u64,
    /// The consumer portal's title (its header and the browser tab).
    pub portal_title: String,
    /// The portal's accent colour, `#rgb` or `#rrggbb`.
    pub portal_accent_color: Option<String>,
    /// An http(s) URL of a logo image the operator hosts, shown in the portal's header.
    pub portal_logo_url: Option<String>,
    /// Who may frame the portal: the `frame-ancestors` sources of its CSP.
    pub portal_frame_ancestors: String,
    /// CPU time one call of an endpoint's transformation may use before it is interrupted.
    pub transform_cpu_ms: u64,
    /// Memory one call of an endpoint's transformation may allocate (MiB).
    pub transform_memory_mib: u64,
    /// Transformation calls running at once (one dedicated thread each).
    pub transform_workers: usize,
}

impl Config {
    /// The circuit breaker's cool-downs as the delivery engine applies them.
    pub fn breaker_policy(&self) -> crate::breaker::BreakerPolicy {
        crate::breaker::BreakerPolicy {
            cooldown_ms: i64::try_from(self.breaker_cooldown_ms).unwrap_or(i64::MAX),
            max_cooldown_ms: i64::try_from(self.breaker_max_cooldown_ms).unwrap_or(i64::MAX),
        }
    }
}

impl Default for Config {
    fn default() -> Self {
        Self {
            listen: "127.0.0.1:8787".parse().expect("static"),
            public_url: None,
            metrics_token: None,
            data_dir: PathBuf::from("./herald-data"),
            database_url: None,
            admin_token: None,
            encryption_key: None,
            role: Role::All,
            retry_schedule: DEFAULT_SCHEDULE_SECS.to_vec(),
            connect_timeout_ms: 2_000,
            request_timeout_ms: 10_000,
            max_payload_bytes: 2_097_152,
            allow_networks: vec![],
            https_only: false,
            destination_schemes: vec![],
            proxy_url: None,
            max_in_flight: 512,
            endpoint_disable_after_hours: 120,
            retention_days: 30,
            default_signature_scheme: Default::default(),
            log_format: None,
            operational_webhook_url: None,
            lease_seconds: 60,
            breaker_cooldown_ms: 30_000,
            breaker_max_cooldown_ms: 600_000,
            ca_bundle: None,
            spool_max_bytes: 256 * 1024 * 1024,
            header_read_timeout_ms: 10_000,
            body_read_timeout_ms: 30_000,
            idle_timeout_ms: 60_000,
            max_connections: 10_000,
            console_session_idle_secs: 43_200,
            console_sign_in_per_minute: 10,
            portal_title: "Webhooks".into(),
            portal_accent_color: None,
            portal_logo_url: None,
            portal_frame_ancestors: "'self'".into(),
            transform_cpu_ms: 50,
            transform_memory_mib: 16,
            transform_workers: 2,
        }
    }
}

/// Every problem found while loading, one line each.
#[derive(Debug, thiserror::Error)]
#[error("invalid configuration:\n  - {}", .0.join("\n  - "))]
pub struct ConfigError(pub Vec<String>);

/// Environment variables with the `HERALD_` prefix that are not server settings: the CLI
/// client's `HERALD_URL`/`HERALD_TOKEN`, the log filter `HERALD_LOG` and `--config`'s env.
const CLIENT_ENV_KEYS: [&str; 4] = ["url", "token", "log", "config"];

/// A loaded configuration and what loading it ignored.
#[derive(Clone, Debug)]
pub struct Loaded {
    pub config: Config,
    /// `HERALD_*` environment variables that name no configuration key, sorted (e.g. the
    /// service variables Kubernetes injects). Worth a warning: one may be a misspelt key.
    pub ignored_env: Vec<String>,
}

/// Whether the environment key (prefix stripped, `__` turned into `.`, any case) sets a
/// configuration key.
fn is_config_env_key(key: &str) -> bool {
    let top = key.split('.').next().unwrap_or(key);
    KNOWN_KEYS.iter().any(|k| k.eq_ignore_ascii_case(top))
}

impl Config {
    /// Loads defaults → file → environment. `file` is `--config`; when `None`, `./herald.toml`
    /// is read if it exists. A named file that does not exist is an error, and so is an
    /// unknown key in the file; an environment variable that names no key is only reported
    /// back in [`Loaded::ignored_env`].
    pub fn load(file: Option<&Path>) -> Result<Loaded, ConfigError> {
        let mut fig = Figment::new();
        match file {
            Some(p) if !p.exists() => {
                return Err(ConfigError(vec![format!(
                    "config file {} does not exist",
                    p.display()
                )]))
            }
            Some(p) => fig = fig.merge(Toml::file(p)),
            None => {
                if Path::new("herald.toml").exists() {
                    fig = fig.merge(Toml::file("herald.toml"));
                }
            }
        }
        let env = Env::prefixed("HERALD_").split("__").filter(|k| {
            !CLIENT_ENV_KEYS
                .iter()
                .any(|c| k.as_str().eq_ignore_ascii_case(c))
        });
        let mut ignored_env: Vec<String> = env
            .iter()
            .filter(|(k, _)| !is_config_env_key(k.as_str()))
            .map(|(k, _)| {
                format!(
                    "HERALD_{}",
                    k.as_str().to_ascii_uppercase().replace('.', "__")
                )
            })
            .collect();
        ignored_env.sort();
        ignored_env.dedup();
        // Variables that name no key are left out before any value is parsed, so whatever they
        // hold (`tcp://10.0.0.1:8787`) cannot disturb the keys that are set.
        fig = fig.merge(env.filter(|k| is_config_env_key(k.as_str())));
        Ok(Loaded {
            config: Self::from_figment(&fig)?,
            ignored_env,
        })
    }

    /// Builds a configuration from already-merged layers, reporting every problem at once.
    pub fn from_figment(fig: &Figment) -> Result<Self, ConfigError> {
        let dict: Dict = fig
            .extract()
            .map_err(|e| ConfigError(e.into_iter().map(|e| e.to_string()).collect()))?;
        let mut c = Config::default();
        let mut r = Reader {
            dict: &dict,
            errors: Vec::new(),
        };
        // `listen` may arrive as a string from either layer.
        if let Some(v) = dict.get("listen") {
            match v.deserialize::<String>().map(|s| s.parse::<SocketAddr>()) {
                Ok(Ok(a)) => c.listen = a,
                _ => r
                    .errors
                    .push("`listen`: expected an address such as 127.0.0.1:8787".into()),
            }
        }
        if let Some(list) = r.value::<Vec<String>>("allow_networks") {
            c.allow_networks.clear();
            for s in list {
                match s.parse::<IpNet>() {
                    Ok(n) => c.allow_networks.push(n),
                    Err(_) => r
                        .errors
                        .push(format!("`allow_networks`: `{s}` is not a CIDR")),
                }
            }
        }
        if let Some(list) = r.value::<Vec<String>>("destination_schemes") {
            c.destination_schemes.clear();
            for s in list {
                match crate::broker::BrokerKind::from_name(&s) {
                    Some(k) if !c.destination_schemes.contains(&k) => c.destination_schemes.push(k),
                    Some(_) => {}
                    None => r.errors.push(format!(
                        "`destination_schemes`: `{s}` is not one of amqp, redis, nats"
                    )),
                }
            }
        }
        // Each key is read into the field of the same name.
        macro_rules! read {
            ($($field:ident),* $(,)?) => { $( r.take(stringify!($field), &mut c.$field); )* };
        }
        macro_rules! read_opt {
            ($($field:ident),* $(,)?) => {
                $( if let Some(v) = r.value(stringify!($field)) { c.$field = Some(v); } )*
            };
        }
        read!(
            data_dir,
            spool_max_bytes,
            role,
            retry_schedule,
            connect_timeout_ms,
            request_timeout_ms,
            max_payload_bytes,
            https_only,
            max_in_flight,
            endpoint_disable_after_hours,
            retention_days,
            default_signature_scheme,
            lease_seconds,
            breaker_cooldown_ms,
            breaker_max_cooldown_ms,
            header_read_timeout_ms,
            body_read_timeout_ms,
            idle_timeout_ms,
            max_connections,
            console_session_idle_secs,
            console_sign_in_per_minute,
            portal_title,
            portal_frame_ancestors,
            transform_cpu_ms,
            transform_memory_mib,
            transform_workers,
        );
        read_opt!(
            public_url,
            metrics_token,
            database_url,
            admin_token,
            encryption_key,
            proxy_url,
            log_format,
            operational_webhook_url,
            ca_bundle,
            portal_accent_color,
            portal_logo_url,
        );
        let mut errors = r.errors;

        for key in dict.keys() {
            if !KNOWN_KEYS.contains(&key.as_str()) {
                errors.push(format!("`{key}`: unknown configuration key"));
            }
        }
        c.check(&mut errors);
        if errors.is_empty() {
            Ok(c)
        } else {
            Err(ConfigError(errors))
        }
    }

    fn check(&self, errors: &mut Vec<String>) {
        if self.default_signature_scheme == crate::signing::SignatureScheme::Github {
            errors.push("`default_signature_scheme`: must be `standard` or `svix`".into());
        }
        if self.connect_timeout_ms == 0 {
            errors.push("`connect_timeout_ms`: must be above 0".into());
        }
        if self.request_timeout_ms == 0 {
            errors.push("`request_timeout_ms`: must be above 0".into());
        }
        if self.max_payload_bytes == 0 {
            errors.push("`max_payload_bytes`: must be above 0".into());
        }
        if self.max_in_flight == 0 {
            errors.push("`max_in_flight`: must be above 0".into());
        }
        for (key, v) in [
            ("header_read_timeout_ms", self.header_read_timeout_ms),
            ("body_read_timeout_ms", self.body_read_timeout_ms),
            ("idle_timeout_ms", self.idle_timeout_ms),
            ("max_connections", self.max_connections as u64),
            ("console_session_idle_secs", self.console_session_idle_secs),
            (
                "console_sign_in_per_minute",
                self.console_sign_in_per_minute,
            ),
            ("transform_cpu_ms", self.transform_cpu_ms),
            ("transform_memory_mib", self.transform_memory_mib),
            ("transform_workers", self.transform_workers as u64),
        ] {
            if v == 0 {
                errors.push(format!("`{key}`: must be above 0"));
            }
        }
        if !(1..=60).contains(&self.lease_seconds) {
            errors.push("`lease_seconds`: must be between 1 and 60".into());
        }
        if !(100..=86_400_000).contains(&self.breaker_cooldown_ms) {
            errors.push("`breaker_cooldown_ms`: must be between 100 and 86400000".into());
        }
        if self.breaker_max_cooldown_ms < self.breaker_cooldown_ms
            || self.breaker_max_cooldown_ms > 86_400_000
        {
            errors.push(
                "`breaker_max_cooldown_ms`: must be at least `breaker_cooldown_ms` and at most 86400000"
                    .into(),
            );
        }
        // Saturating: an out-of-range `lease_seconds` is reported above, not an overflow panic.
        if self.lease_seconds.saturating_mul(1000) <= self.request_timeout_ms {
            errors.push(
                "`lease_seconds`: must be longer than `request_timeout_ms`, or a slow attempt would be taken over while still running".into(),
            );
        }
        for (key, v) in [
            ("public_url", &self.public_url),
            ("proxy_url", &self.proxy_url),
            ("operational_webhook_url", &self.operational_webhook_url),
            ("portal_logo_url", &self.portal_logo_url),
        ] {
            if let Some(u) = v {
                match url::Url::parse(u) {
                    Ok(p) if p.scheme() == "http" || p.scheme() == "https" => {}
                    _ => errors.push(format!("`{key}`: `{u}` is not an http(s) URL")),
                }
            }
        }
        if let Some(db) = &self.database_url {
            if !db.starts_with("sqlite://")
                && !db.starts_with("postgres://")
                && !db.starts_with("postgresql://")
            {
                errors.push(format!(
                    "`database_url`: must be sqlite://<path> or postgres://… (got scheme `{}`)",
                    db.split(':').next().unwrap_or("")
                ));
            }
        }
        if let Some(k) = &self.encryption_key {
            if let Err(e) = crate::crypto::SecretBox::from_base64(k) {
                errors.push(format!("`encryption_key`: {e}"));
            }
        }
        self.check_portal(errors);
        if let Some(t) = &self.admin_token {
            if t.len() < 16 {
                errors.push("`admin_token`: must be at least 16 characters".into());
            }
        }
    }

    /// The portal's branding and framing end up in pages and in a header: only values that
    /// cannot break out of either are accepted.
    fn check_portal(&self, errors: &mut Vec<String>) {
        let title = self.portal_title.trim();
        if title.is_empty() || title.chars().count() > 100 || title.chars().any(char::is_control) {
            errors.push("`portal_title`: 1 to 100 characters, no control characters".into());
        }
        if let Some(c) = &self.portal_accent_color {
            if !is_hex_colour(c) {
                errors.push(format!(
                    "`portal_accent_color`: `{c}` is not a colour such as #2450c8 or #25c"
                ));
            }
        }
        if !is_frame_ancestors(&self.portal_frame_ancestors) {
            errors.push(format!(
                "`portal_frame_ancestors`: `{}` is not a list of CSP sources such as 'self' https://app.example.com",
                self.portal_frame_ancestors
            ));
        }
    }

    /// The PostgreSQL URL when `database_url` names one.
    pub fn postgres_url(&self) -> Option<&str> {
        self.database_url
            .as_deref()
            .filter(|u| u.starts_with("postgres://") || u.starts_with("postgresql://"))
    }

    /// Path of the SQLite database file.
    pub fn sqlite_path(&self) -> PathBuf {
        match &self.database_url {
            Some(u) => PathBuf::from(u.trim_start_matches("sqlite://")),
            None => self.data_dir.join("herald.db"),
        }
    }

    /// `public_url`, defaulting to `http://<listen>`.
    pub fn public_url(&self) -> String {
        self.public_url
            .clone()
            .unwrap_or_else(|| format!("http://{}", self.listen))
            .trim_end_matches('/')
            .to_string()
    }
}

/// `#rgb` or `#rrggbb`.
fn is_hex_colour(c: &str) -> bool {
    c.strip_prefix('#')
        .is_some_and(|h| (h.len() == 3 || h.len() == 6) && h.bytes().all(|b| b.is_ascii_hexdigit()))
}

/// CSP `frame-ancestors` sources: `'self'`, `'none'` (alone), or scheme/host sources made of
/// URL characters only — never `;` or `,`, which would start another directive or policy.
fn is_frame_ancestors(v: &str) -> bool {
    let sources: Vec<&str> = v.split_ascii_whitespace().collect();
    let host_like = |s: &str| {
        s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-._:/*[]".contains(&b))
    };
    !sources.is_empty()
        && sources.len() <= 32
        && v.len() <= 2048
        && (sources == ["'none'"] || sources.iter().all(|s| *s == "'self'" || host_like(s)))
}

/// Every accepted top-level key.
pub const KNOWN_KEYS: &[&str] = &[
    "listen",
    "public_url",
    "metrics_token",
    "data_dir",
    "database_url",
    "admin_token",
    "encryption_key",
    "role",
    "retry_schedule",
    "connect_timeout_ms",
    "request_timeout_ms",
    "max_payload_bytes",
    "allow_networks",
    "https_only",
    "destination_schemes",
    "proxy_url",
    "max_in_flight",
    "endpoint_disable_after_hours",
    "retention_days",
    "default_signature_scheme",
    "log_format",
    "operational_webhook_url",
    "lease_seconds",
    "breaker_cooldown_ms",
    "breaker_max_cooldown_ms",
    "ca_bundle",
    "spool_max_bytes",
    "header_read_timeout_ms",
    "body_read_timeout_ms",
    "idle_timeout_ms",
    "max_connections",
    "console_session_idle_secs",
    "console_sign_in_per_minute",
    "portal_title",
    "portal_accent_color",
    "portal_logo_url",
    "portal_frame_ancestors",
    "transform_cpu_ms",
    "transform_memory_mib",
    "transform_workers",
];

/// Used by tests that build configs without files or environment.
pub fn figment_from_toml(text: &str) -> Figment {
    Figment::new().merge(Toml::string(text))
}

/// Reads configuration keys, collecting every problem instead of stopping at the first.
struct Reader<'a> {
    dict: &'a Dict,
    errors: Vec<String>,
}

impl Reader<'_> {
    /// The key's value when present and well-formed; a malformed one is recorded.
    fn value<T: serde::de::DeserializeOwned>(&mut self, key: &str) -> Option<T> {
        match self.dict.get(key)?.deserialize::<T>() {
            Ok(x) => Some(x),
            Err(e) => {
                self.errors.push(format!("`{key}`: {}", e.kind));
                None
            }
        }
    }

    fn take<T: serde::de::DeserializeOwned>(&mut self, key: &str, slot: &mut T) {
        if let Some(x) = self.value(key) {
            *slot = x;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_match_the_contract() {
        let c = Config::from_figment(&Figment::new()).unwrap();
        assert_eq!(c.listen.to_string(), "127.0.0.1:8787");
        assert_eq!(
            c.retry_schedule,
            vec![1, 5, 30, 60, 300, 1800, 7200, 21600, 43200, 86400]
        );
        assert_eq!(c.max_payload_bytes, 2_097_152);
        assert_eq!((c.connect_timeout_ms, c.request_timeout_ms), (2000, 10000));
        assert_eq!(c.public_url(), "http://127.0.0.1:8787");
        assert_eq!(c.sqlite_path(), PathBuf::from("./herald-data/herald.db"));
    }

    #[test]
    fn every_problem_is_reported_at_once() {
        let fig = figment_from_toml(
            r#"
            listen = "nowhere"
            max_in_flight = "many"
            allow_networks = ["10.0.0.0/8", "bogus"]
            retry_schedul = [1]
            proxy_url = "ftp://x"
            "#,
        );
        let err = Config::from_figment(&fig).unwrap_err();
        let text = err.to_string();
        for needle in [
            "`listen`",
            "`max_in_flight`",
            "`bogus`",
            "`retry_schedul`: unknown",
            "`proxy_url`",
        ] {
            assert!(text.contains(needle), "missing {needle} in {text}");
        }
        assert_eq!(err.0.len(), 5, "{text}");
    }

    #[test]
    fn destination_schemes_are_checked() {
        use crate::broker::BrokerKind;
        let fig = figment_from_toml(r#"destination_schemes = ["redis", "nats", "redis"]"#);
        let c = Config::from_figment(&fig).unwrap();
        assert_eq!(
            c.destination_schemes,
            vec![BrokerKind::Redis, BrokerKind::Nats]
        );
        let fig = figment_from_toml(r#"destination_schemes = ["kafka"]"#);
        let err = Config::from_figment(&fig).unwrap_err().to_string();
        assert!(err.contains("`kafka`"), "{err}");
    }

    #[test]
    #[allow(clippy::result_large_err)] // figment's Jail API fixes the error type
    fn environment_overrides_file() {
        figment::Jail::expect_with(|jail| {
            jail.create_file(
                "herald.toml",
                "listen = \"127.0.0.1:9000\"\nhttps_only = true\n",
            )?;
            jail.set_env("HERALD_LISTEN", "127.0.0.1:9100");
            jail.set_env("HERALD_ALLOW_NETWORKS", "[\"127.0.0.0/8\"]");
            jail.set_env("HERALD_URL", "http://client-only");
            let c = Config::load(None).map_err(|e| e.to_string())?.config;
            assert_eq!(c.listen.to_string(), "127.0.0.1:9100");
            assert!(c.https_only);
            assert_eq!(
                c.allow_networks,
                vec!["127.0.0.0/8".parse::<IpNet>().unwrap()]
            );
            Ok(())
        });
    }

    /// What a Service named `herald` injects into every pod of its namespace.
    const KUBERNETES_SERVICE_ENV: [(&str, &str); 7] = [
        ("HERALD_SERVICE_HOST", "10.0.0.1"),
        ("HERALD_SERVICE_PORT", "8787"),
        ("HERALD_PORT", "tcp://10.0.0.1:8787"),
        ("HERALD_PORT_8787_TCP", "tcp://10.0.0.1:8787"),
        ("HERALD_PORT_8787_TCP_PROTO", "tcp"),
        ("HERALD_PORT_8787_TCP_PORT", "8787"),
        ("HERALD_PORT_8787_TCP_ADDR", "10.0.0.1"),
    ];

    #[test]
    #[allow(clippy::result_large_err)] // figment's Jail API fixes the error type
    fn defect_09_kubernetes_service_env_vars_do_not_block_startup() {
        figment::Jail::expect_with(|jail| {
            for (k, v) in KUBERNETES_SERVICE_ENV {
                jail.set_env(k, v);
            }
            jail.set_env("HERALD_LISTEN", "0.0.0.0:8787");
            let loaded = Config::load(None).map_err(|e| e.to_string())?;
            assert_eq!(loaded.config.listen.to_string(), "0.0.0.0:8787");
            // The test runner's own environment may hold other `HERALD_*` variables (the
            // simulation's and the fuzzers' knobs): check the injected ones are all listed and
            // that a real key never is.
            for (k, _) in KUBERNETES_SERVICE_ENV {
                assert!(loaded.ignored_env.iter().any(|i| i == k), "{k} listed");
            }
            assert!(!loaded.ignored_env.iter().any(|i| i == "HERALD_LISTEN"));
            Ok(())
        });
    }

    #[test]
    #[allow(clippy::result_large_err)] // figment's Jail API fixes the error type
    fn defect_09_unknown_keys_in_the_file_stay_fatal_and_known_env_keys_stay_checked() {
        figment::Jail::expect_with(|jail| {
            jail.set_env("HERALD_PORT", "tcp://10.0.0.1:8787");
            jail.create_file("herald.toml", "port = 8787\n")?;
            let err = Config::load(None).expect_err("unknown key in the file");
            assert_eq!(err.0, vec!["`port`: unknown configuration key".to_string()]);

            jail.create_file("herald.toml", "")?;
            jail.set_env("HERALD_RETRY_SCHEDULE", "garbage");
            let err = Config::load(None).expect_err("a known key with a bad value");
            assert_eq!(err.0.len(), 1, "{err}");
            assert!(err.0[0].starts_with("`retry_schedule`"), "{err}");
            Ok(())
        });
    }

    #[test]
    fn portal_branding_and_framing_are_checked() {
        let c = Config::from_figment(&Figment::new()).unwrap();
        assert_eq!(c.portal_frame_ancestors, "'self'");
        let ok = figment_from_toml(
            "portal_title = \"Acme webhooks\"\nportal_accent_color = \"#0a7\"\nportal_logo_url = \"https://cdn.acme.example/logo.png\"\nportal_frame_ancestors = \"'self' https://app.acme.example https://*.acme.example:8443\"\n",
        );
        let c = Config::from_figment(&ok).unwrap();
        assert_eq!(c.portal_accent_color.as_deref(), Some("#0a7"));
        for (key, bad) in [
            ("portal_accent_color", "\"red; background: url(x)\""),
            ("portal_accent_color", "\"#12345\""),
            ("portal_logo_url", "\"javascript:alert(1)\""),
            ("portal_frame_ancestors", "\"'self'; script-src *\""),
            (
                "portal_frame_ancestors",
                "\"https://a.example, https://b.example\"",
            ),
            ("portal_frame_ancestors", "\"'none' 'self'\""),
            ("portal_frame_ancestors", "\" \""),
            ("portal_title", "\"\""),
        ] {
            let err = Config::from_figment(&figment_from_toml(&format!("{key} = {bad}\n")))
                .expect_err(bad);
            assert!(err.to_string().contains(key), "{key}={bad}: {err}");
        }
    }
}
