//! Docker's copy-up: a volume that is still empty when a container first
//! mounts it gets what the image has at the mount's destination. The
//! engine does it for every volume at start, whatever its driver.

use std::path::Path;

use anyhow::Context;

/// Copies what the image has at `dest` into an empty volume, keeping
/// owners, modes and links (Docker's copy-up). Paths resolve inside the
/// container's root.
pub fn copy_up(rootfs: &Path, dest: &str, data: &Path) -> anyhow::Result<()> {
    if std::fs::read_dir(data)?.next().is_some() {
        return Ok(());
    }
    let Ok(src) = crate::rootpath::resolve(rootfs, Path::new(dest), true) else {
        return Ok(());
    };
    let Ok(meta) = std::fs::symlink_metadata(&src) else {
        return Ok(());
    };
    if !meta.is_dir() {
        return Ok(());
    }
    copy_tree(&src, data).with_context(|| format!("copying {dest} into the volume"))?;
    // the volume's root takes the owner and mode of the image's directory
    copy_attrs(&meta, data)?;
    Ok(())
}

fn copy_attrs(meta: &std::fs::Metadata, to: &Path) -> std::io::Result<()> {
    use std::os::unix::fs::{MetadataExt, PermissionsExt};
    std::os::unix::fs::lchown(to, Some(meta.uid()), Some(meta.gid()))?;
    if !meta.file_type().is_symlink() {
        std::fs::set_permissions(to, std::fs::Permissions::from_mode(meta.mode() & 0o7777))?;
    }
    Ok(())
}

pub fn copy_tree(from: &Path, to: &Path) -> std::io::Result<()> {
    for entry in std::fs::read_dir(from)? {
        let entry = entry?;
        let src = entry.path();
        let dst = to.join(entry.file_name());
        let meta = std::fs::symlink_metadata(&src)?;
        let ft = meta.file_type();
        if ft.is_dir() {
            std::fs::create_dir(&dst)?;
            copy_tree(&src, &dst)?;
        } else if ft.is_symlink() {
            std::os::unix::fs::symlink(std::fs::read_link(&src)?, &dst)?;
        } else if ft.is_file() {
            std::fs::copy(&src, &dst)?;
        } else {
            // devices, fifos and sockets are not copied into volumes
            continue;
        }
        copy_attrs(&meta, &dst)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn an_empty_volume_gets_the_image_directory_with_links_and_modes() {
        let root = tempfile::tempdir().expect("tempdir");
        let etc = root.path().join("etc/app");
        std::fs::create_dir_all(etc.join("conf.d")).expect("mkdir");
        std::fs::write(etc.join("conf.d/a.conf"), "x=1").expect("write");
        std::os::unix::fs::symlink("conf.d/a.conf", etc.join("current")).expect("link");
        std::fs::set_permissions(&etc, std::fs::Permissions::from_mode(0o750)).expect("chmod");
        let data = tempfile::tempdir().expect("tempdir");
        copy_up(root.path(), "/etc/app", data.path()).expect("copy up");
        let got = std::fs::read_to_string(data.path().join("conf.d/a.conf")).expect("read");
        assert_eq!(got, "x=1");
        let link = std::fs::read_link(data.path().join("current")).expect("link");
        assert_eq!(link, Path::new("conf.d/a.conf"));
        let mode = std::fs::metadata(data.path())
            .expect("stat")
            .permissions()
            .mode();
        assert_eq!(mode & 0o7777, 0o750);
    }

    #[test]
    fn a_volume_with_content_or_a_missing_source_is_left_alone() {
        let root = tempfile::tempdir().expect("tempdir");
        std::fs::create_dir_all(root.path().join("srv")).expect("mkdir");
        std::fs::write(root.path().join("srv/new"), "image").expect("write");
        let data = tempfile::tempdir().expect("tempdir");
        std::fs::write(data.path().join("old"), "volume").expect("write");
        copy_up(root.path(), "/srv", data.path()).expect("copy up");
        assert!(!data.path().join("new").exists());
        let empty = tempfile::tempdir().expect("tempdir");
        copy_up(root.path(), "/missing", empty.path()).expect("nothing to copy");
        assert_eq!(std::fs::read_dir(empty.path()).expect("ls").count(), 0);
    }
}
