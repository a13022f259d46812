//! `docker cp`, `export` and `diff`: container files over HTTP.

use axum::Json;
use axum::body::Body;
use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use base64::Engine as _;
use berth_engine::{ByteStream, ExtractOptions, PathStat};

use super::AppState;
use crate::error::{ApiError, ApiResult};
use crate::params::Params;

const STAT_HEADER: &str = "X-Docker-Container-Path-Stat";

fn stat_headers(stat: &PathStat) -> ApiResult<HeaderMap> {
    let json = serde_json::to_vec(stat).map_err(|e| ApiError::internal(e.to_string()))?;
    let mut h = HeaderMap::new();
    let encoded = base64::engine::general_purpose::STANDARD.encode(json);
    h.insert(
        STAT_HEADER,
        HeaderValue::from_str(&encoded).map_err(|e| ApiError::internal(e.to_string()))?,
    );
    Ok(h)
}

fn path_param(p: &Params) -> ApiResult<String> {
    p.get("path")
        .filter(|p| !p.is_empty())
        .map(String::from)
        .ok_or_else(|| ApiError::bad_request("bad parameter: path cannot be empty"))
}

pub fn tar_body(stream: ByteStream) -> Body {
    Body::from_stream(tokio_stream::wrappers::ReceiverStream::new(stream))
}

pub async fn head(
    State(e): State<AppState>,
    Path(id): Path<String>,
    RawQuery(q): RawQuery,
) -> ApiResult<Response> {
    let p = Params::parse(q.as_deref())?;
    let stat = e.container_path_stat(&id, &path_param(&p)?).await?;
    Ok((StatusCode::OK, stat_headers(&stat)?).into_response())
}

pub async fn get(
    State(e): State<AppState>,
    Path(id): Path<String>,
    RawQuery(q): RawQuery,
) -> ApiResult<Response> {
    let p = Params::parse(q.as_deref())?;
    let (stat, stream) = e.container_archive(&id, &path_param(&p)?).await?;
    let mut h = stat_headers(&stat)?;
    h.insert(
        axum::http::header::CONTENT_TYPE,
        HeaderValue::from_static("application/x-tar"),
    );
    Ok((StatusCode::OK, h, tar_body(stream)).into_response())
}

pub async fn put(
    State(e): State<AppState>,
    Path(id): Path<String>,
    RawQuery(q): RawQuery,
    body: Body,
) -> ApiResult<StatusCode> {
    let p = Params::parse(q.as_deref())?;
    let path = path_param(&p)?;
    let opts = ExtractOptions {
        copy_uid_gid: p.flag("copyUIDGID"),
        no_overwrite_dir_non_dir: p.flag("noOverwriteDirNonDir"),
    };
    let tmp = e.tmp_path("archive");
    super::spool(body, &tmp, "archive body").await?;
    let res = e.container_extract(&id, &path, tmp.clone(), opts).await;
    let _ = tokio::fs::remove_file(&tmp).await;
    res?;
    Ok(StatusCode::OK)
}

pub async fn export(State(e): State<AppState>, Path(id): Path<String>) -> ApiResult<Response> {
    let stream = e.container_export(&id).await?;
    Ok((
        [(axum::http::header::CONTENT_TYPE, "application/x-tar")],
        tar_body(stream),
    )
        .into_response())
}

pub async fn changes(State(e): State<AppState>, Path(id): Path<String>) -> ApiResult<Response> {
    let changes = e.container_changes(&id)?;
    Ok(Json(crate::wire::containers::changes_answer(&changes)).into_response())
}
