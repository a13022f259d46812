//! The registry's disk layout. Blobs (layers, configs and manifests alike)
//! live once in a content-addressed store; repositories hold only links:
//!
//! ```text
//! blobs/sha256/<hex>                                   content
//! uploads/<uuid>/{data,repo}                           uploads in progress
//! repositories/<name>/_layers/<hex>                    blob is in the repository
//! repositories/<name>/_manifests/revisions/<hex>       manifest (its media type)
//! repositories/<name>/_manifests/tags/<tag>            the tag's digest
//! repositories/<name>/_referrers/<subject>/<hex>       descriptor of a referrer
//! ```
//!
//! Every file appears complete or not at all (written aside, renamed), so
//! a reader never sees a partial blob, manifest or tag.

use std::fs;
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};

use berth_store::{BlobStore, Digest};
use serde_json::{Value, json};

use crate::errors::RegistryError;

pub const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
pub const OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";
pub const DOCKER_MANIFEST: &str = "application/vnd.docker.distribution.manifest.v2+json";
pub const DOCKER_LIST: &str = "application/vnd.docker.distribution.manifest.list.v2+json";

/// Manifests are JSON documents; Docker's registry caps them at 4 MiB.
pub const MAX_MANIFEST: usize = 4 << 20;

pub struct Storage {
    root: PathBuf,
    blobs: BlobStore,
}

/// A manifest as stored: its digest, media type and bytes.
pub struct StoredManifest {
    pub digest: Digest,
    pub media_type: String,
    pub body: Vec<u8>,
}

/// A repository name as the distribution spec defines it.
pub fn valid_name(name: &str) -> bool {
    static RE: std::sync::OnceLock<regex::Regex> = std::sync::OnceLock::new();
    let re = RE.get_or_init(|| {
        regex::Regex::new(
            r"^[a-z0-9]+((\.|_|__|-+)[a-z0-9]+)*(/[a-z0-9]+((\.|_|__|-+)[a-z0-9]+)*)*$",
        )
        .expect("static regex")
    });
    name.len() <= 255 && re.is_match(name)
}

pub fn valid_tag(tag: &str) -> bool {
    static RE: std::sync::OnceLock<regex::Regex> = std::sync::OnceLock::new();
    let re = RE.get_or_init(|| {
        regex::Regex::new(r"^[a-zA-Z0-9_][a-zA-Z0-9._-]{0,127}$").expect("static regex")
    });
    re.is_match(tag)
}

pub fn parse_digest(s: &str) -> Result<Digest, RegistryError> {
    Digest::parse(s).map_err(|e| RegistryError::digest_invalid(format!("{e:#}")))
}

/// Writes `data` to `path` through a temporary name, so readers see the
/// old content or the new, never a mix.
fn write_atomic(path: &Path, data: &[u8]) -> io::Result<()> {
    let dir = path.parent().unwrap_or(Path::new("."));
    fs::create_dir_all(dir)?;
    let tmp = dir.join(format!(
        ".{}.tmp",
        path.file_name().and_then(|n| n.to_str()).unwrap_or("x")
    ));
    let mut f = fs::File::create(&tmp)?;
    f.write_all(data)?;
    f.sync_all()?;
    fs::rename(&tmp, path)
}

fn random_id() -> io::Result<String> {
    let mut b = [0u8; 16];
    fs::File::open("/dev/urandom")?.read_exact(&mut b)?;
    let h = hex::encode(b);
    Ok(format!(
        "{}-{}-{}-{}-{}",
        &h[..8],
        &h[8..12],
        &h[12..16],
        &h[16..20],
        &h[20..]
    ))
}

fn names_in(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = fs::read_dir(dir)
        .map(|rd| {
            rd.flatten()
                .filter_map(|e| e.file_name().to_str().map(str::to_string))
                .filter(|n| !n.starts_with('.'))
                .collect()
        })
        .unwrap_or_default();
    v.sort();
    v
}

