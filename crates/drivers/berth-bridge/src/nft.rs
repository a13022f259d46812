//! berth's nftables table, `ip berth`, written as nft scripts and applied
//! atomically with `nft -f -`. The rules are fixed; what changes are the
//! elements of its sets and maps (bridges, subnets, published ports), so
//! a change never needs a rule handle and a daemon restart rewrites the
//! whole state in one transaction: nothing duplicated, nothing leaked.
//!
//! The chain `berth-user` is the user's (Docker's DOCKER-USER): the
//! forward chain jumps to it first, and berth creates it when missing but
//! never flushes or rewrites it.

use std::fmt::Write as _;
use std::io::Write as _;
use std::net::IpAddr;
use std::process::{Command, Stdio};

use anyhow::{Context, Result, bail};

use crate::{Subnet, Subnet6};

pub const TABLE: &str = "berth";
pub const USER_CHAIN: &str = "berth-user";

/// A bridge network as the rules see it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NetRules {
    pub bridge: String,
    pub subnet: Subnet,
    /// the IPv6 subnet of a `--ipv6` network
    pub subnet6: Option<Subnet6>,
    /// no traffic in or out of the network (`--internal`)
    pub internal: bool,
    /// masquerade traffic leaving the host (`enable_ip_masquerade`)
    pub masquerade: bool,
    /// containers of the network may talk to each other (`enable_icc`)
    pub icc: bool,
}

/// One published port: host (address, port) to container (address, port).
/// IPv4 rules go to table `ip berth`, IPv6 ones to `ip6 berth`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PortRule {
    pub proto: Proto,
    /// None: every local address (0.0.0.0, or :: for IPv6)
    pub host_ip: Option<IpAddr>,
    pub host_port: u16,
    pub container_ip: IpAddr,
    pub container_port: u16,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Proto {
    Tcp,
    Udp,
}

impl Proto {
    pub fn as_str(self) -> &'static str {
        match self {
            Proto::Tcp => "tcp",
            Proto::Udp => "udp",
        }
    }
}

/// The two tables: the same objects and rules, per address family.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Family {
    V4,
    V6,
}

impl Family {
    /// the table's family and the address type and match keyword
    fn names(self) -> (&'static str, &'static str) {
        match self {
            Family::V4 => ("ip", "ipv4_addr"),
            Family::V6 => ("ip6", "ipv6_addr"),
        }
    }

    fn of(ip: &IpAddr) -> Family {
        if ip.is_ipv4() { Family::V4 } else { Family::V6 }
    }
}

/// Both tables with their sets, maps and rules; the element-holding
/// objects are flushed and refilled with `nets` and `ports`.
pub fn full_script(nets: &[NetRules], ports: &[PortRule]) -> String {
    let mut s = String::new();
    for fam in [Family::V4, Family::V6] {
        s.push_str(&table_script(fam));
    }
    for n in nets {
        s.push_str(&network_elements("add", n));
    }
    for p in ports {
        s.push_str(&port_element("add", p));
    }
    s
}

