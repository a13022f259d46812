//! Node events for `GET /events`: dockerd watches its manager's store and
//! publishes each node change as an event of type "node", scope "swarm";
//! berth's managers do the same from their store's watch.

use std::collections::BTreeMap;
use std::sync::Arc;

use berth_swarm_store::{Event, EventKind, Object};
use tokio::sync::broadcast;
use tokio::sync::broadcast::error::RecvError;

use crate::active::Active;

/// A node change in dockerd's terms.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NodeEvent {
    /// "create", "update" or "remove"
    pub action: &'static str,
    pub node_id: String,
    pub attributes: BTreeMap<String, String>,
    /// unix nanoseconds: the object's time for a create or an update,
    /// now for a removal (the store has no time for it), as dockerd does
    pub time_nano: i64,
}

/// The event dockerd's `logNodeEvent` makes of a store change; none for
/// other objects. An update names what changed as `x.old`/`x.new`.
pub fn node_event(e: &Event) -> Option<NodeEvent> {
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
    Some(NodeEvent {
        action,
        node_id: node.id.clone(),
        attributes,
        time_nano,
    })
}

/// On a manager: its store's node changes, sent on as `NodeEvent`s for
/// as long as this manager runs.
pub fn spawn_forwarder(
    node: &Arc<Active>,
    out: broadcast::Sender<Arc<NodeEvent>>,
) -> Option<tokio::task::JoinHandle<()>> {
    let mut rx = node.store().ok()?.watch();
    Some(tokio::spawn(async move {
        loop {
            match rx.recv().await {
                Ok(e) => {
                    if let Some(ev) = node_event(&e) {
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
}
