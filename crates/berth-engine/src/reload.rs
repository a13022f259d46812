//! The settings a running daemon takes again on SIGHUP (Docker's
//! reloadable keys that berth has): read through `Engine::settings`, so a
//! reload applies to the next pull, push or `info` without a restart.

use std::collections::BTreeMap;

use crate::{Engine, LockExt};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reloadable {
    pub debug: bool,
    pub log_level: String,
    pub labels: Vec<String>,
    pub live_restore: bool,
    pub insecure_registries: Vec<String>,
    pub registry_mirrors: Vec<String>,
    pub max_concurrent_downloads: usize,
    pub max_concurrent_uploads: usize,
    /// the default logging driver of new containers and its options
    pub log_driver: String,
    pub log_opts: BTreeMap<String, String>,
}

impl Engine {
    /// The current values of the reloadable settings.
    pub fn settings(&self) -> Reloadable {
        self.reloadable.r().clone()
    }

    /// Applies reloaded settings and publishes Docker's daemon `reload`
    /// event, whose attributes carry the configuration.
    pub fn reload(&self, new: Reloadable) {
        let attrs: BTreeMap<&str, String> = BTreeMap::from([
            ("debug", new.debug.to_string()),
            ("log-level", new.log_level.clone()),
            ("labels", format!("{:?}", new.labels)),
            ("live-restore", new.live_restore.to_string()),
            (
                "insecure-registries",
                format!("{:?}", new.insecure_registries),
            ),
            ("registry-mirrors", format!("{:?}", new.registry_mirrors)),
            (
                "max-concurrent-downloads",
                new.max_concurrent_downloads.to_string(),
            ),
            (
                "max-concurrent-uploads",
                new.max_concurrent_uploads.to_string(),
            ),
            ("log-driver", new.log_driver.clone()),
            ("log-opts", format!("{:?}", new.log_opts)),
        ]);
        *self.reloadable.w() = new;
        let attrs: Vec<(&str, String)> = attrs.into_iter().collect();
        self.object_event("daemon", &self.daemon_id(), "reload", &attrs);
    }
}
