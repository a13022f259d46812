//! The swarm agent's network side: turns the managers' network views
//! into this node's state. A task's networks are instantiated when the
//! task is prepared, with its peers written before it starts; each new
//! view rewrites peers, the embedded DNS's names and the VIP table of
//! every local task container, and lets go of networks no task here
//! uses any more.

use std::collections::{BTreeSet, HashMap};
use std::net::Ipv4Addr;
use std::sync::{Arc, Mutex};

use berth_core::container::{EndpointConfig, EndpointIpamConfig};
use berth_engine::{
    CreateNetwork, Engine, SwarmDetails, SwarmNames, SwarmNetwork, SwarmServiceDetails,
};
use berth_overlay::{OverlayDriver, Peer, mesh, vip};
use berth_swarm_manager::executor::{NetworkView, ServiceRecord};
use berth_swarm_store::{Task, TaskAttachment};

/// The local bridge network every task on a swarm network also joins: its
/// default route and its host-mode ports (dockerd's name; the Linux
/// bridge is berth's).
pub const GWBRIDGE: &str = "docker_gwbridge";
const GWBRIDGE_IF: &str = "berth_gwbridge";

/// Gives back a container's attachments (container id, their task ids).
pub type Detacher = Box<dyn Fn(String, Vec<String>) + Send + Sync>;

pub struct NetPlane {
    engine: Arc<Engine>,
    overlay: Arc<OverlayDriver>,
    state: Mutex<State>,
    detacher: std::sync::OnceLock<Detacher>,
}

#[derive(Default)]
struct State {
    node_id: String,
    views: Arc<HashMap<String, NetworkView>>,
    /// container id → (pid, the VIP table last written into it)
    written: HashMap<String, (i64, String)>,
    /// the mesh's table last written into the node's namespace
    mesh: Option<String>,
    /// containers of the node's own attached to swarm networks (`docker
    /// run --network`) → those networks, kept here whatever a view says
    attached: HashMap<String, BTreeSet<String>>,
    /// attachments given back for a container that had stopped meanwhile
    given_back: BTreeSet<String>,
}

fn ip_of(cidr: &str) -> Option<Ipv4Addr> {
    cidr.split('/').next()?.parse().ok()
}

fn prefix_of(cidr: &str) -> Option<u8> {
    cidr.split('/').nth(1)?.parse().ok()
}

impl NetPlane {
    pub fn new(engine: Arc<Engine>, overlay: Arc<OverlayDriver>) -> NetPlane {
        NetPlane {
            engine,
            overlay,
            state: Mutex::new(State::default()),
            detacher: std::sync::OnceLock::new(),
        }
    }

    /// How the plane gives back attachments it finds stale.
    pub fn set_detacher(&self, d: Detacher) {
        let _ = self.detacher.set(d);
    }

    /// Giving these back failed: the next view tries again.
    pub fn give_back_failed(&self, task_ids: &[String]) {
        self.state().given_back.retain(|id| !task_ids.contains(id));
    }

    /// This node's attachments in the managers' view, after a daemon
    /// restart: a running container's are kept again (given back when it
    /// stops); a container gone or stopped meanwhile gives its back, once
    /// (again if giving back failed).
    fn reconcile_attachments(&self, views: &HashMap<String, NetworkView>) {
        let Some(detach) = self.detacher.get() else {
            return;
        };
        let me = self.state().node_id.clone();
        let listed = |id: &String| {
            views
                .values()
                .any(|v| v.endpoints.iter().any(|e| &e.task_id == id))
        };
        self.state().given_back.retain(listed);
        let mut stale: HashMap<String, Vec<String>> = HashMap::new();
        let mine = views.iter().flat_map(|(net, v)| {
            v.endpoints
                .iter()
                .filter(|e| e.node_id == me)
                .filter_map(move |e| Some((net, e, e.container.as_ref()?)))
        });
        for (net, e, c) in mine {
            let st = self.state();
            if st.attached.contains_key(c) || st.given_back.contains(&e.task_id) {
                continue;
            }
            drop(st);
            use berth_engine::Status;
            match self
                .engine
                .container_inspect(c, false)
                .map(|v| v.record.state.status)
            {
                Ok(Status::Running) => {
                    self.engine.remember_swarm_address(c, net, &e.address);
                    let mut st = self.state();
                    st.attached
                        .entry(c.clone())
                        .or_default()
                        .insert(net.clone());
                }
                Err(_) | Ok(Status::Exited | Status::Dead) => {
                    stale.entry(c.clone()).or_default().push(e.task_id.clone());
                }
                Ok(_) => {}
            }
        }
        for (container, tasks) in stale {
            self.state().given_back.extend(tasks.iter().cloned());
            detach(container, tasks);
        }
    }

    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn views(&self) -> Arc<HashMap<String, NetworkView>> {
        self.state().views.clone()
    }

