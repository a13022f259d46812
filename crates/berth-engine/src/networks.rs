//! Networks as Docker models them, over the bridge driver in
//! berth-network: the predefined `bridge`, `host` and `none`, user-defined
//! bridge networks with their IPAM, and each running container's endpoint
//! (a namespace pinned under the exec root, a veth on the network's
//! bridge, an address) and published ports.
//!
//! Records live in the metadata store; a container's endpoints and ports
//! are part of its record while it runs, so a restarted daemon knows every
//! address and port in use and rewrites its nftables state from them.

use berth_store::MetadataStoreExt;
use std::collections::{BTreeMap, HashMap};
use std::net::Ipv4Addr;
use std::path::PathBuf;

use anyhow::Context;
use berth_network::ipam::{self, Pool, Pool6};
use berth_network::nft::{self, NetRules, PortRule, Proto};
use berth_network::{Subnet, Subnet6, links};
use berth_store::Table;
use bollard_stubs::models::{
    EndpointResource, EndpointSettings, Ipam, IpamConfig, NetworkCreateRequest, NetworkInspect,
    PortBinding, PortMap,
};
use serde::{Deserialize, Serialize};

use crate::containers::{ContainerRecord, Status};
use crate::{Engine, Error, LockExt, Result};

/// Serializes network creation.
static CREATE: std::sync::Mutex<()> = std::sync::Mutex::new(());

/// The default bridge's interface (Docker's docker0); a name of its own
/// so berth and Docker can share a host.
pub const DEFAULT_BRIDGE_IF: &str = "berth0";

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct NetworkRecord {
    pub id: String,
    pub name: String,
    /// bridge, host or null
    pub driver: String,
    pub created: String,
    /// the subnet and gateway; empty for host and null
    #[serde(default)]
    pub subnet: String,
    #[serde(default)]
    pub gateway: String,
    #[serde(default)]
    pub ip_range: Option<String>,
    #[serde(default)]
    pub aux_addresses: HashMap<String, String>,
    #[serde(default)]
    pub internal: bool,
    #[serde(default)]
    pub attachable: bool,
    #[serde(default)]
    pub labels: HashMap<String, String>,
    #[serde(default)]
    pub options: HashMap<String, String>,
    /// the Linux bridge; empty for host and null
    #[serde(default)]
    pub bridge: String,
    /// `--ipv6` networks: the IPv6 subnet and gateway
    #[serde(default)]
    pub subnet6: String,
    #[serde(default)]
    pub gateway6: String,
}

impl NetworkRecord {
    fn predefined(&self) -> bool {
        matches!(self.name.as_str(), "bridge" | "host" | "none")
    }

    fn subnet(&self) -> Option<Subnet> {
        Subnet::parse(&self.subnet).ok()
    }

    fn subnet6(&self) -> Option<Subnet6> {
        Subnet6::parse(&self.subnet6).ok()
    }

    fn rules(&self) -> Option<NetRules> {
        Some(NetRules {
            bridge: self.bridge.clone(),
            subnet: self.subnet()?,
            subnet6: self.subnet6(),
            internal: self.internal,
            masquerade: self
                .options
                .get("com.docker.network.bridge.enable_ip_masquerade")
                .is_none_or(|v| v != "false"),
            icc: self
                .options
                .get("com.docker.network.bridge.enable_icc")
                .is_none_or(|v| v != "false"),
        })
    }
}

/// A running container's place on one network.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct EndpointRecord {
    pub network_id: String,
    pub endpoint_id: String,
    pub ip: String,
    pub prefix: u8,
    pub gateway: String,
    pub mac: String,
    pub host_if: String,
    pub container_if: String,
    /// on `--ipv6` networks
    #[serde(default)]
    pub ip6: String,
    #[serde(default)]
    pub prefix6: u8,
    #[serde(default)]
    pub gateway6: String,
}

/// A port published by a running container.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PublishedPort {
    /// tcp or udp
    pub proto: String,
    /// "0.0.0.0" for every address
    pub host_ip: String,
    pub host_port: u16,
    pub container_ip: String,
    pub container_port: u16,
}

impl PublishedPort {
    fn rule(&self) -> Option<PortRule> {
        Some(PortRule {
            proto: if self.proto == "udp" {
                Proto::Udp
            } else {
                Proto::Tcp
            },
            host_ip: match self.host_ip.as_str() {
                "" | "0.0.0.0" | "::" => None,
                ip => Some(ip.parse().ok()?),
            },
            host_port: self.host_port,
            container_ip: self.container_ip.parse().ok()?,
            container_port: self.container_port,
        })
    }
}

/// The networks and what is allocated in them.
#[derive(Default)]
pub(crate) struct Networks {
    by_id: HashMap<String, NetworkRecord>,
    pools: HashMap<String, Pool>,
    pools6: HashMap<String, Pool6>,
    /// published (proto, host port) -> the host addresses it is bound on
    ports: HashMap<(String, u16), Vec<String>>,
}

impl Networks {
    pub(crate) fn find_id(&self, name_or_id: &str) -> Option<String> {
        self.find(name_or_id).map(|n| n.id.clone())
    }

    fn find(&self, name_or_id: &str) -> Option<&NetworkRecord> {
        if let Some(n) = self.by_id.values().find(|n| n.name == name_or_id) {
            return Some(n);
        }
        if let Some(n) = self.by_id.get(name_or_id) {
            return Some(n);
        }
        let mut prefixed = self
            .by_id
            .values()
            .filter(|n| !name_or_id.is_empty() && n.id.starts_with(name_or_id));
        match (prefixed.next(), prefixed.next()) {
            (Some(n), None) => Some(n),
            _ => None,
        }
    }
}

/// The network a container's `NetworkMode` names: None for host, none
/// and container:<x>, which get no endpoint.
pub(crate) fn endpoint_network(mode: &str) -> Option<&str> {
    match mode {
        "" | "default" => Some("bridge"),
        "host" | "none" => None,
        m if m.starts_with("container:") => None,
        m => Some(m),
    }
}

impl Engine {
    fn netns_path(&self, id: &str) -> PathBuf {
        self.cfg.exec_root.join("netns").join(id)
    }

    /// The namespace a container joins, once its endpoints are set up.
    pub(crate) fn container_netns(&self, rec: &ContainerRecord) -> Option<PathBuf> {
        (!rec.endpoints.is_empty()).then(|| self.netns_path(&rec.id))
    }

    /// For `--network container:NAME`: the running container whose
    /// namespace (and /etc files) this one shares.
    pub(crate) fn network_peer(&self, rec: &ContainerRecord) -> Result<Option<ContainerRecord>> {
        let mode = rec.host_config.network_mode.clone().unwrap_or_default();
        let Some(target) = mode.strip_prefix("container:") else {
            return Ok(None);
        };
        let peer = self.get(target)?.record();
        if peer.state.status != Status::Running || peer.state.pid <= 0 {
            return Err(Error::conflict(format!(
                "cannot join network namespace of a non running container: {target}"
            )));
        }
        Ok(Some(peer))
    }

    /// The namespace a container of `--network container:NAME` joins.
    pub(crate) fn peer_netns(&self, peer: &ContainerRecord) -> PathBuf {
        self.container_netns(peer)
            .unwrap_or_else(|| PathBuf::from(format!("/proc/{}/ns/net", peer.state.pid)))
    }

    /// The address `host-gateway` stands for in `--add-host`: the default
    /// bridge's gateway, as in Docker.
    pub(crate) fn host_gateway(&self) -> Option<String> {
        self.networks
            .r()
            .find("bridge")
            .map(|n| n.gateway.clone())
            .filter(|g| !g.is_empty())
    }

