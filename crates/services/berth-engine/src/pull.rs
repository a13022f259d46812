//! `docker pull`: resolve the reference to one image manifest, then fetch
//! its layers several at a time, each unpacked as soon as it is down.
//! Progress goes out as the JSON messages Docker's clients render. The
//! image appears (record, tag) only when every layer is in place, so a
//! daemon killed mid-pull shows no half image.

use berth_store::MetadataStoreExt;
use std::sync::Arc;

use anyhow::Context;
use berth_core::verify::{ImageOrigin, ImageToVerify};
use berth_distribution::manifest::{self, ImageManifest, Index, is_index};
use berth_distribution::{Credentials, DistError, RegistryClient};
use berth_image::Reference;
use berth_store::{Digest, Table, WriteOp};
use futures_util::StreamExt;
use http_body_util::BodyExt;
use serde_json::{Value, json};
use sha2::Digest as _;
use tokio::io::AsyncWriteExt;
use tokio::sync::mpsc;

use crate::images::ImageRecord;
use crate::layers::{SourceBlob, chain_ids};
use crate::{Engine, Error, LockExt, Result};

#[derive(Debug, Clone, Default)]
pub struct PullOptions {
    pub image: String,
    pub tag: Option<String>,
    pub platform: Option<String>,
    pub credentials: Option<Credentials>,
}

/// A pull whose manifest is known: what is left is moving blobs.
pub struct PullPlan {
    reference: Reference,
    repo: String,
    client: Arc<RegistryClient>,
    manifest_digest: Digest,
    manifest: ImageManifest,
}

pub type Progress = mpsc::Sender<Value>;

/// The message that ends a progress stream with an error, as Docker's.
pub fn progress_error(msg: &str) -> Value {
    json!({ "errorDetail": { "message": msg }, "error": msg })
}

/// Where a reference's registry answers, and whether it is insecure
/// (loopback, as Docker allows, and `insecure-registries`): tried over
/// unverified TLS, then plain HTTP.
pub(crate) fn registry_endpoint(domain: &str, insecure: &[String]) -> (String, bool) {
    let host = if domain == "docker.io" {
        "registry-1.docker.io".to_string()
    } else {
        domain.to_string()
    };
    let bare = host
        .strip_prefix('[')
        .and_then(|h| h.split_once(']').map(|(a, _)| a))
        .unwrap_or_else(|| host.split(':').next().unwrap_or(&host));
    let loopback = bare == "localhost"
        || bare
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback());
    let listed = insecure.iter().any(|i| {
        i == &host
            || i == bare
            || berth_bridge::ipam::Subnet::parse(i).is_ok_and(|net| {
                bare.parse::<std::net::Ipv4Addr>()
                    .is_ok_and(|ip| net.contains(ip))
            })
    });
    (host, loopback || listed)
}

pub(crate) fn dist_error(e: DistError) -> Error {
    match e {
        DistError::NotFound(m) => Error::not_found(m),
        DistError::Unauthorized(m) | DistError::Denied(m) => Error::Unauthorized(m),
        other => Error::Internal(anyhow::anyhow!("{other}")),
    }
}

fn url_encode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// The 12-character id progress lines carry (by characters: a remote
/// manifest's digest is not validated yet when its line is first shown).
pub(crate) fn short(d: &str) -> String {
    d.trim_start_matches("sha256:").chars().take(12).collect()
}

pub(crate) async fn say(tx: &Progress, status: &str, id: Option<&str>) {
    let mut m = json!({ "status": status });
    if let Some(id) = id {
        m["id"] = json!(id);
        m["progressDetail"] = json!({});
    }
    let _ = tx.send(m).await;
}

fn progress_msg(status: &str, id: &str, current: u64, total: u64) -> Value {
    json!({
        "status": status,
        "progressDetail": { "current": current, "total": total },
        "progress": berth_units::progress_bar(current, total),
        "id": id,
    })
}