    /// A new set of views: peers, names and VIP tables follow it; networks
    /// no task here uses go. `containers` are this node's task containers.
    pub fn update(&self, node_id: &str, views: Vec<NetworkView>, port: u16, containers: &[String]) {
        self.overlay.set_port(port);
        let mut views: HashMap<String, NetworkView> = views
            .into_iter()
            .map(|v| (v.network.id.clone(), v))
            .collect();
        {
            let mut st = self.state();
            // an attachment newer than the view keeps the one it came with
            for id in st.attached.values().flatten() {
                if !views.contains_key(id)
                    && let Some(v) = st.views.get(id)
                {
                    views.insert(id.clone(), v.clone());
                }
            }
            st.node_id = node_id.to_string();
            st.views = Arc::new(views);
        }
        let views = self.views();
        self.engine.set_swarm_names(names(&views));
        self.reconcile_attachments(&views);
        let pinned: BTreeSet<String> = self.state().attached.values().flatten().cloned().collect();
        for (id, name) in self.engine.swarm_networks() {
            match views.get(&id) {
                Some(v) if v.network.spec.node_local() => {}
                Some(v) => self.program_peers(v),
                // an attachment the managers have given and this view,
                // made before, does not show yet
                None if pinned.contains(&id) => {}
                // a network no task here is on any more (one still in use
                // by a container refuses, and goes with a later view)
                None => {
                    if self.engine.network_remove(&id).is_ok() {
                        tracing::debug!(network = %name, "swarm network left this node");
                    }
                }
            }
        }
        match views.values().find(|v| v.network.spec.ingress) {
            Some(ingress) => self.mesh(ingress),
            None => self.write_mesh(&[]),
        }
        let attached: Vec<String> = self.state().attached.keys().cloned().collect();
        for c in containers.iter().chain(&attached) {
            self.write_vips(c);
        }
    }

    /// A container of the node's own is asking for an address: none of its
    /// attachments is stale meanwhile.
    pub fn attaching(&self, container: &str) {
        self.state()
            .attached
            .entry(container.to_string())
            .or_default();
    }

    /// A container of the node's own got an address on a swarm network:
    /// the network is made ready here from the managers' view of it
    /// (peers, names), and kept while the container holds it.
    pub fn attached(&self, container: &str, view: NetworkView) -> Result<SwarmNetwork, String> {
        let id = view.network.id.clone();
        {
            let mut st = self.state();
            st.attached
                .entry(container.to_string())
                .or_default()
                .insert(id.clone());
            let mut views = (*st.views).clone();
            views.insert(id, view.clone());
            st.views = Arc::new(views);
        }
        self.engine.set_swarm_names(names(&self.views()));
        self.adopt(&view)?;
        Ok(swarm_network(&view))
    }

    /// The container gave its attachments back: its networks go with the
    /// next view that has no other use for them.
    pub fn detached(&self, container: &str) {
        let mut st = self.state();
        st.attached.remove(container);
        st.written.remove(container);
    }

