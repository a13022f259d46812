//! `docker commit`: a container's writable layer becomes a new image layer
//! on top of its image, with the container's config (and `--change`s).

use std::path::Path;
use std::sync::Arc;

use anyhow::Context;
use oci_spec::image::{Config, HistoryBuilder, ImageConfiguration};

use crate::images::{ImageRecord, target_reference};
use crate::layers::chain_ids;
use crate::{Engine, Error, Result};

#[derive(Debug, Clone, Default)]
pub struct CommitOptions {
    pub repo: Option<String>,
    pub tag: Option<String>,
    pub comment: Option<String>,
    pub author: Option<String>,
    /// freeze a running container while its layer is read (default true)
    pub pause: bool,
    pub changes: Vec<String>,
}

/// Writes the upper directory as a layer tar in the Docker/OCI form:
/// overlay whiteouts (0:0 character devices) become `.wh.NAME` files and
/// opaque directories get a `.wh..wh..opq` entry.
pub(crate) fn write_layer_tar(upper: &Path, out: impl std::io::Write) -> std::io::Result<()> {
    let mut b = tar::Builder::new(out);
    b.follow_symlinks(false);
    add_dir(&mut b, upper, Path::new(""))?;
    b.into_inner()?.flush()
}

pub(crate) fn is_opaque(p: &Path) -> bool {
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
            crate::archive::append_symlink(b, &mut h, &name, &std::fs::read_link(&path)?)?;
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

/// The container's config as an image config (the fields an image keeps).
fn image_config_of(rec: &crate::containers::ContainerRecord) -> Result<Config> {
    let v = serde_json::to_value(&rec.config).context("encoding container config")?;
    let mut keep = serde_json::Map::new();
    for k in [
        "User",
        "Env",
        "Cmd",
        "Entrypoint",
        "WorkingDir",
        "Labels",
        "ExposedPorts",
        "Volumes",
        "StopSignal",
    ] {
        if let Some(x) = v.get(k).filter(|x| !x.is_null()) {
            keep.insert(k.to_string(), x.clone());
        }
    }
    serde_json::from_value(serde_json::Value::Object(keep))
        .map_err(|e| Error::Internal(anyhow::anyhow!("converting container config: {e}")))
}

impl Engine {
    pub async fn container_commit(
        self: &Arc<Self>,
        container: &str,
        opts: CommitOptions,
    ) -> Result<String> {
        let e = self.get(container)?;
        let target = target_reference(opts.repo.as_deref(), opts.tag.as_deref())?;
        let rec = e.record();
        let mut config = image_config_of(&rec)?;
        for c in &opts.changes {
            berth_image::changes::apply(&mut config, c)
                .map_err(|err| Error::invalid(format!("{err:#}")))?;
        }
        let base = self.resolve_image(&rec.image_id)?;
        let base_cfg = self.image_config(&base.id)?;
        let paused_by_us = opts.pause && e.is_running() && !rec.state.paused;
        if paused_by_us {
            self.container_pause(&e.id).await?;
        }
        let (upper, _) = self.overlay_dirs_of(&rec.id);
        let tmp = self.tmp_path("commit");
        let written = tokio::task::spawn_blocking({
            let tmp = tmp.clone();
            move || -> std::io::Result<()> {
                let f = std::fs::File::create(&tmp)?;
                write_layer_tar(&upper, std::io::BufWriter::new(f))
            }
        })
        .await
        .map_err(|err| Error::Internal(err.into()));
        if paused_by_us {
            self.container_unpause(&e.id).await?;
        }
        written?.map_err(|err| {
            Error::Internal(anyhow::Error::from(err).context("reading the container's changes"))
        })?;

        let this = self.clone();
        let tmp2 = tmp.clone();
        let id = tokio::task::spawn_blocking(move || {
            this.commit_blocking(&tmp2, &base, base_cfg, config, &rec, &opts, target)
        })
        .await
        .map_err(|err| Error::Internal(err.into()))?;
        let _ = std::fs::remove_file(&tmp);
        let id = id?;
        self.object_event("image", &id, "commit", &[]);
        Ok(id)
    }

    #[allow(clippy::too_many_arguments)]
    fn commit_blocking(
        &self,
        layer_tar: &Path,
        base: &ImageRecord,
        base_cfg: ImageConfiguration,
        config: Config,
        rec: &crate::containers::ContainerRecord,
        opts: &CommitOptions,
        target: Option<berth_image::Reference>,
    ) -> Result<String> {
        let f = std::fs::File::open(layer_tar)?;
        let (diff_id, _) = self
            .blobs
            .put_reader(std::io::BufReader::new(f), None)
            .map_err(|err| Error::Internal(err.context("storing the layer")))?;
        let parent = chain_ids(&base.diff_ids).last().cloned();
        let (layer, layer_op) = self
            .register_layer(parent.as_deref(), &diff_id)
            .map_err(|err| Error::Internal(err.context("registering the layer")))?;
        let now = crate::now_rfc3339();
        let mut created_by = vec![rec.path.clone()];
        created_by.extend(rec.args.iter().cloned());
        let mut hist = HistoryBuilder::default()
            .created(now.clone())
            .created_by(created_by.join(" "));
        if let Some(c) = opts.comment.clone().filter(|c| !c.is_empty()) {
            hist = hist.comment(c);
        }
        if let Some(a) = opts.author.clone().filter(|a| !a.is_empty()) {
            hist = hist.author(a);
        }
        let mut history = base_cfg.history().clone().unwrap_or_default();
        history.push(hist.build().context("building history")?);
        let mut diff_ids = base.diff_ids.clone();
        diff_ids.push(diff_id.to_string());
        let mut image = base_cfg.clone();
        let mut rootfs = image.rootfs().clone();
        rootfs.set_diff_ids(diff_ids.clone());
        image.set_rootfs(rootfs);
        image.set_history(Some(history));
        image.set_created(Some(now.clone()));
        image.set_config(Some(config));
        image.set_author(opts.author.clone().filter(|a| !a.is_empty()));
        let raw = serde_json::to_vec(&image).context("encoding image config")?;
        let id = self.blobs.put(&raw)?.to_string();
        let img = ImageRecord {
            id: id.clone(),
            diff_ids,
            size: base.size + layer.size,
            created: now.clone(),
            parent: base.id.clone(),
            last_tag_time: if target.is_some() { now } else { String::new() },
            repo_digests: vec![],
            build_key: String::new(),
        };
        self.store_image(img, layer_op, target)?;
        Ok(id)
    }
}
