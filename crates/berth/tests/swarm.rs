//! Swarm mode on a real cluster: each node a berth daemon in its own
//! namespaces on one underlay (common/cluster.rs), driven through the
//! unchanged docker CLI 28. Related checks share one cluster: a cluster
//! costs a daemon per node.

mod common;

use common::cluster::Cluster;
use common::{code, eventually, ok, stderr, stdout};

#[test]
fn a_manager_and_a_worker_join_through_the_docker_cli() {
    let c = Cluster::new(3);
    let (m0, m1, w) = (&c.node(0).daemon, &c.node(1).daemon, &c.node(2).daemon);
    let leader_addr = format!("{}:2377", c.node(0).addr);

    let init = ok(
        &m0.docker(&["swarm", "init", "--advertise-addr", &c.node(0).addr]),
        "init",
    );
    assert!(
        init.starts_with("Swarm initialized: current node ("),
        "{init}"
    );
    assert!(
        init.contains("docker swarm join --token SWMTKN-1-") && init.contains(&leader_addr),
        "{init}"
    );
    let again = m0.docker(&["swarm", "init", "--advertise-addr", &c.node(0).addr]);
    assert_eq!(code(&again), 1);
    assert!(
        stderr(&again).contains("This node is already part of a swarm."),
        "{}",
        stderr(&again)
    );

    let worker_token = ok(
        &m0.docker(&["swarm", "join-token", "-q", "worker"]),
        "join-token",
    )
    .trim()
    .to_string();
    let manager_token = ok(
        &m0.docker(&["swarm", "join-token", "-q", "manager"]),
        "join-token",
    )
    .trim()
    .to_string();
    assert_ne!(worker_token, manager_token);

    let join = |d: &common::Daemon, addr: &str, token: &str| {
        d.docker(&[
            "swarm",
            "join",
            "--token",
            token,
            "--advertise-addr",
            addr,
            &leader_addr,
        ])
    };
    // a wrong secret is refused with swarmkit's words, and nothing is kept
    let wrong = format!(
        "{}{}",
        &worker_token[..worker_token.len() - 25],
        "0".repeat(25)
    );
    let refused = join(w, &c.node(2).addr, &wrong);
    assert_eq!(code(&refused), 1);
    assert!(
        stderr(&refused).contains("A valid join token is necessary to join this cluster"),
        "{}",
        stderr(&refused)
    );
    let state = ok(
        &w.docker(&["info", "--format", "{{.Swarm.LocalNodeState}}"]),
        "info",
    );
    assert_eq!(state.trim(), "inactive");

    let joined = ok(&join(m1, &c.node(1).addr, &manager_token), "manager join");
    assert_eq!(joined.trim(), "This node joined a swarm as a manager.");
    let joined = ok(&join(w, &c.node(2).addr, &worker_token), "worker join");
    assert_eq!(joined.trim(), "This node joined a swarm as a worker.");

    // the second manager lists the cluster: three ready nodes, one leader
    let list = || {
        stdout(&m1.docker(&[
            "node",
            "ls",
            "--format",
            "{{.Status}} {{.ManagerStatus}} {{.Self}}",
        ]))
    };
    assert!(
        eventually(20, || {
            let l = list();
            l.lines().count() == 3 && l.lines().all(|x| x.starts_with("Ready"))
        }),
        "nodes never all ready: {}",
        list()
    );
    let l = list();
    assert_eq!(l.matches("Leader").count(), 1, "{l}");
    assert_eq!(l.matches("Reachable").count(), 1, "{l}");
    assert_eq!(l.matches("true").count(), 1, "one node is self: {l}");

    let info = ok(
        &m1.docker(&["info", "--format", "{{.Swarm.LocalNodeState}} {{.Swarm.ControlAvailable}} {{.Swarm.Managers}} {{.Swarm.Nodes}}"]),
        "info",
    );
    assert_eq!(info.trim(), "active true 2 3");
    let info = ok(
        &w.docker(&[
            "info",
            "--format",
            "{{.Swarm.LocalNodeState}} {{.Swarm.ControlAvailable}}",
        ]),
        "info",
    );
    assert_eq!(info.trim(), "active false");
    let denied = w.docker(&["node", "ls"]);
    assert_eq!(code(&denied), 1);
    assert!(
        stderr(&denied).contains("Worker nodes can't be used to view or modify cluster state"),
        "{}",
        stderr(&denied)
    );

    let inspect = ok(
        &m0.docker(&[
            "node",
            "inspect",
            "self",
            "--format",
            "{{.Spec.Role}} {{.ManagerStatus.Addr}}",
        ]),
        "inspect",
    );
    assert_eq!(inspect.trim(), format!("manager {leader_addr}"));

    // leaving: a worker simply leaves; a manager only with --force
    let left = ok(&w.docker(&["swarm", "leave"]), "worker leave");
    assert_eq!(left.trim(), "Node left the swarm.");
    let refused = m1.docker(&["swarm", "leave"]);
    assert_eq!(code(&refused), 1);
    assert!(
        stderr(&refused).contains("Use `--force`"),
        "{}",
        stderr(&refused)
    );
    assert!(
        eventually(20, || stdout(&m0.docker(&[
            "node",
            "ls",
            "--format",
            "{{.Status}}"
        ]))
        .contains("Down")),
        "the worker that left never went down"
    );
}

