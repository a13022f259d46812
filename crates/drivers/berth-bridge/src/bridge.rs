//! The bridge driver: berth's implementation of the network driver port.
//! A network is a Linux bridge carrying its gateway addresses plus its
//! elements in berth's nftables table; an endpoint is a veth pair from the
//! bridge into the container's namespace; published ports are elements of
//! the table's DNAT maps, their host ports kept in a table of the driver's
//! own so two containers never get one port.

use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::sync::{Mutex, MutexGuard};

use anyhow::anyhow;
use berth_core::network::{
    Capabilities, EndpointInfo, EndpointSpec, JoinInfo, JoinRequest, NetworkCreated, NetworkDriver,
    NetworkError, NetworkSpec, PortRequest, PublishedPort, Result, Scope,
};

use crate::nft::{self, NetRules, PortRule, Proto};
use crate::{Subnet, Subnet6, ipam, links};

/// The default bridge's interface (Docker's docker0); a name of its own
/// so berth and Docker can share a host.
pub const DEFAULT_BRIDGE_IF: &str = "berth0";

const BRIDGE_NAME: &str = "com.docker.network.bridge.name";

/// One bridge network as the driver keeps it.
#[derive(Debug, Clone)]
struct BridgeNet {
    spec: NetworkSpec,
    bridge: String,
    subnet: Subnet,
    gateway: Option<Ipv4Addr>,
    subnet6: Option<Subnet6>,
    gateway6: Option<Ipv6Addr>,
}

impl BridgeNet {
    fn of(spec: &NetworkSpec) -> Result<BridgeNet> {
        let v4 = spec.ipv4.first().ok_or_else(|| {
            NetworkError::InvalidParameter(format!("network {} has no IPv4 subnet", spec.name))
        })?;
        let subnet = Subnet::parse(&v4.subnet).map_err(|_| {
            NetworkError::InvalidParameter(format!("invalid subnet: {}", v4.subnet))
        })?;
        let v6 = spec.ipv6.first();
        Ok(BridgeNet {
            bridge: bridge_name(spec),
            subnet,
            gateway: v4.gateway.as_deref().and_then(|g| g.parse().ok()),
            subnet6: v6.and_then(|p| Subnet6::parse(&p.subnet).ok()),
            gateway6: v6.and_then(|p| p.gateway.as_deref()?.parse().ok()),
            spec: spec.clone(),
        })
    }

    fn option(&self, key: &str) -> Option<&str> {
        self.spec.options.get(key).map(String::as_str)
    }

    fn rules(&self) -> NetRules {
        NetRules {
            bridge: self.bridge.clone(),
            subnet: self.subnet.network(),
            subnet6: self.subnet6.map(|s| s.network()),
            internal: self.spec.internal,
            masquerade: self
                .option("com.docker.network.bridge.enable_ip_masquerade")
                .is_none_or(|v| v != "false"),
            icc: self
                .option("com.docker.network.bridge.enable_icc")
                .is_none_or(|v| v != "false"),
        }
    }

    /// Creates the network's bridge with its gateway address, and lets the
    /// host's loopback reach published ports through it (route_localnet).
    fn bring_up(&self) -> anyhow::Result<bool> {
        let gw6 = self
            .subnet6
            .and_then(|s6| Some((self.gateway6?, s6.prefix)));
        let created = links::ensure_bridge(&self.bridge, self.gateway, self.subnet.prefix, gw6)?;
        if gw6.is_some() {
            // routing IPv6 between the bridge and the world, as dockerd does
            // for --ipv6 networks
            links::sysctl(&["net", "ipv6", "conf", "all", "forwarding"], "1")?;
        }
        links::sysctl(
            &["net", "ipv4", "conf", &self.bridge, "route_localnet"],
            "1",
        )?;
        Ok(created)
    }
}

/// The bridge of a network: the one its options name, or br-<id>.
fn bridge_name(spec: &NetworkSpec) -> String {
    match spec.options.get(BRIDGE_NAME) {
        Some(b) => b.clone(),
        None => format!("br-{}", spec.id.get(..12).unwrap_or(&spec.id)),
    }
}

/// An endpoint between its creation and its deletion.
#[derive(Debug, Clone)]
struct BridgeEndpoint {
    network_id: String,
    /// its container's name, for messages
    name: String,
    address: (Ipv4Addr, u8),
    address6: Option<(Ipv6Addr, u8)>,
    mac: [u8; 6],
    host_if: String,
}

