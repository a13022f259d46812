//! [`DefaultIpam`], berth's implementation of the IPAM port, over the
//! subnets and pools of berth-ipnet (re-exported here).

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::sync::Mutex;

use berth_core::network::{
    IpamDriver, NetworkError, OPT_BUILTIN_POOLS, PoolGrant, PoolRequest, Result as NetResult,
};
pub use berth_ipnet::*;

/// A pool the default IPAM holds.
enum Held {
    V4(Pool),
    V6(Pool6),
}

/// berth's default IPAM: IPv4 pools picked from `default-address-pools`
/// (or Docker's built-in ones) around the host's own subnets, explicit
/// IPv4 and IPv6 pools that must not overlap the ones it holds, and
/// addresses lowest first. Its state is in memory; the networks service
/// asks for its records' pools and addresses again at daemon start.
pub struct DefaultIpam {
    pools: Vec<Subnet>,
    held: Mutex<BTreeMap<String, Held>>,
}

impl DefaultIpam {
    /// An IPAM picking from `pools` (see [`address_pools_of`]).
    pub fn new(pools: Vec<Subnet>) -> Self {
        DefaultIpam {
            pools,
            held: Mutex::new(BTreeMap::new()),
        }
    }

    fn held(&self) -> std::sync::MutexGuard<'_, BTreeMap<String, Held>> {
        self.held.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn request_pool4(&self, req: &PoolRequest) -> NetResult<PoolGrant> {
        let mut held = self.held();
        let used: Vec<Subnet> = held
            .values()
            .filter_map(|h| match h {
                Held::V4(p) => Some(p.subnet),
                Held::V6(_) => None,
            })
            .collect();
        let subnet = match req.pool.as_deref() {
            Some(p) => {
                let s = Subnet::parse(p)
                    .map_err(|_| NetworkError::InvalidParameter(format!("invalid subnet: {p}")))?
                    .network();
                if let Some(u) = used.iter().find(|u| u.overlaps(&s)) {
                    return Err(NetworkError::PoolOverlap(u.to_string()));
                }
                s
            }
            None => {
                let mut used = used;
                let builtin = req.options.contains_key(OPT_BUILTIN_POOLS);
                // the default bridge comes up even when the host's
                // addresses cannot be read
                used.extend(match crate::links::host_subnets() {
                    Err(_) if builtin => Vec::new(),
                    r => r?,
                });
                let defaults;
                let pools = if builtin {
                    defaults = default_pools();
                    &defaults
                } else {
                    &self.pools
                };
                pick_subnet(pools, &used).ok_or(NetworkError::NoPool)?
            }
        };
        let range =
            match req.sub_pool.as_deref() {
                Some(r) => Some(Subnet::parse(r).map_err(|_| {
                    NetworkError::InvalidParameter(format!("invalid ip-range: {r}"))
                })?),
                None => None,
            };
        let mut pool_id = format!("LocalDefault/{subnet}");
        if let Some(r) = range {
            pool_id = format!("{pool_id}/{}", r.network());
        }
        held.insert(pool_id.clone(), Held::V4(Pool::new(subnet, range)));
        Ok(PoolGrant {
            pool_id,
            pool: subnet.to_string(),
        })
    }

    fn request_pool6(&self, req: &PoolRequest) -> NetResult<PoolGrant> {
        let p = req.pool.as_deref().ok_or_else(|| {
            NetworkError::InvalidParameter("no default IPv6 pool: a subnet is needed".into())
        })?;
        let s = Subnet6::parse(p)
            .map_err(|_| NetworkError::InvalidParameter(format!("invalid subnet: {p}")))?
            .network();
        let mut held = self.held();
        for h in held.values() {
            if let Held::V6(u) = h
                && u.subnet.overlaps(&s)
            {
                return Err(NetworkError::PoolOverlap(u.subnet.to_string()));
            }
        }
        let pool_id = format!("LocalDefault/{s}");
        held.insert(pool_id.clone(), Held::V6(Pool6::new(s)));
        Ok(PoolGrant {
            pool_id,
            pool: s.to_string(),
        })
    }
}

impl IpamDriver for DefaultIpam {
    fn request_pool(&self, req: &PoolRequest) -> NetResult<PoolGrant> {
        if req.v6 {
            self.request_pool6(req)
        } else {
            self.request_pool4(req)
        }
    }

    fn release_pool(&self, pool_id: &str) -> NetResult<()> {
        self.held()
            .remove(pool_id)
            .map(|_| ())
            .ok_or_else(|| NetworkError::NotFound(format!("pool {pool_id} not found")))
    }

    fn request_address(&self, pool_id: &str, address: Option<IpAddr>) -> NetResult<IpAddr> {
        let mut held = self.held();
        let pool = held
            .get_mut(pool_id)
            .ok_or_else(|| NetworkError::NotFound(format!("pool {pool_id} not found")))?;
        match (pool, address) {
            (Held::V4(p), Some(IpAddr::V4(a))) => p
                .reserve(a)
                .then_some(IpAddr::V4(a))
                .ok_or(NetworkError::AddressInUse(IpAddr::V4(a))),
            (Held::V6(p), Some(IpAddr::V6(a))) => p
                .reserve(a)
                .then_some(IpAddr::V6(a))
                .ok_or(NetworkError::AddressInUse(IpAddr::V6(a))),
            (Held::V4(p), None) => p
                .allocate()
                .map(IpAddr::V4)
                .ok_or_else(|| NetworkError::PoolExhausted(pool_id.into())),
            (Held::V6(p), None) => p
                .allocate()
                .map(IpAddr::V6)
                .ok_or_else(|| NetworkError::PoolExhausted(pool_id.into())),
            (_, Some(a)) => Err(NetworkError::InvalidParameter(format!(
                "address {a} is not of pool {pool_id}'s family"
            ))),
        }
    }

