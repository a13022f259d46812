//! The overlay's netlink work: a network's namespace with its bridge and
//! VXLAN device, veths from it into containers, and the static neighbour
//! and forwarding entries that stand for every remote task.

use std::net::{IpAddr, Ipv4Addr};
use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, anyhow, bail};
use berth_bridge::links::{
    add_address, create_netns, ensure_bridge, errno, in_netns, index_of, set_up, with_netlink,
};
use rtnetlink::packet_route::link::{InfoData, InfoVeth};
use rtnetlink::packet_route::neighbour::NeighbourFlags;
use rtnetlink::{LinkUnspec, LinkVeth, LinkVxlan};

/// The bridge inside each network's namespace: the namespace is the
/// network's own, so the name never clashes.
pub const BRIDGE: &str = "br0";

/// What a network's namespace is made of on this node.
#[derive(Clone, Debug)]
pub struct NetLayout {
    pub ns: PathBuf,
    /// the VXLAN device, `vx-<vni hex>-<id5>` as libnetwork names it: it
    /// is made in the daemon's namespace, where names must be unique
    pub vxlan: String,
    pub vni: u32,
    pub port: u16,
    pub gateway: Ipv4Addr,
    pub prefix: u8,
    pub mtu: u32,
}

/// libnetwork's MAC for an overlay address: 02:42 and the IPv4 bytes, so
/// a peer's MAC follows from its address and needs no lookup.
pub fn mac_of(ip: Ipv4Addr) -> [u8; 6] {
    let o = ip.octets();
    [0x02, 0x42, o[0], o[1], o[2], o[3]]
}

/// Makes the network's namespace, bridge and VXLAN device, or completes
/// what a crash left half made.
pub fn ensure_network(l: &NetLayout) -> Result<()> {
    if !l.ns.exists() {
        create_netns(&l.ns)?;
    }
    let (gw, prefix) = (l.gateway, l.prefix);
    in_netns(&l.ns, move || {
        ensure_bridge(BRIDGE, Some(gw), prefix, None).map(|_| ())
    })?;
    let vx = l.vxlan.clone();
    let present = in_netns(&l.ns, move || berth_bridge::links::link_exists(&vx))?;
    if !present {
        create_vxlan_into(l)?;
    }
    let vx = l.vxlan.clone();
    in_netns(&l.ns, move || {
        with_netlink(|h| async move {
            let br = index_of(&h, BRIDGE).await?.context("no bridge")?;
            let i = index_of(&h, &vx).await?.context("no vxlan device")?;
            h.link()
                .set(LinkUnspec::new_with_index(i).controller(br).build())
                .execute()
                .await
                .map_err(|e| anyhow!("putting {vx} on the bridge: {e}"))?;
            set_up(&h, i).await
        })
    })
}

/// Replaces the network's VXLAN device (another port): the new one has no
/// peers until they are written again.
pub fn recreate_vxlan(l: &NetLayout) -> Result<()> {
    let vx = l.vxlan.clone();
    in_netns(&l.ns, move || berth_bridge::links::delete_link(&vx))?;
    ensure_network(l)
}

/// Creates the VXLAN device in the daemon's namespace, where its UDP
/// socket stays (on the underlay), and moves it into the network's. No
/// learning: every peer is written from the managers' view.
fn create_vxlan_into(l: &NetLayout) -> Result<()> {
    let ns = std::fs::File::open(&l.ns)
        .with_context(|| format!("opening network namespace {}", l.ns.display()))?;
    let l = l.clone();
    with_netlink(|h| async move {
        let make = || {
            LinkVxlan::new(&l.vxlan, l.vni)
                .port(l.port)
                .learning(false)
                .proxy(true)
                .mtu(l.mtu)
                .build()
        };
        if let Err(e) = h.link().add(make()).execute().await {
            if errno(&e) != Some(libc::EEXIST) {
                bail!("creating vxlan device {} (vni {}): {e}", l.vxlan, l.vni);
            }
            // a device a crash left behind, by name; or, by VNI, one in a
            // namespace the kernel is still tearing down: wait for it
            if let Some(i) = index_of(&h, &l.vxlan).await? {
                let _ = h.link().del(i).execute().await;
            }
            let mut tries = 0;
            while let Err(e) = h.link().add(make()).execute().await {
                tries += 1;
                if errno(&e) != Some(libc::EEXIST) || tries >= 50 {
                    bail!(
                        "creating vxlan device {} (vni {}): {e}; another VXLAN device may use this id and port",
                        l.vxlan,
                        l.vni
                    );
                }
                std::thread::sleep(std::time::Duration::from_millis(100));
            }
        }
        let i = index_of(&h, &l.vxlan)
            .await?
            .with_context(|| format!("{} vanished", l.vxlan))?;
        h.link()
            .set(
                LinkUnspec::new_with_index(i)
                    .setns_by_fd(ns.as_raw_fd())
                    .build(),
            )
            .execute()
            .await
            .map_err(|e| anyhow!("moving {} into its network namespace: {e}", l.vxlan))
    })
}

