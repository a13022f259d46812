//! Real faults on a namespace cluster (issue #19): one cluster of three
//! managers and a worker goes through a follower killed while writes go
//! on, the loss and return of the quorum, every manager killed at once and
//! restarted, the leader's cable cut and restored, and a worker whose
//! state was wiped joining again. The checks share one cluster because a
//! cluster is the costly part; each step leaves it whole for the next.

mod common;

use std::collections::BTreeSet;

use common::cluster::Cluster;
use common::{
    Daemon, code, eventually, join_args, json_request, node_id, ok, same, stderr, stdout,
};

const NO_LEADER: &str = "The swarm does not have a leader";

/// `node ls` as (id, status, manager status) rows, through the docker CLI.
fn nodes(d: &Daemon) -> Option<Vec<(String, String, String)>> {
    let o = d.docker(&[
        "node",
        "ls",
        "--format",
        "{{.ID}} {{.Status}} {{.ManagerStatus}}",
    ]);
    (code(&o) == 0).then(|| {
        stdout(&o)
            .lines()
            .map(|l| {
                // the CLI marks this node's own ID with " *"
                let mut f = l
                    .split_whitespace()
                    .filter(|w| *w != "*")
                    .map(str::to_string);
                let id = f.next().unwrap_or_default();
                let status = f.next().unwrap_or_default();
                (id, status, f.next().unwrap_or_default())
            })
            .collect()
    })
}

/// The index of the manager that `d` sees as leader.
fn leader_index(d: &Daemon, ids: &[String]) -> Option<usize> {
    let rows = nodes(d)?;
    let leader = rows.iter().find(|r| r.2 == "Leader")?;
    ids.iter().position(|id| *id == leader.0)
}

fn join(c: &Cluster, i: usize, token: &str, via: usize) -> String {
    let n = c.node(i);
    let remote = format!("{}:2377", c.node(via).addr);
    ok(
        &n.daemon.docker(&join_args(token, &n.addr, &remote)),
        "join",
    )
}