#[derive(Default)]
struct State {
    networks: HashMap<String, BridgeNet>,
    endpoints: HashMap<String, BridgeEndpoint>,
    /// published (proto, host port) -> the host addresses it is bound on
    ports: HashMap<(String, u16), Vec<String>>,
}

/// The bridge network driver (see the module's comment).
#[derive(Default)]
pub struct BridgeDriver {
    state: Mutex<State>,
}

impl BridgeDriver {
    pub fn new() -> Self {
        Self::default()
    }

    fn state(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn network(&self, id: &str) -> Result<BridgeNet> {
        self.state()
            .networks
            .get(id)
            .cloned()
            .ok_or_else(|| NetworkError::NotFound(format!("network {id} not found")))
    }

    fn endpoint(&self, id: &str) -> Result<BridgeEndpoint> {
        self.state()
            .endpoints
            .get(id)
            .cloned()
            .ok_or_else(|| NetworkError::NotFound(format!("endpoint {id} not found")))
    }

    /// Forgets the host ports of `ports` in the port table.
    fn free_host_ports(&self, ports: &[PublishedPort]) {
        let mut st = self.state();
        for p in ports {
            if let Some(v) = st.ports.get_mut(&(p.proto.clone(), p.host_port)) {
                v.retain(|h| h != &p.host_ip);
            }
        }
    }

    /// Reserves a host port: the one asked for, the first free one of a
    /// range, or (None) a free ephemeral port. Ports are checked against
    /// the driver's own table and by binding them, which finds other
    /// programs.
    fn take_host_port(
        &self,
        proto: &str,
        host_ip: &str,
        range: Option<(u16, u16)>,
        name: &str,
    ) -> Result<u16> {
        let mut st = self.state();
        let clash = |st: &State, port: u16| {
            st.ports.get(&(proto.to_string(), port)).is_some_and(|ips| {
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
                .find(|p| !clash(&st, *p))
        } else {
            candidates
                .iter()
                .copied()
                .find(|p| !clash(&st, *p) && free_on_host(*p))
        };
        let Some(port) = chosen else {
            let p = candidates.first().copied().unwrap_or(0);
            let what = if candidates.len() == 1 && clash(&st, p) {
                "port is already allocated"
            } else {
                "address already in use"
            };
            return Err(NetworkError::Internal(anyhow!(
                "driver failed programming external connectivity on endpoint {name}: Bind for {host_ip}:{p} failed: {what}"
            )));
        };
        st.ports
            .entry((proto.to_string(), port))
            .or_default()
            .push(host_ip.to_string());
        Ok(port)
    }

    /// Takes the host ports of `wanted`, the IPv6 twin of each port
    /// published on every address included; on failure frees what it took.
    fn take_ports(
        &self,
        n: &BridgeNet,
        ep: &BridgeEndpoint,
        wanted: &[PortRequest],
    ) -> Result<Vec<PublishedPort>> {
        let mut out: Vec<PublishedPort> = Vec::new();
        // the network's default host address (`host_binding_ipv4`)
        let default_ip = n
            .option("com.docker.network.bridge.host_binding_ipv4")
            .unwrap_or("0.0.0.0")
            .to_string();
        for w in wanted {
            let (proto, cport) = (&w.proto, w.container_port);
            let host_ip = w
                .host_ip
                .clone()
                .filter(|h| !h.is_empty() && h != "::")
                .unwrap_or_else(|| default_ip.clone());
            let took = (|| {
                if host_ip.parse::<Ipv4Addr>().is_err() {
                    return Err(NetworkError::InvalidParameter(format!(
                        "invalid host IP {host_ip} for port {cport}/{proto}"
                    )));
                }
                let range = match w.host_port.as_deref().filter(|p| !p.is_empty()) {
                    None => None,
                    Some(p) => Some(parse_port_range(p)?),
                };
                self.take_host_port(proto, &host_ip, range, &ep.name)
            })();
            let hp = match took {
                Ok(hp) => hp,
                Err(e) => {
                    self.free_host_ports(&out);
                    return Err(e);
                }
            };
            out.push(PublishedPort {
                proto: proto.clone(),
                host_ip: host_ip.clone(),
                host_port: hp,
                container_ip: ep.address.0.to_string(),
                container_port: cport,
            });
            // a port published on every address is published on IPv6 too
            // when the container has an IPv6 address
            if let (Some((ip6, _)), "0.0.0.0") = (ep.address6, host_ip.as_str()) {
                out.push(PublishedPort {
                    proto: proto.clone(),
                    host_ip: "::".into(),
                    host_port: hp,
                    container_ip: ip6.to_string(),
                    container_port: cport,
                });
            }
        }
        Ok(out)
    }
}

impl NetworkDriver for BridgeDriver {
    fn capabilities(&self) -> Capabilities {
        Capabilities {
            scope: Scope::Local,
            connectivity_scope: Scope::Local,
        }
    }

    /// Brings every bridge up and rewrites berth's nftables table in one
    /// transaction from the networks and the ports of containers that ran
    /// when the daemon stopped, so nothing is duplicated, leaked or missing.
    fn restore(&self, networks: &[NetworkSpec], ports: &[PublishedPort]) -> Result<()> {
        links::sysctl(&["net", "ipv4", "ip_forward"], "1")?;
        let mut nets = HashMap::new();
        for spec in networks {
            let n = BridgeNet::of(spec)?;
            n.bring_up()?;
            nets.insert(spec.id.clone(), n);
        }
        let mut table: HashMap<(String, u16), Vec<String>> = HashMap::new();
        for p in ports {
            table
                .entry((p.proto.clone(), p.host_port))
                .or_default()
                .push(p.host_ip.clone());
        }
        let rules: Vec<NetRules> = nets.values().map(BridgeNet::rules).collect();
        let port_rules: Vec<PortRule> = ports.iter().filter_map(port_rule).collect();
        nft::apply(&nft::full_script(&rules, &port_rules))?;
        let mut st = self.state();
        st.networks = nets;
        st.ports = table;
        Ok(())
    }

    /// Brings a new network up (bridge, nftables elements); on failure
    /// nothing half-made stays behind.
    fn create_network(&self, spec: &NetworkSpec) -> Result<NetworkCreated> {
        let n = BridgeNet::of(spec)?;
        if spec.options.contains_key(BRIDGE_NAME) {
            if !nft::valid_ifname(&n.bridge) {
                return Err(NetworkError::InvalidParameter(format!(
                    "invalid bridge name: {:?}",
                    n.bridge
                )));
            }
            if self.state().networks.values().any(|o| o.bridge == n.bridge) {
                return Err(NetworkError::Conflict(format!(
                    "bridge name {} is used by another network",
                    n.bridge
                )));
            }
        }
        let mut created = false;
        let made = (|| -> anyhow::Result<()> {
            created = n.bring_up()?;
            nft::apply(&nft::network_elements("add", &n.rules()))
        })();
        if let Err(err) = made {
            // a bridge that was there before is not ours to delete
            if created {
                let _ = links::delete_link(&n.bridge);
            }
            let _ = nft::apply(&nft::network_elements("delete", &n.rules()));
            return Err(err.into());
        }
        let bridge = n.bridge.clone();
        self.state().networks.insert(spec.id.clone(), n);
        Ok(NetworkCreated { interface: bridge })
    }

    fn delete_network(&self, network_id: &str) -> Result<()> {
        let n = self.network(network_id)?;
        links::delete_link(&n.bridge)?;
        // not fatal: a daemon restart rewrites the elements anyway
        if let Err(err) = nft::apply(&nft::network_elements("delete", &n.rules())) {
            tracing::warn!(network = %n.spec.name, error = %err, "removing the network's nft elements");
        }
        self.state().networks.remove(network_id);
        Ok(())
    }

    fn create_endpoint(
        &self,
        network_id: &str,
        endpoint_id: &str,
        spec: &EndpointSpec,
    ) -> Result<EndpointInfo> {
        self.network(network_id)?;
        let address = spec.address.ok_or_else(|| {
            NetworkError::InvalidParameter("a bridge endpoint needs an IPv4 address".into())
        })?;
        // Docker's 02:42 + the address unless one was asked for
        let mac = spec.mac.unwrap_or_else(|| ipam::mac_for(address.0));
        let ep = BridgeEndpoint {
            network_id: network_id.into(),
            name: spec.name.clone(),
            address,
            address6: spec.address6,
            mac,
            host_if: format!("veth{}", endpoint_id.get(..7).unwrap_or(endpoint_id)),
        };
        self.state().endpoints.insert(endpoint_id.into(), ep);
        Ok(EndpointInfo {
            address: Some(address),
            address6: spec.address6,
            mac,
        })
    }

    fn delete_endpoint(&self, _network_id: &str, endpoint_id: &str) -> Result<()> {
        self.state().endpoints.remove(endpoint_id);
        Ok(())
    }

    /// Plugs the container's namespace into the network's bridge: the
    /// network's gateway becomes its default route when asked.
    fn join(&self, network_id: &str, endpoint_id: &str, req: &JoinRequest) -> Result<JoinInfo> {
        let n = self.network(network_id)?;
        let ep = self.endpoint(endpoint_id)?;
        let gateway = n.gateway.filter(|_| !n.spec.internal);
        let gateway6 = n
            .gateway6
            .filter(|_| !n.spec.internal && ep.address6.is_some());
        let attached = links::attach(
            &req.sandbox_key,
            &links::Endpoint {
                bridge: n.bridge.clone(),
                host_if: ep.host_if.clone(),
                container_if: req.interface.clone(),
                ip: ep.address.0,
                prefix: ep.address.1,
                gateway: gateway.filter(|_| req.default_route),
                mac: ep.mac,
                mtu: n
                    .option("com.docker.network.driver.mtu")
                    .and_then(|m| m.parse().ok()),
                ip6: ep.address6,
                gateway6: gateway6.filter(|_| req.default_route),
            },
        );
        if let Err(e) = attached {
            let _ = links::delete_link(&ep.host_if);
            return Err(e.into());
        }
        Ok(JoinInfo {
            host_interface: ep.host_if,
            gateway,
            gateway6,
        })
    }

    /// Nothing to undo here: the service removes the interface from the
    /// namespace (or the namespace with it), and the kernel the veth pair.
    fn leave(&self, _network_id: &str, _endpoint_id: &str) -> Result<()> {
        Ok(())
    }

    /// Allocates the host ports of `-p`/`-P` and adds their DNAT elements.
    fn program_external_connectivity(
        &self,
        network_id: &str,
        endpoint_id: &str,
        ports: &[PortRequest],
    ) -> Result<Vec<PublishedPort>> {
        let n = self.network(network_id)?;
        let ep = self.endpoint(endpoint_id)?;
        debug_assert_eq!(ep.network_id, network_id);
        let out = self.take_ports(&n, &ep, ports)?;
        let script: String = out
            .iter()
            .filter_map(port_rule)
            .map(|r| nft::port_element("add", &r))
            .collect();
        if let Err(e) = nft::apply(&script) {
            self.free_host_ports(&out);
            return Err(NetworkError::Internal(e.context(format!(
                "driver failed programming external connectivity on endpoint {} on network {}",
                ep.name, n.spec.name
            ))));
        }
        Ok(out)
    }

    /// Deletes published ports' DNAT elements and frees their host ports.
    fn revoke_external_connectivity(
        &self,
        _network_id: &str,
        _endpoint_id: &str,
        ports: &[PublishedPort],
    ) -> Result<()> {
        if ports.is_empty() {
            return Ok(());
        }
        let script: String = ports
            .iter()
            .filter_map(port_rule)
            .map(|r| nft::port_element("delete", &r))
            .collect();
        let applied = nft::apply(&script);
        self.free_host_ports(ports);
        Ok(applied?)
    }
}

/// A published port's DNAT rule; None for addresses that do not parse
/// (no rule rather than a wrong one).
pub fn port_rule(p: &PublishedPort) -> Option<PortRule> {
    Some(PortRule {
        proto: if p.proto == "udp" {
            Proto::Udp
        } else {
            Proto::Tcp
        },
        host_ip: match p.host_ip.as_str() {
            "" | "0.0.0.0" | "::" => None,
            ip => Some(ip.parse::<IpAddr>().ok()?),
        },
        host_port: p.host_port,
        container_ip: p.container_ip.parse().ok()?,
        container_port: p.container_port,
    })
}

/// "8080" or "8000-8010"
pub fn parse_port_range(s: &str) -> Result<(u16, u16)> {
    let bad = || NetworkError::InvalidParameter(format!("invalid port specification: \"{s}\""));
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
    use berth_core::network::IpamPool;

    fn spec(id: &str, subnet: &str, gateway: &str) -> NetworkSpec {
        NetworkSpec {
            id: id.into(),
            name: "app".into(),
            driver: "bridge".into(),
            ipv4: vec![IpamPool {
                subnet: subnet.into(),
                gateway: Some(gateway.into()),
                ..Default::default()
            }],
            ..Default::default()
        }
    }

    #[test]
    fn a_network_is_its_bridge_and_its_rules() {
        let n = BridgeNet::of(&spec("0123456789abcdef", "10.3.0.0/24", "10.3.0.1")).unwrap();
        assert_eq!(n.bridge, "br-0123456789ab");
        assert_eq!(n.gateway, Some("10.3.0.1".parse().unwrap()));
        let r = n.rules();
        assert_eq!(r.bridge, "br-0123456789ab");
        assert_eq!(r.subnet, Subnet::parse("10.3.0.0/24").unwrap());
        assert!(r.masquerade && r.icc && !r.internal);
        assert_eq!(r.subnet6, None);
        let mut s = spec("n1", "10.3.0.0/24", "10.3.0.1");
        s.options.insert(BRIDGE_NAME.into(), "mybr".into());
        s.internal = true;
        s.options.insert(
            "com.docker.network.bridge.enable_ip_masquerade".into(),
            "false".into(),
        );
        s.options.insert(
            "com.docker.network.bridge.enable_icc".into(),
            "false".into(),
        );
        let n = BridgeNet::of(&s).unwrap();
        assert_eq!(n.bridge, "mybr");
        let r = n.rules();
        assert!(r.internal && !r.masquerade && !r.icc);
        // only "false" turns them off
        s.options
            .insert("com.docker.network.bridge.enable_icc".into(), "0".into());
        assert!(BridgeNet::of(&s).unwrap().rules().icc);
        // no IPv4 subnet, no bridge network
        let mut none = spec("x", "", "");
        none.ipv4.clear();
        assert!(BridgeNet::of(&none).is_err());
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
        let r = port_rule(&p).unwrap();
        assert_eq!(r.proto, Proto::Udp);
        assert_eq!(r.host_ip, None);
        assert_eq!(r.container_ip, "172.17.0.2".parse::<IpAddr>().unwrap());
        assert_eq!((r.host_port, r.container_port), (5353, 53));
        let bound = PublishedPort {
            proto: "tcp".into(),
            host_ip: "127.0.0.1".into(),
            ..p.clone()
        };
        let r = port_rule(&bound).unwrap();
        assert_eq!(r.proto, Proto::Tcp);
        assert_eq!(r.host_ip, Some("127.0.0.1".parse().unwrap()));
        // "::" is every address too
        let any6 = PublishedPort {
            host_ip: "::".into(),
            ..p.clone()
        };
        assert_eq!(port_rule(&any6).unwrap().host_ip, None);
        // unparsable addresses make no rule rather than a wrong one
        let bad = PublishedPort {
            host_ip: "localhost".into(),
            ..p.clone()
        };
        assert!(port_rule(&bad).is_none());
        let bad = PublishedPort {
            container_ip: String::new(),
            ..p
        };
        assert!(port_rule(&bad).is_none());
    }

    #[test]
    fn port_ranges() {
        assert_eq!(parse_port_range("8000-8010").unwrap(), (8000, 8010));
        assert_eq!(parse_port_range("80").unwrap(), (80, 80));
        assert_eq!(parse_port_range("1-65535").unwrap(), (1, 65535));
        assert!(parse_port_range("9-1").is_err());
        assert!(parse_port_range("0").is_err());
        assert!(parse_port_range("80-").is_err());
        assert_eq!(
            parse_port_range("65536").unwrap_err().to_string(),
            "invalid port specification: \"65536\""
        );
    }

    #[test]
    fn endpoints_need_their_network_and_an_address() {
        let d = BridgeDriver::new();
        let ep = EndpointSpec {
            name: "web".into(),
            address: Some(("10.3.0.2".parse().unwrap(), 24)),
            ..Default::default()
        };
        assert!(matches!(
            d.create_endpoint("nope", "e1", &ep),
            Err(NetworkError::NotFound(_))
        ));
        // a network known to the driver (as restore leaves it, without
        // touching the kernel)
        let n = BridgeNet::of(&spec("n1", "10.3.0.0/24", "10.3.0.1")).unwrap();
        d.state().networks.insert("n1".into(), n);
        let info = d.create_endpoint("n1", "e1abcdef", &ep).unwrap();
        assert_eq!(info.mac, ipam::mac_for("10.3.0.2".parse().unwrap()));
        assert_eq!(d.endpoint("e1abcdef").unwrap().host_if, "vethe1abcde");
        let no_addr = EndpointSpec {
            address: None,
            ..ep
        };
        assert!(matches!(
            d.create_endpoint("n1", "e2", &no_addr),
            Err(NetworkError::InvalidParameter(_))
        ));
        d.delete_endpoint("n1", "e1abcdef").unwrap();
        assert!(d.endpoint("e1abcdef").is_err());
        // unknown endpoints are no error to delete
        d.delete_endpoint("n1", "e1abcdef").unwrap();
    }
}
