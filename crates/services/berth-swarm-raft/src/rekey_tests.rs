//! DEK rotation: the log and the snapshot rewritten with the new key
//! while Raft runs, no record of the old key left on disk, and a stop at
//! each step of the rotation leaving files that open with the keys the
//! manager's key file holds at that step.

use std::path::Path;
use std::sync::Arc;

use redb::{ReadableDatabase, ReadableTable};

use super::{Cluster, Link, create, fast, has, member, secret_node, until};
use crate::seal::{Deks, Sealer};
use crate::{NodeId, RaftNode, RaftSettings};

const OLD: [u8; 32] = [11; 32];
const NEW: [u8; 32] = [22; 32];

impl Cluster {
    async fn try_start_with(&self, id: NodeId, deks: Deks) -> Result<Arc<RaftNode>, String> {
        let link = Arc::new(Link {
            router: self.router.clone(),
            from: id,
        });
        let dir = self.dir.path().join(id.to_string());
        // the previous life's tasks may hold the log for a moment
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        let node = loop {
            match RaftNode::open(&dir, id, link.clone(), self.settings.clone(), deks.clone()).await
            {
                Err(e) if e.contains("already open") && std::time::Instant::now() < deadline => {
                    tokio::time::sleep(std::time::Duration::from_millis(50)).await
                }
                r => break Arc::new(r?),
            }
        };
        self.router.nodes.lock().unwrap().insert(id, node.clone());
        Ok(node)
    }

    async fn start_with(&self, id: NodeId, deks: Deks) -> Arc<RaftNode> {
        self.try_start_with(id, deks).await.unwrap()
    }
}

/// The log's records and the snapshot file as they are on disk.
async fn records(dir: &Path) -> (Vec<Vec<u8>>, Vec<u8>) {
    let log: redb::TableDefinition<u64, &[u8]> = redb::TableDefinition::new("log");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    let db = loop {
        match redb::Database::open(dir.join("raft.redb")) {
            Ok(db) => break db,
            Err(_) if std::time::Instant::now() < deadline => {
                tokio::time::sleep(std::time::Duration::from_millis(50)).await
            }
            Err(e) => panic!("{e}"),
        }
    };
    let rx = db.begin_read().unwrap();
    let values = rx
        .open_table(log)
        .unwrap()
        .iter()
        .unwrap()
        .map(|r| r.unwrap().1.value().to_vec())
        .collect();
    (values, std::fs::read(dir.join("snapshot.json")).unwrap())
}

/// How many of the records open with `key`, of how many.
fn opening(key: &[u8; 32], (log, snapshot): &(Vec<Vec<u8>>, Vec<u8>)) -> (usize, usize) {
    let s = Sealer::new(key);
    let n = log
        .iter()
        .filter(|r| s.open("raft-entry", r).is_ok())
        .count()
        + usize::from(s.open("raft-snapshot", snapshot).is_ok());
    (n, log.len() + 1)
}

