//! `swarm init --force-new-cluster` on a manager that lost its quorum:
//! the node stops, its Raft is rewritten into a cluster of one that keeps
//! the whole store (`berth_swarm_raft::force_new_cluster`), and it starts
//! again as the leader. Node id, cluster id, CA and tokens stay; the other
//! managers must leave and join again, as with dockerd.

use std::sync::Arc;

use berth_swarm_raft::Member;

use crate::active::Active;
use crate::join::{InitRequest, wait_for_leader};
use crate::keys;
use crate::state::{Credentials, Loaded, Paths};
use crate::{Swarm, SwarmError};

impl Swarm {
    /// Forces a new cluster from the running manager in `active` (the
    /// caller holds its lock) and puts the restarted node there. The old
    /// node must be gone whole before its Raft files are rewritten: it
    /// holds them open. Should the rewrite fail, the node comes back as
    /// it was.
    pub(crate) async fn force_new_cluster(
        &self,
        active: &mut Option<Arc<Active>>,
        req: &InitRequest,
    ) -> Result<String, SwarmError> {
        let Some(node) = active.take_if(|n| n.is_manager()) else {
            return Err(SwarmError::NotManagerWorker);
        };
        let old = node.local();
        let Some(raft_id) = old.raft_id else {
            *active = Some(node);
            return Err(SwarmError::Internal("this manager has no raft id".into()));
        };
        let deks = match self.ensure_deks(&node.paths, &node.creds()) {
            Ok(d) => d,
            Err(e) => {
                *active = Some(node);
                return Err(e);
            }
        };
        node.halt().await;
        drop(node);
        let paths = Paths::new(&self.settings.dir);

        let mut state = old.clone();
        state.listen_addr = req.listen_addr.clone();
        state.advertise_addr = req.advertise_addr.clone();
        state.managers = vec![req.advertise_addr.clone()];
        let me = Member {
            node_id: state.node_id.clone(),
            addr: state.advertise_addr.clone(),
        };
        let rewritten = berth_swarm_raft::force_new_cluster(&paths.raft(), raft_id, me, deks)
            .await
            .map_err(|e| SwarmError::internal("forcing a new cluster", e));
        let forced = match rewritten {
            Ok(f) => f,
            Err(e) => {
                tracing::error!("{e}; resuming the old cluster");
                *active = Some(self.resume_with(old, self.credentials()?).await?);
                return Err(e);
            }
        };
        tracing::warn!(
            removed = ?forced.removed,
            last_index = forced.last_index,
            "forced a new cluster: the other managers were removed"
        );
        paths
            .save_state(&state)
            .map_err(|e| SwarmError::internal("saving the swarm state", e))?;
        let node = self.resume_with(state, self.credentials()?).await?;
        *active = Some(node.clone());
        wait_for_leader(node.raft()?).await?;
        Ok(node.identity.node_id.clone())
    }

    /// The certificate and key on disk (the stopped node held the same).
    fn credentials(&self) -> Result<Credentials, SwarmError> {
        let paths = Paths::new(&self.settings.dir);
        let loaded = paths
            .load(&mut keys::lock(&self.keys))
            .map_err(|e| SwarmError::internal("reading the swarm state", e))?;
        match loaded {
            Loaded::Ready(_, creds) => Ok(*creds),
            Loaded::Locked(_) => Err(SwarmError::Locked),
            Loaded::Nothing => Err(SwarmError::Internal("the swarm state is gone".into())),
        }
    }
}
