//! Behaviours real clients depend on, pinned to dockerd's: the answers of
//! endpoints berth does not serve yet, inspect and list fields, lifecycle
//! corner cases. Each is checked over raw HTTP and, where it shows them,
//! through the docker CLI.

mod common;

use common::{Daemon, code, raw_request, stderr, stdout};

fn message(body: &[u8]) -> String {
    let v: serde_json::Value = serde_json::from_slice(body).expect("JSON error body");
    v["message"].as_str().expect("message field").to_string()
}

const NOT_A_MANAGER: &str = "This node is not a swarm manager. Use \"docker swarm init\" or \"docker swarm join\" to connect this node to swarm and try again.";

#[test]
fn swarm_and_plugin_endpoints_answer_as_outside_a_swarm() {
    let d = Daemon::start_bare();
    for (method, path) in [
        ("GET", "/swarm"),
        ("GET", "/v1.41/swarm/unlockkey"),
        ("POST", "/swarm/update"),
        ("GET", "/nodes"),
        ("GET", "/nodes/n1"),
        ("DELETE", "/nodes/n1"),
        ("GET", "/services"),
        ("POST", "/services/create"),
        ("GET", "/services/s1/logs"),
        ("GET", "/tasks"),
        ("GET", "/secrets"),
        ("POST", "/configs/create"),
        ("POST", "/configs/c1/update"),
    ] {
        let (status, _, body) = raw_request(&d.sock, method, path, None).unwrap();
        assert_eq!(status, 503, "{method} {path}");
        assert_eq!(message(&body), NOT_A_MANAGER, "{method} {path}");
    }
    for path in ["/swarm/leave", "/swarm/leave?force=1", "/swarm/unlock"] {
        let (status, _, body) = raw_request(&d.sock, "POST", path, None).unwrap();
        assert_eq!(status, 503, "{path}");
        assert_eq!(message(&body), "This node is not part of a swarm");
    }
    let (status, _, body) = raw_request(&d.sock, "GET", "/plugins", None).unwrap();
    assert_eq!((status, body.as_slice()), (200, b"[]".as_slice()));
    let (status, _, body) = raw_request(&d.sock, "GET", "/plugins/vieux/json", None).unwrap();
    assert_eq!(status, 404);
    assert_eq!(message(&body), "plugin \"vieux\" not found");

    // the docker CLI shows the daemon's words and fails
    let out = d.docker(&["swarm", "leave", "--force"]);
    assert_eq!(code(&out), 1);
    assert!(
        stderr(&out).contains("This node is not part of a swarm"),
        "{}",
        stderr(&out)
    );
    for args in [&["node", "ls"][..], &["service", "ls"], &["secret", "ls"]] {
        let out = d.docker(args);
        assert_eq!(code(&out), 1, "{args:?}");
        assert!(
            stderr(&out).contains("not a swarm manager"),
            "{args:?}: {}",
            stderr(&out)
        );
    }
    let out = d.docker(&["plugin", "ls"]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert_eq!(
        stdout(&out).split_whitespace().collect::<Vec<_>>(),
        ["ID", "NAME", "DESCRIPTION", "ENABLED"]
    );
}

fn json_of(d: &Daemon, path: &str) -> serde_json::Value {
    let (status, _, body) = raw_request(&d.sock, "GET", path, None).unwrap();
    assert_eq!(status, 200, "{path}: {}", String::from_utf8_lossy(&body));
    serde_json::from_slice(&body).unwrap()
}

#[test]
fn container_inspect_sends_every_field_dockerd_sends() {
    let d = Daemon::start();
    let ok = |o: std::process::Output| assert_eq!(code(&o), 0, "{}", stderr(&o));
    ok(d.docker(&["network", "create", "front"]));
    ok(d.docker(&["run", "-d", "--name", "on-bridge", "busybox", "sleep", "60"]));
    ok(d.docker(&[
        "create",
        "--name",
        "on-front",
        "--network",
        "front",
        "busybox",
        "true",
    ]));
    ok(d.docker(&[
        "create",
        "--name",
        "priv",
        "--privileged",
        "busybox",
        "true",
    ]));

    let c = json_of(&d, "/v1.47/containers/on-bridge/json");
    let hc = &c["HostConfig"];
    assert_eq!(hc["Privileged"], false);
    assert_eq!(hc["PidMode"], "");
    assert_eq!(hc["IpcMode"], "private");
    assert_eq!(hc["UsernsMode"], "");
    assert_eq!(hc["Runtime"], "runc");
    assert_eq!(hc["CpuRealtimeRuntime"], 0);
    assert_eq!(hc["ShmSize"], 67108864);
    assert!(
        hc["MaskedPaths"].as_array().is_some_and(|m| m.len() > 5),
        "{hc}"
    );
    assert!(
        hc["ReadonlyPaths"]
            .as_array()
            .is_some_and(|m| !m.is_empty()),
        "{hc}"
    );
    assert!(hc.get("Links").is_some(), "{hc}");
    // berth's bounded rotation is the driver's default, not the container's
    assert_eq!(
        hc["LogConfig"],
        serde_json::json!({"Type": "json-file", "Config": {}})
    );
    let ns = &c["NetworkSettings"];
    let bridge = &ns["Networks"]["bridge"];
    assert!(!bridge["IPAddress"].as_str().unwrap().is_empty(), "{ns}");
    assert_eq!(ns["IPAddress"], bridge["IPAddress"]);
    assert_eq!(ns["Gateway"], bridge["Gateway"]);
    assert_eq!(ns["MacAddress"], bridge["MacAddress"]);
    for key in ["Aliases", "DriverOpts", "Links", "IPAMConfig"] {
        assert!(bridge.get(key).is_some(), "{key} missing: {bridge}");
    }

    // a privileged container has no masked paths
    let p = json_of(&d, "/v1.47/containers/priv/json");
    assert_eq!(p["HostConfig"]["MaskedPaths"], serde_json::Value::Null);
    assert_eq!(p["HostConfig"]["Privileged"], true);

    // before 1.45 dockerd added the short id and hostname to the aliases
    // of a user-defined network; not after
    let old = json_of(&d, "/v1.41/containers/on-front/json");
    let id = old["Id"].as_str().unwrap().to_string();
    let aliases = old["NetworkSettings"]["Networks"]["front"]["Aliases"].clone();
    assert!(
        aliases
            .as_array()
            .is_some_and(|a| a.contains(&id[..12].into())),
        "{aliases}"
    );
    assert_eq!(old["NetworkSettings"]["IPAddress"], "");
    let new = json_of(&d, "/v1.47/containers/on-front/json");
    assert_eq!(
        new["NetworkSettings"]["Networks"]["front"]["Aliases"],
        serde_json::Value::Null
    );

    // networks always carry their IPAM options
    let n = json_of(&d, "/v1.47/networks/front");
    assert!(n["IPAM"].get("Options").is_some(), "{n}");

    // the docker CLI reads the same fields
    let o = d.docker(&[
        "inspect",
        "-f",
        "{{.HostConfig.IpcMode}} {{.HostConfig.Runtime}}",
        "on-bridge",
    ]);
    assert_eq!(stdout(&o), "private runc\n", "{}", stderr(&o));
    let o = d.docker(&[
        "info",
        "-f",
        "{{.DefaultRuntime}} {{index .Runtimes \"runc\"}}",
    ]);
    assert!(
        stdout(&o).starts_with("runc {"),
        "{}{}",
        stdout(&o),
        stderr(&o)
    );
}

#[test]
fn image_inspect_answers_per_api_version() {
    let d = Daemon::start();
    // docker-compose v1 reads ContainerConfig whenever it recreates
    let old = json_of(&d, "/v1.38/images/busybox/json");
    assert!(old["ContainerConfig"].is_object(), "{old}");
    assert!(old.get("VirtualSize").is_some(), "{old}");
    assert_eq!(old["GraphDriver"]["Name"], "overlay2");
    assert!(old["Parent"].is_string() && old["DockerVersion"].is_string());
    let new = json_of(&d, "/v1.47/images/busybox/json");
    assert!(new.get("ContainerConfig").is_none(), "{new}");
    assert!(new.get("VirtualSize").is_none(), "{new}");
    assert_eq!(new["GraphDriver"]["Name"], "overlay2");
    let o = d.docker(&["image", "inspect", "-f", "{{.GraphDriver.Name}}", "busybox"]);
    assert_eq!(stdout(&o), "overlay2\n", "{}", stderr(&o));
}

#[test]
fn an_unknown_runtime_is_refused_and_runc_is_accepted() {
    let d = Daemon::start();
    let o = d.docker(&["create", "--runtime", "kata", "busybox", "true"]);
    assert_eq!(code(&o), 1);
    assert!(
        stderr(&o).contains("unknown or invalid runtime name: kata"),
        "{}",
        stderr(&o)
    );
    let o = d.docker(&["create", "--runtime", "runc", "busybox", "true"]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
}

fn state(d: &Daemon, name: &str, field: &str) -> String {
    let o = d.docker(&["inspect", "-f", &format!("{{{{.State.{field}}}}}"), name]);
    stdout(&o).trim().to_string()
}

/// A container whose PID 1 ignores SIGTERM: only SIGKILL ends it.
const DEAF: &[&str] = &[
    "busybox",
    "sh",
    "-c",
    "trap '' TERM; while true; do sleep 1; done",
];

fn run_detached(d: &Daemon, name: &str, args: &[&str]) {
    let mut all = vec!["run", "-d", "--name", name];
    all.extend_from_slice(args);
    let o = d.docker(&all);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
}

#[test]
fn stop_waits_without_limit_kill_cuts_a_stop_short_and_a_lost_client_stops_anyway() {
    let d = Daemon::start();
    // t=-1: no SIGKILL; the process takes 2 s to exit after SIGTERM
    run_detached(
        &d,
        "slow",
        &[
            "busybox",
            "sh",
            "-c",
            "trap 'sleep 2; exit 7' TERM; touch /ready; while true; do sleep 1; done",
        ],
    );
    // SIGTERM before the trap is set would be ignored (PID 1)
    assert!(common::eventually(10, || {
        code(&d.docker(&["exec", "slow", "test", "-e", "/ready"])) == 0
    }));
    let (status, _, body) =
        raw_request(&d.sock, "POST", "/containers/slow/stop?t=-1", None).unwrap();
    assert_eq!(status, 204, "{}", String::from_utf8_lossy(&body));
    assert_eq!(state(&d, "slow", "ExitCode"), "7");

    // a kill while a long stop waits kills at once, and the stop returns
    run_detached(&d, "deaf", DEAF);
    let sock = d.sock.clone();
    let stop = std::thread::spawn(move || {
        raw_request(&sock, "POST", "/containers/deaf/stop?t=60", None).map(|r| r.0)
    });
    std::thread::sleep(std::time::Duration::from_millis(500));
    let t0 = std::time::Instant::now();
    let o = d.docker(&["kill", "deaf"]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    assert!(t0.elapsed().as_secs() < 10, "kill waited for the stop");
    assert_eq!(stop.join().unwrap().unwrap(), 204);
    assert_eq!(state(&d, "deaf", "Running"), "false");

    // a client that goes away mid-stop: the stop completes and is told
    run_detached(&d, "lost", DEAF);
    let before = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
        .to_string();
    {
        use std::io::Write;
        let mut s = std::os::unix::net::UnixStream::connect(&d.sock).unwrap();
        s.write_all(
            b"POST /containers/lost/stop?t=1 HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n",
        )
        .unwrap();
        std::thread::sleep(std::time::Duration::from_millis(200));
    }
    assert!(
        common::eventually(15, || state(&d, "lost", "Running") == "false"),
        "the stop was dropped with its client"
    );
    let stop_events = || {
        let o = d.docker(&[
            "events",
            "--since",
            &before,
            "--until",
            "0s",
            "--filter",
            "container=lost",
            "--filter",
            "event=stop",
            "--format",
            "{{.Action}}",
        ]);
        stdout(&o)
    };
    assert!(
        common::eventually(10, || stop_events() == "stop\n"),
        "{:?}",
        stop_events()
    );
}

#[test]
fn kill_ends_restart_policies_restarting_and_autoremove_containers_behave_as_dockerd() {
    let d = Daemon::start();
    // a kill is a stop by hand: restart=always does not bring it back
    run_detached(
        &d,
        "killed",
        &["--restart", "always", "busybox", "sleep", "100"],
    );
    assert_eq!(code(&d.docker(&["kill", "killed"])), 0);
    std::thread::sleep(std::time::Duration::from_millis(1500));
    assert_eq!(state(&d, "killed", "Status"), "exited");
    assert_eq!(
        stdout(&d.docker(&["inspect", "-f", "{{.RestartCount}}", "killed"])),
        "0\n"
    );

    // a restarting container is not removed without force (after six
    // quick exits the back-off is over 3 s: it is restarting, not running)
    run_detached(&d, "flap", &["--restart", "always", "busybox", "false"]);
    assert!(common::eventually(20, || {
        state(&d, "flap", "Status") == "restarting"
            && stdout(&d.docker(&["inspect", "-f", "{{.RestartCount}}", "flap"]))
                .trim()
                .parse::<u32>()
                .is_ok_and(|n| n >= 6)
    }));
    let o = d.docker(&["rm", "flap"]);
    assert_eq!(code(&o), 1);
    assert!(
        stderr(&o).contains(
            "container is restarting: stop the container before removing or force remove"
        ),
        "{}",
        stderr(&o)
    );
    assert_eq!(code(&d.docker(&["rm", "-f", "flap"])), 0);
    assert_ne!(code(&d.docker(&["inspect", "flap"])), 0);

    // AutoRemove: a restart keeps it, its restart policy cannot change, a
    // stop removes it
    run_detached(&d, "ar", &["--rm", "busybox", "sleep", "100"]);
    let o = d.docker(&["restart", "-t", "1", "ar"]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    assert_eq!(state(&d, "ar", "Running"), "true");
    let (status, _, _) = raw_request(
        &d.sock,
        "POST",
        "/containers/ar/update",
        Some(br#"{"RestartPolicy":{"Name":"always"}}"#),
    )
    .unwrap();
    assert_eq!(status, 409);
    assert_eq!(code(&d.docker(&["stop", "-t", "1", "ar"])), 0);
    assert!(common::eventually(10, || code(
        &d.docker(&["inspect", "ar"])
    ) != 0));

    // a container that never ran commits to an image like any other
    assert_eq!(
        code(&d.docker(&["create", "--name", "fresh", "busybox", "true"])),
        0
    );
    let o = d.docker(&["commit", "fresh", "fresh-img"]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    let o = d.docker(&["run", "--rm", "fresh-img", "true"]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
}
