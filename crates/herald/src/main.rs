//! The `herald` command line: parses arguments, loads configuration, sets up logging, and
//! hands over to [`herald::run`]. `anyhow` is used here, at the edge, and nowhere below.
//!
//! Configuration is loaded only by the commands that use it: `verify` never does, and the
//! commands that talk to a server through the API only do to find the admin token file when
//! no token is given. So a broken server setting cannot stop an offline check.

use std::io::IsTerminal;
use std::path::{Path, PathBuf};

use clap::{Parser, Subcommand};
use herald_core::config::{Config, LogFormat, Role};
use herald_core::signing::SignatureScheme;
use tokio::sync::watch;

#[derive(Parser)]
#[command(name = "herald", version, about = "Herald: a reliable webhook gateway")]
struct Cli {
    /// Configuration file (default: ./herald.toml when present).
    #[arg(long, global = true, env = "HERALD_CONFIG")]
    config: Option<PathBuf>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the server: API, delivery workers (or one of them with --role).
    Serve {
        /// api, worker or all (overrides the `role` key).
        #[arg(long)]
        role: Option<String>,
    },
    /// Apply storage migrations and exit.
    Migrate,
    /// Re-encrypt every stored secret under a new encryption key. Stop Herald first (all
    /// nodes of a cluster). With the key in `data_dir/encryption-key`, the file is replaced;
    /// with `encryption_key` configured, the new key is printed once to put in its place.
    RotateKey {
        /// The new key (base64 of 32 bytes); generated when absent.
        #[arg(long)]
        new_key: Option<String>,
    },
    /// Check a received webhook's signature offline; the body is read from stdin.
    /// Exit 0 when valid, 1 with the reason when not.
    Verify {
        /// The endpoint secret (`whsec_…`).
        #[arg(long)]
        secret: String,
        /// A received header, `Name: value`; repeat for each header.
        #[arg(long = "header", short = 'H')]
        headers: Vec<String>,
        /// standard, svix or github.
        #[arg(long, default_value = "standard")]
        scheme: String,
        /// Allowed clock skew in seconds.
        #[arg(long, default_value_t = 300)]
        tolerance: i64,
        /// Unix time to check against (default: now).
        #[arg(long)]
        now: Option<i64>,
    },
    /// Local development without a tunnel: receive an application's (or one source's)
    /// deliveries over a WebSocket and POST each to a local URL (HERALD_URL, HERALD_TOKEN).
    /// Herald records each local answer as an attempt; Ctrl-C removes the temporary endpoint.
    Listen {
        /// Only messages accepted from this source (ID `src_…`, or uid with --app).
        #[arg(long, required_unless_present = "app")]
        source: Option<String>,
        /// The application (ID or uid): alone, all its messages; with --source, the source's
        /// application.
        #[arg(long)]
        app: Option<String>,
        /// Only these event types (comma-separated).
        #[arg(long, value_delimiter = ',')]
        types: Vec<String>,
        /// The local URL each event is POSTed to.
        #[arg(long)]
        forward: String,
        /// Herald's base URL.
        #[arg(long, env = "HERALD_URL", default_value = "http://127.0.0.1:8787")]
        url: String,
        /// API token (default: the admin token file in data_dir).
        #[arg(long, env = "HERALD_TOKEN", hide_env_values = true)]
        token: Option<String>,
    },
    /// Publish a message through the API (HERALD_URL, HERALD_TOKEN).
    Send {
        #[arg(long)]
        app: String,
        /// Event type.
        #[arg(long = "type")]
        event_type: String,
        /// The payload: a JSON object.
        #[arg(long)]
        data: String,
        #[arg(long)]
        event_id: Option<String>,
        #[command(flatten)]
        out: Output,
    },
    /// Endpoints of an application.
    Endpoint {
        #[command(subcommand)]
        command: ListGet,
    },
    /// Messages of an application.
    Message {
        #[command(subcommand)]
        command: ListGet,
    },
    /// The attempt log of a message or an endpoint, or one attempt (`--msg M --id A`).
    Attempt {
        #[arg(long)]
        app: String,
        #[arg(
            long,
            conflicts_with = "endpoint",
            required_unless_present = "endpoint"
        )]
        msg: Option<String>,
        #[arg(long)]
        endpoint: Option<String>,
        /// One attempt of the message (`atmpt_…`).
        #[arg(long, requires = "msg")]
        id: Option<String>,
        #[command(flatten)]
        out: Output,
    },
    /// Re-queue an endpoint's failed deliveries since a time (RFC 3339).
    Recover {
        #[arg(long)]
        app: String,
        #[arg(long)]
        endpoint: String,
        #[arg(long)]
        since: String,
        /// Return once the deliveries are re-queued instead of following them to the end.
        #[arg(long)]
        no_wait: bool,
        /// Stop following after this many seconds (the deliveries go on).
        #[arg(long, default_value_t = 300)]
        timeout: u64,
        #[command(flatten)]
        out: Output,
    },
    /// Manage API tokens directly in the configured store.
    Token {
        #[command(subcommand)]
        command: TokenCommand,
    },
}

