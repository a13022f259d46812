//! Image building blocks: references, layer tars (unpacked safely, with
//! overlayfs whiteouts), image configs and path resolution inside a rootfs.

pub mod changes;
pub mod compression;
pub mod layer;
pub mod reference;
pub mod rootpath;
pub mod sparse;

pub use reference::Reference;
