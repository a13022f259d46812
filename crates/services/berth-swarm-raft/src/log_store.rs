//! The Raft log, the vote and the commit point in one redb file. Every
//! append is a committed (fsynced) redb transaction before Raft is told it
//! is durable. Entries are sealed with the manager's DEK (`seal`); the
//! vote and the commit point are not secret and stay clear. A file an
//! older berth wrote with clear entries is rewritten sealed when opened,
//! and a DEK rotation rewrites the whole file with the new key (`reseal`).

use std::collections::BTreeSet;
use std::fmt::Debug;
use std::ops::{Bound, RangeBounds};
use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock, RwLockReadGuard};

use openraft::storage::{LogFlushed, RaftLogStorage};
use openraft::{
    Entry, LogId, LogState, RaftLogId, RaftLogReader, StorageError, StorageIOError, Vote,
};
use redb::{Database, ReadableDatabase, ReadableTable, TableDefinition};
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::seal::{Deks, is_sealed};
use crate::{NodeId, TypeConfig};

const LOG: TableDefinition<u64, &[u8]> = TableDefinition::new("log");
const META: TableDefinition<&str, &[u8]> = TableDefinition::new("meta");
const VOTE: &str = "vote";
const COMMITTED: &str = "committed";
const PURGED: &str = "last_purged";
/// members a forced new cluster left behind (`force`)
const REMOVED: &str = "removed";
/// the associated data of a sealed entry
const ENTRY: &str = "raft-entry";

type Result<T> = std::result::Result<T, StorageError<NodeId>>;

#[derive(Clone)]
pub struct LogStore {
    /// replaced whole by `reseal`; every transaction holds the read lock
    /// to its end, so a rewrite never misses a record sealed with the key
    /// it replaces
    db: Arc<RwLock<Database>>,
    path: PathBuf,
    deks: Deks,
}

fn write_err(e: impl std::error::Error + 'static) -> StorageError<NodeId> {
    StorageIOError::write_logs(&e).into()
}

fn read_err(e: impl std::error::Error + 'static) -> StorageError<NodeId> {
    StorageIOError::read_logs(&e).into()
}

impl LogStore {
    /// Opens the log once a stopped Raft of this process has let go of
    /// it: its last handles drop a moment after its shutdown returns (a
    /// role change, a forced new cluster, a restart in-process).
    pub async fn open_when_free(path: &Path, deks: &Deks) -> std::result::Result<LogStore, String> {
        for _ in 0..50 {
            match LogStore::open(path, deks.clone()) {
                Err(redb::Error::DatabaseAlreadyOpen) => {
                    tokio::time::sleep(std::time::Duration::from_millis(100)).await
                }
                other => return other.map_err(|e| format!("opening the raft log: {e}")),
            }
        }
        Err("the raft log is still in use: is its manager still running?".into())
    }

    pub fn open(path: &Path, deks: Deks) -> std::result::Result<LogStore, redb::Error> {
        let _ = std::fs::remove_file(rewrite_path(path));
        let mut db = Database::create(path)?;
        let tx = db.begin_write()?;
        tx.open_table(LOG)?;
        tx.open_table(META)?;
        tx.commit()?;
        if has_clear_entries(&db)? {
            db = rewrite(path, &db, &deks)?;
        }
        Ok(LogStore {
            db: Arc::new(RwLock::new(db)),
            path: path.to_path_buf(),
            deks,
        })
    }