#[derive(clap::Args)]
struct Output {
    /// Print the API's JSON instead of a table.
    #[arg(long)]
    json: bool,
    /// Herald's base URL.
    #[arg(long, env = "HERALD_URL", default_value = "http://127.0.0.1:8787")]
    url: String,
    /// API token (default: the admin token file in data_dir).
    #[arg(long, env = "HERALD_TOKEN", hide_env_values = true)]
    token: Option<String>,
}

#[derive(Subcommand)]
enum ListGet {
    /// List (newest first for messages).
    List {
        #[arg(long)]
        app: String,
        #[arg(long, default_value_t = 50)]
        limit: u32,
        #[command(flatten)]
        out: Output,
    },
    /// Show one by ID or uid.
    Get {
        #[arg(long)]
        app: String,
        id: String,
        #[command(flatten)]
        out: Output,
    },
}

#[derive(Subcommand)]
enum TokenCommand {
    /// Mint a token (`hk_…`); only its hash is stored. Prints the token once.
    Create {
        /// Scope the token to this application (ID or uid); admin rights when absent.
        #[arg(long)]
        app: Option<String>,
        /// A name to recognise the token by.
        #[arg(long, default_value = "cli")]
        name: String,
    },
}

fn init_logging(cfg: &Config) {
    use tracing_subscriber::EnvFilter;
    let filter = EnvFilter::try_from_env("HERALD_LOG").unwrap_or_else(|_| EnvFilter::new("info"));
    let json = match cfg.log_format {
        Some(LogFormat::Json) => true,
        Some(LogFormat::Text) => false,
        None => !std::io::stdout().is_terminal(),
    };
    // A log line that cannot be written (stderr on a full disk) is dropped. With internal-error
    // logging on, tracing-subscriber reports the failure with `eprintln!`, which panics when
    // stderr fails — inside whatever request was logging, so a full disk under the log file
    // closed every connection without an answer (found by herald-torture's disk-full run).
    let b = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .log_internal_errors(false);
    if json {
        b.json().flatten_event(true).with_current_span(false).init();
    } else {
        b.init();
    }
}

/// Loads the configuration or exits 2 listing every problem. The `HERALD_*` variables it
/// ignored come back for [`report_ignored_env`] once logging is set up.
fn load_config(path: Option<&Path>) -> (Config, Vec<String>) {
    match Config::load(path) {
        Ok(l) => (l.config, l.ignored_env),
        Err(e) => {
            eprintln!("{e}");
            std::process::exit(2);
        }
    }
}

/// One warning line for all ignored `HERALD_*` variables (a misspelt key shows up here).
fn report_ignored_env(ignored: &[String]) {
    if !ignored.is_empty() {
        tracing::warn!(
            variables = %ignored.join(", "),
            "ignoring HERALD_* environment variables that name no configuration key (Kubernetes injects some for a Service named herald)"
        );
    }
}

/// The configuration for a command that does not set up logging: ignored variables go to
/// stderr, once.
fn load_config_quietly(path: Option<&Path>) -> Config {
    let (cfg, ignored) = load_config(path);
    if !ignored.is_empty() {
        eprintln!(
            "warning: ignoring HERALD_* environment variables that name no configuration key: {}",
            ignored.join(", ")
        );
    }
    cfg
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    let config_path = cli.config.clone();
    let config_path = config_path.as_deref();
    match cli.command {
        Command::Serve { role } => serve(config_path, role),
        Command::Verify {
            secret,
            headers,
            scheme,
            tolerance,
            now,
        } => verify(&secret, headers, &scheme, tolerance, now),
        Command::RotateKey { new_key } => rotate_key(config_path, new_key),
        Command::Token {
            command: TokenCommand::Create { app, name },
        } => {
            let cfg = load_config_quietly(config_path);
            let rt = tokio::runtime::Runtime::new()?;
            rt.block_on(async move {
                let token = herald::create_token(&cfg, app.as_deref(), &name).await?;
                println!("{token}");
                Ok(())
            })
        }
        Command::Listen {
            source,
            app,
            types,
            forward,
            url,
            token,
        } => {
            let out = Output {
                json: false,
                url: url.clone(),
                token,
            };
            let opts = herald::listen::ListenOptions {
                server: url,
                token: token_of(config_path, &out)?,
                app,
                source,
                types,
                forward,
            };
            let rt = tokio::runtime::Runtime::new()?;
            or_exit(rt.block_on(herald::listen::listen(opts, std::io::stdout())))
        }
        Command::Send {
            app,
            event_type,
            data,
            event_id,
            out,
        } => {
            let payload: serde_json::Value = serde_json::from_str(&data)
                .map_err(|e| anyhow::anyhow!("--data is not JSON: {e}"))?;
            let body = serde_json::json!({"eventType": event_type, "payload": payload, "eventId": event_id});
            api(
                config_path,
                &out,
                reqwest::Method::POST,
                &format!("/app/{app}/msg"),
                Some(body),
                &["id", "eventType", "timestamp"],
            )
        }
        Command::Endpoint { command } => list_get(
            config_path,
            command,
            "endpoint",
            &["id", "uid", "url", "state", "disabled"],
        ),
        Command::Message { command } => list_get(
            config_path,
            command,
            "msg",
            &["id", "eventType", "eventId", "timestamp"],
        ),
        Command::Attempt {
            app,
            msg,
            endpoint,
            id,
            out,
        } => attempts(config_path, &app, msg, endpoint, id, &out),
        Command::Recover {
            app,
            endpoint,
            since,
            no_wait,
            timeout,
            out,
        } => recover(
            config_path,
            &app,
            &endpoint,
            since,
            no_wait || out.json,
            timeout,
            &out,
        ),
        Command::Migrate => migrate(config_path),
    }
}

