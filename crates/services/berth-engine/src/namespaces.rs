//! `--pid`, `--ipc` and `--uts`: which namespaces a container shares with
//! the host or with another container, checked at create and resolved at
//! start as dockerd does (its `WithNamespaces` and `setupIPCDirs`).

use std::path::{Path, PathBuf};

use berth_core::container::HostConfig;
use berth_oci::spec::{NsShare, Shm};

use crate::containers::{ContainerRecord, Status};
use crate::{Engine, Error, Result};

/// The namespaces and /dev/shm a container starts with.
pub(crate) struct Shares {
    pub pid: NsShare,
    pub ipc: NsShare,
    pub shm: Shm,
    pub uts_host: bool,
}

fn container_target(mode: &str) -> Option<&str> {
    mode.strip_prefix("container:")
}

/// dockerd's `Valid()` of the three modes, and the one conflict it checks.
pub(crate) fn validate_modes(hc: &HostConfig, hostname: Option<&str>) -> Result<()> {
    let pid = hc.pid_mode.as_deref().unwrap_or_default();
    if !(pid.is_empty() || pid == "host" || container_target(pid).is_some_and(|c| !c.is_empty())) {
        return Err(Error::invalid(format!("invalid PID mode: {pid}")));
    }
    let ipc = hc.ipc_mode.as_deref().unwrap_or_default();
    let ipc_ok = matches!(ipc, "" | "none" | "private" | "host" | "shareable")
        || container_target(ipc).is_some_and(|c| !c.is_empty());
    if !ipc_ok {
        return Err(Error::invalid(format!("invalid IPC mode: {ipc}")));
    }
    let uts = hc.uts_mode.as_deref().unwrap_or_default();
    if !(uts.is_empty() || uts == "host") {
        return Err(Error::invalid(format!("invalid UTS mode: {uts}")));
    }
    if uts == "host" && hostname.is_some_and(|h| !h.is_empty()) {
        return Err(Error::invalid(
            "conflicting options: hostname and the UTS mode",
        ));
    }
    Ok(())
}

impl Engine {
    /// At create: `container:NAME` of `--pid` and `--ipc` names a container
    /// that exists (dockerd looks it up for its security labels unless
    /// security options were given) and is stored by its ID, so a rename
    /// does not break the sharing.
    pub(crate) fn resolve_shared_modes(&self, hc: &mut HostConfig) -> Result<()> {
        let check = hc.security_opt.is_none();
        for mode in [&mut hc.pid_mode, &mut hc.ipc_mode] {
            let Some(target) = mode.as_deref().and_then(container_target) else {
                continue;
            };
            match self.get(target) {
                Ok(e) => *mode = Some(format!("container:{}", e.id)),
                Err(err) if check => return Err(err),
                Err(_) => {}
            }
        }
        Ok(())
    }

    /// At start: the namespaces to join and the /dev/shm to mount, with
    /// dockerd's errors for a donor that is gone or not running.
    pub(crate) fn namespace_shares(&self, rec: &ContainerRecord) -> Result<Shares> {
        let hc = &rec.host_config;
        let pid = match hc.pid_mode.as_deref().unwrap_or_default() {
            "host" => NsShare::Host,
            m => match container_target(m) {
                // dockerd fails these while building the spec: a system error
                Some(target) => NsShare::Join(self.donor_ns(target, "pid").map_err(|e| {
                    Error::Internal(anyhow::anyhow!("failed to join PID namespace: {}", e))
                })?),
                None => NsShare::Own,
            },
        };
        let (ipc, shm) = self.ipc_share(rec)?;
        Ok(Shares {
            pid,
            ipc,
            shm,
            uts_host: hc.uts_mode.as_deref() == Some("host"),
        })
    }

    fn ipc_share(&self, rec: &ContainerRecord) -> Result<(NsShare, Shm)> {
        let hc = &rec.host_config;
        let size = hc
            .shm_size
            .filter(|s| *s > 0)
            .unwrap_or(crate::hostconfig::DEFAULT_SHM_SIZE);
        let mode = hc.ipc_mode.as_deref().unwrap_or_default();
        if let Some(target) = container_target(mode) {
            let wrap = |e: Error| rewrap(e, "failed to join IPC namespace");
            let ns = self.donor_ns(target, "ipc").map_err(wrap)?;
            let shm = self.donor_shm(target).map_err(wrap)?;
            return Ok((NsShare::Join(ns), Shm::Bind(shm)));
        }
        Ok(match mode {
            "host" => {
                if !Path::new("/dev/shm").is_dir() {
                    return Err(Error::Internal(anyhow::anyhow!(
                        "/dev/shm is not mounted, but must be for --ipc=host"
                    )));
                }
                (NsShare::Host, Shm::Bind(PathBuf::from("/dev/shm")))
            }
            "none" => (NsShare::Own, Shm::None),
            // a record older than the default of "private" was shareable
            "shareable" | "" => (NsShare::Own, Shm::Bind(self.mount_shm(&rec.id, size)?)),
            _ => (NsShare::Own, Shm::Tmpfs(size)),
        })
    }

