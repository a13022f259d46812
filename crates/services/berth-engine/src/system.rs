//! `/info` and `/version`, and facts about the host the daemon runs on.

use berth_store::MetadataStoreExt;
use bollard_stubs::models::{
    SystemInfo, SystemVersion, SystemVersionComponents, SystemVersionPlatform,
};

use crate::{Engine, LockExt};

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

impl Engine {
    pub fn version(&self) -> SystemVersion {
        let component = SystemVersionComponents {
            name: "Engine".into(),
            version: BERTH_VERSION.into(),
            details: Some(
                [
                    ("ApiVersion", API_VERSION.to_string()),
                    ("MinAPIVersion", MIN_API_VERSION.to_string()),
                    ("Os", "linux".to_string()),
                    ("Arch", "amd64".to_string()),
                    ("KernelVersion", kernel_version()),
                ]
                .into_iter()
                .map(|(k, v)| (k.to_string(), v))
                .collect(),
            ),
        };
        SystemVersion {
            platform: Some(SystemVersionPlatform {
                name: format!("berth {BERTH_VERSION}"),
            }),
            components: Some(vec![component]),
            version: Some(BERTH_VERSION.into()),
            api_version: Some(API_VERSION.into()),
            min_api_version: Some(MIN_API_VERSION.into()),
            git_commit: Some(option_env!("BERTH_GIT_COMMIT").unwrap_or("unknown").into()),
            go_version: Some("rust".into()),
            os: Some("linux".into()),
            arch: Some(std::env::consts::ARCH.replace("x86_64", "amd64")),
            kernel_version: Some(kernel_version()),
            experimental: Some(self.cfg.experimental),
            build_time: None,
        }
    }

    pub fn info(&self) -> SystemInfo {
        let (total, running, stopped) = self.container_counts();
        let images = self.images.r().images.len() as i64;
        let hostname = nix::unistd::gethostname()
            .map(|h| h.to_string_lossy().into_owned())
            .unwrap_or_default();
        SystemInfo {
            id: Some(self.daemon_id()),
            containers: Some(total as i64),
            containers_running: Some(running as i64),
            containers_paused: Some(0),
            containers_stopped: Some(stopped as i64),
            images: Some(images),
            driver: Some("overlay2".into()),
            driver_status: Some(vec![
                vec!["Backing Filesystem".into(), "extfs".into()],
                vec!["Supports d_type".into(), "true".into()],
            ]),
            docker_root_dir: Some(self.cfg.data_root.display().to_string()),
            memory_limit: Some(true),
            swap_limit: Some(false),
            cpu_cfs_period: Some(true),
            cpu_cfs_quota: Some(true),
            cpu_shares: Some(true),
            cpu_set: Some(true),
            pids_limit: Some(true),
            oom_kill_disable: Some(false),
            ipv4_forwarding: Some(true),
            debug: Some(self.settings().debug),
            nfd: Some(
                std::fs::read_dir("/proc/self/fd")
                    .map(|d| d.count() as i64)
                    .unwrap_or(0),
            ),
            n_goroutines: Some(0),
            system_time: Some(crate::now_rfc3339()),
            logging_driver: Some(self.settings().log_driver),
            cgroup_driver: Some(bollard_stubs::models::SystemInfoCgroupDriverEnum::CGROUPFS),
            cgroup_version: Some(if cgroup_version() == "2" {
                bollard_stubs::models::SystemInfoCgroupVersionEnum::_2
            } else {
                bollard_stubs::models::SystemInfoCgroupVersionEnum::_1
            }),
            n_events_listener: Some(0),
            kernel_version: Some(kernel_version()),
            operating_system: Some(os_name()),
            os_version: Some(String::new()),
            os_type: Some("linux".into()),
            architecture: Some(std::env::consts::ARCH.into()),
            ncpu: Some(
                std::thread::available_parallelism()
                    .map(|n| n.get() as i64)
                    .unwrap_or(1),
            ),
            mem_total: Some(mem_total()),
            index_server_address: Some("https://index.docker.io/v1/".into()),
            name: Some(hostname),
            labels: Some(self.settings().labels),
            experimental_build: Some(self.cfg.experimental),
            server_version: Some(BERTH_VERSION.into()),
            default_runtime: Some("berth".into()),
            // libcontainer in berth's own shim is the one runtime
            runtimes: Some(std::collections::HashMap::from([(
                "berth".to_string(),
                bollard_stubs::models::Runtime {
                    path: Some(self.cfg.shim_binary.display().to_string()),
                    ..Default::default()
                },
            )])),
            init_binary: Some(
                self.cfg
                    .init_path
                    .as_ref()
                    .map(|p| p.display().to_string())
                    .unwrap_or_else(|| "docker-init".into()),
            ),
            live_restore_enabled: Some(self.settings().live_restore),
            // Docker's default seccomp profile applies to every container
            // that does not say otherwise
            security_options: Some(vec!["name=seccomp,profile=builtin".into()]),
            plugins: Some(bollard_stubs::models::PluginsInfo {
                volume: Some(vec!["local".into()]),
                network: Some(vec!["bridge".into(), "host".into(), "none".into()]),
                authorization: None,
                // as dockerd lists them: every driver but none
                log: Some(
                    berth_logdriver::DRIVERS
                        .iter()
                        .filter(|d| **d != "none")
                        .map(|d| d.to_string())
                        .collect(),
                ),
            }),
            swarm: Some(bollard_stubs::models::SwarmInfo {
                node_id: Some(String::new()),
                node_addr: Some(String::new()),
                local_node_state: Some(bollard_stubs::models::LocalNodeState::INACTIVE),
                control_available: Some(false),
                error: Some(String::new()),
                ..Default::default()
            }),
            registry_config: Some(self.registry_config()),
            ..Default::default()
        }
    }

