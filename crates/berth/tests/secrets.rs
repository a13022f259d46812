//! Secrets and configs on a namespace cluster of one manager and two
//! workers (issue #21), through the docker CLI and berth's: the seeds'
//! `secret create … -` and `service create --secret`, a secret and a
//! config delivered to a task on a worker with the asked owner and mode,
//! in memory only (absent from every node's disk, the log, `inspect` and
//! events), rotation Docker's way and with `berth secret rotate`, and
//! Docker's errors for bad input. One cluster serves every check.

mod common;

use std::io::Write;
use std::process::{Output, Stdio};

use common::cluster::Cluster;
use common::{Cli, Daemon, code, eventually, ok, stderr, stdout};

const VALUE: &str = "haslo123456";

/// The CLI with `input` on its standard input.
fn with_input(cli: Cli, d: &Daemon, args: &[&str], input: &[u8]) -> Output {
    let mut child = cli
        .command(d)
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("starting the CLI");
    if let Some(mut stdin) = child.stdin.take() {
        let _ = stdin.write_all(input);
    }
    child.wait_with_output().expect("running the CLI")
}

/// How many containers of `service` run on the nodes.
fn containers(c: &Cluster, service: &str) -> usize {
    let filter = format!("label=com.docker.swarm.service.name={service}");
    c.nodes
        .iter()
        .map(|n| {
            stdout(&n.daemon.docker(&["ps", "-q", "--filter", &filter]))
                .lines()
                .count()
        })
        .sum()
}

/// The node and container running `service`'s one task.
fn task_container(c: &Cluster, service: &str) -> Option<(usize, String)> {
    let filter = format!("label=com.docker.swarm.service.name={service}");
    (0..c.nodes.len()).find_map(|i| {
        let o = c.node(i).daemon.docker(&["ps", "-q", "--filter", &filter]);
        let ids = stdout(&o);
        let mut lines = ids.lines();
        match (lines.next(), lines.next()) {
            (Some(id), None) => Some((i, id.to_string())),
            _ => None,
        }
    })
}

/// Waits for `service`'s task to run a container other than `not`, and
/// returns where.
fn running(c: &Cluster, service: &str, not: Option<&str>) -> (usize, String) {
    let mut found = None;
    let ok = eventually(40, || {
        found = task_container(c, service).filter(|(_, id)| Some(id.as_str()) != not);
        found.is_some()
    });
    assert!(ok, "{service}: no new running task");
    found.expect("found")
}

fn now_secs() -> String {
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH);
    now.map_or(0, |d| d.as_secs()).to_string()
}

fn exec(c: &Cluster, at: &(usize, String), script: &str) -> String {
    let o = c
        .node(at.0)
        .daemon
        .docker(&["exec", &at.1, "sh", "-c", script]);
    assert_eq!(code(&o), 0, "{script}: {}", stderr(&o));
    stdout(&o)
}

#[test]
fn secrets_and_configs_reach_their_tasks_and_nothing_else() {
    let c = Cluster::swarm(3);
    for cli in [Cli::Docker, Cli::Berth] {
        a_secret_and_a_config_in_a_task_on_a_worker(&c, cli);
        bad_input_gets_dockers_errors(&c, cli);
    }
}

fn a_secret_and_a_config_in_a_task_on_a_worker(c: &Cluster, cli: Cli) {
    let m = &c.node(0).daemon;
    // the seeds' command line
    let o = with_input(
        cli,
        m,
        &["secret", "create", "wordpress_secret", "-"],
        VALUE.as_bytes(),
    );
    let id = ok(&o, "secret create").trim().to_string();
    assert_eq!(id.len(), 25, "a swarm id: {id}");
    let conf = m.dir.path().join("app.conf");
    std::fs::write(&conf, "listen 8080\n").expect("config file");
    let conf_path = conf.to_str().expect("utf-8 path");
    ok(
        &cli.run(m, &["config", "create", "app_conf", conf_path]),
        "config create",
    );
    let create = [
        "service",
        "create",
        "--detach",
        "--no-resolve-image",
        "--name",
        "wp",
        "--constraint",
        "node.role==worker",
        "--secret",
        "wordpress_secret",
        "--secret",
        "source=wordpress_secret,target=/etc/pw,uid=33,gid=44,mode=0400",
        "--config",
        "source=app_conf,target=/etc/app.conf",
        "-e",
        "MYSQL_ROOT_PASSWORD_FILE=/run/secrets/wordpress_secret",
        "busybox",
        "sleep",
        "1000",
    ];
    ok(&cli.run(m, &create), "service create");
    let at = running(c, "wp", None);
    assert_ne!(at.0, 0, "the task runs on a worker");
    assert_eq!(exec(c, &at, "cat $MYSQL_ROOT_PASSWORD_FILE"), VALUE);
    assert_eq!(exec(c, &at, "stat -c '%u %g %a' /etc/pw"), "33 44 400\n");
    assert_eq!(exec(c, &at, "cat /etc/pw"), VALUE);
    assert_eq!(exec(c, &at, "cat /etc/app.conf"), "listen 8080\n");
    assert_eq!(exec(c, &at, "stat -c '%a' /etc/app.conf"), "444\n");
    // read-only, in memory
    let o = c.node(at.0).daemon.docker(&[
        "exec",
        &at.1,
        "sh",
        "-c",
        "echo x > /run/secrets/wordpress_secret",
    ]);
    assert_ne!(code(&o), 0, "a secret file is read-only");
    the_value_is_nowhere_else(c, cli, &at);
    // in use: refused, naming the service
    let o = cli.run(m, &["secret", "rm", "wordpress_secret"]);
    assert_ne!(code(&o), 0);
    assert!(
        stderr(&o).contains("rpc error: code = InvalidArgument desc = secret 'wordpress_secret' is in use by the following service: wp"),
        "{}",
        stderr(&o)
    );
    rotation_dockers_way(c, cli, &at);
    ok(&cli.run(m, &["service", "rm", "wp"]), "service rm");
    let gone = eventually(30, || containers(c, "wp") == 0);
    assert!(gone, "wp's container outlived it");
    let o = cli.run(m, &["secret", "rm", "wordpress_secret", "wp_v2"]);
    assert_eq!(stdout(&o), "wordpress_secret\nwp_v2\n", "{}", stderr(&o));
    ok(&cli.run(m, &["config", "rm", "app_conf"]), "config rm");
    let ls = ok(&cli.run(m, &["secret", "ls", "-q"]), "secret ls");
    assert!(ls.trim().is_empty(), "{ls}");
}

