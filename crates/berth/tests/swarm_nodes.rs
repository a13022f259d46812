//! Managing swarm nodes on a real cluster (common/cluster.rs) through the
//! docker CLI 28 and berth's CLI side by side: update (availability,
//! labels), promote and demote, rm, filters, a stale version, node ps and
//! node events. One cluster for all of it: a cluster costs a daemon per
//! node.

mod common;

use common::cluster::Cluster;
use common::{Daemon, code, eventually, node_id, ok, raw_request, same, stderr, stdout};

/// A failure, the same through both CLIs, whose stderr ends with `words`.
fn refused(d: &Daemon, args: &[&str], words: &str) {
    let o = same(d, args);
    assert_eq!(code(&o), 1, "{args:?}: {}", stdout(&o));
    assert!(
        stderr(&o).trim_end().ends_with(words),
        "{args:?}: {}",
        stderr(&o)
    );
}

fn inspect(d: &Daemon, node: &str, format: &str) -> String {
    ok(
        &d.docker(&["node", "inspect", node, "--format", format]),
        "inspect",
    )
    .trim()
    .to_string()
}

#[test]
fn nodes_are_updated_promoted_demoted_and_removed_through_both_clis() {
    let c = Cluster::new(3);
    let (m0, w1, w2) = (&c.node(0).daemon, &c.node(1).daemon, &c.node(2).daemon);
    let leader = format!("{}:2377", c.node(0).addr);
    let start = chrono_now();
    // a short heartbeat: role changes and down nodes are seen sooner
    ok(
        &m0.docker(&[
            "swarm",
            "init",
            "--advertise-addr",
            &c.node(0).addr,
            "--dispatcher-heartbeat",
            "1s",
        ]),
        "init",
    );
    let token = ok(
        &m0.docker(&["swarm", "join-token", "-q", "worker"]),
        "token",
    );
    for i in 1..3 {
        let addr = c.node(i).addr.clone();
        let d = &c.node(i).daemon;
        ok(
            &d.docker(&[
                "swarm",
                "join",
                "--token",
                token.trim(),
                "--advertise-addr",
                &addr,
                &leader,
            ]),
            "join",
        );
    }
    let (id0, id1, id2) = (node_id(m0), node_id(w1), node_id(w2));
    assert!(
        eventually(20, || stdout(&m0.docker(&[
            "node",
            "ls",
            "--format",
            "{{.Status}}"
        ]))
        .lines()
        .filter(|l| *l == "Ready")
        .count()
            == 3),
        "nodes never all ready"
    );

    // availability and labels, through docker, then through berth
    let out = ok(
        &m0.docker(&[
            "node",
            "update",
            "--availability",
            "drain",
            "--label-add",
            "zone=east",
            &id2,
        ]),
        "update",
    );
    assert_eq!(out, format!("{id2}\n"));
    let out = ok(
        &m0.berth(&[
            "node",
            "update",
            "--label-add",
            "disk",
            "--availability",
            "pause",
            &id1,
        ]),
        "berth update",
    );
    assert_eq!(out, format!("{id1}\n"));
    assert_eq!(
        inspect(m0, &id2, "{{.Spec.Availability}} {{.Spec.Labels}}"),
        "drain map[zone:east]"
    );
    assert_eq!(
        inspect(m0, &id1, "{{.Spec.Availability}} {{.Spec.Labels}}"),
        "pause map[disk:]"
    );
    refused(
        m0,
        &["node", "update", "--label-rm", "nosuch", &id1],
        "key nosuch doesn't exist in node's labels",
    );
    refused(
        m0,
        &["node", "update", "--availability", "sleepy", &id1],
        "invalid Availability: \"sleepy\"",
    );
    refused(
        m0,
        &["node", "update", "--role", "worker", "nosuchnode"],
        "node nosuchnode not found",
    );
    for args in [
        &["node", "ls", "--format", "{{.ID}} {{.Availability}}"][..],
        &["node", "ls", "-q", "-f", "node.label=zone=east"],
        &["node", "ls", "-q", "-f", "node.label=disk"],
        &["node", "ls", "-q", "-f", "role=worker"],
        &["node", "ls", "-q", "-f", "role=manager"],
        &["node", "ls", "-q", "-f", "membership=accepted"],
        &["node", "ls", "-q", "-f", &format!("id={}", &id0[..6])],
        &["node", "ls", "-q", "-f", "name=nosuchhost"],
        &["node", "inspect", &id2, "--format", "{{json .Spec}}"],
        &["node", "ps", "self"],
        &["node", "ps", "-q", &id1],
    ] {
        ok(&same(m0, args), "list");
    }
    let east = ok(
        &m0.docker(&["node", "ls", "-q", "-f", "node.label=zone=east"]),
        "ls",
    );
    assert_eq!(east.trim(), id2);
    let workers = ok(&m0.docker(&["node", "ls", "-q", "-f", "role=worker"]), "ls");
    assert_eq!(workers.lines().count(), 2, "{workers}");
    refused(
        m0,
        &["node", "ls", "-f", "bogus=1"],
        "invalid filter 'bogus'",
    );
    let ps = ok(&m0.docker(&["node", "ps"]), "ps");
    assert!(
        ps.starts_with("ID ") && ps.contains("DESIRED STATE"),
        "{ps}"
    );
    assert_eq!(ps.lines().count(), 1, "{ps}");

    // a stale version is out of sequence, with dockerd's status
    let version = inspect(m0, &id1, "{{.Version.Index}}");
    let body = br#"{"Role":"worker","Availability":"active"}"#;
    let path = format!("/nodes/{id1}/update?version={version}");
    let (status, _, _) = raw_request(&m0.sock, "POST", &path, Some(body)).unwrap();
    assert_eq!(status, 200);
    let (status, _, answer) = raw_request(&m0.sock, "POST", &path, Some(body)).unwrap();
    assert_eq!(status, 500);
    assert_eq!(
        String::from_utf8_lossy(&answer).trim(),
        r#"{"message":"rpc error: code = Unknown desc = update out of sequence"}"#
    );
    let (status, _, _) = raw_request(
        &m0.sock,
        "POST",
        "/nodes/nosuch/update?version=1",
        Some(body),
    )
    .unwrap();
    assert_eq!(status, 404);

    // the last manager stays; a manager is not removed, even by force
    refused(
        m0,
        &["node", "demote", &id0],
        "attempting to demote the last manager of the swarm",
    );
    for force in [false, true] {
        let mut args = vec!["node", "rm"];
        if force {
            args.push("--force");
        }
        args.push(&id0);
        refused(m0, &args, "It must be demoted to worker before removal");
    }

    // promotion: the worker starts serving as a manager
    let out = ok(&m0.docker(&["node", "promote", &id1]), "promote");
    assert_eq!(
        out,
        format!("Node {id1} promoted to a manager in the swarm.\n")
    );
    same(m0, &["node", "promote", &id1]);
    let managed = || stdout(&w1.docker(&["node", "ls", "--format", "{{.ID}} {{.ManagerStatus}}"]));
    assert!(
        eventually(30, || managed().contains(&format!("{id1} Reachable"))),
        "the promoted node never served as a manager: {}",
        managed()
    );
    assert_eq!(
        inspect(m0, &id1, "{{.Spec.Role}} {{.ManagerStatus.Addr}}"),
        format!("manager {}:2377", c.node(1).addr)
    );
    for d in [m0, w1] {
        same(
            d,
            &[
                "info",
                "--format",
                "{{.Swarm.ControlAvailable}} {{.Swarm.Managers}}",
            ],
        );
        same(
            d,
            &[
                "node",
                "ls",
                "--format",
                "{{.ID}} {{.Self}} {{.ManagerStatus}} {{.Availability}}",
            ],
        );
    }

    // demotion through berth: out of the raft, a worker again
    let out = ok(&w1.berth(&["node", "demote", &id1]), "demote");
    assert_eq!(out, format!("Manager {id1} demoted in the swarm.\n"));
    assert!(
        eventually(30, || {
            inspect(m0, &id1, "{{.Spec.Role}} {{.ManagerStatus}}") == "worker <nil>"
                && code(&w1.docker(&["node", "ls"])) == 1
        }),
        "the demoted node still serves as a manager"
    );
    same(m0, &["node", "demote", &id1]);
    let denied = same(w1, &["node", "ls"]);
    assert!(
        stderr(&denied).contains("Worker nodes can't be used"),
        "{}",
        stderr(&denied)
    );
    same(
        m0,
        &["info", "--format", "{{.Swarm.Managers}} {{.Swarm.Nodes}}"],
    );

    // removal: not while up; once down, and its certificate is refused
    refused(
        m0,
        &["node", "rm", &id2],
        &format!("node {id2} is not down and can't be removed"),
    );
    ok(&w2.docker(&["swarm", "leave"]), "leave");
    assert!(
        eventually(20, || inspect(m0, &id2, "{{.Status.State}}") == "down"),
        "the node that left never went down"
    );
    let out = ok(&m0.berth(&["node", "rm", &id2]), "rm");
    assert_eq!(out, format!("{id2}\n"));
    refused(m0, &["node", "rm", &id2], &format!("node {id2} not found"));
    assert_eq!(code(&same(m0, &["node", "inspect", &id2])), 1);

    // node events: create, update and remove, as dockerd sends them
    let until = chrono_now();
    let args = [
        "events",
        "--since",
        &start,
        "--until",
        &until,
        "--filter",
        "type=node",
        "--format",
        "{{.Type}} {{.Action}} {{.Scope}} {{.Actor.ID}} {{json .Actor.Attributes}}",
    ];
    let events = ok(&same(m0, &args), "events");
    let has = |action: &str, id: &str, attr: &str| {
        events
            .lines()
            .any(|l| l.starts_with(&format!("node {action} swarm {id} ")) && l.contains(attr))
    };
    assert!(has("create", &id1, "\"name\""), "{events}");
    assert!(
        has("update", &id2, "\"availability.new\":\"drain\""),
        "{events}"
    );
    assert!(has("update", &id1, "\"role.new\":\"manager\""), "{events}");
    assert!(has("update", &id1, "\"role.new\":\"worker\""), "{events}");
    assert!(has("update", &id2, "\"state.new\":\"down\""), "{events}");
    assert!(has("remove", &id2, "\"name\""), "{events}");
}

/// Now, as `docker events --since` takes it (unix seconds.nanoseconds).
fn chrono_now() -> String {
    let d = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    format!("{}.{:09}", d.as_secs(), d.subsec_nanos())
}