/// `herald serve`: runs until SIGTERM or Ctrl-C.
fn serve(config_path: Option<&Path>, role: Option<String>) -> anyhow::Result<()> {
    let (mut cfg, ignored) = load_config(config_path);
    if let Some(r) = role {
        cfg.role = match r.as_str() {
            "api" => Role::Api,
            "worker" => Role::Worker,
            "all" => Role::All,
            other => {
                eprintln!("invalid --role `{other}`: expected api, worker or all");
                std::process::exit(2);
            }
        };
    }
    init_logging(&cfg);
    report_ignored_env(&ignored);
    let rt = tokio::runtime::Runtime::new()?;
    rt.block_on(async move {
        let (tx, rx) = watch::channel(false);
        tokio::spawn(async move {
            wait_for_signal().await;
            tracing::info!("shutdown requested; finishing in-flight deliveries");
            let _ = tx.send(true);
        });
        herald::run(cfg, None, rx, |_| {}).await
    })
}

/// `herald verify`: checks a signature offline; loads no configuration.
fn verify(
    secret: &str,
    headers: Vec<String>,
    scheme: &str,
    tolerance: i64,
    now: Option<i64>,
) -> anyhow::Result<()> {
    let scheme = SignatureScheme::parse(scheme).unwrap_or_else(|| {
        eprintln!("invalid --scheme `{scheme}`: expected standard, svix or github");
        std::process::exit(2);
    });
    let mut parsed = Vec::new();
    for h in headers {
        match h.split_once(':') {
            Some((k, v)) => parsed.push((k.trim().to_string(), v.trim().to_string())),
            None => {
                eprintln!("invalid --header `{h}`: expected `Name: value`");
                std::process::exit(2);
            }
        }
    }
    let mut body = Vec::new();
    std::io::Read::read_to_end(&mut std::io::stdin(), &mut body)?;
    let now = now.unwrap_or_else(|| herald_core::now_millis() / 1000);
    match herald::verify::verify(scheme, secret, &parsed, &body, now, tolerance) {
        Ok(()) => {
            println!("valid");
            Ok(())
        }
        Err(reason) => {
            println!("invalid: {reason}");
            std::process::exit(1);
        }
    }
}

/// `herald rotate-key`.
fn rotate_key(config_path: Option<&Path>, new_key: Option<String>) -> anyhow::Result<()> {
    let (cfg, ignored) = load_config(config_path);
    init_logging(&cfg);
    report_ignored_env(&ignored);
    let rt = tokio::runtime::Runtime::new()?;
    rt.block_on(async move {
        match herald::rotate_key(&cfg, new_key).await? {
            herald::RotatedKey::Written { path, records } => println!(
                "re-encrypted {records} records; the new key is in {}",
                path.display()
            ),
            herald::RotatedKey::Configure { key, records } => {
                println!("re-encrypted {records} records; set encryption_key to:");
                println!("{key}");
            }
        }
        Ok(())
    })
}

