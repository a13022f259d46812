//! Networks as Docker models them: the predefined `bridge`, `host` and
//! `none`, user-defined networks over the drivers of the network port
//! (the bridge driver of berth-bridge) with their pools from the IPAM
//! port, and each running container's endpoint (a namespace pinned under
//! the exec root, an interface from the driver, an address) and published
//! ports. The networks service (the berth-networks crate) keeps the
//! records and talks to the drivers, `inspect.rs` gathers what inspect and
//! list show; this file is what involves containers.
//!
//! Records live in the metadata store; a container's endpoints and ports
//! are part of its record while it runs, so a restarted daemon knows every
//! address and port in use and gives them back to the drivers.

use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;

use berth_bridge::links;
use berth_core::container::EndpointConfig;
use berth_core::network::{JoinRequest, PortRequest};

use crate::containers::{ContainerRecord, Status};
use crate::{Engine, Error, LockExt, Result};

mod inspect;

pub use berth_core::network::PublishedPort;
pub use berth_networks::CreateNetwork;
pub(crate) use berth_networks::{DefaultBridge, EndpointWant, NetworkService};
pub use berth_networks::{EndpointRecord, NetworkRecord};
pub use inspect::{NetworkContainerView, NetworkView};

/// The network a container's `NetworkMode` names: None for host, none
/// and container:<x>, which get no endpoint.
pub(crate) fn endpoint_network(mode: &str) -> Option<&str> {
    match mode {
        "" | "default" => Some("bridge"),
        "host" | "none" => None,
        m if m.starts_with("container:") => None,
        m => Some(m),
    }
}

/// Whether `path` is a namespace's bind mount: its device is nsfs's, not
/// its directory's.
fn netns_pinned(path: &std::path::Path) -> bool {
    use std::os::unix::fs::MetadataExt;
    let (Ok(file), Some(Ok(dir))) = (
        std::fs::metadata(path),
        path.parent().map(std::fs::metadata),
    ) else {
        return false;
    };
    file.dev() != dir.dev()
}

/// `err` with dockerd's words of the step that failed before its own,
/// keeping its kind (a missing network stays a 404).
fn setup_failed(err: Error, step: &str) -> Error {
    match err {
        Error::NotFound(m) => Error::NotFound(format!("{step}: {m}")),
        Error::InvalidParameter(m) => Error::InvalidParameter(format!("{step}: {m}")),
        Error::Conflict(m) => Error::Conflict(format!("{step}: {m}")),
        other => Error::Internal(anyhow::anyhow!("{step}: {other}")),
    }
}

impl Engine {
    fn netns_path(&self, id: &str) -> PathBuf {
        self.cfg.exec_root.join("netns").join(id)
    }

    /// The namespace a container joins, once its endpoints are set up (or
    /// always, for a pod sandbox whose namespace the CRI wires).
    pub(crate) fn container_netns(&self, rec: &ContainerRecord) -> Option<PathBuf> {
        (rec.pod_netns || !rec.endpoints.is_empty()).then(|| self.netns_path(&rec.id))
    }

    /// Pins a new network namespace for pod sandbox `id` (one pinned
    /// already stays, with what the CRI put in it); its path.
    pub fn pin_pod_netns(&self, id: &str) -> Result<PathBuf> {
        let path = self.netns_path(id);
        if !netns_pinned(&path) {
            let _ = links::remove_netns(&path);
            links::create_netns(&path).map_err(Error::Internal)?;
        }
        Ok(path)
    }

    /// Where pod sandbox `id`'s namespace is pinned, if it is.
    pub fn pod_netns(&self, id: &str) -> Option<PathBuf> {
        let path = self.netns_path(id);
        netns_pinned(&path).then_some(path)
    }

    /// Lets go of pod sandbox `id`'s namespace. Idempotent.
    pub fn unpin_pod_netns(&self, id: &str) -> Result<()> {
        links::remove_netns(&self.netns_path(id)).map_err(Error::Internal)
    }

