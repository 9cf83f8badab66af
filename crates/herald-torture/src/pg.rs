//! The PostgreSQL server of the `pg-restart` and `spool-full` scenarios: where it is, how to
//! stop, crash and resume it (through `scripts/pg-cluster.sh`, the script the test command
//! starts it with), and a fresh database on it per run. It never starts a server itself.

use std::path::PathBuf;

use anyhow::Context as _;

/// The encryption key of every Herald the torture runs on PostgreSQL (every database is new).
pub const ENCRYPTION_KEY: &str = "dG9ydHVyZS10ZXN0LWtleS0zMi1ieXRlcy1sb25nISE=";

/// The command-line options naming the server and its control script.
#[derive(clap::Args, Debug)]
pub struct PgCluster {
    /// An admin URL of the server (a fresh database is created on it).
    #[arg(long, env = "TEST_DATABASE_URL")]
    pub database_url: String,
    /// The cluster directory given to `scripts/pg-cluster.sh start`.
    #[arg(long)]
    pub pg_dir: PathBuf,
    #[arg(long, default_value = "scripts/pg-cluster.sh")]
    pub pg_script: PathBuf,
}

impl PgCluster {
    /// `pg-cluster.sh <cmd> <pg_dir>`: `stop`, `crash` or `resume`.
    pub fn control(&self, cmd: &str) -> anyhow::Result<()> {
        let status = std::process::Command::new("bash")
            .arg(&self.pg_script)
            .arg(cmd)
            .arg(&self.pg_dir)
            .status()
            .with_context(|| format!("{} {cmd}", self.pg_script.display()))?;
        anyhow::ensure!(status.success(), "pg-cluster.sh {cmd} failed ({status})");
        Ok(())
    }

    /// A database of its own on the server (through `psql`), named after `seed` and this
    /// process so that runs do not meet.
    pub fn fresh_database(&self, seed: u64) -> anyhow::Result<String> {
        let admin_url = self.database_url.as_str();
        let name = format!("torture_{seed}_{}", std::process::id());
        for sql in [
            format!("DROP DATABASE IF EXISTS {name}"),
            format!("CREATE DATABASE {name}"),
        ] {
            let out = std::process::Command::new("psql")
                .arg(admin_url)
                .args(["-v", "ON_ERROR_STOP=1", "-q", "-c", &sql])
                .output()
                .context("run psql")?;
            anyhow::ensure!(
                out.status.success(),
                "psql: {}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
        let base = admin_url
            .rsplit_once('/')
            .map(|(b, _)| b)
            .unwrap_or(admin_url);
        Ok(format!("{base}/{name}"))
    }
}
