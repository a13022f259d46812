//! The event stream (`GET /events`, `docker events`): what happened to
//! containers, images and volumes, in Docker's form. Recent events are kept
//! in memory (as dockerd does, 256 of them) so that `since` can replay them.

use std::collections::{HashMap, VecDeque};
use std::sync::Mutex;

use serde::Serialize;
use tokio::sync::broadcast;

use crate::{Engine, Error, Result};

const KEEP: usize = 256;

#[derive(Debug, Clone, Serialize)]
pub struct Actor {
    #[serde(rename = "ID")]
    pub id: String,
    #[serde(rename = "Attributes")]
    pub attributes: HashMap<String, String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct Event {
    /// the pre-1.22 fields, still sent by dockerd for containers
    #[serde(skip_serializing_if = "Option::is_none")]
    pub status: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub from: Option<String>,
    #[serde(rename = "Type")]
    pub kind: String,
    #[serde(rename = "Action")]
    pub action: String,
    #[serde(rename = "Actor")]
    pub actor: Actor,
    pub scope: String,
    pub time: i64,
    #[serde(rename = "timeNano")]
    pub time_nano: i64,
}

pub struct EventBus {
    recent: Mutex<VecDeque<Event>>,
    tx: broadcast::Sender<Event>,
    published: std::sync::atomic::AtomicU64,
}

impl Default for EventBus {
    fn default() -> Self {
        EventBus {
            recent: Mutex::new(VecDeque::with_capacity(KEEP)),
            tx: broadcast::channel(1024).0,
            published: Default::default(),
        }
    }
}

/// The filters of `/events`, checked as Docker does: values of one key are
/// alternatives, different keys must all match.
#[derive(Debug, Clone, Default)]
pub struct EventFilter {
    filters: HashMap<String, Vec<String>>,
}

impl EventFilter {
    pub fn new(filters: HashMap<String, Vec<String>>) -> Result<Self> {
        for k in filters.keys() {
            if !matches!(
                k.as_str(),
                "type"
                    | "container"
                    | "event"
                    | "image"
                    | "label"
                    | "volume"
                    | "network"
                    | "daemon"
                    | "scope"
                    | "plugin"
                    | "config"
                    | "node"
                    | "secret"
                    | "service"
            ) {
                return Err(Error::invalid(format!("invalid filter '{k}'")));
            }
        }
        Ok(EventFilter { filters })
    }

    pub fn matches(&self, e: &Event) -> bool {
        let attr = |k: &str| e.actor.attributes.get(k).cloned().unwrap_or_default();
        self.filters.iter().all(|(k, values)| {
            values.is_empty()
                || match k.as_str() {
                    "type" => values.contains(&e.kind),
                    "event" => values.iter().any(|v| {
                        // "exec_start" also matches "exec_start: sh -c …"
                        e.action == *v || e.action.starts_with(&format!("{v}:"))
                    }),
                    "container" => {
                        e.kind == "container"
                            && values
                                .iter()
                                .any(|v| e.actor.id.starts_with(v.as_str()) || attr("name") == *v)
                    }
                    "volume" => e.kind == "volume" && values.contains(&e.actor.id),
                    "network" => {
                        e.kind == "network"
                            && values
                                .iter()
                                .any(|v| e.actor.id.starts_with(v.as_str()) || attr("name") == *v)
                    }
                    // a tagless value matches any tag of the repository,
                    // as dockerd strips the event's tag to compare
                    "image" => values.iter().any(|v| {
                        let image = attr("image");
                        attr("image") == *v
                            || e.actor.id == *v
                            || attr("name") == *v
                            || strip_tag(&image) == v.as_str()
                            || strip_tag(&attr("name")) == v.as_str()
                    }),
                    "daemon" => {
                        e.kind == "daemon"
                            && values
                                .iter()
                                .any(|v| e.actor.id == *v || attr("name") == *v)
                    }
                    "plugin" | "config" | "node" | "secret" | "service" => {
                        e.kind == *k
                            && values
                                .iter()
                                .any(|v| e.actor.id.starts_with(v.as_str()) || attr("name") == *v)
                    }
                    "label" => values.iter().any(|v| match v.split_once('=') {
                        Some((lk, lv)) => {
                            e.actor.attributes.get(lk).map(String::as_str) == Some(lv)
                        }
                        None => e.actor.attributes.contains_key(v.as_str()),
                    }),
                    "scope" => values.contains(&e.scope),
                    _ => false,
                }
        })
    }
}

/// `repo:tag` → `repo` (a registry's port is not a tag).
fn strip_tag(image: &str) -> &str {
    let image = image.split('@').next().unwrap_or(image);
    match image.rsplit_once(':') {
        Some((repo, tag)) if !tag.contains('/') => repo,
        _ => image,
    }
}

impl EventBus {
    /// How many events were published since the daemon started.
    pub fn published(&self) -> u64 {
        self.published.load(std::sync::atomic::Ordering::Relaxed)
    }

