//! Services on a namespace cluster of one manager and two workers
//! (issue #20), through the docker CLI and berth's: replicated and global
//! services spread evenly, scaling, constraints with a pending reason, a
//! removed service's containers gone from every node. One cluster serves
//! every check: a cluster is the costly part.

mod common;

use std::collections::BTreeMap;

use common::cluster::Cluster;
use common::{Cli, Daemon, code, eventually, node_id, ok, stderr, stdout};

/// A cluster of a manager (node 0) and two workers.
fn cluster() -> Cluster {
    Cluster::swarm(3)
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
    if !ok {
        let o = m.docker(&["node", "ls"]);
        let nodes = format!("{}{}", stdout(&o), stderr(&o));
        let o = m.docker(&["service", "ps", service, "--no-trunc"]);
        let all = format!("{}{}", stdout(&o), stderr(&o));
        let until = format!("{}", chrono_now_secs());
        let o = m.docker(&[
            "events",
            "--since",
            "0",
            "--until",
            &until,
            "--filter",
            "type=node",
        ]);
        let mut events = stdout(&o);
        for n in &c.nodes {
            let o = n.daemon.docker(&[
                "events",
                "--since",
                "0",
                "--until",
                &until,
                "--filter",
                "type=container",
                "--format",
                "{{.Time}} {{.Action}} {{.Actor.Attributes.name}}",
            ]);
            events.push_str(&stdout(&o));
            events.push_str("----\n");
        }
        panic!(
            "{service}: {want} running tasks, saw {rows:?} and containers {per:?}\n{nodes}\n{all}\n{events}"
        );
    }
    per
}

fn chrono_now_secs() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
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
    let mut c = cluster();
    let _registries = private_registries(&c);
    for (cli, seed) in [(Cli::Docker, "w8"), (Cli::Berth, "w9")] {
        replicated_service(&c, cli, seed);
        global_service_follows_drain(&c, cli);
        constraints_and_a_pending_reason(&c, cli);
        a_failing_update_rolls_back_on_its_own(&c, cli);
        a_start_first_update_with_a_health_check(&c, cli);
        a_job_runs_to_completion(&c, cli);
        bad_input_gets_dockers_errors(&c, cli);
        a_private_image_is_pulled_with_the_clients_credentials(&c, cli);
        a_restarted_workers_tasks_keep_running(&mut c, cli);
        a_killed_workers_tasks_run_elsewhere(&mut c, cli);
    }
}

/// `docker service create` with what every check here passes: no
/// registry to resolve the image with, no progress display, a short stop.
fn create(cli: Cli, m: &Daemon, args: &[&str]) -> String {
    let mut all = vec![
        "service",
        "create",
        "--detach",
        "--no-resolve-image",
        "--stop-grace-period",
        "1s",
    ];
    all.extend_from_slice(args);
    ok(&cli.run(m, &all), "service create").trim().to_string()
}

fn inspect(cli: Cli, m: &Daemon, service: &str, format: &str) -> String {
    let o = cli.run(m, &["service", "inspect", service, "--format", format]);
    stdout(&o).trim().to_string()
}

fn global_service_follows_drain(c: &Cluster, cli: Cli) {
    let m = &c.node(0).daemon;
    create(
        cli,
        m,
        &[
            "--name", "g", "--mode", "global", "busybox", "sleep", "1000",
        ],
    );
    assert_eq!(counts(&converged(c, "g", 3)), [1, 1, 1]);
    let worker = node_id(&c.node(2).daemon);
    ok(
        &cli.run(m, &["node", "update", "--availability", "drain", &worker]),
        "drain",
    );
    let per = converged(c, "g", 2);
    assert!(
        !per.contains_key(&2),
        "a drained node keeps no task: {per:?}"
    );
    ok(
        &cli.run(m, &["node", "update", "--availability", "active", &worker]),
        "activate",
    );
    assert_eq!(counts(&converged(c, "g", 3)), [1, 1, 1]);
    ok(&cli.run(m, &["service", "rm", "g"]), "rm g");
}

