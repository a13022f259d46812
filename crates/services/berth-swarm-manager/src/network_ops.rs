//! Swarm-scoped networks on a manager: swarmkit's control API for them
//! (`controlapi/network.go`) and dockerd's lookup. The store gives each
//! its subnet and VXLAN id and refuses to remove one in use.

use berth_swarm_store::{Action, Kind, Network, NetworkSpec, Object, Store, StoreError};

use crate::{Swarm, SwarmError};

/// Names dockerd keeps for its own networks.
const PREDEFINED: [&str; 3] = ["bridge", "host", "none"];

fn invalid(desc: impl Into<String>) -> SwarmError {
    SwarmError::Rpc {
        code: "InvalidArgument",
        desc: desc.into(),
    }
}

/// swarmkit's `validateNetworkSpec`, for what berth's overlay can be.
/// `--opt encrypted`: IPsec ESP between the nodes' VXLAN endpoints.
const ENCRYPTED_OPTION: &str = "encrypted";

fn check_spec(spec: &NetworkSpec) -> Result<(), SwarmError> {
    if spec.name.is_empty() {
        return Err(invalid("meta: name must be provided"));
    }
    if PREDEFINED.contains(&spec.name.as_str()) {
        return Err(SwarmError::Forbidden(format!(
            "{} is a pre-defined network and cannot be created",
            spec.name
        )));
    }
    check_driver(spec)?;
    if spec.ingress && spec.attachable {
        return Err(invalid("ingress network cannot be attachable"));
    }
    // libnetwork reads the option's presence, whatever its value; an
    // encrypted network is never made in clear
    if spec.options.contains_key(ENCRYPTED_OPTION) {
        let why = if crate::kernel::esp_supported() {
            "berth does not encrypt overlay traffic yet"
        } else {
            "this kernel cannot add IPsec ESP states: it needs esp4, xfrm_user and gcm(aes)"
        };
        return Err(SwarmError::Rpc {
            code: "FailedPrecondition",
            desc: format!(
                "cannot create secure network: required modules to install IPSEC rules are missing on host ({why}); berth never falls back to an unencrypted network"
            ),
        });
    }
    for c in spec.ipam.iter().flat_map(|i| &i.configs) {
        check_ipam(c)?;
    }
    Ok(())
}

/// Overlay networks, and node-local bridge and macvlan networks made from each node's
/// configuration network (`--config-from`).
fn check_driver(spec: &NetworkSpec) -> Result<(), SwarmError> {
    match (spec.driver.as_str(), spec.node_local()) {
        ("overlay", false) => Ok(()),
        ("bridge" | "macvlan", true) if spec.ingress => Err(invalid(
            "a node-local network cannot be the ingress network",
        )),
        ("bridge" | "macvlan", true) if spec.ipam.iter().any(|i| !i.configs.is_empty()) => {
            Err(SwarmError::Forbidden(
                "user-specified configurations are not supported if the network depends on a configuration network".into(),
            ))
        }
        ("bridge" | "macvlan", true) => Ok(()),
        ("overlay", true) => Err(invalid(
            "an overlay network cannot take its configuration from a node's configuration network",
        )),
        (other, true) => Err(invalid(format!(
            "network driver {other:?} is not supported for node-local swarm networks; berth's are \"bridge\" and \"macvlan\""
        ))),
        (other, false) => Err(invalid(format!(
            "network driver {other:?} is not supported for swarm-scoped networks without --config-from; berth's is \"overlay\""
        ))),
    }
}

/// swarmkit's `validateIPAMConfiguration`.
fn check_ipam(c: &berth_swarm_store::IpamConfig) -> Result<(), SwarmError> {
    let subnet = berth_ipnet::Subnet::parse(&c.subnet)
        .map_err(|_| invalid(format!("ipam configuration: invalid subnet {}", c.subnet)))?;
    if !c.range.is_empty() {
        let range = berth_ipnet::Subnet::parse(&c.range)
            .map_err(|_| invalid(format!("ipam configuration: invalid range {}", c.range)))?;
        if !subnet.contains(range.addr) {
            return Err(invalid(format!(
                "ipam configuration: subnet {} does not contain range {}",
                c.subnet, c.range
            )));
        }
    }
    if !c.gateway.is_empty() {
        let gw: std::net::Ipv4Addr = c
            .gateway
            .parse()
            .map_err(|_| invalid(format!("ipam configuration: invalid gateway {}", c.gateway)))?;
        if !subnet.contains(gw) {
            return Err(invalid(format!(
                "ipam configuration: subnet {} does not contain gateway {}",
                c.subnet, c.gateway
            )));
        }
    }
    Ok(())
}

