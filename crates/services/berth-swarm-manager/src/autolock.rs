//! Autolock (swarmkit's manager unlock key): the cluster object carries
//! the unlock key (KEK) while `autolock_managers` is on; each manager
//! seals its key file, DEK included, with it. A manager restarted with a
//! sealed key file stays locked until `POST /swarm/unlock` gives the key.
//! Managers follow the cluster's key through Raft: a new key (rotation),
//! or none (autolock turned off), reseals their key file.

use std::sync::Arc;
use std::time::Duration;

use berth_swarm_ca::Role;
use berth_swarm_store::ClusterSpec;
use tokio::task::JoinHandle;

use crate::active::Active;
use crate::keys::{self, human_key, new_unlock_key, parse_human_key};
use crate::state::{Loaded, LocalState, Paths};
use crate::{Swarm, SwarmError};

/// How often a manager looks for a new unlock key in its store.
const FOLLOW_EVERY: Duration = Duration::from_millis(250);

/// The cluster's unlock key after an update, as swarmkit's
/// `UpdateCluster` makes it: none without autolock, a new one when
/// autolock turns on or on `rotateManagerUnlockKey`, else the same.
pub fn next_unlock_key(
    current: &[u8],
    spec: &ClusterSpec,
    rotate: bool,
) -> Result<Vec<u8>, SwarmError> {
    if !spec.autolock_managers {
        return Ok(Vec::new());
    }
    if current.is_empty() || rotate {
        return new_unlock_key();
    }
    Ok(current.to_vec())
}

impl Swarm {
    /// What the state file said when the node came up locked.
    pub(crate) fn locked_state(&self) -> Option<LocalState> {
        self.locked
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// `leave` on a locked node: dockerd wants `--force`, then forgets it.
    pub(crate) fn leave_locked(&self, force: bool) -> Result<(), SwarmError> {
        let mut locked = self.locked.lock().unwrap_or_else(|e| e.into_inner());
        if locked.is_none() {
            return Err(SwarmError::NotInSwarm);
        }
        if !force {
            return Err(SwarmError::Unavailable(
                "Swarm is encrypted and locked. Please unlock it first or use `--force` to ignore this message.".into(),
            ));
        }
        Paths::new(&self.settings.dir)
            .wipe()
            .map_err(|e| SwarmError::internal("removing the swarm state", e))?;
        *keys::lock(&self.keys) = Default::default();
        *locked = None;
        Ok(())
    }

    /// `POST /swarm/unlock`: dockerd's checks in its order, then the node
    /// starts with the key file opened by `key`.
    pub async fn unlock(&self, key: &str) -> Result<(), SwarmError> {
        let mut guard = self.active.lock().await;
        if let Some(node) = guard.as_ref() {
            return Err(match node.is_manager() {
                true => SwarmError::NotLocked,
                false => SwarmError::NotManagerWorker,
            });
        }
        if self.locked_state().is_none() {
            return Err(SwarmError::NotManagerInactive);
        }
        let kek = parse_human_key(key)?;
        let loaded = {
            let mut keys = keys::lock(&self.keys);
            keys.kek = Some(kek);
            let loaded = Paths::new(&self.settings.dir).load(&mut keys);
            if !matches!(loaded, Ok(Loaded::Ready(..))) {
                keys.kek = None;
            }
            loaded
        };
        let (state, creds) = match loaded {
            Ok(Loaded::Ready(state, creds)) => (state, *creds),
            Ok(Loaded::Locked(_)) => return Err(SwarmError::InvalidUnlockKey),
            Ok(Loaded::Nothing) => return Err(SwarmError::NotManagerInactive),
            Err(e) => {
                return Err(SwarmError::Internal(format!(
                    "swarm component could not be started: {e}"
                )));
            }
        };
        let node = self.resume_with(state, creds).await.map_err(|e| {
            SwarmError::Internal(format!("swarm component could not be started: {e}"))
        })?;
        *guard = Some(node);
        *self.locked.lock().unwrap_or_else(|e| e.into_inner()) = None;
        tracing::info!("the swarm is unlocked");
        Ok(())
    }

    /// `GET /swarm/unlockkey`: the cluster's key in its human form, or ""
    /// without autolock.
    pub async fn unlock_key(&self) -> Result<String, SwarmError> {
        let node = self.manager().await?;
        node.sync_reads().await?;
        let key = node
            .store()?
            .read(|s| s.cluster().map(|c| c.unlock_key.clone()))
            .unwrap_or_default();
        Ok(match key.is_empty() {
            true => String::new(),
            false => human_key(&key),
        })
    }
}

pub(crate) fn spawn_kek_follower(node: Arc<Active>) -> JoinHandle<()> {
    tokio::spawn(async move {
        loop {
            follow_kek(&node);
            tokio::time::sleep(FOLLOW_EVERY).await;
        }
    })
}

/// Reseals this manager's key file when the cluster's unlock key is newer
/// than the one it was sealed with (rotated, turned on or off); a new key
/// also rotates the DEK (`dek`). A failed write leaves the old state in
/// memory, so the next look retries; so does a rotation left unfinished.
pub(crate) fn follow_kek(node: &Active) {
    let Ok(store) = node.store() else {
        return;
    };
    let Some((version, key)) =
        store.read(|s| s.cluster().map(|c| (c.meta.version, c.unlock_key.clone())))
    else {
        return;
    };
    let creds = node.creds();
    if creds.cert.identity.role != Role::Manager {
        return;
    }
    let want = Some(key).filter(|k| !k.is_empty());
    let mut keys = keys::lock(&node.keys);
    if keys.held {
        // a new manager: `learn_kek` adopts the first key once caught up
        return;
    }
    if keys.pending_dek.is_some() {
        if let Ok(raft) = node.raft()
            && let Err(e) = crate::dek::finish(raft, &node.paths, &creds, &mut keys)
        {
            tracing::warn!("finishing the data key's rotation: {e}");
        }
        return;
    }
    if version <= keys.kek_version {
        return;
    }
    if keys.kek == want {
        keys.kek_version = version;
        return;
    }
    if let Some(kek) = want {
        match crate::dek::rotate(node, &mut keys, kek, version) {
            Ok(()) => tracing::info!("the node key was resealed for the cluster's unlock key"),
            Err(e) => tracing::warn!("resealing the node key and rotating its data key: {e}"),
        }
        return;
    }
    let before = keys.clone();
    keys.kek = want;
    keys.kek_version = version;
    match node.paths.save_key(&creds.key, &keys, true) {
        Ok(()) => tracing::info!(
            autolock = keys.kek.is_some(),
            "the node key was resealed for the cluster's unlock key"
        ),
        Err(e) => {
            tracing::warn!("resealing the node key: {e}");
            *keys = before;
        }
    }
}
