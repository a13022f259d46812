//! A node in a swarm: its identity and credentials, its Raft and gRPC
//! server when it is a manager, and its agent.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, RwLock};
use std::time::Instant;

use berth_swarm_ca::NodeIdentity;
use berth_swarm_raft::{ProposeError, RaftNode};
use berth_swarm_rpc::pb::Blob;
use berth_swarm_rpc::pb::raft_client::RaftClient;
use berth_swarm_store::{Action, StoreError, WatchedStore};
use tokio::task::JoinHandle;

use crate::SwarmError;
use crate::peers::Peers;
use crate::state::{Credentials, LocalState, Paths};

pub struct Active {
    pub identity: NodeIdentity,
    /// replaced whole on renewal and when the trust root moves
    pub creds: RwLock<Arc<Credentials>>,
    /// what the server presents and verifies with (managers)
    pub server_tls: RwLock<Option<Arc<rustls::ServerConfig>>>,
    /// wakes the renewer before its time (the CA asked for a rotation)
    pub renew_now: tokio::sync::Notify,
    pub state: Mutex<LocalState>,
    pub paths: Paths,
    pub peers: Arc<Peers>,
    /// managers only
    pub raft: Option<Arc<RaftNode>>,
    /// when each node was last heard from, on the leader
    pub last_seen: Mutex<HashMap<String, Instant>>,
    /// when each node's task session ended, on the leader, until its
    /// next heartbeat
    pub lost: Mutex<HashMap<String, Instant>>,
    /// wakes the agent's heartbeat before its time (a new task session:
    /// the leader must know the node is alive)
    pub beat_now: tokio::sync::Notify,
    pub tasks: Mutex<Vec<JoinHandle<()>>>,
    pub settings: crate::SwarmSettings,
    /// the node's DEK and unlock key, shared with its `Swarm`
    pub keys: crate::keys::Keys,
    /// the log subscriptions this manager serves and the agents it
    /// serves them to
    pub logs: Arc<crate::logs::Broker>,
}

impl Active {
    pub fn is_manager(&self) -> bool {
        self.raft.is_some()
    }

    pub fn creds(&self) -> Arc<Credentials> {
        self.creds.read().unwrap_or_else(|e| e.into_inner()).clone()
    }

    pub fn raft(&self) -> Result<&Arc<RaftNode>, SwarmError> {
        self.raft.as_ref().ok_or(SwarmError::NotManagerWorker)
    }

    pub fn store(&self) -> Result<&Arc<WatchedStore>, SwarmError> {
        Ok(self.raft()?.store())
    }

    /// Stops serving: its tasks and, on a manager, its Raft.
    pub async fn halt(&self) {
        self.stop_tasks();
        if let Some(raft) = &self.raft {
            raft.shutdown().await;
        }
    }

    pub fn local(&self) -> LocalState {
        self.state.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// Commits store changes through the leader, wherever it is.
    pub async fn propose(&self, actions: Vec<Action>) -> Result<(), SwarmError> {
        let raft = self.raft()?;
        match raft.propose(actions.clone()).await {
            Ok(()) => Ok(()),
            Err(ProposeError::NotLeader {
                leader: Some((_, leader)),
            }) => self.forward(&leader.addr, actions).await,
            Err(e) => Err(propose_error(e)),
        }
    }

    async fn forward(&self, addr: &str, actions: Vec<Action>) -> Result<(), SwarmError> {
        let channel = self
            .peers
            .channel(addr)
            .map_err(|e| SwarmError::internal("reaching the leader", e))?;
        let json = serde_json::to_vec(&actions).map_err(|e| SwarmError::internal("encoding", e))?;
        let answer = RaftClient::new(channel)
            .max_decoding_message_size(berth_swarm_rpc::MAX_MESSAGE_BYTES)
            .propose(Blob { json })
            .await
            .map_err(|s| SwarmError::from_status(&s))?;
        let result: Result<(), StoreError> = serde_json::from_slice(&answer.into_inner().json)
            .map_err(|e| SwarmError::internal("decoding the leader's answer", e))?;
        result.map_err(store_error)
    }

    /// Brings this manager's store up to the leader's read index, so that
    /// what it reads next is what the leader would read (swarmkit proxies
    /// reads to the leader; this has the same effect). Without a leader
    /// that has its quorum, swarmkit's proxy fails and dockerd answers
    /// swarmkit's "no leader" error: so does this.
    pub async fn sync_reads(&self) -> Result<(), SwarmError> {
        let raft = self.raft()?;
        let index = match raft.read_index().await {
            Ok(i) => Some(i),
            Err(ProposeError::NotLeader {
                leader: Some((_, leader)),
            }) => self.leader_read_index(&leader.addr).await,
            Err(_) => None,
        };
        let Some(i) = index else {
            return Err(propose_error(ProposeError::NoQuorum));
        };
        raft.wait_applied(i, std::time::Duration::from_secs(2))
            .await;
        Ok(())
    }

    async fn leader_read_index(&self, addr: &str) -> Option<u64> {
        let channel = self.peers.channel(addr).ok()?;
        // the leader answers within its write deadline or not at all
        let mut client =
            RaftClient::new(channel).max_decoding_message_size(berth_swarm_rpc::MAX_MESSAGE_BYTES);
        let call = client.read_index(berth_swarm_rpc::pb::Empty {});
        let answer = tokio::time::timeout(std::time::Duration::from_secs(4), call)
            .await
            .ok()?
            .ok()?;
        Some(answer.into_inner().index)
    }

    /// Writes the node's credentials, its key sealed as `keys` says.
    pub fn save_credentials(&self, creds: &Credentials) -> std::io::Result<()> {
        let keys = crate::keys::lock(&self.keys);
        self.paths.save_credentials(creds, &keys)
    }

    pub fn stop_tasks(&self) {
        for t in self
            .tasks
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .drain(..)
        {
            t.abort();
        }
    }
}

/// A store refusal as dockerd shows swarmkit's plain errors.
pub fn store_error(e: StoreError) -> SwarmError {
    let code = match e {
        StoreError::InvalidArgument(_) => "InvalidArgument",
        StoreError::FailedPrecondition(_) => "FailedPrecondition",
        _ => "Unknown",
    };
    SwarmError::Rpc {
        code,
        desc: e.to_string(),
    }
}

pub fn propose_error(e: ProposeError) -> SwarmError {
    match e {
        ProposeError::Store(s) => store_error(s),
        ProposeError::NoQuorum | ProposeError::NotLeader { .. } => SwarmError::Rpc {
            code: "Unknown",
            desc: berth_swarm_raft::NO_LEADER.into(),
        },
        ProposeError::Raft(m) => SwarmError::Internal(m),
    }
}
