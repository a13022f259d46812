//! The dispatcher's task side, on every manager: a node's assignments
//! streamed from this manager's store, and the task states its agent
//! reports, committed through the leader.

use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use berth_swarm_rpc::pb::Blob;
use std::collections::BTreeSet;

use berth_swarm_store::{
    Action, BlobKind, Event, Network, Node, NodeState, Object, Secret, Store, Task, TaskPatch,
    TaskState,
};
use tokio::sync::broadcast::error::RecvError;
use tokio::sync::mpsc;
use tonic::Status;

use crate::active::Active;
use crate::executor::{AssignmentSet, EndpointView, Leg, NetworkView, PeerView, ServiceRecord};
use crate::worker::reporter::StatusBatch;

pub type AssignmentStream =
    Pin<Box<dyn tokio_stream::Stream<Item = Result<Blob, Status>> + Send + 'static>>;

/// Changes this close together go to the node as one set.
const DEBOUNCE: Duration = Duration::from_millis(5);
/// After a set is sent, changes gather for this many times what making
/// it took, up to `MAX_SETTLE`.
const PACING: u32 = 4;
const MAX_SETTLE: Duration = Duration::from_millis(250);

/// A set without secrets or configs goes as the bare task list an agent
/// of the previous release reads, so that managers can be upgraded first.
fn encode(set: &AssignmentSet) -> serde_json::Result<Vec<u8>> {
    if set.secrets.is_empty() && set.configs.is_empty() && set.networks.is_empty() {
        serde_json::to_vec(&set.tasks)
    } else {
        serde_json::to_vec(set)
    }
}

/// Every task the store gives `node_id`, sent whole now and after each
/// change to one of them.
pub fn assignments(node: Arc<Active>, node_id: String) -> Result<AssignmentStream, Status> {
    // only the leader's store is known to be whole: a follower behind it
    // (or one still catching up after a promotion) would hand out a list
    // missing tasks, and the agent removes what is missing
    if !node.raft().is_ok_and(|r| r.is_leader()) {
        return Err(Status::unavailable("assignments come from the leader"));
    }
    let store = node
        .store()
        .map_err(|e| Status::unavailable(e.to_string()))?
        .clone();
    let (tx, rx) = mpsc::channel(2);
    let watcher = tx.clone();
    let leader_check = node.clone();
    let lost_node = node_id.clone();
    tokio::spawn(async move {
        // the agent hung up (its daemon died, or it moved to another
        // manager): the leader hears of it at once, not heartbeats later
        watcher.closed().await;
        crate::agent::session_lost(&node, &lost_node).await;
    });
    tokio::spawn(async move {
        let mut changes = store.watch();
        let mut last: Option<Vec<u8>> = None;
        loop {
            let started = std::time::Instant::now();
            let set = store.read(|s| assignment_set(s, &node_id));
            let Ok(json) = encode(&set) else {
                return;
            };
            let cost = started.elapsed();
            if last.as_ref() != Some(&json) {
                if tx.send(Ok(Blob { json: json.clone() })).await.is_err() {
                    return;
                }
                last = Some(json);
            }
            // a whole set is sent each time: for a node with many tasks
            // the sets come further apart, so that sending them never
            // takes the whole machine
            let settle = (cost * PACING).clamp(DEBOUNCE, MAX_SETTLE);
            tokio::select! {
                more = next_change(&mut changes, &node_id, settle) => if !more { return },
                _ = tx.closed() => return,
            }
            if !node_leads(&leader_check) {
                // the agent moves to the new leader
                return;
            }
        }
    });
    Ok(Box::pin(tokio_stream::wrappers::ReceiverStream::new(rx)))
}

fn node_leads(node: &Active) -> bool {
    node.raft().is_ok_and(|r| r.is_leader())
}

/// Waits for a change to one of the node's tasks; false once the store
/// is gone.
async fn next_change(
    changes: &mut tokio::sync::broadcast::Receiver<Arc<Event>>,
    node_id: &str,
    settle: Duration,
) -> bool {
    loop {
        match changes.recv().await {
            Ok(e) if touches(&e, node_id) => break,
            Ok(_) => continue,
            Err(RecvError::Lagged(_)) => break,
            Err(RecvError::Closed) => return false,
        }
    }
    tokio::time::sleep(settle).await;
    while changes.try_recv().is_ok() {}
    true
}

