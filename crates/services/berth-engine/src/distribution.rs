//! GET /distribution/{name}/json: what a registry says a reference is (the
//! manifest or index it names, and the platforms it has), without pulling,
//! as dockerd's distribution router answers it.

use berth_distribution::manifest::is_index;
use berth_distribution::{Credentials, DistError, RegistryClient};
use berth_image::Reference;
use serde::{Deserialize, Serialize};

use crate::pull::dist_error;
use crate::{Engine, Error, Result};

/// The manifest or index a reference names, and its platforms.
#[derive(Debug, Clone, PartialEq)]
pub struct DistributionView {
    pub media_type: String,
    pub digest: String,
    pub size: u64,
    /// none where dockerd has none: an OCI image manifest (its client
    /// reads platforms from indexes and Docker schema 2 manifests only)
    pub platforms: Option<Vec<RemotePlatform>>,
}

/// An OCI platform, with the image spec's JSON names.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct RemotePlatform {
    #[serde(default)]
    pub architecture: String,
    #[serde(default)]
    pub os: String,
    #[serde(
        rename = "os.version",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub os_version: Option<String>,
    #[serde(
        rename = "os.features",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub os_features: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub variant: Option<String>,
}

const DOCKER_MANIFEST: &str = "application/vnd.docker.distribution.manifest.v2+json";

impl Engine {
    pub async fn distribution_inspect(
        &self,
        name: &str,
        creds: Option<Credentials>,
    ) -> Result<DistributionView> {
        if is_image_id(name) {
            return Err(Error::Internal(anyhow::anyhow!(
                "no manifest found for full image ID"
            )));
        }
        let reference =
            Reference::parse_name_only(name).map_err(|e| Error::invalid(e.to_string()))?;
        let what = reference
            .digest
            .clone()
            .or_else(|| reference.tag.clone())
            .unwrap_or_else(|| "latest".into());
        // as a pull: Docker Hub's mirrors first, then the registry itself
        let mut last_err = None;
        for (host, insecure) in self.pull_endpoints(&reference.domain) {
            let attempt = async {
                let c =
                    RegistryClient::connect(&host, insecure, creds.clone(), &self.cfg.certs_dir)
                        .await?;
                let m = c.manifest(&reference.path, &what).await?;
                let platforms = platforms_of(&c, &reference.path, &m.media_type, &m.body).await;
                Ok::<_, DistError>(DistributionView {
                    digest: reference
                        .digest
                        .clone()
                        .unwrap_or_else(|| m.digest.to_string()),
                    media_type: m.media_type,
                    size: m.body.len() as u64,
                    platforms,
                })
            };
            match attempt.await {
                Ok(view) => return Ok(view),
                Err(e) => {
                    tracing::debug!("distribution inspect on {host}: {e}");
                    last_err = Some(e);
                }
            }
        }
        Err(last_err.map_or_else(|| Error::not_found("no registry to ask"), dist_error))
    }
}

/// A bare 64-hex name: dockerd parses it as a digest, a full image id.
fn is_image_id(name: &str) -> bool {
    name.len() == 64
        && name
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

/// An index's entries' platforms, or a Docker manifest's config's; none
/// for other manifests, or when the config cannot be read (dockerd leaves
/// them out then too).
async fn platforms_of(
    c: &RegistryClient,
    repo: &str,
    media_type: &str,
    body: &[u8],
) -> Option<Vec<RemotePlatform>> {
    #[derive(Deserialize)]
    struct Entry {
        #[serde(default)]
        platform: Option<RemotePlatform>,
    }
    #[derive(Deserialize)]
    struct Manifests {
        #[serde(default)]
        manifests: Vec<Entry>,
    }
    #[derive(Deserialize)]
    struct ConfigRef {
        digest: String,
    }
    #[derive(Deserialize)]
    struct Image {
        config: ConfigRef,
    }
    if is_index(media_type) {
        let idx: Manifests = serde_json::from_slice(body).ok()?;
        let all: Vec<RemotePlatform> = idx
            .manifests
            .into_iter()
            .map(|e| e.platform.unwrap_or_default())
            .collect();
        return (!all.is_empty()).then_some(all);
    }
    if media_type != DOCKER_MANIFEST {
        return None;
    }
    let image: Image = serde_json::from_slice(body).ok()?;
    let resp = c.blob(repo, &image.config.digest).await.ok()?;
    let config = berth_distribution::client::read_body(resp, 8 << 20)
        .await
        .ok()?;
    let p: RemotePlatform = serde_json::from_slice(&config).ok()?;
    (!p.os.is_empty() || !p.architecture.is_empty()).then(|| vec![p])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_bare_64_hex_name_is_an_image_id() {
        assert!(is_image_id(&"a".repeat(64)));
        assert!(!is_image_id(&"a".repeat(63)));
        assert!(!is_image_id("busybox:latest"));
    }

    #[test]
    fn platforms_keep_the_oci_names() {
        let p: RemotePlatform = serde_json::from_str(
            r#"{"architecture":"amd64","os":"windows","os.version":"10.0.17763.1","variant":"v8","config":{}}"#,
        )
        .expect("platform");
        assert_eq!(p.os_version.as_deref(), Some("10.0.17763.1"));
        let back = serde_json::to_value(&p).expect("encode");
        assert_eq!(
            back,
            serde_json::json!({"architecture":"amd64","os":"windows","os.version":"10.0.17763.1","variant":"v8"})
        );
    }
}
