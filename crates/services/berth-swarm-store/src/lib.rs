//! The swarm's object store, after swarmkit's memory store. It is the
//! state machine of the managers' Raft log: every committed entry is a
//! batch of `Action`s that `Store::apply` takes whole or not at all, on
//! every manager alike. Determinism is the rule: an object's version is
//! the log index of the entry that last wrote it and its times come from
//! the entry, so all managers hold the same bytes. A client's stale
//! version is caught here, in the apply, where no two writers can race:
//! "update out of sequence", as swarmkit answers.

mod addresses;
mod networks;
mod objects;
mod secrets;
mod services;
mod store;
mod watch;

pub use networks::*;
pub use objects::*;
pub use secrets::*;
pub use services::*;
pub use store::{Action, Event, EventKind, Kind, Object, Store, StoreError, publishes_ingress};
pub use watch::WatchedStore;
