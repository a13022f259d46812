//! The managers' Raft, on openraft. The log and the vote live in redb under
//! the node's swarm directory; the state machine is the swarm store
//! (`berth-swarm-store`), kept in memory and rebuilt at start from the last
//! snapshot on disk plus the committed log after it, as swarmkit does. The
//! transport is a trait: the manager carries `RaftRequest`s over mutual
//! TLS, the tests over an in-process router.

// openraft's traits fix the error types (StorageError, RPCError), which are
// large; boxing them is not ours to choose
#![allow(clippy::result_large_err)]

mod force;
mod log_store;
mod network;
mod node;
pub mod seal;
mod state_machine;
#[cfg(test)]
mod tests;

use std::fmt;
use std::io::Cursor;

use berth_swarm_store::{Action, StoreError};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

pub use force::{Forced, force_new_cluster};
pub use log_store::holds_sealed_data;
pub use network::{RaftRequest, RaftResponse, Transport, TransportError, TransportFuture};
pub use node::{NO_LEADER, ProposeError, RaftNode, RaftSettings};

/// Raft's member id: a random number per manager, as swarmkit's.
pub type NodeId = u64;

/// A manager as Raft knows it: its swarm node id and where it listens.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Member {
    pub node_id: String,
    pub addr: String,
}

impl fmt::Display for Member {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}@{}", self.node_id, self.addr)
    }
}

/// One log entry's worth of store changes, with the leader's clock at
/// proposal (every manager stamps the same time).
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Proposal {
    pub actions: Vec<Action>,
    pub at: DateTime<Utc>,
}

/// What applying an entry gave: a proposal can be refused by the store
/// (a stale version, a name taken) after it was committed.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Applied {
    pub result: Result<(), StoreError>,
}

openraft::declare_raft_types!(
    pub TypeConfig:
        D = Proposal,
        R = Applied,
        NodeId = NodeId,
        Node = Member,
);