/// `herald attempt`: one attempt, a message's or an endpoint's attempts.
fn attempts(
    config_path: Option<&Path>,
    app: &str,
    msg: Option<String>,
    endpoint: Option<String>,
    id: Option<String>,
    out: &Output,
) -> anyhow::Result<()> {
    let path = match (msg, endpoint) {
        (Some(m), _) if id.is_some() => {
            format!("/app/{app}/msg/{m}/attempt/{}", id.unwrap_or_default())
        }
        (Some(m), _) => format!("/app/{app}/attempt/msg/{m}"),
        (None, Some(e)) => format!("/app/{app}/attempt/endpoint/{e}"),
        (None, None) => unreachable!("clap requires one"),
    };
    api(
        config_path,
        out,
        reqwest::Method::GET,
        &path,
        None,
        &[
            "id",
            "msgId",
            "endpointId",
            "responseStatusCode",
            "statusText",
            "timestamp",
        ],
    )
}

/// `herald recover`: starts a recovery and, unless `no_wait`, follows it to the end.
fn recover(
    config_path: Option<&Path>,
    app: &str,
    endpoint: &str,
    since: String,
    no_wait: bool,
    timeout: u64,
    out: &Output,
) -> anyhow::Result<()> {
    let body = serde_json::json!({"since": since});
    let path = format!("/app/{app}/endpoint/{endpoint}/recover");
    if no_wait {
        return api(
            config_path,
            out,
            reqwest::Method::POST,
            &path,
            Some(body),
            &["id", "status", "task"],
        );
    }
    let client = herald::client::ApiClient::new(&out.url, &token_of(config_path, out)?);
    let rt = tokio::runtime::Runtime::new()?;
    let summary = or_exit(rt.block_on(herald::client::recover_with_progress(
        &client,
        app,
        endpoint,
        body,
        std::time::Duration::from_secs(timeout),
    )))?;
    println!("{summary}");
    Ok(())
}

/// `herald migrate`.
fn migrate(config_path: Option<&Path>) -> anyhow::Result<()> {
    let (cfg, ignored) = load_config(config_path);
    init_logging(&cfg);
    report_ignored_env(&ignored);
    std::fs::create_dir_all(&cfg.data_dir)?;
    match cfg.postgres_url() {
        Some(url) => {
            tokio::runtime::Runtime::new()?
                .block_on(herald_store::PostgresStore::migrate_only(url))?;
            println!("migrations applied to the PostgreSQL database");
        }
        None => {
            herald_store::SqliteStore::migrate_only(cfg.sqlite_path())?;
            println!("migrations applied to {}", cfg.sqlite_path().display());
        }
    }
    Ok(())
}

/// A command's failure printed as `error: …` with exit status 1 (not anyhow's debug form).
fn or_exit<T, E: std::fmt::Display>(r: Result<T, E>) -> anyhow::Result<T> {
    match r {
        Ok(v) => Ok(v),
        Err(e) => {
            eprintln!("error: {e}");
            std::process::exit(1);
        }
    }
}

async fn wait_for_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        let mut term = signal(SignalKind::terminate()).expect("SIGTERM handler");
        tokio::select! {
            _ = tokio::signal::ctrl_c() => {}
            _ = term.recv() => {}
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}

fn list_get(
    cfg: Option<&Path>,
    cmd: ListGet,
    resource: &str,
    columns: &[&str],
) -> anyhow::Result<()> {
    let (path, out) = match cmd {
        ListGet::List { app, limit, out } => (format!("/app/{app}/{resource}?limit={limit}"), out),
        ListGet::Get { app, id, out } => (format!("/app/{app}/{resource}/{id}"), out),
    };
    api(cfg, &out, reqwest::Method::GET, &path, None, columns)
}

/// `--token` / `HERALD_TOKEN`, else the admin token file in `data_dir` (the only case that
/// loads the configuration, from `config`).
fn token_of(config: Option<&Path>, out: &Output) -> anyhow::Result<String> {
    match &out.token {
        Some(t) => Ok(t.clone()),
        None => std::fs::read_to_string(
            load_config_quietly(config)
                .data_dir
                .join(herald::ADMIN_TOKEN_FILE),
        )
        .map(|t| t.trim().to_string())
        .map_err(|_| anyhow::anyhow!("no token: set HERALD_TOKEN or pass --token")),
    }
}

/// Calls the API and prints the answer as a table (or JSON with `--json`). API errors print
/// `code: detail` and exit 1.
fn api(
    cfg: Option<&Path>,
    out: &Output,
    method: reqwest::Method,
    path: &str,
    body: Option<serde_json::Value>,
    columns: &[&str],
) -> anyhow::Result<()> {
    let token = token_of(cfg, out)?;
    let client = herald::client::ApiClient::new(&out.url, &token);
    let rt = tokio::runtime::Runtime::new()?;
    let v = or_exit(rt.block_on(client.call(method, path, body)))?;
    if out.json {
        println!("{}", serde_json::to_string_pretty(&v)?);
    } else {
        let rows = match v.get("data").and_then(|d| d.as_array()) {
            Some(list) => list.clone(),
            None => vec![v],
        };
        println!("{}", herald::client::table(&rows, columns));
    }
    Ok(())
}
