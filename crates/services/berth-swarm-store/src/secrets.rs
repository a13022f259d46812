//! Secrets and configs: named blobs that services' tasks mount as files.
//! Their data lives here, in the Raft store, which is sealed at rest with
//! the managers' DEK, and travels only to the nodes whose tasks use it.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::objects::Meta;

/// A secret's or config's bytes: base64 in the store's JSON (a byte array
/// would be four times larger), never printed by `Debug`.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct Blob(pub Vec<u8>);

impl std::fmt::Debug for Blob {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Blob({} bytes)", self.0.len())
    }
}

impl Serialize for Blob {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use base64::Engine as _;
        s.serialize_str(&base64::engine::general_purpose::STANDARD.encode(&self.0))
    }
}

impl<'de> Deserialize<'de> for Blob {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        use base64::Engine as _;
        let s = String::deserialize(d)?;
        base64::engine::general_purpose::STANDARD
            .decode(s)
            .map(Blob)
            .map_err(serde::de::Error::custom)
    }
}

/// A driver (secret plugins) or a template engine, by name.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Driver {
    pub name: String,
    #[serde(default)]
    pub options: BTreeMap<String, String>,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct SecretSpec {
    pub name: String,
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
    pub data: Blob,
    #[serde(default)]
    pub driver: Option<Driver>,
    #[serde(default)]
    pub templating: Option<Driver>,
}

/// A secret or a config: the same object but for what clients may see.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Secret {
    pub id: String,
    pub meta: Meta,
    pub spec: SecretSpec,
}

/// Which of the two a `Secret`-shaped object is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum BlobKind {
    Secret,
    Config,
}

impl BlobKind {
    pub fn as_str(self) -> &'static str {
        match self {
            BlobKind::Secret => "secret",
            BlobKind::Config => "config",
        }
    }
}

/// Where a task's file goes, and whose it is. `UID`/`GID` are strings in
/// Docker's model; `Mode` is a Go `os.FileMode`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct FileTarget {
    #[serde(default)]
    pub name: String,
    #[serde(default, rename = "UID")]
    pub uid: String,
    #[serde(default, rename = "GID")]
    pub gid: String,
    #[serde(default)]
    pub mode: u32,
}

/// `ContainerSpec.Secrets[]` as the Engine API names it.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct SecretReference {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub file: Option<FileTarget>,
    #[serde(default, rename = "SecretID")]
    pub secret_id: String,
    #[serde(default)]
    pub secret_name: String,
}

/// `ContainerSpec.Configs[]`: a file, or a runtime target (credential
/// specs), which berth keeps but has no use for on Linux.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct ConfigReference {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub file: Option<FileTarget>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub runtime: Option<serde_json::Value>,
    #[serde(default, rename = "ConfigID")]
    pub config_id: String,
    #[serde(default)]
    pub config_name: String,
}

/// One reference of either kind, seen the same way.
pub struct BlobRef<'a> {
    pub kind: BlobKind,
    pub id: &'a str,
    pub name: &'a str,
    pub file: Option<&'a FileTarget>,
}

impl crate::services::ContainerSpec {
    /// Every secret and config the spec references.
    pub fn blob_refs(&self) -> impl Iterator<Item = BlobRef<'_>> {
        let secrets = self.secrets.iter().map(|r| BlobRef {
            kind: BlobKind::Secret,
            id: &r.secret_id,
            name: &r.secret_name,
            file: r.file.as_ref(),
        });
        let configs = self.configs.iter().map(|r| BlobRef {
            kind: BlobKind::Config,
            id: &r.config_id,
            name: &r.config_name,
            file: r.file.as_ref(),
        });
        secrets.chain(configs)
    }
}
