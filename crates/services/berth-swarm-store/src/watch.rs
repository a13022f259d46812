use std::sync::{Arc, RwLock};

use chrono::{DateTime, Utc};
use tokio::sync::broadcast;

use crate::store::{Action, Event, Store, StoreError};

/// How many changes a slow watcher may fall behind before it is told it
/// lagged (it then re-reads the store).
const WATCH_BACKLOG: usize = 1024;

/// The store as the manager shares it: reads under a lock, batches
/// applied by the Raft state machine, and every change sent to watchers
/// in the order applied.
pub struct WatchedStore {
    state: RwLock<Store>,
    events: broadcast::Sender<Arc<Event>>,
}

impl Default for WatchedStore {
    fn default() -> Self {
        WatchedStore::new(Store::default())
    }
}

impl WatchedStore {
    pub fn new(store: Store) -> WatchedStore {
        WatchedStore {
            state: RwLock::new(store),
            events: broadcast::channel(WATCH_BACKLOG).0,
        }
    }

    /// Reads the store; `f` must not block.
    pub fn read<T>(&self, f: impl FnOnce(&Store) -> T) -> T {
        // a panic while holding the lock leaves the store as the last
        // whole batch left it (apply changes nothing until it succeeds)
        let guard = self.state.read().unwrap_or_else(|e| e.into_inner());
        f(&guard)
    }

    /// Applies a committed batch and tells the watchers.
    pub fn apply(
        &self,
        actions: &[Action],
        index: u64,
        at: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        let events = {
            let mut guard = self.state.write().unwrap_or_else(|e| e.into_inner());
            guard.apply(actions, index, at)?
        };
        for e in events {
            // no receiver is not an error: nobody watches yet
            let _ = self.events.send(Arc::new(e));
        }
        Ok(())
    }

    /// Replaces the whole store (a snapshot installed). Watchers get no
    /// event per object for it: whoever installs a snapshot must have the
    /// parts driven by watches read the store again.
    pub fn restore(&self, store: Store) {
        let mut guard = self.state.write().unwrap_or_else(|e| e.into_inner());
        *guard = store;
    }

    pub fn watch(&self) -> broadcast::Receiver<Arc<Event>> {
        self.events.subscribe()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::objects::Node;
    use crate::store::{EventKind, Kind, Object};

    #[test]
    fn watchers_see_committed_changes_in_order_and_nothing_of_refused_ones() {
        let s = WatchedStore::default();
        let mut rx = s.watch();
        let n = Object::Node(Node {
            id: "n1".into(),
            ..Node::default()
        });
        s.apply(&[Action::Create(n.clone())], 1, Utc::now())
            .unwrap();
        assert!(s.apply(&[Action::Create(n)], 2, Utc::now()).is_err());
        s.apply(
            &[Action::Remove {
                kind: Kind::Node,
                id: "n1".into(),
            }],
            3,
            Utc::now(),
        )
        .unwrap();
        let kinds: Vec<EventKind> = (0..2).map(|_| rx.try_recv().unwrap().kind).collect();
        assert_eq!(kinds, [EventKind::Create, EventKind::Remove]);
        assert!(rx.try_recv().is_err(), "a refused batch was announced");
        assert_eq!(s.read(|st| st.nodes().count()), 0);
    }
}
