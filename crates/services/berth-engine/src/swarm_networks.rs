//! Swarm networks on this node, as the swarm agent hands them over: the
//! local record of each network a task here uses (made by the overlay
//! driver), the names the embedded DNS answers from the managers' view
//! (services, `tasks.NAME`, aliases, task names), and each container's
//! VIP table. The engine knows nothing of swarm's types: the agent's
//! executor converts them into these.

use std::collections::HashMap;
use std::net::Ipv4Addr;
use std::path::PathBuf;
use std::sync::Arc;

use berth_networks::NetworkRecord;

use crate::containers::ContainerRecord;
use crate::{Engine, LockExt, Result};

/// A swarm network as this node instantiates it.
#[derive(Clone, Debug, Default)]
pub struct SwarmNetwork {
    pub id: String,
    pub name: String,
    pub driver: String,
    pub subnet: String,
    pub gateway: String,
    pub options: HashMap<String, String>,
    pub labels: HashMap<String, String>,
    pub attachable: bool,
    pub internal: bool,
    /// a node-local network: made from this node's configuration network
    /// of that name, its addresses from this node's pool
    pub config_from: String,
    pub ingress: bool,
}

/// The names on each swarm network, lowercase, with their addresses;
/// and what `network inspect` shows of each beyond the local record.
#[derive(Clone, Debug, Default)]
pub struct SwarmNames {
    pub by_network: HashMap<String, HashMap<String, Vec<Ipv4Addr>>>,
    pub details: HashMap<String, Arc<SwarmDetails>>,
}

/// A swarm network as the managers' view shows it on this node.
#[derive(Clone, Debug, Default)]
pub struct SwarmDetails {
    /// (name, VXLAN endpoint) of each node it spans
    pub peers: Vec<(String, String)>,
    pub services: Vec<SwarmServiceDetails>,
}

/// A service on a swarm network (`network inspect --verbose`).
#[derive(Clone, Debug, Default)]
pub struct SwarmServiceDetails {
    pub name: String,
    /// empty in dnsrr mode
    pub vip: String,
    /// "Target: 80, Publish: 8080" (ingress)
    pub ports: Vec<String>,
    /// (task's container name, task id, address, its node's endpoint)
    pub tasks: Vec<(String, String, String, String)>,
}

impl Engine {
    /// Instantiates a swarm network here (once; later calls change
    /// nothing) and reports its creation as dockerd does.
    pub fn network_adopt(&self, n: &SwarmNetwork) -> Result<()> {
        let made = if n.config_from.is_empty() {
            self.network_adopt_overlay(n)?
        } else {
            self.network_adopt_node_local(n)?
        };
        if made {
            self.object_event(
                "network",
                &n.id,
                "create",
                &[("name", n.name.clone()), ("type", n.driver.clone())],
            );
        }
        Ok(())
    }

    /// An overlay's record as the managers made it; true when it is new.
    fn network_adopt_overlay(&self, n: &SwarmNetwork) -> Result<bool> {
        let mut rec = NetworkRecord::bare(&n.name, &n.driver);
        rec.id = n.id.clone();
        rec.subnet = n.subnet.clone();
        rec.gateway = n.gateway.clone();
        rec.options = n.options.clone();
        rec.labels = n.labels.clone();
        rec.attachable = n.attachable;
        rec.internal = n.internal;
        rec.ingress = n.ingress;
        rec.scope = "swarm".into();
        self.networks.adopt(rec)
    }

    /// A node-local swarm network, made here from this node's
    /// configuration network (once); true when it is new.
    fn network_adopt_node_local(&self, n: &SwarmNetwork) -> Result<bool> {
        if self.networks.find_id(&n.id).is_some() {
            return Ok(false);
        }
        let req = berth_networks::CreateNetwork {
            id: Some(n.id.clone()),
            name: n.name.clone(),
            driver: n.driver.clone(),
            scope: "swarm".into(),
            config_from: Some(n.config_from.clone()),
            internal: n.internal,
            attachable: n.attachable,
            ..Default::default()
        };
        match self.networks.create(&req) {
            Ok(_) => Ok(true),
            // made a moment ago for another task
            Err(_) if self.networks.find_id(&n.id).is_some() => Ok(false),
            Err(e) => Err(e),
        }
    }

