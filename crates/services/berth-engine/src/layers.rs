//! Unpacked layers, stored once under overlay/layers/<chain id> and stacked
//! by overlayfs. A layer directory appears only complete: it is unpacked
//! into a temporary name and renamed.

use berth_store::MetadataStoreExt;
use std::fs;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use berth_store::{Digest, Table, WriteOp};

use crate::Engine;
pub use berth_core::image::{LayerRecord, SourceBlob, chain_id, chain_ids};

/// The `rootfs.diff_ids` of an image config.
pub(crate) fn config_diff_ids(config: &serde_json::Value) -> Vec<String> {
    config
        .pointer("/rootfs/diff_ids")
        .and_then(serde_json::Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(|d| d.as_str().map(String::from))
                .collect()
        })
        .unwrap_or_default()
}

/// A reader that hashes what passes through it.
pub(crate) struct HashingReader<R> {
    inner: R,
    hasher: sha2::Sha256,
}

impl<R> HashingReader<R> {
    pub fn new(inner: R) -> Self {
        HashingReader {
            inner,
            hasher: sha2::Sha256::default(),
        }
    }

    pub fn digest(&self) -> Digest {
        Digest::from_hasher(self.hasher.clone())
    }
}

impl<R: std::io::Read> std::io::Read for HashingReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        sha2::Digest::update(&mut self.hasher, &buf[..n]);
        Ok(n)
    }
}

/// Removes layer directories an interrupted unpack left behind.
pub fn sweep_incomplete(data_root: &Path) -> Result<()> {
    let dir = data_root.join("overlay/layers");
    for e in fs::read_dir(&dir)?.flatten() {
        if e.file_name().to_string_lossy().ends_with(".tmp") {
            let _ = fs::remove_dir_all(e.path());
        }
    }
    Ok(())
}

impl Engine {
    pub(crate) fn layer_dir(&self, chain: &str) -> PathBuf {
        self.layer_root().join(chain.trim_start_matches("sha256:"))
    }

    /// Unpacks the uncompressed layer blob `diff_id` on top of `parent`
    /// unless that layer exists already. Blocking.
    pub(crate) fn register_layer(
        &self,
        parent: Option<&str>,
        diff_id: &Digest,
    ) -> Result<(LayerRecord, Option<WriteOp>)> {
        let chain = chain_id(parent, diff_id.as_str());
        if let Some(rec) = self.meta.get_json::<LayerRecord>(Table::Layers, &chain)?
            && self.layer_dir(&chain).exists()
        {
            return Ok((rec, None));
        }
        let blob = self.blobs.open_blob(diff_id)?;
        let (rec, op) = self.unpack_layer(parent, diff_id, std::io::BufReader::new(blob), None)?;
        Ok((rec, Some(op)))
    }

    /// Unpacks the layer tar `r` (whose content must hash to `diff_id`)
    /// into place; the record is for the caller to write.
    pub(crate) fn unpack_layer(
        &self,
        parent: Option<&str>,
        diff_id: &Digest,
        r: impl std::io::Read,
        blob: Option<SourceBlob>,
    ) -> Result<(LayerRecord, WriteOp)> {
        let chain = chain_id(parent, diff_id.as_str());
        let dest = self.layer_dir(&chain);
        // a name of its own: two pulls may unpack the same layer at once
        let tmp = PathBuf::from(format!(
            "{}.{}.tmp",
            dest.display(),
            &crate::random_id()[..8]
        ));
        fs::create_dir_all(&tmp)?;
        let mut hashing = HashingReader::new(r);
        let unpacked = berth_archive::layer::unpack(&mut hashing, &tmp).and_then(|s| {
            // the tar may end before its padding; the digest covers all of it
            std::io::copy(&mut hashing, &mut std::io::sink())?;
            let got = hashing.digest();
            if &got != diff_id {
                anyhow::bail!("layer content has digest {got}, the image says {diff_id}");
            }
            Ok(s)
        });
        let stats = match unpacked {
            Ok(s) => s,
            Err(e) => {
                tracing::warn!(layer = %diff_id, "unpacking a layer failed, its partial directory is removed: {e:#}");
                let _ = fs::remove_dir_all(&tmp);
                return Err(e);
            }
        };
        if dest.exists() {
            // another unpack of the same content finished first; stale
            // directories never survive a start (collect_garbage)
            let _ = fs::remove_dir_all(&tmp);
        } else {
            fs::rename(&tmp, &dest).context("moving layer into place")?;
        }
        let rec = LayerRecord {
            chain_id: chain.clone(),
            diff_id: diff_id.to_string(),
            parent: parent.map(String::from),
            size: stats.size,
            blob,
        };
        let op = WriteOp::put_json(Table::Layers, &chain, &rec)?;
        Ok((rec, op))
    }

