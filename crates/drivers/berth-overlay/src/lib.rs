//! The overlay network driver: swarm networks on this node. Each network
//! has a namespace of its own holding a bridge (with the gateway address)
//! and a VXLAN device, and each container on it a veth pair from that
//! bridge. Remote tasks are written as static neighbour and forwarding
//! entries from the managers' view ([`OverlayDriver::set_peers`]): no
//! learning, no flooding, no gossip. VIPs are balanced by an nftables
//! table in each container ([`vip`]).

pub mod links;
pub mod mesh;
pub mod vip;

use std::collections::{BTreeSet, HashMap};
use std::net::Ipv4Addr;
use std::path::PathBuf;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU16, Ordering};

use berth_core::network::{
    Capabilities, EndpointInfo, EndpointSpec, JoinInfo, JoinRequest, NetworkCreated, NetworkDriver,
    NetworkError, NetworkSpec, PortRequest, PublishedPort, Result, Scope,
};
use berth_ipnet::Subnet;

pub use links::{NetLayout, Peer, mac_of};

/// The driver option that carries the VXLAN id, as Docker's.
pub const VNI_OPTION: &str = "com.docker.network.driver.overlay.vxlanid_list";
/// VXLAN's IANA port, Docker's default data path port.
pub const DEFAULT_PORT: u16 = 4789;
/// The cluster's data path port as last set, so that a restarted daemon
/// restores its networks on it (`<netns dir>/overlay-port`).
const PORT_FILE: &str = "overlay-port";
/// The underlay's 1500 less VXLAN's 50 bytes of headers.
const DEFAULT_MTU: u32 = 1450;

struct Net {
    layout: NetLayout,
    peers: BTreeSet<Peer>,
    /// endpoint id → (address, host end of its veth once joined)
    endpoints: HashMap<String, (Ipv4Addr, u8, Option<String>)>,
}

pub struct OverlayDriver {
    netns_dir: PathBuf,
    port: AtomicU16,
    nets: Mutex<HashMap<String, Net>>,
}

fn internal(e: impl std::fmt::Display) -> NetworkError {
    NetworkError::Internal(anyhow::anyhow!("{e}"))
}

impl OverlayDriver {
    /// Namespaces are pinned under `netns_dir` as `ov-<id12>`.
    pub fn new(netns_dir: PathBuf) -> OverlayDriver {
        let recorded = std::fs::read_to_string(netns_dir.join(PORT_FILE))
            .ok()
            .and_then(|p| p.trim().parse().ok());
        OverlayDriver {
            netns_dir,
            port: AtomicU16::new(recorded.unwrap_or(DEFAULT_PORT)),
            nets: Mutex::new(HashMap::new()),
        }
    }

