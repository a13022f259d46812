//! The cluster's spec and secrets on a real cluster (common/cluster.rs),
//! through the docker CLI 28 and berth's CLI side by side: `swarm
//! update`, join token rotation, and root CA rotation with every node's
//! certificate reissued under the new root. One cluster for all of it.

mod common;

use std::process::Output;

use common::cluster::Cluster;
use common::{Daemon, code, eventually, ok, raw_request, same, stderr, stdout};

fn info(d: &Daemon, format: &str) -> String {
    ok(&d.docker(&["info", "--format", format]), "info")
        .trim()
        .to_string()
}

fn token(d: &Daemon, role: &str) -> String {
    ok(&d.docker(&["swarm", "join-token", "-q", role]), "token")
        .trim()
        .to_string()
}

fn join(d: &Daemon, addr: &str, token: &str, leader: &str) -> Output {
    d.docker(&common::join_args(token, addr, leader))
}

/// Every node's TLSInfo, as `node inspect` on `d` shows it.
fn node_tls(d: &Daemon) -> Vec<String> {
    let ids = ok(&d.docker(&["node", "ls", "-q"]), "ls");
    ids.split_whitespace()
        .map(|id| {
            ok(
                &d.docker(&[
                    "node",
                    "inspect",
                    id,
                    "--format",
                    "{{json .Description.TLSInfo}}",
                ]),
                "inspect",
            )
            .trim()
            .to_string()
        })
        .collect()
}

fn cert_file(d: &Daemon, name: &str) -> String {
    std::fs::read_to_string(d.data_root().join("swarm/certificates").join(name))
        .unwrap_or_else(|e| panic!("{name}: {e}"))
}

/// A rotation's output with what differs from run to run taken out: the
/// digests, how many times the client looked, the PEM.
fn rotation_shape(out: &str) -> String {
    let mut lines: Vec<String> = Vec::new();
    for l in out.lines() {
        let l = if l.starts_with("desired root digest: sha256:") {
            "desired root digest: sha256:D".to_string()
        } else if l.starts_with("-----") || !l.contains(' ') {
            "PEM".to_string()
        } else {
            l.to_string()
        };
        if lines.last() != Some(&l) {
            lines.push(l);
        }
    }
    lines.join("\n")
}

/// The root rotation on `d` through `cli`: its output, after checking
/// that every node then trusts the new root and holds a certificate
/// issued by it, new on disk.
fn rotate_and_check(c: &Cluster, out: &Output, before: &[String]) -> String {
    let m0 = &c.node(0).daemon;
    let text = ok(out, "ca --rotate");
    let pem = info(m0, "{{.Swarm.Cluster.TLSInfo.TrustRoot}}");
    assert!(
        text.trim_end().ends_with(pem.trim()),
        "the new root ends the output: {text}"
    );
    assert!(text.starts_with("desired root digest: \n"), "{text}");
    assert!(text.contains("desired root digest: sha256:"), "{text}");
    let cluster = info(m0, "{{json .Swarm.Cluster.TLSInfo}}");
    for tls in node_tls(m0) {
        assert_eq!(tls, cluster, "a node's certificate is not the new root's");
    }
    let status = ok(
        &m0.docker(&["node", "ls", "--format", "{{.TLSStatus}}"]),
        "ls",
    );
    assert!(status.lines().all(|l| l == "Ready"), "{status}");
    for (i, old) in before.iter().enumerate() {
        let d = &c.node(i).daemon;
        assert_eq!(cert_file(d, "swarm-root-ca.crt").trim(), pem.trim());
        assert_ne!(
            &cert_file(d, "swarm-node.crt"),
            old,
            "node {i} kept its certificate"
        );
    }
    text
}

fn node_certs(c: &Cluster) -> Vec<String> {
    (0..3)
        .map(|i| cert_file(&c.node(i).daemon, "swarm-node.crt"))
        .collect()
}

