//! Every node's heartbeat to the managers, and the leader's watch for
//! nodes that stopped beating.

use std::sync::Arc;
use std::time::{Duration, Instant};

use berth_swarm_rpc::pb::dispatcher_client::DispatcherClient;
use berth_swarm_rpc::pb::{Blob, HeartbeatRequest};
use berth_swarm_store::{Action, NodeRole, NodeState, Object};

use crate::active::Active;
use crate::services::HeartbeatReport;

/// A node is down after this many periods without a heartbeat (swarmkit).
const MISSED_BEATS: u32 = 3;
/// A node whose task session ended is down after one heartbeat period
/// without a beat, and never sooner than this.
const MIN_SESSION_GRACE: Duration = Duration::from_secs(2);

impl Active {
    pub fn heartbeat_period(&self) -> Duration {
        if let Some(p) = self.settings.heartbeat_period {
            return p;
        }
        let from_spec = self
            .store()
            .ok()
            .and_then(|s| s.read(|st| st.cluster().map(|c| c.spec.dispatcher_heartbeat_period)));
        match from_spec {
            Some(ns) if ns > 0 => Duration::from_nanos(ns as u64),
            _ => Duration::from_secs(5),
        }
    }

    fn report(&self) -> HeartbeatReport {
        let d = &self.settings.description;
        HeartbeatReport {
            node_id: self.identity.node_id.clone(),
            hostname: d.hostname.clone(),
            engine_version: d.engine_version.clone(),
            os: d.os.clone(),
            architecture: d.architecture.clone(),
            nano_cpus: d.nano_cpus,
            memory_bytes: d.memory_bytes,
            addr: String::new(),
            data_addr: self.local().data_path_addr,
            tls_info: Some(self.tls_info()),
            session_lost: false,
        }
    }

    /// One heartbeat to the managers this node knows, in turn until one
    /// answers; the period to wait before the next, and the role the
    /// managers give this node.
    pub async fn beat(&self) -> Option<(Duration, Option<NodeRole>)> {
        let json = serde_json::to_vec(&self.report()).ok()?;
        let managers = self.local().managers;
        for addr in &managers {
            let Ok(channel) = self.peers.channel(addr) else {
                continue;
            };
            let req = HeartbeatRequest {
                report: Some(Blob { json: json.clone() }),
            };
            match DispatcherClient::new(channel)
                .max_decoding_message_size(berth_swarm_rpc::MAX_MESSAGE_BYTES)
                .heartbeat(req)
                .await
            {
                Ok(answer) => {
                    let a = answer.into_inner();
                    self.learn_managers(a.managers);
                    let role = NodeRole::parse(&a.role);
                    if self.adopt_root(&a.root_ca) {
                        // report the new trust root at once: a rotation's
                        // client waits for it
                        return Some((Duration::from_millis(100), role));
                    }
                    if a.renew {
                        self.renew_now.notify_one();
                    }
                    return Some((Duration::from_millis(a.period_ms.max(100)), role));
                }
                Err(e) => tracing::debug!("heartbeat to {addr}: {}", e.message()),
            }
        }
        None
    }

    fn learn_managers(&self, managers: Vec<String>) {
        if managers.is_empty() {
            return;
        }
        let mut st = self.state.lock().unwrap_or_else(|e| e.into_inner());
        if st.managers != managers {
            st.managers = managers;
            if let Err(e) = self.paths.save_state(&st) {
                tracing::warn!("saving the swarm state: {e}");
            }
        }
    }
}

/// The node's heartbeats; when the managers give it another role, the
/// change runs on a task of its own (it ends this one).
pub fn spawn_agent(node: Arc<Active>, swarm: crate::Swarm) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut change: Option<tokio::task::JoinHandle<()>> = None;
        let mut stranded_since: Option<Instant> = None;
        loop {
            let (wait, role) = node.beat().await.unwrap_or((Duration::from_secs(1), None));
            let stranded = node.raft.as_ref().is_some_and(|r| !r.is_voter());
            stranded_since = stranded.then(|| stranded_since.unwrap_or_else(Instant::now));
            let idle = change.as_ref().is_none_or(|c| c.is_finished());
            let due = role.filter(|r| idle && role_change_due(&node, *r, stranded_since));
            if let Some(role) = due {
                change = Some(tokio::spawn(swarm.clone().take_role(node.clone(), role)));
                // a new role comes with its own heartbeats soon
                tokio::time::sleep(Duration::from_millis(200)).await;
                continue;
            }
            tokio::select! {
                _ = tokio::time::sleep(wait) => {}
                _ = node.beat_now.notified() => {}
            }
        }
    })
}

