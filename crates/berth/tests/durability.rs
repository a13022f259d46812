//! A daemon killed with SIGKILL loses nothing: containers keep running in
//! their shims, logs keep being written, exits that happen while the daemon
//! is down are recorded, and the restarted daemon manages them all.

mod common;

use common::{Daemon, code, eventually, stderr, stdout};

#[test]
fn kill9_daemon_keeps_containers_and_logs() {
    let mut d = Daemon::start();
    d.berth(&["run", "-d", "--name", "long", "busybox", "sleep", "1000"]);
    let o = d.berth(&[
        "run",
        "-d",
        "--name",
        "ticker",
        "busybox",
        "sh",
        "-c",
        "i=0; while [ $i -lt 40 ]; do echo tick $i; i=$((i+1)); sleep 0.05; done; exit 7",
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    d.berth(&["create", "--name", "idle", "busybox", "true"]);
    std::thread::sleep(std::time::Duration::from_millis(300));
    d.restart_after_kill9();
    // every container and image is still known
    let names = stdout(&d.berth(&["ps", "-a", "--format", "{{.Names}}"]));
    for n in ["long", "ticker", "idle"] {
        assert!(
            names.lines().any(|l| l == n),
            "{n} missing after restart: {names}"
        );
    }
    assert!(stdout(&d.berth(&["images"])).contains("busybox"));
    // the container that was running is still running, the same process
    assert_eq!(
        stdout(&d.berth(&["inspect", "-f", "{{.State.Status}}", "long"])),
        "running\n"
    );
    // the one that exited while or after the daemon was down has its true exit code and every line
    assert!(eventually(20, || stdout(&d.berth(&[
        "inspect",
        "-f",
        "{{.State.Status}}",
        "ticker"
    ])) == "exited\n"));
    assert_eq!(
        stdout(&d.berth(&["inspect", "-f", "{{.State.ExitCode}}", "ticker"])),
        "7\n"
    );
    let logs = stdout(&d.berth(&["logs", "ticker"]));
    let expected: String = (0..40).map(|i| format!("tick {i}\n")).collect();
    assert_eq!(logs, expected);
    // the re-adopted container is fully manageable: exec, logs, stop
    let o = d.docker(&["exec", "long", "echo", "still here"]);
    assert_eq!(stdout(&o), "still here\n", "{}", stderr(&o));
    let o = d.docker(&["stop", "-t", "1", "long"]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    assert_eq!(
        stdout(&d.berth(&["inspect", "-f", "{{.State.ExitCode}}", "long"])),
        "137\n"
    );
    assert_eq!(code(&d.berth(&["rm", "long", "ticker", "idle"])), 0);
}

#[test]
fn exit_while_daemon_is_down_is_recorded() {
    let mut d = Daemon::start();
    d.berth(&[
        "run",
        "-d",
        "--name",
        "brief",
        "busybox",
        "sh",
        "-c",
        "sleep 1; exit 9",
    ]);
    d.kill9();
    std::thread::sleep(std::time::Duration::from_millis(1500));
    d.start_again();
    assert_eq!(
        stdout(&d.berth(&[
            "inspect",
            "-f",
            "{{.State.Status}} {{.State.ExitCode}}",
            "brief"
        ])),
        "exited 9\n"
    );
    // and the container runs again on start
    let o = d.berth(&["start", "-a", "brief"]);
    assert_eq!(code(&o), 9);
}

#[test]
fn graceful_stop_with_live_restore_leaves_containers_running() {
    let mut d = Daemon::start();
    d.stop();
    d.flags = vec!["--live-restore".into()];
    d.start_again();
    assert_eq!(
        stdout(&d.docker(&["info", "--format", "{{.LiveRestoreEnabled}}"])),
        "true\n"
    );
    d.berth(&["run", "-d", "--name", "keep", "busybox", "sleep", "1000"]);
    let st = d.stop();
    assert!(st.success(), "SIGTERM ends the daemon cleanly: {st}");
    assert!(!d.sock.exists(), "the socket is removed on shutdown");
    d.start_again();
    assert_eq!(
        stdout(&d.berth(&["inspect", "-f", "{{.State.Status}}", "keep"])),
        "running\n"
    );
}

#[test]
fn second_daemon_on_same_data_root_refuses() {
    let d = Daemon::start_bare();
    let other_sock = d.dir.path().join("other.sock");
    let out = d
        .daemon_command(&["-H", &format!("unix://{}", other_sock.display())])
        .output()
        .expect("second daemon");
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("is already using data root"), "{err}");
}

#[test]
fn socket_is_group_only() {
    use std::os::unix::fs::PermissionsExt;
    let d = Daemon::start_bare();
    let mode = std::fs::metadata(&d.sock).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o660);
}

#[test]
fn daemon_config_is_checked() {
    let d = Daemon::start_bare();
    let cfg = d.dir.path().join("bad.json");
    std::fs::write(&cfg, r#"{"data-root": "/x", "no-such-key": true}"#).unwrap();
    let out = std::process::Command::new(common::berth_bin())
        .args(["daemon", "--validate", "--config-file"])
        .arg(&cfg)
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("don't match any configuration option"));
    std::fs::write(&cfg, r#"{"data-root": "/x"}"#).unwrap();
    let out = std::process::Command::new(common::berth_bin())
        .args(["daemon", "--validate", "--data-root", "/y", "--config-file"])
        .arg(&cfg)
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr)
            .contains("specified both as a flag and in the configuration file: data-root")
    );
    let out = std::process::Command::new(common::berth_bin())
        .args(["daemon", "-H", "tcp://127.0.0.1:2375", "--data-root"])
        .arg(d.dir.path().join("tcp-root"))
        .arg("--exec-root")
        .arg(d.dir.path().join("tcp-run"))
        .arg("--config-file")
        .arg(d.dir.path().join("daemon.json"))
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("TCP needs TLS"));
}

