//! `system df` and `system prune`: berth's CLI prints what the docker
//! CLI prints from the same daemon, and prune reclaims what df counted.

mod common;

use common::{Daemon, code, stderr, stdout};

#[test]
fn df_matches_the_docker_cli_and_prune_reclaims() {
    let d = Daemon::start();
    // the 1.13 sequence: a container writing 4 MB into a volume
    d.berth(&["volume", "create", "data"]);
    let o = d.berth(&[
        "run",
        "--name",
        "writer",
        "-v",
        "data:/data",
        "busybox",
        "sh",
        "-c",
        "head -c 4000000 /dev/zero > /data/f; echo hi > /x",
    ]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    d.berth(&["commit", "writer", "snap:1"]);
    d.berth(&["run", "-d", "--name", "runner", "busybox", "sleep", "1000"]);
    // an anonymous volume nothing uses once its container is gone
    d.berth(&["run", "--name", "anon", "-v", "/scratch", "busybox", "true"]);

    for args in [
        vec!["system", "df"],
        vec!["system", "df", "-v"],
        vec!["system", "df", "--format", "{{json .}}"],
        vec![
            "system",
            "df",
            "--format",
            "table {{.Type}}\t{{.Reclaimable}}",
        ],
    ] {
        // relative times ("Less than a second ago") may cross a second
        // between the two commands: a real difference stays on retries
        let mut last = None;
        for _ in 0..3 {
            let ours = d.berth(&args);
            let theirs = d.docker(&args);
            assert_eq!(code(&ours), 0, "{}", stderr(&ours));
            if stdout(&ours) == stdout(&theirs) {
                last = None;
                break;
            }
            last = Some((stdout(&ours), stdout(&theirs)));
        }
        if let Some((ours, theirs)) = last {
            assert_eq!(ours, theirs, "{args:?}");
        }
    }
    let out = stdout(&d.berth(&["system", "df"]));
    let volumes = out
        .lines()
        .find(|l| l.starts_with("Local Volumes"))
        .unwrap();
    assert!(volumes.contains("4MB"), "{out}");
    let containers = out.lines().find(|l| l.starts_with("Containers")).unwrap();
    assert!(
        containers.contains(" 3 ") && containers.contains(" 1 "),
        "{out}"
    );

    // prune: stopped containers, unused networks, anonymous volumes,
    // dangling images; the running container and its image stay
    d.berth(&["network", "create", "unused"]);
    let o = d.berth(&["system", "prune", "-f", "--volumes"]);
    let out = stdout(&o);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    assert!(out.starts_with("Deleted Containers:\n"), "{out}");
    assert!(out.contains("Deleted Networks:\nunused\n"), "{out}");
    assert!(out.contains("Deleted Volumes:\n"), "{out}");
    assert!(out.contains("Total reclaimed space:"), "{out}");
    let o = d.berth(&["ps", "-a", "--format", "{{.Names}}"]);
    assert_eq!(stdout(&o), "runner\n");
    // the named volume is not anonymous: it stays
    let o = d.berth(&["volume", "ls", "-q"]);
    assert_eq!(stdout(&o), "data\n");

    // without -f, a "no" keeps everything
    let o = d.berth(&["system", "prune", "-a"]);
    assert!(
        stdout(&o).contains("WARNING! This will remove:\n  - all stopped containers\n"),
        "{}",
        stdout(&o)
    );
    assert!(
        stdout(&o).contains("  - all images without at least one container associated to them\n"),
        "{}",
        stdout(&o)
    );
    let o = d.berth(&["images", "-q"]);
    assert_eq!(stdout(&o).lines().count(), 2);

    // -a: every image no container uses goes
    let o = d.berth(&["system", "prune", "-a", "-f"]);
    assert!(stdout(&o).contains("untagged: snap:1"), "{}", stdout(&o));
    let o = d.berth(&["images", "--format", "{{.Repository}}"]);
    assert_eq!(stdout(&o), "busybox\n");
}

#[test]
fn metrics_parse_with_prometheus_client_and_count_actions() {
    let mut d = Daemon::start();
    d.stop();
    d.flags = vec!["--metrics-addr".into(), "127.0.0.1:9323".into()];
    d.start_again();
    d.berth(&["run", "--rm", "busybox", "true"]);
    d.berth(&["run", "-d", "--name", "up", "busybox", "sleep", "1000"]);
    d.berth(&["create", "--name", "idle", "busybox", "true"]);
    d.berth(&["network", "create", "metered"]);
    d.berth(&["network", "connect", "metered", "up"]);
    let text = d
        .get("http://127.0.0.1:9323/metrics")
        .expect("metrics answer");

    // Python's prometheus_client (Debian's) reads it as Prometheus would
    use std::io::Write;
    let script = r#"
import sys
from prometheus_client.parser import text_string_to_metric_families
for fam in text_string_to_metric_families(sys.stdin.read()):
    for s in fam.samples:
        labels = ",".join(f"{k}={v}" for k, v in sorted(s.labels.items()))
        print(f"{fam.type} {s.name} {labels} {s.value}")
"#;
    let mut py = std::process::Command::new("/usr/bin/python3")
        .arg("-c")
        .arg(script)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("python3 with prometheus_client (Debian's python3-prometheus-client)");
    py.stdin.take().unwrap().write_all(text.as_bytes()).unwrap();
    let o = py.wait_with_output().unwrap();
    assert!(o.status.success(), "{}\n{text}", stderr(&o));
    let parsed = stdout(&o);
    let value = |prefix: &str| -> f64 {
        parsed
            .lines()
            .find(|l| l.starts_with(prefix))
            .and_then(|l| l.rsplit(' ').next())
            .and_then(|v| v.parse().ok())
            .unwrap_or_else(|| panic!("no {prefix} in:\n{parsed}"))
    };
    let starts = value("histogram engine_daemon_container_actions_seconds_count action=start ");
    assert_eq!(starts, 2.0, "{parsed}");
    let creates = value("histogram engine_daemon_container_actions_seconds_count action=create ");
    assert_eq!(creates, 3.0, "{parsed}");
    assert_eq!(
        value("gauge engine_daemon_container_states_containers state=running "),
        1.0
    );
    assert_eq!(
        value("gauge engine_daemon_container_states_containers state=stopped "),
        1.0
    );
    assert!(
        value("counter engine_daemon_events_total ") >= 6.0,
        "{parsed}"
    );
    assert_eq!(
        value("histogram engine_daemon_network_actions_seconds_count action=create "),
        1.0
    );
    assert_eq!(
        value("histogram engine_daemon_network_actions_seconds_count action=connect "),
        1.0
    );
    assert!(
        parsed.contains("histogram berth_api_request_duration_seconds_count method=POST,route=/containers/{id}/start,status=204 2"),
        "{parsed}"
    );
}

#[test]
fn client_config_formats_apply_as_in_the_docker_cli() {
    let d = Daemon::start();
    d.berth(&["run", "--name", "done", "busybox", "true"]);
    d.berth(&["run", "-d", "--name", "live", "busybox", "sleep", "1000"]);
    d.berth(&["volume", "create", "kept"]);
    let cfg = d.dir.path().join("client-config");
    std::fs::create_dir_all(&cfg).unwrap();
    std::fs::write(
        cfg.join("config.json"),
        r#"{"psFormat": "table {{.Names}}\t{{.Image}}", "imagesFormat": "{{.Repository}}:{{.Tag}}",
            "volumesFormat": "vol {{.Name}}", "networksFormat": "table {{.Name}}\t{{.Driver}}",
            "statsFormat": "{{.Name}} has stats"}"#,
    )
    .unwrap();
    let dir = cfg.to_str().unwrap();
    // --config DIR, in both CLIs
    for args in [
        vec!["ps", "-a"],
        vec!["images"],
        vec!["volume", "ls"],
        vec!["network", "ls"],
        vec!["stats", "--no-stream"],
    ] {
        let mut ours = vec!["--config", dir];
        ours.extend(&args);
        let o = d.berth(&ours);
        let theirs = d.docker(&ours);
        assert_eq!(code(&o), 0, "{}", stderr(&o));
        assert_eq!(stdout(&o), stdout(&theirs), "{args:?}");
    }
    let o = d.berth(&["--config", dir, "images"]);
    assert_eq!(stdout(&o), "busybox:latest\n");
    let o = d.berth(&["--config", dir, "volume", "ls"]);
    assert_eq!(stdout(&o), "vol kept\n");
    let o = d.berth(&["--config", dir, "stats", "--no-stream"]);
    assert_eq!(stdout(&o), "live has stats\n");
    // BERTH_CONFIG does the same; --format still wins
    let o = std::process::Command::new(common::berth_bin())
        .args(["ps", "-a", "--format", "{{.Status}}"])
        .env("BERTH_HOST", d.host())
        .env("BERTH_CONFIG", &cfg)
        .output()
        .unwrap();
    let statuses = stdout(&o);
    assert!(statuses.starts_with("Up "), "{statuses}");
    assert!(
        statuses
            .lines()
            .nth(1)
            .unwrap_or_default()
            .starts_with("Exited (0) "),
        "{statuses}"
    );
    let o = std::process::Command::new(common::berth_bin())
        .args(["ps", "-a"])
        .env("BERTH_HOST", d.host())
        .env("BERTH_CONFIG", &cfg)
        .output()
        .unwrap();
    assert_eq!(
        stdout(&o),
        "NAMES     IMAGE\nlive      busybox\ndone      busybox\n"
    );
}