    pub fn publish(&self, e: Event) {
        self.published
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        {
            let mut r = self.recent.lock().unwrap_or_else(|p| p.into_inner());
            if r.len() == KEEP {
                r.pop_front();
            }
            r.push_back(e.clone());
        }
        let _ = self.tx.send(e);
    }

    /// Events since `since` (unix nanoseconds), then the live stream.
    pub fn subscribe(&self, since: Option<i64>) -> (Vec<Event>, broadcast::Receiver<Event>) {
        let r = self.recent.lock().unwrap_or_else(|p| p.into_inner());
        let rx = self.tx.subscribe();
        let past = match since {
            Some(s) => r.iter().filter(|e| e.time_nano >= s).cloned().collect(),
            None => Vec::new(),
        };
        (past, rx)
    }
}

fn now_nanos() -> i64 {
    chrono::Utc::now().timestamp_nanos_opt().unwrap_or(0)
}

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

    fn ev(kind: &str, action: &str, name: &str) -> Event {
        Event {
            status: None,
            id: None,
            from: None,
            kind: kind.into(),
            action: action.into(),
            actor: Actor {
                id: "abc123".into(),
                attributes: HashMap::from([("name".to_string(), name.to_string())]),
            },
            scope: "local".into(),
            time: 0,
            time_nano: 0,
        }
    }

    #[test]
    fn filters_like_docker() {
        let f = |pairs: &[(&str, &str)]| {
            let mut m: HashMap<String, Vec<String>> = HashMap::new();
            for (k, v) in pairs {
                m.entry(k.to_string()).or_default().push(v.to_string());
            }
            EventFilter::new(m).expect("valid")
        };
        let e = ev("container", "die", "web");
        assert!(f(&[("type", "container"), ("event", "die")]).matches(&e));
        assert!(f(&[("event", "start"), ("event", "die")]).matches(&e));
        assert!(!f(&[("type", "image")]).matches(&e));
        assert!(f(&[("container", "web")]).matches(&e));
        assert!(f(&[("container", "abc")]).matches(&e));
        assert!(f(&[("event", "exec_start")]).matches(&ev("container", "exec_start: sh", "x")));
        assert!(EventFilter::new(HashMap::from([("bogus".to_string(), vec![])])).is_err());
    }

    #[test]
    fn since_replays_recent_events() {
        let bus = EventBus::default();
        let mut old = ev("container", "create", "a");
        old.time_nano = 10;
        let mut new = ev("container", "start", "a");
        new.time_nano = 20;
        bus.publish(old);
        bus.publish(new);
        let (past, _) = bus.subscribe(Some(15));
        assert_eq!(past.len(), 1);
        assert_eq!(past[0].action, "start");
        let (past, _) = bus.subscribe(None);
        assert!(past.is_empty());
    }
}
