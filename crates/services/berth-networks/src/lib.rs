//! The networks service: network records by name and id, the predefined
//! `bridge`, `host` and `none`, and the drivers behind them, reached
//! through the ports of berth-core — the network drivers by driver name
//! ("bridge") and the IPAM drivers by name ("default"). Everything here
//! that a driver does not decide is bookkeeping: which pool a network
//! holds, which addresses its endpoints took, and Docker's messages when a
//! request is refused.
//!
//! Containers are the engine's: what the service needs of them (their
//! names, the endpoints of the running ones, who is on a network) comes in
//! as arguments, and the engine sends the events. Requests come in as
//! berth's own types ([`CreateNetwork`], [`EndpointWant`]); the engine
//! converts Docker's wire types at its side.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, RwLock};

use berth_core::error::{Error, Result};
use berth_core::network::{
    IpamDriver, IpamPool, NetworkDriver, NetworkError, NetworkSpec, OPT_BUILTIN_POOLS, PoolRequest,
    PublishedPort,
};
use berth_core::store::{MetadataStore, MetadataStoreExt, Table};
use berth_core::{LockExt, now_rfc3339, random_id};
use berth_ipnet::{Subnet, Subnet6};
use serde::{Deserialize, Serialize};

/// Serializes network creation: two must not pick one subnet.
static CREATE: std::sync::Mutex<()> = std::sync::Mutex::new(());

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
    /// the IPAM driver's options as the creator gave them; none is not
    /// an empty map (dockerd answers null then)
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ipam_options: Option<HashMap<String, String>>,
    /// "swarm" for a swarm network this node has a task on: the managers
    /// gave its subnet and give each endpoint its address
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub scope: String,
    /// `--config-only`: settings other networks take with `--config-from`;
    /// nothing is made for it and no container joins it
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub config_only: bool,
    /// `--config-from NAME`: the config-only network its settings came from
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub config_from: String,
    /// the swarm's routing-mesh network
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub ingress: bool,
}

impl NetworkRecord {
    /// A record with only its identity, for host, none and tests.
    pub fn bare(name: &str, driver: &str) -> NetworkRecord {
        NetworkRecord {
            id: random_id(),
            name: name.into(),
            driver: driver.into(),
            created: now_rfc3339(),
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
            ipam_options: None,
            config_only: false,
            config_from: String::new(),
            ingress: false,
            scope: String::new(),
        }
    }

    /// A swarm network instantiated on this node.
    pub fn swarm_scoped(&self) -> bool {
        self.scope == "swarm"
    }

    /// A swarm network whose addresses the managers give (an overlay). A
    /// node-local one (`--config-from`) takes them from this node's pool.
    pub fn managed_addresses(&self) -> bool {
        self.swarm_scoped() && self.config_from.is_empty()
    }

    pub fn predefined(&self) -> bool {
        matches!(self.name.as_str(), "bridge" | "host" | "none")
    }

    pub fn subnet(&self) -> Option<Subnet> {
        Subnet::parse(&self.subnet).ok()
    }

    pub fn subnet6(&self) -> Option<Subnet6> {
        Subnet6::parse(&self.subnet6).ok()
    }

    /// The network as its driver is asked to make it.
    pub fn spec(&self) -> NetworkSpec {
        let pool = |subnet: &str, gateway: &str, range: Option<String>, aux| IpamPool {
            subnet: subnet.to_string(),
            ip_range: range,
            gateway: (!gateway.is_empty()).then(|| gateway.to_string()),
            aux_addresses: aux,
        };
        NetworkSpec {
            id: self.id.clone(),
            name: self.name.clone(),
            driver: self.driver.clone(),
            options: self.options.clone(),
            labels: self.labels.clone(),
            ipv4: (!self.subnet.is_empty())
                .then(|| {
                    pool(
                        &self.subnet,
                        &self.gateway,
                        self.ip_range.clone(),
                        self.aux_addresses.clone(),
                    )
                })
                .into_iter()
                .collect(),
            ipv6: (!self.subnet6.is_empty())
                .then(|| pool(&self.subnet6, &self.gateway6, None, HashMap::new()))
                .into_iter()
                .collect(),
            internal: self.internal,
            attachable: self.attachable,
            enable_ipv6: !self.subnet6.is_empty(),
        }
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

/// The networks and the pools they hold.
#[derive(Default)]
pub struct Networks {
    pub by_id: HashMap<String, NetworkRecord>,
    /// network id -> its IPv4 pool's id in the default IPAM
    pools: HashMap<String, String>,
    pools6: HashMap<String, String>,
}

/// Why a reference found no single network.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Miss {
    NotFound,
    /// this many networks' ids start with it
    Ambiguous(usize),
}

impl Networks {
    /// A network by reference as dockerd's FindNetwork resolves one: the
    /// full id, then the full name, then a unique id prefix; so a name
    /// that looks like another network's id does not hide that network.
    pub fn lookup(&self, term: &str) -> std::result::Result<&NetworkRecord, Miss> {
        if term.is_empty() {
            return Err(Miss::NotFound);
        }
        if let Some(n) = self.by_id.get(term) {
            return Ok(n);
        }
        if let Some(n) = self.by_name(term) {
            return Ok(n);
        }
        let mut prefixed = self.by_id.values().filter(|n| n.id.starts_with(term));
        match (prefixed.next(), prefixed.next()) {
            (Some(n), None) => Ok(n),
            (Some(_), Some(_)) => Err(Miss::Ambiguous(2 + prefixed.count())),
            _ => Err(Miss::NotFound),
        }
    }

