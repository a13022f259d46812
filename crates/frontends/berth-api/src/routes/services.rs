//! `/services` and `/tasks`: the spec read at the edge, swarmkit's rules
//! behind `Swarm`, and Docker's JSON on the way out.

use axum::Json;
use axum::body::Bytes;
use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use berth_swarm_store::{PullAuth, ServiceSpec};
use serde_json::json;

use super::json_body;
use super::swarm::SwarmState;
use crate::error::{ApiError, ApiResult};
use crate::params::Params;
use crate::wire::services as wire;

/// `POST /services/create`
pub async fn create(
    State(s): State<SwarmState>,
    headers: HeaderMap,
    body: Bytes,
) -> ApiResult<Response> {
    let mut spec = spec_of(&body)?;
    let auth = pull_auth(&headers)?;
    if spec.name.is_empty() {
        // dockerd names a service the client left unnamed, as a container
        spec.name = berth_engine::generate_name(&random_hex(), 0);
    }
    resolve_networks(&s, &mut spec).await?;
    let id = s.swarm.create_service(spec, auth).await?;
    Ok((StatusCode::CREATED, Json(json!({ "ID": id }))).into_response())
}

/// dockerd's `populateNetworkID`: each attachment's target, a name or id
/// prefix, becomes the swarm network's id (the deprecated top-level
/// `Networks` moves into the task template), so specs hold ids and a
/// redeploy by name compares equal. A local network can't be used.
async fn resolve_networks(s: &SwarmState, spec: &mut ServiceSpec) -> ApiResult<()> {
    if let Some(old) = spec.extra.remove("Networks")
        && spec.task_template.networks.is_empty()
    {
        spec.task_template.networks = serde_json::from_value(old)
            .map_err(|e| ApiError::bad_request(format!("invalid JSON: {e}")))?;
    }
    for a in &mut spec.task_template.networks {
        match s.swarm.network(&a.target).await {
            Ok(n) => a.target = n.id,
            Err(berth_swarm_manager::SwarmError::NotFound(m)) => {
                if let Ok(local) = s.engine.network_inspect(&a.target) {
                    return Err(ApiError(
                        StatusCode::FORBIDDEN,
                        format!(
                            "The network {} cannot be used with services. Only networks scoped to the swarm can be used, such as those created with the overlay driver.",
                            local.record.name
                        ),
                    ));
                }
                return Err(ApiError(StatusCode::NOT_FOUND, m));
            }
            Err(e) => return Err(e.into()),
        }
    }
    Ok(())
}

/// `X-Registry-Auth` (`--with-registry-auth`): what the service's tasks
/// are pulled with on every node.
fn pull_auth(headers: &HeaderMap) -> ApiResult<Option<PullAuth>> {
    Ok(super::images::registry_auth(headers)?.map(|c| PullAuth {
        username: c.username,
        password: c.password,
    }))
}

/// The body's spec; an empty body is an empty spec, as dockerd's
/// `ReadJSON` takes it (the manager check then answers first).
fn spec_of(body: &[u8]) -> ApiResult<ServiceSpec> {
    let mut spec: ServiceSpec = if body.is_empty() {
        ServiceSpec::default()
    } else {
        json_body(body)?
    };
    wire::drop_shown_defaults(&mut spec);
    Ok(spec)
}

/// `GET /services?filters=&status=`
pub async fn list(State(s): State<SwarmState>, RawQuery(q): RawQuery) -> ApiResult<Response> {
    let p = Params::parse(q.as_deref())?;
    let filters = wire::ServiceFilters::parse(p.filters()?).map_err(ApiError::bad_request)?;
    let with_status = p.flag("status");
    let answer: Vec<_> = s
        .swarm
        .services()
        .await?
        .iter()
        .filter(|v| filters.matches(v))
        .map(|v| wire::service_answer(v, with_status))
        .collect();
    Ok(Json(answer).into_response())
}

