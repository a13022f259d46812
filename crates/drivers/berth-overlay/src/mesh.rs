//! The routing mesh without IPVS and without SNAT. Every node has a leg
//! on the ingress network (`berth-ingress`, in the node's own namespace);
//! a connection to a published port on any node address is DNATed there
//! straight to one of the service's tasks on ingress, round robin, and
//! keeps its client's address. In each task, the connection is marked
//! with the leg it came through (its source MAC), and the replies are
//! routed back through that leg, where conntrack undoes the DNAT. Only the
//! node's own clients (127.0.0.1, its own addresses) are masqueraded to
//! its leg address: their replies could not come back otherwise.

use std::fmt::Write;
use std::net::Ipv4Addr;
use std::path::Path;

use anyhow::{Context, Result};

use crate::links::mac_of;

/// The leg's name in the node's namespace.
pub const LEG: &str = "berth-ingress";
const HOST_TABLE: &str = "berth-mesh";
/// Marks, routing tables and rule preferences of the return path: one per
/// node's leg, numbered by the leg address's low 14 bits, so that a node
/// joining or leaving renumbers no other leg (conntrack keeps the marks of
/// connections under way).
const MARK_BASE: u32 = 0x0b00_0000;
const TABLE_BASE: u32 = 2000;
const RULE_PREF_BASE: u32 = 10000;
const SLOTS: u32 = 1 << 14;

fn slot(leg: Ipv4Addr) -> u32 {
    u32::from(leg) % SLOTS
}

/// A published port and the tasks behind it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Published {
    /// "tcp" or "udp"
    pub protocol: String,
    pub port: u16,
    pub target: u16,
    /// the serving tasks' ingress addresses
    pub backends: Vec<Ipv4Addr>,
}

/// The node's table: published ports DNATed to tasks, for traffic coming
/// in (prerouting) and the node's own (output); ports without a serving
/// task are left out (refused by the node).
pub fn host_script(ports: &[Published]) -> String {
    let mut s = format!("table ip {HOST_TABLE} {{}}\ndelete table ip {HOST_TABLE}\n");
    let live: Vec<&Published> = ports
        .iter()
        .filter(|p| !p.backends.is_empty() && matches!(p.protocol.as_str(), "tcp" | "udp"))
        .collect();
    if live.is_empty() {
        return s;
    }
    let _ = writeln!(s, "table ip {HOST_TABLE} {{");
    for p in &live {
        let elems: Vec<String> = p
            .backends
            .iter()
            .enumerate()
            .map(|(i, ip)| format!("{i} : {ip} . {}", p.target))
            .collect();
        let _ = writeln!(
            s,
            "  chain p_{proto}_{port} {{\n    meta l4proto {proto} dnat ip to numgen inc mod {n} map {{ {elems} }}\n  }}",
            proto = p.protocol,
            port = p.port,
            n = p.backends.len(),
            elems = elems.join(", ")
        );
    }
    let verdicts: Vec<String> = live
        .iter()
        .map(|p| {
            format!(
                "{proto} . {port} : jump p_{proto}_{port}",
                proto = p.protocol,
                port = p.port
            )
        })
        .collect();
    let _ = writeln!(
        s,
        "  map published {{\n    type inet_proto . inet_service : verdict\n    elements = {{ {} }}\n  }}",
        verdicts.join(", ")
    );
    let lookup = "fib daddr type local meta l4proto . th dport vmap @published";
    let _ = writeln!(
        s,
        "  chain prerouting {{\n    type nat hook prerouting priority dstnat - 1; policy accept;\n    {lookup}\n  }}"
    );
    let _ = writeln!(
        s,
        "  chain output {{\n    type nat hook output priority -101; policy accept;\n    {lookup}\n  }}"
    );
    let _ = writeln!(
        s,
        "  chain postrouting {{\n    type nat hook postrouting priority srcnat; policy accept;\n    oifname \"{LEG}\" fib saddr type local masquerade\n  }}"
    );
    let _ = writeln!(s, "}}");
    s
}

/// Loads the node's table (in the caller's namespace: the daemon's).
pub fn apply_host(ports: &[Published]) -> Result<()> {
    berth_bridge::nft::apply(&host_script(ports))
}

