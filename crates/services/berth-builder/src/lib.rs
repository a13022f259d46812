//! The builder: Dockerfiles executed the way Docker's classic builder does
//! it, as a client of the container and image services. It sees them only
//! through its port, [`BuildHost`]: the engine implements it, unit tests
//! fake it. See `build.rs` for how steps, the cache and stages work.

mod build;
pub mod cache_mounts;
pub mod host;

use std::path::Path;
use std::sync::{Arc, Mutex};

use berth_archive::root::Root;
use berth_core::error::{Error, Result};

pub use build::{BuildOptions, check_tags};
pub use host::{
    BuildHost, Progress, RootWork, StepContainer, StepLayer, StepOutput, StepResources,
};

/// A build service over a host. Cheap to clone: steps hand it to blocking
/// threads.
#[derive(Clone)]
pub struct Builder {
    host: Arc<dyn BuildHost>,
}

impl Builder {
    pub fn new(host: Arc<dyn BuildHost>) -> Self {
        Builder { host }
    }

    /// Runs `f` on a container's root through the host and hands back
    /// what it returns.
    async fn with_root<T: Send + 'static>(
        &self,
        id: &str,
        f: impl FnOnce(&Root) -> Result<T> + Send + 'static,
    ) -> Result<T> {
        let slot: Arc<Mutex<Option<T>>> = Arc::new(Mutex::new(None));
        let out = slot.clone();
        let work: RootWork = Box::new(move |root| {
            let v = f(root)?;
            *out.lock().unwrap_or_else(|p| p.into_inner()) = Some(v);
            Ok(())
        });
        self.host.with_container_root(id, work).await?;
        let v = slot.lock().unwrap_or_else(|p| p.into_inner()).take();
        v.ok_or_else(|| Error::Internal(anyhow::anyhow!("the container's root was not read")))
    }
}

/// The sha256 digest ("sha256:<hex>") and size of a file.
fn digest_of_file(path: &Path) -> anyhow::Result<(String, u64)> {
    use anyhow::Context;
    use sha2::{Digest, Sha256};
    let mut f = std::fs::File::open(path).with_context(|| format!("opening {}", path.display()))?;
    let mut h = Sha256::new();
    let size =
        std::io::copy(&mut f, &mut h).with_context(|| format!("reading {}", path.display()))?;
    Ok((format!("sha256:{}", hex::encode(h.finalize())), size))
}

#[cfg(test)]
mod fake_host_tests;