    /// The CRI's record of pod sandbox `id`'s network (its JSON is the
    /// CRI's: the engine only keeps it, durably, beside its own records).
    pub fn pod_network(&self, id: &str) -> Result<Option<serde_json::Value>> {
        use berth_store::MetadataStoreExt;
        Ok(self.meta.get_json(berth_store::Table::PodNetworks, id)?)
    }

    pub fn put_pod_network(&self, id: &str, record: &serde_json::Value) -> Result<()> {
        use berth_store::MetadataStoreExt;
        Ok(self
            .meta
            .put_json(berth_store::Table::PodNetworks, id, record)?)
    }

    pub fn delete_pod_network(&self, id: &str) -> Result<()> {
        use berth_store::MetadataStoreExt;
        Ok(self.meta.delete(berth_store::Table::PodNetworks, id)?)
    }

    /// Every pod network recorded, by sandbox id.
    pub fn pod_networks(&self) -> Result<Vec<(String, serde_json::Value)>> {
        use berth_store::MetadataStoreExt;
        Ok(self.meta.list_json(berth_store::Table::PodNetworks)?)
    }

    /// For `--network container:NAME`: the running container whose
    /// namespace (and /etc files) this one shares. A missing one is a
    /// system error (500) at start, as in dockerd, which took it at create.
    pub(crate) fn network_peer(&self, rec: &ContainerRecord) -> Result<Option<ContainerRecord>> {
        let mode = rec.host_config.network_mode.clone().unwrap_or_default();
        let Some(target) = mode.strip_prefix("container:") else {
            return Ok(None);
        };
        let peer = match self.get(target) {
            Ok(e) => e.record(),
            Err(Error::NotFound(m)) => {
                return Err(Error::Internal(anyhow::anyhow!(
                    "joining network namespace of container: {m}"
                )));
            }
            Err(e) => return Err(e),
        };
        if peer.id == rec.id {
            return Err(Error::Internal(anyhow::anyhow!(
                "cannot join own network namespace"
            )));
        }
        if peer.state.status != Status::Running || peer.state.pid <= 0 {
            return Err(Error::conflict(format!(
                "cannot join network namespace of a non running container: container {} is {}",
                peer.name,
                peer.state.status.docker_name()
            )));
        }
        Ok(Some(peer))
    }

    /// The namespace a container of `--network container:NAME` joins.
    pub(crate) fn peer_netns(&self, peer: &ContainerRecord) -> PathBuf {
        self.container_netns(peer)
            .unwrap_or_else(|| PathBuf::from(format!("/proc/{}/ns/net", peer.state.pid)))
    }

    /// The address `host-gateway` stands for in `--add-host`: the default
    /// bridge's gateway, as in Docker.
    pub(crate) fn host_gateway(&self) -> Option<String> {
        self.networks
            .r()
            .find("bridge")
            .map(|n| n.gateway.clone())
            .filter(|g| !g.is_empty())
    }

    /// Loads the networks, creates the predefined ones, and gives the
    /// drivers their networks and the IPAM its pools again, with the
    /// addresses and ports of the containers that ran when the daemon
    /// stopped, so that nothing is duplicated, leaked or missing.
    pub(crate) fn load_networks(&self, containers: &[ContainerRecord]) -> anyhow::Result<()> {
        let ports: Vec<PublishedPort> = containers
            .iter()
            .flat_map(|c| c.published.iter().cloned())
            .collect();
        let default_bridge = DefaultBridge {
            interface: berth_bridge::DEFAULT_BRIDGE_IF,
            bip: self.cfg.bip.as_deref(),
            fixed_cidr: self.cfg.fixed_cidr.clone(),
        };
        self.networks.restore(
            &default_bridge,
            containers.iter().flat_map(|c| c.endpoints.values()),
            &ports,
        )
    }

    pub fn network_create(&self, req: &CreateNetwork) -> Result<(String, String)> {
        let rec = self.networks.create(req)?;
        self.object_event(
            "network",
            &rec.id,
            "create",
            &[("name", rec.name.clone()), ("type", rec.driver.clone())],
        );
        Ok((rec.id, String::new()))
    }

    fn network_record(&self, name: &str) -> Result<NetworkRecord> {
        self.networks.record(name)
    }

