//! `run` options that map onto the OCI spec: --init, --ulimit, --sysctl,
//! --shm-size, --group-add, --cidfile, --device, --cpuset-cpus.

mod common;

use std::time::{Duration, Instant};

use common::{Daemon, code, stderr, stdout};

#[test]
fn init_is_pid_1_and_forwards_signals() {
    let d = Daemon::start();
    let o = d.docker(&["run", "--rm", "--init", "busybox", "ps", "-o", "pid,args"]);
    let out = stdout(&o);
    assert!(
        out.lines().any(|l| l.split_whitespace().collect::<Vec<_>>()
            == ["1", "/dev/init", "--", "ps", "-o", "pid,args"]),
        "{out} {}",
        stderr(&o)
    );
    // without an init, sleep as PID 1 ignores SIGTERM; with one it dies of it
    d.berth(&[
        "run", "-d", "--init", "--name", "napper", "busybox", "sleep", "1000",
    ]);
    let t = Instant::now();
    let o = d.berth(&["stop", "-t", "20", "napper"]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    assert!(
        t.elapsed() < Duration::from_secs(10),
        "stop took {:?}",
        t.elapsed()
    );
    let o = d.berth(&[
        "inspect",
        "-f",
        "{{.State.ExitCode}} {{.HostConfig.Init}}",
        "napper",
    ]);
    assert_eq!(stdout(&o), "143 true\n");
}

#[test]
fn limits_sysctls_shm_groups_devices_cpuset() {
    let d = Daemon::start();
    let o = d.docker(&[
        "run",
        "--rm",
        "--ulimit",
        "nofile=100:200",
        "busybox",
        "sh",
        "-c",
        "ulimit -n; ulimit -Hn",
    ]);
    assert_eq!(stdout(&o), "100\n200\n", "{}", stderr(&o));
    let o = d.berth(&[
        "run",
        "--rm",
        "--sysctl",
        "kernel.shmmax=1000000",
        "--sysctl",
        "net.ipv4.ip_forward=1",
        "busybox",
        "cat",
        "/proc/sys/kernel/shmmax",
        "/proc/sys/net/ipv4/ip_forward",
    ]);
    assert_eq!(stdout(&o), "1000000\n1\n", "{}", stderr(&o));
    let o = d.berth(&[
        "run",
        "--rm",
        "--shm-size",
        "128m",
        "busybox",
        "grep",
        " /dev/shm ",
        "/proc/mounts",
    ]);
    assert!(stdout(&o).contains("size=131072k"), "{}", stdout(&o));
    let o = d.docker(&[
        "run",
        "--rm",
        "--group-add",
        "mail",
        "--group-add",
        "1234",
        "-u",
        "nobody",
        "busybox",
        "id",
        "-G",
    ]);
    let groups: Vec<String> = stdout(&o).split_whitespace().map(String::from).collect();
    // mail is gid 12 in the project's busybox image
    assert!(
        groups.contains(&"12".to_string()) && groups.contains(&"1234".to_string()),
        "{groups:?} {}",
        stderr(&o)
    );
    let o = d.berth(&[
        "run",
        "--rm",
        "--device",
        "/dev/null:/dev/mynull",
        "busybox",
        "sh",
        "-c",
        "echo x > /dev/mynull && stat -c '%t,%T' /dev/mynull",
    ]);
    assert_eq!(stdout(&o), "1,3\n", "{}", stderr(&o));
    let o = d.berth(&[
        "run",
        "--rm",
        "--cpuset-cpus",
        "0",
        "busybox",
        "grep",
        "Cpus_allowed_list",
        "/proc/self/status",
    ]);
    assert!(stdout(&o).trim_end().ends_with("\t0"), "{}", stdout(&o));
}

#[test]
fn cidfile_and_refused_options() {
    let d = Daemon::start();
    let dir = tempfile::tempdir().expect("tempdir");
    let cid = dir.path().join("cid");
    let cid_s = cid.display().to_string();
    let o = d.berth(&["run", "-d", "--cidfile", &cid_s, "busybox", "sleep", "100"]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    assert_eq!(
        std::fs::read_to_string(&cid).ok().as_deref(),
        Some(stdout(&o).trim())
    );
    let o = d.berth(&["run", "-d", "--cidfile", &cid_s, "busybox", "sleep", "100"]);
    assert_eq!(code(&o), 125);
    assert!(
        stderr(&o).contains("Container ID file found"),
        "{}",
        stderr(&o)
    );
    for (args, msg) in [
        (
            vec!["--sysctl", "vm.swappiness=1"],
            "is not in a separate kernel namespace",
        ),
        (
            vec!["--network", "host", "--sysctl", "net.ipv4.ip_forward=1"],
            "not allowed in host network namespace",
        ),
        (vec!["--ulimit", "bogus=1"], "invalid ulimit type: bogus"),
        (
            vec!["--ulimit", "nofile=200:100"],
            "soft limit must be less than or equal to hard limit",
        ),
        (
            vec!["--device", "/nonexistent"],
            "error gathering device information",
        ),
        (
            vec!["--cpuset-cpus", "999"],
            "Requested CPUs are not available",
        ),
        (
            vec!["--group-add", "nosuchgroup"],
            "Unable to find group nosuchgroup",
        ),
        (
            vec!["--memory-swap", "64m"],
            "You should always set the Memory limit when using Memoryswap limit",
        ),
        (
            vec!["-m", "64m", "--memory-swap", "32m"],
            "Minimum memoryswap limit should be larger than memory limit",
        ),
    ] {
        let mut a = vec!["run", "--rm"];
        a.extend(args.iter().copied());
        a.extend(["busybox", "true"]);
        // berth's CLI leaves the checks to the daemon (docker's checks some itself)
        let o = d.berth(&a);
        assert_ne!(code(&o), 0, "{a:?}");
        assert!(stderr(&o).contains(msg), "{a:?}: {}", stderr(&o));
    }
}

#[test]
fn privileged_exec_gets_every_capability() {
    let d = Daemon::start();
    d.berth(&["run", "-d", "--name", "box", "busybox", "sleep", "1000"]);
    let caps = |o: &std::process::Output| {
        stdout(o)
            .lines()
            .find_map(|l| l.strip_prefix("CapEff:\t").map(String::from))
            .unwrap_or_default()
    };
    let plain = d.berth(&["exec", "box", "grep", "CapEff", "/proc/self/status"]);
    assert_eq!(caps(&plain), "00000000a80425fb");
    for o in [
        d.berth(&[
            "exec",
            "--privileged",
            "box",
            "grep",
            "CapEff",
            "/proc/self/status",
        ]),
        d.docker(&[
            "exec",
            "--privileged",
            "box",
            "grep",
            "CapEff",
            "/proc/self/status",
        ]),
    ] {
        let c = u64::from_str_radix(&caps(&o), 16).unwrap_or(0);
        // CAP_SYS_ADMIN (21) and CAP_NET_ADMIN (12) among them
        assert!(
            c & (1 << 21) != 0 && c & (1 << 12) != 0,
            "{:x} {}",
            c,
            stderr(&o)
        );
    }
    // the container's own processes keep the default set
    let o = d.berth(&["exec", "box", "grep", "CapEff", "/proc/1/status"]);
    assert_eq!(caps(&o), "00000000a80425fb");
}

#[test]
fn privileged_containers_see_the_host_devices() {
    use std::os::unix::fs::FileTypeExt;
    let d = Daemon::start();
    // a host device outside Docker's default set
    let defaults = [
        "null", "zero", "full", "random", "urandom", "tty", "console", "ptmx",
    ];
    let extra = std::fs::read_dir("/dev")
        .expect("/dev")
        .flatten()
        .filter(|e| e.file_type().map(|t| t.is_char_device()).unwrap_or(false))
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .find(|n| !defaults.contains(&n.as_str()))
        .expect("the host has some other character device");
    let path = format!("/dev/{extra}");
    let o = d.berth(&[
        "run",
        "--rm",
        "--privileged",
        "busybox",
        "test",
        "-c",
        &path,
    ]);
    assert_eq!(
        code(&o),
        0,
        "{path} missing under --privileged: {}",
        stderr(&o)
    );
    let o = d.berth(&["run", "--rm", "busybox", "test", "-e", &path]);
    assert_ne!(code(&o), 0, "{path} present without --privileged");
}

#[test]
fn port_wait_condition_and_image_volumes() {
    let d = Daemon::start();
    d.berth(&["run", "-d", "--name", "noports", "busybox", "sleep", "100"]);
    // nothing can be published before bridge networking: docker's answers
    for o in [
        d.berth(&["port", "noports"]),
        d.docker(&["port", "noports"]),
    ] {
        assert_eq!((code(&o), stdout(&o)), (0, String::new()), "{}", stderr(&o));
    }
    let o = d.berth(&["port", "noports", "80"]);
    assert_eq!(code(&o), 1);
    assert!(
        stderr(&o).contains("No public port '80/tcp' published for noports"),
        "{}",
        stderr(&o)
    );
    // wait --condition removed returns once --rm removed the container
    d.berth(&[
        "run",
        "-d",
        "--rm",
        "--name",
        "brief",
        "busybox",
        "sh",
        "-c",
        "sleep 0.3; exit 2",
    ]);
    let o = d.berth(&["wait", "--condition", "removed", "brief"]);
    assert_eq!(stdout(&o), "2\n", "{}", stderr(&o));
    assert_eq!(code(&d.berth(&["inspect", "brief"])), 1, "removed by then");
    // an image's VOLUME gives each container an anonymous volume
    let tar = common::busybox_tar().display().to_string();
    let o = d.berth(&[
        "import",
        "-c",
        "VOLUME /data",
        "-c",
        "CMD [\"sh\"]",
        &tar,
        "withvol",
    ]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    d.berth(&[
        "run",
        "--name",
        "uses",
        "withvol",
        "sh",
        "-c",
        "echo kept > /data/f",
    ]);
    let o = d.berth(&[
        "inspect",
        "-f",
        "{{range .Mounts}}{{.Type}} {{.Destination}}{{end}}",
        "uses",
    ]);
    assert_eq!(stdout(&o), "volume /data\n");
    let o = d.berth(&["volume", "ls", "-q"]);
    assert_eq!(stdout(&o).lines().count(), 1);
}
