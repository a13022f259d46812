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
pub const DEFAULT_POOL: &str = "10.0.0.0/8";
pub const DEFAULT_MASK: u8 = 24;
/// VXLAN ids, as swarmkit hands them out: the first (4096) is the ingress
/// network's, made with the cluster.
const FIRST_VNI: u32 = 4096;
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
    /// a node-local network (`--config-from NAME`): each node makes it
    /// from its own configuration network NAME; the managers give it no
    /// subnet, no addresses and no VIPs
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub config_from: String,
}

impl NetworkSpec {
    pub fn node_local(&self) -> bool {
        !self.config_from.is_empty()
    }
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
    /// the last address handed out: the next is looked for after it, so
    /// that a freed address is not given again at once (stale ARP, DNS
    /// and conntrack entries elsewhere would still point at it)
    #[serde(default)]
    pub ipam_cursor: u32,
}

impl Network {
    pub fn vni(&self) -> Option<u32> {
        parse_vni(self.driver_options.get(VNI_OPTION)?)
    }

    /// The first IPv4 pool: where task addresses and VIPs come from.
    pub fn pool(&self) -> Option<(Subnet, Option<Subnet>, std::net::Ipv4Addr)> {
        let c = self.ipam.configs.first()?;
        let subnet = Subnet::parse(&c.subnet).ok()?;
        let range = Subnet::parse(&c.range).ok();
        let gateway = c.gateway.parse().ok()?;
        Some((subnet, range, gateway))
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

/// A task's place on a network (swarmkit's `NetworkAttachment` of a
/// task): its address there, given in the store's apply.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct TaskAttachment {
    pub network_id: String,
    /// "10.0.1.3/24"
    #[serde(default)]
    pub addresses: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub aliases: Vec<String>,
}

/// Where new networks' subnets come from: the cluster's
/// `--default-addr-pool` list and `--default-addr-pool-mask-length`.
#[derive(Clone, Debug, PartialEq)]
pub struct AddressPools {
    pub pools: Vec<Subnet>,
    pub size: u8,
}

impl Default for AddressPools {
    fn default() -> AddressPools {
        AddressPools {
            pools: Subnet::parse(DEFAULT_POOL).into_iter().collect(),
            size: DEFAULT_MASK,
        }
    }
}

impl AddressPools {
    /// The cluster's settings; what is unset or does not parse is
    /// swarmkit's default (the API checked them at init).
    pub fn of(pools: &[String], size: u32) -> AddressPools {
        let d = AddressPools::default();
        let parsed: Vec<Subnet> = pools
            .iter()
            .filter_map(|p| Subnet::parse(p).ok())
            .map(|s| s.network())
            .collect();
        AddressPools {
            pools: if parsed.is_empty() { d.pools } else { parsed },
            size: u8::try_from(size)
                .ok()
                .filter(|s| (1..=29).contains(s))
                .unwrap_or(d.size),
        }
    }
}

/// Checks `--default-addr-pool` and its mask length as dockerd does at
/// swarm init, in its words.
pub fn check_address_pools(pools: &[String], size: u32) -> Result<(), String> {
    // dockerd checks the mask length only with pools given
    if pools.is_empty() {
        return Ok(());
    }
    if size > 29 {
        return Err(format!("subnet size is out of range: {size}"));
    }
    let size = if size == 0 { DEFAULT_MASK as u32 } else { size };
    for p in pools {
        let s = Subnet::parse(p).map_err(|_| format!("invalid CIDR: {p:?}"))?;
        if u32::from(s.prefix) > size {
            return Err(format!(
                "invalid CIDR: {p:?}. Subnet size is too small for pool: {size}"
            ));
        }
    }
    Ok(())
}

/// Gives a new network its subnet (the first free one of the cluster's
/// pools unless the client named one), its gateway (the subnet's first
/// address) and its VXLAN id, against the networks that exist. The errors
/// are libnetwork's words for the same conflicts.
pub fn allocate(
    mut n: Network,
    others: &[&Network],
    pools: &AddressPools,
) -> Result<Network, String> {
    if n.spec.node_local() {
        // swarmkit's allocator leaves node-local networks to the nodes
        n.driver_options = n.spec.options.clone();
        return Ok(n);
    }
    let requested = n.spec.ipam.clone().unwrap_or_default();
    let used: Vec<Subnet> = others.iter().flat_map(|o| o.subnets()).collect();
    let mut configs = Vec::new();
    if requested.configs.iter().all(|c| c.subnet.is_empty()) {
        let subnet = free_subnet(pools, &used)
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
                let pool = n
                    .ipam
                    .configs
                    .first()
                    .map(|c| c.subnet.as_str())
                    .unwrap_or("");
                return Err(format!(
                    "could not assign vxlan id {vni} to pool {pool}: requested bit is already allocated"
                ));
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

fn free_subnet(pools: &AddressPools, used: &[Subnet]) -> Option<Subnet> {
    let size = pools.size;
    pools
        .pools
        .iter()
        .filter(|pool| pool.prefix <= size)
        .find_map(|pool| {
            let count = 1u64 << (size - pool.prefix);
            let step = 1u64 << (32 - size);
            (0..count)
                .map(|i| Subnet {
                    addr: std::net::Ipv4Addr::from(
                        (u64::from(u32::from(pool.nth(0))) + i * step) as u32,
                    ),
                    prefix: size,
                })
                .find(|s| !used.iter().any(|u| u.overlaps(s)))
        })
}

/// The next free address of `n`'s pool after its cursor, wrapping once:
/// never the subnet's own address, its broadcast or the gateway (those
/// are in `used` or skipped here).
pub fn next_free_address(
    n: &Network,
    used: &std::collections::HashSet<u32>,
) -> Option<std::net::Ipv4Addr> {
    let (subnet, range, gateway) = n.pool()?;
    let within = range.unwrap_or(subnet);
    let first = u32::from(within.nth(0));
    let last = u32::from(within.broadcast());
    let (net, bcast) = (u32::from(subnet.nth(0)), u32::from(subnet.broadcast()));
    let free = |a: &u32| *a != net && *a != bcast && *a != u32::from(gateway) && !used.contains(a);
    let start = if (first..=last).contains(&n.ipam_cursor) {
        n.ipam_cursor
    } else {
        first.saturating_sub(1)
    };
    let after = (start.saturating_add(1)..=last).find(free);
    after
        .or_else(|| (first..=start.min(last)).find(free))
        .map(std::net::Ipv4Addr::from)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pools() -> AddressPools {
        AddressPools::default()
    }

    #[test]
    fn the_clusters_pools_and_mask_length_are_used_and_checked() {
        let p = AddressPools::of(&["192.168.0.0/16".into()], 26);
        let a = allocate(net("a", None), &[], &p).unwrap();
        assert_eq!(a.ipam.configs[0].subnet, "192.168.0.0/26");
        let b = allocate(net("b", None), &[&a], &p).unwrap();
        assert_eq!(b.ipam.configs[0].subnet, "192.168.0.64/26");
        assert_eq!(
            check_address_pools(&["10.0.0.0/8".into()], 30).unwrap_err(),
            "subnet size is out of range: 30"
        );
        assert!(check_address_pools(&[], 30).is_ok());
        assert_eq!(
            check_address_pools(&["10.0.0.0/8".into()], 4).unwrap_err(),
            "invalid CIDR: \"10.0.0.0/8\". Subnet size is too small for pool: 4"
        );
        assert!(check_address_pools(&["10.20.0.0/16".into()], 24).is_ok());
    }

    #[test]
    fn addresses_are_handed_out_after_the_cursor_and_wrap() {
        let mut n = allocate(net("a", Some("10.5.0.0/29")), &[], &pools()).unwrap();
        let mut used = std::collections::HashSet::new();
        let mut got = Vec::new();
        while let Some(a) = next_free_address(&n, &used) {
            used.insert(u32::from(a));
            n.ipam_cursor = u32::from(a);
            got.push(a.to_string());
        }
        // .0 is the subnet, .1 the gateway, .7 the broadcast
        assert_eq!(
            got,
            ["10.5.0.2", "10.5.0.3", "10.5.0.4", "10.5.0.5", "10.5.0.6"]
        );
        used.remove(&u32::from(
            "10.5.0.3".parse::<std::net::Ipv4Addr>().unwrap(),
        ));
        used.remove(&u32::from(
            "10.5.0.5".parse::<std::net::Ipv4Addr>().unwrap(),
        ));
        n.ipam_cursor = u32::from("10.5.0.4".parse::<std::net::Ipv4Addr>().unwrap());
        // the freed address after the cursor first, then the wrap
        assert_eq!(
            next_free_address(&n, &used).unwrap().to_string(),
            "10.5.0.5"
        );
        n.ipam_cursor = u32::from("10.5.0.5".parse::<std::net::Ipv4Addr>().unwrap());
        used.insert(n.ipam_cursor);
        assert_eq!(
            next_free_address(&n, &used).unwrap().to_string(),
            "10.5.0.3"
        );
    }

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
        let a = allocate(net("a", None), &[], &pools()).unwrap();
        assert_eq!(a.ipam.configs[0].subnet, "10.0.0.0/24");
        assert_eq!(a.ipam.configs[0].gateway, "10.0.0.1");
        assert_eq!(a.ipam.driver, "default");
        assert_eq!(a.vni(), Some(4096));
        let b = allocate(net("b", None), &[&a], &pools()).unwrap();
        assert_eq!(b.ipam.configs[0].subnet, "10.0.1.0/24");
        assert_eq!(b.vni(), Some(4097));
    }

    #[test]
    fn a_requested_subnet_is_kept_and_may_not_overlap() {
        let a = allocate(net("a", Some("10.0.0.5/16")), &[], &pools()).unwrap();
        assert_eq!(a.ipam.configs[0].subnet, "10.0.0.0/16");
        let e = allocate(net("b", Some("10.0.3.0/24")), &[&a], &pools()).unwrap_err();
        assert!(e.contains("Pool overlaps"), "{e}");
        let c = allocate(net("c", None), &[&a], &pools()).unwrap();
        assert_eq!(c.ipam.configs[0].subnet, "10.1.0.0/24");
    }

    #[test]
    fn a_requested_vxlan_id_must_be_free() {
        let mut a = net("a", None);
        a.spec.options.insert(VNI_OPTION.into(), "5000".into());
        let a = allocate(a, &[], &pools()).unwrap();
        assert_eq!(a.vni(), Some(5000));
        let mut b = net("b", None);
        b.spec.options.insert(VNI_OPTION.into(), "5000".into());
        let e = allocate(b, &[&a], &pools()).unwrap_err();
        assert!(e.contains("vxlan id 5000"), "{e}");
    }
}
