//! pause/unpause (the freezer), top, stats and OOM kills, through both CLIs.

mod common;

use common::{Daemon, code, eventually, stderr, stdout};

fn log_lines(d: &Daemon, name: &str) -> usize {
    stdout(&d.berth(&["logs", name])).lines().count()
}

#[test]
fn pause_freezes_and_unpause_thaws() {
    let mut d = Daemon::start();
    d.berth(&[
        "run",
        "-d",
        "--name",
        "ticker",
        "busybox",
        "sh",
        "-c",
        "while true; do echo tick; sleep 0.05; done",
    ]);
    assert!(eventually(5, || log_lines(&d, "ticker") > 2));
    assert_eq!(stdout(&d.docker(&["pause", "ticker"])), "ticker\n");
    let o = d.docker(&[
        "inspect",
        "-f",
        "{{.State.Status}} {{.State.Paused}} {{.State.Running}}",
        "ticker",
    ]);
    assert_eq!(stdout(&o), "paused true true\n");
    assert!(stdout(&d.berth(&["ps", "--format", "{{.Status}}"])).ends_with("(Paused)\n"));
    let frozen_at = log_lines(&d, "ticker");
    std::thread::sleep(std::time::Duration::from_millis(400));
    assert_eq!(
        log_lines(&d, "ticker"),
        frozen_at,
        "a paused container made progress"
    );
    // no exec while paused; a second pause is a conflict
    let o = d.docker(&["exec", "ticker", "true"]);
    assert!(
        stderr(&o).contains("is paused, unpause the container before exec"),
        "{}",
        stderr(&o)
    );
    let o = d.berth(&["pause", "ticker"]);
    assert_eq!(code(&o), 1);
    assert!(stderr(&o).contains("is already paused"), "{}", stderr(&o));
    // the pause survives a daemon crash
    d.kill9();
    d.restart_after_kill9();
    let o = d.berth(&["inspect", "-f", "{{.State.Paused}}", "ticker"]);
    assert_eq!(stdout(&o), "true\n");
    assert_eq!(stdout(&d.berth(&["unpause", "ticker"])), "ticker\n");
    assert!(eventually(5, || log_lines(&d, "ticker") > frozen_at + 2));
    let o = d.berth(&["unpause", "ticker"]);
    assert!(stderr(&o).contains("is not paused"), "{}", stderr(&o));
    // stopping a paused container works (the signal arrives once thawed)
    d.berth(&["pause", "ticker"]);
    let o = d.docker(&["stop", "-t", "1", "ticker"]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    let o = d.berth(&[
        "inspect",
        "-f",
        "{{.State.Status}} {{.State.Paused}}",
        "ticker",
    ]);
    assert_eq!(stdout(&o), "exited false\n");
    let o = d.berth(&["pause", "ticker"]);
    assert!(stderr(&o).contains("is not running"), "{}", stderr(&o));
}

#[test]
fn top_lists_the_container_processes_only() {
    let d = Daemon::start();
    d.berth(&[
        "run",
        "-d",
        "--name",
        "tp",
        "busybox",
        "sh",
        "-c",
        "sleep 1001 & sleep 1002",
    ]);
    assert!(eventually(5, || stdout(&d.berth(&["top", "tp"]))
        .contains("sleep 1002")));
    let o = d.docker(&["top", "tp"]);
    let out = stdout(&o);
    assert!(out.starts_with("UID"), "{out}");
    assert!(
        out.contains("sleep 1001") && out.contains("sleep 1002"),
        "{out}"
    );
    // the daemon's own processes are not listed
    assert!(!out.contains("berth"), "{out}");
    let o = d.berth(&["top", "tp", "-o", "pid,args"]);
    assert!(stdout(&o).starts_with("PID"), "{}", stdout(&o));
    d.berth(&["stop", "-t", "0", "tp"]);
    let o = d.docker(&["top", "tp"]);
    assert!(stderr(&o).contains("is not running"), "{}", stderr(&o));
}

#[test]
fn stats_report_cgroup_usage() {
    let d = Daemon::start();
    d.berth(&[
        "run",
        "-d",
        "--name",
        "st",
        "-m",
        "64m",
        "--pids-limit",
        "50",
        "busybox",
        "sh",
        "-c",
        "while true; do :; done",
    ]);
    for o in [
        d.berth(&["stats", "--no-stream", "st"]),
        d.docker(&["stats", "--no-stream", "st"]),
    ] {
        let out = stdout(&o);
        let mut lines = out.lines();
        assert_eq!(
            lines
                .next()
                .map(|h| h.split_whitespace().collect::<Vec<_>>().join(" ")),
            Some("CONTAINER ID NAME CPU % MEM USAGE / LIMIT MEM % NET I/O BLOCK I/O PIDS".into()),
            "{out}"
        );
        let row = lines.next().unwrap_or_default();
        assert!(row.contains(" / 64MiB"), "{row}");
        // a busy loop uses a visible share of a CPU
        let cpu: f64 = row
            .split_whitespace()
            .nth(2)
            .and_then(|c| c.trim_end_matches('%').parse().ok())
            .unwrap_or(0.0);
        assert!(cpu > 5.0, "{row}");
    }
    let o = d.berth(&[
        "stats",
        "--no-stream",
        "--format",
        "{{.Name}} {{.PIDs}}",
        "st",
    ]);
    assert_eq!(stdout(&o), "st 1\n");
}

#[test]
fn out_of_memory_is_reported() {
    let d = Daemon::start();
    let o = d.docker(&[
        "run",
        "--name",
        "hog",
        "-m",
        "8m",
        "busybox",
        "sh",
        "-c",
        "x=a; while true; do x=$x$x; done",
    ]);
    assert_eq!(code(&o), 137, "{}", stderr(&o));
    let o = d.berth(&[
        "inspect",
        "-f",
        "{{.State.OOMKilled}} {{.State.ExitCode}}",
        "hog",
    ]);
    assert_eq!(stdout(&o), "true 137\n");
    // an ordinary kill is not an OOM kill
    d.berth(&["run", "-d", "--name", "kk", "busybox", "sleep", "100"]);
    d.berth(&["kill", "kk"]);
    d.berth(&["wait", "kk"]);
    let o = d.berth(&["inspect", "-f", "{{.State.OOMKilled}}", "kk"]);
    assert_eq!(stdout(&o), "false\n");
}

#[test]
fn update_changes_limits_live_and_the_restart_policy() {
    let d = Daemon::start();
    d.berth(&[
        "run", "-d", "--name", "upd", "-m", "64m", "busybox", "sleep", "1000",
    ]);
    let o = d.docker(&[
        "update",
        "-m",
        "32m",
        "--pids-limit",
        "20",
        "--cpus",
        "0.5",
        "upd",
    ]);
    assert_eq!(stdout(&o), "upd\n", "{}", stderr(&o));
    // the live cgroup changed (stats read it), and so did the record
    let o = d.berth(&["stats", "--no-stream", "--format", "{{.MemUsage}}", "upd"]);
    assert!(stdout(&o).trim_end().ends_with("/ 32MiB"), "{}", stdout(&o));
    let o = d.berth(&[
        "inspect",
        "-f",
        "{{.HostConfig.Memory}} {{.HostConfig.PidsLimit}} {{.HostConfig.NanoCpus}}",
        "upd",
    ]);
    assert_eq!(stdout(&o), "33554432 20 500000000\n");
    // the new pids limit holds
    let o = d.berth(&[
        "exec",
        "upd",
        "sh",
        "-c",
        "for i in $(seq 1 40); do sleep 1 & done; wait",
    ]);
    assert!(
        stderr(&o).contains("fork")
            || stderr(&o).contains("Resource temporarily unavailable")
            || code(&o) != 0,
        "{}",
        stderr(&o)
    );
    assert_eq!(
        stdout(&d.berth(&["update", "--restart", "always", "upd"])),
        "upd\n"
    );
    let o = d.berth(&["inspect", "-f", "{{.HostConfig.RestartPolicy.Name}}", "upd"]);
    assert_eq!(stdout(&o), "always\n");
    let o = d.berth(&["update", "-m", "1k", "upd"]);
    assert!(
        stderr(&o).contains("Minimum memory limit allowed is 6MB"),
        "{}",
        stderr(&o)
    );
    d.berth(&[
        "run", "-d", "--rm", "--name", "gone", "busybox", "sleep", "100",
    ]);
    let o = d.berth(&["update", "--restart", "always", "gone"]);
    assert!(
        stderr(&o).contains("AutoRemove is enabled"),
        "{}",
        stderr(&o)
    );
}

/// The host processes whose command line mentions `needle`, with the file
/// name of their executable.
fn processes_mentioning(needle: &str) -> Vec<(i32, String)> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir("/proc").into_iter().flatten().flatten() {
        let Ok(pid) = entry.file_name().to_string_lossy().parse::<i32>() else {
            continue;
        };
        let Ok(cmdline) = std::fs::read(entry.path().join("cmdline")) else {
            continue;
        };
        if !String::from_utf8_lossy(&cmdline).contains(needle) {
            continue;
        }
        if let Ok(exe) = std::fs::read_link(entry.path().join("exe")) {
            let name = exe.file_name().map(|n| n.to_string_lossy().into_owned());
            out.push((pid, name.unwrap_or_default()));
        }
    }
    out
}

