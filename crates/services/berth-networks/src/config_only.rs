//! Configuration-only networks (`network create --config-only`): a
//! subnet, gateway and driver options kept under a name, for networks
//! made `--config-from` it. Swarm uses them for node-local networks: each
//! node holds its own configuration under the same name.

use berth_core::store::{MetadataStoreExt, Table};
use berth_ipnet::Subnet;

use super::*;

impl NetworkService {
    /// Records a configuration network: nothing is made, no pool is held
    /// (dockerd's libnetwork neither allocates nor plumbs it).
    pub(crate) fn create_config_only(&self, req: &CreateNetwork) -> Result<NetworkRecord> {
        if req.internal || req.attachable || !req.scope.is_empty() {
            return Err(Error::Forbidden(
                "configuration network can only contain network specific fields. Network operator fields like [ ingress | internal | attachable | scope ] are not supported.".into(),
            ));
        }
        if req.config_from.is_some() {
            return Err(Error::Forbidden(
                "a configuration network cannot depend on another configuration network".into(),
            ));
        }
        let name = req.name.trim();
        let mut rec = NetworkRecord::bare(name, "null");
        rec.config_only = true;
        rec.labels = req.labels.clone();
        rec.options = req.options.clone();
        rec.ipam_options = req.ipam_options.clone();
        for pool in &req.ipam {
            let v6 = pool.subnet.contains(':');
            if !v6 {
                Subnet::parse(&pool.subnet)
                    .map_err(|_| Error::invalid(format!("invalid subnet: {}", pool.subnet)))?;
            }
            let (subnet, gateway) = if v6 {
                (&mut rec.subnet6, &mut rec.gateway6)
            } else {
                rec.ip_range = pool.ip_range.clone();
                rec.aux_addresses = pool.aux_addresses.clone();
                (&mut rec.subnet, &mut rec.gateway)
            };
            *subnet = pool.subnet.clone();
            *gateway = pool.gateway.clone().unwrap_or_default();
        }
        let _one_at_a_time = CREATE.lock().unwrap_or_else(|p| p.into_inner());
        if self.r().by_name(name).is_some() {
            return Err(Error::conflict(format!(
                "network with name {name} already exists"
            )));
        }
        self.meta.put_json(Table::Networks, &rec.id, &rec)?;
        self.state.w().by_id.insert(rec.id.clone(), rec.clone());
        Ok(rec)
    }

    /// `req` with its settings taken from the configuration network
    /// `from`, which it may not set itself (libnetwork's checks).
    pub(crate) fn configured_from(&self, req: &CreateNetwork, from: &str) -> Result<CreateNetwork> {
        let user_config = !req.ipam.is_empty()
            || !req.labels.is_empty()
            || req.ipam_options.is_some()
            || req.enable_ipv6 == Some(true);
        if user_config {
            return Err(Error::Forbidden(
                "user-specified configurations are not supported if the network depends on a configuration network".into(),
            ));
        }
        if !req.options.is_empty() {
            return Err(Error::Forbidden(
                "network driver options are not supported if the network depends on a configuration network".into(),
            ));
        }
        let cfg = self
            .r()
            .by_name(from)
            .filter(|n| n.config_only)
            .cloned()
            .ok_or_else(|| {
                Error::not_found(format!("configuration network \"{from}\" does not exist"))
            })?;
        let mut ipam = Vec::new();
        if !cfg.subnet.is_empty() {
            ipam.push(IpamPool {
                subnet: cfg.subnet.clone(),
                ip_range: cfg.ip_range.clone(),
                gateway: Some(cfg.gateway.clone()).filter(|g| !g.is_empty()),
                aux_addresses: cfg.aux_addresses.clone(),
            });
        }
        if !cfg.subnet6.is_empty() {
            ipam.push(IpamPool {
                subnet: cfg.subnet6.clone(),
                gateway: Some(cfg.gateway6.clone()).filter(|g| !g.is_empty()),
                ..IpamPool::default()
            });
        }
        Ok(CreateNetwork {
            ipam,
            enable_ipv6: Some(!cfg.subnet6.is_empty()),
            labels: cfg.labels,
            options: cfg.options,
            ipam_options: cfg.ipam_options,
            ..req.clone()
        })
    }

    /// A configuration network goes once no network takes its settings.
    pub(crate) fn remove_config_only(&self, n: &NetworkRecord) -> Result<()> {
        if self.r().by_id.values().any(|o| o.config_from == n.name) {
            return Err(Error::Forbidden(format!(
                "configuration network \"{}\" is in use",
                n.name
            )));
        }
        self.meta.delete(Table::Networks, &n.id)?;
        self.state.w().by_id.remove(&n.id);
        Ok(())
    }
}
