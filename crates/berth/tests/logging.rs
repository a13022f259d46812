//! Logging drivers against real receivers: syslog listeners (UDP, TCP,
//! unix datagram, TLS through `openssl s_server`), GELF over UDP and TCP,
//! a fluentd forward listener written here, and systemd-journald itself,
//! all inside the test's namespaces. Also the local driver, dual logging,
//! non-blocking mode and the daemon's default driver.

mod common;

use std::io::Read;
use std::net::{TcpListener, UdpSocket};
use std::os::unix::net::UnixDatagram;
use std::sync::mpsc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use common::{Daemon, code, stderr, stdout};

/// Runs `f` on a thread inside the network namespace of `pid`; `f` says
/// when it is listening through the sender it gets.
fn in_netns<T: Send + 'static>(
    pid: i32,
    f: impl FnOnce(mpsc::Sender<()>) -> T + Send + 'static,
) -> JoinHandle<T> {
    let ns = std::fs::File::open(format!("/proc/{pid}/ns/net")).expect("netns");
    let (tx, rx) = mpsc::channel();
    let h = std::thread::spawn(move || {
        nix::sched::setns(&ns, nix::sched::CloneFlags::CLONE_NEWNET).expect("setns");
        f(tx)
    });
    rx.recv_timeout(Duration::from_secs(10))
        .expect("receiver did not start");
    h
}

/// Datagrams arriving on a UDP port until `quiet` passes without one (or
/// 30 s in all).
fn udp_receiver(pid: i32, port: u16, quiet: Duration) -> JoinHandle<Vec<Vec<u8>>> {
    in_netns(pid, move |ready| {
        let s = UdpSocket::bind(("127.0.0.1", port)).expect("bind udp");
        s.set_read_timeout(Some(quiet)).expect("timeout");
        ready.send(()).expect("ready");
        let mut got = Vec::new();
        let mut buf = vec![0u8; 65536];
        let deadline = Instant::now() + Duration::from_secs(30);
        // the first datagram may take the container's start
        let mut first = true;
        while Instant::now() < deadline {
            match s.recv(&mut buf) {
                Ok(n) => {
                    got.push(buf[..n].to_vec());
                    first = false;
                }
                Err(_) if first => continue,
                Err(_) => break,
            }
        }
        got
    })
}

/// Everything one TCP connection sends until it closes.
fn tcp_receiver(pid: i32, port: u16) -> JoinHandle<Vec<u8>> {
    in_netns(pid, move |ready| {
        let l = TcpListener::bind(("127.0.0.1", port)).expect("bind tcp");
        ready.send(()).expect("ready");
        let (mut c, _) = l.accept().expect("accept");
        c.set_read_timeout(Some(Duration::from_secs(30)))
            .expect("timeout");
        let mut all = Vec::new();
        let _ = c.read_to_end(&mut all);
        all
    })
}

fn run_ok(d: &Daemon, args: &[&str]) -> String {
    let o = d.berth(args);
    assert_eq!(code(&o), 0, "berth {args:?}: {}", stderr(&o));
    stdout(&o)
}

fn full_id(d: &Daemon, name: &str) -> String {
    run_ok(d, &["inspect", "-f", "{{.Id}}", name])
        .trim()
        .to_string()
}

