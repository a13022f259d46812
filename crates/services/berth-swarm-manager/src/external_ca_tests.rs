//! External CAs against a fake cfssl signer on loopback: the request the
//! managers send, the checks of the answer, the errors, and which CA
//! signs (swarmkit's rule).

use std::collections::HashSet;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use berth_swarm_ca::{NodeIdentity, NodeKey, Role, RootCa, pem_fingerprint};
use berth_swarm_store::{Cluster, ClusterSpec, ExternalCa};
use http_body_util::{BodyExt, Full};
use hyper::body::Bytes;
use hyper_util::rt::TokioIo;
use serde_json::{Value, json};

use crate::ca_rotation::next_root_ca;
use crate::external_ca::{ExternalCaError, sign_node, signing_urls};
use crate::state::Credentials;

const DAY: Duration = Duration::from_secs(86400);

#[derive(Clone, Copy)]
enum Mode {
    AsAsked,
    OtherSubject,
    Refuse,
}

/// A cfssl `sign` endpoint signing with `root`'s key over TLS (a server
/// certificate for 127.0.0.1 from the same root); it keeps the requests
/// and whether the caller showed a certificate.
struct FakeCfssl {
    url: String,
    seen: Arc<Mutex<Vec<(Value, bool)>>>,
}

fn who(id: &str, role: Role) -> NodeIdentity {
    NodeIdentity {
        node_id: id.into(),
        role,
        cluster_id: "cluster1".into(),
    }
}

async fn fake_cfssl(root: Arc<RootCa>, trusts: &RootCa, mode: Mode) -> FakeCfssl {
    let key = NodeKey::generate().unwrap();
    let cert = root
        .sign(
            &key.csr_pem().unwrap(),
            &who("127.0.0.1", Role::Worker),
            DAY,
        )
        .unwrap();
    let tls = berth_swarm_ca::server_config(trusts, &cert, &key).unwrap();
    let acceptor = tokio_rustls::TlsAcceptor::from(tls);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!(
        "https://{}/api/v1/cfssl/sign",
        listener.local_addr().unwrap()
    );
    let seen = Arc::new(Mutex::new(Vec::new()));
    let log = seen.clone();
    tokio::spawn(async move {
        while let Ok((tcp, _)) = listener.accept().await {
            let Ok(stream) = acceptor.accept(tcp).await else {
                continue;
            };
            let client_cert = stream.get_ref().1.peer_certificates().is_some();
            let (root, log) = (root.clone(), log.clone());
            let svc =
                hyper::service::service_fn(move |req: hyper::Request<hyper::body::Incoming>| {
                    let (root, log) = (root.clone(), log.clone());
                    async move {
                        let body = req.into_body().collect().await.unwrap().to_bytes();
                        let v: Value = serde_json::from_slice(&body).unwrap();
                        log.lock().unwrap().push((v.clone(), client_cert));
                        let answer = answer(&root, &v, mode);
                        Ok::<_, std::convert::Infallible>(hyper::Response::new(Full::new(
                            Bytes::from(answer.to_string()),
                        )))
                    }
                });
            tokio::spawn(
                hyper::server::conn::http1::Builder::new()
                    .serve_connection(TokioIo::new(stream), svc),
            );
        }
    });
    FakeCfssl { url, seen }
}

fn answer(root: &RootCa, v: &Value, mode: Mode) -> Value {
    if let Mode::Refuse = mode {
        return json!({ "success": false, "result": null,
            "errors": [{ "code": 5300, "message": "policy violation" }], "messages": [] });
    }
    let s = &v["subject"];
    let mut asked = NodeIdentity {
        node_id: s["CN"].as_str().unwrap().into(),
        role: Role::from_ou(s["names"][0]["OU"].as_str().unwrap()).unwrap(),
        cluster_id: s["names"][0]["O"].as_str().unwrap().into(),
    };
    if let Mode::OtherSubject = mode {
        asked.node_id = "someone-else".into();
    }
    let csr = v["certificate_request"].as_str().unwrap();
    let cert = root.sign(csr, &asked, DAY).unwrap();
    json!({ "success": true, "result": { "certificate": cert.chain_pem }, "errors": [], "messages": [] })
}

/// What the fake trusts as client certificates: both roots.
fn both(ext: &RootCa, old: &RootCa) -> RootCa {
    RootCa::from_pem(&format!("{}{}", ext.cert_pem(), old.cert_pem()), None).unwrap()
}