/// A change the node may have to hear of: to one of its tasks, to a
/// secret or config, or to anything on a swarm network (a peer, a
/// service's VIP, a node going down). Whether it matters to this node is
/// seen when the set is made again; an unchanged set is not sent.
fn touches(e: &Event, node_id: &str) -> bool {
    let on_node = |o: &Object| match o {
        Object::Task(t) => t.node_id == node_id || !t.networks.is_empty(),
        Object::Service(s) => {
            !s.spec.task_template.networks.is_empty() || !s.endpoint.ports.is_empty()
        }
        Object::Secret(_) | Object::Config(_) | Object::Network(_) | Object::Node(_) => true,
        _ => false,
    };
    on_node(&e.object) || e.old.as_ref().is_some_and(on_node)
}

/// The node's tasks, and the secrets and configs used by those that have
/// not ended (swarmkit's rule: a task told to stop keeps its files until
/// it has stopped). No other node's secret is ever in it.
pub fn assignment_set(store: &Store, node_id: &str) -> AssignmentSet {
    // an attachment is the node's own container: no agent runs it, but
    // its network is the node's to keep
    let (attachments, tasks): (Vec<Task>, Vec<Task>) = store
        .tasks()
        .filter(|t| t.node_id == node_id)
        .cloned()
        .partition(|t| t.attachment.is_some());
    let mut wanted: BTreeSet<(BlobKind, String)> = BTreeSet::new();
    for t in tasks
        .iter()
        .filter(|t| t.status.state <= TaskState::Running)
    {
        if let Some(c) = &t.spec.container_spec {
            wanted.extend(c.blob_refs().map(|r| (r.kind, r.id.to_string())));
        }
    }
    let pick = |kind: BlobKind| -> Vec<Secret> {
        wanted
            .iter()
            .filter(|(k, _)| *k == kind)
            .filter_map(|(_, id)| store.blob(kind, id).cloned())
            .collect()
    };
    AssignmentSet {
        secrets: pick(BlobKind::Secret),
        configs: pick(BlobKind::Config),
        networks: network_views(store, tasks.iter().chain(&attachments)),
        data_port: store.cluster().map_or(0, |c| c.data_path_port),
        tasks,
    }
}

/// The networks the node's live tasks are on, each with all its peers;
/// and ingress on every node while a service publishes through the mesh.
fn network_views<'t>(store: &Store, mine: impl Iterator<Item = &'t Task>) -> Vec<NetworkView> {
    let mut needed: BTreeSet<&str> = mine
        .filter(|t| t.status.state <= TaskState::Running)
        .flat_map(|t| t.networks.iter().map(|a| a.network_id.as_str()))
        .collect();
    if store.services().any(berth_swarm_store::publishes_ingress)
        && let Some(ingress) = store.networks().find(|n| n.spec.ingress)
    {
        needed.insert(&ingress.id);
    }
    needed
        .into_iter()
        .filter_map(|id| store.network(id))
        .map(|n| network_view(store, n))
        .collect()
}

/// A node's VXLAN endpoint: its `--data-path-addr`, or else the address
/// it is seen at (an IPv4-mapped one, a dual-stack listener's view, as
/// plain IPv4).
fn vtep_of(node: &Node) -> String {
    if !node.data_addr.is_empty() {
        return node.data_addr.clone();
    }
    let addr = &node.status.addr;
    addr.strip_prefix("::ffff:").unwrap_or(addr).to_string()
}

pub(crate) fn network_view(store: &Store, n: &Network) -> NetworkView {
    let node_up = |id: &str| {
        store
            .node(id)
            .is_some_and(|node| node.status.state != NodeState::Down)
    };
    let vtep = |id: &str| store.node(id).map(vtep_of);
    let endpoints: Vec<EndpointView> = store
        .tasks()
        .filter(|t| t.status.state <= TaskState::Running && !t.node_id.is_empty())
        .filter_map(|t| {
            let a = t.networks.iter().find(|a| a.network_id == n.id)?;
            Some(EndpointView {
                task_id: t.id.clone(),
                name: t.container_name(),
                service_id: t.service_id.clone(),
                node_id: t.node_id.clone(),
                vtep: vtep(&t.node_id)?,
                address: a.addresses.first()?.clone(),
                container: t.attachment.as_ref().map(|a| a.container_id.clone()),
                serving: t.status.state == TaskState::Running
                    && t.desired_state <= TaskState::Running
                    && node_up(&t.node_id),
            })
        })
        .collect();
    let services = store
        .services()
        .filter_map(|s| {
            let aliases = if n.spec.ingress {
                if !berth_swarm_store::publishes_ingress(s) {
                    return None;
                }
                Vec::new()
            } else {
                let attached = s.spec.task_template.networks.iter();
                attached
                    .into_iter()
                    .find(|a| a.target == n.id)?
                    .aliases
                    .clone()
            };
            Some(ServiceRecord {
                id: s.id.clone(),
                name: s.spec.name.clone(),
                aliases,
                vip: s
                    .endpoint
                    .virtual_ips
                    .iter()
                    .find(|v| v.network_id == n.id)
                    .map(|v| v.addr.clone())
                    .unwrap_or_default(),
                ports: if n.spec.ingress {
                    s.endpoint.ports.clone()
                } else {
                    Vec::new()
                },
            })
        })
        .collect();
    let legs = if n.spec.ingress {
        store
            .nodes()
            .filter(|node| !node.ingress_addr.is_empty() && !node.status.addr.is_empty())
            .map(|node| Leg {
                node_id: node.id.clone(),
                vtep: vtep_of(node),
                address: node.ingress_addr.clone(),
            })
            .collect()
    } else {
        Vec::new()
    };
    let peers = peers_of(store, &endpoints, &legs);
    NetworkView {
        network: n.clone(),
        endpoints,
        services,
        legs,
        peers,
    }
}

