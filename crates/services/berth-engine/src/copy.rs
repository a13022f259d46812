//! `docker cp` (the archive endpoints), `export` and `diff` (changes):
//! access to a container's files from the daemon, running or not.

use std::io::Read;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::Context;
use bytes::Bytes;
use tokio::sync::mpsc;

use crate::archive::{self, ExtractError, ExtractOptions, PathStat, Root};
use crate::containers::Status;
use crate::volumes::{MountKind, MountRecord};
use crate::{Engine, Error, Result};

/// A path that differs in the container's writable layer from its image.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileChange {
    pub path: String,
    pub kind: ChangeKind,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChangeKind {
    Modified,
    Added,
    Deleted,
}

/// What the container's files are seen through.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum View {
    /// the root with the container's volumes and binds (`cp`)
    WithMounts,
    /// the root filesystem alone (`export`)
    RootOnly,
}

/// A `Write` that hands chunks to an async body stream.
pub(crate) struct ChannelWriter(pub(crate) mpsc::Sender<std::io::Result<Bytes>>);

impl std::io::Write for ChannelWriter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0
            .blocking_send(Ok(Bytes::copy_from_slice(buf)))
            .map_err(|_| std::io::Error::new(std::io::ErrorKind::BrokenPipe, "client went away"))?;
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

pub type ByteStream = mpsc::Receiver<std::io::Result<Bytes>>;

fn not_found(path: &str, container: &str) -> Error {
    Error::not_found(format!(
        "Could not find the file {path} in container {container}"
    ))
}

/// An error of the file system as dockerd answers it: a missing file is
/// its 404; a path through a file is no "not found" to it but lstat's
/// error, a 500 naming the path it looked up (`looked_up`).
fn io_error(e: std::io::Error, path: &str, looked_up: &str, container: &str) -> Error {
    match e.raw_os_error() {
        Some(libc::ENOENT) => not_found(path, container),
        Some(libc::ENOTDIR) => {
            Error::Internal(anyhow::anyhow!("lstat {looked_up}: not a directory"))
        }
        Some(libc::EROFS) => Error::invalid("container rootfs is marked read-only"),
        // a loop, or a kernel "magic" link such as /proc/1/root, which would
        // lead out of the container: the path is what is wrong
        Some(libc::ELOOP) | Some(libc::EXDEV) => Error::invalid(format!(
            "cannot follow {path} in container {container}: too many levels of symbolic links, or a link out of the container"
        )),
        _ => Error::Internal(anyhow::Error::from(e).context(format!("accessing {path}"))),
    }
}

/// dockerd's check of the `path` parameter; a relative path is relative
/// to the container's root, as dockerd joins it to "/".
fn check_path(path: &str) -> Result<()> {
    if path.is_empty() {
        return Err(Error::invalid("bad parameter: path cannot be empty"));
    }
    Ok(())
}

