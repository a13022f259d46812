//! The cluster's spec and secrets on swarms in one process: updates and
//! their version check, join token rotation, root CA rotation with every
//! node's certificate reissued, and timed renewal.

use std::time::Duration;

use berth_swarm_ca::{JoinToken, RootCa};
use berth_swarm_store::{CertState, ClusterSpec, NodeState};

use crate::tests::{init, join_req, node, three_nodes, until};
use crate::{Swarm, UpdateFlags};

async fn spec_and_version(s: &Swarm) -> (ClusterSpec, u64) {
    let v = s.inspect().await.unwrap();
    (v.cluster.spec, v.cluster.meta.version)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_update_replaces_the_spec_once_and_rotates_tokens_on_request() {
    let dir = tempfile::tempdir().unwrap();
    let (a, j) = (node(&dir, "a").await, node(&dir, "j").await);
    let remote = init(&a).await;
    let before = a.inspect().await.unwrap();
    let (mut spec, version) = spec_and_version(&a).await;
    spec.dispatcher_heartbeat_period = 7_000_000_000;
    spec.task_history_retention_limit = 9;
    a.update(version, spec.clone(), UpdateFlags::default())
        .await
        .unwrap();
    let (now, newer) = spec_and_version(&a).await;
    assert_eq!(now.dispatcher_heartbeat_period, 7_000_000_000);
    assert_eq!(now.task_history_retention_limit, 9);
    assert!(newer > version);
    // the same read again: another write came first
    let err = a
        .update(version, spec.clone(), UpdateFlags::default())
        .await
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        "rpc error: code = Unknown desc = update out of sequence"
    );
    assert_eq!(err.http_status(), 500);
    let mut short = now.clone();
    short.node_cert_expiry = 60_000_000_000;
    let err = a
        .update(newer, short, UpdateFlags::default())
        .await
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        "rpc error: code = InvalidArgument desc = minimum certificate expiry time is: 1h0m0s"
    );
    assert_eq!(err.http_status(), 400);

    let flags = UpdateFlags {
        rotate_worker_token: true,
        ..UpdateFlags::default()
    };
    a.update(newer, now, flags).await.unwrap();
    let after = a.inspect().await.unwrap();
    assert_ne!(after.worker_token, before.worker_token);
    assert_eq!(after.manager_token, before.manager_token);
    let err = j
        .join(join_req(&remote, &before.worker_token))
        .await
        .unwrap_err();
    assert!(
        err.to_string()
            .contains("A valid join token is necessary to join this cluster"),
        "{err}"
    );
    j.join(join_req(&remote, &after.worker_token))
        .await
        .unwrap();
    a.shutdown().await;
    j.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_root_rotation_reissues_every_node_and_then_swaps_the_root() {
    let dir = tempfile::tempdir().unwrap();
    let (a, b, c) = three_nodes(&dir).await;
    let remote = init(&a).await;
    let view = a.inspect().await.unwrap();
    b.join(join_req(&remote, &view.manager_token))
        .await
        .unwrap();
    c.join(join_req(&remote, &view.worker_token)).await.unwrap();
    let old_root = view.cluster.root_ca.ca_cert.clone();

    let (mut spec, version) = spec_and_version(&a).await;
    spec.force_rotate += 1;
    b.update(version, spec, UpdateFlags::default())
        .await
        .unwrap();
    until(30, async || {
        a.inspect()
            .await
            .is_ok_and(|v| v.cluster.root_ca.rotation.is_none())
    })
    .await;
    let after = a.inspect().await.unwrap();
    let new_root = after.cluster.root_ca.ca_cert.clone();
    assert_ne!(new_root, old_root);
    let root = RootCa::from_pem(&new_root, None).unwrap();
    for token in [&after.worker_token, &after.manager_token] {
        let t: JoinToken = token.parse().unwrap();
        t.check_root(&new_root).unwrap();
    }
    // every node moves its trust to the new root, its certificate from it
    for s in [&a, &b, &c] {
        until(20, async || {
            s.current()
                .await
                .is_some_and(|n| n.creds().root.cert_pem() == new_root)
        })
        .await;
        let n = s.current().await.unwrap();
        assert!(root.verifies(&n.creds().cert));
        let on_disk = std::fs::read_to_string(n.paths.dir.join("certificates/swarm-node.crt"));
        assert_eq!(on_disk.unwrap(), n.creds().cert.chain_pem);
    }
    // and they still talk: all ready, a new node joins with the new token
    until(20, async || {
        a.nodes().await.is_ok_and(|ns| {
            ns.iter().all(|n| {
                n.node.status.state == NodeState::Ready
                    && n.node.description.tls_info.trust_root == new_root
            })
        })
    })
    .await;
    let d = node(&dir, "d").await;
    d.join(join_req(&remote, &after.worker_token))
        .await
        .unwrap();
    for s in [a, b, c, d] {
        s.shutdown().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_renews_its_certificate_when_due_and_stays_in_the_cluster() {
    let dir = tempfile::tempdir().unwrap();
    let a = node(&dir, "a").await;
    let remote = init(&a).await;
    let token = a.inspect().await.unwrap().worker_token;
    let mut settings = crate::SwarmSettings {
        dir: dir.path().join("w"),
        heartbeat_period: Some(Duration::from_millis(200)),
        cert_renewal: Some(Duration::from_millis(700)),
        ..crate::SwarmSettings::default()
    };
    settings.description.hostname = "w".into();
    let w = Swarm::open(settings).await.unwrap();
    w.join(join_req(&remote, &token)).await.unwrap();
    let first = w.current().await.unwrap().creds().cert.chain_pem.clone();
    until(20, async || {
        w.current()
            .await
            .is_some_and(|n| n.creds().cert.chain_pem != first)
    })
    .await;
    let n = w.current().await.unwrap();
    let creds = n.creds();
    assert!(creds.cert.matches(&creds.key));
    assert_eq!(creds.cert.identity.node_id, n.identity.node_id);
    let stored = a.node(&n.identity.node_id).await.unwrap().node;
    assert_eq!(stored.certificate.state, CertState::Issued);
    until(10, async || {
        a.node("w")
            .await
            .is_ok_and(|v| v.node.status.state == NodeState::Ready)
    })
    .await;
    w.shutdown().await;
    a.shutdown().await;
}

fn none() -> std::collections::HashSet<String> {
    std::collections::HashSet::new()
}

fn cluster_with_root(root: &RootCa) -> berth_swarm_store::Cluster {
    let mut c = berth_swarm_store::Cluster::default();
    c.root_ca.ca_cert = root.cert_pem().to_string();
    c.root_ca.ca_key = root.key_pem().unwrap();
    c
}

#[test]
fn a_given_root_is_checked_as_swarmkit_checks_it() {
    use crate::ca_rotation::next_root_ca;
    let old = RootCa::generate().unwrap();
    let c = cluster_with_root(&old);
    let mut spec = ClusterSpec::default();
    let same = next_root_ca(&c, &spec, &none()).unwrap();
    assert_eq!(same, c.root_ca, "nothing asked, nothing changes");

    let err = |spec: &ClusterSpec| next_root_ca(&c, spec, &none()).unwrap_err().to_string();
    spec.signing_ca_key = old.key_pem().unwrap();
    assert!(
        err(&spec).ends_with(
            "if a signing CA key is provided, the signing CA cert must also be provided"
        )
    );
    let new = RootCa::generate().unwrap();
    spec.signing_ca_cert = new.cert_pem().to_string();
    assert!(err(&spec).contains("does not match"), "{}", err(&spec));
    spec.signing_ca_key = String::new();
    assert!(err(&spec).ends_with(
        "there must be at least one valid, reachable external CA corresponding to the desired CA certificate"
    ));
    spec.signing_ca_cert = format!("{}{}", new.cert_pem(), old.cert_pem());
    spec.signing_ca_key = new.key_pem().unwrap();
    assert!(
        err(&spec).ends_with("the desired CA certificate cannot contain multiple certificates")
    );

    spec.signing_ca_cert = new.cert_pem().to_string();
    let next = next_root_ca(&c, &spec, &none()).unwrap();
    let rot = next.rotation.clone().unwrap();
    assert_eq!(rot.ca_cert, new.cert_pem());
    assert_eq!(
        next.ca_cert,
        old.cert_pem(),
        "the old root stays until the end"
    );
    let signer = RootCa::from_pem(&rot.ca_cert, Some(&rot.ca_key))
        .unwrap()
        .with_intermediate(&rot.cross_signed_ca_cert);
    let key = berth_swarm_ca::NodeKey::generate().unwrap();
    let who = berth_swarm_ca::NodeIdentity {
        node_id: "n".into(),
        role: berth_swarm_ca::Role::Worker,
        cluster_id: "c".into(),
    };
    let cert = signer
        .sign(
            &key.csr_pem().unwrap(),
            &who,
            berth_swarm_ca::DEFAULT_NODE_CERT_EXPIRY,
        )
        .unwrap();
    assert!(
        RootCa::from_pem(old.cert_pem(), None)
            .unwrap()
            .verifies(&cert)
    );

    // the current root with its key: no rotation
    spec.signing_ca_cert = old.cert_pem().to_string();
    spec.signing_ca_key = old.key_pem().unwrap();
    assert!(next_root_ca(&c, &spec, &none()).unwrap().rotation.is_none());
}

#[test]
fn the_reconciler_asks_nodes_behind_to_rotate_and_finishes_when_none_are() {
    use crate::ca_rotation::{next_root_ca, reconcile};
    use berth_swarm_store::{Action, Node, Object};
    let old = RootCa::generate().unwrap();
    let mut c = cluster_with_root(&old);
    let spec = ClusterSpec {
        force_rotate: 1,
        ..ClusterSpec::default()
    };
    c.root_ca = next_root_ca(&c, &spec, &none()).unwrap();
    let new = RootCa::from_pem(&c.root_ca.rotation.as_ref().unwrap().ca_cert, None).unwrap();
    let mut behind = Node {
        id: "n1".into(),
        ..Node::default()
    };
    behind.certificate.state = CertState::Issued;
    let mut pending = behind.clone();
    pending.id = "n2".into();
    pending.certificate.state = CertState::Pending;
    let actions = reconcile(&c, &[behind.clone(), pending]).unwrap();
    assert_eq!(actions.len(), 1);
    let Action::Update(Object::Node(n)) = &actions[0] else {
        panic!("{actions:?}")
    };
    assert_eq!(
        (n.id.as_str(), n.certificate.state),
        ("n1", CertState::Rotate)
    );

    let (subject, key) = new.issuer_der().unwrap();
    behind.description.tls_info.cert_issuer_subject = subject;
    behind.description.tls_info.cert_issuer_public_key = key;
    let actions = reconcile(&c, &[behind]).unwrap();
    let Action::Update(Object::Cluster(done)) = &actions[0] else {
        panic!("{actions:?}")
    };
    assert!(done.root_ca.rotation.is_none());
    assert_eq!(done.root_ca.ca_cert, new.cert_pem());
    assert_eq!(done.root_ca.ca_cert_hash, new.digest().to_string());
    assert_ne!(done.root_ca.worker_token, c.root_ca.worker_token);
    assert_eq!(done.root_ca.last_forced_rotation, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn agents_beat_at_the_period_the_spec_says() {
    let dir = tempfile::tempdir().unwrap();
    let settings = crate::SwarmSettings {
        dir: dir.path().join("a"),
        ..crate::SwarmSettings::default()
    };
    let a = Swarm::open(settings).await.unwrap();
    init(&a).await;
    let node = a.current().await.unwrap();
    // the first beats may find the server still starting
    until(10, async || node.beat().await.is_some()).await;
    assert_eq!(node.beat().await.map(|b| b.0), Some(Duration::from_secs(5)));
    let (mut spec, version) = spec_and_version(&a).await;
    spec.dispatcher_heartbeat_period = 1_500_000_000;
    a.update(version, spec, UpdateFlags::default())
        .await
        .unwrap();
    assert_eq!(
        node.beat().await.map(|b| b.0),
        Some(Duration::from_millis(1500))
    );
    a.shutdown().await;
}
