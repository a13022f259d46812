//! Durable state of the daemon: one redb file for metadata and a
//! content-addressed directory for blobs. Both survive a SIGKILL at any
//! instant: redb commits are atomic, blobs are renamed into place only once
//! complete and verified.

mod blobs;
mod meta;

pub use berth_core::store::{Change, MemoryStore, MetadataStore, MetadataStoreExt, Table, WriteOp};
pub use blobs::{BlobStore, Digest, digest_of_file};
pub use meta::RedbStore;
