//! The network ports: [`NetworkDriver`] (networks, endpoints, joining a
//! container's sandbox, published ports) and [`IpamDriver`] (address pools
//! and the addresses in them). Their shapes follow Docker's libnetwork
//! remote driver and IPAM plugin protocols (`libnetwork/docs/remote.md`,
//! `ipam.md`) so that a plugin can implement them over the plugin API;
//! in-process drivers (the bridge driver and the default IPAM in
//! berth-bridge) take berth's own types rather than JSON.
//!
//! The networks service owns names, ids, records and which container is on
//! which network; a driver only knows networks and endpoints by id. Drivers
//! keep their state in memory: at daemon start the service hands each its
//! networks again ([`NetworkDriver::restore`]) and asks the IPAM for the
//! pools and addresses its records hold.
//!
//! [`fake`] holds in-memory implementations of both for unit tests.

use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::path::PathBuf;

use serde::{Deserialize, Serialize};

pub type Result<T> = std::result::Result<T, NetworkError>;

/// A driver's refusal or failure, by kind, so that the service can answer
/// with Docker's status codes; messages are Docker's own.
#[derive(Debug, thiserror::Error)]
pub enum NetworkError {
    #[error("{0}")]
    InvalidParameter(String),
    #[error("{0}")]
    Conflict(String),
    #[error("{0}")]
    NotFound(String),
    /// an explicit pool overlaps one the IPAM already gave (the subnet of
    /// that pool)
    #[error("invalid pool request: Pool overlaps with other one on this address space: {0}")]
    PoolOverlap(String),
    /// no free pool among the defaults (`pool: None` requests)
    #[error("could not find an available, non-overlapping address pool")]
    NoPool,
    /// the address asked for is taken (or is the pool's network address)
    #[error("Address already in use: {0}")]
    AddressInUse(IpAddr),
    /// every address of the pool is taken
    #[error("no available addresses in pool {0}")]
    PoolExhausted(String),
    #[error("{0:#}")]
    Internal(#[from] anyhow::Error),
}

/// One address pool of a network, as `--subnet`, `--ip-range`,
/// `--gateway` and `--aux-address` give it (CIDRs and addresses as text).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct IpamPool {
    pub subnet: String,
    pub ip_range: Option<String>,
    pub gateway: Option<String>,
    pub aux_addresses: HashMap<String, String>,
}

/// A network as the service asks a driver to create it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct NetworkSpec {
    pub id: String,
    pub name: String,
    pub driver: String,
    /// driver options (`-o`), e.g. `com.docker.network.bridge.name`
    pub options: HashMap<String, String>,
    pub labels: HashMap<String, String>,
    /// the IPv4 pools the IPAM granted (remote.md's IPv4Data)
    pub ipv4: Vec<IpamPool>,
    /// the IPv6 pools (IPv6Data), with `enable_ipv6`
    pub ipv6: Vec<IpamPool>,
    /// no route out of the network
    pub internal: bool,
    pub attachable: bool,
    pub enable_ipv6: bool,
}

/// What a driver made for a network and the service records with it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct NetworkCreated {
    /// the host interface the network lives on (a bridge); empty if none
    pub interface: String,
}

/// An endpoint as the service asks a driver to create it: the addresses
/// the IPAM gave, and what the container asked for.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct EndpointSpec {
    /// the endpoint's name: its container's
    pub name: String,
    pub address: Option<(Ipv4Addr, u8)>,
    pub address6: Option<(Ipv6Addr, u8)>,
    /// `--mac-address`; None lets the driver choose
    pub mac: Option<[u8; 6]>,
    /// network-scoped aliases (`--network-alias`)
    pub aliases: Vec<String>,
}

/// The endpoint a driver created (remote.md's CreateEndpoint response).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct EndpointInfo {
    pub address: Option<(Ipv4Addr, u8)>,
    pub address6: Option<(Ipv6Addr, u8)>,
    pub mac: [u8; 6],
}

/// Where an endpoint joins a container (remote.md's Join request).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JoinRequest {
    /// the container's network namespace, pinned as a file
    pub sandbox_key: PathBuf,
    /// the interface's name inside: eth0, eth1, ...
    pub interface: String,
    /// whether the network's gateway becomes the container's default route
    pub default_route: bool,
}

