//! Docker's legacy (v1) plugins: processes of their own that serve JSON
//! over HTTP on a socket. A plugin is found by name in the discovery
//! directories (`discovery`), activated with `POST /Plugin.Activate`, which
//! says what it implements, and then called one method at a time
//! (`client`). `volume` turns a volume plugin into a [`VolumeDriver`] of
//! berth's volumes service.
//!
//! [`VolumeDriver`]: berth_core::volume::VolumeDriver

pub mod client;
pub mod discovery;
pub mod volume;

pub use client::{CallError, Plugin};
pub use discovery::{Directories, Registry};
pub use volume::{PluginVolumeDriver, VolumePlugins};