/// A root CA made outside the swarm: ECDSA P-256, PKCS#8 key.
fn external_root(dir: &std::path::Path) -> (String, String) {
    let (cert, key) = (dir.join("ca.crt"), dir.join("ca.key"));
    let made = std::process::Command::new("openssl")
        .args([
            "req",
            "-x509",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:P-256",
        ])
        .args(["-nodes", "-days", "3650", "-subj", "/CN=external-root"])
        .args(["-addext", "basicConstraints=critical,CA:TRUE"])
        .args(["-addext", "keyUsage=critical,keyCertSign,cRLSign"])
        .arg("-keyout")
        .arg(&key)
        .arg("-out")
        .arg(&cert)
        .output()
        .unwrap();
    assert!(
        made.status.success(),
        "{}",
        String::from_utf8_lossy(&made.stderr)
    );
    (
        cert.to_string_lossy().into_owned(),
        key.to_string_lossy().into_owned(),
    )
}

#[test]
fn the_cluster_spec_tokens_and_root_ca_change_through_both_clis() {
    let c = Cluster::new(3);
    let (m0, m1, w) = (&c.node(0).daemon, &c.node(1).daemon, &c.node(2).daemon);
    let leader = format!("{}:2377", c.node(0).addr);
    ok(
        &m0.docker(&["swarm", "init", "--advertise-addr", &c.node(0).addr]),
        "init",
    );

    // swarm update: a Raft write that inspect and info show
    let spec = "{{.Swarm.Cluster.Spec.Dispatcher.HeartbeatPeriod}} {{.Swarm.Cluster.Spec.Orchestration.TaskHistoryRetentionLimit}} {{.Swarm.Cluster.Spec.Raft.SnapshotInterval}} {{.Swarm.Cluster.Spec.Raft.KeepOldSnapshots}} {{.Swarm.Cluster.Spec.CAConfig.NodeCertExpiry}}";
    let updated = ok(
        &m0.docker(&[
            "swarm",
            "update",
            "--dispatcher-heartbeat",
            "1s",
            "--task-history-limit",
            "7",
            "--snapshot-interval",
            "5000",
            "--max-snapshots",
            "2",
            "--cert-expiry",
            "48h",
        ]),
        "update",
    );
    assert_eq!(updated, "Swarm updated.\n");
    assert_eq!(info(m0, spec), "1s 7 5000 2 48h0m0s");
    let updated = ok(
        &m0.berth(&["swarm", "update", "--task-history-limit", "8"]),
        "berth update",
    );
    assert_eq!(updated, "Swarm updated.\n");
    assert_eq!(info(m0, spec), "1s 8 5000 2 48h0m0s");
    let short = same(m0, &["swarm", "update", "--cert-expiry", "30m"]);
    assert_eq!(code(&short), 1);
    assert_eq!(
        stderr(&short).trim(),
        "Error response from daemon: rpc error: code = InvalidArgument desc = minimum certificate expiry time is: 1h0m0s"
    );

    // a stale version is refused; a bad one is a client error
    let body = ok(
        &m0.docker(&["info", "--format", "{{json .Swarm.Cluster.Spec}}"]),
        "spec",
    );
    let (status, _, answer) = raw_request(
        &m0.sock,
        "POST",
        "/v1.47/swarm/update?version=1",
        Some(body.trim().as_bytes()),
    )
    .unwrap();
    let answer = String::from_utf8_lossy(&answer).to_string();
    assert_eq!(status, 500, "{answer}");
    assert!(
        answer.contains("rpc error: code = Unknown desc = update out of sequence"),
        "{answer}"
    );
    let (status, _, answer) = raw_request(
        &m0.sock,
        "POST",
        "/v1.47/swarm/update?version=x",
        Some(body.trim().as_bytes()),
    )
    .unwrap();
    assert_eq!(status, 400);
    assert!(
        String::from_utf8_lossy(&answer).contains(
            r#"invalid swarm version 'x': strconv.ParseUint: parsing \"x\": invalid syntax"#
        ),
        "{}",
        String::from_utf8_lossy(&answer)
    );

    // join tokens: the old one is refused after a rotation, the new works
    let old_worker = token(m0, "worker");
    let rotated = ok(
        &m0.docker(&["swarm", "join-token", "--rotate", "worker"]),
        "rotate",
    );
    let new_worker = token(m0, "worker");
    assert_ne!(new_worker, old_worker);
    assert_eq!(
        rotated,
        format!(
            "Successfully rotated worker join token.\n\nTo add a worker to this swarm, run the following command:\n\n    docker swarm join --token {new_worker} {leader}\n\n"
        )
    );
    let old_manager = token(m0, "manager");
    let rotated = ok(
        &m0.berth(&["swarm", "join-token", "--rotate", "manager"]),
        "berth rotate",
    );
    let new_manager = token(m0, "manager");
    assert_ne!(new_manager, old_manager);
    assert_eq!(
        rotated,
        format!(
            "Successfully rotated manager join token.\n\nTo add a manager to this swarm, run the following command:\n\n    docker swarm join --token {new_manager} {leader}\n\n"
        )
    );
    let refused = join(w, &c.node(2).addr, &old_worker, &leader);
    assert_eq!(code(&refused), 1);
    assert!(
        stderr(&refused).contains("A valid join token is necessary to join this cluster"),
        "{}",
        stderr(&refused)
    );
    let refused = join(m1, &c.node(1).addr, &old_manager, &leader);
    assert_eq!(code(&refused), 1);
    ok(
        &join(m1, &c.node(1).addr, &new_manager, &leader),
        "manager join",
    );
    ok(
        &join(w, &c.node(2).addr, &new_worker, &leader),
        "worker join",
    );
    assert!(
        eventually(20, || {
            let l = stdout(&m0.docker(&["node", "ls", "--format", "{{.Status}}"]));
            l.lines().count() == 3 && l.lines().all(|x| x == "Ready")
        }),
        "the nodes never all became ready"
    );

    // swarm ca shows the root; its flags need --rotate
    let root = ok(&same(m0, &["swarm", "ca"]), "ca");
    assert_eq!(
        root.trim(),
        info(m0, "{{.Swarm.Cluster.TLSInfo.TrustRoot}}").trim()
    );
    assert!(root.starts_with("-----BEGIN CERTIFICATE-----"), "{root}");
    let needs = same(m0, &["swarm", "ca", "--cert-expiry", "2h"]);
    assert_eq!(
        stderr(&needs).trim(),
        "`--cert-expiry` flag requires the `--rotate` flag to update the CA"
    );

    // root rotation through docker, then through berth (on a follower)
    let before = node_certs(&c);
    let docker_out = rotate_and_check(
        &c,
        &m0.docker(&["swarm", "ca", "--rotate", "--cert-expiry", "72h"]),
        &before,
    );
    assert_ne!(
        info(m0, "{{.Swarm.Cluster.TLSInfo.TrustRoot}}").trim(),
        root.trim()
    );
    assert_eq!(
        info(m0, "{{.Swarm.Cluster.Spec.CAConfig.NodeCertExpiry}}"),
        "72h0m0s"
    );
    let digest = |t: &str| t.split('-').nth(2).unwrap_or_default().to_string();
    let after_worker = token(m0, "worker");
    assert_ne!(
        digest(&after_worker),
        digest(&new_worker),
        "the token's root digest"
    );
    assert_eq!(digest(&token(m0, "manager")), digest(&after_worker));

    let before = node_certs(&c);
    let berth_out = rotate_and_check(&c, &m1.berth(&["swarm", "ca", "--rotate"]), &before);
    assert_eq!(rotation_shape(&berth_out), rotation_shape(&docker_out));

    // an external root with its key
    let dir = tempfile::tempdir().unwrap();
    let (cert, key) = external_root(dir.path());
    let before = node_certs(&c);
    let out = m0.docker(&[
        "swarm",
        "ca",
        "--rotate",
        "--ca-cert",
        &cert,
        "--ca-key",
        &key,
    ]);
    rotate_and_check(&c, &out, &before);
    let given = std::fs::read_to_string(&cert).unwrap();
    assert_eq!(
        info(m0, "{{.Swarm.Cluster.TLSInfo.TrustRoot}}").trim(),
        given.trim()
    );
    let lone = same(m0, &["swarm", "ca", "--rotate", "--ca-cert", &cert]);
    assert_eq!(
        stderr(&lone).trim(),
        "the --ca-cert flag requires that a --ca-key flag and/or --external-ca flag be provided as well"
    );
    // still one cluster: a node joins with the newest token
    let w2 = token(m0, "worker");
    ok(&w.docker(&["swarm", "leave"]), "leave");
    ok(
        &join(w, &c.node(2).addr, &w2, &leader),
        "join after rotations",
    );
    same(m0, &["swarm", "ca"]);
}