#[test]
fn a_cluster_survives_killed_managers_a_lost_quorum_a_cut_cable_and_a_wiped_worker() {
    let mut c = Cluster::new(4);
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
    let token = |d: &Daemon, role: &str| {
        ok(&d.docker(&["swarm", "join-token", "-q", role]), "token")
            .trim()
            .to_string()
    };
    let manager_token = token(&c.node(0).daemon, "manager");
    let worker_token = token(&c.node(0).daemon, "worker");
    join(&c, 1, &manager_token, 0);
    join(&c, 2, &manager_token, 0);
    let mut ids: Vec<String> = (0..3).map(|i| node_id(&c.node(i).daemon)).collect();

    // a follower killed: a worker still joins, through the other
    // follower; the log is compacted meanwhile, so the restarted follower
    // catches up through the leader's snapshot
    c.node_mut(2).daemon.kill9();
    compact_often(&c.node(0).daemon);
    let joined = join(&c, 3, &worker_token, 1);
    assert_eq!(joined.trim(), "This node joined a swarm as a worker.");
    ids.push(node_id(&c.node(3).daemon));
    for n in 0..12 {
        let l = format!("missed{n}=yes");
        ok(
            &c.node(1)
                .daemon
                .docker(&["node", "update", "--label-add", &l, &ids[0]]),
            "a write the follower misses",
        );
    }
    // two compaction rounds of the managers
    std::thread::sleep(std::time::Duration::from_millis(1500));
    c.node_mut(2).daemon.start_again();
    let m2 = &c.node(2).daemon;
    assert!(
        eventually(20, || {
            let ls = m2.berth(&["node", "ls", "-q"]);
            stdout(&ls).lines().count() == 4 && label(m2, &ids[0], "missed11") == "yes"
        }),
        "the restarted follower never caught up"
    );
    assert!(
        m2.log().contains("installed the leader's snapshot"),
        "the follower caught up without a snapshot: the log was not compacted"
    );
    ok(
        &m2.docker(&["swarm", "update", "--snapshot-interval", "10000"]),
        "the default interval again",
    );

    // two of three managers gone: reads and writes are refused with
    // swarmkit's words, in bounded time; one back and the quorum is back
    c.node_mut(1).daemon.kill9();
    c.node_mut(2).daemon.kill9();
    let m0 = &c.node(0).daemon;
    assert!(
        eventually(15, || stderr(&m0.docker(&["node", "ls"]))
            .contains(NO_LEADER)),
        "no quorum error: {}",
        stderr(&m0.docker(&["node", "ls"]))
    );
    c.node_mut(1).daemon.start_again();
    assert!(
        eventually(20, || nodes(&c.node(0).daemon).is_some()),
        "the quorum did not come back"
    );
    c.node_mut(2).daemon.start_again();

    // every manager killed at once and started again: the same cluster,
    // a leader, the worker back to ready
    for i in 0..3 {
        c.node_mut(i).daemon.kill9();
    }
    for i in 0..3 {
        c.node_mut(i).daemon.start_again();
    }
    let want: BTreeSet<String> = ids.iter().cloned().collect();
    let m1 = &c.node(1).daemon;
    assert!(
        eventually(30, || nodes(m1).is_some_and(|rows| {
            rows.iter().map(|r| r.0.clone()).collect::<BTreeSet<_>>() == want
                && rows.iter().any(|r| r.2 == "Leader")
                && rows.iter().all(|r| r.1 == "Ready")
        })),
        "the cluster did not come back whole: {:?}",
        nodes(m1)
    );

    // the leader's cable cut: the other two elect a leader; restored, the
    // old one follows it
    let old = leader_index(&c.node(0).daemon, &ids).expect("a leader");
    let other = (old + 1) % 3;
    c.cut_link(old);
    assert!(
        eventually(20, || leader_index(&c.node(other).daemon, &ids)
            .is_some_and(|l| l != old)),
        "no new leader behind the cut"
    );
    c.restore_link(old);
    let m_old = &c.node(old).daemon;
    assert!(
        eventually(20, || leader_index(m_old, &ids).is_some_and(|l| l != old)),
        "the old leader did not follow the new one"
    );

    // a worker whose swarm state is wiped joins again as a new node; its
    // old self goes down
    c.node_mut(3).daemon.kill9();
    std::fs::remove_dir_all(c.node(3).daemon.data_root().join("swarm")).expect("wiping");
    c.node_mut(3).daemon.start_again();
    let again = join(&c, 3, &worker_token, other);
    assert_eq!(again.trim(), "This node joined a swarm as a worker.");
    let new_id = node_id(&c.node(3).daemon);
    assert_ne!(new_id, ids[3]);
    let m = &c.node(other).daemon;
    assert!(
        eventually(20, || nodes(m).is_some_and(|rows| {
            rows.iter().any(|r| r.0 == ids[3] && r.1 == "Down")
                && rows.iter().any(|r| r.0 == new_id && r.1 == "Ready")
        })),
        "{:?}",
        nodes(m)
    );

    membership_changes_and_a_staggered_restart(&mut c, &ids, other);
    force_a_new_cluster_on_the_last_manager(&mut c, &ids, other, &manager_token);
}

/// Three managers `Leader`/`Reachable` and every listed node `Ready`, as
/// manager `i` sees it.
fn whole(c: &Cluster, i: usize, ready: &[&str]) -> bool {
    nodes(&c.node(i).daemon).is_some_and(|rows| {
        let managers = rows
            .iter()
            .filter(|r| r.2 == "Leader" || r.2 == "Reachable")
            .count();
        managers == 3
            && rows.iter().filter(|r| r.2 == "Leader").count() == 1
            && ready
                .iter()
                .all(|id| rows.iter().any(|r| r.0 == *id && r.1 == "Ready"))
    })
}

