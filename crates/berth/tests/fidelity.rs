//! Behaviours real clients depend on, pinned to dockerd's: the answers of
//! endpoints berth does not serve yet, inspect and list fields, lifecycle
//! corner cases. Each is checked over raw HTTP and, where it shows them,
//! through the docker CLI.

mod common;

use std::io::{Read, Write};
use std::os::unix::net::UnixStream;
use std::time::Duration;

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
        ("POST", "/swarm/update?version=1"),
        ("GET", "/nodes"),
        ("GET", "/nodes/n1"),
        ("DELETE", "/nodes/n1"),
        ("GET", "/services"),
        ("POST", "/services/create"),
        // with a stream chosen: without one dockerd answers 400 first
        ("GET", "/services/s1/logs?stdout=1"),
        ("GET", "/tasks"),
        ("GET", "/secrets"),
        ("POST", "/configs/create"),
        // with a version: without one dockerd answers 400 first
        ("POST", "/configs/c1/update?version=1"),
    ] {
        let (status, _, body) = raw_request(&d.sock, method, path, None).unwrap();
        assert_eq!(status, 503, "{method} {path}");
        assert_eq!(message(&body), NOT_A_MANAGER, "{method} {path}");
    }
    // dockerd reads the version before it asks the cluster
    let (status, _, body) = raw_request(&d.sock, "POST", "/swarm/update", None).unwrap();
    assert_eq!(
        (status, message(&body).as_str()),
        (
            400,
            "invalid swarm version '': strconv.ParseUint: parsing \"\": invalid syntax"
        )
    );
    for path in ["/swarm/leave", "/swarm/leave?force=1"] {
        let (status, _, body) = raw_request(&d.sock, "POST", path, None).unwrap();
        assert_eq!(status, 503, "{path}");
        assert_eq!(message(&body), "This node is not part of a swarm");
    }
    // dockerd's UnlockSwarm answers with errNoManager outside a swarm (an
    // empty body is an empty request to it)
    let (status, _, body) = raw_request(&d.sock, "POST", "/swarm/unlock", None).unwrap();
    assert_eq!((status, message(&body).as_str()), (503, NOT_A_MANAGER));
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

    // dockerd 25 (API 1.44) adds the short id and hostname to the aliases
    // of a user-defined network, also before the first start; not from
    // 1.45 (older versions add them only once the endpoint joined:
    // fidelity_compose.rs)
    let old = json_of(&d, "/v1.44/containers/on-front/json");
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

// ---- exec and attach streams ----

/// Sends a request asking for an upgrade and reads the answer head the way
/// the Python SDK does: one buffered read, of which everything after the
/// head is lost to the raw socket it then reads from. Returns the head,
/// the socket and what that first read held past the head.
fn upgrade(sock: &std::path::Path, path: &str, body: &str) -> (String, UnixStream, Vec<u8>) {
    let mut s = UnixStream::connect(sock).expect("connect");
    s.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
    let req = format!(
        "POST {path} HTTP/1.1\r\nHost: berth\r\nContent-Type: application/json\r\n\
         Connection: Upgrade\r\nUpgrade: tcp\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    );
    s.write_all(req.as_bytes()).unwrap();
    let mut seen = Vec::new();
    let mut buf = [0u8; 8192];
    let end = loop {
        if let Some(i) = seen.windows(4).position(|w| w == b"\r\n\r\n") {
            break i + 4;
        }
        let n = s.read(&mut buf).expect("reading the answer head");
        assert!(n > 0, "closed before the answer head");
        seen.extend_from_slice(&buf[..n]);
    };
    let head = String::from_utf8_lossy(&seen[..end]).into_owned();
    (head, s, seen[end..].to_vec())
}

/// Everything until the server closes the stream.
fn read_to_eof(s: &mut UnixStream) -> Vec<u8> {
    let mut out = Vec::new();
    let mut buf = [0u8; 8192];
    loop {
        match s.read(&mut buf) {
            Ok(0) => return out,
            Ok(n) => out.extend_from_slice(&buf[..n]),
            Err(e) => panic!(
                "no end of stream: {e}; got {:?}",
                String::from_utf8_lossy(&out)
            ),
        }
    }
}

/// Docker's multiplexed frames as (stream, payload); None when the bytes
/// are not a sequence of whole frames.
fn frames(mut b: &[u8]) -> Option<Vec<(u8, String)>> {
    let mut out = Vec::new();
    while !b.is_empty() {
        if b.len() < 8 || b[0] > 2 || b[1..4] != [0, 0, 0] {
            return None;
        }
        let len = u32::from_be_bytes([b[4], b[5], b[6], b[7]]) as usize;
        let payload = b.get(8..8 + len)?;
        out.push((b[0], String::from_utf8_lossy(payload).into_owned()));
        b = &b[8 + len..];
    }
    Some(out)
}

fn header<'a>(head: &'a str, name: &str) -> Option<&'a str> {
    head.lines().find_map(|l| {
        let (k, v) = l.split_once(':')?;
        k.eq_ignore_ascii_case(name).then(|| v.trim())
    })
}

