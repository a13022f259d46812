//! berth's core: its own domain types and the ports that drivers implement.
//! Services depend on this crate and on nothing that speaks HTTP, redb or
//! a kernel interface; drivers (the redb store, the shim runtime, the
//! bridge network, the local volume driver) implement its traits, and the
//! daemon binary wires them together. See docs/ARCHITECTURE.md.

pub mod network;
pub mod schema;
pub mod store;
