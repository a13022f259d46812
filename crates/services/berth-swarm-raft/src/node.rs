//! One manager's Raft: open it from its directory, bootstrap a new
//! cluster, propose store changes, change membership, and serve the
//! requests other managers send.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use berth_swarm_store::{Action, StoreError, WatchedStore};
use openraft::error::{ClientWriteError, RaftError};
use openraft::{ChangeMembers, Config, Raft, ServerState, SnapshotPolicy};

use crate::log_store::LogStore;
use crate::network::{Network, RaftRequest, RaftResponse, Transport};
use crate::seal::Deks;
use crate::state_machine::StateMachine;
use crate::{Member, NodeId, Proposal, TypeConfig};

/// swarmkit's words when no leader can be had; users search for them.
pub const NO_LEADER: &str = "The swarm does not have a leader. It's possible that too few managers are online. Make sure more than half of the managers are online.";

/// Raft's timing and log keeping, in milliseconds and entries.
#[derive(Clone, Debug)]
pub struct RaftSettings {
    pub heartbeat_ms: u64,
    pub election_min_ms: u64,
    pub election_max_ms: u64,
    /// a snapshot after this many entries (swarmkit: 10,000); 0 leaves
    /// snapshots to the caller (`snapshot`, `purge_log`)
    pub snapshot_every: u64,
    /// entries kept behind a snapshot for slow followers (swarmkit: 500)
    pub keep_after_snapshot: u64,
}

impl Default for RaftSettings {
    fn default() -> RaftSettings {
        RaftSettings {
            // openraft 0.9 makes a follower wait the leader's lease (the
            // longest election timeout) and then its own random timeout
            // after the last heartbeat: about 1.4 s here before a new
            // election, so a failover stays under 2 s. Seven heartbeats fit
            // in the shortest wait, enough slack for a loaded machine.
            heartbeat_ms: 100,
            election_min_ms: 500,
            election_max_ms: 750,
            snapshot_every: 10_000,
            keep_after_snapshot: 500,
        }
    }
}

impl RaftSettings {
    fn to_config(&self) -> Result<Config, String> {
        Config {
            cluster_name: "swarm".into(),
            heartbeat_interval: self.heartbeat_ms,
            election_timeout_min: self.election_min_ms,
            election_timeout_max: self.election_max_ms,
            snapshot_policy: match self.snapshot_every {
                0 => SnapshotPolicy::Never,
                n => SnapshotPolicy::LogsSinceLast(n),
            },
            max_in_snapshot_log_to_keep: self.keep_after_snapshot,
            purge_batch_size: 1,
            // a batch of entries is one gRPC message: 16 entries holding a
            // 1000 KB config each stay well under the peers' message limit
            max_payload_entries: 16,
            ..Config::default()
        }
        .validate()
        .map_err(|e| e.to_string())
    }

    /// How long a write may wait for a quorum before it is refused: long
    /// enough for one election, never a hang.
    fn write_deadline(&self) -> Duration {
        Duration::from_millis(self.election_max_ms * 2 + self.heartbeat_ms * 2)
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ProposeError {
    /// another manager leads: the caller forwards to it
    #[error("this manager is not the leader")]
    NotLeader { leader: Option<(NodeId, Member)> },
    /// no leader, or a leader without a quorum
    #[error("{}", NO_LEADER)]
    NoQuorum,
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("raft: {0}")]
    Raft(String),
}

pub struct RaftNode {
    id: NodeId,
    raft: Raft<TypeConfig>,
    store: Arc<WatchedStore>,
    settings: RaftSettings,
    /// members left behind by a forced new cluster
    removed: BTreeSet<NodeId>,
    /// handles on what Raft writes, for a DEK rotation's rewrite
    pub(crate) log: LogStore,
    pub(crate) sm: StateMachine,
    deks: Deks,
}

impl RaftNode {
    /// Opens (or creates) the Raft state in `dir`; the store is rebuilt
    /// from the last snapshot there and the committed log after it. What
    /// is on disk is sealed with `deks` (and opens with either of them
    /// during a rotation).
    pub async fn open(
        dir: &Path,
        id: NodeId,
        transport: Arc<dyn Transport>,
        settings: RaftSettings,
        deks: Deks,
    ) -> Result<RaftNode, String> {
        std::fs::create_dir_all(dir).map_err(|e| format!("creating {}: {e}", dir.display()))?;
        let log = LogStore::open_when_free(&dir.join(crate::log_store::LOG_FILE), &deks).await?;
        let removed = log
            .removed()
            .map_err(|e| format!("reading the removed members: {e}"))?;
        let store = Arc::new(WatchedStore::default());
        let sm = StateMachine::open(dir, store.clone(), deks.clone())
            .map_err(|e| format!("opening the raft snapshot: {e}"))?;
        let config = Arc::new(settings.to_config()?);
        let raft = Raft::new(id, config, Network { transport }, log.clone(), sm.clone())
            .await
            .map_err(|e| format!("starting raft: {e}"))?;
        Ok(RaftNode {
            id,
            raft,
            store,
            settings,
            removed,
            log,
            sm,
            deks,
        })
    }

