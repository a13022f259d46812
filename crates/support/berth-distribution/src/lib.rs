//! The client side of the OCI distribution protocol, and the manifest
//! forms berth reads and writes (Docker schema 2, OCI image manifests,
//! manifest lists and image indexes).

pub mod client;
pub mod fetch;
pub mod manifest;
mod tls;

pub use client::{Credentials, Manifest, Mount, Payload, RegistryClient};

#[derive(Debug, thiserror::Error)]
pub enum DistError {
    #[error("{0}")]
    NotFound(String),
    #[error("{0}")]
    Unauthorized(String),
    #[error("{0}")]
    Denied(String),
    #[error("{0}")]
    Status(String),
    #[error("{0}")]
    Unreachable(String),
    #[error("{0}")]
    Other(String),
}

pub type Result<T> = std::result::Result<T, DistError>;
