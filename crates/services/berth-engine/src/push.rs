//! `docker push`: each layer goes up in the compressed form the registry
//! will serve (the blob it was pulled as, or a gzip made once and kept),
//! unless the registry has it already; then the config, then a manifest
//! per tag.

use berth_store::MetadataStoreExt;
use std::sync::Arc;

use berth_distribution::manifest::{
    DOCKER_CONFIG, DOCKER_LAYER_GZIP, DOCKER_MANIFEST, Descriptor, ImageManifest, OCI_CONFIG,
    OCI_LAYER_GZIP, OCI_MANIFEST,
};
use berth_distribution::{Credentials, Payload, RegistryClient};
use berth_image::Reference;
use berth_store::{Digest, Table, WriteOp};
use serde_json::json;

use crate::layers::{LayerRecord, SourceBlob, chain_ids};
use crate::pull::{Progress, dist_error, say, short};
use crate::{Engine, Error, LockExt, Result};

#[derive(Debug, Clone, Default)]
pub struct PushOptions {
    pub name: String,
    pub tag: Option<String>,
    pub credentials: Option<Credentials>,
}

impl Engine {
    /// The references a push covers: the one tag, or every tag of the
    /// repository when none is given. Errors answer with an HTTP status.
    pub fn push_targets(&self, opts: &PushOptions) -> Result<Vec<Reference>> {
        let mut base =
            Reference::parse_name_only(&opts.name).map_err(|e| Error::invalid(e.to_string()))?;
        if let Some(t) = opts.tag.as_deref().filter(|t| !t.is_empty()) {
            berth_image::reference::validate_tag(t).map_err(|e| Error::invalid(e.to_string()))?;
            base.tag = Some(t.to_string());
        }
        let idx = self.images.r();
        let targets: Vec<Reference> = if base.tag.is_some() {
            idx.tags
                .contains_key(&base.to_string())
                .then(|| base.clone())
                .into_iter()
                .collect()
        } else {
            idx.tags
                .keys()
                .filter_map(|r| Reference::parse(r).ok())
                .filter(|r| r.domain == base.domain && r.path == base.path)
                .collect()
        };
        if targets.is_empty() {
            return Err(Error::not_found(format!(
                "An image does not exist locally with the tag: {}",
                base.familiar_name()
            )));
        }
        Ok(targets)
    }

    pub async fn push_run(
        self: &Arc<Self>,
        targets: Vec<Reference>,
        credentials: Option<Credentials>,
        tx: Progress,
    ) -> Result<()> {
        let first = &targets[0];
        let client = Arc::new(
            self.registry_client(&first.domain, credentials)
                .await
                .map_err(dist_error)?,
        );
        say(
            &tx,
            &format!("The push refers to repository [{}]", first.repository()),
            None,
        )
        .await;
        for r in &targets {
            self.push_one(&client, r, &tx).await?;
        }
        Ok(())
    }

