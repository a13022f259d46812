//! Service VIPs without IPVS: in each container on swarm networks, one
//! nftables table DNATs a connection's first packet for a VIP to one of
//! the service's serving tasks, round robin (`numgen inc`, IPVS's rr).
//! Only the first packet of a connection passes NAT, so a connection stays
//! with its task; the table is written whole, in one transaction, each
//! time the backends change.

use std::fmt::Write;
use std::net::Ipv4Addr;
use std::path::Path;

use anyhow::Result;

const TABLE: &str = "berth-svc";

/// A VIP and the addresses behind it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Balanced {
    /// the service id; names its chain
    pub id: String,
    pub vip: Ipv4Addr,
    pub backends: Vec<Ipv4Addr>,
}

/// The table for a container: a verdict map from VIP to the service's
/// chain. A service without a serving task rejects at once, rather than
/// leaving its callers to time out.
pub fn script(services: &[Balanced]) -> String {
    script_with(services, "")
}

/// The table with more chains of the caller's (the mesh's return path).
pub fn script_with(services: &[Balanced], extra: &str) -> String {
    let mut s = format!("table ip {TABLE} {{}}\ndelete table ip {TABLE}\n");
    if services.is_empty() && extra.is_empty() {
        return s;
    }
    let _ = writeln!(s, "table ip {TABLE} {{");
    s.push_str(extra);
    if services.is_empty() {
        let _ = writeln!(s, "}}");
        return s;
    }
    for b in services {
        let rule = if b.backends.is_empty() {
            "reject".to_string()
        } else {
            let elems: Vec<String> = b
                .backends
                .iter()
                .enumerate()
                .map(|(i, ip)| format!("{i} : {ip}"))
                .collect();
            format!(
                "dnat ip to numgen inc mod {} map {{ {} }}",
                b.backends.len(),
                elems.join(", ")
            )
        };
        let _ = writeln!(s, "  chain {} {{\n    {rule}\n  }}", chain_name(&b.id));
    }
    let vips: Vec<String> = services
        .iter()
        .map(|b| format!("{} : jump {}", b.vip, chain_name(&b.id)))
        .collect();
    let _ = writeln!(
        s,
        "  map vips {{\n    type ipv4_addr : verdict\n    elements = {{ {} }}\n  }}",
        vips.join(", ")
    );
    let _ = writeln!(
        s,
        "  chain output {{\n    type nat hook output priority -100; policy accept;\n    ip daddr vmap @vips\n  }}"
    );
    let _ = writeln!(s, "}}");
    s
}

/// Service ids are the store's (alphanumeric); the chain name keeps 25.
fn chain_name(id: &str) -> String {
    let safe: String = id
        .chars()
        .filter(|c| c.is_ascii_alphanumeric())
        .take(25)
        .collect();
    format!("s_{safe}")
}

/// Loads a container's table inside its namespace: `nft` runs from a
/// thread that entered it, and so in it.
pub fn apply(netns: &Path, script: String) -> Result<()> {
    berth_bridge::links::in_netns(netns, move || berth_bridge::nft::apply(&script))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_vip_jumps_to_a_round_robin_over_its_backends() {
        let s = script(&[
            Balanced {
                id: "abc".into(),
                vip: "10.0.1.2".parse().unwrap(),
                backends: vec!["10.0.1.3".parse().unwrap(), "10.0.1.4".parse().unwrap()],
            },
            Balanced {
                id: "def".into(),
                vip: "10.0.1.9".parse().unwrap(),
                backends: vec![],
            },
        ]);
        assert!(s.starts_with("table ip berth-svc {}\ndelete table ip berth-svc\n"));
        assert!(s.contains(
            "chain s_abc {\n    dnat ip to numgen inc mod 2 map { 0 : 10.0.1.3, 1 : 10.0.1.4 }\n  }"
        ));
        assert!(s.contains("chain s_def {\n    reject\n  }"));
        assert!(s.contains("elements = { 10.0.1.2 : jump s_abc, 10.0.1.9 : jump s_def }"));
        assert_eq!(
            script(&[]),
            "table ip berth-svc {}\ndelete table ip berth-svc\n"
        );
    }
}
