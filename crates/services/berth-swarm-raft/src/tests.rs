//! Several Raft managers in one process, over a router whose links the
//! tests cut: election, replication, failover, catching up through a
//! snapshot, quorum loss refused in bounded time, and restart from disk.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use berth_swarm_store::{Action, Kind, Node, Object, StoreError};

use crate::network::{RaftRequest, Transport, TransportError, TransportFuture};
use crate::{Member, NodeId, ProposeError, RaftNode, RaftSettings};

#[path = "rekey_tests.rs"]
mod rekey;

#[derive(Default)]
struct Router {
    nodes: Mutex<HashMap<NodeId, Arc<RaftNode>>>,
    cut: Mutex<HashSet<NodeId>>,
}

struct Link {
    router: Arc<Router>,
    from: NodeId,
}

impl Transport for Link {
    fn send(&self, target: NodeId, _to: &Member, request: RaftRequest) -> TransportFuture {
        let router = self.router.clone();
        let from = self.from;
        Box::pin(async move {
            let cut = {
                let c = router.cut.lock().unwrap();
                c.contains(&from) || c.contains(&target)
            };
            let node = router.nodes.lock().unwrap().get(&target).cloned();
            match (cut, node) {
                (false, Some(n)) => Ok(n.handle(request).await),
                _ => Err(TransportError::Unreachable(format!("{target}"))),
            }
        })
    }
}

fn fast() -> RaftSettings {
    RaftSettings {
        heartbeat_ms: 50,
        election_min_ms: 300,
        election_max_ms: 450,
        ..RaftSettings::default()
    }
}

struct Cluster {
    router: Arc<Router>,
    dir: tempfile::TempDir,
    settings: RaftSettings,
}

impl Cluster {
    fn new(settings: RaftSettings) -> Cluster {
        Cluster {
            router: Arc::new(Router::default()),
            dir: tempfile::tempdir().unwrap(),
            settings,
        }
    }

    async fn start(&self, id: NodeId) -> Arc<RaftNode> {
        let link = Arc::new(Link {
            router: self.router.clone(),
            from: id,
        });
        let dir = self.dir.path().join(id.to_string());
        let node = Arc::new(
            RaftNode::open(
                &dir,
                id,
                link,
                self.settings.clone(),
                crate::seal::Deks::new(&dek(id), None),
            )
            .await
            .unwrap(),
        );
        self.router.nodes.lock().unwrap().insert(id, node.clone());
        node
    }

    async fn stop(&self, id: NodeId) {
        let node = self.router.nodes.lock().unwrap().remove(&id);
        if let Some(n) = node {
            n.shutdown().await;
        }
    }

    fn node(&self, id: NodeId) -> Arc<RaftNode> {
        self.router.nodes.lock().unwrap()[&id].clone()
    }

    fn cut(&self, id: NodeId) {
        self.router.cut.lock().unwrap().insert(id);
    }

    fn heal(&self, id: NodeId) {
        self.router.cut.lock().unwrap().remove(&id);
    }

    /// A three-manager cluster led by 1.
    async fn three(settings: RaftSettings) -> Cluster {
        let c = Cluster::new(settings);
        let n1 = c.start(1).await;
        n1.bootstrap(member(1)).await.unwrap();
        until(5, || n1.is_leader()).await;
        for id in [2, 3] {
            c.start(id).await;
            n1.add_member(id, member(id)).await.unwrap();
        }
        c
    }

    /// Proposes through whichever manager leads, as the swarm's
    /// forwarding does, while an election settles.
    async fn propose_anywhere(&self, actions: Vec<Action>) {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let leader = self.leader_among(&[1, 2, 3]).await;
            match leader.propose(actions.clone()).await {
                Ok(()) => return,
                Err(ProposeError::NotLeader { .. } | ProposeError::NoQuorum)
                    if Instant::now() < deadline =>
                {
                    tokio::time::sleep(Duration::from_millis(50)).await
                }
                Err(e) => panic!("proposing: {e}"),
            }
        }
    }

    async fn leader_among(&self, ids: &[NodeId]) -> Arc<RaftNode> {
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            for id in ids {
                let n = self.node(*id);
                if n.is_leader() {
                    return n;
                }
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        panic!("no leader among {ids:?}");
    }
}

