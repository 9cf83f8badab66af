//! The database-outage spool: while PostgreSQL is unreachable, publishes and inbound ingestions
//! are appended to a local file and fsync'd before the API answers; when the database returns
//! they are written into it in the order they were accepted (one file, one order for both).
//!
//! The file is JSON lines. A line is only acknowledged after `fdatasync`, so a torn last line
//! (a crash mid-write) was never acknowledged and is skipped. Draining first renames the
//! current file to `draining-<n>.jsonl` (new publishes keep spooling into a fresh file), writes
//! that file's entries into the database one by one — an entry whose message or inbound request
//! ID is already there was written before a crash and is skipped — and deletes it. While
//! anything is spooled, new publishes and ingestions are spooled too, so the database receives
//! them in acceptance order.
//!
//! An ingestion entry is a publish line plus an `inbound` object (the request log row, the
//! dedup key, the ordering check). Lines written before ingestion could be spooled have no
//! `inbound` field and still parse as publishes.
//!
//! An entry the database keeps refusing while it answers (not an outage: the entry itself is
//! bad) would stop the drain for good, and every later entry behind it. After a few tries the
//! drain sets it aside: the line is appended, fsync'd, to `rejected.jsonl` in the spool
//! directory, which is never drained, and the drain goes on. Nothing acknowledged is dropped;
//! the operator decides what to do with that file (`docs/cluster.md`).
//!
//! This module owns the file format and ordering; deciding *when* the database is down is the
//! caller's job.

use parking_lot::Mutex;
use std::fs::{File, OpenOptions};
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use herald_core::ids::{AppId, EndpointId, InboundRequestId, MessageId, SourceId};
use herald_core::model::{InboundRequest, InboundStatus, Message};
use serde::{Deserialize, Serialize};

use crate::{DedupCheck, OrderCheck, Result, StoreError};

const CURRENT: &str = "publish.jsonl";
/// Entries the database refused while answering; never drained.
pub const REJECTED: &str = "rejected.jsonl";

/// One spooled publish, or (with `inbound`) one spooled ingestion.
#[derive(Clone, Serialize, Deserialize)]
pub(crate) struct Entry {
    /// The message's fields, at the top level of the line.
    #[serde(flatten, with = "MessageLine")]
    msg: Message,
    only: Option<String>,
    /// Present for an ingestion; absent on publishes (and on every line written before
    /// ingestion could be spooled).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    inbound: Option<Inbound>,
}

/// A [`Message`] as a spool line spells it: its fields by name, the IDs as their text. Lines
/// written before messages carried headers have none.
#[derive(Serialize, Deserialize)]
#[serde(remote = "Message")]
struct MessageLine {
    id: MessageId,
    app_id: AppId,
    event_id: Option<String>,
    event_type: String,
    payload: Option<String>,
    channels: Option<Vec<String>>,
    created_at: i64,
    retention_ms: Option<i64>,
    ordering_key: Option<String>,
    #[serde(default)]
    headers: Option<std::collections::BTreeMap<String, String>>,
}

/// What `Store::ingest` needs besides the message, kept so the drain can replay it through the
/// same transaction as a live ingestion (dedup and ordering are decided then).
#[derive(Clone, Serialize, Deserialize)]
struct Inbound {
    /// The request log row (its status and `msg_id` are decided by the replay).
    #[serde(flatten, with = "RequestLine")]
    req: InboundRequest,
    /// The dedup key (hex of its SHA-256) and the start of its window, fixed at acceptance.
    dedup_key: Option<String>,
    dedup_since: Option<i64>,
    order_key: Option<String>,
    order_seq: Option<i64>,
    order_gap_timeout_ms: Option<i64>,
}

/// An [`InboundRequest`] as a spool line spells it: without its status and message, which the
/// replay decides (read back as accepted, with none).
#[derive(Serialize, Deserialize)]
#[serde(remote = "InboundRequest")]
struct RequestLine {
    id: InboundRequestId,
    source_id: SourceId,
    app_id: AppId,
    #[serde(skip, default = "accepted")]
    status: InboundStatus,
    reason: Option<String>,
    #[serde(skip)]
    msg_id: Option<MessageId>,
    headers: std::collections::BTreeMap<String, String>,
    body: Option<String>,
    event_type: Option<String>,
    created_at: i64,
}

fn accepted() -> InboundStatus {
    InboundStatus::Accepted
}