    /// Loads the networks, creates the predefined ones, brings every bridge
    /// up, and rewrites berth's nftables table from the records (the
    /// addresses and ports of containers that ran when the daemon stopped
    /// included), so that nothing is duplicated, leaked or missing.
    pub(crate) fn load_networks(&self, containers: &[ContainerRecord]) -> anyhow::Result<()> {
        let mut nets = Networks::default();
        for (_, n) in self.meta.list_json::<NetworkRecord>(Table::Networks)? {
            nets.by_id.insert(n.id.clone(), n);
        }
        for (name, driver) in [("host", "host"), ("none", "null")] {
            if nets.find(name).is_none() {
                let rec = NetworkRecord {
                    id: crate::random_id(),
                    name: name.into(),
                    driver: driver.into(),
                    created: crate::now_rfc3339(),
                    subnet: String::new(),
                    gateway: String::new(),
                    ip_range: None,
                    aux_addresses: HashMap::new(),
                    internal: false,
                    attachable: false,
                    labels: HashMap::new(),
                    options: HashMap::new(),
                    bridge: String::new(),
                    subnet6: String::new(),
                    gateway6: String::new(),
                };
                self.meta.put_json(Table::Networks, &rec.id, &rec)?;
                nets.by_id.insert(rec.id.clone(), rec);
            }
        }
        if nets.find("bridge").is_none() {
            let mut used: Vec<Subnet> = nets.by_id.values().filter_map(|n| n.subnet()).collect();
            used.extend(links::host_subnets().unwrap_or_default());
            let subnet = match &self.cfg.bip {
                Some(bip) => Subnet::parse(bip).map_err(|e| anyhow::anyhow!("bip: {e}"))?,
                None => {
                    let s = ipam::pick_subnet(&ipam::default_pools(), &used)
                        .context("no free subnet for the default bridge")?;
                    Subnet {
                        addr: s.nth(1),
                        prefix: s.prefix,
                    }
                }
            };
            let mut options = HashMap::new();
            for (k, v) in [
                ("com.docker.network.bridge.default_bridge", "true"),
                ("com.docker.network.bridge.enable_icc", "true"),
                ("com.docker.network.bridge.enable_ip_masquerade", "true"),
                ("com.docker.network.bridge.host_binding_ipv4", "0.0.0.0"),
                ("com.docker.network.bridge.name", DEFAULT_BRIDGE_IF),
                ("com.docker.network.driver.mtu", "1500"),
            ] {
                options.insert(k.to_string(), v.to_string());
            }
            let rec = NetworkRecord {
                id: crate::random_id(),
                name: "bridge".into(),
                driver: "bridge".into(),
                created: crate::now_rfc3339(),
                subnet: subnet.network().to_string(),
                gateway: subnet.addr.to_string(),
                ip_range: self.cfg.fixed_cidr.clone(),
                aux_addresses: HashMap::new(),
                internal: false,
                attachable: false,
                labels: HashMap::new(),
                options,
                bridge: DEFAULT_BRIDGE_IF.into(),
                subnet6: String::new(),
                gateway6: String::new(),
            };
            self.meta.put_json(Table::Networks, &rec.id, &rec)?;
            nets.by_id.insert(rec.id.clone(), rec);
        }
        links::sysctl(&["net", "ipv4", "ip_forward"], "1")?;
        for n in nets.by_id.values().filter(|n| n.driver == "bridge") {
            bring_up(n)?;
            nets.pools.insert(n.id.clone(), pool_of(n));
            if let Some(p6) = pool6_of(n) {
                nets.pools6.insert(n.id.clone(), p6);
            }
        }
        let mut ports = Vec::new();
        for c in containers {
            for ep in c.endpoints.values() {
                if let (Some(pool), Ok(ip)) = (
                    nets.pools.get_mut(&ep.network_id),
                    ep.ip.parse::<Ipv4Addr>(),
                ) {
                    pool.reserve(ip);
                }
                if let (Some(pool), Ok(ip)) = (
                    nets.pools6.get_mut(&ep.network_id),
                    ep.ip6.parse::<std::net::Ipv6Addr>(),
                ) {
                    pool.reserve(ip);
                }
            }
            for p in &c.published {
                nets.ports
                    .entry((p.proto.clone(), p.host_port))
                    .or_default()
                    .push(p.host_ip.clone());
                ports.extend(p.rule());
            }
        }
        let rules: Vec<NetRules> = nets.by_id.values().filter_map(|n| n.rules()).collect();
        nft::apply(&nft::full_script(&rules, &ports))?;
        *self.networks.w() = nets;
        Ok(())
    }

    pub fn network_create(&self, req: NetworkCreateRequest) -> Result<(String, String)> {
        let name = req.name.trim().to_string();
        if name.is_empty() {
            return Err(Error::invalid("network name cannot be empty"));
        }
        let driver = req
            .driver
            .clone()
            .filter(|d| !d.is_empty())
            .unwrap_or_else(|| "bridge".into());
        if driver != "bridge" {
            return Err(Error::not_found(format!(
                "could not find plugin {driver} in v1 plugin registry: plugin not found"
            )));
        }
        let (cfg, cfg6) = requested_subnets(&req)?;
        let options = req.options.clone().unwrap_or_default();
        crate::validate::network_options(&options)?;
        // creations run one at a time (two must not pick one subnet), with
        // the records only read meanwhile: links, nft and the store are
        // written without holding the lock that inspect and list take
        let _one_at_a_time = CREATE.lock().unwrap_or_else(|p| p.into_inner());
        let nets = self.networks.r();
        if nets.find(&name).is_some_and(|n| n.name == name) {
            return Err(Error::conflict(format!(
                "network with name {name} already exists"
            )));
        }
        let v4 = self.ipv4_settings(&nets, &cfg)?;
        let (subnet6, gateway6) = match &cfg6 {
            None => (String::new(), String::new()),
            Some(c) => ipv6_settings(&nets, c)?,
        };
        let id = crate::random_id();
        let bridge = bridge_name(&nets, &options, &id)?;
        let rec = NetworkRecord {
            id: id.clone(),
            name: name.clone(),
            driver,
            created: crate::now_rfc3339(),
            subnet: v4.subnet.to_string(),
            gateway: v4.gateway.to_string(),
            ip_range: v4.ip_range,
            aux_addresses: v4.aux,
            internal: req.internal.unwrap_or(false),
            attachable: req.attachable.unwrap_or(false),
            labels: req.labels.clone().unwrap_or_default(),
            options,
            bridge,
            subnet6,
            gateway6,
        };
        drop(nets);
        self.realize(&rec)?;
        let mut nets = self.networks.w();
        nets.pools.insert(id.clone(), pool_of(&rec));
        if let Some(p6) = pool6_of(&rec) {
            nets.pools6.insert(id.clone(), p6);
        }
        nets.by_id.insert(id.clone(), rec.clone());
        drop(nets);
        self.object_event(
            "network",
            &id,
            "create",
            &[("name", name), ("type", rec.driver.clone())],
        );
        Ok((id, String::new()))
    }

    /// The IPv4 side of a new network: its subnet (asked for, or the first
    /// free pool), range, gateway and auxiliary addresses.
    fn ipv4_settings(&self, nets: &Networks, cfg: &IpamConfig) -> Result<Ipv4Settings> {
        let parse = |what: &str, v: &str| {
            Subnet::parse(v).map_err(|_| Error::invalid(format!("invalid {what}: {v}")))
        };
        let subnet = match cfg.subnet.as_deref().filter(|s| !s.is_empty()) {
            Some(s) => {
                let s = parse("subnet", s)?;
                if let Some(other) = nets
                    .by_id
                    .values()
                    .find(|n| n.subnet().is_some_and(|o| o.overlaps(&s)))
                {
                    return Err(pool_overlap(&other.subnet, &other.name));
                }
                s.network()
            }
            None => {
                let mut used: Vec<Subnet> =
                    nets.by_id.values().filter_map(|n| n.subnet()).collect();
                used.extend(links::host_subnets().map_err(Error::Internal)?);
                ipam::pick_subnet(&self.address_pools(), &used).ok_or_else(|| {
                    Error::invalid(
                        "could not find an available, non-overlapping IPv4 address pool among the defaults to assign to the network",
                    )
                })?
            }
        };
        let ip_range = match cfg.ip_range.as_deref().filter(|s| !s.is_empty()) {
            Some(r) => {
                let r = parse("ip-range", r)?;
                if !subnet.contains(r.addr) || r.prefix < subnet.prefix {
                    return Err(Error::invalid(format!(
                        "invalid ip-range {r}: it must be inside the subnet {subnet}"
                    )));
                }
                Some(r.network().to_string())
            }
            None => None,
        };
        let gateway = gateway_in(
            cfg.gateway.as_deref(),
            |g| subnet.contains(g),
            subnet.nth(1),
        )?;
        let mut aux = HashMap::new();
        for (k, v) in cfg.auxiliary_addresses.clone().unwrap_or_default() {
            let ip: Ipv4Addr = v
                .parse()
                .map_err(|_| Error::invalid(format!("invalid auxiliary address {k}={v}")))?;
            if !subnet.contains(ip) {
                return Err(Error::invalid(format!(
                    "no matching subnet for aux-address {ip}"
                )));
            }
            aux.insert(k, v);
        }
        Ok(Ipv4Settings {
            subnet,
            ip_range,
            gateway,
            aux,
        })
    }