impl Engine {
    /// Runs `f` on the container's files in a blocking thread: through
    /// /proc/PID/root while it runs (its mounts included), otherwise on its
    /// root filesystem mounted for the purpose, with its volumes and binds
    /// mounted in for `View::WithMounts`. A stopped container cannot start
    /// meanwhile: its lifecycle lock is held.
    pub(crate) async fn with_root<T: Send + 'static>(
        self: &Arc<Self>,
        name: &str,
        view: View,
        f: impl FnOnce(&Root) -> Result<T> + Send + 'static,
    ) -> Result<T> {
        let e = self.get(name)?;
        let rec = e.record();
        if view == View::WithMounts && e.is_running() && rec.state.pid > 0 {
            let proc_root = PathBuf::from(format!("/proc/{}/root", rec.state.pid));
            return tokio::task::spawn_blocking(move || {
                let root = Root::open(&proc_root)
                    .with_context(|| format!("opening {}", proc_root.display()))?;
                f(&root)
            })
            .await
            .map_err(|e| Error::Internal(e.into()))?;
        }
        let _op = e.op.lock().await;
        let rec = e.record();
        let running = e.is_running();
        if matches!(rec.state.status, Status::Removing | Status::Dead) {
            return Err(Error::conflict(format!(
                "container {} is being removed",
                rec.name
            )));
        }
        let engine = self.clone();
        tokio::task::spawn_blocking(move || {
            let rootfs = engine.mount_rootfs(&rec)?;
            let result = (|| {
                if view == View::WithMounts && !running {
                    engine.mount_into(&rec.id, &rootfs, &rec.mounts)?;
                }
                let root = Root::open(&rootfs).context("opening the root filesystem")?;
                f(&root)
            })();
            if !running {
                // a lazy unmount of the root takes the mounts below it along
                engine.release_rootfs_of(&rec.id);
            }
            result
        })
        .await
        .map_err(|e| Error::Internal(e.into()))?
    }

    /// Bind-mounts the container's volumes and binds into its root mounted
    /// on the host, as the container would see them.
    fn mount_into(&self, id: &str, rootfs: &Path, mounts: &[MountRecord]) -> Result<()> {
        let root = Root::open(rootfs).context("opening the root filesystem")?;
        let mut sorted: Vec<&MountRecord> = mounts.iter().collect();
        sorted.sort_by_key(|m| Path::new(&m.destination).components().count());
        for m in sorted {
            let source = match m.kind {
                MountKind::Tmpfs => continue,
                MountKind::Bind => PathBuf::from(&m.source),
                MountKind::Volume => self.volumes.mount(&m.source, id)?,
            };
            let file = std::fs::metadata(&source)
                .map(|md| !md.is_dir())
                .unwrap_or(false);
            let target = archive::mount_target(&root, Path::new(&m.destination), file)
                .with_context(|| format!("preparing {}", m.destination))?;
            let target_path = format!("/proc/self/fd/{}", std::os::fd::AsRawFd::as_raw_fd(&target));
            use nix::mount::{MsFlags, mount};
            mount(
                Some(&source),
                target_path.as_str(),
                None::<&str>,
                MsFlags::MS_BIND | MsFlags::MS_REC,
                None::<&str>,
            )
            .with_context(|| format!("mounting {} at {}", source.display(), m.destination))?;
            if m.read_only {
                let mounted = archive::mount_target(&root, Path::new(&m.destination), file)?;
                let p = format!(
                    "/proc/self/fd/{}",
                    std::os::fd::AsRawFd::as_raw_fd(&mounted)
                );
                mount(
                    None::<&str>,
                    p.as_str(),
                    None::<&str>,
                    MsFlags::MS_BIND | MsFlags::MS_REMOUNT | MsFlags::MS_RDONLY,
                    None::<&str>,
                )
                .with_context(|| format!("making {} read-only", m.destination))?;
            }
        }
        Ok(())
    }

    /// HEAD /containers/{id}/archive: the path as given, relative to the
    /// root if relative (dockerd stats it so).
    pub async fn container_path_stat(self: &Arc<Self>, name: &str, path: &str) -> Result<PathStat> {
        check_path(path)?;
        let (p, n) = (path.to_string(), name.to_string());
        self.with_root(name, View::WithMounts, move |root| {
            archive::stat(root, &p).map_err(|e| io_error(e, &p, &p, &n))
        })
        .await
    }

    /// GET /containers/{id}/archive: the stat, then the tar stream of the
    /// path made absolute as dockerd makes it.
    pub async fn container_archive(
        self: &Arc<Self>,
        name: &str,
        path: &str,
    ) -> Result<(PathStat, ByteStream)> {
        check_path(path)?;
        let abs = archive::archive_path(path);
        let (p, a, n) = (path.to_string(), abs.clone(), name.to_string());
        let stat = self
            .with_root(name, View::WithMounts, move |root| {
                archive::stat(root, &a).map_err(|e| io_error(e, &p, &a, &n))
            })
            .await?;
        let (tx, rx) = mpsc::channel(16);
        let engine = self.clone();
        let n = name.to_string();
        tokio::spawn(async move {
            let err_tx = tx.clone();
            let r = engine
                .with_root(&n, View::WithMounts, move |root| {
                    archive::write_archive(root, &abs, ChannelWriter(tx))
                        .map_err(|e| Error::Internal(e.into()))
                })
                .await;
            if let Err(e) = r {
                tracing::warn!(container = %n, error = %e, "archive cut short");
                let _ = err_tx.send(Err(std::io::Error::other(e.to_string()))).await;
            }
        });
        Ok((stat, rx))
    }

    /// PUT /containers/{id}/archive: extracts the tar (plain or gzip) in
    /// `file` into the directory `path`.
    pub async fn container_extract(
        self: &Arc<Self>,
        name: &str,
        path: &str,
        file: PathBuf,
        opts: ExtractOptions,
    ) -> Result<()> {
        check_path(path)?;
        let e = self.get(name)?;
        let rec = e.record();
        let abs = archive::archive_path(path);
        if rec.host_config.readonly_rootfs == Some(true)
            && !rec
                .mounts
                .iter()
                .any(|m| !m.read_only && Path::new(&abs).starts_with(Path::new(&m.destination)))
        {
            return Err(Error::invalid("container rootfs is marked read-only"));
        }
        let (p, n) = (path.to_string(), name.to_string());
        let res = self
            .with_root(name, View::WithMounts, move |root| {
                let input = open_maybe_gzip(&file)?;
                archive::extract_tar(root, &abs, input, opts).map_err(|e| match e {
                    ExtractError::Invalid(m) => Error::invalid(m),
                    ExtractError::Io(io) => io_error(io, &p, &abs, &n),
                })
            })
            .await;
        // the writable layer changed, whatever part of the copy was done
        self.forget_rw_size(&e.id);
        res
    }

    /// GET /containers/{id}/export: the root filesystem as a tar stream.
    pub async fn container_export(self: &Arc<Self>, name: &str) -> Result<ByteStream> {
        self.get(name)?;
        let (tx, rx) = mpsc::channel(16);
        let engine = self.clone();
        let n = name.to_string();
        tokio::spawn(async move {
            let err_tx = tx.clone();
            let r = engine
                .with_root(&n, View::RootOnly, move |root| {
                    archive::write_tree(root, ChannelWriter(tx))
                        .map_err(|e| Error::Internal(e.into()))
                })
                .await;
            if let Err(e) = r {
                let _ = err_tx.send(Err(std::io::Error::other(e.to_string()))).await;
            }
        });
        Ok(rx)
    }

    /// GET /containers/{id}/changes: what the writable layer holds.
    pub fn container_changes(&self, name: &str) -> Result<Vec<FileChange>> {
        let e = self.get(name)?;
        let rec = e.record();
        let (upper, _) = self.overlay_dirs_of(&rec.id);
        let lowers: Vec<PathBuf> = self.lower_dirs(&rec);
        let mut out = Vec::new();
        walk_changes(&upper, Path::new("/"), &lowers, &mut out)?;
        out.sort_by(|a, b| a.path.cmp(&b.path));
        Ok(out)
    }
}

