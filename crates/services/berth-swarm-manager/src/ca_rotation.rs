//! Root CA changes on the managers, after swarmkit's controlapi and its
//! rotation reconciler: `swarm update`/`swarm ca --rotate` start a
//! rotation (a new root cross-signed by the old key, kept beside the old
//! root in the cluster object); the leader then asks every node whose
//! certificate is not yet from the new root to renew, and once all have,
//! swaps the roots and makes new join tokens in one write.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use berth_swarm_ca::{JoinToken, MIN_ROOT_EXPIRY, NodeCert, RootCa, pem_fingerprint};
use berth_swarm_store::{
    Action, CertState, Cluster, ClusterSpec, Node, Object, RootCaState, RootRotation,
};

use crate::SwarmError;
use crate::active::Active;
use crate::external_ca::urls_for;

/// How often the leader looks at a running rotation (swarmkit: 3 s).
const RECONCILE_EVERY: Duration = Duration::from_secs(1);
/// Nodes told to renew in one write (swarmkit's batch).
const ROTATE_BATCH: usize = 30;

fn invalid(desc: impl Into<String>) -> SwarmError {
    SwarmError::Rpc {
        code: "InvalidArgument",
        desc: desc.into(),
    }
}

fn key_of(pem: &str) -> Option<&str> {
    Some(pem).filter(|k| !k.is_empty())
}

/// What issues certificates now: the new root's key with the
/// cross-signed certificate during a rotation, the root's key otherwise.
pub fn signer(c: &Cluster) -> Result<RootCa, berth_swarm_ca::CaError> {
    match &c.root_ca.rotation {
        Some(r) => Ok(RootCa::from_pem(&r.ca_cert, key_of(&r.ca_key))?
            .with_intermediate(&r.cross_signed_ca_cert)),
        None => RootCa::from_pem(&c.root_ca.ca_cert, key_of(&c.root_ca.ca_key)),
    }
}

/// swarmkit's words when no external CA can sign for a root without key.
fn no_external_ca(which: &str) -> SwarmError {
    invalid(format!(
        "there must be at least one valid, reachable external CA corresponding to the {which} CA certificate"
    ))
}

/// The cluster's root state once `spec` is applied: unchanged, a
/// rotation started, or the key of the current root supplied
/// (swarmkit's `validateCAConfig`). `reachable` holds the roots (as
/// `pem_fingerprint`s) that have a reachable external CA in `spec`.
pub fn next_root_ca(
    cluster: &Cluster,
    spec: &ClusterSpec,
    reachable: &HashSet<String>,
) -> Result<RootCaState, SwarmError> {
    let current = &cluster.root_ca;
    let cert = spec.signing_ca_cert.trim();
    if !spec.signing_ca_key.is_empty() && cert.is_empty() {
        return Err(invalid(
            "if a signing CA key is provided, the signing CA cert must also be provided",
        ));
    }
    let same_root = !cert.is_empty() && pem_fingerprint(cert) == pem_fingerprint(&current.ca_cert);
    let has_external = |pem: &str| reachable.contains(&pem_fingerprint(pem));
    if current.ca_key.is_empty() {
        if same_root && !spec.signing_ca_key.is_empty() {
            RootCa::from_pem(&format!("{cert}\n"), key_of(&spec.signing_ca_key))
                .map_err(|e| invalid(e.to_string()))?;
            return Ok(with_key(current, spec));
        }
        if !has_external(&current.ca_cert) {
            return Err(no_external_ca("current"));
        }
    }
    if cert.is_empty() {
        if current.last_forced_rotation == spec.force_rotate {
            if let Some(r) = current.rotation.as_ref().filter(|r| r.ca_key.is_empty())
                && !has_external(&r.ca_cert)
            {
                return Err(no_external_ca("next"));
            }
            return Ok(current.clone());
        }
        let new =
            RootCa::generate().map_err(|e| SwarmError::internal("making the new root CA", e))?;
        return start_rotation(cluster, &new, spec);
    }
    let cert_pem = format!("{cert}\n");
    let desired = RootCa::from_pem(&cert_pem, key_of(&spec.signing_ca_key))
        .map_err(|e| invalid(e.to_string()))?;
    if RootCa::cert_count(&cert_pem) != 1 {
        return Err(invalid(
            "the desired CA certificate cannot contain multiple certificates",
        ));
    }
    let lives_until = desired
        .not_after()
        .map_err(|_| invalid("could not parse the desired CA certificate"))?;
    if lives_until < SystemTime::now() + MIN_ROOT_EXPIRY {
        return Err(invalid("CA certificate expires too soon"));
    }
    if !desired.can_sign() && !has_external(cert) {
        return Err(no_external_ca("desired"));
    }
    if same_root {
        return Ok(with_key(current, spec));
    }
    if !current.ca_key.is_empty() && desired.has_key(&current.ca_key) {
        return Err(invalid("Cannot update to a cert with an identical key"));
    }
    let mut next = current.clone();
    if let Some(r) = &mut next.rotation
        && pem_fingerprint(&r.ca_cert) == pem_fingerprint(cert)
    {
        r.ca_key = spec.signing_ca_key.clone();
        next.last_forced_rotation = spec.force_rotate;
        return Ok(next);
    }
    start_rotation(cluster, &desired, spec)
}

