//! system: Docker's wire types to and from berth's.

use std::collections::HashMap;

use berth_engine::{CacheMountView, DiskUsage, SystemInfoView, VersionView};
use bollard_stubs::models::{
    ImageSummary, IndexInfo, LocalNodeState, PluginsInfo, RegistryServiceConfig, Runtime,
    SwarmInfo, SystemInfo, SystemInfoCgroupDriverEnum, SystemInfoCgroupVersionEnum, SystemVersion,
    SystemVersionComponents, SystemVersionPlatform,
};

/// GET /version.
pub fn version_answer(view: &VersionView) -> SystemVersion {
    let component = SystemVersionComponents {
        name: "Engine".into(),
        version: view.version.clone(),
        details: Some(
            [
                ("ApiVersion", view.api_version.clone()),
                ("MinAPIVersion", view.min_api_version.clone()),
                ("Os", "linux".to_string()),
                ("Arch", "amd64".to_string()),
                ("KernelVersion", view.kernel_version.clone()),
            ]
            .into_iter()
            .map(|(k, v)| (k.to_string(), v))
            .collect(),
        ),
    };
    SystemVersion {
        platform: Some(SystemVersionPlatform {
            name: format!("berth {}", view.version),
        }),
        components: Some(vec![component]),
        version: Some(view.version.clone()),
        api_version: Some(view.api_version.clone()),
        min_api_version: Some(view.min_api_version.clone()),
        git_commit: Some(view.git_commit.clone()),
        go_version: Some("rust".into()),
        os: Some(view.os.clone()),
        arch: Some(view.arch.clone()),
        kernel_version: Some(view.kernel_version.clone()),
        experimental: Some(view.experimental),
        build_time: None,
    }
}

/// GET /info.
pub fn info_answer(view: &SystemInfoView) -> SystemInfo {
    SystemInfo {
        id: Some(view.id.clone()),
        containers: Some(view.containers as i64),
        containers_running: Some(view.containers_running as i64),
        containers_paused: Some(0),
        containers_stopped: Some(view.containers_stopped as i64),
        images: Some(view.images as i64),
        driver: Some(view.storage_driver.clone()),
        driver_status: Some(vec![
            vec!["Backing Filesystem".into(), "extfs".into()],
            vec!["Supports d_type".into(), "true".into()],
        ]),
        docker_root_dir: Some(view.data_root.clone()),
        memory_limit: Some(true),
        swap_limit: Some(view.swap_limit),
        cpu_cfs_period: Some(true),
        cpu_cfs_quota: Some(true),
        cpu_shares: Some(true),
        cpu_set: Some(true),
        pids_limit: Some(true),
        oom_kill_disable: Some(false),
        ipv4_forwarding: Some(true),
        debug: Some(view.debug),
        nfd: Some(view.fds),
        n_goroutines: Some(0),
        system_time: Some(view.system_time.clone()),
        logging_driver: Some(view.logging_driver.clone()),
        cgroup_driver: Some(SystemInfoCgroupDriverEnum::CGROUPFS),
        cgroup_version: Some(if view.cgroup_version == "2" {
            SystemInfoCgroupVersionEnum::_2
        } else {
            SystemInfoCgroupVersionEnum::_1
        }),
        n_events_listener: Some(0),
        kernel_version: Some(view.kernel_version.clone()),
        operating_system: Some(view.operating_system.clone()),
        os_version: Some(String::new()),
        os_type: Some("linux".into()),
        architecture: Some(view.architecture.clone()),
        ncpu: Some(view.cpus),
        mem_total: Some(view.mem_total),
        index_server_address: Some("https://index.docker.io/v1/".into()),
        name: Some(view.hostname.clone()),
        labels: Some(view.labels.clone()),
        experimental_build: Some(view.experimental),
        server_version: Some(view.server_version.clone()),
        default_runtime: Some(view.default_runtime.clone()),
        runtimes: Some(
            view.runtime_names
                .iter()
                .map(|name| {
                    let runtime = Runtime {
                        path: Some(view.runtime_path.clone()),
                        ..Default::default()
                    };
                    (name.clone(), runtime)
                })
                .collect(),
        ),
        init_binary: Some(view.init_binary.clone()),
        live_restore_enabled: Some(view.live_restore),
        security_options: Some(view.security_options.clone()),
        plugins: Some(PluginsInfo {
            volume: Some(view.volume_drivers.clone()),
            network: Some(view.network_drivers.clone()),
            authorization: None,
            // as dockerd lists them: every driver but none
            log: Some(
                view.log_drivers
                    .iter()
                    .filter(|d| *d != "none")
                    .cloned()
                    .collect(),
            ),
        }),
        swarm: Some(SwarmInfo {
            node_id: Some(String::new()),
            node_addr: Some(String::new()),
            local_node_state: Some(LocalNodeState::INACTIVE),
            control_available: Some(false),
            error: Some(String::new()),
            ..Default::default()
        }),
        registry_config: Some(registry_config(view)),
        ..Default::default()
    }
}

