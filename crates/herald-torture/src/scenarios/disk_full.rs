//! Disk full: Herald's data directory sits on a small tmpfs that publishing fills. While it is
//! full every publish must get a 2xx (and later be delivered) or a JSON 5xx — no crash, no
//! hang, no 4xx — and health must say so. Then a ballast file is deleted and, without a
//! restart, publishing and delivery must go on.
//!
//! Needs permission to mount a tmpfs (root); without it the scenario reports itself skipped.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::Context as _;
use serde_json::{json, Value};

use crate::herald::{free_port, scratch_dir, Herald};
use crate::publisher::{health, setup_app, Delivery, Publisher};
use crate::receiver::{Faults, Receiver};
use crate::Opts;

const BALLAST_BYTES: usize = 8 * 1024 * 1024;

/// A tmpfs mounted for the scenario, unmounted on drop.
pub(crate) struct Tmpfs(PathBuf);

impl Tmpfs {
    pub(crate) fn mount(at: &Path, mib: u64) -> anyhow::Result<Self> {
        std::fs::create_dir_all(at)?;
        let status = std::process::Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={mib}m"), "tmpfs"])
            .arg(at)
            .status()
            .context("run mount")?;
        anyhow::ensure!(status.success(), "mount -t tmpfs failed ({status})");
        Ok(Self(at.to_path_buf()))
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = std::process::Command::new("umount")
            .arg("-l")
            .arg(&self.0)
            .status();
    }
}

/// A small tmpfs with a ballast file on it (space to free later), or the skip report when no
/// tmpfs can be mounted here.
pub(crate) struct FullFs {
    pub fs: Tmpfs,
    pub mnt: PathBuf,
    pub ballast: PathBuf,
}

impl FullFs {
    pub(crate) fn prepare(
        dir: &Path,
        mib: u64,
        ballast_bytes: usize,
        scenario: &str,
    ) -> anyhow::Result<Result<Self, (Value, bool)>> {
        let mnt = dir.join("mnt");
        let fs = match Tmpfs::mount(&mnt, mib) {
            Ok(fs) => fs,
            Err(e) => {
                let report = json!({"scenario": scenario, "skipped": format!("cannot mount a tmpfs: {e}"), "ok": true});
                return Ok(Err((report, true)));
            }
        };
        let ballast = mnt.join("ballast");
        std::fs::write(&ballast, vec![7u8; ballast_bytes])?;
        Ok(Ok(Self { fs, mnt, ballast }))
    }
}

/// Herald with its data directory on a [`FullFs`], a receiver and one endpoint: where both
/// full-filesystem scenarios (`disk-full`, `spool-full`) start.
pub(crate) struct FullSetup {
    /// Holds the mount point; removed after the tmpfs is unmounted.
    _dir: tempfile::TempDir,
    fs: Tmpfs,
    ballast: PathBuf,
    pub rx: Receiver,
    pub h: Herald,
    pub app: String,
    /// 16 KiB payloads, so the filesystem fills in bounded count and time.
    pub pubs: Publisher,
}

impl FullSetup {
    /// Mounts the tmpfs (or returns the skip report), then starts the receiver and Herald with
    /// `settings` and creates the app `scenario` with one endpoint.
    pub(crate) async fn start(
        o: &Opts,
        fs_mib: u64,
        ballast_bytes: usize,
        scenario: &str,
        settings: &[(&str, String)],
    ) -> anyhow::Result<Result<Self, (Value, bool)>> {
        let dir = scratch_dir()?;
        let FullFs { fs, mnt, ballast } =
            match FullFs::prepare(dir.path(), fs_mib, ballast_bytes, scenario)? {
                Ok(f) => f,
                Err(skipped) => return Ok(Err(skipped)),
            };
        let rx = Receiver::start(Faults::default(), o.seed).await?;
        let h = Herald::start(&o.bin, &mnt.join("data"), free_port()?, settings).await?;
        let app = setup_app(&h.api, scenario, 1, |i| rx.url(&format!("/ep/{i}"))).await?;
        Ok(Ok(Self {
            _dir: dir,
            fs,
            ballast,
            rx,
            h,
            app,
            pubs: Publisher::new(16 * 1024),
        }))
    }