    /// The swarm networks instantiated here: (id, name).
    pub fn swarm_networks(&self) -> Vec<(String, String)> {
        self.networks
            .all()
            .into_iter()
            .filter(NetworkRecord::swarm_scoped)
            .map(|n| (n.id, n.name))
            .collect()
    }

    pub fn network_exists(&self, name: &str) -> bool {
        self.networks.find_id(name).is_some()
    }

    /// Replaces the swarm names the embedded DNS answers.
    pub fn set_swarm_names(&self, names: SwarmNames) {
        *self.swarm_names.w() = Arc::new(names);
    }

    /// What the managers' last view says of a swarm network here.
    pub(crate) fn swarm_details(&self, network_id: &str) -> Option<Arc<SwarmDetails>> {
        self.swarm_names.r().details.get(network_id).cloned()
    }

    /// `name` on the swarm networks `networks`, from the last view.
    pub(crate) fn swarm_lookup(&self, networks: &[&str], name: &str) -> Vec<Ipv4Addr> {
        let names = self.swarm_names.r().clone();
        let name = name.trim_end_matches('.').to_ascii_lowercase();
        let mut ips: Vec<Ipv4Addr> = networks
            .iter()
            .filter_map(|n| names.by_network.get(*n)?.get(&name))
            .flatten()
            .copied()
            .collect();
        ips.dedup();
        ips
    }

    /// A plumbed container's namespace and the swarm networks it is on
    /// (network id, its interface there), for its VIP table.
    pub fn swarm_endpoints(&self, container: &str) -> Option<(PathBuf, Vec<(String, String)>)> {
        let rec = self.get(container).ok()?.record();
        let swarm: Vec<String> = self
            .swarm_networks()
            .into_iter()
            .map(|(id, _)| id)
            .collect();
        let on: Vec<(String, String)> = rec
            .endpoints
            .values()
            .filter(|ep| swarm.contains(&ep.network_id))
            .map(|ep| (ep.network_id.clone(), ep.container_if.clone()))
            .collect();
        Some((self.container_netns(&rec)?, on))
    }
}

/// An address the managers gave a container on a swarm network.
#[derive(Clone, Debug, Default)]
pub struct SwarmAttachment {
    pub network: SwarmNetwork,
    /// "10.0.1.5/24"
    pub address: String,
}

type Boxed<'a, T> = std::pin::Pin<Box<dyn std::future::Future<Output = T> + Send + 'a>>;

/// The swarm agent's side of `docker run --network NET` with NET an
/// attachable swarm network (dockerd's `AttachNetwork`): the engine asks
/// it for the container's address there before plumbing its endpoints,
/// and gives the address back when the container stops.
pub trait SwarmAttacher: Send + Sync {
    /// The container's address on `network` (a name, id or id prefix), the
    /// network made ready on this node; `None` when the node is in no
    /// swarm (the name is then only looked up locally).
    fn attach<'a>(
        &'a self,
        network: &'a str,
        container_id: &'a str,
        container_name: &'a str,
    ) -> Boxed<'a, Result<Option<SwarmAttachment>>>;
    /// Gives back every address the container holds.
    fn detach<'a>(&'a self, container_id: &'a str) -> Boxed<'a, ()>;
    /// The container's endpoints are plumbed and its process has not
    /// started: its VIP table can be written.
    fn plumbed(&self, container_id: &str);
}

impl Engine {
    pub fn set_swarm_attacher(&self, attacher: Option<Arc<dyn SwarmAttacher>>) {
        *self.swarm_attacher.w() = attacher;
    }

    fn attacher(&self) -> Option<Arc<dyn SwarmAttacher>> {
        self.swarm_attacher.r().clone()
    }

