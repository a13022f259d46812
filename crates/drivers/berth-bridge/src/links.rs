//! Links through rtnetlink: bridges, veth pairs, addresses and routes, and
//! network namespaces kept as bind-mounted files (as `ip netns` does), so a
//! container's namespace outlives the daemon and can be found again.

use std::future::Future;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, anyhow, bail};
use futures_util::TryStreamExt;
use rtnetlink::packet_route::link::{InfoData, InfoVeth};
use rtnetlink::{Handle, LinkBridge, LinkBridgePort, LinkUnspec, LinkVeth, RouteMessageBuilder};

use crate::Subnet;

/// Runs netlink requests on a runtime of their own, on a scoped thread
/// that inherits the caller's network namespace: callers may be async
/// tasks, plain threads, or threads inside another namespace.
pub fn with_netlink<T, F, Fut>(f: F) -> Result<T>
where
    T: Send,
    F: FnOnce(Handle) -> Fut + Send,
    Fut: Future<Output = Result<T>>,
{
    std::thread::scope(|s| {
        s.spawn(|| {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_io()
                .build()
                .context("starting a netlink runtime")?;
            rt.block_on(async {
                let (conn, handle, _) =
                    rtnetlink::new_connection().context("opening a netlink socket")?;
                tokio::spawn(conn);
                f(handle).await
            })
        })
        .join()
        .map_err(|_| anyhow!("netlink thread panicked"))?
    })
}

pub fn errno(e: &rtnetlink::Error) -> Option<i32> {
    match e {
        rtnetlink::Error::NetlinkError(m) => Some(-m.raw_code()),
        _ => None,
    }
}

pub async fn index_of(h: &Handle, name: &str) -> Result<Option<u32>> {
    let mut links = h.link().get().match_name(name.to_string()).execute();
    match links.try_next().await {
        Ok(Some(l)) => Ok(Some(l.header.index)),
        Ok(None) => Ok(None),
        Err(e) if errno(&e) == Some(libc::ENODEV) => Ok(None),
        Err(e) => Err(anyhow!("looking up link {name}: {e}")),
    }
}

/// The IPv4 default route via `gw` out of link `index`; one already
/// there is fine.
pub async fn add_default_route(h: &Handle, index: u32, gw: Ipv4Addr) -> Result<()> {
    let route = RouteMessageBuilder::<Ipv4Addr>::new()
        .gateway(gw)
        .output_interface(index)
        .build();
    match h.route().add(route).execute().await {
        Ok(()) => Ok(()),
        Err(e) if errno(&e) == Some(libc::EEXIST) => Ok(()),
        Err(e) => bail!("adding the default route via {gw}: {e}"),
    }
}

pub async fn add_address(h: &Handle, index: u32, ip: IpAddr, prefix: u8) -> Result<()> {
    let mut req = h.address().add(index, ip, prefix);
    if ip.is_ipv6() {
        // no duplicate address detection: the address is ours to give, and
        // DAD would keep it unusable for a second or more
        req.message_mut().attributes.push(
            rtnetlink::packet_route::address::AddressAttribute::Flags(
                rtnetlink::packet_route::address::AddressFlags::Nodad,
            ),
        );
    }
    match req.execute().await {
        Ok(()) => Ok(()),
        Err(e) if errno(&e) == Some(libc::EEXIST) => Ok(()),
        Err(e) => Err(anyhow!("adding address {ip}/{prefix}: {e}")),
    }
}

pub async fn set_up(h: &Handle, index: u32) -> Result<()> {
    h.link()
        .set(LinkUnspec::new_with_index(index).up().build())
        .execute()
        .await
        .map_err(|e| anyhow!("setting link {index} up: {e}"))
}

/// Whether the link called `name` is a bridge.
async fn is_bridge(h: &Handle, name: &str) -> Result<bool> {
    use rtnetlink::packet_route::link::{InfoKind, LinkAttribute, LinkInfo};
    let mut links = h.link().get().match_name(name.to_string()).execute();
    let Some(l) = links
        .try_next()
        .await
        .map_err(|e| anyhow!("looking up link {name}: {e}"))?
    else {
        return Ok(false);
    };
    Ok(l.attributes.iter().any(|a| {
        matches!(a, LinkAttribute::LinkInfo(infos)
            if infos.iter().any(|i| matches!(i, LinkInfo::Kind(InfoKind::Bridge))))
    }))
}