#[test]
fn syslog_delivers_over_udp_tcp_unix_and_tls_in_dockerds_formats() {
    let d = Daemon::start();
    let host = d
        .sh("hostname")
        .stdout
        .iter()
        .map(|&b| b as char)
        .collect::<String>();
    let host = host.trim().to_string();

    // UDP, the default format, a tag template and a facility
    let rx = udp_receiver(d.ns_pid, 5514, Duration::from_secs(2));
    run_ok(
        &d,
        &[
            "run",
            "--name",
            "sy-udp",
            "--log-driver",
            "syslog",
            "--log-opt",
            "syslog-address=udp://127.0.0.1:5514",
            "--log-opt",
            "syslog-facility=local0",
            "--log-opt",
            "tag={{.Name}}/{{.ImageName}}",
            "busybox",
            "sh",
            "-c",
            "echo out; echo err >&2",
        ],
    );
    let got: Vec<String> = rx
        .join()
        .expect("udp")
        .iter()
        .map(|d| String::from_utf8_lossy(d).into_owned())
        .collect();
    assert_eq!(got.len(), 2, "{got:?}");
    // local0 is 16: 16*8+6 for stdout, 16*8+3 for stderr
    let out = got
        .iter()
        .find(|m| m.starts_with("<134>"))
        .expect("stdout line");
    let err = got
        .iter()
        .find(|m| m.starts_with("<131>"))
        .expect("stderr line");
    // <PRI>Mmm dd hh:mm:ss TAG[PID]: MSG
    assert!(out.contains(" sy-udp/busybox["), "{out}");
    assert!(out.ends_with("]: out\n"), "{out}");
    assert!(err.ends_with("]: err\n"), "{err}");
    assert_eq!(
        out[5..].split(' ').filter(|w| !w.is_empty()).count(),
        5,
        "{out}"
    );
    // dual logging: the local cache still serves `logs`
    let o = d.berth(&["logs", "sy-udp"]);
    assert_eq!(stdout(&o), "out\n");
    assert_eq!(stderr(&o), "err\n");

    // TCP, RFC 5424 with the default tag (the short id)
    let rx = tcp_receiver(d.ns_pid, 5515);
    run_ok(
        &d,
        &[
            "run",
            "--name",
            "sy-tcp",
            "--log-driver",
            "syslog",
            "--log-opt",
            "syslog-address=tcp://127.0.0.1:5515",
            "--log-opt",
            "syslog-format=rfc5424",
            "busybox",
            "sh",
            "-c",
            "echo one; echo two",
        ],
    );
    let id = full_id(&d, "sy-tcp");
    let text = String::from_utf8(rx.join().expect("tcp")).expect("utf8");
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 2, "{text}");
    for (line, msg) in lines.iter().zip(["one", "two"]) {
        // <30>1 TIMESTAMP HOST APP PID MSGID - MSG (daemon.info)
        let f: Vec<&str> = line.splitn(8, ' ').collect();
        assert_eq!(f[0], "<30>1", "{line}");
        assert!(chrono::DateTime::parse_from_rfc3339(f[1]).is_ok(), "{line}");
        assert_eq!(f[2], host, "{line}");
        assert_eq!(f[3], &id[..12], "{line}");
        assert!(f[4].parse::<u32>().is_ok(), "{line}");
        assert_eq!((f[5], f[6], f[7]), (&id[..12], "-", msg), "{line}");
    }

    // a unix datagram socket, RFC 3164
    let sock_path = d.dir.path().join("syslog.sock");
    let sock = UnixDatagram::bind(&sock_path).expect("bind unixgram");
    sock.set_read_timeout(Some(Duration::from_secs(20)))
        .expect("timeout");
    run_ok(
        &d,
        &[
            "run",
            "--name",
            "sy-unix",
            "--log-driver",
            "syslog",
            "--log-opt",
            &format!("syslog-address=unixgram://{}", sock_path.display()),
            "--log-opt",
            "syslog-format=rfc3164",
            "--log-opt",
            "tag=unix",
            "busybox",
            "echo",
            "via unix",
        ],
    );
    let mut buf = [0u8; 4096];
    let n = sock.recv(&mut buf).expect("unix datagram");
    let msg = String::from_utf8_lossy(&buf[..n]);
    assert!(msg.starts_with("<30>"), "{msg}");
    assert!(msg.contains(&format!(" {host} unix[")), "{msg}");
    assert!(msg.ends_with("]: via unix\n"), "{msg}");

    // TCP with TLS: openssl's own server, a CA of the test's making, and
    // RFC 5425 octet counting
    let dir = d.dir.path();
    let sh = |script: &str| {
        let o = std::process::Command::new("sh")
            .current_dir(dir)
            .args(["-c", script])
            .output()
            .expect("sh");
        assert!(o.status.success(), "{script}: {}", stderr(&o));
    };
    sh(
        "openssl req -x509 -newkey rsa:2048 -nodes -keyout ca.key -out ca.pem -days 1 -subj /CN=test-ca 2>/dev/null",
    );
    sh(
        "openssl req -newkey rsa:2048 -nodes -keyout srv.key -out srv.csr -subj /CN=127.0.0.1 2>/dev/null",
    );
    sh(
        "printf 'subjectAltName=IP:127.0.0.1\\nbasicConstraints=CA:FALSE\\n' > ext.cnf && openssl x509 -req -in srv.csr -CA ca.pem -CAkey ca.key -CAcreateserial -out srv.pem -days 1 -extfile ext.cnf 2>/dev/null",
    );
    let tls_out = dir.join("tls.out");
    let mut server = std::process::Command::new("nsenter")
        .args(["-t", &d.ns_pid.to_string(), "-n", "--"])
        .args([
            "openssl",
            "s_server",
            "-quiet",
            "-naccept",
            "1",
            "-accept",
            "127.0.0.1:6514",
            "-cert",
        ])
        .arg(dir.join("srv.pem"))
        .arg("-key")
        .arg(dir.join("srv.key"))
        .stdout(std::fs::File::create(&tls_out).expect("tls.out"))
        .stderr(std::process::Stdio::null())
        // s_server closes the connection when its stdin ends: keep it open
        .stdin(std::process::Stdio::piped())
        .spawn()
        .expect("openssl s_server");
    // listening, as the namespace's /proc/net/tcp tells (a probe would
    // take s_server's one connection)
    assert!(common::eventually(10, || {
        std::fs::read_to_string(format!("/proc/{}/net/tcp", d.ns_pid))
            .unwrap_or_default()
            .lines()
            .any(|l| l.contains(":1972 ") && l.split_whitespace().nth(3) == Some("0A"))
    }));
    run_ok(
        &d,
        &[
            "run",
            "--name",
            "sy-tls",
            "--log-driver",
            "syslog",
            "--log-opt",
            "syslog-address=tcp+tls://127.0.0.1:6514",
            "--log-opt",
            &format!("syslog-tls-ca-cert={}", dir.join("ca.pem").display()),
            "--log-opt",
            "syslog-format=rfc5424micro",
            "busybox",
            "echo",
            "secret line",
        ],
    );
    assert!(
        common::eventually(10, || std::fs::read_to_string(&tls_out)
            .unwrap_or_default()
            .contains("secret line")),
        "{:?}",
        std::fs::read_to_string(&tls_out)
    );
    let _ = server.kill();
    let _ = server.wait();
    let text = std::fs::read_to_string(&tls_out).expect("tls.out");
    let (len, rest) = text.split_once(' ').expect("octet count");
    assert_eq!(len.parse::<usize>().expect("count"), rest.len(), "{text:?}");
    assert!(rest.starts_with("<30>1 "), "{text:?}");
    assert!(rest.ends_with(" - secret line\n"), "{text:?}");
    // a microsecond timestamp
    let ts = rest.split(' ').nth(1).expect("timestamp");
    assert_eq!(ts.split('.').nth(1).map(|f| f.len()), Some(7), "{ts}");

    // a CA that did not sign the server's certificate: the start fails
    let o = d.berth(&[
        "run",
        "--log-driver",
        "syslog",
        "--log-opt",
        "syslog-address=tcp+tls://127.0.0.1:6514",
        "--log-opt",
        &format!("syslog-tls-ca-cert={}", dir.join("srv.pem").display()),
        "busybox",
        "true",
    ]);
    assert_eq!(code(&o), 125, "{}", stderr(&o));

    // nobody listening on TCP: the start fails as dockerd's does
    let o = d.berth(&[
        "run",
        "--name",
        "sy-refused",
        "--log-driver",
        "syslog",
        "--log-opt",
        "syslog-address=tcp://127.0.0.1:5599",
        "busybox",
        "true",
    ]);
    assert_eq!(code(&o), 125);
    assert!(
        stderr(&o).contains(
            "failed to initialize logging driver: dial tcp 127.0.0.1:5599: connect: connection refused"
        ),
        "{}",
        stderr(&o)
    );
    // bad options are refused at create, with dockerd's words
    for (opt, want) in [
        ("syslog-facility=nope", "invalid syslog facility"),
        ("syslog-format=rfc9", "invalid syslog format"),
        ("syslog-address=http://x", "unsupported scheme: 'http'"),
        ("bogus=1", "unknown log opt 'bogus' for syslog log driver"),
    ] {
        let o = d.docker(&[
            "create",
            "--log-driver",
            "syslog",
            "--log-opt",
            opt,
            "busybox",
        ]);
        // the docker CLI's create fails with 1 (run with 125)
        assert_eq!(code(&o), 1, "{opt}");
        assert!(stderr(&o).contains(want), "{opt}: {}", stderr(&o));
    }
}

