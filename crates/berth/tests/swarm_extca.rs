//! An external CA on a real cluster (common/cluster.rs), through the
//! docker CLI 28 and berth's CLI: `swarm init --external-ca` stores and
//! shows it, `swarm ca --rotate --ca-cert ROOT --external-ca …` moves the
//! cluster to a root whose key only the external CA holds, node
//! certificates then come from that CA over cfssl's JSON API, and a node
//! joining afterwards gets one from it too. The CA is this test's: a
//! small cfssl-compatible HTTPS signer on the manager's loopback.

mod common;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use berth_swarm_ca::{NodeIdentity, NodeKey, Role, RootCa};
use common::cluster::Cluster;
use common::{Daemon, code, eventually, node_id, ok, same, stderr, stdout};
use serde_json::{Value, json};

const DAY: Duration = Duration::from_secs(86400);

/// What the signer was asked: CN, OU, O, and whether the caller showed a
/// certificate.
type Asked = Arc<Mutex<Vec<(String, String, String, bool)>>>;

/// Binds 127.0.0.1 inside the network namespace of `ns_pid`.
fn bind_in(ns_pid: i32) -> TcpListener {
    let ns = std::fs::File::open(format!("/proc/{ns_pid}/ns/net")).unwrap();
    std::thread::spawn(move || {
        nix::sched::setns(&ns, nix::sched::CloneFlags::CLONE_NEWNET).unwrap();
        TcpListener::bind("127.0.0.1:0").unwrap()
    })
    .join()
    .unwrap()
}

/// Serves cfssl's `sign` on `listener` with `root`'s key, over TLS with a
/// certificate for 127.0.0.1 from `root`; callers' certificates are
/// checked against `trusts`.
fn serve(listener: TcpListener, root: RootCa, trusts: &RootCa) -> Asked {
    let key = NodeKey::generate().unwrap();
    let who = NodeIdentity {
        node_id: "127.0.0.1".into(),
        role: Role::Worker,
        cluster_id: "test-signer".into(),
    };
    let cert = root.sign(&key.csr_pem().unwrap(), &who, DAY).unwrap();
    let tls = berth_swarm_ca::server_config(trusts, &cert, &key).unwrap();
    let asked: Asked = Arc::default();
    let log = asked.clone();
    std::thread::spawn(move || {
        for tcp in listener.incoming().flatten() {
            let _ = tcp.set_read_timeout(Some(Duration::from_secs(10)));
            let Ok(conn) = rustls::ServerConnection::new(tls.clone()) else {
                continue;
            };
            let mut stream = rustls::StreamOwned::new(conn, tcp);
            // a reachability probe only shakes hands
            let Some(body) = read_request(&mut stream) else {
                continue;
            };
            let shown = stream.conn.peer_certificates().is_some();
            let answer = sign(&root, &body, shown, &log);
            let text = answer.to_string();
            let _ = write!(
                stream,
                "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{text}",
                text.len()
            );
            stream.conn.send_close_notify();
            let _ = stream.flush();
        }
    });
    asked
}

fn read_request(stream: &mut impl Read) -> Option<Vec<u8>> {
    let mut r = BufReader::new(stream);
    let mut len = 0;
    loop {
        let mut line = String::new();
        if r.read_line(&mut line).ok()? == 0 {
            return None;
        }
        let l = line.trim_end().to_ascii_lowercase();
        if l.is_empty() {
            break;
        }
        if let Some(v) = l.strip_prefix("content-length:") {
            len = v.trim().parse().ok()?;
        }
    }
    let mut body = vec![0; len];
    r.read_exact(&mut body).ok()?;
    Some(body)
}

fn sign(root: &RootCa, body: &[u8], shown: bool, log: &Asked) -> Value {
    let v: Value = serde_json::from_slice(body).unwrap_or_default();
    let s = &v["subject"];
    let field = |x: &Value| x.as_str().unwrap_or_default().to_string();
    let (cn, ou, o) = (
        field(&s["CN"]),
        field(&s["names"][0]["OU"]),
        field(&s["names"][0]["O"]),
    );
    log.lock()
        .unwrap()
        .push((cn.clone(), ou.clone(), o.clone(), shown));
    let who = Role::from_ou(&ou).map(|role| NodeIdentity {
        node_id: cn,
        role,
        cluster_id: o,
    });
    let csr = field(&v["certificate_request"]);
    match who.and_then(|w| root.sign(&csr, &w, 30 * DAY).ok()) {
        Some(c) => json!({ "success": true, "result": { "certificate": c.chain_pem },
            "errors": [], "messages": [] }),
        None => json!({ "success": false, "result": null,
            "errors": [{ "code": 1000, "message": "bad request" }], "messages": [] }),
    }
}

fn info(d: &Daemon, format: &str) -> String {
    ok(&d.docker(&["info", "--format", format]), "info")
        .trim()
        .to_string()
}

fn cert_file(d: &Daemon, name: &str) -> String {
    std::fs::read_to_string(d.data_root().join("swarm/certificates").join(name))
        .unwrap_or_else(|e| panic!("{name}: {e}"))
}

fn join(d: &Daemon, addr: &str, token: &str, leader: &str, cli: &str) {
    let args = common::join_args(token, addr, leader);
    let out = match cli {
        "docker" => d.docker(&args),
        _ => d.berth(&args),
    };
    ok(&out, "join");
}