impl Engine {
    /// A client of the registry that serves `domain` (a reference's
    /// domain), insecure or not by the daemon's settings.
    pub(crate) async fn registry_client(
        &self,
        domain: &str,
        creds: Option<Credentials>,
    ) -> std::result::Result<RegistryClient, DistError> {
        let (host, insecure) = registry_endpoint(domain, &self.settings().insecure_registries);
        RegistryClient::connect(&host, insecure, creds, &self.cfg.certs_dir).await
    }

    /// Where a pull from `domain` asks, in order: its mirrors first
    /// (`registry-mirrors` for Docker Hub, `registry-mirrors-for` for any
    /// registry), then the registry itself; each with whether it is
    /// plain HTTP.
    pub(crate) fn pull_endpoints(&self, domain: &str) -> Vec<(String, bool)> {
        let mut mirrors: Vec<String> = Vec::new();
        if domain == "docker.io" {
            mirrors.extend(self.settings().registry_mirrors);
        }
        if let Some(more) = self.cfg.settings.registry_mirrors_for.get(domain) {
            mirrors.extend(more.iter().cloned());
        }
        let mut candidates: Vec<(String, bool)> = mirrors
            .iter()
            .map(|m| {
                let plain = m.starts_with("http://");
                let host = m
                    .trim_start_matches("http://")
                    .trim_start_matches("https://")
                    .trim_end_matches('/')
                    .to_string();
                (host, plain)
            })
            .collect();
        candidates.push(registry_endpoint(
            domain,
            &self.settings().insecure_registries,
        ));
        candidates
    }

    /// `docker login`: checks the credentials with the registry.
    pub async fn registry_login(&self, server: &str, creds: Credentials) -> Result<()> {
        crate::validate::server_address(server)?;
        let host = server
            .trim_start_matches("https://")
            .trim_start_matches("http://")
            .split('/')
            .next()
            .unwrap_or_default();
        let host = match host {
            "" | "index.docker.io" | "registry-1.docker.io" => "docker.io",
            h => h,
        };
        let client = self
            .registry_client(host, Some(creds))
            .await
            .map_err(dist_error)?;
        client.check_login().await.map_err(dist_error)
    }

    /// `docker search`: the v1 search API of the index the term names
    /// (Docker Hub's unless the term starts with a registry host).
    pub async fn image_search(&self, term: &str, limit: u32) -> Result<Vec<Value>> {
        let (domain, q) = match term.split_once('/') {
            Some((h, rest)) if h.contains('.') || h.contains(':') || h == "localhost" => (h, rest),
            _ => ("index.docker.io", term),
        };
        let (host, _) = registry_endpoint(domain, &self.settings().insecure_registries);
        let fail = |e: String| Error::Internal(anyhow::anyhow!("cannot search {host}: {e}"));
        let client = self
            .registry_client(domain, None)
            .await
            .map_err(|e| fail(e.to_string()))?;
        let mut path = format!("/v1/search?n={limit}&q=");
        path.push_str(&url_encode(q));
        let resp = client
            .send(
                hyper::Method::GET,
                &path,
                &[],
                berth_distribution::Payload::Empty,
                "",
            )
            .await
            .map_err(|e| fail(e.to_string()))?;
        let status = resp.status();
        let body = berth_distribution::client::read_body(resp, 4 << 20)
            .await
            .map_err(|e| fail(e.to_string()))?;
        if !status.is_success() {
            return Err(fail(format!("the index answered {status}")));
        }
        let v: Value =
            serde_json::from_slice(&body).map_err(|e| fail(format!("bad answer: {e}")))?;
        Ok(v.get("results")
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default())
    }

    /// `POST /images/create?fromImage=`: the pulls the request asks for,
    /// run one after another in the background. The first is prepared
    /// before this returns, so that its refusal (a bad name, no such
    /// repository, no credentials) is an error status; a later failure
    /// ends the stream with an error message.
    pub async fn pull_stream(
        self: &Arc<Self>,
        opts: &PullOptions,
    ) -> Result<mpsc::Receiver<Value>> {
        let mut requests = self.pull_requests(opts).await?.into_iter();
        let first = requests
            .next()
            .ok_or_else(|| Error::invalid("nothing to pull"))?;
        let plan = self.pull_prepare(&first).await?;
        let (tx, rx) = mpsc::channel::<Value>(64);
        let this = self.clone();
        tokio::spawn(async move {
            let mut plan = Some(plan);
            loop {
                let next = match plan.take() {
                    Some(p) => Ok(p),
                    None => match requests.next() {
                        Some(r) => this.pull_prepare(&r).await,
                        None => return,
                    },
                };
                let ran = match next {
                    Ok(p) => this.pull_run(p, tx.clone()).await.map(|_| ()),
                    Err(err) => Err(err),
                };
                if let Err(err) = ran {
                    let _ = tx.send(progress_error(&err.to_string())).await;
                    return;
                }
            }
        });
        Ok(rx)
    }

