//! Networks and containers' network settings as Docker's inspect and
//! list show them.

use std::collections::HashMap;

use bollard_stubs::models::{
    EndpointResource, EndpointSettings, Ipam, IpamConfig, NetworkInspect, PortBinding, PortMap,
};

use super::{EndpointRecord, NetworkRecord, endpoint_network, parse_port_key};
use crate::containers::{ContainerRecord, Status};
use crate::{Engine, Error, LockExt, Result};

impl Engine {
    /// The containers running on a network: name, endpoint.
    fn network_endpoints(&self, id: &str) -> Vec<(ContainerRecord, EndpointRecord)> {
        self.containers
            .r()
            .values()
            .map(|e| e.record())
            .filter_map(|r| {
                let ep = r.endpoints.values().find(|ep| ep.network_id == id)?.clone();
                Some((r, ep))
            })
            .collect()
    }

    pub fn network_inspect(&self, name: &str) -> Result<NetworkInspect> {
        let n = self.network_record(name)?;
        let mut containers = HashMap::new();
        for (c, ep) in self.network_endpoints(&n.id) {
            containers.insert(
                c.id.clone(),
                EndpointResource {
                    name: Some(c.name.clone()),
                    endpoint_id: Some(ep.endpoint_id.clone()),
                    mac_address: Some(ep.mac.clone()),
                    ipv4_address: Some(format!("{}/{}", ep.ip, ep.prefix)),
                    ipv6_address: Some(if ep.ip6.is_empty() {
                        String::new()
                    } else {
                        format!("{}/{}", ep.ip6, ep.prefix6)
                    }),
                },
            );
        }
        Ok(inspect_of(&n, containers))
    }

    pub fn network_list(
        &self,
        filters: &HashMap<String, Vec<String>>,
    ) -> Result<Vec<NetworkInspect>> {
        for k in filters.keys() {
            if !matches!(
                k.as_str(),
                "name" | "id" | "driver" | "label" | "type" | "scope" | "dangling"
            ) {
                return Err(Error::invalid(format!("invalid filter '{k}'")));
            }
        }
        let nets: Vec<NetworkRecord> = self.networks.all();
        let mut out: Vec<NetworkInspect> = nets
            .iter()
            .filter(|n| {
                filters.iter().all(|(k, vals)| match k.as_str() {
                    "name" => vals.iter().any(|v| n.name.contains(v.as_str())),
                    "id" => vals.iter().any(|v| n.id.starts_with(v.as_str())),
                    "driver" => vals.contains(&n.driver),
                    "label" => crate::labels_match(&n.labels, vals),
                    "type" => vals.iter().any(|v| match v.as_str() {
                        "custom" => !n.predefined(),
                        "builtin" => n.predefined(),
                        _ => false,
                    }),
                    "scope" => vals.iter().any(|v| v == "local"),
                    "dangling" => {
                        let unused = n.predefined() || self.network_endpoints(&n.id).is_empty();
                        let unused = unused && !n.predefined();
                        vals.iter().any(|v| (v == "true" || v == "1") == unused)
                    }
                    _ => true,
                })
            })
            .map(|n| inspect_of(n, HashMap::new()))
            .collect();
        out.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(out)
    }