fn table_script(fam: Family) -> String {
    let (f, addr) = fam.names();
    let t = format!("{f} {TABLE}");
    let mut s = String::new();
    let _ = writeln!(s, "add table {t}");
    let sets = [
        ("bridges", "type ifname;".to_string()),
        ("internal", "type ifname;".to_string()),
        ("masq_nets", format!("type {addr}; flags interval;")),
        ("all_nets", format!("type {addr}; flags interval;")),
        ("icc", "type ifname . ifname;".to_string()),
    ];
    for (name, spec) in sets {
        let _ = writeln!(s, "add set {t} {name} {{ {spec} }}");
        let _ = writeln!(s, "flush set {t} {name}");
    }
    for p in ["tcp", "udp"] {
        let _ = writeln!(
            s,
            "add map {t} ports_{p} {{ type inet_service : {addr} . inet_service; }}"
        );
        let _ = writeln!(
            s,
            "add map {t} hostports_{p} {{ type {addr} . inet_service : {addr} . inet_service; }}"
        );
        let _ = writeln!(s, "flush map {t} ports_{p}");
        let _ = writeln!(s, "flush map {t} hostports_{p}");
    }
    for (name, hook) in [
        (
            "prerouting",
            Some("type nat hook prerouting priority dstnat;"),
        ),
        ("output", Some("type nat hook output priority -100;")),
        (
            "postrouting",
            Some("type nat hook postrouting priority srcnat;"),
        ),
        ("forward", Some("type filter hook forward priority filter;")),
        ("publish", None),
    ] {
        match hook {
            Some(h) => {
                let _ = writeln!(s, "add chain {t} {name} {{ {h} }}");
            }
            None => {
                let _ = writeln!(s, "add chain {t} {name}");
            }
        }
        let _ = writeln!(s, "flush chain {t} {name}");
    }
    // created if missing, never flushed: the user's rules survive restarts
    let _ = writeln!(s, "add chain {t} {USER_CHAIN}");
    let rules = [
        "prerouting fib daddr type local jump publish".to_string(),
        // IPv6 loopback cannot be routed to a bridge (there is no
        // route_localnet for IPv6): [::1] is left to the daemon's proxy
        match fam {
            Family::V4 => "output fib daddr type local jump publish".to_string(),
            Family::V6 => "output ip6 daddr != ::1 fib daddr type local jump publish".to_string(),
        },
        format!("publish dnat {f} to {f} daddr . tcp dport map @hostports_tcp"),
        format!("publish dnat {f} to tcp dport map @ports_tcp"),
        format!("publish dnat {f} to {f} daddr . udp dport map @hostports_udp"),
        format!("publish dnat {f} to udp dport map @ports_udp"),
        format!("postrouting {f} saddr @masq_nets oifname != @bridges masquerade"),
        // the host's own connections to a published port (loopback too)
        "postrouting oifname @bridges fib saddr type local masquerade".to_string(),
        // hairpin: a container reaching a published port of its network
        format!("postrouting oifname @bridges ct status dnat {f} saddr @all_nets masquerade"),
        "forward jump berth-user".to_string(),
        "forward ct state established,related accept".to_string(),
        // within one network (bridged traffic comes here when the kernel's
        // br_netfilter is loaded, as it is for Docker)
        "forward iifname . oifname @icc accept".to_string(),
        "forward iifname @internal drop".to_string(),
        "forward oifname @internal drop".to_string(),
        // published ports, from anywhere (other networks included)
        "forward oifname @bridges ct status dnat accept".to_string(),
        // routed from one bridge to another: networks are isolated
        "forward iifname @bridges oifname @bridges drop".to_string(),
        "forward iifname @bridges accept".to_string(),
        // IPv6 neighbour discovery and the like reach containers
        match fam {
            Family::V6 => "forward oifname @bridges icmpv6 type { echo-request, nd-neighbor-solicit, nd-neighbor-advert } accept".to_string(),
            Family::V4 => String::new(),
        },
        "forward oifname @bridges drop".to_string(),
    ];
    for rule in rules.iter().filter(|r| !r.is_empty()) {
        let _ = writeln!(s, "add rule {t} {rule}");
    }
    s
}

/// The elements of one network in both tables (`verb`: add or delete).
pub fn network_elements(verb: &str, n: &NetRules) -> String {
    let mut s = String::new();
    let mut add = |fam: Family, net: String| {
        let t = format!("{} {TABLE}", fam.names().0);
        let _ = writeln!(s, "{verb} element {t} bridges {{ \"{}\" }}", n.bridge);
        let _ = writeln!(s, "{verb} element {t} all_nets {{ {net} }}");
        if n.icc {
            let _ = writeln!(
                s,
                "{verb} element {t} icc {{ \"{b}\" . \"{b}\" }}",
                b = n.bridge
            );
        }
        if n.internal {
            let _ = writeln!(s, "{verb} element {t} internal {{ \"{}\" }}", n.bridge);
        } else if n.masquerade {
            let _ = writeln!(s, "{verb} element {t} masq_nets {{ {net} }}");
        }
    };
    add(Family::V4, n.subnet.network().to_string());
    if let Some(s6) = n.subnet6 {
        add(Family::V6, s6.network().to_string());
    }
    s
}

