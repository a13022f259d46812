//! `docker save` and `docker load`. A save is both a docker-archive
//! (manifest.json, which every Docker since 1.10 loads) and an OCI image
//! layout (index.json, oci-layout, blobs/), as Docker 25 writes it. A load
//! takes either, and also the legacy `<id>/layer.tar` form.
//!
//! A load reads the archive twice instead of unpacking it to disk: the
//! first pass keeps the small files (manifests, configs) and the links,
//! the second streams each layer straight into its layer directory, where
//! its digest is checked against the config's diff id. Paths are names in
//! a map, never paths on disk, so a hostile archive cannot write anywhere.

use berth_store::MetadataStoreExt;
use std::collections::{BTreeMap, HashMap, HashSet};
use std::io::{BufReader, Read, Write};
use std::path::{Component, Path, PathBuf};
use std::sync::Arc;

use berth_core::verify::{ImageOrigin, ImageToVerify};
use berth_image::Reference;
use berth_store::{Digest, Table, WriteOp};
use serde_json::{Value, json};
use tokio::sync::mpsc;

use crate::copy::{ByteStream, ChannelWriter};
use crate::images::ImageRecord;
use crate::layers::{LayerRecord, chain_ids};
use crate::{Engine, Error, LockExt, Result};

const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
const OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";
const OCI_CONFIG: &str = "application/vnd.oci.image.config.v1+json";
const OCI_LAYER: &str = "application/vnd.oci.image.layer.v1.tar";

/// Files up to this size are kept from the first pass of a load.
const SMALL: u64 = 4 << 20;

struct SaveItem {
    id: String,
    tags: Vec<Reference>,
}

impl Engine {
    /// Which images a save covers: a tag saves that tag, a repository
    /// name all its tags, an id the image untagged.
    fn save_items(&self, names: &[String]) -> Result<Vec<SaveItem>> {
        let mut items: Vec<SaveItem> = Vec::new();
        let mut add =
            |id: String, tag: Option<Reference>| match items.iter_mut().find(|i| i.id == id) {
                Some(i) => i.tags.extend(tag),
                None => items.push(SaveItem {
                    id,
                    tags: tag.into_iter().collect(),
                }),
            };
        for name in names {
            let repo_only = Reference::parse_name_only(name)
                .ok()
                .filter(|r| r.tag.is_none() && r.digest.is_none() && !name.contains(':'));
            if let Some(r) = repo_only {
                let tagged: Vec<(Reference, String)> = self
                    .images
                    .r()
                    .tags
                    .iter()
                    .filter_map(|(k, id)| Reference::parse(k).ok().map(|t| (t, id.clone())))
                    .filter(|(t, _)| t.domain == r.domain && t.path == r.path)
                    .collect();
                if !tagged.is_empty() {
                    for (t, id) in tagged {
                        add(id, Some(t));
                    }
                    continue;
                }
            }
            let img = self.resolve_image(name)?;
            let tag = Reference::parse(name)
                .ok()
                .filter(|r| r.tag.is_some() && !name.starts_with("sha256:"))
                .filter(|r| self.images.r().tags.get(&r.to_string()) == Some(&img.id));
            add(img.id, tag);
        }
        Ok(items)
    }

    /// GET /images/get: the images as one tar stream.
    pub fn image_save(self: &Arc<Self>, names: &[String]) -> Result<ByteStream> {
        if names.is_empty() {
            return Err(Error::invalid("no image names given"));
        }
        let items = self.save_items(names)?;
        let (tx, rx) = mpsc::channel(16);
        let this = self.clone();
        tokio::task::spawn_blocking(move || {
            let err_tx = tx.clone();
            let w = std::io::BufWriter::with_capacity(256 * 1024, ChannelWriter(tx));
            if let Err(e) = this.write_save(&items, w) {
                let _ = err_tx.blocking_send(Err(std::io::Error::other(format!("{e:#}"))));
            }
        });
        Ok(rx)
    }

