//! The event stream (`GET /events`, `docker events`): what happened to
//! containers, images and volumes, in Docker's form. Recent events are kept
//! in memory (as dockerd does, 256 of them) so that `since` can replay them.

use std::collections::{HashMap, VecDeque};
use std::sync::Mutex;

use serde::Serialize;
use tokio::sync::broadcast;

use berth_core::error::{Error, Result};

const KEEP: usize = 256;

#[derive(Debug, Clone, Serialize)]
pub struct Actor {
    #[serde(rename = "ID")]
    pub id: String,
    /// sent with sorted keys, as Go marshals a map
    #[serde(rename = "Attributes", serialize_with = "sorted")]
    pub attributes: HashMap<String, String>,
}

fn sorted<S: serde::Serializer>(
    m: &HashMap<String, String>,
    s: S,
) -> std::result::Result<S::Ok, S::Error> {
    s.collect_map(m.iter().collect::<std::collections::BTreeMap<_, _>>())
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
        // sent under the lock that `subscribe` takes: a subscriber gets
        // each event once, either replayed or live, in publishing order
        let mut r = self.recent.lock().unwrap_or_else(|p| p.into_inner());
        if r.len() == KEEP {
            r.pop_front();
        }
        r.push_back(e.clone());
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

/// Now, in unix nanoseconds: an event's `timeNano`.
pub fn now_nanos() -> i64 {
    chrono::Utc::now().timestamp_nanos_opt().unwrap_or(0)
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
    fn attributes_go_out_with_sorted_keys_as_go_sends_a_map() {
        let mut e = ev("node", "update", "n");
        for k in ["zeta", "alpha", "mid"] {
            e.actor.attributes.insert(k.into(), "v".into());
        }
        let json = serde_json::to_string(&e.actor).unwrap();
        assert_eq!(
            json,
            r#"{"ID":"abc123","Attributes":{"alpha":"v","mid":"v","name":"n","zeta":"v"}}"#
        );
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

#[cfg(test)]
mod bus_tests {
    use super::*;

    fn at(n: i64, action: &str) -> Event {
        Event {
            status: None,
            id: None,
            from: None,
            kind: "container".into(),
            action: action.into(),
            actor: Actor {
                id: format!("{n:064x}"),
                attributes: HashMap::new(),
            },
            scope: "local".into(),
            time: n / 1_000_000_000,
            time_nano: n,
        }
    }

    fn actor(kind: &str, id: &str, attrs: &[(&str, &str)]) -> Event {
        let mut e = at(0, "create");
        e.kind = kind.into();
        e.actor.id = id.into();
        e.actor.attributes = attrs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        e
    }

    fn filter(pairs: &[(&str, &str)]) -> EventFilter {
        let mut m: HashMap<String, Vec<String>> = HashMap::new();
        for (k, v) in pairs {
            m.entry(k.to_string()).or_default().push(v.to_string());
        }
        EventFilter::new(m).unwrap()
    }

    #[test]
    fn replay_keeps_the_last_256_in_order() {
        let bus = EventBus::default();
        for n in 0..300 {
            bus.publish(at(n, "start"));
        }
        assert_eq!(bus.published(), 300);
        let (past, _) = bus.subscribe(Some(0));
        assert_eq!(past.len(), KEEP);
        let times: Vec<i64> = past.iter().map(|e| e.time_nano).collect();
        assert_eq!(times, (300 - KEEP as i64..300).collect::<Vec<_>>());
    }

    #[test]
    fn since_is_inclusive_and_in_nanoseconds() {
        let bus = EventBus::default();
        for n in [1_000_000_000, 1_000_000_001, 2_000_000_000] {
            bus.publish(at(n, "x"));
        }
        let times = |since| {
            bus.subscribe(Some(since))
                .0
                .iter()
                .map(|e| e.time_nano)
                .collect::<Vec<_>>()
        };
        assert_eq!(times(1_000_000_001), [1_000_000_001, 2_000_000_000]);
        assert_eq!(times(1_000_000_002), [2_000_000_000]);
        assert_eq!(times(0).len(), 3);
        assert!(times(i64::MAX).is_empty());
        // a subscription without since replays nothing
        assert!(bus.subscribe(None).0.is_empty());
    }

    #[test]
    fn live_events_arrive_in_publishing_order() {
        let bus = EventBus::default();
        bus.publish(at(1, "before"));
        let (past, mut rx) = bus.subscribe(None);
        assert!(past.is_empty());
        for (n, a) in ["create", "start", "die", "destroy"].iter().enumerate() {
            bus.publish(at(n as i64 + 10, a));
        }
        let got: Vec<String> = std::iter::from_fn(|| rx.try_recv().ok())
            .map(|e| e.action)
            .collect();
        assert_eq!(got, ["create", "start", "die", "destroy"]);
    }

    #[test]
    fn every_subscriber_gets_every_event() {
        let bus = EventBus::default();
        let (_, mut a) = bus.subscribe(None);
        let (_, mut b) = bus.subscribe(None);
        bus.publish(at(5, "pull"));
        assert_eq!(a.try_recv().unwrap().action, "pull");
        assert_eq!(b.try_recv().unwrap().action, "pull");
        assert!(a.try_recv().is_err());
    }

    #[test]
    fn replay_and_live_neither_overlap_nor_leave_a_gap() {
        // a publisher racing subscribers: what a subscriber replays and
        // what it then receives live must be one run of consecutive events
        let bus = std::sync::Arc::new(EventBus::default());
        let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let publisher = {
            let (bus, stop) = (bus.clone(), stop.clone());
            std::thread::spawn(move || {
                let mut n = 0i64;
                while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                    bus.publish(at(n, "tick"));
                    n += 1;
                }
            })
        };
        while bus.published() == 0 {
            std::thread::yield_now();
        }
        let mut checked = 0;
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        while checked < 2000 && std::time::Instant::now() < deadline {
            let (past, mut rx) = bus.subscribe(Some(0));
            let Some(last) = past.last().map(|e| e.time_nano) else {
                continue;
            };
            for w in past.windows(2) {
                assert_eq!(w[1].time_nano, w[0].time_nano + 1);
            }
            match rx.blocking_recv() {
                Ok(first) => {
                    assert_eq!(
                        first.time_nano,
                        last + 1,
                        "the first live event follows the last replayed one"
                    );
                    checked += 1;
                }
                // this slow subscriber missed some: nothing to compare
                Err(_) => continue,
            }
        }
        stop.store(true, std::sync::atomic::Ordering::Relaxed);
        publisher.join().unwrap();
        assert!(checked > 100, "only {checked} subscriptions compared");
    }

    #[test]
    fn unknown_filters_are_refused_with_dockers_message() {
        let err = EventFilter::new(HashMap::from([("colour".to_string(), vec!["x".into()])]))
            .unwrap_err();
        assert_eq!(err.to_string(), "invalid filter 'colour'");
        for k in [
            "type",
            "container",
            "event",
            "image",
            "label",
            "volume",
            "network",
            "daemon",
            "scope",
            "plugin",
            "config",
            "node",
            "secret",
            "service",
        ] {
            assert!(EventFilter::new(HashMap::from([(k.to_string(), vec![])])).is_ok());
        }
    }

    #[test]
    fn no_filter_or_empty_values_match_everything() {
        let e = actor("volume", "v1", &[]);
        assert!(EventFilter::default().matches(&e));
        let f = EventFilter::new(HashMap::from([("type".to_string(), vec![])])).unwrap();
        assert!(f.matches(&e));
    }

    #[test]
    fn different_keys_all_match_values_of_one_key_any() {
        let e = actor("container", "c1", &[("name", "web")]);
        let mut e = e;
        e.action = "start".into();
        assert!(filter(&[("type", "container"), ("event", "start")]).matches(&e));
        assert!(!filter(&[("type", "container"), ("event", "stop")]).matches(&e));
        assert!(filter(&[("type", "image"), ("type", "container")]).matches(&e));
        assert!(!filter(&[("type", "image"), ("event", "start")]).matches(&e));
    }

    #[test]
    fn event_names_match_whole_or_before_a_colon() {
        let mut e = actor("container", "c1", &[]);
        e.action = "exec_create: sh -c true".into();
        assert!(filter(&[("event", "exec_create")]).matches(&e));
        assert!(!filter(&[("event", "exec")]).matches(&e));
        e.action = "health_status: healthy".into();
        assert!(filter(&[("event", "health_status")]).matches(&e));
        assert!(filter(&[("event", "health_status: healthy")]).matches(&e));
    }

    #[test]
    fn containers_by_id_prefix_or_name() {
        let e = actor("container", "0123abcd", &[("name", "web")]);
        assert!(filter(&[("container", "0123")]).matches(&e));
        assert!(filter(&[("container", "0123abcd")]).matches(&e));
        assert!(filter(&[("container", "web")]).matches(&e));
        assert!(!filter(&[("container", "123")]).matches(&e));
        assert!(!filter(&[("container", "db")]).matches(&e));
        // only container events
        let n = actor("network", "0123abcd", &[("name", "web")]);
        assert!(!filter(&[("container", "web")]).matches(&n));
    }

    #[test]
    fn volumes_networks_and_swarm_objects() {
        let v = actor("volume", "data", &[("driver", "local")]);
        assert!(filter(&[("volume", "data")]).matches(&v));
        assert!(!filter(&[("volume", "dat")]).matches(&v));
        let n = actor("network", "feedbeef", &[("name", "front")]);
        assert!(filter(&[("network", "feed")]).matches(&n));
        assert!(filter(&[("network", "front")]).matches(&n));
        assert!(!filter(&[("network", "back")]).matches(&n));
        assert!(!filter(&[("network", "data")]).matches(&v));
        let s = actor("secret", "s3cr3t", &[("name", "db-pass")]);
        assert!(filter(&[("secret", "s3c")]).matches(&s));
        assert!(filter(&[("secret", "db-pass")]).matches(&s));
        assert!(!filter(&[("config", "db-pass")]).matches(&s));
        let d = actor("daemon", "DAEMONID", &[("name", "host1")]);
        assert!(filter(&[("daemon", "host1")]).matches(&d));
        assert!(filter(&[("daemon", "DAEMONID")]).matches(&d));
        assert!(!filter(&[("daemon", "DAEMON")]).matches(&d));
    }

    #[test]
    fn images_by_name_tagless_name_or_id() {
        let c = actor(
            "container",
            "c1",
            &[("image", "localhost:5000/app:v1"), ("name", "web")],
        );
        assert!(filter(&[("image", "localhost:5000/app:v1")]).matches(&c));
        assert!(filter(&[("image", "localhost:5000/app")]).matches(&c));
        assert!(!filter(&[("image", "localhost")]).matches(&c));
        assert!(!filter(&[("image", "app")]).matches(&c));
        let i = actor("image", "sha256:abc", &[("name", "busybox:latest")]);
        assert!(filter(&[("image", "busybox")]).matches(&i));
        assert!(filter(&[("image", "busybox:latest")]).matches(&i));
        assert!(filter(&[("image", "sha256:abc")]).matches(&i));
        assert!(!filter(&[("image", "busybox:1")]).matches(&i));
    }

    #[test]
    fn labels_by_key_or_key_and_value() {
        let e = actor("container", "c1", &[("com.example.tier", "web"), ("x", "")]);
        assert!(filter(&[("label", "com.example.tier")]).matches(&e));
        assert!(filter(&[("label", "com.example.tier=web")]).matches(&e));
        assert!(!filter(&[("label", "com.example.tier=db")]).matches(&e));
        assert!(filter(&[("label", "x=")]).matches(&e));
        assert!(!filter(&[("label", "y")]).matches(&e));
        assert!(filter(&[("label", "y"), ("label", "x")]).matches(&e));
    }

    #[test]
    fn scope() {
        let mut e = actor("network", "n", &[]);
        assert!(filter(&[("scope", "local")]).matches(&e));
        assert!(!filter(&[("scope", "swarm")]).matches(&e));
        e.scope = "swarm".into();
        assert!(filter(&[("scope", "swarm")]).matches(&e));
    }

    #[test]
    fn tags_are_stripped_but_ports_and_digests_handled() {
        assert_eq!(strip_tag("busybox:latest"), "busybox");
        assert_eq!(strip_tag("busybox"), "busybox");
        assert_eq!(strip_tag("localhost:5000/app"), "localhost:5000/app");
        assert_eq!(strip_tag("localhost:5000/app:v1"), "localhost:5000/app");
        let d = format!("busybox:1@sha256:{}", "a".repeat(64));
        assert_eq!(strip_tag(&d), "busybox");
        assert_eq!(
            strip_tag(&format!("me/app@sha256:{}", "b".repeat(64))),
            "me/app"
        );
    }

    #[test]
    fn legacy_fields_are_left_out_when_absent() {
        let v = serde_json::to_value(at(1, "create")).unwrap();
        assert!(v.get("status").is_none() && v.get("id").is_none() && v.get("from").is_none());
    }
}
