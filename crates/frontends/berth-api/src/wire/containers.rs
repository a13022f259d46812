//! Containers: create and update requests become berth's specs; a
//! container's view becomes Docker's inspect and `ps` answers.

use std::collections::HashMap;
use std::time::Duration;

use berth_core::container::ContainerSpec;
use berth_engine::{
    ChangeKind, ContainerRecord, ContainerUpdate, ContainerView, FileChange, HealthRecord,
    NetworkAttachment, Status,
};
use bollard_stubs::models::{
    ChangeType, ContainerCreateBody, ContainerInspectResponse, ContainerState,
    ContainerStateStatusEnum, ContainerSummary, ContainerSummaryHostConfig,
    ContainerSummaryNetworkSettings, ContainerSummaryStateEnum, ContainerUpdateBody, DriverData,
    EndpointSettings, FilesystemChange, Health, HealthStatusEnum, HealthcheckResult,
    NetworkSettings, PortBinding, PortMap, PortSummary, PortSummaryTypeEnum, RestartPolicyNameEnum,
};

use super::{from_request, to_answer};
use crate::error::ApiError;
use crate::server::ApiVersion;

const NEVER: &str = "0001-01-01T00:00:00Z";

/// A create request (Docker's `ContainerCreateBody`: the config's fields
/// with `HostConfig` and `NetworkingConfig` beside them) as berth's spec.
pub fn create_request(body: &ContainerCreateBody) -> Result<ContainerSpec, ApiError> {
    let mut value = serde_json::to_value(body)
        .map_err(|e| ApiError::internal(format!("encoding a create request: {e}")))?;
    let obj = value
        .as_object_mut()
        .ok_or_else(|| ApiError::bad_request("invalid container config: not an object"))?;
    let host = obj.remove("HostConfig").unwrap_or_default();
    let endpoints = obj
        .remove("NetworkingConfig")
        .and_then(|mut n| n.get_mut("EndpointsConfig").map(serde_json::Value::take))
        .unwrap_or_default();
    let invalid =
        |e: serde_json::Error| ApiError::bad_request(format!("invalid container config: {e}"));
    let mut spec = ContainerSpec {
        config: serde_json::from_value(value).map_err(invalid)?,
        host_config: if host.is_null() {
            Default::default()
        } else {
            serde_json::from_value(host).map_err(invalid)?
        },
        endpoints: if endpoints.is_null() {
            Default::default()
        } else {
            serde_json::from_value(endpoints).map_err(invalid)?
        },
        platform: None,
    };
    // dockerd: 0 and any negative PidsLimit mean no limit, recorded as none
    if spec.host_config.pids_limit.is_some_and(|p| p <= 0) {
        spec.host_config.pids_limit = None;
    }
    Ok(spec)
}

/// `docker update`'s body: the values berth applies. As in dockerd, a zero
/// or empty value leaves the setting alone (the docker CLI sends every
/// field), and so does a restart policy without a name; a PidsLimit of 0
/// or less means unlimited, stored as 0, and clients before API 1.40
/// cannot change it.
pub fn update_request(
    u: ContainerUpdateBody,
    version: ApiVersion,
) -> Result<ContainerUpdate, ApiError> {
    let set = |v: Option<i64>| v.filter(|v| *v != 0);
    let restart_policy = match &u.restart_policy {
        Some(rp) if rp.name.is_some_and(|n| n != RestartPolicyNameEnum::EMPTY) => {
            Some(from_request(rp, "restart policy")?)
        }
        _ => None,
    };
    Ok(ContainerUpdate {
        memory: set(u.memory),
        cpu_shares: set(u.cpu_shares),
        nano_cpus: set(u.nano_cpus),
        cpu_period: set(u.cpu_period),
        cpu_quota: set(u.cpu_quota),
        pids_limit: u
            .pids_limit
            .filter(|_| version >= ApiVersion(1, 40))
            .map(|p| p.max(0)),
        cpuset_cpus: u.cpuset_cpus.filter(|c| !c.is_empty()),
        restart_policy,
    })
}

