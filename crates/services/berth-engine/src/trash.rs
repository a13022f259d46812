//! Directories of removed containers, deleted in the background.
//!
//! Freeing a container's files can take tens of milliseconds (on a
//! filesystem mounted with `discard` every freed extent is trimmed at
//! once), and `run --rm` would wait for it: the container is gone for its
//! clients as soon as its directories are renamed out of the way. Each
//! root keeps a trash directory on its own filesystem, emptied again when
//! the daemon starts, so a crash mid-deletion leaves nothing behind for long.

use std::io;
use std::path::{Path, PathBuf};

/// The trash directory's name under the data root and the exec root.
pub(crate) const DIR: &str = "trash";

/// Makes `trash` and deletes what an earlier run left there, in the
/// background: a leftover that cannot be deleted (an immutable file, say)
/// is logged, and never keeps the daemon from starting.
pub(crate) fn empty(trash: &Path) -> io::Result<()> {
    std::fs::create_dir_all(trash)?;
    let leftovers: Vec<PathBuf> = std::fs::read_dir(trash)?
        .flatten()
        .map(|e| e.path())
        .collect();
    if !leftovers.is_empty() {
        let spawned = std::thread::Builder::new()
            .name("berth-trash".into())
            .spawn(move || leftovers.iter().for_each(|d| delete(d)));
        if let Err(e) = spawned {
            tracing::warn!(error = %e, "leaving the trash for the next start");
        }
    }
    Ok(())
}

/// Moves `dir` into `trash` and deletes it there on a thread of its own.
/// Where the rename cannot be done (`trash` on another filesystem, say),
/// `dir` is deleted in place before this returns. A missing `dir` is fine.
pub(crate) fn discard(dir: &Path, trash: &Path) -> io::Result<()> {
    let Some(name) = dir.file_name() else {
        return Ok(());
    };
    match std::fs::symlink_metadata(dir) {
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(e),
        Ok(_) => {}
    }
    let mut doomed = trash.join(name);
    doomed
        .as_mut_os_string()
        .push(format!(".{}", &berth_core::random_id()[..8]));
    match std::fs::rename(dir, &doomed) {
        Ok(()) => {
            let spawned = std::thread::Builder::new()
                .name("berth-trash".into())
                .spawn({
                    let doomed = doomed.clone();
                    move || delete(&doomed)
                });
            if spawned.is_err() {
                delete(&doomed);
            }
            Ok(())
        }
        Err(e) => {
            tracing::debug!(dir = %dir.display(), error = %e, "deleting in place");
            match std::fs::remove_dir_all(dir) {
                Err(e) if e.kind() != io::ErrorKind::NotFound => Err(e),
                _ => Ok(()),
            }
        }
    }
}

/// Deletes `doomed`, first detaching whatever is still mounted below it:
/// a removal must never reach through a mount (a rootfs, a bind of a host
/// directory) into data that is not the container's.
fn delete(doomed: &Path) {
    for mount in mounts_below(doomed) {
        if let Err(e) = crate::mounts::unmount(&mount) {
            tracing::warn!(dir = %doomed.display(), error = %e, "left in the trash: a mount below it stays");
            return;
        }
    }
    if !mounts_below(doomed).is_empty() {
        tracing::warn!(dir = %doomed.display(), "left in the trash: a mount below it stays");
        return;
    }
    if let Err(e) = std::fs::remove_dir_all(doomed) {
        // tried again at the next start
        tracing::warn!(dir = %doomed.display(), error = %e, "deleting a removed container's files");
    }
}

/// The mount points at or below `dir`, deepest first.
fn mounts_below(dir: &Path) -> Vec<PathBuf> {
    let Ok(info) = std::fs::read_to_string("/proc/self/mountinfo") else {
        return Vec::new();
    };
    let mut found: Vec<PathBuf> = info
        .lines()
        .filter_map(|l| l.split(' ').nth(4))
        .map(|p| PathBuf::from(unescape_mountinfo(p)))
        .filter(|p| p.starts_with(dir))
        .collect();
    found.sort_by_key(|p| std::cmp::Reverse(p.components().count()));
    found.dedup();
    found
}

