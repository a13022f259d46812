//! Changing and removing nodes (`POST /nodes/{id}/update`,
//! `DELETE /nodes/{id}`) with swarmkit's rules (controlapi/node.go), and
//! the filters of `GET /nodes` as dockerd and swarmkit apply them.

use std::collections::{BTreeMap, HashMap};

use berth_swarm_store::{
    Action, Availability, Cluster, Kind, Membership, Node, NodeRole, NodeState, Object,
};
use chrono::{DateTime, Utc};

use crate::views::NodeView;
use crate::{Swarm, SwarmError};

/// What `POST /nodes/{id}/update` may set: dockerd's `NodeSpec`.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct NodeSpecUpdate {
    pub name: String,
    pub labels: BTreeMap<String, String>,
    pub role: NodeRole,
    pub availability: Availability,
}

fn failed(desc: impl Into<String>) -> SwarmError {
    SwarmError::Rpc {
        code: "FailedPrecondition",
        desc: desc.into(),
    }
}

/// A raft member as the rules see it: its node id and whether this
/// manager can reach it.
#[derive(Clone, Debug)]
pub(crate) struct MemberView {
    pub node_id: String,
    pub reachable: bool,
}

/// swarmkit's `CanRemoveMember`: the managers left must still be a
/// quorum of the current membership, counting only reachable ones.
pub(crate) fn can_remove_member(members: &[MemberView], node_id: &str) -> bool {
    let reachable = members
        .iter()
        .filter(|m| m.node_id != node_id && m.reachable)
        .count();
    let quorum = (members.len().saturating_sub(1)) / 2 + 1;
    reachable >= quorum
}

/// swarmkit's checks before a manager is demoted, in its order.
pub(crate) fn check_demotion(
    nodes: &[Node],
    members: &[MemberView],
    node_id: &str,
) -> Result<(), SwarmError> {
    let managers: Vec<&Node> = nodes
        .iter()
        .filter(|n| n.role == NodeRole::Manager)
        .collect();
    if managers.len() == 1 && managers[0].id == node_id {
        return Err(failed("attempting to demote the last manager of the swarm"));
    }
    if !members.iter().any(|m| m.node_id == node_id) {
        return Err(SwarmError::Rpc {
            code: "NotFound",
            desc: "can't find manager in raft memberlist".into(),
        });
    }
    if !can_remove_member(members, node_id) {
        return Err(failed(
            "can't remove member from the raft: this would result in a loss of quorum",
        ));
    }
    Ok(())
}

/// swarmkit's checks before a node is removed.
pub(crate) fn check_removal(node: &Node, in_raft: bool, force: bool) -> Result<(), SwarmError> {
    if node.spec.desired_role == NodeRole::Manager && in_raft {
        return Err(failed(format!(
            "node {} is a cluster manager and is a member of the raft cluster. It must be demoted to worker before removal",
            node.id
        )));
    }
    if !force && node.status.state == NodeState::Ready {
        return Err(failed(format!(
            "node {} is not down and can't be removed",
            node.id
        )));
    }
    Ok(())
}

/// The cluster with `node`'s certificate refused from now on (until it
/// expires), and the entries of expired certificates dropped.
pub(crate) fn blacklist(mut c: Cluster, node: &Node, now: DateTime<Utc>) -> Cluster {
    let expiry = berth_swarm_ca::NodeCert::parse(&node.certificate.certificate)
        .ok()
        .map(|cert| DateTime::<Utc>::from(cert.not_after));
    c.blacklisted_certificates
        .retain(|_, until| until.is_none_or(|t| t > now));
    c.blacklisted_certificates.insert(node.id.clone(), expiry);
    c
}

/// `GET /nodes?filters=`: dockerd's keys; values of one key are
/// alternatives, different keys must all match.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct NodeFilters {
    ids: Vec<String>,
    names: Vec<String>,
    /// engine labels
    labels: Vec<(String, String)>,
    /// the node's own labels (`node update --label-add`)
    node_labels: Vec<(String, String)>,
    roles: Vec<NodeRole>,
    memberships: Vec<Membership>,
}

