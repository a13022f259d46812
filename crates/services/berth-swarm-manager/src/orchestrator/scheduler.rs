//! The scheduler: every task without a node gets the usable node with
//! the fewest tasks of its service, then the fewest tasks in all, among
//! those that pass swarmkit's filters. A task no node takes stays pending
//! and says why, in swarmkit's words.

use std::collections::HashMap;

use berth_swarm_store::{
    Action, Node, Object, Service, Store, Task, TaskPatch, TaskState, TaskStatus,
};
use chrono::{DateTime, Utc};

use super::constraints;
use super::plan::{node_usable, placement_constraints};

/// What a node already carries.
#[derive(Default, Clone)]
struct Load {
    total: usize,
    per_service: HashMap<String, usize>,
    nano_cpus: i64,
    memory_bytes: i64,
    /// host-mode ports in use: (protocol, port)
    host_ports: Vec<(String, u32)>,
}

/// swarmkit's filters, in its order, each with its explanation.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
enum Filter {
    Ready,
    Resources,
    Constraints,
    HostPorts,
    MaxReplicas,
}

impl Filter {
    const ALL: [Filter; 5] = [
        Filter::Ready,
        Filter::Resources,
        Filter::Constraints,
        Filter::HostPorts,
        Filter::MaxReplicas,
    ];

    fn explain(self, nodes: usize) -> String {
        let n = if nodes == 1 {
            "1 node".to_string()
        } else {
            format!("{nodes} nodes")
        };
        match self {
            Filter::Ready => format!("{n} not available for new tasks"),
            Filter::Resources => format!("insufficient resources on {n}"),
            Filter::Constraints => format!("scheduling constraints not satisfied on {n}"),
            Filter::HostPorts => format!("host-mode port already in use on {n}"),
            Filter::MaxReplicas => "max replicas per node limit exceed".into(),
        }
    }
}

fn uses_resources(t: &Task) -> bool {
    t.desired_state <= TaskState::Running && !t.status.state.is_terminal() && !t.node_id.is_empty()
}

fn reservations(t: &Task) -> (i64, i64) {
    let r = t
        .spec
        .resources
        .as_ref()
        .and_then(|r| r.reservations.as_ref());
    r.map_or((0, 0), |r| (r.nano_cpus, r.memory_bytes))
}

fn host_ports(s: Option<&Service>) -> Vec<(String, u32)> {
    let Some(ep) = s.and_then(|s| s.spec.endpoint_spec.as_ref()) else {
        return Vec::new();
    };
    ep.ports
        .iter()
        .filter(|p| p.publish_mode.as_deref() == Some("host"))
        .filter_map(|p| {
            let port = p.published_port.filter(|p| *p > 0)?;
            Some((p.protocol.clone().unwrap_or_else(|| "tcp".into()), port))
        })
        .collect()
}

pub struct Scheduler<'a> {
    store: &'a Store,
    loads: HashMap<String, Load>,
    now: DateTime<Utc>,
}