/// Makes sure the bridge exists, carries the gateway addresses and is up.
/// Answers whether it had to be created. A link of that name that is not
/// a bridge is refused, never taken over.
pub fn ensure_bridge(
    name: &str,
    gateway: Option<Ipv4Addr>,
    prefix: u8,
    gateway6: Option<(Ipv6Addr, u8)>,
) -> Result<bool> {
    let name = name.to_string();
    with_netlink(|h| async move {
        let mut created = false;
        let index = match index_of(&h, &name).await? {
            Some(i) => {
                if !is_bridge(&h, &name).await? {
                    bail!("a link named {name} exists and is not a bridge");
                }
                i
            }
            None => {
                created = true;
                match h.link().add(LinkBridge::new(&name).build()).execute().await {
                    Ok(()) => {}
                    Err(e) if errno(&e) == Some(libc::EEXIST) => {}
                    Err(e) => bail!("creating bridge {name}: {e}"),
                }
                index_of(&h, &name)
                    .await?
                    .with_context(|| format!("bridge {name} vanished"))?
            }
        };
        if let Some(gw) = gateway {
            add_address(&h, index, IpAddr::V4(gw), prefix).await?;
        }
        if let Some((gw, p)) = gateway6 {
            add_address(&h, index, IpAddr::V6(gw), p).await?;
        }
        set_up(&h, index).await?;
        Ok(created)
    })
}

/// Removes a link if it exists (a bridge, or the host end of a veth).
pub fn delete_link(name: &str) -> Result<()> {
    let name = name.to_string();
    with_netlink(|h| async move {
        if let Some(i) = index_of(&h, &name).await? {
            match h.link().del(i).execute().await {
                Ok(()) => {}
                Err(e) if errno(&e) == Some(libc::ENODEV) => {}
                Err(e) => bail!("deleting link {name}: {e}"),
            }
        }
        Ok(())
    })
}

pub fn link_exists(name: &str) -> Result<bool> {
    let name = name.to_string();
    with_netlink(|h| async move { Ok(index_of(&h, &name).await?.is_some()) })
}

/// Runs `f` on a new thread that has entered the namespace at `netns`;
/// the thread ends with `f`, so no other work ever runs in it.
pub fn in_netns<T: Send + 'static>(
    netns: &Path,
    f: impl FnOnce() -> Result<T> + Send + 'static,
) -> Result<T> {
    let file = std::fs::File::open(netns)
        .with_context(|| format!("opening network namespace {}", netns.display()))?;
    std::thread::Builder::new()
        .name("netns".into())
        .spawn(move || {
            nix::sched::setns(&file, nix::sched::CloneFlags::CLONE_NEWNET)
                .context("entering the network namespace")?;
            f()
        })
        .context("starting a netns thread")?
        .join()
        .map_err(|_| anyhow!("netns thread panicked"))?
}

/// Creates a network namespace and pins it at `path` (a bind mount of
/// the namespace file), with its loopback up.
pub fn create_netns(path: &Path) -> Result<()> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)?;
    }
    std::fs::File::create(path).with_context(|| format!("creating {}", path.display()))?;
    let target = path.to_path_buf();
    let made = std::thread::Builder::new()
        .name("netns-new".into())
        .spawn(move || -> Result<()> {
            nix::sched::unshare(nix::sched::CloneFlags::CLONE_NEWNET)
                .context("unsharing a network namespace")?;
            nix::mount::mount(
                Some("/proc/thread-self/ns/net"),
                &target,
                None::<&str>,
                nix::mount::MsFlags::MS_BIND,
                None::<&str>,
            )
            .context("pinning the network namespace")?;
            with_netlink(|h| async move {
                let lo = index_of(&h, "lo").await?.context("no loopback")?;
                set_up(&h, lo).await
            })
        })
        .context("starting a netns thread")?
        .join()
        .map_err(|_| anyhow!("netns thread panicked"))?;
    if let Err(e) = made {
        let _ = remove_netns(path);
        return Err(e);
    }
    Ok(())
}

