//! SPDY/3.1, the subset Kubernetes' streaming clients use: the server
//! side of moby/spdystream's dialect.

pub mod conn;
pub mod frame;
pub mod headers;

pub use conn::{Accept, Connection, Incoming, StreamTx};
pub use headers::Headers;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("spdy protocol error: {0}")]
    Protocol(String),
}