/// GET /containers/{id}/json as dockerd writes it for a client of
/// `version`: every host config field, even at its zero value, the
/// default bridge's settings at the top of NetworkSettings, and every
/// endpoint field; clients index into them without checking.
pub fn inspect_answer_for(
    v: &ContainerView,
    version: ApiVersion,
) -> Result<serde_json::Value, ApiError> {
    let mut answer = to_answer::<_, serde_json::Value>(&inspect_answer(v)?, "an inspect answer")?;
    let Some(obj) = answer.as_object_mut() else {
        return Ok(answer);
    };
    let mut host_config = zero_host_config();
    if let (Some(zero), Some(serde_json::Value::Object(given))) =
        (host_config.as_object_mut(), obj.remove("HostConfig"))
    {
        zero.extend(given);
    }
    obj.insert("HostConfig".into(), host_config);
    // dockerd shows the main network's requested address as the
    // container-wide one up to API 1.51
    if let Some(mac) = desired_mac(v).filter(|_| version < ApiVersion(1, 52))
        && let Some(config) = obj.get_mut("Config").and_then(|c| c.as_object_mut())
    {
        config.insert("MacAddress".into(), mac.into());
    }
    if let Some(settings) = obj
        .get_mut("NetworkSettings")
        .and_then(|n| n.as_object_mut())
    {
        legacy_network_settings(settings, &v.networks);
        if let Some(nets) = settings.get_mut("Networks").and_then(|n| n.as_object_mut()) {
            for (name, ep) in nets.iter_mut() {
                complete_endpoint(ep, name, &v.record, version);
            }
        }
    }
    Ok(answer)
}

/// The address requested for the network of a bridge or user-defined
/// network mode.
fn desired_mac(v: &ContainerView) -> Option<String> {
    let mode = v
        .record
        .host_config
        .network_mode
        .as_deref()
        .unwrap_or_default();
    let main = match mode {
        "" | "default" => "bridge",
        "host" | "none" => return None,
        m if m.starts_with("container:") => return None,
        m => m,
    };
    v.networks
        .iter()
        .find(|n| n.name == main || (!n.network_id.is_empty() && n.network_id.starts_with(main)))
        .and_then(|n| n.config.mac_address.clone())
        .filter(|m| !m.is_empty())
}

/// The host config fields dockerd's encoder always writes, at their zero
/// values; berth's own values go over them.
fn zero_host_config() -> serde_json::Value {
    serde_json::from_str(ZERO_HOST_CONFIG).unwrap_or_default()
}

const ZERO_HOST_CONFIG: &str = r#"{
    "Binds": null, "ContainerIDFile": "",
    "LogConfig": {"Type": "", "Config": {}},
    "NetworkMode": "", "PortBindings": {},
    "RestartPolicy": {"Name": "no", "MaximumRetryCount": 0},
    "AutoRemove": false, "VolumeDriver": "", "VolumesFrom": null,
    "ConsoleSize": [0, 0], "CapAdd": null, "CapDrop": null,
    "CgroupnsMode": "", "Dns": null, "DnsOptions": null, "DnsSearch": null,
    "ExtraHosts": null, "GroupAdd": null, "IpcMode": "", "Cgroup": "",
    "Links": null, "OomScoreAdj": 0, "PidMode": "", "Privileged": false,
    "PublishAllPorts": false, "ReadonlyRootfs": false, "SecurityOpt": null,
    "UTSMode": "", "UsernsMode": "", "ShmSize": 0, "Isolation": "",
    "CpuShares": 0, "Memory": 0, "NanoCpus": 0, "CgroupParent": "",
    "BlkioWeight": 0, "BlkioWeightDevice": null, "BlkioDeviceReadBps": null,
    "BlkioDeviceWriteBps": null, "BlkioDeviceReadIOps": null,
    "BlkioDeviceWriteIOps": null, "CpuPeriod": 0, "CpuQuota": 0,
    "CpuRealtimePeriod": 0, "CpuRealtimeRuntime": 0, "CpusetCpus": "",
    "CpusetMems": "", "Devices": null, "DeviceCgroupRules": null,
    "DeviceRequests": null, "MemoryReservation": 0, "MemorySwap": 0,
    "MemorySwappiness": null, "OomKillDisable": null, "PidsLimit": null,
    "Ulimits": null, "CpuCount": 0, "CpuPercent": 0, "IOMaximumIOps": 0,
    "IOMaximumBandwidth": 0, "MaskedPaths": null, "ReadonlyPaths": null
}"#;

/// NetworkSettings' fields from before per-network settings: the default
/// bridge's endpoint, empty when the container is not on it. dockerd
/// sends them up to API 1.51.
fn legacy_network_settings(
    settings: &mut serde_json::Map<String, serde_json::Value>,
    networks: &[NetworkAttachment],
) {
    let bridge = networks.iter().find(|n| n.name == "bridge");
    let ep = bridge.map(|n| n.endpoint.clone()).unwrap_or_default();
    let fields = serde_json::json!({
        "Bridge": "", "HairpinMode": false,
        "LinkLocalIPv6Address": "", "LinkLocalIPv6PrefixLen": 0,
        "SecondaryIPAddresses": null, "SecondaryIPv6Addresses": null,
        "EndpointID": ep.endpoint_id, "Gateway": ep.gateway,
        "GlobalIPv6Address": ep.ip6, "GlobalIPv6PrefixLen": ep.prefix6,
        "IPAddress": ep.ip, "IPPrefixLen": ep.prefix,
        "IPv6Gateway": ep.gateway6, "MacAddress": ep.mac,
    });
    if let serde_json::Value::Object(fields) = fields {
        for (k, v) in fields {
            settings.entry(k).or_insert(v);
        }
    }
}

