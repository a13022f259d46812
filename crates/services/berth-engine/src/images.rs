//! The image service: import, list, inspect, delete, and resolving the
//! names users give (tags, full and short ids).

use std::collections::{BTreeMap, HashMap};
use std::path::Path;
use std::sync::Arc;

use anyhow::Context;
use berth_core::verify::{ImageOrigin, ImageToVerify};
use berth_image::Reference;
use berth_store::{Digest, MetadataStore, MetadataStoreExt, Table, WriteOp};
use oci_spec::image::{Arch, Config, HistoryBuilder, ImageConfiguration, Os, RootFsBuilder};

use crate::layers::chain_ids;
use crate::{Engine, Error, LockExt, Result};
use berth_archive::glob::glob_match;
pub use berth_core::image::{ImageRecord, short_id};

#[derive(Default)]
pub struct ImageIndex {
    pub images: HashMap<String, ImageRecord>,
    /// normalized reference -> image id
    pub tags: BTreeMap<String, String>,
}

impl ImageIndex {
    pub fn load(meta: &dyn MetadataStore) -> anyhow::Result<Self> {
        let mut idx = ImageIndex::default();
        for (id, rec) in meta.list_json::<ImageRecord>(Table::Images)? {
            idx.images.insert(id, rec);
        }
        for (r, v) in meta.list_raw(Table::Tags)? {
            let id: String = serde_json::from_slice(&v).unwrap_or_default();
            if idx.images.contains_key(&id) {
                idx.tags.insert(r, id);
            }
        }
        Ok(idx)
    }

    /// Finds an image by reference, full id, or unique id prefix (with or
    /// without "sha256:"); an ambiguous prefix finds none.
    pub fn resolve(&self, name: &str) -> Result<ImageRecord> {
        let by_prefix = |hex: &str| -> Option<&ImageRecord> {
            let mut m = self
                .images
                .values()
                .filter(|i| i.id.trim_start_matches("sha256:").starts_with(hex));
            match (m.next(), m.next()) {
                (Some(one), None) => Some(one),
                _ => None,
            }
        };
        if let Some(hex) = name.strip_prefix("sha256:") {
            return (!hex.is_empty())
                .then(|| by_prefix(hex))
                .flatten()
                .cloned()
                .ok_or_else(|| Error::not_found(format!("No such image: {name}")));
        }
        if let Ok(r) = Reference::parse(name)
            && let Some(id) = self.tags.get(&r.to_string())
            && let Some(img) = self.images.get(id)
        {
            return Ok(img.clone());
        }
        if name.len() >= 4
            && name.len() <= 64
            && name.bytes().all(|b| b.is_ascii_hexdigit())
            && let Some(img) = by_prefix(name)
        {
            return Ok(img.clone());
        }
        match Reference::parse(name) {
            Ok(r) => Err(Error::not_found(format!("No such image: {}", r.familiar()))),
            Err(e) => Err(Error::invalid(e.to_string())),
        }
    }

    /// Tags of an image in docker's familiar form, sorted.
    pub fn repo_tags(&self, id: &str) -> Vec<String> {
        let mut v: Vec<String> = self.repo_refs(id).iter().map(|r| r.familiar()).collect();
        v.sort();
        v
    }

    /// Tags of an image, parsed.
    fn repo_refs(&self, id: &str) -> Vec<Reference> {
        self.tags
            .iter()
            .filter(|(_, i)| i.as_str() == id)
            .filter_map(|(r, _)| Reference::parse(r).ok())
            .collect()
    }
}

#[derive(Debug, Clone, Default)]
pub struct ImportOptions {
    /// "name[:tag]" to tag the result with
    pub repo: Option<String>,
    pub tag: Option<String>,
    pub changes: Vec<String>,
    pub message: Option<String>,
}

/// One line of the answer to an image delete.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ImageDeleteItem {
    Untagged(String),
    Deleted(String),
}

/// One image as `docker images` lists it.
#[derive(Debug, Clone)]
pub struct ImageSummaryView {
    pub record: ImageRecord,
    /// familiar and sorted
    pub repo_tags: Vec<String>,
    /// the record's creation time in seconds since the epoch
    pub created: i64,
    /// the labels of the image's config
    pub labels: HashMap<String, String>,
    /// how many containers use the image
    pub containers: i64,
}

/// One line of an image's history, newest first.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImageHistoryView {
    /// the image's id on the newest line; None on the older ones, whose
    /// layers have no image of their own
    pub id: Option<String>,
    /// seconds since the epoch
    pub created: i64,
    pub created_by: String,
    /// the image's tags on the newest line
    pub tags: Vec<String>,
    /// the size of the layer the step made (0 for an empty layer)
    pub size: i64,
    pub comment: String,
}

/// What `docker image inspect` shows of an image.
#[derive(Debug, Clone)]
pub struct ImageDetails {
    pub record: ImageRecord,
    /// familiar and sorted
    pub repo_tags: Vec<String>,
    /// the comment of the newest history entry
    pub comment: String,
    pub author: String,
    /// the `config` object of the config blob as stored: Healthcheck,
    /// OnBuild and Shell are Docker's fields that the OCI config type does
    /// not carry
    pub config: Option<serde_json::Value>,
    pub architecture: String,
    pub os: String,
    /// the blob's `docker_version`, empty when another tool made it
    pub docker_version: String,
    /// the blob's `container` and `container_config`: what Docker's
    /// classic builder recorded of the container that made the image
    pub container: String,
    pub container_config: Option<serde_json::Value>,
    /// the image's layer directories, the top one first
    pub layer_dirs: Vec<String>,
}

