//! Images as berth records them: the image record (id, layers, parent,
//! build cache key), the layer record, and the digests that name them.

use serde::{Deserialize, Serialize};
use sha2::{Digest as _, Sha256};

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct ImageRecord {
    /// "sha256:<hex>" of the config blob
    pub id: String,
    pub diff_ids: Vec<String>,
    pub size: u64,
    pub created: String,
    #[serde(default)]
    pub parent: String,
    #[serde(default)]
    pub last_tag_time: String,
    /// `repository@digest` of the manifests it was pulled or pushed as
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub repo_digests: Vec<String>,
    /// for a build step's image: what the step did and read, hashed with
    /// its parent (the build cache key)
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub build_key: String,
}

impl ImageRecord {
    /// A new record for the image whose config is `config` (its id is the
    /// config's digest), untagged and unpulled.
    pub fn from_config(
        id: &str,
        diff_ids: Vec<String>,
        size: u64,
        config: &serde_json::Value,
    ) -> Self {
        ImageRecord {
            id: id.to_string(),
            diff_ids,
            size,
            created: config
                .get("created")
                .and_then(serde_json::Value::as_str)
                .unwrap_or_default()
                .to_string(),
            parent: String::new(),
            last_tag_time: String::new(),
            repo_digests: vec![],
            build_key: String::new(),
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct LayerRecord {
    pub chain_id: String,
    pub diff_id: String,
    pub parent: Option<String>,
    pub size: u64,
    /// the blob the layer came from when it is not the uncompressed
    /// `diff_id` blob: a pulled layer keeps its compressed form, which is
    /// what a push sends back
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub blob: Option<SourceBlob>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SourceBlob {
    pub digest: String,
    pub media_type: String,
    pub size: u64,
    /// registry repositories ("host/name") known to hold the blob
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub repos: Vec<String>,
}

/// The OCI chain id of a layer stack.
pub fn chain_id(parent: Option<&str>, diff_id: &str) -> String {
    match parent {
        None => diff_id.to_string(),
        Some(p) => sha256_digest(format!("{p} {diff_id}").as_bytes()),
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

/// "sha256:<hex>" of `data`.
pub fn sha256_digest(data: &[u8]) -> String {
    format!("sha256:{}", hex::encode(Sha256::digest(data)))
}

pub fn short_id(id: &str) -> &str {
    let h = id.trim_start_matches("sha256:");
    &h[..h.len().min(12)]
}
