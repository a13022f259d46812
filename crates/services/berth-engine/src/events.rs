//! Events from the engine's objects: containers, images, volumes, networks
//! and the daemon. The bus, Docker's filters and the replay of recent
//! events are the events service's (berth-events); here each event is
//! built from what it is about and published.

pub(crate) use berth_events::EventBus;
pub use berth_events::{Event, EventFilter};

use berth_events::{Actor, now_nanos};

use crate::Engine;

impl Engine {
    pub fn events(&self) -> &EventBus {
        &self.events
    }

    /// A container event: attributes are its labels, image and name, plus
    /// `extra` (exitCode, signal …).
    pub(crate) fn container_event(
        &self,
        rec: &crate::containers::ContainerRecord,
        action: &str,
        extra: &[(&str, String)],
    ) {
        self.events.publish(container_event_of(rec, action, extra));
    }

    pub(crate) fn event_bus(&self) -> std::sync::Arc<EventBus> {
        self.events.clone()
    }
}

/// The event of `action` on the container `rec`.
pub(crate) fn container_event_of(
    rec: &crate::containers::ContainerRecord,
    action: &str,
    extra: &[(&str, String)],
) -> Event {
    {
        let mut attributes = rec.config.labels.clone().unwrap_or_default();
        attributes.insert("image".into(), rec.image.clone());
        attributes.insert("name".into(), rec.name.clone());
        for (k, v) in extra {
            attributes.insert(k.to_string(), v.clone());
        }
        let t = now_nanos();
        Event {
            status: Some(action.to_string()),
            id: Some(rec.id.clone()),
            from: Some(rec.image.clone()),
            kind: "container".into(),
            action: action.to_string(),
            actor: Actor {
                id: rec.id.clone(),
                attributes,
            },
            scope: "local".into(),
            time: t / 1_000_000_000,
            time_nano: t,
        }
    }
}

impl Engine {
    /// An image or volume event.
    pub(crate) fn object_event(
        &self,
        kind: &str,
        id: &str,
        action: &str,
        attrs: &[(&str, String)],
    ) {
        let t = now_nanos();
        let attributes = attrs
            .iter()
            .map(|(k, v)| (k.to_string(), v.clone()))
            .collect();
        let legacy = kind == "image";
        self.events.publish(Event {
            status: legacy.then(|| action.to_string()),
            id: legacy.then(|| id.to_string()),
            from: None,
            kind: kind.into(),
            action: action.into(),
            actor: Actor {
                id: id.into(),
                attributes,
            },
            scope: "local".into(),
            time: t / 1_000_000_000,
            time_nano: t,
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn container_events_carry_labels_image_name_and_extras() {
        let rec: crate::containers::ContainerRecord = serde_json::from_value(serde_json::json!({
            "id": "f".repeat(64),
            "name": "web",
            "created": "",
            "image": "busybox:latest",
            "image_id": "sha256:1",
            "path": "sh",
            "args": [],
            "config": {"Labels": {"tier": "front", "name": "from-a-label"}},
            "host_config": {},
            "state": {
                "status": "running", "pid": 1, "exit_code": 0, "started_at": "",
                "finished_at": "", "error": "", "oom_killed": false
            }
        }))
        .unwrap();
        let before = now_nanos();
        let e = container_event_of(&rec, "die", &[("exitCode", "3".into())]);
        let after = now_nanos();
        assert_eq!(e.kind, "container");
        assert_eq!(e.action, "die");
        assert_eq!(e.status.as_deref(), Some("die"));
        assert_eq!(e.id.as_deref(), Some(rec.id.as_str()));
        assert_eq!(e.from.as_deref(), Some("busybox:latest"));
        assert_eq!(e.actor.id, rec.id);
        let a = &e.actor.attributes;
        assert_eq!(a["tier"], "front");
        // the container's own name beats a label called "name"
        assert_eq!(a["name"], "web");
        assert_eq!(a["image"], "busybox:latest");
        assert_eq!(a["exitCode"], "3");
        assert!(before <= e.time_nano && e.time_nano <= after);
        assert_eq!(e.time, e.time_nano / 1_000_000_000);
        // Docker's JSON field names
        let v = serde_json::to_value(&e).unwrap();
        for k in [
            "status", "id", "from", "Type", "Action", "Actor", "scope", "time", "timeNano",
        ] {
            assert!(v.get(k).is_some(), "{k}");
        }
        assert_eq!(v["Actor"]["ID"], rec.id.as_str());
        assert_eq!(v["Actor"]["Attributes"]["exitCode"], "3");
    }
}