/// mountinfo writes space, tab, newline and backslash as `\ooo`.
fn unescape_mountinfo(field: &str) -> String {
    let b = field.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        let octal = b
            .get(i + 1..i + 4)
            .filter(|d| d.iter().all(|c| (b'0'..=b'7').contains(c)));
        match (b[i], octal) {
            (b'\\', Some(d)) => {
                out.push((d[0] - b'0') * 64 + (d[1] - b'0') * 8 + (d[2] - b'0'));
                i += 4;
            }
            (c, _) => {
                out.push(c);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn wait_empty(dir: &Path) -> bool {
        for _ in 0..500 {
            if std::fs::read_dir(dir)
                .map(|mut d| d.next().is_none())
                .unwrap_or(false)
            {
                return true;
            }
            std::thread::sleep(std::time::Duration::from_millis(10));
        }
        false
    }

    #[test]
    fn a_discarded_directory_is_gone_at_once_and_deleted_later() {
        let root = tempfile::tempdir().unwrap();
        let trash = root.path().join(DIR);
        empty(&trash).unwrap();
        let dir = root.path().join("c0ffee");
        std::fs::create_dir_all(dir.join("deep/er")).unwrap();
        std::fs::write(dir.join("deep/er/file"), b"x").unwrap();
        discard(&dir, &trash).unwrap();
        assert!(!dir.exists());
        assert!(wait_empty(&trash), "the trash is emptied");
        // a second removal of the same directory finds nothing to do
        discard(&dir, &trash).unwrap();
    }

    #[test]
    fn without_a_trash_the_directory_is_deleted_in_place() {
        let root = tempfile::tempdir().unwrap();
        let dir = root.path().join("c0ffee");
        std::fs::create_dir_all(dir.join("sub")).unwrap();
        discard(&dir, &root.path().join("no-such-trash")).unwrap();
        assert!(!dir.exists());
    }

    #[test]
    fn leftovers_of_an_earlier_run_are_emptied_at_start() {
        let root = tempfile::tempdir().unwrap();
        let trash = root.path().join(DIR);
        std::fs::create_dir_all(trash.join("old.1234/sub")).unwrap();
        empty(&trash).unwrap();
        assert!(trash.is_dir());
        assert!(wait_empty(&trash), "emptied in the background");
        // a fresh root has none
        let fresh = root.path().join("fresh");
        empty(&fresh).unwrap();
        assert!(fresh.is_dir());
    }

    #[test]
    fn mountinfo_escapes_are_read_back() {
        assert_eq!(unescape_mountinfo("/a\\040b\\011c"), "/a b\tc");
        assert_eq!(unescape_mountinfo("/plain\\x"), "/plain\\x");
    }

    /// A bind of a directory with data into a discarded container
    /// directory (root, as the suite runs): the data must survive.
    #[test]
    fn a_mount_below_a_discarded_directory_is_detached_not_emptied() {
        let root = tempfile::tempdir().unwrap();
        let trash = root.path().join(DIR);
        empty(&trash).unwrap();
        let precious = root.path().join("host-data");
        std::fs::create_dir_all(&precious).unwrap();
        std::fs::write(precious.join("keep"), b"x").unwrap();
        let dir = root.path().join("c0ffee");
        let target = dir.join("rootfs/host");
        std::fs::create_dir_all(&target).unwrap();
        nix::mount::mount(
            Some(&precious),
            &target,
            None::<&str>,
            nix::mount::MsFlags::MS_BIND,
            None::<&str>,
        )
        .unwrap();
        discard(&dir, &trash).unwrap();
        assert!(
            wait_empty(&trash),
            "the directory went once the mount was detached"
        );
        assert!(
            precious.join("keep").exists(),
            "nothing deleted through the mount"
        );
    }
}