/// How long a manager may find itself out of the Raft while the managers
/// still call it a manager before it joins again: a demotion in progress
/// writes the worker role in that time. swarmkit waits likewise
/// (`roleChangeTimeout`) for a manager demoted and promoted again before
/// it noticed.
const STRANDED_GRACE: Duration = Duration::from_secs(3);

/// Whether the node must take `role` now: a role it does not have, or the
/// manager role again when its Raft no longer counts it.
fn role_change_due(node: &Active, role: NodeRole, stranded_since: Option<Instant>) -> bool {
    match (role, node.is_manager()) {
        (NodeRole::Manager, true) => stranded_since.is_some_and(|t| t.elapsed() >= STRANDED_GRACE),
        (NodeRole::Worker, false) => false,
        _ => true,
    }
}

/// On the leader: nodes silent for `MISSED_BEATS` periods go down. A new
/// leader first gives every node a full grace period.
pub fn spawn_monitor(node: Arc<Active>) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut was_leader = false;
        loop {
            tokio::time::sleep(Duration::from_millis(500)).await;
            let Ok(raft) = node.raft() else { return };
            let leader = raft.is_leader();
            if leader && !was_leader {
                let now = Instant::now();
                let ids: Vec<String> = raft
                    .store()
                    .read(|s| s.nodes().map(|n| n.id.clone()).collect());
                let mut seen = node.last_seen.lock().unwrap_or_else(|e| e.into_inner());
                for id in ids {
                    seen.insert(id, now);
                }
            }
            was_leader = leader;
            if leader {
                mark_silent_nodes_down(&node).await;
            }
        }
    })
}

impl Active {
    /// On the leader: `node_id`'s task session ended. Unless the node
    /// beats again within one period (a daemon restart, a move to another
    /// manager), it goes down then rather than after `MISSED_BEATS`.
    pub fn note_session_lost(&self, node_id: &str) {
        self.lost
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(node_id.to_string(), Instant::now());
    }
}

/// A node's task session with this manager ended: the leader is told.
pub async fn session_lost(node: &Active, node_id: &str) {
    let Ok(raft) = node.raft() else { return };
    if raft.is_leader() {
        return node.note_session_lost(node_id);
    }
    let Some((_, leader)) = raft.leader() else {
        return;
    };
    let report = HeartbeatReport {
        node_id: node_id.to_string(),
        session_lost: true,
        ..HeartbeatReport::default()
    };
    let Ok(json) = serde_json::to_vec(&report) else {
        return;
    };
    let Ok(channel) = node.peers.channel(&leader.addr) else {
        return;
    };
    let req = HeartbeatRequest {
        report: Some(Blob { json }),
    };
    if let Err(e) = DispatcherClient::new(channel)
        .max_decoding_message_size(berth_swarm_rpc::MAX_MESSAGE_BYTES)
        .heartbeat(req)
        .await
    {
        tracing::debug!(
            "telling the leader {node_id}'s session ended: {}",
            e.message()
        );
    }
}

async fn mark_silent_nodes_down(node: &Active) {
    let period = node.heartbeat_period();
    let limit = period * MISSED_BEATS;
    let Ok(store) = node.store() else { return };
    // a daemon restart (well under a second for berth) must fit in it
    let session_grace = period.max(MIN_SESSION_GRACE);
    let silent: Vec<_> = {
        let seen = node.last_seen.lock().unwrap_or_else(|e| e.into_inner());
        let lost = node.lost.lock().unwrap_or_else(|e| e.into_inner());
        let quiet = |id: &str| {
            seen.get(id).is_none_or(|t| t.elapsed() > limit)
                || lost.get(id).is_some_and(|t| t.elapsed() > session_grace)
        };
        store.read(|s| {
            s.nodes()
                .filter(|n| n.status.state == NodeState::Ready)
                .filter(|n| quiet(&n.id))
                .cloned()
                .collect()
        })
    };
    for mut n in silent {
        n.status.state = NodeState::Down;
        n.status.message = "heartbeat failure".into();
        if let Err(e) = node.propose(vec![Action::Update(Object::Node(n))]).await {
            tracing::debug!("marking a node down: {e}");
        }
    }
}