/// `k=v` → (k, v); `k` → (k, "") which matches any value.
fn key_values(v: &[String]) -> Vec<(String, String)> {
    let map: BTreeMap<String, String> = v
        .iter()
        .map(|s| match s.split_once('=') {
            Some((k, v)) => (k.to_string(), v.to_string()),
            None => (s.clone(), String::new()),
        })
        .collect();
    map.into_iter().collect()
}

fn labels_match(have: &BTreeMap<String, String>, want: &[(String, String)]) -> bool {
    want.iter()
        .all(|(k, v)| have.get(k).is_some_and(|h| v.is_empty() || h == v))
}

impl NodeFilters {
    /// The filters of a request, refused with dockerd's words.
    pub fn parse(f: &HashMap<String, Vec<String>>) -> Result<NodeFilters, SwarmError> {
        const ACCEPTED: [&str; 6] = ["name", "id", "label", "role", "membership", "node.label"];
        if let Some(k) = f.keys().find(|k| !ACCEPTED.contains(&k.as_str())) {
            return Err(SwarmError::InvalidArgument(format!("invalid filter '{k}'")));
        }
        let get = |k: &str| f.get(k).cloned().unwrap_or_default();
        let mut out = NodeFilters {
            ids: get("id"),
            names: get("name"),
            labels: key_values(&get("label")),
            node_labels: key_values(&get("node.label")),
            ..NodeFilters::default()
        };
        for r in get("role") {
            match r.to_ascii_uppercase().as_str() {
                "MANAGER" => out.roles.push(NodeRole::Manager),
                "WORKER" => out.roles.push(NodeRole::Worker),
                "" => {}
                _ => return Err(SwarmError::Internal(format!("Invalid role filter: '{r}'"))),
            }
        }
        for m in get("membership") {
            match m.to_ascii_uppercase().as_str() {
                "ACCEPTED" => out.memberships.push(Membership::Accepted),
                "PENDING" => out.memberships.push(Membership::Pending),
                "" => {}
                _ => {
                    return Err(SwarmError::Internal(format!(
                        "Invalid membership filter: '{m}'"
                    )));
                }
            }
        }
        Ok(out)
    }

    /// swarmkit's `ListNodes`: names and ids by prefix (a name against
    /// the hostname, and against the store's name index, lower-cased),
    /// roles against the node's current role.
    pub fn matches(&self, n: &Node) -> bool {
        let index_name = if n.spec.annotations.name.is_empty() {
            &n.description.hostname
        } else {
            &n.spec.annotations.name
        }
        .to_lowercase();
        let name_ok = self.names.is_empty()
            || self.names.iter().any(|p| {
                n.description.hostname.starts_with(p.as_str())
                    && index_name.starts_with(&p.to_lowercase())
            });
        name_ok
            && (self.ids.is_empty() || self.ids.iter().any(|p| n.id.starts_with(p.as_str())))
            && labels_match(&n.description.engine_labels, &self.labels)
            && labels_match(&n.spec.annotations.labels, &self.node_labels)
            && (self.roles.is_empty() || self.roles.contains(&n.role))
            && (self.memberships.is_empty() || self.memberships.contains(&n.spec.membership))
    }
}

impl Swarm {
    /// Ok on a manager; otherwise dockerd's error for this node's state.
    pub async fn require_manager(&self) -> Result<(), SwarmError> {
        self.manager().await.map(|_| ())
    }

    /// `GET /nodes` with filters.
    pub async fn list_nodes(&self, f: &NodeFilters) -> Result<Vec<NodeView>, SwarmError> {
        let mut all = self.nodes().await?;
        all.retain(|v| f.matches(&v.node));
        Ok(all)
    }

    /// The raft members, each with whether it is reachable: this manager
    /// always, the others when their node is ready.
    async fn member_views(&self) -> Result<Vec<MemberView>, SwarmError> {
        let node = self.manager().await?;
        let raft = node.raft()?;
        let me = node.identity.node_id.clone();
        let members = raft.members();
        Ok(raft.store().read(|s| {
            members
                .iter()
                .map(|(_, m)| MemberView {
                    node_id: m.node_id.clone(),
                    reachable: m.node_id == me
                        || s.node(&m.node_id)
                            .is_some_and(|n| n.status.state == NodeState::Ready),
                })
                .collect()
        }))
    }