    /// Publishes until refused, notes health and liveness while full, deletes the ballast,
    /// runs `after_free` (its result is returned beside the run) and publishes until accepted
    /// again, without a restart.
    pub(crate) async fn fill_and_free<T>(
        &mut self,
        after_free: impl FnOnce(&Publisher) -> anyhow::Result<T>,
    ) -> anyhow::Result<(FullRun, T)> {
        let full_reached = self
            .pubs
            .fill_until_refused(&self.h.api, &self.app, Duration::from_secs(120))
            .await;
        let health_when_full = health(&self.h.api).await?;
        let alive_when_full = self.h.alive();
        std::fs::remove_file(&self.ballast)?;
        let freed = after_free(&self.pubs)?;
        let recovered = self
            .pubs
            .until_accepted_again(&self.h.api, &self.app, Duration::from_secs(120))
            .await;
        let run = FullRun {
            full_reached,
            health_when_full,
            alive_when_full,
            recovered,
        };
        Ok((run, freed))
    }
}

pub async fn run(o: &Opts, fs_mib: u64) -> anyhow::Result<(Value, bool)> {
    let started = Instant::now();
    let settings = [
        ("retry_schedule", "[1,1,1,1,1,2,2,2,5,5,5,10,10,10]".into()),
        ("request_timeout_ms", "2000".into()),
    ];
    let mut s = match FullSetup::start(o, fs_mib, BALLAST_BYTES, "disk-full", &settings).await? {
        Ok(s) => s,
        Err(skipped) => return Ok(skipped),
    };
    let (run, refused_before) = s
        .fill_and_free(|p| Ok(p.ledger.lock().refused.values().sum::<u64>()))
        .await?;
    let refused_after_free = s.pubs.ledger.lock().refused.values().sum::<u64>() - refused_before;
    let d = Delivery::wait(&s.pubs, &s.rx, 1, o.deadline).await;
    let health_after = health(&s.h.api).await?;
    let extra = json!({
        "scenario": "disk-full",
        "refusedAfterFreeing": refused_after_free,
        "healthAfter": health_after,
    });
    finish(o, s, d, run, fs_mib, started, extra).await
}

/// What a full-filesystem run saw before the end.
pub(crate) struct FullRun {
    pub full_reached: bool,
    pub health_when_full: Value,
    pub alive_when_full: bool,
    pub recovered: bool,
}

/// Stops Herald, unmounts, and judges a full-filesystem run (`disk-full`, `spool-full`):
/// full reached, no crash, recovery without a restart, everything accepted delivered, and
/// only JSON 5xx refusals. `extra` holds the scenario's own fields.
pub(crate) async fn finish(
    o: &Opts,
    s: FullSetup,
    d: Delivery,
    run: FullRun,
    fs_mib: u64,
    started: Instant,
    extra: Value,
) -> anyhow::Result<(Value, bool)> {
    let FullSetup {
        _dir,
        fs,
        mut h,
        pubs,
        ..
    } = s;
    let alive = h.alive();
    let tail = if alive { String::new() } else { h.log_tail(30) };
    h.stop().await?;
    drop(fs);
    let ledger = pubs.ledger.lock();
    let only_5xx = ledger.refused.keys().all(|s| *s >= 500);
    let ok = run.full_reached
        && run.alive_when_full
        && alive
        && run.recovered
        && d.complete()
        && only_5xx
        && ledger.refused_without_json == 0
        && ledger.in_doubt == 0;
    let mut fields = json!({
        "tmpfsMiB": fs_mib,
        "fullReached": run.full_reached,
        "healthWhenFull": run.health_when_full,
        "recoveredWithoutRestart": run.recovered,
        "crashed": !alive,
        "logTail": tail,
    });
    if let (Value::Object(r), Value::Object(e)) = (&mut fields, extra) {
        r.extend(e);
    }
    Ok(d.report(o.seed, started, &ledger, ok, fields))
}
