//! The database-outage spool: while PostgreSQL is unreachable, publishes are appended to a local
//! file and fsync'd before the API answers; when the database returns they are written into it
//! in the order they were accepted.
//!
//! The file is JSON lines. A line is only acknowledged after `fdatasync`, so a torn last line
//! (a crash mid-write) was never acknowledged and is skipped. Draining first renames the
//! current file to `draining-<n>.jsonl` (new publishes keep spooling into a fresh file), writes
//! that file's messages into the database one by one — a message whose ID is already there was
//! written before a crash and is skipped — and deletes it. While anything is spooled, new
//! publishes are spooled too, so the database receives messages in acceptance order.
//!
//! This module owns the file format and ordering; deciding *when* the database is down is the
//! caller's job.

use std::fs::{File, OpenOptions};
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use herald_core::ids::{AppId, EndpointId, MessageId};
use herald_core::model::Message;
use serde::{Deserialize, Serialize};

use crate::{Result, StoreError};

const CURRENT: &str = "publish.jsonl";

/// One spooled publish.
#[derive(Serialize, Deserialize)]
pub(crate) struct Entry {
    id: String,
    app_id: String,
    event_id: Option<String>,
    event_type: String,
    payload: Option<String>,
    channels: Option<Vec<String>>,
    created_at: i64,
    retention_ms: Option<i64>,
    ordering_key: Option<String>,
    #[serde(default)]
    headers: Option<std::collections::BTreeMap<String, String>>,
    only: Option<String>,
}

impl Entry {
    pub(crate) fn new(m: &Message, only: &Option<EndpointId>) -> Self {
        Self {
            id: m.id.0.clone(),
            app_id: m.app_id.0.clone(),
            event_id: m.event_id.clone(),
            event_type: m.event_type.clone(),
            payload: m.payload.clone(),
            channels: m.channels.clone(),
            created_at: m.created_at,
            retention_ms: m.retention_ms,
            ordering_key: m.ordering_key.clone(),
            headers: m.headers.clone(),
            only: only.as_ref().map(|e| e.0.clone()),
        }
    }

    pub(crate) fn into_parts(self) -> (Message, Option<EndpointId>) {
        (
            Message {
                id: MessageId(self.id),
                app_id: AppId(self.app_id),
                event_id: self.event_id,
                event_type: self.event_type,
                payload: self.payload,
                channels: self.channels,
                created_at: self.created_at,
                retention_ms: self.retention_ms,
                ordering_key: self.ordering_key,
                headers: self.headers,
            },
            self.only.map(EndpointId),
        )
    }
}

struct State {
    file: File,
    /// Bytes in the current file.
    len: u64,
    /// Spooled work not yet in the database (current file or draining files).
    active: bool,
}

/// The spool directory of one node. Cheap to clone.
#[derive(Clone)]
pub struct Spool {
    dir: PathBuf,
    max_bytes: u64,
    state: Arc<Mutex<State>>,
}

fn io(e: std::io::Error) -> StoreError {
    StoreError::Unavailable(format!("spool: {e}"))
}

