//! What the Engine API shows of the swarm: `/info`'s Swarm section,
//! `GET /swarm`, and nodes with their manager status (which, as in
//! swarmkit, is not stored but read from the Raft membership each time).

use berth_swarm_store::{Cluster, Node, NodeState};

use crate::{Swarm, SwarmError};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LocalNodeState {
    Inactive,
    Active,
    /// a manager restarted under autolock, waiting for its key
    Locked,
}

#[derive(Clone, Debug)]
pub struct SwarmInfo {
    pub node_id: String,
    /// the advertise address without its port
    pub node_addr: String,
    pub local_state: LocalNodeState,
    pub control_available: bool,
    pub error: String,
    /// (node id, host:port) of each manager
    pub remote_managers: Vec<(String, String)>,
    /// counts and the cluster, on managers
    pub nodes: Option<usize>,
    pub managers: Option<usize>,
    pub cluster: Option<Cluster>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ManagerStatus {
    pub leader: bool,
    /// "reachable", "unreachable" or "unknown"
    pub reachability: &'static str,
    pub addr: String,
}

#[derive(Clone, Debug)]
pub struct NodeView {
    pub node: Node,
    pub manager_status: Option<ManagerStatus>,
}

/// `GET /swarm`: the cluster, its key left out, with the join tokens.
#[derive(Clone, Debug)]
pub struct SwarmView {
    pub cluster: Cluster,
    pub worker_token: String,
    pub manager_token: String,
}

impl Swarm {
    pub async fn info(&self) -> SwarmInfo {
        let Some(node) = self.current().await else {
            // dockerd shows a locked node's address and why it is locked
            let locked = self.locked_state();
            return SwarmInfo {
                node_id: String::new(),
                node_addr: locked
                    .as_ref()
                    .map(|s| host_of(&s.advertise_addr))
                    .unwrap_or_default(),
                local_state: match locked {
                    Some(_) => LocalNodeState::Locked,
                    None => LocalNodeState::Inactive,
                },
                control_available: false,
                error: match locked {
                    Some(_) => SwarmError::Locked.to_string(),
                    None => String::new(),
                },
                remote_managers: Vec::new(),
                nodes: None,
                managers: None,
                cluster: None,
            };
        };
        let local = node.local();
        let mut info = SwarmInfo {
            node_id: local.node_id.clone(),
            node_addr: host_of(&local.advertise_addr),
            local_state: LocalNodeState::Active,
            control_available: node.is_manager(),
            error: String::new(),
            remote_managers: Vec::new(),
            nodes: None,
            managers: None,
            cluster: None,
        };
        if let Some(raft) = &node.raft {
            info.remote_managers = raft
                .members()
                .into_iter()
                .map(|(_, m)| (m.node_id, m.addr))
                .collect();
            let (nodes, managers, cluster) = raft.store().read(|s| {
                let managers = s
                    .nodes()
                    .filter(|n| n.role == berth_swarm_store::NodeRole::Manager)
                    .count();
                (
                    s.nodes().count(),
                    managers,
                    s.cluster().cloned().map(redacted),
                )
            });
            info.nodes = Some(nodes);
            info.managers = Some(managers);
            info.cluster = cluster;
        } else {
            info.remote_managers = local
                .managers
                .iter()
                .map(|a| (String::new(), a.clone()))
                .collect();
        }
        info
    }

    pub async fn inspect(&self) -> Result<SwarmView, SwarmError> {
        let node = self.manager().await?;
        node.sync_reads().await?;
        let cluster = node
            .store()?
            .read(|s| s.cluster().cloned())
            .ok_or_else(|| SwarmError::Internal("the cluster object is missing".into()))?;
        Ok(SwarmView {
            worker_token: cluster.root_ca.worker_token.clone(),
            manager_token: cluster.root_ca.manager_token.clone(),
            cluster: redacted(cluster),
        })
    }

    pub async fn nodes(&self) -> Result<Vec<NodeView>, SwarmError> {
        let node = self.manager().await?;
        node.sync_reads().await?;
        let raft = node.raft()?;
        let members = raft.members();
        let leader = raft.leader().map(|(id, _)| id);
        let nodes: Vec<Node> = raft.store().read(|s| s.nodes().cloned().collect());
        Ok(nodes
            .into_iter()
            .map(|n| {
                let status = members
                    .iter()
                    .find(|(_, m)| m.node_id == n.id)
                    .map(|(id, m)| ManagerStatus {
                        leader: Some(*id) == leader,
                        reachability: match n.status.state {
                            NodeState::Ready => "reachable",
                            NodeState::Down | NodeState::Disconnected => "unreachable",
                            NodeState::Unknown => "unknown",
                        },
                        addr: m.addr.clone(),
                    });
                NodeView {
                    node: n,
                    manager_status: status,
                }
            })
            .collect())
    }

    /// A node by full id, name (hostname), or unique id prefix; dockerd's
    /// words when none or several match.
    pub async fn node(&self, reference: &str) -> Result<NodeView, SwarmError> {
        let all = self.nodes().await?;
        if let Some(n) = all.iter().find(|n| n.node.id == reference) {
            return Ok(n.clone());
        }
        let by_name: Vec<&NodeView> = all
            .iter()
            .filter(|n| {
                n.node.spec.annotations.name == reference
                    || n.node.description.hostname == reference
            })
            .collect();
        let by_prefix: Vec<&NodeView> = all
            .iter()
            .filter(|n| n.node.id.starts_with(reference))
            .collect();
        let matches = if by_name.is_empty() {
            by_prefix
        } else {
            by_name
        };
        match matches.as_slice() {
            [one] => Ok((*one).clone()),
            [] => Err(SwarmError::NotFound(format!("node {reference} not found"))),
            many => Err(SwarmError::InvalidArgument(format!(
                "node {reference} is ambiguous ({} matches found)",
                many.len()
            ))),
        }
    }
}

/// The host of a host:port, without an IPv6 address's brackets.
fn host_of(addr: &str) -> String {
    let host = addr.rsplit_once(':').map_or(addr, |(h, _)| h);
    host.trim_matches(['[', ']']).to_string()
}

/// The CA key and unlock key never leave the managers.
fn redacted(mut c: Cluster) -> Cluster {
    c.root_ca.ca_key.clear();
    c.spec.signing_ca_key.clear();
    c.unlock_key.clear();
    if let Some(r) = &mut c.root_ca.rotation {
        r.ca_key.clear();
    }
    c
}
