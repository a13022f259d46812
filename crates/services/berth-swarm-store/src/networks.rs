//! Swarm-scoped (overlay) networks: the control plane's record of each,
//! with the subnet and VXLAN id the store gives it. The store allocates
//! them inside `apply`, from the state every manager holds alike, so two
//! creations can never race for one subnet and every manager picks the
//! same. Wiring tasks to them is the data plane's job (overlay issue).

use std::collections::BTreeMap;

use berth_ipnet::Subnet;
use serde::{Deserialize, Serialize};

use crate::objects::Meta;

/// The driver option that names a network's VXLAN id, as Docker's.
pub const VNI_OPTION: &str = "com.docker.network.driver.overlay.vxlanid_list";

/// swarmkit's default address pool and the size of each network's subnet.
const DEFAULT_POOL: &str = "10.0.0.0/8";
const DEFAULT_MASK: u8 = 24;
/// VXLAN ids, as swarmkit hands them out: 4096 is the ingress network's.
const FIRST_VNI: u32 = 4097;
const LAST_VNI: u32 = (1 << 24) - 1;

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct IpamConfig {
    pub subnet: String,
    #[serde(default)]
    pub range: String,
    #[serde(default)]
    pub gateway: String,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Ipam {
    pub driver: String,
    #[serde(default)]
    pub options: BTreeMap<String, String>,
    #[serde(default)]
    pub configs: Vec<IpamConfig>,
}

/// What the client asked for (Docker's `NetworkCreateRequest`, as
/// swarmkit's `NetworkSpec` keeps it).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct NetworkSpec {
    pub name: String,
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
    pub driver: String,
    #[serde(default)]
    pub options: BTreeMap<String, String>,
    #[serde(default)]
    pub ipv6: bool,
    #[serde(default)]
    pub internal: bool,
    #[serde(default)]
    pub attachable: bool,
    #[serde(default)]
    pub ingress: bool,
    #[serde(default)]
    pub ipam: Option<Ipam>,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Network {
    pub id: String,
    pub meta: Meta,
    pub spec: NetworkSpec,
    /// the pools the store gave it (the spec's, completed)
    #[serde(default)]
    pub ipam: Ipam,
    /// the driver's options as allocated: the spec's plus the VXLAN id
    #[serde(default)]
    pub driver_options: BTreeMap<String, String>,
}

impl Network {
    pub fn vni(&self) -> Option<u32> {
        parse_vni(self.driver_options.get(VNI_OPTION)?)
    }

    fn subnets(&self) -> impl Iterator<Item = Subnet> + '_ {
        self.ipam
            .configs
            .iter()
            .filter_map(|c| Subnet::parse(&c.subnet).ok())
    }
}

fn parse_vni(list: &str) -> Option<u32> {
    list.split(',').next()?.trim().parse().ok()
}

/// A service's attachment to a network (`TaskTemplate.Networks[]`);
/// `target` holds the network's id once the manager has resolved it.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct NetworkAttachment {
    #[serde(default)]
    pub target: String,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub aliases: Vec<String>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub driver_opts: BTreeMap<String, String>,
}

/// Gives a new network its subnet (the first free /24 of 10.0.0.0/8
/// unless the client named one), its gateway (the subnet's first address)
/// and its VXLAN id, against the networks that exist. The errors are
/// libnetwork's words for the same conflicts.
pub fn allocate(mut n: Network, others: &[&Network]) -> Result<Network, String> {
    let requested = n.spec.ipam.clone().unwrap_or_default();
    let used: Vec<Subnet> = others.iter().flat_map(|o| o.subnets()).collect();
    let mut configs = Vec::new();
    if requested.configs.iter().all(|c| c.subnet.is_empty()) {
        let subnet = free_subnet(&used)
            .ok_or("could not find an available, non-overlapping IPv4 address pool")?;
        configs.push(completed(IpamConfig::default(), subnet));
    } else {
        for c in requested.configs.iter().filter(|c| !c.subnet.is_empty()) {
            let subnet = Subnet::parse(&c.subnet)
                .map_err(|_| format!("invalid subnet {}", c.subnet))?
                .network();
            if used
                .iter()
                .chain(&configs_subnets(&configs))
                .any(|u| u.overlaps(&subnet))
            {
                return Err(
                    "invalid pool request: Pool overlaps with other one on this address space"
                        .into(),
                );
            }
            configs.push(completed(c.clone(), subnet));
        }
    }
    n.ipam = Ipam {
        driver: non_empty(&requested.driver, "default"),
        options: requested.options,
        configs,
    };
    n.driver_options = n.spec.options.clone();
    let taken: Vec<u32> = others.iter().filter_map(|o| o.vni()).collect();
    let vni = match n.spec.options.get(VNI_OPTION) {
        Some(list) => {
            let vni = parse_vni(list)
                .filter(|v| (1..=LAST_VNI).contains(v))
                .ok_or_else(|| format!("invalid vxlan id list {list:?}"))?;
            if taken.contains(&vni) {
                return Err(format!("cannot allocate vxlan id {vni}: it is in use"));
            }
            vni
        }
        None => (FIRST_VNI..=LAST_VNI)
            .find(|v| !taken.contains(v))
            .ok_or("no vxlan id is left")?,
    };
    n.driver_options.insert(VNI_OPTION.into(), vni.to_string());
    Ok(n)
}