#[test]
fn serves_several_sockets_including_a_docker_sock_path() {
    let mut d = Daemon::start();
    d.stop();
    let a = d.dir.path().join("a.sock");
    let docker_sock = d.dir.path().join("var/run/docker.sock");
    let mut child = d
        .daemon_command(&[
            "-H",
            &format!("unix://{}", a.display()),
            "-H",
            &format!("unix://{}", docker_sock.display()),
        ])
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("daemon with two sockets");
    assert!(eventually(20, || common::raw_request(
        &a, "GET", "/_ping", None
    )
    .is_ok_and(|r| r.0 == 200)));
    assert!(eventually(5, || common::raw_request(
        &docker_sock,
        "GET",
        "/_ping",
        None
    )
    .is_ok_and(|r| r.0 == 200)));
    let out = std::process::Command::new("docker")
        .args(["run", "--rm", "busybox", "echo", "via docker.sock"])
        .env("DOCKER_HOST", format!("unix://{}", docker_sock.display()))
        .env("DOCKER_CONFIG", d.dir.path())
        .output()
        .unwrap();
    assert_eq!(String::from_utf8_lossy(&out.stdout), "via docker.sock\n");
    // SAFETY: plain kill(2) on nsenter's child, the daemon
    if let Some(pid) =
        std::fs::read_to_string(format!("/proc/{}/task/{}/children", child.id(), child.id()))
            .ok()
            .and_then(|s| {
                s.split_whitespace()
                    .next()
                    .and_then(|p| p.parse::<i32>().ok())
            })
    {
        unsafe { libc::kill(pid, libc::SIGTERM) };
    }
    let _ = child.wait();
    assert!(
        !a.exists() && !docker_sock.exists(),
        "sockets removed on shutdown"
    );
}

#[test]
fn containers_live_in_cgroups_under_the_daemons_own() {
    let d = Daemon::start();
    let o = d.berth(&[
        "run",
        "-d",
        "--name",
        "cg",
        "busybox",
        "sh",
        "-c",
        "cat /proc/self/cgroup; sleep 100",
    ]);
    let id = stdout(&o).trim().to_string();
    assert!(eventually(10, || !stdout(&d.berth(&["logs", "cg"])).is_empty()));
    let own = std::fs::read_to_string("/proc/self/cgroup").unwrap();
    let parent = own
        .lines()
        .filter_map(|l| l.splitn(3, ':').nth(2))
        .max_by_key(|p| p.len())
        .unwrap()
        .to_string();
    let expected = format!("{}/berth/{id}", parent.trim_end_matches('/'));
    let logs = stdout(&d.berth(&["logs", "cg"]));
    assert!(
        logs.lines().any(|l| l.ends_with(&expected)),
        "no cgroup line ends with {expected}:\n{logs}"
    );
    // removal cleans the cgroup up
    assert_eq!(code(&d.berth(&["rm", "-f", "cg"])), 0);
    let memory_dir =
        std::path::Path::new("/sys/fs/cgroup/memory").join(expected.trim_start_matches('/'));
    assert!(
        eventually(10, || !memory_dir.exists()),
        "{} left behind",
        memory_dir.display()
    );
}

