//! Addresses on swarm networks, given inside the store's apply as subnets
//! are: a task's when it is made, a service's VIPs when its networks are
//! set. Nothing is released by hand: an address is in use while its task
//! has not ended or its service exists, so a snapshot can never leak one.

use std::collections::HashSet;
use std::net::Ipv4Addr;

use crate::networks::{TaskAttachment, next_free_address};
use crate::objects::Node;
use crate::services::{Endpoint, PortConfig, Service, Task, TaskState, VirtualIp};
use crate::store::{Kind, Object, Staged, StoreError, publishes_ingress};

/// "10.0.1.3/24" → 10.0.1.3
fn address_of(cidr: &str) -> Option<u32> {
    let ip: Ipv4Addr = cidr.split('/').next()?.parse().ok()?;
    Some(u32::from(ip))
}

impl Staged<'_> {
    /// The addresses in use on `net`, gathered once per batch and kept up
    /// to date with what the batch hands out (what it frees stays taken
    /// until the next batch: harmless).
    fn used_on(&mut self, net: &str) -> &mut HashSet<u32> {
        if !self.addresses.contains_key(net) {
            let mut used = HashSet::new();
            for o in self.all(Kind::Task) {
                if let Object::Task(t) = o
                    && t.status.state <= TaskState::Running
                {
                    used.extend(
                        t.networks
                            .iter()
                            .filter(|a| a.network_id == net)
                            .flat_map(|a| a.addresses.iter().filter_map(|c| address_of(c))),
                    );
                }
            }
            if self.ingress_id().as_deref() == Some(net) {
                for o in self.all(Kind::Node) {
                    if let Object::Node(n) = o {
                        used.extend(address_of(&n.ingress_addr));
                    }
                }
            }
            for o in self.all(Kind::Service) {
                if let Object::Service(s) = o {
                    used.extend(
                        s.endpoint
                            .virtual_ips
                            .iter()
                            .filter(|v| v.network_id == net)
                            .filter_map(|v| address_of(&v.addr)),
                    );
                }
            }
            self.addresses.insert(net.to_string(), used);
        }
        self.addresses.entry(net.to_string()).or_default()
    }

    /// The next free address of network `net` as "ip/prefix"; None for a
    /// network without a pool of its own (node-local ones).
    fn take_address(&mut self, net: &str) -> Result<Option<String>, StoreError> {
        let Some(Object::Network(n)) = self.current(Kind::Network, net).cloned() else {
            return Ok(None);
        };
        let Some((subnet, _, _)) = n.pool() else {
            return Ok(None);
        };
        let ip = next_free_address(&n, self.used_on(net)).ok_or_else(|| {
            StoreError::InvalidArgument(format!(
                "could not find an available IP on network {}",
                n.spec.name
            ))
        })?;
        self.used_on(net).insert(u32::from(ip));
        let mut moved = n;
        moved.ipam_cursor = u32::from(ip);
        // the cursor is bookkeeping: no event, no new version
        self.changes.insert(
            (Kind::Network, net.to_string()),
            Some(Object::Network(moved)),
        );
        Ok(Some(format!("{ip}/{}", subnet.prefix)))
    }

    /// The routing mesh's network, if the cluster has one.
    pub(crate) fn ingress_id(&self) -> Option<String> {
        self.all(Kind::Network).find_map(|o| match o {
            Object::Network(n) if n.spec.ingress => Some(n.id.clone()),
            _ => None,
        })
    }

    /// The ingress network's id when `service_id`'s ports go through the
    /// mesh.
    fn ingress_for(&self, service_id: &str) -> Option<String> {
        match self.current(Kind::Service, service_id) {
            Some(Object::Service(s)) if publishes_ingress(s) => self.ingress_id(),
            _ => None,
        }
    }

    /// A node's leg on the ingress network, when there is one.
    pub(crate) fn give_leg(&mut self, n: &mut Node) -> Result<(), StoreError> {
        if !n.ingress_addr.is_empty() {
            return Ok(());
        }
        // a full ingress subnet must not keep a node from joining: it
        // goes without a leg (its mesh does not answer) and says so
        if let Some(ingress) = self.ingress_id() {
            n.ingress_addr = self
                .take_address(&ingress)
                .ok()
                .flatten()
                .unwrap_or_default();
        }
        Ok(())
    }

    /// A new ingress network: every node gets its leg on it, a new one
    /// where a node still holds one on an ingress removed before (written
    /// without an event: the network's own creation tells the nodes).
    pub(crate) fn give_every_node_a_leg(&mut self) -> Result<(), StoreError> {
        let nodes: Vec<Node> = self
            .all(Kind::Node)
            .filter_map(|o| match o {
                Object::Node(n) => Some(n.clone()),
                _ => None,
            })
            .collect();
        for mut n in nodes {
            n.ingress_addr.clear();
            self.give_leg(&mut n)?;
            self.changes
                .insert((Kind::Node, n.id.clone()), Some(Object::Node(n)));
        }
        Ok(())
    }

    /// A task's address, or none when the network is full: that task
    /// fails on its node with swarmkit's words, and the rest of the batch
    /// (other services' tasks) still commits.
    fn address_or_none(&mut self, net: &str) -> Vec<String> {
        self.take_address(net).ok().flatten().into_iter().collect()
    }

    /// A new task's address on each network of its spec, after the
    /// ingress network's when its service publishes through the mesh.
    pub(crate) fn attach_task(&mut self, t: &mut Task) -> Result<(), StoreError> {
        if !t.networks.is_empty() {
            return Ok(());
        }
        if let Some(Object::Service(s)) = self.current(Kind::Service, &t.service_id) {
            t.ports = s.endpoint.ports.clone();
        }
        if let Some(ingress) = self.ingress_for(&t.service_id) {
            let addresses = self.address_or_none(&ingress);
            t.networks.push(TaskAttachment {
                network_id: ingress,
                addresses,
                aliases: Vec::new(),
            });
        }
        for a in t.spec.networks.clone() {
            if t.networks.iter().any(|x| x.network_id == a.target) {
                continue;
            }
            let addresses = self.address_or_none(&a.target);
            t.networks.push(TaskAttachment {
                network_id: a.target.clone(),
                addresses,
                aliases: a.aliases.clone(),
            });
        }
        Ok(())
    }

    /// A service's VIPs: one per network of its spec in vip mode (the
    /// ingress network's first when it publishes through the mesh), kept
    /// across updates; its ports as the mesh publishes them.
    pub(crate) fn assign_vips(
        &mut self,
        s: &mut Service,
        old: Option<&Service>,
    ) -> Result<(), StoreError> {
        let kept = old
            .map(|o| o.endpoint.virtual_ips.clone())
            .unwrap_or_default();
        let mut vips: Vec<VirtualIp> = Vec::new();
        if !s.spec.is_dnsrr() {
            let ingress = publishes_ingress(s).then(|| self.ingress_id()).flatten();
            let targets: Vec<String> = ingress
                .into_iter()
                .chain(
                    s.spec
                        .task_template
                        .networks
                        .iter()
                        .map(|a| a.target.clone()),
                )
                .collect();
            for target in targets {
                if vips.iter().any(|v| v.network_id == target) {
                    continue;
                }
                if let Some(v) = kept.iter().find(|v| v.network_id == target) {
                    vips.push(v.clone());
                } else if let Some(addr) = self.take_address(&target)? {
                    vips.push(VirtualIp {
                        network_id: target,
                        addr,
                    });
                }
            }
        }
        s.endpoint = Endpoint {
            ports: self.published_ports(s, old)?,
            virtual_ips: vips,
        };
        Ok(())
    }

    /// A service's ports as the mesh publishes them (swarmkit's port
    /// allocator): one asked for is taken if no other service has it; 0
    /// takes the first free of 30000-32767, kept across updates. Host-mode
    /// ports are the nodes' business and pass as given.
    fn published_ports(
        &self,
        s: &Service,
        old: Option<&Service>,
    ) -> Result<Vec<PortConfig>, StoreError> {
        let wanted = s
            .spec
            .endpoint_spec
            .as_ref()
            .map(|e| e.ports.clone())
            .unwrap_or_default();
        let mut taken: Vec<(String, u32, String, String)> = Vec::new();
        for o in self.all(Kind::Service) {
            if let Object::Service(other) = o
                && other.id != s.id
            {
                taken.extend(
                    other
                        .endpoint
                        .ports
                        .iter()
                        .filter(|p| is_ingress(p))
                        .map(|p| {
                            let port = p.published_port.unwrap_or(0);
                            (protocol(p), port, other.spec.name.clone(), other.id.clone())
                        }),
                );
            }
        }
        let before: Vec<PortConfig> = old.map(|o| o.endpoint.ports.clone()).unwrap_or_default();
        let mut out: Vec<PortConfig> = Vec::new();
        for mut p in wanted {
            let proto = protocol(&p);
            p.protocol = Some(proto.clone());
            if p.publish_mode.is_none() {
                p.publish_mode = Some("ingress".into());
            }
            if !is_ingress(&p) {
                out.push(p);
                continue;
            }
            let busy = |n: u32, out: &[PortConfig]| {
                taken
                    .iter()
                    .any(|(pr, port, _, _)| *pr == proto && *port == n)
                    || out
                        .iter()
                        .any(|o| protocol(o) == proto && o.published_port == Some(n))
            };
            let published = match p.published_port.filter(|n| *n > 0) {
                Some(n) => {
                    let holder = taken
                        .iter()
                        .find(|(pr, port, _, _)| *pr == proto && *port == n);
                    if let Some((_, _, name, id)) = holder {
                        return Err(StoreError::InvalidArgument(format!(
                            "port '{n}' is already in use by service '{name}' ({id}) as an ingress port"
                        )));
                    }
                    n
                }
                None => {
                    let kept = before
                        .iter()
                        .filter(|b| b.target_port == p.target_port && protocol(b) == proto)
                        .filter_map(|b| b.published_port)
                        .find(|n| !busy(*n, &out));
                    match kept {
                        Some(n) => n,
                        None => (DYNAMIC_PORTS.0..=DYNAMIC_PORTS.1)
                            .find(|n| !busy(*n, &out))
                            .ok_or_else(|| {
                                StoreError::InvalidArgument(
                                    "no free port left in the dynamic range 30000-32767".into(),
                                )
                            })?,
                    }
                }
            };
            p.published_port = Some(published);
            out.push(p);
        }
        Ok(out)
    }
}

/// swarmkit's range for the ports the mesh picks.
const DYNAMIC_PORTS: (u32, u32) = (30000, 32767);

fn protocol(p: &PortConfig) -> String {
    p.protocol.clone().unwrap_or_else(|| "tcp".into())
}

fn is_ingress(p: &PortConfig) -> bool {
    p.publish_mode.as_deref().is_none_or(|m| m == "ingress")
}
