//! `--squash`: the layers a build added, merged into one.

use super::*;

impl Builder {
    /// `--squash`: the layers the build added above its base, merged into
    /// one; the history keeps every step (marked empty) plus a merge entry.
    pub(super) async fn squash(
        &self,
        image: &ImageRecord,
        base_layers: usize,
        base_id: &str,
    ) -> Result<ImageRecord> {
        let this = self.clone();
        let (image, base_id) = (image.clone(), base_id.to_string());
        tokio::task::spawn_blocking(move || this.squash_blocking(&image, base_layers, &base_id))
            .await
            .map_err(|e| Error::Internal(e.into()))?
    }

    pub(super) fn squash_blocking(
        &self,
        image: &ImageRecord,
        base_layers: usize,
        base_id: &str,
    ) -> Result<ImageRecord> {
        let work = self.host.tmp_path("squash");
        let staging = work.join("merged");
        std::fs::create_dir_all(&staging)?;
        let res = (|| -> Result<ImageRecord> {
            let chains = chain_ids(&image.diff_ids);
            for chain in &chains[base_layers..] {
                merge_layer_dir(&self.host.layer_dir(chain), &staging).map_err(|e| {
                    Error::Internal(anyhow::Error::from(e).context("merging layers"))
                })?;
            }
            let tar = work.join("layer.tar");
            let f = std::fs::File::create(&tar)?;
            berth_archive::diff::write_layer_tar(&staging, std::io::BufWriter::new(f))?;
            let mut config = self.host.image_config(&image.id)?;
            let base_history = if base_id.is_empty() {
                0
            } else {
                self.host
                    .image_config(base_id)?
                    .get("history")
                    .and_then(Value::as_array)
                    .map_or(0, Vec::len)
            };
            let merged_onto = if base_id.is_empty() {
                "scratch"
            } else {
                base_id
            };
            if let Some(list) = config.get_mut("history").and_then(Value::as_array_mut) {
                for h in list.iter_mut().skip(base_history) {
                    if let Some(o) = h.as_object_mut() {
                        o.insert("empty_layer".into(), json!(true));
                    }
                }
                list.push(json!({
                    "created": berth_core::now_rfc3339(),
                    "comment": format!("merge {} to {merged_onto}", image.id),
                }));
            }
            let base_size = self.host.image(base_id).map_or(0, |b| b.size);
            let base = ImageRecord {
                id: base_id.to_string(),
                diff_ids: image.diff_ids[..base_layers].to_vec(),
                size: base_size,
                ..Default::default()
            };
            // the merge entry is in the history already: no step entry
            let keep = (&StepText::default(), "");
            self.store_step_image(Some(&base), config, Some(StepLayer::Tar(&tar)), keep, "")
        })();
        let _ = std::fs::remove_dir_all(&work);
        res
    }
}

/// Applies one unpacked layer directory on top of `dst`, the way overlayfs
/// would stack it: a whiteout removes what is below and stays a whiteout
/// (it may hide a file of the base), an opaque directory replaces the
/// directory below, everything else is hard-linked over.
pub(super) fn merge_layer_dir(src: &Path, dst: &Path) -> std::io::Result<()> {
    use std::os::unix::fs::{FileTypeExt, MetadataExt, PermissionsExt};
    let remove_existing = |d: &Path| -> std::io::Result<()> {
        match std::fs::symlink_metadata(d) {
            Ok(m) if m.is_dir() => std::fs::remove_dir_all(d),
            Ok(_) => std::fs::remove_file(d),
            Err(_) => Ok(()),
        }
    };
    for e in std::fs::read_dir(src)?.flatten() {
        let s = e.path();
        let d = dst.join(e.file_name());
        let md = std::fs::symlink_metadata(&s)?;
        if md.file_type().is_char_device() && md.rdev() == 0 {
            remove_existing(&d)?;
            nix::sys::stat::mknod(
                &d,
                nix::sys::stat::SFlag::S_IFCHR,
                nix::sys::stat::Mode::from_bits_truncate(0o600),
                0,
            )
            .map_err(std::io::Error::from)?;
        } else if md.is_dir() {
            let opaque = berth_archive::diff::is_opaque(&s);
            let below_not_dir = std::fs::symlink_metadata(&d).is_ok_and(|m| !m.is_dir());
            if opaque || below_not_dir {
                remove_existing(&d)?;
            }
            if std::fs::symlink_metadata(&d).is_err() {
                std::fs::create_dir(&d)?;
            }
            std::fs::set_permissions(&d, std::fs::Permissions::from_mode(md.mode() & 0o7777))?;
            std::os::unix::fs::lchown(&d, Some(md.uid()), Some(md.gid()))?;
            if opaque {
                set_opaque(&d)?;
            }
            merge_layer_dir(&s, &d)?;
        } else {
            remove_existing(&d)?;
            std::fs::hard_link(&s, &d)?;
        }
    }
    Ok(())
}

pub(super) fn set_opaque(dir: &Path) -> std::io::Result<()> {
    use std::os::unix::ffi::OsStrExt;
    let c = std::ffi::CString::new(dir.as_os_str().as_bytes()).map_err(std::io::Error::other)?;
    // SAFETY: valid C strings and a one-byte value
    let rc = unsafe {
        libc::lsetxattr(
            c.as_ptr(),
            c"trusted.overlay.opaque".as_ptr(),
            b"y".as_ptr().cast(),
            1,
            0,
        )
    };
    if rc != 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok(())
}
