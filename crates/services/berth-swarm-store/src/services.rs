//! Services and their tasks (swarm part 2). A service's spec is the
//! user's desired state and keeps the Engine API's JSON names, as
//! berth-core's container records do: the API layer takes and gives it
//! by name, validates it, and fields berth keeps without acting on stay
//! in `extra` as sent. Tasks are the orchestrator's own objects.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::objects::Meta;

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct ServiceSpec {
    #[serde(default)]
    pub name: String,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub labels: BTreeMap<String, String>,
    #[serde(default)]
    pub task_template: TaskSpec,
    #[serde(default)]
    pub mode: ServiceMode,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub update_config: Option<UpdateConfig>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rollback_config: Option<UpdateConfig>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub endpoint_spec: Option<EndpointSpec>,
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct ServiceMode {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub replicated: Option<Replicated>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub global: Option<Map<String, Value>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub replicated_job: Option<ReplicatedJob>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub global_job: Option<Map<String, Value>>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ModeKind {
    Replicated(u64),
    Global,
    ReplicatedJob { max_concurrent: u64, total: u64 },
    GlobalJob,
}

impl ServiceMode {
    /// The one mode set (validated at the API edge); replicated by default.
    pub fn kind(&self) -> ModeKind {
        if self.global.is_some() {
            ModeKind::Global
        } else if let Some(j) = &self.replicated_job {
            ModeKind::ReplicatedJob {
                max_concurrent: j.max_concurrent.unwrap_or(1),
                total: j.total_completions.unwrap_or(1),
            }
        } else if self.global_job.is_some() {
            ModeKind::GlobalJob
        } else {
            ModeKind::Replicated(
                self.replicated
                    .as_ref()
                    .and_then(|r| r.replicas)
                    .unwrap_or(1),
            )
        }
    }

    pub fn is_job(&self) -> bool {
        matches!(
            self.kind(),
            ModeKind::ReplicatedJob { .. } | ModeKind::GlobalJob
        )
    }
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct Replicated {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub replicas: Option<u64>,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct ReplicatedJob {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_concurrent: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub total_completions: Option<u64>,
}

/// `UpdateConfig` and `RollbackConfig`; durations in nanoseconds.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct UpdateConfig {
    #[serde(default)]
    pub parallelism: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub delay: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub failure_action: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub monitor: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_failure_ratio: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub order: Option<String>,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct EndpointSpec {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mode: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub ports: Vec<PortConfig>,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct PortConfig {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub protocol: Option<String>,
    #[serde(default)]
    pub target_port: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub published_port: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub publish_mode: Option<String>,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct TaskSpec {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub container_spec: Option<ContainerSpec>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resources: Option<ResourceRequirements>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub restart_policy: Option<RestartPolicy>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub placement: Option<Placement>,
    #[serde(default)]
    pub force_update: u64,
    /// the networks the tasks attach to, by id
    #[serde(
        default,
        skip_serializing_if = "Vec::is_empty",
        deserialize_with = "null_as_empty"
    )]
    pub networks: Vec<crate::networks::NetworkAttachment>,
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// What each task's container runs. Fields the executor reads are typed;
/// `Mounts`, `Healthcheck`, `Ulimits` and the rest keep Docker's shapes.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct ContainerSpec {
    #[serde(default)]
    pub image: String,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub labels: BTreeMap<String, String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub command: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub args: Vec<String>,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub hostname: String,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub env: Vec<String>,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub dir: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub user: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub stop_signal: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stop_grace_period: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub init: Option<bool>,
    #[serde(default, rename = "TTY", skip_serializing_if = "std::ops::Not::not")]
    pub tty: bool,
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub open_stdin: bool,
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub read_only: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub healthcheck: Option<Value>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub mounts: Vec<Value>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub capability_add: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub capability_drop: Vec<String>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub sysctls: BTreeMap<String, String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub ulimits: Vec<Value>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub hosts: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub secrets: Vec<crate::secrets::SecretReference>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub configs: Vec<crate::secrets::ConfigReference>,
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct ResourceRequirements {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub limits: Option<Resources>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reservations: Option<Resources>,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct Resources {
    #[serde(default, rename = "NanoCPUs", skip_serializing_if = "is_zero")]
    pub nano_cpus: i64,
    #[serde(default, skip_serializing_if = "is_zero")]
    pub memory_bytes: i64,
    #[serde(default, skip_serializing_if = "is_zero")]
    pub pids: i64,
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

fn is_zero(v: &i64) -> bool {
    *v == 0
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct RestartPolicy {
    /// "none", "on-failure" or "any"
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub condition: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub delay: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_attempts: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub window: Option<i64>,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct Placement {
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub constraints: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub preferences: Vec<PlacementPreference>,
    #[serde(default, skip_serializing_if = "is_zero_u64")]
    pub max_replicas: u64,
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

fn is_zero_u64(v: &u64) -> bool {
    *v == 0
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct PlacementPreference {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub spread: Option<SpreadOver>,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct SpreadOver {
    #[serde(default)]
    pub spread_descriptor: String,
}

/// Where a rolling update or rollback stands (`UpdateStatus`).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct UpdateStatus {
    /// "updating", "paused", "completed", "rollback_started",
    /// "rollback_paused", "rollback_completed"
    pub state: String,
    pub started_at: Option<DateTime<Utc>>,
    pub completed_at: Option<DateTime<Utc>>,
    pub message: String,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Service {
    pub id: String,
    pub meta: Meta,
    pub spec: ServiceSpec,
    pub previous_spec: Option<ServiceSpec>,
    /// the log index of the last change to `spec`: tasks made from that
    /// spec carry it, so the updater knows which tasks are out of date
    pub spec_version: u64,
    /// `spec_version` of `previous_spec`: a rollback brings it back, and
    /// the tasks still made from it count as up to date again
    #[serde(default)]
    pub previous_spec_version: u64,
    pub update_status: Option<UpdateStatus>,
    /// jobs: bumped by each `update`, to run the job again
    pub job_iteration: u64,
    /// the service's virtual IPs and published ports, as the store
    /// allocated them
    #[serde(default)]
    pub endpoint: Endpoint,
    /// `--with-registry-auth`: what workers pull the image with. Kept out
    /// of the spec, as swarmkit keeps `PullOptions` out of Docker's model,
    /// so it is never shown and changing it alone updates no task.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pull_auth: Option<PullAuth>,
    /// `berth service rebalance`: tasks the updater moves to the least
    /// loaded nodes; emptied once none of them is live
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub rebalance: Vec<String>,
}

/// swarmkit's `Endpoint` of a service: what its `EndpointSpec` was given.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Endpoint {
    #[serde(default)]
    pub ports: Vec<PortConfig>,
    #[serde(default)]
    pub virtual_ips: Vec<VirtualIp>,
}

/// A service's address on one network, "10.0.1.2/24".
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct VirtualIp {
    pub network_id: String,
    pub addr: String,
}

impl ServiceSpec {
    /// DNS round robin (`--endpoint-mode dnsrr`) rather than a VIP.
    pub fn is_dnsrr(&self) -> bool {
        self.endpoint_spec
            .as_ref()
            .and_then(|e| e.mode.as_deref())
            .is_some_and(|m| m.eq_ignore_ascii_case("dnsrr"))
    }
}

/// Registry credentials a service's tasks are pulled with. They live only
/// in the Raft store, which is sealed at rest, and in assignments, which
/// travel over mutual TLS.
#[derive(Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct PullAuth {
    pub username: String,
    pub password: String,
}

impl std::fmt::Debug for PullAuth {
    // a task or service printed in a log must not carry the password
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PullAuth")
            .field("username", &self.username)
            .finish_non_exhaustive()
    }
}

/// swarmkit's task states, in their order: a task only moves forward.
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize,
)]
pub enum TaskState {
    #[default]
    New,
    Pending,
    Assigned,
    Accepted,
    Preparing,
    Ready,
    Starting,
    Running,
    Complete,
    Shutdown,
    Failed,
    Rejected,
    Remove,
    Orphaned,
}

impl TaskState {
    pub const ALL: [TaskState; 14] = [
        TaskState::New,
        TaskState::Pending,
        TaskState::Assigned,
        TaskState::Accepted,
        TaskState::Preparing,
        TaskState::Ready,
        TaskState::Starting,
        TaskState::Running,
        TaskState::Complete,
        TaskState::Shutdown,
        TaskState::Failed,
        TaskState::Rejected,
        TaskState::Remove,
        TaskState::Orphaned,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            TaskState::New => "new",
            TaskState::Pending => "pending",
            TaskState::Assigned => "assigned",
            TaskState::Accepted => "accepted",
            TaskState::Preparing => "preparing",
            TaskState::Ready => "ready",
            TaskState::Starting => "starting",
            TaskState::Running => "running",
            TaskState::Complete => "complete",
            TaskState::Shutdown => "shutdown",
            TaskState::Failed => "failed",
            TaskState::Rejected => "rejected",
            TaskState::Remove => "remove",
            TaskState::Orphaned => "orphaned",
        }
    }

    pub fn parse(s: &str) -> Option<TaskState> {
        TaskState::ALL.into_iter().find(|t| t.as_str() == s)
    }

    /// The task's container has ended, or never will start.
    pub fn is_terminal(self) -> bool {
        self > TaskState::Running
    }
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct TaskStatus {
    pub timestamp: Option<DateTime<Utc>>,
    pub state: TaskState,
    pub message: String,
    pub err: String,
    pub container_id: String,
    pub pid: i64,
    pub exit_code: Option<i64>,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Task {
    pub id: String,
    pub meta: Meta,
    pub spec: TaskSpec,
    pub service_id: String,
    /// the service's name when the task was made (container names)
    pub service_name: String,
    /// the service's labels, which the task's container carries too
    pub service_labels: BTreeMap<String, String>,
    /// replicated modes; 0 for global ones
    pub slot: u64,
    pub node_id: String,
    pub status: TaskStatus,
    pub desired_state: TaskState,
    /// the service's `spec_version` this task was made from
    pub spec_version: u64,
    pub job_iteration: Option<u64>,
    /// a restarted task waits (desired state `Ready`) until then: the
    /// restart policy's delay
    #[serde(default)]
    pub restart_at: Option<DateTime<Utc>>,
    /// when the agent first reported it running (the updater's monitor
    /// counts from then)
    #[serde(default)]
    pub started_at: Option<DateTime<Utc>>,
    /// the service's `pull_auth` when the task was made
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pull_auth: Option<PullAuth>,
    /// its addresses on the networks of its spec, given when it is made
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub networks: Vec<crate::networks::TaskAttachment>,
    /// the service's published ports when the task was made (its node
    /// binds the host-mode ones)
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub ports: Vec<PortConfig>,
    /// set on a network attachment (swarmkit's `Spec.Runtime =
    /// Attachment`): a container of the node's own, started with
    /// `docker run --network`, holding an address on an attachable
    /// network. No service owns it and no agent runs it
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub attachment: Option<ContainerAttachment>,
}

/// The container a network attachment stands for.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ContainerAttachment {
    pub container_id: String,
    pub container_name: String,
}

impl Task {
    /// `name.slot.id`, or `name.node.id` for global modes: the task's
    /// container name, as swarmkit names it (an attachment's container
    /// has a name of its own).
    pub fn container_name(&self) -> String {
        if let Some(a) = &self.attachment {
            return a.container_name.clone();
        }
        if self.slot > 0 {
            format!("{}.{}.{}", self.service_name, self.slot, self.id)
        } else {
            format!("{}.{}.{}", self.service_name, self.node_id, self.id)
        }
    }

    /// A change to a task's status, desired state or node, applied without
    /// a version check: the agent, the scheduler and the orchestrator each
    /// own one part, and must not refuse each other's batches.
    pub fn patched(&self, p: &TaskPatch) -> Task {
        let mut t = self.clone();
        if let Some(s) = &p.status {
            // a report never takes a task back (swarmkit's rule)
            if s.state >= t.status.state {
                if s.state == TaskState::Running && t.started_at.is_none() {
                    t.started_at = s.timestamp;
                }
                t.status = s.clone();
            }
        }
        if let Some(d) = p.desired_state.filter(|d| *d > t.desired_state) {
            t.desired_state = d;
        }
        // a placement holds once made: a second, stale one must not move
        // a task its node has already taken
        if let Some(n) = p.node_id.as_ref().filter(|_| self.node_id.is_empty()) {
            t.node_id = n.clone();
        }
        t
    }
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct TaskPatch {
    pub status: Option<TaskStatus>,
    pub desired_state: Option<TaskState>,
    pub node_id: Option<String>,
}

/// A JSON `null` list as Go reads it into a slice: empty.
fn null_as_empty<'de, D, T>(d: D) -> Result<Vec<T>, D::Error>
where
    D: serde::Deserializer<'de>,
    T: Deserialize<'de>,
{
    Option::<Vec<T>>::deserialize(d).map(Option::unwrap_or_default)
}