    pub fn network_remove(&self, name: &str) -> Result<()> {
        let n = self.network_record(name)?;
        // the containers on it: running, or holding an endpoint
        let users: Vec<String> = self
            .containers
            .r()
            .values()
            .map(|e| e.record())
            .filter(|r| {
                endpoint_network(r.host_config.network_mode.as_deref().unwrap_or_default())
                    .is_some_and(|m| m == n.name || m == n.id)
                    || r.endpoints.values().any(|ep| ep.network_id == n.id)
            })
            .filter(|r| r.state.status == Status::Running || !r.endpoints.is_empty())
            .map(|r| r.name)
            .collect();
        self.networks.remove(&n, &users)?;
        self.object_event(
            "network",
            &n.id,
            "destroy",
            &[("name", n.name.clone()), ("type", n.driver.clone())],
        );
        Ok(())
    }

    /// Removes the user-defined networks no container uses.
    /// Filters: `label`, `label!` and `until`, as dockerd's.
    pub fn network_prune(&self, filters: &HashMap<String, Vec<String>>) -> Result<Vec<String>> {
        if let Some(k) = filters
            .keys()
            .find(|k| !matches!(k.as_str(), "label" | "label!" | "until"))
        {
            return Err(Error::invalid(format!("invalid filter '{k}'")));
        }
        let labels = filters.get("label").cloned().unwrap_or_default();
        let not_labels = filters.get("label!").cloned().unwrap_or_default();
        let until = match filters.get("until").and_then(|v| v.first()) {
            Some(u) => Some(crate::containers::parse_until(u)?),
            None => None,
        };
        let candidates: Vec<NetworkRecord> = self
            .networks
            .r()
            .by_id
            .values()
            .filter(|n| {
                !n.predefined()
                    && !n.swarm_scoped()
                    // dockerd never prunes a configuration network
                    && !n.config_only
                    && crate::labels_match(&n.labels, &labels)
                    && !not_labels
                        .iter()
                        .any(|l| crate::labels_match(&n.labels, std::slice::from_ref(l)))
                    && until.is_none_or(|u| crate::images::parse_time(&n.created) < u)
            })
            .cloned()
            .collect();
        let mut removed = Vec::new();
        for n in candidates {
            if self.network_remove(&n.id).is_ok() {
                removed.push(n.name);
            }
        }
        Ok(removed)
    }

    /// Checks a container's network mode at create, as Docker does, and
    /// gives it as dockerd stores it: `container:NAME` becomes
    /// `container:ID` when that container exists; a missing one is taken
    /// (dockerd fails the start instead).
    pub(crate) fn check_network_mode(&self, mode: &str, swarm_task: bool) -> Result<String> {
        if let Some(target) = mode.strip_prefix("container:") {
            return Ok(match self.get(target) {
                Ok(e) => format!("container:{}", e.id),
                Err(_) => mode.to_string(),
            });
        }
        // dockerd takes a network that does not exist (yet) at create and
        // fails at start, when it is still missing
        if let Some(name) = endpoint_network(mode)
            && let Ok(n) = self.network_record(name)
            && !matches!(n.driver.as_str(), "bridge" | "macvlan")
            // refused at start, with the driver's words
            && !n.config_only
            && !(n.swarm_scoped() && (swarm_task || n.attachable))
        {
            return Err(Error::invalid(format!(
                "container cannot be connected to network {}",
                n.name
            )));
        }
        Ok(mode.to_string())
    }

    /// The networks a container joins at start, its primary one first: the
    /// network of its mode and those it was connected to. One removed since
    /// fails the start with dockerd's words (a 404).
    pub(crate) fn container_networks(&self, rec: &ContainerRecord) -> Result<Vec<NetworkRecord>> {
        self.networks_of(rec, true)
    }

    /// The networks a container is configured for, skipping those removed
    /// since: what inspect and /etc/hosts show.
    pub(crate) fn configured_networks(&self, rec: &ContainerRecord) -> Vec<NetworkRecord> {
        self.networks_of(rec, false).unwrap_or_default()
    }