/// Every field of an endpoint, null when unset; before API 1.45 the
/// aliases of a user-defined network also hold the short id and the
/// hostname. Up to dockerd 24 (API 1.43) they were added when the
/// endpoint joined (start, or connect), so a created container shows
/// only the requested ones, and docker-compose v1 reconnects a created
/// container exactly when its short id is missing; dockerd 25 (API 1.44)
/// adds them to every answer.
fn complete_endpoint(
    ep: &mut serde_json::Value,
    network: &str,
    rec: &ContainerRecord,
    version: ApiVersion,
) {
    let Some(ep) = ep.as_object_mut() else {
        return;
    };
    for key in ["IPAMConfig", "Links", "Aliases", "DriverOpts", "DNSNames"] {
        ep.entry(key).or_insert(serde_json::Value::Null);
    }
    let user_defined = !matches!(network, "bridge" | "host" | "none" | "default");
    let joined = rec.state.status != Status::Created
        || ep
            .get("EndpointID")
            .and_then(|e| e.as_str())
            .is_some_and(|e| !e.is_empty());
    let shown = version == ApiVersion(1, 44) || (version < ApiVersion(1, 44) && joined);
    if shown && user_defined {
        let mut aliases: Vec<String> = ep
            .get("Aliases")
            .and_then(|a| serde_json::from_value(a.clone()).ok())
            .unwrap_or_default();
        let short_id = rec.id.chars().take(12).collect::<String>();
        let hostname = rec.config.hostname.clone().unwrap_or_default();
        for extra in [short_id, hostname] {
            if !extra.is_empty() && !aliases.contains(&extra) {
                aliases.push(extra);
            }
        }
        ep.insert("Aliases".into(), aliases.into());
    }
}

pub fn inspect_answer(v: &ContainerView) -> Result<ContainerInspectResponse, ApiError> {
    let rec = &v.record;
    let graph = HashMap::from([
        ("LowerDir".to_string(), v.layers.lower.join(":")),
        ("UpperDir".to_string(), v.layers.upper.clone()),
        ("WorkDir".to_string(), v.layers.work.clone()),
        ("MergedDir".to_string(), v.layers.merged.clone()),
    ]);
    Ok(ContainerInspectResponse {
        id: Some(rec.id.clone()),
        created: Some(rec.created.clone()),
        path: Some(rec.path.clone()),
        args: Some(rec.args.clone()),
        state: Some(state_of(rec)),
        image: Some(rec.image_id.clone()),
        resolv_conf_path: Some(v.resolv_conf_path.clone()),
        hostname_path: Some(v.hostname_path.clone()),
        hosts_path: Some(v.hosts_path.clone()),
        log_path: Some(v.log_path.clone()),
        name: Some(format!("/{}", rec.name)),
        restart_count: Some(rec.restart_count),
        driver: Some("overlay2".into()),
        platform: Some("linux".into()),
        mount_label: Some(String::new()),
        process_label: Some(String::new()),
        app_armor_profile: Some(String::new()),
        exec_ids: None,
        host_config: Some(to_answer(&rec.host_config, "a host config")?),
        graph_driver: Some(DriverData {
            name: "overlay2".into(),
            data: graph,
        }),
        mounts: Some(super::volumes::mount_points(&v.mounts)),
        // always present, as in Docker: clients read .NetworkSettings.Ports
        // without a nil check; ports and networks come with networking
        network_settings: Some(NetworkSettings {
            sandbox_id: Some(String::new()),
            sandbox_key: Some(v.sandbox_key.clone()),
            ports: Some(port_map(rec)),
            networks: Some(endpoint_settings(&v.networks)),
        }),
        config: Some(to_answer(&rec.config, "a container config")?),
        size_rw: v.sizes.map(|s| s.rw),
        size_root_fs: v.sizes.map(|s| s.root_fs),
        ..Default::default()
    })
}

