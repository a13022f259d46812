//! Swarm endpoints on a node outside a swarm, answered as dockerd answers
//! them there (daemon/cluster: errNoSwarm and errNoManager, both 503).
//! Tools call them freely: `POST /swarm/leave` in test teardowns, the
//! lists before deciding what to show.

use axum::http::StatusCode;

use crate::error::ApiError;

const NOT_IN_A_SWARM: &str = "This node is not part of a swarm";
const NOT_A_MANAGER: &str = "This node is not a swarm manager. Use \"docker swarm init\" or \"docker swarm join\" to connect this node to swarm and try again.";

/// Leave and unlock: there is no swarm to leave or unlock.
pub async fn not_in_a_swarm() -> ApiError {
    ApiError(StatusCode::SERVICE_UNAVAILABLE, NOT_IN_A_SWARM.into())
}

/// Everything that reads or changes cluster state needs a manager.
pub async fn not_a_manager() -> ApiError {
    ApiError(StatusCode::SERVICE_UNAVAILABLE, NOT_A_MANAGER.into())
}

/// Init and join make a node part of a swarm, which berth cannot do yet.
pub async fn not_built() -> ApiError {
    ApiError(
        StatusCode::NOT_IMPLEMENTED,
        "swarm mode is not available in this version of berth".into(),
    )
}
