//! Lifecycle and resource behaviours pinned to dockerd's: removing or
//! committing a container that is exiting at that moment, waits across a
//! restart, working directories, `docker update`'s CPU and pids limits,
//! the container's view of its cgroups.

mod common;

use std::process::Output;
use std::time::Duration;

use common::{Daemon, code, raw_request, stderr, stdout};

fn ok(o: Output) -> String {
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    stdout(&o).trim().to_string()
}

fn message(body: &[u8]) -> String {
    let v: serde_json::Value = serde_json::from_slice(body).expect("JSON error body");
    v["message"].as_str().expect("message field").to_string()
}

fn inspect(d: &Daemon, name: &str, format: &str) -> String {
    ok(d.docker(&["inspect", "-f", format, name]))
}

#[test]
fn force_remove_and_commit_of_an_exiting_container_succeed() {
    let d = Daemon::start();
    for round in 0..30 {
        let sleep = format!("0.0{}", round % 10);
        let id = ok(d.docker(&[
            "run",
            "-d",
            "busybox",
            "sh",
            "-c",
            &format!("sleep {sleep}"),
        ]));
        if round % 2 == 0 {
            let out = d.docker(&["rm", "-f", &id]);
            assert_eq!(code(&out), 0, "round {round}: {}", stderr(&out));
        } else {
            let (status, _, body) = raw_request(
                &d.sock,
                "DELETE",
                &format!("/containers/{id}?force=1"),
                None,
            )
            .unwrap();
            assert_eq!(
                status,
                204,
                "round {round}: {}",
                String::from_utf8_lossy(&body)
            );
        }
        let out = d.docker(&["inspect", &id]);
        assert_eq!(code(&out), 1, "round {round}: still there");
    }
    for round in 0..30 {
        let sleep = format!("0.0{}", round % 10);
        let id = ok(d.docker(&[
            "run",
            "-d",
            "busybox",
            "sh",
            "-c",
            &format!("sleep {sleep}"),
        ]));
        // `docker commit` pauses by default; dockerd commits an exited
        // container without pausing
        let out = d.docker(&["commit", &id, &format!("snap:{round}")]);
        assert_eq!(code(&out), 0, "round {round}: {}", stderr(&out));
        ok(d.docker(&["rm", "-f", &id]));
    }
    // nothing left behind: no container, and every commit is an image
    assert_eq!(ok(d.docker(&["ps", "-aq"])), "");
    assert_eq!(ok(d.docker(&["images", "-q", "snap"])).lines().count(), 30);
}