/// The `repo[:tag]` an import or commit tags its image with ("latest"
/// when no tag is given); None without a repository.
pub(crate) fn target_reference(repo: Option<&str>, tag: Option<&str>) -> Result<Option<Reference>> {
    let Some(repo) = repo.filter(|r| !r.is_empty()) else {
        return Ok(None);
    };
    // the distribution library's ParseNormalizedNamed: a full image id is
    // never a repository name
    if repo.len() == 64 && repo.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')) {
        return Err(Error::invalid(format!(
            "invalid repository name ({repo}), cannot specify 64-byte hexadecimal strings"
        )));
    }
    let mut r = Reference::parse_name_only(repo).map_err(|e| Error::invalid(e.to_string()))?;
    if let Some(t) = tag.filter(|t| !t.is_empty()) {
        berth_image::reference::validate_tag(t).map_err(|e| Error::invalid(e.to_string()))?;
        r.tag = Some(t.to_string());
    }
    if r.digest.is_some() {
        return Err(Error::invalid("cannot import digest reference"));
    }
    if r.tag.is_none() {
        r.tag = Some("latest".into());
    }
    Ok(Some(r))
}

impl Engine {
    /// Finds an image by reference, full id, or unique id prefix.
    pub fn resolve_image(&self, name: &str) -> Result<ImageRecord> {
        self.images.r().resolve(name)
    }

    /// `docker tag`: one more name for an image (moving the name when it
    /// was another image's).
    pub fn image_tag(&self, source: &str, repo: &str, tag: Option<&str>) -> Result<()> {
        // the new name is checked before the image is looked up, as dockerd
        let target = target_reference(Some(repo), tag)?
            .ok_or_else(|| Error::invalid("repository name must have at least one component"))?;
        // "sha256:<hex>" would read as an image id
        if target.familiar_name() == "sha256" {
            return Err(Error::invalid(
                "refusing to create an ambiguous tag using digest algorithm as name",
            ));
        }
        let img = self.resolve_image(source)?;
        let key = target.to_string();
        let tag_op = WriteOp::put_json(Table::Tags, &key, &img.id)?;
        self.update_image(&img.id, vec![tag_op], |r| {
            r.last_tag_time = crate::now_rfc3339()
        })?;
        self.images.w().tags.insert(key, img.id.clone());
        self.object_event("image", &img.id, "tag", &[("name", target.familiar())]);
        Ok(())
    }

    /// Changes an image's record, written in one transaction with `ops`.
    pub(crate) fn update_image(
        &self,
        id: &str,
        mut ops: Vec<WriteOp>,
        change: impl FnOnce(&mut ImageRecord),
    ) -> Result<()> {
        let mut idx = self.images.w();
        let Some(mut next) = idx.images.get(id).cloned() else {
            self.meta.write(ops)?;
            return Ok(());
        };
        change(&mut next);
        ops.push(WriteOp::put_json(Table::Images, id, &next)?);
        self.meta.write(ops)?;
        idx.images.insert(id.to_string(), next);
        Ok(())
    }

    /// The config blob as JSON, every field kept.
    pub fn image_config_raw(&self, id: &str) -> Result<serde_json::Value> {
        let raw = self.blobs.read(&Digest::parse(id)?)?;
        Ok(serde_json::from_slice(&raw)
            .with_context(|| format!("decoding config of image {id}"))?)
    }

    pub fn image_config(&self, id: &str) -> Result<ImageConfiguration> {
        let d = Digest::parse(id)?;
        let raw = self.blobs.read(&d)?;
        Ok(serde_json::from_slice(&raw)
            .with_context(|| format!("decoding config of image {id}"))?)
    }

    /// `docker import`: one layer from a (possibly gzip-compressed) tar file.
    pub async fn import_image(
        self: &Arc<Self>,
        src: std::path::PathBuf,
        opts: ImportOptions,
    ) -> Result<String> {
        let id = self.import_image_inner(src, opts).await?;
        self.object_event("image", &id, "import", &[]);
        Ok(id)
    }

    async fn import_image_inner(
        self: &Arc<Self>,
        src: std::path::PathBuf,
        opts: ImportOptions,
    ) -> Result<String> {
        let target = target_reference(opts.repo.as_deref(), opts.tag.as_deref())?;
        let mut config = Config::default();
        for c in &opts.changes {
            berth_image::changes::apply(&mut config, c)
                .map_err(|e| Error::invalid(format!("{e:#}")))?;
        }
        let this = self.clone();
        let message = opts.message.clone();
        tokio::task::spawn_blocking(move || this.import_blocking(&src, config, message, target))
            .await
            .map_err(|e| Error::Internal(anyhow::anyhow!("import task failed: {e}")))?
    }

    fn import_blocking(
        &self,
        src: &Path,
        config: Config,
        message: Option<String>,
        target: Option<Reference>,
    ) -> Result<String> {
        let reader = berth_image::compression::decompress(std::fs::File::open(src)?)?;
        let (diff_id, _) = self
            .blobs
            .put_reader(reader, None)
            .map_err(|e| Error::invalid(format!("{e:#}")))?;
        let (layer, layer_op) = self
            .register_layer(None, &diff_id)
            .map_err(|e| Error::invalid(format!("importing layer: {e:#}")))?;

        let now = crate::now_rfc3339();
        let comment = message
            .filter(|m| !m.is_empty())
            .unwrap_or_else(|| "Imported from -".into());
        let history = HistoryBuilder::default()
            .created(now.clone())
            .comment(comment)
            .build()
            .context("building history")?;
        let rootfs = RootFsBuilder::default()
            .typ("layers")
            .diff_ids(vec![diff_id.to_string()])
            .build()
            .context("building rootfs")?;
        let mut image = ImageConfiguration::default();
        image.set_created(Some(now.clone()));
        image.set_architecture(Arch::Amd64);
        image.set_os(Os::Linux);
        image.set_config(Some(config));
        image.set_rootfs(rootfs);
        image.set_history(Some(vec![history]));
        let raw = serde_json::to_vec(&image).context("encoding image config")?;
        let id = self.blobs.put(&raw)?.to_string();
        self.verify_image(&ImageToVerify {
            origin: ImageOrigin::Import,
            reference: target.as_ref().map(|t| t.to_string()).as_deref(),
            manifest_digest: None,
            config_digest: &id,
        })?;

        let rec = ImageRecord {
            id: id.clone(),
            diff_ids: vec![diff_id.to_string()],
            size: layer.size,
            created: now.clone(),
            parent: String::new(),
            last_tag_time: if target.is_some() { now } else { String::new() },
            repo_digests: vec![],
            build_key: String::new(),
        };
        self.store_image(rec, layer_op, target)?;
        Ok(id)
    }

