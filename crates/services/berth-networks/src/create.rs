//! Creating and removing networks: the IPAM gives the pools, the driver
//! makes the network, and the record is written last.

use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr};

use berth_core::network::{IpamDriver, IpamPool, NetworkError, PoolGrant, PoolRequest};
use berth_core::store::{MetadataStoreExt, Table};
use berth_ipnet::{Subnet, Subnet6};

use super::*;

/// What `ipv4_settings` decides, with the pool it holds.
struct Ipv4Settings {
    pool_id: String,
    subnet: Subnet,
    ip_range: Option<String>,
    gateway: Ipv4Addr,
    aux: HashMap<String, String>,
}

impl NetworkService {
    /// Creates a network: checks, pools, the driver's network, the record.
    /// Creations run one at a time (two must not pick one subnet), with the
    /// records only read meanwhile.
    pub fn create(&self, req: &CreateNetwork) -> Result<NetworkRecord> {
        let name = req.name.trim().to_string();
        if name.is_empty() {
            return Err(Error::invalid("network name cannot be empty"));
        }
        if req.config_only {
            return self.create_config_only(req);
        }
        let configured;
        let req = match &req.config_from {
            Some(from) => {
                configured = self.configured_from(req, from)?;
                &configured
            }
            None => req,
        };
        let driver_name = if req.driver.is_empty() {
            "bridge".to_string()
        } else {
            req.driver.clone()
        };
        let driver = self.driver(&driver_name)?;
        let mut options = req.options.clone();
        let has_subnet6 = req.ipam.iter().any(|c| c.subnet.contains(':'));
        let ipv6 = crate::options::enable_ipv6(req.enable_ipv6, &mut options, has_subnet6)?;
        let (cfg, cfg6) = requested_subnets(req, ipv6)?;
        crate::options::network_options(&options)?;
        let _one_at_a_time = CREATE.lock().unwrap_or_else(|p| p.into_inner());
        if self.r().by_name(&name).is_some() {
            return Err(Error::conflict(format!(
                "network with name {name} already exists"
            )));
        }
        let ipam = self.ipam()?;
        let v4 = self.ipv4_settings(ipam.as_ref(), &cfg)?;
        let v6 = match &cfg6 {
            None => None,
            Some(c) => match self.ipv6_settings(ipam.as_ref(), c) {
                Ok(v6) => Some(v6),
                Err(e) => {
                    self.release_pools("", [Some(v4.pool_id), None]);
                    return Err(e);
                }
            },
        };
        let mut rec = NetworkRecord::bare(&name, &driver_name);
        if let Some(id) = &req.id {
            rec.id = id.clone();
        }
        if req.scope == "swarm" {
            rec.scope = "swarm".into();
        }
        rec.config_from = req.config_from.clone().unwrap_or_default();
        rec.subnet = v4.subnet.to_string();
        rec.gateway = v4.gateway.to_string();
        rec.ip_range = v4.ip_range;
        rec.aux_addresses = v4.aux;
        rec.internal = req.internal;
        rec.attachable = req.attachable;
        rec.labels = req.labels.clone();
        rec.options = options;
        rec.ipam_options = req.ipam_options.clone();
        let pool6 = v6.map(|(pool, subnet, gateway)| {
            rec.subnet6 = subnet;
            rec.gateway6 = gateway;
            pool
        });
        let pools = [Some(v4.pool_id.clone()), pool6.clone()];
        let made = driver.create_network(&rec.spec()).map_err(Error::from);
        let made = made.and_then(|created| {
            rec.bridge = created.interface;
            self.meta.put_json(Table::Networks, &rec.id, &rec)?;
            Ok(())
        });
        if let Err(e) = made {
            if !rec.bridge.is_empty() {
                let _ = driver.delete_network(&rec.id);
            }
            self.release_pools(&rec.id, pools);
            return Err(e);
        }
        let mut nets = self.state.w();
        nets.pools.insert(rec.id.clone(), v4.pool_id);
        if let Some(p6) = pool6 {
            nets.pools6.insert(rec.id.clone(), p6);
        }
        nets.by_id.insert(rec.id.clone(), rec.clone());
        Ok(rec)
    }

    /// The IPv4 side of a new network: its subnet (asked for, or a free
    /// pool of the IPAM's), range, gateway and auxiliary addresses, the
    /// gateway and those addresses reserved in the pool.
    fn ipv4_settings(&self, ipam: &dyn IpamDriver, cfg: &IpamPool) -> Result<Ipv4Settings> {
        let parse = |what: &str, v: &str| {
            Subnet::parse(v).map_err(|_| Error::invalid(format!("invalid {what}: {v}")))
        };
        let asked = match Some(cfg.subnet.as_str()).filter(|s| !s.is_empty()) {
            Some(s) => {
                let s = parse("subnet", s)?;
                if let Some(other) = self
                    .r()
                    .by_id
                    .values()
                    .filter(|n| !n.config_only)
                    .find(|n| n.subnet().is_some_and(|o| o.overlaps(&s)))
                {
                    return Err(pool_overlap(&other.subnet, &other.name));
                }
                Some(s.network())
            }
            None => None,
        };
        let range = match cfg.ip_range.as_deref().filter(|s| !s.is_empty()) {
            Some(r) => Some(parse("ip-range", r)?),
            None => None,
        };
        let grant = ipam
            .request_pool(&PoolRequest {
                pool: asked.map(|s| s.to_string()),
                sub_pool: range.map(|r| r.to_string()),
                ..Default::default()
            })
            .map_err(|e| match e {
                NetworkError::NoPool => Error::invalid(
                    "could not find an available, non-overlapping IPv4 address pool among the defaults to assign to the network",
                ),
                e => e.into(),
            })?;
        let settled = settle_ipv4(ipam, &grant, cfg, range);
        if settled.is_err() {
            let _ = ipam.release_pool(&grant.pool_id);
        }
        settled
    }

