//! `herald-torture`: runs the real `herald` binary through the failures users meet — SIGKILL
//! under load, a receiver that fails, hangs and resets, a full disk, PostgreSQL going away —
//! and checks Herald's promises afterwards: nothing accepted is lost, every refusal is a JSON
//! 5xx, the attempt log is complete, and Herald recovers without a restart.
//!
//! Every run is bounded in count and time and seeded (`--seed`): the seed fixes the kill
//! moments and the receiver's fault sequence; thread scheduling still varies. Each scenario
//! prints one JSON report on stdout; the exit code is non-zero when any invariant broke.
//! Only loopback addresses are contacted. See docs/reliability.md for the figures.

mod api;
mod herald;
mod pg;
mod publisher;
mod receiver;
mod scenarios;
// Shared with herald-bench: the one place that builds the `herald serve` command line.
#[path = "../../herald-bench/src/serve_cmd.rs"]
mod serve_cmd;

use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context as _;
use clap::{Parser, Subcommand};

use crate::pg::PgCluster;

#[derive(Parser, Debug)]
#[command(version, about)]
struct Args {
    /// The herald binary to torture (default: `herald` next to this executable).
    #[arg(long, global = true)]
    bin: Option<PathBuf>,
    /// Seeds the kill moments and the receiver's faults.
    #[arg(long, global = true, default_value_t = 1)]
    seed: u64,
    /// Longest wait for the deliveries at the end of a scenario, in seconds.
    #[arg(long, global = true, default_value_t = 300)]
    deadline_secs: u64,
    #[command(subcommand)]
    scenario: Scenario,
}

#[derive(Subcommand, Debug)]
enum Scenario {
    /// SIGKILL at a random moment under publishing load, restart on the same data, repeat.
    KillLoop {
        #[arg(long, default_value_t = 100)]
        cycles: usize,
    },
    /// 30 % 5xx, 10 % hangs past the timeout, 10 % connection resets at every endpoint.
    Chaos {
        #[arg(long, default_value_t = 2_000)]
        messages: u64,
    },
    /// The data directory on a small tmpfs filled by publishing, then freed (needs root).
    DiskFull {
        #[arg(long, default_value_t = 64)]
        tmpfs_mib: u64,
    },
    /// PostgreSQL stopped and crashed under load, then started again.
    PgRestart {
        #[command(flatten)]
        pg: PgCluster,
        #[arg(long, default_value_t = 4)]
        restarts: usize,
    },
    /// PostgreSQL down, the outage spool's filesystem (a tmpfs) filled, then freed and the
    /// database started again (needs root).
    SpoolFull {
        #[command(flatten)]
        pg: PgCluster,
        #[arg(long, default_value_t = 32)]
        tmpfs_mib: u64,
    },
}

pub struct Opts {
    pub bin: PathBuf,
    pub seed: u64,
    pub deadline: Duration,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let bin = match args.bin {
        Some(b) => b,
        None => std::env::current_exe()?
            .parent()
            .context("executable has no folder")?
            .join("herald"),
    };
    anyhow::ensure!(bin.exists(), "no herald binary at {}", bin.display());
    let o = Opts {
        bin,
        seed: args.seed,
        deadline: Duration::from_secs(args.deadline_secs),
    };
    let (report, ok) = match args.scenario {
        Scenario::KillLoop { cycles } => scenarios::kill_loop::run(&o, cycles).await?,
        Scenario::Chaos { messages } => scenarios::chaos::run(&o, messages).await?,
        Scenario::DiskFull { tmpfs_mib } => scenarios::disk_full::run(&o, tmpfs_mib).await?,
        Scenario::PgRestart { pg, restarts } => {
            scenarios::pg_restart::run(&o, &pg, restarts).await?
        }
        Scenario::SpoolFull { pg, tmpfs_mib } => {
            scenarios::spool_full::run(&o, &pg, tmpfs_mib).await?
        }
    };
    println!("{}", serde_json::to_string_pretty(&report)?);
    if !ok {
        anyhow::bail!("an invariant broke; see the report above");
    }
    Ok(())
}