    fn write_save(&self, items: &[SaveItem], w: impl Write) -> anyhow::Result<()> {
        let mut tar = tar::Builder::new(w);
        let mut written: HashSet<String> = HashSet::new();
        // a layer two images share is written once; its size is kept
        let mut layer_sizes: HashMap<String, u64> = HashMap::new();
        let mut docker_manifest = Vec::new();
        let mut index = Vec::new();
        let mut repositories: BTreeMap<String, BTreeMap<String, String>> = BTreeMap::new();
        let mut images = Vec::new();
        for item in items {
            let img = self
                .images
                .r()
                .images
                .get(&item.id)
                .cloned()
                .ok_or_else(|| anyhow::anyhow!("image {} went away", item.id))?;
            let cfg = self.blobs.read(&Digest::parse(&img.id)?)?;
            images.push((item, img, cfg));
        }
        // Docker's save dates an image's layers and config (and blobs/) by
        // the image's creation; the rest by the epoch
        let last_created = images.last().map_or(0, |(_, _, cfg)| config_created(cfg));
        append_dir(&mut tar, "blobs/", last_created)?;
        append_dir(&mut tar, "blobs/sha256/", 0)?;
        for (item, img, cfg) in images {
            let created = config_created(&cfg);
            let mut layers = Vec::new();
            for (chain, diff) in chain_ids(&img.diff_ids).iter().zip(&img.diff_ids) {
                let d = Digest::parse(diff)?;
                let size = match layer_sizes.get(diff) {
                    Some(s) => *s,
                    None => {
                        let s = self.append_layer(&mut tar, chain, &d, created)?;
                        layer_sizes.insert(diff.clone(), s);
                        s
                    }
                };
                layers.push(json!({ "mediaType": OCI_LAYER, "digest": diff, "size": size }));
            }
            if written.insert(img.id.clone()) {
                append_file(&mut tar, &blob_path(&img.id), &cfg, created)?;
            }
            let manifest = json!({
                "schemaVersion": 2,
                "mediaType": OCI_MANIFEST,
                "config": { "mediaType": OCI_CONFIG, "digest": img.id, "size": cfg.len() },
                "layers": layers,
            });
            let mraw = serde_json::to_vec(&manifest)?;
            let mdigest = Digest::of(&mraw).to_string();
            if written.insert(mdigest.clone()) {
                append_file(&mut tar, &blob_path(&mdigest), &mraw, 0)?;
            }
            let desc = |annotations: Option<Value>| {
                let mut d =
                    json!({ "mediaType": OCI_MANIFEST, "digest": mdigest, "size": mraw.len() });
                if let Some(a) = annotations {
                    d["annotations"] = a;
                }
                d
            };
            if item.tags.is_empty() {
                index.push(desc(None));
            }
            for t in &item.tags {
                index.push(desc(Some(json!({
                    "io.containerd.image.name": t.to_string(),
                    "org.opencontainers.image.ref.name": t.tag.clone().unwrap_or_default(),
                }))));
                if let Some(top) = img.diff_ids.last() {
                    repositories.entry(t.familiar_name()).or_default().insert(
                        t.tag.clone().unwrap_or_default(),
                        top.trim_start_matches("sha256:").to_string(),
                    );
                }
            }
            docker_manifest.push(json!({
                "Config": blob_path(&img.id),
                "RepoTags": item.tags.iter().map(|t| t.familiar()).collect::<Vec<_>>(),
                "Layers": img.diff_ids.iter().map(|d| blob_path(d)).collect::<Vec<_>>(),
            }));
        }
        let index = json!({ "schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": index });
        append_file(&mut tar, "index.json", &serde_json::to_vec(&index)?, 0)?;
        append_file(
            &mut tar,
            "manifest.json",
            &serde_json::to_vec(&docker_manifest)?,
            0,
        )?;
        append_file(
            &mut tar,
            "oci-layout",
            br#"{"imageLayoutVersion":"1.0.0"}"#,
            0,
        )?;
        if !repositories.is_empty() {
            append_file(
                &mut tar,
                "repositories",
                &serde_json::to_vec(&repositories)?,
                0,
            )?;
        }
        tar.into_inner()?.flush()?;
        Ok(())
    }