#[test]
fn restart_policies_at_daemon_start() {
    let mut d = Daemon::start();
    d.berth(&[
        "run",
        "-d",
        "--name",
        "alw",
        "--restart",
        "always",
        "busybox",
        "sleep",
        "1000",
    ]);
    d.berth(&[
        "run",
        "-d",
        "--name",
        "unl",
        "--restart",
        "unless-stopped",
        "busybox",
        "sleep",
        "1000",
    ]);
    assert_eq!(code(&d.berth(&["stop", "-t", "0", "alw", "unl"])), 0);
    d.restart_after_kill9();
    let status = |n: &str| stdout(&d.berth(&["inspect", "-f", "{{.State.Status}}", n]));
    // Docker's rules: `always` starts again with the daemon, `unless-stopped` stays stopped
    assert!(
        eventually(20, || status("alw") == "running\n"),
        "{}",
        status("alw")
    );
    assert_eq!(status("unl"), "exited\n");
}

#[test]
fn graceful_stop_stops_containers_by_default() {
    let mut d = Daemon::start();
    assert_eq!(
        stdout(&d.docker(&["info", "--format", "{{.LiveRestoreEnabled}}"])),
        "false\n"
    );
    d.berth(&[
        "run",
        "-d",
        "--name",
        "tidy",
        "busybox",
        "sh",
        "-c",
        "trap 'exit 0' TERM; sleep 1000 & wait",
    ]);
    d.berth(&[
        "run",
        "-d",
        "--name",
        "back",
        "--restart",
        "always",
        "busybox",
        "sh",
        "-c",
        "trap 'exit 0' TERM; sleep 1000 & wait",
    ]);
    d.berth(&[
        "run",
        "-d",
        "--name",
        "unl",
        "--restart",
        "unless-stopped",
        "busybox",
        "sleep",
        "1000",
    ]);
    assert!(d.stop().success());
    d.start_again();
    // as in Docker: stopped with the daemon, with their stop signal (exit 0
    // from the trap) or SIGKILL after the timeout; restart policies bring
    // `always` and `unless-stopped` back, since the daemon stopped them
    assert_eq!(
        stdout(&d.berth(&[
            "inspect",
            "-f",
            "{{.State.Status}} {{.State.ExitCode}}",
            "tidy"
        ])),
        "exited 0\n"
    );
    let status = |n: &str| stdout(&d.berth(&["inspect", "-f", "{{.State.Status}}", n]));
    assert!(
        eventually(20, || status("back") == "running\n"),
        "{}",
        status("back")
    );
    assert!(
        eventually(20, || status("unl") == "running\n"),
        "{}",
        status("unl")
    );
}

/// After a crash, a container is running with a live process, or can be
/// started, or never existed; and it can always be removed.
fn assert_startable_or_running(d: &Daemon, name: &str, when: &str) {
    let o = d.berth(&["inspect", "--format", "{{.State.Status}}", name]);
    if code(&o) != 0 {
        assert!(
            stderr(&o).contains("No such"),
            "{when}: {name}: {}",
            stderr(&o)
        );
        return;
    }
    let status = stdout(&o).trim().to_string();
    if status != "running" {
        let o = d.berth(&["start", name]);
        assert_eq!(
            code(&o),
            0,
            "{when}: starting a {status} {name}: {}",
            stderr(&o)
        );
    }
    // the container's own process, not a runtime's init waiting to start it
    let o = d.berth(&["exec", name, "cat", "/proc/1/cmdline"]);
    assert_eq!(code(&o), 0, "{when}: {name} ({status}): {}", stderr(&o));
    assert!(
        stdout(&o).starts_with("sleep\u{0}1000"),
        "{when}: {name} ({status}) runs {:?}",
        stdout(&o)
    );
    let o = d.berth(&["rm", "-f", name]);
    assert_eq!(code(&o), 0, "{when}: removing {name}: {}", stderr(&o));
}