#[test]
fn sighup_reloads_the_configuration() {
    let mut d = Daemon::start();
    d.stop();
    // a daemon of its own: the harness's sets --log-level, which the file
    // could then not set
    let cfg = d.dir.path().join("daemon.json");
    let log_path = d.dir.path().join("reload.log");
    let log = std::fs::File::create(&log_path).expect("log");
    let started = chrono_now_secs();
    let spawn = |cfg_text: &str| {
        std::fs::write(&cfg, cfg_text).expect("write daemon.json");
    };
    spawn(r#"{"log-level": "warn", "max-concurrent-downloads": 3}"#);
    let host = d.host();
    let mut child = d
        .daemon_command(&["-H", &host])
        .stdin(std::process::Stdio::null())
        .stdout(log.try_clone().expect("log"))
        .stderr(log)
        .spawn()
        .expect("berth daemon");
    assert!(common::eventually(20, || code(&d.berth(&["version"])) == 0));
    let read_log = || std::fs::read_to_string(&log_path).unwrap_or_default();
    assert!(!read_log().contains("uri=/version"), "{}", read_log());
    let o = d.berth(&["info", "--format", "{{.Debug}} {{json .Labels}}"]);
    assert_eq!(stdout(&o), "false []\n", "{}", stderr(&o));

    spawn(
        r#"{"log-level": "debug", "debug": true, "labels": ["env=test"],
            "log-driver": "local", "log-opts": {"max-file": "2"}}"#,
    );
    let pid = common::child_of(child.id()).expect("daemon pid");
    // SAFETY: plain kill(2)
    unsafe { libc::kill(pid, libc::SIGHUP) };
    assert!(
        common::eventually(10, || {
            d.berth(&["version"]);
            read_log().contains("uri=/version")
        }),
        "the log level did not change: {}",
        read_log()
    );
    let o = d.berth(&["info", "--format", "{{.Debug}} {{json .Labels}}"]);
    assert_eq!(stdout(&o), "true [\"env=test\"]\n", "{}", stderr(&o));
    // the default log driver of new containers changed too
    let o = d.berth(&["info", "--format", "{{.LoggingDriver}}"]);
    assert_eq!(stdout(&o), "local\n");
    let o = d.berth(&["create", "--name", "after-reload", "busybox", "true"]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    let o = d.berth(&[
        "inspect",
        "-f",
        "{{json .HostConfig.LogConfig}}",
        "after-reload",
    ]);
    assert_eq!(
        stdout(&o),
        "{\"Type\":\"local\",\"Config\":{\"max-file\":\"2\"}}\n"
    );
    let o = d.berth(&[
        "events",
        "--since",
        &started.to_string(),
        "--until",
        &(chrono_now_secs() + 1).to_string(),
        "--filter",
        "type=daemon",
        "--format",
        "{{.Type}} {{.Action}} {{index .Actor.Attributes \"log-level\"}}",
    ]);
    assert_eq!(stdout(&o), "daemon reload debug\n", "{}", stderr(&o));

    // a file that no longer validates changes nothing
    spawn(r#"{"log-level": "loud"}"#);
    // SAFETY: plain kill(2)
    unsafe { libc::kill(pid, libc::SIGHUP) };
    assert!(
        common::eventually(10, || read_log().contains(
            "reloading the configuration: unable to parse logging level: loud"
        )),
        "{}",
        read_log()
    );
    let o = d.berth(&["info", "--format", "{{.Debug}}"]);
    assert_eq!(stdout(&o), "true\n");

    // SAFETY: plain kill(2)
    unsafe { libc::kill(pid, libc::SIGTERM) };
    let _ = child.wait();
}

fn chrono_now_secs() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

#[test]
fn info_matches_the_docker_cli() {
    let mut d = Daemon::start();
    d.stop();
    d.flags = vec![
        "--insecure-registry".into(),
        "10.0.0.1:5000".into(),
        "--insecure-registry".into(),
        "10.9.0.0/16".into(),
        "--registry-mirror".into(),
        "http://127.0.0.1:5001".into(),
        "--label".into(),
        "env=test".into(),
    ];
    d.start_again();
    d.berth(&["run", "--name", "one", "busybox", "true"]);
    let server = |o: std::process::Output| {
        let text = stdout(&o);
        text[text.find("Server:").unwrap_or(0)..].to_string()
    };
    let ours = server(d.berth(&["info"]));
    let theirs = server(d.docker(&["info"]));
    assert_eq!(ours, theirs);
    for want in [
        " Plugins:\n  Volume: local\n  Network: bridge host none\n  Log: fluentd gelf journald json-file local syslog\n",
        " Swarm: inactive\n",
        " Security Options:\n  seccomp\n   Profile: builtin\n",
        " Labels:\n  env=test\n",
        " Insecure Registries:\n  10.0.0.1:5000\n  127.0.0.0/8\n  10.9.0.0/16\n",
        " Registry Mirrors:\n  http://127.0.0.1:5001\n",
        " Containers: 1\n  Running: 0\n  Paused: 0\n  Stopped: 1\n",
    ] {
        assert!(ours.contains(want), "{want:?} not in\n{ours}");
    }
}

#[test]
fn ps_size_and_format_fields_match_the_docker_cli() {
    let d = Daemon::start();
    let o = d.berth(&[
        "run",
        "-d",
        "--name",
        "vols",
        "-v",
        "psvol:/data",
        "-v",
        "/tmp:/hosttmp",
        "busybox",
        "sleep",
        "60",
    ]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    let o = d.berth(&[
        "run",
        "--name",
        "writer",
        "busybox",
        "sh",
        "-c",
        "head -c 5000 /dev/zero > /f",
    ]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    for args in [
        vec!["ps", "-a", "-s"],
        vec![
            "ps",
            "-a",
            "--format",
            "{{.Names}}|{{.Size}}|{{.Mounts}}|{{.Networks}}|{{.LocalVolumes}}",
        ],
        vec![
            "ps",
            "-a",
            "--no-trunc",
            "--format",
            "{{.Names}} {{.Mounts}}",
        ],
        vec!["ps", "-a", "--format", "table {{.Names}}\t{{.Size}}"],
    ] {
        d.assert_same_output(&args);
    }
    let o = d.berth(&[
        "ps",
        "-a",
        "--format",
        "{{.Names}} {{.Size}} {{.LocalVolumes}}",
    ]);
    let text = stdout(&o);
    assert!(text.contains("writer 5kB (virtual "), "{text}");
    assert!(text.contains("vols 0B (virtual "), "{text}");
    assert!(
        text.contains("vols 0B (virtual ") && text.contains(" 1\n"),
        "{text}"
    );
    let _ = d.berth(&["rm", "-f", "vols"]);
}

#[test]
fn df_sizes_follow_changes_to_stopped_containers() {
    let d = Daemon::start();
    let o = d.berth(&[
        "run",
        "--name",
        "grows",
        "busybox",
        "sh",
        "-c",
        "head -c 1000 /dev/zero > /a",
    ]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    let size = || {
        let o = d.berth(&[
            "ps",
            "-a",
            "--filter",
            "name=grows",
            "--format",
            "{{.Size}}",
        ]);
        stdout(&o).split(' ').next().unwrap_or_default().to_string()
    };
    let df_size = || {
        let o = d.berth(&[
            "system",
            "df",
            "--format",
            "{{if eq .Type \"Containers\"}}{{.Size}}{{end}}",
        ]);
        stdout(&o).trim().to_string()
    };
    assert_eq!(size(), "1kB");
    assert_eq!(df_size(), "1kB");
    // cp into the stopped container: the kept size is forgotten
    let src = d.dir.path().join("big");
    std::fs::write(&src, vec![b'x'; 4000]).expect("write");
    let o = d.berth(&["cp", &src.display().to_string(), "grows:/big"]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    assert_eq!(size(), "5kB");
    assert_eq!(df_size(), "5kB");
    for o in [
        d.berth(&[
            "inspect",
            "-s",
            "-f",
            "{{.SizeRw}} {{.SizeRootFs}}",
            "grows",
        ]),
        d.docker(&[
            "container",
            "inspect",
            "-s",
            "-f",
            "{{.SizeRw}} {{.SizeRootFs}}",
            "grows",
        ]),
    ] {
        let text = stdout(&o);
        let v: Vec<u64> = text
            .split_whitespace()
            .filter_map(|x| x.parse().ok())
            .collect();
        assert_eq!(v.len(), 2, "{text}{}", stderr(&o));
        assert_eq!(v[0], 5000, "{text}");
        // the image's size on top
        assert!(v[1] > 1_000_000 + 5000, "{text}");
    }
    // and a run that writes more
    let o = d.berth(&["start", "-a", "grows"]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    let o = d.berth(&["commit", "grows", "grown"]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    let o = d.berth(&[
        "run",
        "--name",
        "again",
        "grown",
        "sh",
        "-c",
        "head -c 3000 /dev/zero > /c",
    ]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    let o = d.berth(&[
        "ps",
        "-a",
        "--filter",
        "name=again",
        "--format",
        "{{.Size}}",
    ]);
    assert!(stdout(&o).starts_with("3kB "), "{}", stdout(&o));
}

#[test]
fn experimental_mode_shows_in_version_info_and_ping() {
    let mut d = Daemon::start();
    let ping = |d: &Daemon| {
        let (status, head, _) = common::raw_request(&d.sock, "GET", "/_ping", None).expect("ping");
        assert_eq!(status, 200);
        head.to_ascii_lowercase()
    };
    assert!(ping(&d).contains("docker-experimental: false"));
    let o = d.docker(&["version", "--format", "{{.Server.Experimental}}"]);
    assert_eq!(stdout(&o), "false\n", "{}", stderr(&o));
    // the docker CLI sends --squash only to an experimental daemon
    let ctx = d.dir.path().join("ctx");
    std::fs::create_dir_all(&ctx).expect("ctx");
    std::fs::write(
        ctx.join("Dockerfile"),
        "FROM busybox\nRUN echo a > /a\nRUN echo b > /b\n",
    )
    .expect("Dockerfile");
    let squash = |d: &Daemon| {
        d.docker(&[
            "build",
            "--squash",
            "-q",
            "-t",
            "sq",
            &ctx.display().to_string(),
        ])
    };
    let o = squash(&d);
    assert_ne!(code(&o), 0);
    assert!(
        stderr(&o).contains("only supported on a Docker daemon with experimental features enabled"),
        "{}",
        stderr(&o)
    );
    d.stop();
    d.flags = vec!["--experimental".into()];
    d.start_again();
    assert!(ping(&d).contains("docker-experimental: true"));
    let o = squash(&d);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    let o = d.berth(&["inspect", "-f", "{{len .RootFS.Layers}}", "sq"]);
    assert_eq!(stdout(&o), "2\n");
    for cli in ["berth", "docker"] {
        let run = |args: &[&str]| {
            if cli == "berth" {
                d.berth(args)
            } else {
                d.docker(args)
            }
        };
        let o = run(&["version", "--format", "{{.Server.Experimental}}"]);
        assert_eq!(stdout(&o), "true\n", "{cli}: {}", stderr(&o));
        let o = run(&["info", "--format", "{{.ExperimentalBuild}}"]);
        assert_eq!(stdout(&o), "true\n", "{cli}: {}", stderr(&o));
        let o = run(&["info"]);
        assert!(
            stdout(&o).contains(" Experimental: true\n"),
            "{cli}: {}",
            stdout(&o)
        );
    }
}

#[test]
fn list_filters_json_formats_and_label_methods() {
    let d = Daemon::start();
    let ok = |args: &[&str]| {
        let o = d.berth(args);
        assert_eq!(code(&o), 0, "{args:?}: {}", stderr(&o));
        stdout(&o)
    };
    ok(&[
        "run",
        "-d",
        "--name",
        "web1",
        "-l",
        "app=a",
        "-l",
        "tier=front",
        "-p",
        "8080:80",
        "--expose",
        "9000",
        "busybox",
        "sleep",
        "60",
    ]);
    ok(&[
        "run", "-d", "--name", "web2", "-l", "app=a", "busybox", "sleep", "60",
    ]);
    ok(&[
        "create",
        "--name",
        "db",
        "-v",
        "dbdata:/data",
        "busybox",
        "true",
    ]);
    ok(&["pause", "web2"]);
    let names = |filters: &[&str]| {
        let mut args = vec!["ps", "-a", "--format", "{{.Names}}"];
        for f in filters {
            args.push("--filter");
            args.push(f);
        }
        let mut v: Vec<String> = ok(&args).lines().map(String::from).collect();
        v.sort();
        v.join(" ")
    };
    for (filters, want) in [
        (vec!["name=^web"], "web1 web2"),
        (vec!["name=^/web1$"], "web1"),
        (vec!["label=app=a"], "web1 web2"),
        (vec!["label=app=a", "label=tier=front"], "web1"),
        (vec!["status=paused"], "web2"),
        (vec!["status=running"], "web1"),
        (vec!["status=created"], "db"),
        (vec!["before=db"], "web1 web2"),
        (vec!["since=web1"], "db web2"),
        (vec!["publish=8080"], "web1"),
        (vec!["publish=8000-8090/tcp"], "web1"),
        (vec!["expose=80"], "web1"),
        (vec!["expose=9000"], "web1"),
        (vec!["volume=dbdata"], "db"),
        (vec!["volume=/data"], "db"),
        (vec!["network=bridge"], "web1 web2"),
        (vec!["ancestor=busybox"], "db web1 web2"),
        (vec!["is-task=true"], ""),
    ] {
        assert_eq!(names(&filters), want, "{filters:?}");
    }
    for (f, want) in [
        ("bogus=1", "invalid filter 'bogus'"),
        ("status=nope", "invalid filter 'status=nope'"),
    ] {
        let o = d.docker(&["ps", "--filter", f]);
        assert_ne!(code(&o), 0);
        assert!(stderr(&o).contains(want), "{f}: {}", stderr(&o));
    }
    ok(&["unpause", "web2"]);
    // --format json and .Label, the same through both CLIs
    for args in [
        vec!["ps", "-a", "--format", "json"],
        vec!["ps", "-a", "--format", "{{.Names}} {{.Label \"tier\"}}"],
        vec!["images", "--format", "json"],
        vec![
            "images",
            "--format",
            "{{.Repository}} {{.Containers}} {{.SharedSize}} {{.UniqueSize}} {{.VirtualSize}}",
        ],
        vec!["volume", "ls", "--format", "json"],
        vec![
            "network",
            "ls",
            "--filter",
            "name=bridge",
            "--format",
            "{{.Name}} {{.Label \"x\"}}",
        ],
        vec!["version", "--format", "{{json .Server.Os}}"],
        vec![
            "version",
            "--format",
            "{{.Client.Os}} {{.Client.Arch}} {{.Client.Context}}",
        ],
        vec![
            "network",
            "ls",
            "--format",
            "{{.Name}} {{.CreatedAt}} {{.Scope}}",
        ],
    ] {
        let ours = d.berth(&args);
        let theirs = d.docker(&args);
        assert_eq!(code(&ours), 0, "{args:?}: {}", stderr(&ours));
        // RunningFor/CreatedSince may cross a second between the two runs,
        // and the docker CLI joins labels in Go's random map order
        let strip = |s: String| {
            s.lines()
                .map(|l| {
                    let l = l.split("\"RunningFor\"").next().unwrap_or(l);
                    let l = l.split("\"CreatedSince\"").next().unwrap_or(l);
                    match l.split_once("\"Labels\":\"") {
                        Some((a, b)) => {
                            format!("{a}{}", b.split_once("\",").map(|x| x.1).unwrap_or(""))
                        }
                        None => l.to_string(),
                    }
                })
                .collect::<Vec<_>>()
                .join("\n")
        };
        assert_eq!(strip(stdout(&ours)), strip(stdout(&theirs)), "{args:?}");
    }
    // system df -v --format json: the four lists, compared as values
    // without the relative times
    let df_json = |o: std::process::Output| -> serde_json::Value {
        let mut v: serde_json::Value = serde_json::from_str(stdout(&o).trim()).expect("df json");
        for list in ["Images", "Containers", "Volumes", "BuildCache"] {
            for r in v[list].as_array_mut().expect("list") {
                let m = r.as_object_mut().expect("row");
                for k in ["RunningFor", "CreatedSince", "Status", "LastUsedSince"] {
                    m.remove(k);
                }
            }
        }
        v
    };
    let ours = df_json(d.berth(&["system", "df", "-v", "--format", "json"]));
    let theirs = df_json(d.docker(&["system", "df", "-v", "--format", "json"]));
    assert_eq!(ours, theirs);
    assert_eq!(ours["Containers"].as_array().map(Vec::len), Some(3));
    assert!(
        ours["Volumes"]
            .as_array()
            .is_some_and(|v| v.iter().any(|x| x["Name"] == "dbdata" && x["Links"] == "1"))
    );
    let ps_json: serde_json::Value =
        serde_json::from_str(ok(&["ps", "--filter", "name=web1", "--format", "json"]).trim())
            .expect("json");
    assert_eq!(ps_json["Names"], "web1");
    // sorted by berth (the docker CLI leaves Go's map order)
    assert_eq!(ps_json["Labels"], "app=a,tier=front");
    // inspect's JSON: one compact array; compared as values, since the
    // daemon's maps (labels, ports) come in no fixed order
    let inspect_json = |o: std::process::Output| -> serde_json::Value {
        let text = stdout(&o);
        assert_eq!(text.lines().count(), 1, "{text}");
        serde_json::from_str(text.trim()).expect("json")
    };
    let ours = inspect_json(d.berth(&["inspect", "--format", "json", "web1", "db"]));
    let theirs = inspect_json(d.docker(&["inspect", "--format", "json", "web1", "db"]));
    assert_eq!(ours, theirs);
    assert_eq!(ours[0]["Name"], "/web1");
    assert_eq!(ours[1]["Name"], "/db");

    // events: Go field names in templates, image filters without a tag
    let since = (chrono_now_secs() - 60).to_string();
    let until = (chrono_now_secs() + 1).to_string();
    let o = d.docker(&[
        "events", "--since", &since, "--until", &until, "--filter", "image=busybox", "--filter",
        "event=create", "--format", "{{.Type}} {{.Action}} {{.Actor.Attributes.name}} {{gt .Time 0}} {{gt .TimeNano 0}} {{.Scope}}",
    ]);
    let text = stdout(&o);
    assert!(
        text.contains("container create web1 true true local\n"),
        "{text}{}",
        stderr(&o)
    );
    assert_eq!(text.lines().count(), 3, "{text}");
    let _ = d.berth(&["rm", "-f", "web1", "web2"]);
}
