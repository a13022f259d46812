//! Tar archives in and out of berth. Every archive is treated as hostile:
//! member names are cleaned and resolved inside their root, nothing is
//! followed out of it, and a broken archive is an error that names what is
//! wrong (the callers answer 400), never a partial result.
//!
//! - `layer`: image layers unpacked for overlayfs (whiteouts, opaque dirs);
//! - `diff`: a container's writable layer written back as a layer tar;
//! - `root`: a container's files read and written as tar streams through
//!   descriptors (`cp`, `export`, build contexts);
//! - `sparse`: sparse members, in GNU's and the PAX formats;
//! - `rootpath`: resolving a path inside a root as after chroot.

pub mod copyup;
pub mod diff;
pub mod glob;
pub mod layer;
pub mod root;
pub mod rootpath;
pub mod sparse;

/// Bytes under `p` (a file's length, or the sum over a tree), links not
/// followed; what cannot be read counts as nothing.
pub fn dir_size(p: &std::path::Path) -> u64 {
    let Ok(md) = std::fs::symlink_metadata(p) else {
        return 0;
    };
    if !md.is_dir() {
        return md.len();
    }
    std::fs::read_dir(p)
        .map(|rd| rd.flatten().map(|e| dir_size(&e.path())).sum())
        .unwrap_or(0)
}
