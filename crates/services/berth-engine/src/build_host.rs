//! The engine as the builder's host: the container and image services
//! behind berth-builder's `BuildHost` port, and the build cache's part of
//! `system df` and `builder prune`.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::Context;
use berth_builder::{BuildHost, Progress, RootWork, StepContainer, StepLayer, StepOutput};
use berth_core::container::{ContainerConfig, ContainerSpec, HostConfig};
use futures_util::future::{BoxFuture, OptionFuture};
use serde_json::{Value, json};
use tokio::sync::mpsc;

use crate::images::ImageRecord;
use crate::layers::chain_ids;
use crate::{Engine, Error, LockExt, PullOptions, Result, WaitCondition};

/// The engine seen through the builder's port.
struct EngineHost(Arc<Engine>);

impl Engine {
    /// Refuses tags that are not valid references before any work starts.
    pub fn check_build_tags(&self, tags: &[String]) -> Result<()> {
        berth_builder::check_tags(tags)
    }

    /// Builds the Dockerfile in the context tar at `context`; returns the
    /// image id. Progress goes to `tx` in the classic builder's messages.
    pub async fn build(
        self: &Arc<Self>,
        context: PathBuf,
        opts: crate::BuildOptions,
        tx: Progress,
    ) -> Result<String> {
        berth_builder::Builder::new(Arc::new(EngineHost(self.clone())))
            .build(context, opts, tx)
            .await
    }

    /// `BuildCache` of /system/df, in Docker's form.
    pub fn build_cache_list(&self) -> Vec<berth_builder::cache_mounts::CacheMountView> {
        berth_builder::cache_mounts::list(&self.cfg.data_root)
    }

    /// POST /build/prune: cache mounts (the least recently used first,
    /// down to `keep_storage` bytes when given), and with `all` the step
    /// cache: unused untagged step images go, the others forget their key.
    pub fn build_cache_prune(
        &self,
        all: bool,
        filters: &HashMap<String, Vec<String>>,
        keep_storage: u64,
    ) -> Result<(Vec<String>, u64)> {
        let mut until = None;
        for (k, vals) in filters {
            match k.as_str() {
                "until" => {
                    for v in vals {
                        until = Some(crate::containers::parse_until(v)?);
                    }
                }
                other => return Err(Error::invalid(format!("invalid filter '{other}'"))),
            }
        }
        let (mut deleted, mut reclaimed) =
            berth_builder::cache_mounts::prune(&self.cfg.data_root, until, keep_storage);
        if all && until.is_none() && keep_storage == 0 {
            let (ids, bytes) = self.forget_step_cache()?;
            deleted.extend(ids);
            reclaimed += bytes;
        }
        Ok((deleted, reclaimed))
    }

    /// Step images without a tag, a child or a container are removed (with
    /// their untagged parents); the remaining ones lose their cache key, so
    /// that the next build runs every step again.
    fn forget_step_cache(&self) -> Result<(Vec<String>, u64)> {
        let heads: Vec<(String, u64)> = {
            let idx = self.images.r();
            let parents: std::collections::HashSet<&str> =
                idx.images.values().map(|i| i.parent.as_str()).collect();
            idx.images
                .values()
                .filter(|i| !i.build_key.is_empty())
                .filter(|i| !parents.contains(i.id.as_str()))
                .filter(|i| idx.repo_tags(&i.id).is_empty())
                .map(|i| (i.id.clone(), i.size))
                .collect()
        };
        let in_use: std::collections::HashSet<String> =
            self.containers.r().values().map(|e| e.image_id()).collect();
        let mut deleted = Vec::new();
        let mut reclaimed = 0;
        for (id, size) in heads {
            if in_use.contains(&id) || !self.images.r().images.contains_key(&id) {
                continue;
            }
            if let Ok(items) = self.image_delete(&id, false, true) {
                for it in items {
                    if let crate::ImageDeleteItem::Deleted(d) = it {
                        deleted.push(d);
                    }
                }
                reclaimed += size;
            }
        }
        let keyed: Vec<String> = self
            .images
            .r()
            .images
            .values()
            .filter(|i| !i.build_key.is_empty())
            .map(|i| i.id.clone())
            .collect();
        for id in keyed {
            self.update_image(&id, Vec::new(), |r| r.build_key.clear())?;
        }
        Ok((deleted, reclaimed))
    }
}