fn constraints_and_a_pending_reason(c: &Cluster, cli: Cli) {
    let m = &c.node(0).daemon;
    create(
        cli,
        m,
        &[
            "--name",
            "mgr",
            "--replicas",
            "2",
            "--constraint",
            "node.role==manager",
        ]
        .iter()
        .chain(&["busybox", "sleep", "1000"])
        .copied()
        .collect::<Vec<_>>(),
    );
    let per = converged(c, "mgr", 2);
    assert_eq!(per.keys().copied().collect::<Vec<_>>(), [0], "{per:?}");
    create(
        cli,
        m,
        &[
            "--name",
            "mars",
            "--constraint",
            "node.labels.zone==mars",
            "busybox",
            "sleep",
            "1000",
        ],
    );
    let want = "no suitable node (scheduling constraints not satisfied on 3 nodes)";
    let shown = eventually(10, || {
        let o = cli.run(
            m,
            &[
                "service",
                "ps",
                "mars",
                "--no-trunc",
                "--format",
                "{{.CurrentState}}|{{.Error}}",
            ],
        );
        let out = stdout(&o);
        out.starts_with("Pending") && out.contains(want)
    });
    assert!(shown, "the pending reason is shown");
    let worker = node_id(&c.node(1).daemon);
    ok(
        &cli.run(m, &["node", "update", "--label-add", "zone=mars", &worker]),
        "label",
    );
    let per = converged(c, "mars", 1);
    assert!(per.contains_key(&1), "placed once a node fits: {per:?}");
    for s in ["mgr", "mars"] {
        ok(&cli.run(m, &["service", "rm", s]), "rm");
    }
    ok(
        &cli.run(m, &["node", "update", "--label-rm", "zone", &worker]),
        "label-rm",
    );
}

fn a_failing_update_rolls_back_on_its_own(c: &Cluster, cli: Cli) {
    let m = &c.node(0).daemon;
    create(
        cli,
        m,
        &[
            "--name",
            "rb",
            "--replicas",
            "2",
            "--update-failure-action",
            "rollback",
            "--update-monitor",
            "2s",
            "--rollback-monitor",
            "1s",
            "busybox",
            "sleep",
            "1000",
        ],
    );
    converged(c, "rb", 2);
    ok(
        &cli.run(
            m,
            &["service", "update", "--detach", "--args", "false", "rb"],
        ),
        "update",
    );
    let rolled = eventually(40, || {
        inspect(cli, m, "rb", "{{.UpdateStatus.State}}") == "rollback_completed"
    });
    assert!(
        rolled,
        "the update rolled back: {}",
        inspect(cli, m, "rb", "{{json .UpdateStatus}}")
    );
    assert!(inspect(cli, m, "rb", "{{.UpdateStatus.Message}}").starts_with("rollback completed"),);
    assert_eq!(
        inspect(cli, m, "rb", "{{.Spec.TaskTemplate.ContainerSpec.Args}}"),
        "[sleep 1000]"
    );
    converged(c, "rb", 2);
    ok(&cli.run(m, &["service", "rm", "rb"]), "rm rb");
}

fn a_start_first_update_with_a_health_check(c: &Cluster, cli: Cli) {
    let m = &c.node(0).daemon;
    create(
        cli,
        m,
        &[
            "--name",
            "hc",
            "--replicas",
            "2",
            "--health-cmd",
            "true",
            "--health-interval",
            "1s",
            "--update-order",
            "start-first",
            "--update-monitor",
            "1s",
            "busybox",
            "sleep",
            "1000",
        ],
    );
    converged(c, "hc", 2);
    ok(
        &cli.run(m, &["service", "update", "--detach", "--force", "hc"]),
        "update --force",
    );
    let done = eventually(40, || {
        inspect(cli, m, "hc", "{{.UpdateStatus.State}}") == "completed"
    });
    assert!(done, "{}", inspect(cli, m, "hc", "{{json .UpdateStatus}}"));
    converged(c, "hc", 2);
    // the new tasks counted as started once healthy
    for n in &c.nodes {
        let o = n.daemon.docker(&[
            "ps",
            "--filter",
            "label=com.docker.swarm.service.name=hc",
            "--format",
            "{{.Status}}",
        ]);
        for status in stdout(&o).lines() {
            assert!(status.contains("(healthy)"), "{status}");
        }
    }
    let history = running_tasks(m, "hc");
    assert_eq!(history.len(), 2);
    ok(&cli.run(m, &["service", "rm", "hc"]), "rm hc");
}

fn a_job_runs_to_completion(c: &Cluster, cli: Cli) {
    let m = &c.node(0).daemon;
    create(
        cli,
        m,
        &[
            "--name",
            "job",
            "--mode",
            "replicated-job",
            "--replicas",
            "3",
            "--max-concurrent",
            "2",
            "busybox",
            "true",
        ],
    );
    let done = eventually(30, || {
        let o = cli.run(
            m,
            &["service", "ps", "job", "--format", "{{.CurrentState}}"],
        );
        let out = stdout(&o);
        out.lines().filter(|l| l.starts_with("Complete")).count() == 3
    });
    assert!(
        done,
        "three completions: {}",
        stdout(&cli.run(
            m,
            &[
                "service",
                "ps",
                "job",
                "--format",
                "{{.Name}} {{.CurrentState}} {{.Error}}"
            ]
        ))
    );
    let ls = ok(
        &cli.run(m, &["service", "ls", "--filter", "name=job"]),
        "ls",
    );
    assert!(ls.contains("(3/3 completed)"), "{ls}");
    ok(&cli.run(m, &["service", "rm", "job"]), "rm job");
}

