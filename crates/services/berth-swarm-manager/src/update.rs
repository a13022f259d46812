//! `POST /swarm/update`: the cluster's spec replaced whole, as swarmkit's
//! `UpdateCluster` does, with join tokens rotated on request and root CA
//! changes started. The client's version rides in the write: the store
//! refuses it if another write came first ("update out of sequence").

use std::collections::HashSet;

use berth_swarm_ca::{JoinToken, MIN_NODE_CERT_EXPIRY, RootCa};
use berth_swarm_store::{Action, Cluster, ClusterSpec, DEFAULT_CLUSTER_NAME, Object};

use crate::autolock::next_unlock_key;
use crate::ca_rotation::next_root_ca;
use crate::external_ca::reachable_roots;
use crate::{Swarm, SwarmError};

/// The `rotate…` query flags of the update.
#[derive(Clone, Copy, Debug, Default)]
pub struct UpdateFlags {
    pub rotate_worker_token: bool,
    pub rotate_manager_token: bool,
    pub rotate_manager_unlock_key: bool,
}

fn invalid(desc: impl Into<String>) -> SwarmError {
    SwarmError::Rpc {
        code: "InvalidArgument",
        desc: desc.into(),
    }
}

/// swarmkit's `validateClusterSpec`.
pub fn validate_spec(spec: &ClusterSpec) -> Result<(), SwarmError> {
    if spec.node_cert_expiry != 0
        && u128::try_from(spec.node_cert_expiry).unwrap_or(0) < MIN_NODE_CERT_EXPIRY.as_nanos()
    {
        return Err(invalid("minimum certificate expiry time is: 1h0m0s"));
    }
    if spec.dispatcher_heartbeat_period < 0 {
        return Err(invalid(
            "heartbeat time period cannot be a negative duration",
        ));
    }
    if spec.annotations.name != DEFAULT_CLUSTER_NAME {
        return Err(invalid("modification of cluster name is not allowed"));
    }
    Ok(())
}

/// The cluster after the update, before the store checks its version.
pub fn updated_cluster(
    current: &Cluster,
    version: u64,
    spec: ClusterSpec,
    flags: UpdateFlags,
    reachable: &HashSet<String>,
) -> Result<Cluster, SwarmError> {
    validate_spec(&spec)?;
    let mut c = current.clone();
    c.meta.version = version;
    let root = RootCa::from_pem(&c.root_ca.ca_cert, None).map_err(|_| SwarmError::Rpc {
        code: "Internal",
        desc: "error loading cluster rootCA for update".into(),
    })?;
    let token = || {
        JoinToken::generate(&root)
            .map(|t| t.to_string())
            .map_err(|e| SwarmError::internal("making a join token", e))
    };
    if flags.rotate_worker_token {
        c.root_ca.worker_token = token()?;
    }
    if flags.rotate_manager_token {
        c.root_ca.manager_token = token()?;
    }
    c.root_ca = next_root_ca(&c, &spec, reachable)?;
    c.unlock_key = next_unlock_key(&c.unlock_key, &spec, flags.rotate_manager_unlock_key)?;
    c.spec = spec;
    Ok(c)
}

impl Swarm {
    pub async fn update(
        &self,
        version: u64,
        spec: ClusterSpec,
        flags: UpdateFlags,
    ) -> Result<(), SwarmError> {
        let node = self.manager().await?;
        node.sync_reads().await?;
        let current = node
            .store()?
            .read(|s| s.cluster().cloned())
            .ok_or_else(|| SwarmError::Internal("the cluster object is missing".into()))?;
        let reachable = reachable_roots(&current, &spec, &node.creds()).await;
        let updated = updated_cluster(&current, version, spec, flags, &reachable)?;
        node.propose(vec![Action::Update(Object::Cluster(updated))])
            .await
    }
}
