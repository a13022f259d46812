//! The event stream: lifecycle events through both CLIs, filters, replay
//! with --since/--until, and a live subscriber.

mod common;

use std::io::BufRead;
use std::process::{Command, Stdio};

use common::{Daemon, code, raw_request, stderr, stdout};

fn now() -> String {
    let t = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock");
    format!("{}.{:09}", t.as_secs(), t.subsec_nanos())
}

#[test]
fn lifecycle_events_replay_with_since_and_until() {
    let d = Daemon::start();
    let t0 = now();
    d.berth(&[
        "run",
        "--name",
        "ev1",
        "-l",
        "team=blue",
        "busybox",
        "sh",
        "-c",
        "exit 3",
    ]);
    d.berth(&["rm", "ev1"]);
    d.berth(&["volume", "create", "evvol"]);
    d.berth(&["volume", "rm", "evvol"]);
    let t1 = now();
    let o = d.berth(&[
        "events",
        "--since",
        &t0,
        "--until",
        &t1,
        "--filter",
        "type=container",
    ]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    let actions: Vec<String> = stdout(&o)
        .lines()
        .filter_map(|l| l.split_whitespace().nth(2).map(String::from))
        .collect();
    assert_eq!(
        actions,
        ["create", "attach", "start", "die", "destroy"],
        "{}",
        stdout(&o)
    );
    let first = stdout(&o).lines().next().unwrap_or_default().to_string();
    assert!(first.contains(" container create "), "{first}");
    assert!(
        first.contains("(image=busybox, name=ev1, team=blue)"),
        "{first}"
    );
    // the docker CLI reads the same stream; filters and templates apply
    let o = d.docker(&[
        "events",
        "--since",
        &t0,
        "--until",
        &t1,
        "--filter",
        "event=die",
        "--format",
        "{{.Actor.Attributes.name}} {{.Actor.Attributes.exitCode}}",
    ]);
    assert_eq!(stdout(&o), "ev1 3\n", "{}", stderr(&o));
    let o = d.docker(&[
        "events",
        "--since",
        &t0,
        "--until",
        &t1,
        "--filter",
        "type=volume",
        "--format",
        "{{.Action}} {{.Actor.ID}}",
    ]);
    assert_eq!(
        stdout(&o),
        "create evvol\ndestroy evvol\n",
        "{}",
        stderr(&o)
    );
    let o = d.berth(&[
        "events",
        "--since",
        &t0,
        "--until",
        &t1,
        "--filter",
        "container=nosuch",
    ]);
    assert_eq!(stdout(&o), "");
    // exec events carry the exec id, and exec_die its exit code
    let t2 = now();
    d.berth(&["run", "-d", "--name", "ex", "busybox", "sleep", "100"]);
    d.berth(&["exec", "ex", "sh", "-c", "exit 4"]);
    let t3 = now();
    let o = d.docker(&[
        "events",
        "--since",
        &t2,
        "--until",
        &t3,
        "--filter",
        "event=exec_die",
        "--format",
        "{{.Action}} {{.Actor.Attributes.exitCode}}",
    ]);
    assert_eq!(stdout(&o), "exec_die 4\n", "{}", stderr(&o));
    let o = d.berth(&[
        "events",
        "--since",
        &t2,
        "--until",
        &t3,
        "--filter",
        "event=exec_start",
        "--format",
        "{{.Action}}",
    ]);
    assert_eq!(stdout(&o), "exec_start: sh -c exit 4\n");
    let (status, _, _) = raw_request(
        &d.sock,
        "GET",
        "/events?filters=%7B%22bogus%22%3A%5B%22x%22%5D%7D",
        None,
    )
    .expect("request");
    assert_eq!(status, 400);
    // bad times are refused, never a panic (a multibyte fraction included)
    for q in [
        "since=1.%C3%A9%C3%A9%C3%A9%C3%A9%C3%A9",
        "until=yesterday",
        "since=1.",
    ] {
        let (status, _, _) =
            raw_request(&d.sock, "GET", &format!("/events?{q}"), None).expect("request");
        assert_eq!(status, 400, "{q}");
    }
}

#[test]
fn live_subscribers_see_events_as_they_happen() {
    let d = Daemon::start();
    // --since: whatever happens between the spawn and the subscription is
    // replayed, so the order below holds however slow the start is
    let t0 = now();
    let mut sub = Command::new(common::berth_bin())
        .args([
            "-H",
            &d.host(),
            "events",
            "--since",
            &t0,
            "--filter",
            "event=start",
            "--filter",
            "event=pause",
            "--format",
            "{{.Action}} {{.Actor.Attributes.name}}",
        ])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .spawn()
        .expect("events");
    let out = sub.stdout.take().expect("stdout");
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for l in std::io::BufReader::new(out).lines().map_while(Result::ok) {
            if tx.send(l).is_err() {
                break;
            }
        }
    });
    d.berth(&["run", "-d", "--name", "live", "busybox", "sleep", "100"]);
    d.berth(&["pause", "live"]);
    let timeout = std::time::Duration::from_secs(10);
    let first = rx.recv_timeout(timeout);
    let second = rx.recv_timeout(timeout);
    let _ = sub.kill();
    let _ = sub.wait();
    assert_eq!(first.ok().as_deref(), Some("start live"));
    assert_eq!(second.ok().as_deref(), Some("pause live"));
}
