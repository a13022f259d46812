//! The gRPC services a manager serves: the CA (first certificates and
//! renewals), Raft (messages, joins, forwarded writes) and the dispatcher
//! (heartbeats). Followers forward what only the leader may do.

use std::sync::Arc;
use std::time::Instant;

use berth_swarm_ca::{NodeIdentity, Role};
use berth_swarm_raft::{Member, ProposeError, RaftRequest};
use berth_swarm_rpc::pb::dispatcher_client::DispatcherClient;
use berth_swarm_rpc::pb::raft_client::RaftClient;
use berth_swarm_rpc::pb::{self, Blob, Empty};
use berth_swarm_rpc::{peer, require_role};
use berth_swarm_store::{
    Action, Availability, CertState, Cluster, Membership, Node, NodeCertificate, NodeRole,
    NodeSpec, NodeState, NodeStatus, Object,
};
use serde::{Deserialize, Serialize};
use tonic::{Request, Response, Status};

use crate::active::Active;

#[derive(Clone)]
pub struct Services {
    pub node: Arc<Active>,
}

/// What a node tells the dispatcher about itself.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct HeartbeatReport {
    pub node_id: String,
    pub hostname: String,
    pub engine_version: String,
    pub os: String,
    pub architecture: String,
    pub nano_cpus: i64,
    pub memory_bytes: i64,
    /// the address its heartbeat came from; set by the first manager
    pub addr: String,
    /// its `--data-path-addr`, if it was given one
    #[serde(default)]
    pub data_addr: String,
    /// the root it trusts and its certificate's issuer
    #[serde(default)]
    pub tls_info: Option<berth_swarm_store::TlsInfo>,
    /// not a heartbeat: a manager tells the leader that the node's task
    /// session ended (`agent::session_lost`)
    #[serde(default)]
    pub session_lost: bool,
}

fn status_of(e: crate::SwarmError) -> Status {
    match e.http_status() {
        400 => Status::invalid_argument(e.to_string()),
        404 => Status::not_found(e.to_string()),
        503 => Status::unavailable(e.to_string()),
        _ => Status::unknown(e.to_string()),
    }
}

impl Services {
    fn cluster(&self) -> Result<Cluster, Status> {
        let store = self.node.store().map_err(status_of)?;
        store
            .read(|s| s.cluster().cloned())
            .ok_or_else(|| Status::unavailable("the cluster is not ready yet"))
    }

    /// The caller's identity, when its certificate is of this cluster.
    fn member<T>(&self, req: &Request<T>) -> Option<NodeIdentity> {
        let id = peer(req)?.identity.clone()?;
        (id.cluster_id == self.node.identity.cluster_id).then_some(id)
    }

    /// swarmkit refuses a removed node's certificate by its CN.
    fn refuse_removed(&self, node_id: &str) -> Result<(), Status> {
        let removed = self.node.store().is_ok_and(|s| {
            s.read(|st| {
                st.cluster()
                    .is_some_and(|c| c.blacklisted_certificates.contains_key(node_id))
            })
        });
        if removed {
            return Err(Status::permission_denied(format!(
                "Permission denied: node {node_id} was removed from swarm"
            )));
        }
        Ok(())
    }

    pub(crate) fn manager<T>(&self, req: &Request<T>) -> Result<NodeIdentity, Status> {
        let id = require_role(req, Role::Manager)?;
        self.refuse_removed(&id.node_id)?;
        if id.cluster_id != self.node.identity.cluster_id {
            return Err(Status::permission_denied(format!(
                "Permission denied: remote certificate not part of organization: {}",
                self.node.identity.cluster_id
            )));
        }
        Ok(id)
    }

    /// Any node of this cluster, speaking for itself.
    pub(crate) fn agent<T>(&self, req: &Request<T>) -> Result<NodeIdentity, Status> {
        let caller = self.member(req).ok_or_else(|| {
            Status::permission_denied(
                "Permission denied: unauthorized peer role: no client certificate",
            )
        })?;
        self.refuse_removed(&caller.node_id)?;
        Ok(caller)
    }

    fn leader_addr(&self) -> Option<String> {
        let raft = self.node.raft.as_ref()?;
        let (id, member) = raft.leader()?;
        (id != raft.id()).then_some(member.addr)
    }

    fn leader_channel(&self) -> Result<tonic::transport::Channel, Status> {
        let addr = self
            .leader_addr()
            .ok_or_else(|| Status::unknown(berth_swarm_raft::NO_LEADER))?;
        self.node.peers.channel(&addr).map_err(Status::unavailable)
    }
}

