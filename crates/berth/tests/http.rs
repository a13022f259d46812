//! The HTTP server under hostile or unusual clients, over raw sockets:
//! bodies declared huge, bodies a route does not read, clients that
//! stall, streams that idle for longer than the timeouts; and the daemon
//! log's record of failed requests.

mod common;

use std::io::{ErrorKind, Read, Write};
use std::os::unix::net::UnixStream;
use std::time::{Duration, Instant};

use common::{Daemon, raw_request};

/// The header and body timeouts the tests give the daemon (seconds).
const TIMEOUT: &str = "2";
/// How long a stalled client may stay connected under that timeout,
/// with room for a loaded machine.
const CUT_WITHIN: Duration = Duration::from_secs(8);

fn message(body: &[u8]) -> String {
    let v: serde_json::Value = serde_json::from_slice(body)
        .unwrap_or_else(|e| panic!("JSON error body ({e}): {}", String::from_utf8_lossy(body)));
    v["message"].as_str().expect("message field").to_string()
}

fn connect(d: &Daemon, read_timeout: Duration) -> UnixStream {
    let s = UnixStream::connect(&d.sock).expect("connecting to the daemon");
    s.set_read_timeout(Some(read_timeout))
        .expect("read timeout");
    s
}

/// Sends a request head declaring `declared` body bytes, then `body`
/// (which may be less), leaving the connection open.
fn send(s: &mut UnixStream, method: &str, path: &str, declared: usize, body: &[u8]) {
    let mut req = format!(
        "{method} {path} HTTP/1.1\r\nHost: berth\r\nContent-Type: application/json\r\n\
         Content-Length: {declared}\r\n\r\n"
    )
    .into_bytes();
    req.extend_from_slice(body);
    match s.write_all(&req) {
        Ok(()) => {}
        // a server may answer (413) and close before it reads the body
        Err(e) if e.kind() == ErrorKind::BrokenPipe => {}
        Err(e) => panic!("sending {method} {path}: {e}"),
    }
}

struct Answer {
    status: u16,
    head: String,
    body: Vec<u8>,
}

impl Answer {
    fn closes(&self) -> bool {
        self.head.to_ascii_lowercase().contains("connection: close")
    }
}

/// Reads one answer off a connection that may carry more: the body's end
/// comes from Content-Length, the last chunk, or the connection's end.
fn read_answer(s: &mut UnixStream) -> std::io::Result<Answer> {
    let mut raw = Vec::new();
    let split = loop {
        if let Some(i) = raw.windows(4).position(|w| w == b"\r\n\r\n") {
            break i;
        }
        fill(s, &mut raw)?;
    };
    let head = String::from_utf8_lossy(&raw[..split]).into_owned();
    let mut body = raw.split_off(split + 4);
    let lower = head.to_ascii_lowercase();
    let length = lower
        .lines()
        .find_map(|l| l.strip_prefix("content-length:"))
        .and_then(|v| v.trim().parse::<usize>().ok());
    if let Some(n) = length {
        while body.len() < n {
            fill(s, &mut body)?;
        }
        body.truncate(n);
    } else if lower.contains("transfer-encoding: chunked") {
        while !body.ends_with(b"0\r\n\r\n") {
            fill(s, &mut body)?;
        }
        body = dechunk(&body);
    } else {
        while fill(s, &mut body).is_ok() {}
    }
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    Ok(Answer { status, head, body })
}

/// Appends what the socket has; the connection's end is an error here.
fn fill(s: &mut UnixStream, into: &mut Vec<u8>) -> std::io::Result<()> {
    let mut buf = [0u8; 16 * 1024];
    let n = s.read(&mut buf)?;
    if n == 0 {
        return Err(std::io::Error::new(
            ErrorKind::UnexpectedEof,
            "connection closed",
        ));
    }
    into.extend_from_slice(&buf[..n]);
    Ok(())
}

fn dechunk(mut b: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    while let Some(i) = b.windows(2).position(|w| w == b"\r\n") {
        let size = std::str::from_utf8(&b[..i])
            .ok()
            .and_then(|s| usize::from_str_radix(s.trim(), 16).ok())
            .unwrap_or(0);
        if size == 0 || b.len() < i + 2 + size {
            break;
        }
        out.extend_from_slice(&b[i + 2..i + 2 + size]);
        b = &b[(i + 4 + size).min(b.len())..];
    }
    out
}

