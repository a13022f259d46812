//! A node's certificate over its life: renewed through the CA at a random
//! point between 50 % and 80 % of its validity (swarmkit's window), at
//! once when the CA asks (root rotation), and its trust root moved to the
//! cluster's new root once its certificate chains to it. A renewal keeps
//! the node's key, so that at any instant the certificate and key on disk
//! belong together.

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use berth_swarm_ca::{
    NodeCert, NodeKey, RootCa, client_config, random_fraction, renewal_delay, server_config,
};
use berth_swarm_rpc::pb;
use berth_swarm_rpc::pb::node_ca_client::NodeCaClient;
use berth_swarm_store::TlsInfo;

use crate::SwarmError;
use crate::active::Active;
use crate::state::Credentials;

/// After a failed renewal, the next try (swarmkit backs off from 1 s).
const RETRY: Duration = Duration::from_secs(2);

fn copy_key(key: &NodeKey) -> Result<NodeKey, SwarmError> {
    NodeKey::from_pem(&key.key_pem()).map_err(|e| SwarmError::internal("the node key", e))
}

impl Active {
    /// What this node reports of its certificate: the root it trusts and
    /// who issued its certificate (Docker's `TLSInfo`).
    pub fn tls_info(&self) -> TlsInfo {
        let c = self.creds();
        let (subject, key) = c.root.issuer_of(&c.cert).unwrap_or_default();
        TlsInfo {
            trust_root: c.root.cert_pem().to_string(),
            cert_issuer_subject: subject,
            cert_issuer_public_key: key,
        }
    }

    /// Makes `creds` this node's: on disk first, then in the TLS
    /// configurations its next connections use.
    pub fn install(&self, creds: Credentials) -> Result<(), SwarmError> {
        self.save_credentials(&creds)
            .map_err(|e| SwarmError::internal("saving the node certificate", e))?;
        let client = client_config(&creds.root, Some((&creds.cert, &creds.key)))
            .map_err(|e| SwarmError::internal("tls", e))?;
        if self.is_manager() {
            let server = server_config(&creds.root, &creds.cert, &creds.key)
                .map_err(|e| SwarmError::internal("tls", e))?;
            *self.server_tls.write().unwrap_or_else(|e| e.into_inner()) = Some(server);
        }
        self.peers.set_tls(client);
        *self.creds.write().unwrap_or_else(|e| e.into_inner()) = Arc::new(creds);
        Ok(())
    }

    /// Moves the trust root to `root_pem` when this node's certificate
    /// chains to it (the cluster's root changed at the end of a rotation);
    /// whether it moved.
    pub fn adopt_root(&self, root_pem: &str) -> bool {
        let creds = self.creds();
        if root_pem.is_empty() || root_pem == creds.root.cert_pem() {
            return false;
        }
        let Ok(root) = RootCa::from_pem(root_pem, None) else {
            return false;
        };
        if !root.verifies(&creds.cert) {
            return false;
        }
        let moved = copy_key(&creds.key).and_then(|key| {
            self.install(Credentials {
                root,
                cert: creds.cert.clone(),
                key,
            })
        });
        match moved {
            Ok(()) => {
                tracing::info!("swarm: now trusting the cluster's new root CA");
                true
            }
            Err(e) => {
                tracing::warn!("swarm: moving to the new root CA: {e}");
                false
            }
        }
    }

    /// A new certificate from the CA for this node's key, asked with the
    /// current certificate (no token).
    pub async fn renew(&self) -> Result<(), SwarmError> {
        let creds = self.creds();
        let csr = creds
            .key
            .csr_pem()
            .map_err(|e| SwarmError::internal("making a request", e))?;
        let mut last = String::from("no manager known");
        for addr in self.local().managers {
            match self.renew_at(&addr, &csr, &creds).await {
                Ok(cert) => {
                    let root = RootCa::from_pem(creds.root.cert_pem(), None)
                        .map_err(|e| SwarmError::internal("the root", e))?;
                    let key = copy_key(&creds.key)?;
                    self.install(Credentials { root, cert, key })?;
                    // tell the managers at once: a rotation waits for it
                    self.beat().await;
                    return Ok(());
                }
                Err(e) => last = format!("{addr}: {e}"),
            }
        }
        Err(SwarmError::Unavailable(format!(
            "renewing the node certificate: {last}"
        )))
    }

    async fn renew_at(
        &self,
        addr: &str,
        csr: &str,
        creds: &Credentials,
    ) -> Result<NodeCert, SwarmError> {
        let channel = self.peers.channel(addr).map_err(SwarmError::Internal)?;
        let mut ca = NodeCaClient::new(channel)
            .max_decoding_message_size(berth_swarm_rpc::MAX_MESSAGE_BYTES);
        let node_id = ca
            .issue_node_certificate(pb::IssueNodeCertificateRequest {
                csr: csr.to_string(),
                token: String::new(),
                availability: String::new(),
            })
            .await
            .map_err(|s| SwarmError::from_status(&s))?
            .into_inner()
            .node_id;
        for _ in 0..50 {
            let status = ca
                .node_certificate_status(pb::NodeCertificateStatusRequest {
                    node_id: node_id.clone(),
                })
                .await
                .map_err(|s| SwarmError::from_status(&s))?
                .into_inner();
            if status.state == "failed" {
                return Err(SwarmError::Internal(status.error));
            }
            // the manager may not have applied the write yet: the old
            // certificate is still there then
            if status.state == "issued"
                && status.certificate != creds.cert.chain_pem
                && let Ok(cert) = NodeCert::parse(&status.certificate)
            {
                let ours = cert.matches(&creds.key) && cert.identity == creds.cert.identity;
                if !ours || !creds.root.verifies(&cert) {
                    return Err(SwarmError::Internal(
                        "the manager sent a certificate that does not verify".into(),
                    ));
                }
                return Ok(cert);
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        Err(SwarmError::Internal(
            "the renewed certificate did not arrive".into(),
        ))
    }

    /// How long until this node's certificate should be renewed.
    fn renewal_wait(&self) -> Duration {
        if let Some(d) = self.settings.cert_renewal {
            return d;
        }
        let c = self.creds();
        renewal_delay(
            c.cert.not_before,
            c.cert.not_after,
            SystemTime::now(),
            random_fraction(),
        )
    }
}

pub fn spawn_renewer(node: Arc<Active>) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        loop {
            tokio::select! {
                () = tokio::time::sleep(node.renewal_wait()) => {}
                () = node.renew_now.notified() => {}
            }
            match node.renew().await {
                Ok(()) => tracing::info!("swarm: node certificate renewed"),
                Err(e) => {
                    tracing::warn!("swarm: {e}");
                    tokio::time::sleep(RETRY).await;
                }
            }
        }
    })
}
