//! The `herald serve` command line that both tool crates start (herald-bench, and
//! herald-torture through `#[path]`): a clean `HERALD_*` environment plus the few settings every
//! tool run needs. Only builds the command; starting, waiting and stopping stay with the caller.

use std::path::Path;
use std::process::Stdio;

use tokio::process::Command;

/// A free port on 127.0.0.1 (bound, then released for Herald to take).
pub fn free_port() -> std::io::Result<u16> {
    let l = std::net::TcpListener::bind("127.0.0.1:0")?;
    Ok(l.local_addr()?.port())
}

/// `bin serve` on `listen` with its data in `data_dir`, both output streams into `log`,
/// `admin_token`, delivery to loopback allowed, and warnings-only logging. Nothing from the
/// caller's environment may change the configuration, so every inherited `HERALD_*` variable is
/// removed; callers add their own settings afterwards.
pub fn serve_command(
    bin: &Path,
    data_dir: &Path,
    listen: &str,
    log: std::fs::File,
    admin_token: &str,
) -> std::io::Result<Command> {
    let mut cmd = Command::new(bin);
    cmd.arg("serve")
        .stdin(Stdio::null())
        .stdout(log.try_clone()?)
        .stderr(log)
        .kill_on_drop(true);
    for (k, _) in std::env::vars_os() {
        if k.to_string_lossy().starts_with("HERALD_") {
            cmd.env_remove(k);
        }
    }
    cmd.env("HERALD_DATA_DIR", data_dir)
        .env("HERALD_ADMIN_TOKEN", admin_token)
        .env("HERALD_ALLOW_NETWORKS", r#"["127.0.0.0/8"]"#)
        .env("HERALD_LISTEN", listen)
        .env("HERALD_LOG", "warn");
    Ok(cmd)
}