/// What a spooled line asks the drain to do.
// One value per line, consumed at once: the size difference between variants costs nothing.
#[allow(clippy::large_enum_variant)]
pub(crate) enum Work {
    Publish(Message, Option<EndpointId>),
    Ingest(
        InboundRequest,
        Option<DedupCheck>,
        Message,
        Option<OrderCheck>,
    ),
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

fn unhex32(s: &str) -> Option<[u8; 32]> {
    if s.len() != 64 || !s.is_ascii() {
        return None;
    }
    let mut out = [0u8; 32];
    for (i, o) in out.iter_mut().enumerate() {
        *o = u8::from_str_radix(&s[2 * i..2 * i + 2], 16).ok()?;
    }
    Some(out)
}

impl Entry {
    pub(crate) fn new(m: &Message, only: &Option<EndpointId>) -> Self {
        Self {
            msg: m.clone(),
            only: only.as_ref().map(|e| e.0.clone()),
            inbound: None,
        }
    }

    /// An ingestion: the message it would publish plus the request, dedup and ordering checks.
    pub(crate) fn ingest(
        req: &InboundRequest,
        dedup: &Option<DedupCheck>,
        m: &Message,
        order: &Option<OrderCheck>,
    ) -> Self {
        let mut e = Self::new(m, &None);
        e.inbound = Some(Inbound {
            req: req.clone(),
            dedup_key: dedup.as_ref().map(|d| hex(&d.key)),
            dedup_since: dedup.as_ref().map(|d| d.since),
            order_key: order.as_ref().map(|o| o.key.clone()),
            order_seq: order.as_ref().map(|o| o.seq),
            order_gap_timeout_ms: order.as_ref().map(|o| o.gap_timeout_ms),
        });
        e
    }

    /// A publish (not an ingestion).
    pub(crate) fn is_publish(&self) -> bool {
        self.inbound.is_none()
    }

    /// The message ID the entry carries (for logs).
    pub(crate) fn id(&self) -> &str {
        &self.msg.id.0
    }

    /// The work this line stands for. A dedup key that does not decode is corruption (a line
    /// is only acknowledged whole), reported rather than replayed without its check.
    pub(crate) fn into_work(self) -> Result<Work> {
        let (msg, only) = (self.msg, self.only.map(EndpointId));
        let Some(i) = self.inbound else {
            return Ok(Work::Publish(msg, only));
        };
        let dedup = match (i.dedup_key, i.dedup_since) {
            (Some(k), Some(since)) => Some(DedupCheck {
                key: unhex32(&k).ok_or_else(|| {
                    StoreError::Corrupt(format!("spooled request {}: bad dedup key", i.req.id.0))
                })?,
                since,
            }),
            _ => None,
        };
        let order = match (i.order_key, i.order_seq, i.order_gap_timeout_ms) {
            (Some(key), Some(seq), Some(gap_timeout_ms)) => Some(OrderCheck {
                key,
                seq,
                gap_timeout_ms,
            }),
            _ => None,
        };
        let req = i.req;
        Ok(Work::Ingest(req, dedup, msg, order))
    }

    #[cfg(test)]
    fn into_parts(self) -> (Message, Option<EndpointId>) {
        match self.into_work().expect("a usable line") {
            Work::Publish(m, only) => (m, only),
            Work::Ingest(_, _, m, _) => (m, None),
        }
    }
}

struct State {
    file: File,
    /// Bytes in the current file.
    len: u64,
    /// Counts the current files (a new one each time the drain takes the current one away).
    generation: u64,
    /// Bytes in draining files (counted here rather than listed from disk on every append).
    draining: u64,
    /// Spooled work not yet in the database (current file or draining files).
    active: bool,
    /// Why the last append was refused (full, or the disk failed), until one succeeds.
    refusing: Option<String>,
}

/// How far the current file is known to be on disk: (generation, bytes).
#[derive(Default)]
struct Synced(u64, u64);

/// The spool directory of one node. Cheap to clone.
#[derive(Clone)]
pub struct Spool {
    dir: PathBuf,
    max_bytes: u64,
    state: Arc<Mutex<State>>,
    /// Held while syncing: appenders that wrote while another one synced find their bytes
    /// already on disk when they get it (group commit), instead of one `fdatasync` each.
    synced: Arc<Mutex<Synced>>,
}

fn io(e: std::io::Error) -> StoreError {
    StoreError::Unavailable(format!("spool: {e}"))
}

/// Cuts a torn last line (a crash mid-write: never acknowledged) off the end of the current
/// file, so the next append starts a line of its own; returns the length kept.
fn cut_torn_tail(path: &Path, file: &File) -> Result<u64> {
    let bytes = std::fs::read(path).map_err(io)?;
    let keep = bytes.iter().rposition(|b| *b == b'\n').map_or(0, |i| i + 1) as u64;
    if keep < bytes.len() as u64 {
        tracing::warn!(file = %path.display(), "cutting an incomplete last spool line");
        file.set_len(keep).map_err(io)?;
        file.sync_data().map_err(io)?;
    }
    Ok(keep)
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
        let len = cut_torn_tail(&path, &file)?;
        let spool = Self {
            dir: dir.to_path_buf(),
            max_bytes,
            state: Arc::new(Mutex::new(State {
                file,
                len,
                generation: 0,
                draining: 0,
                active: false,
                refusing: None,
            })),
            synced: Arc::default(),
        };
        let draining = spool.draining_bytes();
        let pending = len > 0 || !spool.draining_files()?.is_empty();
        let mut st = spool.state.lock();
        st.active = pending;
        st.draining = draining;
        drop(st);
        Ok(spool)
    }

