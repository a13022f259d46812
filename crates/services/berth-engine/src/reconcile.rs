//! After a crash, the runtime's leftovers are brought in line with the
//! records: a start that a kill -9 cut short either completes or leaves
//! nothing behind, so that every container is startable, removable or
//! running; step containers of interrupted builds go.

use std::sync::Arc;
use std::time::Duration;

use berth_core::runtime::RuntimeState;
use berth_store::{MetadataStoreExt, Table};

use crate::containers::{ContainerRecord, Entry, Status, should_restart};
use crate::{Engine, LockExt, Result, lifecycle};

impl Engine {
    /// Loads every container and brings each in line with its shim.
    pub(crate) async fn restore_containers(self: &Arc<Self>) -> anyhow::Result<()> {
        let recs = self.meta.list_json::<ContainerRecord>(Table::Containers)?;
        for (_, rec) in recs {
            let e = Entry::new(rec.clone());
            self.names.w().insert(rec.name.clone(), rec.id.clone());
            self.containers.w().insert(rec.id.clone(), e.clone());
            self.restore_one(&e, &rec).await?;
        }
        Ok(())
    }

    async fn restore_one(self: &Arc<Self>, e: &Arc<Entry>, rec: &ContainerRecord) -> Result<()> {
        if rec.state.status == Status::Removing {
            let _op = e.op.lock().await;
            if let Err(err) = self.remove_entry(e, false) {
                tracing::warn!(container = %&rec.id[..12], error = %err, "finishing interrupted removal");
            }
            return Ok(());
        }
        // whatever the record says, a shim that answers knows better: a
        // crash may have come between a start and its record
        match self.runtime.state(&rec.id).await {
            RuntimeState::Alive { pid, started } => {
                if started || self.finish_interrupted_start(e, pid).await {
                    return self.adopt(e, pid);
                }
            }
            RuntimeState::Exited(x) => {
                if rec.state.status != Status::Exited || rec.state.finished_at != x.finished_at {
                    self.handle_exit(e, Some(x));
                }
                return Ok(());
            }
            RuntimeState::Gone => {}
        }
        let exit = self.runtime.recorded_exit(&rec.id);
        match rec.state.status {
            Status::Running => self.handle_exit(e, exit),
            // started, then exited while the daemon was down, before the
            // start was recorded
            Status::Created if exit.as_ref().is_some_and(|x| !x.never_started) => {
                self.handle_exit(e, exit)
            }
            Status::Created => {
                let _ = self.clear_stale_runtime(&rec.id).await;
            }
            Status::Restarting => self.schedule_restart(e, rec, true),
            Status::Exited if should_restart(rec, true) => self.schedule_restart(e, rec, true),
            Status::Exited | Status::Dead | Status::Removing => {}
        }
        Ok(())
    }

    /// Takes a container whose shim runs it as running, whatever its record
    /// said, and serves it again: its monitor, health checks, DNS, proxies.
    fn adopt(self: &Arc<Self>, e: &Arc<Entry>, pid: Option<i32>) -> Result<()> {
        if e.record().state.status != Status::Running {
            let rec = e.update(|x| {
                x.state.status = Status::Running;
                x.state.pid = pid.unwrap_or(0) as i64;
                x.state.started_at = crate::now_rfc3339();
                x.state.error.clear();
                x.clone()
            });
            self.persist_record(&rec)?;
            e.watch.send_modify(|s| s.running = true);
        }
        self.sync_paused(e);
        tracing::info!(container = %&e.id[..12], "re-adopted running container");
        let rec = e.record();
        // what its start mounted, for its stop to unmount
        let volumes = rec
            .mounts
            .iter()
            .filter(|m| m.kind == berth_core::mount::MountKind::Volume)
            .map(|m| m.source.clone())
            .collect();
        self.volumes.adopt_mounts(&e.id, volumes);
        self.start_resolver(&rec);
        self.start_proxies(&rec);
        self.spawn_health_monitor(e.clone());
        self.spawn_monitor(e.clone());
        Ok(())
    }

    /// Before a start: removes what an earlier run left of the runtime's
    /// state (see `lifecycle::clear_stale`).
    pub(crate) async fn clear_stale_runtime(&self, id: &str) -> Result<()> {
        lifecycle::clear_stale(self.runtime.as_ref(), id, Duration::from_millis(50)).await
    }

    /// A shim that made the container but never got its Start: the daemon
    /// died in between. It is told to go on, since start is what the client
    /// asked for; returns whether the container runs now.
    async fn finish_interrupted_start(&self, e: &Arc<Entry>, pid: Option<i32>) -> bool {
        match self.runtime.start(&e.id).await {
            Ok(_) => {
                tracing::info!(container = %&e.id[..12], "completed a start interrupted by the daemon's exit");
                true
            }
            Err(err) => {
                let why = format!("{:#}", err.into_anyhow());
                tracing::warn!(container = %&e.id[..12], "an interrupted start could not complete, the container stays created: {why}");
                // the shim is the parent of the container's process: it
                // goes first, so that nothing writes an exit record later
                if let Some(shim) = pid.and_then(parent_of) {
                    let _ = nix::sys::signal::kill(
                        nix::unistd::Pid::from_raw(shim),
                        nix::sys::signal::Signal::SIGKILL,
                    );
                }
                let _ = self.clear_stale_runtime(&e.id).await;
                false
            }
        }
    }

    /// Step containers of builds the daemon's exit interrupted: no build
    /// will come back for them. Removed in the background, so that a slow
    /// one does not hold the daemon's start.
    pub(crate) fn remove_stale_build_containers(self: &Arc<Self>) {
        let stale: Vec<String> = self
            .containers
            .r()
            .values()
            .filter(|e| e.record().build_step)
            .map(|e| e.id.clone())
            .collect();
        if stale.is_empty() {
            return;
        }
        let engine = self.clone();
        tokio::spawn(async move {
            for id in stale {
                tracing::info!(container = %&id[..12], "removing the step container of an interrupted build");
                if let Err(err) = engine.container_remove(&id, true, true).await {
                    tracing::warn!(container = %&id[..12], "removing a stale build container: {err}");
                }
            }
        });
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
