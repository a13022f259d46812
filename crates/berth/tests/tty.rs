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
    // the kernel signals only a change of size, and the shell may not have
    // set its trap yet at the first one: change it each time
    assert!(common::eventually(10, || {
        resize(&d, 39, 100);
        resize(&d, 40, 100);
        stdout(&d.berth(&["logs", "t1"])).contains("40 100\r\n")
    }));
    d.kill9();
    d.restart_after_kill9();
    assert!(common::eventually(10, || {
        resize(&d, 23, 81);
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
    // --detach-keys replaces the sequence; ctrl-p alone is then plain input
    for (program, name) in [(common::berth_bin(), "keys1"), ("docker", "keys2")] {
        let (out, code) = run_on_pty(
            program,
            &[
                "-H",
                &d.host(),
                "run",
                "-it",
                "--detach-keys",
                "ctrl-a,x",
                "--name",
                name,
                "busybox",
                "sh",
                "-c",
                "head -c 1 | od -c; exec sleep 100",
            ],
            &env,
            &[b"\x10\r", b"\x01x"],
            Duration::from_secs(20),
        );
        assert_eq!(code, 0, "{program}: {out}");
        assert!(
            out.contains("020"),
            "{program}: ctrl-p reached the shell: {out}"
        );
        let o = d.berth(&["inspect", "-f", "{{.State.Running}}", name]);
        assert_eq!(stdout(&o), "true\n", "{program}");
    }
    let o = d.berth(&["attach", "--detach-keys", "ctrl-1", "stay"]);
    assert_eq!(common::code(&o), 1);
    assert!(stderr(&o).contains("Invalid detach keys"), "{}", stderr(&o));
}

/// Resizing the user's terminal (SIGWINCH to the CLI) resizes the
/// container's, for both CLIs.
#[test]
fn sigwinch_resizes_the_container_terminal() {
    let d = Daemon::start();
    let env = [("TERM", "xterm".to_string())];
    for program in [common::berth_bin(), "docker"] {
        let (out, code) = run_on_pty(
            program,
            &["-H", &d.host(), "run", "-it", "--rm", "busybox", "sh"],
            &env,
            &[
                &common::winsize(33, 77),
                b"stty size\r",
                &common::winsize(41, 99),
                b"stty size\r",
                b"exit\r",
            ],
            Duration::from_secs(20),
        );
        assert_eq!(code, 0, "{program}: {out}");
        assert!(out.contains("33 77\r\n"), "{program}: {out}");
        assert!(out.contains("41 99\r\n"), "{program}: {out}");
    }
}

/// Clients that send the keys raw (no escape scanning of their own) are
/// detached by the daemon, as dockerd does.
#[test]
fn daemon_detaches_raw_api_clients() {
    use std::io::{Read, Write};
    let d = Daemon::start();
    d.berth(&["run", "-dit", "--name", "tt", "busybox", "sh"]);
    let mut s = std::os::unix::net::UnixStream::connect(&d.sock).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
    s.write_all(
        b"POST /containers/tt/attach?stream=1&stdin=1&stdout=1&detachKeys=ctrl-a,x HTTP/1.1\r\n\
          Host: berth\r\nConnection: Upgrade\r\nUpgrade: tcp\r\n\r\n",
    )
    .unwrap();
    let mut seen = Vec::new();
    let mut buf = [0u8; 4096];
    while !String::from_utf8_lossy(&seen).contains("\r\n\r\n") {
        let n = s.read(&mut buf).unwrap();
        assert!(n > 0, "closed before the upgrade");
        seen.extend_from_slice(&buf[..n]);
    }
    assert!(
        String::from_utf8_lossy(&seen).starts_with("HTTP/1.1 101"),
        "{}",
        String::from_utf8_lossy(&seen)
    );
    // input reaches the shell (ctrl-a alone is plain input)...
    s.write_all(b"echo mark$((6*7))\x01\r").unwrap();
    let mut out = Vec::new();
    while !String::from_utf8_lossy(&out).contains("mark42") {
        let n = s.read(&mut buf).unwrap();
        assert!(n > 0, "{:?}", String::from_utf8_lossy(&out));
        out.extend_from_slice(&buf[..n]);
    }
    // ...until the keys: then the daemon ends the session
    s.write_all(b"\x01x").unwrap();
    loop {
        match s.read(&mut buf) {
            Ok(0) => break,
            Ok(_) => {}
            Err(e) => panic!("no EOF after the detach keys: {e}"),
        }
    }
    let o = d.berth(&["inspect", "-f", "{{.State.Running}}", "tt"]);
    assert_eq!(stdout(&o), "true\n");
    let (status, _, body) = raw_request(
        &d.sock,
        "POST",
        "/containers/tt/attach?stream=1&stdin=1&detachKeys=ctrl-",
        None,
    )
    .unwrap();
    assert_eq!(status, 400, "{}", String::from_utf8_lossy(&body));
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
