//! /networks: the bridge networks of berth-engine. Engine calls that touch
//! links or nftables block briefly, so they run on blocking threads.

use axum::Json;
use axum::body::Bytes;
use axum::extract::{Path, RawQuery, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use bollard_stubs::models::{
    NetworkConnectRequest, NetworkCreateRequest, NetworkCreateResponse, NetworkDisconnectRequest,
    NetworkPruneResponse,
};

use super::{AppState, json_body};
use crate::error::{ApiError, ApiResult};
use crate::params::Params;
use crate::wire::networks as wire;

async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> berth_engine::Result<T> + Send + 'static,
) -> ApiResult<T> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| ApiError::internal(e.to_string()))?
        .map_err(Into::into)
}

pub async fn list(State(e): State<AppState>, RawQuery(q): RawQuery) -> ApiResult<Response> {
    let p = Params::parse(q.as_deref())?;
    let networks = e.network_list(&p.filters()?)?;
    let answer = networks
        .iter()
        .map(wire::network_json)
        .collect::<Result<Vec<_>, _>>()?;
    Ok(Json(answer).into_response())
}

/// GET /networks/{id}: with `scope`, only a network of that scope is found,
/// as dockerd filters; every network of berth's is `local` (no swarm
/// networks yet).
pub async fn inspect(
    State(e): State<AppState>,
    Path(id): Path<String>,
    RawQuery(q): RawQuery,
) -> ApiResult<Response> {
    let p = Params::parse(q.as_deref())?;
    match p.first("scope").filter(|s| !s.is_empty()) {
        None | Some("local") => {}
        Some("swarm" | "global") => {
            return Err(ApiError(
                StatusCode::NOT_FOUND,
                format!("network {id} not found"),
            ));
        }
        Some(other) => {
            return Err(ApiError::bad_request(format!(
                "invalid filter 'scope'={other}"
            )));
        }
    }
    Ok(Json(wire::network_json(&e.network_inspect(&id)?)?).into_response())
}

pub async fn create(State(e): State<AppState>, body: Bytes) -> ApiResult<Response> {
    let req: NetworkCreateRequest = json_body(&body)?;
    let spec = wire::network_create_request(req);
    let (id, warning) = blocking(move || e.network_create(&spec)).await?;
    Ok((
        StatusCode::CREATED,
        Json(NetworkCreateResponse { id, warning }),
    )
        .into_response())
}

pub async fn remove(State(e): State<AppState>, Path(id): Path<String>) -> ApiResult<StatusCode> {
    blocking(move || e.network_remove(&id)).await?;
    Ok(StatusCode::NO_CONTENT)
}

pub async fn prune(State(e): State<AppState>, RawQuery(q): RawQuery) -> ApiResult<Response> {
    let p = Params::parse(q.as_deref())?;
    let filters = p.filters()?;
    let removed = blocking(move || e.network_prune(&filters)).await?;
    Ok(Json(NetworkPruneResponse {
        networks_deleted: Some(removed),
    })
    .into_response())
}

pub async fn connect(
    State(e): State<AppState>,
    Path(id): Path<String>,
    body: Bytes,
) -> ApiResult<StatusCode> {
    let req: NetworkConnectRequest = json_body(&body)?;
    let config = wire::endpoint_config_request(req.endpoint_config)?;
    e.network_connect(&id, &req.container, config).await?;
    Ok(StatusCode::OK)
}

pub async fn disconnect(
    State(e): State<AppState>,
    Path(id): Path<String>,
    body: Bytes,
) -> ApiResult<StatusCode> {
    let req: NetworkDisconnectRequest = json_body(&body)?;
    e.network_disconnect(&id, &req.container, req.force.unwrap_or(false))
        .await?;
    Ok(StatusCode::OK)
}