/// The container's names, its link names (`/parent/alias`) included,
/// sorted as dockerd's name index lists them.
fn summary_names(rec: &ContainerRecord, link_names: &[String]) -> Vec<String> {
    let mut names = vec![format!("/{}", rec.name)];
    names.extend(link_names.iter().cloned());
    names.sort();
    names
}

/// One line of `ps`.
pub fn summary_answer(v: &ContainerView) -> ContainerSummary {
    let rec = &v.record;
    let mut command = rec.path.clone();
    for a in &rec.args {
        command.push(' ');
        command.push_str(a);
    }
    ContainerSummary {
        id: Some(rec.id.clone()),
        names: Some(summary_names(rec, &v.link_names)),
        image: Some(if v.image_present {
            rec.image.clone()
        } else {
            rec.image_id.clone()
        }),
        image_id: Some(rec.image_id.clone()),
        command: Some(command),
        created: Some(unix_seconds(&rec.created)),
        ports: Some(port_summary(rec)),
        network_settings: Some(ContainerSummaryNetworkSettings {
            networks: Some(endpoint_settings(&v.networks)),
        }),
        labels: rec.config.labels.clone(),
        state: Some(if rec.state.paused && rec.state.status == Status::Running {
            ContainerSummaryStateEnum::PAUSED
        } else {
            summary_state(rec.state.status)
        }),
        status: Some(status_text(rec)),
        host_config: Some(ContainerSummaryHostConfig {
            network_mode: rec.host_config.network_mode.clone(),
            ..Default::default()
        }),
        mounts: Some(super::volumes::mount_points(&v.mounts)),
        size_rw: v.sizes.map(|s| s.rw),
        size_root_fs: v.sizes.map(|s| s.root_fs),
        ..Default::default()
    }
}

/// An RFC 3339 time as Unix seconds; 0 when it does not parse.
fn unix_seconds(s: &str) -> i64 {
    chrono::DateTime::parse_from_rfc3339(s)
        .map(|t| t.timestamp())
        .unwrap_or(0)
}

pub fn health_answer(h: &HealthRecord) -> Health {
    Health {
        status: Some(match h.status.as_str() {
            "healthy" => HealthStatusEnum::HEALTHY,
            "unhealthy" => HealthStatusEnum::UNHEALTHY,
            "starting" => HealthStatusEnum::STARTING,
            _ => HealthStatusEnum::NONE,
        }),
        failing_streak: Some(h.failing_streak),
        log: Some(
            h.log
                .iter()
                .map(|r| HealthcheckResult {
                    start: Some(r.start.clone()),
                    end: Some(r.end.clone()),
                    exit_code: Some(r.exit_code),
                    output: Some(r.output.clone()),
                })
                .collect(),
        ),
    }
}

/// NetworkSettings.Ports: exposed ports, with their bindings once published.
fn port_map(rec: &ContainerRecord) -> PortMap {
    let mut ports: PortMap = HashMap::new();
    for k in rec.config.exposed_ports.iter().flatten() {
        ports.insert(k.clone(), None);
    }
    for p in &rec.published {
        ports
            .entry(format!("{}/{}", p.container_port, p.proto))
            .or_insert(None)
            .get_or_insert_with(Vec::new)
            .push(PortBinding {
                host_ip: Some(p.host_ip.clone()),
                host_port: Some(p.host_port.to_string()),
            });
    }
    ports
}

/// The Ports of `ps`: published ports, and exposed ones while running.
fn port_summary(rec: &ContainerRecord) -> Vec<PortSummary> {
    if rec.state.status != Status::Running {
        return Vec::new();
    }
    let typ = |p: &str| match p {
        "udp" => PortSummaryTypeEnum::UDP,
        "sctp" => PortSummaryTypeEnum::SCTP,
        _ => PortSummaryTypeEnum::TCP,
    };
    let mut out: Vec<PortSummary> = rec
        .published
        .iter()
        .map(|p| PortSummary {
            ip: Some(p.host_ip.clone()),
            private_port: p.container_port,
            public_port: Some(p.host_port),
            typ: Some(typ(&p.proto)),
        })
        .collect();
    for k in rec.config.exposed_ports.iter().flatten() {
        let Some((port, proto)) = exposed_port(k) else {
            continue;
        };
        if !rec
            .published
            .iter()
            .any(|p| p.container_port == port && p.proto == proto)
        {
            out.push(PortSummary {
                ip: None,
                private_port: port,
                public_port: None,
                typ: Some(typ(&proto)),
            });
        }
    }
    out
}

