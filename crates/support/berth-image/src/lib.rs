//! Image building blocks: references, compression of layer blobs and image
//! configs (`--change`). Layer tars themselves are berth-archive's.

pub mod changes;
pub mod compression;
pub mod reference;

pub use reference::Reference;