/// A cluster with a root key, rotating to `ext` (no key) with an external
/// CA at `url` for it; and a manager's credentials from the old root.
fn rotating_cluster(old: &RootCa, ext: &RootCa, url: &str) -> (Cluster, Credentials) {
    let mut c = Cluster {
        id: "cluster1".into(),
        ..Cluster::default()
    };
    c.root_ca.ca_cert = old.cert_pem().to_string();
    c.root_ca.ca_key = old.key_pem().unwrap();
    c.spec.external_cas = vec![external(url, ext.cert_pem())];
    let spec = ClusterSpec {
        signing_ca_cert: ext.cert_pem().to_string(),
        ..c.spec.clone()
    };
    let reachable = HashSet::from([pem_fingerprint(ext.cert_pem())]);
    c.root_ca = next_root_ca(&c, &spec, &reachable).unwrap();
    let key = NodeKey::generate().unwrap();
    let cert = old
        .sign(&key.csr_pem().unwrap(), &who("mgr1", Role::Manager), DAY)
        .unwrap();
    let creds = Credentials {
        root: RootCa::from_pem(old.cert_pem(), None).unwrap(),
        cert,
        key,
    };
    (c, creds)
}

fn external(url: &str, ca_cert: &str) -> ExternalCa {
    ExternalCa {
        protocol: "cfssl".into(),
        url: url.into(),
        options: Default::default(),
        ca_cert: ca_cert.into(),
    }
}

#[tokio::test]
async fn a_rotation_to_an_external_root_issues_through_cfssl() {
    let ext = Arc::new(RootCa::generate().unwrap());
    let old = RootCa::generate().unwrap();
    let fake = fake_cfssl(ext.clone(), &both(&ext, &old), Mode::AsAsked).await;
    let (c, creds) = rotating_cluster(&old, &ext, &fake.url);
    let rot = c.root_ca.rotation.clone().unwrap();
    assert!(rot.ca_key.is_empty(), "the external root's key is not ours");
    assert!(!rot.cross_signed_ca_cert.is_empty(), "cross-signed locally");
    assert_eq!(signing_urls(&c), vec![fake.url.clone()]);

    let key = NodeKey::generate().unwrap();
    let csr = key.csr_pem().unwrap();
    let node = who("worker1", Role::Worker);
    let cert = sign_node(&c, &creds, &csr, &node).await.unwrap();
    assert_eq!(cert.identity, node);
    assert!(cert.matches(&key));
    let old = RootCa::from_pem(&c.root_ca.ca_cert, None).unwrap();
    assert!(old.verifies(&cert), "the cross-signed root rides along");
    assert!(
        RootCa::from_pem(ext.cert_pem(), None)
            .unwrap()
            .verifies(&cert)
    );

    let seen = fake.seen.lock().unwrap().clone();
    let (req, client_cert) = &seen[0];
    assert!(client_cert, "the manager shows its certificate");
    assert_eq!(req["certificate_request"], json!(csr));
    assert_eq!(req["hosts"], json!(["swarm-worker", "worker1"]));
    assert_eq!(
        req["subject"],
        json!({ "CN": "worker1", "names": [{ "O": "cluster1", "OU": "swarm-worker" }], "SerialNumber": "" })
    );
    let mgr = sign_node(&c, &creds, &csr, &who("mgr2", Role::Manager))
        .await
        .unwrap();
    assert_eq!(mgr.identity.role, Role::Manager);
    let seen = fake.seen.lock().unwrap().clone();
    assert_eq!(
        seen[1].0["hosts"],
        json!(["swarm-manager", "mgr2", "swarm-ca"])
    );
}

#[tokio::test]
async fn answers_not_as_asked_and_unusable_cas_fail_without_a_local_fallback() {
    let ext = Arc::new(RootCa::generate().unwrap());
    let old = RootCa::generate().unwrap();
    let trust = both(&ext, &old);
    let csr = NodeKey::generate().unwrap().csr_pem().unwrap();
    let node = who("worker1", Role::Worker);
    let fail = async |url: &str| {
        let (c, creds) = rotating_cluster(&old, &ext, url);
        sign_node(&c, &creds, &csr, &node).await.unwrap_err()
    };
    let other = fake_cfssl(ext.clone(), &trust, Mode::OtherSubject).await;
    let e = fail(&other.url).await;
    assert_eq!(e.code(), tonic::Code::Internal);
    assert!(e.message().contains("subject"), "{e}");
    let refusing = fake_cfssl(ext.clone(), &trust, Mode::Refuse).await;
    let e = fail(&refusing.url).await;
    assert_eq!(
        e.message(),
        "failed to sign CSR: response errors: [{5300 policy violation}]"
    );
    let e = fail("http://127.0.0.1:1/sign").await;
    assert_eq!(e.message(), "failed to sign CSR: invalid HTTP scheme");
    // nothing listens there: recoverable, the node asks again
    let e = fail("https://127.0.0.1:1/sign").await;
    assert_eq!(e.code(), tonic::Code::Unavailable, "{e}");
    assert!(
        e.message()
            .contains("unable to perform certificate signing request")
    );
}