fn configs_subnets(configs: &[IpamConfig]) -> Vec<Subnet> {
    configs
        .iter()
        .filter_map(|c| Subnet::parse(&c.subnet).ok())
        .collect()
}

fn completed(mut c: IpamConfig, subnet: Subnet) -> IpamConfig {
    c.subnet = subnet.to_string();
    if c.gateway.is_empty() {
        c.gateway = subnet.nth(1).to_string();
    }
    c
}

fn non_empty(s: &str, default: &str) -> String {
    if s.is_empty() { default } else { s }.to_string()
}

fn free_subnet(used: &[Subnet]) -> Option<Subnet> {
    let pool = Subnet::parse(DEFAULT_POOL).ok()?;
    let count = 1u32 << (DEFAULT_MASK - pool.prefix);
    let step = 1u32 << (32 - DEFAULT_MASK);
    (0..count)
        .map(|i| Subnet {
            addr: std::net::Ipv4Addr::from(u32::from(pool.nth(0)) + i * step),
            prefix: DEFAULT_MASK,
        })
        .find(|s| !used.iter().any(|u| u.overlaps(s)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn net(id: &str, subnet: Option<&str>) -> Network {
        let mut n = Network {
            id: id.into(),
            ..Network::default()
        };
        n.spec.name = id.into();
        n.spec.driver = "overlay".into();
        if let Some(s) = subnet {
            n.spec.ipam = Some(Ipam {
                configs: vec![IpamConfig {
                    subnet: s.into(),
                    ..IpamConfig::default()
                }],
                ..Ipam::default()
            });
        }
        n
    }

    #[test]
    fn new_networks_take_the_next_free_subnet_and_vxlan_id() {
        let a = allocate(net("a", None), &[]).unwrap();
        assert_eq!(a.ipam.configs[0].subnet, "10.0.0.0/24");
        assert_eq!(a.ipam.configs[0].gateway, "10.0.0.1");
        assert_eq!(a.ipam.driver, "default");
        assert_eq!(a.vni(), Some(4097));
        let b = allocate(net("b", None), &[&a]).unwrap();
        assert_eq!(b.ipam.configs[0].subnet, "10.0.1.0/24");
        assert_eq!(b.vni(), Some(4098));
    }

    #[test]
    fn a_requested_subnet_is_kept_and_may_not_overlap() {
        let a = allocate(net("a", Some("10.0.0.5/16")), &[]).unwrap();
        assert_eq!(a.ipam.configs[0].subnet, "10.0.0.0/16");
        let e = allocate(net("b", Some("10.0.3.0/24")), &[&a]).unwrap_err();
        assert!(e.contains("Pool overlaps"), "{e}");
        let c = allocate(net("c", None), &[&a]).unwrap();
        assert_eq!(c.ipam.configs[0].subnet, "10.1.0.0/24");
    }

    #[test]
    fn a_requested_vxlan_id_must_be_free() {
        let mut a = net("a", None);
        a.spec.options.insert(VNI_OPTION.into(), "5000".into());
        let a = allocate(a, &[]).unwrap();
        assert_eq!(a.vni(), Some(5000));
        let mut b = net("b", None);
        b.spec.options.insert(VNI_OPTION.into(), "5000".into());
        let e = allocate(b, &[&a]).unwrap_err();
        assert!(e.contains("vxlan id 5000"), "{e}");
    }
}
