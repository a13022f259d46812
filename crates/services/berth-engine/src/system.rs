//! `/info` and `/version`, and facts about the host the daemon runs on.

use crate::{Engine, LockExt};
use berth_store::MetadataStoreExt;

/// The newest Engine API version berth speaks, and the oldest it accepts.
pub const API_VERSION: &str = "1.47";
pub const MIN_API_VERSION: &str = "1.24";
const BERTH_VERSION: &str = env!("CARGO_PKG_VERSION");

/// The daemon's own cgroup: the deepest path in /proc/self/cgroup, so that
/// containers land under whatever slice or limit the daemon was given.
pub fn own_cgroup_path() -> String {
    let raw = std::fs::read_to_string("/proc/self/cgroup").unwrap_or_default();
    raw.lines()
        .filter_map(|l| l.splitn(3, ':').nth(2))
        .max_by_key(|p| p.len())
        .filter(|p| !p.is_empty())
        .unwrap_or("/")
        .to_string()
}

fn kernel_version() -> String {
    nix::sys::utsname::uname()
        .map(|u| u.release().to_string_lossy().into_owned())
        .unwrap_or_default()
}

fn os_name() -> String {
    std::fs::read_to_string("/etc/os-release")
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix("PRETTY_NAME="))
        .map(|v| v.trim_matches('"').to_string())
        .unwrap_or_else(|| "Linux".into())
}

pub(crate) fn mem_total() -> i64 {
    std::fs::read_to_string("/proc/meminfo")
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix("MemTotal:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<i64>().ok())
        .map(|k| k * 1024)
        .unwrap_or(0)
}

pub fn cgroup_version() -> &'static str {
    if std::path::Path::new("/sys/fs/cgroup/cgroup.controllers").exists() {
        "2"
    } else {
        "1"
    }
}

/// What `/version` reports: berth's version, the API versions it speaks
/// and the host it runs on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VersionView {
    pub version: String,
    pub api_version: String,
    pub min_api_version: String,
    pub git_commit: String,
    pub os: String,
    /// in Go's spelling (amd64)
    pub arch: String,
    pub kernel_version: String,
    pub experimental: bool,
}

/// What `/info` reports: counts, the host, the daemon's settings and the
/// drivers it has.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SystemInfoView {
    pub id: String,
    /// whether memory+swap limits can be set (the kernel's swap accounting)
    pub swap_limit: bool,
    pub containers: usize,
    pub containers_running: usize,
    pub containers_stopped: usize,
    pub images: usize,
    pub storage_driver: String,
    pub data_root: String,
    pub debug: bool,
    /// open file descriptors of the daemon
    pub fds: i64,
    pub system_time: String,
    pub logging_driver: String,
    /// "1" or "2"
    pub cgroup_version: String,
    pub kernel_version: String,
    pub operating_system: String,
    /// in Rust's spelling (x86_64)
    pub architecture: String,
    pub cpus: i64,
    pub mem_total: i64,
    pub hostname: String,
    pub labels: Vec<String>,
    pub experimental: bool,
    pub server_version: String,
    pub default_runtime: String,
    /// the names of the one runtime
    pub runtime_names: Vec<String>,
    /// the executable of the default runtime
    pub runtime_path: String,
    pub init_binary: String,
    pub live_restore: bool,
    pub security_options: Vec<String>,
    pub volume_drivers: Vec<String>,
    pub network_drivers: Vec<String>,
    pub log_drivers: Vec<String>,
    /// as configured: CIDRs and hosts
    pub insecure_registries: Vec<String>,
    pub registry_mirrors: Vec<String>,
}

impl Engine {
    pub fn version(&self) -> VersionView {
        VersionView {
            version: BERTH_VERSION.into(),
            api_version: API_VERSION.into(),
            min_api_version: MIN_API_VERSION.into(),
            git_commit: option_env!("BERTH_GIT_COMMIT").unwrap_or("unknown").into(),
            os: "linux".into(),
            arch: std::env::consts::ARCH.replace("x86_64", "amd64"),
            kernel_version: kernel_version(),
            experimental: self.cfg.experimental,
        }
    }