    /// Records a new image (with its new layer and tag, if any) in one
    /// transaction, then in the index.
    pub(crate) fn store_image(
        &self,
        rec: ImageRecord,
        layer_op: Option<WriteOp>,
        target: Option<Reference>,
    ) -> Result<()> {
        self.store_image_ops(rec, layer_op.into_iter().collect(), target)
    }

    pub(crate) fn store_image_ops(
        &self,
        rec: ImageRecord,
        mut ops: Vec<WriteOp>,
        target: Option<Reference>,
    ) -> Result<()> {
        ops.push(WriteOp::put_json(Table::Images, &rec.id, &rec)?);
        if let Some(t) = &target {
            ops.push(WriteOp::put_json(Table::Tags, &t.to_string(), &rec.id)?);
        }
        let mut idx = self.images.w();
        self.meta.write(ops)?;
        if let Some(t) = target {
            idx.tags.insert(t.to_string(), rec.id.clone());
        }
        idx.images.insert(rec.id.clone(), rec);
        Ok(())
    }

    pub fn image_list(
        &self,
        all: bool,
        filters: &HashMap<String, Vec<String>>,
    ) -> Result<Vec<ImageSummaryView>> {
        let f = self.image_filter(filters)?;
        let in_use = self.image_use_counts();
        let idx = self.images.r();
        let parents: std::collections::HashSet<&str> =
            idx.images.values().map(|i| i.parent.as_str()).collect();
        let mut out: Vec<ImageSummaryView> = idx
            .images
            .values()
            // untagged images that others build on are build steps: shown
            // with -a only, as Docker's intermediate images
            .filter(|img| {
                all || !parents.contains(img.id.as_str()) || !idx.repo_tags(&img.id).is_empty()
            })
            .filter(|img| f.matches(img, &idx))
            .map(|img| {
                // as dockerd: with a reference filter, only the tags it
                // matched are listed
                let tags = f.listed_tags(img, &idx);
                let labels = self
                    .image_config(&img.id)
                    .ok()
                    .and_then(|c| c.config().as_ref().and_then(|c| c.labels().clone()))
                    .unwrap_or_default();
                ImageSummaryView {
                    record: img.clone(),
                    repo_tags: tags,
                    created: parse_time(&img.created),
                    labels,
                    containers: in_use.get(&img.id).copied().unwrap_or(0),
                }
            })
            .collect();
        out.sort_by(|a, b| {
            b.created
                .cmp(&a.created)
                .then(a.record.id.cmp(&b.record.id))
        });
        Ok(out)
    }

    fn image_filter(&self, filters: &HashMap<String, Vec<String>>) -> Result<ImageFilter> {
        let mut f = ImageFilter::default();
        for (k, vals) in filters {
            match k.as_str() {
                "dangling" => {
                    for v in vals {
                        f.dangling = Some(match v.as_str() {
                            "true" | "1" => true,
                            "false" | "0" => false,
                            _ => {
                                return Err(Error::invalid(format!(
                                    "invalid filter 'dangling={v}'"
                                )));
                            }
                        });
                    }
                }
                "label" => f.labels.extend(vals.iter().cloned()),
                "reference" => f.references.extend(vals.iter().cloned()),
                "before" | "since" => {
                    for v in vals {
                        let img = self.resolve_image(v)?;
                        let t = parse_time_nanos(&img.created);
                        if k == "before" {
                            f.before = Some(f.before.map_or(t, |b: i128| b.min(t)));
                        } else {
                            f.since = Some(f.since.map_or(t, |s: i128| s.max(t)));
                        }
                    }
                }
                "until" => {
                    for v in vals {
                        f.until = Some(crate::containers::parse_until(v)? as i128 * 1_000_000_000);
                    }
                }
                other => return Err(Error::invalid(format!("invalid filter '{other}'"))),
            }
        }
        if !f.labels.is_empty() {
            f.label_of = Some(
                self.images
                    .r()
                    .images
                    .keys()
                    .map(|id| {
                        let labels = self
                            .image_config(id)
                            .ok()
                            .and_then(|c| c.config().as_ref().and_then(|c| c.labels().clone()))
                            .unwrap_or_default();
                        (id.clone(), labels)
                    })
                    .collect(),
            );
        }
        Ok(f)
    }

