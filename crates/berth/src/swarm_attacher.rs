//! `docker run --network NET` with NET an attachable swarm network: the
//! engine asks the managers, through this node's swarm membership, for
//! the container's address, and the network plane makes the network
//! ready here before the container is plumbed into it.

use std::sync::Arc;

use berth_engine::{Error, Result, SwarmAttacher, SwarmAttachment};
use berth_swarm_manager::{Swarm, SwarmError};

use crate::swarm_netplane::NetPlane;

type Boxed<'a, T> = std::pin::Pin<Box<dyn std::future::Future<Output = T> + Send + 'a>>;

pub struct Attacher {
    pub swarm: Swarm,
    pub net: Arc<NetPlane>,
}

impl SwarmAttacher for Attacher {
    fn attach<'a>(
        &'a self,
        network: &'a str,
        container_id: &'a str,
        container_name: &'a str,
    ) -> Boxed<'a, Result<Option<SwarmAttachment>>> {
        Box::pin(async move {
            self.net.attaching(container_id);
            let a = match self
                .swarm
                .attach_network(network, container_id, container_name)
                .await
            {
                Ok(a) => a,
                Err(e) => {
                    self.net.detached(container_id);
                    return match e {
                        SwarmError::NotInSwarm => Ok(None),
                        e => Err(engine_error(e)),
                    };
                }
            };
            // a node-local network's address comes from this node's pool
            let node_local = a.view.network.spec.node_local();
            let address = a
                .task
                .networks
                .first()
                .and_then(|n| n.addresses.first().cloned())
                .or_else(|| node_local.then(String::new));
            let Some(address) = address else {
                self.give_back(container_id).await;
                return Err(Error::Internal(anyhow::anyhow!(
                    "could not find an available IP on network {}",
                    a.view.network.spec.name
                )));
            };
            let net = self.net.clone();
            let id = container_id.to_string();
            let made = tokio::task::spawn_blocking(move || net.attached(&id, a.view))
                .await
                .map_err(|e| Error::Internal(anyhow::anyhow!("attaching: {e}")))?;
            match made {
                Ok(network) => Ok(Some(SwarmAttachment { network, address })),
                Err(e) => {
                    self.give_back(container_id).await;
                    Err(Error::Internal(anyhow::anyhow!(e)))
                }
            }
        })
    }

    fn detach<'a>(&'a self, container_id: &'a str) -> Boxed<'a, ()> {
        Box::pin(self.give_back(container_id))
    }

    fn plumbed(&self, container_id: &str) {
        self.net.write_vips(container_id);
    }
}

impl Attacher {
    async fn give_back(&self, container_id: &str) {
        self.net.detached(container_id);
        if let Err(e) = self.swarm.detach_network(container_id).await {
            tracing::warn!(container = %container_id.get(..12).unwrap_or(container_id), error = %e, "giving back network attachments");
        }
    }
}

/// The managers' refusal with the status dockerd answers it with.
fn engine_error(e: SwarmError) -> Error {
    let msg = e.to_string();
    match e.http_status() {
        404 => Error::not_found(msg),
        403 => Error::Forbidden(msg),
        400 => Error::invalid(msg),
        _ => Error::Internal(anyhow::anyhow!(msg)),
    }
}
