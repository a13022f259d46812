//! Bad input that dockerd refuses with a 4xx and dockerd's message:
//! resource values, ports, addresses, working directories, network
//! options, Content-Type, search limits, registry addresses, volume names,
//! `top` arguments; and mount targets that pass through an image's
//! symlinks, which must land inside the container's root.

mod common;

use std::io::{Read, Write};
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::time::Duration;

use common::{Daemon, code, raw_request, stderr, stdout};
use serde_json::{Value, json};

fn message(body: &[u8]) -> String {
    let v: Value = serde_json::from_slice(body).unwrap_or_default();
    v["message"].as_str().unwrap_or_default().to_string()
}

/// A JSON request through the harness: (status, error message).
fn call(d: &Daemon, method: &str, path: &str, body: &Value) -> (u16, String) {
    let raw = serde_json::to_vec(body).expect("encoding a request body");
    let (status, _, out) = raw_request(&d.sock, method, path, Some(&raw)).expect("request");
    (status, message(&out))
}

/// One request with the given header lines (each ending in \r\n).
fn with_headers(sock: &Path, path: &str, headers: &str, body: &[u8]) -> (u16, String) {
    let mut s = UnixStream::connect(sock).expect("connecting to the daemon");
    s.set_read_timeout(Some(Duration::from_secs(30))).ok();
    let head = format!(
        "POST {path} HTTP/1.1\r\nHost: berth\r\n{headers}Content-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    );
    s.write_all(head.as_bytes()).expect("writing the request");
    s.write_all(body).expect("writing the body");
    let mut raw = Vec::new();
    s.read_to_end(&mut raw).expect("reading the answer");
    let text = String::from_utf8_lossy(&raw);
    let status = text
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    let body = text.split_once("\r\n\r\n").map(|(_, b)| b).unwrap_or("");
    (status, message(body.as_bytes()))
}

fn create_with(host_config: Value, config: Value) -> Value {
    let mut body = json!({"Image": "busybox", "Cmd": ["true"], "HostConfig": host_config});
    for (k, v) in config.as_object().into_iter().flatten() {
        body[k] = v.clone();
    }
    body
}

#[test]
fn create_refuses_what_dockerd_refuses() {
    let d = Daemon::start();
    let port = |binding: Value| json!({"PortBindings": {"80/tcp": [binding]}});
    let cases = [
        (
            create_with(json!({"Memory": -5}), json!({})),
            "Minimum memory limit allowed is 6MB",
        ),
        (
            create_with(json!({"CpuShares": -5}), json!({})),
            "invalid CPU shares (-5): value must be a positive integer",
        ),
        (
            create_with(json!({"MemorySwappiness": -5}), json!({})),
            "Invalid value: -5, valid memory swappiness range is 0-100",
        ),
        (
            create_with(json!({"OomScoreAdj": -5000}), json!({})),
            "Invalid value -5000, range for oom score adj is [-1000, 1000]",
        ),
        (
            create_with(json!({"CpuPeriod": -5}), json!({})),
            "CPU cfs period can not be less than 1ms (i.e. 1000) or larger than 1s (i.e. 1000000)",
        ),
        (
            create_with(port(json!({"HostPort": "99999"})), json!({})),
            "invalid port specification: \"99999\"",
        ),
        (
            create_with(json!({"PortBindings": {"99999/tcp": []}}), json!({})),
            "invalid port specification: \"99999\"",
        ),
        (
            create_with(json!({}), json!({"ExposedPorts": {"99999/tcp": {}}})),
            "invalid port specification: \"99999\"",
        ),
        (
            create_with(json!({}), json!({"ExposedPorts": {"abc/tcp": {}}})),
            "invalid port specification: \"abc\"",
        ),
        (
            create_with(
                port(json!({"HostIp": "not-an-ip", "HostPort": "8080"})),
                json!({}),
            ),
            "invalid IP address: not-an-ip",
        ),
        (
            create_with(json!({}), json!({"WorkingDir": "x"})),
            "the working directory 'x' is invalid, it needs to be an absolute path",
        ),
    ];
    for (body, want) in &cases {
        let (status, msg) = call(&d, "POST", "/containers/create", body);
        assert_eq!((status, msg.as_str()), (400, *want), "{body}");
    }
    let o = d.berth(&["ps", "-aq"]);
    assert_eq!(stdout(&o), "", "a refused create left a container");
    // the docker CLI shows dockerd's words
    let o = d.docker(&["create", "-w", "x", "busybox"]);
    assert_ne!(code(&o), 0);
    assert!(
        stderr(&o).contains("the working directory 'x' is invalid"),
        "{}",
        stderr(&o)
    );
    // values dockerd takes are still taken
    let ok = create_with(
        json!({"Memory": 0, "MemorySwappiness": -1, "CpuQuota": -1,
               "PortBindings": {"80/tcp": [{"HostIp": "127.0.0.1", "HostPort": "8000-8010"}]}}),
        json!({"ExposedPorts": {"80/tcp": {}, "53/udp": {}}, "WorkingDir": "/a/../b/"}),
    );
    let (status, msg) = call(&d, "POST", "/containers/create?name=fine", &ok);
    assert_eq!(status, 201, "{msg}");
    let o = d.berth(&["inspect", "-f", "{{.Config.WorkingDir}}", "fine"]);
    assert_eq!(
        stdout(&o),
        "/b\n",
        "the working directory is stored cleaned"
    );
}

#[test]
fn exec_refuses_a_relative_working_dir() {
    let d = Daemon::start();
    let o = d.berth(&["run", "-d", "--name", "ex", "busybox", "sleep", "300"]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    let body = json!({"Cmd": ["pwd"], "WorkingDir": "tmp"});
    let (status, msg) = call(&d, "POST", "/containers/ex/exec", &body);
    assert_eq!(status, 400);
    assert_eq!(
        msg,
        "the working directory 'tmp' is invalid, it needs to be an absolute path"
    );
    let o = d.docker(&["exec", "-w", "tmp", "ex", "pwd"]);
    assert_ne!(code(&o), 0);
    assert!(
        stderr(&o).contains("the working directory 'tmp' is invalid"),
        "{}",
        stderr(&o)
    );
    // `..` is resolved as dockerd cleans it
    let o = d.docker(&["exec", "-w", "/tmp/../etc", "ex", "pwd"]);
    assert_eq!(stdout(&o), "/etc\n", "{}", stderr(&o));
}

#[test]
fn other_bad_input_is_a_4xx() {
    let d = Daemon::start();
    let mtu = json!({"Name": "n1", "Options": {"com.docker.network.driver.mtu": "abc"}});
    let want = "failed to parse com.docker.network.driver.mtu value: abc (strconv.Atoi: parsing \"abc\": invalid syntax)";
    assert_eq!(
        call(&d, "POST", "/networks/create", &mtu),
        (400, want.to_string())
    );
    let o = d.docker(&[
        "network",
        "create",
        "-o",
        "com.docker.network.driver.mtu=abc",
        "n2",
    ]);
    assert!(stderr(&o).contains(want), "{}", stderr(&o));

    let long = "v".repeat(300);
    let (status, msg) = call(&d, "POST", "/volumes/create", &json!({"Name": long}));
    assert_eq!(status, 400, "{msg}");
    assert!(msg.contains(&long) && msg.contains("too long"), "{msg}");
    let o = d.docker(&["volume", "create", &long]);
    assert!(stderr(&o).contains("too long"), "{}", stderr(&o));
    let bind = create_with(json!({"Binds": [format!("{long}:/data")]}), json!({}));
    let (status, msg) = call(&d, "POST", "/containers/create", &bind);
    assert_eq!(status, 400, "{msg}");
    assert!(msg.contains("too long"), "{msg}");

    let (status, _, body) =
        raw_request(&d.sock, "GET", "/images/search?term=x&limit=-1", None).unwrap();
    assert_eq!(
        (status, message(&body)),
        (400, "limit -1 is outside the range of [1, 100]".to_string())
    );

    let auth = json!({"username": "u", "password": "p", "serveraddress": "reg\u{1}istry"});
    assert_eq!(
        call(&d, "POST", "/auth", &auth),
        (
            400,
            "unable to parse server address: parse \"https://reg\\x01istry\": net/url: invalid control character in URL"
                .to_string()
        )
    );

    // dockerd answers 500 for a failing ps too, with ps's first line
    let o = d.berth(&["run", "-d", "--name", "top1", "busybox", "sleep", "300"]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    let (status, _, body) =
        raw_request(&d.sock, "GET", "/containers/top1/top?ps_args=--bogus", None).unwrap();
    assert_eq!(status, 500);
    let msg = message(&body);
    assert!(msg.starts_with("ps: error"), "{msg:?}");
    assert!(!msg.contains('\n'), "only ps's first line: {msg:?}");
}

#[test]
fn json_endpoints_want_a_json_content_type() {
    let d = Daemon::start();
    let body = br#"{"Image":"busybox","Cmd":["true"]}"#;
    let json = "Content-Type: application/json\r\n";
    assert_eq!(
        with_headers(
            &d.sock,
            "/containers/create",
            "Content-Type: text/plain\r\n",
            body
        ),
        (
            400,
            "unsupported Content-Type header (text/plain): must be 'application/json'".into()
        )
    );
    assert_eq!(
        with_headers(&d.sock, "/containers/create", "", body),
        (
            400,
            "malformed Content-Type header (): mime: no media type".into()
        )
    );
    let vol = br#"{"Name":"v1"}"#;
    let plain = "Content-Type: text/plain\r\n";
    assert_eq!(with_headers(&d.sock, "/volumes/create", plain, vol).0, 400);
    assert_eq!(
        with_headers(&d.sock, "/networks/create", plain, br#"{"Name":"n"}"#).0,
        400
    );
    // what dockerd takes: JSON with parameters, and nothing at all
    let charset = "Content-Type: application/json; charset=utf-8\r\n";
    assert_eq!(
        with_headers(&d.sock, "/containers/create?name=cc", charset, body).0,
        201
    );
    assert_eq!(with_headers(&d.sock, "/volumes/create", "", b"").0, 201);
    // endpoints without a JSON body do not care
    assert_eq!(
        with_headers(&d.sock, "/containers/cc/start", plain, b"").0,
        204
    );
    let (status, msg) = with_headers(
        &d.sock,
        "/containers/cc/exec",
        plain,
        br#"{"Cmd":["true"]}"#,
    );
    assert_eq!(status, 400, "{msg}");
    assert_eq!(with_headers(&d.sock, "/volumes/create", json, vol).0, 201);
}

#[test]
fn mount_targets_through_image_symlinks_stay_inside_the_root() {
    let d = Daemon::start();
    // an image whose /data links to /srv, and whose /up climbs "out"
    let o = d.berth(&[
        "run",
        "--name",
        "mk",
        "busybox",
        "sh",
        "-c",
        "mkdir /srv && ln -s /srv /data && ln -s ../../../../../opt /up",
    ]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    let o = d.berth(&["commit", "mk", "linked"]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    let host = tempfile::tempdir().unwrap();
    std::fs::write(host.path().join("hello"), "hi\n").unwrap();
    let bind = format!("{}:/data/in", host.path().display());
    let o = d.berth(&[
        "run",
        "--rm",
        "-v",
        &bind,
        "-v",
        "vol:/data/vol",
        "--tmpfs",
        "/up/t",
        "-w",
        "/data/../data/wd",
        "linked",
        "sh",
        "-c",
        "cat /srv/in/hello; ls -d /srv/vol; grep -c ' /opt/t ' /proc/mounts; pwd -P",
    ]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    assert_eq!(stdout(&o), "hi\n/srv/vol\n1\n/srv/wd\n");
    assert!(
        !Path::new("/opt/t").exists(),
        "a mount target left the root"
    );
    assert!(
        !Path::new("/srv/in").exists(),
        "a mount target left the root"
    );
}
