//! The engine-skeleton scenarios through berth's own CLI and, unchanged,
//! through the docker CLI 28 on PATH.

mod common;

use common::{Daemon, code, eventually, stderr, stdout};

#[test]
fn run_prints_and_exits_zero_through_both_clis() {
    let d = Daemon::start();
    let o = d.berth(&["run", "--rm", "busybox", "echo", "hello"]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    assert_eq!(stdout(&o), "hello\n");
    let o = d.docker(&["run", "--rm", "busybox", "echo", "hello"]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    assert_eq!(stdout(&o), "hello\n");
    // --rm really removed both
    assert_eq!(stdout(&d.berth(&["ps", "-aq"])), "");
}

#[test]
fn exit_codes_pass_through() {
    let d = Daemon::start();
    assert_eq!(
        code(&d.berth(&["run", "--rm", "busybox", "sh", "-c", "exit 3"])),
        3
    );
    assert_eq!(
        code(&d.docker(&["run", "--rm", "busybox", "sh", "-c", "exit 3"])),
        3
    );
    // killed by a signal: 128 + signal number
    d.berth(&["run", "-d", "--name", "victim", "busybox", "sleep", "100"]);
    assert_eq!(stdout(&d.berth(&["kill", "victim"])), "victim\n");
    assert_eq!(stdout(&d.berth(&["wait", "victim"])), "137\n");
    d.berth(&["run", "-d", "--name", "victim2", "busybox", "sleep", "100"]);
    assert_eq!(code(&d.docker(&["kill", "victim2"])), 0);
    assert_eq!(stdout(&d.docker(&["wait", "victim2"])), "137\n");
    // a signal with a handler in the container ends it with that handler's code
    d.berth(&[
        "run",
        "-d",
        "--name",
        "victim3",
        "busybox",
        "sh",
        "-c",
        "trap 'exit 143' TERM; while true; do sleep 0.1; done",
    ]);
    assert_eq!(code(&d.docker(&["kill", "-s", "TERM", "victim3"])), 0);
    assert_eq!(stdout(&d.docker(&["wait", "victim3"])), "143\n");
}

#[test]
fn stdout_and_stderr_stay_apart() {
    let d = Daemon::start();
    for o in [
        d.berth(&[
            "run",
            "--name",
            "two",
            "busybox",
            "sh",
            "-c",
            "echo out; echo err >&2",
        ]),
        d.docker(&[
            "run",
            "--rm",
            "busybox",
            "sh",
            "-c",
            "echo out; echo err >&2",
        ]),
    ] {
        assert_eq!(code(&o), 0);
        assert_eq!(stdout(&o), "out\n");
        assert_eq!(stderr(&o), "err\n");
    }
    let logs = d.berth(&["logs", "two"]);
    assert_eq!(stdout(&logs), "out\n");
    assert_eq!(stderr(&logs), "err\n");
    let logs = d.docker(&["logs", "two"]);
    assert_eq!(stdout(&logs), "out\n");
    assert_eq!(stderr(&logs), "err\n");
    let tail = d.berth(&["logs", "--tail", "1", "-t", "two"]);
    assert!(
        stderr(&tail).is_empty() || stdout(&tail).is_empty(),
        "tail 1 keeps one line"
    );
}

#[test]
fn detached_container_shows_in_ps_with_docker_columns() {
    let d = Daemon::start();
    let o = d.berth(&["run", "-d", "--name", "web", "busybox", "sleep", "1000"]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    let id = stdout(&o).trim().to_string();
    assert_eq!(id.len(), 64, "run -d prints the full id");
    for ps in [d.berth(&["ps"]), d.docker(&["ps"])] {
        let out = stdout(&ps);
        let mut lines = out.lines();
        assert_eq!(
            lines.next().unwrap().split_whitespace().collect::<Vec<_>>(),
            [
                "CONTAINER",
                "ID",
                "IMAGE",
                "COMMAND",
                "CREATED",
                "STATUS",
                "PORTS",
                "NAMES"
            ]
        );
        let row = lines.next().expect("one container");
        assert!(row.starts_with(&id[..12]), "{row}");
        assert!(row.contains("busybox"), "{row}");
        assert!(row.contains("\"sleep 1000\""), "{row}");
        assert!(row.contains("Up "), "{row}");
        assert!(row.ends_with("web"), "{row}");
    }
    // berth's table is byte-identical to docker's for the same objects; the
    // two calls may straddle a second ("Less than a second ago" against
    // "1 second ago" changes the column widths), so a few tries are allowed
    let mut pair = (String::new(), String::from("-"));
    for _ in 0..5 {
        let a = stdout(&d.berth(&["ps", "-a", "--no-trunc"]));
        let b = stdout(&d.docker(&["ps", "-a", "--no-trunc"]));
        pair = (normalize_times(&a), normalize_times(&b));
        if pair.0 == pair.1 {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(700));
    }
    assert_eq!(pair.0, pair.1);
    let o = d.berth(&["rm", "-f", "web"]);
    assert_eq!(stdout(&o), "web\n");
    assert_eq!(stdout(&d.berth(&["ps", "-aq"])), "");
}

/// Relative times may tick between two listings.
fn normalize_times(s: &str) -> String {
    s.replace("Less than a second", "T")
        .replace("1 second", "T")
        .replace("2 seconds", "T")
}

#[test]
fn ps_header_is_dockers() {
    let d = Daemon::start();
    let expected = "CONTAINER ID   IMAGE     COMMAND   CREATED   STATUS    PORTS     NAMES\n";
    assert_eq!(stdout(&d.berth(&["ps"])), expected);
    assert_eq!(stdout(&d.docker(&["ps"])), expected);
}

#[test]
fn exited_status_and_create_start() {
    let d = Daemon::start();
    let o = d.berth(&[
        "create",
        "--name",
        "c1",
        "busybox",
        "sh",
        "-c",
        "echo started; exit 5",
    ]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    let ps = stdout(&d.berth(&["ps", "-a", "--format", "{{.Names}} {{.Status}}"]));
    assert_eq!(ps, "c1 Created\n");
    let o = d.berth(&["start", "-a", "c1"]);
    assert_eq!(code(&o), 5);
    assert_eq!(stdout(&o), "started\n");
    let ps = stdout(&d.berth(&["ps", "-a", "--format", "{{.Status}}"]));
    assert!(ps.starts_with("Exited (5) "), "{ps}");
    assert_eq!(
        stdout(&d.berth(&[
            "inspect",
            "-f",
            "{{.State.ExitCode}} {{.State.Status}}",
            "c1"
        ])),
        "5 exited\n"
    );
    // docker start (no -a) prints the name and runs it again
    let o = d.docker(&["start", "c1"]);
    assert_eq!(stdout(&o), "c1\n");
    assert!(eventually(10, || stdout(&d.berth(&["logs", "c1"]))
        == "started\nstarted\n"));
}

#[test]
fn stop_and_wait() {
    let d = Daemon::start();
    d.berth(&[
        "run",
        "-d",
        "--name",
        "st",
        "busybox",
        "sh",
        "-c",
        "trap 'exit 42' TERM; while true; do sleep 0.1; done",
    ]);
    let o = d.berth(&["stop", "-t", "5", "st"]);
    assert_eq!(stdout(&o), "st\n", "{}", stderr(&o));
    assert_eq!(stdout(&d.berth(&["wait", "st"])), "42\n");
    // stopping a stopped container is not an error
    assert_eq!(code(&d.docker(&["stop", "st"])), 0);
    // a process that ignores SIGTERM is killed after the timeout
    d.berth(&[
        "run", "-d", "--name", "stubborn", "busybox", "sleep", "1000",
    ]);
    let o = d.docker(&["stop", "-t", "1", "stubborn"]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    assert_eq!(
        stdout(&d.berth(&["inspect", "-f", "{{.State.ExitCode}}", "stubborn"])),
        "137\n"
    );
}

#[test]
fn env_workdir_user_and_hostname() {
    let d = Daemon::start();
    let o = d.berth(&[
        "run",
        "--rm",
        "-e",
        "GREETING=hi there",
        "-w",
        "/tmp",
        "-u",
        "nobody",
        "-h",
        "box",
        "busybox",
        "sh",
        "-c",
        "echo \"$GREETING\"; pwd; id -u; hostname; echo $PATH",
    ]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    assert_eq!(
        stdout(&o),
        "hi there\n/tmp\n65534\nbox\n/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin\n"
    );
    let o = d.docker(&["run", "--rm", "-e", "A=1", "busybox", "sh", "-c", "echo $A"]);
    assert_eq!(stdout(&o), "1\n");
}

#[test]
fn import_images_rmi() {
    let d = Daemon::start();
    let tar = common::busybox_tar().display().to_string();
    let o = d.berth(&["import", &tar, "myimg:1"]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    let id = stdout(&o).trim().to_string();
    assert!(id.starts_with("sha256:") && id.len() == 71, "{id}");
    let images = stdout(&d.berth(&["images"]));
    let header = images.lines().next().unwrap();
    assert_eq!(
        header.split_whitespace().collect::<Vec<_>>(),
        ["REPOSITORY", "TAG", "IMAGE", "ID", "CREATED", "SIZE"]
    );
    let row = images
        .lines()
        .find(|l| l.starts_with("myimg "))
        .expect("myimg listed");
    assert!(row.contains(&id[7..19]), "{row}");
    assert!(row.contains("MB"), "{row}");
    // the docker CLI sees the same images
    assert!(stdout(&d.docker(&["images"])).contains("myimg"));
    // an imported image has no command; it still runs one given explicitly
    let o = d.berth(&["run", "--rm", "myimg:1", "/bin/echo", "from myimg"]);
    assert_eq!(stdout(&o), "from myimg\n", "{}", stderr(&o));
    let o = d.berth(&["run", "--rm", "myimg:1"]);
    assert_eq!(code(&o), 125);
    assert!(
        stderr(&o).contains("no command specified"),
        "{}",
        stderr(&o)
    );
    let o = d.berth(&["rmi", "myimg:1"]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    assert_eq!(stdout(&o), format!("Untagged: myimg:1\nDeleted: {id}\n"));
    assert!(!stdout(&d.berth(&["images"])).contains("myimg"));
    // layers shared with busybox stay; busybox still runs
    assert_eq!(
        stdout(&d.berth(&["run", "--rm", "busybox", "echo", "ok"])),
        "ok\n"
    );
}

#[test]
fn import_with_changes_and_from_stdin_through_docker() {
    let d = Daemon::start();
    let tar = std::fs::read(common::busybox_tar()).unwrap();
    let mut child = std::process::Command::new("docker")
        .args([
            "import",
            "-c",
            "CMD [\"echo\", \"default cmd\"]",
            "-c",
            "ENV FOO=bar",
            "-",
            "withcmd:v2",
        ])
        .env("DOCKER_HOST", d.host())
        .env("DOCKER_CONFIG", d.dir.path())
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    use std::io::Write;
    child.stdin.take().unwrap().write_all(&tar).unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success());
    assert!(String::from_utf8_lossy(&out.stdout).contains("sha256:"));
    let o = d.berth(&["run", "--rm", "withcmd:v2"]);
    assert_eq!(stdout(&o), "default cmd\n", "{}", stderr(&o));
    let o = d.berth(&["inspect", "-f", "{{json .Config.Env}}", "withcmd:v2"]);
    assert_eq!(stdout(&o), "[\"FOO=bar\"]\n");
}

#[test]
fn rmi_refuses_image_in_use() {
    let d = Daemon::start();
    d.berth(&["create", "--name", "user", "busybox", "true"]);
    let o = d.berth(&["rmi", "busybox"]);
    assert_eq!(code(&o), 1);
    assert!(
        stderr(&o)
            .contains("conflict: unable to remove repository reference \"busybox\" (must force)"),
        "{}",
        stderr(&o)
    );
    let o = d.docker(&["rmi", "busybox"]);
    assert_eq!(code(&o), 1);
    assert!(stderr(&o).contains("must force"), "{}", stderr(&o));
}

#[test]
fn missing_image_exits_125() {
    let d = Daemon::start();
    for o in [
        d.berth(&["run", "--rm", "nope"]),
        d.docker(&["run", "--rm", "nope"]),
    ] {
        assert_eq!(code(&o), 125);
        let e = stderr(&o);
        assert!(
            e.contains("Unable to find image 'nope:latest' locally"),
            "{e}"
        );
    }
    let o = d.berth(&["inspect", "nope"]);
    assert_eq!(code(&o), 1);
    assert!(stderr(&o).contains("No such object: nope"));
}

#[test]
fn command_not_found_127_not_executable_126() {
    let d = Daemon::start();
    for o in [
        d.berth(&["run", "--rm", "busybox", "nosuchcmd"]),
        d.docker(&["run", "--rm", "busybox", "nosuchcmd"]),
    ] {
        assert_eq!(code(&o), 127, "{}", stderr(&o));
        assert!(
            stderr(&o).contains("executable file not found in $PATH"),
            "{}",
            stderr(&o)
        );
    }
    for o in [
        d.berth(&["run", "--rm", "busybox", "/etc/passwd"]),
        d.docker(&["run", "--rm", "busybox", "/etc/passwd"]),
    ] {
        assert_eq!(code(&o), 126, "{}", stderr(&o));
    }
    // --rm removed the containers whose start failed
    assert_eq!(stdout(&d.berth(&["ps", "-aq"])), "");
    // without --rm the container stays, with docker's state
    d.berth(&["run", "--name", "failed", "busybox", "nosuchcmd"]);
    assert_eq!(
        stdout(&d.berth(&[
            "inspect",
            "-f",
            "{{.State.Status}} {{.State.ExitCode}}",
            "failed"
        ])),
        "created 127\n"
    );
}

#[test]
fn invalid_names_and_conflicts() {
    let d = Daemon::start();
    for o in [
        d.berth(&["run", "--rm", "Foo:Bar", "true"]),
        d.docker(&["run", "--rm", "Foo:Bar", "true"]),
    ] {
        assert_eq!(code(&o), 125);
        assert!(
            stderr(&o).contains("invalid reference format"),
            "{}",
            stderr(&o)
        );
    }
    // `create` fails with 1 where `run` fails with 125, as the docker CLI does
    let o = d.berth(&["create", "--name", "bad name", "busybox"]);
    assert_eq!(code(&o), 1);
    assert!(
        stderr(&o).contains("Invalid container name (bad name)"),
        "{}",
        stderr(&o)
    );
    d.berth(&["create", "--name", "taken", "busybox"]);
    let o = d.docker(&["create", "--name", "taken", "busybox"]);
    assert_eq!(code(&o), 1);
    assert!(
        stderr(&o).contains("The container name \"/taken\" is already in use by container"),
        "{}",
        stderr(&o)
    );
}

#[test]
fn removing_running_container_needs_force() {
    let d = Daemon::start();
    d.berth(&["run", "-d", "--name", "busy", "busybox", "sleep", "1000"]);
    for o in [d.berth(&["rm", "busy"]), d.docker(&["rm", "busy"])] {
        assert_eq!(code(&o), 1);
        assert!(
            stderr(&o).contains(
                "container is running: stop the container before removing or force remove"
            ),
            "{}",
            stderr(&o)
        );
    }
    let o = d.docker(&["rm", "-f", "busy"]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    assert_eq!(stdout(&d.berth(&["ps", "-aq"])), "");
}

#[test]
fn version_and_info() {
    let d = Daemon::start();
    let o = d.berth(&["version"]);
    assert_eq!(code(&o), 0);
    assert!(stdout(&o).contains("API version:      1.47 (minimum version 1.24)"));
    let o = d.docker(&["version", "--format", "{{.Server.APIVersion}}"]);
    assert_eq!(stdout(&o), "1.47\n", "{}", stderr(&o));
    d.berth(&["run", "-d", "busybox", "sleep", "100"]);
    let o = d.docker(&[
        "info",
        "--format",
        "{{.ContainersRunning}} {{.Images}} {{.Driver}}",
    ]);
    assert_eq!(stdout(&o), "1 1 overlay2\n", "{}", stderr(&o));
    let o = d.berth(&["info"]);
    assert!(stdout(&o).contains(" Storage Driver: overlay2"));
}

#[test]
fn security_defaults_in_the_container() {
    let d = Daemon::start();
    // docker's default capability set: CapEff 00000000a80425fb
    let o = d.berth(&["run", "--rm", "busybox", "sh", "-c", "grep CapEff /proc/self/status; touch /sys/x 2>&1; cat /proc/kcore 2>&1 | head -c 10; echo; ls /dev"]);
    let out = stdout(&o);
    assert!(out.contains("CapEff:\t00000000a80425fb"), "{out}");
    assert!(out.contains("Read-only file system"), "{out}");
    let devs: Vec<&str> = out
        .lines()
        .last()
        .unwrap_or_default()
        .split_whitespace()
        .collect();
    for dev in ["null", "zero", "random", "urandom", "tty", "full"] {
        assert!(out.contains(dev), "/dev/{dev} missing: {devs:?}");
    }
    // a container cannot see host processes (own pid namespace)
    let o = d.berth(&[
        "run",
        "--rm",
        "busybox",
        "sh",
        "-c",
        "echo $$; ls /proc | grep -c '^[0-9]'",
    ]);
    assert_eq!(stdout(&o).lines().next(), Some("1"));
}

#[test]
fn container_processes_get_default_signal_dispositions() {
    let d = Daemon::start();
    // the shim ignores SIGPIPE (a Rust program); its containers must not
    let o = d.berth(&[
        "run",
        "--rm",
        "busybox",
        "sh",
        "-c",
        "grep SigIgn /proc/self/status; yes | head -n 2",
    ]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    assert_eq!(stdout(&o), "SigIgn:\t0000000000000000\ny\ny\n");
    // lots of output through an attached run, with a writer killed by SIGPIPE
    let o = d.berth(&[
        "run",
        "--rm",
        "busybox",
        "sh",
        "-c",
        "yes 0123456789012345678901234567890123456789 | head -n 200000 | wc -l",
    ]);
    assert_eq!(stdout(&o), "200000\n");
    let o = d.docker(&[
        "run",
        "--rm",
        "busybox",
        "sh",
        "-c",
        "yes 0123456789 | head -n 100000",
    ]);
    assert_eq!(stdout(&o).len(), 1_100_000);
}

#[test]
fn exec_through_both_clis() {
    let d = Daemon::start();
    d.berth(&[
        "run",
        "-d",
        "--name",
        "ex",
        "-e",
        "FROM_RUN=yes",
        "busybox",
        "sleep",
        "1000",
    ]);
    let o = d.berth(&[
        "exec",
        "ex",
        "sh",
        "-c",
        "echo out; echo err >&2; echo $FROM_RUN; exit 4",
    ]);
    assert_eq!(code(&o), 4);
    assert_eq!(stdout(&o), "out\nyes\n");
    assert_eq!(stderr(&o), "err\n");
    let o = d.docker(&[
        "exec",
        "-u",
        "nobody",
        "-w",
        "/tmp",
        "-e",
        "X=1",
        "ex",
        "sh",
        "-c",
        "id -u; pwd; echo $X",
    ]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    assert_eq!(stdout(&o), "65534\n/tmp\n1\n");
    // the exec'd process is inside the container: same pid namespace, pid 1 is sleep
    let o = d.docker(&["exec", "ex", "cat", "/proc/1/cmdline"]);
    assert_eq!(stdout(&o), "sleep\u{0}1000\u{0}");
    // a command that is not there: docker's message and 126
    for o in [
        d.berth(&["exec", "ex", "nope"]),
        d.docker(&["exec", "ex", "nope"]),
    ] {
        assert_eq!(code(&o), 126);
        assert!(
            stdout(&o).contains("executable file not found in $PATH"),
            "{}",
            stdout(&o)
        );
    }
    // detached exec runs to its end
    assert_eq!(
        code(&d.docker(&["exec", "-d", "ex", "sh", "-c", "echo bg > /tmp/bg"])),
        0
    );
    assert!(eventually(10, || stdout(
        &d.berth(&["exec", "ex", "cat", "/tmp/bg"])
    ) == "bg\n"));
    // stdin
    let mut child = std::process::Command::new(common::berth_bin())
        .args(["exec", "-i", "ex", "sh", "-c", "tr a-z A-Z"])
        .env("BERTH_HOST", d.host())
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    use std::io::Write;
    child.stdin.take().unwrap().write_all(b"shout\n").unwrap();
    let out = child.wait_with_output().unwrap();
    assert_eq!(String::from_utf8_lossy(&out.stdout), "SHOUT\n");
    // not in a stopped container
    d.berth(&["stop", "-t", "0", "ex"]);
    for o in [
        d.berth(&["exec", "ex", "true"]),
        d.docker(&["exec", "ex", "true"]),
    ] {
        assert_eq!(code(&o), 1);
        assert!(stderr(&o).contains("is not running"), "{}", stderr(&o));
    }
}

#[test]
fn restart_policies() {
    let d = Daemon::start();
    // on-failure:2 — the first run and two restarts, then it stays down
    let o = d.berth(&[
        "run",
        "-d",
        "--name",
        "flaky",
        "--restart",
        "on-failure:2",
        "busybox",
        "sh",
        "-c",
        "echo run; exit 3",
    ]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    let inspect = |n: &str| {
        stdout(&d.berth(&[
            "inspect",
            "-f",
            "{{.RestartCount}} {{.State.Status}} {{.State.ExitCode}}",
            n,
        ]))
    };
    assert!(
        eventually(20, || inspect("flaky") == "2 exited 3\n"),
        "{}",
        inspect("flaky")
    );
    std::thread::sleep(std::time::Duration::from_millis(500));
    assert_eq!(inspect("flaky"), "2 exited 3\n", "no third restart");
    assert_eq!(stdout(&d.berth(&["logs", "flaky"])), "run\nrun\nrun\n");
    // on-failure does not restart a clean exit
    d.docker(&[
        "run",
        "-d",
        "--name",
        "clean",
        "--restart",
        "on-failure",
        "busybox",
        "true",
    ]);
    assert!(eventually(10, || inspect("clean") == "0 exited 0\n"));
    // always restarts a clean exit, until stopped by hand
    d.berth(&[
        "run",
        "-d",
        "--name",
        "again",
        "--restart",
        "always",
        "busybox",
        "sh",
        "-c",
        "sleep 0.2",
    ]);
    assert!(eventually(20, || inspect("again")
        .split(' ')
        .next()
        .and_then(|n| n.parse::<i32>().ok())
        .unwrap_or(0)
        >= 2));
    assert_eq!(code(&d.berth(&["stop", "again"])), 0);
    let after_stop = inspect("again");
    std::thread::sleep(std::time::Duration::from_millis(800));
    assert_eq!(
        inspect("again"),
        after_stop,
        "a stopped container stays stopped"
    );
    assert!(after_stop.contains(" exited "), "{after_stop}");
    // bad policies
    let o = d.berth(&["run", "--rm", "--restart", "always", "busybox", "true"]);
    assert_eq!(code(&o), 125);
    assert!(stderr(&o).contains("Conflicting options: --restart and --rm"));
    let o = d.berth(&["run", "--restart", "sometimes", "busybox", "true"]);
    assert_eq!(code(&o), 125);
    assert!(stderr(&o).contains("invalid restart policy"));
    let body = br#"{"Image":"busybox","HostConfig":{"AutoRemove":true,"RestartPolicy":{"Name":"always"}}}"#;
    let (s, _, b) = common::raw_request(&d.sock, "POST", "/containers/create", Some(body)).unwrap();
    assert_eq!(s, 400, "{}", String::from_utf8_lossy(&b));
    let body = br#"{"Image":"busybox","HostConfig":{"RestartPolicy":{"Name":"always","MaximumRetryCount":3}}}"#;
    let (s, _, _) = common::raw_request(&d.sock, "POST", "/containers/create", Some(body)).unwrap();
    assert_eq!(s, 400);
}

#[test]
fn restart_rename_attach_prune() {
    let d = Daemon::start();
    d.berth(&[
        "run",
        "-d",
        "--name",
        "r1",
        "busybox",
        "sh",
        "-c",
        "echo started; trap 'exit 0' TERM; sleep 1000 & wait",
    ]);
    assert!(eventually(10, || stdout(&d.berth(&["logs", "r1"])) == "started\n"));
    assert_eq!(stdout(&d.berth(&["restart", "r1"])), "r1\n");
    assert!(eventually(10, || stdout(&d.berth(&["logs", "r1"]))
        == "started\nstarted\n"));
    // only restart policies count restarts, as in Docker
    assert_eq!(
        stdout(&d.berth(&["inspect", "-f", "{{.RestartCount}} {{.State.Status}}", "r1"])),
        "0 running\n"
    );
    assert_eq!(code(&d.docker(&["restart", "-t", "1", "r1"])), 0);

    assert_eq!(code(&d.docker(&["rename", "r1", "renamed"])), 0);
    assert_eq!(
        stdout(&d.berth(&["inspect", "-f", "{{.Name}}", "renamed"])),
        "/renamed\n"
    );
    assert_eq!(code(&d.berth(&["inspect", "r1"])), 1);
    d.berth(&["create", "--name", "other", "busybox"]);
    let o = d.berth(&["rename", "renamed", "other"]);
    assert_eq!(code(&o), 1);
    assert!(
        stderr(&o).contains("is already in use by container"),
        "{}",
        stderr(&o)
    );

    d.berth(&[
        "run",
        "-d",
        "--name",
        "talker",
        "busybox",
        "sh",
        "-c",
        "sleep 0.5; echo late; exit 6",
    ]);
    let o = d.berth(&["attach", "talker"]);
    assert_eq!(stdout(&o), "late\n", "{}", stderr(&o));
    assert_eq!(code(&o), 6);
    let o = d.berth(&["attach", "talker"]);
    assert_eq!(code(&o), 1, "attaching to a stopped container fails");

    // prune removes what is not running and says how much it freed
    d.berth(&[
        "run",
        "--name",
        "writer",
        "busybox",
        "sh",
        "-c",
        "head -c 100000 /dev/zero > /junk",
    ]);
    let o = d.berth(&["container", "prune", "-f"]);
    let out = stdout(&o);
    assert!(out.starts_with("Deleted Containers:\n"), "{out}");
    assert_eq!(
        out.lines().filter(|l| l.len() == 64).count(),
        3,
        "talker, other and writer: {out}"
    );
    assert!(
        out.trim_end().ends_with("Total reclaimed space: 100kB"),
        "{out}"
    );
    assert_eq!(
        stdout(&d.berth(&["ps", "-a", "--format", "{{.Names}}"])),
        "renamed\n"
    );
    let o = d.docker(&["container", "prune", "-f"]);
    assert_eq!(stdout(&o), "Total reclaimed space: 0B\n", "{}", stderr(&o));
}

#[test]
fn security_and_resource_flags() {
    let d = Daemon::start();
    let status_line = |o: &std::process::Output, key: &str| -> String {
        stdout(o)
            .lines()
            .find(|l| l.starts_with(key))
            .unwrap_or_default()
            .to_string()
    };
    let o = d.berth(&[
        "run",
        "--rm",
        "--cap-drop",
        "ALL",
        "--cap-add",
        "net_admin",
        "busybox",
        "cat",
        "/proc/self/status",
    ]);
    assert_eq!(
        status_line(&o, "CapEff:"),
        "CapEff:\t0000000000001000",
        "{}",
        stderr(&o)
    );
    // privileged: every capability the daemon has, and a writable /sys
    let own_bounding = std::fs::read_to_string("/proc/self/status")
        .unwrap()
        .lines()
        .find(|l| l.starts_with("CapBnd:"))
        .unwrap()
        .replace("CapBnd:", "CapEff:");
    let o = d.docker(&[
        "run",
        "--rm",
        "--privileged",
        "busybox",
        "sh",
        "-c",
        "cat /proc/self/status; mount",
    ]);
    assert_eq!(status_line(&o, "CapEff:"), own_bounding, "{}", stderr(&o));
    assert!(
        stdout(&o).contains("sysfs on /sys type sysfs (rw,"),
        "{}",
        stdout(&o)
    );
    // read-only rootfs with a writable tmpfs
    let o = d.berth(&[
        "run",
        "--rm",
        "--read-only",
        "--tmpfs",
        "/scratch:size=1m",
        "busybox",
        "sh",
        "-c",
        "touch /x 2>&1; touch /scratch/y && echo tmpfs ok",
    ]);
    assert_eq!(stdout(&o), "touch: /x: Read-only file system\ntmpfs ok\n");
    let o = d.docker(&[
        "run",
        "--rm",
        "--security-opt",
        "no-new-privileges",
        "busybox",
        "grep",
        "NoNewPrivs",
        "/proc/self/status",
    ]);
    assert_eq!(stdout(&o), "NoNewPrivs:\t1\n", "{}", stderr(&o));
    let o = d.berth(&[
        "run",
        "--rm",
        "busybox",
        "grep",
        "NoNewPrivs",
        "/proc/self/status",
    ]);
    assert_eq!(stdout(&o), "NoNewPrivs:\t0\n");
    // limits land in the container's cgroups
    let o = d.docker(&[
        "run",
        "-d",
        "--name",
        "lim",
        "-m",
        "64m",
        "--pids-limit",
        "20",
        "--cpus",
        "0.5",
        "-c",
        "512",
        "busybox",
        "sleep",
        "100",
    ]);
    let id = stdout(&o).trim().to_string();
    assert_eq!(id.len(), 64, "{}", stderr(&o));
    let own = std::fs::read_to_string("/proc/self/cgroup").unwrap();
    let parent = own
        .lines()
        .filter_map(|l| l.splitn(3, ':').nth(2))
        .max_by_key(|p| p.len())
        .unwrap()
        .trim_start_matches('/')
        .to_string();
    let read = |ctrl: &str, file: &str| {
        std::fs::read_to_string(
            std::path::Path::new("/sys/fs/cgroup")
                .join(ctrl)
                .join(&parent)
                .join("berth")
                .join(&id)
                .join(file),
        )
        .unwrap_or_default()
        .trim()
        .to_string()
    };
    assert_eq!(read("memory", "memory.limit_in_bytes"), "67108864");
    assert_eq!(read("pids", "pids.max"), "20");
    // Docker's default swap limit is the memory limit again (memsw = 2 × memory)
    if std::path::Path::new("/sys/fs/cgroup/memory/memory.memsw.limit_in_bytes").exists() {
        assert_eq!(read("memory", "memory.memsw.limit_in_bytes"), "134217728");
    }
    assert_eq!(read("cpu", "cpu.cfs_quota_us"), "50000");
    assert_eq!(read("cpu", "cpu.shares"), "512");
    assert_eq!(
        stdout(&d.berth(&[
            "inspect",
            "-f",
            "{{.HostConfig.Memory}} {{.HostConfig.PidsLimit}}",
            "lim"
        ])),
        "67108864 20\n"
    );
    // bad values: clear errors, nothing created
    for (args, msg) in [
        (
            vec!["run", "--rm", "-m", "1k", "busybox", "true"],
            "Minimum memory limit allowed is 6MB",
        ),
        (
            vec!["run", "--rm", "-m", "lots", "busybox", "true"],
            "invalid size",
        ),
        (
            vec!["run", "--rm", "--cap-add", "BOGUS", "busybox", "true"],
            "invalid capability: BOGUS",
        ),
        (
            vec![
                "run",
                "--rm",
                "--security-opt",
                "foo=bar",
                "busybox",
                "true",
            ],
            "invalid --security-opt",
        ),
        (
            vec!["run", "--rm", "--tmpfs", "relative", "busybox", "true"],
            "mount path must be absolute",
        ),
    ] {
        let o = d.berth(&args);
        assert_eq!(code(&o), 125, "{args:?}");
        assert!(stderr(&o).contains(msg), "{args:?}: {}", stderr(&o));
    }
    assert_eq!(
        stdout(&d.berth(&["ps", "-aq"])).lines().count(),
        1,
        "only lim exists"
    );
}

#[test]
fn json_file_logs_rotate() {
    let d = Daemon::start();
    // the default is rotation on: json-file, 3 files of 10 MB, as the
    // driver's own default (the container's config shows what was asked)
    d.berth(&["create", "--name", "dflt", "busybox", "true"]);
    let lc: serde_json::Value = serde_json::from_str(&stdout(&d.berth(&[
        "inspect",
        "-f",
        "{{json .HostConfig.LogConfig}}",
        "dflt",
    ])))
    .unwrap();
    assert_eq!(lc, serde_json::json!({"Type": "json-file", "Config": {}}));
    // 2000 lines of ~110 bytes of JSON each, 10 kB files, 3 kept
    let o = d.berth(&[
        "run",
        "--name",
        "chatty",
        "--log-opt",
        "max-size=10k",
        "--log-opt",
        "max-file=3",
        "busybox",
        "sh",
        "-c",
        "i=0; while [ $i -lt 2000 ]; do echo line $i; i=$((i+1)); done",
    ]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    let log = stdout(&d.berth(&["inspect", "-f", "{{.LogPath}}", "chatty"]))
        .trim()
        .to_string();
    assert!(std::path::Path::new(&format!("{log}.1")).exists());
    assert!(std::path::Path::new(&format!("{log}.2")).exists());
    assert!(
        !std::path::Path::new(&format!("{log}.3")).exists(),
        "max-file=3 keeps 3 files"
    );
    for f in [log.clone(), format!("{log}.1"), format!("{log}.2")] {
        assert!(
            std::fs::metadata(&f).unwrap().len() <= 10_000,
            "{f} exceeds max-size"
        );
    }
    // `logs` reads the rotated files too: a contiguous run ending with the last line
    let out = stdout(&d.berth(&["logs", "chatty"]));
    let nums: Vec<u32> = out
        .lines()
        .map(|l| l.trim_start_matches("line ").parse().unwrap())
        .collect();
    assert_eq!(*nums.last().unwrap(), 1999);
    assert!(
        nums.len() > 150 && nums.len() < 2000,
        "{} lines kept",
        nums.len()
    );
    assert!(
        nums.windows(2).all(|w| w[1] == w[0] + 1),
        "lines in order, none missing"
    );
    assert_eq!(
        stdout(&d.docker(&["logs", "--tail", "2", "chatty"])),
        "line 1998\nline 1999\n"
    );
    // --log-driver none: nothing written, and `logs` says why
    let o = d.berth(&[
        "run",
        "--name",
        "quiet",
        "--log-driver",
        "none",
        "busybox",
        "echo",
        "hi",
    ]);
    assert_eq!(stdout(&o), "hi\n", "attached output still flows");
    let o = d.docker(&["logs", "quiet"]);
    assert_eq!(code(&o), 1);
    assert!(
        stderr(&o).contains("configured logging driver does not support reading"),
        "{}",
        stderr(&o)
    );
    for (args, msg) in [
        (
            vec!["run", "--rm", "--log-driver", "bogus", "busybox", "true"],
            "no log driver named 'bogus'",
        ),
        (
            vec![
                "run",
                "--rm",
                "--log-opt",
                "max-size=lots",
                "busybox",
                "true",
            ],
            "invalid max-size",
        ),
        (
            vec!["run", "--rm", "--log-opt", "colour=red", "busybox", "true"],
            "unknown log opt 'colour'",
        ),
        (
            vec!["run", "--rm", "--log-opt", "max-file=0", "busybox", "true"],
            "max-file cannot be less than 1",
        ),
    ] {
        let o = d.berth(&args);
        assert_eq!(code(&o), 125, "{args:?}");
        assert!(stderr(&o).contains(msg), "{args:?}: {}", stderr(&o));
    }
}

#[test]
fn json_file_rotation_can_compress() {
    let d = Daemon::start();
    let o = d.docker(&[
        "run",
        "--name",
        "gz",
        "--log-opt",
        "max-size=10k",
        "--log-opt",
        "max-file=4",
        "--log-opt",
        "compress=true",
        "busybox",
        "sh",
        "-c",
        "i=0; while [ $i -lt 2000 ]; do echo line $i; i=$((i+1)); done",
    ]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    let log = stdout(&d.berth(&["inspect", "-f", "{{.LogPath}}", "gz"]))
        .trim()
        .to_string();
    for i in 1..=3 {
        assert!(
            std::path::Path::new(&format!("{log}.{i}.gz")).exists(),
            "{log}.{i}.gz missing"
        );
        assert!(!std::path::Path::new(&format!("{log}.{i}")).exists());
    }
    // logs read through the compressed files, in order, none missing
    let out = stdout(&d.docker(&["logs", "gz"]));
    let nums: Vec<u32> = out
        .lines()
        .filter_map(|l| l.trim_start_matches("line ").parse().ok())
        .collect();
    assert_eq!(nums.last().copied(), Some(1999));
    assert!(nums.len() > 200, "{} lines", nums.len());
    assert!(nums.windows(2).all(|w| w[1] == w[0] + 1));
    let o = d.berth(&["run", "--log-opt", "compress=maybe", "busybox", "true"]);
    assert_eq!(code(&o), 125);
    let o = d.berth(&[
        "run",
        "--log-opt",
        "compress=true",
        "--log-opt",
        "max-file=1",
        "busybox",
        "true",
    ]);
    assert!(
        stderr(&o).contains("compress cannot be true when max-file is less than 2"),
        "{}",
        stderr(&o)
    );
}

#[test]
fn logs_details_show_the_log_opt_attributes() {
    let d = Daemon::start();
    let o = d.berth(&[
        "run",
        "--name",
        "det",
        "--label",
        "team=a b",
        "--label",
        "other=no",
        "-e",
        "STAGE=x=1",
        "--log-opt",
        "labels=team",
        "--log-opt",
        "env-regex=^STA",
        "busybox",
        "echo",
        "hi",
    ]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    d.berth(&["run", "--name", "plain", "busybox", "echo", "hi"]);
    for o in [
        d.berth(&["logs", "--details", "det"]),
        d.docker(&["logs", "--details", "det"]),
    ] {
        assert_eq!(stdout(&o), "STAGE=x%3D1,team=a+b hi\n", "{}", stderr(&o));
    }
    // no attributes: docker still puts the separating space first
    assert_eq!(stdout(&d.berth(&["logs", "--details", "plain"])), " hi\n");
    assert_eq!(stdout(&d.berth(&["logs", "det"])), "hi\n");
    // the attributes are in the file, as json-file keeps them
    let path = stdout(&d.berth(&["inspect", "-f", "{{.LogPath}}", "det"]));
    let line = std::fs::read_to_string(path.trim()).unwrap();
    let rec: serde_json::Value = serde_json::from_str(line.lines().next().unwrap()).unwrap();
    assert_eq!(rec["attrs"]["team"], "a b", "{line}");
    let o = d.berth(&["run", "--log-opt", "labels-regex=(", "busybox", "true"]);
    assert_eq!(code(&o), 125);
    assert!(
        stderr(&o).contains("invalid labels-regex"),
        "{}",
        stderr(&o)
    );
}

#[test]
fn table_formats_print_like_docker() {
    let d = Daemon::start();
    d.berth(&["create", "--name", "first", "busybox", "sh", "-c", "true"]);
    d.berth(&["create", "--name", "second-one", "busybox", "true"]);
    d.berth(&["volume", "create", "vol1"]);
    for args in [
        vec![
            "ps",
            "-a",
            "--format",
            "table {{.Names}}\\t{{.Image}}\\t{{.Command}}",
        ],
        vec!["ps", "-a", "--format", "table {{.ID}}: {{.Names}}"],
        vec!["ps", "-a", "--format", "{{.Names}}\\t{{.Image}}"],
        vec![
            "images",
            "--format",
            "table {{.Repository}}\\t{{.Tag}}\\t{{.ID}}",
        ],
        vec!["volume", "ls", "--format", "table {{.Name}}\\t{{.Driver}}"],
    ] {
        d.assert_same_output(&args);
    }
    let out = stdout(&d.berth(&["ps", "-a", "--format", "table {{.Names}}\\t{{.Image}}"]));
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(
        lines[0].split_whitespace().collect::<Vec<_>>(),
        ["NAMES", "IMAGE"]
    );
    assert_eq!(lines.len(), 3, "{out}");
}
