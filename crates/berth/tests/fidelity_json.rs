//! Request bodies read as dockerd reads them: Go's encoding/json matches a
//! key to a field by its exact name, else without regard to case, and real
//! clients send keys in other cases (the Python SDK's `detachKeys` and
//! `CPURealtimePeriod`). Maps (labels, endpoints by network name) keep
//! their keys. Checked over raw HTTP, as the clients send them.

mod common;

use std::io::{Read, Write};
use std::os::unix::net::UnixStream;
use std::time::Duration;

use common::{Daemon, code, raw_request, stderr};
use serde_json::{Value, json};

fn message(body: &[u8]) -> String {
    let v: Value = serde_json::from_slice(body).expect("JSON error body");
    v["message"].as_str().expect("message field").to_string()
}

/// A request with a JSON body that must succeed: its answer as JSON (null
/// for an empty one).
fn ok(d: &Daemon, method: &str, path: &str, body: &Value, want: u16) -> Value {
    let (status, _, out) =
        raw_request(&d.sock, method, path, Some(body.to_string().as_bytes())).unwrap();
    assert_eq!(
        status,
        want,
        "{method} {path}: {}",
        String::from_utf8_lossy(&out)
    );
    serde_json::from_slice(&out).unwrap_or(Value::Null)
}

fn inspect(d: &Daemon, path: &str) -> Value {
    let (status, _, body) = raw_request(&d.sock, "GET", path, None).unwrap();
    assert_eq!(status, 200, "{}", String::from_utf8_lossy(&body));
    serde_json::from_slice(&body).unwrap()
}

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

