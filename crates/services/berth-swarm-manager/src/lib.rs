//! Swarm mode on one node (issue #19): `init`, `join` and `leave`, the
//! services a manager serves to the other nodes (CA, Raft, dispatcher),
//! the agent's heartbeats, and the views of the cluster and its nodes that
//! the Engine API shows. The Raft log, the CA and the wire protocol are
//! crates of their own; this one puts them together.

mod active;
mod agent;
pub mod attachments;
mod autolock;
#[cfg(test)]
mod autolock_tests;
mod ca_rotation;
#[cfg(test)]
mod ca_tests;
mod dek;
mod dispatch;
mod error;
mod events;
pub mod executor;
mod external_ca;
#[cfg(test)]
mod external_ca_tests;
mod force;
mod join;
mod kernel;
mod keys;
pub mod logs;
mod network_ops;
mod nodes;
pub mod orchestrator;
mod peers;
mod renewer;
mod roles;
mod secret_ops;
mod service_ops;
mod service_spec;
mod services;
mod snapshots;
mod state;
#[cfg(test)]
mod tests;
#[cfg(test)]
mod tests_roles;
mod update;
mod views;
mod worker;

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use berth_swarm_raft::RaftSettings;
use tokio::sync::Mutex;

pub use error::SwarmError;
pub use events::SwarmEvent;
pub use join::{InitRequest, JoinRequest};
pub use logs::{LogEvent, LogFeed, LogLine, LogOptions, LogStream, LogTarget};
pub use nodes::{NodeFilters, NodeSpecUpdate};
pub use service_ops::ServiceView;
pub use update::UpdateFlags;
pub use views::{LocalNodeState, ManagerStatus, NodeView, SwarmInfo, SwarmView};

use crate::active::Active;

/// What this node says about itself in its heartbeats.
#[derive(Clone, Debug, Default)]
pub struct NodeDescription {
    pub hostname: String,
    pub engine_version: String,
    pub os: String,
    pub architecture: String,
    pub nano_cpus: i64,
    pub memory_bytes: i64,
}

#[derive(Clone, Debug, Default)]
pub struct SwarmSettings {
    /// `<data-root>/swarm`
    pub dir: PathBuf,
    pub description: NodeDescription,
    pub raft: RaftSettings,
    /// overrides the cluster's dispatcher heartbeat period (tests)
    pub heartbeat_period: Option<Duration>,
    /// overrides the wait before each certificate renewal (tests:
    /// certificates live at least an hour)
    pub cert_renewal: Option<Duration>,
    /// runs this node's tasks (none: the node accepts no tasks)
    pub executor: executor::Executor,
}

/// This node's place in a swarm, if any. Cloning gives another handle
/// on the same node (the agent keeps one, to change the node's role).
#[derive(Clone)]
pub struct Swarm {
    settings: SwarmSettings,
    active: Arc<Mutex<Option<Arc<Active>>>>,
    /// node changes seen by this manager's store (`GET /events`)
    events: tokio::sync::broadcast::Sender<Arc<SwarmEvent>>,
    /// the DEK and unlock key this node holds (`keys`)
    keys: keys::Keys,
    /// a manager restarted under autolock, waiting for its key: what its
    /// state file says
    locked: Arc<std::sync::Mutex<Option<state::LocalState>>>,
}

impl Swarm {
    /// The swarm this node was in when it stopped, resumed; or none.
    pub async fn open(settings: SwarmSettings) -> Result<Swarm, SwarmError> {
        let swarm = Swarm {
            settings,
            active: Arc::new(Mutex::new(None)),
            events: tokio::sync::broadcast::channel(256).0,
            keys: Default::default(),
            locked: Default::default(),
        };
        swarm.resume().await?;
        Ok(swarm)
    }

    /// Node events, as dockerd publishes them from its manager's watch.
    pub fn swarm_events(&self) -> tokio::sync::broadcast::Receiver<Arc<SwarmEvent>> {
        self.events.subscribe()
    }

    async fn current(&self) -> Option<Arc<Active>> {
        self.active.lock().await.clone()
    }

    /// The node's manager side, or the error dockerd gives for the node's
    /// state.
    async fn manager(&self) -> Result<Arc<Active>, SwarmError> {
        match self.current().await {
            None if self.locked_state().is_some() => Err(SwarmError::Locked),
            None => Err(SwarmError::NotManagerInactive),
            Some(a) if !a.is_manager() => Err(SwarmError::NotManagerWorker),
            Some(a) => Ok(a),
        }
    }

    /// Leaves the swarm: stops serving and forgets it. A manager leaves
    /// only with `force`, as in dockerd.
    pub async fn leave(&self, force: bool) -> Result<(), SwarmError> {
        let mut guard = self.active.lock().await;
        let Some(node) = guard.clone() else {
            return self.leave_locked(force);
        };
        if node.is_manager() && !force {
            return Err(SwarmError::Unavailable(leave_refusal(&node)));
        }
        node.halt().await;
        self.remove_task_containers().await;
        node.paths
            .wipe()
            .map_err(|e| SwarmError::internal("removing the swarm state", e))?;
        *keys::lock(&self.keys) = Default::default();
        *guard = None;
        Ok(())
    }

    /// A node that leaves takes its tasks' containers down with it, as
    /// dockerd does: the cluster runs those tasks elsewhere now.
    async fn remove_task_containers(&self) {
        let Some(exec) = self.settings.executor.0.clone() else {
            return;
        };
        for (_, container) in exec.task_containers().await {
            let _ = exec.stop(&container, Some(Duration::from_secs(10))).await;
            if let Err(e) = exec.remove(&container).await {
                tracing::warn!("removing task container {container} on leave: {e}");
            }
        }
        // no swarm network, mesh or leg outlives the swarm here
        exec.networks("", Vec::new(), 0).await;
    }

    /// Stops serving without leaving (daemon shutdown).
    pub async fn shutdown(&self) {
        if let Some(node) = self.active.lock().await.take() {
            node.halt().await;
        }
    }
}

/// dockerd's words for a manager leaving without `--force`.
fn leave_refusal(node: &Active) -> String {
    const PREFIX: &str =
        "You are attempting to leave the swarm on a node that is participating as a manager. ";
    let managers = node.raft.as_ref().map_or(1, |r| r.members().len());
    if managers <= 1 {
        return format!(
            "{PREFIX}Removing the last manager erases all current state of the swarm. Use `--force` to ignore this message. "
        );
    }
    let left = managers - 1;
    if left < managers / 2 + 1 {
        return format!(
            "{PREFIX}Removing this node leaves {left} managers out of {managers}. Without a Raft quorum your swarm will be inaccessible. The only way to restore a swarm that has lost consensus is to reinitialize it with `--force-new-cluster`. Use `--force` to suppress this message."
        );
    }
    format!(
        "{PREFIX}The only way to restore a swarm that has lost consensus is to reinitialize it with `--force-new-cluster`. Use `--force` to suppress this message."
    )
}