/// GELF messages of a UDP capture: whole datagrams and reassembled chunks,
/// decompressed.
fn gelf_messages(datagrams: &[Vec<u8>]) -> Vec<serde_json::Value> {
    // message id -> (number, count, data) of its chunks
    type Chunks = Vec<(u8, u8, Vec<u8>)>;
    let mut chunks: std::collections::BTreeMap<Vec<u8>, Chunks> = Default::default();
    let mut whole = Vec::new();
    for d in datagrams {
        if d.starts_with(&[0x1e, 0x0f]) {
            chunks
                .entry(d[2..10].to_vec())
                .or_default()
                .push((d[10], d[11], d[12..].to_vec()));
        } else {
            whole.push(d.clone());
        }
    }
    for (_, mut parts) in chunks {
        parts.sort_by_key(|p| p.0);
        let count = parts[0].1 as usize;
        assert_eq!(parts.len(), count, "missing chunks");
        whole.push(parts.into_iter().flat_map(|p| p.2).collect());
    }
    whole
        .iter()
        .map(|data| {
            let mut json = Vec::new();
            if data.starts_with(&[0x1f, 0x8b]) {
                flate2::read::GzDecoder::new(&data[..])
                    .read_to_end(&mut json)
                    .expect("gunzip");
            } else if data.starts_with(&[0x78]) {
                flate2::read::ZlibDecoder::new(&data[..])
                    .read_to_end(&mut json)
                    .expect("zlib");
            } else {
                json = data.clone();
            }
            serde_json::from_slice(&json).expect("gelf json")
        })
        .collect()
}