    /// Brings a new network up (bridge, nftables elements) and records it;
    /// on failure nothing half-made stays behind.
    fn realize(&self, rec: &NetworkRecord) -> Result<()> {
        let mut created = false;
        let made = (|| -> Result<()> {
            created = bring_up(rec).map_err(Error::Internal)?;
            if let Some(r) = rec.rules() {
                nft::apply(&nft::network_elements("add", &r)).map_err(Error::Internal)?;
            }
            self.meta.put_json(Table::Networks, &rec.id, rec)?;
            Ok(())
        })();
        if let Err(err) = made {
            // nothing half-made stays behind (and a bridge that was there
            // before is not ours to delete)
            if created {
                let _ = links::delete_link(&rec.bridge);
            }
            if let Some(r) = rec.rules() {
                let _ = nft::apply(&nft::network_elements("delete", &r));
            }
            return Err(err);
        }
        Ok(())
    }

    /// Docker's `default-address-pools`, or its built-in ones.
    fn address_pools(&self) -> Vec<Subnet> {
        address_pools_of(&self.cfg.address_pools)
    }

    fn network_record(&self, name: &str) -> Result<NetworkRecord> {
        self.networks
            .r()
            .find(name)
            .cloned()
            .ok_or_else(|| Error::not_found(format!("network {name} not found")))
    }

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
        let nets: Vec<NetworkRecord> = self.networks.r().by_id.values().cloned().collect();
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

    pub fn network_remove(&self, name: &str) -> Result<()> {
        let n = self.network_record(name)?;
        if n.predefined() {
            return Err(Error::Forbidden(format!(
                "{} is a pre-defined network and cannot be removed",
                n.name
            )));
        }
        let users: Vec<String> = self
            .containers
            .r()
            .values()
            .map(|e| e.record())
            .filter(|r| {
                endpoint_network(r.host_config.network_mode.as_deref().unwrap_or_default())
                    .is_some_and(|m| m == n.name || m == n.id)
                    || r.endpoints.values().any(|ep| ep.network_id == n.id)
            })
            .filter(|r| r.state.status == Status::Running || !r.endpoints.is_empty())
            .map(|r| r.name)
            .collect();
        if !users.is_empty() {
            return Err(Error::conflict(format!(
                "error while removing network: network {} id {} has active endpoints ({})",
                n.name,
                n.id,
                users.join(", ")
            )));
        }
        links::delete_link(&n.bridge).map_err(Error::Internal)?;
        self.meta.delete(Table::Networks, &n.id)?;
        // last, and not fatal: a daemon restart rewrites the elements from
        // the records anyway
        if let Some(r) = n.rules()
            && let Err(err) = nft::apply(&nft::network_elements("delete", &r))
        {
            tracing::warn!(network = %n.name, error = %err, "removing the network's nft elements");
        }
        let mut nets = self.networks.w();
        nets.by_id.remove(&n.id);
        nets.pools.remove(&n.id);
        nets.pools6.remove(&n.id);
        drop(nets);
        self.object_event(
            "network",
            &n.id,
            "destroy",
            &[("name", n.name.clone()), ("type", n.driver.clone())],
        );
        Ok(())
    }

    /// Removes the user-defined networks no container uses.
    /// Filters: `label`, `label!` and `until`, as dockerd's.
    pub fn network_prune(&self, filters: &HashMap<String, Vec<String>>) -> Result<Vec<String>> {
        if let Some(k) = filters
            .keys()
            .find(|k| !matches!(k.as_str(), "label" | "label!" | "until"))
        {
            return Err(Error::invalid(format!("invalid filter '{k}'")));
        }
        let labels = filters.get("label").cloned().unwrap_or_default();
        let not_labels = filters.get("label!").cloned().unwrap_or_default();
        let until = match filters.get("until").and_then(|v| v.first()) {
            Some(u) => Some(crate::containers::parse_until(u)?),
            None => None,
        };
        let candidates: Vec<NetworkRecord> = self
            .networks
            .r()
            .by_id
            .values()
            .filter(|n| {
                !n.predefined()
                    && crate::labels_match(&n.labels, &labels)
                    && !not_labels
                        .iter()
                        .any(|l| crate::labels_match(&n.labels, std::slice::from_ref(l)))
                    && until.is_none_or(|u| crate::images::parse_time(&n.created) < u)
            })
            .cloned()
            .collect();
        let mut removed = Vec::new();
        for n in candidates {
            if self.network_remove(&n.id).is_ok() {
                removed.push(n.name);
            }
        }
        Ok(removed)
    }

    /// Checks a container's network mode at create, as Docker does.
    pub(crate) fn check_network_mode(&self, mode: &str) -> Result<()> {
        if let Some(target) = mode.strip_prefix("container:") {
            self.get(target)?;
            return Ok(());
        }
        if let Some(name) = endpoint_network(mode) {
            let n = self.network_record(name)?;
            if n.driver != "bridge" {
                return Err(Error::invalid(format!(
                    "container cannot be connected to network {}",
                    n.name
                )));
            }
        }
        Ok(())
    }

    /// The networks a container joins at start, its primary one first: the
    /// network of its mode and those it was connected to.
    pub(crate) fn container_networks(&self, rec: &ContainerRecord) -> Result<Vec<NetworkRecord>> {
        let mode = rec.host_config.network_mode.clone().unwrap_or_default();
        let Some(primary) = endpoint_network(&mode) else {
            return Ok(Vec::new());
        };
        let primary = self.network_record(primary)?;
        let mut out = Vec::new();
        if !rec.primary_detached {
            out.push(primary.clone());
        }
        let mut extra: Vec<&String> = rec.endpoints_config.keys().collect();
        extra.sort();
        for name in extra {
            // a network removed since is skipped, as dockerd does at start;
            // a detached primary stays off whatever its settings' key
            if let Ok(n) = self.network_record(name)
                && n.id != primary.id
                && !out.iter().any(|o| o.id == n.id)
            {
                out.push(n);
            }
        }
        Ok(out)
    }

    /// Gives a starting container its namespace, an endpoint on each of its
    /// networks and its published ports (on the primary network). Runs on a
    /// blocking thread: netlink and nft are synchronous. A failure unwinds
    /// everything done so far.
    pub(crate) fn network_setup(
        &self,
        rec: &ContainerRecord,
    ) -> Result<(BTreeMap<String, EndpointRecord>, Vec<PublishedPort>)> {
        let nets = self.container_networks(rec)?;
        let mut eps = BTreeMap::new();
        let Some(primary) = nets.first().cloned() else {
            return Ok((eps, Vec::new()));
        };
        let netns = self.netns_path(&rec.id);
        let _ = links::remove_netns(&netns);
        links::create_netns(&netns).map_err(Error::Internal)?;
        let unwind = |me: &Engine, eps: &BTreeMap<String, EndpointRecord>| {
            me.release_addresses(eps.values());
            let _ = links::remove_netns(&netns);
        };
        for (i, n) in nets.iter().enumerate() {
            match self.attach_endpoint(rec, n, i, i == 0) {
                Ok(ep) => {
                    eps.insert(n.name.clone(), ep);
                }
                Err(e) => {
                    unwind(self, &eps);
                    return Err(e);
                }
            }
        }
        let ip: Ipv4Addr = eps[&primary.name]
            .ip
            .parse()
            .unwrap_or(Ipv4Addr::UNSPECIFIED);
        match if rec.primary_detached {
            // the ports were published on the primary network and went with it
            Ok(Vec::new())
        } else {
            self.publish_ports(rec, &primary, ip, eps[&primary.name].ip6.parse().ok())
        } {
            Ok(ports) => Ok((eps, ports)),
            Err(e) => {
                unwind(self, &eps);
                Err(e)
            }
        }
    }

    fn release_addresses_ip(&self, network_id: &str, ip: Ipv4Addr) {
        if let Some(p) = self.networks.w().pools.get_mut(network_id) {
            p.release(ip);
        }
    }

