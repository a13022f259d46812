//! Autolock and encryption at rest on a real cluster of two managers
//! (common/cluster.rs), through the docker CLI 28 and berth's CLI side by
//! side: `swarm init --autolock`, managers killed and restarted locked,
//! wrong keys refused, `swarm unlock`, `unlock-key --rotate` reaching the
//! other manager, autolock turned off, and on again (a new DEK on each
//! manager, the Raft data resealed while it runs, then a kill). One
//! cluster for all of it.

mod common;

use std::process::{Command, Output, Stdio};

use common::cluster::Cluster;
use common::{Daemon, berth_bin, code, eventually, node_id, ok, raw_request, same, stderr, stdout};

const LOCKED: &str = "Swarm is encrypted and needs to be unlocked before it can be used. Please use \"docker swarm unlock\" to unlock it.";

/// `cli` ("docker" or "berth") with `input` on its stdin (a pipe, so the
/// CLIs read one line instead of prompting).
fn with_stdin(cli: &str, d: &Daemon, args: &[&str], input: &str) -> Output {
    use std::io::Write;
    let mut c = match cli {
        "docker" => {
            let mut c = Command::new("docker");
            let cfg = d.data_root().with_file_name("docker-config");
            c.env("DOCKER_HOST", d.host())
                .env("DOCKER_CONFIG", cfg)
                .env("DOCKER_CLI_HINTS", "false");
            c
        }
        _ => {
            let mut c = Command::new(berth_bin());
            c.env("BERTH_HOST", d.host()).env_remove("DOCKER_HOST");
            c
        }
    };
    let mut child = c
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawning the CLI");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(format!("{input}\n").as_bytes())
        .expect("writing the key");
    child.wait_with_output().expect("the CLI")
}

/// Both CLIs fed the same key answer the same.
fn same_unlock(d: &Daemon, key: &str) -> Output {
    let b = with_stdin("berth", d, &["swarm", "unlock"], key);
    let k = with_stdin("docker", d, &["swarm", "unlock"], key);
    assert_eq!(
        (code(&b), stdout(&b), stderr(&b)),
        (code(&k), stdout(&k), stderr(&k)),
        "berth vs docker: unlock with {key:?}"
    );
    b
}

fn state(d: &Daemon) -> String {
    ok(
        &d.docker(&["info", "--format", "{{.Swarm.LocalNodeState}}"]),
        "info",
    )
    .trim()
    .to_string()
}

fn unlock_key(d: &Daemon) -> String {
    ok(&d.docker(&["swarm", "unlock-key", "-q"]), "unlock-key")
        .trim()
        .to_string()
}

/// The docker CLI's `printUnlockCommand`.
fn unlock_text(key: &str) -> String {
    format!(
        "To unlock a swarm manager after it restarts, run the `docker swarm unlock`\ncommand and provide the following key:\n\n    {key}\n\nRemember to store this key in a password manager, since without it you\nwill not be able to restart the manager.\n"
    )
}

fn key_file(d: &Daemon) -> String {
    std::fs::read_to_string(d.data_root().join("swarm/certificates/swarm-node.key"))
        .expect("the node key")
}

/// The cluster version whose unlock key sealed the node's key file.
fn kek_version(d: &Daemon) -> u64 {
    key_file(d)
        .lines()
        .find_map(|l| l.strip_prefix("kek-version: "))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(0)
}

/// Every byte of every file under `dir`.
fn raw_files(dir: &std::path::Path) -> Vec<(String, Vec<u8>)> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).expect("reading a directory") {
        let p = e.expect("an entry").path();
        if p.is_dir() {
            out.extend(raw_files(&p));
        } else if let Ok(bytes) = std::fs::read(&p) {
            out.push((p.display().to_string(), bytes));
        }
    }
    out
}

fn contains(haystack: &[u8], needle: &str) -> bool {
    haystack
        .windows(needle.len())
        .any(|w| w == needle.as_bytes())
}

/// Kills every node's daemon, then starts them again.
fn kill_and_restart(c: &mut Cluster, nodes: &[usize]) {
    for i in nodes {
        c.node_mut(*i).daemon.kill9();
    }
    for i in nodes {
        c.node_mut(*i).daemon.start_again();
    }
}