    /// The uncompressed layer tar of `diff`: its blob, or its compressed
    /// source blob inflated into a scratch file (a tar header needs the
    /// size before the content).
    fn layer_tar(
        &self,
        chain: &str,
        diff: &Digest,
    ) -> anyhow::Result<(std::fs::File, Option<PathBuf>)> {
        if self.blobs.exists(diff) {
            return Ok((self.blobs.open_blob(diff)?, None));
        }
        let rec: LayerRecord = self
            .meta
            .get_json(Table::Layers, chain)?
            .ok_or_else(|| anyhow::anyhow!("layer {chain} is not recorded"))?;
        let src = rec
            .blob
            .ok_or_else(|| anyhow::anyhow!("layer {diff} has no stored content"))?;
        let f = self.blobs.open_blob(&Digest::parse(&src.digest)?)?;
        let tmp = self.tmp_path("save");
        let mut out = std::fs::File::create(&tmp)?;
        let mut r = berth_image::compression::decompress(f)?;
        std::io::copy(&mut r, &mut out)?;
        drop(out);
        Ok((std::fs::File::open(&tmp)?, Some(tmp)))
    }

    fn append_layer(
        &self,
        tar: &mut tar::Builder<impl Write>,
        chain: &str,
        diff: &Digest,
        mtime: u64,
    ) -> anyhow::Result<u64> {
        let (f, tmp) = self.layer_tar(chain, diff)?;
        let size = f.metadata()?.len();
        let mut h = tar::Header::new_ustar();
        h.set_size(size);
        h.set_mode(0o644);
        h.set_entry_type(tar::EntryType::Regular);
        h.set_mtime(mtime);
        let res = tar.append_data(&mut h, blob_path(diff.as_str()), BufReader::new(f));
        if let Some(t) = tmp {
            let _ = std::fs::remove_file(t);
        }
        res?;
        Ok(size)
    }

    /// POST /images/load: the images of a docker-archive or OCI layout
    /// tar (spooled to `src`). Returns the "Loaded image" lines.
    pub async fn image_load(self: &Arc<Self>, src: PathBuf) -> Result<Vec<String>> {
        let this = self.clone();
        let lines = tokio::task::spawn_blocking(move || this.load_blocking(&src))
            .await
            .map_err(|e| Error::Internal(anyhow::anyhow!("load task failed: {e}")))??;
        Ok(lines)
    }