impl Storage {
    pub fn open(root: &Path) -> anyhow::Result<Self> {
        fs::create_dir_all(root.join("repositories"))?;
        fs::create_dir_all(root.join("uploads"))?;
        let blobs = BlobStore::open(&root.join("blobs"))?;
        Ok(Storage {
            root: root.to_path_buf(),
            blobs,
        })
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    pub fn blobs(&self) -> &BlobStore {
        &self.blobs
    }

    pub(crate) fn repo_dir(&self, name: &str) -> PathBuf {
        self.root.join("repositories").join(name)
    }

    pub fn repo_exists(&self, name: &str) -> bool {
        let d = self.repo_dir(name);
        d.join("_manifests").exists() || d.join("_layers").exists()
    }

    fn layer_link(&self, name: &str, d: &Digest) -> PathBuf {
        self.repo_dir(name).join("_layers").join(d.hex())
    }

    /// The blob's path and size when the repository holds it.
    pub fn blob(&self, name: &str, d: &Digest) -> Option<(PathBuf, u64)> {
        if !self.layer_link(name, d).exists() && !self.revision_path(name, d).exists() {
            return None;
        }
        let p = self.blobs.path(d);
        let size = fs::metadata(&p).ok()?.len();
        Some((p, size))
    }

    pub fn link_blob(&self, name: &str, d: &Digest) -> io::Result<()> {
        write_atomic(&self.layer_link(name, d), b"")
    }

    pub fn unlink_blob(&self, name: &str, d: &Digest) -> Result<(), RegistryError> {
        match fs::remove_file(self.layer_link(name, d)) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Err(RegistryError::blob_unknown(d)),
            Err(e) => Err(e.into()),
        }
    }

    // ---- uploads ----

    fn upload_dir(&self, uuid: &str) -> PathBuf {
        self.root.join("uploads").join(uuid)
    }

    pub fn new_upload(&self, name: &str) -> Result<String, RegistryError> {
        let id = random_id()?;
        let dir = self.upload_dir(&id);
        fs::create_dir_all(&dir)?;
        fs::write(dir.join("repo"), name)?;
        fs::File::create(dir.join("data"))?;
        Ok(id)
    }

    /// The data file of an upload that belongs to `name`.
    pub fn upload_data(&self, name: &str, uuid: &str) -> Result<PathBuf, RegistryError> {
        let valid = uuid.len() <= 64 && uuid.bytes().all(|b| b.is_ascii_hexdigit() || b == b'-');
        let dir = self.upload_dir(uuid);
        match fs::read_to_string(dir.join("repo")) {
            Ok(owner) if valid && owner == name => Ok(dir.join("data")),
            _ => Err(RegistryError::upload_unknown()),
        }
    }

    pub fn upload_size(&self, data: &Path) -> Result<u64, RegistryError> {
        Ok(fs::metadata(data)?.len())
    }

    /// Checks the finished upload against its digest and moves it into the
    /// blob store; the upload is gone either way.
    pub fn finish_upload(
        &self,
        name: &str,
        uuid: &str,
        digest: &Digest,
    ) -> Result<(), RegistryError> {
        let data = self.upload_data(name, uuid)?;
        let res = if self.blobs.exists(digest) {
            // the content is here already; the upload only has to match it
            let (got, _) = berth_store::digest_of_file(&data)
                .map_err(|e| RegistryError::Internal(format!("{e:#}")))?;
            if &got == digest {
                Ok(())
            } else {
                Err(RegistryError::digest_invalid(
                    "provided digest did not match uploaded content",
                ))
            }
        } else {
            self.blobs
                .adopt_file(&data, digest)
                .map(|_| ())
                .map_err(|_| {
                    RegistryError::digest_invalid("provided digest did not match uploaded content")
                })
        };
        let _ = fs::remove_dir_all(self.upload_dir(uuid));
        res?;
        self.link_blob(name, digest)?;
        Ok(())
    }

    pub fn cancel_upload(&self, name: &str, uuid: &str) -> Result<(), RegistryError> {
        self.upload_data(name, uuid)?;
        fs::remove_dir_all(self.upload_dir(uuid))?;
        Ok(())
    }

    // ---- manifests and tags ----

    fn revision_path(&self, name: &str, d: &Digest) -> PathBuf {
        self.repo_dir(name)
            .join("_manifests/revisions")
            .join(d.hex())
    }

    fn tag_path(&self, name: &str, tag: &str) -> PathBuf {
        self.repo_dir(name).join("_manifests/tags").join(tag)
    }

