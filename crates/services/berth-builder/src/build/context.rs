//! The build context: its Dockerfile and `.dockerignore`.

use super::*;

/// The largest Dockerfile or .dockerignore the builder reads.
pub(super) const MAX_CONTROL_FILE: u64 = 4 << 20;

/// A regular file of the context (resolved inside it: a symlink to
/// /dev/zero or a FIFO is no Dockerfile), or None when there is none.
pub(super) fn read_context_file(ctx: &Path, name: &str) -> Result<Option<String>> {
    let Some(path) =
        clean_rel(name).and_then(|p| berth_archive::rootpath::resolve(ctx, &p, true).ok())
    else {
        return Ok(None);
    };
    match std::fs::symlink_metadata(&path) {
        Ok(md) if md.is_file() && md.len() <= MAX_CONTROL_FILE => std::fs::read_to_string(&path)
            .map(Some)
            .map_err(|e| Error::invalid(format!("reading {name}: {e}"))),
        Ok(md) if md.is_file() => Err(Error::invalid(format!(
            "{name} is larger than {MAX_CONTROL_FILE} bytes"
        ))),
        _ => Ok(None),
    }
}

/// Removes a file of the context (resolved inside it), if it is there.
pub(super) fn remove_context_file(ctx: &Path, name: &str) {
    let Some(path) =
        clean_rel(name).and_then(|p| berth_archive::rootpath::resolve(ctx, &p, false).ok())
    else {
        return;
    };
    if let Err(e) = std::fs::remove_file(&path)
        && e.kind() != std::io::ErrorKind::NotFound
    {
        tracing::warn!(file = %name, error = %e, "removing an ignored file of the build context");
    }
}

/// Removes what .dockerignore excludes from the unpacked context (the
/// Dockerfile and .dockerignore stay readable to the builder).
pub(super) fn apply_dockerignore(
    ctx: &Path,
    ignore: &DockerIgnore,
    keep: &[&str],
) -> std::io::Result<()> {
    fn walk(dir: &Path, rel: &str, ignore: &DockerIgnore, keep: &[&str]) -> std::io::Result<()> {
        for e in std::fs::read_dir(dir)?.flatten() {
            let name = e.file_name().to_string_lossy().into_owned();
            let r = if rel.is_empty() {
                name.clone()
            } else {
                format!("{rel}/{name}")
            };
            let ft = e.file_type()?;
            if ignore.excluded(&r) && !keep.contains(&r.as_str()) {
                if ft.is_dir() && ignore.may_include_below(&r) {
                    walk(&e.path(), &r, ignore, keep)?;
                } else if ft.is_dir() {
                    std::fs::remove_dir_all(e.path())?;
                } else {
                    std::fs::remove_file(e.path())?;
                }
            } else if ft.is_dir() {
                walk(&e.path(), &r, ignore, keep)?;
            }
        }
        Ok(())
    }
    walk(ctx, "", ignore, keep)
}