    /// Whether publishes must go to the spool (something is spooled and not yet drained).
    pub(crate) fn active(&self) -> bool {
        self.state.lock().active
    }

    /// Appends one publish and makes it durable. Fails (the API answers 503) when the spool is
    /// full or the disk refuses.
    pub(crate) fn append(&self, e: &Entry) -> Result<()> {
        let mut line = serde_json::to_vec(e).map_err(|e| StoreError::Corrupt(e.to_string()))?;
        line.push(b'\n');
        let (generation, end) = {
            let mut st = self.state.lock();
            let queued = st.len + st.draining;
            if queued + line.len() as u64 > self.max_bytes {
                let why = "the database is unreachable and the local spool is full";
                st.refusing = Some(why.into());
                return Err(StoreError::Unavailable(why.into()));
            }
            if let Err(e) = st.file.write_all(&line) {
                // A partial line would glue itself to the next one: cut it off.
                let len = st.len;
                let _ = st.file.set_len(len);
                st.refusing = Some(format!("spool write failed: {e}"));
                return Err(io(e));
            }
            st.len += line.len() as u64;
            st.active = true;
            st.refusing = None;
            (st.generation, st.len)
        };
        let mut synced = self.synced.lock();
        if synced.0 == generation && synced.1 >= end {
            return Ok(()); // a sync that started after our write covered it
        }
        // Everything written to this file so far is covered by the sync below.
        let (file, upto) = {
            let st = self.state.lock();
            if st.generation != generation {
                // The drain took that file away since, and synced it first.
                return Ok(());
            }
            (st.file.try_clone().map_err(io)?, st.len)
        };
        if let Err(e) = file.sync_data() {
            self.state.lock().refusing = Some(format!("spool sync failed: {e}"));
            return Err(io(e));
        }
        *synced = Synced(generation, upto);
        Ok(())
    }

    /// What health reports about the spool: how full it is and whether it refuses appends.
    pub(crate) fn health(&self) -> crate::SpoolHealth {
        let st = self.state.lock();
        crate::SpoolHealth {
            bytes: st.len + st.draining,
            max_bytes: self.max_bytes,
            refusing: st.refusing.clone(),
        }
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
                let mut st = self.state.lock();
                if st.len == 0 {
                    st.active = false;
                    return Ok(None);
                }
                let n = std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .map(|d| d.as_nanos())
                    .unwrap_or_default();
                let to = self.dir.join(format!("draining-{n}.jsonl"));
                // Appenders still waiting for their sync rely on this one (see `append`).
                st.file.sync_data().map_err(io)?;
                std::fs::rename(self.dir.join(CURRENT), &to).map_err(io)?;
                st.file = OpenOptions::new()
                    .create(true)
                    .append(true)
                    .open(self.dir.join(CURRENT))
                    .map_err(io)?;
                st.draining += st.len;
                st.len = 0;
                st.generation += 1;
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

    /// Keeps an entry the database refuses out of the drain: appended, fsync'd, to
    /// [`REJECTED`].
    pub(crate) fn set_aside(&self, e: &Entry) -> Result<()> {
        let mut line = serde_json::to_vec(e).map_err(|e| StoreError::Corrupt(e.to_string()))?;
        line.push(b'\n');
        let mut f = OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.dir.join(REJECTED))
            .map_err(io)?;
        f.write_all(&line).map_err(io)?;
        f.sync_data().map_err(io)
    }

    /// The batch is in the database.
    pub(crate) fn finish_batch(&self, path: &Path) -> Result<()> {
        let n = std::fs::metadata(path).map_err(io)?.len();
        std::fs::remove_file(path).map_err(io)?;
        let mut st = self.state.lock();
        st.draining = st.draining.saturating_sub(n);
        Ok(())
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
        // Accepted after the restart: a line of its own, not glued to the torn one.
        s.append(&Entry::new(&msg(10), &None)).unwrap();
        let (path, batch) = s.next_batch().unwrap().unwrap();
        // Accepted while draining: goes to the next batch.
        s.append(&Entry::new(&msg(3), &None)).unwrap();
        let ids: Vec<_> = batch.into_iter().map(|e| e.into_parts().0.id.0).collect();
        assert_eq!(ids, vec!["msg_0", "msg_1", "msg_2", "msg_10"]);
        s.finish_batch(&path).unwrap();
        let (path, batch) = s.next_batch().unwrap().unwrap();
        assert_eq!(batch.len(), 1);
        s.finish_batch(&path).unwrap();
        assert!(s.next_batch().unwrap().is_none());
        assert!(!s.active());
    }