    /// GET /images/{name}/history: newest first, one entry per history
    /// item, with the size of the layer it made.
    pub fn image_history(&self, name: &str) -> Result<Vec<ImageHistoryView>> {
        let img = self.resolve_image(name)?;
        let cfg = self.image_config(&img.id)?;
        let chains = chain_ids(&img.diff_ids);
        let mut sizes = chains.iter().map(|c| {
            self.meta
                .get_json::<crate::layers::LayerRecord>(Table::Layers, c)
                .ok()
                .flatten()
                .map(|l| l.size as i64)
                .unwrap_or(0)
        });
        let mut out: Vec<ImageHistoryView> = cfg
            .history()
            .clone()
            .unwrap_or_default()
            .iter()
            .map(|h| ImageHistoryView {
                id: None,
                created: h.created().as_deref().map(parse_time).unwrap_or(0),
                created_by: h.created_by().clone().unwrap_or_default(),
                tags: vec![],
                size: if h.empty_layer().unwrap_or(false) {
                    0
                } else {
                    sizes.next().unwrap_or(0)
                },
                comment: h.comment().clone().unwrap_or_default(),
            })
            .collect();
        if out.is_empty() {
            out.push(ImageHistoryView {
                id: None,
                created: parse_time(&img.created),
                created_by: String::new(),
                tags: vec![],
                size: img.size as i64,
                comment: String::new(),
            });
        }
        out.reverse();
        out[0].id = Some(img.id.clone());
        out[0].tags = self.images.r().repo_tags(&img.id);
        Ok(out)
    }

    /// POST /images/prune: dangling images (all unused ones with
    /// `dangling=false`) that no container uses.
    pub fn image_prune(
        &self,
        filters: &HashMap<String, Vec<String>>,
    ) -> Result<(Vec<ImageDeleteItem>, u64)> {
        let mut filters = filters.clone();
        let dangling_only = match filters.remove("dangling").as_deref() {
            None => true,
            Some([v]) if v == "true" || v == "1" => true,
            Some([v]) if v == "false" || v == "0" => false,
            Some(v) => {
                return Err(Error::invalid(format!(
                    "invalid filter 'dangling={}'",
                    v.join(",")
                )));
            }
        };
        for k in filters.keys() {
            if k != "until" && k != "label" && k != "label!" {
                return Err(Error::invalid(format!("invalid filter '{k}'")));
            }
        }
        let not_labels = filters.remove("label!").unwrap_or_default();
        let f = self.image_filter(&filters)?;
        let in_use = self.image_use_counts();
        let victims: Vec<(String, u64)> = {
            let idx = self.images.r();
            let parents: std::collections::HashSet<&str> =
                idx.images.values().map(|i| i.parent.as_str()).collect();
            idx.images
                .values()
                .filter(|img| !in_use.contains_key(&img.id))
                // build steps go with the image on top of them
                .filter(|img| !parents.contains(img.id.as_str()))
                .filter(|img| !dangling_only || idx.repo_tags(&img.id).is_empty())
                .filter(|img| f.matches(img, &idx))
                .filter(|img| {
                    not_labels.is_empty() || {
                        let labels = f.labels_of(&img.id).cloned().unwrap_or_else(|| {
                            self.image_config(&img.id)
                                .ok()
                                .and_then(|c| c.config().as_ref().and_then(|c| c.labels().clone()))
                                .unwrap_or_default()
                        });
                        !not_labels
                            .iter()
                            .any(|w| crate::labels_match(&labels, std::slice::from_ref(w)))
                    }
                })
                .map(|img| (img.id.clone(), img.size))
                .collect()
        };
        let mut items = Vec::new();
        let mut reclaimed = 0;
        for (id, size) in victims {
            if !self.images.r().images.contains_key(&id) {
                continue;
            }
            match self.image_delete(&id, true, true) {
                Ok(mut it) => {
                    if it.iter().any(|i| matches!(i, ImageDeleteItem::Deleted(_))) {
                        reclaimed += size;
                    }
                    items.append(&mut it);
                }
                Err(e) => tracing::warn!("prune: removing image {id}: {e}"),
            }
        }
        self.object_event(
            "image",
            "",
            "prune",
            &[("reclaimed", reclaimed.to_string())],
        );
        Ok((items, reclaimed))
    }

    pub fn image_inspect(&self, name: &str) -> Result<ImageDetails> {
        let img = self.resolve_image(name)?;
        let cfg = self.image_config(&img.id)?;
        // from the raw blob: Healthcheck, OnBuild and Shell are Docker's
        // fields that the OCI config type does not carry
        let raw = self.image_config_raw(&img.id).ok().unwrap_or_default();
        let config = raw.get("config").cloned().filter(|c| c.is_object());
        let raw_str = |key: &str| {
            raw.get(key)
                .and_then(|v| v.as_str())
                .unwrap_or("")
                .to_string()
        };
        let comment = cfg
            .history()
            .as_ref()
            .and_then(|h| h.last())
            .and_then(|h| h.comment().clone())
            .unwrap_or_default();
        let repo_tags = self.images.r().repo_tags(&img.id);
        Ok(ImageDetails {
            repo_tags,
            comment,
            author: cfg.author().clone().unwrap_or_default(),
            config,
            architecture: cfg.architecture().to_string(),
            os: cfg.os().to_string(),
            docker_version: raw_str("docker_version"),
            container: raw_str("container"),
            container_config: raw
                .get("container_config")
                .cloned()
                .filter(|c| c.is_object()),
            layer_dirs: chain_ids(&img.diff_ids)
                .iter()
                .rev()
                .map(|c| self.layer_dir(c).display().to_string())
                .collect(),
            record: img,
        })
    }

    fn image_use_counts(&self) -> HashMap<String, i64> {
        let mut m = HashMap::new();
        for e in self.containers.r().values() {
            *m.entry(e.image_id()).or_insert(0) += 1;
        }
        m
    }

