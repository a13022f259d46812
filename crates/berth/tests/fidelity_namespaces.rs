//! `--pid`, `--ipc` and `--uts` as dockerd acts on them (issue #18): the
//! host's namespaces, another container's, a shareable /dev/shm, none,
//! and dockerd's errors when the donor is missing, stopped or private.

mod common;

use common::{Daemon, code, raw_request, stderr, stdout};

fn message(body: &[u8]) -> String {
    let v: serde_json::Value = serde_json::from_slice(body).expect("JSON error body");
    v["message"].as_str().unwrap_or_default().to_string()
}

fn run(d: &Daemon, args: &[&str]) -> String {
    let o = d.docker(args);
    assert_eq!(code(&o), 0, "{args:?}: {}", stderr(&o));
    stdout(&o).trim().to_string()
}

fn full_id(d: &Daemon, name: &str) -> String {
    run(d, &["inspect", "-f", "{{.Id}}", name])
}

/// The namespace link of `kind` that the daemon's processes are in.
fn daemon_ns(d: &Daemon, kind: &str) -> String {
    std::fs::read_link(format!("/proc/{}/ns/{kind}", d.ns_pid))
        .expect("namespace link")
        .display()
        .to_string()
}

fn create_raw(d: &Daemon, name: &str, host_config: serde_json::Value) -> (u16, String) {
    let body = serde_json::json!({"Image": "busybox", "Cmd": ["true"], "HostConfig": host_config});
    let (status, _, reply) = raw_request(
        &d.sock,
        "POST",
        &format!("/containers/create?name={name}"),
        Some(body.to_string().as_bytes()),
    )
    .expect("create");
    (status, message(&reply))
}

#[test]
fn pid_modes_share_the_hosts_or_another_containers_namespace() {
    let d = Daemon::start();
    run(
        &d,
        &["run", "-d", "--name", "top", "busybox", "sleep", "600"],
    );
    let top = full_id(&d, "top");
    // another container's namespace: its processes are visible, and the
    // mode is stored by ID as dockerd stores it
    let ps = run(
        &d,
        &[
            "run",
            "--name",
            "peer",
            "--pid",
            "container:top",
            "busybox",
            "ps",
            "-o",
            "comm",
        ],
    );
    assert!(ps.lines().any(|l| l == "sleep"), "{ps}");
    let mode = run(&d, &["inspect", "-f", "{{.HostConfig.PidMode}}", "peer"]);
    assert_eq!(mode, format!("container:{top}"));
    let top_ns = run(&d, &["exec", "top", "readlink", "/proc/self/ns/pid"]);
    let ns = run(
        &d,
        &[
            "run",
            "--rm",
            "--pid",
            "container:top",
            "busybox",
            "readlink",
            "/proc/self/ns/pid",
        ],
    );
    assert_eq!(ns, top_ns);
    // its own namespace by default: only itself
    let own = run(&d, &["run", "--rm", "busybox", "ps", "-o", "pid,comm"]);
    assert_eq!(
        own.lines().skip(1).collect::<Vec<_>>(),
        ["    1 ps"],
        "{own}"
    );
    // the host's: no --init is added there, as in dockerd
    let ns = run(
        &d,
        &[
            "run",
            "--rm",
            "--init",
            "--pid",
            "host",
            "busybox",
            "readlink",
            "/proc/self/ns/pid",
        ],
    );
    assert_eq!(ns, daemon_ns(&d, "pid"));

    // a container sharing another's namespace takes its children with it
    // when its init exits (runc's delete kills what is left in its cgroup):
    // none outlives it in the donor's namespace, holding its output open
    run(
        &d,
        &[
            "run",
            "-d",
            "--name",
            "parent",
            "--pid",
            "container:top",
            "busybox",
            "sh",
            "-c",
            "trap 'exit 0' TERM; sleep 777 & wait",
        ],
    );
    let seen = |what: &str| run(&d, &["exec", "top", "ps", "-o", "args"]).contains(what);
    let started = (0..50).any(|_| {
        std::thread::sleep(std::time::Duration::from_millis(50));
        seen("sleep 777")
    });
    assert!(started, "the child runs in the donor's namespace");
    let t = std::time::Instant::now();
    run(&d, &["stop", "-t", "0", "parent"]);
    assert!(
        t.elapsed() < std::time::Duration::from_secs(4),
        "the stop waited {:?} on a child holding the output",
        t.elapsed()
    );
    assert!(!seen("sleep 777"), "the child went with its container");

    // a stopped donor fails the start with dockerd's system error
    run(&d, &["stop", "-t", "0", "top"]);
    let o = d.docker(&["start", "peer"]);
    assert_ne!(code(&o), 0);
    let want = format!("failed to join PID namespace: container {top} is not running");
    assert!(stderr(&o).contains(&want), "{}", stderr(&o));
    let (status, _, body) =
        raw_request(&d.sock, "POST", "/containers/peer/start", None).expect("start");
    assert_eq!((status, message(&body)), (500, want));

    // create: a missing donor is 404, a malformed mode 400
    let (status, msg) = create_raw(&d, "x1", serde_json::json!({"PidMode": "container:nosuch"}));
    assert_eq!((status, msg.as_str()), (404, "No such container: nosuch"));
    let (status, msg) = create_raw(&d, "x2", serde_json::json!({"PidMode": "bogus"}));
    assert_eq!((status, msg.as_str()), (400, "invalid PID mode: bogus"));
}