#[test]
fn running_container_is_held_by_the_small_shim() {
    let d = Daemon::start();
    for (name, tty) in [("piped", false), ("withtty", true)] {
        let mut args = vec!["run", "-d", "--name", name];
        if tty {
            args.push("-t");
        }
        args.extend(["busybox", "sh", "-c", "echo started; exec sleep 1000"]);
        let id = stdout(&d.berth(&args)).trim().to_string();
        assert_eq!(id.len(), 64, "{id}");
        // `berth shim` created the container and replaced itself: one
        // process holds it, and it runs the small binary
        let holders = processes_mentioning(&id);
        let shims: Vec<_> = holders
            .iter()
            .filter(|(_, exe)| exe == "berth-shim")
            .collect();
        assert_eq!(shims.len(), 1, "{holders:?}");
        assert!(
            !holders.iter().any(|(_, exe)| exe == "berth"),
            "the big binary still holds the container: {holders:?}"
        );
        // and serves everything the big one did
        assert!(eventually(5, || stdout(&d.berth(&["logs", name])).contains("started")));
        assert_eq!(stdout(&d.docker(&["exec", name, "echo", "hi"])), "hi\n");
        let o = d.berth(&["exec", "-t", name, "echo", "on a tty"]);
        assert_eq!(stdout(&o), "on a tty\r\n");
        assert_eq!(
            stdout(&d.berth(&["stop", "-t", "1", name])),
            format!("{name}\n")
        );
        let o = d.berth(&["inspect", "-f", "{{.State.ExitCode}}", name]);
        assert_eq!(stdout(&o), "137\n");
        // the shim left with its container and removed libcontainer's state
        assert!(eventually(5, || processes_mentioning(&id).is_empty()));
        assert!(eventually(5, || !d
            .exec_root()
            .join("containers")
            .join(&id)
            .join("runtime")
            .join(&id)
            .exists()));
    }
}