    /// `POST /nodes/{id}/update?version=N`. The store refuses a stale
    /// version ("update out of sequence"); a role change is carried out
    /// by the leader's role manager (roles.rs).
    pub async fn update_node(
        &self,
        reference: &str,
        version: u64,
        spec: NodeSpecUpdate,
    ) -> Result<(), SwarmError> {
        let active = self.manager().await?;
        let current = self.node(reference).await?.node;
        if current.spec.desired_role == NodeRole::Manager && spec.role == NodeRole::Worker {
            let nodes: Vec<Node> = active.store()?.read(|s| s.nodes().cloned().collect());
            check_demotion(&nodes, &self.member_views().await?, &current.id)?;
        }
        let mut updated = current;
        updated.meta.version = version;
        updated.spec.annotations.name = spec.name;
        updated.spec.annotations.labels = spec.labels;
        updated.spec.desired_role = spec.role;
        updated.spec.availability = spec.availability;
        active
            .propose(vec![Action::Update(Object::Node(updated))])
            .await
    }

    /// `DELETE /nodes/{id}?force=`: the node goes, and its certificate is
    /// refused from then on.
    pub async fn remove_node(&self, reference: &str, force: bool) -> Result<(), SwarmError> {
        let active = self.manager().await?;
        let node = self.node(reference).await?.node;
        let in_raft = active
            .raft()?
            .members()
            .iter()
            .any(|(_, m)| m.node_id == node.id);
        check_removal(&node, in_raft, force)?;
        let cluster = active
            .store()?
            .read(|s| s.cluster().cloned())
            .ok_or_else(|| SwarmError::Internal("could not fetch cluster object".into()))?;
        let cluster = blacklist(cluster, &node, Utc::now());
        active
            .propose(vec![
                Action::Update(Object::Cluster(cluster)),
                Action::Remove {
                    kind: Kind::Node,
                    id: node.id,
                },
            ])
            .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn node(id: &str, host: &str, role: NodeRole, state: NodeState) -> Node {
        let mut n = Node {
            id: id.into(),
            role,
            ..Node::default()
        };
        n.spec.desired_role = role;
        n.description.hostname = host.into();
        n.status.state = state;
        n
    }

    fn member(id: &str, reachable: bool) -> MemberView {
        MemberView {
            node_id: id.into(),
            reachable,
        }
    }

    #[test]
    fn demotion_follows_swarmkits_checks() {
        let m1 = node("m1", "a", NodeRole::Manager, NodeState::Ready);
        let w1 = node("w1", "b", NodeRole::Worker, NodeState::Ready);
        let err =
            check_demotion(&[m1.clone(), w1.clone()], &[member("m1", true)], "m1").unwrap_err();
        assert_eq!(
            err.to_string(),
            "rpc error: code = FailedPrecondition desc = attempting to demote the last manager of the swarm"
        );
        assert_eq!(err.http_status(), 400);

        let m2 = node("m2", "c", NodeRole::Manager, NodeState::Ready);
        let m3 = node("m3", "d", NodeRole::Manager, NodeState::Ready);
        let nodes = [m1, m2, m3, w1];
        let err =
            check_demotion(&nodes, &[member("m1", true), member("m2", true)], "m3").unwrap_err();
        assert_eq!(
            err.to_string(),
            "rpc error: code = NotFound desc = can't find manager in raft memberlist"
        );
        assert_eq!(err.http_status(), 404);

        // three managers, one unreachable: removing a reachable one
        // leaves one reachable of the two a quorum needs
        let members = [member("m1", true), member("m2", true), member("m3", false)];
        let err = check_demotion(&nodes, &members, "m2").unwrap_err();
        assert_eq!(
            err.to_string(),
            "rpc error: code = FailedPrecondition desc = can't remove member from the raft: this would result in a loss of quorum"
        );
        // removing the unreachable one is fine, and so is any with all up
        check_demotion(&nodes, &members, "m3").unwrap();
        let all = [member("m1", true), member("m2", true), member("m3", true)];
        check_demotion(&nodes, &all, "m1").unwrap();
        // two managers: one may go while the other is reachable
        assert!(can_remove_member(&all[..2], "m2"));
        assert!(!can_remove_member(
            &[member("m1", true), member("m2", false)],
            "m1"
        ));
    }

    #[test]
    fn removal_needs_a_down_worker_or_force() {
        let ready = node("w1", "b", NodeRole::Worker, NodeState::Ready);
        let err = check_removal(&ready, false, false).unwrap_err();
        assert_eq!(
            err.to_string(),
            "rpc error: code = FailedPrecondition desc = node w1 is not down and can't be removed"
        );
        check_removal(&ready, false, true).unwrap();
        let down = node("w1", "b", NodeRole::Worker, NodeState::Down);
        check_removal(&down, false, false).unwrap();
        let manager = node("m1", "a", NodeRole::Manager, NodeState::Down);
        let err = check_removal(&manager, true, true).unwrap_err();
        assert!(
            err.to_string()
                .ends_with("node m1 is a cluster manager and is a member of the raft cluster. It must be demoted to worker before removal"),
            "{err}"
        );
        // demoted but not yet a worker, and out of the raft: it may go
        check_removal(&manager, false, false).unwrap();
    }

    #[test]
    fn a_removed_nodes_entry_replaces_expired_ones() {
        let now = Utc::now();
        let mut c = Cluster::default();
        c.blacklisted_certificates
            .insert("old".into(), Some(now - chrono::Duration::hours(1)));
        c.blacklisted_certificates.insert("forever".into(), None);
        let c = blacklist(c, &node("w1", "b", NodeRole::Worker, NodeState::Down), now);
        let ids: Vec<&str> = c
            .blacklisted_certificates
            .keys()
            .map(String::as_str)
            .collect();
        assert_eq!(ids, ["forever", "w1"]);
    }

    fn filters(pairs: &[(&str, &str)]) -> Result<NodeFilters, SwarmError> {
        let mut m: HashMap<String, Vec<String>> = HashMap::new();
        for (k, v) in pairs {
            m.entry(k.to_string()).or_default().push(v.to_string());
        }
        NodeFilters::parse(&m)
    }

    #[test]
    fn filters_match_as_swarmkit_lists() {
        let mut a = node("abc1", "alpha", NodeRole::Manager, NodeState::Ready);
        a.spec
            .annotations
            .labels
            .insert("zone".into(), "east".into());
        a.description
            .engine_labels
            .insert("disk".into(), "ssd".into());
        let b = node("abd2", "beta", NodeRole::Worker, NodeState::Down);
        let names = |f: NodeFilters| -> Vec<String> {
            [&a, &b]
                .iter()
                .filter(|n| f.matches(n))
                .map(|n| n.description.hostname.clone())
                .collect()
        };
        assert_eq!(names(filters(&[]).unwrap()), ["alpha", "beta"]);
        assert_eq!(names(filters(&[("id", "abc")]).unwrap()), ["alpha"]);
        assert_eq!(names(filters(&[("id", "ab")]).unwrap()), ["alpha", "beta"]);
        assert_eq!(names(filters(&[("name", "be")]).unwrap()), ["beta"]);
        assert_eq!(names(filters(&[("role", "worker")]).unwrap()), ["beta"]);
        assert_eq!(
            names(filters(&[("role", "worker"), ("role", "Manager")]).unwrap()),
            ["alpha", "beta"]
        );
        assert_eq!(
            names(filters(&[("node.label", "zone")]).unwrap()),
            ["alpha"]
        );
        assert_eq!(
            names(filters(&[("node.label", "zone=west")]).unwrap()).len(),
            0
        );
        assert_eq!(names(filters(&[("label", "disk=ssd")]).unwrap()), ["alpha"]);
        assert_eq!(
            names(filters(&[("membership", "accepted"), ("id", "abd")]).unwrap()),
            ["beta"]
        );
        assert_eq!(
            filters(&[("bogus", "x")]).unwrap_err().to_string(),
            "invalid filter 'bogus'"
        );
        assert_eq!(filters(&[("bogus", "x")]).unwrap_err().http_status(), 400);
        assert_eq!(
            filters(&[("role", "boss")]).unwrap_err().to_string(),
            "Invalid role filter: 'boss'"
        );
    }
}