/// The nft part of a task's return path: new connections coming in on
/// `ifname` are marked with the leg they came through, and the task's
/// replies carry that mark into routing.
pub fn task_rules(ifname: &str, legs: &[Ipv4Addr]) -> String {
    if legs.is_empty() {
        return String::new();
    }
    let elems: Vec<String> = legs
        .iter()
        .map(|ip| format!("{} : {:#x}", mac_text(mac_of(*ip)), MARK_BASE + slot(*ip)))
        .collect();
    format!(
        "  map legs {{\n    type ether_addr : mark\n    elements = {{ {} }}\n  }}\n  chain ingress_in {{\n    type filter hook prerouting priority mangle; policy accept;\n    iifname \"{ifname}\" ct state new ct mark set ether saddr map @legs\n  }}\n  chain ingress_out {{\n    type route hook output priority mangle; policy accept;\n    ct mark != 0 meta mark set ct mark\n  }}\n",
        elems.join(", ")
    )
}

fn mac_text(m: [u8; 6]) -> String {
    m.iter()
        .map(|b| format!("{b:02x}"))
        .collect::<Vec<_>>()
        .join(":")
}

/// The routing part of a task's return path, run inside its namespace:
/// a rule and a table per leg whose default route goes back through it.
/// Rewritten whole (rules by fixed preference).
pub fn apply_task_routes(netns: &Path, ifname: &str, legs: &[Ipv4Addr]) -> Result<()> {
    let mut script = String::from("echo 0 > /proc/sys/net/ipv4/conf/all/rp_filter\n");
    let _ = writeln!(
        script,
        "echo 0 > /proc/sys/net/ipv4/conf/{ifname}/rp_filter"
    );
    // the rules of legs that are gone go too
    let _ = writeln!(
        script,
        "ip rule show | while IFS=: read pref rest; do if [ \"$pref\" -ge {RULE_PREF_BASE} ] && [ \"$pref\" -lt {} ]; then ip rule del pref \"$pref\"; fi; done",
        RULE_PREF_BASE + SLOTS
    );
    for ip in legs {
        let n = slot(*ip);
        let (mark, table, pref) = (MARK_BASE + n, TABLE_BASE + n, RULE_PREF_BASE + n);
        let _ = writeln!(
            script,
            "ip rule add pref {pref} fwmark {mark:#x} lookup {table}\nip route replace default via {ip} dev {ifname} table {table}"
        );
    }
    let ns = netns.to_path_buf();
    berth_bridge::links::in_netns(&ns, move || {
        let out = std::process::Command::new("sh")
            .args(["-c", &script])
            .output()
            .context("running ip (Debian package iproute2)")?;
        if !out.status.success() {
            anyhow::bail!(
                "setting the mesh's return routes: {}",
                String::from_utf8_lossy(&out.stderr).trim()
            );
        }
        Ok(())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn published_ports_jump_to_their_tasks_and_idle_ones_are_left_out() {
        let s = host_script(&[
            Published {
                protocol: "tcp".into(),
                port: 8080,
                target: 80,
                backends: vec!["10.0.0.5".parse().unwrap(), "10.0.0.7".parse().unwrap()],
            },
            Published {
                protocol: "udp".into(),
                port: 53,
                target: 53,
                backends: vec![],
            },
        ]);
        assert!(s.contains(
            "meta l4proto tcp dnat ip to numgen inc mod 2 map { 0 : 10.0.0.5 . 80, 1 : 10.0.0.7 . 80 }"
        ));
        assert!(s.contains("elements = { tcp . 8080 : jump p_tcp_8080 }"));
        assert!(!s.contains("p_udp_53"));
        assert!(s.contains("oifname \"berth-ingress\" fib saddr type local masquerade"));
    }

    #[test]
    fn each_leg_has_its_mark() {
        let r = task_rules(
            "eth0",
            &["10.0.0.2".parse().unwrap(), "10.0.0.3".parse().unwrap()],
        );
        // numbered by the legs' addresses, not their places in the list
        assert!(r.contains("02:42:0a:00:00:02 : 0xb000002, 02:42:0a:00:00:03 : 0xb000003"));
        assert!(r.contains("iifname \"eth0\" ct state new ct mark set ether saddr map @legs"));
    }
}
