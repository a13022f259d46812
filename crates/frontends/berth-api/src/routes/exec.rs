use axum::Extension;
use axum::Json;
use axum::body::{Body, Bytes};
use axum::extract::{Path, Request, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use bollard_stubs::models::{ExecConfig, ExecStartConfig};
use hyper_util::rt::TokioIo;

use super::containers::{RAW_STREAM, upgrade_response};
use super::{AppState, json_body};
use crate::error::{ApiError, ApiResult};
use crate::server::ApiVersion;

pub async fn create(
    State(e): State<AppState>,
    Path(id): Path<String>,
    body: Bytes,
) -> ApiResult<Response> {
    let cfg: ExecConfig = json_body(&body)?;
    let exec_id = e.exec_create(&id, crate::wire::exec::create_request(cfg)?)?;
    Ok((
        StatusCode::CREATED,
        Json(serde_json::json!({ "Id": exec_id })),
    )
        .into_response())
}

pub async fn inspect(State(e): State<AppState>, Path(id): Path<String>) -> ApiResult<Response> {
    let rec = e.exec_inspect(&id)?;
    Ok(Json(crate::wire::exec::inspect_answer(&rec)).into_response())
}

/// POST /exec/{id}/start: detached, or a 101 upgrade carrying the output
/// (and stdin), like attach. The process starts once the answer head is
/// out, as dockerd starts it after writing the head.
pub async fn start(
    State(e): State<AppState>,
    Path(id): Path<String>,
    Extension(v): Extension<ApiVersion>,
    req: Request,
) -> ApiResult<Response> {
    let (mut parts, body) = req.into_parts();
    let raw = axum::body::to_bytes(body, 1 << 20)
        .await
        .map_err(|err| ApiError::bad_request(format!("reading body: {err}")))?;
    let cfg: ExecStartConfig = if raw.iter().all(|b| b.is_ascii_whitespace()) {
        ExecStartConfig::default()
    } else {
        json_body(&raw)?
    };
    let opts = crate::wire::exec::start_request(&cfg, v);
    let raw_output = opts.raw;
    let mut session = e.exec_start(&id, opts).await?;
    if cfg.detach == Some(true) {
        // a detached start answers once the process runs
        session.launch().await;
        tokio::spawn(session.pump(tokio::io::empty(), tokio::io::sink()));
        return Ok(StatusCode::OK.into_response());
    }
    if !parts.headers.contains_key(header::UPGRADE) {
        let (w, r) = tokio::io::duplex(64 * 1024);
        tokio::spawn(session.pump(tokio::io::empty(), w));
        let body = Body::from_stream(tokio_util::io::ReaderStream::new(r));
        // dockerd names the raw stream here whatever it carries
        return Ok(([(header::CONTENT_TYPE, RAW_STREAM)], body).into_response());
    }
    let on_upgrade = parts.extensions.remove::<hyper::upgrade::OnUpgrade>();
    let Some(on_upgrade) = on_upgrade else {
        return Err(ApiError(
            StatusCode::INTERNAL_SERVER_ERROR,
            "connection cannot be upgraded".into(),
        ));
    };
    tokio::spawn(async move {
        // hyper hands the connection over once the 101 head is written
        match on_upgrade.await {
            Ok(upgraded) => {
                let (r, w) = tokio::io::split(TokioIo::new(upgraded));
                session.pump(r, w).await;
            }
            // the client is gone; let the process run to its end regardless
            Err(_) => session.pump(tokio::io::empty(), tokio::io::sink()).await,
        }
    });
    upgrade_response(crate::wire::exec::upgraded_content_type(raw_output, v))
}