fn find(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

/// A lone manager with entries before and after its first snapshot.
async fn lone_manager_with_a_snapshot(c: &Cluster, deks: Deks) -> Arc<RaftNode> {
    let n1 = c.start_with(1, deks).await;
    n1.bootstrap(member(1)).await.unwrap();
    until(5, || n1.is_leader()).await;
    n1.propose(secret_node("s", "before the rotation"))
        .await
        .unwrap();
    for i in 0..6 {
        n1.propose(create(&format!("n{i}"))).await.unwrap();
    }
    until(5, || n1.snapshot_index().is_some()).await;
    n1.propose(create("after-snapshot")).await.unwrap();
    n1
}

async fn stop(c: &Cluster, n: Arc<RaftNode>) {
    c.stop(1).await;
    drop(n);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rotation_reseals_the_log_and_the_snapshot_and_leaves_no_old_record_on_disk() {
    let c = Cluster::new(RaftSettings {
        snapshot_every: 5,
        ..fast()
    });
    let dir = c.dir.path().join("1");
    let n1 = lone_manager_with_a_snapshot(&c, Deks::new(&OLD, None)).await;
    stop(&c, n1).await;
    let before = records(&dir).await;
    assert_eq!(
        opening(&OLD, &before),
        (before.0.len() + 1, before.0.len() + 1)
    );

    // the rotation, with Raft running and writing before and after it
    let n1 = c.start_with(1, Deks::new(&OLD, None)).await;
    until(5, || n1.is_leader()).await;
    n1.deks().set_pending(&NEW);
    n1.propose(create("during")).await.unwrap();
    n1.reseal().unwrap();
    n1.deks().promote();
    n1.propose(create("after")).await.unwrap();
    stop(&c, n1).await;

    let after = records(&dir).await;
    std::fs::remove_file(dir.join("snapshot.json")).unwrap();
    assert_eq!(crate::holds_sealed_data(&dir), Ok(true), "the log alone");
    std::fs::write(dir.join("snapshot.json"), &after.1).unwrap();
    assert_eq!(
        opening(&OLD, &after).0,
        0,
        "a record still opens with the old DEK"
    );
    assert_eq!(opening(&NEW, &after).0, opening(&NEW, &after).1);
    // a fresh file: not one old record survives, not even in a freed page
    let raw = std::fs::read(dir.join("raft.redb")).unwrap();
    for r in &before.0 {
        assert!(!find(&raw, r), "an old record is still in the file");
    }
    assert!(c.try_start_with(1, Deks::new(&OLD, None)).await.is_err());
    let n1 = c.start_with(1, Deks::new(&NEW, None)).await;
    until(5, || {
        ["s", "n5", "after-snapshot", "during", "after"]
            .iter()
            .all(|id| has(&n1, id))
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rotation_stopped_at_any_step_opens_with_the_keys_on_disk() {
    let c = Cluster::new(RaftSettings {
        snapshot_every: 5,
        ..fast()
    });
    let dir = c.dir.path().join("1");
    let both = || Deks::new(&OLD, Some(&NEW));
    let all = ["s", "n5", "after-snapshot", "pending"];
    let n1 = lone_manager_with_a_snapshot(&c, Deks::new(&OLD, None)).await;

    // 1. the pending DEK is on disk and seals new entries; nothing rewritten
    n1.deks().set_pending(&NEW);
    n1.propose(create("pending")).await.unwrap();
    stop(&c, n1).await;
    let mixed = records(&dir).await;
    assert!(opening(&OLD, &mixed).0 > 0 && opening(&NEW, &mixed).0 > 0);
    let n1 = c.start_with(1, both()).await;
    until(5, || all.iter().all(|id| has(&n1, id))).await;
    stop(&c, n1).await;

    // 2. killed while writing the new log file: the old one is used
    std::fs::write(dir.join("raft.redb.sealing"), b"half a file").unwrap();
    let n1 = c.start_with(1, both()).await;
    until(5, || all.iter().all(|id| has(&n1, id))).await;
    assert!(!dir.join("raft.redb.sealing").exists());

    // 3. the log rewritten, not yet the snapshot (which may be either's:
    // Raft may have made a new one, sealed with the pending DEK)
    n1.log.reseal().unwrap();
    stop(&c, n1).await;
    let half = records(&dir).await;
    let new = Sealer::new(&NEW);
    assert!(half.0.iter().all(|r| new.open("raft-entry", r).is_ok()));
    let n1 = c.start_with(1, both()).await;
    until(5, || all.iter().all(|id| has(&n1, id))).await;

    // 4. all rewritten, the key file not yet promoted: both keys still
    // open it, and so does the new one alone
    n1.reseal().unwrap();
    stop(&c, n1).await;
    let done = records(&dir).await;
    assert_eq!(opening(&OLD, &done).0, 0);
    let n1 = c.start_with(1, both()).await;
    until(5, || all.iter().all(|id| has(&n1, id))).await;
    stop(&c, n1).await;
    let n1 = c.start_with(1, Deks::new(&NEW, None)).await;
    until(5, || all.iter().all(|id| has(&n1, id))).await;
}

#[test]
fn sealed_raft_data_is_told_from_none_or_clear() {
    let dir = tempfile::tempdir().unwrap();
    assert_eq!(crate::holds_sealed_data(dir.path()), Ok(false));
    std::fs::write(dir.path().join("snapshot.json"), b"{}").unwrap();
    assert_eq!(crate::holds_sealed_data(dir.path()), Ok(false));
    let sealed = Sealer::new(&OLD).seal("raft-snapshot", b"{}").unwrap();
    std::fs::write(dir.path().join("snapshot.json"), sealed).unwrap();
    assert_eq!(crate::holds_sealed_data(dir.path()), Ok(true));
}
