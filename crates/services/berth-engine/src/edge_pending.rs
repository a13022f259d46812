//! The answers containers.rs and system.rs still build in Docker's types,
//! from the views of networks.rs and volumes.rs: copies of berth-api's
//! `wire::networks::{port_summaries, port_map, endpoint_settings}` and
//! `wire::volumes::{volume_answer, mount_points}`, to be deleted when the
//! container answers and `system df` are built at the edge.

use std::collections::HashMap;

use berth_core::mount::MountKind;
use berth_core::volume::VolumeScope;
use bollard_stubs::models::{
    EndpointSettings, MountPoint, PortBinding, PortMap, PortSummary, PortSummaryTypeEnum, Volume,
    VolumeScopeEnum, VolumeUsageData,
};

use crate::{ContainerNetworkView, MountView, PortView, VolumeView};

/// The Ports of `ps`.
pub(crate) fn port_summaries(ports: &[PortView]) -> Vec<PortSummary> {
    let typ = |p: &str| match p {
        "udp" => PortSummaryTypeEnum::UDP,
        "sctp" => PortSummaryTypeEnum::SCTP,
        _ => PortSummaryTypeEnum::TCP,
    };
    ports
        .iter()
        .map(|p| PortSummary {
            ip: p.ip.clone(),
            private_port: p.private_port,
            public_port: p.public_port,
            typ: Some(typ(&p.proto)),
        })
        .collect()
}

/// NetworkSettings.Ports of a container: every exposed port, with its
/// host bindings once published.
pub(crate) fn port_map(view: &ContainerNetworkView) -> PortMap {
    let mut ports: PortMap = HashMap::new();
    for k in &view.exposed_ports {
        ports.insert(k.clone(), None);
    }
    for p in &view.published {
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

/// NetworkSettings.Networks of a container (inspect), and of `ps`.
pub(crate) fn endpoint_settings(view: &ContainerNetworkView) -> HashMap<String, EndpointSettings> {
    let mut networks = HashMap::new();
    for n in &view.networks {
        let (ep, cfg) = (&n.endpoint, &n.config);
        networks.insert(
            n.network.clone(),
            EndpointSettings {
                ipam_config: cfg
                    .ipam_config
                    .as_ref()
                    .and_then(|c| crate::wire::convert(c).ok()),
                links: None,
                aliases: cfg.aliases.clone(),
                mac_address: Some(ep.mac.clone()),
                driver_opts: None,
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
            },
        );
    }
    networks
}

/// A volume as inspect, list, create and `system df` answer it.
pub(crate) fn volume_answer(view: &VolumeView) -> Volume {
    let rec = &view.record;
    Volume {
        name: rec.name.clone(),
        driver: rec.driver.clone(),
        mountpoint: view.mountpoint.clone(),
        created_at: Some(rec.created_at.clone()),
        labels: rec.labels.clone(),
        scope: Some(match view.scope {
            VolumeScope::Local => VolumeScopeEnum::LOCAL,
            VolumeScope::Global => VolumeScopeEnum::GLOBAL,
        }),
        options: rec.options.clone(),
        // -1: the driver cannot tell, as in Docker
        usage_data: view.usage.map(|u| VolumeUsageData {
            size: u.size.map_or(-1, |n| n as i64),
            ref_count: u.ref_count as i64,
        }),
        ..Default::default()
    }
}

/// The `Mounts` field of container inspect and list.
pub(crate) fn mount_points(mounts: &[MountView]) -> Vec<MountPoint> {
    mounts
        .iter()
        .map(|v| {
            let m = &v.record;
            match m.kind {
                MountKind::Volume => MountPoint {
                    typ: Some("volume".into()),
                    name: Some(m.source.clone()),
                    source: v.volume_mountpoint.clone(),
                    destination: Some(m.destination.clone()),
                    driver: v.volume_driver.clone(),
                    mode: Some(if m.mode.is_empty() {
                        "z".into()
                    } else {
                        m.mode.clone()
                    }),
                    rw: Some(!m.read_only),
                    propagation: Some(String::new()),
                },
                MountKind::Bind => MountPoint {
                    typ: Some("bind".into()),
                    source: Some(m.source.clone()),
                    destination: Some(m.destination.clone()),
                    mode: Some(m.mode.clone()),
                    rw: Some(!m.read_only),
                    propagation: Some(if m.propagation.is_empty() {
                        "rprivate".into()
                    } else {
                        m.propagation.clone()
                    }),
                    ..Default::default()
                },
                MountKind::Tmpfs => MountPoint {
                    typ: Some("tmpfs".into()),
                    source: Some(String::new()),
                    destination: Some(m.destination.clone()),
                    mode: Some(String::new()),
                    rw: Some(!m.read_only),
                    propagation: Some(String::new()),
                    ..Default::default()
                },
            }
        })
        .collect()
}