    /// The pulls a request asks for: one, or with no tag given at all
    /// (`pull --all-tags`), one per tag of the repository.
    pub async fn pull_requests(&self, opts: &PullOptions) -> Result<Vec<PullOptions>> {
        let reference =
            Reference::parse_name_only(&opts.image).map_err(|e| Error::invalid(e.to_string()))?;
        let all = opts.tag.as_deref().is_none_or(str::is_empty)
            && reference.tag.is_none()
            && reference.digest.is_none();
        if !all {
            return Ok(vec![opts.clone()]);
        }
        let client = self
            .registry_client(&reference.domain, opts.credentials.clone())
            .await
            .map_err(dist_error)?;
        let mut tags = client.tags(&reference.path).await.map_err(dist_error)?;
        tags.sort();
        if tags.is_empty() {
            return Err(Error::not_found(format!(
                "repository {} has no tags",
                reference.familiar_name()
            )));
        }
        Ok(tags
            .into_iter()
            .map(|t| PullOptions {
                tag: Some(t),
                ..opts.clone()
            })
            .collect())
    }

    /// Resolves the reference to one image manifest (choosing the
    /// platform in an index). Errors here are answered with an HTTP
    /// status, before any progress is sent.
    pub async fn pull_prepare(&self, opts: &PullOptions) -> Result<PullPlan> {
        let mut reference =
            Reference::parse_name_only(&opts.image).map_err(|e| Error::invalid(e.to_string()))?;
        if let Some(t) = opts.tag.as_deref().filter(|t| !t.is_empty()) {
            if t.starts_with("sha256:") {
                berth_store::Digest::parse(t).map_err(|e| Error::invalid(format!("{e:#}")))?;
                reference.digest = Some(t.to_string());
            } else {
                berth_image::reference::validate_tag(t)
                    .map_err(|e| Error::invalid(e.to_string()))?;
                reference.tag = Some(t.to_string());
            }
        }
        if reference.tag.is_none() && reference.digest.is_none() {
            reference.tag = Some("latest".into());
        }
        let want = manifest::parse_platform(opts.platform.as_deref()).map_err(Error::invalid)?;
        let repo = reference.path.clone();
        let what = reference
            .digest
            .clone()
            .or_else(|| reference.tag.clone())
            .unwrap_or_default();
        let not_found = |e: DistError| match e {
            DistError::NotFound(_) => Error::not_found(format!(
                "manifest for {} not found: manifest unknown: manifest unknown",
                reference.familiar()
            )),
            DistError::Unauthorized(_) | DistError::Denied(_) => Error::not_found(format!(
                "pull access denied for {}, repository does not exist or may require 'docker login': {e}",
                reference.familiar_name()
            )),
            other => dist_error(other),
        };
        let candidates = self.pull_endpoints(&reference.domain);
        let mut found = None;
        let mut last_err = None;
        for (i, (host, plain)) in candidates.iter().enumerate() {
            let last = i + 1 == candidates.len();
            // credentials are the registry's own: a mirror (perhaps over
            // plain HTTP) does not get them
            let creds = if last { opts.credentials.clone() } else { None };
            let attempt =
                match RegistryClient::connect(host, *plain, creds, &self.cfg.certs_dir).await {
                    Ok(c) => c.manifest(&repo, &what).await.map(|m| (c, m)),
                    Err(e) => Err(e),
                };
            match attempt {
                Ok(ok) => {
                    found = Some((host.clone(), ok));
                    break;
                }
                Err(e) if !last => tracing::info!("mirror {host}: {e}; trying the next"),
                Err(e) => last_err = Some(e),
            }
        }
        let (host, (client, mut m)) = match (found, last_err) {
            (Some(f), _) => f,
            (None, Some(e)) => return Err(not_found(e)),
            (None, None) => return Err(Error::not_found("no registry to pull from")),
        };
        let client = Arc::new(client);
        if is_index(&m.media_type) {
            let idx: Index = serde_json::from_slice(&m.body)
                .map_err(|e| Error::invalid(format!("{host}: bad image index: {e}")))?;
            let d = manifest::select_platform(&idx, &want).ok_or_else(|| {
                Error::not_found(format!(
                    "no matching manifest for {}/{} in the manifest list entries",
                    want.os, want.architecture
                ))
            })?;
            m = client.manifest(&repo, &d.digest).await.map_err(not_found)?;
        }
        if m.media_type
            .starts_with("application/vnd.docker.distribution.manifest.v1")
        {
            return Err(Error::invalid(format!(
                "{}: schema 1 manifests are not supported (Docker removed them in 2020); push the image again with a current client",
                reference.familiar()
            )));
        }
        let parsed: ImageManifest = serde_json::from_slice(&m.body)
            .map_err(|e| Error::invalid(format!("{host}: bad image manifest: {e}")))?;
        // when the tag named an index, the digest users see is the index's
        let manifest_digest = match &reference.digest {
            Some(d) => Digest::parse(d).map_err(|e| Error::invalid(format!("{e:#}")))?,
            None => m.digest.clone(),
        };
        Ok(PullPlan {
            reference,
            repo,
            client,
            manifest_digest,
            manifest: parsed,
        })
    }

