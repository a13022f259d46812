//! Endpoints: addresses from the IPAM, the driver's endpoint joined to the
//! container's sandbox, and the published ports of the primary one.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use berth_core::network::{EndpointSpec, JoinRequest, NetworkError, PortRequest, PublishedPort};
use berth_core::random_id;
use berth_ipnet::Subnet;

use super::*;

impl NetworkService {
    /// Allocates an address on `n` (the one asked for with `--ip`, or the
    /// next free) and has the driver plug the container's sandbox into the
    /// network as `join.interface`.
    pub fn attach(
        &self,
        n: &NetworkRecord,
        want: EndpointWant,
        join: &JoinRequest,
    ) -> Result<EndpointRecord> {
        if n.config_only {
            return Err(Error::Forbidden(
                "cannot create endpoint on configuration-only network".into(),
            ));
        }
        let subnet = n
            .subnet()
            .ok_or_else(|| Error::Internal(anyhow::anyhow!("network {} has no subnet", n.name)))?;
        let driver = self.driver(&n.driver)?;
        // `--mac-address` (sent on the endpoint since API 1.44), checked
        // before any address is taken; else the driver's choice
        let mac = match want.mac_address.filter(|m| !m.is_empty()) {
            Some(m) => Some(
                parse_mac(m).ok_or_else(|| Error::invalid(format!("invalid MAC address: {m}")))?,
            ),
            None => None,
        };
        let wanted_ip = want.ipv4_address.filter(|s| !s.is_empty());
        let ip = self.allocate_ipv4(n, subnet, wanted_ip)?;
        let wanted6 = want.ipv6_address.filter(|s| !s.is_empty());
        let ip6 = match self.allocate_ipv6(n, wanted6) {
            Ok(a) => a,
            Err(e) => {
                self.release(&n.id, &ip.to_string(), "");
                return Err(e);
            }
        };
        let mut ep = EndpointRecord {
            network_id: n.id.clone(),
            endpoint_id: random_id(),
            ip: ip.to_string(),
            prefix: subnet.prefix,
            container_if: join.interface.clone(),
            ip6: ip6.map(|(a, _)| a.to_string()).unwrap_or_default(),
            prefix6: ip6.map(|(_, p)| p).unwrap_or(0),
            ..Default::default()
        };
        let spec = EndpointSpec {
            name: want.name.to_string(),
            address: Some((ip, subnet.prefix)),
            address6: ip6,
            mac,
            aliases: want.aliases.to_vec(),
        };
        let joined = driver
            .create_endpoint(&n.id, &ep.endpoint_id, &spec)
            .and_then(|info| {
                ep.mac = berth_ipnet::mac_string(&info.mac);
                driver.join(&n.id, &ep.endpoint_id, join)
            });
        match joined {
            Ok(j) => {
                ep.host_if = j.host_interface;
                ep.gateway = j.gateway.map(|g| g.to_string()).unwrap_or_default();
                ep.gateway6 = j.gateway6.map(|g| g.to_string()).unwrap_or_default();
                Ok(ep)
            }
            Err(e) => {
                let _ = driver.delete_endpoint(&n.id, &ep.endpoint_id);
                self.release(&n.id, &ep.ip, &ep.ip6);
                Err(e.into())
            }
        }
    }

