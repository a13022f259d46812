//! `service logs` through the docker CLI and berth's, on a namespace
//! cluster of one manager and two workers: lines from every node with the CLI's `w8.N.taskid@host    | `
//! names (from the details dockerd sends), tail, timestamps, task ids
//! left out, raw lines, a task's own logs, follow gathering every node
//! and going on while a node is down, and a reader that ends with the
//! warning naming the node it could not reach. One cluster serves every
//! check: a cluster is the costly part.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::io::{BufRead, BufReader};
use std::process::{Command, Output, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use common::cluster::Cluster;
use common::{Cli, Daemon, code, eventually, node_id, ok, stderr, stdout};

/// A cluster of a manager (node 0) and two workers.
fn cluster() -> Cluster {
    Cluster::swarm(3)
}

/// The task ids of `service`'s containers running on a node.
fn tasks_on(d: &Daemon, service: &str) -> Vec<String> {
    let filter = format!("label=com.docker.swarm.service.name={service}");
    let format = "{{.Label \"com.docker.swarm.task.id\"}}";
    let o = d.docker(&["ps", "--filter", &filter, "--format", format]);
    stdout(&o).lines().map(str::to_string).collect()
}

/// A CLI against `d`, killed after `secs`: its output and how long it
/// took.
fn within(cli: Cli, d: &Daemon, secs: u64, args: &[&str]) -> (Output, Duration) {
    let started = Instant::now();
    let o = Command::new("timeout")
        .arg(secs.to_string())
        .arg(cli.program())
        .args(args)
        .env_remove("DOCKER_HOST")
        .envs(cli.env(d))
        .stdin(Stdio::null())
        .output()
        .expect("running the CLI");
    (o, started.elapsed())
}

/// A `service logs` line the CLI prints: (task name, host, message).
fn parse_line(line: &str) -> Option<(String, String, String)> {
    let (name, message) = line.split_once("    | ")?;
    let (task, host) = name.split_once('@')?;
    Some((
        task.to_string(),
        host.trim_end().to_string(),
        message.to_string(),
    ))
}

/// The messages of each task name in `text`.
fn by_task(text: &str) -> BTreeMap<String, Vec<String>> {
    let mut out: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for l in text.lines() {
        let (task, _, message) =
            parse_line(l).unwrap_or_else(|| panic!("not a service log line: {l:?}"));
        out.entry(task).or_default().push(message);
    }
    out
}

/// The short (12 character) ids the CLI prints.
fn short(ids: &[String]) -> BTreeSet<String> {
    ids.iter().map(|t| t[..12].to_string()).collect()
}

fn task_id_of(name: &str) -> String {
    name.rsplit('.').next().unwrap_or_default().to_string()
}

#[test]
fn service_logs_gather_every_node_through_both_clis() {
    let mut c = cluster();
    let m = &c.node(0).daemon;
    let script =
        "i=0; while true; do i=$((i+1)); echo \"line $i\"; echo \"err $i\" >&2; sleep 1; done";
    let create = [
        "service",
        "create",
        "--name",
        "w8",
        "--replicas=3",
        "--detach",
        "--no-resolve-image",
        "busybox",
        "sh",
        "-c",
        script,
    ];
    let service_id = ok(&m.docker(&create), "service create").trim().to_string();
    // one task per node, each having logged a few lines
    let mut per_node: Vec<Vec<String>> = Vec::new();
    let spread = eventually(40, || {
        per_node = (0..3).map(|i| tasks_on(&c.node(i).daemon, "w8")).collect();
        per_node.iter().all(|t| t.len() == 1)
    });
    assert!(spread, "one w8 task per node: {per_node:?}");
    let all_tasks: Vec<String> = per_node.iter().flatten().cloned().collect();
    let hostname = ok(
        &m.docker(&["node", "ls", "--format", "{{.Hostname}}"]),
        "hosts",
    )
    .lines()
    .next()
    .unwrap_or_default()
    .to_string();
    let mut plain = String::new();
    let every_task_logged = eventually(30, || {
        plain = ok(&m.docker(&["service", "logs", "w8"]), "service logs");
        let seen = by_task(&plain);
        seen.len() == 3 && seen.values().all(|v| v.len() >= 3)
    });
    assert!(every_task_logged, "lines of all three tasks:\n{plain}");

    for cli in [Cli::Docker, Cli::Berth] {
        let plain = ok(&cli.run(m, &["service", "logs", "w8"]), "service logs");
        names_lines_by_task_and_node(&plain, &all_tasks, &hostname);
        stderr_lines_come_on_stderr(cli, m);
        tail_and_timestamps(cli, m);
        no_task_ids_and_raw(cli, m);
        a_tasks_own_logs(cli, m, &all_tasks[1]);
        refusals(cli, m, &service_id);
    }

    let followers = [Cli::Docker, Cli::Berth]
        .map(|cli| Follower::start(cli, m, &["service", "logs", "-f", "--tail", "1", "w8"]));
    for f in &followers {
        let before = f.lines_for(Duration::from_secs(5));
        let tasks_seen: BTreeSet<String> = before
            .iter()
            .filter_map(|l| parse_line(l).map(|p| task_id_of(&p.0)))
            .collect();
        assert_eq!(
            tasks_seen,
            short(&all_tasks),
            "{:?}: follow reads every node:\n{before:?}",
            f.cli
        );
        assert!(before.len() > 3, "follow brings new lines: {before:?}");
    }

    // a worker dies: the followers go on with the others' lines
    let dead_node = node_id(&c.node(2).daemon);
    c.node_mut(2).daemon.kill9();
    let m = &c.node(0).daemon;
    let living: BTreeSet<String> = short(&[per_node[0].clone(), per_node[1].clone()].concat());
    for f in followers {
        let after = f.lines_for(Duration::from_secs(5));
        let still: BTreeSet<String> = after
            .iter()
            .filter_map(|l| parse_line(l).map(|p| task_id_of(&p.0)))
            .filter(|t| living.contains(t))
            .collect();
        assert_eq!(
            still, living,
            "{:?}: lines of the living nodes after the kill:\n{after:?}",
            f.cli
        );
        f.stop();
    }

    // a reader ends, in bounded time, with the living nodes' lines and
    // swarmkit's warning naming the dead one
    let want = format!(
        "error from daemon in stream: Error grabbing logs: rpc error: code = Unknown desc = warning: incomplete log stream. some logs could not be retrieved for the following reasons: node {dead_node}"
    );
    for cli in [Cli::Docker, Cli::Berth] {
        let (o, took) = within(cli, m, 60, &["service", "logs", "w8"]);
        assert!(
            took < Duration::from_secs(30),
            "{cli:?}: service logs took {took:?}"
        );
        assert_eq!(
            code(&o),
            1,
            "{cli:?}: the warning fails the CLI: {}",
            stderr(&o)
        );
        let seen: BTreeSet<String> = by_task(&stdout(&o)).keys().map(|t| task_id_of(t)).collect();
        assert!(
            living.is_subset(&seen),
            "{cli:?}: living tasks {living:?} in {seen:?}"
        );
        assert!(stderr(&o).contains(&want), "{cli:?}: {}", stderr(&o));
    }
}

/// Each line is `w8.<slot>.<task id>@<host>    | <message>`: the three
/// slots, the running tasks, and their node's hostname.
fn names_lines_by_task_and_node(text: &str, tasks: &[String], hostname: &str) {
    let mut slots = BTreeSet::new();
    let mut ids = BTreeSet::new();
    for l in text.lines() {
        let (task, host, message) = parse_line(l).expect("a service log line");
        let parts: Vec<&str> = task.split('.').collect();
        assert_eq!(parts.len(), 3, "{l}");
        assert_eq!(parts[0], "w8", "{l}");
        slots.insert(parts[1].to_string());
        ids.insert(parts[2].to_string());
        assert_eq!(host, hostname, "{l}");
        assert!(message.starts_with("line "), "{l}");
    }
    assert_eq!(slots, BTreeSet::from(["1".into(), "2".into(), "3".into()]));
    assert_eq!(ids, short(tasks));
}

fn stderr_lines_come_on_stderr(cli: Cli, m: &Daemon) {
    let o = cli.run(m, &["service", "logs", "w8"]);
    let errs = by_task(&stderr(&o));
    assert_eq!(errs.len(), 3, "{}", stderr(&o));
    assert!(
        errs.values().flatten().all(|e| e.starts_with("err ")),
        "{errs:?}"
    );
}

fn tail_and_timestamps(cli: Cli, m: &Daemon) {
    // the last two records of each task, stdout and stderr together
    let o = cli.run(m, &["service", "logs", "--tail", "2", "w8"]);
    let mut per: BTreeMap<String, usize> = BTreeMap::new();
    for text in [stdout(&o), stderr(&o)] {
        for (task, lines) in by_task(&text) {
            *per.entry(task).or_default() += lines.len();
        }
    }
    assert_eq!(per.len(), 3, "{per:?}");
    assert!(per.values().all(|n| *n == 2), "--tail 2: {per:?}");

    let o = cli.run(m, &["service", "logs", "--timestamps", "--tail", "1", "w8"]);
    let text = stdout(&o) + &stderr(&o);
    assert_eq!(text.lines().count(), 3, "{text}");
    for l in text.lines() {
        let (ts, rest) = l.split_once(' ').expect("a timestamp first");
        assert_eq!(ts.len(), 30, "rfc3339 with nanoseconds: {l}");
        assert!(ts.ends_with('Z') && ts.as_bytes()[19] == b'.', "{l}");
        assert!(rest.starts_with("w8."), "{l}");
    }
}

fn no_task_ids_and_raw(cli: Cli, m: &Daemon) {
    let o = cli.run(
        m,
        &["service", "logs", "--no-task-ids", "--tail", "1", "w8"],
    );
    for l in stdout(&o).lines() {
        let (task, _, _) = parse_line(l).expect("a service log line");
        assert_eq!(task.split('.').count(), 2, "no task id: {l}");
    }
    let o = cli.run(m, &["service", "logs", "--raw", "w8"]);
    let raw = stdout(&o);
    assert!(raw.lines().count() >= 9, "{raw}");
    assert!(raw.lines().all(|l| l.starts_with("line ")), "{raw}");
}

fn a_tasks_own_logs(cli: Cli, m: &Daemon, task: &str) {
    let o = cli.run(m, &["service", "logs", task]);
    let seen = by_task(&stdout(&o));
    let names: Vec<&String> = seen.keys().collect();
    assert_eq!(names.len(), 1, "{}", stdout(&o));
    assert_eq!(task_id_of(names[0]), task[..12], "{names:?}");
    assert!(seen[names[0]].len() >= 3, "{seen:?}");
}

fn refusals(cli: Cli, m: &Daemon, service_id: &str) {
    let o = cli.run(m, &["service", "logs", "nope"]);
    assert_ne!(code(&o), 0);
    assert!(
        stderr(&o).contains("no such task or service: nope"),
        "{}",
        stderr(&o)
    );
    let o = cli.run(m, &["service", "logs", "--tail", "x", service_id]);
    assert_ne!(code(&o), 0);
    assert!(
        stderr(&o).contains("tail value must be a positive integer or \"all\""),
        "{}",
        stderr(&o)
    );
}

/// A `service logs -f` whose lines are read as they come.
struct Follower {
    cli: Cli,
    child: std::process::Child,
    lines: mpsc::Receiver<String>,
}

impl Follower {
    fn start(cli: Cli, d: &Daemon, args: &[&str]) -> Follower {
        let mut child = cli
            .command(d)
            .args(args)
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("starting the CLI");
        let out = child.stdout.take().expect("piped stdout");
        let (tx, lines) = mpsc::channel();
        std::thread::spawn(move || {
            for l in BufReader::new(out).lines().map_while(Result::ok) {
                if tx.send(l).is_err() {
                    return;
                }
            }
        });
        Follower { cli, child, lines }
    }

    /// What it prints in the next `span`; it must still be following.
    fn lines_for(&self, span: Duration) -> Vec<String> {
        let end = Instant::now() + span;
        let mut got = Vec::new();
        while let Some(left) = end.checked_duration_since(Instant::now()) {
            match self.lines.recv_timeout(left) {
                Ok(l) => got.push(l),
                Err(mpsc::RecvTimeoutError::Timeout) => break,
                Err(mpsc::RecvTimeoutError::Disconnected) => panic!("the follower ended: {got:?}"),
            }
        }
        got
    }

    fn stop(mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
