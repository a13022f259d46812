//! Swarm events for `GET /events`: dockerd watches its manager's store
//! and publishes each node and service change as an event of type "node"
//! or "service", scope "swarm"; berth's managers do the same from their
//! store's watch.

use std::collections::BTreeMap;
use std::sync::Arc;

use berth_swarm_store::{Event, EventKind, Object};
use tokio::sync::broadcast;
use tokio::sync::broadcast::error::RecvError;

use crate::active::Active;

/// A node or service change in dockerd's terms.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SwarmEvent {
    /// "node", "service", "secret" or "config"
    pub kind: &'static str,
    /// "create", "update" or "remove"
    pub action: &'static str,
    /// the node's or service's id
    pub node_id: String,
    pub attributes: BTreeMap<String, String>,
    /// unix nanoseconds: the object's time for a create or an update,
    /// now for a removal (the store has no time for it), as dockerd does
    pub time_nano: i64,
}

/// The event dockerd's `logSwarmEvent` makes of a store change; none for
/// other objects. An update names what changed as `x.old`/`x.new`.
pub fn node_event(e: &Event) -> Option<SwarmEvent> {
    let Object::Node(node) = &e.object else {
        return None;
    };
    let name = if node.spec.annotations.name.is_empty() {
        node.description.hostname.clone()
    } else {
        node.spec.annotations.name.clone()
    };
    let mut attributes = BTreeMap::from([("name".to_string(), name)]);
    let mut changed = |what: &str, old: &str, new: &str| {
        if old != new {
            attributes.insert(format!("{what}.old"), old.to_string());
            attributes.insert(format!("{what}.new"), new.to_string());
        }
    };
    if let (EventKind::Update, Some(Object::Node(old))) = (e.kind, &e.old) {
        changed(
            "availability",
            old.spec.availability.as_str(),
            node.spec.availability.as_str(),
        );
        changed("role", old.role.as_str(), node.role.as_str());
        changed(
            "state",
            old.status.state.as_str(),
            node.status.state.as_str(),
        );
    }
    let nanos = |t: chrono::DateTime<chrono::Utc>| t.timestamp_nanos_opt().unwrap_or(0);
    let (action, time_nano) = match e.kind {
        EventKind::Create => ("create", nanos(node.meta.created_at)),
        EventKind::Update => ("update", nanos(node.meta.updated_at)),
        EventKind::Remove => ("remove", nanos(chrono::Utc::now())),
    };
    Some(SwarmEvent {
        kind: "node",
        action,
        node_id: node.id.clone(),
        attributes,
        time_nano,
    })
}

/// dockerd's `logServiceEvent`: image, replicas and update state changes
/// named as `x.old`/`x.new` (the update state in swarmkit's enum words).
pub fn service_event(e: &Event) -> Option<SwarmEvent> {
    let Object::Service(s) = &e.object else {
        return None;
    };
    let mut attributes = BTreeMap::from([("name".to_string(), s.spec.name.clone())]);
    if let (EventKind::Update, Some(Object::Service(old))) = (e.kind, &e.old) {
        let image = |x: &berth_swarm_store::Service| {
            x.spec
                .task_template
                .container_spec
                .as_ref()
                .map(|c| c.image.clone())
                .unwrap_or_default()
        };
        let mut changed = |what: &str, old: String, new: String| {
            if old != new {
                attributes.insert(format!("{what}.old"), old);
                attributes.insert(format!("{what}.new"), new);
            }
        };
        changed("image", image(old), image(s));
        if let (Some(a), Some(b)) = (&old.spec.mode.replicated, &s.spec.mode.replicated) {
            let n = |r: &berth_swarm_store::Replicated| r.replicas.unwrap_or(1).to_string();
            changed("replicas", n(a), n(b));
        }
        let state = |x: &berth_swarm_store::Service| {
            x.update_status
                .as_ref()
                .map(|u| u.state.to_ascii_uppercase())
        };
        match (state(old), state(s)) {
            (None, Some(new)) => {
                attributes.insert("updatestate.new".into(), new);
            }
            (Some(o), Some(n)) => changed("updatestate", o, n),
            _ => {}
        }
    }
    let nanos = |t: chrono::DateTime<chrono::Utc>| t.timestamp_nanos_opt().unwrap_or(0);
    let (action, time_nano) = match e.kind {
        EventKind::Create => ("create", nanos(s.meta.created_at)),
        EventKind::Update => ("update", nanos(s.meta.updated_at)),
        EventKind::Remove => ("remove", nanos(chrono::Utc::now())),
    };
    Some(SwarmEvent {
        kind: "service",
        action,
        node_id: s.id.clone(),
        attributes,
        time_nano,
    })
}