    fn load_blocking(&self, src: &Path) -> Result<Vec<String>> {
        let open = || -> Result<Box<dyn Read>> {
            Ok(berth_image::compression::decompress(std::fs::File::open(
                src,
            )?)?)
        };
        let bad = |m: String| Error::invalid(m);
        let archive = scan(open()?).map_err(|e| bad(format!("reading the archive: {e:#}")))?;
        let images = archive.images().map_err(|e| bad(format!("{e:#}")))?;
        if images.is_empty() {
            return Err(bad(
                "no images found in the archive (no manifest.json or index.json)".into(),
            ));
        }

        for img in &images {
            self.verify_loaded(img)?;
        }

        // which layer files to unpack, and as what
        let mut wanted: HashMap<String, Vec<(Option<String>, Digest)>> = HashMap::new();
        let mut configs = Vec::new();
        for img in &images {
            let cfg: Value = serde_json::from_slice(&img.config)
                .map_err(|e| bad(format!("image config {}: {e}", img.config_path)))?;
            let diff_ids = crate::layers::config_diff_ids(&cfg);
            if diff_ids.len() != img.layers.len() {
                return Err(bad(format!(
                    "image config {} lists {} layers, the manifest {}",
                    img.config_path,
                    diff_ids.len(),
                    img.layers.len()
                )));
            }
            let chains = chain_ids(&diff_ids);
            for (i, path) in img.layers.iter().enumerate() {
                let present = self
                    .meta
                    .get_json::<LayerRecord>(Table::Layers, &chains[i])?
                    .is_some()
                    && self.layer_dir(&chains[i]).exists();
                if present {
                    continue;
                }
                let real = archive
                    .resolve(path)
                    .ok_or_else(|| bad(format!("layer {path} is missing from the archive")))?;
                let diff = Digest::parse(&diff_ids[i]).map_err(|e| bad(format!("{e:#}")))?;
                let parent = i.checked_sub(1).map(|p| chains[p].clone());
                let list = wanted.entry(real).or_default();
                if !list.iter().any(|(p, d)| p == &parent && d == &diff) {
                    list.push((parent, diff));
                }
            }
            configs.push((cfg, diff_ids));
        }

        // second pass: layers straight from the archive
        let mut ops: Vec<WriteOp> = Vec::new();
        for (name, data) in &archive.small {
            if wanted.contains_key(name) {
                self.load_layer(&mut wanted, &mut ops, name, &mut &data[..])?;
            }
        }
        if !wanted.is_empty() {
            let mut ar = tar::Archive::new(open()?);
            for entry in ar
                .entries()
                .map_err(|e| bad(format!("reading the archive: {e}")))?
            {
                let mut entry = entry.map_err(|e| bad(format!("reading the archive: {e}")))?;
                let Some(name) = entry_name(&entry) else {
                    continue;
                };
                if wanted.contains_key(&name) {
                    self.load_layer(&mut wanted, &mut ops, &name, &mut entry)?;
                }
            }
        }
        if let Some(name) = wanted.keys().next() {
            return Err(bad(format!("layer {name} is missing from the archive")));
        }
        // every layer is in place: record them, then the images
        self.meta.write(ops)?;
        let mut lines = Vec::new();
        for (img, (cfg, diff_ids)) in images.iter().zip(configs) {
            let id = Digest::of(&img.config).to_string();
            self.blobs.put_reader(&img.config[..], None)?;
            let size = chain_ids(&diff_ids)
                .iter()
                .filter_map(|c| {
                    self.meta
                        .get_json::<LayerRecord>(Table::Layers, c)
                        .ok()
                        .flatten()
                })
                .map(|l| l.size)
                .sum::<u64>();
            let existing = self.images.r().images.get(&id).cloned();
            let rec =
                existing.unwrap_or_else(|| ImageRecord::from_config(&id, diff_ids, size, &cfg));
            let mut img_ops = Vec::new();
            let mut tags = Vec::new();
            for t in &img.tags {
                let r = Reference::parse(t).map_err(|e| bad(format!("tag {t}: {e}")))?;
                if let Some(old) = self.images.r().tags.get(&r.to_string())
                    && old != &id
                {
                    lines.push(format!(
                        "The image {} already exists, renaming the old one with ID {old} to empty string",
                        r.familiar()
                    ));
                }
                img_ops.push(WriteOp::put_json(Table::Tags, &r.to_string(), &id)?);
                tags.push(r);
            }
            self.store_image_ops(rec, img_ops, None)?;
            {
                let mut idx = self.images.w();
                for r in &tags {
                    idx.tags.insert(r.to_string(), id.clone());
                }
            }
            if tags.is_empty() {
                lines.push(format!("Loaded image ID: {id}"));
            }
            for r in &tags {
                lines.push(format!("Loaded image: {}", r.familiar()));
            }
            self.object_event("image", &id, "load", &[]);
        }
        Ok(lines)
    }

