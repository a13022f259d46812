//! Swarm-scoped networks in Docker's JSON, and a create request read as
//! swarmkit's spec (dockerd's `BasicNetworkCreateToGRPC` and
//! `BasicNetworkFromGRPC`).

use std::collections::HashMap;

use berth_swarm_store::{Ipam, IpamConfig, Network, NetworkSpec};
use bollard_stubs::models::NetworkCreateRequest;
use chrono::SecondsFormat;
use serde_json::{Value, json};

/// Whether a create request is for the swarm: the overlay driver, or
/// `--scope swarm`.
pub fn is_swarm_request(req: &NetworkCreateRequest) -> bool {
    req.driver.as_deref() == Some("overlay") || req.scope.as_deref() == Some("swarm")
}

pub fn spec_of(req: NetworkCreateRequest) -> NetworkSpec {
    let ipam = req.ipam.map(|i| Ipam {
        driver: i
            .driver
            .filter(|d| !d.is_empty())
            .unwrap_or("default".into()),
        options: i.options.unwrap_or_default().into_iter().collect(),
        configs: i
            .config
            .unwrap_or_default()
            .into_iter()
            .map(|c| IpamConfig {
                subnet: c.subnet.unwrap_or_default(),
                range: c.ip_range.unwrap_or_default(),
                gateway: c.gateway.unwrap_or_default(),
            })
            .collect(),
    });
    NetworkSpec {
        name: req.name,
        labels: req.labels.unwrap_or_default().into_iter().collect(),
        driver: req
            .driver
            .filter(|d| !d.is_empty())
            .unwrap_or("overlay".into()),
        options: req.options.unwrap_or_default().into_iter().collect(),
        ipv6: req.enable_ipv6.unwrap_or(false),
        internal: req.internal.unwrap_or(false),
        attachable: req.attachable.unwrap_or(false),
        ingress: req.ingress.unwrap_or(false),
        ipam,
        config_from: req.config_from.and_then(|c| c.network).unwrap_or_default(),
    }
}

/// A swarm network as `GET /networks` and inspect answer it on a manager.
pub fn network_json(n: &Network) -> Value {
    let configs: Vec<Value> = n
        .ipam
        .configs
        .iter()
        .map(|c| {
            let mut v = json!({ "Subnet": c.subnet, "Gateway": c.gateway });
            if !c.range.is_empty() {
                v["IPRange"] = json!(c.range);
            }
            v
        })
        .collect();
    let options = (!n.ipam.options.is_empty()).then_some(&n.ipam.options);
    json!({
        "Name": n.spec.name,
        "Id": n.id,
        "Created": n.meta.created_at.to_rfc3339_opts(SecondsFormat::Nanos, true),
        "Scope": "swarm",
        "Driver": n.spec.driver,
        "EnableIPv4": true,
        "EnableIPv6": n.spec.ipv6,
        "IPAM": { "Driver": n.ipam.driver, "Options": options, "Config": configs },
        "Internal": n.spec.internal,
        "Attachable": n.spec.attachable,
        "Ingress": n.spec.ingress,
        "ConfigFrom": { "Network": n.spec.config_from },
        "ConfigOnly": false,
        "Containers": null,
        "Options": n.driver_options,
        "Labels": n.spec.labels,
    })
}

/// `GET /networks?filters=` over swarm networks, as dockerd filters its
/// cluster's: the keys the local list takes, with swarm's answers.
pub fn matches(n: &Network, filters: &HashMap<String, Vec<String>>) -> bool {
    filters.iter().all(|(k, vals)| match k.as_str() {
        "name" => vals.iter().any(|v| n.spec.name.contains(v.as_str())),
        "id" => vals.iter().any(|v| n.id.starts_with(v.as_str())),
        "driver" => vals.contains(&n.spec.driver),
        "label" => vals.iter().all(|v| match v.split_once('=') {
            Some((key, want)) => n.spec.labels.get(key).is_some_and(|got| got == want),
            None => n.spec.labels.contains_key(v),
        }),
        "type" => vals.iter().any(|v| v == "custom"),
        "scope" => vals.iter().any(|v| v == "swarm"),
        // whether a service uses it is the manager's to know; a swarm
        // network is never listed as dangling
        "dangling" => vals.iter().any(|v| v == "false" || v == "0"),
        _ => true,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_stack_deploys_request_becomes_an_overlay_spec() {
        let req: NetworkCreateRequest = serde_json::from_str(
            r#"{"Driver":"overlay","Scope":"","IPAM":null,"Internal":false,"Attachable":false,
                "Ingress":false,"ConfigOnly":false,"ConfigFrom":null,"Options":null,
                "Labels":{"com.docker.stack.namespace":"st"},"Name":"st_default"}"#,
        )
        .unwrap();
        assert!(is_swarm_request(&req));
        let spec = spec_of(req);
        assert_eq!(spec.name, "st_default");
        assert_eq!(spec.driver, "overlay");
        assert_eq!(spec.ipam, None);
        assert_eq!(spec.labels["com.docker.stack.namespace"], "st");
    }

    #[test]
    fn answers_carry_dockerds_swarm_fields_and_filters_apply() {
        let mut n = Network {
            id: "abc".into(),
            ..Network::default()
        };
        n.spec.name = "st_default".into();
        n.spec.driver = "overlay".into();
        n.spec
            .labels
            .insert("com.docker.stack.namespace".into(), "st".into());
        n.ipam.driver = "default".into();
        n.ipam.configs.push(IpamConfig {
            subnet: "10.0.1.0/24".into(),
            gateway: "10.0.1.1".into(),
            ..IpamConfig::default()
        });
        let v = network_json(&n);
        assert_eq!(v["Scope"], "swarm");
        assert_eq!(v["IPAM"]["Config"][0]["Subnet"], "10.0.1.0/24");
        assert!(v["IPAM"]["Options"].is_null() && v["Containers"].is_null());
        let f = |k: &str, v: &str| HashMap::from([(k.to_string(), vec![v.to_string()])]);
        assert!(matches(&n, &f("label", "com.docker.stack.namespace=st")));
        assert!(!matches(
            &n,
            &f("label", "com.docker.stack.namespace=other")
        ));
        assert!(matches(&n, &f("scope", "swarm")));
        assert!(!matches(&n, &f("scope", "local")));
        assert!(matches(&n, &f("name", "default")));
    }
}
