//! The Raft log, the vote and the commit point in one redb file. Every
//! append is a committed (fsynced) redb transaction before Raft is told it
//! is durable. Entries are sealed with the manager's DEK (`seal`); the
//! vote and the commit point are not secret and stay clear. A file an
//! older berth wrote with clear entries is rewritten sealed when opened.

use std::collections::BTreeSet;
use std::fmt::Debug;
use std::ops::{Bound, RangeBounds};
use std::path::Path;
use std::sync::Arc;

use openraft::storage::{LogFlushed, RaftLogStorage};
use openraft::{
    Entry, LogId, LogState, RaftLogId, RaftLogReader, StorageError, StorageIOError, Vote,
};
use redb::{Database, ReadableDatabase, ReadableTable, TableDefinition};
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::seal::{Sealer, is_sealed};
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
    db: Arc<Database>,
    sealer: Sealer,
}

fn write_err(e: impl std::error::Error + 'static) -> StorageError<NodeId> {
    StorageIOError::write_logs(&e).into()
}

fn read_err(e: impl std::error::Error + 'static) -> StorageError<NodeId> {
    StorageIOError::read_logs(&e).into()
}

impl LogStore {
    pub fn open(path: &Path, sealer: Sealer) -> std::result::Result<LogStore, redb::Error> {
        migrate_clear_entries(path, &sealer)?;
        let db = Database::create(path)?;
        let tx = db.begin_write()?;
        tx.open_table(LOG)?;
        tx.open_table(META)?;
        tx.commit()?;
        Ok(LogStore {
            db: Arc::new(db),
            sealer,
        })
    }

    fn encode(&self, e: &Entry<TypeConfig>) -> Result<Vec<u8>> {
        let bytes = serde_json::to_vec(e).map_err(write_err)?;
        self.sealer.seal(ENTRY, &bytes).map_err(write_err)
    }

    fn decode(&self, v: &[u8]) -> Result<Entry<TypeConfig>> {
        let bytes = self.sealer.open(ENTRY, v).map_err(read_err)?;
        serde_json::from_slice(&bytes).map_err(read_err)
    }

    fn get_meta<T: DeserializeOwned>(&self, key: &str) -> Result<Option<T>> {
        let tx = self.db.begin_read().map_err(read_err)?;
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
        let tx = self.db.begin_write().map_err(write_err)?;
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
        let tx = self.db.begin_write().map_err(write_err)?;
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
        let tx = self.db.begin_read().map_err(read_err)?;
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
        let tx = self.db.begin_read().map_err(read_err)?;
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
        let tx = self.db.begin_write().map_err(write_err)?;
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

/// Rewrites a log an older berth left with clear entries into a new file
/// with every entry sealed, then moves it in place: a fresh file, so no
/// clear entry survives in a freed page. A crash leaves the old file (the
/// next open starts over) or the new one.
fn migrate_clear_entries(path: &Path, sealer: &Sealer) -> std::result::Result<(), redb::Error> {
    let tmp = path.with_extension("redb.sealing");
    let _ = std::fs::remove_file(&tmp);
    if !path.exists() {
        return Ok(());
    }
    let old = Database::create(path)?;
    let rx = old.begin_read()?;
    let clear = match rx.open_table(LOG) {
        Ok(t) => t
            .iter()?
            .any(|r| r.is_ok_and(|(_, v)| !is_sealed(v.value()))),
        Err(redb::TableError::TableDoesNotExist(_)) => false,
        Err(e) => return Err(e.into()),
    };
    if !clear {
        return Ok(());
    }
    let new = Database::create(&tmp)?;
    let tx = new.begin_write()?;
    {
        let mut log = tx.open_table(LOG)?;
        for row in rx.open_table(LOG)?.iter()? {
            let (k, v) = row?;
            let sealed = match is_sealed(v.value()) {
                true => v.value().to_vec(),
                false => sealer.seal(ENTRY, v.value()).map_err(io_err)?,
            };
            log.insert(k.value(), sealed.as_slice())?;
        }
        let mut meta = tx.open_table(META)?;
        if let Ok(t) = rx.open_table(META) {
            for row in t.iter()? {
                let (k, v) = row?;
                meta.insert(k.value(), v.value())?;
            }
        }
    }
    tx.commit()?;
    drop((rx, old, new));
    std::fs::rename(&tmp, path).map_err(io_err)?;
    if let Some(dir) = path.parent() {
        std::fs::File::open(dir)
            .and_then(|d| d.sync_all())
            .map_err(io_err)?;
    }
    Ok(())
}

fn io_err(e: impl std::fmt::Display) -> redb::Error {
    redb::Error::Io(std::io::Error::other(e.to_string()))
}
