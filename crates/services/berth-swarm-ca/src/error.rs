use thiserror::Error;

#[derive(Debug, Error)]
pub enum CaError {
    /// swarmkit's words, which clients and users know
    #[error("invalid join token")]
    InvalidJoinToken,
    #[error("remote CA does not match fingerprint. Expected: {expected}")]
    FingerprintMismatch { expected: String },
    #[error("invalid certificate: {0}")]
    InvalidCertificate(String),
    #[error("invalid certificate signing request: {0}")]
    InvalidRequest(String),
    #[error("the root CA has no signing key")]
    NoSigningKey,
    #[error("certificate expiry must be at least {min} seconds, got {got}")]
    ExpiryTooShort { min: u64, got: u64 },
    #[error("generating key material: {0}")]
    Crypto(String),
    #[error("building the TLS configuration: {0}")]
    Tls(String),
}

impl From<rcgen::Error> for CaError {
    fn from(e: rcgen::Error) -> Self {
        CaError::Crypto(e.to_string())
    }
}
