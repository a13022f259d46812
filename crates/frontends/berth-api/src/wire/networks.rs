//! networks: Docker's wire types to and from berth's. Requests for
//! `network create` and `network connect` become the networks service's;
//! networks become inspect and list answers (a container's own network
//! settings are in containers.rs).

use std::collections::HashMap;

use berth_core::container::EndpointConfig;
use berth_core::network::IpamPool;
use berth_engine::{CreateNetwork, NetworkContainerView, NetworkRecord, NetworkView, SwarmDetails};
use bollard_stubs::models::{
    ConfigReference, EndpointResource, EndpointSettings, Ipam, IpamConfig, NetworkCreateRequest,
    NetworkInspect,
};

use super::{from_request, to_answer};
use crate::error::ApiError;

/// The service's request for `network create`, from Docker's.
pub fn network_create_request(req: NetworkCreateRequest) -> CreateNetwork {
    let ipam_options = req.ipam.as_ref().and_then(|i| i.options.clone());
    let ipam = req.ipam.and_then(|i| i.config).unwrap_or_default();
    CreateNetwork {
        name: req.name,
        driver: req.driver.unwrap_or_default(),
        ipam: ipam
            .into_iter()
            .map(|c| IpamPool {
                subnet: c.subnet.unwrap_or_default(),
                ip_range: c.ip_range,
                gateway: c.gateway,
                aux_addresses: c.auxiliary_addresses.unwrap_or_default(),
            })
            .collect(),
        enable_ipv6: req.enable_ipv6,
        internal: req.internal.unwrap_or(false),
        attachable: req.attachable.unwrap_or(false),
        labels: req.labels.unwrap_or_default(),
        options: req.options.unwrap_or_default(),
        ipam_options,
        scope: req.scope.unwrap_or_default(),
        config_only: req.config_only.unwrap_or(false),
        config_from: req
            .config_from
            .and_then(|c| c.network)
            .filter(|n| !n.is_empty()),
        id: None,
    }
}

/// `network connect`'s endpoint settings as berth's (same JSON shape).
pub fn endpoint_config_request(
    settings: Option<EndpointSettings>,
) -> Result<EndpointConfig, ApiError> {
    from_request(&settings.unwrap_or_default(), "container config")
}

/// A network as inspect and list send it: Docker's fields without
/// `omitempty` are there even when null.
pub fn network_json(view: &NetworkView) -> Result<serde_json::Value, ApiError> {
    let mut answer: serde_json::Value = to_answer(&network_answer(view), "a network")?;
    if let Some(ipam) = answer.get_mut("IPAM").and_then(|i| i.as_object_mut()) {
        ipam.entry("Options").or_insert(serde_json::Value::Null);
    }
    Ok(answer)
}

/// A swarm network's `Peers` and, verbose, its `Services`, as dockerd
/// shows them for a network this node has an instance of.
pub fn add_swarm_details(answer: &mut serde_json::Value, d: &SwarmDetails, verbose: bool) {
    let Some(obj) = answer.as_object_mut() else {
        return;
    };
    if !d.peers.is_empty() {
        let peers: Vec<serde_json::Value> = d
            .peers
            .iter()
            .map(|(name, ip)| serde_json::json!({ "Name": name, "IP": ip }))
            .collect();
        obj.insert("Peers".into(), peers.into());
    }
    if verbose {
        let services: serde_json::Map<String, serde_json::Value> = d
            .services
            .iter()
            .map(|s| {
                let tasks: Vec<serde_json::Value> = s
                    .tasks
                    .iter()
                    .map(|(name, id, ip, host)| {
                        serde_json::json!({
                            "Name": name, "EndpointID": id, "EndpointIP": ip,
                            "Info": { "Host IP": host },
                        })
                    })
                    .collect();
                let info = serde_json::json!({
                    "VIP": s.vip, "Ports": s.ports, "LocalLBIndex": 0, "Tasks": tasks,
                });
                (s.name.clone(), info)
            })
            .collect();
        obj.insert("Services".into(), services.into());
    }
}

/// A network as inspect and list answer it.
pub fn network_answer(view: &NetworkView) -> NetworkInspect {
    let containers = view
        .containers
        .iter()
        .map(|c| (c.id.clone(), endpoint_resource(c)))
        .collect();
    inspect_of(&view.record, containers)
}

