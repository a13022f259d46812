//! IPv4 subnets and address allocation, with Docker's default pools.

use std::collections::BTreeSet;
use std::fmt;
use std::net::Ipv4Addr;

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum SubnetError {
    #[error("invalid CIDR address: {0}")]
    Invalid(String),
}

/// An IPv4 network in CIDR form; the address is kept as given (so a
/// gateway written as `10.1.2.1/24` keeps its host part).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Subnet {
    pub addr: Ipv4Addr,
    pub prefix: u8,
}

impl Subnet {
    pub fn parse(s: &str) -> Result<Subnet, SubnetError> {
        let bad = || SubnetError::Invalid(s.to_string());
        let (a, p) = s.split_once('/').ok_or_else(bad)?;
        let addr: Ipv4Addr = a.parse().map_err(|_| bad())?;
        let prefix: u8 = p.parse().map_err(|_| bad())?;
        if prefix > 32 {
            return Err(bad());
        }
        Ok(Subnet { addr, prefix })
    }

    pub fn mask(&self) -> u32 {
        if self.prefix == 0 {
            0
        } else {
            u32::MAX << (32 - self.prefix)
        }
    }

    /// The network address (host bits cleared).
    pub fn network(&self) -> Subnet {
        Subnet {
            addr: Ipv4Addr::from(u32::from(self.addr) & self.mask()),
            prefix: self.prefix,
        }
    }

    pub fn contains(&self, ip: Ipv4Addr) -> bool {
        u32::from(ip) & self.mask() == u32::from(self.addr) & self.mask()
    }

    pub fn overlaps(&self, other: &Subnet) -> bool {
        let m = self.mask() & other.mask();
        u32::from(self.addr) & m == u32::from(other.addr) & m
    }

    /// The `n`th address of the network (0 is the network address).
    pub fn nth(&self, n: u32) -> Ipv4Addr {
        Ipv4Addr::from((u32::from(self.addr) & self.mask()).wrapping_add(n))
    }

    pub fn size(&self) -> u64 {
        1u64 << (32 - self.prefix as u32)
    }

    pub fn broadcast(&self) -> Ipv4Addr {
        self.nth((self.size() - 1) as u32)
    }
}

impl fmt::Display for Subnet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.addr, self.prefix)
    }
}

/// Docker's default address pools: 172.17-31.0.0/16, then 192.168.0.0/16
/// cut into /20s.
pub fn default_pools() -> Vec<Subnet> {
    let mut out: Vec<Subnet> = (17..=31)
        .map(|b| Subnet {
            addr: Ipv4Addr::new(172, b, 0, 0),
            prefix: 16,
        })
        .collect();
    out.extend((0..16).map(|i| Subnet {
        addr: Ipv4Addr::new(192, 168, i * 16, 0),
        prefix: 20,
    }));
    out
}

/// The first pool that overlaps nothing in `used`.
pub fn pick_subnet(pools: &[Subnet], used: &[Subnet]) -> Option<Subnet> {
    pools
        .iter()
        .find(|p| !used.iter().any(|u| u.overlaps(p)))
        .copied()
}

/// Addresses handed out in one network. The network and broadcast
/// addresses are never given; `range` narrows where container addresses
/// come from (`--ip-range`).
#[derive(Debug, Clone)]
pub struct Pool {
    pub subnet: Subnet,
    pub range: Subnet,
    taken: BTreeSet<Ipv4Addr>,
}

impl Pool {
    pub fn new(subnet: Subnet, range: Option<Subnet>) -> Pool {
        Pool {
            subnet: subnet.network(),
            range: range.unwrap_or(subnet).network(),
            taken: BTreeSet::new(),
        }
    }

    /// Reserves a given address; false when it is taken or outside.
    pub fn reserve(&mut self, ip: Ipv4Addr) -> bool {
        if !self.subnet.contains(ip) || ip == self.subnet.nth(0) || ip == self.subnet.broadcast() {
            return false;
        }
        self.taken.insert(ip)
    }

    /// The lowest free address of the range.
    pub fn allocate(&mut self) -> Option<Ipv4Addr> {
        let size = self.range.size().min(1 << 24) as u32;
        for n in 0..size {
            let ip = self.range.nth(n);
            if self.reserve(ip) {
                return Some(ip);
            }
        }
        None
    }

    pub fn release(&mut self, ip: Ipv4Addr) {
        self.taken.remove(&ip);
    }

    pub fn is_taken(&self, ip: Ipv4Addr) -> bool {
        self.taken.contains(&ip)
    }
}

/// An IPv6 network in CIDR form (for `--ipv6` networks).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Subnet6 {
    pub addr: std::net::Ipv6Addr,
    pub prefix: u8,
}

impl Subnet6 {
    pub fn parse(s: &str) -> Result<Subnet6, SubnetError> {
        let bad = || SubnetError::Invalid(s.to_string());
        let (a, p) = s.split_once('/').ok_or_else(bad)?;
        let addr: std::net::Ipv6Addr = a.parse().map_err(|_| bad())?;
        let prefix: u8 = p.parse().map_err(|_| bad())?;
        if prefix > 128 {
            return Err(bad());
        }
        Ok(Subnet6 { addr, prefix })
    }

    fn mask(&self) -> u128 {
        if self.prefix == 0 {
            0
        } else {
            u128::MAX << (128 - self.prefix as u32)
        }
    }