impl Spool {
    /// Opens (creating) the spool in `dir`; `max_bytes` bounds what it may hold.
    pub fn open(dir: &Path, max_bytes: u64) -> Result<Self> {
        std::fs::create_dir_all(dir).map_err(io)?;
        let path = dir.join(CURRENT);
        let file = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&path)
            .map_err(io)?;
        let len = file.metadata().map_err(io)?.len();
        let spool = Self {
            dir: dir.to_path_buf(),
            max_bytes,
            state: Arc::new(Mutex::new(State {
                file,
                len,
                active: false,
            })),
        };
        let pending = len > 0 || !spool.draining_files()?.is_empty();
        spool.state.lock().expect("spool lock").active = pending;
        Ok(spool)
    }

    /// Whether publishes must go to the spool (something is spooled and not yet drained).
    pub(crate) fn active(&self) -> bool {
        self.state.lock().expect("spool lock").active
    }

    /// Appends one publish and makes it durable. Fails (the API answers 503) when the spool is
    /// full or the disk refuses.
    pub(crate) fn append(&self, e: &Entry) -> Result<()> {
        let mut line = serde_json::to_vec(e).map_err(|e| StoreError::Corrupt(e.to_string()))?;
        line.push(b'\n');
        let mut st = self.state.lock().expect("spool lock");
        let queued = st.len + self.draining_bytes();
        if queued + line.len() as u64 > self.max_bytes {
            return Err(StoreError::Unavailable(
                "the database is unreachable and the local spool is full".into(),
            ));
        }
        st.file.write_all(&line).map_err(io)?;
        st.file.sync_data().map_err(io)?;
        st.len += line.len() as u64;
        st.active = true;
        Ok(())
    }

    fn draining_files(&self) -> Result<Vec<PathBuf>> {
        let mut files: Vec<(u64, PathBuf)> = std::fs::read_dir(&self.dir)
            .map_err(io)?
            .filter_map(|e| e.ok())
            .filter_map(|e| {
                let name = e.file_name().to_string_lossy().to_string();
                let n = name
                    .strip_prefix("draining-")?
                    .strip_suffix(".jsonl")?
                    .parse()
                    .ok()?;
                Some((n, e.path()))
            })
            .collect();
        files.sort();
        Ok(files.into_iter().map(|(_, p)| p).collect())
    }

    fn draining_bytes(&self) -> u64 {
        self.draining_files()
            .unwrap_or_default()
            .iter()
            .filter_map(|p| std::fs::metadata(p).ok())
            .map(|m| m.len())
            .sum()
    }

    /// The oldest batch to write into the database: an existing draining file, else the
    /// current file renamed to one (new publishes go to a fresh current file). `None` when
    /// nothing is spooled — and then the spool is no longer active.
    pub(crate) fn next_batch(&self) -> Result<Option<(PathBuf, Vec<Entry>)>> {
        let path = match self.draining_files()?.into_iter().next() {
            Some(p) => p,
            None => {
                let mut st = self.state.lock().expect("spool lock");
                if st.len == 0 {
                    st.active = false;
                    return Ok(None);
                }
                let n = std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .map(|d| d.as_nanos())
                    .unwrap_or_default();
                let to = self.dir.join(format!("draining-{n}.jsonl"));
                std::fs::rename(self.dir.join(CURRENT), &to).map_err(io)?;
                st.file = OpenOptions::new()
                    .create(true)
                    .append(true)
                    .open(self.dir.join(CURRENT))
                    .map_err(io)?;
                st.len = 0;
                File::open(&self.dir)
                    .and_then(|d| d.sync_all())
                    .map_err(io)?;
                to
            }
        };
        let reader = BufReader::new(File::open(&path).map_err(io)?);
        let mut entries = Vec::new();
        for line in reader.lines() {
            let line = line.map_err(io)?;
            match serde_json::from_str::<Entry>(&line) {
                Ok(e) => entries.push(e),
                // A torn last line was never acknowledged.
                Err(_) => {
                    tracing::warn!(file = %path.display(), "skipping an incomplete spool line")
                }
            }
        }
        Ok(Some((path, entries)))
    }

    /// The batch is in the database.
    pub(crate) fn finish_batch(&self, path: &Path) -> Result<()> {
        std::fs::remove_file(path).map_err(io)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn msg(i: i64) -> Message {
        Message {
            id: MessageId(format!("msg_{i}")),
            app_id: AppId("app_1".into()),
            event_id: None,
            event_type: "t".into(),
            payload: Some(format!(r#"{{"i": {i}}}"#)),
            channels: None,
            created_at: i,
            retention_ms: None,
            ordering_key: None,
            headers: None,
        }
    }

    #[test]
    fn drains_in_order_across_reopen_and_skips_a_torn_line() {
        let dir = tempfile::tempdir().unwrap();
        let s = Spool::open(dir.path(), 1 << 20).unwrap();
        assert!(!s.active());
        for i in 0..3 {
            s.append(&Entry::new(&msg(i), &None)).unwrap();
        }
        assert!(s.active());
        // A crash mid-write leaves a partial line.
        std::fs::OpenOptions::new()
            .append(true)
            .open(dir.path().join(CURRENT))
            .unwrap()
            .write_all(b"{\"id\":\"msg_")
            .unwrap();
        drop(s);
        let s = Spool::open(dir.path(), 1 << 20).unwrap();
        assert!(s.active(), "reopened with work pending");
        let (path, batch) = s.next_batch().unwrap().unwrap();
        // Accepted while draining: goes to the next batch.
        s.append(&Entry::new(&msg(3), &None)).unwrap();
        let ids: Vec<_> = batch.into_iter().map(|e| e.into_parts().0.id.0).collect();
        assert_eq!(ids, vec!["msg_0", "msg_1", "msg_2"]);
        s.finish_batch(&path).unwrap();
        let (path, batch) = s.next_batch().unwrap().unwrap();
        assert_eq!(batch.len(), 1);
        s.finish_batch(&path).unwrap();
        assert!(s.next_batch().unwrap().is_none());
        assert!(!s.active());
    }

    #[test]
    fn a_full_spool_refuses() {
        let dir = tempfile::tempdir().unwrap();
        let s = Spool::open(dir.path(), 300).unwrap();
        s.append(&Entry::new(&msg(1), &None)).unwrap();
        assert!(matches!(
            s.append(&Entry::new(&msg(2), &None)),
            Err(StoreError::Unavailable(_))
        ));
    }
}