impl<'a> Scheduler<'a> {
    pub fn new(store: &'a Store, now: DateTime<Utc>) -> Scheduler<'a> {
        let mut loads: HashMap<String, Load> = HashMap::new();
        for t in store.tasks().filter(|t| uses_resources(t)) {
            let l = loads.entry(t.node_id.clone()).or_default();
            l.add(t, host_ports(store.service(&t.service_id)));
        }
        Scheduler { store, loads, now }
    }

    /// Places the tasks a pass creates, and writes the placement of the
    /// store's waiting tasks into `actions`.
    pub fn run(mut self, actions: &mut Vec<Action>) {
        let mut patched = std::collections::HashSet::new();
        for a in actions.iter_mut() {
            match a {
                Action::Create(Object::Task(t)) if t.node_id.is_empty() => self.place_new(t),
                Action::Create(Object::Task(t)) => self.count(t),
                Action::PatchTask { id, .. } => {
                    patched.insert(id.clone());
                }
                _ => {}
            }
        }
        let store = self.store;
        let waiting: Vec<&Task> = store
            .tasks()
            .filter(|t| t.node_id.is_empty() && t.status.state < TaskState::Assigned)
            .filter(|t| !patched.contains(&t.id))
            .collect();
        for t in waiting {
            if let Some(patch) = self.place_stored(t) {
                actions.push(Action::PatchTask {
                    id: t.id.clone(),
                    patch,
                });
            }
        }
    }

    fn count(&mut self, t: &Task) {
        let ports = host_ports(self.store.service(&t.service_id));
        self.loads
            .entry(t.node_id.clone())
            .or_default()
            .add(t, ports);
    }

    fn place_new(&mut self, t: &mut Task) {
        if t.desired_state > TaskState::Running {
            return;
        }
        match self.choose(t) {
            Ok(node) => {
                t.node_id = node;
                t.status = self.status(TaskState::Assigned, "scheduler assigned task to node", "");
                self.count(t);
            }
            Err(why) => t.status = self.status(TaskState::Pending, "pending task scheduling", &why),
        }
    }

    fn place_stored(&mut self, t: &Task) -> Option<TaskPatch> {
        if t.desired_state > TaskState::Running {
            // nothing ever ran it: it is shut down where it stands
            return Some(TaskPatch {
                status: Some(self.status(TaskState::Shutdown, "shutdown", "")),
                ..TaskPatch::default()
            });
        }
        let mut placed = t.clone();
        self.place_new(&mut placed);
        let unchanged = placed.node_id.is_empty()
            && placed.status.err == t.status.err
            && t.status.state == TaskState::Pending;
        if unchanged {
            return None;
        }
        Some(TaskPatch {
            status: Some(placed.status),
            node_id: (!placed.node_id.is_empty()).then_some(placed.node_id),
            ..TaskPatch::default()
        })
    }

    fn status(&self, state: TaskState, message: &str, err: &str) -> TaskStatus {
        TaskStatus {
            timestamp: Some(self.now),
            state,
            message: message.into(),
            err: err.into(),
            ..TaskStatus::default()
        }
    }

    /// The node for `t`, or swarmkit's explanation of why none fits.
    fn choose(&self, t: &Task) -> Result<String, String> {
        let service = self.store.service(&t.service_id);
        let constraints = service.map(placement_constraints).unwrap_or_default();
        let ports = host_ports(service);
        let max = t.spec.placement.as_ref().map_or(0, |p| p.max_replicas);
        let mut failures: HashMap<Filter, usize> = HashMap::new();
        let mut best: Option<(&Node, (usize, usize))> = None;
        let empty = Load::default();
        for n in self.store.nodes() {
            let load = self.loads.get(&n.id).unwrap_or(&empty);
            let check = |f: Filter| match f {
                Filter::Ready => node_usable(n),
                Filter::Resources => fits(t, n, load),
                Filter::Constraints => constraints::node_matches(&constraints, n),
                Filter::HostPorts => !ports.iter().any(|p| load.host_ports.contains(p)),
                Filter::MaxReplicas => {
                    max == 0
                        || (load.per_service.get(&t.service_id).copied().unwrap_or(0) as u64) < max
                }
            };
            if let Some(f) = Filter::ALL.into_iter().find(|f| !check(*f)) {
                *failures.entry(f).or_default() += 1;
                continue;
            }
            let rank = (
                load.per_service.get(&t.service_id).copied().unwrap_or(0),
                load.total,
            );
            if best.is_none_or(|(_, r)| rank < r) {
                best = Some((n, rank));
            }
        }
        if let Some((n, _)) = best {
            return Ok(n.id.clone());
        }
        Err(explain(failures))
    }
}

fn fits(t: &Task, n: &Node, load: &Load) -> bool {
    let (cpus, mem) = reservations(t);
    if cpus == 0 && mem == 0 {
        return true;
    }
    let d = &n.description;
    cpus <= d.nano_cpus - load.nano_cpus && mem <= d.memory_bytes - load.memory_bytes
}

fn explain(failures: HashMap<Filter, usize>) -> String {
    let mut sorted: Vec<(Filter, usize)> = failures.into_iter().collect();
    // most failures first; ties in swarmkit's filter order
    sorted.sort_by_key(|(f, n)| {
        let order = Filter::ALL.iter().position(|x| x == f).unwrap_or(0);
        (std::cmp::Reverse(*n), order)
    });
    let parts: Vec<String> = sorted.iter().map(|(f, n)| f.explain(*n)).collect();
    if parts.is_empty() {
        "no suitable node".into()
    } else {
        format!("no suitable node ({})", parts.join("; "))
    }
}

impl Load {
    fn add(&mut self, t: &Task, ports: Vec<(String, u32)>) {
        self.total += 1;
        *self.per_service.entry(t.service_id.clone()).or_default() += 1;
        let (cpus, mem) = reservations(t);
        self.nano_cpus += cpus;
        self.memory_bytes += mem;
        self.host_ports.extend(ports);
    }
}
