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

// ---- exec and attach streams ----

use std::io::{Read, Write};
use std::os::unix::net::UnixStream;
use std::time::Duration;

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