fn open_maybe_gzip(file: &Path) -> Result<Box<dyn Read + Send>> {
    let mut f = std::fs::File::open(file).context("opening the uploaded archive")?;
    let mut magic = [0u8; 2];
    let n = f.read(&mut magic).context("reading the uploaded archive")?;
    let f = std::fs::File::open(file).context("opening the uploaded archive")?;
    if n == 2 && magic == [0x1f, 0x8b] {
        Ok(Box::new(flate2::read::GzDecoder::new(f)))
    } else {
        Ok(Box::new(f))
    }
}

fn walk_changes(
    dir: &Path,
    rel: &Path,
    lowers: &[PathBuf],
    out: &mut Vec<FileChange>,
) -> Result<()> {
    let Ok(rd) = std::fs::read_dir(dir) else {
        return Ok(());
    };
    for entry in rd.flatten() {
        let name = entry.file_name();
        let path = rel.join(&name);
        let Ok(md) = entry.path().symlink_metadata() else {
            continue;
        };
        use std::os::unix::fs::{FileTypeExt, MetadataExt};
        let in_lower = |p: &Path| {
            let r = p.strip_prefix("/").unwrap_or(p);
            lowers.iter().any(|l| l.join(r).symlink_metadata().is_ok())
        };
        let kind = if md.file_type().is_char_device() && md.rdev() == 0 {
            // an overlay whiteout: the file was deleted
            ChangeKind::Deleted
        } else if in_lower(&path) {
            ChangeKind::Modified
        } else {
            ChangeKind::Added
        };
        out.push(FileChange {
            path: path.display().to_string(),
            kind,
        });
        if md.is_dir() {
            walk_changes(&entry.path(), &path, lowers, out)?;
        }
    }
    Ok(())
}