#[test]
fn ipc_modes_share_dev_shm_only_from_a_shareable_donor() {
    let d = Daemon::start();
    run(
        &d,
        &[
            "run",
            "-d",
            "--name",
            "donor",
            "--ipc",
            "shareable",
            "busybox",
            "sh",
            "-c",
            "echo hi > /dev/shm/x; sleep 600",
        ],
    );
    let donor = full_id(&d, "donor");
    assert!(common::eventually(5, || {
        code(&d.docker(&["exec", "donor", "test", "-e", "/dev/shm/x"])) == 0
    }));
    let got = run(
        &d,
        &[
            "run",
            "--rm",
            "--ipc",
            "container:donor",
            "busybox",
            "cat",
            "/dev/shm/x",
        ],
    );
    assert_eq!(got, "hi");
    let donor_ns = run(&d, &["exec", "donor", "readlink", "/proc/self/ns/ipc"]);
    let ns = run(
        &d,
        &[
            "run",
            "--rm",
            "--ipc",
            "container:donor",
            "busybox",
            "readlink",
            "/proc/self/ns/ipc",
        ],
    );
    assert_eq!(ns, donor_ns);
    // a private container keeps its /dev/shm to itself
    run(
        &d,
        &["run", "-d", "--name", "private", "busybox", "sleep", "600"],
    );
    let private = full_id(&d, "private");
    let o = d.docker(&[
        "run",
        "--rm",
        "--ipc",
        "container:private",
        "busybox",
        "true",
    ]);
    let want = format!(
        "failed to join IPC namespace: container {private}: non-shareable IPC (hint: use IpcMode:shareable for the donor container)"
    );
    assert!(stderr(&o).contains(&want), "{}", stderr(&o));
    // the host's namespace and /dev/shm; none: no /dev/shm at all
    let ns = run(
        &d,
        &[
            "run",
            "--rm",
            "--ipc",
            "host",
            "busybox",
            "readlink",
            "/proc/self/ns/ipc",
        ],
    );
    assert_eq!(ns, daemon_ns(&d, "ipc"));
    let o = d.docker(&[
        "run",
        "--rm",
        "--ipc",
        "none",
        "busybox",
        "grep",
        "-c",
        " /dev/shm ",
        "/proc/mounts",
    ]);
    assert_eq!(stdout(&o).trim(), "0", "{}", stderr(&o));

    // the donor's tmpfs goes with it; a stopped donor is a conflict
    run(
        &d,
        &[
            "create",
            "--name",
            "late",
            "--ipc",
            "container:donor",
            "busybox",
            "true",
        ],
    );
    run(&d, &["stop", "-t", "0", "donor"]);
    let mounts = std::fs::read_to_string(format!(
        "/proc/{}/mountinfo",
        d.daemon_pid().expect("daemon")
    ))
    .expect("mountinfo");
    assert!(!mounts.contains(&format!("{donor}/shm")), "{mounts}");
    let (status, _, body) =
        raw_request(&d.sock, "POST", "/containers/late/start", None).expect("start");
    assert_eq!(
        (status, message(&body)),
        (
            409,
            format!("failed to join IPC namespace: container {donor} is not running")
        )
    );
    let (status, msg) = create_raw(&d, "x3", serde_json::json!({"IpcMode": "bogus"}));
    assert_eq!((status, msg.as_str()), (400, "invalid IPC mode: bogus"));
}

#[test]
fn uts_host_keeps_the_hosts_hostname() {
    let d = Daemon::start();
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname").expect("hostname");
    let got = run(&d, &["run", "--rm", "--uts", "host", "busybox", "hostname"]);
    assert_eq!(got, host.trim());
    let ns = run(
        &d,
        &[
            "run",
            "--rm",
            "--uts",
            "host",
            "busybox",
            "readlink",
            "/proc/self/ns/uts",
        ],
    );
    assert_eq!(ns, daemon_ns(&d, "uts"));
    let body = serde_json::json!({"Image": "busybox", "Hostname": "box", "HostConfig": {"UTSMode": "host"}});
    let (status, _, reply) = raw_request(
        &d.sock,
        "POST",
        "/containers/create",
        Some(body.to_string().as_bytes()),
    )
    .expect("create");
    assert_eq!(
        (status, message(&reply).as_str()),
        (400, "conflicting options: hostname and the UTS mode")
    );
}
