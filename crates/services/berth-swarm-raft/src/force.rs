//! `swarm init --force-new-cluster`: the last manager standing makes
//! itself a cluster of one, keeping every object of the store. Done on
//! the stopped node's files, as swarmkit does it on its WAL: the committed
//! state goes into a snapshot whose membership holds only this manager,
//! entries past the commit point are dropped, and the other members are
//! recorded as removed, so that their messages are refused from then on
//! (they still believe in the old membership and could outvote it).

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::sync::Arc;

use berth_swarm_store::WatchedStore;
use openraft::storage::{RaftLogStorage, RaftStateMachine};
use openraft::{
    CommittedLeaderId, Entry, EntryPayload, LogId, Membership, RaftLogReader, RaftSnapshotBuilder,
    Vote,
};

use crate::log_store::{LOG_FILE, LogStore};
use crate::seal::Deks;
use crate::state_machine::StateMachine;
use crate::{Member, NodeId};

/// What forcing did: the members it removed, and the last entry kept.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Forced {
    pub removed: Vec<NodeId>,
    pub last_index: u64,
}

fn err(what: &str) -> impl Fn(openraft::StorageError<NodeId>) -> String + '_ {
    move |e| format!("{what}: {e}")
}

/// Rewrites the Raft state in `dir` (not open elsewhere) into a one-member
/// cluster of `id`. Each step leaves files the next open reads: the
/// snapshot is written whole, then the log behind it is purged (openraft
/// purges that hole itself if a crash came first).
pub async fn force_new_cluster(
    dir: &Path,
    id: NodeId,
    me: Member,
    deks: Deks,
) -> Result<Forced, String> {
    let mut log = LogStore::open_when_free(&dir.join(LOG_FILE), &deks).await?;
    let mut sm = StateMachine::open(dir, Arc::new(WatchedStore::default()), deks)
        .map_err(|e| format!("opening the raft snapshot: {e}"))?;
    let state = log.get_log_state().await.map_err(err("reading the log"))?;
    let (applied, mut members) = sm
        .applied_state()
        .await
        .map_err(err("reading the snapshot"))?;
    // every entry in the log counts, as if this manager had won an
    // election: a write the old quorum committed may be here before this
    // manager learnt that it was (swarmkit drops such entries; a user was
    // told they were done)
    let committed = log
        .read_committed()
        .await
        .map_err(err("reading the commit point"))?
        .max(applied)
        .max(state.last_log_id);
    let Some(committed) = committed else {
        return Err("this node has no raft state to recover".into());
    };
    let from = applied.map_or(0, |l| l.index + 1);
    let mut reader = log.get_log_reader().await;
    let entries = reader
        .try_get_log_entries(from..=committed.index)
        .await
        .map_err(err("reading committed entries"))?;
    let mut removed = voters(members.membership());
    for e in &entries {
        if let EntryPayload::Membership(m) = &e.payload {
            removed.extend(voters(m));
        }
    }
    sm.apply(entries).await.map_err(err("replaying the log"))?;
    // recorded before the snapshot that drops them from the membership:
    // at no point may the old members count and not be refused
    removed.remove(&id);
    log.add_removed(&removed)
        .map_err(|e| format!("recording the removed members: {e}"))?;
    // one membership entry past the commit point, in a term of its own:
    // later than anything the old members hold
    let vote = log.read_vote().await.map_err(err("reading the vote"))?;
    let term = vote
        .map_or(0, |v| v.leader_id().term)
        .max(committed.leader_id.term)
        + 1;
    let forced_id = LogId::new(CommittedLeaderId::new(term, id), committed.index + 1);
    let alone = Membership::new(vec![BTreeSet::from([id])], BTreeMap::from([(id, me)]));
    sm.apply([Entry {
        log_id: forced_id,
        payload: EntryPayload::Membership(alone),
    }])
    .await
    .map_err(err("applying the new membership"))?;
    sm.build_snapshot()
        .await
        .map_err(err("writing the snapshot"))?;
    (_, members) = sm.applied_state().await.map_err(err("reading back"))?;
    log.purge(forced_id)
        .await
        .map_err(err("purging the old log"))?;
    log.save_committed(Some(forced_id))
        .await
        .map_err(err("saving the commit point"))?;
    log.save_vote(&Vote::new(term, id))
        .await
        .map_err(err("saving the vote"))?;
    debug_assert!(members.membership().voter_ids().eq([id]));
    Ok(Forced {
        removed: removed.into_iter().collect(),
        last_index: committed.index,
    })
}

fn voters(m: &Membership<NodeId, Member>) -> BTreeSet<NodeId> {
    m.voter_ids().chain(m.learner_ids()).collect()
}
