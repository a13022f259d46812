//! Becoming part of a swarm: `init` makes a new cluster with this node as
//! its first manager; `join` asks a manager for a certificate with a token
//! and, with a manager token, joins the Raft; `resume` picks up after a
//! daemon restart.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use berth_swarm_ca::{
    JoinToken, NodeCert, NodeIdentity, NodeKey, Role, RootCa, client_config, new_id, server_config,
};
use berth_swarm_raft::{Member, RaftNode, RaftSettings};
use berth_swarm_rpc::pb::node_ca_client::NodeCaClient;
use berth_swarm_rpc::pb::raft_client::RaftClient;
use berth_swarm_rpc::pb::{self, Empty};
use berth_swarm_rpc::{ServerTls, bootstrap_channel, incoming_with};
use berth_swarm_store::{
    Action, Availability, CertState, Cluster, ClusterSpec, Membership, Node, NodeCertificate,
    NodeRole, NodeSpec, Object, RootCaState,
};
use tokio::net::TcpListener;

use crate::active::Active;
use crate::agent::{spawn_agent, spawn_monitor};
use crate::ca_rotation::spawn_reconciler;
use crate::keys::{self, KeyState, new_unlock_key};
use crate::peers::{GrpcTransport, Peers};
use crate::renewer::spawn_renewer;
use crate::services::Services;
use crate::state::{Credentials, Loaded, LocalState, Paths};
use crate::{Swarm, SwarmError};

#[derive(Clone, Debug, Default)]
pub struct InitRequest {
    /// where to serve other nodes, host:port
    pub listen_addr: String,
    /// where other nodes reach this one, host:port
    pub advertise_addr: String,
    pub availability: Availability,
    pub spec: ClusterSpec,
    pub default_addr_pool: Vec<String>,
    pub subnet_size: u32,
    pub data_path_port: u16,
    /// the address other nodes send this one's overlay traffic to; the
    /// advertise address when empty
    pub data_path_addr: String,
    /// on a manager already in a swarm: a new cluster of one that keeps
    /// the state (`force`)
    pub force_new_cluster: bool,
}

#[derive(Clone, Debug, Default)]
pub struct JoinRequest {
    pub listen_addr: String,
    pub advertise_addr: String,
    pub remote_addrs: Vec<String>,
    pub token: String,
    pub availability: Availability,
    pub data_path_addr: String,
}

pub(crate) fn random_raft_id() -> Result<u64, SwarmError> {
    let id = new_id().map_err(|e| SwarmError::internal("making a raft id", e))?;
    // any 64 bits of a random id will do; 0 is not a valid member id
    let n = id.bytes().fold(0u64, |acc, b| {
        acc.wrapping_mul(131).wrapping_add(u64::from(b))
    });
    Ok(n.max(1))
}

impl Swarm {
    pub async fn init(&self, req: InitRequest) -> Result<String, SwarmError> {
        let mut guard = self.active.lock().await;
        if req.force_new_cluster && self.locked_state().is_some() {
            return Err(SwarmError::Locked);
        }
        if req.force_new_cluster && guard.is_some() {
            return self.force_new_cluster(&mut guard, &req).await;
        }
        if guard.is_some() || self.locked_state().is_some() {
            return Err(SwarmError::AlreadyInSwarm);
        }
        let listener = bind(&req.listen_addr).await?;
        let root = RootCa::generate().map_err(|e| SwarmError::internal("making the root CA", e))?;
        let who = NodeIdentity {
            node_id: new_id().map_err(|e| SwarmError::internal("making an id", e))?,
            role: Role::Manager,
            cluster_id: new_id().map_err(|e| SwarmError::internal("making an id", e))?,
        };
        let key = NodeKey::generate().map_err(|e| SwarmError::internal("making a key", e))?;
        let csr = key
            .csr_pem()
            .map_err(|e| SwarmError::internal("making a request", e))?;
        let expiry = Duration::from_nanos(req.spec.node_cert_expiry.max(0) as u64);
        let cert = root
            .sign(&csr, &who, expiry)
            .map_err(|e| SwarmError::InvalidArgument(e.to_string()))?;
        let state = LocalState {
            node_id: who.node_id.clone(),
            cluster_id: who.cluster_id.clone(),
            manager: true,
            raft_id: Some(random_raft_id()?),
            listen_addr: req.listen_addr.clone(),
            advertise_addr: req.advertise_addr.clone(),
            managers: vec![req.advertise_addr.clone()],
            data_path_addr: req.data_path_addr.clone(),
        };
        // with autolock, the key and DEK are sealed from the first write on
        let unlock_key = match req.spec.autolock_managers {
            true => new_unlock_key()?,
            false => Vec::new(),
        };
        *keys::lock(&self.keys) = KeyState {
            kek: Some(unlock_key.clone()).filter(|k| !k.is_empty()),
            ..KeyState::default()
        };
        let first = first_objects(&req, &root, &who, &cert, &csr, unlock_key)?;
        let creds = Credentials { root, cert, key };
        let paths = Paths::new(&self.settings.dir);
        wipe_raft(&paths)?;
        let node = self.start(state.clone(), creds, Some(listener)).await?;
        let raft = node.raft()?.clone();
        raft.bootstrap(Member {
            node_id: who.node_id.clone(),
            addr: req.advertise_addr.clone(),
        })
        .await
        .map_err(|e| SwarmError::internal("starting raft", e))?;
        wait_for_leader(&raft).await?;
        node.propose(first).await?;
        node.save_credentials(&node.creds())
            .and_then(|()| paths.save_state(&state))
            .map_err(|e| SwarmError::internal("saving the swarm state", e))?;
        node.tasks
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .extend([
                spawn_agent(node.clone(), self.clone()),
                spawn_renewer(node.clone()),
            ]);
        *guard = Some(node);
        Ok(who.node_id)
    }