#[tokio::test]
async fn a_tls_peer_that_is_not_the_roots_is_not_trusted() {
    // the signer's TLS certificate is from a root the cluster doesn't know
    let ext = Arc::new(RootCa::generate().unwrap());
    let stranger = Arc::new(RootCa::generate().unwrap());
    let old = RootCa::generate().unwrap();
    let trust = both(&stranger, &old);
    let fake = fake_cfssl(stranger, &trust, Mode::AsAsked).await;
    let (c, creds) = rotating_cluster(&old, &ext, &fake.url);
    let csr = NodeKey::generate().unwrap().csr_pem().unwrap();
    let e = sign_node(&c, &creds, &csr, &who("w", Role::Worker))
        .await
        .unwrap_err();
    assert!(e.message().contains("tls handshake"), "{e}");
    assert!(fake.seen.lock().unwrap().is_empty());
}

#[test]
fn the_external_ca_signs_first_when_it_is_for_the_root_that_issues() {
    let root = RootCa::generate().unwrap();
    let other = RootCa::generate().unwrap();
    let mut c = Cluster::default();
    c.root_ca.ca_cert = root.cert_pem().to_string();
    c.root_ca.ca_key = root.key_pem().unwrap();
    assert!(signing_urls(&c).is_empty(), "no external CA: local");
    // swarmkit tries external CAs first even when the root has its key;
    // a CA without a certificate counts as one for the current root
    c.spec.external_cas = vec![
        external("https://a", ""),
        external("https://b", other.cert_pem()),
        external("https://c", &format!("\n{}", root.cert_pem())),
    ];
    assert_eq!(signing_urls(&c), vec!["https://a", "https://c"]);
    c.spec.external_cas[0].protocol = "acme".into();
    assert_eq!(signing_urls(&c), vec!["https://c"]);
}

#[test]
fn roots_without_keys_need_a_reachable_external_ca() {
    let old = RootCa::generate().unwrap();
    let ext = RootCa::generate().unwrap();
    let mut c = Cluster::default();
    c.root_ca.ca_cert = old.cert_pem().to_string();
    c.root_ca.ca_key = old.key_pem().unwrap();
    let mut spec = ClusterSpec {
        signing_ca_cert: ext.cert_pem().to_string(),
        external_cas: vec![external("https://ext", ext.cert_pem())],
        ..ClusterSpec::default()
    };
    let none = HashSet::new();
    let found = HashSet::from([pem_fingerprint(ext.cert_pem())]);
    let err = |c: &Cluster, spec: &ClusterSpec, r: &HashSet<String>| {
        next_root_ca(c, spec, r).unwrap_err().to_string()
    };
    assert!(err(&c, &spec, &none).ends_with(
        "there must be at least one valid, reachable external CA corresponding to the desired CA certificate"
    ));
    let rotating = next_root_ca(&c, &spec, &found).unwrap();
    assert_eq!(rotating.rotation.as_ref().unwrap().ca_cert, ext.cert_pem());

    // while rotating, the next root's CA must stay reachable
    c.root_ca = rotating;
    spec.signing_ca_cert.clear();
    assert!(err(&c, &spec, &none).ends_with("corresponding to the next CA certificate"));
    assert_eq!(next_root_ca(&c, &spec, &found).unwrap(), c.root_ca);

    // once the external root is the cluster's
    let mut done = Cluster::default();
    done.root_ca.ca_cert = ext.cert_pem().to_string();
    spec.external_cas = vec![external("https://ext", "")];
    assert!(err(&done, &spec, &none).ends_with("corresponding to the current CA certificate"));
    spec.force_rotate = 1;
    assert!(
        err(&done, &spec, &found)
            .ends_with("unable to generate a cross-signed certificate for root rotation")
    );
    spec.signing_ca_cert = RootCa::generate().unwrap().cert_pem().to_string();
    let another = HashSet::from([
        pem_fingerprint(ext.cert_pem()),
        pem_fingerprint(&spec.signing_ca_cert),
    ]);
    assert!(
        err(&done, &spec, &another)
            .ends_with("rotating from one external CA to a different external CA is not supported")
    );
    // its key given: the cluster signs locally again
    spec.signing_ca_cert = ext.cert_pem().to_string();
    spec.signing_ca_key = ext.key_pem().unwrap();
    let keyed = next_root_ca(&done, &spec, &none).unwrap();
    assert_eq!(keyed.ca_key, spec.signing_ca_key);
}

#[test]
fn external_ca_errors_say_what_swarmkit_says() {
    assert_eq!(ExternalCaError::NoUrls.to_string(), "no external CA URLs");
    assert!(ExternalCaError::Unreachable("x".into()).recoverable());
    assert!(!ExternalCaError::Failed.recoverable());
}