    /// The Ports of `ps`: published ports, and exposed ones while running.
    pub(crate) fn port_summary(
        &self,
        rec: &ContainerRecord,
    ) -> Vec<bollard_stubs::models::PortSummary> {
        use bollard_stubs::models::{PortSummary, PortSummaryTypeEnum};
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
        for k in rec.config.exposed_ports.clone().unwrap_or_default() {
            let Ok((port, proto)) = parse_port_key(&k) else {
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

    /// NetworkSettings.Ports and .Networks of a container, as inspect shows.
    pub(crate) fn network_settings(
        &self,
        rec: &ContainerRecord,
    ) -> (PortMap, HashMap<String, EndpointSettings>) {
        let mut ports: PortMap = HashMap::new();
        for k in rec.config.exposed_ports.clone().unwrap_or_default().iter() {
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
        let mut networks = HashMap::new();
        let mode = rec.host_config.network_mode.clone().unwrap_or_default();
        let names: Vec<String> = match endpoint_network(&mode) {
            Some(n) => {
                let mut v = vec![
                    self.networks
                        .r()
                        .find(n)
                        .map(|r| r.name.clone())
                        .unwrap_or_else(|| n.to_string()),
                ];
                if rec.primary_detached {
                    v.clear();
                }
                for extra in self.container_networks(rec).unwrap_or_default() {
                    if !v.contains(&extra.name) {
                        v.push(extra.name);
                    }
                }
                v
            }
            None if mode.starts_with("container:") => Vec::new(),
            None => vec![mode.clone()],
        };
        for name in names {
            let ep = rec.endpoints.get(&name).cloned().unwrap_or_default();
            let cfg = rec.endpoints_config.get(&name).cloned().unwrap_or_default();
            let net_id = self
                .networks
                .r()
                .find(&name)
                .map(|n| n.id.clone())
                .unwrap_or_default();
            networks.insert(
                name,
                EndpointSettings {
                    ipam_config: cfg
                        .ipam_config
                        .as_ref()
                        .and_then(|c| crate::wire::convert(c).ok()),
                    links: None,
                    aliases: cfg.aliases.clone(),
                    mac_address: Some(ep.mac.clone()),
                    driver_opts: None,
                    network_id: Some(net_id),
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
        (ports, networks)
    }
}

fn inspect_of(n: &NetworkRecord, containers: HashMap<String, EndpointResource>) -> NetworkInspect {
    let mut ipam_config = if n.subnet.is_empty() {
        Vec::new()
    } else {
        vec![IpamConfig {
            subnet: Some(n.subnet.clone()),
            ip_range: n.ip_range.clone(),
            gateway: Some(n.gateway.clone()),
            auxiliary_addresses: (!n.aux_addresses.is_empty()).then(|| n.aux_addresses.clone()),
        }]
    };
    if !n.subnet6.is_empty() {
        ipam_config.push(IpamConfig {
            subnet: Some(n.subnet6.clone()),
            ip_range: None,
            gateway: Some(n.gateway6.clone()),
            auxiliary_addresses: None,
        });
    }
    NetworkInspect {
        name: Some(n.name.clone()),
        id: Some(n.id.clone()),
        created: Some(n.created.clone()),
        scope: Some("local".into()),
        driver: Some(n.driver.clone()),
        enable_ipv4: Some(true),
        enable_ipv6: Some(!n.subnet6.is_empty()),
        ipam: Some(Ipam {
            driver: Some("default".into()),
            config: Some(ipam_config),
            options: None,
        }),
        internal: Some(n.internal),
        attachable: Some(n.attachable),
        ingress: Some(false),
        config_only: Some(false),
        options: Some(n.options.clone()),
        labels: Some(n.labels.clone()),
        containers: Some(containers),
        ..Default::default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn inspect_shows_both_ipam_configs() {
        let mut n = NetworkRecord::bare("dual", "bridge");
        n.subnet = "10.4.0.0/24".into();
        n.gateway = "10.4.0.1".into();
        n.ip_range = Some("10.4.0.128/25".into());
        n.subnet6 = "fd00:4::/64".into();
        n.gateway6 = "fd00:4::1".into();
        let i = inspect_of(&n, HashMap::new());
        let cfg = i.ipam.unwrap().config.unwrap();
        assert_eq!(cfg.len(), 2);
        assert_eq!(cfg[0].subnet.as_deref(), Some("10.4.0.0/24"));
        assert_eq!(cfg[0].ip_range.as_deref(), Some("10.4.0.128/25"));
        assert_eq!(cfg[0].gateway.as_deref(), Some("10.4.0.1"));
        assert_eq!(cfg[0].auxiliary_addresses, None);
        assert_eq!(cfg[1].subnet.as_deref(), Some("fd00:4::/64"));
        assert_eq!(i.enable_ipv6, Some(true));
        let host = inspect_of(&NetworkRecord::bare("host", "host"), HashMap::new());
        assert_eq!(host.ipam.unwrap().config.unwrap().len(), 0);
        assert_eq!(host.enable_ipv6, Some(false));
    }
}