    pub fn info(&self) -> SystemInfoView {
        let (total, running, stopped) = self.container_counts();
        let images = self.images.r().images.len();
        let hostname = nix::unistd::gethostname()
            .map(|h| h.to_string_lossy().into_owned())
            .unwrap_or_default();
        let settings = self.settings();
        SystemInfoView {
            swap_limit: crate::hostconfig::swap_accounting(),
            id: self.daemon_id(),
            containers: total,
            containers_running: running,
            containers_stopped: stopped,
            images,
            storage_driver: "overlay2".into(),
            data_root: self.cfg.data_root.display().to_string(),
            debug: settings.debug,
            fds: std::fs::read_dir("/proc/self/fd")
                .map(|d| d.count() as i64)
                .unwrap_or(0),
            system_time: crate::now_rfc3339(),
            logging_driver: settings.log_driver,
            cgroup_version: cgroup_version().into(),
            kernel_version: kernel_version(),
            operating_system: os_name(),
            architecture: std::env::consts::ARCH.into(),
            cpus: std::thread::available_parallelism()
                .map(|n| n.get() as i64)
                .unwrap_or(1),
            mem_total: mem_total(),
            hostname,
            labels: settings.labels,
            experimental: self.cfg.experimental,
            server_version: BERTH_VERSION.into(),
            // libcontainer in berth's own shim is the one runtime, listed
            // under runc's name, which clients look for (create also takes
            // "berth" and "io.containerd.runc.v2" for it)
            default_runtime: "runc".into(),
            runtime_names: vec!["runc".into()],
            runtime_path: self.cfg.shim_binary.display().to_string(),
            init_binary: self
                .cfg
                .init_path
                .as_ref()
                .map(|p| p.display().to_string())
                .unwrap_or_else(|| "docker-init".into()),
            live_restore: settings.live_restore,
            // Docker's default seccomp profile applies to every container
            // that does not say otherwise
            security_options: vec!["name=seccomp,profile=builtin".into()],
            volume_drivers: self.volumes.driver_names(),
            network_drivers: vec!["bridge".into(), "host".into(), "none".into()],
            log_drivers: berth_logdriver::DRIVERS
                .iter()
                .map(|d| d.to_string())
                .collect(),
            insecure_registries: settings.insecure_registries,
            registry_mirrors: settings.registry_mirrors,
        }
    }

    /// A stable id for this daemon's data root.
    pub(crate) fn daemon_id(&self) -> String {
        let p = self.cfg.data_root.join("engine-id");
        if let Ok(id) = std::fs::read_to_string(&p) {
            return id.trim().to_string();
        }
        let id = crate::random_id();
        let _ = std::fs::write(&p, &id);
        id
    }

    pub fn uptime(&self) -> std::time::Duration {
        self.started.elapsed()
    }
}

impl Engine {
    /// GET /system/df (API ≤ 1.51 form): the layers' total size, images
    /// with their shared sizes and container counts, containers with the
    /// size of their writable layers, volumes with their usage.
    pub fn system_df(&self, types: &[String]) -> crate::Result<DiskUsage> {
        use std::collections::HashMap;
        let want = |t: &str| types.is_empty() || types.iter().any(|x| x == t);
        let mut usage = DiskUsage::default();
        if want("image") {
            let layers = self
                .meta
                .list_json::<crate::layers::LayerRecord>(berth_store::Table::Layers)?;
            let layer_size: HashMap<String, u64> =
                layers.iter().map(|(c, l)| (c.clone(), l.size)).collect();
            let (users, chains): (HashMap<String, usize>, HashMap<String, Vec<String>>) = {
                let idx = self.images.r();
                let chains: HashMap<String, Vec<String>> = idx
                    .images
                    .values()
                    .map(|i| (i.id.clone(), crate::layers::chain_ids(&i.diff_ids)))
                    .collect();
                let mut users: HashMap<String, usize> = HashMap::new();
                for c in chains.values().flatten() {
                    *users.entry(c.clone()).or_default() += 1;
                }
                (users, chains)
            };
            let images: Vec<DiskUsageImage> = self
                .image_list(false, &HashMap::new())?
                .iter()
                .map(|img| {
                    let shared_size = chains
                        .get(&img.record.id)
                        .map(|cs| {
                            cs.iter()
                                .filter(|c| users.get(*c).copied().unwrap_or(0) > 1)
                                .map(|c| layer_size.get(c).copied().unwrap_or(0) as i64)
                                .sum()
                        })
                        .unwrap_or(0);
                    DiskUsageImage {
                        image: img.clone(),
                        shared_size,
                    }
                })
                .collect();
            usage.layers_size = Some(layer_size.values().sum());
            usage.images = Some(images);
        }
        if want("container") {
            usage.containers = Some(self.container_list(&crate::ListOptions {
                all: true,
                size: true,
                ..Default::default()
            })?);
        }
        if want("volume") {
            usage.volumes = Some(self.volume_usage_list()?);
        }
        if want("build-cache") {
            usage.build_cache = Some(self.build_cache_list());
        }
        Ok(usage)
    }
}

/// What `system df` shows: each part only when asked for.
#[derive(Debug, Clone, Default)]
pub struct DiskUsage {
    /// all layers together
    pub layers_size: Option<u64>,
    pub images: Option<Vec<DiskUsageImage>>,
    pub containers: Option<Vec<crate::ContainerView>>,
    pub volumes: Option<Vec<crate::VolumeView>>,
    pub build_cache: Option<Vec<berth_builder::cache_mounts::CacheMountView>>,
}

#[derive(Debug, Clone)]
pub struct DiskUsageImage {
    pub image: crate::ImageSummaryView,
    /// bytes of its layers that other images share
    pub shared_size: i64,
}
