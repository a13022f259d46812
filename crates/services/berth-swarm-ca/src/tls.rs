//! Mutual TLS between nodes. Managers present a certificate named
//! `swarm-manager` and ask for the peer's, but also take a peer without
//! one: a joining node has no certificate yet when it asks the CA for its
//! first (as in swarmkit). Each call then checks `peer_identity`: no
//! identity, or a worker's, reaches only what those may call.

use std::sync::Arc;

use rustls::RootCertStore;
use rustls::client::ClientConfig;
use rustls::server::{ServerConfig, WebPkiClientVerifier};
use rustls_pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use x509_parser::pem::Pem;

use crate::node::{NodeCert, NodeIdentity, NodeKey, parse_der};
use crate::{CaError, RootCa};

/// The name clients dial managers by; every manager certificate has it.
pub const MANAGER_SERVER_NAME: &str = "swarm-manager";

fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

fn roots(root: &RootCa) -> Result<Arc<RootCertStore>, CaError> {
    let mut store = RootCertStore::empty();
    for der in pem_certs(root.cert_pem())? {
        store
            .add(der)
            .map_err(|e| CaError::Tls(format!("the root certificate: {e}")))?;
    }
    Ok(Arc::new(store))
}

fn pem_certs(pem: &str) -> Result<Vec<CertificateDer<'static>>, CaError> {
    Pem::iter_from_buffer(pem.as_bytes())
        .map(|b| {
            b.map(|b| CertificateDer::from(b.contents))
                .map_err(|e| CaError::InvalidCertificate(format!("reading PEM: {e}")))
        })
        .collect()
}

fn key_der(key: &NodeKey) -> Result<PrivateKeyDer<'static>, CaError> {
    let pem = key.key_pem();
    let block = Pem::iter_from_buffer(pem.as_bytes())
        .next()
        .and_then(Result::ok)
        .ok_or_else(|| CaError::Tls("encoding the node key".into()))?;
    Ok(PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(
        block.contents,
    )))
}

/// What a manager listens with: its node certificate, clients verified
/// against the root when they present a certificate.
pub fn server_config(
    root: &RootCa,
    cert: &NodeCert,
    key: &NodeKey,
) -> Result<Arc<ServerConfig>, CaError> {
    let verifier = WebPkiClientVerifier::builder_with_provider(roots(root)?, provider())
        .allow_unauthenticated()
        .build()
        .map_err(|e| CaError::Tls(e.to_string()))?;
    let config = ServerConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .map_err(|e| CaError::Tls(e.to_string()))?
        .with_client_cert_verifier(verifier)
        .with_single_cert(pem_certs(&cert.chain_pem)?, key_der(key)?)
        .map_err(|e| CaError::Tls(e.to_string()))?;
    Ok(Arc::new(config))
}

/// What a node dials managers with: the root to trust, and its own
/// certificate once it has one.
pub fn client_config(
    root: &RootCa,
    own: Option<(&NodeCert, &NodeKey)>,
) -> Result<Arc<ClientConfig>, CaError> {
    let builder = ClientConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .map_err(|e| CaError::Tls(e.to_string()))?
        .with_root_certificates(roots(root)?);
    let config = match own {
        Some((cert, key)) => builder
            .with_client_auth_cert(pem_certs(&cert.chain_pem)?, key_der(key)?)
            .map_err(|e| CaError::Tls(e.to_string()))?,
        None => builder.with_no_client_auth(),
    };
    Ok(Arc::new(config))
}

/// The identity in a verified peer's certificate chain (leaf first); None
/// for a peer without a certificate or without a node identity.
pub fn peer_identity(chain: &[CertificateDer<'_>]) -> Option<NodeIdentity> {
    parse_der(chain.first()?).ok()?.identity().ok()
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::{DEFAULT_NODE_CERT_EXPIRY, Role};
    use rustls::{ClientConnection, ServerConnection};
    use rustls_pki_types::ServerName;

    struct Node {
        cert: NodeCert,
        key: NodeKey,
    }

    fn node(root: &RootCa, id: &str, role: Role) -> Node {
        let key = NodeKey::generate().unwrap();
        let who = NodeIdentity {
            node_id: id.into(),
            role,
            cluster_id: "cluster".into(),
        };
        let cert = root
            .sign(&key.csr_pem().unwrap(), &who, DEFAULT_NODE_CERT_EXPIRY)
            .unwrap();
        Node { cert, key }
    }

    /// Runs a handshake over memory; the server's view of the client.
    pub(crate) fn handshake(
        server: Arc<ServerConfig>,
        client: Arc<ClientConfig>,
    ) -> Result<Option<NodeIdentity>, rustls::Error> {
        let name = ServerName::try_from(MANAGER_SERVER_NAME).unwrap();
        let mut c = ClientConnection::new(client, name)?;
        let mut s = ServerConnection::new(server)?;
        for _ in 0..10 {
            let mut buf = Vec::new();
            c.write_tls(&mut buf).unwrap();
            s.read_tls(&mut buf.as_slice()).unwrap();
            s.process_new_packets()?;
            let mut buf = Vec::new();
            s.write_tls(&mut buf).unwrap();
            c.read_tls(&mut buf.as_slice()).unwrap();
            c.process_new_packets()?;
            if !c.is_handshaking() && !s.is_handshaking() {
                return Ok(s.peer_certificates().and_then(peer_identity));
            }
        }
        panic!("handshake did not finish");
    }

    #[test]
    fn nodes_of_one_root_see_each_others_identity() {
        let root = RootCa::generate().unwrap();
        let m = node(&root, "manager1", Role::Manager);
        let w = node(&root, "worker1", Role::Worker);
        let server = server_config(&root, &m.cert, &m.key).unwrap();
        let client = client_config(&root, Some((&w.cert, &w.key))).unwrap();
        let seen = handshake(server, client).unwrap().unwrap();
        assert_eq!(seen.node_id, "worker1");
        assert_eq!(seen.role, Role::Worker);
    }

    #[test]
    fn a_node_without_a_certificate_connects_without_an_identity() {
        let root = RootCa::generate().unwrap();
        let m = node(&root, "manager1", Role::Manager);
        let server = server_config(&root, &m.cert, &m.key).unwrap();
        let client = client_config(&root, None).unwrap();
        assert_eq!(handshake(server, client).unwrap(), None);
    }

    #[test]
    fn a_certificate_of_another_root_is_refused_both_ways() {
        let root = RootCa::generate().unwrap();
        let other = RootCa::generate().unwrap();
        let m = node(&root, "manager1", Role::Manager);
        let stranger = node(&other, "intruder", Role::Manager);
        let server = server_config(&root, &m.cert, &m.key).unwrap();
        let client = client_config(&root, Some((&stranger.cert, &stranger.key))).unwrap();
        assert!(
            handshake(server.clone(), client).is_err(),
            "client of another root"
        );
        let trusting_other = client_config(&other, None).unwrap();
        assert!(
            handshake(server, trusting_other).is_err(),
            "server of another root"
        );
    }

    #[test]
    fn a_worker_certificate_cannot_serve_as_a_manager() {
        let root = RootCa::generate().unwrap();
        let w = node(&root, "worker1", Role::Worker);
        let server = server_config(&root, &w.cert, &w.key).unwrap();
        let client = client_config(&root, None).unwrap();
        let err = handshake(server, client).unwrap_err();
        assert!(err.to_string().contains("certificate"), "{err}");
    }
}