#[test]
fn gelf_over_udp_with_chunks_and_over_tcp() {
    let d = Daemon::start();
    let rx = udp_receiver(d.ns_pid, 12201, Duration::from_secs(2));
    run_ok(
        &d,
        &[
            "run",
            "--name",
            "gelf-udp",
            "--label",
            "team=core",
            "-e",
            "STAGE=test",
            "--log-driver",
            "gelf",
            "--log-opt",
            "gelf-address=udp://127.0.0.1:12201",
            "--log-opt",
            "labels=team",
            "--log-opt",
            "env=STAGE",
            "busybox",
            "sh",
            "-c",
            // a line that compresses to more than one datagram
            "echo short; head -c 9000 /dev/urandom | base64 -w0; echo; echo oops >&2",
        ],
    );
    let datagrams = rx.join().expect("udp");
    assert!(
        datagrams.iter().any(|d| d.starts_with(&[0x1e, 0x0f])),
        "no chunked message"
    );
    let msgs = gelf_messages(&datagrams);
    assert_eq!(msgs.len(), 3, "{msgs:?}");
    let id = full_id(&d, "gelf-udp");
    let short = msgs
        .iter()
        .find(|m| m["short_message"] == "short")
        .expect("short");
    assert_eq!(short["version"], "1.1");
    assert_eq!(short["level"], 6);
    assert!(short["timestamp"].as_f64().is_some_and(|t| t > 1.6e9));
    assert_eq!(short["_container_id"], id.as_str());
    assert_eq!(short["_container_name"], "gelf-udp");
    assert_eq!(short["_image_name"], "busybox");
    assert_eq!(short["_tag"], &id[..12]);
    assert_eq!(short["_team"], "core");
    assert_eq!(short["_STAGE"], "test");
    assert!(
        short["_image_id"]
            .as_str()
            .is_some_and(|s| s.starts_with("sha256:"))
    );
    assert!(
        short["_command"]
            .as_str()
            .is_some_and(|s| s.starts_with("sh -c echo short"))
    );
    assert!(short["_created"].as_str().is_some_and(|s| !s.is_empty()));
    let long = msgs
        .iter()
        .find(|m| {
            m["short_message"]
                .as_str()
                .is_some_and(|s| s.len() == 12000)
        })
        .expect("the long line, whole");
    assert_eq!(long["level"], 6);
    let oops = msgs
        .iter()
        .find(|m| m["short_message"] == "oops")
        .expect("stderr");
    assert_eq!(oops["level"], 3);

    // zlib instead of gzip
    let rx = udp_receiver(d.ns_pid, 12202, Duration::from_secs(2));
    run_ok(
        &d,
        &[
            "run",
            "--log-driver",
            "gelf",
            "--log-opt",
            "gelf-address=udp://127.0.0.1:12202",
            "--log-opt",
            "gelf-compression-type=zlib",
            "busybox",
            "echo",
            "zipped",
        ],
    );
    let datagrams = rx.join().expect("udp");
    assert_eq!(datagrams.len(), 1);
    assert_eq!(datagrams[0][0], 0x78, "not zlib");
    assert_eq!(gelf_messages(&datagrams)[0]["short_message"], "zipped");

    // TCP: NUL-terminated JSON, uncompressed
    let rx = tcp_receiver(d.ns_pid, 12203);
    run_ok(
        &d,
        &[
            "run",
            "--log-driver",
            "gelf",
            "--log-opt",
            "gelf-address=tcp://127.0.0.1:12203",
            "busybox",
            "sh",
            "-c",
            "echo a; echo b",
        ],
    );
    let all = rx.join().expect("tcp");
    let parts: Vec<&[u8]> = all.split(|&b| b == 0).filter(|p| !p.is_empty()).collect();
    assert_eq!(parts.len(), 2, "{:?}", String::from_utf8_lossy(&all));
    assert_eq!(*all.last().expect("data"), 0);
    let first: serde_json::Value = serde_json::from_slice(parts[0]).expect("json");
    assert_eq!(first["short_message"], "a");

    let o = d.docker(&["create", "--log-driver", "gelf", "busybox"]);
    assert!(
        stderr(&o).contains("gelf-address is a required parameter"),
        "{}",
        stderr(&o)
    );
    let o = d.docker(&[
        "create",
        "--log-driver",
        "gelf",
        "--log-opt",
        "gelf-address=tcp://127.0.0.1:1",
        "--log-opt",
        "gelf-compression-type=gzip",
        "busybox",
    ]);
    assert!(
        stderr(&o).contains("compression is only supported on UDP"),
        "{}",
        stderr(&o)
    );
}