    /// Asks the verifier about each name the archive gives the image, or
    /// about the image without a name. A tag that does not parse is left to
    /// the recording, which refuses it.
    fn verify_loaded(&self, img: &LoadImage) -> Result<()> {
        let id = Digest::of(&img.config).to_string();
        let refs: Vec<String> = img
            .tags
            .iter()
            .filter_map(|t| Reference::parse(t).ok())
            .map(|r| r.to_string())
            .collect();
        let mut names: Vec<Option<&str>> = refs.iter().map(|r| Some(r.as_str())).collect();
        if names.is_empty() {
            names.push(None);
        }
        for reference in names {
            self.verify_image(&ImageToVerify {
                origin: ImageOrigin::Load,
                reference,
                manifest_digest: img.manifest_digest.as_deref(),
                config_digest: &id,
            })?;
        }
        Ok(())
    }

    /// Unpacks the archive file `name` as every layer that wants it.
    fn load_layer(
        &self,
        wanted: &mut HashMap<String, Vec<(Option<String>, Digest)>>,
        ops: &mut Vec<WriteOp>,
        name: &str,
        r: &mut dyn Read,
    ) -> Result<()> {
        let Some(targets) = wanted.remove(name) else {
            return Ok(());
        };
        // kept as an uncompressed blob: what save and push read later
        let reader = berth_image::compression::decompress(r)?;
        let diffs: HashSet<&Digest> = targets.iter().map(|(_, d)| d).collect();
        if diffs.len() != 1 {
            return Err(Error::invalid(format!(
                "{name} is named as layers with different digests"
            )));
        }
        let diff = &targets[0].1;
        self.blobs
            .put_reader(reader, Some(diff))
            .map_err(|e| Error::invalid(format!("layer {name}: {e:#}")))?;
        for (parent, diff) in &targets {
            let (_, op) = self
                .register_layer(parent.as_deref(), diff)
                .map_err(|e| Error::invalid(format!("layer {name}: {e:#}")))?;
            ops.extend(op);
        }
        Ok(())
    }
}

fn blob_path(digest: &str) -> String {
    format!("blobs/sha256/{}", digest.trim_start_matches("sha256:"))
}

/// The `created` of an image config in seconds since the epoch; 0 when
/// it has none (or one before the epoch, which a tar header cannot hold).
fn config_created(cfg: &[u8]) -> u64 {
    serde_json::from_slice::<Value>(cfg)
        .ok()
        .and_then(|v| v.get("created")?.as_str().map(String::from))
        .and_then(|c| chrono::DateTime::parse_from_rfc3339(&c).ok())
        .map_or(0, |t| t.timestamp().max(0) as u64)
}

fn append_dir(tar: &mut tar::Builder<impl Write>, name: &str, mtime: u64) -> std::io::Result<()> {
    let mut h = tar::Header::new_ustar();
    h.set_entry_type(tar::EntryType::Directory);
    h.set_mode(0o755);
    h.set_size(0);
    h.set_mtime(mtime);
    tar.append_data(&mut h, name, std::io::empty())
}

fn append_file(
    tar: &mut tar::Builder<impl Write>,
    name: &str,
    data: &[u8],
    mtime: u64,
) -> std::io::Result<()> {
    let mut h = tar::Header::new_ustar();
    h.set_entry_type(tar::EntryType::Regular);
    h.set_mode(0o644);
    h.set_size(data.len() as u64);
    h.set_mtime(mtime);
    tar.append_data(&mut h, name, data)
}

/// An archive path in canonical form ("a/b"), or None when it climbs out.
fn clean(p: &Path) -> Option<String> {
    let mut parts: Vec<String> = Vec::new();
    for c in p.components() {
        match c {
            Component::Normal(s) => parts.push(s.to_string_lossy().to_string()),
            Component::ParentDir => {
                parts.pop()?;
            }
            Component::CurDir | Component::RootDir | Component::Prefix(_) => {}
        }
    }
    (!parts.is_empty()).then(|| parts.join("/"))
}