/// A network by full id, then exact name, then unique id prefix, as
/// dockerd's `findUniqueNetwork` looks.
pub fn find_network<'s>(store: &'s Store, reference: &str) -> Result<&'s Network, SwarmError> {
    if let Some(n) = store.network(reference) {
        return Ok(n);
    }
    let by_name: Vec<&Network> = store
        .networks()
        .filter(|n| n.spec.name == reference)
        .collect();
    let (found, how) = if by_name.is_empty() {
        let by_id = store
            .networks()
            .filter(|n| n.id.starts_with(reference))
            .collect();
        (by_id, "ID prefix")
    } else {
        (by_name, "name")
    };
    match found.as_slice() {
        [one] => Ok(one),
        [] => Err(SwarmError::NotFound(format!(
            "network {reference} not found"
        ))),
        many => Err(SwarmError::InvalidArgument(format!(
            "network {reference} is ambiguous ({} matches found based on {how})",
            many.len()
        ))),
    }
}

impl Swarm {
    /// `POST /networks/create` for an overlay network: the new id.
    pub async fn create_network(&self, spec: NetworkSpec) -> Result<String, SwarmError> {
        let node = self.manager().await?;
        check_spec(&spec)?;
        if spec.ingress {
            let present = node
                .store()?
                .read(|st| st.networks().find(|n| n.spec.ingress).map(|n| n.id.clone()));
            if let Some(id) = present {
                return Err(SwarmError::Rpc {
                    code: "AlreadyExists",
                    desc: format!("ingress network ({id}) is already present"),
                });
            }
        }
        let id = berth_swarm_ca::new_id().map_err(|e| SwarmError::internal("network id", e))?;
        let name = spec.name.clone();
        let n = Network {
            id: id.clone(),
            spec,
            ..Network::default()
        };
        node.propose(vec![Action::Create(Object::Network(n))])
            .await
            .map_err(|e| match e {
                SwarmError::Rpc { desc, .. } if desc == StoreError::NameConflict.to_string() => {
                    SwarmError::Conflict(format!("network with name {name} already exists"))
                }
                e => e,
            })?;
        Ok(id)
    }

    /// Every swarm network; empty on a node that is not a manager, which
    /// knows only its local ones (as dockerd lists on a worker).
    pub async fn networks(&self) -> Vec<Network> {
        let Ok(node) = self.manager().await else {
            return Vec::new();
        };
        if node.sync_reads().await.is_err() {
            return Vec::new();
        }
        node.store()
            .map(|s| s.read(|st| st.networks().cloned().collect()))
            .unwrap_or_default()
    }

    pub async fn network(&self, reference: &str) -> Result<Network, SwarmError> {
        let node = self.manager().await?;
        node.sync_reads().await?;
        node.store()?
            .read(|st| find_network(st, reference).cloned())
    }

    /// `DELETE /networks/{id}`: refused while a service or a live task is
    /// attached (the store's check).
    pub async fn remove_network(&self, reference: &str) -> Result<(), SwarmError> {
        let node = self.manager().await?;
        let id = node
            .store()?
            .read(|st| find_network(st, reference).map(|n| n.id.clone()))?;
        node.propose(vec![Action::Remove {
            kind: Kind::Network,
            id,
        }])
        .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(name: &str) -> NetworkSpec {
        NetworkSpec {
            name: name.into(),
            driver: "overlay".into(),
            ..NetworkSpec::default()
        }
    }

    #[test]
    fn specs_are_checked_as_swarmkit_and_dockerd_do() {
        assert!(check_spec(&spec("web")).is_ok());
        assert_eq!(
            check_spec(&spec("")).unwrap_err().to_string(),
            "rpc error: code = InvalidArgument desc = meta: name must be provided"
        );
        assert_eq!(
            check_spec(&spec("host")).unwrap_err().to_string(),
            "host is a pre-defined network and cannot be created"
        );
        let mut s = spec("x");
        s.ipam = Some(berth_swarm_store::Ipam {
            configs: vec![berth_swarm_store::IpamConfig {
                subnet: "10.9.0.0/24".into(),
                gateway: "10.8.0.1".into(),
                ..Default::default()
            }],
            ..Default::default()
        });
        assert!(
            check_spec(&s).unwrap_err().to_string().ends_with(
                "ipam configuration: subnet 10.9.0.0/24 does not contain gateway 10.8.0.1"
            )
        );
        let mut s = spec("x");
        s.driver = "bridge".into();
        assert!(check_spec(&s).is_err());
    }

    #[test]
    fn lookup_is_id_then_name_then_prefix() {
        let mut st = Store::default();
        let mk = |id: &str, name: &str| {
            Action::Create(Object::Network(Network {
                id: id.into(),
                spec: spec(name),
                ..Network::default()
            }))
        };
        st.apply(
            &[mk("abc1", "front"), mk("abd2", "abc1x")],
            1,
            chrono::Utc::now(),
        )
        .unwrap();
        assert_eq!(find_network(&st, "abc1").unwrap().id, "abc1");
        assert_eq!(find_network(&st, "abc1x").unwrap().id, "abd2");
        assert_eq!(find_network(&st, "abd").unwrap().id, "abd2");
        assert_eq!(
            find_network(&st, "ab").unwrap_err().to_string(),
            "network ab is ambiguous (2 matches found based on ID prefix)"
        );
        assert_eq!(
            find_network(&st, "zz").unwrap_err().to_string(),
            "network zz not found"
        );
    }
}