/// A MessagePack value, as much of the format as fluentd's forward
/// protocol uses.
#[derive(Debug, Clone, PartialEq)]
enum Mp {
    Int(i64),
    Str(String),
    Arr(Vec<Mp>),
    Map(Vec<(Mp, Mp)>),
    Ext(i8, Vec<u8>),
}

impl Mp {
    fn get(&self, key: &str) -> Option<&Mp> {
        match self {
            Mp::Map(kv) => kv
                .iter()
                .find(|(k, _)| *k == Mp::Str(key.into()))
                .map(|(_, v)| v),
            _ => None,
        }
    }

    fn str(&self) -> &str {
        match self {
            Mp::Str(s) => s,
            other => panic!("not a string: {other:?}"),
        }
    }
}

/// Decodes one value; None when `b` ends inside it.
fn mp_decode(b: &[u8], pos: &mut usize) -> Option<Mp> {
    let take = |pos: &mut usize, n: usize| -> Option<Vec<u8>> {
        let v = b.get(*pos..*pos + n)?.to_vec();
        *pos += n;
        Some(v)
    };
    let be = |v: &[u8]| v.iter().fold(0u64, |a, &x| (a << 8) | x as u64);
    let t = *b.get(*pos)?;
    *pos += 1;
    let str_of = |pos: &mut usize, n: usize| -> Option<Mp> {
        Some(Mp::Str(String::from_utf8(take(pos, n)?).ok()?))
    };
    Some(match t {
        0x00..=0x7f => Mp::Int(t as i64),
        0xe0..=0xff => Mp::Int(t as i8 as i64),
        0xa0..=0xbf => str_of(pos, (t & 0x1f) as usize)?,
        0xd9 => {
            let n = take(pos, 1)?[0] as usize;
            str_of(pos, n)?
        }
        0xda => {
            let n = be(&take(pos, 2)?) as usize;
            str_of(pos, n)?
        }
        0xdb => {
            let n = be(&take(pos, 4)?) as usize;
            str_of(pos, n)?
        }
        0xcc => Mp::Int(be(&take(pos, 1)?) as i64),
        0xcd => Mp::Int(be(&take(pos, 2)?) as i64),
        0xce => Mp::Int(be(&take(pos, 4)?) as i64),
        0xcf => Mp::Int(be(&take(pos, 8)?) as i64),
        0xd0 => Mp::Int(take(pos, 1)?[0] as i8 as i64),
        0xd1 => Mp::Int(be(&take(pos, 2)?) as u16 as i16 as i64),
        0xd2 => Mp::Int(be(&take(pos, 4)?) as u32 as i32 as i64),
        0xd3 => Mp::Int(be(&take(pos, 8)?) as i64),
        0xd7 => {
            let ty = take(pos, 1)?[0] as i8;
            Mp::Ext(ty, take(pos, 8)?)
        }
        0x90..=0x9f | 0xdc => {
            let n = if t == 0xdc {
                be(&take(pos, 2)?) as usize
            } else {
                (t & 0x0f) as usize
            };
            let mut v = Vec::new();
            for _ in 0..n {
                v.push(mp_decode(b, pos)?);
            }
            Mp::Arr(v)
        }
        0x80..=0x8f | 0xde => {
            let n = if t == 0xde {
                be(&take(pos, 2)?) as usize
            } else {
                (t & 0x0f) as usize
            };
            let mut v = Vec::new();
            for _ in 0..n {
                let k = mp_decode(b, pos)?;
                v.push((k, mp_decode(b, pos)?));
            }
            Mp::Map(v)
        }
        other => panic!("unexpected msgpack type {other:#x}"),
    })
}

/// A fluentd forward listener: the events of one connection, until it
/// closes.
fn fluentd_listener(pid: i32, port: u16) -> JoinHandle<Vec<Mp>> {
    let all = tcp_receiver(pid, port);
    std::thread::spawn(move || {
        let all = all.join().expect("fluentd connection");
        let mut pos = 0;
        let mut events = Vec::new();
        while pos < all.len() {
            events.push(mp_decode(&all, &mut pos).expect("a whole event"));
        }
        events
    })
}

