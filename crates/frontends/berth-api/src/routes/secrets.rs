//! `/secrets` and `/configs`: one set of handlers for both, told apart by
//! `BlobKind`; swarmkit's rules behind `Swarm`.

use axum::Json;
use axum::body::Bytes;
use axum::extract::{Path, RawQuery, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use berth_swarm_store::BlobKind;
use serde_json::json;

use super::json_body;
use super::swarm::SwarmState;
use crate::error::{ApiError, ApiResult};
use crate::params::Params;
use crate::wire::secrets as wire;

/// `POST /secrets/create`: 201 `{"ID": …}`.
pub async fn create(blob: BlobKind, s: SwarmState, body: Bytes) -> ApiResult<Response> {
    let spec = spec_of(&body)?;
    let id = s.swarm.create_blob(blob, spec).await?;
    Ok((StatusCode::CREATED, Json(json!({ "ID": id }))).into_response())
}

fn spec_of(body: &[u8]) -> ApiResult<berth_swarm_store::SecretSpec> {
    let spec: wire::SpecIn = if body.is_empty() {
        wire::SpecIn::default()
    } else {
        json_body(body)?
    };
    spec.into_spec()
        .map_err(|e| ApiError::bad_request(format!("invalid JSON body: {e}")))
}

/// `GET /secrets?filters=`
pub async fn list(blob: BlobKind, s: SwarmState, q: Option<String>) -> ApiResult<Response> {
    let p = Params::parse(q.as_deref())?;
    let filters = wire::BlobFilters::parse(blob, p.filters()?).map_err(ApiError::bad_request)?;
    let answer: Vec<_> = s
        .swarm
        .blobs(blob)
        .await?
        .iter()
        .filter(|x| filters.matches(x))
        .map(|x| wire::answer(blob, x))
        .collect();
    Ok(Json(answer).into_response())
}

/// `GET /secrets/{id}`
pub async fn inspect(blob: BlobKind, s: SwarmState, id: String) -> ApiResult<Response> {
    let x = s.swarm.blob(blob, &id).await?;
    Ok(Json(wire::answer(blob, &x)).into_response())
}

/// `POST /secrets/{id}/update?version=N`: 200 with an empty body.
pub async fn update(
    blob: BlobKind,
    s: SwarmState,
    id: String,
    q: Option<String>,
    body: Bytes,
) -> ApiResult<Response> {
    let version = version_of(blob, q)?;
    let spec = spec_of(&body)?;
    s.swarm.update_blob(blob, &id, version, spec).await?;
    Ok(StatusCode::OK.into_response())
}

fn version_of(blob: BlobKind, q: Option<String>) -> ApiResult<u64> {
    let p = Params::parse(q.as_deref())?;
    p.get("version")
        .unwrap_or_default()
        .parse::<u64>()
        .map_err(|_| ApiError::bad_request(format!("invalid {} version", blob.as_str())))
}

/// `DELETE /secrets/{id}`: 204.
pub async fn remove(blob: BlobKind, s: SwarmState, id: String) -> ApiResult<Response> {
    s.swarm.remove_blob(blob, &id).await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

/// `POST /secrets/{id}/rotate?version=N` (berth's own), body
/// `{"Data": "<base64>"}`: the secret's new version and the services
/// rolled to pick it up.
pub async fn rotate(
    blob: BlobKind,
    s: SwarmState,
    id: String,
    q: Option<String>,
    body: Bytes,
) -> ApiResult<Response> {
    let version = version_of(blob, q)?;
    let spec = spec_of(&body)?;
    let (x, rolled) = s.swarm.rotate_blob(blob, &id, version, spec.data.0).await?;
    let services: Vec<_> = rolled
        .into_iter()
        .map(|(id, name)| json!({ "ID": id, "Name": name }))
        .collect();
    Ok(Json(json!({
        "ID": x.id,
        "Version": { "Index": x.meta.version },
        "Services": services,
    }))
    .into_response())
}

/// The routes of one kind, under `/secrets` or `/configs`.
pub fn routes(blob: BlobKind, base: &str) -> axum::Router<SwarmState> {
    use axum::routing::{get, post};
    let one = format!("{base}/{{id}}");
    axum::Router::new()
        .route(
            base,
            get(move |State(s): State<SwarmState>, RawQuery(q): RawQuery| list(blob, s, q)),
        )
        .route(
            &format!("{base}/create"),
            post(move |State(s): State<SwarmState>, body: Bytes| create(blob, s, body)),
        )
        .route(
            &one,
            get(move |State(s): State<SwarmState>, Path(id): Path<String>| inspect(blob, s, id))
                .delete(move |State(s): State<SwarmState>, Path(id): Path<String>| {
                    remove(blob, s, id)
                }),
        )
        .route(
            &format!("{one}/update"),
            post(
                move |State(s): State<SwarmState>,
                      Path(id): Path<String>,
                      RawQuery(q): RawQuery,
                      body: Bytes| update(blob, s, id, q, body),
            ),
        )
        .route(
            &format!("{one}/rotate"),
            post(
                move |State(s): State<SwarmState>,
                      Path(id): Path<String>,
                      RawQuery(q): RawQuery,
                      body: Bytes| rotate(blob, s, id, q, body),
            ),
        )
}