/// Unpins a network namespace; the kernel frees it (and the veth ends
/// inside) once no process uses it.
pub fn remove_netns(path: &Path) -> Result<()> {
    match nix::mount::umount2(path, nix::mount::MntFlags::MNT_DETACH) {
        Ok(()) | Err(nix::errno::Errno::EINVAL) | Err(nix::errno::Errno::ENOENT) => {}
        Err(e) => return Err(anyhow!("unmounting {}: {e}", path.display())),
    }
    match std::fs::remove_file(path) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(anyhow!("removing {}: {e}", path.display())),
    }
}

/// One container's interface on a bridge network.
#[derive(Debug, Clone)]
pub struct Endpoint {
    pub bridge: String,
    /// the host end of the veth pair
    pub host_if: String,
    /// the name inside the container: eth0, eth1, ...
    pub container_if: String,
    pub ip: Ipv4Addr,
    pub prefix: u8,
    /// the default route's next hop; None for internal networks
    pub gateway: Option<Ipv4Addr>,
    pub mac: [u8; 6],
    /// `com.docker.network.driver.mtu`; None keeps the kernel's 1500
    pub mtu: Option<u32>,
    /// the IPv6 address and prefix on `--ipv6` networks
    pub ip6: Option<(Ipv6Addr, u8)>,
    /// the IPv6 default route's next hop
    pub gateway6: Option<Ipv6Addr>,
}

/// Plugs a container's namespace into a bridge: a veth pair whose host
/// end joins the bridge (hairpin on, so a container reaches its own
/// published ports) and whose other end, created inside the namespace,
/// gets the address and the default route.
pub fn attach(netns: &Path, ep: &Endpoint) -> Result<()> {
    let ns = std::fs::File::open(netns)
        .with_context(|| format!("opening network namespace {}", netns.display()))?;
    let host = ep.clone();
    let ns_fd = ns.as_raw_fd();
    with_netlink(|h| async move {
        let bridge = index_of(&h, &host.bridge)
            .await?
            .with_context(|| format!("bridge {} not found", host.bridge))?;
        let mut peer = LinkUnspec::new_with_name(&host.container_if)
            .address(host.mac.to_vec())
            .setns_by_fd(ns_fd);
        let mut veth = LinkVeth::new(&host.host_if, &host.container_if)
            .controller(bridge)
            .up();
        if let Some(m) = host.mtu {
            peer = peer.mtu(m);
            veth = veth.mtu(m);
        }
        let msg = veth
            .set_info_data(InfoData::Veth(InfoVeth::Peer(peer.build())))
            .build();
        h.link()
            .add(msg)
            .execute()
            .await
            .map_err(|e| anyhow!("creating veth {}: {e}", host.host_if))?;
        let port = index_of(&h, &host.host_if)
            .await?
            .with_context(|| format!("veth {} vanished", host.host_if))?;
        h.link()
            .set_port(LinkBridgePort::new(port).hairpin(true).build())
            .execute()
            .await
            .map_err(|e| anyhow!("setting hairpin on {}: {e}", host.host_if))?;
        Ok(())
    })?;
    drop(ns);
    let inner = ep.clone();
    in_netns(netns, move || {
        with_netlink(|h| async move {
            let index = index_of(&h, &inner.container_if)
                .await?
                .with_context(|| format!("{} not in the namespace", inner.container_if))?;
            add_address(&h, index, IpAddr::V4(inner.ip), inner.prefix).await?;
            if let Some((ip6, p6)) = inner.ip6 {
                add_address(&h, index, IpAddr::V6(ip6), p6).await?;
            }
            set_up(&h, index).await?;
            if let Some(gw6) = inner.gateway6 {
                let route = RouteMessageBuilder::<Ipv6Addr>::new()
                    .gateway(gw6)
                    .output_interface(index)
                    .build();
                match h.route().add(route).execute().await {
                    Ok(()) => {}
                    Err(e) if errno(&e) == Some(libc::EEXIST) => {}
                    Err(e) => bail!("adding the IPv6 default route via {gw6}: {e}"),
                }
            }
            if let Some(gw) = inner.gateway {
                add_default_route(&h, index, gw).await?;
            }
            Ok(())
        })
    })
}

