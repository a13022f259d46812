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
}

/// The names on each swarm network, lowercase, with their addresses.
#[derive(Clone, Debug, Default)]
pub struct SwarmNames {
    pub by_network: HashMap<String, HashMap<String, Vec<Ipv4Addr>>>,
}

impl Engine {
    /// Instantiates a swarm network here (once; later calls change
    /// nothing) and reports its creation as dockerd does.
    pub fn network_adopt(&self, n: &SwarmNetwork) -> Result<()> {
        let mut rec = NetworkRecord::bare(&n.name, &n.driver);
        rec.id = n.id.clone();
        rec.subnet = n.subnet.clone();
        rec.gateway = n.gateway.clone();
        rec.options = n.options.clone();
        rec.labels = n.labels.clone();
        rec.attachable = n.attachable;
        rec.internal = n.internal;
        rec.scope = "swarm".into();
        if self.networks.adopt(rec)? {
            self.object_event(
                "network",
                &n.id,
                "create",
                &[("name", n.name.clone()), ("type", n.driver.clone())],
            );
        }
        Ok(())
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

    /// A running container's namespace and the swarm networks it is on
    /// (network id, its interface there), for its VIP table.
    pub fn swarm_endpoints(&self, container: &str) -> Option<(PathBuf, Vec<(String, String)>)> {
        let rec = self.get(container).ok()?.record();
        if rec.state.status != crate::containers::Status::Running {
            return None;
        }
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