    /// `docker rmi`: untag by reference; delete when no tag and no container
    /// is left (or with force).
    pub fn image_delete(
        &self,
        name: &str,
        force: bool,
        prune: bool,
    ) -> Result<Vec<ImageDeleteItem>> {
        let id = self.resolve_image(name)?.id;
        let items = self.image_delete_inner(name, force, prune)?;
        for item in &items {
            match item {
                ImageDeleteItem::Untagged(r) => {
                    self.object_event("image", &id, "untag", &[("name", r.clone())])
                }
                ImageDeleteItem::Deleted(d) => {
                    self.object_event("image", d, "delete", &[("name", d.clone())])
                }
            }
        }
        Ok(items)
    }

    fn image_delete_inner(
        &self,
        name: &str,
        force: bool,
        prune: bool,
    ) -> Result<Vec<ImageDeleteItem>> {
        let img = self.resolve_image(name)?;
        let has_children = self.images.r().images.values().any(|i| i.parent == img.id);
        let by_ref = Reference::parse(name).ok().filter(|r| {
            self.images.r().tags.get(&r.to_string()) == Some(&img.id)
                && !name.starts_with("sha256:")
        });
        let users: Vec<(String, bool)> = self
            .containers
            .r()
            .values()
            .filter(|e| e.image_id() == img.id)
            .map(|e| (e.id.clone(), e.is_running()))
            .collect();
        let mut out = Vec::new();
        let mut ops = Vec::new();
        let tags = self.images.r().repo_tags(&img.id);
        let mut remaining_tags = tags.len();
        if let Some(r) = &by_ref {
            // with other tags left, removing one is only an untag
            if tags.len() > 1 {
                ops.push(WriteOp::Delete(Table::Tags, r.to_string()));
                self.meta.write(ops)?;
                self.images.w().tags.remove(&r.to_string());
                return Ok(vec![ImageDeleteItem::Untagged(r.familiar())]);
            }
            if let Some((cid, _)) = users.first()
                && !force
            {
                return Err(Error::conflict(format!(
                    "conflict: unable to remove repository reference \"{name}\" (must force) - container {} is using its referenced image {}",
                    &cid[..12],
                    short_id(&img.id)
                )));
            }
        } else {
            if has_children && tags.is_empty() {
                return Err(Error::conflict(format!(
                    "conflict: unable to delete {} (cannot be forced) - image has dependent child images",
                    short_id(&img.id)
                )));
            }
            if tags.len() > 1 && !force {
                return Err(Error::conflict(format!(
                    "conflict: unable to delete {} (must be forced) - image is referenced in multiple repositories",
                    short_id(&img.id)
                )));
            }
            if let Some((cid, running)) = users.first() {
                let how = if *running {
                    "cannot be forced"
                } else {
                    "must be forced"
                };
                let state = if *running { "running" } else { "stopped" };
                if *running || !force {
                    return Err(Error::conflict(format!(
                        "conflict: unable to delete {} ({how}) - image is being used by {state} container {}",
                        short_id(&img.id),
                        &cid[..12]
                    )));
                }
            }
        }
        let refs: Vec<String> = self
            .images
            .r()
            .tags
            .iter()
            .filter(|(_, i)| **i == img.id)
            .map(|(r, _)| r.clone())
            .collect();
        for r in &refs {
            ops.push(WriteOp::Delete(Table::Tags, r.clone()));
            if let Ok(p) = Reference::parse(r) {
                out.push(ImageDeleteItem::Untagged(p.familiar()));
            }
            remaining_tags -= 1;
        }
        // an image other images build on stays, untagged, as Docker keeps
        // it; so does one a running container uses (force or not), while
        // stopped ones only block without force and keep the layers
        let running_user = users.iter().any(|(_, running)| *running);
        let delete_image =
            remaining_tags == 0 && (users.is_empty() || (force && !running_user)) && !has_children;
        if delete_image {
            self.hand_layers_to(&users, &img.diff_ids)?;
            ops.push(WriteOp::Delete(Table::Images, img.id.clone()));
        }
        self.meta.write(ops)?;
        {
            let mut idx = self.images.w();
            for r in &refs {
                idx.tags.remove(r);
            }
            if delete_image {
                idx.images.remove(&img.id);
            }
        }
        if delete_image {
            if let Ok(d) = Digest::parse(&img.id) {
                let _ = self.blobs.delete(&d);
            }
            self.release_layers(&chain_ids(&img.diff_ids))?;
            out.push(ImageDeleteItem::Deleted(img.id.clone()));
            if prune {
                out.extend(self.prune_parents(&img.parent)?);
            }
        }
        Ok(out)
    }

    /// Before their image goes: the stopped containers that use it keep
    /// its layers, written first so that a crash cannot lose them.
    fn hand_layers_to(&self, users: &[(String, bool)], diff_ids: &[String]) -> Result<()> {
        for (id, _) in users {
            let Some(e) = self.containers.r().get(id).cloned() else {
                continue;
            };
            let rec = e.update(|r| {
                r.diff_ids = diff_ids.to_vec();
                r.clone()
            });
            self.persist_record(&rec)?;
        }
        Ok(())
    }

    /// After a delete: the untagged parents (build steps) that nothing else
    /// uses any more go too, as Docker's `rmi` does unless `--no-prune`.
    fn prune_parents(&self, parent: &str) -> Result<Vec<ImageDeleteItem>> {
        let mut out = Vec::new();
        let mut next = parent.to_string();
        while !next.is_empty() {
            let (exists, tagged, has_children) = {
                let idx = self.images.r();
                (
                    idx.images.contains_key(&next),
                    idx.tags.values().any(|i| *i == next),
                    idx.images.values().any(|i| i.parent == next),
                )
            };
            let in_use = self.containers.r().values().any(|e| e.image_id() == next);
            if !exists || tagged || has_children || in_use {
                break;
            }
            let img = match self.images.r().images.get(&next) {
                Some(i) => i.clone(),
                None => break,
            };
            self.meta
                .write(vec![WriteOp::Delete(Table::Images, img.id.clone())])?;
            self.images.w().images.remove(&img.id);
            if let Ok(d) = Digest::parse(&img.id) {
                let _ = self.blobs.delete(&d);
            }
            self.release_layers(&chain_ids(&img.diff_ids))?;
            out.push(ImageDeleteItem::Deleted(img.id.clone()));
            next = img.parent.clone();
        }
        Ok(out)
    }
}