/// True once the server has closed the connection (whatever it still
/// sent first is discarded); false if it stayed open for the read timeout.
fn closed_by_server(s: &mut UnixStream) -> bool {
    let mut buf = [0u8; 16 * 1024];
    loop {
        match s.read(&mut buf) {
            Ok(0) => return true,
            Ok(_) => {}
            Err(e) if e.kind() == ErrorKind::ConnectionReset => return true,
            Err(_) => return false,
        }
    }
}

/// Restarts the daemon with short header and body timeouts.
fn with_short_timeouts(d: &mut Daemon) {
    d.stop();
    d.env
        .push(("BERTH_API_HEADER_TIMEOUT".into(), TIMEOUT.into()));
    d.env
        .push(("BERTH_API_BODY_TIMEOUT".into(), TIMEOUT.into()));
    d.start_again();
}

/// A tar holding one file of `size` bytes.
fn tar_of_one_file(size: usize) -> Vec<u8> {
    let mut b = tar::Builder::new(Vec::new());
    let mut h = tar::Header::new_gnu();
    h.set_size(size as u64);
    h.set_mode(0o644);
    h.set_cksum();
    b.append_data(&mut h, "payload", &vec![7u8; size][..])
        .expect("building the tar");
    b.into_inner().expect("finishing the tar")
}

#[test]
fn huge_declared_bodies_are_refused_at_once() {
    let d = Daemon::start_bare();
    for path in ["/containers/create", "/v1.47/volumes/create", "/nonsense"] {
        let mut s = connect(&d, Duration::from_secs(5));
        let started = Instant::now();
        send(
            &mut s,
            "POST",
            path,
            1_000_000_000_000_000_000,
            br#"{"Name":"#,
        );
        let a = read_answer(&mut s)
            .unwrap_or_else(|e| panic!("{path}: no answer before the declared body: {e}"));
        assert_eq!(a.status, 413, "{path}: {}", a.head);
        assert!(
            message(&a.body).contains("request body too large"),
            "{path}: {}",
            message(&a.body)
        );
        assert!(
            a.closes(),
            "{path}: the unread body ends the connection: {}",
            a.head
        );
        assert!(closed_by_server(&mut s), "{path}: connection left open");
        assert!(started.elapsed() < Duration::from_secs(5), "{path}");
    }
    // bodies at the limit's size are still read
    let (status, _, body) = raw_request(&d.sock, "POST", "/volumes/create", Some(b"{}")).unwrap();
    assert_eq!(status, 201, "{}", String::from_utf8_lossy(&body));
}

#[test]
fn unread_bodies_keep_the_connection_in_step() {
    let d = Daemon::start_bare();
    let body = vec![b'x'; 60 * 1024];
    let mut s = connect(&d, Duration::from_secs(10));
    // an unknown route, and a route that has no use for a body
    for (path, status) in [("/nonsense", 404), ("/containers/nope/start", 404)] {
        send(&mut s, "POST", path, body.len(), &body);
        let a = read_answer(&mut s).unwrap_or_else(|e| panic!("{path}: {e}"));
        assert_eq!(a.status, status, "{path}: {}", a.head);
        assert!(!a.closes(), "{path}: a small body is drained: {}", a.head);
        send(&mut s, "GET", "/_ping", 0, b"");
        let a = read_answer(&mut s)
            .unwrap_or_else(|e| panic!("the request after {path} on the same connection: {e}"));
        assert_eq!((a.status, &a.body[..]), (200, &b"OK"[..]), "after {path}");
    }
    // more than the server discards: the answer says the connection ends
    let mut s = connect(&d, Duration::from_secs(10));
    send(&mut s, "POST", "/nonsense", 1 << 20, &body);
    let a = read_answer(&mut s).expect("an answer");
    assert_eq!(a.status, 404);
    assert!(a.closes(), "no Connection: close: {}", a.head);
    assert!(closed_by_server(&mut s));
}

