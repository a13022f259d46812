//! `-t`: a pseudo-terminal made inside the container, raw streams, resize,
//! interactive sessions on a real terminal, detach keys, and kill -9.

mod common;

use std::time::Duration;

use common::{Daemon, code, raw_request, run_on_pty, stderr, stdout};

#[test]
fn run_and_exec_get_a_terminal_with_raw_output() {
    let d = Daemon::start();
    // a terminal turns "\n" into "\r\n"; the stream has no frame headers
    for o in [
        d.berth(&["run", "--rm", "-t", "busybox", "tty"]),
        d.docker(&["run", "--rm", "-t", "busybox", "tty"]),
    ] {
        assert_eq!(stdout(&o), "/dev/pts/0\r\n", "{}", stderr(&o));
    }
    d.berth(&[
        "run",
        "-d",
        "-t",
        "--name",
        "t1",
        "busybox",
        "sh",
        "-c",
        "echo started; sleep 1000",
    ]);
    let o = d.docker(&["exec", "-t", "t1", "tty"]);
    assert_eq!(stdout(&o), "/dev/pts/1\r\n", "{}", stderr(&o));
    let o = d.berth(&["exec", "t1", "tty"]);
    assert_eq!(code(&o), 1, "without -t there is no terminal");
    // the log holds what the terminal showed
    assert!(common::eventually(5, || stdout(&d.berth(&["logs", "t1"])) == "started\r\n"));
    assert_eq!(stdout(&d.docker(&["logs", "t1"])), "started\r\n");
    let o = d.berth(&["inspect", "-f", "{{.Config.Tty}}", "t1"]);
    assert_eq!(stdout(&o), "true\n");
}

#[test]
fn resize_reaches_the_container_and_survives_kill_9() {
    let mut d = Daemon::start();
    d.berth(&[
        "run",
        "-d",
        "-t",
        "--name",
        "t1",
        "busybox",
        "sh",
        "-c",
        "trap 'stty size' WINCH; while true; do sleep 0.1; done",
    ]);
    let resize = |d: &Daemon, h: u32, w: u32| {
        raw_request(
            &d.sock,
            "POST",
            &format!("/containers/t1/resize?h={h}&w={w}"),
            None,
        )
        .expect("request")
        .0
    };
    assert!(common::eventually(5, || {
        resize(&d, 40, 100);
        stdout(&d.berth(&["logs", "t1"])).contains("40 100\r\n")
    }));
    d.kill9();
    d.restart_after_kill9();
    assert!(common::eventually(5, || {
        resize(&d, 24, 81);
        stdout(&d.berth(&["logs", "t1"])).contains("24 81\r\n")
    }));
    // a container without a terminal cannot be resized
    d.berth(&["run", "-d", "--name", "plain", "busybox", "sleep", "100"]);
    let (status, _, _) =
        raw_request(&d.sock, "POST", "/containers/plain/resize?h=1&w=1", None).expect("request");
    assert_eq!(status, 400);
    let (status, _, _) =
        raw_request(&d.sock, "POST", "/containers/t1/resize?h=x&w=1", None).expect("request");
    assert_eq!(status, 400);
}

#[test]
fn interactive_sessions_on_a_real_terminal() {
    let d = Daemon::start();
    let env = [
        ("DOCKER_HOST", d.host()),
        ("DOCKER_CONFIG", d.data_root().display().to_string()),
    ];
    for program in [common::berth_bin(), "docker"] {
        let name = if program == "docker" { "d1" } else { "b1" };
        let (out, code) = run_on_pty(
            program,
            &[
                "-H",
                &d.host(),
                "run",
                "-it",
                "--name",
                name,
                "busybox",
                "sh",
            ],
            &env,
            &[b"echo hel\"\"lo\r", b"exit 3\r"],
            Duration::from_secs(20),
        );
        assert_eq!(code, 3, "{program}: {out}");
        assert!(out.contains("hello\r\n"), "{program}: {out}");
    }
    // exec -it
    d.berth(&["run", "-d", "--name", "box", "busybox", "sleep", "1000"]);
    let (out, code) = run_on_pty(
        common::berth_bin(),
        &["-H", &d.host(), "exec", "-it", "box", "sh"],
        &env,
        &[b"tty\r", b"exit 5\r"],
        Duration::from_secs(20),
    );
    assert_eq!(code, 5, "{out}");
    assert!(out.contains("/dev/pts/"), "{out}");
    let (out, code) = run_on_pty(
        "docker",
        &["-H", &d.host(), "exec", "-it", "box", "sh"],
        &env,
        &[b"echo in\"\"side\r", b"exit 6\r"],
        Duration::from_secs(20),
    );
    assert_eq!(code, 6, "{out}");
    assert!(out.contains("inside\r\n"), "{out}");
    // ctrl-p ctrl-q detaches and leaves the container running
    let (out, code) = run_on_pty(
        common::berth_bin(),
        &[
            "-H",
            &d.host(),
            "run",
            "-it",
            "--name",
            "stay",
            "busybox",
            "sh",
        ],
        &env,
        &[b"echo x\r", b"\x10\x11"],
        Duration::from_secs(20),
    );
    assert_eq!(code, 0, "{out}");
    let o = d.berth(&["inspect", "-f", "{{.State.Running}}", "stay"]);
    assert_eq!(stdout(&o), "true\n");
}

#[test]
fn interactive_terminal_needs_a_terminal() {
    let d = Daemon::start();
    for o in [
        d.berth(&["run", "-it", "busybox", "true"]),
        d.docker(&["run", "-it", "busybox", "true"]),
    ] {
        assert_eq!(code(&o), 1);
        assert!(
            stderr(&o).contains("the input device is not a TTY"),
            "{}",
            stderr(&o)
        );
    }
}