/// What joining gave (remote.md's Join response).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct JoinInfo {
    /// the host side of the endpoint (a veth on the bridge)
    pub host_interface: String,
    /// the gateway the container may route through; None on internal
    /// networks
    pub gateway: Option<Ipv4Addr>,
    pub gateway6: Option<Ipv6Addr>,
}

/// Whether a driver's networks exist on this host only or across a swarm.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scope {
    Local,
    Global,
}

/// remote.md's GetCapabilities response.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Capabilities {
    pub scope: Scope,
    pub connectivity_scope: Scope,
}

/// A port a container asks to publish (`-p`, `-P`), as given.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PortRequest {
    /// tcp or udp
    pub proto: String,
    pub container_port: u16,
    /// None: the network's default host address
    pub host_ip: Option<String>,
    /// "8080", "8000-8010", or None for any free port
    pub host_port: Option<String>,
}

/// A port published by a running container; part of its record.
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

/// A network driver: Docker's remote driver protocol as a trait.
pub trait NetworkDriver: Send + Sync {
    fn capabilities(&self) -> Capabilities;

    /// Called once at daemon start, before any other call, with every
    /// network of this driver and the ports of the containers that were
    /// running: the driver brings its state back (bridges, firewall).
    fn restore(&self, networks: &[NetworkSpec], ports: &[PublishedPort]) -> Result<()> {
        let _ = ports;
        for n in networks {
            self.create_network(n)?;
        }
        Ok(())
    }

    /// Makes the network; nothing half-made stays behind on failure.
    fn create_network(&self, spec: &NetworkSpec) -> Result<NetworkCreated>;
    fn delete_network(&self, network_id: &str) -> Result<()>;

    fn create_endpoint(
        &self,
        network_id: &str,
        endpoint_id: &str,
        spec: &EndpointSpec,
    ) -> Result<EndpointInfo>;
    /// Forgets an endpoint; one the driver does not know is no error.
    fn delete_endpoint(&self, network_id: &str, endpoint_id: &str) -> Result<()>;

    /// Plugs a created endpoint into the container's sandbox.
    fn join(&self, network_id: &str, endpoint_id: &str, req: &JoinRequest) -> Result<JoinInfo>;
    /// The endpoint leaves its sandbox (whose interface the service has
    /// removed, or which is going away with its namespace).
    fn leave(&self, network_id: &str, endpoint_id: &str) -> Result<()>;

    /// Publishes a joined endpoint's ports on the host.
    fn program_external_connectivity(
        &self,
        network_id: &str,
        endpoint_id: &str,
        ports: &[PortRequest],
    ) -> Result<Vec<PublishedPort>>;
    /// Takes back ports `program_external_connectivity` published (in
    /// this daemon's life or, through `restore`, an earlier one's).
    fn revoke_external_connectivity(
        &self,
        network_id: &str,
        endpoint_id: &str,
        ports: &[PublishedPort],
    ) -> Result<()>;
}

/// An IPAM request for a pool (ipam.md's RequestPool).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PoolRequest {
    /// the subnet asked for; None picks a free one of the defaults
    pub pool: Option<String>,
    /// where addresses are handed out from (`--ip-range`)
    pub sub_pool: Option<String>,
    pub options: HashMap<String, String>,
    pub v6: bool,
}

/// A pool the IPAM granted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PoolGrant {
    pub pool_id: String,
    /// the subnet, in its network form ("172.18.0.0/16")
    pub pool: String,
}

/// Asks the default IPAM for the built-in pools rather than the
/// configured `default-address-pools` (the default bridge's, as berth has
/// always picked it).
pub const OPT_BUILTIN_POOLS: &str = "berth.ipam.builtin-pools";

/// An IPAM driver: Docker's IPAM plugin protocol as a trait.
pub trait IpamDriver: Send + Sync {
    fn request_pool(&self, req: &PoolRequest) -> Result<PoolGrant>;
    fn release_pool(&self, pool_id: &str) -> Result<()>;
    /// The address asked for, or (None) the next free one of the pool's
    /// sub-pool.
    fn request_address(&self, pool_id: &str, address: Option<IpAddr>) -> Result<IpAddr>;
    fn release_address(&self, pool_id: &str, address: IpAddr) -> Result<()>;
}

