//! Addresses on swarm networks, given inside the store's apply as subnets
//! are: a task's when it is made, a service's VIPs when its networks are
//! set. Nothing is released by hand: an address is in use while its task
//! has not ended or its service exists, so a snapshot can never leak one.

use std::collections::HashSet;
use std::net::Ipv4Addr;

use crate::networks::{TaskAttachment, next_free_address};
use crate::services::{Endpoint, Service, Task, TaskState, VirtualIp};
use crate::store::{Kind, Object, Staged, StoreError};

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

    /// A new task's address on each network of its spec.
    pub(crate) fn attach_task(&mut self, t: &mut Task) -> Result<(), StoreError> {
        if !t.networks.is_empty() {
            return Ok(());
        }
        for a in t.spec.networks.clone() {
            if t.networks.iter().any(|x| x.network_id == a.target) {
                continue;
            }
            let addresses = self.take_address(&a.target)?.into_iter().collect();
            t.networks.push(TaskAttachment {
                network_id: a.target.clone(),
                addresses,
                aliases: a.aliases.clone(),
            });
        }
        Ok(())
    }

    /// A service's VIPs: one per network of its spec in vip mode, kept
    /// across updates; its ports as the spec publishes them.
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
            for a in s.spec.task_template.networks.clone() {
                if vips.iter().any(|v| v.network_id == a.target) {
                    continue;
                }
                if let Some(v) = kept.iter().find(|v| v.network_id == a.target) {
                    vips.push(v.clone());
                } else if let Some(addr) = self.take_address(&a.target)? {
                    vips.push(VirtualIp {
                        network_id: a.target.clone(),
                        addr,
                    });
                }
            }
        }
        s.endpoint = Endpoint {
            ports: s
                .spec
                .endpoint_spec
                .as_ref()
                .map(|e| e.ports.clone())
                .unwrap_or_default(),
            virtual_ips: vips,
        };
        Ok(())
    }
}