    pub async fn join(&self, req: JoinRequest) -> Result<(), SwarmError> {
        let mut guard = self.active.lock().await;
        if guard.is_some() || self.locked_state().is_some() {
            return Err(SwarmError::AlreadyInSwarm);
        }
        // a new manager learns the unlock key from the store it replicates
        *keys::lock(&self.keys) = KeyState::default();
        let token: JoinToken = req
            .token
            .parse()
            .map_err(|e: berth_swarm_ca::CaError| SwarmError::Internal(e.to_string()))?;
        let remote = req.remote_addrs.first().cloned().ok_or_else(|| {
            SwarmError::InvalidArgument("at least 1 RemoteAddr is required to join".into())
        })?;
        let root = fetch_root(&remote, &token).await?;
        let (cert, key, node_id) = request_certificate(&remote, &root, &req).await?;
        let manager = cert.identity.role == Role::Manager;
        let state = LocalState {
            node_id,
            cluster_id: cert.identity.cluster_id.clone(),
            manager,
            raft_id: if manager {
                Some(random_raft_id()?)
            } else {
                None
            },
            listen_addr: req.listen_addr.clone(),
            advertise_addr: req.advertise_addr.clone(),
            managers: req.remote_addrs.clone(),
            data_path_addr: req.data_path_addr.clone(),
        };
        let listener = if manager {
            // its DEK stays in memory until it knows the unlock key; no
            // Raft data of an earlier attempt may linger
            keys::lock(&self.keys).held = true;
            wipe_raft(&Paths::new(&self.settings.dir))?;
            Some(bind(&req.listen_addr).await?)
        } else {
            None
        };
        let node = self
            .start(state.clone(), Credentials { root, cert, key }, listener)
            .await?;
        let paths = Paths::new(&self.settings.dir);
        let joined = async {
            if let (Some(raft), Some(raft_id)) = (&node.raft, state.raft_id) {
                join_raft(&node, &remote, raft_id, &req.advertise_addr).await?;
                wait_for_leader(raft).await?;
                crate::dek::learn_kek(&node).await?;
            }
            node.save_credentials(&node.creds())
                .and_then(|()| paths.save_state(&state))
                .map_err(|e| SwarmError::internal("saving the swarm state", e))
        };
        if let Err(e) = joined.await {
            // nothing may keep serving (and holding the port) for a join
            // the caller is told failed
            node.halt().await;
            return Err(e);
        }
        node.tasks
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .extend([
                spawn_agent(node.clone(), self.clone()),
                spawn_renewer(node.clone()),
            ]);
        *guard = Some(node);
        Ok(())
    }

    /// After a restart: the node serves and beats again as it did.
    pub(crate) async fn resume(&self) -> Result<(), SwarmError> {
        let paths = Paths::new(&self.settings.dir);
        let loaded = paths
            .load(&mut keys::lock(&self.keys))
            .map_err(|e| SwarmError::internal("reading the swarm state", e))?;
        let (state, creds) = match loaded {
            Loaded::Nothing => return Ok(()),
            Loaded::Locked(state) => {
                tracing::info!("the swarm is locked: waiting for its unlock key");
                *self.locked.lock().unwrap_or_else(|e| e.into_inner()) = Some(state);
                return Ok(());
            }
            Loaded::Ready(state, creds) => (state, *creds),
        };
        let node = self.resume_with(state, creds).await?;
        *self.active.lock().await = Some(node);
        Ok(())
    }

