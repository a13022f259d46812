//! Networks and containers' network settings as inspect and list show
//! them: berth's records with what is computed from the containers (the
//! Docker Engine API shapes them at its edge).

use std::collections::HashMap;
use std::sync::Arc;

use super::{EndpointRecord, NetworkRecord};
use crate::containers::ContainerRecord;
use crate::{Engine, Error, LockExt, Result};

/// A network as inspect and list show it.
#[derive(Debug, Clone)]
pub struct NetworkView {
    pub record: NetworkRecord,
    /// the containers with an endpoint on it (inspect only; none in a list)
    pub containers: Vec<NetworkContainerView>,
    /// a swarm network: its peers and services from the managers' last
    /// view (inspect only)
    pub swarm: Option<Arc<crate::SwarmDetails>>,
}

/// A container with an endpoint on a network.
#[derive(Debug, Clone)]
pub struct NetworkContainerView {
    pub id: String,
    pub name: String,
    pub endpoint: EndpointRecord,
}

impl Engine {
    /// The containers running on a network: name, endpoint.
    fn network_endpoints(&self, id: &str) -> Vec<(ContainerRecord, EndpointRecord)> {
        self.containers
            .r()
            .values()
            .map(|e| e.record())
            .filter_map(|r| {
                let ep = r.endpoints.values().find(|ep| ep.network_id == id)?.clone();
                Some((r, ep))
            })
            .collect()
    }

    pub fn network_inspect(&self, name: &str) -> Result<NetworkView> {
        let n = self.networks.record_for_inspect(name)?;
        let containers = self
            .network_endpoints(&n.id)
            .into_iter()
            .map(|(c, endpoint)| NetworkContainerView {
                id: c.id,
                name: c.name,
                endpoint,
            })
            .collect();
        let swarm = self.swarm_details(&n.id);
        Ok(NetworkView {
            record: n,
            containers,
            swarm,
        })
    }

    pub fn network_list(&self, filters: &HashMap<String, Vec<String>>) -> Result<Vec<NetworkView>> {
        for k in filters.keys() {
            if !matches!(
                k.as_str(),
                "name" | "id" | "driver" | "label" | "type" | "scope" | "dangling"
            ) {
                return Err(Error::invalid(format!("invalid filter '{k}'")));
            }
        }
        let nets: Vec<NetworkRecord> = self.networks.all();
        let mut out: Vec<NetworkView> = nets
            .into_iter()
            .filter(|n| {
                filters.iter().all(|(k, vals)| match k.as_str() {
                    "name" => vals.iter().any(|v| n.name.contains(v.as_str())),
                    "id" => vals.iter().any(|v| n.id.starts_with(v.as_str())),
                    "driver" => vals.contains(&n.driver),
                    "label" => crate::labels_match(&n.labels, vals),
                    "type" => vals.iter().any(|v| match v.as_str() {
                        "custom" => !n.predefined(),
                        "builtin" => n.predefined(),
                        _ => false,
                    }),
                    "scope" => vals.iter().any(|v| v == "local"),
                    "dangling" => {
                        let unused = n.predefined() || self.network_endpoints(&n.id).is_empty();
                        let unused = unused && !n.predefined();
                        vals.iter().any(|v| (v == "true" || v == "1") == unused)
                    }
                    _ => true,
                })
            })
            .map(|record| NetworkView {
                record,
                containers: Vec::new(),
                swarm: None,
            })
            .collect();
        out.sort_by(|a, b| a.record.name.cmp(&b.record.name));
        Ok(out)
    }
}
