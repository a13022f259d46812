//! The state machine: the swarm store in memory, its last snapshot on disk.
//! A snapshot is written (to a temporary file, synced, renamed) before
//! Raft may purge the log it covers, so the store can always be rebuilt
//! from the snapshot and the log after it. The file is sealed with the
//! manager's DEK; a clear one an older berth wrote is sealed when opened,
//! and a DEK rotation rewrites it with the new key (`reseal`).

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

use crate::seal::{Deks, is_sealed};
use crate::{Applied, Member, NodeId, TypeConfig};

/// the associated data of a sealed snapshot
const SNAPSHOT: &str = "raft-snapshot";
/// the snapshot's file name in a manager's Raft directory
pub const SNAPSHOT_FILE: &str = "snapshot.json";

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
    deks: Deks,
    /// held by every write of the snapshot file, so a rotation's rewrite
    /// never puts back an older snapshot over a newer one
    file_lock: Arc<Mutex<()>>,
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
    pub fn open(dir: &Path, store: Arc<WatchedStore>, deks: Deks) -> std::io::Result<StateMachine> {
        let snapshot_path = dir.join(SNAPSHOT_FILE);
        let mut applied = AppliedState {
            last_applied: None,
            membership: StoredMembership::default(),
        };
        let _ = std::fs::remove_file(snapshot_path.with_extension("json.tmp"));
        if let Some(file) = read_snapshot(&snapshot_path, &deks)? {
            applied.last_applied = file.meta.last_log_id;
            applied.membership = file.meta.last_membership.clone();
            store.restore(file.store);
        }
        Ok(StateMachine {
            store,
            applied: Arc::new(Mutex::new(applied)),
            snapshot_path,
            deks,
            file_lock: Arc::default(),
        })
    }

    /// Rewrites the snapshot file sealed with the DEK that seals now (the
    /// pending one during a rotation).
    pub fn reseal(&self) -> std::io::Result<()> {
        let _file = self.file_lock();
        let bytes = match std::fs::read(&self.snapshot_path) {
            Ok(bytes) => bytes,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
            Err(e) => return Err(e),
        };
        let file = open_snapshot(&self.snapshot_path, &bytes, &self.deks)?;
        write_snapshot(&self.snapshot_path, &file, &self.deks)
    }

    fn file_lock(&self) -> std::sync::MutexGuard<'_, ()> {
        self.file_lock.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, AppliedState> {
        self.applied.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// The snapshot on disk; a clear one (an older berth's) is sealed in
/// place as it is read.
fn read_snapshot(path: &Path, deks: &Deks) -> std::io::Result<Option<SnapshotFile>> {
    let bytes = match std::fs::read(path) {
        Ok(bytes) => bytes,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(e),
    };
    let file = open_snapshot(path, &bytes, deks)?;
    if !is_sealed(&bytes) {
        write_snapshot(path, &file, deks)?;
    }
    Ok(Some(file))
}

/// The snapshot in `bytes`: sealed, or clear as an older berth wrote it.
fn open_snapshot(path: &Path, bytes: &[u8], deks: &Deks) -> std::io::Result<SnapshotFile> {
    let bad = |e: &dyn std::fmt::Display| {
        std::io::Error::other(format!("reading {}: {e}", path.display()))
    };
    let plain = match is_sealed(bytes) {
        true => deks.open(SNAPSHOT, bytes).map_err(|e| bad(&e))?,
        false => bytes.to_vec(),
    };
    serde_json::from_slice(&plain).map_err(|e| bad(&e))
}

/// Writes the snapshot, sealed, so that a crash leaves the old one or the
/// new one.
fn write_snapshot(path: &Path, file: &SnapshotFile, deks: &Deks) -> std::io::Result<()> {
    let tmp = path.with_extension("json.tmp");
    let plain = serde_json::to_vec(file).map_err(std::io::Error::other)?;
    let bytes = deks.seal(SNAPSHOT, &plain).map_err(std::io::Error::other)?;
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
        {
            let _file = self.file_lock();
            write_snapshot(&self.snapshot_path, &file, &self.deks).map_err(snap_err)?;
        }
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
        {
            let _file = self.file_lock();
            write_snapshot(&self.snapshot_path, &file, &self.deks).map_err(snap_err)?;
        }
        let mut a = self.lock();
        self.store.restore(store);
        tracing::info!(
            "installed the leader's snapshot, up to entry {}",
            meta.last_log_id.map_or(0, |l| l.index)
        );
        a.last_applied = meta.last_log_id;
        a.membership = meta.last_membership.clone();
        Ok(())
    }

    async fn get_current_snapshot(&mut self) -> Result<Option<Snapshot<TypeConfig>>> {
        let read = {
            let _file = self.file_lock();
            read_snapshot(&self.snapshot_path, &self.deks)
        };
        let Some(file) = read.map_err(snap_err)? else {
            return Ok(None);
        };
        let data = serde_json::to_vec(&file.store).map_err(snap_err)?;
        Ok(Some(Snapshot {
            meta: file.meta,
            snapshot: Box::new(Cursor::new(data)),
        }))
    }
}