#[test]
fn fluentd_forward_protocol_sync_and_async() {
    let d = Daemon::start();
    let rx = fluentd_listener(d.ns_pid, 24224);
    run_ok(
        &d,
        &[
            "run",
            "--name",
            "fl-sync",
            "--log-driver",
            "fluentd",
            "--log-opt",
            "tag=docker.{{.Name}}",
            "busybox",
            "sh",
            "-c",
            "echo hello; echo bad >&2",
        ],
    );
    let id = full_id(&d, "fl-sync");
    let events = rx.join().expect("events");
    assert_eq!(events.len(), 2, "{events:?}");
    // stdout and stderr are copied by two threads: find each by its source
    let by_source = |src: &str| {
        events
            .iter()
            .find(|e| matches!(e, Mp::Arr(v) if v.len() == 4 && v[2].get("source") == Some(&Mp::Str(src.into()))))
            .cloned()
            .unwrap_or_else(|| panic!("no {src} event in {events:?}"))
    };
    let Mp::Arr(ev) = by_source("stdout") else {
        panic!("not an array")
    };
    // [tag, time, record, option]
    assert_eq!(ev.len(), 4);
    assert_eq!(ev[0], Mp::Str("docker.fl-sync".into()));
    let Mp::Int(t) = ev[1] else {
        panic!("time is not an integer: {:?}", ev[1])
    };
    assert!((t - chrono::Utc::now().timestamp()).abs() < 120);
    let rec = &ev[2];
    assert_eq!(rec.get("container_id").map(Mp::str), Some(id.as_str()));
    assert_eq!(rec.get("container_name").map(Mp::str), Some("/fl-sync"));
    assert_eq!(rec.get("source").map(Mp::str), Some("stdout"));
    assert_eq!(rec.get("log").map(Mp::str), Some("hello"));
    assert_eq!(ev[3], Mp::Map(vec![]));
    let Mp::Arr(ev2) = by_source("stderr") else {
        panic!("not an array")
    };
    assert_eq!(ev2[2].get("log").map(Mp::str), Some("bad"));

    // sub-second precision: fluentd's EventTime extension
    let rx = fluentd_listener(d.ns_pid, 24225);
    run_ok(
        &d,
        &[
            "run",
            "--log-driver",
            "fluentd",
            "--log-opt",
            "fluentd-address=tcp://127.0.0.1:24225",
            "--log-opt",
            "fluentd-sub-second-precision=true",
            "busybox",
            "echo",
            "precise",
        ],
    );
    let events = rx.join().expect("events");
    let Mp::Arr(ev) = &events[0] else { panic!() };
    match &ev[1] {
        Mp::Ext(0, b) => {
            let secs = u32::from_be_bytes([b[0], b[1], b[2], b[3]]) as i64;
            assert!((secs - chrono::Utc::now().timestamp()).abs() < 120);
        }
        other => panic!("not an EventTime: {other:?}"),
    }

    // no receiver: a synchronous driver fails the start…
    let o = d.berth(&[
        "run",
        "--log-driver",
        "fluentd",
        "--log-opt",
        "fluentd-address=127.0.0.1:24226",
        "busybox",
        "true",
    ]);
    assert_eq!(code(&o), 125, "{}", stderr(&o));
    assert!(
        stderr(&o).contains("failed to initialize logging driver"),
        "{}",
        stderr(&o)
    );
    // …an async one starts, and delivers once the receiver is up
    run_ok(
        &d,
        &[
            "run",
            "-d",
            "--name",
            "fl-async",
            "--log-driver",
            "fluentd",
            "--log-opt",
            "fluentd-address=127.0.0.1:24226",
            "--log-opt",
            "fluentd-async=true",
            "--log-opt",
            "fluentd-retry-wait=200ms",
            "busybox",
            "sh",
            "-c",
            "echo early; sleep 2; echo late",
        ],
    );
    std::thread::sleep(Duration::from_millis(500));
    let rx = fluentd_listener(d.ns_pid, 24226);
    let o = d.berth(&["wait", "fl-async"]);
    assert_eq!(stdout(&o), "0\n");
    let logs: Vec<String> = rx
        .join()
        .expect("events")
        .iter()
        .map(|e| match e {
            Mp::Arr(v) => v[2].get("log").map(Mp::str).unwrap_or("").to_string(),
            _ => String::new(),
        })
        .collect();
    assert_eq!(logs, vec!["early", "late"]);
    // the cache serves `logs`
    assert_eq!(stdout(&d.berth(&["logs", "fl-async"])), "early\nlate\n");

    // a receiver that never comes: the exit is still recorded, after
    // dockerd's 10 s for the driver to give up
    run_ok(
        &d,
        &[
            "run",
            "-d",
            "--name",
            "fl-dead",
            "--log-driver",
            "fluentd",
            "--log-opt",
            "fluentd-address=127.0.0.1:24299",
            "--log-opt",
            "fluentd-async=true",
            "busybox",
            "sh",
            "-c",
            "echo lost; exit 3",
        ],
    );
    let started = Instant::now();
    let o = std::process::Command::new("timeout")
        .args([
            "40",
            common::berth_bin(),
            "-H",
            &d.host(),
            "wait",
            "fl-dead",
        ])
        .output()
        .expect("wait");
    assert_eq!(stdout(&o), "3\n", "{}", stderr(&o));
    assert!(started.elapsed() < Duration::from_secs(30));
    assert_eq!(stdout(&d.berth(&["logs", "fl-dead"])), "lost\n");
}