/// Not on any node's disk (the managers' Raft is sealed, the workers keep
/// it in memory), not in the daemons' logs, not in any answer or event.
fn the_value_is_nowhere_else(c: &Cluster, cli: Cli, at: &(usize, String)) {
    let m = &c.node(0).daemon;
    for n in &c.nodes {
        let dir = n.daemon.dir.path().display().to_string();
        let o = std::process::Command::new("grep")
            .args(["-rl", "--", VALUE, &dir])
            .output()
            .expect("grep");
        assert!(stdout(&o).is_empty(), "on disk: {}", stdout(&o));
        assert!(!n.daemon.log().contains(VALUE), "in a daemon's log");
    }
    let shown = [
        cli.run(&c.node(at.0).daemon, &["inspect", &at.1]),
        cli.run(m, &["service", "inspect", "wp"]),
        cli.run(m, &["secret", "inspect", "wordpress_secret"]),
        cli.run(m, &["events", "--since", "0", "--until", &now_secs()]),
    ];
    for o in shown {
        assert!(!stdout(&o).contains(VALUE), "{}", stdout(&o));
    }
}

/// Docker's rotation: a new secret under the old target; the task is
/// replaced and reads the new value.
fn rotation_dockers_way(c: &Cluster, cli: Cli, before: &(usize, String)) {
    let m = &c.node(0).daemon;
    let o = with_input(cli, m, &["secret", "create", "wp_v2", "-"], b"second");
    ok(&o, "secret create wp_v2");
    let update = [
        "service",
        "update",
        "--detach",
        "--secret-rm",
        "wordpress_secret",
        "--secret-add",
        "source=wp_v2,target=wordpress_secret",
        "wp",
    ];
    ok(&cli.run(m, &update), "service update");
    let at = running(c, "wp", Some(&before.1));
    assert_eq!(exec(c, &at, "cat /run/secrets/wordpress_secret"), "second");
    if cli == Cli::Berth {
        berths_rotate(c, &at);
    }
}

/// `berth secret rotate`: new data under the same name, and the service
/// that uses it rolled to mount it.
fn berths_rotate(c: &Cluster, before: &(usize, String)) {
    let m = &c.node(0).daemon;
    let o = with_input(
        Cli::Berth,
        m,
        &["secret", "rotate", "--detach", "wp_v2", "-"],
        b"third",
    );
    let out = ok(&o, "secret rotate");
    assert!(out.contains("Updating service wp (id: "), "{out}");
    let at = running(c, "wp", Some(&before.1));
    assert_eq!(exec(c, &at, "cat /run/secrets/wordpress_secret"), "third");
}

fn bad_input_gets_dockers_errors(c: &Cluster, cli: Cli) {
    let m = &c.node(0).daemon;
    let fails = |o: Output, want: &str| {
        assert_ne!(code(&o), 0, "succeeded: {}", stdout(&o));
        assert!(stderr(&o).contains(want), "{want}: {}", stderr(&o));
    };
    let big = vec![b'a'; 512_000];
    fails(
        with_input(cli, m, &["secret", "create", "big", "-"], &big),
        "secret data must be larger than 0 and less than 512000 bytes",
    );
    fails(
        with_input(cli, m, &["secret", "create", "x-", "-"], b"v"),
        "invalid name, only 64",
    );
    fails(
        with_input(cli, m, &["secret", "create", "a b", "-"], b"v"),
        "invalid name, only 64 [a-zA-Z0-9-_.] characters allowed, and the start and end character must be [a-zA-Z0-9]",
    );
    ok(
        &with_input(cli, m, &["secret", "create", "dup", "-"], b"v"),
        "dup",
    );
    fails(
        with_input(cli, m, &["secret", "create", "DUP", "-"], b"v"),
        "rpc error: code = AlreadyExists desc = secret DUP already exists",
    );
    let escape = [
        "service",
        "create",
        "--detach",
        "--no-resolve-image",
        "--secret",
        "source=dup,target=../../etc/shadow",
        "busybox",
    ];
    fails(
        cli.run(m, &escape),
        "invalid secret target \"../../etc/shadow\": must not contain \"..\"",
    );
    let missing = [
        "service",
        "create",
        "--detach",
        "--no-resolve-image",
        "--secret",
        "nope",
        "busybox",
    ];
    fails(cli.run(m, &missing), "secret not found: nope");
    ok(&cli.run(m, &["secret", "rm", "dup"]), "rm dup");
    let o = cli.run(m, &["secret", "inspect", "dup"]);
    assert_ne!(code(&o), 0);
}