#[test]
fn stats_count_network_bytes() {
    let d = Daemon::start();
    let o = d.berth(&[
        "run",
        "-d",
        "--name",
        "talker",
        "busybox",
        "sh",
        "-c",
        "ping -c 5 -s 1000 $(ip route | awk '/default/ {print $3}') > /dev/null; sleep 60",
    ]);
    assert_eq!(common::code(&o), 0, "{}", stderr(&o));
    let tx_of = |text: &str| -> f64 {
        // "10.5kB / 10.5kB"
        let tx = text.trim().split(" / ").nth(1).unwrap_or_default();
        let num: f64 = tx
            .trim_end_matches(|c: char| c.is_ascii_alphabetic())
            .parse()
            .unwrap_or(0.0);
        match tx.trim_start_matches(|c: char| c.is_ascii_digit() || c == '.') {
            "B" => num,
            "kB" => num * 1e3,
            "MB" => num * 1e6,
            _ => 0.0,
        }
    };
    assert!(common::eventually(10, || {
        let o = d.berth(&["stats", "--no-stream", "--format", "{{.NetIO}}", "talker"]);
        tx_of(&stdout(&o)) >= 5000.0
    }));
    let o = d.docker(&["stats", "--no-stream", "--format", "{{.NetIO}}", "talker"]);
    assert!(tx_of(&stdout(&o)) >= 5000.0, "{}", stdout(&o));
    let (_, _, body) = common::raw_request(
        &d.sock,
        "GET",
        "/containers/talker/stats?stream=false&one-shot=true",
        None,
    )
    .expect("stats");
    let v: serde_json::Value = serde_json::from_slice(&body).expect("json");
    assert!(
        v["networks"]["eth0"]["tx_packets"].as_u64().unwrap_or(0) >= 5,
        "{v}"
    );
    assert!(v["networks"].get("lo").is_none());
    let _ = d.berth(&["rm", "-f", "talker"]);
}