/// The Python SDK's exec create body (`detachKeys`): the keys end the
/// session and leave the process running, as under dockerd; keys dockerd
/// cannot read are refused in its words whatever the key's case.
#[test]
fn exec_create_reads_detach_keys_in_any_case() {
    let d = Daemon::start();
    let o = d.berth(&["run", "-d", "--name", "box", "busybox", "sleep", "1000"]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    let (status, _, body) = raw_request(
        &d.sock,
        "POST",
        "/containers/box/exec",
        Some(br#"{"Cmd":["true"],"detachKeys":"ctrl-"}"#),
    )
    .unwrap();
    assert_eq!(status, 500, "{}", String::from_utf8_lossy(&body));
    assert_eq!(message(&body), "Invalid escape keys (ctrl-) provided");

    let created = ok(
        &d,
        "POST",
        "/containers/box/exec",
        &json!({"cmd": ["sh"], "tty": true, "attachStdin": true,
            "attachStdout": true, "detachKeys": "ctrl-a,x"}),
        201,
    );
    let id = created["Id"].as_str().expect("an exec id").to_string();
    let (head, mut s, mut out) = upgrade(&d.sock, &format!("/exec/{id}/start"), r#"{"tty":true}"#);
    assert!(head.starts_with("HTTP/1.1 101"), "{head}");
    s.write_all(b"echo mark$((6*7))\r").unwrap();
    let mut buf = [0u8; 4096];
    while !String::from_utf8_lossy(&out).contains("mark42") {
        let n = s.read(&mut buf).unwrap();
        assert!(n > 0, "{:?}", String::from_utf8_lossy(&out));
        out.extend_from_slice(&buf[..n]);
    }
    s.write_all(b"\x01x").unwrap();
    read_to_eof(&mut s);
    let v = inspect(&d, &format!("/exec/{id}/json"));
    assert_eq!(v["Running"], true, "{v}");
}

/// `{"detach": true}` starts the exec detached: an empty 200, no stream.
#[test]
fn exec_start_reads_detach_in_any_case() {
    let d = Daemon::start();
    let o = d.berth(&["run", "-d", "--name", "box", "busybox", "sleep", "1000"]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    let created = ok(
        &d,
        "POST",
        "/containers/box/exec",
        &json!({"Cmd": ["echo", "streamed"], "AttachStdout": true}),
        201,
    );
    let id = created["Id"].as_str().expect("an exec id");
    let (status, _, body) = raw_request(
        &d.sock,
        "POST",
        &format!("/exec/{id}/start"),
        Some(br#"{"detach":true}"#),
    )
    .unwrap();
    assert_eq!(status, 200);
    assert!(body.is_empty(), "{:?}", String::from_utf8_lossy(&body));
}

/// A create body in the cases clients send: a lowercase top-level key, the
/// Python SDK's `CPURealtimePeriod`, a lowercase HostConfig field; label
/// and endpoint keys stay as given.
#[test]
fn container_create_reads_keys_in_any_case() {
    let d = Daemon::start();
    ok(
        &d,
        "POST",
        "/networks/create",
        &json!({"Name": "MixedNet"}),
        201,
    );
    let body = json!({
        "image": "busybox",
        "cmd": ["sleep", "1000"],
        "Labels": {"MixedCase": "v", "lower": "w"},
        "hostConfig": {
            "memory": 67108864,
            "CPURealtimePeriod": 1000000,
            "CPURealtimeRuntime": 950000,
            "restartPolicy": {"name": "on-failure", "maximumRetryCount": 3},
        },
        "networkingConfig": {"endpointsConfig": {"MixedNet": {"aliases": ["web"]}}},
    });
    ok(&d, "POST", "/containers/create?name=c1", &body, 201);
    let v = inspect(&d, "/containers/c1/json");
    assert_eq!(v["Config"]["Image"], "busybox", "{v}");
    assert_eq!(v["Config"]["Cmd"], json!(["sleep", "1000"]));
    assert_eq!(
        v["Config"]["Labels"],
        json!({"MixedCase": "v", "lower": "w"})
    );
    let h = &v["HostConfig"];
    assert_eq!(h["Memory"], 67108864, "{h}");
    assert_eq!(h["CpuRealtimePeriod"], 1000000, "{h}");
    assert_eq!(h["CpuRealtimeRuntime"], 950000, "{h}");
    assert_eq!(
        h["RestartPolicy"],
        json!({"Name": "on-failure", "MaximumRetryCount": 3})
    );
    let ep = &v["NetworkSettings"]["Networks"]["MixedNet"];
    let aliases = ep["Aliases"].as_array().cloned().unwrap_or_default();
    assert!(aliases.contains(&json!("web")), "{ep}");

    // a wrong type under a folded key is still refused
    let (status, _, out) = raw_request(
        &d.sock,
        "POST",
        "/containers/create",
        Some(br#"{"image": 42}"#),
    )
    .unwrap();
    assert_eq!(status, 400);
    assert!(message(&out).contains("invalid type"), "{}", message(&out));
}

/// `docker update`'s body in another case.
#[test]
fn container_update_reads_keys_in_any_case() {
    let d = Daemon::start();
    let o = d.berth(&["run", "-d", "--name", "c1", "busybox", "sleep", "1000"]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    ok(
        &d,
        "POST",
        "/containers/c1/update",
        &json!({"cpuShares": 512, "restartpolicy": {"Name": "always"}}),
        200,
    );
    let v = inspect(&d, "/containers/c1/json");
    assert_eq!(v["HostConfig"]["CpuShares"], 512, "{}", v["HostConfig"]);
    assert_eq!(v["HostConfig"]["RestartPolicy"]["Name"], "always");
}

/// Network create, connect and disconnect, and volume create, with keys in
/// other cases; their labels and options keep theirs.
#[test]
fn network_and_volume_bodies_read_keys_in_any_case() {
    let d = Daemon::start();
    ok(
        &d,
        "POST",
        "/networks/create",
        &json!({"name": "lowernet", "labels": {"Team": "a"}, "options": {"Some.Opt": "1"}}),
        201,
    );
    let n = inspect(&d, "/networks/lowernet");
    assert_eq!(n["Name"], "lowernet", "{n}");
    assert_eq!(n["Labels"], json!({"Team": "a"}));
    assert_eq!(n["Options"]["Some.Opt"], "1", "{n}");

    let o = d.berth(&["run", "-d", "--name", "c1", "busybox", "sleep", "1000"]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    ok(
        &d,
        "POST",
        "/networks/lowernet/connect",
        &json!({"container": "c1", "endpointConfig": {"aliases": ["db"]}}),
        200,
    );
    let v = inspect(&d, "/containers/c1/json");
    let ep = &v["NetworkSettings"]["Networks"]["lowernet"];
    let aliases = ep["Aliases"].as_array().cloned().unwrap_or_default();
    assert!(aliases.contains(&json!("db")), "{ep}");
    ok(
        &d,
        "POST",
        "/networks/lowernet/disconnect",
        &json!({"container": "c1", "force": false}),
        200,
    );
    let v = inspect(&d, "/containers/c1/json");
    assert!(
        v["NetworkSettings"]["Networks"].get("lowernet").is_none(),
        "{}",
        v["NetworkSettings"]["Networks"]
    );

    ok(
        &d,
        "POST",
        "/volumes/create",
        &json!({"name": "lowervol", "labels": {"Team": "b"}}),
        201,
    );
    let vol = inspect(&d, "/volumes/lowervol");
    assert_eq!(vol["Labels"], json!({"Team": "b"}), "{vol}");
}

/// POST /auth reads `Username` as dockerd does: past the missing-username
/// check to the server address it cannot parse.
#[test]
fn auth_reads_keys_in_any_case() {
    let d = Daemon::start_bare();
    let auth = json!({"Username": "u", "Password": "p", "ServerAddress": "reg\u{1}istry"});
    let (status, _, body) =
        raw_request(&d.sock, "POST", "/auth", Some(auth.to_string().as_bytes())).unwrap();
    assert_eq!(
        (status, message(&body)),
        (
            400,
            "unable to parse server address: parse \"https://reg\\x01istry\": net/url: invalid control character in URL"
                .to_string()
        )
    );
}