    /// At start, before anything runs: what no image reaches goes — layer
    /// records and directories, and blobs that are neither an image's
    /// config nor a layer's content (what a daemon killed mid-pull, -load
    /// or -push left behind).
    pub(crate) fn collect_garbage(&self) -> Result<()> {
        let (in_use, configs): (
            std::collections::HashSet<String>,
            std::collections::HashSet<String>,
        ) = {
            let idx = self.images.read().unwrap_or_else(|p| p.into_inner());
            (
                idx.images
                    .values()
                    .flat_map(|i| chain_ids(&i.diff_ids))
                    .collect(),
                idx.images.keys().cloned().collect(),
            )
        };
        let in_use: std::collections::HashSet<String> = in_use
            .into_iter()
            .chain(self.container_held_layers()?)
            .collect();
        let records = self.meta.list_json::<LayerRecord>(Table::Layers)?;
        let unused: Vec<String> = records
            .iter()
            .filter(|(c, _)| !in_use.contains(c))
            .map(|(c, _)| c.clone())
            .collect();
        if !unused.is_empty() {
            tracing::info!("removing {} layers no image uses", unused.len());
            self.release_layers(&unused)?;
        }
        let kept = self.meta.list_json::<LayerRecord>(Table::Layers)?;
        let dirs: std::collections::HashSet<String> = kept
            .iter()
            .map(|(c, _)| c.trim_start_matches("sha256:").to_string())
            .collect();
        for e in fs::read_dir(self.layer_root())?.flatten() {
            let name = e.file_name().to_string_lossy().to_string();
            if !dirs.contains(&name) && !name.ends_with(".tmp") {
                tracing::info!("removing unrecorded layer directory {name}");
                let _ = fs::remove_dir_all(e.path());
            }
        }
        let mut referenced = configs;
        for (_, r) in kept {
            referenced.insert(r.diff_id);
            referenced.extend(r.blob.map(|b| b.digest));
        }
        for d in self.blobs.list()? {
            if !referenced.contains(d.as_str()) {
                let _ = self.blobs.delete(&d);
            }
        }
        Ok(())
    }

    /// The chains of the containers whose image was deleted under them;
    /// read from the store, as garbage collection runs before the
    /// containers are loaded.
    fn container_held_layers(&self) -> Result<Vec<String>> {
        let recs = self
            .meta
            .list_json::<crate::containers::ContainerRecord>(Table::Containers)?;
        Ok(recs
            .into_iter()
            .filter(|(_, r)| !r.diff_ids.is_empty())
            .flat_map(|(_, r)| chain_ids(&r.diff_ids))
            .collect())
    }

    /// Removes the layers of `chains` (top first) that no image uses any more.
    pub(crate) fn release_layers(&self, chains: &[String]) -> Result<()> {
        let mut in_use: std::collections::HashSet<String> = {
            let idx = self.images.read().unwrap_or_else(|p| p.into_inner());
            idx.images
                .values()
                .flat_map(|i| chain_ids(&i.diff_ids))
                .collect()
        };
        in_use.extend(self.container_held_layers()?);
        let mut ops = Vec::new();
        let mut dirs = Vec::new();
        let mut blobs = Vec::new();
        for c in chains.iter().rev() {
            if !in_use.contains(c) {
                if let Some(rec) = self.meta.get_json::<LayerRecord>(Table::Layers, c)? {
                    blobs.push(rec.diff_id.clone());
                    blobs.extend(rec.blob.map(|b| b.digest));
                }
                ops.push(WriteOp::Delete(Table::Layers, c.clone()));
                dirs.push(self.layer_dir(c));
            }
        }
        self.meta.write(ops)?;
        if !blobs.is_empty() {
            // a blob can back two chains (the same layer on other parents)
            let kept: std::collections::HashSet<String> = self
                .meta
                .list_json::<LayerRecord>(Table::Layers)?
                .into_iter()
                .flat_map(|(_, r)| std::iter::once(r.diff_id).chain(r.blob.map(|b| b.digest)))
                .collect();
            for b in blobs.iter().filter(|b| !kept.contains(*b)) {
                if let Ok(d) = Digest::parse(b) {
                    let _ = self.blobs.delete(&d);
                }
            }
        }
        for d in dirs {
            // rename first so that a crash mid-delete leaves only a ".tmp"
            let tmp = PathBuf::from(format!("{}.tmp", d.display()));
            match fs::rename(&d, &tmp).and_then(|()| fs::remove_dir_all(&tmp)) {
                Ok(()) => {}
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                // the next start sweeps what is left; say why it is there
                Err(e) => tracing::warn!("removing layer directory {}: {e}", d.display()),
            }
        }
        Ok(())
    }
}