impl EngineHost {
    /// Writes a step image's layer, config and record (blocking).
    fn store_step_image(
        &self,
        base: Option<&ImageRecord>,
        mut config: Value,
        layer: Option<StepLayer<'_>>,
        build_key: &str,
    ) -> Result<ImageRecord> {
        let e = &self.0;
        let mut diff_ids = base.map(|b| b.diff_ids.clone()).unwrap_or_default();
        let mut size = base.map_or(0, |b| b.size);
        let mut ops = Vec::new();
        if let Some(layer) = layer {
            let diff_id = match layer {
                StepLayer::Tar(tar) => {
                    let f = std::fs::File::open(tar)?;
                    e.blobs
                        .put_reader(std::io::BufReader::new(f), None)
                        .map_err(|e| Error::Internal(e.context("storing the layer")))?
                        .0
                }
                StepLayer::Existing(d) => berth_store::Digest::parse(d)?,
            };
            let parent = chain_ids(&diff_ids).last().cloned();
            let (layer, op) = e
                .register_layer(parent.as_deref(), &diff_id)
                .map_err(|e| Error::Internal(e.context("registering the layer")))?;
            diff_ids.push(diff_id.to_string());
            size += layer.size;
            ops.extend(op);
        }
        config["rootfs"] = json!({ "type": "layers", "diff_ids": diff_ids });
        let created = config
            .get("created")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string();
        let raw = serde_json::to_vec(&config).context("encoding image config")?;
        let id = e.blobs.put(&raw)?.to_string();
        let rec = ImageRecord {
            id,
            diff_ids,
            size,
            created,
            parent: base.map(|b| b.id.clone()).unwrap_or_default(),
            build_key: build_key.to_string(),
            ..Default::default()
        };
        e.store_image_ops(rec.clone(), ops, None)?;
        Ok(rec)
    }

    /// Attaches to the container, starts it and forwards its output until
    /// it exits.
    async fn run(&self, id: &str, output: mpsc::Sender<StepOutput>) -> Result<i64> {
        let e = &self.0;
        let opts = crate::AttachOptions {
            stdin: false,
            stdout: true,
            stderr: true,
            logs: false,
            stream: true,
        };
        let attach = e.container_attach(id, opts).await?.stream;
        let forward = tokio::spawn(async move {
            if let Some(Ok(s)) = OptionFuture::from(attach).await {
                forward_frames(s.stream, output).await;
            }
        });
        let wait = e.container_wait(id, WaitCondition::NextExit)?;
        if let Err(err) = e.container_start(id).await {
            forward.abort();
            return Err(err);
        }
        let (code, _) = wait.await;
        let _ = tokio::time::timeout(std::time::Duration::from_secs(5), forward).await;
        Ok(code)
    }
}

/// Reads the frames of an attach stream and forwards their bytes, by the
/// stream the frame header names.
async fn forward_frames(
    mut stream: berth_core::runtime::RuntimeStream,
    output: mpsc::Sender<StepOutput>,
) {
    use tokio::io::AsyncReadExt;
    let mut header = [0u8; 8];
    loop {
        if stream.read_exact(&mut header).await.is_err() {
            return;
        }
        let len = u32::from_be_bytes([header[4], header[5], header[6], header[7]]) as usize;
        let mut buf = vec![0u8; len];
        if stream.read_exact(&mut buf).await.is_err() {
            return;
        }
        let chunk = if header[0] == 2 {
            StepOutput::Stderr(buf)
        } else {
            StepOutput::Stdout(buf)
        };
        if output.send(chunk).await.is_err() {
            return;
        }
    }
}

impl BuildHost for EngineHost {
    fn tmp_path(&self, prefix: &str) -> PathBuf {
        self.0.tmp_path(prefix)
    }

    fn data_root(&self) -> PathBuf {
        self.0.cfg.data_root.clone()
    }

    fn certs_dir(&self) -> PathBuf {
        self.0.cfg.certs_dir.clone()
    }