fn role_of_token(cluster: &Cluster, token: &str) -> Option<NodeRole> {
    let same = berth_swarm_ca::constant_time_eq;
    if !token.is_empty() && same(token, &cluster.root_ca.manager_token) {
        Some(NodeRole::Manager)
    } else if !token.is_empty() && same(token, &cluster.root_ca.worker_token) {
        Some(NodeRole::Worker)
    } else {
        None
    }
}

fn ca_role(r: NodeRole) -> Role {
    match r {
        NodeRole::Manager => Role::Manager,
        NodeRole::Worker => Role::Worker,
    }
}

fn availability(s: &str) -> Availability {
    match s {
        "pause" => Availability::Pause,
        "drain" => Availability::Drain,
        _ => Availability::Active,
    }
}

#[tonic::async_trait]
impl pb::node_ca_server::NodeCa for Services {
    async fn get_root_ca_certificate(
        &self,
        _req: Request<Empty>,
    ) -> Result<Response<pb::RootCaCertificate>, Status> {
        // the cluster's root, which the join tokens' digest covers; the
        // node's own until the store has it
        let certificate = self
            .node
            .store()
            .ok()
            .and_then(|s| s.read(|st| st.cluster().map(|c| c.root_ca.ca_cert.clone())))
            .unwrap_or_else(|| self.node.creds().root.cert_pem().to_string());
        Ok(Response::new(pb::RootCaCertificate { certificate }))
    }

    async fn issue_node_certificate(
        &self,
        req: Request<pb::IssueNodeCertificateRequest>,
    ) -> Result<Response<pb::IssueNodeCertificateResponse>, Status> {
        let caller = self.member(&req);
        let addr = peer(&req)
            .map(|p| p.addr.ip().to_string())
            .unwrap_or_default();
        let r = req.into_inner();
        let cluster = self.cluster()?;
        let (node_id, role, existing) = match caller {
            Some(id) => {
                self.refuse_removed(&id.node_id)?;
                let node = self
                    .node
                    .store()
                    .map_err(status_of)?
                    .read(|s| s.node(&id.node_id).cloned());
                let node = node.ok_or_else(|| {
                    Status::permission_denied(format!(
                        "Permission denied: node {} was removed from swarm",
                        id.node_id
                    ))
                })?;
                (id.node_id, node.role, Some(node))
            }
            None => {
                let role = role_of_token(&cluster, &r.token).ok_or_else(|| {
                    Status::invalid_argument("A valid join token is necessary to join this cluster")
                })?;
                let id = berth_swarm_ca::new_id().map_err(|e| Status::internal(e.to_string()))?;
                (id, role, None)
            }
        };
        let who = NodeIdentity {
            node_id: node_id.clone(),
            role: ca_role(role),
            cluster_id: cluster.id.clone(),
        };
        let cert =
            crate::external_ca::sign_node(&cluster, &self.node.creds(), &r.csr, &who).await?;
        let certificate = NodeCertificate {
            role,
            csr: r.csr.clone(),
            state: CertState::Issued,
            err: String::new(),
            certificate: cert.chain_pem,
            cn: node_id.clone(),
        };
        let action = match existing {
            Some(mut node) => {
                node.certificate = certificate;
                Action::Update(Object::Node(node))
            }
            None => Action::Create(Object::Node(Node {
                id: node_id.clone(),
                spec: NodeSpec {
                    desired_role: role,
                    membership: Membership::Accepted,
                    availability: availability(&r.availability),
                    ..NodeSpec::default()
                },
                role,
                certificate,
                status: NodeStatus {
                    state: NodeState::Unknown,
                    message: String::new(),
                    addr,
                },
                ..Node::default()
            })),
        };
        self.node.propose(vec![action]).await.map_err(status_of)?;
        Ok(Response::new(pb::IssueNodeCertificateResponse { node_id }))
    }

    async fn node_certificate_status(
        &self,
        req: Request<pb::NodeCertificateStatusRequest>,
    ) -> Result<Response<pb::NodeCertificateStatusResponse>, Status> {
        let id = req.into_inner().node_id;
        let node = self
            .node
            .store()
            .map_err(status_of)?
            .read(|s| s.node(&id).cloned());
        let node = node.ok_or_else(|| Status::not_found(format!("node {id} not found")))?;
        let state = match node.certificate.state {
            CertState::Issued => "issued",
            CertState::Failed => "failed",
            CertState::Rotate => "rotate",
            _ => "pending",
        };
        Ok(Response::new(pb::NodeCertificateStatusResponse {
            state: state.into(),
            certificate: node.certificate.certificate,
            error: node.certificate.err,
        }))
    }
}

