//! Errors by kind, shared by every service: the API layer maps each kind
//! to Docker's status code.

use thiserror::Error;

/// Errors by kind, so that the API layer can answer Docker's status codes.
/// Messages are Docker's own where clients or people match on them.
#[derive(Debug, Error)]
pub enum Error {
    #[error("{0}")]
    NotFound(String),
    #[error("{0}")]
    Conflict(String),
    #[error("{0}")]
    InvalidParameter(String),
    /// the request changed nothing (Docker's 304 for start/stop)
    #[error("{0}")]
    NotModified(String),
    /// the operation exists in Docker but not for this object (501)
    #[error("{0}")]
    NotImplemented(String),
    /// refused whatever the request says (Docker's 403: predefined networks)
    #[error("{0}")]
    Forbidden(String),
    /// the registry wants (other) credentials
    #[error("{0}")]
    Unauthorized(String),
    /// a build step's command exited non-zero: its exit code as a value,
    /// for the client to exit with (a 400, as other refused input)
    #[error("{message}")]
    StepFailed { message: String, code: i64 },
    #[error("{0:#}")]
    Internal(#[from] anyhow::Error),
}

pub type Result<T> = std::result::Result<T, Error>;

impl Error {
    pub fn not_found(m: impl Into<String>) -> Self {
        Error::NotFound(m.into())
    }
    pub fn conflict(m: impl Into<String>) -> Self {
        Error::Conflict(m.into())
    }
    pub fn invalid(m: impl Into<String>) -> Self {
        Error::InvalidParameter(m.into())
    }
}

impl From<std::io::Error> for Error {
    fn from(e: std::io::Error) -> Self {
        Error::Internal(e.into())
    }
}

impl From<crate::volume::VolumeError> for Error {
    fn from(e: crate::volume::VolumeError) -> Self {
        use crate::volume::VolumeError;
        match e {
            VolumeError::InvalidArgument(m) => Error::InvalidParameter(m),
            VolumeError::NotFound(m) => Error::NotFound(m),
            VolumeError::Driver(e) => Error::Internal(e),
        }
    }
}

impl From<crate::network::NetworkError> for Error {
    fn from(e: crate::network::NetworkError) -> Self {
        use crate::network::NetworkError;
        match e {
            NetworkError::InvalidParameter(m) => Error::InvalidParameter(m),
            NetworkError::Conflict(m) => Error::Conflict(m),
            NetworkError::NotFound(m) => Error::NotFound(m),
            NetworkError::Internal(e) => Error::Internal(e),
            e @ (NetworkError::PoolOverlap(_) | NetworkError::AddressInUse(_)) => {
                Error::Conflict(e.to_string())
            }
            e @ (NetworkError::NoPool | NetworkError::PoolExhausted(_)) => {
                Error::InvalidParameter(e.to_string())
            }
        }
    }
}