    /// Stores a manifest under its digest (and the tag, when `reference`
    /// is one). Everything it references must be in the repository.
    /// Returns the digest and, for a manifest with a subject, the
    /// subject's digest.
    pub fn put_manifest(
        &self,
        name: &str,
        reference: &str,
        content_type: Option<&str>,
        body: &[u8],
    ) -> Result<(Digest, Option<Digest>), RegistryError> {
        let digest = Digest::of(body);
        let by_digest = reference.starts_with("sha256:") || reference.contains(':');
        if by_digest {
            let want = parse_digest(reference)?;
            if want != digest {
                return Err(RegistryError::digest_invalid(
                    "manifest digest did not match its content",
                ));
            }
        } else if !valid_tag(reference) {
            return Err(RegistryError::tag_invalid(reference));
        }
        let doc: Value = serde_json::from_slice(body)
            .map_err(|e| RegistryError::manifest_invalid(format!("invalid JSON: {e}")))?;
        if doc.get("schemaVersion").and_then(Value::as_i64) != Some(2) {
            return Err(RegistryError::manifest_invalid(
                "only schemaVersion 2 manifests are supported",
            ));
        }
        let media_type = doc
            .get("mediaType")
            .and_then(Value::as_str)
            .map(str::to_string)
            .or_else(|| content_type.map(|c| c.split(';').next().unwrap_or(c).trim().to_string()))
            .unwrap_or_else(|| {
                if doc.get("manifests").is_some() {
                    OCI_INDEX.to_string()
                } else {
                    OCI_MANIFEST.to_string()
                }
            });
        if let Some(ct) = content_type.map(|c| c.split(';').next().unwrap_or(c).trim())
            && doc.get("mediaType").is_some()
            && !ct.is_empty()
            && ct != media_type
        {
            return Err(RegistryError::manifest_invalid(format!(
                "mediaType {media_type} does not match Content-Type {ct}"
            )));
        }
        let mut missing = Vec::new();
        let descriptors = |key: &str| -> Vec<Value> {
            match doc.get(key) {
                Some(Value::Array(a)) => a.clone(),
                Some(v @ Value::Object(_)) => vec![v.clone()],
                _ => vec![],
            }
        };
        for desc in descriptors("config")
            .into_iter()
            .chain(descriptors("layers"))
        {
            // foreign layers live elsewhere; the registry need not hold them
            if desc.get("urls").is_some() {
                continue;
            }
            let d = desc_digest(&desc)?;
            if self.blob(name, &d).is_none() {
                missing.push(d);
            }
        }
        for desc in descriptors("manifests") {
            let d = desc_digest(&desc)?;
            if !self.revision_path(name, &d).exists() {
                missing.push(d);
            }
        }
        if let Some(d) = missing.first() {
            return Err(RegistryError::manifest_blob_unknown(d));
        }
        let subject = match doc.get("subject") {
            Some(s) => Some(desc_digest(s)?),
            None => None,
        };

        self.blobs
            .put_reader(body, Some(&digest))
            .map_err(|e| RegistryError::Internal(format!("{e:#}")))?;
        write_atomic(&self.revision_path(name, &digest), media_type.as_bytes())?;
        if let Some(s) = &subject {
            let artifact_type = doc
                .get("artifactType")
                .and_then(Value::as_str)
                .or_else(|| {
                    doc.get("config")
                        .and_then(|c| c.get("mediaType"))
                        .and_then(Value::as_str)
                })
                .unwrap_or_default();
            let mut desc = json!({
                "mediaType": media_type,
                "digest": digest.as_str(),
                "size": body.len(),
            });
            if !artifact_type.is_empty() {
                desc["artifactType"] = json!(artifact_type);
            }
            if let Some(a) = doc.get("annotations") {
                desc["annotations"] = a.clone();
            }
            write_atomic(
                &self
                    .repo_dir(name)
                    .join("_referrers")
                    .join(s.hex())
                    .join(digest.hex()),
                &serde_json::to_vec(&desc).map_err(|e| RegistryError::Internal(e.to_string()))?,
            )?;
        }
        if !by_digest {
            write_atomic(&self.tag_path(name, reference), digest.as_str().as_bytes())?;
        }
        Ok((digest, subject))
    }