    /// The routing mesh on this node: the ingress network, the node's leg
    /// on it, and the published ports DNATed to the serving tasks.
    fn mesh(&self, v: &NetworkView) {
        if let Err(e) = self.adopt(v) {
            tracing::warn!(error = %e, "joining the ingress network");
            return;
        }
        let me = self.state().node_id.clone();
        let leg = v
            .legs
            .iter()
            .find(|l| l.node_id == me)
            .and_then(|l| Some((ip_of(&l.address)?, prefix_of(&l.address)?)));
        if let Some((ip, prefix)) = leg
            && let Err(e) = self
                .overlay
                .ensure_leg(&v.network.id, mesh::LEG, ip, prefix)
        {
            tracing::warn!(error = %e, "plugging the node into the ingress network");
            return;
        }
        let mut ports = Vec::new();
        for s in &v.services {
            let backends: Vec<Ipv4Addr> = serving_on(v, s).collect();
            for p in s
                .ports
                .iter()
                .filter(|p| p.publish_mode.as_deref() != Some("host"))
            {
                let (Some(port), Ok(target)) = (
                    p.published_port.and_then(|n| u16::try_from(n).ok()),
                    u16::try_from(p.target_port),
                ) else {
                    continue;
                };
                ports.push(mesh::Published {
                    protocol: p.protocol.clone().unwrap_or_else(|| "tcp".into()),
                    port,
                    target,
                    backends: backends.clone(),
                });
            }
        }
        self.write_mesh(&ports);
    }

    fn write_mesh(&self, ports: &[mesh::Published]) {
        let script = mesh::host_script(ports);
        // the first write after start clears what a previous run left
        if self.state().mesh.as_deref() == Some(script.as_str()) {
            return;
        }
        match berth_bridge::nft::apply(&script) {
            Ok(()) => self.state().mesh = Some(script),
            Err(e) => tracing::warn!(error = %e, "writing the routing mesh's table"),
        }
    }

    fn program_peers(&self, v: &NetworkView) {
        let me = self.state().node_id.clone();
        let tasks = v
            .endpoints
            .iter()
            .map(|e| (&e.node_id, &e.address, &e.vtep));
        let legs = v.legs.iter().map(|l| (&l.node_id, &l.address, &l.vtep));
        let peers: BTreeSet<Peer> = tasks
            .chain(legs)
            .filter(|(node, _, _)| **node != me)
            .filter_map(|(_, address, vtep)| {
                Some(Peer {
                    ip: ip_of(address)?,
                    vtep: vtep.parse().ok()?,
                })
            })
            .collect();
        if let Err(e) = self.overlay.set_peers(&v.network.id, peers) {
            tracing::warn!(network = %v.network.spec.name, error = %e, "writing overlay peers");
        }
    }

    /// A task's endpoints: its address on each of its swarm networks
    /// (instantiated here now, peers written) and the gateway bridge. The
    /// first swarm network is the container's network mode.
    pub fn endpoints(
        &self,
        t: &Task,
    ) -> Result<(Option<String>, HashMap<String, EndpointConfig>), String> {
        let mut endpoints = HashMap::new();
        let mut mode = None;
        if t.networks.is_empty() {
            return Ok((mode, endpoints));
        }
        let views = self.views();
        for a in &t.networks {
            let v = views.get(&a.network_id).ok_or_else(|| {
                format!("network {} is not in this node's assignments", a.network_id)
            })?;
            if v.network.spec.node_local() {
                let (name, endpoint) = self.node_local_endpoint(t, a, v)?;
                mode.get_or_insert_with(|| name.clone());
                endpoints.insert(name, endpoint);
                continue;
            }
            if a.addresses.is_empty() {
                // the managers found the network full (swarmkit's words)
                return Err(format!(
                    "could not find an available IP on network {}",
                    v.network.spec.name
                ));
            }
            self.adopt(v)?;
            let name = v.network.spec.name.clone();
            mode.get_or_insert_with(|| name.clone());
            endpoints.insert(
                name,
                EndpointConfig {
                    ipam_config: Some(EndpointIpamConfig {
                        ipv4_address: a
                            .addresses
                            .first()
                            .and_then(|c| ip_of(c))
                            .map(|ip| ip.to_string()),
                        ..EndpointIpamConfig::default()
                    }),
                    // a service alias is the service's name (its VIP),
                    // answered from the managers' view, not this container's
                    ..EndpointConfig::default()
                },
            );
        }
        // overlays go out through the gateway bridge; a node-local network
        // has its own gateway
        let outbound = t.networks.iter().any(|a| {
            views
                .get(&a.network_id)
                .is_some_and(|v| !v.network.spec.internal && !v.network.spec.node_local())
        });
        if outbound {
            self.ensure_gwbridge()?;
            endpoints.insert(GWBRIDGE.to_string(), EndpointConfig::default());
        }
        Ok((mode, endpoints))
    }