#[test]
fn wait_not_running_returns_the_exit_that_stopped_the_process_across_restarts() {
    let d = Daemon::start();
    // a restart policy: the wait returns the first run's exit, as dockerd's
    // SetRestarting wakes the waiters
    ok(d.docker(&[
        "run",
        "-d",
        "--name",
        "again",
        "--restart",
        "always",
        "busybox",
        "sh",
        "-c",
        "n=$(cat /n 2>/dev/null || echo 0); n=$((n+1)); echo $n > /n; sleep 1; exit $n",
    ]));
    assert_eq!(ok(d.docker(&["wait", "again"])), "1");
    // while restarting (back-off) the container counts as running: the
    // wait is for the next run's exit
    let mut seen = None;
    for _ in 0..400 {
        let (_, _, body) = raw_request(&d.sock, "GET", "/containers/again/json", None).unwrap();
        let v: serde_json::Value = serde_json::from_slice(&body).unwrap();
        if v["State"]["Restarting"] == true {
            seen = v["State"]["ExitCode"].as_i64();
            break;
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    let exited = seen.expect("the container was seen restarting");
    let (status, _, body) = raw_request(
        &d.sock,
        "POST",
        "/containers/again/wait?condition=not-running",
        None,
    )
    .unwrap();
    assert_eq!(status, 200);
    let v: serde_json::Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(v["StatusCode"], exited + 1);
    ok(d.docker(&["rm", "-f", "again"]));

    // `docker restart`: a wait started before it returns the stop's exit
    ok(d.docker(&["run", "-d", "--name", "plain", "busybox", "sleep", "1000"]));
    let sock = d.sock.clone();
    let waiter = std::thread::spawn(move || {
        raw_request(
            &sock,
            "POST",
            "/containers/plain/wait?condition=not-running",
            None,
        )
        .unwrap()
    });
    std::thread::sleep(Duration::from_millis(300));
    ok(d.docker(&["restart", "-t", "0", "plain"]));
    let (status, _, body) = waiter.join().unwrap();
    assert_eq!(status, 200);
    let v: serde_json::Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(v["StatusCode"], 137);
    assert_eq!(inspect(&d, "plain", "{{.State.Running}}"), "true");
}

#[test]
fn working_dir_is_cleaned_made_at_start_and_must_be_absolute() {
    let d = Daemon::start();
    ok(d.docker(&["create", "--name", "slash", "-w", "/tmp/", "busybox", "pwd"]));
    assert_eq!(inspect(&d, "slash", "{{.Config.WorkingDir}}"), "/tmp");
    // missing from the image: made at start, owned by root as dockerd's
    // (its remapped root; the container's user does not matter)
    let out = ok(d.docker(&[
        "run",
        "--rm",
        "-u",
        "1000:1000",
        "-w",
        "/made/here",
        "busybox",
        "sh",
        "-c",
        "pwd; stat -c %u:%g:%a .",
    ]));
    assert_eq!(out, "/made/here\n0:0:755");
    // under a tmpfs and a volume: made in them, after they are mounted
    let out = ok(d.docker(&[
        "run",
        "--rm",
        "--tmpfs",
        "/scratch",
        "-w",
        "/scratch/deep",
        "busybox",
        "pwd",
    ]));
    assert_eq!(out, "/scratch/deep");
    let out = ok(d.docker(&[
        "run", "--rm", "-v", "wd:/vol", "-w", "/vol/sub", "busybox", "pwd",
    ]));
    assert_eq!(out, "/vol/sub");

    let body = br#"{"Image":"busybox","WorkingDir":"rel/dir"}"#;
    let (status, _, answer) =
        raw_request(&d.sock, "POST", "/containers/create", Some(body)).unwrap();
    assert_eq!(status, 400);
    assert_eq!(
        message(&answer),
        "the working directory 'rel/dir' is invalid, it needs to be an absolute path"
    );
}

#[test]
fn update_shows_cpu_and_pids_limits_as_dockerd_stores_them() {
    let d = Daemon::start();
    ok(d.docker(&[
        "run",
        "-d",
        "--name",
        "lim",
        "--memory",
        "64m",
        "--pids-limit",
        "-1",
        "busybox",
        "sleep",
        "1000",
    ]));
    // create: 0 and negative mean no limit, recorded as none
    assert_eq!(inspect(&d, "lim", "{{json .HostConfig.PidsLimit}}"), "null");
    ok(d.docker(&[
        "update",
        "--cpu-quota",
        "50000",
        "--cpu-period",
        "200000",
        "lim",
    ]));
    assert_eq!(
        inspect(
            &d,
            "lim",
            "{{.HostConfig.CpuQuota}} {{.HostConfig.CpuPeriod}} {{.HostConfig.Memory}}"
        ),
        "50000 200000 67108864"
    );
    let cg = ok(d.docker(&[
        "exec",
        "lim",
        "cat",
        "/sys/fs/cgroup/cpu/cpu.cfs_quota_us",
        "/sys/fs/cgroup/cpu/cpu.cfs_period_us",
        "/sys/fs/cgroup/memory/memory.limit_in_bytes",
    ]));
    assert_eq!(cg, "50000\n200000\n67108864");
    // --cpus cannot follow a CFS quota (dockerd's words)
    let out = d.docker(&["update", "--cpus", "0.5", "lim"]);
    assert_eq!(code(&out), 1);
    assert!(
        stderr(&out).contains(
            "Conflicting options: Nano CPUs cannot be updated as CPU Period has already been set"
        ),
        "{}",
        stderr(&out)
    );
    ok(d.docker(&["update", "--pids-limit", "100", "lim"]));
    assert_eq!(inspect(&d, "lim", "{{.HostConfig.PidsLimit}}"), "100");
    assert_eq!(
        ok(d.docker(&["exec", "lim", "cat", "/sys/fs/cgroup/pids/pids.max"])),
        "100"
    );
    ok(d.docker(&["update", "--pids-limit", "-1", "lim"]));
    assert_eq!(inspect(&d, "lim", "{{.HostConfig.PidsLimit}}"), "0");
    assert_eq!(
        ok(d.docker(&["exec", "lim", "cat", "/sys/fs/cgroup/pids/pids.max"])),
        "max"
    );
    // the docker CLI does not send a 0; other clients do
    ok(d.docker(&["update", "--pids-limit", "100", "lim"]));
    let (status, _, body) = raw_request(
        &d.sock,
        "POST",
        "/containers/lim/update",
        Some(br#"{"PidsLimit": 0}"#),
    )
    .unwrap();
    assert_eq!(status, 200, "{}", String::from_utf8_lossy(&body));
    assert_eq!(inspect(&d, "lim", "{{.HostConfig.PidsLimit}}"), "0");
    assert_eq!(
        ok(d.docker(&["exec", "lim", "cat", "/sys/fs/cgroup/pids/pids.max"])),
        "max"
    );
    // before API 1.40 the field is ignored
    ok(d.docker(&["update", "--pids-limit", "100", "lim"]));
    let (status, _, body) = raw_request(
        &d.sock,
        "POST",
        "/v1.39/containers/lim/update",
        Some(br#"{"PidsLimit": 5}"#),
    )
    .unwrap();
    assert_eq!(status, 200, "{}", String::from_utf8_lossy(&body));
    assert_eq!(inspect(&d, "lim", "{{.HostConfig.PidsLimit}}"), "100");

    // --cpus on another container, then a quota is refused
    ok(d.docker(&[
        "run", "-d", "--name", "nano", "--cpus", "0.5", "busybox", "sleep", "1000",
    ]));
    assert_eq!(
        ok(d.docker(&["exec", "nano", "cat", "/sys/fs/cgroup/cpu/cpu.cfs_quota_us"])),
        "50000"
    );
    let out = d.docker(&["update", "--cpu-quota", "20000", "nano"]);
    assert_eq!(code(&out), 1);
    assert!(
        stderr(&out).contains(
            "Conflicting options: CPU Quota cannot be updated as NanoCPUs has already been set"
        ),
        "{}",
        stderr(&out)
    );
    ok(d.docker(&["update", "--cpus", "0.25", "nano"]));
    assert_eq!(inspect(&d, "nano", "{{.HostConfig.NanoCpus}}"), "250000000");
    assert_eq!(
        ok(d.docker(&["exec", "nano", "cat", "/sys/fs/cgroup/cpu/cpu.cfs_quota_us"])),
        "25000"
    );
    // a quota and period given at create reach the cgroup
    let out = ok(d.docker(&[
        "run",
        "--rm",
        "--cpu-quota",
        "30000",
        "--cpu-period",
        "60000",
        "busybox",
        "cat",
        "/sys/fs/cgroup/cpu/cpu.cfs_quota_us",
        "/sys/fs/cgroup/cpu/cpu.cfs_period_us",
    ]));
    assert_eq!(out, "30000\n60000");
}

#[test]
fn the_container_sees_its_own_cgroups_read_only() {
    let d = Daemon::start();
    let out = ok(d.docker(&[
        "run",
        "--rm",
        "--memory",
        "64m",
        "busybox",
        "sh",
        "-c",
        "ls /sys/fs/cgroup; cat /sys/fs/cgroup/memory/memory.limit_in_bytes",
    ]));
    let lines: Vec<&str> = out.lines().collect();
    for ctrl in [
        "cpu", "cpuacct", "cpuset", "memory", "pids", "freezer", "devices", "blkio",
    ] {
        assert!(lines.contains(&ctrl), "{ctrl} missing: {out}");
    }
    assert_eq!(lines.last(), Some(&"67108864"));
    // the container's own cgroup: its processes only
    let out = ok(d.docker(&[
        "run",
        "--rm",
        "busybox",
        "sh",
        "-c",
        "cat /sys/fs/cgroup/pids/cgroup.procs | wc -l",
    ]));
    assert!(out.parse::<u32>().unwrap_or(99) <= 3, "{out}");
    // read-only: the limit files and the tmpfs under them
    let out = d.docker(&[
        "run",
        "--rm",
        "busybox",
        "sh",
        "-c",
        "echo 1 > /sys/fs/cgroup/memory/memory.limit_in_bytes",
    ]);
    assert_eq!(code(&out), 1);
    assert!(
        stderr(&out).contains("Read-only file system"),
        "{}",
        stderr(&out)
    );
    let out = d.docker(&["run", "--rm", "busybox", "mkdir", "/sys/fs/cgroup/x"]);
    assert_eq!(code(&out), 1);
    assert!(
        stderr(&out).contains("Read-only file system"),
        "{}",
        stderr(&out)
    );
    // privileged: writable, as dockerd mounts it
    ok(d.docker(&[
        "run",
        "--rm",
        "--privileged",
        "busybox",
        "sh",
        "-c",
        "echo 100 > /sys/fs/cgroup/pids/pids.max && cat /sys/fs/cgroup/pids/pids.max",
    ]));
}

#[test]
fn volume_routes_with_an_empty_name_answer_as_dockerd() {
    let d = Daemon::start_bare();
    for (method, path, words) in [
        ("GET", "/volumes/", "get: no such volume"),
        ("GET", "/v1.41/volumes/", "get: no such volume"),
        ("DELETE", "/volumes/", "get: no such volume"),
    ] {
        let (status, _, body) = raw_request(&d.sock, method, path, None).unwrap();
        assert_eq!(status, 404, "{method} {path}");
        assert_eq!(message(&body), words, "{method} {path}");
    }
}
