//! IPv4 and IPv6 subnets and address pools, with Docker's default pools
//! and MAC addresses: the arithmetic of IP address management, apart from
//! any driver.

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
        // digits only, as Go's ParseCIDR (Rust's parse takes a leading '+')
        if !p.bytes().all(|b| b.is_ascii_digit()) {
            return Err(bad());
        }
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
        if !p.bytes().all(|b| b.is_ascii_digit()) {
            return Err(bad());
        }
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

/// The subnets `default-address-pools` (base, size) cut out, in order; the
/// built-in pools when there are none.
pub fn address_pools_of(pools: &[(String, u8)]) -> Vec<Subnet> {
    if pools.is_empty() {
        return default_pools();
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

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> Ipv4Addr {
        s.parse().unwrap()
    }

    fn net(s: &str) -> Subnet {
        Subnet::parse(s).unwrap()
    }

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

    #[test]
    fn subnet_parse_rejects_malformed_cidrs() {
        for bad in [
            "",
            "/24",
            "10.0.0.0/",
            "10.0.0/24",
            "10.0.0.0/abc",
            "10.0.0.0/-1",
            "10.0.0.0/+8",
            "10.0.0.0/ 8",
            "10.0.0.0/24/1",
            "fd00::/64",
            "10.0.0.256/24",
        ] {
            assert_eq!(
                Subnet::parse(bad),
                Err(SubnetError::Invalid(bad.to_string())),
                "{bad:?}"
            );
        }
        assert_eq!(
            SubnetError::Invalid("x/1".into()).to_string(),
            "invalid CIDR address: x/1"
        );
        // the extremes are valid, and the address keeps its host part
        assert_eq!(net("0.0.0.0/0").prefix, 0);
        let host = net("10.1.2.3/32");
        assert_eq!(host.addr, ip("10.1.2.3"));
        assert_eq!(host.to_string(), "10.1.2.3/32");
    }

    #[test]
    fn masks_sizes_and_edges_of_networks() {
        assert_eq!(net("0.0.0.0/0").mask(), 0);
        assert_eq!(net("10.0.0.0/8").mask(), 0xff00_0000);
        assert_eq!(net("10.0.0.0/32").mask(), u32::MAX);
        assert_eq!(net("0.0.0.0/0").size(), 1 << 32);
        assert_eq!(net("10.0.0.0/24").size(), 256);
        assert_eq!(net("10.0.0.7/32").size(), 1);
        let s = net("192.168.16.77/20");
        assert_eq!(s.network().addr, ip("192.168.16.0"));
        assert_eq!(s.nth(0), ip("192.168.16.0"));
        // nth counts from the network address, not from the host part given
        assert_eq!(s.nth(1), ip("192.168.16.1"));
        assert_eq!(s.nth(256), ip("192.168.17.0"));
        assert_eq!(s.broadcast(), ip("192.168.31.255"));
        assert_eq!(net("0.0.0.0/0").broadcast(), ip("255.255.255.255"));
        assert_eq!(net("10.9.9.9/32").broadcast(), ip("10.9.9.9"));
    }

    #[test]
    fn containment_is_by_prefix() {
        let s = net("10.20.0.0/14");
        assert!(s.contains(ip("10.20.0.0")));
        assert!(s.contains(ip("10.23.255.255")));
        assert!(!s.contains(ip("10.24.0.0")));
        assert!(!s.contains(ip("10.19.255.255")));
        assert!(net("0.0.0.0/0").contains(ip("203.0.113.9")));
        assert!(net("10.0.0.5/32").contains(ip("10.0.0.5")));
        assert!(!net("10.0.0.5/32").contains(ip("10.0.0.4")));
    }

    #[test]
    fn overlap_is_symmetric_and_nesting_counts() {
        let cases = [
            ("10.0.0.0/8", "10.200.3.0/24", true),
            ("172.18.0.0/16", "172.18.255.0/24", true),
            ("172.18.0.0/16", "172.19.0.0/16", false),
            ("192.168.0.0/20", "192.168.16.0/20", false),
            ("192.168.0.0/20", "192.168.15.255/32", true),
            ("0.0.0.0/0", "8.8.8.8/32", true),
            ("10.0.0.0/31", "10.0.0.2/31", false),
        ];
        for (a, b, want) in cases {
            assert_eq!(net(a).overlaps(&net(b)), want, "{a} vs {b}");
            assert_eq!(net(b).overlaps(&net(a)), want, "{b} vs {a}");
        }
    }

    #[test]
    fn default_pools_are_dockers() {
        let pools = default_pools();
        assert_eq!(pools.len(), 15 + 16);
        assert_eq!(pools[0].to_string(), "172.17.0.0/16");
        assert_eq!(pools[14].to_string(), "172.31.0.0/16");
        assert_eq!(pools[15].to_string(), "192.168.0.0/20");
        assert_eq!(pools[16].to_string(), "192.168.16.0/20");
        assert_eq!(pools[30].to_string(), "192.168.240.0/20");
        // no two default pools overlap, and each is a network address
        for (i, a) in pools.iter().enumerate() {
            assert_eq!(*a, a.network());
            for b in &pools[i + 1..] {
                assert!(!a.overlaps(b), "{a} overlaps {b}");
            }
        }
    }

    #[test]
    fn pick_subnet_skips_every_overlap_and_reports_exhaustion() {
        let pools = default_pools();
        // nothing used: the first pool
        assert_eq!(pick_subnet(&pools, &[]), Some(net("172.17.0.0/16")));
        // a wider host route covering several pools skips them all
        let used = [net("172.16.0.0/12")];
        assert_eq!(pick_subnet(&pools, &used), Some(net("192.168.0.0/20")));
        // a small subnet inside a /20 takes that whole /20
        let used = [net("172.16.0.0/12"), net("192.168.3.0/24")];
        assert_eq!(pick_subnet(&pools, &used), Some(net("192.168.16.0/20")));
        // a used subnet wider than a pool, starting mid-list
        let used = [net("172.16.0.0/12"), net("192.168.0.0/17")];
        assert_eq!(pick_subnet(&pools, &used), Some(net("192.168.128.0/20")));
        // all taken
        let used = [net("172.16.0.0/12"), net("192.168.0.0/16")];
        assert_eq!(pick_subnet(&pools, &used), None);
        assert_eq!(pick_subnet(&[], &[]), None);
    }

    #[test]
    fn pool_hands_out_lowest_first_and_never_network_or_broadcast() {
        let mut p = Pool::new(net("10.5.0.0/29"), None);
        let got: Vec<Ipv4Addr> = std::iter::from_fn(|| p.allocate()).collect();
        // .0 is the network, .7 the broadcast
        assert_eq!(
            got,
            (1..=6)
                .map(|i| Ipv4Addr::new(10, 5, 0, i))
                .collect::<Vec<_>>()
        );
        assert_eq!(p.allocate(), None);
        assert!(!p.reserve(ip("10.5.0.0")));
        assert!(!p.reserve(ip("10.5.0.7")));
        assert!(!p.is_taken(ip("10.5.0.0")));
        assert!(!p.is_taken(ip("10.5.0.7")));
    }

    #[test]
    fn pool_normalizes_a_subnet_given_with_a_host_part() {
        // a gateway-style CIDR still yields the network's addresses
        let mut p = Pool::new(net("10.7.3.1/24"), None);
        assert_eq!(p.subnet.to_string(), "10.7.3.0/24");
        assert_eq!(p.range.to_string(), "10.7.3.0/24");
        assert_eq!(p.allocate(), Some(ip("10.7.3.1")));
        assert_eq!(p.allocate(), Some(ip("10.7.3.2")));
    }

    #[test]
    fn release_makes_the_lowest_address_come_back() {
        let mut p = Pool::new(net("172.20.0.0/16"), None);
        assert!(p.reserve(ip("172.20.0.1"))); // the gateway
        let a = p.allocate().unwrap();
        let b = p.allocate().unwrap();
        let c = p.allocate().unwrap();
        assert_eq!(
            [a, b, c],
            [ip("172.20.0.2"), ip("172.20.0.3"), ip("172.20.0.4")]
        );
        p.release(b);
        assert!(!p.is_taken(b));
        assert!(p.is_taken(a) && p.is_taken(c));
        // the hole is filled before anything higher
        assert_eq!(p.allocate(), Some(b));
        assert_eq!(p.allocate(), Some(ip("172.20.0.5")));
        // releasing what was never taken, or is outside, changes nothing
        p.release(ip("172.20.9.9"));
        p.release(ip("10.0.0.1"));
        assert_eq!(p.allocate(), Some(ip("172.20.0.6")));
        // the gateway stays reserved through all of it
        assert!(p.is_taken(ip("172.20.0.1")));
    }

    #[test]
    fn requested_addresses_conflict_once_taken() {
        // `--ip`: a given address is reserved once, then refused
        let mut p = Pool::new(net("10.10.0.0/24"), None);
        assert!(p.reserve(ip("10.10.0.50")));
        assert!(!p.reserve(ip("10.10.0.50")));
        assert!(p.is_taken(ip("10.10.0.50")));
        // outside the subnet: refused, not recorded
        assert!(!p.reserve(ip("10.10.1.50")));
        assert!(!p.is_taken(ip("10.10.1.50")));
        // allocation goes around a requested address
        assert!(p.reserve(ip("10.10.0.1")));
        assert!(p.reserve(ip("10.10.0.3")));
        assert_eq!(p.allocate(), Some(ip("10.10.0.2")));
        assert_eq!(p.allocate(), Some(ip("10.10.0.4")));
        // after release the address can be requested again
        p.release(ip("10.10.0.50"));
        assert!(p.reserve(ip("10.10.0.50")));
    }

    #[test]
    fn ip_range_narrows_allocation_but_not_requests() {
        // `--ip-range` (and the default bridge's fixed-cidr)
        let mut p = Pool::new(net("10.1.0.0/16"), Some(net("10.1.5.128/25")));
        assert_eq!(p.range.to_string(), "10.1.5.128/25");
        assert!(p.reserve(ip("10.1.0.1"))); // gateway outside the range
        assert_eq!(p.allocate(), Some(ip("10.1.5.128")));
        assert_eq!(p.allocate(), Some(ip("10.1.5.129")));
        // an address asked for outside the range but inside the subnet
        assert!(p.reserve(ip("10.1.200.7")));
        // the range runs dry while the subnet has room
        let mut n = 2;
        while p.allocate().is_some() {
            n += 1;
        }
        assert_eq!(n, 128);
        assert!(p.is_taken(ip("10.1.5.255")));
        assert!(!p.is_taken(ip("10.1.6.0")));
        p.release(ip("10.1.5.200"));
        assert_eq!(p.allocate(), Some(ip("10.1.5.200")));
    }

    #[test]
    fn ip_range_at_the_end_of_the_subnet_skips_the_broadcast() {
        let mut p = Pool::new(net("10.2.0.0/24"), Some(net("10.2.0.252/30")));
        assert_eq!(p.allocate(), Some(ip("10.2.0.252")));
        assert_eq!(p.allocate(), Some(ip("10.2.0.253")));
        assert_eq!(p.allocate(), Some(ip("10.2.0.254")));
        // .255 is the subnet's broadcast
        assert_eq!(p.allocate(), None);
    }

    #[test]
    fn a_range_outside_the_subnet_gives_nothing() {
        let mut p = Pool::new(net("10.3.0.0/24"), Some(net("10.4.0.0/24")));
        assert_eq!(p.allocate(), None);
    }

    #[test]
    fn tiny_subnets() {
        // /32 and /31: no address is both not network and not broadcast
        assert_eq!(Pool::new(net("10.0.0.9/32"), None).allocate(), None);
        assert_eq!(Pool::new(net("10.0.0.8/31"), None).allocate(), None);
        let mut p = Pool::new(net("10.0.0.8/30"), None);
        assert_eq!(p.allocate(), Some(ip("10.0.0.9")));
        assert_eq!(p.allocate(), Some(ip("10.0.0.10")));
        assert_eq!(p.allocate(), None);
    }

    #[test]
    fn a_cloned_pool_is_independent() {
        let mut a = Pool::new(net("10.6.0.0/24"), None);
        assert_eq!(a.allocate(), Some(ip("10.6.0.1")));
        let mut b = a.clone();
        assert_eq!(b.allocate(), Some(ip("10.6.0.2")));
        assert!(!a.is_taken(ip("10.6.0.2")));
        assert_eq!(a.allocate(), Some(ip("10.6.0.2")));
    }

    #[test]
    fn ipv6_pool_allocates_release_and_edges() {
        let v6 = |s: &str| s.parse::<std::net::Ipv6Addr>().unwrap();
        let mut p = Pool6::new(Subnet6::parse("fd00:1:2:3::99/64").unwrap());
        assert_eq!(p.subnet.to_string(), "fd00:1:2:3::/64");
        // ::0 (the subnet-router anycast address) is never handed out
        assert!(!p.reserve(v6("fd00:1:2:3::")));
        assert!(p.reserve(v6("fd00:1:2:3::1"))); // gateway
        assert!(!p.reserve(v6("fd00:1:2:3::1")));
        assert_eq!(p.allocate(), Some(v6("fd00:1:2:3::2")));
        assert_eq!(p.allocate(), Some(v6("fd00:1:2:3::3")));
        p.release(v6("fd00:1:2:3::2"));
        assert_eq!(p.allocate(), Some(v6("fd00:1:2:3::2")));
        assert_eq!(p.allocate(), Some(v6("fd00:1:2:3::4")));
        // a /126 has ::1..::3 and then runs dry
        let mut small = Pool6::new(Subnet6::parse("fd00::/126").unwrap());
        let got: Vec<_> = std::iter::from_fn(|| small.allocate()).collect();
        assert_eq!(got, vec![v6("fd00::1"), v6("fd00::2"), v6("fd00::3")]);
        // a /128 has nothing to give
        assert_eq!(
            Pool6::new(Subnet6::parse("fd00::5/128").unwrap()).allocate(),
            None
        );
    }

    #[test]
    fn ipv6_subnet_parse_and_containment() {
        assert!(Subnet6::parse("10.0.0.0/8").is_err());
        assert!(Subnet6::parse("fd00::").is_err());
        assert!(Subnet6::parse("fd00::/x").is_err());
        assert!(Subnet6::parse("fd00::/+64").is_err());
        let all = Subnet6::parse("::/0").unwrap();
        assert!(all.contains("2001:db8::1".parse().unwrap()));
        let s = Subnet6::parse("2001:db8:aa::/48").unwrap();
        assert!(s.contains("2001:db8:aa:ffff::1".parse().unwrap()));
        assert!(!s.contains("2001:db8:ab::1".parse().unwrap()));
        assert_eq!(s.nth(0x10).to_string(), "2001:db8:aa::10");
    }

    #[test]
    fn macs_follow_the_address() {
        assert_eq!(mac_for(ip("10.0.0.1")), [0x02, 0x42, 10, 0, 0, 1]);
        assert_eq!(
            mac_string(&mac_for(ip("192.168.255.254"))),
            "02:42:c0:a8:ff:fe"
        );
        assert_eq!(mac_string(&[0; 6]), "00:00:00:00:00:00");
    }

    #[test]
    fn default_address_pools_are_cut_in_order() {
        assert_eq!(address_pools_of(&[]), default_pools());
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
            pick_subnet(&pools, &used).map(|s| s.to_string()),
            Some("10.50.2.0/24".into())
        );
        let used = vec![Subnet::parse("10.50.0.0/22").unwrap()];
        assert_eq!(pick_subnet(&pools, &used), None);
    }
}