    /// A task's endpoint on a node-local network: an address from this
    /// node's pool, the service's name and aliases answered by this node's
    /// DNS with its own tasks (there is no VIP on such a network).
    fn node_local_endpoint(
        &self,
        t: &Task,
        a: &TaskAttachment,
        v: &NetworkView,
    ) -> Result<(String, EndpointConfig), String> {
        self.engine
            .network_adopt(&swarm_network(v))
            .map_err(|e| format!("network {}: {e}", v.network.spec.name))?;
        let mut aliases = vec![t.service_name.clone()];
        aliases.extend(a.aliases.iter().cloned());
        let endpoint = EndpointConfig {
            aliases: Some(aliases),
            ..EndpointConfig::default()
        };
        Ok((v.network.spec.name.clone(), endpoint))
    }

    fn adopt(&self, v: &NetworkView) -> Result<(), String> {
        // the managers name no two networks alike: a namesake here is what
        // is left of a removed one (`stack rm`, then `stack deploy` again),
        // let go now unless a container still holds it
        for (id, name) in self.engine.swarm_networks() {
            if name == v.network.spec.name
                && id != v.network.id
                && self.engine.network_remove(&id).is_ok()
            {
                tracing::debug!(network = %name, "a removed namesake left this node");
            }
        }
        self.engine
            .network_adopt(&swarm_network(v))
            .map_err(|e| format!("network {}: {e}", v.network.spec.name))?;
        self.program_peers(v);
        Ok(())
    }

    fn ensure_gwbridge(&self) -> Result<(), String> {
        if self.engine.network_exists(GWBRIDGE) {
            return Ok(());
        }
        let opts = [
            ("com.docker.network.bridge.name", GWBRIDGE_IF),
            ("com.docker.network.bridge.enable_icc", "false"),
            ("com.docker.network.bridge.enable_ip_masquerade", "true"),
        ];
        let req = CreateNetwork {
            name: GWBRIDGE.into(),
            driver: "bridge".into(),
            options: opts
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            ..CreateNetwork::default()
        };
        match self.engine.network_create(&req) {
            Ok(_) => Ok(()),
            // made a moment ago by another task
            Err(_) if self.engine.network_exists(GWBRIDGE) => Ok(()),
            Err(e) => Err(format!("creating {GWBRIDGE}: {e}")),
        }
    }

    /// Writes a running container's VIP table if what it should hold
    /// changed (or the container restarted, with a new namespace).
    pub fn write_vips(&self, container: &str) {
        let Some((netns, nets)) = self.engine.swarm_endpoints(container) else {
            return;
        };
        let Ok(v) = self.engine.container_inspect(container, false) else {
            return;
        };
        let (id, pid) = (v.record.id.clone(), v.record.state.pid);
        let views = self.views();
        let balanced: Vec<vip::Balanced> = nets
            .iter()
            .filter_map(|(n, _)| views.get(n))
            .filter(|v| !v.network.spec.ingress)
            .flat_map(balanced_on)
            .collect();
        // a task on ingress answers the mesh back through the leg each
        // connection came in by
        let ingress = nets.iter().find_map(|(n, ifname)| {
            Some((views.get(n).filter(|v| v.network.spec.ingress)?, ifname))
        });
        let legs: Vec<Ipv4Addr> = ingress
            .map(|(v, _)| v.legs.iter().filter_map(|l| ip_of(&l.address)).collect())
            .unwrap_or_default();
        let extra = ingress
            .map(|(_, ifname)| mesh::task_rules(ifname, &legs))
            .unwrap_or_default();
        let script = vip::script_with(&balanced, &extra);
        if self.state().written.get(&id) == Some(&(pid, script.clone())) {
            return;
        }
        let routes = match ingress {
            Some((_, ifname)) => mesh::apply_task_routes(&netns, ifname, &legs),
            None => Ok(()),
        };
        match routes.and_then(|()| vip::apply(&netns, script.clone())) {
            Ok(()) => {
                self.state().written.insert(id, (pid, script));
            }
            Err(e) => tracing::warn!(container = %&id[..12], error = %e, "writing the VIP table"),
        }
    }

    pub fn forget(&self, container: &str) {
        self.state()
            .written
            .retain(|id, _| !id.starts_with(container));
    }
}

