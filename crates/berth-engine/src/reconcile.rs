//! After a crash, the runtime's leftovers are brought in line with the
//! records: a start that a kill -9 cut short either completes or leaves
//! nothing behind, so that every container is startable, removable or
//! running; step containers of interrupted builds go.

use std::path::PathBuf;
use std::sync::Arc;

use berth_cgroups::{Cgroup, Mounts};
use berth_shim::protocol::Request;

use crate::containers::Entry;
use crate::shim_client;
use crate::{Engine, LockExt};

impl Engine {
    fn runtime_root(&self, id: &str) -> PathBuf {
        self.state_dir(id).join("runtime")
    }

    /// Removes what an interrupted start left of a container that is not
    /// running: libcontainer's state (which makes the next create fail with
    /// "container already exists"), the process it created and its cgroup.
    pub(crate) async fn clear_stale_runtime(&self, id: &str) {
        let root = self.runtime_root(id);
        if !root.join(id).exists() {
            return;
        }
        tracing::warn!(container = %&id[..12], "removing the runtime state of an interrupted start");
        // libcontainer's own forced delete kills the process and removes
        // the cgroup; it fails on state written only in part
        let deleted = tokio::process::Command::new(&self.cfg.shim_binary)
            .arg("shim-delete")
            .arg(&root)
            .arg(id)
            .output()
            .await
            .map(|o| o.status.success())
            .unwrap_or(false);
        if !deleted {
            let cgroup = Cgroup::new(Mounts::discover(), &self.cgroup_path(id));
            for pid in cgroup.pids().unwrap_or_default() {
                let _ = nix::sys::signal::kill(
                    nix::unistd::Pid::from_raw(pid),
                    nix::sys::signal::Signal::SIGKILL,
                );
            }
        }
        if let Err(e) = std::fs::remove_dir_all(&root) {
            tracing::warn!(container = %&id[..12], "removing {}: {e}", root.display());
        }
        let _ = std::fs::remove_file(self.shim_socket(id));
    }

    /// A record still "created" whose shim is alive: the daemon died between
    /// creating the container and recording its start. Returns whether the
    /// container runs now: a shim that never got its Start is told to go on,
    /// since start is what the client asked for.
    pub(crate) async fn finish_interrupted_start(
        &self,
        e: &Arc<Entry>,
        started: bool,
        pid: Option<i32>,
    ) -> bool {
        if started {
            return true;
        }
        let sock = self.shim_socket(&e.id);
        match shim_client::request(&sock, &Request::Start).await {
            Ok(r) if r.ok => {
                tracing::info!(container = %&e.id[..12], "completed a start interrupted by the daemon's exit");
                true
            }
            other => {
                let why = match other {
                    Ok(r) => r.error.unwrap_or_default(),
                    Err(err) => format!("{err:#}"),
                };
                tracing::warn!(container = %&e.id[..12], "an interrupted start could not complete, the container stays created: {why}");
                // the shim is the parent of the container's process: it
                // goes first, so that nothing writes an exit record later
                if let Some(shim) = pid.and_then(parent_of) {
                    let _ = nix::sys::signal::kill(
                        nix::unistd::Pid::from_raw(shim),
                        nix::sys::signal::Signal::SIGKILL,
                    );
                }
                self.clear_stale_runtime(&e.id).await;
                false
            }
        }
    }

    /// Step containers of builds the daemon's exit interrupted: no build
    /// will come back for them.
    pub(crate) async fn remove_stale_build_containers(&self) {
        let stale: Vec<String> = self
            .containers
            .r()
            .values()
            .filter(|e| e.record().build_step)
            .map(|e| e.id.clone())
            .collect();
        for id in stale {
            tracing::info!(container = %&id[..12], "removing the step container of an interrupted build");
            if let Err(err) = self.container_remove(&id, true, true).await {
                tracing::warn!(container = %&id[..12], "removing a stale build container: {err}");
            }
        }
    }
}

/// The parent pid of `pid`, from /proc (field 4 of stat, after the name in
/// parentheses, which may itself hold spaces and parentheses).
fn parent_of(pid: i32) -> Option<i32> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let after_name = &stat[stat.rfind(')')? + 1..];
    after_name.split_whitespace().nth(1)?.parse().ok()
}

#[cfg(test)]
mod tests {
    #[test]
    fn parent_of_reads_the_fourth_field() {
        let me = std::process::id() as i32;
        assert_eq!(super::parent_of(me), Some(nix::unistd::getppid().as_raw()));
        assert_eq!(super::parent_of(-1), None);
    }
}