fn bad_input_gets_dockers_errors(c: &Cluster, cli: Cli) {
    let m = &c.node(0).daemon;
    let fails = |args: &[&str], want: &str| {
        let o = cli.run(m, args);
        assert_ne!(code(&o), 0, "{args:?} succeeded");
        assert!(stderr(&o).contains(want), "{args:?}: {}", stderr(&o));
    };
    fails(
        &["service", "create", "--mode", "sideways", "busybox"],
        "Unknown mode: sideways",
    );
    fails(
        &[
            "service",
            "create",
            "--detach",
            "--no-resolve-image",
            "--constraint",
            "node.role=manager",
            "busybox",
        ],
        "constraint expected one operator from ==, !=",
    );
    fails(
        &["service", "create", "--update-delay", "soon", "busybox"],
        "invalid argument \"soon\" for \"--update-delay\" flag",
    );
    fails(
        &["service", "create", "--update-order", "sideways", "busybox"],
        "sideways",
    );
    create(cli, m, &["--name", "dup", "busybox", "sleep", "1000"]);
    fails(
        &[
            "service",
            "create",
            "--detach",
            "--no-resolve-image",
            "--name",
            "DUP",
            "busybox",
        ],
        "rpc error: code = AlreadyExists desc = name conflicts with an existing object: service DUP already exists",
    );
    // a stale version: swarmkit's words, whole
    let version = inspect(cli, m, "dup", "{{.Version.Index}}");
    let spec = inspect(cli, m, "dup", "{{json .Spec}}");
    let path = format!(
        "/services/dup/update?version={}",
        version.parse::<u64>().unwrap() - 1
    );
    let spec: serde_json::Value = serde_json::from_str(&spec).expect("spec json");
    let (status, body) = common::json_request(m, "POST", &path, Some(spec));
    assert_eq!(status, 500, "{body}");
    assert!(
        body.to_string().contains("update out of sequence"),
        "{body}"
    );
    ok(&cli.run(m, &["service", "rm", "dup"]), "rm dup");
    // an image no node can get: a rejected task that says why
    create(cli, m, &["--name", "nope", "127.0.0.1:1/nope:latest"]);
    let rejected = eventually(30, || {
        let o = cli.run(
            m,
            &[
                "service",
                "ps",
                "nope",
                "--no-trunc",
                "--format",
                "{{.CurrentState}}|{{.Error}}",
            ],
        );
        stdout(&o)
            .lines()
            .any(|l| l.starts_with("Rejected") && l.contains("nope"))
    });
    assert!(rejected, "the task was rejected with its reason");
    ok(&cli.run(m, &["service", "rm", "nope"]), "rm nope");
}

/// A worker's daemon killed and started again at once: its task's
/// container ran on, and the task is still the one the cluster counts.
fn a_restarted_workers_tasks_keep_running(c: &mut Cluster, cli: Cli) {
    let m = &c.node(0).daemon;
    create(
        cli,
        m,
        &[
            "--name",
            "stay",
            "--replicas",
            "3",
            "busybox",
            "sleep",
            "1000",
        ],
    );
    assert_eq!(counts(&converged(c, "stay", 3)), [1, 1, 1]);
    let before = containers_of(&c.node(1).daemon, "stay");
    let worker = c.node_mut(1);
    worker.daemon.kill9();
    worker.daemon.start_again();
    std::thread::sleep(std::time::Duration::from_secs(4));
    let m = &c.node(0).daemon;
    converged(c, "stay", 3);
    assert_eq!(
        containers_of(&c.node(1).daemon, "stay"),
        before,
        "the same container runs"
    );
    let all = ok(&cli.run(m, &["service", "ps", "-q", "stay"]), "ps");
    assert_eq!(all.lines().count(), 3, "no task was replaced");
    ok(&cli.run(m, &["service", "rm", "stay"]), "rm stay");
}

