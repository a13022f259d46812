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

/// dockerd's own networks, which no swarm network may be named after.
const PREDEFINED: [&str; 3] = ["bridge", "host", "none"];

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
    let mut swarm = s.swarm.networks().await;
    // a manager lists swarm networks as the cluster has them (a local
    // instance may outlive its network by a moment); a worker lists the
    // ones its tasks use
    let manager = s.swarm.info().await.control_available;
    let networks = s.engine.network_list(&filters)?;
    let mut answer = networks
        .iter()
        .filter(|v| !(manager && v.record.swarm_scoped()))
        .filter(|v| !swarm.iter().any(|n| n.id == v.record.id))
        .map(wire::network_json)
        .collect::<Result<Vec<_>, _>>()?;
    swarm.sort_by(|a, b| a.spec.name.cmp(&b.spec.name));
    answer.extend(
        swarm
            .iter()
            .filter(|n| swarm_wire::matches(n, &filters))
            .map(swarm_wire::network_json),
    );
    Ok(Json(answer).into_response())
}

/// What a reference names: a local network (by its id) or a swarm one.
enum Found {
    Local(String),
    Swarm(Box<berth_swarm_store::Network>),
}

/// dockerd's `findUniqueNetwork` over both scopes: a full id, then an
/// exact name, then an id prefix, each refused as ambiguous when it
/// matches more than one network.
async fn find_network(s: &SwarmState, reference: &str, scope: Lookup<'_>) -> ApiResult<Found> {
    let (scope, inspect) = match scope {
        Lookup::Inspect(scope) => (scope, true),
        Lookup::Remove => (None, false),
    };
    let manager = s.swarm.info().await.control_available;
    let local: Vec<(String, String)> = match scope {
        Some("swarm") => Vec::new(),
        _ => s
            .engine
            .network_list(&Default::default())?
            .into_iter()
            .filter(|v| !(manager && v.record.swarm_scoped()))
            .map(|v| (v.record.id, v.record.name))
            .collect(),
    };
    let swarm = match scope {
        Some("local") => Vec::new(),
        _ => s.swarm.networks().await,
    };
    let local: Vec<(String, String)> = local
        .into_iter()
        .filter(|(id, _)| !swarm.iter().any(|n| &n.id == id))
        .collect();
    if let Some((id, _)) = local.iter().find(|(id, _)| id == reference) {
        return Ok(Found::Local(id.clone()));
    }
    if let Some(n) = swarm.iter().find(|n| n.id == reference) {
        return Ok(Found::Swarm(Box::new(n.clone())));
    }
    let matching = |local_ok: &dyn Fn(&str, &str) -> bool| -> Vec<Found> {
        let locals = local
            .iter()
            .filter(|(id, name)| local_ok(id, name))
            .map(|(id, _)| Found::Local(id.clone()));
        let swarms = swarm
            .iter()
            .filter(|n| local_ok(&n.id, &n.spec.name))
            .map(|n| Found::Swarm(Box::new(n.clone())));
        locals.chain(swarms).collect()
    };
    let by_name = matching(&|_, name| name == reference);
    if let Some(f) = unique(reference, "name", by_name, inspect)? {
        return Ok(f);
    }
    let by_prefix = matching(&|id, _| id.starts_with(reference));
    unique(reference, "ID prefix", by_prefix, inspect)?.ok_or_else(|| {
        ApiError(
            StatusCode::NOT_FOUND,
            format!("network {reference} not found"),
        )
    })
}

/// dockerd words an ambiguous reference one way for inspect (a wrapped
/// error) and another for removal.
fn unique(
    reference: &str,
    how: &str,
    mut found: Vec<Found>,
    inspect: bool,
) -> ApiResult<Option<Found>> {
    match found.len() {
        0 | 1 => Ok(found.pop()),
        n if inspect => Err(ApiError::bad_request(format!(
            "{n} matches found based on {how}: network {reference} is ambiguous"
        ))),
        n => Err(ApiError::bad_request(format!(
            "network {reference} is ambiguous ({n} matches found based on {how})"
        ))),
    }
}

/// What a lookup is for: inspect (with an optional scope) or removal.
enum Lookup<'a> {
    Inspect(Option<&'a str>),
    Remove,
}

