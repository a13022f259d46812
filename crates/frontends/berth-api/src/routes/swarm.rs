//! The swarm endpoints. Routes parse, call the swarm service and convert
//! (`wire::swarm`); what swarm mode can't do yet answers 501 on a manager
//! and, elsewhere, what dockerd answers on a node in that state.

use std::sync::Arc;

use axum::Json;
use axum::body::Bytes;
use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use berth_engine::Engine;
use berth_swarm_manager::{
    InitRequest, JoinRequest, LocalNodeState, Swarm, SwarmError, UpdateFlags,
};

use super::json_body;
use super::swarm_addr;
use crate::error::{ApiError, ApiResult};
use crate::params::Params;
use crate::wire::swarm as wire;

#[derive(Clone)]
pub struct SwarmState {
    pub engine: Arc<Engine>,
    pub swarm: Arc<Swarm>,
}

impl From<SwarmError> for ApiError {
    fn from(e: SwarmError) -> Self {
        let status =
            StatusCode::from_u16(e.http_status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        ApiError(status, e.to_string())
    }
}

/// `GET /_ping`, with the `Swarm` header the CLI uses to show or hide
/// manager commands.
pub async fn ping(State(s): State<SwarmState>) -> Response {
    let mut r = super::system::ping().await.into_response();
    let info = s.swarm.info().await;
    let value = match (info.local_state, info.control_available) {
        (LocalNodeState::Inactive, _) => "inactive",
        (LocalNodeState::Locked, _) => "locked",
        (LocalNodeState::Active, true) => "active/manager",
        (LocalNodeState::Active, false) => "active/worker",
    };
    r.headers_mut()
        .insert("swarm", HeaderValue::from_static(value));
    r
}

/// `GET /info`: the engine's, with the swarm section.
pub async fn info(State(s): State<SwarmState>) -> ApiResult<Response> {
    let mut answer = serde_json::to_value(crate::wire::system::info_answer(&s.engine.info()))
        .map_err(|e| ApiError::internal(format!("encoding info: {e}")))?;
    answer["Swarm"] = wire::info_answer(&s.swarm.info().await);
    Ok(Json(answer).into_response())
}

pub async fn inspect(State(s): State<SwarmState>) -> ApiResult<Response> {
    Ok(Json(wire::swarm_answer(&s.swarm.inspect().await?)).into_response())
}

pub async fn init(State(s): State<SwarmState>, body: Bytes) -> ApiResult<Response> {
    let b: wire::InitBody = if body.is_empty() {
        Default::default()
    } else {
        json_body(&body)?
    };
    let listen = swarm_addr::listen(&b.listen_addr).map_err(ApiError::bad_request)?;
    let advertise =
        swarm_addr::advertise(&b.advertise_addr, &listen).map_err(ApiError::bad_request)?;
    let mut spec = wire::merged_spec(b.spec.as_ref()).map_err(ApiError::bad_request)?;
    spec.autolock_managers |= b.auto_lock_managers;
    berth_swarm_store::check_address_pools(&b.default_addr_pool, b.subnet_size)
        .map_err(ApiError::bad_request)?;
    if b.data_path_port != 0 && !(1024..=49151).contains(&b.data_path_port) {
        return Err(ApiError::bad_request(format!(
            "Datapath port number is not in valid range (1024-49151) : {}",
            b.data_path_port
        )));
    }
    let req = InitRequest {
        listen_addr: listen,
        advertise_addr: advertise,
        availability: wire::parse_availability(&b.availability).map_err(ApiError::bad_request)?,
        spec,
        default_addr_pool: b.default_addr_pool,
        subnet_size: b.subnet_size,
        data_path_port: u16::try_from(b.data_path_port).unwrap_or(0),
        data_path_addr: swarm_addr::data_path(&b.data_path_addr).map_err(ApiError::bad_request)?,
        force_new_cluster: b.force_new_cluster,
    };
    let id = s.swarm.init(req).await?;
    Ok(Json(id).into_response())
}

pub async fn join(State(s): State<SwarmState>, body: Bytes) -> ApiResult<Response> {
    let b: wire::JoinBody = json_body(&body)?;
    let listen = swarm_addr::listen(&b.listen_addr).map_err(ApiError::bad_request)?;
    let advertise =
        swarm_addr::advertise(&b.advertise_addr, &listen).map_err(ApiError::bad_request)?;
    let remote_addrs = b
        .remote_addrs
        .iter()
        .map(|a| swarm_addr::listen(a).map_err(ApiError::bad_request))
        .collect::<Result<Vec<_>, _>>()?;
    let req = JoinRequest {
        listen_addr: listen,
        advertise_addr: advertise,
        remote_addrs,
        token: b.join_token,
        availability: wire::parse_availability(&b.availability).map_err(ApiError::bad_request)?,
        data_path_addr: swarm_addr::data_path(&b.data_path_addr).map_err(ApiError::bad_request)?,
    };
    s.swarm.join(req).await?;
    Ok(StatusCode::OK.into_response())
}

/// `POST /swarm/update?version=N&rotate…=`: dockerd's checks of the
/// query, then swarmkit's of the spec.
pub async fn update(
    State(s): State<SwarmState>,
    RawQuery(q): RawQuery,
    body: Bytes,
) -> ApiResult<Response> {
    let b: wire::SpecBody = if body.is_empty() {
        Default::default()
    } else {
        json_body(&body)?
    };
    let p = Params::parse(q.as_deref())?;
    let raw = p.first("version").unwrap_or_default();
    let version = wire::go_uint(raw)
        .map_err(|e| ApiError::bad_request(format!("invalid swarm version '{raw}': {e}")))?;
    let flag = |name: &str| -> ApiResult<bool> {
        match p.first(name).unwrap_or_default() {
            "" => Ok(false),
            v => wire::go_bool(v)
                .ok_or_else(|| ApiError::bad_request(format!("invalid value for {name}: {v}"))),
        }
    };
    let flags = UpdateFlags {
        rotate_worker_token: flag("rotateWorkerToken")?,
        rotate_manager_token: flag("rotateManagerToken")?,
        rotate_manager_unlock_key: flag("rotateManagerUnlockKey")?,
    };
    // a worker or a node outside a swarm answers as dockerd does first
    s.swarm.inspect().await?;
    let spec = wire::update_spec(&b).map_err(ApiError::bad_request)?;
    s.swarm.update(version, spec, flags).await?;
    Ok(StatusCode::OK.into_response())
}

pub async fn leave(State(s): State<SwarmState>, RawQuery(q): RawQuery) -> ApiResult<Response> {
    let force = Params::parse(q.as_deref())?.flag("force");
    s.swarm.leave(force).await?;
    Ok(StatusCode::OK.into_response())
}

pub async fn node(State(s): State<SwarmState>, Path(id): Path<String>) -> ApiResult<Response> {
    let n = s.swarm.node(&id).await?;
    let cluster = s.swarm.inspect().await?.cluster;
    Ok(Json(wire::node_answer(&n, Some(&cluster))).into_response())
}

/// `POST /swarm/unlock`: a manager restarted under autolock, given its key.
pub async fn unlock(State(s): State<SwarmState>, body: Bytes) -> ApiResult<Response> {
    // dockerd's ReadJSON takes an empty body as an empty request, which
    // outside a swarm is then the 503 of every swarm call
    let b: wire::UnlockBody = if body.is_empty() {
        wire::UnlockBody::default()
    } else {
        json_body(&body)?
    };
    s.swarm.unlock(&b.unlock_key).await?;
    Ok(StatusCode::OK.into_response())
}

/// `GET /swarm/unlockkey`: `{"UnlockKey": ""}` without autolock.
pub async fn unlock_key(State(s): State<SwarmState>) -> ApiResult<Response> {
    let key = s.swarm.unlock_key().await?;
    Ok(Json(serde_json::json!({ "UnlockKey": key })).into_response())
}
