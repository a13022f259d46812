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

/// Serves the registry on `listener` until the task is dropped.
pub async fn serve(listener: tokio::net::TcpListener, reg: Arc<Registry>) -> anyhow::Result<()> {
    axum::serve(listener, router(reg))
        .await
        .context("serving the registry")
}
