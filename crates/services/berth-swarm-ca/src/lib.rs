//! The swarm's PKI, after swarmkit's: a root CA (ECDSA P-256) made at
//! `swarm init` or given from outside, node certificates whose subject the
//! CA decides (CN = node id, OU = role, O = cluster id), join tokens that
//! carry the root's digest, and the rustls configurations for mutual TLS
//! between nodes, with the peer's identity read from its certificate.

mod base36;
mod error;
mod external;
mod id;
mod node;
mod root;
mod rotation;
mod tls;
mod token;

pub use error::CaError;
pub use external::{check_external_cert, pem_fingerprint};
pub use id::{new_id, random_fraction};
pub use node::{NodeCert, NodeIdentity, NodeKey, Role, renewal_delay};
pub use root::{DEFAULT_NODE_CERT_EXPIRY, MIN_NODE_CERT_EXPIRY, RootCa, RootDigest};
pub use rotation::MIN_ROOT_EXPIRY;
pub use tls::{MANAGER_SERVER_NAME, client_config, peer_identity, server_config};
pub use token::{JoinToken, constant_time_eq};
