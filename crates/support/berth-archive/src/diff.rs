//! A container's writable layer (overlayfs' upper directory) written back
//! as a layer tar in the Docker/OCI form, for `commit` and the builder.

use std::path::Path;

/// Writes the upper directory as a layer tar in the Docker/OCI form:
/// overlay whiteouts (0:0 character devices) become `.wh.NAME` files and
/// opaque directories get a `.wh..wh..opq` entry.
pub fn write_layer_tar(upper: &Path, out: impl std::io::Write) -> std::io::Result<()> {
    let mut b = tar::Builder::new(out);
    b.follow_symlinks(false);
    add_dir(&mut b, upper, Path::new(""))?;
    b.into_inner()?.flush()
}

pub fn is_opaque(p: &Path) -> bool {
    use std::os::unix::ffi::OsStrExt;
    let Ok(c) = std::ffi::CString::new(p.as_os_str().as_bytes()) else {
        return false;
    };
    let mut buf = [0u8; 4];
    for name in [c"trusted.overlay.opaque", c"user.overlay.opaque"] {
        // SAFETY: lgetxattr writes at most buf.len() bytes into buf
        let n = unsafe {
            libc::lgetxattr(
                c.as_ptr(),
                name.as_ptr(),
                buf.as_mut_ptr().cast(),
                buf.len(),
            )
        };
        if n == 1 && buf[0] == b'y' {
            return true;
        }
    }
    false
}

fn add_dir<W: std::io::Write>(
    b: &mut tar::Builder<W>,
    dir: &Path,
    rel: &Path,
) -> std::io::Result<()> {
    use std::os::unix::fs::{FileTypeExt, MetadataExt};
    let mut entries: Vec<_> = std::fs::read_dir(dir)?.flatten().collect();
    entries.sort_by_key(|e| e.file_name());
    for e in entries {
        let path = e.path();
        let name = rel.join(e.file_name());
        let md = std::fs::symlink_metadata(&path)?;
        if md.file_type().is_char_device() && md.rdev() == 0 {
            let wh = rel.join(format!(".wh.{}", e.file_name().to_string_lossy()));
            let mut h = tar::Header::new_gnu();
            h.set_size(0);
            h.set_mode(0o600);
            h.set_mtime(md.mtime().max(0) as u64);
            b.append_data(&mut h, &wh, std::io::empty())?;
            continue;
        }
        if md.file_type().is_char_device() || md.file_type().is_block_device() {
            // no layer berth unpacks keeps device nodes (the runtime makes
            // /dev), so none is written either
            tracing::debug!(path = %name.display(), "leaving a device node out of the layer");
            continue;
        }
        if md.file_type().is_fifo() {
            let mut h = tar::Header::new_gnu();
            h.set_metadata(&md);
            h.set_entry_type(tar::EntryType::Fifo);
            h.set_size(0);
            b.append_data(&mut h, &name, std::io::empty())?;
            continue;
        }
        if md.file_type().is_symlink() {
            let mut h = tar::Header::new_gnu();
            h.set_metadata(&md);
            crate::root::append_symlink(b, &mut h, &name, &std::fs::read_link(&path)?)?;
            continue;
        }
        b.append_path_with_name(&path, &name)?;
        if md.is_dir() {
            if is_opaque(&path) {
                let mut h = tar::Header::new_gnu();
                h.set_size(0);
                h.set_mode(0o600);
                b.append_data(&mut h, name.join(".wh..wh..opq"), std::io::empty())?;
            }
            add_dir(b, &path, &name)?;
        }
    }
    Ok(())
}