    fn release_address(&self, pool_id: &str, address: IpAddr) -> NetResult<()> {
        match (self.held().get_mut(pool_id), address) {
            (Some(Held::V4(p)), IpAddr::V4(a)) => p.release(a),
            (Some(Held::V6(p)), IpAddr::V6(a)) => p.release(a),
            _ => {}
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn explicit(pool: &str, sub_pool: Option<&str>, v6: bool) -> PoolRequest {
        PoolRequest {
            pool: Some(pool.into()),
            sub_pool: sub_pool.map(String::from),
            v6,
            ..Default::default()
        }
    }

    fn addr(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn the_default_ipam_grants_explicit_pools_that_do_not_overlap() {
        let ipam = DefaultIpam::new(Vec::new());
        let g = ipam
            .request_pool(&explicit("172.20.3.1/16", None, false))
            .unwrap();
        assert_eq!(g.pool, "172.20.0.0/16");
        assert_eq!(g.pool_id, "LocalDefault/172.20.0.0/16");
        match ipam.request_pool(&explicit("172.20.9.0/24", None, false)) {
            Err(NetworkError::PoolOverlap(s)) => assert_eq!(s, "172.20.0.0/16"),
            other => panic!("{other:?}"),
        }
        // IPv6 pools are an address space of their own
        let g6 = ipam
            .request_pool(&explicit("fd00:1::/64", None, true))
            .unwrap();
        assert_eq!(g6.pool, "fd00:1::/64");
        assert!(matches!(
            ipam.request_pool(&explicit("fd00:1::/48", None, true)),
            Err(NetworkError::PoolOverlap(_))
        ));
        assert!(matches!(
            ipam.request_pool(&explicit("nonsense", None, false)),
            Err(NetworkError::InvalidParameter(_))
        ));
        // released, the subnet can be had again
        ipam.release_pool(&g.pool_id).unwrap();
        assert!(ipam.release_pool(&g.pool_id).is_err());
        ipam.request_pool(&explicit("172.20.9.0/24", None, false))
            .unwrap();
    }

    #[test]
    fn the_default_ipam_allocates_and_releases_addresses() {
        let ipam = DefaultIpam::new(Vec::new());
        let id = ipam
            .request_pool(&explicit("10.0.0.0/29", None, false))
            .unwrap()
            .pool_id;
        // the gateway, reserved as the service does
        assert_eq!(
            ipam.request_address(&id, Some(addr("10.0.0.1"))).unwrap(),
            addr("10.0.0.1")
        );
        assert!(matches!(
            ipam.request_address(&id, Some(addr("10.0.0.1"))),
            Err(NetworkError::AddressInUse(a)) if a == addr("10.0.0.1")
        ));
        let got: Vec<IpAddr> =
            std::iter::from_fn(|| ipam.request_address(&id, None).ok()).collect();
        let want: Vec<IpAddr> = (2..=6).map(|i| addr(&format!("10.0.0.{i}"))).collect();
        assert_eq!(got, want);
        assert!(matches!(
            ipam.request_address(&id, None),
            Err(NetworkError::PoolExhausted(_))
        ));
        ipam.release_address(&id, addr("10.0.0.4")).unwrap();
        assert_eq!(ipam.request_address(&id, None).unwrap(), addr("10.0.0.4"));
        // an address of the other family, or of no pool
        assert!(matches!(
            ipam.request_address(&id, Some(addr("fd00::1"))),
            Err(NetworkError::InvalidParameter(_))
        ));
        assert!(matches!(
            ipam.request_address("LocalDefault/nothing", None),
            Err(NetworkError::NotFound(_))
        ));
    }

    #[test]
    fn the_default_ipam_hands_out_from_the_sub_pool() {
        let ipam = DefaultIpam::new(Vec::new());
        let g = ipam
            .request_pool(&explicit("172.26.0.0/16", Some("172.26.5.0/24"), false))
            .unwrap();
        assert_eq!(g.pool_id, "LocalDefault/172.26.0.0/16/172.26.5.0/24");
        // the gateway outside the range can still be reserved
        ipam.request_address(&g.pool_id, Some(addr("172.26.0.1")))
            .unwrap();
        assert_eq!(
            ipam.request_address(&g.pool_id, None).unwrap(),
            addr("172.26.5.0")
        );
        let g6 = ipam
            .request_pool(&explicit("fd00:dead:beef::/64", None, true))
            .unwrap();
        ipam.request_address(&g6.pool_id, Some(addr("fd00:dead:beef::1")))
            .unwrap();
        assert_eq!(
            ipam.request_address(&g6.pool_id, None).unwrap(),
            addr("fd00:dead:beef::2")
        );
        // no default IPv6 pool
        let none6 = PoolRequest {
            v6: true,
            ..Default::default()
        };
        assert!(matches!(
            ipam.request_pool(&none6),
            Err(NetworkError::InvalidParameter(_))
        ));
    }
}
