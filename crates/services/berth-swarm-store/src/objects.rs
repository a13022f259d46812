//! The objects of swarm part 1, in berth's own types. The Engine API's
//! JSON is made from them at the edge (berth-api), as for every other
//! object; durations are kept as Docker's API counts them (nanoseconds).

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

/// What the store stamps on every object it writes.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Meta {
    /// the log index of the entry that last wrote the object
    pub version: u64,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Annotations {
    pub name: String,
    pub labels: BTreeMap<String, String>,
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum NodeRole {
    #[default]
    Worker,
    Manager,
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum Availability {
    #[default]
    Active,
    Pause,
    Drain,
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum Membership {
    Pending,
    #[default]
    Accepted,
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum NodeState {
    #[default]
    Unknown,
    Down,
    Ready,
    Disconnected,
}

/// swarmkit's lowercase words for a node's role, availability and state,
/// as the Engine API, events and the node-to-node protocol carry them.
impl NodeRole {
    pub fn as_str(self) -> &'static str {
        match self {
            NodeRole::Manager => "manager",
            NodeRole::Worker => "worker",
        }
    }

    pub fn parse(s: &str) -> Option<NodeRole> {
        match s {
            "manager" => Some(NodeRole::Manager),
            "worker" => Some(NodeRole::Worker),
            _ => None,
        }
    }
}

impl Availability {
    pub fn as_str(self) -> &'static str {
        match self {
            Availability::Active => "active",
            Availability::Pause => "pause",
            Availability::Drain => "drain",
        }
    }
}

impl NodeState {
    pub fn as_str(self) -> &'static str {
        match self {
            NodeState::Unknown => "unknown",
            NodeState::Down => "down",
            NodeState::Ready => "ready",
            NodeState::Disconnected => "disconnected",
        }
    }
}

/// Where a node's certificate stands with the CA.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum CertState {
    #[default]
    Unknown,
    /// the node asked for a new certificate with its current one
    Renew,
    /// the node asked for its first certificate with a join token
    Pending,
    Issued,
    Failed,
    /// the CA wants the node to renew (root rotation)
    Rotate,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct NodeSpec {
    pub annotations: Annotations,
    pub desired_role: NodeRole,
    pub membership: Membership,
    pub availability: Availability,
}

/// The issuer a node's certificate chains to, as Docker shows it.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct TlsInfo {
    pub trust_root: String,
    /// DER of the issuer's subject
    pub cert_issuer_subject: Vec<u8>,
    /// DER of the issuer's public key info
    pub cert_issuer_public_key: Vec<u8>,
}

/// What a node reports about itself.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct NodeDescription {
    pub hostname: String,
    pub architecture: String,
    pub os: String,
    pub nano_cpus: i64,
    pub memory_bytes: i64,
    pub engine_version: String,
    pub engine_labels: BTreeMap<String, String>,
    pub tls_info: TlsInfo,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct NodeStatus {
    pub state: NodeState,
    pub message: String,
    /// the address the node is seen at (no port)
    pub addr: String,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct NodeCertificate {
    pub role: NodeRole,
    pub csr: String,
    pub state: CertState,
    pub err: String,
    /// the issued chain, PEM
    pub certificate: String,
    pub cn: String,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Node {
    pub id: String,
    pub meta: Meta,
    pub spec: NodeSpec,
    pub description: NodeDescription,
    pub status: NodeStatus,
    /// the role the node has now; `spec.desired_role` is what it should get
    pub role: NodeRole,
    pub certificate: NodeCertificate,
    /// its address on the ingress network ("10.0.0.2/24"): the routing
    /// mesh's way in and out of the node, given by the store
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub ingress_addr: String,
    /// where other nodes send its overlay traffic (`--data-path-addr`);
    /// its `status.addr` when empty
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub data_addr: String,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct ExternalCa {
    pub protocol: String,
    pub url: String,
    pub options: BTreeMap<String, String>,
    pub ca_cert: String,
}

/// The cluster's settings, Docker's `Spec` of `GET /swarm`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ClusterSpec {
    pub annotations: Annotations,
    pub task_history_retention_limit: i64,
    pub snapshot_interval: u64,
    pub keep_old_snapshots: u64,
    pub log_entries_for_slow_followers: u64,
    pub election_tick: u32,
    pub heartbeat_tick: u32,
    /// nanoseconds
    pub dispatcher_heartbeat_period: i64,
    /// nanoseconds
    pub node_cert_expiry: i64,
    pub external_cas: Vec<ExternalCa>,
    /// a root to rotate to, PEM (`--ca-cert`)
    #[serde(default)]
    pub signing_ca_cert: String,
    /// its key, PEM (`--ca-key`); never leaves the managers
    #[serde(default)]
    pub signing_ca_key: String,
    pub force_rotate: u64,
    pub autolock_managers: bool,
}

impl Default for ClusterSpec {
    /// swarmkit's defaults
    fn default() -> ClusterSpec {
        ClusterSpec {
            annotations: Annotations {
                name: DEFAULT_CLUSTER_NAME.into(),
                labels: BTreeMap::new(),
            },
            task_history_retention_limit: 5,
            snapshot_interval: 10_000,
            keep_old_snapshots: 0,
            log_entries_for_slow_followers: 500,
            election_tick: 10,
            heartbeat_tick: 1,
            dispatcher_heartbeat_period: 5_000_000_000,
            node_cert_expiry: 90 * 24 * 3600 * 1_000_000_000,
            external_cas: Vec::new(),
            signing_ca_cert: String::new(),
            signing_ca_key: String::new(),
            force_rotate: 0,
            autolock_managers: false,
        }
    }
}

/// The only cluster object's name, as in swarmkit.
pub const DEFAULT_CLUSTER_NAME: &str = "default";

/// A root rotation under way: the new root, and the new root's
/// certificate signed by the old key, which new leaves carry so that
/// nodes still trusting the old root accept them.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct RootRotation {
    pub ca_cert: String,
    pub ca_key: String,
    pub cross_signed_ca_cert: String,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct RootCaState {
    pub ca_cert: String,
    /// empty with an external root; never leaves the managers
    pub ca_key: String,
    /// `sha256:<hex>` of `ca_cert`
    pub ca_cert_hash: String,
    pub worker_token: String,
    pub manager_token: String,
    pub rotation: Option<RootRotation>,
    pub last_forced_rotation: u64,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Cluster {
    pub id: String,
    pub meta: Meta,
    pub spec: ClusterSpec,
    pub root_ca: RootCaState,
    /// the managers' unlock key (autolock), raw bytes; empty when off
    pub unlock_key: Vec<u8>,
    pub default_addr_pool: Vec<String>,
    pub subnet_size: u32,
    pub data_path_port: u16,
    /// node ids whose certificates are refused, with when that may end
    pub blacklisted_certificates: BTreeMap<String, Option<DateTime<Utc>>>,
}
