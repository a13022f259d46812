//! Files a swarm task's container gets from its cluster rather than its
//! image: secrets and configs. They live in memory: the engine keeps them
//! by container, and at each start writes them into a tmpfs of the
//! container's own (never the data root), remounts it read-only and binds
//! each file at its target. They are not in the container's record, so
//! `inspect`, `commit` and `export` never see them.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::Context;
use nix::mount::{MsFlags, mount};

use crate::{Engine, Error, Result};

/// One file and its owner and mode, as the task's reference asks.
#[derive(Clone)]
pub struct TaskFile {
    /// where the container sees it: an absolute path
    pub target: String,
    pub data: Vec<u8>,
    pub uid: u32,
    pub gid: u32,
    pub mode: u32,
}

impl std::fmt::Debug for TaskFile {
    // the data is a secret
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TaskFile")
            .field("target", &self.target)
            .field("bytes", &self.data.len())
            .finish_non_exhaustive()
    }
}

impl Engine {
    /// The files the container gets at its next starts, until it is
    /// removed.
    pub fn set_task_files(&self, id: &str, files: Vec<TaskFile>) {
        let mut all = self.task_files.lock().unwrap_or_else(|p| p.into_inner());
        if files.is_empty() {
            all.remove(id);
        } else {
            all.insert(id.to_string(), Arc::new(files));
        }
    }

    pub(crate) fn forget_task_files(&self, id: &str) {
        self.set_task_files(id, Vec::new());
    }

    fn task_files_dir(&self, id: &str) -> PathBuf {
        self.state_dir(id).join("secrets")
    }

    /// Writes the container's task files into a fresh tmpfs and returns
    /// the read-only binds of each at its target.
    pub(crate) fn mount_task_files(
        &self,
        id: &str,
        rootfs: &Path,
    ) -> Result<Vec<oci_spec::runtime::Mount>> {
        let files = {
            let all = self.task_files.lock().unwrap_or_else(|p| p.into_inner());
            match all.get(id) {
                Some(f) => f.clone(),
                None => return Ok(Vec::new()),
            }
        };
        let dir = self.task_files_dir(id);
        self.release_task_files(id);
        std::fs::create_dir_all(&dir)?;
        crate::mounts::mount_tmpfs(&dir, "mode=0700")?;
        match write_files(&dir, &files).and_then(|()| remount_read_only(&dir)) {
            Ok(()) => binds(&dir, &files, rootfs),
            Err(e) => {
                self.release_task_files(id);
                Err(e)
            }
        }
    }

    pub(crate) fn release_task_files(&self, id: &str) {
        if let Err(e) = crate::mounts::unmount(&self.task_files_dir(id)) {
            tracing::warn!(container = %&id[..12.min(id.len())], error = %e, "unmounting task files");
        }
    }
}

fn write_files(dir: &Path, files: &[TaskFile]) -> Result<()> {
    use std::os::unix::fs::PermissionsExt;
    for (i, f) in files.iter().enumerate() {
        let path = dir.join(i.to_string());
        std::fs::write(&path, &f.data)?;
        std::os::unix::fs::chown(&path, Some(f.uid), Some(f.gid))
            .with_context(|| format!("setting the owner of {}", f.target))?;
        // Go's os.Chmod of a numeric FileMode keeps the permission bits
        // only: 0o4000 there is not setuid
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(f.mode & 0o777))?;
    }
    Ok(())
}

/// The files' tmpfs goes read-only once written (dockerd retries EBUSY,
/// which a fresh mount with no open file does not give).
fn remount_read_only(dir: &Path) -> Result<()> {
    let flags = MsFlags::MS_REMOUNT
        | MsFlags::MS_RDONLY
        | MsFlags::MS_NOSUID
        | MsFlags::MS_NODEV
        | MsFlags::MS_NOEXEC;
    mount(None::<&str>, dir, None::<&str>, flags, None::<&str>)
        .with_context(|| format!("remounting {} read-only", dir.display()))
        .map_err(Error::Internal)
}

fn binds(dir: &Path, files: &[TaskFile], rootfs: &Path) -> Result<Vec<oci_spec::runtime::Mount>> {
    files
        .iter()
        .enumerate()
        .map(|(i, f)| {
            oci_spec::runtime::MountBuilder::default()
                .destination(crate::validate::in_root(rootfs, &f.target)?)
                .typ("bind")
                .source(dir.join(i.to_string()))
                .options(["bind", "ro", "rprivate"].map(String::from).to_vec())
                .build()
                .context("building a task file mount")
                .map_err(Error::Internal)
        })
        .collect()
}