    fn networks_of(&self, rec: &ContainerRecord, strict: bool) -> Result<Vec<NetworkRecord>> {
        let mode = rec.host_config.network_mode.clone().unwrap_or_default();
        let Some(primary) = endpoint_network(&mode) else {
            return Ok(Vec::new());
        };
        let primary = self
            .network_record(primary)
            .map_err(|e| setup_failed(e, "failed to set up container networking"))?;
        let mut out = Vec::new();
        if !rec.primary_detached {
            out.push(primary.clone());
        }
        let mut extra: Vec<&String> = rec.endpoints_config.keys().collect();
        extra.sort();
        // the primary's settings may be keyed by the mode the client gave
        // ("default", an id prefix)
        for name in extra.into_iter().filter(|k| **k != mode) {
            let n = match self.network_record(name) {
                Ok(n) => n,
                Err(e) if strict => {
                    return Err(setup_failed(e, "failed to set up container networking"));
                }
                Err(_) => continue,
            };
            // a detached primary stays off whatever its settings' key
            if n.id != primary.id && !out.iter().any(|o| o.id == n.id) {
                out.push(n);
            }
        }
        Ok(out)
    }

    /// Gives a starting container its namespace, an endpoint on each of its
    /// networks and its published ports (on the primary network). Runs on a
    /// blocking thread: netlink and nft are synchronous. A failure unwinds
    /// everything done so far.
    pub(crate) fn network_setup(
        &self,
        rec: &ContainerRecord,
    ) -> Result<(BTreeMap<String, EndpointRecord>, Vec<PublishedPort>)> {
        let nets = self.container_networks(rec)?;
        let mut eps = BTreeMap::new();
        let Some(primary) = nets.first().cloned() else {
            return Ok((eps, Vec::new()));
        };
        let netns = self.netns_path(&rec.id);
        let _ = links::remove_netns(&netns);
        links::create_netns(&netns).map_err(Error::Internal)?;
        let unwind = |me: &Engine, eps: &BTreeMap<String, EndpointRecord>| {
            for ep in eps.values() {
                me.networks.detach(ep);
            }
            let _ = links::remove_netns(&netns);
        };
        // a swarm network's endpoint has no gateway: the default route is
        // the first local network's (the gateway bridge's, for tasks)
        let route = nets.iter().position(|n| !n.swarm_scoped()).unwrap_or(0);
        for (i, n) in nets.iter().enumerate() {
            match self.attach_endpoint(rec, n, i, i == route) {
                Ok(ep) => {
                    eps.insert(n.name.clone(), ep);
                }
                Err(e) => {
                    unwind(self, &eps);
                    return Err(e);
                }
            }
        }
        // a swarm task's host-mode ports go on its gateway bridge endpoint
        let publish_on = if primary.swarm_scoped() {
            nets[route].clone()
        } else {
            primary.clone()
        };
        match if rec.primary_detached {
            // the ports were published on the primary network and went with it
            Ok(Vec::new())
        } else {
            port_requests(rec).and_then(|ports| {
                self.networks
                    .publish(&publish_on, &eps[&publish_on.name], &ports)
            })
        } {
            Ok(ports) => Ok((eps, ports)),
            Err(e) => {
                unwind(self, &eps);
                Err(e)
            }
        }
    }

    /// Plugs the container's namespace into `n` as `eth<index>`;
    /// `default_route` makes the network's gateway the container's default
    /// route.
    fn attach_endpoint(
        &self,
        rec: &ContainerRecord,
        n: &NetworkRecord,
        index: usize,
        default_route: bool,
    ) -> Result<EndpointRecord> {
        let settings = endpoint_settings(rec, &n.name, &n.id, index == 0);
        let ipam = settings.and_then(|s| s.ipam_config.as_ref());
        let given = self.swarm_address(&rec.id, &n.id);
        let want = EndpointWant {
            name: &rec.name,
            ipv4_address: given
                .as_deref()
                .or_else(|| ipam.and_then(|c| c.ipv4_address.as_deref())),
            ipv6_address: ipam.and_then(|c| c.ipv6_address.as_deref()),
            mac_address: settings.and_then(|s| s.mac_address.as_deref()),
            aliases: settings
                .and_then(|s| s.aliases.as_deref())
                .unwrap_or_default(),
        };
        let join = JoinRequest {
            sandbox_key: self.netns_path(&rec.id),
            interface: format!("eth{index}"),
            default_route,
        };
        self.networks.attach(n, want, &join)
    }

