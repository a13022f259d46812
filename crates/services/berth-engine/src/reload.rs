//! The settings a running daemon takes again on SIGHUP (Docker's
//! reloadable keys that berth has, declared in berth-config's table): read
//! through `Engine::settings`, so a reload applies to the next pull, push
//! or `info` without a restart.

pub use berth_config::Reloadable;

use crate::{Engine, LockExt};

impl Engine {
    /// The current values of the reloadable settings.
    pub fn settings(&self) -> Reloadable {
        self.reloadable.r().clone()
    }

    /// Applies reloaded settings and publishes Docker's daemon `reload`
    /// event, whose attributes carry the configuration.
    pub fn reload(&self, new: Reloadable) {
        let attrs = new.event_attributes();
        *self.reloadable.w() = new;
        self.object_event("daemon", &self.daemon_id(), "reload", &attrs);
    }
}