    pub fn network(&self) -> Subnet6 {
        Subnet6 {
            addr: (u128::from(self.addr) & self.mask()).into(),
            prefix: self.prefix,
        }
    }

    pub fn contains(&self, ip: std::net::Ipv6Addr) -> bool {
        u128::from(ip) & self.mask() == u128::from(self.addr) & self.mask()
    }

    pub fn overlaps(&self, other: &Subnet6) -> bool {
        let m = self.mask() & other.mask();
        u128::from(self.addr) & m == u128::from(other.addr) & m
    }

    pub fn nth(&self, n: u128) -> std::net::Ipv6Addr {
        (u128::from(self.addr) & self.mask()).wrapping_add(n).into()
    }
}

impl fmt::Display for Subnet6 {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.addr, self.prefix)
    }
}

/// IPv6 addresses handed out in one network, lowest first (the subnet
/// router anycast address, ::0, is never given).
#[derive(Debug, Clone)]
pub struct Pool6 {
    pub subnet: Subnet6,
    taken: BTreeSet<std::net::Ipv6Addr>,
}

impl Pool6 {
    pub fn new(subnet: Subnet6) -> Pool6 {
        Pool6 {
            subnet: subnet.network(),
            taken: BTreeSet::new(),
        }
    }

    pub fn reserve(&mut self, ip: std::net::Ipv6Addr) -> bool {
        self.subnet.contains(ip) && ip != self.subnet.nth(0) && self.taken.insert(ip)
    }

    pub fn allocate(&mut self) -> Option<std::net::Ipv6Addr> {
        // a search bounded like the IPv4 one: 2^24 candidates at most
        (1..(1u128 << 24))
            .map(|n| self.subnet.nth(n))
            .take_while(|ip| self.subnet.contains(*ip))
            .find(|ip| self.taken.insert(*ip))
    }

    pub fn release(&mut self, ip: std::net::Ipv6Addr) {
        self.taken.remove(&ip);
    }
}

/// Docker's MAC for an address: 02:42 and the four bytes of the IPv4.
pub fn mac_for(ip: Ipv4Addr) -> [u8; 6] {
    let o = ip.octets();
    [0x02, 0x42, o[0], o[1], o[2], o[3]]
}

pub fn mac_string(mac: &[u8; 6]) -> String {
    mac.iter()
        .map(|b| format!("{b:02x}"))
        .collect::<Vec<_>>()
        .join(":")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_compares_subnets() {
        let s = Subnet::parse("172.18.5.1/16").unwrap();
        assert_eq!(s.network().to_string(), "172.18.0.0/16");
        assert!(s.contains("172.18.200.3".parse().unwrap()));
        assert!(!s.contains("172.19.0.1".parse().unwrap()));
        assert!(s.overlaps(&Subnet::parse("172.18.3.0/24").unwrap()));
        assert!(!s.overlaps(&Subnet::parse("172.19.0.0/24").unwrap()));
        assert!(Subnet::parse("172.18.0.0/33").is_err());
        assert!(Subnet::parse("300.1.1.1/8").is_err());
        assert!(Subnet::parse("10.0.0.0").is_err());
    }

    #[test]
    fn picks_the_first_free_pool() {
        let used = [
            Subnet::parse("172.17.0.0/16").unwrap(),
            Subnet::parse("172.18.1.0/24").unwrap(),
        ];
        let s = pick_subnet(&default_pools(), &used).unwrap();
        assert_eq!(s.to_string(), "172.19.0.0/16");
    }

    #[test]
    fn allocates_lowest_free_and_skips_reserved() {
        let mut p = Pool::new(Subnet::parse("10.0.0.0/30").unwrap(), None);
        assert!(p.reserve("10.0.0.1".parse().unwrap()));
        assert_eq!(p.allocate(), Some("10.0.0.2".parse().unwrap()));
        // .3 is the broadcast address
        assert_eq!(p.allocate(), None);
        p.release("10.0.0.2".parse().unwrap());
        assert_eq!(p.allocate(), Some("10.0.0.2".parse().unwrap()));
        let mut r = Pool::new(
            Subnet::parse("10.1.0.0/16").unwrap(),
            Some(Subnet::parse("10.1.5.0/24").unwrap()),
        );
        assert_eq!(r.allocate(), Some("10.1.5.0".parse().unwrap()));
        assert_eq!(
            mac_string(&mac_for("172.17.0.2".parse().unwrap())),
            "02:42:ac:11:00:02"
        );
    }

    #[test]
    fn ipv6_subnets_and_pools() {
        let s = Subnet6::parse("fd00:55::1/64").unwrap();
        assert_eq!(s.network().to_string(), "fd00:55::/64");
        assert!(s.overlaps(&Subnet6::parse("fd00:55::/48").unwrap()));
        assert!(!s.overlaps(&Subnet6::parse("fd00:56::/64").unwrap()));
        assert!(Subnet6::parse("fd00::/129").is_err());
        let mut p = Pool6::new(s);
        assert!(p.reserve("fd00:55::1".parse().unwrap()));
        assert_eq!(p.allocate(), Some("fd00:55::2".parse().unwrap()));
        assert!(!p.reserve("fd00:56::1".parse().unwrap()));
    }
}