    pub fn find(&self, name_or_id: &str) -> Option<&NetworkRecord> {
        self.lookup(name_or_id).ok()
    }

    pub fn by_name(&self, name: &str) -> Option<&NetworkRecord> {
        self.by_id.values().find(|n| n.name == name)
    }
}

/// What a container asks of its endpoint on one network.
#[derive(Debug, Clone, Copy, Default)]
pub struct EndpointWant<'a> {
    /// the container's name
    pub name: &'a str,
    /// `--ip` and `--ip6`; empty is none
    pub ipv4_address: Option<&'a str>,
    pub ipv6_address: Option<&'a str>,
    /// `--mac-address`; empty is none
    pub mac_address: Option<&'a str>,
    /// `--network-alias`
    pub aliases: &'a [String],
}

/// What `network create` asks for, in berth's terms.
#[derive(Debug, Clone, Default)]
pub struct CreateNetwork {
    pub name: String,
    /// empty is the bridge driver
    pub driver: String,
    /// the IPAM configs as given (`--subnet`, `--ip-range`, `--gateway`,
    /// `--aux-address`), IPv4 and IPv6 in any order; an empty subnet is
    /// none
    pub ipam: Vec<IpamPool>,
    /// `--ipv6`; none is what the `com.docker.network.enable_ipv6`
    /// driver option says (off without it)
    pub enable_ipv6: Option<bool>,
    pub internal: bool,
    pub attachable: bool,
    pub labels: HashMap<String, String>,
    /// driver options (`-o`)
    pub options: HashMap<String, String>,
    /// the IPAM driver's options (`--ipam-opt`), kept as given
    pub ipam_options: Option<HashMap<String, String>>,
    /// `--scope` as given: "swarm" makes a swarm network's instance here
    pub scope: String,
    /// `--config-only`
    pub config_only: bool,
    /// `--config-from NAME`
    pub config_from: Option<String>,
    /// the id to give it (a swarm network's); a new one when none
    pub id: Option<String>,
}

/// The daemon settings the predefined bridge is made from.
pub struct DefaultBridge<'a> {
    /// the bridge interface the driver makes for it
    pub interface: &'a str,
    pub bip: Option<&'a str>,
    pub fixed_cidr: Option<String>,
}

pub struct NetworkService {
    meta: Arc<dyn MetadataStore>,
    drivers: HashMap<String, Arc<dyn NetworkDriver>>,
    ipams: HashMap<String, Arc<dyn IpamDriver>>,
    state: RwLock<Networks>,
}

impl NetworkService {
    pub fn new(
        meta: Arc<dyn MetadataStore>,
        drivers: HashMap<String, Arc<dyn NetworkDriver>>,
        ipams: HashMap<String, Arc<dyn IpamDriver>>,
    ) -> Self {
        NetworkService {
            meta,
            drivers,
            ipams,
            state: RwLock::new(Networks::default()),
        }
    }

