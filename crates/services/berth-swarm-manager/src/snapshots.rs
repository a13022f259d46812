//! Log compaction as the cluster's spec asks: every manager snapshots its
//! own store once `SnapshotInterval` entries were applied since its last
//! snapshot, and keeps `LogEntriesForSlowFollowers` entries behind it, so
//! that a follower a little behind catches up from the log and one further
//! behind through the snapshot (swarmkit's rule). The spec is read each
//! round, so `swarm update --snapshot-interval` applies at once. An
//! interval of 0 takes no snapshot, as in swarmkit.

use std::sync::Arc;
use std::time::Duration;

use berth_swarm_raft::RaftNode;
use tokio::task::JoinHandle;

use crate::active::Active;

/// swarmkit's default, for a store without a cluster object yet
const DEFAULT_INTERVAL: u64 = 10_000;

pub(crate) fn spawn_snapshotter(node: Arc<Active>) -> Option<JoinHandle<()>> {
    let raft = node.raft.clone()?;
    Some(tokio::spawn(async move {
        let mut purged = 0;
        loop {
            tokio::time::sleep(Duration::from_millis(500)).await;
            if let Err(e) = compact(&raft, &mut purged).await {
                tracing::warn!("compacting the raft log: {e}");
            }
        }
    }))
}

/// What the spec asks for: (interval, entries to keep).
fn policy(raft: &RaftNode) -> (u64, u64) {
    raft.store().read(|s| {
        s.cluster().map_or((DEFAULT_INTERVAL, 500), |c| {
            // 0 turns periodic snapshots off, as in swarmkit
            let interval = match c.spec.snapshot_interval {
                0 => u64::MAX,
                n => n,
            };
            (interval, c.spec.log_entries_for_slow_followers)
        })
    })
}

/// One round: a snapshot when enough was applied since the last one, and
/// the log purged behind the last snapshot built (it is built in the
/// background, so a new one is purged behind on a later round).
async fn compact(raft: &RaftNode, purged: &mut u64) -> Result<(), String> {
    let (interval, keep) = policy(raft);
    let last = raft.snapshot_index().unwrap_or(0);
    if raft.applied_index().saturating_sub(last) >= interval {
        raft.snapshot().await?;
    }
    let upto = last.saturating_sub(keep);
    if upto > *purged {
        raft.purge_log(upto).await?;
        *purged = upto;
    }
    Ok(())
}