    /// The cluster's data path port. A network whose VXLAN device listens
    /// on another (made at the daemon's start, before the managers said)
    /// gets a new device; its peers are written again with the next view.
    pub fn set_port(&self, port: u16) {
        let port = if port == 0 { DEFAULT_PORT } else { port };
        if self.port.swap(port, Ordering::Relaxed) != port {
            // the next start makes (or finds) its devices on this port
            let written = std::fs::create_dir_all(&self.netns_dir)
                .and_then(|()| std::fs::write(self.netns_dir.join(PORT_FILE), port.to_string()));
            if let Err(e) = written {
                tracing::warn!(error = %e, "recording the data path port");
            }
        }
        let mut nets = self.lock();
        for (id, n) in nets.iter_mut().filter(|(_, n)| n.layout.port != port) {
            n.layout.port = port;
            n.peers.clear();
            if let Err(e) = links::recreate_vxlan(&n.layout) {
                tracing::warn!(network = %id, error = %e, "moving an overlay to the data path port");
            }
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Net>> {
        self.nets.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn layout(&self, spec: &NetworkSpec) -> Result<NetLayout> {
        let vni: u32 = spec
            .options
            .get(VNI_OPTION)
            .and_then(|l| l.split(',').next())
            .and_then(|v| v.trim().parse().ok())
            .ok_or_else(|| {
                NetworkError::InvalidParameter("overlay network without a vxlan id".into())
            })?;
        let pool = spec.ipv4.first().ok_or_else(|| {
            NetworkError::InvalidParameter("overlay network without a subnet".into())
        })?;
        let subnet = Subnet::parse(&pool.subnet).map_err(internal)?;
        let gateway = pool
            .gateway
            .as_deref()
            .and_then(|g| g.parse().ok())
            .unwrap_or_else(|| subnet.nth(1));
        let mtu = spec
            .options
            .get("com.docker.network.driver.mtu")
            .and_then(|m| m.parse::<u32>().ok())
            .map_or(DEFAULT_MTU, |m| m.saturating_sub(50));
        let short = |n: usize| spec.id.get(..n).unwrap_or(&spec.id).to_string();
        Ok(NetLayout {
            ns: self.netns_dir.join(format!("ov-{}", short(12))),
            vxlan: format!("vx-{vni:06x}-{}", short(5)),
            vni,
            port: self.port.load(Ordering::Relaxed),
            gateway,
            prefix: subnet.prefix,
            mtu,
        })
    }

    /// Plugs this node into a network through a veth whose other end is
    /// in the node's own namespace as `name`, with `ip` (the routing
    /// mesh's leg on ingress). Once: a leg that exists is kept.
    pub fn ensure_leg(
        &self,
        network_id: &str,
        name: &str,
        ip: Ipv4Addr,
        prefix: u8,
    ) -> anyhow::Result<()> {
        if berth_bridge::links::link_exists(name)? {
            return Ok(());
        }
        // the leg's subnet is routed in the node's own namespace: it must
        // not take the route of a network the host is on
        let subnet = berth_ipnet::Subnet { addr: ip, prefix }.network();
        if let Some(host) = berth_bridge::links::host_subnets()?
            .into_iter()
            .find(|h| h.overlaps(&subnet))
        {
            anyhow::bail!(
                "the ingress network's subnet {subnet} overlaps {host}, a network this host is on: \
                 give the swarm another address pool (swarm init --default-addr-pool) or \
                 recreate the ingress network with another --subnet"
            );
        }
        let layout = self
            .lock()
            .get(network_id)
            .map(|n| n.layout.clone())
            .ok_or_else(|| anyhow::anyhow!("network {network_id} is not on this node"))?;
        let plug = links::Plug {
            host_if: format!("vleg{}", &berth_core::random_id()[..7]),
            container_if: name.to_string(),
            ip,
            prefix,
            mtu: layout.mtu,
        };
        links::plug(&layout, std::path::Path::new("/proc/self/ns/net"), &plug)?;
        // the node's own clients (127.0.0.1) are masqueraded after routing
        berth_bridge::links::sysctl(&["net", "ipv4", "conf", name, "route_localnet"], "1")
    }

    /// The remote tasks of a network: entries are added for new ones and
    /// removed for those gone. Peers on this node are skipped by the
    /// caller (they are on the bridge).
    pub fn set_peers(&self, network_id: &str, peers: BTreeSet<Peer>) -> anyhow::Result<()> {
        let (layout, add, remove) = {
            let nets = self.lock();
            let Some(n) = nets.get(network_id) else {
                return Ok(());
            };
            let add: Vec<Peer> = peers.difference(&n.peers).copied().collect();
            // an address that moved to another node is replaced, not removed
            let remove: Vec<Peer> = n
                .peers
                .difference(&peers)
                .filter(|p| !peers.iter().any(|q| q.ip == p.ip))
                .copied()
                .collect();
            (n.layout.clone(), add, remove)
        };
        if add.is_empty() && remove.is_empty() {
            return Ok(());
        }
        links::program_peers(&layout, add, remove)?;
        if let Some(n) = self.lock().get_mut(network_id) {
            n.peers = peers;
        }
        Ok(())
    }
}

impl NetworkDriver for OverlayDriver {
    fn capabilities(&self) -> Capabilities {
        Capabilities {
            scope: Scope::Global,
            connectivity_scope: Scope::Global,
        }
    }

    /// A network that cannot be remade (its VXLAN id taken by another
    /// device) must not keep the daemon from starting: its tasks fail
    /// instead, with the reason.
    fn restore(&self, networks: &[NetworkSpec], _ports: &[PublishedPort]) -> Result<()> {
        for n in networks {
            if let Err(e) = self.create_network(n) {
                tracing::warn!(network = %n.name, error = %e, "restoring an overlay network");
            }
        }
        Ok(())
    }

    fn create_network(&self, spec: &NetworkSpec) -> Result<NetworkCreated> {
        let layout = self.layout(spec)?;
        links::ensure_network(&layout).map_err(NetworkError::Internal)?;
        self.lock().insert(
            spec.id.clone(),
            Net {
                layout,
                peers: BTreeSet::new(),
                endpoints: HashMap::new(),
            },
        );
        Ok(NetworkCreated::default())
    }

    fn delete_network(&self, network_id: &str) -> Result<()> {
        if let Some(n) = self.lock().remove(network_id) {
            // deleted first, at once: a dropped namespace takes its devices
            // with it only when the kernel gets to it, and until then the
            // VXLAN id stays taken for the next network given it
            let vx = n.layout.vxlan.clone();
            if let Err(e) = berth_bridge::links::in_netns(&n.layout.ns, move || {
                berth_bridge::links::delete_link(&vx)
            }) {
                tracing::debug!(error = %format!("{e:#}"), "deleting an overlay's vxlan device");
            }
            berth_bridge::links::remove_netns(&n.layout.ns).map_err(NetworkError::Internal)?;
        }
        Ok(())
    }

    fn create_endpoint(
        &self,
        network_id: &str,
        endpoint_id: &str,
        spec: &EndpointSpec,
    ) -> Result<EndpointInfo> {
        let (ip, prefix) = spec.address.ok_or_else(|| {
            NetworkError::InvalidParameter("overlay endpoints take the manager's address".into())
        })?;
        let mut nets = self.lock();
        let n = nets
            .get_mut(network_id)
            .ok_or_else(|| NetworkError::NotFound(format!("network {network_id} not found")))?;
        n.endpoints
            .insert(endpoint_id.to_string(), (ip, prefix, None));
        Ok(EndpointInfo {
            address: Some((ip, prefix)),
            address6: None,
            mac: mac_of(ip),
        })
    }

    fn delete_endpoint(&self, network_id: &str, endpoint_id: &str) -> Result<()> {
        if let Some(n) = self.lock().get_mut(network_id) {
            n.endpoints.remove(endpoint_id);
        }
        Ok(())
    }

    fn join(&self, network_id: &str, endpoint_id: &str, req: &JoinRequest) -> Result<JoinInfo> {
        let (layout, ip, prefix) = {
            let nets = self.lock();
            let n = nets
                .get(network_id)
                .ok_or_else(|| NetworkError::NotFound(format!("network {network_id} not found")))?;
            let (ip, prefix, _) = n.endpoints.get(endpoint_id).ok_or_else(|| {
                NetworkError::NotFound(format!("endpoint {endpoint_id} not found"))
            })?;
            (n.layout.clone(), *ip, *prefix)
        };
        let host_if = format!("veth{}", &berth_core::random_id()[..7]);
        let plug = links::Plug {
            host_if: host_if.clone(),
            container_if: req.interface.clone(),
            ip,
            prefix,
            mtu: layout.mtu,
        };
        links::plug(&layout, &req.sandbox_key, &plug).map_err(NetworkError::Internal)?;
        if let Some(e) = self
            .lock()
            .get_mut(network_id)
            .and_then(|n| n.endpoints.get_mut(endpoint_id))
        {
            e.2 = Some(host_if.clone());
        }
        Ok(JoinInfo {
            host_interface: host_if,
            gateway: None,
            gateway6: None,
        })
    }

    fn leave(&self, network_id: &str, endpoint_id: &str) -> Result<()> {
        let found = self.lock().get(network_id).and_then(|n| {
            let host = n.endpoints.get(endpoint_id)?.2.clone()?;
            Some((n.layout.clone(), host))
        });
        if let Some((layout, host)) = found {
            links::unplug(&layout, &host).map_err(NetworkError::Internal)?;
        }
        Ok(())
    }

    fn program_external_connectivity(
        &self,
        _network_id: &str,
        _endpoint_id: &str,
        _ports: &[PortRequest],
    ) -> Result<Vec<PublishedPort>> {
        // published ports go on the gateway bridge's endpoint
        Ok(Vec::new())
    }

    fn revoke_external_connectivity(
        &self,
        _network_id: &str,
        _endpoint_id: &str,
        _ports: &[PublishedPort],
    ) -> Result<()> {
        Ok(())
    }
}
