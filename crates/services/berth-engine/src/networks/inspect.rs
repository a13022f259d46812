//! Networks and containers' network settings as inspect and list show
//! them: berth's records with what is computed from the containers (the
//! Docker Engine API shapes them at its edge).

use std::collections::HashMap;

use berth_core::container::EndpointConfig;
use berth_core::network::PublishedPort;

use super::{EndpointRecord, NetworkRecord, endpoint_network, parse_port_key};
use crate::containers::{ContainerRecord, Status};
use crate::{Engine, Error, LockExt, Result};

/// A network as inspect and list show it.
#[derive(Debug, Clone)]
pub struct NetworkView {
    pub record: NetworkRecord,
    /// the containers with an endpoint on it (inspect only; none in a list)
    pub containers: Vec<NetworkContainerView>,
}

/// A container with an endpoint on a network.
#[derive(Debug, Clone)]
pub struct NetworkContainerView {
    pub id: String,
    pub name: String,
    pub endpoint: EndpointRecord,
}

/// One port in `ps`'s Ports: published, or only exposed (no host side).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PortView {
    /// the host address, for a published port
    pub ip: Option<String>,
    pub private_port: u16,
    pub public_port: Option<u16>,
    /// tcp, udp or sctp
    pub proto: String,
}

/// A container's NetworkSettings.Ports and .Networks.
#[derive(Debug, Clone, Default)]
pub struct ContainerNetworkView {
    /// the exposed ports' keys ("80/tcp"), published or not
    pub exposed_ports: Vec<String>,
    pub published: Vec<PublishedPort>,
    /// one per network the container is on or will join at start
    pub networks: Vec<ContainerEndpointView>,
}

/// A container's endpoint on one network: what it was given while it runs
/// (a default record otherwise) and what the client asked for.
#[derive(Debug, Clone, Default)]
pub struct ContainerEndpointView {
    /// the network's name, the key of .Networks
    pub network: String,
    /// empty for a network that no longer exists
    pub network_id: String,
    pub endpoint: EndpointRecord,
    pub config: EndpointConfig,
}

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

    pub fn network_inspect(&self, name: &str) -> Result<NetworkView> {
        let n = self.network_record(name)?;
        let containers = self
            .network_endpoints(&n.id)
            .into_iter()
            .map(|(c, endpoint)| NetworkContainerView {
                id: c.id,
                name: c.name,
                endpoint,
            })
            .collect();
        Ok(NetworkView {
            record: n,
            containers,
        })
    }

    pub fn network_list(&self, filters: &HashMap<String, Vec<String>>) -> Result<Vec<NetworkView>> {
        for k in filters.keys() {
            if !matches!(
                k.as_str(),
                "name" | "id" | "driver" | "label" | "type" | "scope" | "dangling"
            ) {
                return Err(Error::invalid(format!("invalid filter '{k}'")));
            }
        }
        let nets: Vec<NetworkRecord> = self.networks.all();
        let mut out: Vec<NetworkView> = nets
            .into_iter()
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
            .map(|record| NetworkView {
                record,
                containers: Vec::new(),
            })
            .collect();
        out.sort_by(|a, b| a.record.name.cmp(&b.record.name));
        Ok(out)
    }

    /// The Ports of `ps`: published ports, and exposed ones while running.
    pub(crate) fn port_summary(&self, rec: &ContainerRecord) -> Vec<PortView> {
        if rec.state.status != Status::Running {
            return Vec::new();
        }
        let mut out: Vec<PortView> = rec
            .published
            .iter()
            .map(|p| PortView {
                ip: Some(p.host_ip.clone()),
                private_port: p.container_port,
                public_port: Some(p.host_port),
                proto: p.proto.clone(),
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
                out.push(PortView {
                    ip: None,
                    private_port: port,
                    public_port: None,
                    proto,
                });
            }
        }
        out
    }

    /// NetworkSettings.Ports and .Networks of a container, as inspect shows.
    pub(crate) fn network_settings(&self, rec: &ContainerRecord) -> ContainerNetworkView {
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
        let networks = names
            .into_iter()
            .map(|name| ContainerEndpointView {
                endpoint: rec.endpoints.get(&name).cloned().unwrap_or_default(),
                config: rec.endpoints_config.get(&name).cloned().unwrap_or_default(),
                network_id: self
                    .networks
                    .r()
                    .find(&name)
                    .map(|n| n.id.clone())
                    .unwrap_or_default(),
                network: name,
            })
            .collect();
        ContainerNetworkView {
            exposed_ports: rec.config.exposed_ports.clone().unwrap_or_default(),
            published: rec.published.clone(),
            networks,
        }
    }
}
