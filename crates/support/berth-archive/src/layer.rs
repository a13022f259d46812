//! Unpacking layer tars into a directory that overlayfs stacks. Docker's
//! AUFS-style whiteouts (`.wh.name`, `.wh..wh..opq`) become overlayfs
//! whiteouts (0:0 character devices, the `trusted.overlay.opaque` xattr).
//! Member names are cleaned and resolved inside the target, so no archive
//! can write outside it, whatever its `..`, absolute paths or symlinks say.

use std::ffi::CString;
use std::fs::{self, File};
use std::io::{self, Read};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{PermissionsExt, lchown, symlink};
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use nix::sys::stat::{Mode, SFlag, UtimensatFlags, mknod, utimensat};
use nix::sys::time::TimeSpec;
use tar::EntryType;

use crate::rootpath::{clean_relative, resolve};
use crate::sparse::CopyError;

pub const WHITEOUT_PREFIX: &str = ".wh.";
pub const OPAQUE_WHITEOUT: &str = ".wh..wh..opq";

#[derive(Debug, Default, Clone, Copy)]
pub struct UnpackStats {
    /// bytes of regular file content, Docker's notion of a layer's size
    pub size: u64,
    pub entries: u64,
}

/// Unpacks an uncompressed tar stream into `dest` (which must exist).
pub fn unpack(reader: impl Read, dest: &Path) -> Result<UnpackStats> {
    let mut archive = tar::Archive::new(reader);
    let mut u = Unpacker {
        dest,
        stats: UnpackStats::default(),
        dirs: Vec::new(),
    };
    for entry in archive.entries().context("reading layer archive")? {
        let mut entry = entry.context("reading layer archive")?;
        u.member(&mut entry)?;
    }
    // directory times last: creating their children changed them
    for (d, mtime) in u.dirs.iter().rev() {
        set_mtime(d, *mtime);
    }
    Ok(u.stats)
}

struct Unpacker<'a> {
    dest: &'a Path,
    stats: UnpackStats,
    /// directories made, with their times to set at the end
    dirs: Vec<(PathBuf, i64)>,
}

/// What became of a member.
enum Placed {
    /// a file of its own, whose xattrs and time are the member's
    Own,
    /// a hard link (times and modes belong to the target) or nothing
    NotOwn,
}