fn a_killed_workers_tasks_run_elsewhere(c: &mut Cluster, cli: Cli) {
    let m = &c.node(0).daemon;
    create(
        cli,
        m,
        &[
            "--name",
            "heal",
            "--replicas",
            "3",
            "busybox",
            "sleep",
            "1000",
        ],
    );
    assert_eq!(counts(&converged(c, "heal", 3)), [1, 1, 1]);
    let started = std::time::Instant::now();
    c.node_mut(2).daemon.kill9();
    let moved = eventually(30, || {
        let on_live: usize = (0..2)
            .map(|i| containers_of(&c.node(i).daemon, "heal").len())
            .sum();
        on_live == 3
    });
    assert!(moved, "the killed worker's task runs elsewhere");
    eprintln!(
        "a killed worker's task ran elsewhere after {:?}",
        started.elapsed()
    );
    // back again, the node gets tasks only when asked: Docker's way
    // replaces every task, berth's moves only the excess
    c.node_mut(2).daemon.start_again();
    let m = &c.node(0).daemon;
    let back = eventually(30, || {
        let ls = ok(
            &cli.run(m, &["node", "ls", "--format", "{{.Status}}"]),
            "node ls",
        );
        ls.lines().filter(|l| *l == "Ready").count() == 3
    });
    assert!(back, "the worker came back");
    let ended = || {
        let o = cli.run(
            m,
            &[
                "service",
                "ps",
                "-q",
                "--filter",
                "desired-state=shutdown",
                "heal",
            ],
        );
        stdout(&o).lines().count()
    };
    let before = ended();
    let (args, replaced): (&[&str], usize) = match cli {
        Cli::Docker => (&["service", "update", "--detach", "--force", "heal"], 3),
        Cli::Berth => (&["service", "rebalance", "--detach", "heal"], 1),
    };
    let said = ok(&cli.run(m, args), "rebalance");
    if let Cli::Berth = cli {
        assert_eq!(said, "heal: 1 task moves\n");
    }
    let even = eventually(30, || {
        let per: Vec<usize> = (0..3)
            .map(|i| containers_of(&c.node(i).daemon, "heal").len())
            .collect();
        per == [1, 1, 1]
    });
    assert!(even, "spread again over the three nodes");
    assert!(
        eventually(10, || ended() == before + replaced),
        "{} replaced",
        ended() - before
    );
    ok(&cli.run(m, &["service", "rm", "heal"]), "rm heal");
    assert!(
        eventually(30, || (0..3).all(|i| containers_of(
            &c.node(i).daemon,
            "heal"
        )
        .is_empty())),
        "heal's containers outlived it"
    );
}

/// `berth registry serve` with basic auth on 127.0.0.1:5000 in every
/// node's namespaces, all over one storage: each node pulls "the same
/// registry" without the nodes needing an insecure-registry setting.
fn private_registries(c: &Cluster) -> Vec<common::registry::Registry> {
    let dir = c.node(0).daemon.dir.path();
    let hash = bcrypt::hash("s3cret", 4).expect("bcrypt");
    let htpasswd = dir.join("htpasswd");
    std::fs::write(&htpasswd, format!("alice:{hash}\n")).expect("htpasswd");
    let root = dir.join("shared-registry");
    let flags = ["--htpasswd", htpasswd.to_str().expect("utf-8 path")];
    c.nodes
        .iter()
        .map(|n| common::registry::Registry::start_at(&n.daemon, &root, &flags))
        .collect()
}

/// The seeds' `--with-registry-auth`: the workers pull a private image
/// with the client's login, which no answer and no log shows.
fn a_private_image_is_pulled_with_the_clients_credentials(c: &Cluster, cli: Cli) {
    let m = &c.node(0).daemon;
    let image = format!("127.0.0.1:5000/private/bb:{cli:?}").to_lowercase();
    let login = ["login", "-u", "alice", "-p", "s3cret", "127.0.0.1:5000"];
    ok(&cli.run(m, &login), "login");
    ok(&cli.run(m, &["tag", "busybox", &image]), "tag");
    ok(&cli.run(m, &["push", &image]), "push");
    // without the flag the workers are refused: rejected tasks, not a hang
    let args = ["--name", "priv", "--replicas", "3", "--restart-delay", "1s"];
    create(cli, m, &[&args[..], &[&image, "sleep", "1000"]].concat());
    let refused = eventually(30, || {
        let o = cli.run(
            m,
            &[
                "service",
                "ps",
                "priv",
                "--no-trunc",
                "--format",
                "{{.CurrentState}}|{{.Error}}",
            ],
        );
        stdout(&o)
            .lines()
            .any(|l| l.starts_with("Rejected") && l.contains("private/bb"))
    });
    assert!(refused, "a worker without credentials is refused");
    ok(
        &cli.run(
            m,
            &[
                "service",
                "update",
                "--detach",
                "--with-registry-auth",
                "priv",
            ],
        ),
        "update --with-registry-auth",
    );
    converged(c, "priv", 3);
    let shown = format!(
        "{}{}",
        ok(&cli.run(m, &["service", "inspect", "priv"]), "inspect"),
        common::json_request(m, "GET", "/tasks", None).1
    );
    assert!(
        !shown.contains("s3cret") && !shown.contains("alice"),
        "{shown}"
    );
    for n in &c.nodes {
        assert!(!n.daemon.log().contains("s3cret"), "a password in a log");
    }
    ok(&cli.run(m, &["service", "rm", "priv"]), "rm priv");
    ok(&cli.run(m, &["logout", "127.0.0.1:5000"]), "logout");
}

