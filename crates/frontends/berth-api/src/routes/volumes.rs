use axum::Json;
use axum::body::Bytes;
use axum::extract::{Extension, Path, RawQuery, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use bollard_stubs::models::{VolumeCreateRequest, VolumeListResponse, VolumePruneResponse};

use super::{AppState, json_body};
use crate::error::ApiResult;
use crate::params::Params;
use crate::server::ApiVersion;
use crate::wire::volumes as wire;

pub async fn list(State(e): State<AppState>, RawQuery(q): RawQuery) -> ApiResult<Response> {
    let p = Params::parse(q.as_deref())?;
    let volumes = e.volume_list(&p.filters()?)?;
    Ok(Json(VolumeListResponse {
        volumes: Some(volumes.iter().map(wire::volume_answer).collect()),
        warnings: Some(vec![]),
    })
    .into_response())
}

pub async fn create(State(e): State<AppState>, body: Bytes) -> ApiResult<Response> {
    let req: VolumeCreateRequest = if body.iter().all(|b| b.is_ascii_whitespace()) {
        VolumeCreateRequest::default()
    } else {
        json_body(&body)?
    };
    let created = e.volume_create(wire::volume_create_request(req))?;
    Ok((StatusCode::CREATED, Json(wire::volume_answer(&created))).into_response())
}

pub async fn inspect(State(e): State<AppState>, Path(name): Path<String>) -> ApiResult<Response> {
    Ok(Json(wire::volume_answer(&e.volume_inspect(&name)?)).into_response())
}

pub async fn inspect_unnamed(state: State<AppState>) -> ApiResult<Response> {
    inspect(state, Path(String::new())).await
}

pub async fn remove_unnamed(state: State<AppState>, q: RawQuery) -> ApiResult<StatusCode> {
    remove(state, Path(String::new()), q).await
}

pub async fn remove(
    State(e): State<AppState>,
    Path(name): Path<String>,
    RawQuery(q): RawQuery,
) -> ApiResult<StatusCode> {
    let p = Params::parse(q.as_deref())?;
    e.volume_remove(&name, p.flag("force"))?;
    Ok(StatusCode::NO_CONTENT)
}

pub async fn prune(
    State(e): State<AppState>,
    Extension(version): Extension<ApiVersion>,
    RawQuery(q): RawQuery,
) -> ApiResult<Response> {
    let p = Params::parse(q.as_deref())?;
    let (deleted, space) = e.volume_prune(&p.filters()?, version < ApiVersion(1, 42))?;
    Ok(Json(VolumePruneResponse {
        volumes_deleted: Some(deleted),
        space_reclaimed: Some(space as i64),
    })
    .into_response())
}