/// The same steps through berth's own CLI, compared with the docker CLI
/// wherever both print the same thing on the same cluster.
#[test]
fn the_berth_cli_drives_the_same_cluster() {
    let c = Cluster::new(3);
    let (m0, m1, w) = (&c.node(0).daemon, &c.node(1).daemon, &c.node(2).daemon);
    let leader_addr = format!("{}:2377", c.node(0).addr);
    // berth and docker print the same, on stdout and stderr, with one status
    let same = |d: &common::Daemon, args: &[&str]| -> std::process::Output {
        let (b, k) = (d.berth(args), d.docker(args));
        assert_eq!(
            (code(&b), stdout(&b), stderr(&b)),
            (code(&k), stdout(&k), stderr(&k)),
            "berth vs docker: {args:?}"
        );
        b
    };

    let init = ok(
        &m0.berth(&["swarm", "init", "--advertise-addr", &c.node(0).addr]),
        "init",
    );
    let id = ok(
        &m0.docker(&["info", "--format", "{{.Swarm.NodeID}}"]),
        "info",
    )
    .trim()
    .to_string();
    let worker_token = ok(
        &m0.docker(&["swarm", "join-token", "-q", "worker"]),
        "join-token",
    )
    .trim()
    .to_string();
    assert_eq!(
        init.replace(&id, "ID").replace(&worker_token, "TOKEN"),
        format!(
            "Swarm initialized: current node (ID) is now a manager.\n\n\
             To add a worker to this swarm, run the following command:\n\n    \
             docker swarm join --token TOKEN {leader_addr}\n\n\
             To add a manager to this swarm, run 'docker swarm join-token manager' and follow the instructions.\n"
        )
    );
    let again = same(m0, &["swarm", "init", "--advertise-addr", &c.node(0).addr]);
    assert_eq!(code(&again), 1);
    assert!(
        stderr(&again)
            .starts_with("Error response from daemon: This node is already part of a swarm."),
        "{}",
        stderr(&again)
    );

    let worker_token = ok(&same(m0, &["swarm", "join-token", "-q", "worker"]), "jt")
        .trim()
        .to_string();
    let manager_token = ok(&same(m0, &["swarm", "join-token", "-q", "manager"]), "jt")
        .trim()
        .to_string();
    let text = ok(&same(m0, &["swarm", "join-token", "manager"]), "jt");
    assert!(text.contains(&manager_token), "{text}");
    same(m0, &["swarm", "join-token", "worker"]);
    let unknown = same(m0, &["swarm", "join-token", "bogus"]);
    assert_eq!(code(&unknown), 1);
    // rotating: the old token stops working (tests/swarm_ca.rs has more)
    let rotated = ok(
        &m0.berth(&["swarm", "join-token", "--rotate", "-q", "worker"]),
        "rotate",
    );
    assert_ne!(rotated.trim(), worker_token);
    let worker_token = rotated.trim().to_string();

    let join = |d: &common::Daemon, addr: &str, token: &str| {
        d.berth(&[
            "swarm",
            "join",
            "--token",
            token,
            "--advertise-addr",
            addr,
            &leader_addr,
        ])
    };
    let wrong = format!(
        "{}{}",
        &worker_token[..worker_token.len() - 25],
        "0".repeat(25)
    );
    let refused = same(
        w,
        &[
            "swarm",
            "join",
            "--token",
            &wrong,
            "--advertise-addr",
            &c.node(2).addr,
            &leader_addr,
        ],
    );
    assert_eq!(code(&refused), 1);
    assert!(
        stderr(&refused).contains("A valid join token is necessary to join this cluster"),
        "{}",
        stderr(&refused)
    );
    same(w, &["info", "--format", "{{.Swarm.LocalNodeState}}"]);
    let not_in = same(w, &["node", "ls"]);
    assert_eq!(code(&not_in), 1);
    same(w, &["swarm", "leave"]);

    let joined = ok(&join(m1, &c.node(1).addr, &manager_token), "manager join");
    assert_eq!(joined, "This node joined a swarm as a manager.\n");
    let joined = ok(&join(w, &c.node(2).addr, &worker_token), "worker join");
    assert_eq!(joined, "This node joined a swarm as a worker.\n");

    let list = || {
        stdout(&m1.berth(&[
            "node",
            "ls",
            "--format",
            "{{.Status}} {{.ManagerStatus}} {{.Self}}",
        ]))
    };
    assert!(
        eventually(20, || {
            let l = list();
            l.lines().count() == 3 && l.lines().all(|x| x.starts_with("Ready"))
        }),
        "nodes never all ready: {}",
        list()
    );
    for d in [m0, m1] {
        same(d, &["node", "ls"]);
        same(d, &["node", "ls", "-q"]);
        same(
            d,
            &[
                "node",
                "ls",
                "--format",
                "{{.ID}} {{.Self}} {{.Hostname}} {{.Status}} {{.Availability}} {{.ManagerStatus}} {{.EngineVersion}} {{.TLSStatus}}",
            ],
        );
        same(d, &["node", "ls", "--format", "json"]);
        same(
            d,
            &["node", "ls", "--format", "table {{.ID}}\t{{.TLSStatus}}"],
        );
        same(d, &["node", "inspect", "--pretty", "self"]);
        same(
            d,
            &[
                "node",
                "inspect",
                "self",
                "--format",
                "{{.Spec.Role}} {{.ManagerStatus.Addr}}",
            ],
        );
        same(
            d,
            &[
                "info",
                "--format",
                "{{.Swarm.LocalNodeState}} {{.Swarm.ControlAvailable}} {{.Swarm.Managers}} {{.Swarm.Nodes}}",
            ],
        );
    }
    let ls = ok(&m1.berth(&["node", "ls"]), "ls");
    assert_eq!(ls.lines().count(), 4, "{ls}");
    assert_eq!(ls.matches(" * ").count(), 1, "{ls}");
    let raw = ok(&m0.berth(&["node", "inspect", "self"]), "inspect");
    let raw: serde_json::Value = serde_json::from_str(&raw).unwrap();
    assert_eq!(raw[0]["ID"], id.as_str());
    let missing = same(m0, &["node", "inspect", "nosuchnode"]);
    assert_eq!(code(&missing), 1);
    let denied = same(w, &["node", "ls"]);
    assert_eq!(code(&denied), 1);
    assert!(
        stderr(&denied).contains("Worker nodes can't be used to view or modify cluster state"),
        "{}",
        stderr(&denied)
    );
    same(
        w,
        &[
            "info",
            "--format",
            "{{.Swarm.LocalNodeState}} {{.Swarm.ControlAvailable}}",
        ],
    );

    let left = ok(&w.berth(&["swarm", "leave"]), "worker leave");
    assert_eq!(left, "Node left the swarm.\n");
    let refused = same(m1, &["swarm", "leave"]);
    assert_eq!(code(&refused), 1);
    assert!(
        stderr(&refused).contains("Use `--force`"),
        "{}",
        stderr(&refused)
    );
    let not_in = same(w, &["swarm", "leave", "--force"]);
    assert_eq!(code(&not_in), 1);
    assert!(
        eventually(20, || stdout(&m0.berth(&[
            "node",
            "ls",
            "--format",
            "{{.Status}}"
        ]))
        .contains("Down")),
        "the worker that left never went down"
    );
}