    /// `network connect`: records the network for the container's next
    /// starts and, while it runs, plugs it in at once.
    pub async fn network_connect(
        self: &std::sync::Arc<Self>,
        network: &str,
        container: &str,
        requested: EndpointConfig,
    ) -> Result<()> {
        let n = self.network_record(network)?;
        let e = self.get(container)?;
        let _op = e.op.lock().await;
        let rec = e.record();
        let mode = rec.host_config.network_mode.clone().unwrap_or_default();
        if endpoint_network(&mode).is_none() {
            return Err(Error::invalid(
                "container sharing network namespace with another container or host cannot be connected to any other network",
            ));
        }
        if n.driver != "bridge" {
            return Err(Error::invalid(
                "container cannot be disconnected from host network or connected to host network",
            ));
        }
        let joined = self.configured_networks(&rec).iter().any(|x| x.id == n.id);
        if joined {
            return Err(Error::Forbidden(format!(
                "endpoint with name {} already exists in network {}",
                rec.name, n.name
            )));
        }
        let is_primary = endpoint_network(&mode)
            .and_then(|m| self.networks.find_id(m))
            .is_some_and(|p| p == n.id);
        let rec = e.update(|r| {
            let mut requested = requested.clone();
            if is_primary {
                r.primary_detached = false;
                if requested
                    .mac_address
                    .as_deref()
                    .unwrap_or_default()
                    .is_empty()
                {
                    requested.mac_address = r.primary_mac.clone();
                }
            }
            r.endpoints_config.insert(n.name.clone(), requested);
            r.clone()
        });
        // a running container with a namespace of its own (pinned at start,
        // kept while it runs, even with every network disconnected)
        let pinned = self.netns_path(&rec.id).exists();
        if rec.state.status == crate::containers::Status::Running && pinned {
            let index = rec
                .endpoints
                .values()
                .filter_map(|ep| ep.container_if.strip_prefix("eth")?.parse::<usize>().ok())
                .max()
                .map_or(0, |m| m + 1);
            let engine = self.clone();
            let (r2, n2) = (rec.clone(), n.clone());
            // the first network of a container without any takes the route
            let route = rec.endpoints.is_empty();
            let attached =
                tokio::task::spawn_blocking(move || engine.attach_endpoint(&r2, &n2, index, route))
                    .await
                    .map_err(|err| Error::Internal(anyhow::anyhow!("network connect: {err}")))
                    .and_then(|r| r);
            let ep = match attached {
                Ok(ep) => ep,
                Err(err) => {
                    e.update(|r| {
                        r.endpoints_config.remove(&n.name);
                        if is_primary {
                            r.primary_detached = true;
                        }
                    });
                    return Err(err);
                }
            };
            let rec = e.update(|r| {
                r.endpoints.insert(n.name.clone(), ep);
                r.clone()
            });
            self.persist_record(&rec)?;
            self.start_resolver(&rec);
            // as dockerd does: the new address under the container's name
            if let Err(err) = self.write_hosts(&rec) {
                tracing::warn!(container = %&rec.id[..12], error = %err, "rewriting /etc/hosts");
            }
            // as dockerd does: the container now resolves through the network
            if let Err(err) = self.write_resolv_conf(&rec) {
                tracing::warn!(container = %&rec.id[..12], error = %err, "rewriting resolv.conf");
            }
        } else {
            self.persist_record(&rec)?;
        }
        self.network_event("connect", &n.id, &n.name, &rec.id);
        Ok(())
    }