/// The network as the engine records it on this node.
fn swarm_network(v: &NetworkView) -> SwarmNetwork {
    let n = &v.network;
    let pool = n.ipam.configs.first();
    SwarmNetwork {
        id: n.id.clone(),
        name: n.spec.name.clone(),
        driver: n.spec.driver.clone(),
        subnet: pool.map(|c| c.subnet.clone()).unwrap_or_default(),
        gateway: pool.map(|c| c.gateway.clone()).unwrap_or_default(),
        options: n.driver_options.clone().into_iter().collect(),
        labels: n.spec.labels.clone().into_iter().collect(),
        attachable: n.spec.attachable,
        internal: n.spec.internal,
        config_from: n.spec.config_from.clone(),
        ingress: n.spec.ingress,
    }
}

/// What `network inspect` shows of a swarm network beyond its record:
/// the nodes it spans and, verbose, each service with its serving tasks.
fn details_of(v: &NetworkView) -> SwarmDetails {
    let services = v
        .services
        .iter()
        .map(|s| SwarmServiceDetails {
            name: s.name.clone(),
            vip: ip_of(&s.vip).map(|ip| ip.to_string()).unwrap_or_default(),
            ports: s
                .ports
                .iter()
                .filter(|p| p.publish_mode.as_deref() != Some("host"))
                .filter_map(|p| {
                    let published = p.published_port?;
                    Some(format!("Target: {}, Publish: {published}", p.target_port))
                })
                .collect(),
            tasks: v
                .endpoints
                .iter()
                .filter(|e| e.serving && e.service_id == s.id)
                .map(|e| {
                    let ip = ip_of(&e.address)
                        .map(|ip| ip.to_string())
                        .unwrap_or_default();
                    (e.name.clone(), e.task_id.clone(), ip, e.vtep.clone())
                })
                .collect(),
        })
        .collect();
    SwarmDetails {
        peers: v
            .peers
            .iter()
            .map(|p| (p.name.clone(), p.ip.clone()))
            .collect(),
        services,
    }
}

fn serving_on<'a>(v: &'a NetworkView, s: &'a ServiceRecord) -> impl Iterator<Item = Ipv4Addr> + 'a {
    v.endpoints
        .iter()
        .filter(move |e| e.serving && e.service_id == s.id)
        .filter_map(|e| ip_of(&e.address))
}

/// Each service's VIP on one network and its serving tasks there.
fn balanced_on(v: &NetworkView) -> Vec<vip::Balanced> {
    let short = |id: &str| id.get(..12).unwrap_or(id).to_string();
    v.services
        .iter()
        .filter_map(|s| {
            Some(vip::Balanced {
                id: format!("{}{}", short(&s.id), short(&v.network.id)),
                vip: ip_of(&s.vip)?,
                backends: serving_on(v, s).collect(),
            })
        })
        .collect()
}

/// The names each network answers: a service and its aliases (its VIP,
/// or its serving tasks in dnsrr mode), `tasks.` of each (the serving
/// tasks), and each live task's container name.
fn names(views: &HashMap<String, NetworkView>) -> SwarmNames {
    let mut out = SwarmNames::default();
    for (id, v) in views {
        out.details.insert(id.clone(), Arc::new(details_of(v)));
    }
    // nothing resolves on ingress, as in Docker
    for (id, v) in views.iter().filter(|(_, v)| !v.network.spec.ingress) {
        let mut map: HashMap<String, Vec<Ipv4Addr>> = HashMap::new();
        for s in &v.services {
            let tasks: Vec<Ipv4Addr> = serving_on(v, s).collect();
            let answer = match ip_of(&s.vip) {
                Some(vip) => vec![vip],
                None => tasks.clone(),
            };
            for name in std::iter::once(&s.name).chain(&s.aliases) {
                let name = name.to_ascii_lowercase();
                map.insert(format!("tasks.{name}"), tasks.clone());
                map.insert(name, answer.clone());
            }
        }
        for e in &v.endpoints {
            if let Some(ip) = ip_of(&e.address) {
                map.insert(e.name.to_ascii_lowercase(), vec![ip]);
            }
        }
        map.retain(|_, ips| !ips.is_empty());
        out.by_network.insert(id.clone(), map);
    }
    out
}