fn replicated_service(c: &Cluster, cli: Cli, name: &str) {
    let m = &c.node(0).daemon;
    let o = cli.run(
        m,
        &[
            "service",
            "create",
            "--name",
            name,
            "--replicas=4",
            "--stop-grace-period=1s",
            "--detach",
            "--no-resolve-image",
            "busybox",
            "sh",
            "-c",
            "while true; do hostname; sleep 2; done",
        ],
    );
    let id = ok(&o, "service create").trim().to_string();
    assert_eq!(id.len(), 25, "a swarm id: {id}");
    assert_eq!(counts(&converged(c, name, 4)), [1, 1, 2]);
    // task containers are named as swarmkit names them
    let names = ok(
        &c.node(1).daemon.docker(&["ps", "--format", "{{.Names}}"]),
        "ps",
    );
    assert!(
        names
            .lines()
            .all(|n| n.starts_with(&format!("{name}.")) && n.split('.').count() == 3),
        "{names}"
    );
    let ls = ok(&cli.run(m, &["service", "ls"]), "service ls");
    assert!(ls.contains(name) && ls.contains("4/4"), "{ls}");
    // scale up: the new tasks go where there are fewest
    ok(
        &cli.run(m, &["service", "scale", "--detach", &format!("{name}=6")]),
        "scale",
    );
    assert_eq!(counts(&converged(c, name, 6)), [2, 2, 2]);
    // a rolling update, one slot at a time: the old tasks stay as history
    ok(
        &cli.run(
            m,
            &[
                "service",
                "update",
                "--detach",
                "--force",
                "--update-parallelism",
                "1",
                "--update-delay",
                "1s",
                name,
            ],
        ),
        "rolling update",
    );
    let done = eventually(60, || {
        inspect(cli, m, name, "{{.UpdateStatus.State}}") == "completed"
    });
    assert!(
        done,
        "{} {}",
        inspect(cli, m, name, "{{json .UpdateStatus}}"),
        inspect(cli, m, name, "{{json .Spec.TaskTemplate}}")
    );
    let ps = ok(&cli.run(m, &["service", "ps", name]), "service ps");
    let history = ps
        .lines()
        .filter(|l| l.contains(&format!(r" \_ {name}.")))
        .count();
    assert_eq!(history, 6, "each slot shows its old task as history:\n{ps}");
    converged(c, name, 6);
    ok(
        &cli.run(m, &["service", "scale", "--detach", &format!("{name}=2")]),
        "scale down",
    );
    converged(c, name, 2);
    ok(&cli.run(m, &["service", "rm", name]), "service rm");
    let gone = eventually(30, || {
        c.nodes
            .iter()
            .all(|n| containers_of(&n.daemon, name).is_empty())
    });
    assert!(gone, "{name}'s containers outlived it");
    // the service's life on the event stream, as dockerd tells it
    let until = chrono_now_secs().to_string();
    let events = ok(
        &m.docker(&[
            "events",
            "--since",
            "0",
            "--until",
            &until,
            "--filter",
            "type=service",
            "--filter",
            &format!("service={id}"),
            "--format",
            "{{.Action}} {{.Actor.Attributes.name}}",
        ]),
        "events",
    );
    let actions: Vec<&str> = events.lines().collect();
    assert_eq!(
        actions.first(),
        Some(&format!("create {name}").as_str()),
        "{events}"
    );
    assert_eq!(
        actions.last(),
        Some(&format!("remove {name}").as_str()),
        "{events}"
    );
    assert!(
        actions.contains(&format!("update {name}").as_str()),
        "{events}"
    );
    let o = cli.run(m, &["service", "inspect", name]);
    assert_ne!(code(&o), 0);
    assert!(
        stderr(&o).contains(&format!("no such service: {name}")),
        "{}",
        stderr(&o)
    );
    let _ = node_id(m);
}