    /// Moves the plan's blobs, sending progress; returns the image id.
    pub async fn pull_run(self: &Arc<Self>, plan: PullPlan, tx: Progress) -> Result<String> {
        let r = &plan.reference;
        let label = r
            .tag
            .clone()
            .or_else(|| r.digest.clone())
            .unwrap_or_default();
        say(&tx, &format!("Pulling from {}", r.path), Some(&label)).await;

        let cfg_desc = &plan.manifest.config;
        let cfg_digest =
            Digest::parse(&cfg_desc.digest).map_err(|e| Error::invalid(format!("{e:#}")))?;
        // before any blob: a refused image costs no download
        self.verify_image(&ImageToVerify {
            origin: ImageOrigin::Pull,
            reference: Some(&r.to_string()),
            manifest_digest: Some(plan.manifest_digest.as_str()),
            config_digest: cfg_digest.as_str(),
        })?;
        let config_raw = if self.blobs.exists(&cfg_digest) {
            self.blobs.read(&cfg_digest)?
        } else {
            let resp = plan
                .client
                .blob(&plan.repo, cfg_digest.as_str())
                .await
                .map_err(dist_error)?;
            let raw = berth_distribution::client::read_body(resp, 16 << 20)
                .await
                .map_err(dist_error)?;
            self.blobs
                .put_reader(&raw[..], Some(&cfg_digest))
                .map_err(|e| Error::invalid(format!("image config: {e:#}")))?;
            raw
        };
        let config: Value = serde_json::from_slice(&config_raw)
            .map_err(|e| Error::invalid(format!("bad image config: {e}")))?;
        let diff_ids = crate::layers::config_diff_ids(&config);
        let layers = &plan.manifest.layers;
        if diff_ids.len() != layers.len() {
            return Err(Error::invalid(format!(
                "image config lists {} layers, the manifest {}",
                diff_ids.len(),
                layers.len()
            )));
        }
        let chains = chain_ids(&diff_ids);

        let limit = Arc::new(tokio::sync::Semaphore::new(
            self.settings().max_concurrent_downloads.max(1),
        ));
        let mut tasks = Vec::new();
        for (i, desc) in layers.iter().enumerate() {
            let id = short(&desc.digest);
            let present = self
                .meta
                .get_json::<crate::layers::LayerRecord>(Table::Layers, &chains[i])?
                .is_some()
                && self.layer_dir(&chains[i]).exists();
            if present {
                say(&tx, "Already exists", Some(&id)).await;
                continue;
            }
            say(&tx, "Pulling fs layer", Some(&id)).await;
            let job = LayerJob {
                repo: plan.repo.clone(),
                source: format!("{}/{}", plan.client.host(), plan.repo),
                digest: Digest::parse(&desc.digest)
                    .map_err(|e| Error::invalid(format!("{e:#}")))?,
                media_type: desc.media_type.clone(),
                size: desc.size,
                diff_id: Digest::parse(&diff_ids[i])
                    .map_err(|e| Error::invalid(format!("{e:#}")))?,
                parent: i.checked_sub(1).map(|p| chains[p].clone()),
                id,
            };
            let (this, client, tx, limit) =
                (self.clone(), plan.client.clone(), tx.clone(), limit.clone());
            tasks.push(tokio::spawn(async move {
                let _permit = limit.acquire_owned().await;
                this.pull_layer(&client, job, &tx).await
            }));
        }
        let mut ops = Vec::new();
        let mut fresh = std::collections::HashMap::new();
        let mut failure = None;
        for t in tasks {
            match t.await {
                Ok(Ok((rec, op))) => {
                    fresh.insert(rec.chain_id.clone(), rec.size);
                    ops.push(op)
                }
                Ok(Err(e)) => failure = failure.or(Some(e)),
                Err(e) => failure = failure.or(Some(Error::Internal(anyhow::anyhow!("{e}")))),
            }
        }
        if let Some(e) = failure {
            // finished layers stay: they are recorded, and the next pull
            // finds them "Already exists"
            self.meta.write(ops)?;
            return Err(e);
        }

        let id = cfg_digest.to_string();
        let repo_digest = format!("{}@{}", r.repository(), plan.manifest_digest);
        let target = r.tag.as_ref().map(|_| r.clone());
        let up_to_date = {
            let idx = self.images.r();
            idx.images.contains_key(&id)
                && target
                    .as_ref()
                    .is_none_or(|t| idx.tags.get(&t.to_string()) == Some(&id))
        };
        let mut size = 0u64;
        for c in &chains {
            if let Some(s) = fresh.get(c) {
                size += s;
            } else if let Some(l) = self
                .meta
                .get_json::<crate::layers::LayerRecord>(Table::Layers, c)?
            {
                size += l.size;
            }
        }
        let existing = self.images.r().images.get(&id).cloned();
        let mut rec = existing
            .unwrap_or_else(|| ImageRecord::from_config(&id, diff_ids.clone(), size, &config));
        if !rec.repo_digests.contains(&repo_digest) {
            rec.repo_digests.push(repo_digest);
        }
        if target.is_some() && !up_to_date {
            rec.last_tag_time = crate::now_rfc3339();
        }
        self.store_image_ops(rec, ops, target)?;
        say(&tx, &format!("Digest: {}", plan.manifest_digest), None).await;
        let status = if up_to_date {
            format!("Status: Image is up to date for {}", r.familiar())
        } else {
            format!("Status: Downloaded newer image for {}", r.familiar())
        };
        say(&tx, &status, None).await;
        self.object_event("image", &r.familiar(), "pull", &[("name", r.familiar())]);
        Ok(id)
    }