    fn release_addresses<'a>(&self, eps: impl Iterator<Item = &'a EndpointRecord>) {
        let mut nets = self.networks.w();
        for ep in eps {
            if let (Some(pool), Ok(ip)) = (
                nets.pools6.get_mut(&ep.network_id),
                ep.ip6.parse::<std::net::Ipv6Addr>(),
            ) {
                pool.release(ip);
            }
            if let (Some(pool), Ok(ip)) = (
                nets.pools.get_mut(&ep.network_id),
                ep.ip.parse::<Ipv4Addr>(),
            ) {
                pool.release(ip);
            }
        }
    }

    /// Allocates an address on `n` (the one asked for with `--ip`, or the
    /// next free) and plugs the container's namespace into the network's
    /// bridge as `eth<index>`; `default_route` makes the network's gateway
    /// the container's default route.
    fn attach_endpoint(
        &self,
        rec: &ContainerRecord,
        n: &NetworkRecord,
        index: usize,
        default_route: bool,
    ) -> Result<EndpointRecord> {
        let subnet = n
            .subnet()
            .ok_or_else(|| Error::Internal(anyhow::anyhow!("network {} has no subnet", n.name)))?;
        let settings = endpoint_settings(rec, &n.name, &n.id, index == 0);
        // `--mac-address` (sent on the endpoint since API 1.44), checked
        // before any address is taken; else Docker's 02:42 + the address
        let wanted_mac = match settings
            .and_then(|s| s.mac_address.as_deref())
            .filter(|m| !m.is_empty())
        {
            Some(m) => Some(
                parse_mac(m).ok_or_else(|| Error::invalid(format!("invalid MAC address: {m}")))?,
            ),
            None => None,
        };
        let wanted_ip = settings
            .and_then(|s| s.ipam_config.as_ref())
            .and_then(|c| c.ipv4_address.clone())
            .filter(|s| !s.is_empty());
        let ip = self.allocate_ipv4(n, subnet, wanted_ip.as_deref())?;
        let wanted6 = settings
            .and_then(|s| s.ipam_config.as_ref())
            .and_then(|c| c.ipv6_address.clone())
            .filter(|s| !s.is_empty());
        let ip6 = match self.allocate_ipv6(n, wanted6.as_deref()) {
            Ok(a) => a,
            Err(e) => {
                self.release_addresses_ip(&n.id, ip);
                return Err(e);
            }
        };
        let mac = wanted_mac.unwrap_or_else(|| ipam::mac_for(ip));
        let ep = EndpointRecord {
            network_id: n.id.clone(),
            endpoint_id: crate::random_id(),
            ip: ip.to_string(),
            prefix: subnet.prefix,
            gateway: if n.internal {
                String::new()
            } else {
                n.gateway.clone()
            },
            mac: ipam::mac_string(&mac),
            host_if: format!("veth{}", &crate::random_id()[..7]),
            container_if: format!("eth{index}"),
            ip6: ip6.map(|(a, _)| a.to_string()).unwrap_or_default(),
            prefix6: ip6.map(|(_, p)| p).unwrap_or(0),
            gateway6: if n.internal || ip6.is_none() {
                String::new()
            } else {
                n.gateway6.clone()
            },
        };
        let attached = links::attach(
            &self.netns_path(&rec.id),
            &links::Endpoint {
                bridge: n.bridge.clone(),
                host_if: ep.host_if.clone(),
                container_if: ep.container_if.clone(),
                ip,
                prefix: subnet.prefix,
                gateway: if default_route {
                    ep.gateway.parse().ok()
                } else {
                    None
                },
                mac,
                mtu: n
                    .options
                    .get("com.docker.network.driver.mtu")
                    .and_then(|m| m.parse().ok()),
                ip6,
                gateway6: if default_route {
                    ep.gateway6.parse().ok()
                } else {
                    None
                },
            },
        );
        if let Err(e) = attached {
            self.release_addresses(std::iter::once(&ep));
            let _ = links::delete_link(&ep.host_if);
            return Err(Error::Internal(e));
        }
        Ok(ep)
    }

    /// An endpoint's IPv4 address: the one asked for (user networks only,
    /// inside the subnet, free) or the pool's next.
    fn allocate_ipv4(
        &self,
        n: &NetworkRecord,
        subnet: Subnet,
        wanted_ip: Option<&str>,
    ) -> Result<Ipv4Addr> {
        let mut nets = self.networks.w();
        let pool = nets
            .pools
            .get_mut(&n.id)
            .ok_or_else(|| Error::Internal(anyhow::anyhow!("network {} has no pool", n.name)))?;
        Ok(match wanted_ip {
            Some(w) => {
                if n.name == "bridge" {
                    return Err(Error::invalid(
                        "user specified IP address is supported on user defined networks only",
                    ));
                }
                let ip: Ipv4Addr = w
                    .parse()
                    .map_err(|_| Error::invalid(format!("invalid IPv4 address: {w}")))?;
                if !subnet.contains(ip) {
                    return Err(Error::invalid(format!(
                        "no configured subnet contains IP address {ip}"
                    )));
                }
                if !pool.reserve(ip) {
                    return Err(Error::conflict(format!(
                        "Address already in use: {ip} on network {}",
                        n.name
                    )));
                }
                ip
            }
            None => pool.allocate().ok_or_else(|| {
                Error::invalid(format!(
                    "no available IPv4 addresses on this network's address pools: {} ({})",
                    n.name, n.id
                ))
            })?,
        })
    }

    /// An endpoint's IPv6 address on a network with an IPv6 subnet: the one
    /// asked for, or the pool's next.
    fn allocate_ipv6(
        &self,
        n: &NetworkRecord,
        wanted6: Option<&str>,
    ) -> Result<Option<(std::net::Ipv6Addr, u8)>> {
        let mut nets = self.networks.w();
        let (Some(pool), Some(s6)) = (nets.pools6.get_mut(&n.id), n.subnet6()) else {
            return Ok(None);
        };
        let got = match wanted6 {
            Some(w) => w
                .parse::<std::net::Ipv6Addr>()
                .ok()
                .filter(|a| pool.reserve(*a))
                .ok_or_else(|| {
                    Error::conflict(format!(
                        "Address already in use or invalid: {w} on network {}",
                        n.name
                    ))
                })?,
            None => pool.allocate().ok_or_else(|| {
                Error::invalid(format!("no available IPv6 addresses on network {}", n.name))
            })?,
        };
        Ok(Some((got, s6.prefix)))
    }

    /// `network connect`: records the network for the container's next
    /// starts and, while it runs, plugs it in at once.
    pub async fn network_connect(
        self: &std::sync::Arc<Self>,
        network: &str,
        container: &str,
        config: Option<EndpointSettings>,
    ) -> Result<()> {
        let n = self.network_record(network)?;
        let e = self.get(container)?;
        let _op = e.op.lock().await;
        let rec = e.record();
        let mode = rec.host_config.network_mode.clone().unwrap_or_default();
        if endpoint_network(&mode).is_none() {
            return Err(Error::invalid(
                "container sharing network namespace with another container or host cannot be connected to any other network",
            ));
        }
        if n.driver != "bridge" {
            return Err(Error::invalid(
                "container cannot be disconnected from host network or connected to host network",
            ));
        }
        let joined = self.container_networks(&rec)?.iter().any(|x| x.id == n.id);
        if joined {
            return Err(Error::Forbidden(format!(
                "endpoint with name {} already exists in network {}",
                rec.name, n.name
            )));
        }
        let is_primary = endpoint_network(&mode)
            .and_then(|m| self.networks.r().find(m).map(|x| x.id.clone()))
            .is_some_and(|p| p == n.id);
        let rec = e.update(|r| {
            if is_primary {
                r.primary_detached = false;
            }
            r.endpoints_config
                .insert(n.name.clone(), config.clone().unwrap_or_default());
            r.clone()
        });
        // a running container with a namespace of its own (pinned at start,
        // kept while it runs, even with every network disconnected)
        let pinned = self.netns_path(&rec.id).exists();
        if rec.state.status == crate::containers::Status::Running && pinned {
            let index = rec
                .endpoints
                .values()
                .filter_map(|ep| ep.container_if.strip_prefix("eth")?.parse::<usize>().ok())
                .max()
                .map_or(0, |m| m + 1);
            let engine = self.clone();
            let (r2, n2) = (rec.clone(), n.clone());
            // the first network of a container without any takes the route
            let route = rec.endpoints.is_empty();
            let attached =
                tokio::task::spawn_blocking(move || engine.attach_endpoint(&r2, &n2, index, route))
                    .await
                    .map_err(|err| Error::Internal(anyhow::anyhow!("network connect: {err}")))
                    .and_then(|r| r);
            let ep = match attached {
                Ok(ep) => ep,
                Err(err) => {
                    e.update(|r| {
                        r.endpoints_config.remove(&n.name);
                        if is_primary {
                            r.primary_detached = true;
                        }
                    });
                    return Err(err);
                }
            };
            let rec = e.update(|r| {
                r.endpoints.insert(n.name.clone(), ep);
                r.clone()
            });
            self.persist_record(&rec)?;
            self.start_resolver(&rec);
            // as dockerd does: the container now resolves through the network
            if let Err(err) = self.write_resolv_conf(&rec) {
                tracing::warn!(container = %&rec.id[..12], error = %err, "rewriting resolv.conf");
            }
        } else {
            self.persist_record(&rec)?;
        }
        self.network_event("connect", &n.id, &n.name, &rec.id);
        Ok(())
    }

    /// `network disconnect`: takes the container off the network, live
    /// when it runs, and for its next starts.
    pub async fn network_disconnect(
        self: &std::sync::Arc<Self>,
        network: &str,
        container: &str,
        force: bool,
    ) -> Result<()> {
        let n = self.network_record(network)?;
        let e = match self.get(container) {
            Ok(e) => e,
            Err(err) if force => {
                tracing::debug!(error = %err, "disconnect of a missing container");
                return Ok(());
            }
            Err(err) => return Err(err),
        };
        let _op = e.op.lock().await;
        let rec = e.record();
        let mode = rec.host_config.network_mode.clone().unwrap_or_default();
        let primary =
            endpoint_network(&mode).and_then(|m| self.networks.r().find(m).map(|x| x.id.clone()));
        let configured =
            rec.endpoints_config.contains_key(&n.name) || rec.endpoints_config.contains_key(&n.id);
        let live = rec.endpoints.get(&n.name).cloned();
        let is_primary = primary.as_deref() == Some(n.id.as_str()) && !rec.primary_detached;
        if !configured && live.is_none() && !is_primary {
            return Err(Error::Forbidden(format!(
                "container {} is not connected to network {}",
                rec.name, n.name
            )));
        }
        if let Some(ep) = &live {
            let netns = self.netns_path(&rec.id);
            let ifname = ep.container_if.clone();
            tokio::task::spawn_blocking(move || links::detach(&netns, &ifname))
                .await
                .map_err(|err| Error::Internal(anyhow::anyhow!("network disconnect: {err}")))?
                .map_err(Error::Internal)?;
            self.release_addresses(std::iter::once(ep));
        }
        // ports are published on the primary network: they go with it
        let dropped: Vec<PublishedPort> = if is_primary {
            rec.published.clone()
        } else {
            Vec::new()
        };
        if !dropped.is_empty() {
            self.unpublish(&rec.id, &dropped);
            self.stop_proxies(&rec.id);
        }
        let rec = e.update(|r| {
            r.endpoints.remove(&n.name);
            r.endpoints_config.remove(&n.name);
            r.endpoints_config.remove(&n.id);
            if is_primary {
                r.primary_detached = true;
                r.published.clear();
            }
            r.clone()
        });
        self.persist_record(&rec)?;
        if !self.uses_embedded_dns(&rec) {
            self.stop_resolver(&rec.id);
            // back to the host's nameservers, as the resolver is gone
            if let Err(err) = self.write_resolv_conf(&rec) {
                tracing::warn!(container = %&rec.id[..12], error = %err, "rewriting resolv.conf");
            }
        }
        self.network_event("disconnect", &n.id, &n.name, &rec.id);
        Ok(())
    }

    /// Allocates the host ports of `-p`/`-P` and adds their DNAT elements.
    fn publish_ports(
        &self,
        rec: &ContainerRecord,
        n: &NetworkRecord,
        ip: Ipv4Addr,
        ip6: Option<std::net::Ipv6Addr>,
    ) -> Result<Vec<PublishedPort>> {
        let mut wanted: Vec<(String, u16, PortBinding)> = Vec::new();
        let bindings = rec.host_config.port_bindings.clone().unwrap_or_default();
        for (key, list) in &bindings {
            let (port, proto) = parse_port_key(key)?;
            let list = list.clone().unwrap_or_default();
            if list.is_empty() {
                wanted.push((proto.clone(), port, PortBinding::default()));
            }
            for b in list {
                wanted.push((proto.clone(), port, b));
            }
        }
        if rec.host_config.publish_all_ports == Some(true) {
            for key in rec.config.exposed_ports.clone().unwrap_or_default().iter() {
                if !bindings.contains_key(key) {
                    let (port, proto) = parse_port_key(key)?;
                    wanted.push((proto, port, PortBinding::default()));
                }
            }
        }
        wanted.sort_by(|a, b| (a.1, &a.0).cmp(&(b.1, &b.0)));
        let mut out: Vec<PublishedPort> = Vec::new();
        let release = |me: &Engine, done: &[PublishedPort]| me.free_host_ports(done);
        // the network's default host address (`host_binding_ipv4`)
        let default_ip = n
            .options
            .get("com.docker.network.bridge.host_binding_ipv4")
            .cloned()
            .unwrap_or_else(|| "0.0.0.0".into());
        for (proto, cport, b) in wanted {
            let host_ip = b
                .host_ip
                .clone()
                .filter(|h| !h.is_empty() && h != "::")
                .unwrap_or_else(|| default_ip.clone());
            if host_ip.parse::<Ipv4Addr>().is_err() {
                release(self, &out);
                return Err(Error::invalid(format!(
                    "invalid host IP {host_ip} for port {cport}/{proto}"
                )));
            }
            let range = match b.host_port.as_deref().filter(|p| !p.is_empty()) {
                None => None,
                Some(p) => Some(parse_port_range(p).inspect_err(|_| release(self, &out))?),
            };
            match self.take_host_port(&proto, &host_ip, range, &rec.name) {
                Ok(hp) => {
                    out.push(PublishedPort {
                        proto: proto.clone(),
                        host_ip: host_ip.clone(),
                        host_port: hp,
                        container_ip: ip.to_string(),
                        container_port: cport,
                    });
                    // a port published on every address is published on
                    // IPv6 too when the container has an IPv6 address
                    if let (Some(ip6), "0.0.0.0") = (ip6, host_ip.as_str()) {
                        out.push(PublishedPort {
                            proto: proto.clone(),
                            host_ip: "::".into(),
                            host_port: hp,
                            container_ip: ip6.to_string(),
                            container_port: cport,
                        });
                    }
                }
                Err(e) => {
                    release(self, &out);
                    return Err(e);
                }
            }
        }
        let script: String = out
            .iter()
            .filter_map(|p| p.rule())
            .map(|r| nft::port_element("add", &r))
            .collect();
        if let Err(e) = nft::apply(&script) {
            release(self, &out);
            return Err(Error::Internal(e.context(format!(
                "driver failed programming external connectivity on endpoint {} on network {}",
                rec.name, n.name
            ))));
        }
        Ok(out)
    }

    /// Reserves a host port: the one asked for, the first free one of a
    /// range, or (None) a free ephemeral port. Ports are checked against
    /// berth's own table and by binding them, which finds other programs.
    fn take_host_port(
        &self,
        proto: &str,
        host_ip: &str,
        range: Option<(u16, u16)>,
        name: &str,
    ) -> Result<u16> {
        let mut nets = self.networks.w();
        let clash = |nets: &Networks, port: u16| {
            nets.ports
                .get(&(proto.to_string(), port))
                .is_some_and(|ips| {
                    ips.iter()
                        .any(|h| h == host_ip || h == "0.0.0.0" || host_ip == "0.0.0.0")
                })
        };
        let free_on_host = |port: u16| bind_test(proto, host_ip, port).is_some();
        let candidates: Vec<u16> = match range {
            Some((a, b)) => (a..=b).collect(),
            None => Vec::new(),
        };
        let chosen = if candidates.is_empty() {
            // an ephemeral port the kernel says is free, and not ours
            (0..64)
                .filter_map(|_| bind_test(proto, host_ip, 0))
                .find(|p| !clash(&nets, *p))
        } else {
            candidates
                .iter()
                .copied()
                .find(|p| !clash(&nets, *p) && free_on_host(*p))
        };
        let Some(port) = chosen else {
            let p = candidates.first().copied().unwrap_or(0);
            let what = if candidates.len() == 1 && clash(&nets, p) {
                "port is already allocated"
            } else {
                "address already in use"
            };
            return Err(Error::Internal(anyhow::anyhow!(
                "driver failed programming external connectivity on endpoint {name}: Bind for {host_ip}:{p} failed: {what}"
            )));
        };
        nets.ports
            .entry((proto.to_string(), port))
            .or_default()
            .push(host_ip.to_string());
        Ok(port)
    }

    /// Takes a container off its networks: its ports, addresses and pinned
    /// namespace (the kernel then removes the veth pair). Idempotent.
    pub(crate) fn network_teardown(&self, rec: &ContainerRecord) {
        self.stop_resolver(&rec.id);
        self.stop_proxies(&rec.id);
        self.endpoint_events(rec, "disconnect");
        self.unpublish(&rec.id, &rec.published);
        self.release_addresses(rec.endpoints.values());
        if let Err(e) = links::remove_netns(&self.netns_path(&rec.id)) {
            tracing::warn!(container = %&rec.id[..12], error = %e, "removing network namespace");
        }
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

    /// Docker's network events for a container's endpoints: `connect` at
    /// start, `disconnect` at stop.
    pub(crate) fn endpoint_events(&self, rec: &ContainerRecord, action: &str) {
        for (name, ep) in &rec.endpoints {
            self.network_event(action, &ep.network_id, name, &rec.id);
        }
    }

    /// A network event about one container (connect, disconnect).
    fn network_event(&self, action: &str, network_id: &str, network: &str, container: &str) {
        self.object_event(
            "network",
            network_id,
            action,
            &[
                ("container", container.to_string()),
                ("name", network.to_string()),
                ("type", "bridge".into()),
            ],
        );
    }

    /// Deletes published ports' DNAT elements and frees their host ports.
    fn unpublish(&self, id: &str, ports: &[PublishedPort]) {
        if ports.is_empty() {
            return;
        }
        let script: String = ports
            .iter()
            .filter_map(|p| p.rule())
            .map(|r| nft::port_element("delete", &r))
            .collect();
        if let Err(e) = nft::apply(&script) {
            tracing::warn!(container = %&id[..12], error = %e, "removing published ports");
        }
        self.free_host_ports(ports);
    }

    /// Forgets the host ports of `ports` in berth's port table.
    fn free_host_ports(&self, ports: &[PublishedPort]) {
        let mut nets = self.networks.w();
        for p in ports {
            if let Some(v) = nets.ports.get_mut(&(p.proto.clone(), p.host_port)) {
                v.retain(|h| h != &p.host_ip);
            }
        }
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
                    ipam_config: cfg.ipam_config.clone(),
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

fn pool6_of(n: &NetworkRecord) -> Option<Pool6> {
    let mut pool = Pool6::new(n.subnet6()?);
    if let Ok(gw) = n.gateway6.parse() {
        pool.reserve(gw);
    }
    Some(pool)
}

/// The subnets `default-address-pools` (base, size) cut out, in order; the
/// built-in pools when there are none.
fn address_pools_of(pools: &[(String, u8)]) -> Vec<Subnet> {
    if pools.is_empty() {
        return ipam::default_pools();
    }
    let mut out = Vec::new();
    for (base, size) in pools {
        let Ok(base) = Subnet::parse(base) else {
            continue;
        };
        if *size < base.prefix || *size > 30 {
            continue;
        }
        let count = 1u64 << (size - base.prefix).min(16);
        let step = 1u64 << (32 - *size as u32);
        for i in 0..count {
            out.push(Subnet {
                addr: base.nth((i * step) as u32),
                prefix: *size,
            });
        }
    }
    out
}

/// What `ipv4_settings` decides.
struct Ipv4Settings {
    subnet: Subnet,
    ip_range: Option<String>,
    gateway: Ipv4Addr,
    aux: HashMap<String, String>,
}

/// The IPAM configs of a create request: at most one IPv4 and, with
/// `--ipv6`, exactly one IPv6 subnet.
fn requested_subnets(req: &NetworkCreateRequest) -> Result<(IpamConfig, Option<IpamConfig>)> {
    let cfgs = req
        .ipam
        .as_ref()
        .and_then(|i| i.config.clone())
        .unwrap_or_default();
    // one IPv4 and (with --ipv6) one IPv6 subnet
    let (v6, v4): (Vec<IpamConfig>, Vec<IpamConfig>) = cfgs
        .into_iter()
        .partition(|c| c.subnet.as_deref().is_some_and(|s| s.contains(':')));
    if v4.len() > 1 || v6.len() > 1 {
        return Err(Error::invalid(
            "berth supports one IPv4 and one IPv6 subnet per network",
        ));
    }
    let ipv6 = req.enable_ipv6 == Some(true);
    if !v6.is_empty() && !ipv6 {
        return Err(Error::invalid(
            "an IPv6 subnet was given, but IPv6 is not enabled on the network (--ipv6)",
        ));
    }
    if ipv6 && v6.is_empty() {
        return Err(Error::invalid(
            "--ipv6 needs an IPv6 --subnet: berth has no default IPv6 pool",
        ));
    }
    Ok((
        v4.into_iter().next().unwrap_or_default(),
        v6.into_iter().next(),
    ))
}

/// The bridge of a new network: the one its options name (unused by other
/// networks), or br-<id>.
fn bridge_name(nets: &Networks, options: &HashMap<String, String>, id: &str) -> Result<String> {
    Ok(match options.get("com.docker.network.bridge.name") {
        Some(b) => {
            if !nft::valid_ifname(b) {
                return Err(Error::invalid(format!("invalid bridge name: {b:?}")));
            }
            if nets.by_id.values().any(|n| &n.bridge == b) {
                return Err(Error::conflict(format!(
                    "bridge name {b} is used by another network"
                )));
            }
            b.clone()
        }
        None => format!("br-{}", &id[..12]),
    })
}

/// The IPv6 subnet and gateway of a new network, which must not overlap
/// another's.
fn ipv6_settings(nets: &Networks, c: &IpamConfig) -> Result<(String, String)> {
    let s = Subnet6::parse(c.subnet.as_deref().unwrap_or_default()).map_err(|_| {
        Error::invalid(format!(
            "invalid subnet: {}",
            c.subnet.clone().unwrap_or_default()
        ))
    })?;
    if let Some(other) = nets
        .by_id
        .values()
        .find(|n| n.subnet6().is_some_and(|o| o.overlaps(&s)))
    {
        return Err(pool_overlap(&other.subnet6, &other.name));
    }
    let gw: std::net::Ipv6Addr = gateway_in(c.gateway.as_deref(), |g| s.contains(g), s.nth(1))?;
    Ok((s.network().to_string(), gw.to_string()))
}

/// Docker's refusal of a subnet that overlaps another network's.
fn pool_overlap(subnet: &str, network: &str) -> Error {
    Error::conflict(format!(
        "invalid pool request: Pool overlaps with other one on this address space: {subnet} is used by network {network}"
    ))
}

/// A network's gateway: the one asked for, which must be an address inside
/// the subnet, or the subnet's first address.
fn gateway_in<A>(given: Option<&str>, inside: impl Fn(A) -> bool, first: A) -> Result<A>
where
    A: std::str::FromStr + std::fmt::Display + Copy,
{
    let Some(g) = given.filter(|g| !g.is_empty()) else {
        return Ok(first);
    };
    let addr: A = g
        .parse()
        .map_err(|_| Error::invalid(format!("invalid gateway address: {g}")))?;
    if !inside(addr) {
        return Err(Error::invalid(format!(
            "no matching subnet for gateway {addr}"
        )));
    }
    Ok(addr)
}

fn pool_of(n: &NetworkRecord) -> Pool {
    let subnet = n.subnet().unwrap_or(Subnet {
        addr: Ipv4Addr::UNSPECIFIED,
        prefix: 32,
    });
    let range = n.ip_range.as_deref().and_then(|r| Subnet::parse(r).ok());
    let mut pool = Pool::new(subnet, range);
    if let Ok(gw) = n.gateway.parse() {
        pool.reserve(gw);
    }
    for v in n.aux_addresses.values() {
        if let Ok(ip) = v.parse() {
            pool.reserve(ip);
        }
    }
    pool
}

/// Creates the network's bridge with its gateway address, and lets the
/// host's loopback reach published ports through it (route_localnet).
fn bring_up(n: &NetworkRecord) -> anyhow::Result<bool> {
    let s = n.subnet().context("network without subnet")?;
    let gw: Option<Ipv4Addr> = n.gateway.parse().ok();
    let gw6 = n
        .subnet6()
        .and_then(|s6| Some((n.gateway6.parse().ok()?, s6.prefix)));
    let created = links::ensure_bridge(&n.bridge, gw, s.prefix, gw6)?;
    if gw6.is_some() {
        // routing IPv6 between the bridge and the world, as dockerd does
        // for --ipv6 networks
        links::sysctl(&["net", "ipv6", "conf", "all", "forwarding"], "1")?;
    }
    links::sysctl(&["net", "ipv4", "conf", &n.bridge, "route_localnet"], "1")?;
    Ok(created)
}

/// A container's settings for one network as the client keyed them: by
/// name, by id, or for its primary network by the mode it gave
/// ("default", an id prefix).
pub(crate) fn endpoint_settings<'a>(
    rec: &'a ContainerRecord,
    name: &str,
    id: &str,
    primary: bool,
) -> Option<&'a EndpointSettings> {
    rec.endpoints_config
        .get(name)
        .or_else(|| rec.endpoints_config.get(id))
        .or_else(|| {
            let mode = rec.host_config.network_mode.as_deref().unwrap_or_default();
            primary.then(|| rec.endpoints_config.get(mode)).flatten()
        })
}