    pub fn resolve(&self, name: &str, reference: &str) -> Result<Digest, RegistryError> {
        if reference.contains(':') {
            return parse_digest(reference);
        }
        // no tag that could not be pushed is known: the distribution spec's
        // conformance suite asks for MANIFEST_UNKNOWN here, not TAG_INVALID
        if !valid_tag(reference) {
            return Err(RegistryError::manifest_unknown(reference));
        }
        let raw = fs::read_to_string(self.tag_path(name, reference))
            .map_err(|_| RegistryError::manifest_unknown(reference))?;
        parse_digest(raw.trim())
    }

    pub fn get_manifest(
        &self,
        name: &str,
        reference: &str,
    ) -> Result<StoredManifest, RegistryError> {
        if !self.repo_exists(name) {
            return Err(RegistryError::name_unknown(name));
        }
        let digest = self.resolve(name, reference)?;
        let media_type = fs::read_to_string(self.revision_path(name, &digest))
            .map_err(|_| RegistryError::manifest_unknown(reference))?;
        let body = self
            .blobs
            .read(&digest)
            .map_err(|_| RegistryError::manifest_unknown(reference))?;
        Ok(StoredManifest {
            digest,
            media_type,
            body,
        })
    }

    /// By digest: the manifest leaves the repository with every tag that
    /// pointed at it. By tag: only the tag goes.
    pub fn delete_manifest(&self, name: &str, reference: &str) -> Result<(), RegistryError> {
        if !reference.contains(':') {
            self.resolve(name, reference)?;
            fs::remove_file(self.tag_path(name, reference))?;
            return Ok(());
        }
        let digest = parse_digest(reference)?;
        let rev = self.revision_path(name, &digest);
        if !rev.exists() {
            return Err(RegistryError::manifest_unknown(reference));
        }
        for tag in self.tags(name) {
            if self.resolve(name, &tag).ok().as_ref() == Some(&digest) {
                let _ = fs::remove_file(self.tag_path(name, &tag));
            }
        }
        // the manifest no longer refers to its subject
        for subject in names_in(&self.repo_dir(name).join("_referrers")) {
            let _ = fs::remove_file(
                self.repo_dir(name)
                    .join("_referrers")
                    .join(subject)
                    .join(digest.hex()),
            );
        }
        fs::remove_file(rev)?;
        Ok(())
    }

    pub fn tags(&self, name: &str) -> Vec<String> {
        names_in(&self.repo_dir(name).join("_manifests/tags"))
    }

    /// Digests of the repository's manifests.
    pub fn revisions(&self, name: &str) -> Vec<Digest> {
        names_in(&self.repo_dir(name).join("_manifests/revisions"))
            .iter()
            .filter_map(|h| Digest::parse(&format!("sha256:{h}")).ok())
            .collect()
    }

    pub fn layer_links(&self, name: &str) -> Vec<Digest> {
        names_in(&self.repo_dir(name).join("_layers"))
            .iter()
            .filter_map(|h| Digest::parse(&format!("sha256:{h}")).ok())
            .collect()
    }

    pub fn referrers(
        &self,
        name: &str,
        subject: &Digest,
        artifact_type: Option<&str>,
    ) -> Vec<Value> {
        let dir = self.repo_dir(name).join("_referrers").join(subject.hex());
        names_in(&dir)
            .iter()
            .filter_map(|f| fs::read(dir.join(f)).ok())
            .filter_map(|b| serde_json::from_slice::<Value>(&b).ok())
            .filter(|d| {
                artifact_type
                    .is_none_or(|t| d.get("artifactType").and_then(Value::as_str) == Some(t))
            })
            .collect()
    }

    /// Every repository, sorted.
    pub fn catalog(&self) -> Vec<String> {
        let mut out = Vec::new();
        let base = self.root.join("repositories");
        let mut stack = vec![base.clone()];
        while let Some(dir) = stack.pop() {
            for n in names_in(&dir) {
                if n.starts_with('_') {
                    continue;
                }
                let p = dir.join(&n);
                if !p.is_dir() {
                    continue;
                }
                if let Ok(rel) = p.strip_prefix(&base) {
                    let name = rel.to_string_lossy().to_string();
                    if self.repo_exists(&name) {
                        out.push(name);
                    }
                }
                stack.push(p);
            }
        }
        out.sort();
        out
    }
}

fn desc_digest(desc: &Value) -> Result<Digest, RegistryError> {
    let s = desc
        .get("digest")
        .and_then(Value::as_str)
        .ok_or_else(|| RegistryError::manifest_invalid("descriptor without a digest"))?;
    parse_digest(s)
}
