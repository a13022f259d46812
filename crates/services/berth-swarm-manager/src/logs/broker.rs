//! A manager's log registry: the agents whose subscription streams it
//! serves (one per node) and the subscriptions open on it, each with the
//! channel its lines go to. Like swarmkit's LogBroker, but per manager:
//! a subscription reaches the agents connected here, and the other
//! managers relay for theirs.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex, MutexGuard};

use tokio::sync::mpsc;

use super::{LogLine, LogOptions, LogSelector, SubscriptionMessage};

/// Lines a subscription buffers before its agents wait for its reader.
const EVENTS_BUFFER: usize = 64;

/// What a subscription's reader gets from the agents.
#[derive(Clone, Debug, PartialEq)]
pub enum BrokerEvent {
    Lines(Vec<LogLine>),
    /// the node published all it had (or failed to, with why)
    NodeDone {
        node: String,
        error: Option<String>,
    },
}

#[derive(Default)]
pub struct Broker {
    inner: Mutex<Inner>,
}

#[derive(Default)]
struct Inner {
    sessions: HashMap<String, AgentSession>,
    subscriptions: HashMap<String, OpenSubscription>,
    serial: u64,
}

struct AgentSession {
    serial: u64,
    tx: mpsc::UnboundedSender<SubscriptionMessage>,
}

struct OpenSubscription {
    message: SubscriptionMessage,
    /// the nodes it is for; None for every node (following)
    scope: Option<HashSet<String>>,
    /// nodes it was handed to
    sent_to: HashSet<String>,
    /// nodes handed it that have not finished
    pending: HashSet<String>,
    events: mpsc::Sender<BrokerEvent>,
}

impl OpenSubscription {
    fn covers(&self, node: &str) -> bool {
        self.scope.as_ref().is_none_or(|s| s.contains(node))
    }
}

/// An agent's place in the registry; dropping it (the agent's stream
/// ended) ends what the node was publishing.
pub struct SessionGuard {
    broker: Arc<Broker>,
    node: String,
    serial: u64,
}

/// A subscription open on this manager; dropping it closes it on the
/// agents that serve it.
pub struct LocalSubscription {
    pub id: String,
    /// the nodes it went to, whose ends a reader without follow awaits
    pub served: Vec<String>,
    pub events: mpsc::Receiver<BrokerEvent>,
    broker: Arc<Broker>,
}

impl Broker {
    fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The nodes whose agents are connected here.
    pub fn connected(&self) -> HashSet<String> {
        self.lock().sessions.keys().cloned().collect()
    }

    /// Registers `node`'s agent: the subscriptions to serve come on the
    /// receiver, starting with the following ones already open. A node
    /// that connects again replaces its earlier session.
    pub fn attach(
        self: &Arc<Self>,
        node: &str,
    ) -> (SessionGuard, mpsc::UnboundedReceiver<SubscriptionMessage>) {
        let (tx, rx) = mpsc::unbounded_channel();
        let mut inner = self.lock();
        inner.serial += 1;
        let serial = inner.serial;
        for sub in inner.subscriptions.values_mut() {
            if sub.message.options.follow && sub.covers(node) && sub.sent_to.insert(node.into()) {
                sub.pending.insert(node.into());
                let _ = tx.send(sub.message.clone());
            }
        }
        inner
            .sessions
            .insert(node.to_string(), AgentSession { serial, tx });
        let guard = SessionGuard {
            broker: self.clone(),
            node: node.to_string(),
            serial,
        };
        (guard, rx)
    }

    /// Opens a subscription for `nodes` (None: every node, for follow)
    /// and hands it to those whose agents are connected here.
    pub fn subscribe(
        self: &Arc<Self>,
        id: String,
        selector: LogSelector,
        options: LogOptions,
        nodes: Option<HashSet<String>>,
    ) -> LocalSubscription {
        let (events_tx, events) = mpsc::channel(EVENTS_BUFFER);
        let message = SubscriptionMessage {
            id: id.clone(),
            selector,
            options,
            close: false,
        };
        let mut sub = OpenSubscription {
            message,
            scope: nodes,
            sent_to: HashSet::new(),
            pending: HashSet::new(),
            events: events_tx,
        };
        let mut inner = self.lock();
        for (node, session) in &inner.sessions {
            if sub.covers(node) && session.tx.send(sub.message.clone()).is_ok() {
                sub.sent_to.insert(node.clone());
                sub.pending.insert(node.clone());
            }
        }
        let mut served: Vec<String> = sub.sent_to.iter().cloned().collect();
        served.sort();
        inner.subscriptions.insert(id.clone(), sub);
        LocalSubscription {
            id,
            served,
            events,
            broker: self.clone(),
        }
    }

    /// Where `node`'s lines for subscription `id` go: only a node the
    /// subscription was handed to publishes for it.
    pub fn publisher(&self, id: &str, node: &str) -> Option<mpsc::Sender<BrokerEvent>> {
        let inner = self.lock();
        let sub = inner.subscriptions.get(id)?;
        sub.sent_to.contains(node).then(|| sub.events.clone())
    }

    /// `node` finished subscription `id`; its reader hears it once.
    pub async fn node_done(&self, id: &str, node: &str, error: Option<String>) {
        let events = {
            let mut inner = self.lock();
            let Some(sub) = inner.subscriptions.get_mut(id) else {
                return;
            };
            if !sub.pending.remove(node) {
                return;
            }
            sub.events.clone()
        };
        let done = BrokerEvent::NodeDone {
            node: node.to_string(),
            error,
        };
        let _ = events.send(done).await;
    }

    /// Forgets `node`'s session (unless a newer one replaced it): the
    /// subscriptions it had not finished, whose readers must hear of it.
    /// A following subscription goes to the node again if it comes back.
    fn detach(&self, node: &str, serial: u64) -> Vec<mpsc::Sender<BrokerEvent>> {
        let mut inner = self.lock();
        if inner.sessions.get(node).is_none_or(|s| s.serial != serial) {
            return Vec::new();
        }
        inner.sessions.remove(node);
        let mut unfinished = Vec::new();
        for sub in inner.subscriptions.values_mut() {
            sub.sent_to.remove(node);
            if sub.pending.remove(node) {
                unfinished.push(sub.events.clone());
            }
        }
        unfinished
    }

    fn close(&self, id: &str) {
        let mut inner = self.lock();
        let Some(sub) = inner.subscriptions.remove(id) else {
            return;
        };
        let close = SubscriptionMessage {
            close: true,
            ..sub.message
        };
        for node in &sub.sent_to {
            if let Some(session) = inner.sessions.get(node) {
                let _ = session.tx.send(close.clone());
            }
        }
    }
}

impl Drop for SessionGuard {
    fn drop(&mut self) {
        let unfinished = self.broker.detach(&self.node, self.serial);
        if unfinished.is_empty() {
            return;
        }
        let node = self.node.clone();
        // the readers hear of it without the dropping side waiting on them
        if let Ok(rt) = tokio::runtime::Handle::try_current() {
            rt.spawn(async move {
                let why = format!("node {node} disconnected unexpectedly");
                for events in unfinished {
                    let done = BrokerEvent::NodeDone {
                        node: node.clone(),
                        error: Some(why.clone()),
                    };
                    let _ = events.send(done).await;
                }
            });
        }
    }
}

impl Drop for LocalSubscription {
    fn drop(&mut self) {
        self.broker.close(&self.id);
    }
}