/// `80/tcp` as (80, "tcp"); a key berth would not publish is left out.
fn exposed_port(key: &str) -> Option<(u16, String)> {
    let (p, proto) = key.split_once('/').unwrap_or((key, "tcp"));
    let proto = proto.to_ascii_lowercase();
    if proto != "tcp" && proto != "udp" {
        return None;
    }
    let port: u16 = p.parse().ok().filter(|p| *p > 0)?;
    Some((port, proto))
}

/// NetworkSettings.Networks, by network name.
fn endpoint_settings(networks: &[NetworkAttachment]) -> HashMap<String, EndpointSettings> {
    networks
        .iter()
        .map(|n| {
            let ep = &n.endpoint;
            let settings = EndpointSettings {
                ipam_config: n
                    .config
                    .ipam_config
                    .as_ref()
                    .and_then(|c| to_answer(c, "an endpoint's IPAM config").ok()),
                links: n.config.links.clone(),
                aliases: n.config.aliases.clone(),
                mac_address: Some(ep.mac.clone()),
                driver_opts: n.config.driver_opts.clone(),
                network_id: Some(n.network_id.clone()),
                endpoint_id: Some(ep.endpoint_id.clone()),
                gateway: Some(ep.gateway.clone()),
                ip_address: Some(ep.ip.clone()),
                ip_prefix_len: Some(ep.prefix as i64),
                ipv6_gateway: Some(ep.gateway6.clone()),
                global_ipv6_address: Some(ep.ip6.clone()),
                global_ipv6_prefix_len: Some(ep.prefix6 as i64),
                dns_names: None,
                gw_priority: Some(0),
            };
            (n.name.clone(), settings)
        })
        .collect()
}

/// GET /containers/{id}/changes: Docker's kinds are 0 modified, 1 added,
/// 2 deleted.
pub fn changes_answer(changes: &[FileChange]) -> Vec<FilesystemChange> {
    changes
        .iter()
        .map(|c| FilesystemChange {
            path: c.path.clone(),
            kind: match c.kind {
                ChangeKind::Modified => ChangeType::_0,
                ChangeKind::Added => ChangeType::_1,
                ChangeKind::Deleted => ChangeType::_2,
            },
        })
        .collect()
}

fn summary_state(s: Status) -> ContainerSummaryStateEnum {
    match s {
        Status::Created => ContainerSummaryStateEnum::CREATED,
        Status::Running => ContainerSummaryStateEnum::RUNNING,
        Status::Restarting => ContainerSummaryStateEnum::RESTARTING,
        Status::Exited => ContainerSummaryStateEnum::EXITED,
        Status::Dead => ContainerSummaryStateEnum::DEAD,
        Status::Removing => ContainerSummaryStateEnum::REMOVING,
    }
}

pub fn state_of(rec: &ContainerRecord) -> ContainerState {
    let s = &rec.state;
    ContainerState {
        status: Some(match s.status {
            Status::Created => ContainerStateStatusEnum::CREATED,
            Status::Running if s.paused => ContainerStateStatusEnum::PAUSED,
            Status::Running => ContainerStateStatusEnum::RUNNING,
            Status::Restarting => ContainerStateStatusEnum::RESTARTING,
            Status::Exited => ContainerStateStatusEnum::EXITED,
            Status::Dead => ContainerStateStatusEnum::DEAD,
            Status::Removing => ContainerStateStatusEnum::REMOVING,
        }),
        running: Some(s.status == Status::Running),
        paused: Some(s.paused && s.status == Status::Running),
        restarting: Some(s.status == Status::Restarting),
        oom_killed: Some(s.oom_killed),
        health: s.health.as_ref().map(health_answer),
        dead: Some(s.status == Status::Dead),
        pid: Some(s.pid),
        exit_code: Some(s.exit_code),
        error: Some(s.error.clone()),
        started_at: Some(s.started_at.clone()),
        finished_at: Some(s.finished_at.clone()),
    }
}

fn since(ts: &str) -> Option<Duration> {
    let t = chrono::DateTime::parse_from_rfc3339(ts).ok()?;
    (chrono::Utc::now() - t.with_timezone(&chrono::Utc))
        .to_std()
        .ok()
        .or(Some(Duration::ZERO))
}