fn entry_name<R: Read>(e: &tar::Entry<R>) -> Option<String> {
    clean(&e.path().ok()?)
}

/// What the first pass keeps.
struct Scanned {
    small: HashMap<String, Vec<u8>>,
    files: HashSet<String>,
    /// link name -> target (canonical)
    links: HashMap<String, String>,
}

struct LoadImage {
    config_path: String,
    config: Vec<u8>,
    layers: Vec<String>,
    tags: Vec<String>,
    /// the digest of its manifest in an OCI layout (`index.json`); a
    /// `manifest.json` archive names no manifest blob
    manifest_digest: Option<String>,
}

fn scan(r: impl Read) -> anyhow::Result<Scanned> {
    let mut s = Scanned {
        small: HashMap::new(),
        files: HashSet::new(),
        links: HashMap::new(),
    };
    let mut ar = tar::Archive::new(r);
    for entry in ar.entries()? {
        let mut entry = entry?;
        let Some(name) = entry_name(&entry) else {
            continue;
        };
        match entry.header().entry_type() {
            tar::EntryType::Regular | tar::EntryType::Continuous => {
                if entry.size() <= SMALL {
                    let mut data = Vec::with_capacity(entry.size() as usize);
                    entry.read_to_end(&mut data)?;
                    s.small.insert(name.clone(), data);
                }
                s.files.insert(name);
            }
            tar::EntryType::Symlink => {
                if let Some(t) = entry.link_name()? {
                    // relative to the link's directory
                    let base = Path::new(&name).parent().unwrap_or(Path::new(""));
                    if let Some(target) = clean(&base.join(t)) {
                        s.links.insert(name, target);
                    }
                }
            }
            tar::EntryType::Link => {
                if let Some(t) = entry.link_name()?.and_then(|t| clean(&t)) {
                    s.links.insert(name, t);
                }
            }
            _ => {}
        }
    }
    Ok(s)
}

impl Scanned {
    /// Follows links (a bounded number of them) to a regular file.
    fn resolve(&self, path: &str) -> Option<String> {
        let mut p = clean(Path::new(path))?;
        for _ in 0..16 {
            if self.files.contains(&p) {
                return Some(p);
            }
            p = self.links.get(&p)?.clone();
        }
        None
    }

    fn read(&self, path: &str) -> anyhow::Result<&[u8]> {
        let p = self
            .resolve(path)
            .ok_or_else(|| anyhow::anyhow!("{path} is missing from the archive"))?;
        self.small
            .get(&p)
            .map(|v| v.as_slice())
            .ok_or_else(|| anyhow::anyhow!("{path} is too large for a manifest or config"))
    }

