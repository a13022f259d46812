//! /networks: the bridge networks of berth-engine and, on a manager, the
//! swarm's overlay networks, in one list as dockerd shows them. Engine
//! calls that touch links or nftables block briefly, so they run on
//! blocking threads.

use axum::Json;
use axum::body::Bytes;
use axum::extract::{Path, RawQuery, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use bollard_stubs::models::{
    NetworkConnectRequest, NetworkCreateRequest, NetworkCreateResponse, NetworkDisconnectRequest,
    NetworkPruneResponse,
};

use super::swarm::SwarmState;
use super::{AppState, json_body};
use crate::error::{ApiError, ApiResult};
use crate::params::Params;
use crate::wire::networks as wire;
use crate::wire::swarm_networks as swarm_wire;

async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> berth_engine::Result<T> + Send + 'static,
) -> ApiResult<T> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| ApiError::internal(e.to_string()))?
        .map_err(Into::into)
}

/// GET /networks: the local networks, then (on a manager) the swarm's.
pub async fn list(State(s): State<SwarmState>, RawQuery(q): RawQuery) -> ApiResult<Response> {
    let p = Params::parse(q.as_deref())?;
    let filters = p.filters()?;
    let networks = s.engine.network_list(&filters)?;
    let mut answer = networks
        .iter()
        .map(wire::network_json)
        .collect::<Result<Vec<_>, _>>()?;
    let mut swarm = s.swarm.networks().await;
    swarm.sort_by(|a, b| a.spec.name.cmp(&b.spec.name));
    answer.extend(
        swarm
            .iter()
            .filter(|n| swarm_wire::matches(n, &filters))
            .map(swarm_wire::network_json),
    );
    Ok(Json(answer).into_response())
}

/// Whether `reference` names a swarm network rather than a local one: a
/// full swarm id, or no local network by that reference and a swarm one.
async fn swarm_network(
    s: &SwarmState,
    reference: &str,
) -> ApiResult<Option<berth_swarm_store::Network>> {
    let swarm = match s.swarm.network(reference).await {
        Ok(n) => n,
        Err(_) => return Ok(None),
    };
    if swarm.id == reference || s.engine.network_inspect(reference).is_err() {
        return Ok(Some(swarm));
    }
    Ok(None)
}

/// GET /networks/{id}: with `scope`, only a network of that scope is found,
/// as dockerd filters; every network of berth's is `local` (no swarm
/// networks yet).
/// GET /networks/{id}: with `scope`, only a network of that scope is found,
/// as dockerd filters.
pub async fn inspect(
    State(s): State<SwarmState>,
    Path(id): Path<String>,
    RawQuery(q): RawQuery,
) -> ApiResult<Response> {
    let p = Params::parse(q.as_deref())?;
    let not_found = || ApiError(StatusCode::NOT_FOUND, format!("network {id} not found"));
    match p.first("scope").filter(|s| !s.is_empty()) {
        None => {}
        Some("local") => {
            return Ok(Json(wire::network_json(&s.engine.network_inspect(&id)?)?).into_response());
        }
        Some("swarm" | "global") => {
            let n = swarm_network(&s, &id).await?.ok_or_else(not_found)?;
            return Ok(Json(swarm_wire::network_json(&n)).into_response());
        }
        Some(other) => {
            return Err(ApiError::bad_request(format!(
                "invalid filter 'scope'={other}"
            )));
        }
    }
    if let Some(n) = swarm_network(&s, &id).await? {
        return Ok(Json(swarm_wire::network_json(&n)).into_response());
    }
    Ok(Json(wire::network_json(&s.engine.network_inspect(&id)?)?).into_response())
}

/// POST /networks/create: an overlay (or `--scope swarm`) network goes to
/// the swarm's managers, any other to the local networks; a name either
/// kind holds is taken, as dockerd checks both.
pub async fn create(State(s): State<SwarmState>, body: Bytes) -> ApiResult<Response> {
    let req: NetworkCreateRequest = json_body(&body)?;
    let taken = s
        .swarm
        .networks()
        .await
        .iter()
        .any(|n| n.spec.name == req.name);
    if taken {
        return Err(ApiError(
            StatusCode::CONFLICT,
            format!("network with name {} already exists", req.name),
        ));
    }
    if !swarm_wire::is_swarm_request(&req) {
        let spec = wire::network_create_request(req);
        let e = s.engine.clone();
        let (id, warning) = blocking(move || e.network_create(&spec)).await?;
        return Ok((
            StatusCode::CREATED,
            Json(NetworkCreateResponse { id, warning }),
        )
            .into_response());
    }
    if s.engine.network_inspect(&req.name).is_ok() {
        return Err(ApiError(
            StatusCode::CONFLICT,
            format!("network with name {} already exists", req.name),
        ));
    }
    let info = s.swarm.info().await;
    if info.local_state == berth_swarm_manager::LocalNodeState::Active && !info.control_available {
        return Err(ApiError(
            StatusCode::FORBIDDEN,
            "Cannot create a multi-host network from a worker node. Please create the network from a manager node.".into(),
        ));
    }
    let id = s.swarm.create_network(swarm_wire::spec_of(req)).await?;
    Ok((
        StatusCode::CREATED,
        Json(NetworkCreateResponse {
            id,
            warning: String::new(),
        }),
    )
        .into_response())
}

/// DELETE /networks/{id}: a swarm network is removed by the managers,
/// refused while a service uses it.
pub async fn remove(State(s): State<SwarmState>, Path(id): Path<String>) -> ApiResult<StatusCode> {
    if let Some(n) = swarm_network(&s, &id).await? {
        s.swarm.remove_network(&n.id).await?;
        return Ok(StatusCode::NO_CONTENT);
    }
    let e = s.engine.clone();
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