    async fn push_one(
        self: &Arc<Self>,
        client: &Arc<RegistryClient>,
        r: &Reference,
        tx: &Progress,
    ) -> Result<()> {
        let img = self.resolve_image(&r.to_string())?;
        let repo = r.path.clone();
        let chains = chain_ids(&img.diff_ids);
        let mut records = Vec::new();
        for c in &chains {
            let rec = self
                .meta
                .get_json::<LayerRecord>(Table::Layers, c)?
                .ok_or_else(|| {
                    Error::not_found(format!("layer {c} of {} is missing", r.familiar()))
                })?;
            records.push(rec);
        }
        // Docker lists layers top first
        for rec in records.iter().rev() {
            say(tx, "Preparing", Some(&short(&rec.diff_id))).await;
        }
        let limit = Arc::new(tokio::sync::Semaphore::new(
            self.settings().max_concurrent_uploads.max(1),
        ));
        let mut tasks = Vec::new();
        for rec in records {
            let (this, client, tx, limit, repo) = (
                self.clone(),
                client.clone(),
                tx.clone(),
                limit.clone(),
                repo.clone(),
            );
            tasks.push(tokio::spawn(async move {
                let _permit = limit.acquire_owned().await;
                this.push_layer(&client, &repo, rec, &tx).await
            }));
        }
        let mut layers = Vec::new();
        for t in tasks {
            layers.push(
                t.await
                    .map_err(|e| Error::Internal(anyhow::anyhow!("{e}")))??,
            );
        }

        let cfg_digest = Digest::parse(&img.id).map_err(|e| Error::invalid(format!("{e:#}")))?;
        let cfg_size = self.blobs.size(&cfg_digest)?;
        if !client
            .blob_exists(&repo, cfg_digest.as_str())
            .await
            .map_err(dist_error)?
        {
            let raw = self.blobs.read(&cfg_digest)?;
            client
                .upload(&repo, cfg_digest.as_str(), Payload::Bytes(raw.into()), None)
                .await
                .map_err(dist_error)?;
        }
        let oci = layers.iter().any(|l| l.media_type.contains("oci"));
        let fix = |mut d: Descriptor| {
            if oci && d.media_type == DOCKER_LAYER_GZIP {
                d.media_type = OCI_LAYER_GZIP.into();
            }
            d
        };
        let manifest = ImageManifest {
            schema_version: 2,
            media_type: Some(if oci { OCI_MANIFEST } else { DOCKER_MANIFEST }.into()),
            config: Descriptor {
                media_type: if oci { OCI_CONFIG } else { DOCKER_CONFIG }.into(),
                digest: cfg_digest.to_string(),
                size: cfg_size,
                platform: None,
                urls: None,
                annotations: None,
            },
            layers: layers.into_iter().map(fix).collect(),
        };
        let body = serde_json::to_vec_pretty(&manifest)
            .map_err(|e| Error::Internal(anyhow::anyhow!("encoding manifest: {e}")))?;
        let size = body.len();
        let tag = r.tag.clone().unwrap_or_else(|| "latest".into());
        let media_type = manifest.media_type.clone().unwrap_or_default();
        let digest = client
            .put_manifest(&repo, &tag, &media_type, body.into())
            .await
            .map_err(dist_error)?;
        let _ = tx
            .send(json!({ "status": format!("{tag}: digest: {digest} size: {size}"), "progressDetail": {} }))
            .await;
        let _ = tx
            .send(json!({ "progressDetail": {}, "aux": { "Tag": tag, "Digest": digest.to_string(), "Size": size } }))
            .await;
        self.record_repo_digest(&img.id, &format!("{}@{digest}", r.repository()))?;
        self.object_event("image", &r.familiar(), "push", &[("name", r.familiar())]);
        Ok(())
    }

    fn record_repo_digest(&self, id: &str, repo_digest: &str) -> Result<()> {
        self.update_image(id, vec![], |r| {
            if !r.repo_digests.iter().any(|d| d == repo_digest) {
                r.repo_digests.push(repo_digest.to_string());
            }
        })
    }