#[derive(Default)]
struct ImageFilter {
    dangling: Option<bool>,
    labels: Vec<String>,
    references: Vec<String>,
    /// nanoseconds since the epoch: images made in the same second
    /// still have an order
    before: Option<i128>,
    since: Option<i128>,
    until: Option<i128>,
    label_of: Option<HashMap<String, HashMap<String, String>>>,
}

impl ImageFilter {
    fn labels_of(&self, id: &str) -> Option<&HashMap<String, String>> {
        self.label_of.as_ref().and_then(|m| m.get(id))
    }

    /// The image's tags the reference filter lets through (all of them
    /// without one), familiar and sorted.
    fn listed_tags(&self, img: &ImageRecord, idx: &ImageIndex) -> Vec<String> {
        let mut v: Vec<String> = idx
            .repo_refs(&img.id)
            .iter()
            .filter(|r| self.references.is_empty() || self.reference_matches(r))
            .map(|r| r.familiar())
            .collect();
        v.sort();
        v
    }

    /// dockerd's rule: path.Match of any pattern against the familiar
    /// reference, the familiar name, and both canonical forms.
    fn reference_matches(&self, r: &Reference) -> bool {
        let targets = [
            r.familiar(),
            r.familiar_name(),
            r.to_string(),
            r.repository(),
        ];
        self.references
            .iter()
            .any(|p| targets.iter().any(|t| glob_match(p, t)))
    }

    fn matches(&self, img: &ImageRecord, idx: &ImageIndex) -> bool {
        if let Some(d) = self.dangling
            && d != idx.repo_refs(&img.id).is_empty()
        {
            return false;
        }
        let created = parse_time_nanos(&img.created);
        if self.before.is_some_and(|b| created >= b) || self.since.is_some_and(|s| created <= s) {
            return false;
        }
        if self.until.is_some_and(|u| created >= u) {
            return false;
        }
        if !self.references.is_empty()
            && !idx
                .repo_refs(&img.id)
                .iter()
                .any(|r| self.reference_matches(r))
        {
            return false;
        }
        if !self.labels.is_empty() {
            let empty = HashMap::new();
            let labels = self.labels_of(&img.id).unwrap_or(&empty);
            if !crate::labels_match(labels, &self.labels) {
                return false;
            }
        }
        true
    }
}

fn parse_time_nanos(s: &str) -> i128 {
    chrono::DateTime::parse_from_rfc3339(s)
        .map(|t| t.timestamp() as i128 * 1_000_000_000 + t.timestamp_subsec_nanos() as i128)
        .unwrap_or(0)
}

pub fn parse_time(s: &str) -> i64 {
    chrono::DateTime::parse_from_rfc3339(s)
        .map(|t| t.timestamp())
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn globs_like_go_path_match() {
        assert!(glob_match("busy*", "busybox"));
        assert!(glob_match("busybox:*", "busybox:latest"));
        assert!(!glob_match("*", "library/busybox"));
        assert!(glob_match("*/busybox", "library/busybox"));
        assert!(glob_match("b?sybox", "busybox"));
        assert!(glob_match("[a-c]usybox", "busybox"));
        assert!(!glob_match("[^b]usybox", "busybox"));
        assert!(!glob_match("busy", "busybox"));
    }
}

#[cfg(test)]
mod index_tests {
    use super::*;

    /// A 64-hex id that starts with `prefix`.
    fn id(prefix: &str) -> String {
        format!("sha256:{prefix}{}", "0".repeat(64 - prefix.len()))
    }

    fn image(prefix: &str, created: &str) -> ImageRecord {
        ImageRecord {
            id: id(prefix),
            created: created.into(),
            ..Default::default()
        }
    }

    fn index(images: &[ImageRecord], tags: &[(&str, &ImageRecord)]) -> ImageIndex {
        let mut idx = ImageIndex::default();
        for i in images {
            idx.images.insert(i.id.clone(), i.clone());
        }
        for (t, i) in tags {
            let key = Reference::parse(t).unwrap().to_string();
            idx.tags.insert(key, i.id.clone());
        }
        idx
    }

    fn not_found(r: Result<ImageRecord>) -> String {
        match r {
            Err(Error::NotFound(m)) => m,
            other => panic!("expected not found, got {other:?}"),
        }
    }

    #[test]
    fn resolves_tags_in_every_spelling() {
        let a = image("aaaa11", "2024-01-01T00:00:00Z");
        let b = image("bbbb22", "2024-01-02T00:00:00Z");
        let idx = index(
            &[a.clone(), b.clone()],
            &[
                ("busybox:latest", &a),
                ("busybox:1.36", &b),
                ("localhost:5000/me/app:v1", &b),
            ],
        );
        for name in [
            "busybox",
            "busybox:latest",
            "library/busybox",
            "docker.io/library/busybox:latest",
        ] {
            assert_eq!(idx.resolve(name).unwrap().id, a.id, "{name}");
        }
        assert_eq!(idx.resolve("busybox:1.36").unwrap().id, b.id);
        assert_eq!(idx.resolve("localhost:5000/me/app:v1").unwrap().id, b.id);
        assert_eq!(
            not_found(idx.resolve("localhost:5000/me/app")),
            "No such image: localhost:5000/me/app:latest"
        );
        assert_eq!(
            not_found(idx.resolve("busybox:1.35")),
            "No such image: busybox:1.35"
        );
    }