/// "02:42:ac:11:00:02"
pub(crate) fn parse_mac(s: &str) -> Option<[u8; 6]> {
    let parts: Vec<&str> = s.split(':').collect();
    if parts.len() != 6 {
        return None;
    }
    let mut mac = [0u8; 6];
    for (i, p) in parts.iter().enumerate() {
        if p.len() != 2 {
            return None;
        }
        mac[i] = u8::from_str_radix(p, 16).ok()?;
    }
    // a multicast address cannot be an interface's
    (mac[0] & 1 == 0).then_some(mac)
}

/// "80/tcp", "53/udp", "8080" (tcp)
fn parse_port_key(key: &str) -> Result<(u16, String)> {
    let (p, proto) = key.split_once('/').unwrap_or((key, "tcp"));
    let proto = proto.to_ascii_lowercase();
    if proto != "tcp" && proto != "udp" {
        return Err(Error::invalid(format!("invalid proto: {proto}")));
    }
    let port: u16 = p
        .parse()
        .ok()
        .filter(|p| *p > 0)
        .ok_or_else(|| Error::invalid(format!("invalid port specification: \"{key}\"")))?;
    Ok((port, proto))
}

/// "8080" or "8000-8010"
fn parse_port_range(s: &str) -> Result<(u16, u16)> {
    let bad = || Error::invalid(format!("invalid port specification: \"{s}\""));
    let (a, b) = s.split_once('-').unwrap_or((s, s));
    let a: u16 = a.parse().map_err(|_| bad())?;
    let b: u16 = b.parse().map_err(|_| bad())?;
    if a == 0 || b < a {
        return Err(bad());
    }
    Ok((a, b))
}