    fn db(&self) -> RwLockReadGuard<'_, Database> {
        self.db.read().unwrap_or_else(|e| e.into_inner())
    }

    /// Lets go of the file once this manager's Raft has stopped: a task
    /// still holding the node (a worker's stream on a connection the
    /// server has not closed yet) must not keep a forced new cluster or a
    /// role change from opening the log again. Later reads and writes
    /// here see an empty log in memory.
    pub fn close(&self) {
        let empty = Database::builder().create_with_backend(redb::backends::InMemoryBackend::new());
        match empty {
            Ok(empty) => *self.db.write().unwrap_or_else(|e| e.into_inner()) = empty,
            Err(e) => tracing::warn!("closing the raft log: {e}"),
        }
    }

    /// Rewrites every entry sealed with the DEK that seals now (the
    /// pending one during a rotation) into a new file that replaces this
    /// one: after it, no record of the old DEK is left, not even in a
    /// freed page. Appends wait meanwhile.
    pub fn reseal(&self) -> std::result::Result<(), redb::Error> {
        let mut db = self.db.write().unwrap_or_else(|e| e.into_inner());
        *db = rewrite(&self.path, &db, &self.deks)?;
        Ok(())
    }

    fn encode(&self, e: &Entry<TypeConfig>) -> Result<Vec<u8>> {
        let bytes = serde_json::to_vec(e).map_err(write_err)?;
        self.deks.seal(ENTRY, &bytes).map_err(write_err)
    }

    fn decode(&self, v: &[u8]) -> Result<Entry<TypeConfig>> {
        let bytes = self.deks.open(ENTRY, v).map_err(read_err)?;
        serde_json::from_slice(&bytes).map_err(read_err)
    }

    fn get_meta<T: DeserializeOwned>(&self, key: &str) -> Result<Option<T>> {
        let db = self.db();
        let tx = db.begin_read().map_err(read_err)?;
        let t = tx.open_table(META).map_err(read_err)?;
        match t.get(key).map_err(read_err)? {
            Some(v) => serde_json::from_slice(v.value())
                .map(Some)
                .map_err(read_err),
            None => Ok(None),
        }
    }

    fn put_meta<T: Serialize>(&self, key: &str, value: &T) -> Result<()> {
        let bytes = serde_json::to_vec(value).map_err(write_err)?;
        let db = self.db();
        let tx = db.begin_write().map_err(write_err)?;
        tx.open_table(META)
            .map_err(write_err)?
            .insert(key, bytes.as_slice())
            .map_err(write_err)?;
        tx.commit().map_err(write_err)
    }

    /// The members whose messages this manager refuses.
    pub fn removed(&self) -> Result<BTreeSet<NodeId>> {
        Ok(self.get_meta(REMOVED)?.unwrap_or_default())
    }

    pub fn add_removed(&self, ids: &BTreeSet<NodeId>) -> Result<()> {
        let mut all = self.removed()?;
        all.extend(ids);
        self.put_meta(REMOVED, &all)
    }

    /// Removes the entries with indexes in `range`.
    fn remove_range(
        &self,
        range: impl RangeBounds<u64>,
        purged: Option<&LogId<NodeId>>,
    ) -> Result<()> {
        let db = self.db();
        let tx = db.begin_write().map_err(write_err)?;
        {
            let mut t = tx.open_table(LOG).map_err(write_err)?;
            let keys: Vec<u64> = t
                .range(range)
                .map_err(write_err)?
                .filter_map(|r| r.ok().map(|(k, _)| k.value()))
                .collect();
            for k in keys {
                t.remove(k).map_err(write_err)?;
            }
            if let Some(p) = purged {
                let bytes = serde_json::to_vec(p).map_err(write_err)?;
                tx.open_table(META)
                    .map_err(write_err)?
                    .insert(PURGED, bytes.as_slice())
                    .map_err(write_err)?;
            }
        }
        tx.commit().map_err(write_err)
    }
}

impl RaftLogReader<TypeConfig> for LogStore {
    async fn try_get_log_entries<RB: RangeBounds<u64> + Clone + Debug + Send>(
        &mut self,
        range: RB,
    ) -> Result<Vec<Entry<TypeConfig>>> {
        let db = self.db();
        let tx = db.begin_read().map_err(read_err)?;
        let t = tx.open_table(LOG).map_err(read_err)?;
        let bounds = (
            clone_bound(range.start_bound()),
            clone_bound(range.end_bound()),
        );
        let mut out = Vec::new();
        for row in t.range::<u64>(bounds).map_err(read_err)? {
            let (_, v) = row.map_err(read_err)?;
            out.push(self.decode(v.value())?);
        }
        Ok(out)
    }
}

fn clone_bound(b: Bound<&u64>) -> Bound<u64> {
    match b {
        Bound::Included(x) => Bound::Included(*x),
        Bound::Excluded(x) => Bound::Excluded(*x),
        Bound::Unbounded => Bound::Unbounded,
    }
}

impl RaftLogStorage<TypeConfig> for LogStore {
    type LogReader = Self;

    async fn get_log_state(&mut self) -> Result<LogState<TypeConfig>> {
        let purged: Option<LogId<NodeId>> = self.get_meta(PURGED)?;
        let db = self.db();
        let tx = db.begin_read().map_err(read_err)?;
        let t = tx.open_table(LOG).map_err(read_err)?;
        let last = match t.last().map_err(read_err)? {
            Some((_, v)) => {
                let e = self.decode(v.value())?;
                Some(*e.get_log_id())
            }
            None => purged,
        };
        Ok(LogState {
            last_purged_log_id: purged,
            last_log_id: last,
        })
    }

    async fn get_log_reader(&mut self) -> Self::LogReader {
        self.clone()
    }

    async fn save_vote(&mut self, vote: &Vote<NodeId>) -> Result<()> {
        self.put_meta(VOTE, vote)
    }

    async fn read_vote(&mut self) -> Result<Option<Vote<NodeId>>> {
        self.get_meta(VOTE)
    }

    async fn save_committed(&mut self, committed: Option<LogId<NodeId>>) -> Result<()> {
        self.put_meta(COMMITTED, &committed)
    }

    async fn read_committed(&mut self) -> Result<Option<LogId<NodeId>>> {
        Ok(self.get_meta::<Option<LogId<NodeId>>>(COMMITTED)?.flatten())
    }