    fn images(&self) -> anyhow::Result<Vec<LoadImage>> {
        if let Ok(raw) = self.read("manifest.json") {
            #[derive(serde::Deserialize)]
            #[serde(rename_all = "PascalCase")]
            struct Entry {
                config: String,
                #[serde(default)]
                repo_tags: Option<Vec<String>>,
                layers: Vec<String>,
            }
            let entries: Vec<Entry> =
                serde_json::from_slice(raw).map_err(|e| anyhow::anyhow!("manifest.json: {e}"))?;
            return entries
                .into_iter()
                .map(|e| {
                    Ok(LoadImage {
                        config: self.read(&e.config)?.to_vec(),
                        config_path: e.config,
                        layers: e.layers,
                        tags: e.repo_tags.unwrap_or_default(),
                        manifest_digest: None,
                    })
                })
                .collect();
        }
        let Ok(raw) = self.read("index.json") else {
            return Ok(vec![]);
        };
        let index: Value =
            serde_json::from_slice(raw).map_err(|e| anyhow::anyhow!("index.json: {e}"))?;
        let mut out: Vec<LoadImage> = Vec::new();
        let mut todo: Vec<(Value, u32)> = index
            .get("manifests")
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default()
            .into_iter()
            .map(|d| (d, 0))
            .collect();
        while let Some((desc, depth)) = todo.pop() {
            let digest = desc
                .get("digest")
                .and_then(Value::as_str)
                .unwrap_or_default();
            let path = blob_path(digest);
            let raw = self.read(&path)?;
            let doc: Value =
                serde_json::from_slice(raw).map_err(|e| anyhow::anyhow!("{path}: {e}"))?;
            if let Some(children) = doc.get("manifests").and_then(Value::as_array) {
                if depth < 4 {
                    // an index inside: take its linux/amd64 entry (or all
                    // entries without a platform)
                    for c in children {
                        let p = c.get("platform");
                        let fits = p.is_none_or(|p| {
                            p.get("os").and_then(Value::as_str) == Some("linux")
                                && p.get("architecture").and_then(Value::as_str) == Some("amd64")
                        });
                        if fits {
                            let mut c = c.clone();
                            if let Some(a) = desc.get("annotations") {
                                c["annotations"] = a.clone();
                            }
                            todo.push((c, depth + 1));
                        }
                    }
                }
                continue;
            }
            let cfg_digest = doc
                .pointer("/config/digest")
                .and_then(Value::as_str)
                .ok_or_else(|| anyhow::anyhow!("{path}: manifest without a config"))?;
            let layers = doc
                .get("layers")
                .and_then(Value::as_array)
                .map(|a| {
                    a.iter()
                        .filter_map(|l| l.get("digest").and_then(Value::as_str).map(blob_path))
                        .collect()
                })
                .unwrap_or_default();
            let ann = desc.get("annotations");
            let tag = ann
                .and_then(|a| a.get("io.containerd.image.name"))
                .and_then(Value::as_str)
                .or_else(|| {
                    ann.and_then(|a| a.get("org.opencontainers.image.ref.name"))
                        .and_then(Value::as_str)
                        .filter(|n| n.contains(':') || n.contains('/'))
                })
                .map(String::from);
            let config_path = blob_path(cfg_digest);
            let config = self.read(&config_path)?.to_vec();
            match out.iter_mut().find(|i| i.config_path == config_path) {
                Some(i) => i.tags.extend(tag),
                None => out.push(LoadImage {
                    config_path,
                    config,
                    layers,
                    tags: tag.into_iter().collect(),
                    manifest_digest: Some(digest.to_string()),
                }),
            }
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn creation_times_of_configs() {
        assert_eq!(
            config_created(br#"{"created":"2024-03-01T12:00:00.9Z"}"#),
            1_709_294_400
        );
        assert_eq!(config_created(br#"{"created":"0001-01-01T00:00:00Z"}"#), 0);
        assert_eq!(config_created(b"{}"), 0);
        assert_eq!(config_created(b"not json"), 0);
    }

    #[test]
    fn archive_paths_stay_inside() {
        assert_eq!(clean(Path::new("./a/b")), Some("a/b".into()));
        assert_eq!(clean(Path::new("/a/../b")), Some("b".into()));
        assert_eq!(clean(Path::new("../etc/passwd")), None);
        assert_eq!(clean(Path::new("a/../../x")), None);
    }

    #[test]
    fn links_resolve_within_the_archive() {
        let s = Scanned {
            small: HashMap::new(),
            files: ["b/layer.tar".to_string()].into_iter().collect(),
            links: [
                ("a/layer.tar".to_string(), "b/layer.tar".to_string()),
                ("loop1".to_string(), "loop2".to_string()),
                ("loop2".to_string(), "loop1".to_string()),
            ]
            .into_iter()
            .collect(),
        };
        assert_eq!(s.resolve("a/layer.tar").as_deref(), Some("b/layer.tar"));
        assert_eq!(s.resolve("loop1"), None);
        assert_eq!(s.resolve("../b/layer.tar"), None);
    }
}