fn exec_create(d: &Daemon, container: &str, cfg: serde_json::Value) -> String {
    let (status, _, body) = raw_request(
        &d.sock,
        "POST",
        &format!("/containers/{container}/exec"),
        Some(cfg.to_string().as_bytes()),
    )
    .unwrap();
    assert_eq!(status, 201, "{}", String::from_utf8_lossy(&body));
    let v: serde_json::Value = serde_json::from_slice(&body).unwrap();
    v["Id"].as_str().unwrap().to_string()
}

/// The start request's Tty decides the framing and the Content-Type, as in
/// dockerd; the exec's own Tty decides whether there is a terminal.
#[test]
fn exec_start_frames_its_output_by_the_start_requests_tty() {
    let d = Daemon::start();
    d.berth(&["run", "-d", "--name", "box", "busybox", "sleep", "1000"]);
    let cmd = serde_json::json!(["echo", "hello"]);
    let run = |prefix: &str, create_tty: bool, start_tty: bool| {
        let id = exec_create(
            &d,
            "box",
            serde_json::json!({"Cmd": cmd, "AttachStdout": true, "AttachStderr": true, "Tty": create_tty}),
        );
        let (head, mut s, mut rest) = upgrade(
            &d.sock,
            &format!("{prefix}/exec/{id}/start"),
            &serde_json::json!({"Tty": start_tty}).to_string(),
        );
        assert!(head.starts_with("HTTP/1.1 101"), "{head}");
        rest.extend(read_to_eof(&mut s));
        (
            header(&head, "content-type").unwrap_or("").to_string(),
            rest,
        )
    };
    let (ct, body) = run("", true, true);
    assert_eq!(ct, "application/vnd.docker.raw-stream");
    assert_eq!(String::from_utf8_lossy(&body), "hello\r\n");
    let (ct, body) = run("", false, false);
    assert_eq!(ct, "application/vnd.docker.multiplexed-stream");
    assert_eq!(frames(&body), Some(vec![(1, "hello\n".to_string())]));
    // a terminal, but frames were asked for
    let (ct, body) = run("", true, false);
    assert_eq!(ct, "application/vnd.docker.multiplexed-stream");
    assert_eq!(frames(&body), Some(vec![(1, "hello\r\n".to_string())]));
    // before 1.42 the frames come under the raw-stream name
    let (ct, body) = run("/v1.41", false, false);
    assert_eq!(ct, "application/vnd.docker.raw-stream");
    assert_eq!(frames(&body), Some(vec![(1, "hello\n".to_string())]));

    // attach announces what the container's terminal makes of the stream
    d.berth(&[
        "run", "-d", "-t", "--name", "tty", "busybox", "sleep", "1000",
    ]);
    for (name, want) in [
        ("tty", "application/vnd.docker.raw-stream"),
        ("box", "application/vnd.docker.multiplexed-stream"),
    ] {
        let (head, _s, _) = upgrade(
            &d.sock,
            &format!("/containers/{name}/attach?stream=1&stdout=1"),
            "",
        );
        assert!(head.starts_with("HTTP/1.1 101"), "{head}");
        assert_eq!(header(&head, "content-type"), Some(want), "{name}");
    }
    // the docker CLI decodes both
    let o = d.docker(&["exec", "box", "echo", "plain"]);
    assert_eq!(stdout(&o), "plain\n", "{}", stderr(&o));
    let o = d.docker(&["exec", "-t", "box", "echo", "term"]);
    assert_eq!(stdout(&o), "term\r\n", "{}", stderr(&o));
}