/// In-memory drivers for unit tests of the networks service: they record
/// what they were asked and touch no kernel interface.
#[doc(hidden)]
pub mod fake {
    use std::collections::{BTreeSet, HashMap};
    use std::net::{IpAddr, Ipv4Addr};
    use std::sync::Mutex;

    use super::*;

    /// A network driver that keeps networks and endpoints in maps.
    #[derive(Default)]
    pub struct FakeNetworkDriver {
        pub networks: Mutex<HashMap<String, NetworkSpec>>,
        /// (network id, endpoint id) -> the spec and whether it joined
        pub endpoints: Mutex<HashMap<(String, String), (EndpointSpec, bool)>>,
        pub published: Mutex<Vec<PublishedPort>>,
    }

    fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
        m.lock().unwrap_or_else(|p| p.into_inner())
    }

    impl NetworkDriver for FakeNetworkDriver {
        fn capabilities(&self) -> Capabilities {
            Capabilities {
                scope: Scope::Local,
                connectivity_scope: Scope::Local,
            }
        }

        fn create_network(&self, spec: &NetworkSpec) -> Result<NetworkCreated> {
            let mut nets = lock(&self.networks);
            if nets.contains_key(&spec.id) {
                return Err(NetworkError::Conflict(format!(
                    "network {} exists",
                    spec.id
                )));
            }
            nets.insert(spec.id.clone(), spec.clone());
            Ok(NetworkCreated {
                interface: format!("fake-{}", spec.id.get(..8).unwrap_or(&spec.id)),
            })
        }

        fn delete_network(&self, network_id: &str) -> Result<()> {
            lock(&self.networks)
                .remove(network_id)
                .map(|_| ())
                .ok_or_else(|| NetworkError::NotFound(format!("network {network_id} not found")))
        }

        fn create_endpoint(
            &self,
            network_id: &str,
            endpoint_id: &str,
            spec: &EndpointSpec,
        ) -> Result<EndpointInfo> {
            if !lock(&self.networks).contains_key(network_id) {
                return Err(NetworkError::NotFound(format!(
                    "network {network_id} not found"
                )));
            }
            lock(&self.endpoints).insert(
                (network_id.into(), endpoint_id.into()),
                (spec.clone(), false),
            );
            Ok(EndpointInfo {
                address: spec.address,
                address6: spec.address6,
                mac: spec.mac.unwrap_or([2, 0, 0, 0, 0, 1]),
            })
        }

        fn delete_endpoint(&self, network_id: &str, endpoint_id: &str) -> Result<()> {
            lock(&self.endpoints).remove(&(network_id.into(), endpoint_id.into()));
            Ok(())
        }

        fn join(&self, network_id: &str, endpoint_id: &str, req: &JoinRequest) -> Result<JoinInfo> {
            let mut eps = lock(&self.endpoints);
            let ep = eps
                .get_mut(&(network_id.into(), endpoint_id.into()))
                .ok_or_else(|| NetworkError::NotFound(format!("endpoint {endpoint_id}")))?;
            ep.1 = true;
            let gateway = lock(&self.networks)
                .get(network_id)
                .and_then(|n| n.ipv4.first()?.gateway.as_deref()?.parse().ok());
            Ok(JoinInfo {
                host_interface: format!("veth-{}", req.interface),
                gateway,
                gateway6: None,
            })
        }

        fn leave(&self, network_id: &str, endpoint_id: &str) -> Result<()> {
            if let Some(ep) =
                lock(&self.endpoints).get_mut(&(network_id.into(), endpoint_id.into()))
            {
                ep.1 = false;
            }
            Ok(())
        }

        fn program_external_connectivity(
            &self,
            network_id: &str,
            endpoint_id: &str,
            ports: &[PortRequest],
        ) -> Result<Vec<PublishedPort>> {
            let eps = lock(&self.endpoints);
            let (spec, _) = eps
                .get(&(network_id.into(), endpoint_id.into()))
                .ok_or_else(|| NetworkError::NotFound(format!("endpoint {endpoint_id}")))?;
            let ip = spec.address.map(|a| a.0.to_string()).unwrap_or_default();
            let out: Vec<PublishedPort> = ports
                .iter()
                .map(|p| PublishedPort {
                    proto: p.proto.clone(),
                    host_ip: p.host_ip.clone().unwrap_or_else(|| "0.0.0.0".into()),
                    host_port: p
                        .host_port
                        .as_deref()
                        .and_then(|h| h.parse().ok())
                        .unwrap_or(p.container_port),
                    container_ip: ip.clone(),
                    container_port: p.container_port,
                })
                .collect();
            lock(&self.published).extend(out.iter().cloned());
            Ok(out)
        }

        fn revoke_external_connectivity(
            &self,
            _network_id: &str,
            _endpoint_id: &str,
            ports: &[PublishedPort],
        ) -> Result<()> {
            lock(&self.published).retain(|p| !ports.contains(p));
            Ok(())
        }
    }

    /// An IPv4 pool of [`FakeIpam`]: subnet base, prefix, taken addresses.
    pub type FakePool = (Ipv4Addr, u8, BTreeSet<IpAddr>);

    /// An IPAM of IPv4 pools that hands out addresses lowest first (the
    /// network address excluded) from the subnets it is given; `pool:
    /// None` takes the next of `defaults`.
    #[derive(Default)]
    pub struct FakeIpam {
        pub defaults: Vec<String>,
        pub pools: Mutex<HashMap<String, FakePool>>,
    }

    impl FakeIpam {
        pub fn with_defaults(defaults: &[&str]) -> Self {
            FakeIpam {
                defaults: defaults.iter().map(|s| s.to_string()).collect(),
                pools: Mutex::default(),
            }
        }

        /// The addresses taken in a pool, lowest first.
        pub fn taken(&self, pool_id: &str) -> Vec<IpAddr> {
            lock(&self.pools)
                .get(pool_id)
                .map(|p| p.2.iter().copied().collect())
                .unwrap_or_default()
        }
    }

    fn parse_v4(cidr: &str) -> Option<(Ipv4Addr, u8)> {
        let (a, p) = cidr.split_once('/')?;
        let prefix: u8 = p.parse().ok().filter(|p| *p <= 32)?;
        let mask = u32::MAX.checked_shl(32 - prefix as u32).unwrap_or(0);
        Some((
            (u32::from(a.parse::<Ipv4Addr>().ok()?) & mask).into(),
            prefix,
        ))
    }

    impl IpamDriver for FakeIpam {
        fn request_pool(&self, req: &PoolRequest) -> Result<PoolGrant> {
            let mut pools = lock(&self.pools);
            let subnet = match &req.pool {
                Some(p) => p.clone(),
                None => self
                    .defaults
                    .iter()
                    .find(|d| !pools.contains_key(d.as_str()))
                    .cloned()
                    .ok_or(NetworkError::NoPool)?,
            };
            let (base, prefix) = parse_v4(&subnet)
                .ok_or_else(|| NetworkError::InvalidParameter(format!("invalid pool {subnet}")))?;
            let id = format!("{base}/{prefix}");
            if pools.contains_key(&id) {
                return Err(NetworkError::PoolOverlap(id));
            }
            pools.insert(id.clone(), (base, prefix, BTreeSet::new()));
            Ok(PoolGrant {
                pool_id: id.clone(),
                pool: id,
            })
        }

        fn release_pool(&self, pool_id: &str) -> Result<()> {
            lock(&self.pools)
                .remove(pool_id)
                .map(|_| ())
                .ok_or_else(|| NetworkError::NotFound(format!("pool {pool_id}")))
        }

        fn request_address(&self, pool_id: &str, address: Option<IpAddr>) -> Result<IpAddr> {
            let mut pools = lock(&self.pools);
            let (base, prefix, taken) = pools
                .get_mut(pool_id)
                .ok_or_else(|| NetworkError::NotFound(format!("pool {pool_id}")))?;
            let size = 1u32 << (32 - *prefix as u32).min(16);
            let ip = match address {
                Some(a) => a,
                None => (1..size.saturating_sub(1))
                    .map(|n| IpAddr::V4((u32::from(*base) + n).into()))
                    .find(|a| !taken.contains(a))
                    .ok_or_else(|| NetworkError::PoolExhausted(pool_id.into()))?,
            };
            if !taken.insert(ip) {
                return Err(NetworkError::AddressInUse(ip));
            }
            Ok(ip)
        }

        fn release_address(&self, pool_id: &str, address: IpAddr) -> Result<()> {
            if let Some(p) = lock(&self.pools).get_mut(pool_id) {
                p.2.remove(&address);
            }
            Ok(())
        }
    }
}