    /// `network disconnect`: takes the container off the network, live
    /// when it runs, and for its next starts.
    pub async fn network_disconnect(
        self: &std::sync::Arc<Self>,
        network: &str,
        container: &str,
        force: bool,
    ) -> Result<()> {
        let n = self.network_record(network)?;
        let e = match self.get(container) {
            Ok(e) => e,
            Err(err) if force => {
                tracing::debug!(error = %err, "disconnect of a missing container");
                return Ok(());
            }
            Err(err) => return Err(err),
        };
        let _op = e.op.lock().await;
        let rec = e.record();
        let mode = rec.host_config.network_mode.clone().unwrap_or_default();
        let primary = endpoint_network(&mode).and_then(|m| self.networks.find_id(m));
        let configured =
            rec.endpoints_config.contains_key(&n.name) || rec.endpoints_config.contains_key(&n.id);
        let live = rec.endpoints.get(&n.name).cloned();
        let is_primary = primary.as_deref() == Some(n.id.as_str()) && !rec.primary_detached;
        if !configured && live.is_none() && !is_primary {
            return Err(Error::Forbidden(format!(
                "container {} is not connected to network {}",
                rec.name, n.name
            )));
        }
        if let Some(ep) = &live {
            let netns = self.netns_path(&rec.id);
            let ifname = ep.container_if.clone();
            tokio::task::spawn_blocking(move || links::detach(&netns, &ifname))
                .await
                .map_err(|err| Error::Internal(anyhow::anyhow!("network disconnect: {err}")))?
                .map_err(Error::Internal)?;
            self.networks.detach(ep);
        }
        // ports are published on the primary network: they go with it
        let dropped: Vec<PublishedPort> = if is_primary {
            rec.published.clone()
        } else {
            Vec::new()
        };
        if !dropped.is_empty() {
            self.unpublish(&rec, &dropped);
            self.stop_proxies(&rec.id);
        }
        let rec = e.update(|r| {
            r.endpoints.remove(&n.name);
            let configs = [&n.name, &n.id].map(|k| r.endpoints_config.remove(k));
            if is_primary
                && let Some(mac) = configs.into_iter().flatten().find_map(|c| c.mac_address)
            {
                r.primary_mac = Some(mac);
            }
            if is_primary {
                r.primary_detached = true;
                r.published.clear();
            }
            r.clone()
        });
        self.persist_record(&rec)?;
        if live.is_some()
            && let Err(err) = self.write_hosts(&rec)
        {
            tracing::warn!(container = %&rec.id[..12], error = %err, "rewriting /etc/hosts");
        }
        if !self.uses_embedded_dns(&rec) {
            self.stop_resolver(&rec.id);
            // back to the host's nameservers, as the resolver is gone
            if let Err(err) = self.write_resolv_conf(&rec) {
                tracing::warn!(container = %&rec.id[..12], error = %err, "rewriting resolv.conf");
            }
        }
        self.network_event("disconnect", &n.id, &n.name, &rec.id);
        Ok(())
    }

    /// Takes a container off its networks: its ports, addresses and pinned
    /// namespace (the kernel then removes the veth pair). Idempotent.
    pub(crate) fn network_teardown(&self, rec: &ContainerRecord) {
        self.stop_resolver(&rec.id);
        self.stop_proxies(&rec.id);
        self.endpoint_events(rec, "disconnect");
        self.unpublish(rec, &rec.published);
        for ep in rec.endpoints.values() {
            self.networks.detach(ep);
        }
        // a pod's namespace goes only after the CNI's DEL, which needs it
        if rec.pod_netns {
            return;
        }
        if let Err(e) = links::remove_netns(&self.netns_path(&rec.id)) {
            tracing::warn!(container = %&rec.id[..12], error = %e, "removing network namespace");
        }
    }

    /// Docker's network events for a container's endpoints: `connect` at
    /// start, `disconnect` at stop.
    pub(crate) fn endpoint_events(&self, rec: &ContainerRecord, action: &str) {
        for (name, ep) in &rec.endpoints {
            self.network_event(action, &ep.network_id, name, &rec.id);
        }
    }

    /// A network event about one container (connect, disconnect).
    fn network_event(&self, action: &str, network_id: &str, network: &str, container: &str) {
        self.object_event(
            "network",
            network_id,
            action,
            &[
                ("container", container.to_string()),
                ("name", network.to_string()),
                ("type", "bridge".into()),
            ],
        );
    }