/// A down node removed with `--force`, the leader demoted (another leads)
/// and promoted back, then every manager stopped one after another and
/// started again in another order.
fn membership_changes_and_a_staggered_restart(c: &mut Cluster, ids: &[String], via: usize) {
    let m = &c.node(via).daemon;
    let removed = ok(
        &m.berth(&["node", "rm", "--force", &ids[3]]),
        "rm a down node",
    );
    assert_eq!(removed.trim(), ids[3]);
    assert!(!stdout(&m.docker(&["node", "ls", "-q"])).contains(&ids[3]));

    // every manager reachable again after the cut, or the demotion is
    // refused for the quorum's sake
    let all: Vec<&str> = ids[..3].iter().map(String::as_str).collect();
    assert!(eventually(20, || whole(c, via, &all)), "{:?}", nodes(m));
    let leader = leader_index(m, ids).expect("a leader");
    let demoted = ok(
        &c.node(leader)
            .daemon
            .docker(&["node", "demote", &ids[leader]]),
        "demote the leader",
    );
    assert_eq!(
        demoted.trim(),
        format!("Manager {} demoted in the swarm.", ids[leader])
    );
    let next = (leader + 1) % 3;
    assert!(
        eventually(20, || nodes(&c.node(next).daemon).is_some_and(|rows| {
            rows.iter()
                .any(|r| r.0 == ids[leader] && r.1 == "Ready" && r.2.is_empty())
                && rows.iter().any(|r| r.2 == "Leader" && r.0 != ids[leader])
        })),
        "the demoted leader: {:?}",
        nodes(&c.node(next).daemon)
    );
    ok(
        &c.node(next)
            .daemon
            .berth(&["node", "promote", &ids[leader]]),
        "promote it back",
    );
    assert!(
        eventually(30, || whole(c, next, &all)),
        "{:?}",
        nodes(&c.node(next).daemon)
    );

    for i in 0..3 {
        c.node_mut(i).daemon.kill9();
        std::thread::sleep(std::time::Duration::from_millis(700));
    }
    for i in [2, 0, 1] {
        c.node_mut(i).daemon.start_again();
        std::thread::sleep(std::time::Duration::from_millis(700));
    }
    assert!(
        eventually(30, || whole(c, 0, &all)),
        "{:?}",
        nodes(&c.node(0).daemon)
    );
}

/// A snapshot every 10 entries, no entry kept behind it, through the API
/// (the CLIs do not set `LogEntriesForSlowFollowers`).
fn compact_often(d: &Daemon) {
    let (status, swarm) = json_request(d, "GET", "/swarm", None);
    assert_eq!(status, 200, "{swarm}");
    let mut spec = swarm["Spec"].clone();
    spec["Raft"]["SnapshotInterval"] = 10.into();
    spec["Raft"]["LogEntriesForSlowFollowers"] = 0.into();
    let path = format!("/swarm/update?version={}", swarm["Version"]["Index"]);
    let (status, answer) = json_request(d, "POST", &path, Some(spec));
    assert_eq!(status, 200, "{answer}");
}

fn label(d: &Daemon, id: &str, key: &str) -> String {
    let f = format!("{{{{index .Spec.Labels \"{key}\"}}}}");
    stdout(&d.docker(&["node", "inspect", "-f", &f, id]))
        .trim()
        .to_string()
}