    /// `/proc/PID/ns/KIND` of a running donor container.
    fn donor_ns(&self, target: &str, kind: &str) -> Result<PathBuf> {
        let donor = self
            .get(target)
            .map_err(|e| Error::invalid(e.to_string()))?
            .record();
        match donor.state.status {
            Status::Restarting => Err(Error::conflict(format!(
                "Container {target} is restarting, wait until the container is running"
            ))),
            Status::Running if donor.state.pid > 0 => Ok(PathBuf::from(format!(
                "/proc/{}/ns/{kind}",
                donor.state.pid
            ))),
            _ => Err(Error::conflict(format!(
                "container {target} is not running"
            ))),
        }
    }

    /// The /dev/shm a donor shares: its own mounted tmpfs when shareable,
    /// the host's with `--ipc host`, its own donor's when it joined one.
    fn donor_shm(&self, target: &str) -> Result<PathBuf> {
        let donor = self.get(target)?.record();
        let mode = donor.host_config.ipc_mode.clone().unwrap_or_default();
        let shm = match mode.as_str() {
            "host" => PathBuf::from("/dev/shm"),
            m => match container_target(m) {
                Some(next) => return self.donor_shm(next),
                None => self.shm_dir(&donor.id),
            },
        };
        if !crate::mounts::is_mounted(&shm) && shm != Path::new("/dev/shm") {
            return Err(Error::invalid(format!(
                "container {target}: non-shareable IPC (hint: use IpcMode:shareable for the donor container)"
            )));
        }
        Ok(shm)
    }

    fn shm_dir(&self, id: &str) -> PathBuf {
        self.state_dir(id).join("shm")
    }

    /// A shareable container's /dev/shm, mounted on the host so that other
    /// containers can bind the same tmpfs; gone when the container stops.
    fn mount_shm(&self, id: &str, size: i64) -> Result<PathBuf> {
        let dir = self.shm_dir(id);
        std::fs::create_dir_all(&dir)?;
        if !crate::mounts::is_mounted(&dir) {
            crate::mounts::mount_tmpfs(&dir, &format!("mode=1777,size={size}"))?;
        }
        Ok(dir)
    }

    pub(crate) fn release_shm(&self, id: &str) {
        if let Err(e) = crate::mounts::unmount(&self.shm_dir(id)) {
            tracing::warn!(container = %&id[..12], error = %e, "unmounting /dev/shm");
        }
    }
}

/// The same kind of error, with dockerd's context in front.
fn rewrap(e: Error, context: &str) -> Error {
    let msg = format!("{context}: {}", e);
    match e {
        Error::Conflict(_) => Error::conflict(msg),
        Error::InvalidParameter(_) => Error::invalid(msg),
        Error::NotFound(_) => Error::not_found(msg),
        _ => Error::Internal(anyhow::anyhow!(msg)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hc(pid: &str, ipc: &str, uts: &str) -> HostConfig {
        HostConfig {
            pid_mode: Some(pid.into()),
            ipc_mode: Some(ipc.into()),
            uts_mode: Some(uts.into()),
            ..Default::default()
        }
    }

    #[test]
    fn modes_are_checked_as_dockerd_does() {
        assert!(validate_modes(&hc("", "", ""), None).is_ok());
        assert!(validate_modes(&hc("host", "shareable", "host"), Some("")).is_ok());
        assert!(validate_modes(&hc("container:a", "container:b", ""), None).is_ok());
        let err =
            |h: HostConfig, name: Option<&str>| validate_modes(&h, name).unwrap_err().to_string();
        assert_eq!(
            err(hc("container:", "", ""), None),
            "invalid PID mode: container:"
        );
        assert_eq!(
            err(hc("private", "", ""), None),
            "invalid PID mode: private"
        );
        assert_eq!(err(hc("", "bogus", ""), None), "invalid IPC mode: bogus");
        assert_eq!(
            err(hc("", "", "private"), None),
            "invalid UTS mode: private"
        );
        assert_eq!(
            err(hc("", "", "host"), Some("box")),
            "conflicting options: hostname and the UTS mode"
        );
    }
}
