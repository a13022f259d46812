//! Role changes, as swarmkit's role manager (manager/role_manager.go) and
//! node (node/node.go) make them. `node update --role` only sets the
//! desired role; then:
//! - on the leader, the role manager reconciles each node's role with its
//!   desired role: a promotion sets the role at once; a demotion first
//!   takes the manager out of the Raft membership, then sets the role;
//! - on the node, the agent learns its role from its heartbeat's answer,
//!   gets a certificate for it, and starts (or stops) serving as a
//!   manager; a new manager joins the Raft as a learner, then a voter.

use std::sync::Arc;
use std::time::Duration;

use berth_swarm_ca::{NodeCert, NodeKey, Role, RootCa};
use berth_swarm_rpc::pb;
use berth_swarm_rpc::pb::node_ca_client::NodeCaClient;
use berth_swarm_store::{Action, Node, NodeRole, Object};

use crate::active::Active;
use crate::join::{bind, join_raft, random_raft_id, wait_for_leader};
use crate::nodes::{MemberView, can_remove_member};
use crate::state::{Credentials, Paths};
use crate::{Swarm, SwarmError};

/// How often the leader's role manager looks for nodes to reconcile.
const RECONCILE_EVERY: Duration = Duration::from_millis(300);

/// On the leader: every node's role brought to its desired role.
pub fn spawn_role_manager(node: Arc<Active>) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        loop {
            tokio::time::sleep(RECONCILE_EVERY).await;
            let Ok(raft) = node.raft() else { return };
            if !raft.is_leader() {
                continue;
            }
            let pending: Vec<Node> = raft.store().read(|s| {
                s.nodes()
                    .filter(|n| n.role != n.spec.desired_role)
                    .cloned()
                    .collect()
            });
            for n in pending {
                if let Err(e) = reconcile(&node, n).await {
                    tracing::debug!("role change: {e}");
                }
            }
        }
    })
}

async fn reconcile(node: &Active, mut n: Node) -> Result<(), SwarmError> {
    let raft = node.raft()?;
    if n.spec.desired_role == NodeRole::Worker {
        let members = raft.members();
        if let Some((raft_id, _)) = members.iter().find(|(_, m)| m.node_id == n.id) {
            // still a Raft member: out of the Raft first, the role after
            // (on the next round, maybe by the next leader)
            let views: Vec<MemberView> = raft.store().read(|s| {
                members
                    .iter()
                    .map(|(id, m)| MemberView {
                        node_id: m.node_id.clone(),
                        reachable: *id == raft.id()
                            || s.node(&m.node_id).is_some_and(|x| {
                                x.status.state == berth_swarm_store::NodeState::Ready
                            }),
                    })
                    .collect()
            });
            if !can_remove_member(&views, &n.id) {
                return Err(SwarmError::Internal(format!(
                    "demoting {}: it would leave no quorum; waiting",
                    n.id
                )));
            }
            raft.remove_member(*raft_id)
                .await
                .map_err(crate::active::propose_error)?;
            // the role at once, so that the node stops serving soon: out
            // of the Raft it must not stand for election. A leader that
            // removed itself leaves this to the next one.
            if !raft.is_leader() {
                return Ok(());
            }
            n = match raft.store().read(|s| s.node(&n.id).cloned()) {
                Some(fresh) => fresh,
                None => return Ok(()),
            };
        }
    }
    n.role = n.spec.desired_role;
    node.propose(vec![Action::Update(Object::Node(n))]).await
}

impl Swarm {
    /// On the node: takes the role the managers gave it. Runs on a task
    /// of its own: it stops the node's tasks, the agent among them.
    pub(crate) async fn take_role(self, old: Arc<Active>, role: NodeRole) {
        let mut guard = self.active.lock().await;
        if !guard.as_ref().is_some_and(|a| Arc::ptr_eq(a, &old)) {
            return; // the node left or changed since
        }
        // what can fail before the node stops serving in its old role
        // a manager joining the Raft again (`agent`) frees its own port
        let rejoin = role == NodeRole::Manager && old.is_manager();
        let ready = async {
            let creds = renew(&old, ca_role(role)).await?;
            let listener = match role {
                NodeRole::Manager if !rejoin => Some(bind(&old.local().listen_addr).await?),
                _ => None,
            };
            Ok::<_, SwarmError>((creds, listener))
        };
        let (creds, mut listener) = match ready.await {
            Ok(r) => r,
            Err(e) => {
                tracing::warn!("taking the {role:?} role: {e}");
                return;
            }
        };
        old.halt().await;
        if rejoin {
            tracing::info!("this manager is out of the raft: joining it again");
            listener = match bind(&old.local().listen_addr).await {
                Ok(l) => Some(l),
                Err(e) => {
                    tracing::warn!("joining the raft again: {e}");
                    *guard = self.restart_from_disk().await;
                    return;
                }
            };
        }
        let result = match listener {
            Some(l) => self.promote_self(&old, creds, l).await,
            None => self.demote_self(&old, creds).await,
        };
        match result {
            Ok(node) => {
                tracing::info!("this node took the {role:?} role");
                *guard = Some(node);
            }
            Err(e) => {
                // back to what the disk says; the next heartbeat retries
                tracing::warn!("taking the {role:?} role: {e}");
                *guard = self.restart_from_disk().await;
            }
        }
    }

    async fn restart_from_disk(&self) -> Option<Arc<Active>> {
        let paths = Paths::new(&self.settings.dir);
        let loaded = paths.load(&mut crate::keys::lock(&self.keys)).ok()?;
        let crate::state::Loaded::Ready(state, creds) = loaded else {
            return None;
        };
        if !state.manager {
            let _ = std::fs::remove_dir_all(paths.raft());
        }
        let listener = match state.manager {
            true => Some(bind(&state.listen_addr).await.ok()?),
            false => None,
        };
        let node = self.start(state, *creds, listener).await.ok()?;
        node.tasks
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(crate::agent::spawn_agent(node.clone(), self.clone()));
        Some(node)
    }

