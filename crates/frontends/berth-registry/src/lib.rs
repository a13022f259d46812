//! berth's own registry: the OCI distribution spec 1.1 over HTTP (and
//! HTTPS when given a certificate), stored on disk so that no reader ever
//! sees a partial blob. `berth registry serve` and `berth registry gc`
//! are thin wrappers over this crate.

pub mod auth;
pub mod errors;
pub mod gc;
mod routes;
pub mod storage;

use std::path::PathBuf;
use std::sync::Arc;

use anyhow::Context;

pub use routes::{Registry, router};
pub use storage::Storage;

pub struct ServeOptions {
    pub root: PathBuf,
    pub htpasswd: Option<PathBuf>,
}

impl ServeOptions {
    pub fn open(&self) -> anyhow::Result<Arc<Registry>> {
        let storage = Storage::open(&self.root)
            .with_context(|| format!("opening registry storage {}", self.root.display()))?;
        let htpasswd = match &self.htpasswd {
            Some(p) => Some(auth::Htpasswd::load(p)?),
            None => None,
        };
        Ok(Arc::new(Registry { storage, htpasswd }))
    }
}

/// Serves the registry over TLS with a PEM certificate chain and key.
pub async fn serve_tls(
    listener: tokio::net::TcpListener,
    reg: Arc<Registry>,
    cert: &std::path::Path,
    key: &std::path::Path,
) -> anyhow::Result<()> {
    use rustls_pki_types::pem::PemObject;
    use rustls_pki_types::{CertificateDer, PrivateKeyDer};
    let chain = CertificateDer::pem_file_iter(cert)
        .and_then(|i| i.collect::<Result<Vec<_>, _>>())
        .with_context(|| format!("reading certificate {}", cert.display()))?;
    let key = PrivateKeyDer::from_pem_file(key)
        .with_context(|| format!("reading key {}", key.display()))?;
    let cfg = rustls::ServerConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .context("tls versions")?
    .with_no_client_auth()
    .with_single_cert(chain, key)
    .context("certificate and key do not fit")?;
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(cfg));
    let app = router(reg);
    loop {
        let (tcp, peer) = listener.accept().await.context("accepting")?;
        let (acceptor, app) = (acceptor.clone(), app.clone());
        tokio::spawn(async move {
            let tls = match acceptor.accept(tcp).await {
                Ok(t) => t,
                Err(e) => {
                    tracing::debug!("tls handshake with {peer}: {e}");
                    return;
                }
            };
            let svc = hyper_util::service::TowerToHyperService::new(app);
            let _ = hyper::server::conn::http1::Builder::new()
                .serve_connection(hyper_util::rt::TokioIo::new(tls), svc)
                .await;
        });
    }
}

/// Serves the registry on `listener` until the task is dropped.
pub async fn serve(listener: tokio::net::TcpListener, reg: Arc<Registry>) -> anyhow::Result<()> {
    axum::serve(listener, router(reg))
        .await
        .context("serving the registry")
}
