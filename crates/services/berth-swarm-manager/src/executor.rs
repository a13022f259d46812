//! What a node's agent needs from the engine to run its tasks: the port
//! the daemon implements over its container service (the same one the
//! Engine API uses), and unit tests implement with a fake.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use berth_swarm_store::{BlobKind, Network, Secret, Task};
use serde::{Deserialize, Serialize};
use tokio::sync::mpsc;

use crate::logs::{LogEntry, LogOptions};

/// A container's log records as the executor reads them; an error ends
/// the stream.
pub type LogEntries = mpsc::Receiver<Result<LogEntry, String>>;

/// A task's container as the engine sees it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ContainerState {
    pub id: String,
    pub running: bool,
    pub pid: i64,
    pub exit_code: i64,
}

/// Who runs the task: what templates and labels name; and the secrets
/// and configs its tasks may use.
#[derive(Clone, Debug, Default)]
pub struct NodeContext {
    pub node_id: String,
    pub hostname: String,
    pub deps: Dependencies,
    /// how many tasks prepare or start at once on this node
    pub busy: TaskSlots,
}

/// A bound on the tasks that prepare or start at once: a thousand
/// container starts in parallel would starve the agent's heartbeats and
/// reports of the little CPU they need, and the node would be taken for
/// dead while it works.
#[derive(Clone, Debug)]
pub struct TaskSlots(Arc<tokio::sync::Semaphore>);

impl TaskSlots {
    pub const AT_ONCE: usize = 4;

    pub async fn acquire(&self) -> Option<tokio::sync::OwnedSemaphorePermit> {
        self.0.clone().acquire_owned().await.ok()
    }
}

impl Default for TaskSlots {
    fn default() -> TaskSlots {
        TaskSlots(Arc::new(tokio::sync::Semaphore::new(TaskSlots::AT_ONCE)))
    }
}

/// What a node's assignments carry: its tasks, and the secrets and
/// configs those that have not ended use (swarmkit's assignment set).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct AssignmentSet {
    pub tasks: Vec<Task>,
    #[serde(default)]
    pub secrets: Vec<Secret>,
    #[serde(default)]
    pub configs: Vec<Secret>,
    /// the swarm networks its live tasks are on, with every peer
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub networks: Vec<NetworkView>,
    /// the VXLAN UDP port (`--data-path-port`); 0 is 4789
    #[serde(default)]
    pub data_port: u16,
}

/// A swarm network as a node needs it to wire its tasks: the network, the
/// address and node of every live task on it (on any node), and the
/// services on it with their VIPs. Peers are programmed from this alone:
/// no flooding, no gossip.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct NetworkView {
    pub network: Network,
    pub endpoints: Vec<EndpointView>,
    pub services: Vec<ServiceRecord>,
    /// ingress only: every node's leg, the routing mesh's way in and out
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub legs: Vec<Leg>,
    /// the nodes the network spans (`network inspect`'s `Peers`)
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub peers: Vec<PeerView>,
}

#[derive(Clone, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct PeerView {
    /// `hostname-<node id, 12>`
    pub name: String,
    /// its VXLAN endpoint
    pub ip: String,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Leg {
    pub node_id: String,
    pub vtep: String,
    /// "10.0.0.2/24"
    pub address: String,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct EndpointView {
    pub task_id: String,
    /// the task's container name (`web.1.<id>`), a DNS name too
    pub name: String,
    pub service_id: String,
    pub node_id: String,
    /// the node's VXLAN endpoint address
    pub vtep: String,
    /// "10.0.1.3/24"
    pub address: String,
    /// running, wanted running, on a node not down: in DNS and behind
    /// the VIP
    pub serving: bool,
    /// an attachment's container (`docker run --network`), not a task's
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub container: Option<String>,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct ServiceRecord {
    pub id: String,
    pub name: String,
    /// the service's aliases on this network
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub aliases: Vec<String>,
    /// "10.0.1.2/24"; empty in dnsrr mode
    #[serde(default)]
    pub vip: String,
    /// ingress only: the ports the mesh publishes
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub ports: Vec<berth_swarm_store::PortConfig>,
}

/// The secrets and configs of the node's current assignment set. Only in
/// memory: never the data root, never a log.
#[derive(Clone, Debug, Default)]
pub struct Dependencies(Arc<std::sync::RwLock<HashMap<(BlobKind, String), Secret>>>);

impl Dependencies {
    pub fn replace(&self, secrets: Vec<Secret>, configs: Vec<Secret>) {
        let all = secrets
            .into_iter()
            .map(|x| ((BlobKind::Secret, x.id.clone()), x))
            .chain(
                configs
                    .into_iter()
                    .map(|x| ((BlobKind::Config, x.id.clone()), x)),
            )
            .collect();
        *self.0.write().unwrap_or_else(|p| p.into_inner()) = all;
    }

    pub fn get(&self, kind: BlobKind, id: &str) -> Option<Secret> {
        let all = self.0.read().unwrap_or_else(|p| p.into_inner());
        all.get(&(kind, id.to_string())).cloned()
    }
}

#[tonic::async_trait]
pub trait TaskExecutor: Send + Sync {
    /// Pulls the task's image if the node lacks it and creates the
    /// task's container (named and labelled as swarmkit does); the
    /// container's id. A container made for the task before is reused.
    async fn prepare(&self, task: &Task, node: &NodeContext) -> Result<String, String>;
    /// Starts the container; its pid.
    async fn start(&self, container: &str) -> Result<i64, String>;
    /// Waits for the container to exit; its exit code.
    async fn wait(&self, container: &str) -> Result<i64, String>;
    async fn inspect(&self, container: &str) -> Option<ContainerState>;
    async fn stop(&self, container: &str, grace: Option<Duration>) -> Result<(), String>;
    async fn remove(&self, container: &str) -> Result<(), String>;
    /// Every task container on this node: (task id, container id).
    async fn task_containers(&self) -> Vec<(String, String)>;
    /// The swarm networks of the node's assignments, given before the
    /// tasks of the same set: peers, DNS records and VIP backends.
    async fn networks(&self, node_id: &str, views: Vec<NetworkView>, data_port: u16) {
        let _ = (node_id, views, data_port);
    }
    /// The container's log records (stream, time, details, line), as
    /// `options` selects them; the stream ends with the log unless
    /// following. An executor that cannot read logs answers an error,
    /// and the task's logs are left out.
    async fn logs(&self, container: &str, options: &LogOptions) -> Result<LogEntries, String> {
        let _ = (container, options);
        Err("this node's executor does not read logs".into())
    }
}

/// The executor a daemon hands its swarm; none in tests of the cluster
/// alone, whose nodes then accept no tasks.
#[derive(Clone, Default)]
pub struct Executor(pub Option<Arc<dyn TaskExecutor>>);

impl std::fmt::Debug for Executor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(if self.0.is_some() {
            "Executor(..)"
        } else {
            "Executor(none)"
        })
    }
}