    /// The DEKs this manager's Raft data is sealed with.
    pub fn deks(&self) -> &Deks {
        &self.deks
    }

    /// Rewrites the log and the snapshot sealed with the DEK that seals
    /// now: the second step of a rotation, after `Deks::set_pending` and
    /// before the pending key is made current. Raft keeps running; its
    /// log writes wait for the log's rewrite. Safe to repeat after a
    /// crash or a failure.
    pub fn reseal(&self) -> Result<(), String> {
        self.log
            .reseal()
            .map_err(|e| format!("resealing the raft log: {e}"))?;
        self.sm
            .reseal()
            .map_err(|e| format!("resealing the raft snapshot: {e}"))
    }

    pub fn id(&self) -> NodeId {
        self.id
    }

    pub fn store(&self) -> &Arc<WatchedStore> {
        &self.store
    }

    /// Makes this manager a one-member cluster (swarm init).
    pub async fn bootstrap(&self, me: Member) -> Result<(), String> {
        let members = BTreeMap::from([(self.id, me)]);
        self.raft
            .initialize(members)
            .await
            .map_err(|e| e.to_string())
    }

    /// The leader, as far as this manager knows.
    pub fn leader(&self) -> Option<(NodeId, Member)> {
        let m = self.raft.metrics().borrow().clone();
        let id = m.current_leader?;
        let member = m.membership_config.membership().get_node(&id)?.clone();
        Some((id, member))
    }

    pub fn is_leader(&self) -> bool {
        self.raft.metrics().borrow().state == ServerState::Leader
    }

    /// Whether this manager is a voter as far as it knows; a manager that
    /// was removed (it applied its own removal) is not.
    pub fn is_voter(&self) -> bool {
        let m = self.raft.metrics().borrow().clone();
        m.membership_config
            .membership()
            .voter_ids()
            .any(|id| id == self.id)
    }

    /// The voting members.
    pub fn members(&self) -> Vec<(NodeId, Member)> {
        let m = self.raft.metrics().borrow().clone();
        let membership = m.membership_config.membership();
        membership
            .voter_ids()
            .filter_map(|id| Some((id, membership.get_node(&id)?.clone())))
            .collect()
    }

    /// Commits a batch of store changes; on the leader only. Refused at
    /// once when there is no leader, and after one election's time when
    /// the leader cannot reach a quorum.
    pub async fn propose(&self, actions: Vec<Action>) -> Result<(), ProposeError> {
        self.check_leader()?;
        let proposal = Proposal {
            actions,
            at: chrono::Utc::now(),
        };
        let write = self.raft.client_write(proposal);
        match tokio::time::timeout(self.settings.write_deadline(), write).await {
            Err(_) => Err(ProposeError::NoQuorum),
            Ok(Ok(resp)) => Ok(resp.data.result?),
            Ok(Err(e)) => Err(self.write_error(e)),
        }
    }

    fn check_leader(&self) -> Result<(), ProposeError> {
        if self.is_leader() {
            // a leader that has not heard from a quorum for longer than an
            // election takes can't commit: say so now rather than wait
            let since = self.raft.metrics().borrow().millis_since_quorum_ack;
            if since.is_some_and(|ms| ms > self.settings.election_max_ms) {
                return Err(ProposeError::NoQuorum);
            }
            return Ok(());
        }
        match self.leader() {
            Some(l) => Err(ProposeError::NotLeader { leader: Some(l) }),
            None => Err(ProposeError::NoQuorum),
        }
    }

    fn write_error(&self, e: RaftError<NodeId, ClientWriteError<NodeId, Member>>) -> ProposeError {
        match e {
            RaftError::APIError(ClientWriteError::ForwardToLeader(f)) => {
                match (f.leader_id, f.leader_node) {
                    (Some(id), Some(node)) => ProposeError::NotLeader {
                        leader: Some((id, node)),
                    },
                    _ => ProposeError::NoQuorum,
                }
            }
            other => ProposeError::Raft(other.to_string()),
        }
    }