    /// `RegistryConfig` of /info: loopback and `insecure-registries` (CIDRs
    /// and hosts) as Docker reports them, and the mirrors.
    fn registry_config(&self) -> bollard_stubs::models::RegistryServiceConfig {
        let s = self.settings();
        let mut cidrs = vec!["127.0.0.0/8".to_string()];
        let mut index = std::collections::HashMap::new();
        for r in &s.insecure_registries {
            if r.contains('/') {
                cidrs.push(r.clone());
            } else {
                index.insert(
                    r.clone(),
                    bollard_stubs::models::IndexInfo {
                        name: Some(r.clone()),
                        mirrors: Some(vec![]),
                        secure: Some(false),
                        official: Some(false),
                    },
                );
            }
        }
        index.insert(
            "docker.io".to_string(),
            bollard_stubs::models::IndexInfo {
                name: Some("docker.io".into()),
                mirrors: Some(s.registry_mirrors.clone()),
                secure: Some(true),
                official: Some(true),
            },
        );
        bollard_stubs::models::RegistryServiceConfig {
            insecure_registry_cidrs: Some(cidrs),
            index_configs: Some(index),
            mirrors: Some(s.registry_mirrors.clone()),
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
    pub fn system_df(&self, types: &[String]) -> crate::Result<serde_json::Value> {
        use std::collections::HashMap;
        let want = |t: &str| types.is_empty() || types.iter().any(|x| x == t);
        let mut out = serde_json::Map::new();
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
            let mut images = self.image_list(false, &HashMap::new())?;
            for img in &mut images {
                img.shared_size = chains
                    .get(&img.id)
                    .map(|cs| {
                        cs.iter()
                            .filter(|c| users.get(*c).copied().unwrap_or(0) > 1)
                            .map(|c| layer_size.get(c).copied().unwrap_or(0) as i64)
                            .sum()
                    })
                    .unwrap_or(0);
            }
            let total: u64 = layer_size.values().sum();
            out.insert("LayersSize".into(), serde_json::json!(total));
            out.insert(
                "Images".into(),
                serde_json::to_value(images).unwrap_or_default(),
            );
        }
        if want("container") {
            let mut list = self.container_list(&crate::ListOptions {
                all: true,
                ..Default::default()
            })?;
            for c in &mut list {
                let running = c.state.is_some_and(|s| {
                    s == bollard_stubs::models::ContainerSummaryStateEnum::RUNNING
                });
                let rw = self.rw_size(c.id.as_deref().unwrap_or_default(), running) as i64;
                c.size_rw = Some(rw);
                c.size_root_fs =
                    Some(rw + self.image_size(c.image_id.as_deref().unwrap_or_default()));
            }
            out.insert(
                "Containers".into(),
                serde_json::to_value(list).unwrap_or_default(),
            );
        }
        if want("volume") {
            out.insert(
                "Volumes".into(),
                serde_json::to_value(
                    self.volume_usage_list()?
                        .iter()
                        .map(crate::edge_pending::volume_answer)
                        .collect::<Vec<_>>(),
                )
                .unwrap_or_default(),
            );
        }
        if want("build-cache") {
            out.insert(
                "BuildCache".into(),
                serde_json::to_value(self.build_cache_list()).unwrap_or_default(),
            );
        }
        Ok(serde_json::Value::Object(out))
    }
}