/// Docker's State.String(): "Up 3 seconds", "Exited (3) 2 seconds ago", "Created".
pub fn status_text(rec: &ContainerRecord) -> String {
    let s = &rec.state;
    match s.status {
        Status::Running => format!(
            "Up {}{}",
            berth_units::human_duration(since(&s.started_at).unwrap_or_default()),
            if s.paused {
                " (Paused)"
            } else {
                match s.health.as_ref().map(|h| h.status.as_str()) {
                    Some("starting") => " (health: starting)",
                    Some("healthy") => " (healthy)",
                    Some("unhealthy") => " (unhealthy)",
                    _ => "",
                }
            }
        ),
        Status::Created => "Created".into(),
        Status::Restarting => {
            let ago = berth_units::human_duration(since(&s.finished_at).unwrap_or_default());
            format!("Restarting ({}) {} ago", s.exit_code, ago)
        }
        Status::Removing => "Removal In Progress".into(),
        Status::Dead => "Dead".into(),
        Status::Exited => {
            if s.finished_at == NEVER || s.finished_at.is_empty() {
                return format!("Exited ({})", s.exit_code);
            }
            let ago = berth_units::human_duration(since(&s.finished_at).unwrap_or_default());
            format!("Exited ({}) {} ago", s.exit_code, ago)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bollard_stubs::models::{
        EndpointIpamConfig, EndpointSettings, HostConfig, HostConfigCgroupnsModeEnum,
        NetworkingConfig, RestartPolicy, RestartPolicyNameEnum,
    };
    use std::collections::HashMap;

    #[test]
    fn a_create_request_splits_into_config_host_config_and_endpoints() {
        let body = ContainerCreateBody {
            image: Some("busybox".into()),
            cmd: Some(vec!["true".into()]),
            exposed_ports: Some(vec!["80/tcp".into()]),
            host_config: Some(HostConfig {
                memory: Some(64 << 20),
                restart_policy: Some(RestartPolicy {
                    name: Some(RestartPolicyNameEnum::UNLESS_STOPPED),
                    maximum_retry_count: None,
                }),
                ..Default::default()
            }),
            networking_config: Some(NetworkingConfig {
                endpoints_config: Some(HashMap::from([(
                    "front".to_string(),
                    EndpointSettings {
                        aliases: Some(vec!["web".into()]),
                        ipam_config: Some(EndpointIpamConfig {
                            ipv4_address: Some("10.1.0.9".into()),
                            ..Default::default()
                        }),
                        ..Default::default()
                    },
                )])),
            }),
            ..Default::default()
        };
        let spec = create_request(&body).unwrap();
        assert_eq!(spec.config.image.as_deref(), Some("busybox"));
        assert_eq!(spec.config.exposed_ports, Some(vec!["80/tcp".to_string()]));
        assert!(spec.config.extra.is_empty(), "{:?}", spec.config.extra);
        assert_eq!(spec.host_config.memory, Some(64 << 20));
        assert_eq!(
            spec.host_config.restart_policy.unwrap().name,
            Some(berth_core::container::RestartPolicyName::UnlessStopped)
        );
        let front = &spec.endpoints["front"];
        assert_eq!(front.aliases, Some(vec!["web".to_string()]));
        assert_eq!(
            front.ipam_config.as_ref().unwrap().ipv4_address.as_deref(),
            Some("10.1.0.9")
        );
    }

    #[test]
    fn a_request_without_host_or_network_parts_gets_defaults() {
        let body = ContainerCreateBody {
            image: Some("busybox".into()),
            ..Default::default()
        };
        let spec = create_request(&body).unwrap();
        assert_eq!(spec.host_config, Default::default());
        assert!(spec.endpoints.is_empty());
    }

    #[test]
    fn a_record_converts_back_to_the_wire_type_field_for_field() {
        let spec = create_request(&ContainerCreateBody {
            host_config: Some(HostConfig {
                binds: Some(vec!["/a:/b:ro".into()]),
                cpu_realtime_runtime: Some(5),
                cgroupns_mode: Some(HostConfigCgroupnsModeEnum::PRIVATE),
                ..Default::default()
            }),
            ..Default::default()
        })
        .unwrap();
        // a field berth does not act on is kept and sent back
        assert_eq!(spec.host_config.cpu_realtime_runtime, Some(5));
        assert!(spec.host_config.extra.contains_key("CgroupnsMode"));
        let wire: HostConfig = to_answer(&spec.host_config, "a host config").unwrap();
        assert_eq!(wire.binds, Some(vec!["/a:/b:ro".to_string()]));
        assert_eq!(wire.cpu_realtime_runtime, Some(5));
        assert_eq!(
            wire.cgroupns_mode,
            Some(HostConfigCgroupnsModeEnum::PRIVATE)
        );
    }
}

#[cfg(test)]
mod answer_tests {
    use super::*;
    use berth_core::network::PublishedPort;
    use berth_engine::{EndpointRecord, LayerDirs, MountView, Sizes};

    fn record(status: &str) -> ContainerRecord {
        serde_json::from_value(serde_json::json!({
            "id": "c0ffee",
            "name": "web",
            "created": "2026-01-02T03:04:05Z",
            "image": "busybox",
            "image_id": "sha256:abc",
            "path": "sh",
            "args": ["-c", "sleep 1"],
            "config": { "ExposedPorts": { "80/tcp": {}, "53/udp": {} } },
            "host_config": { "NetworkMode": "front" },
            "state": {
                "status": status, "pid": 7, "exit_code": 0, "started_at": "",
                "finished_at": "", "error": "", "oom_killed": false
            }
        }))
        .unwrap()
    }

    fn view(rec: ContainerRecord) -> ContainerView {
        ContainerView {
            record: rec,
            resolv_conf_path: "/c/resolv.conf".into(),
            hostname_path: "/c/hostname".into(),
            hosts_path: "/c/hosts".into(),
            log_path: String::new(),
            layers: LayerDirs {
                lower: vec!["/l1".into(), "/l2".into()],
                upper: "/u".into(),
                work: "/w".into(),
                merged: "/m".into(),
            },
            sandbox_key: String::new(),
            networks: vec![NetworkAttachment {
                name: "front".into(),
                network_id: "n1".into(),
                config: Default::default(),
                endpoint: EndpointRecord {
                    ip: "10.1.0.2".into(),
                    prefix: 24,
                    ..Default::default()
                },
            }],
            mounts: vec![MountView {
                record: serde_json::from_value(serde_json::json!({
                    "kind": "volume", "source": "data", "destination": "/data",
                    "read_only": false
                }))
                .unwrap(),
                volume_mountpoint: Some("/v/data/_data".into()),
                volume_driver: Some("local".into()),
            }],
            image_present: true,
            sizes: None,
            link_names: Vec::new(),
        }
    }

    #[test]
    fn ps_names_include_the_link_names_sorted_as_dockerd_does() {
        let mut v = view(record("running"));
        v.record.name = "db".into();
        v.link_names = vec!["/web/database".into()];
        let s = summary_answer(&v);
        assert_eq!(
            s.names,
            Some(vec!["/db".to_string(), "/web/database".to_string()])
        );
    }

    #[test]
    fn ps_lists_published_ports_and_the_exposed_ones_left_over() {
        let mut rec = record("running");
        rec.published = vec![PublishedPort {
            proto: "tcp".into(),
            host_ip: "0.0.0.0".into(),
            host_port: 8080,
            container_ip: "10.1.0.2".into(),
            container_port: 80,
        }];
        let s = summary_answer(&view(rec));
        let ports = s.ports.unwrap();
        assert_eq!(ports.len(), 2);
        assert_eq!(ports[0].public_port, Some(8080));
        assert_eq!(ports[0].private_port, 80);
        assert_eq!(ports[1].private_port, 53);
        assert_eq!(ports[1].typ, Some(PortSummaryTypeEnum::UDP));
        assert_eq!(ports[1].public_port, None);
        assert_eq!(s.command.as_deref(), Some("sh -c sleep 1"));
        assert_eq!(s.names, Some(vec!["/web".to_string()]));
        assert_eq!(s.created, Some(1767323045));
        assert_eq!(s.state, Some(ContainerSummaryStateEnum::RUNNING));
        assert_eq!(s.size_rw, None);
        let nets = s.network_settings.unwrap().networks.unwrap();
        assert_eq!(nets["front"].ip_address.as_deref(), Some("10.1.0.2"));
    }

    #[test]
    fn ps_shows_the_image_id_once_the_image_is_gone_and_no_ports_when_stopped() {
        let mut v = view(record("exited"));
        v.image_present = false;
        v.sizes = Some(Sizes { rw: 5, root_fs: 15 });
        let s = summary_answer(&v);
        assert_eq!(s.image.as_deref(), Some("sha256:abc"));
        assert_eq!(s.ports, Some(vec![]));
        assert_eq!((s.size_rw, s.size_root_fs), (Some(5), Some(15)));
        assert_eq!(s.status.as_deref(), Some("Exited (0)"));
    }

    #[test]
    fn inspect_shows_paths_layers_ports_networks_and_mounts() {
        let mut rec = record("running");
        rec.state.paused = true;
        let a = inspect_answer(&view(rec)).unwrap();
        assert_eq!(a.name.as_deref(), Some("/web"));
        assert_eq!(a.image.as_deref(), Some("sha256:abc"));
        assert_eq!(a.hosts_path.as_deref(), Some("/c/hosts"));
        let state = a.state.unwrap();
        assert_eq!(state.status, Some(ContainerStateStatusEnum::PAUSED));
        assert_eq!((state.running, state.paused), (Some(true), Some(true)));
        assert_eq!(a.graph_driver.unwrap().data["LowerDir"], "/l1:/l2");
        let ns = a.network_settings.unwrap();
        let ports = ns.ports.unwrap();
        assert_eq!(ports.len(), 2);
        assert_eq!(ports["80/tcp"], None);
        assert_eq!(ns.networks.unwrap()["front"].ip_prefix_len, Some(24));
        let m = &a.mounts.unwrap()[0];
        assert_eq!(m.source.as_deref(), Some("/v/data/_data"));
        assert_eq!(m.mode.as_deref(), Some("z"));
        assert_eq!(a.size_rw, None);
        let mut exposed = a.config.unwrap().exposed_ports.unwrap_or_default();
        exposed.sort();
        assert_eq!(exposed, ["53/udp", "80/tcp"]);
        assert_eq!(
            a.host_config.unwrap().network_mode.as_deref(),
            Some("front")
        );
    }

    #[test]
    fn an_update_keeps_what_it_does_not_name() {
        let u = update_request(
            ContainerUpdateBody {
                memory: Some(64 << 20),
                restart_policy: Some(bollard_stubs::models::RestartPolicy {
                    name: Some(bollard_stubs::models::RestartPolicyNameEnum::ON_FAILURE),
                    maximum_retry_count: Some(3),
                }),
                ..Default::default()
            },
            ApiVersion(1, 47),
        )
        .unwrap();
        assert_eq!(u.memory, Some(64 << 20));
        assert_eq!(u.cpu_shares, None);
        let rp = u.restart_policy.unwrap();
        assert_eq!(
            rp.name,
            Some(berth_core::container::RestartPolicyName::OnFailure)
        );
        assert_eq!(rp.maximum_retry_count, Some(3));
    }

    #[test]
    fn an_update_reads_zero_as_unchanged_and_pids_limit_by_version() {
        // what the docker CLI sends for `update --cpu-quota 50000 --pids-limit -1`
        let body = || ContainerUpdateBody {
            memory: Some(0),
            cpu_shares: Some(0),
            nano_cpus: Some(0),
            cpu_period: Some(0),
            cpu_quota: Some(50_000),
            cpuset_cpus: Some(String::new()),
            pids_limit: Some(-1),
            restart_policy: Some(bollard_stubs::models::RestartPolicy {
                name: Some(RestartPolicyNameEnum::EMPTY),
                maximum_retry_count: Some(0),
            }),
            ..Default::default()
        };
        let u = update_request(body(), ApiVersion(1, 40)).unwrap();
        assert_eq!(
            u,
            ContainerUpdate {
                cpu_quota: Some(50_000),
                pids_limit: Some(0),
                ..Default::default()
            }
        );
        let u = update_request(body(), ApiVersion(1, 39)).unwrap();
        assert_eq!(u.pids_limit, None);
        let mut b = body();
        b.pids_limit = Some(200);
        assert_eq!(
            update_request(b, ApiVersion(1, 47)).unwrap().pids_limit,
            Some(200)
        );
    }

    #[test]
    fn inspect_fills_every_host_config_field_and_the_legacy_network_fields() {
        assert_eq!(zero_host_config().as_object().map(|o| o.len()), Some(62));
        let mut rec = record("running");
        rec.host_config.ipc_mode = Some("private".into());
        let mut v = view(rec);
        v.networks[0].name = "bridge".into();
        let a = inspect_answer_for(&v, ApiVersion(1, 41)).unwrap();
        assert_eq!(a["HostConfig"]["IpcMode"], "private");
        assert_eq!(a["HostConfig"]["Privileged"], false);
        assert_eq!(a["HostConfig"]["NetworkMode"], "front");
        assert_eq!(a["NetworkSettings"]["IPAddress"], "10.1.0.2");
        assert_eq!(a["NetworkSettings"]["IPPrefixLen"], 24);
        let ep = &a["NetworkSettings"]["Networks"]["bridge"];
        assert_eq!(ep["DriverOpts"], serde_json::Value::Null);
        // the default bridge gets no aliases, even for old clients
        assert_eq!(ep["Aliases"], serde_json::Value::Null);
    }

    #[test]
    fn changes_use_dockers_numbers() {
        let c = changes_answer(&[
            FileChange {
                path: "/a".into(),
                kind: ChangeKind::Modified,
            },
            FileChange {
                path: "/b".into(),
                kind: ChangeKind::Deleted,
            },
        ]);
        assert_eq!(c[0].kind, ChangeType::_0);
        assert_eq!(c[1].kind, ChangeType::_2);
    }
}
