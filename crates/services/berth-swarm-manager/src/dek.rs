//! The manager's Raft DEK over its life, as swarmkit's `RaftDEKManager`
//! keeps it: made once (never over Raft data sealed with a lost one),
//! held in memory by a new manager until it knows the cluster's unlock
//! key (so it is never written in clear under autolock), and rotated when
//! autolock turns on or the unlock key changes, so a copy of an older key
//! file no longer opens the Raft data. A rotation writes the new DEK as
//! pending beside the current one, rewrites the log and the snapshot with
//! it while Raft runs, then makes it current; a crash at any step leaves
//! a key file whose DEKs open the data, and the next start finishes it.

use std::time::Duration;

use berth_swarm_raft::RaftNode;
use berth_swarm_raft::seal::{Deks, random_key};

use crate::active::Active;
use crate::keys::{self, KeyState};
use crate::state::{Credentials, Paths};
use crate::{Swarm, SwarmError};

/// How long a new manager waits to learn the cluster's unlock key.
const LEARN_KEK_WITHIN: Duration = Duration::from_secs(10);

impl Swarm {
    /// This manager's DEKs; a new DEK when it has none (a new manager, or
    /// a data directory from a berth that did not encrypt), written beside
    /// its key before any Raft data is sealed with it, unless it is held.
    pub(crate) fn ensure_deks(
        &self,
        paths: &Paths,
        creds: &Credentials,
    ) -> Result<Deks, SwarmError> {
        let mut keys = keys::lock(&self.keys);
        if let Some(dek) = keys.dek {
            return Ok(Deks::new(&dek, keys.pending_dek.as_ref()));
        }
        let raft = paths.raft();
        let sealed = berth_swarm_raft::holds_sealed_data(&raft)
            .map_err(|e| SwarmError::internal("opening raft", e))?;
        if sealed {
            return Err(SwarmError::Internal(format!(
                "the raft data in {} is encrypted, but {} holds no raft-dek to decrypt it: refusing to make a new data key",
                raft.display(),
                paths.key_file().display()
            )));
        }
        let dek = random_key().map_err(|e| SwarmError::internal("making a data key", e))?;
        keys.dek = Some(dek);
        if let Err(e) = paths.save_key(&creds.key, &keys, true) {
            keys.dek = None;
            return Err(SwarmError::internal("saving the data key", e));
        }
        Ok(Deks::new(&dek, None))
    }
}

/// A manager that joined or was promoted adopts the cluster's unlock key
/// once its store has caught up with the leader (an older view of the
/// cluster could still show autolock off), so its key file is first
/// written sealed, or in clear only when the cluster has no unlock key.
pub(crate) async fn learn_kek(node: &Active) -> Result<(), SwarmError> {
    if !node.is_manager() {
        keys::lock(&node.keys).held = false;
        return Ok(());
    }
    let deadline = tokio::time::Instant::now() + LEARN_KEK_WITHIN;
    while keys::lock(&node.keys).held {
        if node.sync_reads().await.is_ok() {
            let store = node.store()?;
            if let Some((version, key)) =
                store.read(|s| s.cluster().map(|c| (c.meta.version, c.unlock_key.clone())))
            {
                let mut keys = keys::lock(&node.keys);
                keys.kek = Some(key).filter(|k| !k.is_empty());
                keys.kek_version = version;
                keys.held = false;
                return Ok(());
            }
        }
        if tokio::time::Instant::now() > deadline {
            return Err(SwarmError::Internal(
                "the cluster's unlock key could not be read from its store".into(),
            ));
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    Ok(())
}

/// Seals the key file with a new unlock key and rotates the DEK with it.
/// The first write carries the new KEK, the current DEK and the new one
/// as pending, so from then on only the new KEK opens the file.
pub(crate) fn rotate(
    node: &Active,
    keys: &mut KeyState,
    kek: Vec<u8>,
    version: u64,
) -> Result<(), String> {
    let raft = node.raft().map_err(|e| e.to_string())?;
    let next = random_key().map_err(|e| e.to_string())?;
    let before = keys.clone();
    keys.kek = Some(kek);
    keys.kek_version = version;
    keys.pending_dek = Some(next);
    let creds = node.creds();
    if let Err(e) = node.paths.save_key(&creds.key, keys, true) {
        *keys = before;
        return Err(format!("writing the pending data key: {e}"));
    }
    finish(raft, &node.paths, &creds, keys)
}

/// Ends a rotation whose pending DEK is on disk: every Raft record
/// resealed with it, then it becomes the only DEK. Safe to repeat.
pub(crate) fn finish(
    raft: &RaftNode,
    paths: &Paths,
    creds: &Credentials,
    keys: &mut KeyState,
) -> Result<(), String> {
    let Some(next) = keys.pending_dek else {
        return Ok(());
    };
    raft.deks().set_pending(&next);
    raft.reseal()?;
    let before = keys.clone();
    keys.dek = Some(next);
    keys.pending_dek = None;
    if let Err(e) = paths.save_key(&creds.key, keys, true) {
        *keys = before;
        return Err(format!("writing the new data key: {e}"));
    }
    raft.deks().promote();
    tracing::info!("the raft data key was rotated");
    Ok(())
}