    #[test]
    fn resolves_full_and_short_ids() {
        let a = image("abcdef12", "");
        let b = image("abcd9999", "");
        let idx = index(&[a.clone(), b.clone()], &[]);
        assert_eq!(idx.resolve(&a.id).unwrap().id, a.id);
        assert_eq!(idx.resolve(&a.id[7..]).unwrap().id, a.id);
        assert_eq!(idx.resolve("abcdef").unwrap().id, a.id);
        assert_eq!(idx.resolve("sha256:abcdef").unwrap().id, a.id);
        assert_eq!(idx.resolve("abcd9").unwrap().id, b.id);
        // shorter than 4 characters is a name, not an id prefix
        assert!(idx.resolve("abc").is_err());
        assert_eq!(not_found(idx.resolve("abc")), "No such image: abc:latest");
        assert_eq!(
            not_found(idx.resolve("sha256:ffff")),
            "No such image: sha256:ffff"
        );
        assert!(matches!(idx.resolve("sha256:"), Err(Error::NotFound(_))));
    }

    #[test]
    fn an_ambiguous_prefix_finds_nothing() {
        let a = image("abcd1", "");
        let b = image("abcd2", "");
        let idx = index(&[a.clone(), b.clone()], &[]);
        assert!(matches!(idx.resolve("abcd"), Err(Error::NotFound(_))));
        // with "sha256:" too: not whichever the map yields first
        assert!(matches!(
            idx.resolve("sha256:abcd"),
            Err(Error::NotFound(_))
        ));
        assert_eq!(idx.resolve("sha256:abcd1").unwrap().id, a.id);
        assert_eq!(idx.resolve("sha256:abcd2").unwrap().id, b.id);
    }

    #[test]
    fn a_tag_wins_over_an_id_prefix() {
        // a repository named like another image's id prefix
        let a = image("beef01", "");
        let b = image("cafe02", "");
        let idx = index(&[a.clone(), b.clone()], &[("beef", &b)]);
        assert_eq!(idx.resolve("beef").unwrap().id, b.id);
        assert_eq!(idx.resolve("beef01").unwrap().id, a.id);
    }

    #[test]
    fn a_tag_of_a_missing_image_is_not_found() {
        let a = image("dddd", "");
        let mut idx = index(std::slice::from_ref(&a), &[("gone", &a)]);
        idx.images.clear();
        assert!(matches!(idx.resolve("gone"), Err(Error::NotFound(_))));
    }

    #[test]
    fn invalid_names_are_invalid_not_missing() {
        let idx = ImageIndex::default();
        match idx.resolve("Not/Valid") {
            Err(Error::InvalidParameter(m)) => {
                assert_eq!(
                    m,
                    "invalid reference format: repository name (Valid) must be lowercase"
                )
            }
            other => panic!("{other:?}"),
        }
        assert!(matches!(
            idx.resolve("a b"),
            Err(Error::InvalidParameter(_))
        ));
        assert!(matches!(idx.resolve(""), Err(Error::InvalidParameter(_))));
    }

    #[test]
    fn repo_tags_are_familiar_and_sorted() {
        let a = image("aaaa", "");
        let b = image("bbbb", "");
        let idx = index(
            &[a.clone(), b.clone()],
            &[
                ("zeta:1", &a),
                ("alpha", &a),
                ("me/app:v2", &a),
                ("localhost:5000/x:y", &a),
                ("other", &b),
            ],
        );
        assert_eq!(
            idx.repo_tags(&a.id),
            vec!["alpha:latest", "localhost:5000/x:y", "me/app:v2", "zeta:1"]
        );
        assert_eq!(idx.repo_tags(&b.id), vec!["other:latest"]);
        assert!(idx.repo_tags("sha256:none").is_empty());
    }

    #[test]
    fn import_targets() {
        assert!(target_reference(None, Some("v1")).unwrap().is_none());
        assert!(target_reference(Some(""), None).unwrap().is_none());
        let r = target_reference(Some("me/app"), None).unwrap().unwrap();
        assert_eq!(r.to_string(), "docker.io/me/app:latest");
        let r = target_reference(Some("me/app"), Some("v2"))
            .unwrap()
            .unwrap();
        assert_eq!(r.familiar(), "me/app:v2");
        // a tag in the repository counts; the tag parameter overrides it
        let r = target_reference(Some("me/app:v3"), None).unwrap().unwrap();
        assert_eq!(r.tag.as_deref(), Some("v3"));
        let r = target_reference(Some("me/app:v3"), Some("v4"))
            .unwrap()
            .unwrap();
        assert_eq!(r.tag.as_deref(), Some("v4"));
        assert!(target_reference(Some("me/app"), Some("bad tag")).is_err());
        assert!(target_reference(Some("Me/App"), None).is_err());
        let hex = "0123456789abcdef".repeat(4);
        assert!(matches!(
            target_reference(Some(&hex), None),
            Err(Error::InvalidParameter(m)) if m == format!("invalid repository name ({hex}), cannot specify 64-byte hexadecimal strings")
        ));
        // with a tag it is a name, as in the distribution library
        assert!(target_reference(Some(&format!("{hex}:v1")), None).is_ok());
        assert!(target_reference(Some(&hex), Some("v1")).is_err());
        let digest = format!("me/app@sha256:{}", "a".repeat(64));
        assert!(matches!(
            target_reference(Some(&digest), None),
            Err(Error::InvalidParameter(m)) if m == "cannot import digest reference"
        ));
    }