    pub fn r(&self) -> std::sync::RwLockReadGuard<'_, Networks> {
        self.state.r()
    }

    pub fn find_id(&self, name_or_id: &str) -> Option<String> {
        self.r().find(name_or_id).map(|n| n.id.clone())
    }

    /// A network by reference, with dockerd's errors (FindNetwork's and
    /// the remove route's words).
    pub fn record(&self, term: &str) -> Result<NetworkRecord> {
        match self.r().lookup(term) {
            Ok(n) => Ok(n.clone()),
            Err(Miss::NotFound) => Err(Error::not_found(format!("network {term} not found"))),
            Err(Miss::Ambiguous(n)) => Err(Error::invalid(format!(
                "network {term} is ambiguous ({n} matches found based on ID prefix)"
            ))),
        }
    }

    /// As [`Self::record`], with the words of dockerd's inspect route,
    /// which words its ambiguity the other way round.
    pub fn record_for_inspect(&self, term: &str) -> Result<NetworkRecord> {
        match self.r().lookup(term) {
            Err(Miss::Ambiguous(n)) => Err(Error::invalid(format!(
                "{n} matches found based on ID prefix: network {term} is ambiguous"
            ))),
            _ => self.record(term),
        }
    }

    pub fn all(&self) -> Vec<NetworkRecord> {
        self.r().by_id.values().cloned().collect()
    }

    /// The driver of a network, by driver name; Docker's answer for one
    /// berth does not have.
    pub fn driver(&self, driver: &str) -> Result<Arc<dyn NetworkDriver>> {
        self.drivers.get(driver).cloned().ok_or_else(|| {
            Error::not_found(format!(
                "could not find plugin {driver} in v1 plugin registry: plugin not found"
            ))
        })
    }

    fn ipam(&self) -> Result<Arc<dyn IpamDriver>> {
        self.ipams
            .get("default")
            .cloned()
            .ok_or_else(|| Error::Internal(anyhow::anyhow!("no default IPAM driver")))
    }

    /// Loads the networks, creates the predefined ones, asks the IPAM for
    /// every network's pool and every running endpoint's address again,
    /// and gives each driver its networks and published ports back.
    pub fn restore<'a>(
        &self,
        default_bridge: &DefaultBridge,
        endpoints: impl Iterator<Item = &'a EndpointRecord> + Clone,
        ports: &[PublishedPort],
    ) -> anyhow::Result<()> {
        let mut nets = Networks::default();
        for (_, n) in self.meta.list_json::<NetworkRecord>(Table::Networks)? {
            nets.by_id.insert(n.id.clone(), n);
        }
        for (name, driver) in [("host", "host"), ("none", "null")] {
            if nets.by_name(name).is_none() {
                let rec = NetworkRecord::bare(name, driver);
                self.meta.put_json(Table::Networks, &rec.id, &rec)?;
                nets.by_id.insert(rec.id.clone(), rec);
            }
        }
        let mut bridges: Vec<NetworkRecord> = nets
            .by_id
            .values()
            .filter(|n| !n.config_only && self.drivers.contains_key(&n.driver))
            .cloned()
            .collect();
        // an overlay's addresses are the managers' to give
        for n in bridges.iter().filter(|n| !n.managed_addresses()) {
            self.hold_pools(&mut nets, n);
        }
        if nets.by_name("bridge").is_none() {
            let rec = self.default_bridge(default_bridge)?;
            self.meta.put_json(Table::Networks, &rec.id, &rec)?;
            self.hold_pools(&mut nets, &rec);
            nets.by_id.insert(rec.id.clone(), rec.clone());
            bridges.push(rec);
        }
        let ipam = self.ipam()?;
        for ep in endpoints.clone() {
            let taken = [
                (nets.pools.get(&ep.network_id), ep.ip.parse::<IpAddr>().ok()),
                (nets.pools6.get(&ep.network_id), ep.ip6.parse().ok()),
            ];
            for (pool, ip) in taken {
                if let (Some(pool), Some(ip)) = (pool, ip) {
                    let _ = ipam.request_address(pool, Some(ip));
                }
            }
        }
        for (name, driver) in &self.drivers {
            let specs: Vec<NetworkSpec> = bridges
                .iter()
                .filter(|n| &n.driver == name)
                .map(NetworkRecord::spec)
                .collect();
            // a port was published on the endpoint that has its address
            let mine: Vec<PublishedPort> = ports
                .iter()
                .filter(|p| {
                    let on = endpoints
                        .clone()
                        .find(|ep| ep.ip == p.container_ip || ep.ip6 == p.container_ip)
                        .and_then(|ep| nets.by_id.get(&ep.network_id))
                        .map_or("bridge", |n| n.driver.as_str());
                    on == name
                })
                .cloned()
                .collect();
            driver.restore(&specs, &mine).map_err(|e| match e {
                NetworkError::Internal(e) => e,
                e => anyhow::anyhow!("{name} network driver: {e}"),
            })?;
        }
        *self.state.w() = nets;
        Ok(())
    }

    /// The predefined bridge: `--bip` or the first free built-in pool.
    fn default_bridge(&self, cfg: &DefaultBridge) -> anyhow::Result<NetworkRecord> {
        let ipam = self.ipam()?;
        let (subnet, gateway) = match cfg.bip {
            Some(bip) => {
                let s = Subnet::parse(bip).map_err(|e| anyhow::anyhow!("bip: {e}"))?;
                (s.network(), s.addr)
            }
            None => {
                let req = PoolRequest {
                    options: HashMap::from([(OPT_BUILTIN_POOLS.to_string(), "true".into())]),
                    ..Default::default()
                };
                let grant = ipam.request_pool(&req).map_err(|e| match e {
                    NetworkError::NoPool => {
                        anyhow::anyhow!("no free subnet for the default bridge")
                    }
                    e => anyhow::anyhow!("{e}"),
                })?;
                // held again with the network's other reservations
                let _ = ipam.release_pool(&grant.pool_id);
                let s = Subnet::parse(&grant.pool)?;
                (s, s.nth(1))
            }
        };
        let mut rec = NetworkRecord::bare("bridge", "bridge");
        for (k, v) in [
            ("com.docker.network.bridge.default_bridge", "true"),
            ("com.docker.network.bridge.enable_icc", "true"),
            ("com.docker.network.bridge.enable_ip_masquerade", "true"),
            ("com.docker.network.bridge.host_binding_ipv4", "0.0.0.0"),
            ("com.docker.network.bridge.name", cfg.interface),
            ("com.docker.network.driver.mtu", "1500"),
        ] {
            rec.options.insert(k.to_string(), v.to_string());
        }
        rec.subnet = subnet.to_string();
        rec.gateway = gateway.to_string();
        rec.ip_range = cfg.fixed_cidr.clone();
        rec.bridge = cfg.interface.into();
        Ok(rec)
    }

    /// Asks the IPAM for a recorded network's pools and reserves their
    /// gateways and auxiliary addresses; what does not parse is skipped,
    /// not fatal (an unparsable range is the whole subnet).
    fn hold_pools(&self, nets: &mut Networks, n: &NetworkRecord) {
        let Ok(ipam) = self.ipam() else {
            return;
        };
        let range = n.ip_range.clone().filter(|r| Subnet::parse(r).is_ok());
        let mut reserved: Vec<(String, Option<IpAddr>)> = Vec::new();
        if n.subnet().is_some() {
            match ipam.request_pool(&PoolRequest {
                pool: Some(n.subnet.clone()),
                sub_pool: range,
                ..Default::default()
            }) {
                Ok(g) => {
                    reserved.push((g.pool_id.clone(), n.gateway.parse().ok()));
                    for v in n.aux_addresses.values() {
                        reserved.push((g.pool_id.clone(), v.parse().ok()));
                    }
                    nets.pools.insert(n.id.clone(), g.pool_id);
                }
                Err(e) => tracing::warn!(network = %n.name, error = %e, "holding the IPv4 pool"),
            }
        }
        if n.subnet6().is_some() {
            match ipam.request_pool(&PoolRequest {
                pool: Some(n.subnet6.clone()),
                v6: true,
                ..Default::default()
            }) {
                Ok(g) => {
                    reserved.push((g.pool_id.clone(), n.gateway6.parse().ok()));
                    nets.pools6.insert(n.id.clone(), g.pool_id);
                }
                Err(e) => tracing::warn!(network = %n.name, error = %e, "holding the IPv6 pool"),
            }
        }
        for (pool, ip) in reserved {
            if let Some(ip) = ip {
                let _ = ipam.request_address(&pool, Some(ip));
            }
        }
    }

    /// Instantiates a swarm network on this node: the record as the
    /// managers made it, with no local pool (its subnet may overlap a
    /// local network's: it lives in a namespace of its own). False when
    /// it was here already.
    pub fn adopt(&self, rec: NetworkRecord) -> Result<bool> {
        let _one = CREATE.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(had) = self.r().by_id.get(&rec.id).cloned() {
            // a record from before `ingress` was kept learns it
            if had.ingress != rec.ingress {
                let fixed = NetworkRecord {
                    ingress: rec.ingress,
                    ..had
                };
                self.meta.put_json(Table::Networks, &fixed.id, &fixed)?;
                self.state.w().by_id.insert(fixed.id.clone(), fixed);
            }
            return Ok(false);
        }
        if self.r().by_name(&rec.name).is_some() {
            return Err(Error::conflict(format!(
                "network with name {} already exists",
                rec.name
            )));
        }
        self.driver(&rec.driver)?.create_network(&rec.spec())?;
        self.meta.put_json(Table::Networks, &rec.id, &rec)?;
        self.state.w().by_id.insert(rec.id.clone(), rec);
        Ok(true)
    }

    fn release_pools(&self, network_id: &str, pools: [Option<String>; 2]) {
        let Ok(ipam) = self.ipam() else {
            return;
        };
        for p in pools.into_iter().flatten() {
            if let Err(e) = ipam.release_pool(&p) {
                tracing::warn!(network = %network_id, pool = %p, error = %e, "releasing a pool");
            }
        }
    }
}

mod config_only;
mod create;
mod endpoints;
mod options;
#[cfg(test)]
mod tests;