    /// Takes back published ports (on the endpoint that has their address)
    /// and frees their host ports.
    fn unpublish(&self, rec: &ContainerRecord, ports: &[PublishedPort]) {
        if ports.is_empty() {
            return;
        }
        let ep = rec
            .endpoints
            .values()
            .find(|ep| {
                ports
                    .iter()
                    .any(|p| p.container_ip == ep.ip || p.container_ip == ep.ip6)
            })
            .cloned()
            .unwrap_or_default();
        if let Err(e) = self
            .networks
            .unpublish(&ep.network_id, &ep.endpoint_id, ports)
        {
            tracing::warn!(container = %&rec.id[..12], error = %e, "removing published ports");
        }
    }
}

/// A container's settings for one network as the client keyed them: by
/// name, by id, or for its primary network by the mode it gave
/// ("default", an id prefix).
pub(crate) fn endpoint_settings<'a>(
    rec: &'a ContainerRecord,
    name: &str,
    id: &str,
    primary: bool,
) -> Option<&'a EndpointConfig> {
    rec.endpoints_config
        .get(name)
        .or_else(|| rec.endpoints_config.get(id))
        .or_else(|| {
            let mode = rec.host_config.network_mode.as_deref().unwrap_or_default();
            primary.then(|| rec.endpoints_config.get(mode)).flatten()
        })
}

/// "80/tcp", "53/udp", "8080" (tcp)
fn parse_port_key(key: &str) -> Result<(u16, String)> {
    let (p, proto) = key.split_once('/').unwrap_or((key, "tcp"));
    let proto = proto.to_ascii_lowercase();
    if proto != "tcp" && proto != "udp" {
        return Err(Error::invalid(format!("invalid proto: {proto}")));
    }
    let port: u16 = p
        .parse()
        .ok()
        .filter(|p| *p > 0)
        .ok_or_else(|| Error::invalid(format!("invalid port specification: \"{key}\"")))?;
    Ok((port, proto))
}

/// The ports `-p` and `-P` ask to publish, by port and protocol.
fn port_requests(rec: &ContainerRecord) -> Result<Vec<PortRequest>> {
    let mut wanted: Vec<PortRequest> = Vec::new();
    let bindings = rec.host_config.port_bindings.clone().unwrap_or_default();
    let request = |proto: &str, port, b: berth_core::container::PortBinding| PortRequest {
        proto: proto.to_string(),
        container_port: port,
        host_ip: b.host_ip,
        host_port: b.host_port,
    };
    for (key, list) in &bindings {
        let (port, proto) = parse_port_key(key)?;
        let list = list.clone().unwrap_or_default();
        if list.is_empty() {
            wanted.push(request(&proto, port, Default::default()));
        }
        for b in list {
            wanted.push(request(&proto, port, b));
        }
    }
    if rec.host_config.publish_all_ports == Some(true) {
        for key in rec.config.exposed_ports.clone().unwrap_or_default().iter() {
            if !bindings.contains_key(key) {
                let (port, proto) = parse_port_key(key)?;
                wanted.push(request(&proto, port, Default::default()));
            }
        }
    }
    wanted.sort_by(|a, b| (a.container_port, &a.proto).cmp(&(b.container_port, &b.proto)));
    Ok(wanted)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn port_specs() {
        assert_eq!(parse_port_key("80/tcp").unwrap(), (80, "tcp".into()));
        assert_eq!(parse_port_key("53/udp").unwrap(), (53, "udp".into()));
        assert_eq!(parse_port_key("8080").unwrap(), (8080, "tcp".into()));
        assert!(parse_port_key("0/tcp").is_err());
        assert!(parse_port_key("80/sctp").is_err());
        assert!(parse_port_key("http").is_err());
        assert_eq!(parse_port_key("53/UDP").unwrap(), (53, "udp".into()));
        assert!(parse_port_key("70000/tcp").is_err());
        assert_eq!(endpoint_network("default"), Some("bridge"));
        assert_eq!(endpoint_network("container:x"), None);
        assert_eq!(endpoint_network("app"), Some("app"));
    }
}