fn endpoint_resource(c: &NetworkContainerView) -> EndpointResource {
    let ep = &c.endpoint;
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
        scope: Some(if n.swarm_scoped() { "swarm" } else { "local" }.into()),
        driver: Some(n.driver.clone()),
        enable_ipv4: Some(true),
        enable_ipv6: Some(!n.subnet6.is_empty()),
        ipam: Some(Ipam {
            driver: Some("default".into()),
            config: Some(ipam_config),
            // dockerd sends null (a nil map) when the creator gave none
            options: n.ipam_options.clone(),
        }),
        internal: Some(n.internal),
        attachable: Some(n.attachable),
        ingress: Some(n.ingress),
        config_only: Some(n.config_only),
        config_from: Some(ConfigReference {
            network: Some(n.config_from.clone()),
        }),
        options: Some(n.options.clone()),
        labels: Some(n.labels.clone()),
        containers: Some(containers),
        ..Default::default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use berth_engine::EndpointRecord;
    use bollard_stubs::models::{EndpointIpamConfig as WireIpamConfig, IpamConfig as WireIpam};

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

    #[test]
    fn an_inspected_network_lists_its_containers() {
        let record = NetworkRecord::bare("front", "bridge");
        let view = NetworkView {
            record: record.clone(),
            containers: vec![NetworkContainerView {
                id: "c1".into(),
                name: "web".into(),
                endpoint: EndpointRecord {
                    network_id: record.id.clone(),
                    endpoint_id: "ep1".into(),
                    ip: "10.5.0.2".into(),
                    prefix: 24,
                    mac: "02:42:0a:05:00:02".into(),
                    ..Default::default()
                },
            }],
            swarm: None,
        };
        let answer = network_answer(&view);
        assert_eq!(answer.id.as_deref(), Some(record.id.as_str()));
        assert_eq!(answer.name.as_deref(), Some("front"));
        assert_eq!(answer.scope.as_deref(), Some("local"));
        let containers = answer.containers.unwrap();
        let c = &containers["c1"];
        assert_eq!(c.name.as_deref(), Some("web"));
        assert_eq!(c.endpoint_id.as_deref(), Some("ep1"));
        assert_eq!(c.mac_address.as_deref(), Some("02:42:0a:05:00:02"));
        assert_eq!(c.ipv4_address.as_deref(), Some("10.5.0.2/24"));
        assert_eq!(c.ipv6_address.as_deref(), Some(""));
    }

    #[test]
    fn a_create_request_becomes_the_services() {
        let req = NetworkCreateRequest {
            name: "app".into(),
            enable_ipv6: Some(true),
            internal: Some(true),
            ipam: Some(Ipam {
                config: Some(vec![WireIpam {
                    subnet: Some("10.7.0.0/16".into()),
                    gateway: Some("10.7.0.1".into()),
                    ..Default::default()
                }]),
                ..Default::default()
            }),
            labels: Some(HashMap::from([("a".to_string(), "b".to_string())])),
            ..Default::default()
        };
        let spec = network_create_request(req);
        assert_eq!(spec.name, "app");
        assert_eq!(spec.driver, "");
        assert!(spec.enable_ipv6 == Some(true) && spec.internal && !spec.attachable);
        assert_eq!(spec.ipam.len(), 1);
        assert_eq!(spec.ipam[0].subnet, "10.7.0.0/16");
        assert_eq!(spec.ipam[0].gateway.as_deref(), Some("10.7.0.1"));
        assert_eq!(spec.ipam[0].ip_range, None);
        assert_eq!(spec.labels["a"], "b");
    }

    #[test]
    fn connect_settings_become_berths() {
        let settings = EndpointSettings {
            aliases: Some(vec!["db".into()]),
            ipam_config: Some(WireIpamConfig {
                ipv4_address: Some("10.7.0.9".into()),
                ..Default::default()
            }),
            ..Default::default()
        };
        let cfg = endpoint_config_request(Some(settings)).unwrap();
        assert_eq!(cfg.aliases, Some(vec!["db".to_string()]));
        assert_eq!(
            cfg.ipam_config.and_then(|c| c.ipv4_address).as_deref(),
            Some("10.7.0.9")
        );
        assert!(endpoint_config_request(None).is_ok());
    }
}