    /// Pushes one layer and returns its manifest descriptor.
    async fn push_layer(
        self: &Arc<Self>,
        client: &RegistryClient,
        repo: &str,
        rec: LayerRecord,
        tx: &Progress,
    ) -> Result<Descriptor> {
        let id = short(&rec.diff_id);
        let blob = match rec.blob.clone() {
            Some(b)
                if self.blobs.exists(
                    &Digest::parse(&b.digest).map_err(|e| Error::invalid(format!("{e:#}")))?,
                ) =>
            {
                b
            }
            _ => {
                let this = self.clone();
                let rec2 = rec.clone();
                tokio::task::spawn_blocking(move || this.compress_layer(rec2))
                    .await
                    .map_err(|e| Error::Internal(anyhow::anyhow!("{e}")))??
            }
        };
        let desc = Descriptor {
            media_type: blob.media_type.clone(),
            digest: blob.digest.clone(),
            size: blob.size,
            platform: None,
            urls: None,
            annotations: None,
        };
        let here = format!("{}/{repo}", client.host());
        if client
            .blob_exists(repo, &blob.digest)
            .await
            .map_err(dist_error)?
        {
            say(tx, "Layer already exists", Some(&id)).await;
            self.remember_repo(&rec.chain_id, &here)?;
            return Ok(desc);
        }
        // a repository of the same registry that has the blob lends it
        let mut session = None;
        let prefix = format!("{}/", client.host());
        for from in blob.repos.iter().filter_map(|r| r.strip_prefix(&prefix)) {
            if from == repo {
                continue;
            }
            match client.mount(repo, &blob.digest, from).await {
                Ok(berth_distribution::Mount::Mounted) => {
                    say(tx, &format!("Mounted from {from}"), Some(&id)).await;
                    self.remember_repo(&rec.chain_id, &here)?;
                    return Ok(desc);
                }
                Ok(berth_distribution::Mount::Upload(loc)) => {
                    session = Some(loc);
                    break;
                }
                Err(e) => tracing::debug!("mounting {} from {from}: {e}", blob.digest),
            }
        }
        let d = Digest::parse(&blob.digest).map_err(|e| Error::invalid(format!("{e:#}")))?;
        let total = blob.size;
        let tx2 = tx.clone();
        let id2 = id.clone();
        let last = Arc::new(std::sync::atomic::AtomicU64::new(0));
        let progress: Arc<dyn Fn(u64) + Send + Sync> = Arc::new(move |sent| {
            let prev = last.load(std::sync::atomic::Ordering::Relaxed);
            if sent - prev >= 512 * 1024 || sent == total {
                last.store(sent, std::sync::atomic::Ordering::Relaxed);
                let _ = tx2.try_send(json!({
                    "status": "Pushing",
                    "progressDetail": { "current": sent, "total": total },
                    "id": id2,
                }));
            }
        });
        client
            .upload(
                repo,
                &blob.digest,
                Payload::File(self.blobs.path(&d), total, Some(progress)),
                session,
            )
            .await
            .map_err(dist_error)?;
        say(tx, "Pushed", Some(&id)).await;
        self.remember_repo(&rec.chain_id, &here)?;
        Ok(desc)
    }

    /// Notes that the registry repository `repo` ("host/name") holds a
    /// layer's blob, for later cross-repository mounts.
    fn remember_repo(&self, chain: &str, repo: &str) -> Result<()> {
        let Some(mut rec) = self.meta.get_json::<LayerRecord>(Table::Layers, chain)? else {
            return Ok(());
        };
        let Some(blob) = rec.blob.as_mut() else {
            return Ok(());
        };
        if blob.repos.iter().any(|r| r == repo) {
            return Ok(());
        }
        blob.repos.push(repo.to_string());
        // a bounded list: the newest places are the likeliest to still hold it
        if blob.repos.len() > 16 {
            blob.repos.remove(0);
        }
        self.meta
            .write(vec![WriteOp::put_json(Table::Layers, chain, &rec)?])?;
        Ok(())
    }

    /// Gzips a layer's uncompressed blob once and records the result, so
    /// later pushes send the same bytes (and the same digest).
    fn compress_layer(&self, mut rec: LayerRecord) -> Result<SourceBlob> {
        let diff = Digest::parse(&rec.diff_id).map_err(|e| Error::invalid(format!("{e:#}")))?;
        let src = self.blobs.open_blob(&diff).map_err(|e| {
            Error::not_found(format!(
                "layer {} has no content to push: {e:#}",
                rec.diff_id
            ))
        })?;
        let tmp = self.tmp_path("gzip");
        let res = (|| -> anyhow::Result<(Digest, u64)> {
            let out = std::fs::File::create(&tmp)?;
            let mut enc = flate2::GzBuilder::new()
                .write(std::io::BufWriter::new(out), flate2::Compression::fast());
            std::io::copy(&mut std::io::BufReader::new(src), &mut enc)?;
            let w = enc.finish()?;
            w.into_inner()
                .map_err(|e| anyhow::anyhow!("flushing gzip: {e}"))?
                .sync_all()?;
            let (d, size) = berth_store::digest_of_file(&tmp)?;
            self.blobs.adopt_file(&tmp, &d)?;
            Ok((d, size))
        })();
        let _ = std::fs::remove_file(&tmp);
        let (d, size) = res.map_err(|e| Error::Internal(e.context("compressing layer")))?;
        let blob = SourceBlob {
            digest: d.to_string(),
            media_type: DOCKER_LAYER_GZIP.into(),
            size,
            repos: vec![],
        };
        rec.blob = Some(blob.clone());
        self.meta
            .write(vec![WriteOp::put_json(Table::Layers, &rec.chain_id, &rec)?])?;
        Ok(blob)
    }
}