    async fn append<I>(&mut self, entries: I, callback: LogFlushed<TypeConfig>) -> Result<()>
    where
        I: IntoIterator<Item = Entry<TypeConfig>> + Send,
        I::IntoIter: Send,
    {
        // entries are sealed under the read lock: a rotation's rewrite
        // waits for them, then reseals them too
        let db = self.db();
        let tx = db.begin_write().map_err(write_err)?;
        {
            let mut t = tx.open_table(LOG).map_err(write_err)?;
            for e in entries {
                let bytes = self.encode(&e)?;
                t.insert(e.get_log_id().index, bytes.as_slice())
                    .map_err(write_err)?;
            }
        }
        tx.commit().map_err(write_err)?;
        callback.log_io_completed(Ok(()));
        Ok(())
    }

    async fn truncate(&mut self, log_id: LogId<NodeId>) -> Result<()> {
        self.remove_range(log_id.index.., None)
    }

    async fn purge(&mut self, log_id: LogId<NodeId>) -> Result<()> {
        self.remove_range(..=log_id.index, Some(&log_id))
    }
}

fn rewrite_path(path: &Path) -> PathBuf {
    path.with_extension("redb.sealing")
}

/// Whether an older berth left clear entries in the log.
fn has_clear_entries(db: &Database) -> std::result::Result<bool, redb::Error> {
    let rx = db.begin_read()?;
    let t = rx.open_table(LOG)?;
    for row in t.iter()? {
        let (_, v) = row?;
        if !is_sealed(v.value()) {
            return Ok(true);
        }
    }
    Ok(false)
}

/// Copies `old` (the file at `path`) into a new file with every entry
/// sealed with the DEK that seals now (a clear entry, an older berth's,
/// is sealed as it is), then moves it in place: a fresh file, so no
/// record of a replaced key or in clear survives in a freed page. A crash
/// leaves the old file (the next open drops the half-written one) or the
/// new one; both open with the keys on disk. Returns the new database.
fn rewrite(path: &Path, old: &Database, deks: &Deks) -> std::result::Result<Database, redb::Error> {
    let tmp = rewrite_path(path);
    let _ = std::fs::remove_file(&tmp);
    let rx = old.begin_read()?;
    let new = Database::create(&tmp)?;
    let tx = new.begin_write()?;
    {
        let mut log = tx.open_table(LOG)?;
        for row in rx.open_table(LOG)?.iter()? {
            let (k, v) = row?;
            let plain = match is_sealed(v.value()) {
                true => deks.open(ENTRY, v.value()).map_err(io_err)?,
                false => v.value().to_vec(),
            };
            let sealed = deks.seal(ENTRY, &plain).map_err(io_err)?;
            log.insert(k.value(), sealed.as_slice())?;
        }
        let mut meta = tx.open_table(META)?;
        for row in rx.open_table(META)?.iter()? {
            let (k, v) = row?;
            meta.insert(k.value(), v.value())?;
        }
    }
    tx.commit()?;
    drop(rx);
    std::fs::rename(&tmp, path).map_err(io_err)?;
    if let Some(dir) = path.parent() {
        std::fs::File::open(dir)
            .and_then(|d| d.sync_all())
            .map_err(io_err)?;
    }
    Ok(new)
}

/// Whether `dir` holds Raft data sealed with some DEK: a sealed entry or
/// a sealed snapshot. A manager that lost its DEK must not make a new one
/// over such data, which would leave it unreadable.
pub fn holds_sealed_data(dir: &Path) -> std::result::Result<bool, String> {
    let snapshot = dir.join(crate::state_machine::SNAPSHOT_FILE);
    match std::fs::read(&snapshot) {
        Ok(bytes) if is_sealed(&bytes) => return Ok(true),
        Ok(_) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(format!("reading {}: {e}", snapshot.display())),
    }
    let log = dir.join(LOG_FILE);
    if !log.exists() {
        return Ok(false);
    }
    let bad = |e: &dyn std::fmt::Display| format!("reading {}: {e}", log.display());
    let db = Database::open(&log).map_err(|e| bad(&e))?;
    let rx = db.begin_read().map_err(|e| bad(&e))?;
    let t = match rx.open_table(LOG) {
        Ok(t) => t,
        Err(redb::TableError::TableDoesNotExist(_)) => return Ok(false),
        Err(e) => return Err(bad(&e)),
    };
    for row in t.iter().map_err(|e| bad(&e))? {
        let (_, v) = row.map_err(|e| bad(&e))?;
        if is_sealed(v.value()) {
            return Ok(true);
        }
    }
    Ok(false)
}

/// The log's file name in a manager's Raft directory.
pub const LOG_FILE: &str = "raft.redb";

fn io_err(e: impl std::fmt::Display) -> redb::Error {
    redb::Error::Io(std::io::Error::other(e.to_string()))
}