    /// Starts the node from what was on disk (a restart, an unlock).
    pub(crate) async fn resume_with(
        &self,
        state: LocalState,
        creds: Credentials,
    ) -> Result<Arc<Active>, SwarmError> {
        let listener = if state.manager {
            Some(bind(&state.listen_addr).await?)
        } else {
            None
        };
        let node = self.start(state, creds, listener).await?;
        node.tasks
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .extend([
                spawn_agent(node.clone(), self.clone()),
                spawn_renewer(node.clone()),
            ]);
        Ok(node)
    }

    /// Builds the running node: Raft and the gRPC server for a manager.
    pub(crate) async fn start(
        &self,
        state: LocalState,
        creds: Credentials,
        listener: Option<TcpListener>,
    ) -> Result<Arc<Active>, SwarmError> {
        let tls = client_config(&creds.root, Some((&creds.cert, &creds.key)))
            .map_err(|e| SwarmError::internal("tls", e))?;
        let peers = Peers::new(tls);
        let paths = Paths::new(&self.settings.dir);
        let raft = match state.raft_id {
            Some(id) if state.manager => {
                let deks = self.ensure_deks(&paths, &creds)?;
                // the cluster's spec decides compaction (`snapshots`)
                let settings = RaftSettings {
                    snapshot_every: 0,
                    keep_after_snapshot: u64::MAX,
                    ..self.settings.raft.clone()
                };
                let transport = Arc::new(GrpcTransport {
                    peers: peers.clone(),
                });
                let r = RaftNode::open(&paths.raft(), id, transport, settings, deks)
                    .await
                    .map_err(|e| SwarmError::internal("opening raft", e))?;
                // a rotation a crash interrupted ends before Raft serves
                if let Err(e) = crate::dek::finish(&r, &paths, &creds, &mut keys::lock(&self.keys))
                {
                    tracing::warn!("finishing the data key's rotation: {e}");
                }
                Some(Arc::new(r))
            }
            _ => None,
        };
        let server_tls = match listener {
            Some(_) => Some(
                server_config(&creds.root, &creds.cert, &creds.key)
                    .map_err(|e| SwarmError::internal("tls", e))?,
            ),
            None => None,
        };
        let node = Arc::new(Active {
            identity: creds.cert.identity.clone(),
            creds: RwLock::new(Arc::new(creds)),
            server_tls: RwLock::new(server_tls.clone()),
            renew_now: tokio::sync::Notify::new(),
            state: Mutex::new(state),
            paths,
            peers,
            raft,
            last_seen: Mutex::new(HashMap::new()),
            lost: Mutex::new(HashMap::new()),
            beat_now: tokio::sync::Notify::new(),
            tasks: Mutex::new(Vec::new()),
            settings: self.settings.clone(),
            keys: self.keys.clone(),
            logs: Default::default(),
        });
        if let (Some(listener), Some(first_tls)) = (listener, server_tls) {
            let server = serve(node.clone(), listener, first_tls);
            let monitor = spawn_monitor(node.clone());
            let roles = crate::roles::spawn_role_manager(node.clone());
            let events = crate::events::spawn_forwarder(&node, self.events.clone());
            let reconciler = spawn_reconciler(node.clone());
            let kek = crate::autolock::spawn_kek_follower(node.clone());
            let snapshots = crate::snapshots::spawn_snapshotter(node.clone());
            let orchestrator = crate::orchestrator::spawn(node.clone());
            node.tasks.lock().unwrap_or_else(|e| e.into_inner()).extend(
                [server, monitor, roles, reconciler, kek, orchestrator]
                    .into_iter()
                    .chain(events)
                    .chain(snapshots),
            );
        }
        if let Some(exec) = self.settings.executor.0.clone() {
            let worker = crate::worker::spawn_worker(node.clone(), exec);
            node.tasks
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .push(worker);
        }
        Ok(node)
    }
}

/// Removes what an interrupted init or join left of a Raft: a new
/// manager starts from an empty log.
pub(crate) fn wipe_raft(paths: &Paths) -> Result<(), SwarmError> {
    match std::fs::remove_dir_all(paths.raft()) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
            Err(SwarmError::internal("removing an earlier raft", e))
        }
        _ => Ok(()),
    }
}

