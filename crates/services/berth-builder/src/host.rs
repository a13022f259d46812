//! The builder's port: what it needs of the container and image services.
//! The engine implements it; unit tests implement it with fakes. Nothing
//! here is Docker's wire format: a step container is described by what a
//! step needs, and a step's exit code is a value.

use std::path::{Path, PathBuf};

use berth_archive::root::Root;
use berth_core::error::Result;
use berth_core::image::ImageRecord;
use futures_util::future::BoxFuture;
use serde_json::Value;
use tokio::sync::mpsc;

/// Progress messages of a build or a pull, in Docker's JSON stream form.
pub type Progress = mpsc::Sender<Value>;

/// Work on a container's root filesystem, run on a blocking thread.
pub type RootWork = Box<dyn FnOnce(&Root) -> Result<()> + Send>;

/// A container for one step: run for RUN, never started for COPY/ADD.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct StepContainer {
    pub image: String,
    /// the whole command line; a step container has no entrypoint
    pub cmd: Vec<String>,
    pub env: Vec<String>,
    /// `host:container[:ro]` binds of `RUN --mount`
    pub binds: Vec<String>,
    /// `none`, `host`, or None for the default network
    pub network_mode: Option<String>,
    pub extra_hosts: Vec<String>,
    pub resources: StepResources,
}

/// The limits `POST /build` sets on every RUN container (`memory`,
/// `memswap`, `shmsize`, `cpushares`, `cpusetcpus`, `cpusetmems`,
/// `cpuperiod`, `cpuquota`), as Docker's classic builder does.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct StepResources {
    pub memory: Option<i64>,
    pub memory_swap: Option<i64>,
    pub shm_size: Option<i64>,
    pub cpu_shares: Option<i64>,
    pub cpuset_cpus: Option<String>,
    pub cpuset_mems: Option<String>,
    pub cpu_period: Option<i64>,
    pub cpu_quota: Option<i64>,
}

/// A chunk of a RUN's output, by the stream it came on.
#[derive(Debug, Clone, PartialEq)]
pub enum StepOutput {
    Stdout(Vec<u8>),
    Stderr(Vec<u8>),
}

/// The layer of a step's image.
pub enum StepLayer<'a> {
    /// a layer tar written from the step container's changes
    Tar(&'a Path),
    /// a layer the store has already (`--cache-from`), by diff id
    Existing(&'a str),
}

pub trait BuildHost: Send + Sync + 'static {
    /// A fresh path in the data root's scratch directory.
    fn tmp_path(&self, prefix: &str) -> PathBuf;
    /// Where the cache mounts of `RUN --mount=type=cache` live.
    fn data_root(&self) -> PathBuf;
    /// The certificates directory for registries (ADD's downloads).
    fn certs_dir(&self) -> PathBuf;

    /// An image by reference, full id or unique id prefix.
    fn resolve_image(&self, name: &str) -> Result<ImageRecord>;
    /// An image by full id.
    fn image(&self, id: &str) -> Option<ImageRecord>;
    /// Step images of `parent` (empty for none) recorded with `build_key`.
    fn step_images(&self, parent: &str, build_key: &str) -> Vec<ImageRecord>;
    fn image_config(&self, id: &str) -> Result<Value>;
    /// The unpacked directory of the layer stack `chain_id`.
    fn layer_dir(&self, chain_id: &str) -> PathBuf;
    /// Stores an image (blocking): `config` on top of `base` with `layer`
    /// added; the host fills in `rootfs`.
    fn store_image(
        &self,
        base: Option<&ImageRecord>,
        config: Value,
        layer: Option<StepLayer<'_>>,
        build_key: &str,
    ) -> Result<ImageRecord>;
    /// Pulls `name` for a FROM, reporting progress to `tx`.
    fn pull<'a>(
        &'a self,
        name: &'a str,
        credentials: Option<berth_distribution::Credentials>,
        tx: Progress,
    ) -> BoxFuture<'a, Result<ImageRecord>>;
    fn tag_image(&self, id: &str, repo: &str, tag: Option<&str>) -> Result<()>;
    /// The `build` event of the finished image.
    fn image_built(&self, id: &str);

    fn create_container(&self, spec: StepContainer) -> BoxFuture<'_, Result<String>>;
    /// Starts the container, sends its output to `output` and returns its
    /// exit code.
    fn run_container<'a>(
        &'a self,
        id: &'a str,
        output: mpsc::Sender<StepOutput>,
    ) -> BoxFuture<'a, Result<i64>>;
    fn remove_container<'a>(&'a self, id: &'a str) -> BoxFuture<'a, Result<()>>;
    /// A step container the build leaves behind (`rm=false`, a failed
    /// step): an ordinary container from now on, that the daemon's start
    /// does not clear away as an interrupted build's.
    fn keep_container(&self, id: &str) -> Result<()>;
    /// The writable layer of a container that is not running.
    fn container_upper_dir(&self, id: &str) -> PathBuf;
    /// Runs `work` on the root of a container (its image and writable
    /// layer, without volumes).
    fn with_container_root<'a>(&'a self, id: &'a str, work: RootWork) -> BoxFuture<'a, Result<()>>;
    /// uid and gid of `user` (`name|uid[:group|gid]`) in a root filesystem.
    fn resolve_user(&self, rootfs: &Path, user: &str) -> std::result::Result<(u32, u32), String>;
}
