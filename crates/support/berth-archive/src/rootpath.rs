//! Resolving a path inside a root directory the way the kernel would after
//! chroot(root): symlinks are followed, but `..` and absolute link targets
//! never leave the root. Every file access on behalf of a container or an
//! archive goes through here.

use std::ffi::OsStr;
use std::fs;
use std::io;
use std::path::{Component, Path, PathBuf};

const MAX_SYMLINKS: usize = 255;

/// Returns the host path of `path` (interpreted inside `root`), following
/// symlinks in every component except, when `follow_last` is false, the last.
/// Components that do not exist yet are kept as they are.
pub fn resolve(root: &Path, path: &Path, follow_last: bool) -> io::Result<PathBuf> {
    let mut todo: Vec<std::ffi::OsString> = components(path);
    todo.reverse();
    let mut resolved: Vec<std::ffi::OsString> = Vec::new();
    let mut hops = 0;
    while let Some(comp) = todo.pop() {
        if comp == OsStr::new("..") {
            resolved.pop();
            continue;
        }
        let is_last = todo.is_empty();
        let mut candidate = root.to_path_buf();
        candidate.extend(&resolved);
        candidate.push(&comp);
        match fs::symlink_metadata(&candidate) {
            Ok(md) if md.file_type().is_symlink() && (follow_last || !is_last) => {
                hops += 1;
                if hops > MAX_SYMLINKS {
                    return Err(io::Error::other("too many levels of symbolic links"));
                }
                let target = fs::read_link(&candidate)?;
                if target.is_absolute() {
                    resolved.clear();
                }
                let mut more = components(&target);
                more.reverse();
                todo.extend(more);
            }
            _ => resolved.push(comp),
        }
    }
    let mut out = root.to_path_buf();
    out.extend(&resolved);
    Ok(out)
}

/// Normal components of a path; "." and the root are dropped, ".." kept.
fn components(p: &Path) -> Vec<std::ffi::OsString> {
    p.components()
        .filter_map(|c| match c {
            Component::Normal(s) => Some(s.to_os_string()),
            Component::ParentDir => Some("..".into()),
            _ => None,
        })
        .collect()
}

/// Normalizes an archive member name into a relative path inside the
/// root, or None when it would climb out of it ("../x", "a/../../x").
pub fn clean_relative(name: &Path) -> Option<PathBuf> {
    let mut out: Vec<&OsStr> = Vec::new();
    for c in name.components() {
        match c {
            Component::Normal(s) => out.push(s),
            Component::ParentDir => {
                out.pop()?;
            }
            _ => {}
        }
    }
    Some(out.iter().collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::symlink;

    #[test]
    fn symlinks_stay_inside_root() {
        let d = tempfile::tempdir().unwrap();
        let root = d.path();
        fs::create_dir_all(root.join("bin")).unwrap();
        fs::write(root.join("bin/busybox"), b"x").unwrap();
        symlink("/bin/busybox", root.join("bin/sh")).unwrap();
        symlink("../../../../etc", root.join("escape")).unwrap();
        symlink("/", root.join("slash")).unwrap();
        assert_eq!(
            resolve(root, Path::new("/bin/sh"), true).unwrap(),
            root.join("bin/busybox")
        );
        assert_eq!(
            resolve(root, Path::new("/bin/sh"), false).unwrap(),
            root.join("bin/sh")
        );
        assert_eq!(
            resolve(root, Path::new("escape/passwd"), true).unwrap(),
            root.join("etc/passwd")
        );
        assert_eq!(
            resolve(root, Path::new("/slash/../../x"), true).unwrap(),
            root.join("x")
        );
        symlink("loop", root.join("loop")).unwrap();
        assert!(resolve(root, Path::new("loop"), true).is_err());
    }

    #[test]
    fn clean_relative_refuses_escapes() {
        assert_eq!(
            clean_relative(Path::new("/a/./b")).unwrap(),
            PathBuf::from("a/b")
        );
        assert_eq!(
            clean_relative(Path::new("a/../b")).unwrap(),
            PathBuf::from("b")
        );
        assert!(clean_relative(Path::new("../x")).is_none());
        assert!(clean_relative(Path::new("a/../../x")).is_none());
    }
}