    fn lock_detaching(
        &self,
    ) -> std::sync::MutexGuard<'_, HashMap<String, tokio::task::JoinHandle<()>>> {
        self.swarm_detaching
            .lock()
            .unwrap_or_else(|p| p.into_inner())
    }

    /// The attacher; for a container on an overlay this node has, at the
    /// daemon's start (restart policies run before the swarm is back),
    /// waited for up to a minute, as dockerd waits for its cluster.
    async fn attacher_for(&self, rec: &ContainerRecord) -> Option<Arc<dyn SwarmAttacher>> {
        let on_overlay = named_networks(rec)
            .iter()
            .any(|n| self.networks.record(n).is_ok_and(|n| n.managed_addresses()));
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
        loop {
            let a = self.attacher();
            if a.is_some() || !on_overlay || std::time::Instant::now() > deadline {
                return a;
            }
            tokio::time::sleep(std::time::Duration::from_millis(250)).await;
        }
    }

    /// An address the managers gave a running container before this
    /// daemon started (its agent finds it in their view): it is given back
    /// when the container stops.
    pub fn remember_swarm_address(&self, container: &str, network_id: &str, address: &str) {
        self.swarm_addresses
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .entry((container.to_string(), network_id.to_string()))
            .or_insert_with(|| address.to_string());
    }

    /// Before a container that is not a swarm task is plumbed: an address
    /// from the managers on each swarm network it names (one unknown here
    /// may be one: the managers say). Task containers carry theirs.
    pub(crate) async fn attach_swarm_networks(&self, rec: &ContainerRecord) -> Result<()> {
        if is_swarm_task(rec) {
            return Ok(());
        }
        // the last run's addresses go first: an attach must not find them
        // and see them given back after
        let pending = self.lock_detaching().remove(&rec.id);
        if let Some(h) = pending {
            let _ = h.await;
        }
        let Some(attacher) = self.attacher_for(rec).await else {
            return Ok(());
        };
        for name in named_networks(rec) {
            if self.networks.record(&name).is_ok_and(|n| !n.swarm_scoped()) {
                continue;
            }
            let Some(a) = attacher.attach(&name, &rec.id, &rec.name).await? else {
                return Ok(());
            };
            self.network_adopt(&a.network)?;
            self.swarm_addresses
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .insert((rec.id.clone(), a.network.id.clone()), a.address);
        }
        Ok(())
    }

    /// The address the managers gave the container on a swarm network.
    pub(crate) fn swarm_address(&self, container: &str, network_id: &str) -> Option<String> {
        let held = self
            .swarm_addresses
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        let cidr = held.get(&(container.to_string(), network_id.to_string()))?;
        Some(cidr.split('/').next().unwrap_or(cidr).to_string())
    }

    /// Tells the attacher that the container's endpoints are in place.
    pub(crate) fn swarm_plumbed(&self, rec: &ContainerRecord) {
        if let Some(a) = self.attacher()
            && !is_swarm_task(rec)
            && self.holds_swarm_addresses(&rec.id)
        {
            a.plumbed(&rec.id);
        }
    }

    fn holds_swarm_addresses(&self, container: &str) -> bool {
        let held = self
            .swarm_addresses
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        held.keys().any(|(c, _)| c == container)
    }

    /// A container that stopped (or failed to start) gives its swarm
    /// addresses back.
    pub(crate) fn detach_swarm_networks(&self, container: &str) {
        if !self.holds_swarm_addresses(container) {
            return;
        }
        self.swarm_addresses
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .retain(|(c, _), _| c != container);
        let (Some(attacher), Ok(rt)) = (self.attacher(), tokio::runtime::Handle::try_current())
        else {
            return;
        };
        let id = container.to_string();
        let h = rt.spawn(async move { attacher.detach(&id).await });
        let mut pending = self.lock_detaching();
        pending.retain(|_, h| !h.is_finished());
        pending.insert(container.to_string(), h);
    }
}

fn is_swarm_task(rec: &ContainerRecord) -> bool {
    rec.config
        .labels
        .as_ref()
        .is_some_and(|l| l.contains_key("com.docker.swarm.task.id"))
}

/// The networks a container names: its mode's and those it was connected
/// to, each once.
fn named_networks(rec: &ContainerRecord) -> Vec<String> {
    let mode = rec.host_config.network_mode.clone().unwrap_or_default();
    let mut out: Vec<String> = crate::networks::endpoint_network(&mode)
        .map(str::to_string)
        .into_iter()
        .collect();
    let mut extra: Vec<&String> = rec.endpoints_config.keys().collect();
    extra.sort();
    for k in extra {
        if *k != mode && !out.contains(k) {
            out.push(k.clone());
        }
    }
    out
}