    /// Downloads one layer blob (verifying its digest), unpacks it
    /// (verifying the diff id) and returns its record's write.
    async fn pull_layer(
        self: &Arc<Self>,
        client: &RegistryClient,
        job: LayerJob,
        tx: &Progress,
    ) -> Result<(crate::layers::LayerRecord, WriteOp)> {
        if !self.blobs.exists(&job.digest) {
            self.download(client, &job, tx).await?;
        }
        say(tx, "Verifying Checksum", Some(&job.id)).await;
        say(tx, "Download complete", Some(&job.id)).await;
        let this = self.clone();
        let tx2 = tx.clone();
        let id = job.id.clone();
        let done = tokio::task::spawn_blocking(move || {
            let f = this.blobs.open_blob(&job.digest)?;
            let total = job.size;
            let counting = CountingReader {
                inner: std::io::BufReader::with_capacity(256 * 1024, f),
                read: 0,
                reported: 0,
                report: Box::new(move |n| {
                    let _ = tx2.blocking_send(progress_msg("Extracting", &job.id, n, total));
                }),
            };
            let reader = berth_image::compression::decompress(counting)?;
            let blob = SourceBlob {
                digest: job.digest.to_string(),
                media_type: job.media_type.clone(),
                size: job.size,
                repos: vec![job.source.clone()],
            };
            this.unpack_layer(job.parent.as_deref(), &job.diff_id, reader, Some(blob))
                .map_err(|e| Error::invalid(format!("layer {}: {e:#}", job.digest)))
        })
        .await
        .map_err(|e| Error::Internal(anyhow::anyhow!("unpack task failed: {e}")))??;
        say(tx, "Pull complete", Some(&id)).await;
        Ok(done)
    }

