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

#[cfg(test)]
pub(crate) mod tests {
    /// Bytes from hex, spaces ignored.
    pub fn hex(s: &str) -> Vec<u8> {
        let s: String = s.split_whitespace().collect();
        (0..s.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
            .collect()
    }
}
