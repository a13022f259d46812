//! A log request on a manager: the service's or task's nodes from the
//! store, a subscription on the agents connected here, relays from the
//! other managers for theirs, and every line merged into one feed as it
//! comes (swarmkit does not sort across tasks either). Without follow
//! the feed ends once every node reached has finished, with swarmkit's
//! warning naming what could not be read.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use berth_swarm_rpc::pb::Blob;
use berth_swarm_rpc::pb::logs_client::LogsClient;
use berth_swarm_store::{Task, TaskState};
use tokio::sync::mpsc;

use super::{
    BrokerEvent, LocalSubscription, LogEvent, LogFeed, LogOptions, LogSelector, RelayMessage,
    RelayRequest,
};
use crate::active::Active;
use crate::{Swarm, SwarmError};

/// How long another manager may take to say which nodes it serves.
const RELAY_OPEN_TIMEOUT: Duration = Duration::from_secs(5);
const FEED_BUFFER: usize = 64;

/// What a log request reads: `/services/{id}/logs` or `/tasks/{id}/logs`.
#[derive(Clone, Debug)]
pub enum LogTarget {
    Service(String),
    Task(String),
}

/// A request resolved against the store.
struct Plan {
    selector: LogSelector,
    tty: bool,
    /// the nodes to read; None for every node (follow)
    nodes: Option<HashSet<String>>,
    /// reasons known before reading: tasks not scheduled yet
    unscheduled: Vec<String>,
}

/// What the gatherer hears from its sources.
enum Gathered {
    Event(BrokerEvent),
    /// a source serves these nodes
    Served(Vec<String>),
    /// every source is open; these nodes none serves
    Unreached(Vec<String>),
}

impl Swarm {
    /// The logs of a service's or a task's containers, on whatever node
    /// they run (dockerd's ServiceLogs).
    pub async fn logs(
        &self,
        target: LogTarget,
        options: LogOptions,
    ) -> Result<LogFeed, SwarmError> {
        let node = self.manager().await?;
        let plan = self.plan(target, options.follow).await?;
        let id = berth_swarm_ca::new_id().map_err(|e| SwarmError::internal("a log id", e))?;
        let local = node.logs.subscribe(
            id,
            plan.selector.clone(),
            options.clone(),
            plan.nodes.clone(),
        );
        let (tx, events) = mpsc::channel(FEED_BUFFER);
        let request = RelayRequest {
            selector: plan.selector,
            options,
            nodes: plan.nodes.map(|n| {
                let mut v: Vec<String> = n
                    .difference(&local.served.iter().cloned().collect())
                    .cloned()
                    .collect();
                v.sort();
                v
            }),
        };
        tokio::spawn(gather(node, local, request, plan.unscheduled, tx));
        Ok(LogFeed {
            tty: plan.tty,
            events,
        })
    }

    async fn plan(&self, target: LogTarget, follow: bool) -> Result<Plan, SwarmError> {
        let node = self.manager().await?;
        let (selector, tty, tasks) = match target {
            LogTarget::Service(r) => {
                let view = self.service(&r).await?;
                let s = view.service;
                let tty = s
                    .spec
                    .task_template
                    .container_spec
                    .as_ref()
                    .is_some_and(|c| c.tty);
                let tasks: Vec<Task> = node.store()?.read(|st| {
                    st.tasks()
                        .filter(|t| t.service_id == s.id)
                        // without follow, swarmkit reads only tasks that ran
                        .filter(|t| follow || t.status.state >= TaskState::Running)
                        .cloned()
                        .collect()
                });
                let selector = LogSelector {
                    service_ids: vec![s.id.clone()],
                    task_ids: Vec::new(),
                };
                (selector, tty, tasks)
            }
            LogTarget::Task(r) => {
                let t = self.task(&r).await?;
                let tty = t.spec.container_spec.as_ref().is_some_and(|c| c.tty);
                let selector = LogSelector {
                    service_ids: Vec::new(),
                    task_ids: vec![t.id.clone()],
                };
                (selector, tty, vec![t])
            }
        };
        Ok(plan_for(selector, tty, &tasks, follow))
    }
}

