//! The netlink side: a macvlan device made on the parent in the daemon's
//! namespace, moved into the container's and given its name, address and
//! default route there.

use std::net::{IpAddr, Ipv4Addr};
use std::os::fd::AsRawFd;
use std::path::Path;
use std::time::Duration;

use anyhow::{Context, Result, anyhow, bail};
use berth_bridge::links::{
    add_address, add_default_route, errno, in_netns, index_of, with_netlink,
};
use rtnetlink::packet_route::link::MacVlanMode;
use rtnetlink::{Handle, LinkMacVlan, LinkUnspec};

/// `-o macvlan_mode`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    Bridge,
    Private,
    Vepa,
    Passthru,
}

impl Mode {
    fn netlink(self) -> MacVlanMode {
        match self {
            Mode::Bridge => MacVlanMode::Bridge,
            Mode::Private => MacVlanMode::Private,
            Mode::Vepa => MacVlanMode::Vepa,
            Mode::Passthru => MacVlanMode::Passthrough,
        }
    }
}

/// The MAC libnetwork gives an endpoint: `02:42` and the IPv4 address.
pub fn mac_of(ip: Ipv4Addr) -> [u8; 6] {
    let o = ip.octets();
    [0x02, 0x42, o[0], o[1], o[2], o[3]]
}

pub fn exists(name: &str) -> Result<bool> {
    berth_bridge::links::link_exists(name)
}

#[derive(Clone, Debug)]
pub struct Plug {
    pub parent: String,
    pub mode: Mode,
    /// its name in the container (`eth0`)
    pub container_if: String,
    pub ip: Ipv4Addr,
    pub prefix: u8,
    pub mac: [u8; 6],
    /// the default route's next hop, for the container's primary network
    pub gateway: Option<Ipv4Addr>,
}

/// Makes the container's macvlan device. It is made under a temporary
/// name (the container's `eth0` may be taken on the host) and renamed in
/// the container's namespace.
pub fn plug(container_ns: &Path, p: &Plug) -> Result<()> {
    let cns = std::fs::File::open(container_ns)
        .with_context(|| format!("opening network namespace {}", container_ns.display()))?;
    let tmp = format!("mv{}", &berth_core::random_id()[..8]);
    let outer = (p.clone(), tmp.clone());
    with_netlink(|h| async move {
        let (p, tmp) = outer;
        let parent = index_of(&h, &p.parent).await?.with_context(|| {
            format!(
                "the requested parent interface {} was not found on the Docker host",
                p.parent
            )
        })?;
        let link = LinkMacVlan::new(&tmp, parent, p.mode.netlink())
            .address(p.mac.to_vec())
            .setns_by_fd(cns.as_raw_fd())
            .build();
        h.link()
            .add(link)
            .execute()
            .await
            .map_err(|e| anyhow!("failed to create the macvlan port: {e}"))
    })?;
    let inner = (p.clone(), tmp);
    in_netns(container_ns, move || {
        with_netlink(|h| async move {
            let (p, tmp) = inner;
            let i = index_of(&h, &tmp)
                .await?
                .with_context(|| format!("{tmp} not in the namespace"))?;
            let made = configure(&h, i, &p).await;
            if made.is_err() {
                // half made: the device goes, by its index whatever its name
                let _ = h.link().del(i).execute().await;
            }
            made
        })
    })
}

/// Names the container's device, gives it its address, sets it up and
/// routes through it.
async fn configure(h: &Handle, i: u32, p: &Plug) -> Result<()> {
    h.link()
        .set(
            LinkUnspec::new_with_index(i)
                .name(p.container_if.clone())
                .build(),
        )
        .execute()
        .await
        .map_err(|e| anyhow!("naming the macvlan device {}: {e}", p.container_if))?;
    add_address(h, i, IpAddr::V4(p.ip), p.prefix).await?;
    bring_up(h, i, &p.parent).await?;
    if let Some(gw) = p.gateway {
        add_default_route(h, i, gw).await?;
    }
    Ok(())
}

/// Sets the device up, which needs its MAC free on the parent. The MAC
/// follows the address, and the address is free, but the device of its
/// last holder may still be in a namespace the kernel is tearing down (a
/// container stopped after a daemon restart, when the driver no longer
/// knew where its device was): wait for it to go.
async fn bring_up(h: &Handle, index: u32, parent: &str) -> Result<()> {
    for _ in 0..100 {
        let up = LinkUnspec::new_with_index(index).up().build();
        match h.link().set(up).execute().await {
            Ok(()) => return Ok(()),
            Err(e) if errno(&e) == Some(libc::EADDRINUSE) => {
                std::thread::sleep(Duration::from_millis(50));
            }
            Err(e) => bail!("setting the macvlan device up: {e}"),
        }
    }
    bail!("the endpoint's MAC address is still in use on parent {parent} after 5 seconds")
}

/// Removes the container's macvlan device, if it is still there.
pub fn unplug(container_ns: &Path, ifname: &str) -> Result<()> {
    let name = ifname.to_string();
    in_netns(container_ns, move || {
        berth_bridge::links::delete_link(&name)
    })
}
