//! Herald as a child process on a data directory the scenario owns, so that it can be killed
//! with SIGKILL and started again on the same files. Configuration goes through `HERALD_*`
//! variables only; nothing from the caller's environment leaks in.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{bail, Context as _};
use tokio::process::Child;

use crate::api::Api;
pub use crate::serve_cmd::free_port;
use crate::serve_cmd::serve_command;

/// The admin token of every Herald the torture starts.
pub const ADMIN_TOKEN: &str = "herald-torture-admin-token-0123456789";

pub struct Herald {
    child: Child,
    pub api: Api,
    log: PathBuf,
}

/// A directory of its own for one run's data and logs, removed on drop.
pub fn scratch_dir() -> anyhow::Result<tempfile::TempDir> {
    Ok(tempfile::Builder::new()
        .prefix("herald-torture-")
        .tempdir()?)
}

impl Herald {
    /// Starts `bin serve` with its data in `data_dir` (logs beside it in `herald.log`,
    /// appended) and `extra` settings (`key`, value), and waits until health answers 200.
    pub async fn start(
        bin: &Path,
        data_dir: &Path,
        port: u16,
        extra: &[(&str, String)],
    ) -> anyhow::Result<Self> {
        let listen = format!("127.0.0.1:{port}");
        let log_path = data_dir
            .parent()
            .unwrap_or(data_dir)
            .join(format!("herald-{port}.log"));
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&log_path)
            .with_context(|| format!("open {}", log_path.display()))?;
        let mut cmd = serve_command(bin, data_dir, &listen, log, ADMIN_TOKEN)?;
        for (k, v) in extra {
            cmd.env(format!("HERALD_{}", k.to_uppercase()), v);
        }
        let mut child = cmd
            .spawn()
            .with_context(|| format!("start {}", bin.display()))?;
        let api = Api::new(format!("http://{listen}"), ADMIN_TOKEN)?;
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            if let Some(status) = child.try_wait()? {
                let log = std::fs::read_to_string(&log_path).unwrap_or_default();
                bail!("herald exited during start-up ({status}):\n{log}");
            }
            if let Ok((200, _)) = api.get("/health").await {
                break;
            }
            if Instant::now() > deadline {
                bail!("herald did not answer /api/v1/health within 60 s");
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
        Ok(Self {
            child,
            api,
            log: log_path,
        })
    }

    /// SIGKILL, and wait until the process is gone.
    pub async fn kill9(mut self) -> anyhow::Result<()> {
        self.child.start_kill().context("SIGKILL herald")?;
        self.child.wait().await?;
        Ok(())
    }

    /// SIGTERM (graceful), then SIGKILL after 40 s.
    pub async fn stop(mut self) -> anyhow::Result<()> {
        if let Some(pid) = self.child.id() {
            let _ = std::process::Command::new("kill")
                .arg("-TERM")
                .arg(pid.to_string())
                .status();
        }
        match tokio::time::timeout(Duration::from_secs(40), self.child.wait()).await {
            Ok(r) => {
                r?;
            }
            Err(_) => {
                self.child.start_kill()?;
                self.child.wait().await?;
            }
        }
        Ok(())
    }

    /// Still running?
    pub fn alive(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }

    pub fn log_tail(&self, lines: usize) -> String {
        let text = std::fs::read_to_string(&self.log).unwrap_or_default();
        let all: Vec<&str> = text.lines().collect();
        all[all.len().saturating_sub(lines)..].join("\n")
    }
}