/// The nodes to read and the tasks no node has, as swarmkit's
/// subscription matches them.
fn plan_for(selector: LogSelector, tty: bool, tasks: &[Task], follow: bool) -> Plan {
    let mut nodes = HashSet::new();
    let mut unscheduled = Vec::new();
    for t in tasks {
        if t.node_id.is_empty() {
            unscheduled.push(format!("task {} has not been scheduled", t.id));
        } else {
            nodes.insert(t.node_id.clone());
        }
    }
    Plan {
        selector,
        tty,
        // a follower reads every node: tasks may start anywhere later
        nodes: (!follow).then_some(nodes),
        unscheduled: if follow { Vec::new() } else { unscheduled },
    }
}

async fn gather(
    node: Arc<Active>,
    local: LocalSubscription,
    request: RelayRequest,
    unscheduled: Vec<String>,
    tx: mpsc::Sender<LogEvent>,
) {
    let follow = request.options.follow;
    let (sources_tx, mut sources) = mpsc::channel(FEED_BUFFER);
    let mut merge = Merge::new(follow, local.served.clone());
    tokio::spawn(forward_local(local, sources_tx.clone()));
    tokio::spawn(open_relays(node, request, sources_tx));
    while !merge.finished() {
        let heard = tokio::select! {
            h = sources.recv() => h,
            () = tx.closed() => return,
        };
        let Some(heard) = heard else { break };
        for line in merge.take(heard) {
            if tx.send(LogEvent::Line(line)).await.is_err() {
                return;
            }
        }
    }
    if let Some(warning) = merge.warning(unscheduled) {
        let _ = tx.send(LogEvent::Error(warning)).await;
    }
}

/// The bookkeeping of a gathering: which nodes have yet to finish, and
/// why some could not be read.
struct Merge {
    follow: bool,
    pending: HashSet<String>,
    all_open: bool,
    errors: Vec<String>,
}

impl Merge {
    fn new(follow: bool, served_here: Vec<String>) -> Merge {
        Merge {
            follow,
            pending: served_here.into_iter().collect(),
            all_open: false,
            errors: Vec::new(),
        }
    }

    /// Notes what a source said; the lines to pass on.
    fn take(&mut self, heard: Gathered) -> Vec<super::LogLine> {
        match heard {
            Gathered::Event(BrokerEvent::Lines(lines)) => return lines,
            Gathered::Event(BrokerEvent::NodeDone { node, error }) => {
                self.pending.remove(&node);
                self.errors.extend(error);
            }
            Gathered::Served(nodes) => self.pending.extend(nodes),
            Gathered::Unreached(nodes) => {
                self.all_open = true;
                let missing = nodes
                    .into_iter()
                    .map(|n| format!("node {n} is not available"));
                self.errors.extend(missing);
            }
        }
        Vec::new()
    }

    /// A follower never finishes; a reader finishes once every source is
    /// open and every node it reached is done.
    fn finished(&self) -> bool {
        !self.follow && self.all_open && self.pending.is_empty()
    }

    /// swarmkit's words for an incomplete stream (subscription.Err).
    fn warning(self, unscheduled: Vec<String>) -> Option<String> {
        if self.follow {
            return None;
        }
        let mut reasons = self.errors;
        reasons.extend(unscheduled);
        (!reasons.is_empty()).then(|| {
            format!(
                "warning: incomplete log stream. some logs could not be retrieved for the following reasons: {}",
                reasons.join(", ")
            )
        })
    }
}

/// The lines of the agents connected here, until the gatherer goes.
async fn forward_local(mut local: LocalSubscription, out: mpsc::Sender<Gathered>) {
    loop {
        let event = tokio::select! {
            e = local.events.recv() => e,
            () = out.closed() => return,
        };
        let Some(event) = event else { return };
        if out.send(Gathered::Event(event)).await.is_err() {
            return;
        }
    }
}