    /// The index a read must see to be consistent (Raft's read index):
    /// on the leader only, once it confirmed it still leads.
    pub async fn read_index(&self) -> Result<u64, ProposeError> {
        self.check_leader()?;
        let read = self.raft.ensure_linearizable();
        match tokio::time::timeout(self.settings.write_deadline(), read).await {
            Err(_) => Err(ProposeError::NoQuorum),
            Ok(Ok(log_id)) => Ok(log_id.map_or(0, |l| l.index)),
            Ok(Err(e)) => Err(ProposeError::Raft(e.to_string())),
        }
    }

    /// Waits until this manager knows a leader; false on timeout. Woken
    /// by Raft's metrics, not by polling: `swarm init` is done as soon as
    /// the first election is.
    pub async fn wait_leader(&self, timeout: Duration) -> bool {
        self.raft
            .wait(Some(timeout))
            .metrics(
                |m| {
                    m.current_leader
                        .is_some_and(|id| m.membership_config.membership().get_node(&id).is_some())
                },
                "a leader",
            )
            .await
            .is_ok()
    }

    /// Waits until this manager has applied `index`; false on timeout.
    pub async fn wait_applied(&self, index: u64, timeout: Duration) -> bool {
        self.raft
            .wait(Some(timeout))
            .applied_index_at_least(Some(index), "consistent read")
            .await
            .is_ok()
    }

    /// Adds a manager: it catches up as a learner, then votes.
    pub async fn add_member(&self, id: NodeId, member: Member) -> Result<(), ProposeError> {
        self.check_leader()?;
        let deadline = self.settings.write_deadline() * 5;
        let add = async {
            self.raft
                .add_learner(id, member, true)
                .await
                .map_err(|e| self.write_error(e))?;
            self.raft
                .change_membership(ChangeMembers::AddVoterIds([id].into()), false)
                .await
                .map_err(|e| self.write_error(e))
        };
        match tokio::time::timeout(deadline, add).await {
            Err(_) => Err(ProposeError::NoQuorum),
            Ok(r) => r.map(|_| ()),
        }
    }

    /// Removes a manager from the voters and from the cluster.
    pub async fn remove_member(&self, id: NodeId) -> Result<(), ProposeError> {
        self.check_leader()?;
        let change = self
            .raft
            .change_membership(ChangeMembers::RemoveVoters([id].into()), false);
        match tokio::time::timeout(self.settings.write_deadline() * 2, change).await {
            Err(_) => Err(ProposeError::NoQuorum),
            Ok(r) => r.map(|_| ()).map_err(|e| self.write_error(e)),
        }
    }

    /// Whether `request` comes from a member a forced new cluster left
    /// behind: it still holds the old membership and must not lead here.
    pub fn refuses(&self, request: &RaftRequest) -> bool {
        request.sender().is_some_and(|s| self.removed.contains(&s))
    }

    /// Serves a request another manager sent.
    pub async fn handle(&self, request: RaftRequest) -> RaftResponse {
        match request {
            RaftRequest::Append(r) => RaftResponse::Append(self.raft.append_entries(r).await),
            RaftRequest::Vote(r) => RaftResponse::Vote(self.raft.vote(r).await),
            RaftRequest::Snapshot(r) => RaftResponse::Snapshot(self.raft.install_snapshot(r).await),
        }
    }

    /// Makes a snapshot now (tests, and before a planned stop).
    pub async fn snapshot(&self) -> Result<(), String> {
        self.raft
            .trigger()
            .snapshot()
            .await
            .map_err(|e| e.to_string())
    }

    /// Drops the log up to `index`, never past the last snapshot.
    pub async fn purge_log(&self, index: u64) -> Result<(), String> {
        self.raft
            .trigger()
            .purge_log(index)
            .await
            .map_err(|e| e.to_string())
    }

    /// The index of the last entry this manager applied.
    pub fn applied_index(&self) -> u64 {
        let m = self.raft.metrics().borrow().clone();
        m.last_applied.map_or(0, |l| l.index)
    }

    /// The index of the last snapshot this manager holds.
    pub fn snapshot_index(&self) -> Option<u64> {
        self.raft.metrics().borrow().snapshot.map(|l| l.index)
    }

    pub async fn shutdown(&self) {
        let _ = self.raft.shutdown().await;
        self.log.close();
    }
}