/// Each manager's DEK: the same across its restarts, as the manager
/// keeps it beside its key.
fn dek(id: NodeId) -> [u8; 32] {
    [id as u8; 32]
}

fn member(id: NodeId) -> Member {
    Member {
        node_id: format!("node{id}"),
        addr: format!("10.0.0.{id}:2377"),
    }
}

fn create(id: &str) -> Vec<Action> {
    vec![Action::Create(Object::Node(Node {
        id: id.into(),
        ..Node::default()
    }))]
}

async fn until(secs: u64, f: impl Fn() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(secs);
    while !f() {
        assert!(Instant::now() < deadline, "condition not met in {secs} s");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

fn has(n: &RaftNode, id: &str) -> bool {
    n.store().read(|s| s.node(id).is_some())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lone_manager_commits_and_restarts_from_its_log() {
    let c = Cluster::new(fast());
    let n1 = c.start(1).await;
    n1.bootstrap(member(1)).await.unwrap();
    until(5, || n1.is_leader()).await;
    n1.propose(create("a")).await.unwrap();
    let err = n1.propose(create("a")).await.unwrap_err();
    assert!(
        matches!(err, ProposeError::Store(StoreError::AlreadyExists)),
        "{err}"
    );
    let version = n1.store().read(|s| s.node("a").unwrap().meta.version);
    assert!(version > 0);

    c.stop(1).await;
    drop(n1);
    let again = c.start(1).await;
    until(5, || again.is_leader()).await;
    until(5, || has(&again, "a")).await;
    // the same bytes: the version is the entry's index, not a new one
    assert_eq!(
        again.store().read(|s| s.node("a").unwrap().meta.version),
        version
    );
    assert_eq!(again.members(), vec![(1, member(1))]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn writes_replicate_and_a_new_leader_takes_over_when_the_leader_is_cut_off() {
    let c = Cluster::three(fast()).await;
    let n1 = c.node(1);
    assert_eq!(n1.members().len(), 3);
    n1.propose(create("before")).await.unwrap();
    until(5, || has(&c.node(2), "before") && has(&c.node(3), "before")).await;

    c.cut(1);
    let started = Instant::now();
    let new = c.leader_among(&[2, 3]).await;
    let failover = started.elapsed();
    assert!(
        failover < Duration::from_secs(5),
        "failover took {failover:?}"
    );
    new.propose(create("after")).await.unwrap();
    // the old leader can't commit alone: refused in bounded time
    let t = Instant::now();
    assert!(n1.propose(create("lost")).await.is_err());
    assert!(t.elapsed() < Duration::from_secs(5));

    c.heal(1);
    until(10, || has(&c.node(1), "after")).await;
    assert!(!has(&c.node(1), "lost"), "an uncommitted write survived");
    until(5, || !c.node(1).is_leader()).await;
    match c.node(1).propose(create("x")).await {
        Err(ProposeError::NotLeader {
            leader: Some((id, _)),
        }) => assert_ne!(id, 1),
        other => panic!("a follower took a write: {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_follower_that_missed_a_compaction_catches_up_through_a_snapshot() {
    let c = Cluster::three(RaftSettings {
        snapshot_every: 10,
        keep_after_snapshot: 0,
        ..fast()
    })
    .await;
    c.cut(3);
    let leader = c.leader_among(&[1, 2]).await;
    for i in 0..30 {
        leader.propose(create(&format!("n{i}"))).await.unwrap();
    }
    until(5, || leader.snapshot_index().is_some_and(|i| i >= 20)).await;
    c.heal(3);
    let n3 = c.node(3);
    until(10, || (0..30).all(|i| has(&n3, &format!("n{i}")))).await;
    assert!(
        n3.snapshot_index().is_some(),
        "caught up without a snapshot"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_a_quorum_writes_fail_fast_with_swarmkits_words_and_reads_still_answer() {
    let c = Cluster::three(fast()).await;
    let leader = c.leader_among(&[1, 2, 3]).await;
    leader.propose(create("kept")).await.unwrap();
    let others: Vec<NodeId> = [1, 2, 3]
        .into_iter()
        .filter(|i| *i != leader.id())
        .collect();
    for id in &others {
        c.cut(*id);
    }
    let t = Instant::now();
    let err = leader.propose(create("nope")).await.unwrap_err();
    assert!(
        t.elapsed() < Duration::from_secs(5),
        "took {:?}",
        t.elapsed()
    );
    assert!(matches!(err, ProposeError::NoQuorum), "{err:?}");
    assert!(
        err.to_string()
            .starts_with("The swarm does not have a leader.")
    );
    assert!(has(&leader, "kept"), "reads of the last state must answer");

    // once the leader knows it lost its quorum, refusals are immediate
    tokio::time::sleep(Duration::from_millis(600)).await;
    let t = Instant::now();
    assert!(matches!(
        leader.propose(create("nope")).await,
        Err(ProposeError::NoQuorum)
    ));
    assert!(
        t.elapsed() < Duration::from_millis(100),
        "took {:?}",
        t.elapsed()
    );

    for id in &others {
        c.heal(*id);
    }
    c.propose_anywhere(create("again")).await;
    assert!(
        c.node(leader.id())
            .store()
            .read(|s| s.node("nope").is_none())
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_write_read_at_a_stale_version_is_out_of_sequence_on_every_manager() {
    let c = Cluster::three(fast()).await;
    let leader = c.leader_among(&[1, 2, 3]).await;
    leader.propose(create("n")).await.unwrap();
    let read = leader
        .store()
        .read(|s| s.get(Kind::Node, "n").cloned())
        .unwrap();
    leader
        .propose(vec![Action::Update(read.clone())])
        .await
        .unwrap();
    let err = leader
        .propose(vec![Action::Update(read)])
        .await
        .unwrap_err();
    assert_eq!(err.to_string(), "update out of sequence");
    let v = leader.store().read(|s| s.node("n").unwrap().meta.version);
    until(5, || {
        [1, 2, 3].iter().all(|id| {
            c.node(*id)
                .store()
                .read(|s| s.node("n").map(|n| n.meta.version))
                == Some(v)
        })
    })
    .await;
}

/// A node whose hostname no clear file may show.
fn secret_node(id: &str, secret: &str) -> Vec<Action> {
    vec![Action::Create(Object::Node(Node {
        id: id.into(),
        description: berth_swarm_store::NodeDescription {
            hostname: secret.into(),
            ..Default::default()
        },
        ..Node::default()
    }))]
}

fn contains(haystack: &[u8], needle: &str) -> bool {
    haystack
        .windows(needle.len())
        .any(|w| w == needle.as_bytes())
}

/// Every byte of every file under `dir`.
fn raw_files(dir: &std::path::Path) -> Vec<(String, Vec<u8>)> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            out.extend(raw_files(&p));
        } else {
            out.push((p.display().to_string(), std::fs::read(&p).unwrap()));
        }
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_log_and_the_snapshot_on_disk_hold_no_clear_text() {
    const SECRET: &str = "-----BEGIN PRIVATE KEY----- plaintext marker";
    let c = Cluster::new(RaftSettings {
        snapshot_every: 5,
        ..fast()
    });
    let n1 = c.start(1).await;
    n1.bootstrap(member(1)).await.unwrap();
    until(5, || n1.is_leader()).await;
    n1.propose(secret_node("s", SECRET)).await.unwrap();
    for i in 0..8 {
        n1.propose(create(&format!("n{i}"))).await.unwrap();
    }
    until(5, || n1.snapshot_index().is_some()).await;
    n1.propose(secret_node("t", SECRET)).await.unwrap();
    c.stop(1).await;
    drop(n1);

    let dir = c.dir.path().join("1");
    let files = raw_files(&dir);
    assert!(files.iter().any(|(p, _)| p.ends_with("snapshot.json")));
    for (path, bytes) in &files {
        assert!(!contains(bytes, SECRET), "{path} holds the secret in clear");
        assert!(
            !contains(bytes, "10.0.0.1:2377"),
            "{path} holds a member in clear"
        );
    }
    // and it all opens again with the DEK
    let again = c.start(1).await;
    until(5, || {
        has(&again, "s") && has(&again, "t") && has(&again, "n7")
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_log_written_in_clear_by_an_older_berth_is_sealed_when_opened() {
    const SECRET: &str = "older clear secret";
    let c = Cluster::new(fast());
    let dir = c.dir.path().join("1");
    std::fs::create_dir_all(&dir).unwrap();
    // what the previous version wrote: JSON entries and a JSON snapshot
    {
        let db = redb::Database::create(dir.join("raft.redb")).unwrap();
        let log: redb::TableDefinition<u64, &[u8]> = redb::TableDefinition::new("log");
        let meta: redb::TableDefinition<&str, &[u8]> = redb::TableDefinition::new("meta");
        let tx = db.begin_write().unwrap();
        {
            let leader = openraft::CommittedLeaderId::new(1, 1);
            let members = std::collections::BTreeMap::from([(1u64, member(1))]);
            let entries = [
                openraft::Entry::<crate::TypeConfig> {
                    log_id: openraft::LogId::new(leader, 0),
                    payload: openraft::EntryPayload::Membership(openraft::Membership::new(
                        vec![[1u64].into()],
                        members,
                    )),
                },
                openraft::Entry::<crate::TypeConfig> {
                    log_id: openraft::LogId::new(leader, 1),
                    payload: openraft::EntryPayload::Normal(crate::Proposal {
                        actions: secret_node("s", SECRET),
                        at: chrono::Utc::now(),
                    }),
                },
            ];
            let mut t = tx.open_table(log).unwrap();
            for e in &entries {
                t.insert(e.log_id.index, serde_json::to_vec(e).unwrap().as_slice())
                    .unwrap();
            }
            let mut m = tx.open_table(meta).unwrap();
            let vote = openraft::Vote::<NodeId>::new_committed(1, 1);
            m.insert("vote", serde_json::to_vec(&vote).unwrap().as_slice())
                .unwrap();
            let committed = Some(openraft::LogId::new(leader, 1));
            m.insert(
                "committed",
                serde_json::to_vec(&committed).unwrap().as_slice(),
            )
            .unwrap();
        }
        tx.commit().unwrap();
    }
    assert!(contains(
        &std::fs::read(dir.join("raft.redb")).unwrap(),
        SECRET
    ));

    let n1 = c.start(1).await;
    until(5, || n1.is_leader()).await;
    until(5, || has(&n1, "s")).await;
    n1.propose(create("after")).await.unwrap();
    c.stop(1).await;
    drop(n1);
    for (path, bytes) in raw_files(&dir) {
        assert!(!contains(&bytes, SECRET), "{path} still holds clear text");
    }
    let again = c.start(1).await;
    until(5, || has(&again, "s") && has(&again, "after")).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_last_manager_forces_a_new_cluster_that_keeps_the_store_and_refuses_the_old_members() {
    use openraft::Vote;
    use openraft::raft::VoteRequest;

    let c = Cluster::three(fast()).await;
    c.propose_anywhere(create("in-snapshot")).await;
    c.leader_among(&[1, 2, 3]).await.snapshot().await.unwrap();
    c.propose_anywhere(create("in-log")).await;
    until(5, || has(&c.node(1), "in-log")).await;
    c.stop(2).await;
    c.stop(3).await;
    c.stop(1).await;

    let dir = c.dir.path().join("1");
    let forced =
        crate::force_new_cluster(&dir, 1, member(1), crate::seal::Deks::new(&dek(1), None))
            .await
            .unwrap();
    assert_eq!(forced.removed, vec![2, 3]);
    // forcing again (a crash before the caller saw the answer) is the same
    let again = crate::force_new_cluster(&dir, 1, member(1), crate::seal::Deks::new(&dek(1), None))
        .await
        .unwrap();
    assert_eq!(again.removed, Vec::<NodeId>::new());
    assert_eq!(again.last_index, forced.last_index + 1);

    let n1 = c.start(1).await;
    until(5, || n1.is_leader()).await;
    assert_eq!(n1.members(), vec![(1, member(1))]);
    assert!(has(&n1, "in-snapshot") && has(&n1, "in-log"));
    n1.propose(create("after")).await.unwrap();

    // the old members still count on the old membership: refused
    let from = |id| RaftRequest::Vote(VoteRequest::new(Vote::new(1000, id), None));
    assert!(n1.refuses(&from(2)) && n1.refuses(&from(3)));
    assert!(!n1.refuses(&from(4)));

    // and it grows again
    c.start(4).await;
    n1.add_member(4, member(4)).await.unwrap();
    until(5, || {
        has(&c.node(4), "after") && has(&c.node(4), "in-snapshot")
    })
    .await;
    assert_eq!(n1.members().len(), 2);
}