/// Asks each other manager, one after another, for the nodes still
/// unserved (every node when following), and forwards what each relays.
async fn open_relays(node: Arc<Active>, mut request: RelayRequest, out: mpsc::Sender<Gathered>) {
    for addr in other_managers(&node) {
        if request.nodes.as_ref().is_some_and(Vec::is_empty) {
            break;
        }
        let (served, stream) = match open_relay(&node, &addr, &request).await {
            Ok(r) => r,
            Err(e) => {
                tracing::debug!("log relay from {addr}: {e}");
                continue;
            }
        };
        if let Some(nodes) = &mut request.nodes {
            nodes.retain(|n| !served.contains(n));
        }
        if out.send(Gathered::Served(served.clone())).await.is_err() {
            return;
        }
        tokio::spawn(forward_relay(served, stream, out.clone()));
    }
    let unreached = request.nodes.unwrap_or_default();
    let _ = out.send(Gathered::Unreached(unreached)).await;
}

fn other_managers(node: &Active) -> Vec<String> {
    let Some(raft) = node.raft.as_ref() else {
        return Vec::new();
    };
    let me = raft.id();
    raft.members()
        .into_iter()
        .filter(|(id, _)| *id != me)
        .map(|(_, m)| m.addr)
        .collect()
}

type RelayStream = tonic::Streaming<Blob>;

/// A relay from the manager at `addr`: the nodes it serves, and the rest
/// of its stream.
async fn open_relay(
    node: &Active,
    addr: &str,
    request: &RelayRequest,
) -> Result<(Vec<String>, RelayStream), String> {
    let channel = node.peers.stream_channel(addr)?;
    let json = serde_json::to_vec(request).map_err(|e| e.to_string())?;
    let opening = async {
        let mut stream = LogsClient::new(channel)
            .max_decoding_message_size(berth_swarm_rpc::MAX_MESSAGE_BYTES)
            .subscribe_logs(Blob { json })
            .await
            .map_err(|s| s.message().to_string())?
            .into_inner();
        let first = stream
            .message()
            .await
            .map_err(|s| s.message().to_string())?
            .ok_or("the relay ended before it began")?;
        match serde_json::from_slice(&first.json) {
            Ok(RelayMessage::Served(nodes)) => Ok((nodes, stream)),
            Ok(_) => Err("the relay did not say which nodes it serves".to_string()),
            Err(e) => Err(format!("decoding a relay message: {e}")),
        }
    };
    tokio::time::timeout(RELAY_OPEN_TIMEOUT, opening)
        .await
        .map_err(|_| "timed out".to_string())?
}

/// Passes a relay's lines and node ends on; a relay that breaks ends its
/// unfinished nodes with why.
async fn forward_relay(served: Vec<String>, mut stream: RelayStream, out: mpsc::Sender<Gathered>) {
    let mut pending: HashSet<String> = served.into_iter().collect();
    let broke = loop {
        let msg = tokio::select! {
            m = stream.message() => m,
            () = out.closed() => return,
        };
        let blob = match msg {
            Ok(Some(b)) => b,
            Ok(None) => break None,
            Err(s) => break Some(s.message().to_string()),
        };
        let event = match serde_json::from_slice(&blob.json) {
            Ok(RelayMessage::Lines(lines)) => BrokerEvent::Lines(lines),
            Ok(RelayMessage::NodeDone { node, error }) => {
                pending.remove(&node);
                BrokerEvent::NodeDone { node, error }
            }
            Ok(RelayMessage::Served(_)) => continue,
            Err(e) => break Some(format!("decoding a relay message: {e}")),
        };
        if out.send(Gathered::Event(event)).await.is_err() {
            return;
        }
    };
    let why = broke.unwrap_or_else(|| "its manager's relay ended".into());
    for node in pending {
        let error = Some(format!("node {node} disconnected unexpectedly: {why}"));
        let done = BrokerEvent::NodeDone { node, error };
        if out.send(Gathered::Event(done)).await.is_err() {
            return;
        }
    }
}

#[cfg(test)]
#[path = "gather_tests.rs"]
mod tests;