    #[test]
    fn concurrent_appends_share_syncs_and_none_is_lost_across_drains() {
        let dir = tempfile::tempdir().unwrap();
        let s = Spool::open(dir.path(), 1 << 24).unwrap();
        let writers: Vec<_> = (0..8)
            .map(|w| {
                let s = s.clone();
                std::thread::spawn(move || {
                    for i in 0..200 {
                        s.append(&Entry::new(&msg(w * 1_000 + i), &None)).unwrap();
                    }
                })
            })
            .collect();
        // The drain takes files away while appends are in flight.
        let mut seen = Vec::new();
        let mut take = |s: &Spool| {
            while let Some((path, batch)) = s.next_batch().unwrap() {
                seen.extend(batch.into_iter().map(|e| e.id().to_string()));
                s.finish_batch(&path).unwrap();
            }
        };
        while writers.iter().any(|w| !w.is_finished()) {
            take(&s);
            std::thread::sleep(std::time::Duration::from_millis(2));
        }
        for w in writers {
            w.join().unwrap();
        }
        take(&s);
        let mut want: Vec<_> = (0..8)
            .flat_map(|w| (0..200).map(move |i| format!("msg_{}", w * 1_000 + i)))
            .collect();
        want.sort();
        let mut got = seen.clone();
        got.sort();
        assert_eq!(got, want, "each append drained exactly once");
        // Each writer's own entries stay in its order.
        for w in 0..8 {
            let mine: Vec<_> = seen
                .iter()
                .filter_map(|id| id.strip_prefix("msg_")?.parse::<i64>().ok())
                .filter(|n| n / 1_000 == w)
                .collect();
            assert!(mine.windows(2).all(|p| p[0] < p[1]));
        }
    }

    #[test]
    fn a_line_without_inbound_is_a_publish_and_an_ingestion_round_trips() {
        // A line as spooled before ingestion could be spooled.
        let old = r#"{"id":"msg_1","app_id":"app_1","event_id":null,"event_type":"t","payload":"{}","channels":null,"created_at":5,"retention_ms":null,"ordering_key":null,"headers":null,"only":null}"#;
        let e: Entry = serde_json::from_str(old).unwrap();
        assert!(matches!(e.into_work().unwrap(), Work::Publish(m, None) if m.id.0 == "msg_1"));
        // A publish is written exactly as before (no `inbound` key).
        let line = serde_json::to_string(&Entry::new(&msg(1), &None)).unwrap();
        assert!(!line.contains("inbound"), "{line}");

        let req = InboundRequest {
            id: InboundRequestId("inreq_1".into()),
            source_id: SourceId("src_1".into()),
            app_id: AppId("app_1".into()),
            status: InboundStatus::Accepted,
            reason: Some("why".into()),
            msg_id: None,
            headers: [("x-github-delivery".to_string(), "d1".to_string())].into(),
            body: None,
            event_type: Some("push".into()),
            created_at: 7,
        };
        let dedup = Some(DedupCheck {
            key: [0xab; 32],
            since: 3,
        });
        let order = Some(OrderCheck {
            key: "k".into(),
            seq: 9,
            gap_timeout_ms: 1000,
        });
        let line = serde_json::to_string(&Entry::ingest(&req, &dedup, &msg(2), &order)).unwrap();
        let back: Entry = serde_json::from_str(&line).unwrap();
        match back.into_work().unwrap() {
            Work::Ingest(r, d, m, o) => {
                assert_eq!((r, d, m.id.0, o), (req, dedup, "msg_2".to_string(), order));
            }
            Work::Publish(..) => panic!("an ingestion came back as a publish"),
        }
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
        // Lines being drained still count, across a reopen too, until the drain finishes.
        let (path, _) = s.next_batch().unwrap().unwrap();
        assert!(s.append(&Entry::new(&msg(3), &None)).is_err());
        let s = Spool::open(dir.path(), 300).unwrap();
        assert!(s.append(&Entry::new(&msg(3), &None)).is_err());
        s.finish_batch(&path).unwrap();
        s.append(&Entry::new(&msg(3), &None)).unwrap();
    }
}