pub(crate) async fn bind(addr: &str) -> Result<TcpListener, SwarmError> {
    let sa: SocketAddr = addr.parse().map_err(|_| {
        SwarmError::InvalidArgument(format!("could not parse listen address {addr}"))
    })?;
    // a server this node just stopped lets go of the port a moment later
    let mut tries = 0;
    loop {
        match TcpListener::bind(sa).await {
            Err(e) if e.kind() == std::io::ErrorKind::AddrInUse && tries < 30 => {
                tries += 1;
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            other => {
                return other
                    .map_err(|e| SwarmError::InvalidArgument(format!("listening on {addr}: {e}")));
            }
        }
    }
}

fn serve(
    node: Arc<Active>,
    listener: TcpListener,
    first_tls: Arc<rustls::ServerConfig>,
) -> tokio::task::JoinHandle<()> {
    let current = node.clone();
    let tls: ServerTls = Arc::new(move || {
        current
            .server_tls
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
            .unwrap_or_else(|| first_tls.clone())
    });
    let svc = Services { node: node.clone() };
    let router = tonic::transport::Server::builder()
        .add_service(
            pb::node_ca_server::NodeCaServer::new(svc.clone())
                .max_decoding_message_size(berth_swarm_rpc::MAX_MESSAGE_BYTES),
        )
        .add_service(
            pb::raft_server::RaftServer::new(svc.clone())
                .max_decoding_message_size(berth_swarm_rpc::MAX_MESSAGE_BYTES),
        )
        .add_service(
            pb::dispatcher_server::DispatcherServer::new(svc.clone())
                .max_decoding_message_size(berth_swarm_rpc::MAX_MESSAGE_BYTES),
        )
        .add_service(
            pb::logs_server::LogsServer::new(svc)
                .max_decoding_message_size(berth_swarm_rpc::MAX_MESSAGE_BYTES),
        );
    tokio::spawn(async move {
        // with a shutdown signal, tonic closes its connections (GOAWAY)
        // when this task is aborted: peers then reach whatever serves the
        // address next, not a stopped node's services
        let never = std::future::pending::<()>();
        if let Err(e) = router
            .serve_with_incoming_shutdown(incoming_with(listener, tls), never)
            .await
        {
            tracing::error!("swarm server stopped: {e}");
        }
    })
}

pub(crate) async fn wait_for_leader(raft: &RaftNode) -> Result<(), SwarmError> {
    match raft.wait_leader(Duration::from_secs(10)).await {
        true => Ok(()),
        false => Err(SwarmError::Internal(berth_swarm_raft::NO_LEADER.into())),
    }
}

/// The cluster object and this first manager's node object.
fn first_objects(
    req: &InitRequest,
    root: &RootCa,
    who: &NodeIdentity,
    cert: &NodeCert,
    csr: &str,
    unlock_key: Vec<u8>,
) -> Result<Vec<Action>, SwarmError> {
    let token = || {
        JoinToken::generate(root)
            .map(|t| t.to_string())
            .map_err(|e| SwarmError::internal("making a join token", e))
    };
    let cluster = Cluster {
        id: who.cluster_id.clone(),
        spec: req.spec.clone(),
        root_ca: RootCaState {
            ca_cert: root.cert_pem().to_string(),
            ca_key: root.key_pem().unwrap_or_default(),
            ca_cert_hash: root.digest().to_string(),
            worker_token: token()?,
            manager_token: token()?,
            ..RootCaState::default()
        },
        unlock_key,
        default_addr_pool: req.default_addr_pool.clone(),
        subnet_size: req.subnet_size,
        data_path_port: req.data_path_port,
        ..Cluster::default()
    };
    let node = Node {
        id: who.node_id.clone(),
        spec: NodeSpec {
            desired_role: NodeRole::Manager,
            membership: Membership::Accepted,
            availability: req.availability,
            ..NodeSpec::default()
        },
        role: NodeRole::Manager,
        certificate: NodeCertificate {
            role: NodeRole::Manager,
            csr: csr.to_string(),
            state: CertState::Issued,
            certificate: cert.chain_pem.clone(),
            cn: who.node_id.clone(),
            ..NodeCertificate::default()
        },
        ..Node::default()
    };
    Ok(vec![
        Action::Create(Object::Cluster(cluster)),
        Action::Create(Object::Node(node)),
        Action::Create(Object::Network(ingress_network()?)),
    ])
}

/// The routing mesh's network, made with the cluster as swarmkit makes it:
/// the first subnet of the cluster's pool and the first VXLAN id (4096).
fn ingress_network() -> Result<berth_swarm_store::Network, SwarmError> {
    let mut n = berth_swarm_store::Network {
        id: new_id().map_err(|e| SwarmError::internal("making an id", e))?,
        ..Default::default()
    };
    n.spec.name = "ingress".into();
    n.spec.driver = "overlay".into();
    n.spec.ingress = true;
    Ok(n)
}

/// The root CA of the manager at `remote`, trusted only if the token's
/// digest matches it. A few tries: the manager may be starting.
async fn fetch_root(remote: &str, token: &JoinToken) -> Result<RootCa, SwarmError> {
    let mut last = String::new();
    for attempt in 0..5 {
        if attempt > 0 {
            tokio::time::sleep(Duration::from_secs(1)).await;
        }
        let channel = bootstrap_channel(remote).map_err(SwarmError::Internal)?;
        match NodeCaClient::new(channel)
            .max_decoding_message_size(berth_swarm_rpc::MAX_MESSAGE_BYTES)
            .get_root_ca_certificate(Empty {})
            .await
        {
            Ok(a) => {
                let pem = a.into_inner().certificate;
                token
                    .check_root(&pem)
                    .map_err(|e| SwarmError::Internal(e.to_string()))?;
                return RootCa::from_pem(&pem, None)
                    .map_err(|e| SwarmError::Internal(e.to_string()));
            }
            Err(e) => last = e.message().to_string(),
        }
    }
    Err(SwarmError::Unavailable(format!(
        "could not reach the manager at {remote} to join: {last}"
    )))
}

/// A new key, and a certificate for it from the manager at `remote`.
async fn request_certificate(
    remote: &str,
    root: &RootCa,
    req: &JoinRequest,
) -> Result<(NodeCert, NodeKey, String), SwarmError> {
    let key = NodeKey::generate().map_err(|e| SwarmError::internal("making a key", e))?;
    let csr = key
        .csr_pem()
        .map_err(|e| SwarmError::internal("making a request", e))?;
    let tls = client_config(root, None).map_err(|e| SwarmError::internal("tls", e))?;
    let channel =
        berth_swarm_rpc::channel(remote, tls).map_err(|e| SwarmError::internal("connecting", e))?;
    let mut ca =
        NodeCaClient::new(channel).max_decoding_message_size(berth_swarm_rpc::MAX_MESSAGE_BYTES);
    let availability = match req.availability {
        Availability::Active => "active",
        Availability::Pause => "pause",
        Availability::Drain => "drain",
    };
    let issued = ca
        .issue_node_certificate(pb::IssueNodeCertificateRequest {
            csr,
            token: req.token.clone(),
            availability: availability.into(),
        })
        .await
        .map_err(|s| SwarmError::from_status(&s))?;
    let node_id = issued.into_inner().node_id;
    let mut wait = Duration::from_millis(5);
    for _ in 0..110 {
        let status = ca
            .node_certificate_status(pb::NodeCertificateStatusRequest {
                node_id: node_id.clone(),
            })
            .await;
        match status {
            Ok(s) if s.get_ref().state == "issued" => {
                let cert = NodeCert::parse(&s.into_inner().certificate)
                    .map_err(|e| SwarmError::Internal(e.to_string()))?;
                if !root.verifies(&cert) || !cert.matches(&key) {
                    return Err(SwarmError::Internal(
                        "the manager sent a certificate that does not verify".into(),
                    ));
                }
                return Ok((cert, key, node_id));
            }
            Ok(s) if s.get_ref().state == "failed" => {
                return Err(SwarmError::Internal(s.into_inner().error));
            }
            // not applied on that manager yet, or still pending: the
            // first answers come within milliseconds
            _ => {
                tokio::time::sleep(wait).await;
                wait = (wait * 2).min(Duration::from_millis(100));
            }
        }
    }
    Err(SwarmError::Unavailable("Timeout was reached before node joined. The attempt to join the swarm will continue in the background. Use the \"docker info\" command to see the current swarm status of your node.".into()))
}

/// Asks the managers (through `remote`) to take this node into the Raft.
pub(crate) async fn join_raft(
    node: &Active,
    remote: &str,
    raft_id: u64,
    advertise: &str,
) -> Result<(), SwarmError> {
    let channel = node
        .peers
        .channel(remote)
        .map_err(|e| SwarmError::internal("connecting", e))?;
    RaftClient::new(channel)
        .max_decoding_message_size(berth_swarm_rpc::MAX_MESSAGE_BYTES)
        .join(pb::RaftJoinRequest {
            addr: advertise.to_string(),
            raft_id,
            node_id: node.identity.node_id.clone(),
        })
        .await
        .map_err(|s| SwarmError::from_status(&s))?;
    Ok(())
}