/// The leader's address as `node ls` on `d` shows it, if any.
fn leader_seen_by(d: &common::Daemon) -> Option<String> {
    let out = d.docker(&["node", "ls", "--format", "{{.ManagerStatus}} {{.ID}}"]);
    let ls = stdout(&out);
    let id = ls
        .lines()
        .find(|l| l.starts_with("Leader "))?
        .split_whitespace()
        .nth(1)?
        .to_string();
    let addr = d.docker(&[
        "node",
        "inspect",
        &id,
        "--format",
        "{{.ManagerStatus.Addr}}",
    ]);
    Some(stdout(&addr).trim().to_string())
}

#[test]
fn a_killed_leader_is_replaced_writes_go_on_and_it_rejoins_as_a_follower() {
    let mut c = Cluster::new(3);
    let leader_addr = format!("{}:2377", c.node(0).addr);
    ok(
        &c.node(0)
            .daemon
            .docker(&["swarm", "init", "--advertise-addr", &c.node(0).addr]),
        "init",
    );
    let token = ok(
        &c.node(0)
            .daemon
            .docker(&["swarm", "join-token", "-q", "manager"]),
        "token",
    )
    .trim()
    .to_string();
    for i in 1..3 {
        let addr = c.node(i).addr.clone();
        ok(
            &c.node(i).daemon.docker(&[
                "swarm",
                "join",
                "--token",
                &token,
                "--advertise-addr",
                &addr,
                &leader_addr,
            ]),
            "join",
        );
    }
    assert_eq!(
        leader_seen_by(&c.node(1).daemon).as_deref(),
        Some(leader_addr.as_str())
    );

    c.node_mut(0).daemon.kill9();
    let killed = std::time::Instant::now();
    let new_leader = || leader_seen_by(&c.node(1).daemon).filter(|a| *a != leader_addr);
    assert!(
        eventually(20, || new_leader().is_some()),
        "no new leader after the leader was killed"
    );
    eprintln!(
        "swarm failover: a new leader in {} ms",
        killed.elapsed().as_millis()
    );

    // writes go on from the survivors: a new node joins through one of them
    let worker_token = ok(
        &c.node(1)
            .daemon
            .docker(&["swarm", "join-token", "-q", "worker"]),
        "token",
    )
    .trim()
    .to_string();
    c.add_node();
    let survivor = format!("{}:2377", c.node(1).addr);
    let w = c.node(3);
    let joined = ok(
        &w.daemon.docker(&[
            "swarm",
            "join",
            "--token",
            &worker_token,
            "--advertise-addr",
            &w.addr,
            &survivor,
        ]),
        "join after failover",
    );
    assert_eq!(joined.trim(), "This node joined a swarm as a worker.");

    // the old leader comes back as a follower and sees the new node
    c.node_mut(0).daemon.restart_after_kill9();
    let m0 = &c.node(0).daemon;
    assert!(
        eventually(20, || stdout(&m0.docker(&["node", "ls", "-q"]))
            .lines()
            .count()
            == 4),
        "the old leader never caught up"
    );
    let seen = leader_seen_by(m0);
    assert!(
        seen.is_some() && seen.as_deref() != Some(leader_addr.as_str()),
        "{seen:?}"
    );
}
