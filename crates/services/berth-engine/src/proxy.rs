//! The IPv6 side of published ports that DNAT cannot serve, as
//! docker-proxy does: a TCP listener on `[::]:PORT` (IPv6 only) in the
//! daemon's namespace, relaying to the container. It serves the host's own
//! `[::1]` (the kernel cannot route IPv6 loopback to a bridge) and, for
//! containers without IPv6, every IPv6 client. IPv4, and IPv6 to
//! containers that have IPv6, go through nftables DNAT before any socket
//! sees them.

use std::net::SocketAddr;
use std::sync::Arc;

use berth_bridge::links;

use crate::Engine;
use crate::containers::ContainerRecord;

impl Engine {
    /// Starts the proxies of a running container's TCP ports published on
    /// every address.
    pub(crate) fn start_proxies(self: &Arc<Self>, rec: &ContainerRecord) {
        let key = format!("proxy:{}", rec.id);
        self.stop_net_tasks(&key);
        for p in rec
            .published
            .iter()
            .filter(|p| p.proto == "tcp" && p.host_ip == "0.0.0.0")
        {
            let target: SocketAddr =
                match format!("{}:{}", p.container_ip, p.container_port).parse() {
                    Ok(t) => t,
                    Err(_) => continue,
                };
            let listener = match links::listen_v6_only(p.host_port)
                .and_then(|l| Ok(tokio::net::TcpListener::from_std(l)?))
            {
                Ok(l) => l,
                Err(e) => {
                    // a host without IPv6 has nothing to proxy
                    tracing::debug!(port = p.host_port, error = %e, "no IPv6 proxy");
                    continue;
                }
            };
            let task = tokio::spawn(async move {
                while let Ok((mut client, _)) = listener.accept().await {
                    tokio::spawn(async move {
                        if let Ok(mut upstream) = tokio::net::TcpStream::connect(target).await {
                            let _ = tokio::io::copy_bidirectional(&mut client, &mut upstream).await;
                        }
                    });
                }
            });
            self.track_net_task(&key, task.abort_handle());
        }
    }

    pub(crate) fn stop_proxies(&self, id: &str) {
        self.stop_net_tasks(&format!("proxy:{id}"));
    }
}