/// Binds the port to see whether the host has it free; 0 asks the kernel
/// for a free one. Returns the port.
fn bind_test(proto: &str, host_ip: &str, port: u16) -> Option<u16> {
    let addr = format!("{host_ip}:{port}");
    if proto == "udp" {
        std::net::UdpSocket::bind(&addr)
            .ok()?
            .local_addr()
            .ok()
            .map(|a| a.port())
    } else {
        std::net::TcpListener::bind(&addr)
            .ok()?
            .local_addr()
            .ok()
            .map(|a| a.port())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn port_specs() {
        assert_eq!(parse_port_key("80/tcp").unwrap(), (80, "tcp".into()));
        assert_eq!(parse_port_key("53/udp").unwrap(), (53, "udp".into()));
        assert_eq!(parse_port_key("8080").unwrap(), (8080, "tcp".into()));
        assert!(parse_port_key("0/tcp").is_err());
        assert!(parse_port_key("80/sctp").is_err());
        assert!(parse_port_key("http").is_err());
        assert_eq!(parse_port_range("8000-8010").unwrap(), (8000, 8010));
        assert!(parse_port_range("9-1").is_err());
        assert_eq!(endpoint_network("default"), Some("bridge"));
        assert_eq!(endpoint_network("container:x"), None);
        assert_eq!(endpoint_network("app"), Some("app"));
        assert_eq!(
            parse_mac("02:42:AC:11:00:09"),
            Some([2, 0x42, 0xac, 0x11, 0, 9])
        );
        assert_eq!(parse_mac("01:00:5e:00:00:01"), None);
        assert_eq!(parse_mac("02:42:ac:11:00"), None);
    }
}

#[cfg(test)]
mod ipam_tests {
    use super::*;

    fn ip(s: &str) -> Ipv4Addr {
        s.parse().unwrap()
    }

    fn record(name: &str, id: &str, subnet: &str, gateway: &str) -> NetworkRecord {
        NetworkRecord {
            id: id.into(),
            name: name.into(),
            driver: "bridge".into(),
            created: String::new(),
            subnet: subnet.into(),
            gateway: gateway.into(),
            ip_range: None,
            aux_addresses: HashMap::new(),
            internal: false,
            attachable: false,
            labels: HashMap::new(),
            options: HashMap::new(),
            bridge: format!("br-{id}"),
            subnet6: String::new(),
            gateway6: String::new(),
        }
    }

    #[test]
    fn a_network_pool_never_hands_out_its_gateway() {
        let n = record("app", "n1", "172.20.0.0/16", "172.20.0.1");
        let mut p = pool_of(&n);
        assert!(p.is_taken(ip("172.20.0.1")));
        assert_eq!(p.allocate(), Some(ip("172.20.0.2")));
        // a gateway elsewhere in the subnet leaves .1 free
        let n = record("app", "n1", "10.9.0.0/24", "10.9.0.254");
        let mut p = pool_of(&n);
        assert_eq!(p.allocate(), Some(ip("10.9.0.1")));
        assert!(!p.reserve(ip("10.9.0.254")));
    }

    #[test]
    fn aux_addresses_are_reserved() {
        let mut n = record("app", "n1", "10.8.0.0/29", "10.8.0.1");
        n.aux_addresses.insert("router".into(), "10.8.0.2".into());
        n.aux_addresses.insert("printer".into(), "10.8.0.4".into());
        // unparsable or outside: ignored, not fatal
        n.aux_addresses.insert("bad".into(), "nonsense".into());
        n.aux_addresses.insert("far".into(), "192.0.2.1".into());
        let mut p = pool_of(&n);
        let got: Vec<Ipv4Addr> = std::iter::from_fn(|| p.allocate()).collect();
        assert_eq!(got, vec![ip("10.8.0.3"), ip("10.8.0.5"), ip("10.8.0.6")]);
    }

    #[test]
    fn the_default_bridge_with_fixed_cidr() {
        // bip 172.26.0.1/16 with fixed-cidr 172.26.5.0/24: containers get
        // addresses from the /24 only, the gateway stays reserved
        let mut n = record("bridge", "b", "172.26.0.0/16", "172.26.0.1");
        n.ip_range = Some("172.26.5.0/24".into());
        let mut p = pool_of(&n);
        assert!(p.is_taken(ip("172.26.0.1")));
        let first = p.allocate().unwrap();
        assert!(Subnet::parse("172.26.5.0/24").unwrap().contains(first));
        assert_eq!(first, ip("172.26.5.0"));
        assert_eq!(p.allocate(), Some(ip("172.26.5.1")));
        // a fixed-cidr containing the gateway skips it
        let mut n = record("bridge", "b", "172.27.0.0/16", "172.27.0.1");
        n.ip_range = Some("172.27.0.0/30".into());
        let mut p = pool_of(&n);
        assert_eq!(p.allocate(), Some(ip("172.27.0.2")));
        assert_eq!(p.allocate(), Some(ip("172.27.0.3")));
        assert_eq!(p.allocate(), None);
        // an unparsable range is the whole subnet
        let mut n = record("bridge", "b", "172.28.0.0/24", "172.28.0.1");
        n.ip_range = Some("garbage".into());
        assert_eq!(pool_of(&n).allocate(), Some(ip("172.28.0.2")));
    }

    #[test]
    fn a_network_without_a_subnet_has_nothing_to_give() {
        // host and none networks have no subnet
        let n = record("host", "h", "", "");
        let mut p = pool_of(&n);
        assert_eq!(p.allocate(), None);
        assert!(!p.reserve(ip("172.17.0.2")));
    }

    #[test]
    fn ipv6_pools_reserve_their_gateway() {
        let mut n = record("v6", "n6", "10.0.0.0/24", "10.0.0.1");
        assert!(pool6_of(&n).is_none());
        n.subnet6 = "fd00:dead:beef::/64".into();
        n.gateway6 = "fd00:dead:beef::1".into();
        let mut p = pool6_of(&n).unwrap();
        assert_eq!(p.allocate(), Some("fd00:dead:beef::2".parse().unwrap()));
        n.gateway6 = "fd00:dead:beef::9".into();
        let mut p = pool6_of(&n).unwrap();
        assert_eq!(p.allocate(), Some("fd00:dead:beef::1".parse().unwrap()));
    }

    #[test]
    fn default_address_pools_are_cut_in_order() {
        assert_eq!(address_pools_of(&[]), ipam::default_pools());
        let pools = address_pools_of(&[("10.10.0.0/16".into(), 24)]);
        assert_eq!(pools.len(), 256);
        assert_eq!(pools[0].to_string(), "10.10.0.0/24");
        assert_eq!(pools[1].to_string(), "10.10.1.0/24");
        assert_eq!(pools[255].to_string(), "10.10.255.0/24");
        // several bases follow one another; a base given with host bits
        // is cut from its network
        let pools =
            address_pools_of(&[("10.20.7.9/23".into(), 24), ("192.168.100.0/24".into(), 26)]);
        let names: Vec<String> = pools.iter().map(|p| p.to_string()).collect();
        assert_eq!(
            names,
            [
                "10.20.6.0/24",
                "10.20.7.0/24",
                "192.168.100.0/26",
                "192.168.100.64/26",
                "192.168.100.128/26",
                "192.168.100.192/26",
            ]
        );
    }

    #[test]
    fn bad_default_address_pools_are_skipped() {
        let pools = address_pools_of(&[
            ("not-a-cidr".into(), 24),
            // a size wider than its base
            ("10.0.0.0/16".into(), 8),
            // too small to hold a container
            ("10.1.0.0/16".into(), 31),
            ("10.2.0.0/24".into(), 24),
        ]);
        assert_eq!(pools, vec![Subnet::parse("10.2.0.0/24").unwrap()]);
        // a huge base is capped at 65536 subnets
        assert_eq!(
            address_pools_of(&[("10.0.0.0/8".into(), 30)]).len(),
            1 << 16
        );
    }

    #[test]
    fn network_creation_picks_the_next_free_configured_pool() {
        let pools = address_pools_of(&[("10.50.0.0/22".into(), 24)]);
        let used = vec![
            Subnet::parse("10.50.0.0/24").unwrap(),
            Subnet::parse("10.50.1.128/25").unwrap(),
        ];
        assert_eq!(
            ipam::pick_subnet(&pools, &used).map(|s| s.to_string()),
            Some("10.50.2.0/24".into())
        );
        let used = vec![Subnet::parse("10.50.0.0/22").unwrap()];
        assert_eq!(ipam::pick_subnet(&pools, &used), None);
    }

    #[test]
    fn networks_are_found_by_name_id_or_unique_prefix() {
        let mut nets = Networks::default();
        for (name, id) in [
            ("front", "aaaa1111"),
            ("back", "aaaa2222"),
            ("bbbb", "cccc3333"),
        ] {
            nets.by_id
                .insert(id.into(), record(name, id, "10.0.0.0/24", "10.0.0.1"));
        }
        assert_eq!(nets.find_id("front").as_deref(), Some("aaaa1111"));
        assert_eq!(nets.find_id("aaaa2222").as_deref(), Some("aaaa2222"));
        assert_eq!(nets.find_id("aaaa1").as_deref(), Some("aaaa1111"));
        // an ambiguous prefix finds nothing
        assert_eq!(nets.find_id("aaaa"), None);
        // a name wins over an id prefix
        assert_eq!(nets.find_id("bbbb").as_deref(), Some("cccc3333"));
        assert_eq!(nets.find_id("cccc").as_deref(), Some("cccc3333"));
        assert_eq!(nets.find_id(""), None);
        assert_eq!(nets.find_id("zzz"), None);
    }

    #[test]
    fn firewall_rules_follow_the_options() {
        let n = record("app", "n1", "10.3.0.0/24", "10.3.0.1");
        let r = n.rules().unwrap();
        assert_eq!(r.bridge, "br-n1");
        assert_eq!(r.subnet, Subnet::parse("10.3.0.0/24").unwrap());
        assert!(r.masquerade && r.icc && !r.internal);
        assert_eq!(r.subnet6, None);
        let mut n = n;
        n.internal = true;
        n.options.insert(
            "com.docker.network.bridge.enable_ip_masquerade".into(),
            "false".into(),
        );
        n.options.insert(
            "com.docker.network.bridge.enable_icc".into(),
            "false".into(),
        );
        let r = n.rules().unwrap();
        assert!(r.internal && !r.masquerade && !r.icc);
        // only "false" turns them off
        n.options
            .insert("com.docker.network.bridge.enable_icc".into(), "0".into());
        assert!(n.rules().unwrap().icc);
        // no subnet, no rules
        assert!(record("none", "x", "", "").rules().is_none());
    }

    #[test]
    fn published_ports_become_rules() {
        let p = PublishedPort {
            proto: "udp".into(),
            host_ip: "0.0.0.0".into(),
            host_port: 5353,
            container_ip: "172.17.0.2".into(),
            container_port: 53,
        };
        let r = p.rule().unwrap();
        assert_eq!(r.proto, Proto::Udp);
        assert_eq!(r.host_ip, None);
        assert_eq!(
            r.container_ip,
            "172.17.0.2".parse::<std::net::IpAddr>().unwrap()
        );
        assert_eq!((r.host_port, r.container_port), (5353, 53));
        let bound = PublishedPort {
            proto: "tcp".into(),
            host_ip: "127.0.0.1".into(),
            ..p.clone()
        };
        let r = bound.rule().unwrap();
        assert_eq!(r.proto, Proto::Tcp);
        assert_eq!(r.host_ip, Some("127.0.0.1".parse().unwrap()));
        // "::" is every address too
        let any6 = PublishedPort {
            host_ip: "::".into(),
            ..p.clone()
        };
        assert_eq!(any6.rule().unwrap().host_ip, None);
        // unparsable addresses make no rule rather than a wrong one
        let bad = PublishedPort {
            host_ip: "localhost".into(),
            ..p.clone()
        };
        assert!(bad.rule().is_none());
        let bad = PublishedPort {
            container_ip: String::new(),
            ..p
        };
        assert!(bad.rule().is_none());
    }

    #[test]
    fn mac_addresses_and_port_ranges() {
        assert_eq!(parse_mac("02:42:0a:00:00:01"), Some([2, 0x42, 10, 0, 0, 1]));
        assert_eq!(parse_mac("2:42:0a:00:00:01"), None);
        assert_eq!(parse_mac("02:42:0a:00:00:zz"), None);
        assert_eq!(parse_mac("02-42-0a-00-00-01"), None);
        assert_eq!(parse_mac("02:42:0a:00:00:01:ff"), None);
        // a MAC made from an address parses back to itself
        let mac = ipam::mac_for(ip("172.18.0.7"));
        assert_eq!(parse_mac(&ipam::mac_string(&mac)), Some(mac));
        assert_eq!(parse_port_range("80").unwrap(), (80, 80));
        assert_eq!(parse_port_range("1-65535").unwrap(), (1, 65535));
        assert!(parse_port_range("0").is_err());
        assert!(parse_port_range("80-").is_err());
        assert!(parse_port_range("65536").is_err());
        assert_eq!(parse_port_key("53/UDP").unwrap(), (53, "udp".into()));
        assert!(parse_port_key("70000/tcp").is_err());
    }

    #[test]
    fn inspect_shows_both_ipam_configs() {
        let mut n = record("dual", "d1", "10.4.0.0/24", "10.4.0.1");
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
        let host = inspect_of(&record("host", "h", "", ""), HashMap::new());
        assert_eq!(host.ipam.unwrap().config.unwrap().len(), 0);
        assert_eq!(host.enable_ipv6, Some(false));
    }
}
