//! `commit`: the writable layer (additions, changes, deletions) becomes an
//! image layer; config, changes, message and author are kept.

mod common;

use common::{Daemon, code, stderr, stdout};

#[test]
fn commit_makes_a_runnable_image_of_the_changes() {
    let mut d = Daemon::start();
    d.berth(&[
        "run",
        "--name",
        "src",
        "-e",
        "GREETING=hi",
        "busybox",
        "sh",
        "-c",
        "echo made > /made; rm /etc/passwd; mkdir -p /opaque && touch /opaque/keep",
    ]);
    let o = d.docker(&[
        "commit",
        "-m",
        "my change",
        "-a",
        "me <me@example.com>",
        "-c",
        "CMD [\"cat\", \"/made\"]",
        "-c",
        "LABEL stage=committed",
        "src",
        "snap:v1",
    ]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    let id = stdout(&o).trim().to_string();
    assert!(id.starts_with("sha256:"), "{id}");
    // the new image runs the new CMD on the new content
    let o = d.berth(&["run", "--rm", "snap:v1"]);
    assert_eq!(stdout(&o), "made\n", "{}", stderr(&o));
    // deletions are carried as whiteouts
    let o = d.berth(&["run", "--rm", "snap:v1", "ls", "/etc/passwd"]);
    assert_ne!(code(&o), 0, "a deleted file came back");
    // the container's env and the changes are in the config
    let o = d.berth(&[
        "image",
        "inspect",
        "-f",
        "{{json .Config.Env}} {{.Config.Labels.stage}} {{.Comment}} {{.Author}}",
        "snap:v1",
    ]);
    let out = stdout(&o);
    assert!(out.contains("GREETING=hi"), "{out}");
    assert!(
        out.contains("committed my change me <me@example.com>"),
        "{out}"
    );
    let o = d.berth(&[
        "image",
        "inspect",
        "-f",
        "{{json .RootFS.Layers}}",
        "snap:v1",
    ]);
    let layers: Vec<String> = serde_json::from_str(&stdout(&o)).expect("json");
    assert_eq!(layers.len(), 2);
    // a running container can be committed (paused meanwhile) too
    d.berth(&[
        "run",
        "-d",
        "--name",
        "live",
        "busybox",
        "sh",
        "-c",
        "echo on > /state; sleep 1000",
    ]);
    assert!(common::eventually(5, || code(
        &d.berth(&["exec", "live", "test", "-f", "/state"])
    ) == 0));
    let o = d.berth(&["commit", "live", "live-snap"]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    let o = d.berth(&["inspect", "-f", "{{.State.Status}}", "live"]);
    assert_eq!(stdout(&o), "running\n");
    let o = d.berth(&["run", "--rm", "live-snap", "cat", "/state"]);
    assert_eq!(stdout(&o), "on\n");
    // committed images survive a daemon crash
    d.kill9();
    d.restart_after_kill9();
    let o = d.berth(&["run", "--rm", "snap:v1"]);
    assert_eq!(stdout(&o), "made\n", "{}", stderr(&o));
    let o = d.berth(&["commit", "nosuch"]);
    assert!(stderr(&o).contains("No such container"), "{}", stderr(&o));
    let o = d.berth(&["commit", "-c", "BOGUS x", "src"]);
    assert_ne!(code(&o), 0);
}