impl Unpacker<'_> {
    fn member<R: Read>(&mut self, entry: &mut tar::Entry<R>) -> Result<()> {
        let sparse = crate::sparse::pax_sparse(entry).context("reading layer archive")?;
        let raw = match sparse.as_ref().and_then(|s| s.name()) {
            Some(n) => n.to_path_buf(),
            None => entry.path().context("reading member name")?.into_owned(),
        };
        let Some(rel) = clean_relative(&raw) else {
            bail!(
                "invalid layer: member {:?} is outside of the archive root",
                raw
            );
        };
        if rel.as_os_str().is_empty() {
            return Ok(()); // "./" itself
        }
        self.stats.entries += 1;
        let file_name = rel
            .file_name()
            .map(|f| f.to_string_lossy().into_owned())
            .unwrap_or_default();
        // parents are resolved inside dest; the member itself is never followed
        let parent = resolve(self.dest, rel.parent().unwrap_or(Path::new("")), true)?;
        fs::create_dir_all(&parent).with_context(|| format!("creating {}", parent.display()))?;
        if file_name == OPAQUE_WHITEOUT {
            return set_opaque(&parent);
        }
        if let Some(hidden) = file_name.strip_prefix(WHITEOUT_PREFIX) {
            let target = parent.join(whiteout_name(hidden, &raw)?);
            remove_any(self.dest, &target)?;
            return mknod(&target, SFlag::S_IFCHR, Mode::empty(), 0)
                .with_context(|| format!("creating whiteout {}", target.display()));
        }
        let path = parent.join(&file_name);
        let kind = entry.header().entry_type();
        if let Placed::Own = self.place(entry, &path, &raw, sparse.as_ref())? {
            copy_xattrs(entry, &path);
            if kind != EntryType::Directory {
                set_mtime(&path, entry.header().mtime().unwrap_or(0) as i64);
            }
        }
        Ok(())
    }

    /// Creates the member at `path` by its kind.
    fn place<R: Read>(
        &mut self,
        entry: &mut tar::Entry<R>,
        path: &Path,
        raw: &Path,
        sparse: Option<&crate::sparse::PaxSparse>,
    ) -> Result<Placed> {
        let header = entry.header();
        let mode = header.mode().unwrap_or(0o644) & 0o7777;
        let (uid, gid) = (
            header.uid().unwrap_or(0) as u32,
            header.gid().unwrap_or(0) as u32,
        );
        match header.entry_type() {
            EntryType::Directory => {
                if let Ok(md) = fs::symlink_metadata(path)
                    && !md.is_dir()
                {
                    remove_any(self.dest, path)?;
                }
                if !path.exists() {
                    fs::create_dir(path).with_context(|| format!("creating {}", path.display()))?;
                }
                fs::set_permissions(path, fs::Permissions::from_mode(mode))?;
                self.dirs
                    .push((path.to_path_buf(), header.mtime().unwrap_or(0) as i64));
            }
            EntryType::Regular | EntryType::Continuous | EntryType::GNUSparse => {
                remove_any(self.dest, path)?;
                let mut f =
                    File::create(path).with_context(|| format!("creating {}", path.display()))?;
                self.stats.size +=
                    crate::sparse::write_contents(entry, sparse, &mut f).map_err(|e| match e {
                        CopyError::Archive(e) => anyhow::Error::from(e)
                            .context(format!("invalid layer: reading {:?}", raw)),
                        CopyError::Write(e) => {
                            anyhow::Error::from(e).context(format!("writing {}", path.display()))
                        }
                    })?;
                drop(f);
                lchown(path, Some(uid), Some(gid))?;
                // chmod after chown: chown clears setuid bits
                fs::set_permissions(path, fs::Permissions::from_mode(mode))?;
            }
            EntryType::Symlink => {
                let target = entry
                    .link_name()?
                    .context("symlink without target")?
                    .into_owned();
                remove_any(self.dest, path)?;
                symlink(&target, path)
                    .with_context(|| format!("creating symlink {}", path.display()))?;
                lchown(path, Some(uid), Some(gid))?;
            }
            EntryType::Link => {
                let target = entry
                    .link_name()?
                    .context("hard link without target")?
                    .into_owned();
                self.hard_link(path, raw, &target)?;
                return Ok(Placed::NotOwn);
            }
            EntryType::Fifo => {
                remove_any(self.dest, path)?;
                mknod(path, SFlag::S_IFIFO, Mode::from_bits_truncate(mode), 0)?;
                lchown(path, Some(uid), Some(gid))?;
            }
            // device nodes in images are a way into the host; containers
            // get their /dev from the runtime instead
            EntryType::Char | EntryType::Block => {
                tracing::debug!(path = %raw.display(), "skipping device node in layer");
                return Ok(Placed::NotOwn);
            }
            other => {
                tracing::debug!(path = %raw.display(), kind = ?other, "skipping unsupported tar member");
                return Ok(Placed::NotOwn);
            }
        }
        Ok(Placed::Own)
    }

    /// A hard link must point inside the layer, and not to a directory.
    fn hard_link(&self, path: &Path, raw: &Path, target: &Path) -> Result<()> {
        let Some(target_rel) = clean_relative(target) else {
            bail!(
                "invalid layer: hard link {:?} points outside of the archive root",
                raw
            );
        };
        let target_parent = resolve(
            self.dest,
            target_rel.parent().unwrap_or(Path::new("")),
            true,
        )?;
        let target_path = target_parent.join(target_rel.file_name().unwrap_or_default());
        let md = fs::symlink_metadata(&target_path)
            .with_context(|| format!("hard link {:?} to missing {:?}", raw, target))?;
        if md.is_dir() {
            bail!("invalid layer: hard link {:?} points to a directory", raw);
        }
        remove_any(self.dest, path)?;
        fs::hard_link(&target_path, path).with_context(|| format!("linking {}", path.display()))
    }
}