#[test]
fn journald_gets_dockerds_fields() {
    let d = Daemon::start();
    // a journald of the test's own, in the daemon's mount namespace
    let o = d.sh(
        "mount -t tmpfs tmpfs /run/systemd && mkdir -p /run/systemd/journal && \
         mkdir -p /run/log && mount -t tmpfs tmpfs /run/log && \
         mount -t tmpfs tmpfs /var/log/journal",
    );
    assert!(o.status.success(), "{}", stderr(&o));
    let mut journald = std::process::Command::new("nsenter")
        .args(["-t", &d.ns_pid.to_string(), "-m", "-n", "--"])
        .arg("/lib/systemd/systemd-journald")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("systemd-journald (package systemd)");
    assert!(common::eventually(10, || d
        .sh("test -S /run/systemd/journal/socket")
        .status
        .success()));
    run_ok(
        &d,
        &[
            "run",
            "--name",
            "jd",
            "--log-driver",
            "journald",
            "--log-opt",
            "tag=jtag",
            "--label",
            "com.example.team=core",
            "--log-opt",
            "labels=com.example.team",
            "busybox",
            "sh",
            "-c",
            "echo to-journal; echo warn >&2",
        ],
    );
    let id = full_id(&d, "jd");
    let mut entries = Vec::new();
    assert!(common::eventually(10, || {
        let o = d.sh("journalctl --no-pager -o json CONTAINER_NAME=jd");
        entries = stdout(&o)
            .lines()
            .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
            .collect();
        entries.len() == 2
    }));
    let _ = journald.kill();
    let _ = journald.wait();
    let out = entries
        .iter()
        .find(|e| e["MESSAGE"] == "to-journal")
        .expect("stdout entry");
    assert_eq!(out["PRIORITY"], "6");
    assert_eq!(out["CONTAINER_ID"], &id[..12]);
    assert_eq!(out["CONTAINER_ID_FULL"], id.as_str());
    assert_eq!(out["CONTAINER_TAG"], "jtag");
    assert_eq!(out["SYSLOG_IDENTIFIER"], "jtag");
    assert_eq!(out["IMAGE_NAME"], "busybox");
    assert_eq!(out["COM_EXAMPLE_TEAM"], "core");
    let err = entries
        .iter()
        .find(|e| e["MESSAGE"] == "warn")
        .expect("stderr entry");
    assert_eq!(err["PRIORITY"], "3");
    assert_eq!(stdout(&d.berth(&["logs", "jd"])), "to-journal\n");
}