/// The map element of one published port (`verb`: add or delete).
pub fn port_element(verb: &str, p: &PortRule) -> String {
    let proto = p.proto.as_str();
    let t = format!("{} {TABLE}", Family::of(&p.container_ip).names().0);
    // IPv6 addresses in a concatenation need no brackets in nft's syntax
    match (verb, p.host_ip) {
        ("delete", None) => format!("delete element {t} ports_{proto} {{ {} }}\n", p.host_port),
        ("delete", Some(ip)) => format!(
            "delete element {t} hostports_{proto} {{ {ip} . {} }}\n",
            p.host_port
        ),
        (_, None) => format!(
            "{verb} element {t} ports_{proto} {{ {} : {} . {} }}\n",
            p.host_port, p.container_ip, p.container_port
        ),
        (_, Some(ip)) => format!(
            "{verb} element {t} hostports_{proto} {{ {ip} . {} : {} . {} }}\n",
            p.host_port, p.container_ip, p.container_port
        ),
    }
}

/// Applies a script in one transaction.
pub fn apply(script: &str) -> Result<()> {
    if script.is_empty() {
        return Ok(());
    }
    let mut child = Command::new("nft")
        .args(["-f", "-"])
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .context("running nft (Debian package nftables)")?;
    child
        .stdin
        .take()
        .context("nft stdin")?
        .write_all(script.as_bytes())
        .context("writing to nft")?;
    let out = child.wait_with_output().context("waiting for nft")?;
    if !out.status.success() {
        bail!(
            "nft refused the rules: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    Ok(())
}

/// Interface names go into nft scripts and netlink: the kernel's rules
/// (1 to 15 bytes, no `/`, no whitespace), kept to characters that need no
/// quoting.
pub fn valid_ifname(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 15
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scripts_hold_the_elements() {
        let n = NetRules {
            bridge: "br-x".into(),
            subnet: Subnet::parse("10.5.0.1/16").unwrap(),
            subnet6: None,
            internal: false,
            masquerade: true,
            icc: true,
        };
        let p = PortRule {
            proto: Proto::Tcp,
            host_ip: None,
            host_port: 8080,
            container_ip: "10.5.0.2".parse().unwrap(),
            container_port: 80,
        };
        let s = full_script(std::slice::from_ref(&n), std::slice::from_ref(&p));
        assert!(s.contains("add element ip berth masq_nets { 10.5.0.0/16 }"));
        assert!(s.contains("add element ip berth ports_tcp { 8080 : 10.5.0.2 . 80 }"));
        assert!(s.contains("add chain ip berth berth-user\n"));
        assert!(!s.contains("flush chain ip berth berth-user"));
        let d = port_element(
            "delete",
            &PortRule {
                host_ip: Some("127.0.0.1".parse().unwrap()),
                ..p
            },
        );
        assert_eq!(
            d,
            "delete element ip berth hostports_tcp { 127.0.0.1 . 8080 }\n"
        );
        let internal = network_elements(
            "add",
            &NetRules {
                internal: true,
                ..n
            },
        );
        assert!(internal.contains("internal { \"br-x\" }"));
        assert!(!internal.contains("masq_nets"));
    }

    #[test]
    fn interface_names() {
        assert!(valid_ifname("br-0123456789ab"));
        assert!(!valid_ifname("a-name-too-long-x"));
        assert!(!valid_ifname("x\"; flush"));
        assert!(!valid_ifname(""));
    }
}
