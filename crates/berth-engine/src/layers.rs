//! Unpacked layers, stored once under overlay/layers/<chain id> and stacked
//! by overlayfs. A layer directory appears only complete: it is unpacked
//! into a temporary name and renamed.

use std::fs;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use berth_store::{Digest, Table, WriteOp};
use serde::{Deserialize, Serialize};

use crate::Engine;

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct LayerRecord {
    pub chain_id: String,
    pub diff_id: String,
    pub parent: Option<String>,
    pub size: u64,
}

/// The OCI chain id of a layer stack.
pub fn chain_id(parent: Option<&str>, diff_id: &str) -> String {
    match parent {
        None => diff_id.to_string(),
        Some(p) => Digest::of(format!("{p} {diff_id}").as_bytes()).to_string(),
    }
}

pub fn chain_ids(diff_ids: &[String]) -> Vec<String> {
    let mut out: Vec<String> = Vec::with_capacity(diff_ids.len());
    for d in diff_ids {
        let c = chain_id(out.last().map(String::as_str), d);
        out.push(c);
    }
    out
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
        let dest = self.layer_dir(&chain);
        let tmp = PathBuf::from(format!("{}.tmp", dest.display()));
        let _ = fs::remove_dir_all(&tmp);
        fs::create_dir_all(&tmp)?;
        let blob = self.blobs.open_blob(diff_id)?;
        let stats = match berth_image::layer::unpack(std::io::BufReader::new(blob), &tmp) {
            Ok(s) => s,
            Err(e) => {
                let _ = fs::remove_dir_all(&tmp);
                return Err(e);
            }
        };
        let _ = fs::remove_dir_all(&dest);
        fs::rename(&tmp, &dest).context("moving layer into place")?;
        let rec = LayerRecord {
            chain_id: chain.clone(),
            diff_id: diff_id.to_string(),
            parent: parent.map(String::from),
            size: stats.size,
        };
        let op = WriteOp::put_json(Table::Layers, &chain, &rec)?;
        Ok((rec, Some(op)))
    }

    /// Removes the layers of `chains` (top first) that no image uses any more.
    pub(crate) fn release_layers(&self, chains: &[String]) -> Result<()> {
        let in_use: std::collections::HashSet<String> = {
            let idx = self.images.read().unwrap_or_else(|p| p.into_inner());
            idx.images
                .values()
                .flat_map(|i| chain_ids(&i.diff_ids))
                .collect()
        };
        let mut ops = Vec::new();
        let mut dirs = Vec::new();
        for c in chains.iter().rev() {
            if !in_use.contains(c) {
                ops.push(WriteOp::Delete(Table::Layers, c.clone()));
                dirs.push(self.layer_dir(c));
            }
        }
        self.meta.write(ops)?;
        for d in dirs {
            // rename first so that a crash mid-delete leaves only a ".tmp"
            let tmp = PathBuf::from(format!("{}.tmp", d.display()));
            if fs::rename(&d, &tmp).is_ok() {
                let _ = fs::remove_dir_all(&tmp);
            }
        }
        Ok(())
    }
}
