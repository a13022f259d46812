//! The embedded DNS server of user-defined networks, as in Docker: each
//! container on such a network has a resolver at 127.0.0.11:53 inside its
//! namespace (a UDP socket the daemon binds there and serves). Names of
//! containers on the asker's networks — container name, short id, network
//! aliases, `name.network` — get A records; every other query is forwarded,
//! from the daemon's own namespace, to the host's nameservers. The default
//! bridge has no such resolver, as in Docker.

use std::net::Ipv4Addr;
use std::sync::Arc;
use std::time::Duration;

use berth_bridge::{dns, links};

use crate::containers::ContainerRecord;
use crate::{Engine, LockExt};

pub const RESOLVER: &str = "127.0.0.11";

/// Networks whose containers are not found by name: the default bridge,
/// and swarm tasks' gateway bridge (no traffic between its containers;
/// dockerd disables its name resolution).
fn no_names_on(network: &str) -> bool {
    matches!(network, "bridge" | "docker_gwbridge")
}

impl Engine {
    /// Whether the container resolves names through the embedded server.
    pub(crate) fn uses_embedded_dns(&self, rec: &ContainerRecord) -> bool {
        rec.endpoints.keys().any(|n| n != "bridge")
    }

    /// The container's /etc/resolv.conf: the host's, or on user networks
    /// the embedded server (the host's search domains kept). Written in
    /// place, so a running container's bind mount sees the change.
    pub(crate) fn write_resolv_conf(&self, rec: &ContainerRecord) -> std::io::Result<()> {
        let host = std::fs::read_to_string("/etc/resolv.conf").unwrap_or_default();
        std::fs::write(
            self.container_dir(&rec.id).join("resolv.conf"),
            resolv_conf(&host, rec, self.uses_embedded_dns(rec)),
        )
    }

    /// Binds 127.0.0.11:53 in the container's namespace and serves it.
    pub(crate) fn start_resolver(self: &Arc<Self>, rec: &ContainerRecord) {
        if !self.uses_embedded_dns(rec) || self.has_net_tasks(&format!("dns:{}", rec.id)) {
            return;
        }
        let Some(netns) = self.container_netns(rec) else {
            return;
        };
        let addr = std::net::SocketAddr::from(([127, 0, 0, 11], 53));
        let std_sock = match links::bind_udp_in(&netns, addr) {
            Ok(s) => s,
            Err(e) => {
                tracing::warn!(container = %&rec.id[..12], error = %e, "starting the embedded DNS server");
                return;
            }
        };
        let sock = match tokio::net::UdpSocket::from_std(std_sock) {
            Ok(s) => Arc::new(s),
            Err(e) => {
                tracing::warn!(container = %&rec.id[..12], error = %e, "starting the embedded DNS server");
                return;
            }
        };
        let tcp = links::bind_tcp_in(&netns, addr)
            .and_then(|l| Ok(tokio::net::TcpListener::from_std(l)?));
        let engine = Arc::downgrade(self);
        let id = rec.id.clone();
        let key = format!("dns:{}", rec.id);
        if let Ok(listener) = tcp {
            let (engine, id) = (engine.clone(), id.clone());
            let task = tokio::spawn(serve_tcp(listener, engine, id));
            self.track_net_task(&key, task.abort_handle());
        }
        let task = tokio::spawn(async move {
            let mut buf = vec![0u8; 4096];
            loop {
                let Ok((n, peer)) = sock.recv_from(&mut buf).await else {
                    break;
                };
                let pkt = buf[..n].to_vec();
                let Some(q) = dns::parse_query(&pkt) else {
                    continue;
                };
                let Some(engine) = engine.upgrade() else {
                    break;
                };
                let (sock, id) = (sock.clone(), id.clone());
                tokio::spawn(async move {
                    let reply = engine.dns_reply(&id, &pkt, &q).await;
                    let _ = sock.send_to(&reply, peer).await;
                });
            }
        });
        self.track_net_task(&key, task.abort_handle());
    }

    pub(crate) fn track_net_task(&self, key: &str, h: tokio::task::AbortHandle) {
        self.net_tasks
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .entry(key.to_string())
            .or_default()
            .push(h);
    }

    fn has_net_tasks(&self, key: &str) -> bool {
        self.net_tasks
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .contains_key(key)
    }

    /// Ends the tasks under `key`.
    pub(crate) fn stop_net_tasks(&self, key: &str) {
        let tasks = self
            .net_tasks
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(key);
        for h in tasks.into_iter().flatten() {
            h.abort();
        }
    }