/// The two other managers lost for good: `swarm init --force-new-cluster`
/// on the survivor keeps the state and takes writes; the lost managers,
/// back with the old membership, cannot take over; they leave, join again
/// and the cluster has three managers.
fn force_a_new_cluster_on_the_last_manager(
    c: &mut Cluster,
    ids: &[String],
    survivor: usize,
    manager_token: &str,
) {
    let s_addr = c.node(survivor).addr.clone();
    let id = ids[survivor].as_str();
    ok(
        &c.node(survivor)
            .daemon
            .docker(&["node", "update", "--label-add", "before=force", id]),
        "label",
    );
    // a worker cannot force anything
    let w = c
        .node(3)
        .daemon
        .docker(&["swarm", "init", "--force-new-cluster"]);
    assert_ne!(code(&w), 0);
    assert!(
        stderr(&w).contains("This node is not a swarm manager."),
        "{}",
        stderr(&w)
    );
    // read back on the survivor: it has applied the write itself
    assert_eq!(label(&c.node(survivor).daemon, id, "before"), "force");
    let lost: Vec<usize> = (0..3).filter(|i| *i != survivor).collect();
    for i in &lost {
        c.node_mut(*i).daemon.kill9();
    }
    let s = &c.node(survivor).daemon;
    assert!(
        eventually(15, || stderr(&s.docker(&["node", "ls"]))
            .contains(NO_LEADER)),
        "the survivor still has a quorum"
    );
    let forced = ok(
        &s.berth(&[
            "swarm",
            "init",
            "--force-new-cluster",
            "--advertise-addr",
            &s_addr,
        ]),
        "force-new-cluster",
    );
    assert!(
        forced.contains(&format!(
            "Swarm initialized: current node ({id}) is now a manager."
        )),
        "{forced}"
    );
    assert_eq!(label(s, id, "before"), "force", "the state was not kept");
    ok(
        &s.docker(&["node", "update", "--label-add", "after=force", id]),
        "a write after forcing",
    );
    // the lost managers are out of the Raft: no manager status, down
    let lost_down = |rows: &Vec<(String, String, String)>| {
        lost.iter().all(|i| {
            rows.iter()
                .any(|r| r.0 == ids[*i] && r.1 == "Down" && r.2.is_empty())
        })
    };
    assert!(
        eventually(20, || nodes(s).is_some_and(
            |rows| lost_down(&rows) && rows.iter().any(|r| r.0 == id && r.2 == "Leader")
        )),
        "{:?}",
        nodes(s)
    );
    same(s, &["node", "ls", "--format", "{{.ID}} {{.ManagerStatus}}"]);

    // back with the old membership they may elect one of themselves, but
    // the survivor refuses their messages and stays as it is
    for i in &lost {
        c.node_mut(*i).daemon.start_again();
    }
    std::thread::sleep(std::time::Duration::from_secs(3));
    let s = &c.node(survivor).daemon;
    assert_eq!(label(s, id, "after"), "force");
    // (their agents may beat to it again: Ready, but still not managers)
    let out_of_raft = |rows: Vec<(String, String, String)>| {
        lost.iter()
            .all(|i| rows.iter().any(|r| r.0 == ids[*i] && r.2.is_empty()))
            && rows.iter().any(|r| r.0 == id && r.2 == "Leader")
    };
    assert!(nodes(s).is_some_and(out_of_raft), "{:?}", nodes(s));

    // they leave (one through each CLI) and join again as new managers
    for (n, i) in lost.iter().enumerate() {
        let d = &c.node(*i).daemon;
        let cli = if n == 0 {
            Daemon::berth
        } else {
            Daemon::docker
        };
        ok(&cli(d, &["swarm", "leave", "--force"]), "leave");
        join(c, *i, manager_token, survivor);
    }
    let s = &c.node(survivor).daemon;
    for i in &lost {
        ok(
            &s.docker(&["node", "rm", "--force", &ids[*i]]),
            "rm the old self",
        );
    }
    let m = &c.node(lost[0]).daemon;
    assert!(
        eventually(20, || nodes(m).is_some_and(|rows| {
            rows.iter()
                .filter(|r| r.2 == "Leader" || r.2 == "Reachable")
                .count()
                == 3
                && rows.iter().all(|r| !lost.iter().any(|i| r.0 == ids[*i]))
        })),
        "{:?}",
        nodes(m)
    );
    ok(
        &m.docker(&["node", "update", "--label-add", "grown=again", id]),
        "a write through a new manager",
    );
}