/// A restarted manager is locked: `info` says so, manager calls get
/// dockerd's 503.
fn assert_locked(d: &Daemon) {
    assert_eq!(state(d), "locked");
    same(
        d,
        &[
            "info",
            "--format",
            "{{.Swarm.LocalNodeState}} {{.Swarm.Error}}",
        ],
    );
    let ls = same(d, &["node", "ls"]);
    assert_eq!(
        stderr(&ls).trim(),
        format!("Error response from daemon: {LOCKED}")
    );
    let (status, _, _) = raw_request(&d.sock, "GET", "/nodes", None).expect("GET /nodes");
    assert_eq!(status, 503);
}

fn nodes_ready(d: &Daemon, n: usize) -> bool {
    let o = d.docker(&["node", "ls", "--format", "{{.Status}}"]);
    code(&o) == 0 && stdout(&o).lines().filter(|l| *l == "Ready").count() == n
}

#[test]
fn autolocked_managers_restart_locked_unlock_and_follow_rotation_and_autolock_off() {
    let mut c = Cluster::new(2);
    let (a0, a1) = (c.node(0).addr.clone(), c.node(1).addr.clone());

    // init --autolock through berth's CLI prints docker's unlock text
    let m0 = &c.node(0).daemon;
    let init = ok(
        &m0.berth(&["swarm", "init", "--autolock", "--advertise-addr", &a0]),
        "init",
    );
    let key = unlock_key(m0);
    assert!(key.starts_with("SWMKEY-1-") && key.len() == 52, "{key}");
    assert!(
        init.ends_with(&format!("instructions.\n{}", unlock_text(&key))),
        "{init}"
    );
    assert_eq!(
        stdout(&same(m0, &["swarm", "unlock-key"])),
        unlock_text(&key)
    );
    same(m0, &["swarm", "unlock-key", "-q"]);
    let id0 = node_id(m0);
    let manager_token = ok(
        &m0.docker(&["swarm", "join-token", "-q", "manager"]),
        "token",
    );
    let m1 = &c.node(1).daemon;
    let remote = format!("{a0}:2377");
    ok(
        &m1.docker(&[
            "swarm",
            "join",
            "--token",
            manager_token.trim(),
            "--advertise-addr",
            &a1,
            &remote,
        ]),
        "join",
    );
    assert!(
        eventually(20, || nodes_ready(&c.node(0).daemon, 2)),
        "m1 never ready"
    );
    assert_eq!(unlock_key(&c.node(1).daemon), key);

    // at rest: no clear key file, no join token in the Raft files
    let m0 = &c.node(0).daemon;
    assert!(
        !key_file(m0).contains("PRIVATE KEY"),
        "the node key is in clear"
    );
    for (path, bytes) in raw_files(&m0.data_root().join("swarm")) {
        assert!(
            !contains(&bytes, manager_token.trim()),
            "{path} holds the join token"
        );
    }

    // killed and restarted: locked until the right key
    kill_and_restart(&mut c, &[0]);
    let m0 = &c.node(0).daemon;
    assert_locked(m0);
    let wrong = same_unlock(m0, &format!("SWMKEY-1-{}", "A".repeat(43)));
    assert_eq!(
        stderr(&wrong).trim(),
        "Error response from daemon: swarm could not be unlocked: invalid key provided"
    );
    let (status, _, _) = raw_request(
        &m0.sock,
        "POST",
        "/swarm/unlock",
        Some(br#"{"UnlockKey":"SWMKEY-1-AAAA"}"#),
    )
    .expect("POST /swarm/unlock");
    assert_eq!(status, 401);
    let bad = same_unlock(m0, "nope");
    assert_eq!(
        stderr(&bad).trim(),
        "Error response from daemon: invalid key string"
    );
    ok(
        &with_stdin("berth", m0, &["swarm", "unlock"], &key),
        "unlock",
    );
    assert_eq!(state(m0), "active");
    assert!(
        eventually(20, || nodes_ready(m0, 2)),
        "not back in the cluster"
    );
    assert_eq!(node_id(m0), id0);
    let not_locked = same_unlock(m0, &key);
    assert_eq!(stderr(&not_locked).trim(), "Error: swarm is not locked");

    // rotation: docker's and berth's texts, the new key reaches m1
    let rotated = ok(&m0.docker(&["swarm", "unlock-key", "--rotate"]), "rotate");
    let k1 = unlock_key(m0);
    assert_eq!(
        rotated,
        format!(
            "Successfully rotated manager unlock key.\n{}",
            unlock_text(&k1)
        )
    );
    let rotated = ok(&m0.berth(&["swarm", "unlock-key", "--rotate"]), "rotate");
    let k2 = unlock_key(m0);
    assert_ne!(k1, k2);
    assert_eq!(
        rotated,
        format!(
            "Successfully rotated manager unlock key.\n{}",
            unlock_text(&k2)
        )
    );
    let m1 = &c.node(1).daemon;
    assert!(
        eventually(10, || unlock_key(m1) == k2),
        "the new key did not reach m1"
    );
    // both managers reseal their key file with the new key (its header
    // names the cluster version of the key): killed, both are locked, the
    // old keys fail and the new one opens
    let version: u64 = ok(
        &m0.docker(&["info", "--format", "{{.Swarm.Cluster.Version.Index}}"]),
        "version",
    )
    .trim()
    .parse()
    .expect("a version");
    assert!(
        eventually(10, || [0, 1]
            .iter()
            .all(|i| kek_version(&c.node(*i).daemon) >= version)),
        "the key files were not resealed"
    );
    kill_and_restart(&mut c, &[0, 1]);
    for i in [0, 1] {
        let m = &c.node(i).daemon;
        assert_locked(m);
        for old in [&key, &k1] {
            let o = with_stdin("docker", m, &["swarm", "unlock"], old);
            assert!(
                stderr(&o).contains("invalid key provided"),
                "{}",
                stderr(&o)
            );
        }
    }
    ok(
        &with_stdin("docker", &c.node(0).daemon, &["swarm", "unlock"], &k2),
        "unlock m0",
    );
    ok(
        &with_stdin("berth", &c.node(1).daemon, &["swarm", "unlock"], &k2),
        "unlock m1",
    );
    assert!(
        eventually(20, || nodes_ready(&c.node(1).daemon, 2)),
        "not back"
    );

    // autolock off: no key, and a restart comes up unlocked
    let m0 = &c.node(0).daemon;
    same(m0, &["swarm", "update", "--autolock=false"]);
    let none = same(m0, &["swarm", "unlock-key"]);
    assert_eq!(stderr(&none).trim(), "no unlock key is set");
    let cannot = same(m0, &["swarm", "unlock-key", "--rotate"]);
    assert_eq!(
        stderr(&cannot).trim(),
        "cannot rotate because autolock is not turned on"
    );
    assert!(
        eventually(10, || [0, 1].iter().all(
            |i| key_file(&c.node(*i).daemon).starts_with("-----BEGIN PRIVATE KEY-----")
        )),
        "the key files were not resealed in clear"
    );
    kill_and_restart(&mut c, &[0, 1]);
    assert_eq!(state(&c.node(0).daemon), "active");
    assert!(
        eventually(20, || nodes_ready(&c.node(0).daemon, 2)),
        "not back"
    );
    assert_eq!(node_id(&c.node(0).daemon), id0);

    // autolock on again, by berth's CLI: each manager seals its key file
    // and rotates its DEK (rewriting its Raft data while it runs); the
    // rotation done, no pending DEK is left and a killed manager opens
    // its data with the new key file
    let m1 = &c.node(1).daemon;
    ok(
        &m1.berth(&["swarm", "update", "--autolock=true"]),
        "autolock",
    );
    let k3 = unlock_key(m1);
    assert!(
        eventually(10, || [0, 1].iter().all(|i| {
            let text = key_file(&c.node(*i).daemon);
            !text.contains("PRIVATE KEY") && !text.contains("raft-dek-pending")
        })),
        "the key files were not sealed, or a rotation did not end"
    );
    kill_and_restart(&mut c, &[1]);
    let m1 = &c.node(1).daemon;
    assert_locked(m1);
    ok(
        &with_stdin("docker", m1, &["swarm", "unlock"], &k3),
        "unlock",
    );
    assert!(eventually(20, || nodes_ready(m1, 2)), "not back");
}