#[test]
fn stalled_clients_are_cut() {
    let mut d = Daemon::start_bare();
    with_short_timeouts(&mut d);
    // headers that never end, and connections that send nothing at all
    let mut idle: Vec<UnixStream> = (0..20)
        .map(|i| {
            let mut s = connect(&d, Duration::from_secs(20));
            if i % 2 == 0 {
                s.write_all(b"GET /_ping HTTP/1.1\r\nHost: berth\r\n")
                    .unwrap();
            }
            s
        })
        .collect();
    let started = Instant::now();
    for (i, s) in idle.iter_mut().enumerate() {
        assert!(closed_by_server(s), "connection {i} stayed open");
    }
    assert!(started.elapsed() < CUT_WITHIN, "{:?}", started.elapsed());
    // bodies that stop: a route that buffers, one that streams to disk,
    // and one that does not read the body at all
    for path in ["/containers/create", "/images/load", "/nonsense"] {
        let mut s = connect(&d, Duration::from_secs(20));
        let started = Instant::now();
        send(&mut s, "POST", path, 100_000, &[b' '; 1000]);
        let a = read_answer(&mut s).unwrap_or_else(|e| panic!("{path}: no answer: {e}"));
        assert!(a.status >= 400, "{path}: {}", a.head);
        assert!(a.closes(), "{path}: {}", a.head);
        assert!(closed_by_server(&mut s), "{path}: connection left open");
        assert!(
            started.elapsed() < CUT_WITHIN,
            "{path}: {:?}",
            started.elapsed()
        );
    }
    assert_eq!(raw_request(&d.sock, "GET", "/_ping", None).unwrap().0, 200);
}