/// GET /networks/{id}: with `scope`, only a network of that scope is found,
/// as dockerd filters.
pub async fn inspect(
    State(s): State<SwarmState>,
    Path(id): Path<String>,
    RawQuery(q): RawQuery,
) -> ApiResult<Response> {
    let p = Params::parse(q.as_deref())?;
    let verbose = match p.first("verbose").unwrap_or_default() {
        "" => false,
        "1" | "t" | "T" | "TRUE" | "true" | "True" => true,
        "0" | "f" | "F" | "FALSE" | "false" | "False" => false,
        other => {
            return Err(ApiError::bad_request(format!(
                "invalid value for verbose: {other}: strconv.ParseBool: parsing \"{other}\": invalid syntax"
            )));
        }
    };
    let scope = match p.first("scope").filter(|s| !s.is_empty()) {
        None => None,
        Some("local") => Some("local"),
        Some("swarm" | "global") => Some("swarm"),
        Some(other) => {
            return Err(ApiError::bad_request(format!(
                "invalid filter 'scope'={other}"
            )));
        }
    };
    let id = match find_network(&s, &id, Lookup::Inspect(scope)).await? {
        // a swarm network this node has an instance of shows that one, as
        // dockerd does: with its containers and peers
        Found::Swarm(n) if !s.engine.network_exists(&n.id) => {
            return Ok(Json(swarm_wire::network_json(&n)).into_response());
        }
        Found::Swarm(n) => n.id,
        Found::Local(id) => id,
    };
    let view = s.engine.network_inspect(&id)?;
    let mut answer = wire::network_json(&view)?;
    if let Some(d) = &view.swarm {
        wire::add_swarm_details(&mut answer, d, verbose);
    }
    Ok(Json(answer).into_response())
}

fn conflict(name: &str) -> ApiError {
    ApiError(
        StatusCode::CONFLICT,
        format!("network with name {name} already exists"),
    )
}

/// POST /networks/create: an overlay (or `--scope swarm`) network goes to
/// the swarm's managers, any other to the local networks; a name either
/// kind holds is taken, as dockerd checks both.
pub async fn create(State(s): State<SwarmState>, body: Bytes) -> ApiResult<Response> {
    let req: NetworkCreateRequest = json_body(&body)?;
    let swarm_scoped = swarm_wire::is_swarm_request(&req);
    if swarm_scoped && PREDEFINED.contains(&req.name.as_str()) {
        return Err(ApiError(
            StatusCode::FORBIDDEN,
            format!(
                "operation is not permitted on predefined {} network ",
                req.name
            ),
        ));
    }
    if s.swarm
        .networks()
        .await
        .iter()
        .any(|n| n.spec.name == req.name)
    {
        return Err(conflict(&req.name));
    }
    if !swarm_scoped {
        let spec = wire::network_create_request(req);
        let e = s.engine.clone();
        let (id, warning) = blocking(move || e.network_create(&spec)).await?;
        return Ok((
            StatusCode::CREATED,
            Json(NetworkCreateResponse { id, warning }),
        )
            .into_response());
    }
    // a node's instance of a swarm network is not a local network: the
    // managers' store, checked above, has the names that exist
    let local = s.engine.network_list(&Default::default())?;
    if local
        .iter()
        .any(|v| v.record.name == req.name && v.record.scope != "swarm")
    {
        return Err(conflict(&req.name));
    }
    check_swarm_side(&s).await?;
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

/// libnetwork's refusals of a swarm-scoped network on a worker or outside
/// a swarm (403s).
async fn check_swarm_side(s: &SwarmState) -> ApiResult<()> {
    use berth_swarm_manager::LocalNodeState;
    let info = s.swarm.info().await;
    let refusal = match (info.local_state, info.control_available) {
        (LocalNodeState::Active, false) => "Cannot create a multi-host network from a worker node. Please create the network from a manager node.".to_string(),
        (LocalNodeState::Inactive, _) => {
            berth_swarm_manager::SwarmError::NotManagerInactive.to_string()
        }
        _ => return Ok(()),
    };
    Err(ApiError(StatusCode::FORBIDDEN, refusal))
}

/// DELETE /networks/{id}: a swarm network is removed by the managers,
/// refused while a service uses it.
pub async fn remove(State(s): State<SwarmState>, Path(id): Path<String>) -> ApiResult<StatusCode> {
    match find_network(&s, &id, Lookup::Remove).await? {
        Found::Swarm(n) => s.swarm.remove_network(&n.id).await?,
        // a swarm network's local view: the managers remove it (a worker
        // answers that it is not one)
        Found::Local(id) if s.engine.network_inspect(&id)?.record.swarm_scoped() => {
            s.swarm.remove_network(&id).await?
        }
        Found::Local(id) => {
            let e = s.engine.clone();
            blocking(move || e.network_remove(&id)).await?;
        }
    }
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