/// dockerd's `logSecretEvent`/`logConfigEvent`/`logNetworkEvent`: the
/// name, never the data.
pub fn blob_event(e: &Event) -> Option<SwarmEvent> {
    let (kind, id, name, meta) = match &e.object {
        Object::Secret(x) => ("secret", &x.id, &x.spec.name, &x.meta),
        Object::Config(x) => ("config", &x.id, &x.spec.name, &x.meta),
        Object::Network(n) => ("network", &n.id, &n.spec.name, &n.meta),
        _ => return None,
    };
    let nanos = |t: chrono::DateTime<chrono::Utc>| t.timestamp_nanos_opt().unwrap_or(0);
    let (action, time_nano) = match e.kind {
        EventKind::Create => ("create", nanos(meta.created_at)),
        EventKind::Update => ("update", nanos(meta.updated_at)),
        EventKind::Remove => ("remove", nanos(chrono::Utc::now())),
    };
    Some(SwarmEvent {
        kind,
        action,
        node_id: id.clone(),
        attributes: BTreeMap::from([("name".to_string(), name.clone())]),
        time_nano,
    })
}

/// On a manager: its store's node changes, sent on as `SwarmEvent`s for
/// as long as this manager runs.
pub fn spawn_forwarder(
    node: &Arc<Active>,
    out: broadcast::Sender<Arc<SwarmEvent>>,
) -> Option<tokio::task::JoinHandle<()>> {
    let mut rx = node.store().ok()?.watch();
    Some(tokio::spawn(async move {
        loop {
            match rx.recv().await {
                Ok(e) => {
                    if let Some(ev) = node_event(&e)
                        .or_else(|| service_event(&e))
                        .or_else(|| blob_event(&e))
                    {
                        // nobody listening is fine
                        let _ = out.send(Arc::new(ev));
                    }
                }
                // a slow reader missed some; events are not replayed
                Err(RecvError::Lagged(_)) => {}
                Err(RecvError::Closed) => return,
            }
        }
    }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use berth_swarm_store::{Availability, Node, NodeRole};

    fn node(host: &str) -> Node {
        let mut n = Node {
            id: "n1".into(),
            ..Node::default()
        };
        n.description.hostname = host.into();
        n
    }

    #[test]
    fn an_update_names_what_changed_as_dockerd_does() {
        let old = node("h1");
        let mut new = old.clone();
        new.spec.availability = Availability::Drain;
        new.role = NodeRole::Manager;
        let e = Event {
            kind: EventKind::Update,
            object: Object::Node(new),
            old: Some(Object::Node(old)),
        };
        let ev = node_event(&e).unwrap();
        assert_eq!(ev.action, "update");
        let want: BTreeMap<String, String> = [
            ("name", "h1"),
            ("availability.old", "active"),
            ("availability.new", "drain"),
            ("role.old", "worker"),
            ("role.new", "manager"),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
        assert_eq!(ev.attributes, want);
    }

    #[test]
    fn the_name_is_the_specs_else_the_hostname() {
        let mut n = node("h1");
        n.spec.annotations.name = "named".into();
        let e = Event {
            kind: EventKind::Create,
            object: Object::Node(n),
            old: None,
        };
        let ev = node_event(&e).unwrap();
        assert_eq!(
            (ev.action, ev.attributes["name"].as_str()),
            ("create", "named")
        );
        let removed = Event {
            kind: EventKind::Remove,
            object: Object::Node(node("h1")),
            old: None,
        };
        assert_eq!(node_event(&removed).unwrap().action, "remove");
    }

    #[test]
    fn a_service_update_names_its_image_replicas_and_update_state() {
        use berth_swarm_store::{ContainerSpec, Replicated, Service, UpdateStatus};
        let mut old = Service {
            id: "s1".into(),
            ..Service::default()
        };
        old.spec.name = "web".into();
        old.spec.task_template.container_spec = Some(ContainerSpec {
            image: "busybox:1".into(),
            ..ContainerSpec::default()
        });
        old.spec.mode.replicated = Some(Replicated { replicas: Some(2) });
        let mut new = old.clone();
        new.spec.mode.replicated = Some(Replicated { replicas: Some(5) });
        if let Some(c) = &mut new.spec.task_template.container_spec {
            c.image = "busybox:2".into();
        }
        new.update_status = Some(UpdateStatus {
            state: "updating".into(),
            ..UpdateStatus::default()
        });
        let e = Event {
            kind: EventKind::Update,
            object: Object::Service(new),
            old: Some(Object::Service(old)),
        };
        let ev = service_event(&e).unwrap();
        assert_eq!(
            (ev.kind, ev.action, ev.node_id.as_str()),
            ("service", "update", "s1")
        );
        let want: BTreeMap<String, String> = [
            ("name", "web"),
            ("image.old", "busybox:1"),
            ("image.new", "busybox:2"),
            ("replicas.old", "2"),
            ("replicas.new", "5"),
            ("updatestate.new", "UPDATING"),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
        assert_eq!(ev.attributes, want);
        assert!(node_event(&e).is_none());
    }
}