/// Only a pause longer than the timeout ends a request: an upload that
/// takes longer than it in small steps, an events stream, an exec
/// session and an idle moment all outlive it.
#[test]
fn slow_streams_outlive_the_timeouts() {
    let mut d = Daemon::start();
    with_short_timeouts(&mut d);
    let out = d.berth(&["run", "-d", "--name", "slow", "busybox", "sleep", "600"]);
    assert!(out.status.success(), "{}", common::stderr(&out));

    let mut events = connect(&d, Duration::from_secs(20));
    events
        .write_all(b"GET /events?filters=%7B%22type%22%3A%5B%22volume%22%5D%7D HTTP/1.1\r\nHost: berth\r\n\r\n")
        .unwrap();
    let mut seen = Vec::new();
    while !String::from_utf8_lossy(&seen).contains("\r\n\r\n") {
        fill(&mut events, &mut seen).expect("events head");
    }
    assert!(String::from_utf8_lossy(&seen).starts_with("HTTP/1.1 200"));

    let mut exec = start_exec_session(&d);

    // a stalled twin of the upload is cut meanwhile
    let stalled = {
        let sock = d.sock.clone();
        std::thread::spawn(move || {
            let mut s = UnixStream::connect(sock).unwrap();
            s.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
            let started = Instant::now();
            send(
                &mut s,
                "POST",
                "/images/create?fromSrc=-&repo=stalled",
                100_000,
                &[0; 512],
            );
            let a = read_answer(&mut s).map(|a| a.status);
            (a, started.elapsed())
        })
    };
    let tar = tar_of_one_file(200 * 1024);
    let mut up = connect(&d, Duration::from_secs(30));
    let started = Instant::now();
    send(
        &mut up,
        "POST",
        "/images/create?fromSrc=-&repo=slow&tag=1",
        tar.len(),
        &[],
    );
    let step = tar.len().div_ceil(20);
    for piece in tar.chunks(step) {
        std::thread::sleep(Duration::from_millis(250));
        up.write_all(piece).expect("the slow upload was cut");
    }
    let a = read_answer(&mut up).expect("an answer to the slow upload");
    assert_eq!(a.status, 200, "{}", String::from_utf8_lossy(&a.body));
    assert!(
        started.elapsed() > Duration::from_secs(4),
        "{:?}",
        started.elapsed()
    );
    let (status, took) = stalled.join().unwrap();
    let status = status.expect("an answer to the stalled upload");
    assert!(
        status >= 400 && took < CUT_WITHIN,
        "{status} after {took:?}"
    );

    // the events stream, idle all along, still delivers
    let (status, _, _) = raw_request(
        &d.sock,
        "POST",
        "/volumes/create",
        Some(br#"{"Name":"late"}"#),
    )
    .unwrap();
    assert_eq!(status, 201);
    while !String::from_utf8_lossy(&seen).contains("late") {
        fill(&mut events, &mut seen).expect("the events stream was cut");
    }
    // and so does the exec session
    exec.write_all(b"still here\n").unwrap();
    let mut echoed = Vec::new();
    while !String::from_utf8_lossy(&echoed).contains("still here") {
        fill(&mut exec, &mut echoed).expect("the exec session was cut");
    }
    let o = d.berth(&["images", "--format", "{{.Repository}}:{{.Tag}}"]);
    assert!(
        common::stdout(&o).contains("slow:1"),
        "{}",
        common::stdout(&o)
    );
}

/// `cat` in container `slow` over a hijacked (101) exec connection.
fn start_exec_session(d: &Daemon) -> UnixStream {
    let (status, _, body) = raw_request(
        &d.sock,
        "POST",
        "/containers/slow/exec",
        Some(br#"{"AttachStdin":true,"AttachStdout":true,"Cmd":["cat"]}"#),
    )
    .unwrap();
    assert_eq!(status, 201, "{}", String::from_utf8_lossy(&body));
    let v: serde_json::Value = serde_json::from_slice(&body).unwrap();
    let id = v["Id"].as_str().expect("exec id");
    let start = br#"{"Detach":false,"Tty":false}"#;
    let mut s = connect(d, Duration::from_secs(20));
    let head = format!(
        "POST /exec/{id}/start HTTP/1.1\r\nHost: berth\r\nContent-Type: application/json\r\n\
         Connection: Upgrade\r\nUpgrade: tcp\r\nContent-Length: {}\r\n\r\n",
        start.len()
    );
    s.write_all(head.as_bytes()).unwrap();
    s.write_all(start).unwrap();
    let mut seen = Vec::new();
    while !String::from_utf8_lossy(&seen).contains("\r\n\r\n") {
        fill(&mut s, &mut seen).expect("exec start head");
    }
    assert!(
        String::from_utf8_lossy(&seen).starts_with("HTTP/1.1 101"),
        "{}",
        String::from_utf8_lossy(&seen)
    );
    s
}

#[test]
fn failed_requests_are_logged() {
    let d = Daemon::start();
    let (status, _, _) = raw_request(&d.sock, "GET", "/containers/nope/json", None).unwrap();
    assert_eq!(status, 404);
    let (status, _, _) = raw_request(&d.sock, "GET", "/v1.99/info", None).unwrap();
    assert_eq!(status, 400);
    let (status, _, body) = raw_request(
        &d.sock,
        "POST",
        "/containers/create",
        Some(br#"{"Image":"busybox","HostConfig":{"LogConfig":{"Type":"none"}}}"#),
    )
    .unwrap();
    assert_eq!(status, 201, "{}", String::from_utf8_lossy(&body));
    let v: serde_json::Value = serde_json::from_slice(&body).unwrap();
    let logs = format!("/containers/{}/logs", v["Id"].as_str().expect("id"));
    let (status, _, _) = raw_request(&d.sock, "GET", &format!("{logs}?stdout=1"), None).unwrap();
    assert_eq!(status, 501);

    let log = d.log();
    let line = |path: &str| -> String {
        log.lines()
            .find(|l| l.contains("request failed") && l.contains(path))
            .unwrap_or_else(|| panic!("no log line for {path}:\n{log}"))
            .to_string()
    };
    let l = line("/containers/nope/json");
    for part in [
        "DEBUG",
        "method=GET",
        "status=404",
        "No such container: nope",
    ] {
        assert!(l.contains(part), "{part}: {l}");
    }
    let l = line("/v1.99/info");
    for part in ["DEBUG", "status=400", "is too new"] {
        assert!(l.contains(part), "{part}: {l}");
    }
    let l = line(&logs);
    assert!(l.contains("WARN") || l.contains("ERROR"), "{l}");
    for part in ["status=501", "does not support reading"] {
        assert!(l.contains(part), "{part}: {l}");
    }
}
