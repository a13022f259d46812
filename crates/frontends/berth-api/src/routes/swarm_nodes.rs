//! Changing and removing nodes.

use axum::Json;
use axum::body::Bytes;
use axum::extract::{Path, RawQuery, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use berth_swarm_manager::NodeFilters;

use super::json_body;
use super::swarm::SwarmState;
use crate::error::{ApiError, ApiResult};
use crate::params::Params;
use crate::wire::swarm_nodes as wire;

/// `GET /nodes?filters=`
pub async fn list(State(s): State<SwarmState>, RawQuery(q): RawQuery) -> ApiResult<Response> {
    let filters = NodeFilters::parse(&Params::parse(q.as_deref())?.filters()?)?;
    let nodes = s.swarm.list_nodes(&filters).await?;
    let cluster = s.swarm.inspect().await?.cluster;
    let answer: Vec<_> = nodes
        .iter()
        .map(|n| crate::wire::swarm::node_answer(n, Some(&cluster)))
        .collect();
    Ok(Json(answer).into_response())
}

/// `POST /nodes/{id}/update?version=N`
pub async fn update(
    State(s): State<SwarmState>,
    Path(id): Path<String>,
    RawQuery(q): RawQuery,
    body: Bytes,
) -> ApiResult<Response> {
    let b: wire::NodeSpecBody = json_body(&body)?;
    let p = Params::parse(q.as_deref())?;
    let version =
        wire::node_version(p.get("version").unwrap_or_default()).map_err(ApiError::bad_request)?;
    let spec = wire::node_spec(b).map_err(ApiError::bad_request)?;
    s.swarm.update_node(&id, version, spec).await?;
    Ok(StatusCode::OK.into_response())
}

/// `DELETE /nodes/{id}?force=`
pub async fn remove(
    State(s): State<SwarmState>,
    Path(id): Path<String>,
    RawQuery(q): RawQuery,
) -> ApiResult<Response> {
    let force = Params::parse(q.as_deref())?.flag("force");
    s.swarm.remove_node(&id, force).await?;
    Ok(StatusCode::OK.into_response())
}
