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
        // dockerd ignores the pause's failure (a container exiting meanwhile
        // is committed as it is) and the unpause's
        let paused_by_us = opts.pause
            && e.is_running()
            && !rec.state.paused
            && self.container_pause(&e.id).await.is_ok();
        let (upper, _) = self.overlay_dirs_of(&rec.id);
        let tmp = self.tmp_path("commit");
        let written = tokio::task::spawn_blocking({
            let tmp = tmp.clone();
            move || -> std::io::Result<()> {
                let f = std::fs::File::create(&tmp)?;
                if !upper.exists() {
                    // never started: nothing changed, an empty layer (two
                    // zero blocks end a tar)
                    return std::io::Write::write_all(&mut &f, &[0u8; 1024]);
                }
                berth_archive::diff::write_layer_tar(&upper, std::io::BufWriter::new(f))
            }
        })
        .await
        .map_err(|err| Error::Internal(err.into()));
        if paused_by_us {
            let _ = self.container_unpause(&e.id).await;
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
