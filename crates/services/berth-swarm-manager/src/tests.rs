//! Swarms of several nodes in one process, over real gRPC and mutual TLS
//! on loopback: init, joins as manager and worker, heartbeats and down
//! nodes, and the refusals of bad tokens.

use std::time::{Duration, Instant};

use berth_swarm_raft::RaftSettings;
use berth_swarm_store::{NodeRole, NodeState};

use crate::{InitRequest, JoinRequest, LocalNodeState, Swarm, SwarmSettings};

pub(crate) fn free_addr() -> String {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    l.local_addr().unwrap().to_string()
}

pub(crate) async fn node(dir: &tempfile::TempDir, name: &str) -> Swarm {
    Swarm::open(settings(dir, name)).await.unwrap()
}

pub(crate) fn settings(dir: &tempfile::TempDir, name: &str) -> SwarmSettings {
    let mut settings = SwarmSettings {
        dir: dir.path().join(name),
        heartbeat_period: Some(Duration::from_millis(200)),
        raft: RaftSettings {
            heartbeat_ms: 50,
            election_min_ms: 300,
            election_max_ms: 450,
            ..RaftSettings::default()
        },
        ..SwarmSettings::default()
    };
    settings.description.hostname = name.into();
    settings
}

pub(crate) async fn init(s: &Swarm) -> String {
    let addr = free_addr();
    s.init(InitRequest {
        listen_addr: addr.clone(),
        advertise_addr: addr.clone(),
        ..InitRequest::default()
    })
    .await
    .unwrap();
    addr
}

pub(crate) fn join_req(remote: &str, token: &str) -> JoinRequest {
    let addr = free_addr();
    JoinRequest {
        listen_addr: addr.clone(),
        advertise_addr: addr,
        remote_addrs: vec![remote.to_string()],
        token: token.to_string(),
        ..JoinRequest::default()
    }
}

pub(crate) async fn until(secs: u64, mut f: impl AsyncFnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(secs);
    while !f().await {
        assert!(Instant::now() < deadline, "condition not met in {secs} s");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Three nodes, a, b and c, not in a swarm yet.
pub(crate) async fn three_nodes(dir: &tempfile::TempDir) -> (Swarm, Swarm, Swarm) {
    (
        node(dir, "a").await,
        node(dir, "b").await,
        node(dir, "c").await,
    )
}

/// Waits until `s` sees every node of its swarm ready.
pub(crate) async fn until_all_ready(s: &Swarm) {
    until(10, async || {
        s.nodes()
            .await
            .unwrap()
            .iter()
            .all(|n| n.node.status.state == NodeState::Ready)
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_manager_and_a_worker_join_and_every_node_becomes_ready() {
    let dir = tempfile::tempdir().unwrap();
    let (a, b, c) = three_nodes(&dir).await;
    let remote = init(&a).await;
    let view = a.inspect().await.unwrap();
    assert!(view.manager_token.starts_with("SWMTKN-1-"));
    assert!(
        view.cluster.root_ca.ca_key.is_empty(),
        "the CA key was shown"
    );

    b.join(join_req(&remote, &view.manager_token))
        .await
        .unwrap();
    c.join(join_req(&remote, &view.worker_token)).await.unwrap();

    until(10, async || {
        a.nodes()
            .await
            .unwrap()
            .iter()
            .filter(|n| n.node.status.state == NodeState::Ready)
            .count()
            == 3
    })
    .await;
    let nodes = b.nodes().await.unwrap();
    assert_eq!(nodes.len(), 3, "the second manager sees the cluster");
    let managers: Vec<_> = nodes
        .iter()
        .filter(|n| n.manager_status.is_some())
        .collect();
    assert_eq!(managers.len(), 2);
    assert_eq!(
        managers
            .iter()
            .filter(|n| n.manager_status.as_ref().unwrap().leader)
            .count(),
        1
    );
    let worker = nodes
        .iter()
        .find(|n| n.node.description.hostname == "c")
        .unwrap();
    assert_eq!(worker.node.role, NodeRole::Worker);

    let info = c.info().await;
    assert_eq!(info.local_state, LocalNodeState::Active);
    assert!(!info.control_available);
    assert_eq!(
        c.nodes().await.unwrap_err().http_status(),
        503,
        "a worker shows no cluster state"
    );
    assert_eq!(a.info().await.managers, Some(2));

    // a worker that stops beating goes down
    c.shutdown().await;
    until(10, async || {
        a.node("c")
            .await
            .is_ok_and(|n| n.node.status.state == NodeState::Down)
    })
    .await;

    // a manager leaves only with force
    let err = b.leave(false).await.unwrap_err();
    assert!(err.to_string().contains("Use `--force`"), "{err}");
    a.shutdown().await;
    b.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_tokens_are_refused_with_swarmkits_words_and_leave_nothing_behind() {
    let dir = tempfile::tempdir().unwrap();
    let (a, other, joiner) = (
        node(&dir, "a").await,
        node(&dir, "o").await,
        node(&dir, "j").await,
    );
    let remote = init(&a).await;
    init(&other).await;
    let good = a.inspect().await.unwrap().worker_token;
    let foreign = other.inspect().await.unwrap().worker_token;

    let err = joiner
        .join(join_req(&remote, "SWMTKN-1-nope"))
        .await
        .unwrap_err();
    assert_eq!(err.to_string(), "invalid join token");
    // right cluster, wrong secret
    let wrong = format!("{}{}", &good[..good.len() - 25], "0".repeat(25));
    let err = joiner.join(join_req(&remote, &wrong)).await.unwrap_err();
    assert!(
        err.to_string()
            .contains("A valid join token is necessary to join this cluster"),
        "{err}"
    );
    assert_eq!(err.http_status(), 400);
    // another cluster's token: the root does not match its digest
    let err = joiner.join(join_req(&remote, &foreign)).await.unwrap_err();
    assert!(
        err.to_string()
            .starts_with("remote CA does not match fingerprint. Expected: "),
        "{err}"
    );
    assert_eq!(joiner.info().await.local_state, LocalNodeState::Inactive);

    joiner.join(join_req(&remote, &good)).await.unwrap();
    let err = joiner.join(join_req(&remote, &good)).await.unwrap_err();
    assert!(
        err.to_string()
            .starts_with("This node is already part of a swarm."),
        "{err}"
    );
    for s in [a, other, joiner] {
        s.shutdown().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restarted_manager_resumes_its_swarm_from_disk() {
    let dir = tempfile::tempdir().unwrap();
    let a = node(&dir, "a").await;
    init(&a).await;
    let id = a.info().await.node_id;
    a.shutdown().await;
    drop(a);
    let again = node(&dir, "a").await;
    until(10, async || again.nodes().await.is_ok_and(|n| n.len() == 1)).await;
    assert_eq!(again.info().await.node_id, id);
    again.leave(true).await.unwrap();
    assert_eq!(again.info().await.local_state, LocalNodeState::Inactive);
    assert!(!dir.path().join("a").exists(), "leave kept the swarm state");
}
