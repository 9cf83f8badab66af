//! Herald as a child process: the release binary, a fresh temporary data directory, the admin
//! token, `allow_networks = ["127.0.0.0/8"]` (so it may deliver to the bench receiver) and a
//! free loopback port; stopped with SIGTERM.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{bail, Context as _};
use hyper::Method;
use tokio::process::Child;

use crate::http::Api;
use crate::serve_cmd::{free_port, serve_command};

/// The admin token of every Herald the bench starts.
pub const ADMIN_TOKEN: &str = "herald-bench-admin-token-0123456789";

/// A running Herald.
pub struct Herald {
    child: Child,
    pub pid: u32,
    pub api: Api,
    dir: tempfile::TempDir,
    scraper: Option<tokio::task::JoinHandle<()>>,
}

/// Bytes of the files under `p`, recursively (0 when it does not exist).
fn bytes_under(p: &Path) -> u64 {
    let Ok(rd) = std::fs::read_dir(p) else {
        return 0;
    };
    rd.flatten()
        .map(|e| match e.metadata() {
            Ok(m) if m.is_dir() => bytes_under(&e.path()),
            Ok(m) => m.len(),
            Err(_) => 0,
        })
        .sum()
}

impl Herald {
    /// Starts `bin serve` with the bench configuration plus `extra` (`HERALD_<KEY>`, value)
    /// and waits until `/api/v1/health` answers 200. With `scrape_every`, `GET /metrics` is
    /// called at that interval until Herald stops, as Prometheus would.
    pub async fn start(
        bin: &Path,
        extra: &[(&str, String)],
        scrape_every: Option<Duration>,
    ) -> anyhow::Result<Self> {
        let dir = tempfile::Builder::new()
            .prefix("herald-bench-")
            .tempdir()
            .context("create temp data dir")?;
        let port = free_port()?;
        let listen = format!("127.0.0.1:{port}");
        let log = std::fs::File::create(dir.path().join("herald.log"))?;
        let mut cmd = serve_command(bin, &dir.path().join("data"), &listen, log, ADMIN_TOKEN)?;
        cmd.current_dir(dir.path()).env("HERALD_LOG_FORMAT", "json");
        for (k, v) in extra {
            cmd.env(format!("HERALD_{}", k.to_uppercase()), v);
        }
        let mut child = cmd
            .spawn()
            .with_context(|| format!("start {}", bin.display()))?;
        let pid = child.id().context("herald pid")?;
        let api = Api::new(format!("http://{listen}"), ADMIN_TOKEN)?;
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Some(status) = child.try_wait()? {
                let log =
                    std::fs::read_to_string(dir.path().join("herald.log")).unwrap_or_default();
                bail!("herald exited during start-up ({status}):\n{log}");
            }
            if let Ok((s, _)) = api.call(Method::GET, "/health", None).await {
                if s.as_u16() == 200 {
                    break;
                }
            }
            if Instant::now() > deadline {
                bail!("herald did not answer /api/v1/health within 30 s");
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        let scraper = scrape_every.map(|every| {
            let (http, uri) = (api.http.clone(), format!("http://{listen}/metrics"));
            tokio::spawn(async move {
                let Ok(uri) = uri.parse::<hyper::Uri>() else {
                    return;
                };
                loop {
                    tokio::time::sleep(every).await;
                    let req = hyper::Request::get(uri.clone())
                        .body(http_body_util::Full::new(bytes::Bytes::new()));
                    if let Ok(req) = req {
                        if let Ok(Ok(resp)) =
                            tokio::time::timeout(Duration::from_secs(10), http.request(req)).await
                        {
                            let _ = http_body_util::BodyExt::collect(resp.into_body()).await;
                        }
                    }
                }
            })
        });
        Ok(Self {
            child,
            pid,
            api,
            dir,
            scraper,
        })
    }

    /// Resident set size of the Herald process (`VmRSS`), in KiB.
    pub fn rss_kib(&self) -> Option<u64> {
        let s = std::fs::read_to_string(format!("/proc/{}/status", self.pid)).ok()?;
        s.lines()
            .find(|l| l.starts_with("VmRSS:"))?
            .split_whitespace()
            .nth(1)?
            .parse()
            .ok()
    }

    /// Bytes on disk under the data directory (database, WAL).
    pub fn data_bytes(&self) -> u64 {
        bytes_under(&self.dir.path().join("data"))
    }

    /// Bytes in the PostgreSQL outage spool (`<data_dir>/spool`): 0 once it has drained.
    pub fn spool_bytes(&self) -> u64 {
        bytes_under(&self.dir.path().join("data").join("spool"))
    }

    /// The log file (kept until [`Herald::stop`] returns).
    pub fn log_path(&self) -> PathBuf {
        self.dir.path().join("herald.log")
    }

    /// SIGTERM, then waits up to 60 s for a clean exit (SIGKILL after that). Returns whether
    /// Herald exited successfully, and the tail of its log when it did not.
    pub async fn stop(mut self) -> anyhow::Result<()> {
        if let Some(s) = self.scraper.take() {
            s.abort();
        }
        let sent = std::process::Command::new("kill")
            .args(["-TERM", &self.pid.to_string()])
            .status();
        if !sent.map(|s| s.success()).unwrap_or(false) {
            let _ = self.child.start_kill();
        }
        let status = match tokio::time::timeout(Duration::from_secs(60), self.child.wait()).await {
            Ok(s) => s?,
            Err(_) => {
                let _ = self.child.start_kill();
                let _ = self.child.wait().await;
                bail!("herald did not stop within 60 s of SIGTERM (killed)");
            }
        };
        if !status.success() {
            let log = std::fs::read_to_string(self.log_path()).unwrap_or_default();
            let tail: Vec<&str> = log.lines().rev().take(20).collect();
            let tail: Vec<&str> = tail.into_iter().rev().collect();
            bail!("herald exited with {status}:\n{}", tail.join("\n"));
        }
        Ok(())
    }

    /// How many lines Herald logged so far (warnings and errors: `HERALD_LOG=warn`), and the
    /// first `max` of them.
    pub fn log_summary(&self, max: usize) -> (usize, Vec<String>) {
        let log = std::fs::read_to_string(self.log_path()).unwrap_or_default();
        let head = log.lines().take(max).map(str::to_string).collect();
        (log.lines().count(), head)
    }
}