#[test]
fn local_driver_cache_switches_and_non_blocking_mode() {
    let d = Daemon::start();
    // the local driver: rotation with compression, read back in order
    run_ok(
        &d,
        &[
            "run",
            "--name",
            "loc",
            "--log-driver",
            "local",
            "--log-opt",
            "max-size=2k",
            "--log-opt",
            "max-file=3",
            "busybox",
            "sh",
            "-c",
            "seq 1 300",
        ],
    );
    let id = full_id(&d, "loc");
    let dir = d
        .data_root()
        .join("containers")
        .join(&id)
        .join("local-logs");
    assert!(dir.join("container.log").exists());
    assert!(dir.join("container.log.1.gz").exists() || dir.join("container.log.1").exists());
    assert!(!dir.join("container.log.3").exists() && !dir.join("container.log.3.gz").exists());
    let all = stdout(&d.berth(&["logs", "loc"]));
    let nums: Vec<u32> = all.lines().map(|l| l.parse().expect("number")).collect();
    assert_eq!(*nums.last().expect("lines"), 300);
    assert!(nums.windows(2).all(|w| w[1] == w[0] + 1), "out of order");
    assert!(nums.len() < 300, "rotation kept everything");
    assert_eq!(
        stdout(&d.docker(&["logs", "--tail", "2", "loc"])),
        "299\n300\n"
    );
    let o = d.berth(&["logs", "-t", "--tail", "1", "loc"]);
    let (ts, line) = stdout(&o)
        .trim_end()
        .split_once(' ')
        .map(|(a, b)| (a.to_string(), b.to_string()))
        .expect("ts");
    assert!(chrono::DateTime::parse_from_rfc3339(&ts).is_ok());
    assert_eq!(line, "300");
    // dockerd shows no LogPath for drivers other than json-file
    assert_eq!(
        stdout(&d.berth(&["inspect", "-f", "{{.LogPath}}", "loc"])),
        "\n"
    );

    // no cache: `logs` cannot read a remote driver
    run_ok(
        &d,
        &[
            "create",
            "--name",
            "nocache",
            "--log-driver",
            "gelf",
            "--log-opt",
            "gelf-address=udp://127.0.0.1:12299",
            "--log-opt",
            "cache-disabled=true",
            "busybox",
            "echo",
            "x",
        ],
    );
    run_ok(&d, &["start", "-a", "nocache"]);
    for o in [
        d.berth(&["logs", "nocache"]),
        d.docker(&["logs", "nocache"]),
    ] {
        assert_ne!(code(&o), 0);
        assert!(
            stderr(&o).contains("configured logging driver does not support reading"),
            "{}",
            stderr(&o)
        );
    }
    let (status, _, _) =
        common::raw_request(&d.sock, "GET", "/containers/nocache/logs?stdout=1", None)
            .expect("request");
    assert_eq!(status, 501);
    let o = d.berth(&["logs", "--help"]);
    assert_eq!(code(&o), 0);

    // non-blocking mode delivers everything when the buffer keeps up
    run_ok(
        &d,
        &[
            "run",
            "--name",
            "nb",
            "--log-opt",
            "mode=non-blocking",
            "--log-opt",
            "max-buffer-size=4m",
            "busybox",
            "sh",
            "-c",
            "seq 1 2000",
        ],
    );
    let out = stdout(&d.berth(&["logs", "nb"]));
    assert_eq!(out.lines().count(), 2000);
    assert_eq!(out.lines().last(), Some("2000"));
    for (opt, want) in [
        ("mode=fast", "logger: logging mode not supported: fast"),
        (
            "max-buffer-size=1m",
            "max-buffer-size option is only supported with 'mode=non-blocking'",
        ),
    ] {
        let o = d.berth(&["run", "--log-opt", opt, "busybox"]);
        assert_eq!(code(&o), 125);
        assert!(stderr(&o).contains(want), "{}", stderr(&o));
    }
}

#[test]
fn daemon_default_log_driver_and_options() {
    let mut d = Daemon::start();
    d.stop();
    d.flags = vec![
        "--log-driver".into(),
        "local".into(),
        "--log-opt".into(),
        "max-size=1k".into(),
    ];
    d.start_again();
    let o = d.berth(&[
        "info",
        "--format",
        "{{.LoggingDriver}} {{json .Plugins.Log}}",
    ]);
    assert_eq!(
        stdout(&o),
        "local [\"fluentd\",\"gelf\",\"journald\",\"json-file\",\"local\",\"syslog\"]\n"
    );
    run_ok(&d, &["create", "--name", "dflt", "busybox"]);
    let o = d.berth(&["inspect", "-f", "{{json .HostConfig.LogConfig}}", "dflt"]);
    assert_eq!(
        stdout(&o),
        "{\"Type\":\"local\",\"Config\":{\"max-size\":\"1k\"}}\n"
    );
    // another driver does not take the default driver's options
    run_ok(
        &d,
        &[
            "create",
            "--name",
            "own",
            "--log-driver",
            "json-file",
            "busybox",
        ],
    );
    let o = d.berth(&[
        "inspect",
        "-f",
        "{{json .HostConfig.LogConfig.Config}}",
        "own",
    ]);
    assert_eq!(stdout(&o), "{}\n");

    // bad defaults are refused before the daemon starts
    let o = d
        .daemon_command(&[
            "--validate",
            "--log-driver",
            "syslog",
            "--log-opt",
            "syslog-format=x",
        ])
        .output()
        .expect("validate");
    assert!(!o.status.success());
    assert!(
        stderr(&o).contains("failed to set log opts: invalid syslog format"),
        "{}",
        stderr(&o)
    );
    let o = d
        .daemon_command(&["--validate", "--log-driver", "nope"])
        .output()
        .expect("validate");
    assert!(
        stderr(&o).contains("logger: no log driver named 'nope' is registered"),
        "{}",
        stderr(&o)
    );
}