#[test]
fn a_cluster_rotates_to_an_external_root_and_its_cfssl_ca_signs() {
    let c = Cluster::new(2);
    let (m, w) = (&c.node(0).daemon, &c.node(1).daemon);
    let leader = format!("{}:2377", c.node(0).addr);
    let dir = tempfile::tempdir().unwrap();
    let ext = RootCa::generate().unwrap();
    let ext_pem = ext.cert_pem().to_string();
    let ext_file = dir.path().join("ext-root.pem");
    std::fs::write(&ext_file, &ext_pem).unwrap();
    let ext_file = ext_file.to_string_lossy().into_owned();
    let listener = bind_in(m.ns_pid);
    let url = format!(
        "https://{}/api/v1/cfssl/sign",
        listener.local_addr().unwrap()
    );

    // init with an external CA for another root: stored and shown; the
    // cluster's own root keeps signing (swarmkit's rule)
    ok(
        &m.docker(&[
            "swarm",
            "init",
            "--advertise-addr",
            &c.node(0).addr,
            "--external-ca",
            &format!("protocol=cfssl,url={url},cacert={ext_file}"),
        ]),
        "init",
    );
    let spec = info(m, "{{json .Swarm.Cluster.Spec.CAConfig.ExternalCAs}}");
    let stored: Value = serde_json::from_str(&spec).unwrap();
    assert_eq!(stored[0]["Protocol"], "cfssl", "{spec}");
    assert_eq!(stored[0]["URL"], url.as_str());
    assert_eq!(
        stored[0]["CACert"].as_str().map(str::trim),
        Some(ext_pem.trim())
    );
    let text = ok(&m.docker(&["info"]), "info");
    assert!(
        text.contains(&format!("   External CAs:\n     cfssl: {url}\n")),
        "{text}"
    );
    let old_root = ok(&same(m, &["swarm", "ca"]), "ca");
    let trusts = RootCa::from_pem(&format!("{ext_pem}{old_root}"), None).unwrap();
    let asked = serve(
        listener,
        RootCa::from_pem(&ext_pem, ext.key_pem().as_deref()).unwrap(),
        &trusts,
    );
    let worker_token = ok(&m.docker(&["swarm", "join-token", "-q", "worker"]), "token");
    join(w, &c.node(1).addr, worker_token.trim(), &leader, "berth");
    assert!(asked.lock().unwrap().is_empty(), "signed locally");

    // an external CA that can't be reached, or not over https
    for bad in ["https://127.0.0.1:1/sign", &url.replace("https", "http")] {
        let out = same(
            m,
            &[
                "swarm",
                "ca",
                "--rotate",
                "--ca-cert",
                &ext_file,
                "--external-ca",
                &format!("protocol=cfssl,url={bad}"),
            ],
        );
        assert_eq!(code(&out), 1);
        assert_eq!(
            stderr(&out).trim(),
            "Error response from daemon: rpc error: code = InvalidArgument desc = there must be at least one valid, reachable external CA corresponding to the desired CA certificate"
        );
    }

    // the rotation through berth's CLI: every node ends on the external root
    let out = m.berth(&[
        "swarm",
        "ca",
        "--rotate",
        "--ca-cert",
        &ext_file,
        "--external-ca",
        &format!("protocol=cfssl,url={url}"),
    ]);
    let text = ok(&out, "ca --rotate");
    assert!(text.trim_end().ends_with(ext_pem.trim()), "{text}");
    assert_eq!(ok(&same(m, &["swarm", "ca"]), "ca").trim(), ext_pem.trim());
    let cluster_tls = info(m, "{{json .Swarm.Cluster.TLSInfo}}");
    assert!(!info(m, "{{.Swarm.Cluster.RootRotationInProgress}}").contains("true"));
    let ids = ok(&m.docker(&["node", "ls", "-q"]), "ls");
    for id in ids.split_whitespace() {
        let tls = ok(
            &m.docker(&[
                "node",
                "inspect",
                id,
                "--format",
                "{{json .Description.TLSInfo}}",
            ]),
            "inspect",
        );
        assert_eq!(tls.trim(), cluster_tls);
    }
    for d in [m, w] {
        assert_eq!(cert_file(d, "swarm-root-ca.crt").trim(), ext_pem.trim());
    }
    let cluster_id = info(m, "{{.Swarm.Cluster.ID}}");
    let seen = asked.lock().unwrap().clone();
    let (mid, wid) = (node_id(m), node_id(w));
    for (id, ou) in [(&mid, "swarm-manager"), (&wid, "swarm-worker")] {
        assert!(
            seen.iter()
                .any(|(cn, o_u, o, shown)| cn == id && o_u == ou && o == &cluster_id && *shown),
            "{id} {ou}: {seen:?}"
        );
    }

    // a node joining afterwards gets its certificate from the external CA
    ok(&w.docker(&["swarm", "leave"]), "leave");
    let token = ok(&m.docker(&["swarm", "join-token", "-q", "worker"]), "token");
    join(w, &c.node(1).addr, token.trim(), &leader, "docker");
    let again = node_id(w);
    assert_ne!(again, wid);
    assert!(
        asked
            .lock()
            .unwrap()
            .iter()
            .any(|(cn, _, _, _)| cn == &again),
        "the new node's certificate is the external CA's"
    );
    assert_eq!(cert_file(w, "swarm-root-ca.crt").trim(), ext_pem.trim());
    assert!(
        eventually(20, || {
            let l = stdout(&m.docker(&["node", "ls", "--format", "{{.Status}} {{.TLSStatus}}"]));
            l.lines().filter(|x| *x == "Ready Ready").count() == 2
        }),
        "the rejoined worker never became ready"
    );
}