    async fn promote_self(
        &self,
        old: &Arc<Active>,
        creds: Credentials,
        listener: tokio::net::TcpListener,
    ) -> Result<Arc<Active>, SwarmError> {
        let mut state = old.local();
        let remotes = state.managers.clone();
        state.manager = true;
        let raft_id = random_raft_id()?;
        state.raft_id = Some(raft_id);
        let paths = Paths::new(&self.settings.dir);
        let _ = std::fs::remove_dir_all(paths.raft());
        let rejoin = old.is_manager();
        {
            // a new DEK for the new log: a manager joining again knows the
            // unlock key and writes it sealed at once; a promoted worker
            // holds it in memory until it learns the key
            let mut keys = crate::keys::lock(&self.keys);
            keys.dek = None;
            keys.pending_dek = None;
            keys.held = !rejoin;
        }
        if rejoin {
            // the new member id on disk before its log: a kill from here on
            // restarts a manager out of the Raft, which joins again
            paths
                .save_state(&state)
                .map_err(|e| SwarmError::internal("saving the swarm state", e))?;
        }
        let node = self.start(state.clone(), creds, Some(listener)).await?;
        let mut joined = Err(SwarmError::Internal("no manager to join".into()));
        for remote in &remotes {
            joined = join_raft(&node, remote, raft_id, &state.advertise_addr).await;
            if joined.is_ok() {
                break;
            }
        }
        let joined = match joined {
            Ok(()) => wait_for_leader(node.raft()?).await,
            Err(e) => Err(e),
        };
        if let Err(e) = joined {
            node.halt().await;
            return Err(e);
        }
        match self.settle(node.clone(), &state).await {
            Ok(n) => Ok(n),
            Err(e) => {
                node.halt().await;
                Err(e)
            }
        }
    }

    async fn demote_self(
        &self,
        old: &Arc<Active>,
        creds: Credentials,
    ) -> Result<Arc<Active>, SwarmError> {
        let mut state = old.local();
        state.manager = false;
        state.raft_id = None;
        // its own address no longer answers heartbeats
        if state.managers.len() > 1 {
            state.managers.retain(|a| *a != state.advertise_addr);
        }
        let node = self.start(state.clone(), creds, None).await?;
        let node = self.settle(node, &state).await?;
        let _ = std::fs::remove_dir_all(Paths::new(&self.settings.dir).raft());
        Ok(node)
    }

    /// The new role made durable, and the node's agent started.
    async fn settle(
        &self,
        node: Arc<Active>,
        state: &crate::state::LocalState,
    ) -> Result<Arc<Active>, SwarmError> {
        let paths = Paths::new(&self.settings.dir);
        crate::dek::learn_kek(&node).await?;
        node.save_credentials(&node.creds())
            .and_then(|()| paths.save_state(state))
            .map_err(|e| SwarmError::internal("saving the swarm state", e))?;
        node.tasks
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .extend([
                crate::agent::spawn_agent(node.clone(), self.clone()),
                crate::renewer::spawn_renewer(node.clone()),
            ]);
        Ok(node)
    }
}

fn ca_role(r: NodeRole) -> Role {
    match r {
        NodeRole::Manager => Role::Manager,
        NodeRole::Worker => Role::Worker,
    }
}

/// A new key and a certificate for `role` from the managers, asked with
/// the node's current certificate. A manager whose store is behind may
/// still sign the old role: ask again until the role is right.
async fn renew(node: &Active, role: Role) -> Result<Credentials, SwarmError> {
    let root = RootCa::from_pem(node.creds().root.cert_pem(), None)
        .map_err(|e| SwarmError::internal("reading the root", e))?;
    let managers = node.local().managers;
    let mut last = String::from("no manager known");
    for _ in 0..20 {
        for addr in &managers {
            match renew_at(node, addr, &root).await {
                Ok((cert, key)) if cert.identity.role == role => {
                    return Ok(Credentials { root, cert, key });
                }
                Ok(_) => last = format!("{addr} signed the old role"),
                Err(e) => last = format!("{addr}: {e}"),
            }
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    Err(SwarmError::Internal(format!(
        "renewing the certificate: {last}"
    )))
}

async fn renew_at(
    node: &Active,
    addr: &str,
    root: &RootCa,
) -> Result<(NodeCert, NodeKey), SwarmError> {
    let key = NodeKey::generate().map_err(|e| SwarmError::internal("making a key", e))?;
    let csr = key
        .csr_pem()
        .map_err(|e| SwarmError::internal("making a request", e))?;
    let channel = node.peers.channel(addr).map_err(SwarmError::Internal)?;
    let mut ca =
        NodeCaClient::new(channel).max_decoding_message_size(berth_swarm_rpc::MAX_MESSAGE_BYTES);
    let issued = ca
        .issue_node_certificate(pb::IssueNodeCertificateRequest {
            csr,
            token: String::new(),
            availability: String::new(),
        })
        .await
        .map_err(|s| SwarmError::from_status(&s))?
        .into_inner();
    let status = ca
        .node_certificate_status(pb::NodeCertificateStatusRequest {
            node_id: issued.node_id,
        })
        .await
        .map_err(|s| SwarmError::from_status(&s))?
        .into_inner();
    let cert =
        NodeCert::parse(&status.certificate).map_err(|e| SwarmError::Internal(e.to_string()))?;
    if !root.verifies(&cert) || !cert.matches(&key) {
        return Err(SwarmError::Internal(
            "the manager's certificate is not for this key yet".into(),
        ));
    }
    Ok((cert, key))
}
