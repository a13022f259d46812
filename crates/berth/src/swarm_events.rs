//! Swarm events: what this manager's swarm store sees change goes on the
//! engine's event stream (`GET /events`), as dockerd publishes its
//! manager's watch: type "node" or "service", scope "swarm".

use std::collections::HashMap;
use std::sync::Arc;

use berth_engine::Engine;
use berth_events::{Actor, Event};
use berth_swarm_manager::{Swarm, SwarmEvent};
use tokio::sync::broadcast::error::RecvError;

fn event_of(e: &SwarmEvent) -> Event {
    Event {
        status: None,
        id: None,
        from: None,
        kind: e.kind.into(),
        action: e.action.into(),
        actor: Actor {
            id: e.node_id.clone(),
            attributes: e
                .attributes
                .iter()
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect::<HashMap<_, _>>(),
        },
        scope: "swarm".into(),
        time: e.time_nano / 1_000_000_000,
        time_nano: e.time_nano,
    }
}

pub fn forward(swarm: &Swarm, engine: Arc<Engine>) {
    let mut rx = swarm.swarm_events();
    tokio::spawn(async move {
        loop {
            match rx.recv().await {
                Ok(e) => engine.events().publish(event_of(&e)),
                Err(RecvError::Lagged(n)) => tracing::debug!("{n} node events missed"),
                Err(RecvError::Closed) => return,
            }
        }
    });
}
