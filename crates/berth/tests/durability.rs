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
    // the re-adopted container is fully manageable
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
fn graceful_stop_leaves_containers_running() {
    let mut d = Daemon::start();
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