    fn resolve_image(&self, name: &str) -> Result<ImageRecord> {
        self.0.resolve_image(name)
    }

    fn image(&self, id: &str) -> Option<ImageRecord> {
        self.0.images.r().images.get(id).cloned()
    }

    fn step_images(&self, parent: &str, build_key: &str) -> Vec<ImageRecord> {
        let idx = self.0.images.r();
        idx.images
            .values()
            .filter(|i| i.parent == parent && i.build_key == build_key)
            .cloned()
            .collect()
    }

    fn image_config(&self, id: &str) -> Result<Value> {
        self.0.image_config_raw(id)
    }

    fn layer_dir(&self, chain_id: &str) -> PathBuf {
        self.0.layer_dir(chain_id)
    }

    fn store_image(
        &self,
        base: Option<&ImageRecord>,
        config: Value,
        layer: Option<StepLayer<'_>>,
        build_key: &str,
    ) -> Result<ImageRecord> {
        self.store_step_image(base, config, layer, build_key)
    }

    fn pull<'a>(
        &'a self,
        name: &'a str,
        credentials: Option<berth_distribution::Credentials>,
        tx: Progress,
    ) -> BoxFuture<'a, Result<ImageRecord>> {
        Box::pin(async move {
            let pull = PullOptions {
                image: name.to_string(),
                tag: None,
                platform: None,
                credentials,
            };
            let plan = self.0.pull_prepare(&pull).await?;
            let id = self.0.pull_run(plan, tx).await?;
            self.0.resolve_image(&id)
        })
    }

    fn tag_image(&self, id: &str, repo: &str, tag: Option<&str>) -> Result<()> {
        self.0.image_tag(id, repo, tag)
    }

    fn image_built(&self, id: &str) {
        self.0.object_event("image", id, "build", &[]);
    }

    fn create_container(&self, spec: StepContainer) -> BoxFuture<'_, Result<String>> {
        let spec = ContainerSpec {
            config: ContainerConfig {
                image: Some(spec.image),
                cmd: Some(spec.cmd),
                entrypoint: Some(vec![String::new()]),
                env: Some(spec.env),
                attach_stdout: Some(true),
                attach_stderr: Some(true),
                ..Default::default()
            },
            host_config: HostConfig {
                binds: (!spec.binds.is_empty()).then_some(spec.binds),
                network_mode: spec.network_mode,
                extra_hosts: (!spec.extra_hosts.is_empty()).then_some(spec.extra_hosts),
                memory: spec.resources.memory,
                memory_swap: spec.resources.memory_swap,
                shm_size: spec.resources.shm_size,
                cpu_shares: spec.resources.cpu_shares,
                cpuset_cpus: spec.resources.cpuset_cpus,
                cpuset_mems: spec.resources.cpuset_mems,
                cpu_period: spec.resources.cpu_period,
                cpu_quota: spec.resources.cpu_quota,
                ..Default::default()
            },
            endpoints: Default::default(),
            platform: None,
        };
        Box::pin(self.0.create_step_container(spec))
    }

    fn run_container<'a>(
        &'a self,
        id: &'a str,
        output: mpsc::Sender<StepOutput>,
    ) -> BoxFuture<'a, Result<i64>> {
        Box::pin(self.run(id, output))
    }

    fn remove_container<'a>(&'a self, id: &'a str) -> BoxFuture<'a, Result<()>> {
        Box::pin(self.0.container_remove(id, true, true))
    }

    fn keep_container(&self, id: &str) -> Result<()> {
        let e = self.0.get(id)?;
        let rec = e.update(|r| {
            r.build_step = false;
            r.clone()
        });
        self.0.persist_record(&rec)
    }

    fn container_upper_dir(&self, id: &str) -> PathBuf {
        self.0.overlay_dirs_of(id).0
    }

    fn with_container_root<'a>(&'a self, id: &'a str, work: RootWork) -> BoxFuture<'a, Result<()>> {
        Box::pin(self.0.with_root(id, crate::copy::View::RootOnly, work))
    }

    fn resolve_user(&self, rootfs: &Path, user: &str) -> std::result::Result<(u32, u32), String> {
        crate::spec::resolve_user(rootfs, user).map(|(u, g, _)| (u, g))
    }
}