#[test]
fn exec_joins_the_containers_cgroups_namespaces_and_filter() {
    let d = Daemon::start();
    d.berth(&["run", "-d", "--name", "joined", "busybox", "sleep", "1000"]);
    let show = |pid: &str| {
        let o = d.berth(&[
            "exec",
            "joined",
            "sh",
            "-c",
            &format!(
                "cat /proc/{pid}/cgroup; for n in ipc mnt net pid uts cgroup; do readlink /proc/{pid}/ns/$n; done; \
                 grep -E '^(Seccomp|NoNewPrivs|CapBnd|CapPrm|CapInh|CapAmb):' /proc/{pid}/status"
            ),
        ]);
        assert_eq!(code(&o), 0, "{}", stderr(&o));
        stdout(&o)
    };
    let (init, exec) = (show("1"), show("self"));
    let lines = |s: &str, pred: &dyn Fn(&str) -> bool| -> Vec<String> {
        s.lines().filter(|l| pred(l)).map(String::from).collect()
    };
    // same cgroup in every hierarchy, same namespaces, same capability sets
    let same = |l: &str| !l.starts_with("Seccomp") && !l.starts_with("NoNewPrivs");
    assert_eq!(lines(&exec, &same), lines(&init, &same));
    // the container's filter, and no_new_privs with it (as before)
    assert!(exec.contains("Seccomp:\t2"), "{exec}");
    assert!(exec.contains("NoNewPrivs:\t1"), "{exec}");
    // HOME from the container's passwd
    let o = d.docker(&["exec", "-u", "nobody", "joined", "sh", "-c", "echo $HOME"]);
    assert_eq!(stdout(&o), "/home\n", "{}", stderr(&o));
    // an exec in a container running with --privileged gets every capability
    // and no filter
    d.berth(&[
        "run",
        "-d",
        "--privileged",
        "--name",
        "priv",
        "busybox",
        "sleep",
        "1000",
    ]);
    let o = d.berth(&[
        "exec",
        "priv",
        "grep",
        "-E",
        "^(Seccomp|CapEff):",
        "/proc/self/status",
    ]);
    assert!(stdout(&o).contains("Seccomp:\t0"), "{}", stdout(&o));
    assert!(
        !stdout(&o).contains("CapEff:\t00000000a80425fb"),
        "{}",
        stdout(&o)
    );
}