#[tonic::async_trait]
impl pb::raft_server::Raft for Services {
    async fn message(&self, req: Request<Blob>) -> Result<Response<Blob>, Status> {
        self.manager(&req)?;
        let raft = self.node.raft().map_err(status_of)?;
        let request: RaftRequest = serde_json::from_slice(&req.into_inner().json)
            .map_err(|e| Status::invalid_argument(format!("raft message: {e}")))?;
        if raft.refuses(&request) {
            // swarmkit's words to a member it no longer counts
            return Err(Status::not_found(
                "raft: member was removed from the cluster",
            ));
        }
        let answer = raft.handle(request).await;
        let json = serde_json::to_vec(&answer).map_err(|e| Status::internal(e.to_string()))?;
        Ok(Response::new(Blob { json }))
    }

    async fn join(
        &self,
        req: Request<pb::RaftJoinRequest>,
    ) -> Result<Response<pb::RaftJoinResponse>, Status> {
        let caller = self.manager(&req)?;
        let mut r = req.into_inner();
        if r.node_id.is_empty() {
            r.node_id = caller.node_id;
        }
        let raft = self.node.raft().map_err(status_of)?;
        if !raft.is_leader() {
            let mut leader = RaftClient::new(self.leader_channel()?)
                .max_decoding_message_size(berth_swarm_rpc::MAX_MESSAGE_BYTES);
            return leader.join(r).await;
        }
        // a manager out of the Raft joins again only if it stays one
        let demoting = raft.store().read(|s| {
            s.node(&r.node_id)
                .is_some_and(|n| n.spec.desired_role == NodeRole::Worker)
        });
        if demoting {
            return Err(Status::failed_precondition(format!(
                "node {} is being demoted",
                r.node_id
            )));
        }
        // a node that tried before (and stopped before it knew) may hold
        // a member id of its own already: it goes, not to count as a
        // voter that never answers
        for (stale, m) in raft.members() {
            if m.node_id == r.node_id && stale != r.raft_id {
                raft.remove_member(stale)
                    .await
                    .map_err(|e| Status::unknown(e.to_string()))?;
            }
        }
        let member = Member {
            node_id: r.node_id,
            addr: r.addr,
        };
        raft.add_member(r.raft_id, member)
            .await
            .map_err(|e| Status::unknown(e.to_string()))?;
        Ok(Response::new(pb::RaftJoinResponse { raft_id: r.raft_id }))
    }

    async fn read_index(
        &self,
        req: Request<Empty>,
    ) -> Result<Response<pb::ReadIndexResponse>, Status> {
        self.manager(&req)?;
        let raft = self.node.raft().map_err(status_of)?;
        let index = raft
            .read_index()
            .await
            .map_err(|e| Status::unavailable(e.to_string()))?;
        Ok(Response::new(pb::ReadIndexResponse { index }))
    }

    async fn propose(&self, req: Request<Blob>) -> Result<Response<Blob>, Status> {
        self.manager(&req)?;
        let actions: Vec<Action> = serde_json::from_slice(&req.into_inner().json)
            .map_err(|e| Status::invalid_argument(format!("store actions: {e}")))?;
        let raft = self.node.raft().map_err(status_of)?;
        let result = match raft.propose(actions).await {
            Ok(()) => Ok(()),
            Err(ProposeError::Store(e)) => Err(e),
            Err(e) => return Err(Status::unknown(e.to_string())),
        };
        let json = serde_json::to_vec(&result).map_err(|e| Status::internal(e.to_string()))?;
        Ok(Response::new(Blob { json }))
    }
}

#[tonic::async_trait]
impl pb::dispatcher_server::Dispatcher for Services {
    type AssignmentsStream = crate::dispatch::AssignmentStream;

    async fn assignments(
        &self,
        req: Request<Empty>,
    ) -> Result<Response<Self::AssignmentsStream>, Status> {
        let caller = self.agent(&req)?;
        let stream = crate::dispatch::assignments(self.node.clone(), caller.node_id)?;
        Ok(Response::new(stream))
    }

    async fn update_task_status(&self, req: Request<Blob>) -> Result<Response<Empty>, Status> {
        let caller = self.agent(&req)?;
        let raw = req.into_inner().json;
        crate::dispatch::update_task_status(&self.node, &caller.node_id, &raw).await?;
        Ok(Response::new(Empty {}))
    }