/// `GET /services/{id}?insertDefaults=`
pub async fn inspect(
    State(s): State<SwarmState>,
    Path(id): Path<String>,
    RawQuery(q): RawQuery,
) -> ApiResult<Response> {
    let p = Params::parse(q.as_deref())?;
    let mut view = s.swarm.service(&id).await?;
    if p.flag("insertDefaults") {
        wire::insert_defaults(&mut view.service.spec);
    }
    Ok(Json(wire::service_answer(&view, false)).into_response())
}

/// `POST /services/{id}/update?version=N&rollback=previous`
pub async fn update(
    State(s): State<SwarmState>,
    Path(id): Path<String>,
    RawQuery(q): RawQuery,
    headers: HeaderMap,
    body: Bytes,
) -> ApiResult<Response> {
    let p = Params::parse(q.as_deref())?;
    let auth = pull_auth(&headers)?;
    let version = wire::service_version(p.get("version").unwrap_or_default())
        .map_err(ApiError::bad_request)?;
    let rollback = match p.get("rollback").unwrap_or_default() {
        "" | "none" => false,
        "previous" => true,
        other => {
            return Err(ApiError::bad_request(format!(
                "unrecognized rollback option {other}"
            )));
        }
    };
    let mut spec = spec_of(&body)?;
    resolve_networks(&s, &mut spec).await?;
    s.swarm
        .update_service(&id, version, spec, rollback, auth)
        .await?;
    Ok(Json(json!({})).into_response())
}

/// `POST /services/{id}/rebalance` (berth's own): `{"Tasks": [ids]}`,
/// the tasks that move to spread the service evenly again.
pub async fn rebalance(State(s): State<SwarmState>, Path(id): Path<String>) -> ApiResult<Response> {
    let moving = s.swarm.rebalance_service(&id).await?;
    Ok(Json(json!({ "Tasks": moving })).into_response())
}

/// `DELETE /services/{id}`
pub async fn remove(State(s): State<SwarmState>, Path(id): Path<String>) -> ApiResult<Response> {
    s.swarm.remove_service(&id).await?;
    Ok(StatusCode::OK.into_response())
}

/// `GET /tasks?filters=`: dockerd resolves the `service` and `node`
/// filters' names to ids first, and fails on one it cannot find.
pub async fn tasks(State(s): State<SwarmState>, RawQuery(q): RawQuery) -> ApiResult<Response> {
    s.swarm.require_manager().await?;
    let mut f = Params::parse(q.as_deref())?.filters()?;
    crate::wire::swarm_nodes::check_task_filters(&f).map_err(ApiError::bad_request)?;
    wire::check_desired_state(&f).map_err(ApiError::bad_request)?;
    if let Some(refs) = f.remove("service") {
        let mut ids = Vec::new();
        for r in refs {
            ids.push(s.swarm.service(&r).await?.service.id);
        }
        f.insert("service".into(), ids);
    }
    if let Some(refs) = f.remove("node") {
        let mut ids = Vec::new();
        for r in refs {
            ids.push(s.swarm.node(&r).await?.node.id);
        }
        f.insert("node".into(), ids);
    }
    let filters = wire::TaskFilters { f };
    let services = s.swarm.services().await?;
    let name_of = |id: &str| {
        services
            .iter()
            .find(|v| v.service.id == id)
            .map_or("", |v| v.service.spec.name.as_str())
    };
    let answer: Vec<_> = s
        .swarm
        .tasks()
        .await?
        .iter()
        .filter(|t| filters.matches(t, name_of(&t.service_id)))
        .map(wire::task_answer)
        .collect();
    Ok(Json(answer).into_response())
}

/// `GET /tasks/{id}`
pub async fn task(State(s): State<SwarmState>, Path(id): Path<String>) -> ApiResult<Response> {
    let t = s.swarm.task(&id).await?;
    Ok(Json(wire::task_answer(&t)).into_response())
}

/// 16 hex digits, random enough to pick a name (not a secret).
fn random_hex() -> String {
    use std::hash::{BuildHasher, Hasher};
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u128(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos()),
    );
    format!("{:016x}", h.finish())
}
