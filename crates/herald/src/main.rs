//! The `herald` command line: parses arguments, loads configuration, sets up logging, and
//! hands over to [`herald::run`]. `anyhow` is used here, at the edge, and nowhere below.

use std::io::IsTerminal;
use std::path::PathBuf;

use clap::{Parser, Subcommand};
use herald_core::config::{Config, LogFormat, Role};
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
}

fn init_logging(cfg: &Config) {
    use tracing_subscriber::EnvFilter;
    let filter = EnvFilter::try_from_env("HERALD_LOG").unwrap_or_else(|_| EnvFilter::new("info"));
    let json = match cfg.log_format {
        Some(LogFormat::Json) => true,
        Some(LogFormat::Text) => false,
        None => !std::io::stdout().is_terminal(),
    };
    let b = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    if json {
        b.json().flatten_event(true).with_current_span(false).init();
    } else {
        b.init();
    }
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    let mut cfg = match Config::load(cli.config.as_deref()) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("{e}");
            std::process::exit(2);
        }
    };
    match cli.command {
        Command::Serve { role } => {
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
        Command::Migrate => {
            init_logging(&cfg);
            std::fs::create_dir_all(&cfg.data_dir)?;
            herald_store::SqliteStore::migrate_only(cfg.sqlite_path())?;
            println!("migrations applied to {}", cfg.sqlite_path().display());
            Ok(())
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