/// One container interface on an overlay network.
#[derive(Clone, Debug)]
pub struct Plug {
    pub host_if: String,
    pub container_if: String,
    pub ip: Ipv4Addr,
    pub prefix: u8,
    pub mtu: u32,
}

/// A veth pair made inside the network's namespace, its host end on the
/// bridge, its other end moved into the container's with the address. No
/// default route: that is the gateway bridge's endpoint's.
pub fn plug(l: &NetLayout, container_ns: &Path, p: &Plug) -> Result<()> {
    let cns = std::fs::File::open(container_ns)
        .with_context(|| format!("opening network namespace {}", container_ns.display()))?;
    let outer = p.clone();
    in_netns(&l.ns, move || {
        with_netlink(|h| async move {
            let br = index_of(&h, BRIDGE).await?.context("no bridge")?;
            let peer = LinkUnspec::new_with_name(&outer.container_if)
                .address(mac_of(outer.ip).to_vec())
                .mtu(outer.mtu)
                .setns_by_fd(cns.as_raw_fd());
            let veth = LinkVeth::new(&outer.host_if, &outer.container_if)
                .controller(br)
                .mtu(outer.mtu)
                .up()
                .set_info_data(InfoData::Veth(InfoVeth::Peer(peer.build())))
                .build();
            h.link()
                .add(veth)
                .execute()
                .await
                .map_err(|e| anyhow!("creating veth {}: {e}", outer.host_if))
        })
    })?;
    let inner = p.clone();
    in_netns(container_ns, move || {
        with_netlink(|h| async move {
            let i = index_of(&h, &inner.container_if)
                .await?
                .with_context(|| format!("{} not in the namespace", inner.container_if))?;
            add_address(&h, i, IpAddr::V4(inner.ip), inner.prefix).await?;
            set_up(&h, i).await
        })
    })
}

/// Removes the host end of a container's veth (and so the pair), if it
/// is still there.
pub fn unplug(l: &NetLayout, host_if: &str) -> Result<()> {
    let name = host_if.to_string();
    in_netns(&l.ns, move || berth_bridge::links::delete_link(&name))
}

/// A remote task: its address and its node's VXLAN endpoint.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Peer {
    pub ip: Ipv4Addr,
    pub vtep: Ipv4Addr,
}

/// Writes (or replaces) the neighbour entry (IP → MAC, answered by the
/// VXLAN's ARP proxy) and the forwarding entry (MAC → node) of each peer
/// in `add`, and removes those of `remove`.
pub fn program_peers(l: &NetLayout, add: Vec<Peer>, remove: Vec<Peer>) -> Result<()> {
    let vx = l.vxlan.clone();
    in_netns(&l.ns, move || {
        with_netlink(|h| async move {
            let i = index_of(&h, &vx).await?.context("no vxlan device")?;
            for p in &add {
                let mac = mac_of(p.ip);
                h.neighbours()
                    .add(i, IpAddr::V4(p.ip))
                    .link_layer_address(&mac)
                    .replace()
                    .execute()
                    .await
                    .map_err(|e| anyhow!("adding neighbour {}: {e}", p.ip))?;
                h.neighbours()
                    .add_bridge(i, &mac)
                    .flags(NeighbourFlags::Own)
                    .destination(IpAddr::V4(p.vtep))
                    .replace()
                    .execute()
                    .await
                    .map_err(|e| anyhow!("adding forwarding entry {} via {}: {e}", p.ip, p.vtep))?;
            }
            for p in &remove {
                let mac = mac_of(p.ip);
                let mut neigh = h.neighbours().add(i, IpAddr::V4(p.ip));
                let msg = neigh.message_mut().clone();
                ignore_missing(h.neighbours().del(msg).execute().await)?;
                let mut fdb = h
                    .neighbours()
                    .add_bridge(i, &mac)
                    .flags(NeighbourFlags::Own)
                    .destination(IpAddr::V4(p.vtep));
                let msg = fdb.message_mut().clone();
                ignore_missing(h.neighbours().del(msg).execute().await)?;
            }
            Ok(())
        })
    })
}

fn ignore_missing(r: std::result::Result<(), rtnetlink::Error>) -> Result<()> {
    match r {
        Ok(()) => Ok(()),
        Err(e) if errno(&e) == Some(libc::ENOENT) => Ok(()),
        Err(e) => Err(anyhow!("removing a peer entry: {e}")),
    }
}
