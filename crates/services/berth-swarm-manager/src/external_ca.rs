//! External CAs, as swarmkit's (ca/external.go, ca/server.go and the
//! checks of controlapi/ca_rotation.go): managers hand node requests to
//! a cfssl signer over HTTPS (their own node certificate as client
//! certificate, the cluster's roots as trust), 5 s per URL, and check
//! that what comes back is what they asked for. Which signs: the cfssl
//! CAs of the spec whose certificate is the root that issues now (the
//! new root during a rotation; a CA given without a certificate counts
//! as one for the current root) are tried first, in order; only when
//! there are none does the manager sign with the root's key.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use berth_swarm_ca::{CaError, NodeCert, NodeIdentity, Role, RootCa, pem_fingerprint};
use berth_swarm_store::{Cluster, ClusterSpec, ExternalCa};
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Bytes;
use hyper_util::rt::TokioIo;
use rustls::ClientConfig;
use rustls_pki_types::ServerName;
use serde_json::{Value, json};
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;
use tokio_rustls::client::TlsStream;

use crate::state::Credentials;

/// swarmkit's `ExternalRequestTimeout`, also its dial test's timeout.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(5);
/// swarmkit's `CertificateMaxSize`.
const MAX_ANSWER: usize = 256 << 10;

#[derive(Debug, thiserror::Error)]
pub enum ExternalCaError {
    #[error("no external CA URLs")]
    NoUrls,
    #[error("invalid HTTP scheme")]
    Scheme,
    #[error("invalid external CA URL {0:?}")]
    Url(String),
    /// the ones swarmkit counts as recoverable: the node asks again
    #[error("unable to perform certificate signing request: {0}")]
    Unreachable(String),
    #[error("unexpected status code in CSR response: {0} - {1}")]
    Status(u16, String),
    #[error("unable to parse JSON response: {0}")]
    Json(String),
    #[error("response errors: {0}")]
    Refused(String),
    #[error("certificate signing request failed")]
    Failed,
    #[error("invalid result certificate field type")]
    NoCertificate,
    #[error(transparent)]
    Ca(#[from] CaError),
}

impl ExternalCaError {
    pub fn recoverable(&self) -> bool {
        matches!(
            self,
            ExternalCaError::Unreachable(_)
                | ExternalCaError::Status(..)
                | ExternalCaError::Json(_)
        )
    }
}

/// Where a URL points, for the TCP dial, the TLS name and the request.
struct Target {
    addr: String,
    name: ServerName<'static>,
    authority: String,
    path: String,
}

fn target(url: &str) -> Result<Target, ExternalCaError> {
    let bad = || ExternalCaError::Url(url.to_string());
    let uri: hyper::Uri = url.parse().map_err(|_| bad())?;
    if uri.scheme_str() != Some("https") {
        return Err(ExternalCaError::Scheme);
    }
    let auth = uri.authority().ok_or_else(bad)?;
    let host = auth.host().trim_start_matches('[').trim_end_matches(']');
    let port = auth.port_u16().unwrap_or(443);
    let name = ServerName::try_from(host.to_string()).map_err(|_| bad())?;
    let addr = match host.contains(':') {
        true => format!("[{host}]:{port}"),
        false => format!("{host}:{port}"),
    };
    Ok(Target {
        addr,
        name,
        authority: auth.to_string(),
        path: uri.path_and_query().map_or("/", |p| p.as_str()).to_string(),
    })
}

async fn connect(
    tls: Arc<ClientConfig>,
    t: &Target,
) -> Result<TlsStream<TcpStream>, ExternalCaError> {
    let tcp = TcpStream::connect(&t.addr)
        .await
        .map_err(|e| ExternalCaError::Unreachable(format!("dial tcp {}: {e}", t.addr)))?;
    TlsConnector::from(tls)
        .connect(t.name.clone(), tcp)
        .await
        .map_err(|e| ExternalCaError::Unreachable(format!("tls handshake with {}: {e}", t.addr)))
}

/// swarmkit's dial test of an external CA: a TLS handshake within 5 s.
pub async fn reachable(tls: Arc<ClientConfig>, url: &str) -> Result<(), ExternalCaError> {
    let t = target(url)?;
    tokio::time::timeout(REQUEST_TIMEOUT, connect(tls, &t))
        .await
        .map_err(|_| ExternalCaError::Unreachable(format!("dial {}: i/o timeout", t.addr)))??;
    Ok(())
}

/// Stops the HTTP connection's task when the request is done or dropped.
struct AbortOnDrop(tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

async fn post(tls: Arc<ClientConfig>, url: &str, body: Vec<u8>) -> Result<Bytes, ExternalCaError> {
    let t = target(url)?;
    let stream = connect(tls, &t).await?;
    let lost = |e: hyper::Error| ExternalCaError::Unreachable(format!("Post {url:?}: {e}"));
    let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .map_err(lost)?;
    let _conn = AbortOnDrop(tokio::spawn(async move {
        let _ = conn.await;
    }));
    let req = hyper::Request::post(t.path.as_str())
        .header(hyper::header::HOST, t.authority.as_str())
        .header(hyper::header::CONTENT_TYPE, "application/json")
        .body(Full::new(Bytes::from(body)))
        .map_err(|e| ExternalCaError::Url(format!("{url}: {e}")))?;
    let resp = sender.send_request(req).await.map_err(lost)?;
    let status = resp.status();
    let body = Limited::new(resp.into_body(), MAX_ANSWER)
        .collect()
        .await
        .map_err(|e| {
            ExternalCaError::Unreachable(format!("unable to read CSR response body: {e}"))
        })?
        .to_bytes();
    if status != hyper::StatusCode::OK {
        return Err(ExternalCaError::Status(
            status.as_u16(),
            String::from_utf8_lossy(&body).into_owned(),
        ));
    }
    Ok(body)
}

/// The certificate in a cfssl API answer.
fn certificate_of(body: &[u8]) -> Result<String, ExternalCaError> {
    let v: Value =
        serde_json::from_slice(body).map_err(|e| ExternalCaError::Json(e.to_string()))?;
    if v["success"] != json!(true) || v["result"].is_null() {
        let errors = v["errors"].as_array().cloned().unwrap_or_default();
        if errors.is_empty() {
            return Err(ExternalCaError::Failed);
        }
        // Go's %v of cfssl's []ResponseMessage
        let shown: Vec<String> = errors
            .iter()
            .map(|e| format!("{{{} {}}}", e["code"], e["message"].as_str().unwrap_or("")))
            .collect();
        return Err(ExternalCaError::Refused(format!("[{}]", shown.join(" "))));
    }
    v["result"]["certificate"]
        .as_str()
        .map(str::to_string)
        .ok_or(ExternalCaError::NoCertificate)
}

/// swarmkit's `PrepareCSR`: cfssl's SignRequest with the subject the
/// manager decides (CN node id, OU role, O cluster id) and the role and
/// id as names.
pub fn sign_request(csr_pem: &str, who: &NodeIdentity) -> Value {
    let ou = who.role.ou();
    let mut hosts = vec![ou, who.node_id.as_str()];
    if who.role == Role::Manager {
        hosts.push("swarm-ca");
    }
    json!({
        "hosts": hosts,
        "certificate_request": csr_pem,
        "subject": {
            "CN": who.node_id,
            "names": [{ "O": who.cluster_id, "OU": ou }],
            "SerialNumber": "",
        },
        "profile": "",
        "crl_override": "",
        "label": "",
        "NotBefore": "0001-01-01T00:00:00Z",
        "NotAfter": "0001-01-01T00:00:00Z",
        "ReturnPrecert": false,
        "metadata": null,
    })
}

/// Asks each URL in turn; the first certificate wins, else the last
/// error.
pub async fn sign(
    tls: Arc<ClientConfig>,
    urls: &[String],
    request: &Value,
) -> Result<String, ExternalCaError> {
    let body = serde_json::to_vec(request).map_err(|e| ExternalCaError::Json(e.to_string()))?;
    let mut last = ExternalCaError::NoUrls;
    for url in urls {
        let answer = tokio::time::timeout(REQUEST_TIMEOUT, post(tls.clone(), url, body.clone()))
            .await
            .unwrap_or_else(|_| {
                Err(ExternalCaError::Unreachable(format!(
                    "Post {url:?}: context deadline exceeded"
                )))
            });
        match answer.and_then(|b| certificate_of(&b)) {
            Ok(cert) => return Ok(cert),
            Err(e) => {
                tracing::debug!("unable to proxy certificate signing request to {url}: {e}");
                last = e;
            }
        }
    }
    Err(last)
}

/// swarmkit's `filterExternalCAURLS`: the cfssl CAs for `wanted`, a CA
/// without a certificate counting as one for `current`.
pub fn urls_for(cas: &[ExternalCa], wanted: &str, current: &str) -> Vec<String> {
    let want = pem_fingerprint(wanted);
    if want.is_empty() {
        return Vec::new();
    }
    cas.iter()
        .filter(|e| e.protocol.eq_ignore_ascii_case("cfssl"))
        .filter(|e| {
            let cert = match e.ca_cert.trim() {
                "" => current,
                c => c,
            };
            pem_fingerprint(cert) == want
        })
        .map(|e| e.url.clone())
        .collect()
}

/// The external CAs that sign for the cluster now.
pub fn signing_urls(c: &Cluster) -> Vec<String> {
    let wanted = c
        .root_ca
        .rotation
        .as_ref()
        .map_or(&c.root_ca.ca_cert, |r| &r.ca_cert);
    urls_for(&c.spec.external_cas, wanted, &c.root_ca.ca_cert)
}

fn pem_join(a: &str, b: &str) -> String {
    format!("{}\n{}", a.trim_end(), b)
}

/// What a manager dials an external CA with: its own certificate, and
/// the cluster's root (and the new one during a rotation) as trust.
fn client_tls(c: &Cluster, creds: &Credentials) -> Result<Arc<ClientConfig>, CaError> {
    let pool = match &c.root_ca.rotation {
        Some(r) => pem_join(&c.root_ca.ca_cert, &r.ca_cert),
        None => c.root_ca.ca_cert.clone(),
    };
    berth_swarm_ca::client_config(
        &RootCa::from_pem(&pool, None)?,
        Some((&creds.cert, &creds.key)),
    )
}

/// A node certificate through the cluster's external CAs, checked, with
/// the cross-signed root appended during a rotation as the local CA does.
pub async fn issue(
    c: &Cluster,
    creds: &Credentials,
    urls: &[String],
    csr_pem: &str,
    who: &NodeIdentity,
) -> Result<NodeCert, ExternalCaError> {
    let tls = client_tls(c, creds)?;
    let mut chain = sign(tls, urls, &sign_request(csr_pem, who)).await?;
    let wanted = match &c.root_ca.rotation {
        Some(r) => {
            chain = pem_join(&chain, &r.cross_signed_ca_cert);
            &r.ca_cert
        }
        None => &c.root_ca.ca_cert,
    };
    let root = RootCa::from_pem(wanted, None)?;
    Ok(berth_swarm_ca::check_external_cert(
        &chain, csr_pem, who, &root,
    )?)
}

/// What the CA answers a node's request with: the external CAs' (tried
/// first, as swarmkit's `signNodeCert`), or the root key's when none is
/// for the root that issues now. A request an external CA could not
/// sign fails; the node asks again.
pub async fn sign_node(
    c: &Cluster,
    creds: &Credentials,
    csr_pem: &str,
    who: &NodeIdentity,
) -> Result<NodeCert, tonic::Status> {
    let urls = signing_urls(c);
    if urls.is_empty() {
        let root =
            crate::ca_rotation::signer(c).map_err(|e| tonic::Status::internal(e.to_string()))?;
        let expiry = match c.spec.node_cert_expiry {
            ns if ns > 0 => Duration::from_nanos(ns as u64),
            _ => berth_swarm_ca::DEFAULT_NODE_CERT_EXPIRY,
        };
        return root
            .sign(csr_pem, who, expiry)
            .map_err(|e| tonic::Status::invalid_argument(e.to_string()));
    }
    issue(c, creds, &urls, csr_pem, who).await.map_err(|e| {
        tracing::error!("failed to sign CSR for node {}: {e}", who.node_id);
        let msg = format!("failed to sign CSR: {e}");
        match e.recoverable() {
            true => tonic::Status::unavailable(msg),
            false => tonic::Status::internal(msg),
        }
    })
}

/// Whether one of `urls` answers a TLS handshake as a server of `wanted`.
async fn any_reachable(wanted: &str, urls: &[String], creds: &Credentials) -> bool {
    let tls = RootCa::from_pem(wanted, None)
        .and_then(|root| berth_swarm_ca::client_config(&root, Some((&creds.cert, &creds.key))));
    let Ok(tls) = tls else { return false };
    for (i, url) in urls.iter().enumerate() {
        match reachable(tls.clone(), url).await {
            Ok(()) => return true,
            Err(e) => tracing::warn!("external CA # {} is unreachable or invalid: {e}", i + 1),
        }
    }
    false
}

/// The roots (as `pem_fingerprint`s) that have a reachable external CA,
/// among those an update of `cluster` to `spec` may need one for: a
/// current, next or desired root without its key.
pub async fn reachable_roots(
    cluster: &Cluster,
    spec: &ClusterSpec,
    creds: &Credentials,
) -> HashSet<String> {
    let root = &cluster.root_ca;
    let mut wanted = Vec::new();
    if root.ca_key.is_empty() {
        wanted.push(root.ca_cert.as_str());
    }
    if let Some(r) = root.rotation.as_ref().filter(|r| r.ca_key.is_empty()) {
        wanted.push(r.ca_cert.as_str());
    }
    if !spec.signing_ca_cert.trim().is_empty() && spec.signing_ca_key.is_empty() {
        wanted.push(spec.signing_ca_cert.as_str());
    }
    let mut found = HashSet::new();
    for w in wanted {
        let urls = urls_for(&spec.external_cas, w, &root.ca_cert);
        if !urls.is_empty() && any_reachable(w, &urls, creds).await {
            found.insert(pem_fingerprint(w));
        }
    }
    found
}