    async fn download(&self, client: &RegistryClient, job: &LayerJob, tx: &Progress) -> Result<()> {
        let resp = client
            .blob(&job.repo, job.digest.as_str())
            .await
            .map_err(dist_error)?;
        let tmp = self.tmp_path("layer");
        let res: Result<()> = async {
            let mut f = tokio::fs::File::create(&tmp)
                .await
                .context("creating download file")?;
            let mut body = resp.into_body().into_data_stream();
            let mut hasher = sha2::Sha256::new();
            let mut got = 0u64;
            let mut reported = 0u64;
            while let Some(chunk) = body.next().await {
                let chunk = chunk.map_err(|e| {
                    Error::Internal(anyhow::anyhow!(
                        "{}: downloading {}: {e}",
                        client.host(),
                        job.digest
                    ))
                })?;
                hasher.update(&chunk);
                f.write_all(&chunk).await.context("writing download")?;
                got += chunk.len() as u64;
                if got - reported >= 512 * 1024 || got == job.size {
                    reported = got;
                    let _ = tx
                        .send(progress_msg("Downloading", &job.id, got, job.size))
                        .await;
                }
            }
            f.sync_all().await.context("syncing download")?;
            if got != job.size {
                return Err(Error::Internal(anyhow::anyhow!(
                    "{}: layer {} ended after {got} of {} bytes",
                    client.host(),
                    job.digest,
                    job.size
                )));
            }
            let d = Digest::from_hasher(hasher);
            if d != job.digest {
                return Err(Error::invalid(format!(
                    "{}: layer {} arrived with digest {d}",
                    client.host(),
                    job.digest
                )));
            }
            self.metrics().pulled(got);
            self.blobs
                .adopt_file(&tmp, &job.digest)
                .map_err(|e| Error::Internal(anyhow::anyhow!("storing layer: {e:#}")))?;
            Ok(())
        }
        .await;
        let _ = tokio::fs::remove_file(&tmp).await;
        res
    }
}

struct LayerJob {
    repo: String,
    /// "host/repo", remembered for cross-repository mounts
    source: String,
    digest: Digest,
    media_type: String,
    size: u64,
    diff_id: Digest,
    parent: Option<String>,
    /// the short digest progress lines carry
    id: String,
}

struct CountingReader<R> {
    inner: R,
    read: u64,
    reported: u64,
    report: Box<dyn Fn(u64) + Send>,
}

impl<R: std::io::Read> std::io::Read for CountingReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.read += n as u64;
        if self.read - self.reported >= 512 * 1024 || (n == 0 && self.read != self.reported) {
            self.reported = self.read;
            (self.report)(self.read);
        }
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loopback_and_listed_registries_speak_http() {
        assert_eq!(
            registry_endpoint("127.0.0.1:5000", &[]),
            ("127.0.0.1:5000".into(), true)
        );
        assert!(registry_endpoint("localhost:5000", &[]).1);
        assert!(registry_endpoint("[::1]:5000", &[]).1);
        assert_eq!(
            registry_endpoint("docker.io", &[]),
            ("registry-1.docker.io".into(), false)
        );
        assert!(!registry_endpoint("10.1.2.3:5000", &[]).1);
        assert!(registry_endpoint("10.1.2.3:5000", &["10.0.0.0/8".into()]).1);
        assert!(registry_endpoint("reg.example:5000", &["reg.example:5000".into()]).1);
    }
}
