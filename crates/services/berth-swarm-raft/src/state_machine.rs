//! The state machine: the swarm store in memory, its last snapshot on disk.
//! A snapshot is written (to a temporary file, synced, renamed) before
//! Raft may purge the log it covers, so the store can always be rebuilt
//! from the snapshot and the log after it.

use std::io::{Cursor, Write};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use berth_swarm_store::{Store, WatchedStore};
use openraft::storage::{RaftStateMachine, Snapshot};
use openraft::{
    Entry, EntryPayload, LogId, RaftSnapshotBuilder, SnapshotMeta, StorageError, StorageIOError,
    StoredMembership,
};
use serde::{Deserialize, Serialize};

use crate::{Applied, Member, NodeId, TypeConfig};

type Result<T> = std::result::Result<T, StorageError<NodeId>>;

/// The snapshot file: what it covers and the store at that point.
#[derive(Serialize, Deserialize)]
struct SnapshotFile {
    meta: SnapshotMeta<NodeId, Member>,
    store: Store,
}

struct AppliedState {
    last_applied: Option<LogId<NodeId>>,
    membership: StoredMembership<NodeId, Member>,
}

#[derive(Clone)]
pub struct StateMachine {
    store: Arc<WatchedStore>,
    applied: Arc<Mutex<AppliedState>>,
    snapshot_path: PathBuf,
}

fn sm_err(e: impl std::error::Error + 'static) -> StorageError<NodeId> {
    StorageIOError::write_state_machine(&e).into()
}

fn snap_err(e: impl std::error::Error + 'static) -> StorageError<NodeId> {
    StorageIOError::write_snapshot(None, &e).into()
}

impl StateMachine {
    /// The state machine of `dir`: the last snapshot's store, or an empty
    /// one.
    pub fn open(dir: &Path, store: Arc<WatchedStore>) -> std::io::Result<StateMachine> {
        let snapshot_path = dir.join("snapshot.json");
        let mut applied = AppliedState {
            last_applied: None,
            membership: StoredMembership::default(),
        };
        if let Some(file) = read_snapshot(&snapshot_path)? {
            applied.last_applied = file.meta.last_log_id;
            applied.membership = file.meta.last_membership.clone();
            store.restore(file.store);
        }
        Ok(StateMachine {
            store,
            applied: Arc::new(Mutex::new(applied)),
            snapshot_path,
        })
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, AppliedState> {
        self.applied.lock().unwrap_or_else(|e| e.into_inner())
    }
}

fn read_snapshot(path: &Path) -> std::io::Result<Option<SnapshotFile>> {
    match std::fs::read(path) {
        Ok(bytes) => serde_json::from_slice(&bytes)
            .map(Some)
            .map_err(|e| std::io::Error::other(format!("reading {}: {e}", path.display()))),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e),
    }
}

/// Writes the snapshot so that a crash leaves the old one or the new one.
fn write_snapshot(path: &Path, file: &SnapshotFile) -> std::io::Result<()> {
    let tmp = path.with_extension("json.tmp");
    let bytes = serde_json::to_vec(file).map_err(std::io::Error::other)?;
    let mut f = std::fs::File::create(&tmp)?;
    f.write_all(&bytes)?;
    f.sync_all()?;
    std::fs::rename(&tmp, path)?;
    if let Some(dir) = path.parent() {
        std::fs::File::open(dir)?.sync_all()?;
    }
    Ok(())
}

impl RaftSnapshotBuilder<TypeConfig> for StateMachine {
    async fn build_snapshot(&mut self) -> Result<Snapshot<TypeConfig>> {
        // the store and what it has applied are read under one lock, so
        // the snapshot covers exactly what it says
        let (meta, store) = {
            let applied = self.lock();
            let store = self.store.read(Store::clone);
            let id = match applied.last_applied {
                Some(l) => format!("{}-{}", l.leader_id, l.index),
                None => "empty".into(),
            };
            let meta = SnapshotMeta {
                last_log_id: applied.last_applied,
                last_membership: applied.membership.clone(),
                snapshot_id: id,
            };
            (meta, store)
        };
        let data = serde_json::to_vec(&store).map_err(snap_err)?;
        let file = SnapshotFile {
            meta: meta.clone(),
            store,
        };
        write_snapshot(&self.snapshot_path, &file).map_err(snap_err)?;
        Ok(Snapshot {
            meta,
            snapshot: Box::new(Cursor::new(data)),
        })
    }
}

impl RaftStateMachine<TypeConfig> for StateMachine {
    type SnapshotBuilder = Self;

    async fn applied_state(
        &mut self,
    ) -> Result<(Option<LogId<NodeId>>, StoredMembership<NodeId, Member>)> {
        let a = self.lock();
        Ok((a.last_applied, a.membership.clone()))
    }

    async fn apply<I>(&mut self, entries: I) -> Result<Vec<Applied>>
    where
        I: IntoIterator<Item = Entry<TypeConfig>> + Send,
        I::IntoIter: Send,
    {
        let mut out = Vec::new();
        let mut a = self.lock();
        for entry in entries {
            a.last_applied = Some(entry.log_id);
            let result = match entry.payload {
                EntryPayload::Normal(p) => self.store.apply(&p.actions, entry.log_id.index, p.at),
                EntryPayload::Membership(m) => {
                    a.membership = StoredMembership::new(Some(entry.log_id), m);
                    Ok(())
                }
                EntryPayload::Blank => Ok(()),
            };
            out.push(Applied { result });
        }
        Ok(out)
    }

    async fn get_snapshot_builder(&mut self) -> Self::SnapshotBuilder {
        self.clone()
    }

    async fn begin_receiving_snapshot(&mut self) -> Result<Box<Cursor<Vec<u8>>>> {
        Ok(Box::new(Cursor::new(Vec::new())))
    }

    async fn install_snapshot(
        &mut self,
        meta: &SnapshotMeta<NodeId, Member>,
        snapshot: Box<Cursor<Vec<u8>>>,
    ) -> Result<()> {
        let store: Store = serde_json::from_slice(snapshot.get_ref()).map_err(sm_err)?;
        let file = SnapshotFile {
            meta: meta.clone(),
            store: store.clone(),
        };
        write_snapshot(&self.snapshot_path, &file).map_err(snap_err)?;
        let mut a = self.lock();
        self.store.restore(store);
        a.last_applied = meta.last_log_id;
        a.membership = meta.last_membership.clone();
        Ok(())
    }

    async fn get_current_snapshot(&mut self) -> Result<Option<Snapshot<TypeConfig>>> {
        let Some(file) = read_snapshot(&self.snapshot_path).map_err(snap_err)? else {
            return Ok(None);
        };
        let data = serde_json::to_vec(&file.store).map_err(snap_err)?;
        Ok(Some(Snapshot {
            meta: file.meta,
            snapshot: Box::new(Cursor::new(data)),
        }))
    }
}