    /// The IPv6 subnet, gateway and pool of a new network, which must not
    /// overlap another's.
    fn ipv6_settings(
        &self,
        ipam: &dyn IpamDriver,
        c: &IpamPool,
    ) -> Result<(String, String, String)> {
        let s = Subnet6::parse(&c.subnet)
            .map_err(|_| Error::invalid(format!("invalid subnet: {}", c.subnet)))?;
        if let Some(other) = self
            .r()
            .by_id
            .values()
            .filter(|n| !n.config_only)
            .find(|n| n.subnet6().is_some_and(|o| o.overlaps(&s)))
        {
            return Err(pool_overlap(&other.subnet6, &other.name));
        }
        let gw: std::net::Ipv6Addr = gateway_in(c.gateway.as_deref(), |g| s.contains(g), s.nth(1))?;
        let grant = ipam.request_pool(&PoolRequest {
            pool: Some(s.network().to_string()),
            v6: true,
            ..Default::default()
        })?;
        let _ = ipam.request_address(&grant.pool_id, Some(IpAddr::V6(gw)));
        Ok((grant.pool_id, s.network().to_string(), gw.to_string()))
    }

    /// Removes a network no container uses: the driver's network, the
    /// record, the pools. `users` are the containers on it (running, or
    /// holding an endpoint), which the engine knows; the predefined
    /// networks and a network in use are refused.
    pub fn remove(&self, n: &NetworkRecord, users: &[String]) -> Result<()> {
        if n.predefined() {
            return Err(Error::Forbidden(format!(
                "{} is a pre-defined network and cannot be removed",
                n.name
            )));
        }
        if n.config_only {
            return self.remove_config_only(n);
        }
        if !users.is_empty() {
            return Err(Error::conflict(format!(
                "error while removing network: network {} id {} has active endpoints ({})",
                n.name,
                n.id,
                users.join(", ")
            )));
        }
        self.driver(&n.driver)?.delete_network(&n.id)?;
        self.meta.delete(Table::Networks, &n.id)?;
        let mut nets = self.state.w();
        nets.by_id.remove(&n.id);
        let pools = [nets.pools.remove(&n.id), nets.pools6.remove(&n.id)];
        drop(nets);
        self.release_pools(&n.id, pools);
        Ok(())
    }
}

/// The range, gateway and auxiliary addresses of a granted IPv4 pool,
/// checked against its subnet and reserved in it.
fn settle_ipv4(
    ipam: &dyn IpamDriver,
    grant: &PoolGrant,
    cfg: &IpamPool,
    range: Option<Subnet>,
) -> Result<Ipv4Settings> {
    let subnet = Subnet::parse(&grant.pool).map_err(|e| Error::Internal(e.into()))?;
    if let Some(r) = range
        && (!subnet.contains(r.addr) || r.prefix < subnet.prefix)
    {
        return Err(Error::invalid(format!(
            "invalid ip-range {r}: it must be inside the subnet {subnet}"
        )));
    }
    let gateway = gateway_in(
        cfg.gateway.as_deref(),
        |g| subnet.contains(g),
        subnet.nth(1),
    )?;
    let mut aux = HashMap::new();
    for (k, v) in cfg.aux_addresses.clone() {
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
    for ip in std::iter::once(&gateway.to_string()).chain(aux.values()) {
        if let Ok(ip) = ip.parse::<IpAddr>() {
            // an aux address equal to the gateway is taken already: fine
            let _ = ipam.request_address(&grant.pool_id, Some(ip));
        }
    }
    Ok(Ipv4Settings {
        pool_id: grant.pool_id.clone(),
        subnet,
        ip_range: range.map(|r| r.network().to_string()),
        gateway,
        aux,
    })
}

/// The IPAM configs of a create request: at most one IPv4 and, with
/// IPv6 enabled, exactly one IPv6 subnet.
fn requested_subnets(req: &CreateNetwork, ipv6: bool) -> Result<(IpamPool, Option<IpamPool>)> {
    let cfgs = req.ipam.clone();
    // one IPv4 and (with --ipv6) one IPv6 subnet
    let (v6, v4): (Vec<IpamPool>, Vec<IpamPool>) =
        cfgs.into_iter().partition(|c| c.subnet.contains(':'));
    if v4.len() > 1 || v6.len() > 1 {
        return Err(Error::invalid(
            "berth supports one IPv4 and one IPv6 subnet per network",
        ));
    }
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