    async fn attach_network(&self, req: Request<Blob>) -> Result<Response<Blob>, Status> {
        let caller = self.agent(&req)?;
        let raw = req.into_inner().json;
        let a = crate::attachments::attach(&self.node, &caller.node_id, &raw).await?;
        let json = serde_json::to_vec(&a).map_err(|e| Status::internal(e.to_string()))?;
        Ok(Response::new(Blob { json }))
    }

    async fn detach_network(&self, req: Request<Blob>) -> Result<Response<Empty>, Status> {
        let caller = self.agent(&req)?;
        let raw = req.into_inner().json;
        crate::attachments::detach(&self.node, &caller.node_id, &raw).await?;
        Ok(Response::new(Empty {}))
    }

    async fn heartbeat(
        &self,
        req: Request<pb::HeartbeatRequest>,
    ) -> Result<Response<pb::HeartbeatResponse>, Status> {
        let caller = self.member(&req).ok_or_else(|| {
            Status::permission_denied(
                "Permission denied: unauthorized peer role: no client certificate",
            )
        })?;
        self.refuse_removed(&caller.node_id)?;
        let seen_from = peer(&req)
            .map(|p| p.addr.ip().to_string())
            .unwrap_or_default();
        let raw = req.into_inner().report.map(|b| b.json).unwrap_or_default();
        let mut report: HeartbeatReport = serde_json::from_slice(&raw)
            .map_err(|e| Status::invalid_argument(format!("heartbeat report: {e}")))?;
        // a worker speaks for itself; a manager may forward for others
        if caller.role == Role::Worker || report.node_id.is_empty() {
            report.node_id = caller.node_id;
        }
        if report.addr.is_empty() {
            report.addr = seen_from;
        }
        let raft = self.node.raft().map_err(status_of)?;
        if !raft.is_leader() {
            let json = serde_json::to_vec(&report).map_err(|e| Status::internal(e.to_string()))?;
            let forwarded = pb::HeartbeatRequest {
                report: Some(Blob { json }),
            };
            return DispatcherClient::new(self.leader_channel()?)
                .max_decoding_message_size(berth_swarm_rpc::MAX_MESSAGE_BYTES)
                .heartbeat(forwarded)
                .await;
        }
        self.refuse_removed(&report.node_id)?;
        let node_id = report.node_id.clone();
        if report.session_lost {
            self.node.note_session_lost(&node_id);
            return Ok(Response::new(pb::HeartbeatResponse::default()));
        }
        let role = self.record(report).await?;
        let (renew, root_ca) = raft.store().read(|s| {
            (
                s.node(&node_id)
                    .is_some_and(|n| n.certificate.state == CertState::Rotate),
                s.cluster()
                    .map(|c| c.root_ca.ca_cert.clone())
                    .unwrap_or_default(),
            )
        });
        Ok(Response::new(pb::HeartbeatResponse {
            period_ms: self.node.heartbeat_period().as_millis() as u64,
            managers: raft.members().into_iter().map(|(_, m)| m.addr).collect(),
            role: role.as_str().into(),
            renew,
            root_ca,
        }))
    }
}

impl Services {
    /// The leader notes the heartbeat, and writes the node's status when
    /// it changed (not at every beat); the node's role, for the node.
    async fn record(&self, r: HeartbeatReport) -> Result<NodeRole, Status> {
        self.node
            .last_seen
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(r.node_id.clone(), Instant::now());
        self.node
            .lost
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(&r.node_id);
        let store = self.node.store().map_err(status_of)?;
        let Some(mut node) = store.read(|s| s.node(&r.node_id).cloned()) else {
            return Err(Status::not_found(format!("node {} not found", r.node_id)));
        };
        let before = node.clone();
        node.status.state = NodeState::Ready;
        node.status.message.clear();
        node.status.addr = r.addr.clone();
        node.data_addr = r.data_addr.clone();
        let d = &mut node.description;
        d.hostname = r.hostname;
        d.engine_version = r.engine_version;
        d.os = r.os;
        d.architecture = r.architecture;
        d.nano_cpus = r.nano_cpus;
        d.memory_bytes = r.memory_bytes;
        let role = node.role;
        if let Some(t) = r.tls_info {
            d.tls_info = t;
        }
        if node == before {
            return Ok(role);
        }
        self.node
            .propose(vec![Action::Update(Object::Node(node))])
            .await
            .map_err(status_of)?;
        Ok(role)
    }
}