    pub(crate) fn stop_resolver(&self, id: &str) {
        self.stop_net_tasks(&format!("dns:{id}"));
    }

    /// The answer to one query of container `id`: its networks' names, or
    /// what the upstream nameservers say.
    async fn dns_reply(&self, id: &str, pkt: &[u8], q: &dns::Question) -> Vec<u8> {
        if let Some((ips, ips6)) = self.dns_lookup(id, &q.name) {
            return dns::answer(pkt, q, &ips, &ips6);
        }
        let dns_flag: Vec<String> = self
            .containers
            .r()
            .get(id)
            .and_then(|e| e.record().host_config.dns)
            .unwrap_or_default();
        forward(pkt, upstreams(&dns_flag).await)
            .await
            .unwrap_or_else(|| dns::servfail(pkt, q))
    }

    /// The addresses `name` has on the user networks of container `asker`.
    pub(crate) fn dns_lookup(
        &self,
        asker: &str,
        name: &str,
    ) -> Option<(Vec<Ipv4Addr>, Vec<std::net::Ipv6Addr>)> {
        let asker = self.containers.r().get(asker)?.record();
        let target = self.link_target(&asker, name);
        let name = target.as_deref().unwrap_or(name);
        let nets: Vec<&str> = asker
            .endpoints
            .iter()
            .filter(|(n, _)| !no_names_on(n))
            .map(|(_, ep)| ep.network_id.as_str())
            .collect();
        let mut ips = Vec::new();
        let mut ips6 = Vec::new();
        for e in self.containers.r().values() {
            let r = e.record();
            for (net, ep) in &r.endpoints {
                if !nets.contains(&ep.network_id.as_str()) {
                    continue;
                }
                let primary = crate::networks::endpoint_network(
                    r.host_config.network_mode.as_deref().unwrap_or_default(),
                )
                .and_then(|m| self.networks.find_id(m))
                .is_some_and(|pid| pid == ep.network_id);
                let aliases = crate::networks::endpoint_settings(&r, net, &ep.network_id, primary)
                    .and_then(|c| c.aliases.clone())
                    .unwrap_or_default();
                let hit = r.name.eq_ignore_ascii_case(name)
                    || r.id.get(..12) == Some(name)
                    || format!("{}.{net}", r.name).eq_ignore_ascii_case(name)
                    || aliases.iter().any(|a| a.eq_ignore_ascii_case(name));
                if hit {
                    ips.extend(ep.ip.parse::<Ipv4Addr>().ok());
                    ips6.extend(ep.ip6.parse::<std::net::Ipv6Addr>().ok());
                }
            }
        }
        if ips.is_empty() && ips6.is_empty() {
            // the managers' names: services, `tasks.NAME`, tasks elsewhere
            ips = self.swarm_lookup(&nets, name);
            shuffle(&mut ips);
        }
        (!ips.is_empty() || !ips6.is_empty()).then_some((ips, ips6))
    }
}

impl Engine {
    /// The container an endpoint link of `asker` names by `alias`
    /// (`--link name:alias` given at `network connect` or in
    /// EndpointsConfig): libnetwork resolves the alias, for that container
    /// only, as the linked container's name.
    fn link_target(&self, asker: &ContainerRecord, alias: &str) -> Option<String> {
        let mode = asker
            .host_config
            .network_mode
            .as_deref()
            .unwrap_or_default();
        let primary =
            crate::networks::endpoint_network(mode).and_then(|m| self.networks.find_id(m));
        asker
            .endpoints
            .iter()
            .filter(|(n, _)| n.as_str() != "bridge")
            .filter_map(|(net, ep)| {
                let is_primary = primary.as_deref() == Some(ep.network_id.as_str());
                crate::networks::endpoint_settings(asker, net, &ep.network_id, is_primary)?
                    .links
                    .as_ref()
            })
            .flatten()
            .find_map(|link| {
                let (target, a) = link.split_once(':').unwrap_or((link, link));
                a.trim_start_matches('/')
                    .eq_ignore_ascii_case(alias)
                    .then(|| target.trim_start_matches('/').to_string())
            })
    }
}

/// Several addresses come in a new order each time, as libnetwork
/// answers, so that clients taking the first spread over them.
fn shuffle(ips: &mut [Ipv4Addr]) {
    if ips.len() < 2 {
        return;
    }
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.subsec_nanos() as usize);
    ips.rotate_left(nanos % ips.len());
}