/// Binds a UDP socket inside the namespace at `netns` (the embedded DNS
/// server's 127.0.0.11:53); the socket keeps its namespace wherever it is
/// then used.
pub fn bind_udp_in(netns: &Path, addr: std::net::SocketAddr) -> Result<std::net::UdpSocket> {
    in_netns(netns, move || {
        let s = std::net::UdpSocket::bind(addr).with_context(|| format!("binding {addr}"))?;
        s.set_nonblocking(true)?;
        Ok(s)
    })
}

/// Binds a TCP listener inside the namespace at `netns` (DNS over TCP).
pub fn bind_tcp_in(netns: &Path, addr: std::net::SocketAddr) -> Result<std::net::TcpListener> {
    in_netns(netns, move || {
        let l = std::net::TcpListener::bind(addr).with_context(|| format!("binding {addr}"))?;
        l.set_nonblocking(true)?;
        Ok(l)
    })
}

/// A TCP listener on `[::]:port` that takes IPv6 only (IPV6_V6ONLY), for
/// the loopback proxy: IPv4 to the port is DNAT's business.
pub fn listen_v6_only(port: u16) -> Result<std::net::TcpListener> {
    use nix::sys::socket::{
        AddressFamily, SockFlag, SockType, SockaddrIn6, bind, listen, setsockopt, socket, sockopt,
    };
    let fd = socket(
        AddressFamily::Inet6,
        SockType::Stream,
        SockFlag::SOCK_CLOEXEC | SockFlag::SOCK_NONBLOCK,
        None,
    )
    .context("creating an IPv6 socket")?;
    setsockopt(&fd, sockopt::Ipv6V6Only, &true).context("IPV6_V6ONLY")?;
    setsockopt(&fd, sockopt::ReuseAddr, &true).context("SO_REUSEADDR")?;
    let addr = SockaddrIn6::from(std::net::SocketAddrV6::new(
        Ipv6Addr::UNSPECIFIED,
        port,
        0,
        0,
    ));
    bind(fd.as_raw_fd(), &addr).with_context(|| format!("binding [::]:{port}"))?;
    listen(&fd, nix::sys::socket::Backlog::new(128).context("backlog")?)
        .with_context(|| format!("listening on [::]:{port}"))?;
    Ok(std::net::TcpListener::from(fd))
}

/// Removes a container's interface from inside its namespace (network
/// disconnect on a running container).
pub fn detach(netns: &Path, container_if: &str) -> Result<()> {
    let name = container_if.to_string();
    in_netns(netns, move || {
        with_netlink(|h| async move {
            if let Some(i) = index_of(&h, &name).await? {
                h.link()
                    .del(i)
                    .execute()
                    .await
                    .map_err(|e| anyhow!("deleting {name}: {e}"))?;
            }
            Ok(())
        })
    })
}

/// The addresses routed on this host's interfaces, so that a new network
/// never takes a subnet already in use (as Docker checks).
pub fn host_subnets() -> Result<Vec<Subnet>> {
    with_netlink(|h| async move {
        let mut out = Vec::new();
        let mut addrs = h.address().get().execute();
        while let Some(a) = addrs
            .try_next()
            .await
            .map_err(|e| anyhow!("listing addresses: {e}"))?
        {
            for attr in &a.attributes {
                if let rtnetlink::packet_route::address::AddressAttribute::Address(IpAddr::V4(ip)) =
                    attr
                {
                    if ip.is_loopback() {
                        continue;
                    }
                    out.push(
                        Subnet {
                            addr: *ip,
                            prefix: a.header.prefix_len,
                        }
                        .network(),
                    );
                }
            }
        }
        Ok(out)
    })
}

/// Writes a sysctl of the current network namespace, given as the path
/// under /proc/sys (interface names may hold dots).
pub fn sysctl(path: &[&str], value: &str) -> Result<()> {
    let mut p = PathBuf::from("/proc/sys");
    p.extend(path);
    std::fs::write(&p, value).with_context(|| format!("setting {}={value}", path.join(".")))
}
