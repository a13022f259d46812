//! Role changes and removals on swarms in one process: a worker promoted
//! serves as a manager, a manager demoted stops, the last manager stays,
//! a stale version is refused, a removed node is refused, and each
//! change is a node event.

use berth_swarm_store::{Availability, NodeRole, NodeState};

use crate::tests::{init, join_req, node, three_nodes, until, until_all_ready};
use crate::{NodeSpecUpdate, Swarm};

async fn spec_of(s: &Swarm, reference: &str) -> (u64, NodeSpecUpdate) {
    let n = s.node(reference).await.unwrap().node;
    (
        n.meta.version,
        NodeSpecUpdate {
            name: n.spec.annotations.name,
            labels: n.spec.annotations.labels,
            role: n.spec.desired_role,
            availability: n.spec.availability,
        },
    )
}

async fn is_raft_member(s: &Swarm, reference: &str) -> bool {
    s.node(reference)
        .await
        .is_ok_and(|n| n.manager_status.is_some())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_worker_is_promoted_and_demoted_and_a_down_node_removed() {
    let dir = tempfile::tempdir().unwrap();
    let (a, b, c) = three_nodes(&dir).await;
    let mut events = a.swarm_events();
    let remote = init(&a).await;
    let token = a.inspect().await.unwrap().worker_token;
    b.join(join_req(&remote, &token)).await.unwrap();
    c.join(join_req(&remote, &token)).await.unwrap();
    until_all_ready(&a).await;

    // the last manager can't be demoted
    let (v, mut spec) = spec_of(&a, "a").await;
    spec.role = NodeRole::Worker;
    let err = a.update_node("a", v, spec).await.unwrap_err();
    assert!(
        err.to_string()
            .ends_with("attempting to demote the last manager of the swarm"),
        "{err}"
    );

    // drain and label a worker; the same version again is out of sequence
    let (v, mut spec) = spec_of(&a, "c").await;
    spec.availability = Availability::Drain;
    spec.labels.insert("zone".into(), "east".into());
    a.update_node("c", v, spec.clone()).await.unwrap();
    let err = a.update_node("c", v, spec).await.unwrap_err();
    assert_eq!(
        err.to_string(),
        "rpc error: code = Unknown desc = update out of sequence"
    );
    assert_eq!(err.http_status(), 500);
    let cn = a.node("c").await.unwrap().node;
    assert_eq!(cn.spec.availability, Availability::Drain);
    assert_eq!(cn.spec.annotations.labels["zone"], "east");

    // promotion: b becomes a raft member and serves the cluster's state
    let (v, mut spec) = spec_of(&a, "b").await;
    spec.role = NodeRole::Manager;
    a.update_node("b", v, spec).await.unwrap();
    until(20, async || {
        is_raft_member(&a, "b").await && b.nodes().await.is_ok()
    })
    .await;
    assert_eq!(a.info().await.managers, Some(2));

    // demotion: b leaves the raft and stops serving as a manager
    let (v, mut spec) = spec_of(&a, "b").await;
    spec.role = NodeRole::Worker;
    a.update_node("b", v, spec).await.unwrap();
    until(20, async || {
        !is_raft_member(&a, "b").await
            && a.node("b").await.unwrap().node.role == NodeRole::Worker
            && b.nodes().await.is_err()
    })
    .await;
    until(10, async || {
        a.node("b")
            .await
            .is_ok_and(|n| n.node.status.state == NodeState::Ready)
    })
    .await;

    // removal: refused while up, done when down; its heartbeats refused
    let err = a.remove_node("c", false).await.unwrap_err();
    assert!(
        err.to_string()
            .ends_with("is not down and can't be removed"),
        "{err}"
    );
    c.shutdown().await;
    until(10, async || {
        a.node("c")
            .await
            .is_ok_and(|n| n.node.status.state == NodeState::Down)
    })
    .await;
    let c_id = a.node("c").await.unwrap().node.id;
    a.remove_node("c", false).await.unwrap();
    assert_eq!(a.node(&c_id).await.unwrap_err().http_status(), 404);
    let back = node(&dir, "c").await;
    assert!(back.current().await.unwrap().beat().await.is_none());

    let mut seen = Vec::new();
    while let Ok(e) = events.try_recv() {
        seen.push((e.action, e.attributes.clone()));
    }
    assert!(seen.iter().any(|(a, _)| *a == "create"));
    assert!(
        seen.iter().any(|(a, at)| *a == "update"
            && at.get("availability.new").map(String::as_str) == Some("drain"))
    );
    assert!(
        seen.iter()
            .any(|(a, at)| *a == "update"
                && at.get("role.new").map(String::as_str) == Some("manager"))
    );
    assert!(
        seen.iter()
            .any(|(a, at)| *a == "update"
                && at.get("role.new").map(String::as_str) == Some("worker"))
    );
    assert!(seen.iter().any(|(a, _)| *a == "remove"));
    for s in [a, b, back] {
        s.shutdown().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_leader_is_demoted_and_another_manager_leads() {
    let dir = tempfile::tempdir().unwrap();
    let (a, b, c) = three_nodes(&dir).await;
    let remote = init(&a).await;
    let token = a.inspect().await.unwrap().manager_token;
    b.join(join_req(&remote, &token)).await.unwrap();
    c.join(join_req(&remote, &token)).await.unwrap();
    until_all_ready(&a).await;
    let (v, mut spec) = spec_of(&b, "a").await;
    spec.role = NodeRole::Worker;
    b.update_node("a", v, spec).await.unwrap();
    until(20, async || {
        !is_raft_member(&b, "a").await
            && b.node("a")
                .await
                .is_ok_and(|n| n.node.role == NodeRole::Worker)
            && a.nodes().await.is_err()
    })
    .await;
    let leaders: Vec<String> = b
        .nodes()
        .await
        .unwrap()
        .into_iter()
        .filter(|n| n.manager_status.as_ref().is_some_and(|m| m.leader))
        .map(|n| n.node.description.hostname)
        .collect();
    assert_eq!(leaders.len(), 1, "{leaders:?}");
    assert_ne!(leaders[0], "a");
    // the cluster still takes writes, and the old leader beats as a worker
    until(10, async || {
        b.node("a")
            .await
            .is_ok_and(|n| n.node.status.state == NodeState::Ready)
    })
    .await;
    let (v, mut spec) = spec_of(&c, "a").await;
    spec.availability = berth_swarm_store::Availability::Pause;
    c.update_node("a", v, spec).await.unwrap();
    for s in [a, b, c] {
        s.shutdown().await;
    }
}