/// DNS over TCP: each message with its two-byte length, as RFC 1035 says.
async fn serve_tcp(listener: tokio::net::TcpListener, engine: std::sync::Weak<Engine>, id: String) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    while let Ok((mut conn, _)) = listener.accept().await {
        let (engine, id) = (engine.clone(), id.clone());
        tokio::spawn(async move {
            loop {
                let mut len = [0u8; 2];
                let read = tokio::time::timeout(Duration::from_secs(10), conn.read_exact(&mut len));
                if !matches!(read.await, Ok(Ok(_))) {
                    return;
                }
                let mut pkt = vec![0u8; u16::from_be_bytes(len) as usize];
                if conn.read_exact(&mut pkt).await.is_err() {
                    return;
                }
                let Some(q) = dns::parse_query(&pkt) else {
                    return;
                };
                let Some(engine) = engine.upgrade() else {
                    return;
                };
                let reply = engine.dns_reply(&id, &pkt, &q).await;
                drop(engine);
                let mut out = (reply.len() as u16).to_be_bytes().to_vec();
                out.extend_from_slice(&reply);
                if conn.write_all(&out).await.is_err() {
                    return;
                }
            }
        });
    }
}

/// A container's resolv.conf, as dockerd writes it: `--dns`,
/// `--dns-search` and `--dns-option` replace the host's lines; the host's
/// loopback nameservers cannot serve the container (Docker then falls back
/// to Google's public servers); with the embedded server the container asks
/// 127.0.0.11, which forwards to those nameservers.
fn resolv_conf(host: &str, rec: &ContainerRecord, embedded: bool) -> String {
    let hc = &rec.host_config;
    let pick = |flag: &Option<Vec<String>>, key: &str| -> Vec<String> {
        match flag.as_ref().filter(|v| !v.is_empty()) {
            Some(v) => v.clone(),
            None => host
                .lines()
                .filter_map(|l| l.trim().strip_prefix(key))
                .flat_map(|rest| rest.split_whitespace().map(String::from))
                .collect(),
        }
    };
    let search = pick(&hc.dns_search, "search");
    let mut options = pick(&hc.dns_options, "options");
    let mut out = String::from("# Generated by berth.\n");
    if embedded {
        out.push_str(&format!("nameserver {RESOLVER}\n"));
        if !options.iter().any(|o| o.starts_with("ndots:")) {
            options.insert(0, "ndots:0".into());
        }
    } else {
        let mut servers: Vec<String> = pick(&hc.dns, "nameserver");
        if hc.dns.as_ref().is_none_or(|d| d.is_empty()) {
            servers.retain(|s| {
                s.parse::<std::net::IpAddr>()
                    .is_ok_and(|ip| !ip.is_loopback())
            });
            if servers.is_empty() {
                servers = vec!["8.8.8.8".into(), "8.8.4.4".into()];
            }
        }
        for s in servers {
            out.push_str(&format!("nameserver {s}\n"));
        }
    }
    if !search.is_empty() {
        out.push_str(&format!("search {}\n", search.join(" ")));
    }
    if !options.is_empty() {
        out.push_str(&format!("options {}\n", options.join(" ")));
    }
    out
}

/// The nameservers the embedded server forwards to: the container's
/// `--dns`, else the host's.
async fn upstreams(dns_flag: &[String]) -> Vec<String> {
    if !dns_flag.is_empty() {
        return dns_flag.to_vec();
    }
    let conf = tokio::fs::read_to_string("/etc/resolv.conf")
        .await
        .unwrap_or_default();
    dns::nameservers(&conf)
}

/// Sends the query to the nameservers in turn; the first answer.
async fn forward(pkt: &[u8], servers: Vec<String>) -> Option<Vec<u8>> {
    for ns in servers {
        let Ok(ip) = ns.parse::<std::net::IpAddr>() else {
            continue;
        };
        let bind = if ip.is_ipv4() { "0.0.0.0:0" } else { "[::]:0" };
        let Ok(s) = tokio::net::UdpSocket::bind(bind).await else {
            continue;
        };
        if s.send_to(pkt, (ip, 53)).await.is_err() {
            continue;
        }
        let mut buf = vec![0u8; 4096];
        if let Ok(Ok((n, _))) =
            tokio::time::timeout(Duration::from_secs(2), s.recv_from(&mut buf)).await
        {
            buf.truncate(n);
            return Some(buf);
        }
    }
    None
}