    #[test]
    fn short_ids() {
        assert_eq!(short_id(&id("0123456789abcdef")), "0123456789ab");
        assert_eq!(short_id("0123456789abcdef"), "0123456789ab");
        assert_eq!(short_id("sha256:abc"), "abc");
        assert_eq!(short_id(""), "");
    }

    fn filter(f: ImageFilter, idx: &ImageIndex) -> Vec<String> {
        let mut v: Vec<String> = idx
            .images
            .values()
            .filter(|i| f.matches(i, idx))
            .map(|i| short_id(&i.id).trim_end_matches('0').to_string())
            .collect();
        v.sort();
        v
    }

    #[test]
    fn list_filters() {
        let old = image("a1", "2024-01-01T00:00:00Z");
        let mid = image("b2", "2024-01-01T00:00:00.5Z");
        let new = image("c3", "2024-03-01T00:00:00Z");
        let none = image("d4", "2024-02-01T00:00:00Z");
        let idx = index(
            &[old.clone(), mid.clone(), new.clone(), none.clone()],
            &[
                ("busybox:1", &old),
                ("busybox:2", &mid),
                ("me/app:v1", &new),
                ("localhost:5000/busybox:x", &new),
            ],
        );
        let all = filter(ImageFilter::default(), &idx);
        assert_eq!(all, ["a1", "b2", "c3", "d4"]);
        let f = ImageFilter {
            dangling: Some(true),
            ..Default::default()
        };
        assert_eq!(filter(f, &idx), ["d4"]);
        let f = ImageFilter {
            dangling: Some(false),
            ..Default::default()
        };
        assert_eq!(filter(f, &idx), ["a1", "b2", "c3"]);
        // before/since are strict, and nanoseconds order a second
        let f = ImageFilter {
            before: Some(parse_time_nanos(&mid.created)),
            ..Default::default()
        };
        assert_eq!(filter(f, &idx), ["a1"]);
        let f = ImageFilter {
            since: Some(parse_time_nanos(&old.created)),
            ..Default::default()
        };
        assert_eq!(filter(f, &idx), ["b2", "c3", "d4"]);
        let f = ImageFilter {
            until: Some(parse_time_nanos("2024-02-01T00:00:00Z")),
            ..Default::default()
        };
        assert_eq!(filter(f, &idx), ["a1", "b2"]);
        // reference: a repository pattern matches every tag, a pattern
        // with a tag only that tag; globs stop at '/'
        let refs = |r: &[&str]| ImageFilter {
            references: r.iter().map(|s| s.to_string()).collect(),
            ..Default::default()
        };
        assert_eq!(filter(refs(&["busybox"]), &idx), ["a1", "b2"]);
        assert_eq!(filter(refs(&["busybox:2"]), &idx), ["b2"]);
        assert_eq!(filter(refs(&["busy*"]), &idx), ["a1", "b2"]);
        assert_eq!(filter(refs(&["*/app"]), &idx), ["c3"]);
        assert_eq!(filter(refs(&["*"]), &idx), ["a1", "b2"]);
        assert_eq!(filter(refs(&["localhost:5000/busybox"]), &idx), ["c3"]);
        assert_eq!(filter(refs(&["busybox:1", "me/app"]), &idx), ["a1", "c3"]);
        assert!(filter(refs(&["nothing"]), &idx).is_empty());
        // canonical forms match too, as dockerd 29.5 matches them
        assert_eq!(
            filter(refs(&["docker.io/library/busybox"]), &idx),
            ["a1", "b2"]
        );
        assert_eq!(filter(refs(&["docker.io/library/busybox:1"]), &idx), ["a1"]);
        assert_eq!(filter(refs(&["docker.io/*/*"]), &idx), ["a1", "b2", "c3"]);
        assert_eq!(filter(refs(&["*box:1*"]), &idx), ["a1"]);
        assert_eq!(filter(refs(&["localhost:5000/*"]), &idx), ["c3"]);
        // only the matching tags are listed
        let f = refs(&["me/*"]);
        assert_eq!(f.listed_tags(&new, &idx), ["me/app:v1"]);
        assert_eq!(
            ImageFilter::default().listed_tags(&new, &idx),
            ["localhost:5000/busybox:x", "me/app:v1"]
        );
        // labels come from the configs, read beforehand
        let f = ImageFilter {
            labels: vec!["team=web".into()],
            label_of: Some(HashMap::from([
                (
                    old.id.clone(),
                    HashMap::from([("team".to_string(), "web".to_string())]),
                ),
                (
                    new.id.clone(),
                    HashMap::from([("team".to_string(), "db".to_string())]),
                ),
            ])),
            ..Default::default()
        };
        assert_eq!(filter(f, &idx), ["a1"]);
    }

    #[test]
    fn times() {
        assert_eq!(parse_time("1970-01-01T00:01:00Z"), 60);
        assert_eq!(parse_time("garbage"), 0);
        assert_eq!(
            parse_time_nanos("1970-01-01T00:00:01.000000002+00:00"),
            1_000_000_002
        );
        assert_eq!(parse_time_nanos(""), 0);
    }

    #[test]
    fn go_path_match_edges() {
        assert!(glob_match("", ""));
        assert!(!glob_match("", "a"));
        assert!(glob_match("a\\*b", "a*b"));
        assert!(!glob_match("a\\*b", "axb"));
        assert!(glob_match("[!x]", "y"));
        assert!(!glob_match("[a-c]", "d"));
        assert!(!glob_match("[abc", "a"));
        assert!(!glob_match("?", "/"));
        assert!(glob_match("a/*/c", "a/b/c"));
        assert!(!glob_match("a/*", "a/b/c"));
    }
}