/// The process starts after the 101 head is out, so a client that reads
/// the head through a buffer (the Python SDK) does not swallow the first
/// frame with it.
#[test]
fn exec_output_never_arrives_with_the_upgrade_head() {
    let d = Daemon::start();
    d.berth(&["run", "-d", "--name", "box", "busybox", "sleep", "1000"]);
    for i in 0..30 {
        let id = exec_create(
            &d,
            "box",
            serde_json::json!({"Cmd": ["echo", "hello"], "AttachStdout": true, "AttachStderr": true}),
        );
        let (head, mut s, lost) = upgrade(&d.sock, &format!("/exec/{id}/start"), "{}");
        assert!(head.starts_with("HTTP/1.1 101"), "{head}");
        assert!(
            lost.is_empty(),
            "round {i}: output came with the head: {:?}",
            String::from_utf8_lossy(&lost)
        );
        let body = read_to_eof(&mut s);
        assert_eq!(
            frames(&body),
            Some(vec![(1, "hello\n".to_string())]),
            "round {i}"
        );
    }
}

/// An exec with a terminal ends its session on the detach keys given at
/// create (or ctrl-p ctrl-q) and leaves the process running; the CLIs take
/// the keys from config.json too.
#[test]
fn exec_detach_keys_leave_the_process_running() {
    let d = Daemon::start();
    d.berth(&["run", "-d", "--name", "box", "busybox", "sleep", "1000"]);
    let id = exec_create(
        &d,
        "box",
        serde_json::json!({"Cmd": ["sh"], "Tty": true, "AttachStdin": true,
            "AttachStdout": true, "DetachKeys": "ctrl-a,x"}),
    );
    let (head, mut s, mut out) = upgrade(&d.sock, &format!("/exec/{id}/start"), r#"{"Tty":true}"#);
    assert!(head.starts_with("HTTP/1.1 101"), "{head}");
    // ctrl-a alone is input
    s.write_all(b"echo mark$((6*7))\x01\r").unwrap();
    let mut buf = [0u8; 4096];
    while !String::from_utf8_lossy(&out).contains("mark42") {
        let n = s.read(&mut buf).unwrap();
        assert!(n > 0, "{:?}", String::from_utf8_lossy(&out));
        out.extend_from_slice(&buf[..n]);
    }
    s.write_all(b"\x01x").unwrap();
    read_to_eof(&mut s);
    let (_, _, body) = raw_request(&d.sock, "GET", &format!("/exec/{id}/json"), None).unwrap();
    let v: serde_json::Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(v["Running"], true, "{v}");
    // dockerd's words and status for keys it cannot read
    let (status, _, body) = raw_request(
        &d.sock,
        "POST",
        "/containers/box/exec",
        Some(br#"{"Cmd":["true"],"DetachKeys":"ctrl-"}"#),
    )
    .unwrap();
    assert_eq!(status, 500);
    assert_eq!(message(&body), "Invalid escape keys (ctrl-) provided");

    // both CLIs, with the keys from config.json: the shell outlives the session
    let cfg = tempfile::tempdir().unwrap();
    std::fs::write(
        cfg.path().join("config.json"),
        r#"{"detachKeys":"ctrl-a,x"}"#,
    )
    .unwrap();
    let env = [("DOCKER_CONFIG", cfg.path().display().to_string())];
    let shells = || {
        let o = d.berth(&["exec", "box", "ps", "-o", "args"]);
        stdout(&o).lines().filter(|l| l.trim() == "sh").count()
    };
    let before = shells();
    for program in [common::berth_bin(), "docker"] {
        let (out, code) = common::run_on_pty(
            program,
            &["-H", &d.host(), "exec", "-it", "box", "sh"],
            &env,
            &[b"echo in\"\"side\r", b"\x01x"],
            Duration::from_secs(20),
        );
        // docker's exec (unlike run) reports the detach as an error
        assert_eq!(code, 1, "{program}: {out}");
        assert!(out.contains("read escape sequence"), "{program}: {out}");
        assert!(out.contains("inside"), "{program}: {out}");
    }
    assert!(
        common::eventually(5, || shells() == before + 2),
        "{}",
        stdout(&d.berth(&["exec", "box", "ps", "-o", "args"]))
    );
}

/// `exec -u` gets the user's groups from the container's /etc/group, and
/// the container's --group-add, as `id` shows under dockerd.
#[test]
fn exec_user_gets_its_supplementary_groups() {
    let d = Daemon::start();
    d.berth(&[
        "run",
        "-d",
        "--name",
        "box",
        "--group-add",
        "staff",
        "busybox",
        "sleep",
        "1000",
    ]);
    let o = d.berth(&[
        "exec",
        "box",
        "sh",
        "-c",
        "echo 'ann:x:1000:1000::/home/ann:/bin/sh' >> /etc/passwd; \
         printf 'ann:x:1000:\\ndevs:x:1500:bob,ann\\n' >> /etc/group",
    ]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    for (user, want) in [
        (
            "ann",
            "uid=1000(ann) gid=1000(ann) groups=50(staff),1000(ann),1500(devs)",
        ),
        (
            "1000",
            "uid=1000(ann) gid=1000(ann) groups=50(staff),1000(ann),1500(devs)",
        ),
        (
            "ann:devs",
            "uid=1000(ann) gid=1500(devs) groups=50(staff),1500(devs)",
        ),
        (
            "daemon",
            "uid=1(daemon) gid=1(daemon) groups=1(daemon),50(staff)",
        ),
        (
            "",
            "uid=0(root) gid=0(root) groups=0(root),10(wheel),50(staff)",
        ),
    ] {
        let mut args = vec!["exec"];
        if !user.is_empty() {
            args.extend(["-u", user]);
        }
        args.extend(["box", "id"]);
        let o = d.docker(&args);
        assert_eq!(stdout(&o).trim_end(), want, "-u {user}: {}", stderr(&o));
    }
    let o = d.docker(&["run", "--rm", "busybox", "id"]);
    assert_eq!(
        stdout(&o).trim_end(),
        "uid=0(root) gid=0(root) groups=0(root),10(wheel)",
        "{}",
        stderr(&o)
    );
    // an unknown user fails the create, as in dockerd
    let o = d.docker(&["exec", "-u", "ghost", "box", "id"]);
    assert_ne!(code(&o), 0);
    assert!(
        stderr(&o).contains("unable to find user ghost: no matching entries in passwd file"),
        "{}",
        stderr(&o)
    );
    let (status, _, _) = raw_request(
        &d.sock,
        "POST",
        "/containers/box/exec",
        Some(br#"{"Cmd":["id"],"User":"ghost"}"#),
    )
    .unwrap();
    assert_eq!(status, 400);
}

/// `logs=1&stream=0` answers with the log so far and ends, whether the
/// container runs or not; `logs=1&stream=1` replays, then follows.
#[test]
fn attach_with_logs_and_no_stream_answers_at_once() {
    let d = Daemon::start();
    let o = d.berth(&[
        "run",
        "--name",
        "done",
        "busybox",
        "sh",
        "-c",
        "echo out; echo err >&2",
    ]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    let sock = d.sock.clone();
    let within = |path: &'static str| {
        let sock = sock.clone();
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let _ = tx.send(raw_request(&sock, "POST", path, None));
        });
        rx.recv_timeout(Duration::from_secs(10))
            .unwrap_or_else(|_| panic!("{path} did not end"))
            .unwrap()
    };
    let (status, head, body) = within("/containers/done/attach?logs=1&stream=0&stdout=1&stderr=1");
    assert_eq!(status, 200, "{head}");
    assert_eq!(
        header(&head, "content-type"),
        Some("application/vnd.docker.raw-stream")
    );
    let mut got = frames(&body).expect("frames");
    got.sort();
    assert_eq!(
        got,
        vec![(1, "out\n".to_string()), (2, "err\n".to_string())]
    );
    let (_, _, body) = within("/containers/done/attach?logs=1&stream=0&stdout=1");
    assert_eq!(frames(&body), Some(vec![(1, "out\n".to_string())]));
    // no logs, no stream: nothing, at once
    let (status, _, body) = within("/containers/done/attach?stream=0&stdout=1");
    assert_eq!((status, body.len()), (200, 0));
    // upgraded, the same, then the end
    let (head, mut s, mut rest) = upgrade(
        &d.sock,
        "/containers/done/attach?logs=1&stream=0&stdout=1",
        "",
    );
    assert!(head.starts_with("HTTP/1.1 101"), "{head}");
    rest.extend(read_to_eof(&mut s));
    assert_eq!(frames(&rest), Some(vec![(1, "out\n".to_string())]));

    // a running container: the log so far, then what follows
    d.berth(&[
        "run",
        "-d",
        "--name",
        "live",
        "busybox",
        "sh",
        "-c",
        "echo first; sleep 2; echo second",
    ]);
    assert!(common::eventually(5, || stdout(
        &d.berth(&["logs", "live"])
    ) == "first\n"));
    let (head, mut s, mut rest) = upgrade(
        &d.sock,
        "/containers/live/attach?logs=1&stream=1&stdout=1",
        "",
    );
    assert!(head.starts_with("HTTP/1.1 101"), "{head}");
    rest.extend(read_to_eof(&mut s));
    let text: String = frames(&rest)
        .expect("frames")
        .into_iter()
        .map(|(_, p)| p)
        .collect();
    assert_eq!(text, "first\nsecond\n");
}

#[test]
fn info_reports_swap_limits_as_the_host_supports_them() {
    let d = Daemon::start_bare();
    let info = json_of(&d, "/info");
    // cgroup v1: the memory controller's memsw files; v2: memory.swap.max
    let v1 = std::path::Path::new("/sys/fs/cgroup/memory");
    let expected = if v1.is_dir() {
        v1.join("memory.memsw.limit_in_bytes").exists()
    } else {
        true
    };
    assert_eq!(info["SwapLimit"], expected, "{info}");
    // berth cannot turn the OOM killer off, and says so
    assert_eq!(info["OomKillDisable"], false);
    let o = d.docker(&["info", "-f", "{{.SwapLimit}}"]);
    assert_eq!(stdout(&o), format!("{expected}\n"), "{}", stderr(&o));
}

#[test]
fn the_domainname_is_applied_to_the_container() {
    let d = Daemon::start();
    let o = d.docker(&[
        "run",
        "--rm",
        "--domainname",
        "example.test",
        "busybox",
        "cat",
        "/proc/sys/kernel/domainname",
    ]);
    assert_eq!(stdout(&o), "example.test\n", "{}", stderr(&o));
    // without one the kernel's default stays
    let o = d.docker(&[
        "run",
        "--rm",
        "busybox",
        "cat",
        "/proc/sys/kernel/domainname",
    ]);
    assert_eq!(stdout(&o), "(none)\n", "{}", stderr(&o));
}