/// The current root, now with the key the spec gives (or without one).
fn with_key(current: &RootCaState, spec: &ClusterSpec) -> RootCaState {
    let mut next = current.clone();
    next.ca_key = spec.signing_ca_key.clone();
    next.rotation = None;
    next.last_forced_rotation = spec.force_rotate;
    next
}

/// A rotation to `new`, its certificate cross-signed by the old root's
/// key, which the managers hold (swarmkit's `newRootRotationObject`). A
/// root without a key would need its external CA to cross-sign, which
/// berth does not do yet.
fn start_rotation(
    cluster: &Cluster,
    new: &RootCa,
    spec: &ClusterSpec,
) -> Result<RootCaState, SwarmError> {
    let current = &cluster.root_ca;
    if current.ca_key.is_empty() {
        if !new.can_sign() {
            return Err(invalid(
                "rotating from one external CA to a different external CA is not supported",
            ));
        }
        if urls_for(&spec.external_cas, &current.ca_cert, &current.ca_cert).is_empty() {
            return Err(invalid(
                "must provide an external CA for the current external root CA to generate a cross-signed certificate",
            ));
        }
    }
    let cross = RootCa::from_pem(&current.ca_cert, key_of(&current.ca_key))
        .and_then(|old| old.cross_sign(new))
        .map_err(|e| {
            tracing::error!("cross-signing the new root: {e}");
            SwarmError::Rpc {
                code: "Internal",
                desc: "unable to generate a cross-signed certificate for root rotation".into(),
            }
        })?;
    let mut next = current.clone();
    next.rotation = Some(RootRotation {
        ca_cert: new.cert_pem().to_string(),
        ca_key: new.key_pem().unwrap_or_default(),
        cross_signed_ca_cert: cross,
    });
    next.last_forced_rotation = spec.force_rotate;
    Ok(next)
}

/// Whether a node reported a certificate issued by `issuer` (subject and
/// public key, DER).
fn converged(n: &Node, issuer: &(Vec<u8>, Vec<u8>)) -> bool {
    let t = &n.description.tls_info;
    t.cert_issuer_subject == issuer.0 && t.cert_issuer_public_key == issuer.1
}

/// One look at a running rotation: the writes it needs, if any.
pub fn reconcile(cluster: &Cluster, nodes: &[Node]) -> Result<Vec<Action>, SwarmError> {
    let Some(rot) = &cluster.root_ca.rotation else {
        return Ok(Vec::new());
    };
    let new_root =
        RootCa::from_pem(&rot.ca_cert, None).map_err(|e| SwarmError::internal("new root", e))?;
    let issuer = new_root
        .issuer_der()
        .ok_or_else(|| SwarmError::Internal("reading the new root".into()))?;
    let behind: Vec<&Node> = nodes.iter().filter(|n| !converged(n, &issuer)).collect();
    if behind.is_empty() {
        return Ok(vec![Action::Update(Object::Cluster(finished(cluster)?))]);
    }
    Ok(behind
        .into_iter()
        .filter(|n| {
            !matches!(
                n.certificate.state,
                CertState::Renew | CertState::Pending | CertState::Rotate
            )
        })
        // a node already holding a new certificate has yet to report it
        .filter(|n| {
            NodeCert::parse(&n.certificate.certificate).map_or(true, |c| !new_root.verifies(&c))
        })
        .take(ROTATE_BATCH)
        .map(|n| {
            let mut n = n.clone();
            n.certificate.state = CertState::Rotate;
            Action::Update(Object::Node(n))
        })
        .collect())
}

/// The cluster with the new root in place of the old, and join tokens
/// that carry its digest.
fn finished(cluster: &Cluster) -> Result<Cluster, SwarmError> {
    let mut c = cluster.clone();
    let Some(rot) = c.root_ca.rotation.take() else {
        return Ok(c);
    };
    let root =
        RootCa::from_pem(&rot.ca_cert, None).map_err(|e| SwarmError::internal("new root", e))?;
    let token = || {
        JoinToken::generate(&root)
            .map(|t| t.to_string())
            .map_err(|e| SwarmError::internal("making a join token", e))
    };
    c.root_ca.worker_token = token()?;
    c.root_ca.manager_token = token()?;
    c.root_ca.ca_cert_hash = root.digest().to_string();
    c.root_ca.ca_cert = rot.ca_cert;
    c.root_ca.ca_key = rot.ca_key;
    Ok(c)
}

/// On the leader: moves running rotations along.
pub fn spawn_reconciler(node: Arc<Active>) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        loop {
            tokio::time::sleep(RECONCILE_EVERY).await;
            let Ok(raft) = node.raft() else { return };
            if !raft.is_leader() {
                continue;
            }
            let (cluster, nodes) = raft
                .store()
                .read(|s| (s.cluster().cloned(), s.nodes().cloned().collect::<Vec<_>>()));
            let Some(cluster) = cluster else { continue };
            match reconcile(&cluster, &nodes) {
                Ok(actions) if actions.is_empty() => {}
                Ok(actions) => {
                    if let Err(e) = node.propose(actions).await {
                        tracing::debug!("root rotation: {e}");
                    }
                }
                Err(e) => tracing::warn!("root rotation: {e}"),
            }
        }
    })
}
