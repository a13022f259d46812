//! The edge: Docker's wire types (bollard-stubs) to and from berth's own.
//! Requests become berth's specs here, and a bad one is the client's
//! fault (400); berth's views become Docker's answers here, and a failure
//! there is berth's (500). Nothing behind this module sees a wire type.

pub mod containers;
pub mod create_compat;
pub mod exec;
pub mod fold;
pub mod images;
pub mod networks;
pub mod secrets;
pub mod services;
pub mod swarm;
pub mod swarm_networks;
pub mod swarm_nodes;
pub mod system;
pub mod volumes;

use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::error::ApiError;

/// A request value as berth's type with the same JSON shape; a mismatch
/// is a bad request.
pub fn from_request<T: Serialize, U: DeserializeOwned>(v: &T, what: &str) -> Result<U, ApiError> {
    let value = serde_json::to_value(v)
        .map_err(|e| ApiError::bad_request(format!("invalid {what}: {e}")))?;
    serde_json::from_value(value).map_err(|e| ApiError::bad_request(format!("invalid {what}: {e}")))
}

/// One of berth's values as the wire type with the same JSON shape; a
/// mismatch is berth's own fault.
pub fn to_answer<T: Serialize, U: DeserializeOwned>(v: &T, what: &str) -> Result<U, ApiError> {
    let value =
        serde_json::to_value(v).map_err(|e| ApiError::internal(format!("encoding {what}: {e}")))?;
    serde_json::from_value(value).map_err(|e| ApiError::internal(format!("encoding {what}: {e}")))
}
