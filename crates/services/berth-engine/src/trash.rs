//! Directories of removed containers, deleted in the background.
//!
//! Freeing a container's files can take tens of milliseconds (on a
//! filesystem mounted with `discard` every freed extent is trimmed at
//! once), and `run --rm` would wait for it: the container is gone for its
//! clients as soon as its directories are renamed out of the way. Each
//! root keeps a trash directory on its own filesystem, emptied again when
//! the daemon starts, so a crash mid-deletion leaves nothing behind for long.

use std::io;
use std::path::Path;

/// The trash directory's name under the data root and the exec root.
pub(crate) const DIR: &str = "trash";

/// Deletes what an earlier run left in `trash` and makes it anew.
pub(crate) fn empty(trash: &Path) -> io::Result<()> {
    match std::fs::remove_dir_all(trash) {
        Err(e) if e.kind() != io::ErrorKind::NotFound => return Err(e),
        _ => {}
    }
    std::fs::create_dir_all(trash)
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

fn delete(doomed: &Path) {
    if let Err(e) = std::fs::remove_dir_all(doomed) {
        // emptied at the next start
        tracing::warn!(dir = %doomed.display(), error = %e, "deleting a removed container's files");
    }
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
        assert_eq!(std::fs::read_dir(&trash).unwrap().count(), 0);
    }
}