/// The nodes with a live endpoint (or a leg) on the network.
fn peers_of(store: &Store, endpoints: &[EndpointView], legs: &[Leg]) -> Vec<PeerView> {
    let nodes: BTreeSet<&str> = endpoints
        .iter()
        .map(|e| e.node_id.as_str())
        .chain(legs.iter().map(|l| l.node_id.as_str()))
        .collect();
    let mut peers: Vec<PeerView> = nodes
        .into_iter()
        .filter_map(|id| store.node(id))
        .map(|node| PeerView {
            name: format!(
                "{}-{}",
                node.description.hostname,
                node.id.get(..12).unwrap_or(&node.id)
            ),
            ip: vtep_of(node),
        })
        .collect();
    peers.sort_by(|a, b| a.ip.cmp(&b.ip));
    peers
}

/// Commits the states a node's agent reports, for that node's tasks only.
pub async fn update_task_status(
    node: &Active,
    caller_node: &str,
    raw: &[u8],
) -> Result<(), Status> {
    let batch: StatusBatch = serde_json::from_slice(raw)
        .map_err(|e| Status::invalid_argument(format!("task states: {e}")))?;
    let store = node
        .store()
        .map_err(|e| Status::unavailable(e.to_string()))?;
    let actions: Vec<Action> = store.read(|s| {
        batch
            .statuses
            .into_iter()
            .filter(|(id, _)| s.task(id).is_some_and(|t| t.node_id == caller_node))
            .map(|(id, status)| Action::PatchTask {
                id,
                patch: TaskPatch {
                    status: Some(status),
                    ..TaskPatch::default()
                },
            })
            .collect()
    });
    if actions.is_empty() {
        return Ok(());
    }
    node.propose(actions)
        .await
        .map_err(|e| Status::unavailable(e.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use berth_swarm_store::{Blob, ContainerSpec, SecretReference, TaskStatus};

    fn secret(id: &str) -> Secret {
        let mut x = Secret {
            id: id.into(),
            ..Secret::default()
        };
        x.spec.name = format!("name-{id}");
        x.spec.data = Blob(id.as_bytes().to_vec());
        x
    }

    fn task(id: &str, node: &str, secret: &str, state: TaskState) -> Task {
        let mut c = ContainerSpec::default();
        c.secrets.push(SecretReference {
            secret_id: secret.into(),
            secret_name: format!("name-{secret}"),
            ..SecretReference::default()
        });
        let mut t = Task {
            id: id.into(),
            node_id: node.into(),
            status: TaskStatus {
                state,
                ..TaskStatus::default()
            },
            ..Task::default()
        };
        t.spec.container_spec = Some(c);
        t
    }

    #[test]
    fn a_node_gets_only_the_secrets_of_its_tasks_that_have_not_ended() {
        let mut st = Store::default();
        let actions = vec![
            Action::Create(Object::Secret(secret("s1"))),
            Action::Create(Object::Secret(secret("s2"))),
            Action::Create(Object::Secret(secret("s3"))),
            Action::Create(Object::Task(task("t1", "a", "s1", TaskState::Running))),
            Action::Create(Object::Task(task("t2", "b", "s2", TaskState::Running))),
            Action::Create(Object::Task(task("t3", "a", "s3", TaskState::Complete))),
        ];
        st.apply(&actions, 1, chrono::Utc::now()).unwrap();
        let set = assignment_set(&st, "a");
        assert_eq!(set.tasks.len(), 2);
        let ids: Vec<&str> = set.secrets.iter().map(|x| x.id.as_str()).collect();
        assert_eq!(ids, ["s1"], "not b's secret, not an ended task's");
        assert!(set.configs.is_empty());
    }
}