    /// An endpoint's IPv4 address: the one asked for (user networks only,
    /// inside the subnet, free) or the pool's next.
    fn allocate_ipv4(
        &self,
        n: &NetworkRecord,
        subnet: Subnet,
        wanted_ip: Option<&str>,
    ) -> Result<Ipv4Addr> {
        if n.managed_addresses() {
            let w = wanted_ip.ok_or_else(|| {
                Error::invalid(format!(
                    "network {} is a swarm network: its endpoints take the managers' addresses",
                    n.name
                ))
            })?;
            return w
                .parse()
                .map_err(|_| Error::invalid(format!("invalid IPv4 address: {w}")));
        }
        let pool =
            self.r().pools.get(&n.id).cloned().ok_or_else(|| {
                Error::Internal(anyhow::anyhow!("network {} has no pool", n.name))
            })?;
        let wanted = match wanted_ip {
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
                Some(IpAddr::V4(ip))
            }
            None => None,
        };
        match self.ipam()?.request_address(&pool, wanted) {
            Ok(IpAddr::V4(ip)) => Ok(ip),
            Ok(other) => Err(Error::Internal(anyhow::anyhow!(
                "the IPAM gave {other} for an IPv4 pool"
            ))),
            Err(NetworkError::AddressInUse(ip)) => Err(Error::conflict(format!(
                "Address already in use: {ip} on network {}",
                n.name
            ))),
            Err(NetworkError::PoolExhausted(_)) => Err(Error::invalid(format!(
                "no available IPv4 addresses on this network's address pools: {} ({})",
                n.name, n.id
            ))),
            Err(e) => Err(e.into()),
        }
    }

    /// An endpoint's IPv6 address on a network with an IPv6 subnet: the one
    /// asked for, or the pool's next.
    fn allocate_ipv6(
        &self,
        n: &NetworkRecord,
        wanted6: Option<&str>,
    ) -> Result<Option<(Ipv6Addr, u8)>> {
        let (Some(pool), Some(s6)) = (self.r().pools6.get(&n.id).cloned(), n.subnet6()) else {
            return Ok(None);
        };
        let in_use = |w: &str| {
            Error::conflict(format!(
                "Address already in use or invalid: {w} on network {}",
                n.name
            ))
        };
        let wanted = match wanted6 {
            Some(w) => Some(IpAddr::V6(w.parse().map_err(|_| in_use(w))?)),
            None => None,
        };
        match self.ipam()?.request_address(&pool, wanted) {
            Ok(IpAddr::V6(ip)) => Ok(Some((ip, s6.prefix))),
            Err(NetworkError::PoolExhausted(_)) => Err(Error::invalid(format!(
                "no available IPv6 addresses on network {}",
                n.name
            ))),
            Err(NetworkError::NotFound(m)) => Err(Error::Internal(anyhow::anyhow!(m))),
            _ => Err(in_use(wanted6.unwrap_or_default())),
        }
    }

    /// Takes an endpoint off its network: the driver lets go of it (the
    /// caller removed its interface or the whole namespace) and its
    /// addresses go back to the pools. Not fatal: the addresses are freed
    /// whatever the driver says.
    pub fn detach(&self, ep: &EndpointRecord) {
        let driver = self
            .r()
            .by_id
            .get(&ep.network_id)
            .and_then(|n| self.drivers.get(&n.driver).cloned());
        if let Some(d) = driver {
            let left = d
                .leave(&ep.network_id, &ep.endpoint_id)
                .and_then(|()| d.delete_endpoint(&ep.network_id, &ep.endpoint_id));
            if let Err(e) = left {
                tracing::warn!(endpoint = %ep.endpoint_id, error = %e, "removing an endpoint");
            }
        }
        self.release(&ep.network_id, &ep.ip, &ep.ip6);
    }

    /// Gives an endpoint's addresses back to its network's pools.
    fn release(&self, network_id: &str, ip: &str, ip6: &str) {
        let Ok(ipam) = self.ipam() else {
            return;
        };
        let nets = self.r();
        let freed = [
            (nets.pools6.get(network_id), ip6.parse::<IpAddr>().ok()),
            (nets.pools.get(network_id), ip.parse::<IpAddr>().ok()),
        ];
        for (pool, ip) in freed {
            if let (Some(pool), Some(ip)) = (pool, ip) {
                let _ = ipam.release_address(pool, ip);
            }
        }
    }

    /// Publishes ports on an endpoint of `n` (`-p`/`-P`).
    pub fn publish(
        &self,
        n: &NetworkRecord,
        ep: &EndpointRecord,
        ports: &[PortRequest],
    ) -> Result<Vec<PublishedPort>> {
        Ok(self
            .driver(&n.driver)?
            .program_external_connectivity(&n.id, &ep.endpoint_id, ports)?)
    }

    /// Takes published ports back; the driver of the network they were
    /// published on (the bridge when that is gone) does it.
    pub fn unpublish(
        &self,
        network_id: &str,
        endpoint_id: &str,
        ports: &[PublishedPort],
    ) -> Result<()> {
        let driver = self
            .r()
            .by_id
            .get(network_id)
            .map_or_else(|| "bridge".to_string(), |n| n.driver.clone());
        Ok(self
            .driver(&driver)?
            .revoke_external_connectivity(network_id, endpoint_id, ports)?)
    }
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