/// The member's `SCHILY.xattr.*` records, except those that would change
/// overlay semantics: they are not the archive's to set.
fn copy_xattrs<R: Read>(entry: &mut tar::Entry<R>, path: &Path) {
    let Ok(Some(exts)) = entry.pax_extensions() else {
        return;
    };
    for x in exts.filter_map(|e| e.ok()) {
        if let Some(name) = x.key().ok().and_then(|k| k.strip_prefix("SCHILY.xattr."))
            && !name.starts_with("trusted.overlay.")
        {
            let _ = set_xattr(path, name, x.value_bytes());
        }
    }
}

fn set_mtime(path: &Path, mtime: i64) {
    let t = TimeSpec::new(mtime, 0);
    let _ = utimensat(None, path, &t, &t, UtimensatFlags::NoFollowSymlink);
}

/// The name a whiteout hides. `.wh.` followed by nothing, `.` or `..`
/// would name the directory itself or its parent: removing that would reach
/// past the entry into the layer root and, through `..`, every other layer.
fn whiteout_name<'a>(hidden: &'a str, raw: &Path) -> Result<&'a str> {
    if hidden.is_empty() || hidden == "." || hidden == ".." || hidden.contains('/') {
        bail!(
            "invalid layer: whiteout {:?} does not name a file in its directory",
            raw
        );
    }
    Ok(hidden)
}

/// Removes `path`, which must lie strictly inside `root`: the last guard
/// between a hostile archive and the data root, whatever the caller built.
fn remove_any(root: &Path, path: &Path) -> Result<()> {
    let inside = path
        .strip_prefix(root)
        .map(|rel| {
            !rel.as_os_str().is_empty()
                && rel
                    .components()
                    .all(|c| matches!(c, std::path::Component::Normal(_)))
        })
        .unwrap_or(false);
    if !inside {
        bail!(
            "invalid layer: refusing to remove {} outside of the layer being applied",
            path.display()
        );
    }
    match fs::symlink_metadata(path) {
        Ok(md) if md.is_dir() => {
            fs::remove_dir_all(path).with_context(|| format!("removing {}", path.display()))
        }
        Ok(_) => fs::remove_file(path).with_context(|| format!("removing {}", path.display())),
        Err(_) => Ok(()),
    }
}

fn set_opaque(dir: &Path) -> Result<()> {
    set_xattr(dir, "trusted.overlay.opaque", b"y")
        .with_context(|| format!("marking {} opaque", dir.display()))
}