#[test]
fn kill9_at_any_instant_of_run_leaves_containers_startable() {
    let mut d = Daemon::start();
    // exact instants: the shim is still creating the container; the shim
    // made it but was not told to start it; it started but the record
    // still says created
    for point in [
        "start-during-shim-create",
        "start-after-shim-spawn",
        "start-before-record",
    ] {
        d.stop();
        d.env = vec![("BERTH_CRASH_AT".into(), point.into())];
        d.start_again();
        let o = d.berth(&["run", "-d", "--name", point, "busybox", "sleep", "1000"]);
        assert_ne!(code(&o), 0, "{point}: the daemon did not crash");
        d.env.clear();
        d.restart_after_kill9();
        assert_startable_or_running(&d, point, point);
    }
    // a start of an exited container, recorded neither: the record says
    // exited while its process runs, and is taken back as running
    let o = d.berth(&["run", "-d", "--name", "again", "busybox", "sleep", "1000"]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    assert_eq!(code(&d.berth(&["stop", "-t", "0", "again"])), 0);
    // and a start whose container exits while the daemon is down: its
    // exit is recorded, not lost behind "created"
    let o = d.berth(&["create", "--name", "quick", "busybox", "sh", "-c", "exit 3"]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    let crash_starting = |d: &mut Daemon, name: &str| {
        d.stop();
        d.env = vec![("BERTH_CRASH_AT".into(), "start-before-record".into())];
        d.start_again();
        assert_ne!(code(&d.berth(&["start", name])), 0, "{name}: no crash");
        d.env.clear();
        std::thread::sleep(std::time::Duration::from_millis(300));
        d.restart_after_kill9();
    };
    crash_starting(&mut d, "again");
    let o = d.berth(&["inspect", "--format", "{{.State.Status}}", "again"]);
    assert_eq!(stdout(&o), "running\n", "{}", stderr(&o));
    assert_startable_or_running(&d, "again", "a restart cut short");
    crash_starting(&mut d, "quick");
    let o = d.berth(&[
        "inspect",
        "--format",
        "{{.State.Status}} {{.State.ExitCode}}",
        "quick",
    ]);
    assert_eq!(stdout(&o), "exited 3\n", "{}", stderr(&o));
    // and timed kills across the whole request
    for (i, delay) in [0u64, 10, 20, 30, 45, 60, 80, 110].iter().enumerate() {
        let name = format!("timed{i}");
        let mut run = std::process::Command::new(common::berth_bin())
            .args(["run", "-d", "--name", &name, "busybox", "sleep", "1000"])
            .env("BERTH_HOST", d.host())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("berth run");
        std::thread::sleep(std::time::Duration::from_millis(*delay));
        d.restart_after_kill9();
        let _ = run.wait();
        assert_startable_or_running(&d, &name, &format!("kill after {delay} ms"));
    }
    assert!(d.log().contains("crashing at start-after-shim-spawn"));
    assert!(d.log().contains("crashing at start-during-shim-create"));
}

/// The build's step containers in `ps -a`, and shims that hold one.
fn build_leftovers(d: &Daemon) -> (String, String) {
    let ps = stdout(&d.berth(&["ps", "-aq"]));
    let shims = stdout(&d.sh("pgrep -a berth-shim || true"));
    (ps, shims)
}

#[test]
fn kill9_during_build_leaves_no_step_containers() {
    let mut d = Daemon::start();
    let ctx = d.dir.path().join("ctx");
    std::fs::create_dir_all(&ctx).expect("mkdir");
    std::fs::write(ctx.join("Dockerfile"), "FROM busybox\nRUN sleep 30\n").expect("Dockerfile");
    let ctx_arg = ctx.display().to_string();
    // at an exact instant: the step container exists, nothing ran yet
    d.stop();
    d.env = vec![("BERTH_CRASH_AT".into(), "build-step-created".into())];
    d.start_again();
    let o = d.berth(&["build", "-q", &ctx_arg]);
    assert_ne!(code(&o), 0, "the daemon did not crash");
    d.env.clear();
    d.restart_after_kill9();
    assert!(
        eventually(15, || build_leftovers(&d) == (String::new(), String::new())),
        "left after a kill before RUN: {:?}",
        build_leftovers(&d)
    );
    // while a step runs
    let mut build = std::process::Command::new(common::berth_bin())
        .args(["build", "-q", &ctx_arg])
        .env("BERTH_HOST", d.host())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("berth build");
    assert!(
        eventually(20, || !stdout(&d.sh("pgrep -f 'slee[p] 30' || true"))
            .is_empty()),
        "the RUN step did not start"
    );
    d.restart_after_kill9();
    let _ = build.wait();
    assert!(
        eventually(15, || build_leftovers(&d) == (String::new(), String::new())),
        "left after a kill during RUN: {:?}",
        build_leftovers(&d)
    );
    assert!(
        d.log()
            .contains("removing the step container of an interrupted build")
    );
    // and builds work afterwards
    std::fs::write(ctx.join("Dockerfile"), "FROM busybox\nRUN echo ok > /ok\n")
        .expect("Dockerfile");
    let o = d.berth(&["build", "-t", "after:1", &ctx_arg]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
}