/// `RegistryConfig` of /info: loopback and `insecure-registries` (CIDRs
/// and hosts) as Docker reports them, and the mirrors.
fn registry_config(view: &SystemInfoView) -> RegistryServiceConfig {
    let mut cidrs = vec!["127.0.0.0/8".to_string()];
    let mut index = HashMap::new();
    for r in &view.insecure_registries {
        if r.contains('/') {
            cidrs.push(r.clone());
        } else {
            index.insert(
                r.clone(),
                IndexInfo {
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
        IndexInfo {
            name: Some("docker.io".into()),
            mirrors: Some(view.registry_mirrors.clone()),
            secure: Some(true),
            official: Some(true),
        },
    );
    RegistryServiceConfig {
        insecure_registry_cidrs: Some(cidrs),
        index_configs: Some(index),
        mirrors: Some(view.registry_mirrors.clone()),
    }
}

/// GET /system/df (API ≤ 1.51 form): each part only when asked for.
pub fn disk_usage_answer(u: DiskUsage) -> serde_json::Value {
    let mut out = serde_json::Map::new();
    if let Some(size) = u.layers_size {
        out.insert("LayersSize".into(), size.into());
    }
    if let Some(images) = &u.images {
        let list: Vec<ImageSummary> = images
            .iter()
            .map(|i| ImageSummary {
                shared_size: i.shared_size,
                ..super::images::image_summary_answer(&i.image)
            })
            .collect();
        out.insert("Images".into(), to_json(list));
    }
    if let Some(containers) = &u.containers {
        let list: Vec<_> = containers
            .iter()
            .map(super::containers::summary_answer)
            .collect();
        out.insert("Containers".into(), to_json(list));
    }
    if let Some(volumes) = &u.volumes {
        let list: Vec<_> = volumes.iter().map(super::volumes::volume_answer).collect();
        out.insert("Volumes".into(), to_json(list));
    }
    if let Some(cache) = &u.build_cache {
        let list: Vec<_> = cache.iter().map(build_cache_answer).collect();
        out.insert("BuildCache".into(), serde_json::Value::Array(list));
    }
    serde_json::Value::Object(out)
}

/// One entry of `BuildCache`: berth's builder caches only `RUN` mounts.
fn build_cache_answer(c: &CacheMountView) -> serde_json::Value {
    serde_json::json!({
        "ID": c.id,
        "Parents": null,
        "Type": "exec.cachemount",
        "Description": c.description,
        "InUse": false,
        "Shared": false,
        "Size": c.size,
        "CreatedAt": c.created_at,
        "LastUsedAt": c.last_used_at,
        "UsageCount": c.usage_count,
    })
}

fn to_json(v: impl serde::Serialize) -> serde_json::Value {
    serde_json::to_value(v).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn info_view() -> SystemInfoView {
        SystemInfoView {
            swap_limit: true,
            id: "daemon-id".into(),
            containers: 3,
            containers_running: 1,
            containers_stopped: 2,
            images: 4,
            storage_driver: "overlay2".into(),
            data_root: "/var/lib/berth".into(),
            debug: true,
            fds: 12,
            system_time: "2024-01-01T00:00:00Z".into(),
            logging_driver: "json-file".into(),
            cgroup_version: "2".into(),
            kernel_version: "6.1.0".into(),
            operating_system: "Debian".into(),
            architecture: "x86_64".into(),
            cpus: 2,
            mem_total: 1 << 30,
            hostname: "host".into(),
            labels: vec!["a=b".into()],
            experimental: false,
            server_version: "0.1.0".into(),
            default_runtime: "runc".into(),
            runtime_names: vec!["runc".into(), "berth".into()],
            runtime_path: "/usr/bin/berth".into(),
            init_binary: "docker-init".into(),
            live_restore: false,
            security_options: vec!["name=seccomp,profile=builtin".into()],
            volume_drivers: vec!["local".into()],
            network_drivers: vec!["bridge".into()],
            log_drivers: vec!["json-file".into(), "none".into(), "local".into()],
            insecure_registries: vec!["10.0.0.0/8".into(), "reg.local:5000".into()],
            registry_mirrors: vec!["https://mirror.example".into()],
        }
    }

    #[test]
    fn info_is_the_view_with_docker_constants() {
        let v = serde_json::to_value(info_answer(&info_view())).unwrap();
        assert_eq!(v["ID"], "daemon-id");
        assert_eq!(v["Containers"], 3);
        assert_eq!(v["ContainersRunning"], 1);
        assert_eq!(v["ContainersPaused"], 0);
        assert_eq!(v["ContainersStopped"], 2);
        assert_eq!(v["Images"], 4);
        assert_eq!(v["Driver"], "overlay2");
        assert_eq!(v["DockerRootDir"], "/var/lib/berth");
        assert_eq!(v["CgroupVersion"], "2");
        assert_eq!(v["CgroupDriver"], "cgroupfs");
        assert_eq!(v["Name"], "host");
        assert_eq!(v["NCPU"], 2);
        assert_eq!(v["Runtimes"]["berth"]["path"], "/usr/bin/berth");
        assert_eq!(
            v["Plugins"]["Log"],
            serde_json::json!(["json-file", "local"])
        );
        assert_eq!(v["Swarm"]["LocalNodeState"], "inactive");
        let reg = &v["RegistryConfig"];
        assert_eq!(
            reg["InsecureRegistryCIDRs"],
            serde_json::json!(["127.0.0.0/8", "10.0.0.0/8"])
        );
        assert_eq!(reg["IndexConfigs"]["reg.local:5000"]["Secure"], false);
        assert_eq!(
            reg["IndexConfigs"]["docker.io"]["Mirrors"],
            serde_json::json!(["https://mirror.example"])
        );
        assert_eq!(
            reg["Mirrors"],
            serde_json::json!(["https://mirror.example"])
        );
    }

    #[test]
    fn version_is_the_view() {
        let view = VersionView {
            version: "0.1.0".into(),
            api_version: "1.47".into(),
            min_api_version: "1.24".into(),
            git_commit: "abc".into(),
            os: "linux".into(),
            arch: "amd64".into(),
            kernel_version: "6.1.0".into(),
            experimental: true,
        };
        let v = serde_json::to_value(version_answer(&view)).unwrap();
        assert_eq!(v["Platform"]["Name"], "berth 0.1.0");
        assert_eq!(v["ApiVersion"], "1.47");
        assert_eq!(v["MinAPIVersion"], "1.24");
        assert_eq!(v["GitCommit"], "abc");
        assert_eq!(v["Experimental"], true);
        assert_eq!(v["Components"][0]["Details"]["KernelVersion"], "6.1.0");
        assert!(v.get("BuildTime").is_none());
    }
}