fn set_xattr(path: &Path, name: &str, value: &[u8]) -> io::Result<()> {
    let p = CString::new(path.as_os_str().as_bytes())?;
    let n = CString::new(name)?;
    // SAFETY: both strings are NUL-terminated and outlive the call
    let rc = unsafe {
        libc::lsetxattr(
            p.as_ptr(),
            n.as_ptr(),
            value.as_ptr().cast(),
            value.len(),
            0,
        )
    };
    if rc != 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tar_of(build: impl FnOnce(&mut tar::Builder<Vec<u8>>)) -> Vec<u8> {
        let mut b = tar::Builder::new(Vec::new());
        build(&mut b);
        b.into_inner().unwrap()
    }

    fn file(b: &mut tar::Builder<Vec<u8>>, name: &str, data: &[u8]) {
        let mut h = tar::Header::new_gnu();
        h.set_size(data.len() as u64);
        h.set_mode(0o644);
        h.set_entry_type(EntryType::Regular);
        // set_path refuses "..": write the raw name like a hostile tool would
        let bytes = name.as_bytes();
        h.as_old_mut().name[..bytes.len()].copy_from_slice(bytes);
        h.set_cksum();
        b.append(&h, data).unwrap();
    }

    fn link(b: &mut tar::Builder<Vec<u8>>, kind: EntryType, name: &str, target: &str) {
        let mut h = tar::Header::new_gnu();
        h.set_size(0);
        h.set_entry_type(kind);
        h.set_mode(0o777);
        let bytes = name.as_bytes();
        h.as_old_mut().name[..bytes.len()].copy_from_slice(bytes);
        let t = target.as_bytes();
        h.as_old_mut().linkname[..t.len()].copy_from_slice(t);
        h.set_cksum();
        b.append(&h, &[][..]).unwrap();
    }

    #[test]
    fn unpacks_files_and_whiteouts() {
        let d = tempfile::tempdir().unwrap();
        let t = tar_of(|b| {
            file(b, "etc/hello", b"hi");
            file(b, "/abs/x", b"a");
            file(b, "gone/.wh.old", b"");
            link(b, EntryType::Symlink, "bin/sh", "/bin/busybox");
        });
        let s = unpack(&t[..], d.path()).unwrap();
        assert_eq!(fs::read(d.path().join("etc/hello")).unwrap(), b"hi");
        assert_eq!(fs::read(d.path().join("abs/x")).unwrap(), b"a");
        assert_eq!(s.size, 3);
        let wh = fs::symlink_metadata(d.path().join("gone/old")).unwrap();
        use std::os::unix::fs::FileTypeExt;
        assert!(wh.file_type().is_char_device());
        assert_eq!(
            fs::read_link(d.path().join("bin/sh")).unwrap(),
            PathBuf::from("/bin/busybox")
        );
    }

    #[test]
    fn whiteouts_of_dot_and_dot_dot_are_refused_before_anything_is_removed() {
        for name in [".wh...", ".wh..", ".wh.", "sub/.wh...", "sub/.wh.."] {
            let outer = tempfile::tempdir().unwrap();
            let sibling = outer.path().join("other-layer");
            fs::create_dir_all(sibling.join("bin")).unwrap();
            fs::write(sibling.join("bin/sh"), b"x").unwrap();
            let dest = outer.path().join("dest");
            fs::create_dir_all(dest.join("sub/kept")).unwrap();
            let t = tar_of(|b| file(b, name, b""));
            let err = unpack(&t[..], &dest).unwrap_err();
            assert!(
                format!("{err:#}").contains("does not name a file"),
                "{name}: {err:#}"
            );
            assert!(sibling.join("bin/sh").exists(), "{name} reached a sibling");
            assert!(dest.join("sub/kept").is_dir(), "{name} removed its parent");
        }
    }

    #[test]
    fn removal_outside_the_root_is_refused() {
        let outer = tempfile::tempdir().unwrap();
        let dest = outer.path().join("dest");
        fs::create_dir(&dest).unwrap();
        assert!(remove_any(&dest, outer.path()).is_err());
        assert!(remove_any(&dest, &dest).is_err());
        assert!(remove_any(&dest, &dest.join("a/../..")).is_err());
        assert!(remove_any(&dest, &dest.join("missing")).is_ok());
        assert!(dest.exists());
    }

    #[test]
    fn refuses_parent_escape() {
        let outer = tempfile::tempdir().unwrap();
        let dest = outer.path().join("dest");
        fs::create_dir(&dest).unwrap();
        let t = tar_of(|b| file(b, "../evil", b"x"));
        assert!(unpack(&t[..], &dest).is_err());
        assert!(!outer.path().join("evil").exists());
    }

    #[test]
    fn symlink_parent_cannot_escape() {
        let outer = tempfile::tempdir().unwrap();
        let dest = outer.path().join("dest");
        fs::create_dir(&dest).unwrap();
        let t = tar_of(|b| {
            link(b, EntryType::Symlink, "up", "../..");
            file(b, "up/evil", b"x");
            link(b, EntryType::Link, "hl", "../../etc/passwd");
        });
        let _ = unpack(&t[..], &dest);
        assert!(!outer.path().join("evil").exists());
        assert!(
            dest.join("evil").exists(),
            "the write lands inside the root"
        );
        assert!(!dest.join("hl").exists());
    }
}
