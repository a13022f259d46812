use axum::Json;
use axum::body::Body;
use axum::extract::{Path, RawQuery, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use berth_engine::ImportOptions;

use super::AppState;
use crate::error::{ApiError, ApiResult};
use crate::params::Params;

pub async fn list(State(e): State<AppState>, RawQuery(q): RawQuery) -> ApiResult<Response> {
    let p = Params::parse(q.as_deref())?;
    Ok(Json(e.image_list(p.flag("all"))?).into_response())
}

/// GET /images/{name}/json — names may contain slashes.
pub async fn get_dispatch(
    State(e): State<AppState>,
    Path(rest): Path<String>,
) -> ApiResult<Response> {
    if let Some(name) = rest.strip_suffix("/json") {
        return Ok(Json(e.image_inspect(name)?).into_response());
    }
    Err(ApiError(StatusCode::NOT_FOUND, "page not found".into()))
}

pub async fn remove(
    State(e): State<AppState>,
    Path(name): Path<String>,
    RawQuery(q): RawQuery,
) -> ApiResult<Response> {
    let p = Params::parse(q.as_deref())?;
    let items = e.image_delete(&name, p.flag("force"), !p.flag("noprune"))?;
    Ok(Json(items).into_response())
}

/// POST /images/create: `fromSrc=-` imports the request body.
pub async fn create(
    State(e): State<AppState>,
    RawQuery(q): RawQuery,
    body: Body,
) -> ApiResult<Response> {
    let p = Params::parse(q.as_deref())?;
    if let Some(image) = p.get("fromImage").filter(|s| !s.is_empty()) {
        e.image_pull(image, p.get("tag"))?;
    }
    let Some(src) = p.get("fromSrc") else {
        return Err(ApiError::bad_request(
            "either fromImage or fromSrc is required",
        ));
    };
    if src != "-" {
        return Err(ApiError::bad_request(format!(
            "importing from a URL ({src}) is not supported; send the archive as the request body"
        )));
    }
    let tmp = e.tmp_path("import");
    let spooled = super::spool(body, &tmp).await;
    if let Err(err) = spooled {
        let _ = tokio::fs::remove_file(&tmp).await;
        return Err(ApiError::bad_request(format!("reading import body: {err}")));
    }
    let opts = ImportOptions {
        repo: p.get("repo").map(String::from),
        tag: p.get("tag").map(String::from),
        changes: changes(&p),
        message: p.get("message").map(String::from),
    };
    let res = e.import_image(tmp.clone(), opts).await;
    let _ = tokio::fs::remove_file(&tmp).await;
    let id = res?;
    let line = format!("{}\n", serde_json::json!({ "status": id }));
    Ok((
        [(axum::http::header::CONTENT_TYPE, "application/json")],
        line,
    )
        .into_response())
}

/// The `changes` parameters: Dockerfile instructions, one per value or
/// newline-joined (as bollard sends them).
fn changes(p: &Params) -> Vec<String> {
    p.all("changes")
        .iter()
        .flat_map(|c| c.lines().map(str::to_string).collect::<Vec<_>>())
        .filter(|c| !c.trim().is_empty())
        .collect()
}

/// POST /commit?container&repo&tag&comment&author&pause&changes
pub async fn commit(State(e): State<AppState>, RawQuery(q): RawQuery) -> ApiResult<Response> {
    let p = Params::parse(q.as_deref())?;
    let container = p
        .get("container")
        .filter(|c| !c.is_empty())
        .ok_or_else(|| ApiError::bad_request("container is required"))?
        .to_string();
    let opts = berth_engine::CommitOptions {
        repo: p.get("repo").map(String::from),
        tag: p.get("tag").map(String::from),
        comment: p.get("comment").map(String::from),
        author: p.get("author").map(String::from),
        pause: p.get("pause").is_none_or(|_| p.flag("pause")),
        changes: changes(&p),
    };
    let id = e.container_commit(&container, opts).await?;
    Ok((StatusCode::CREATED, Json(serde_json::json!({ "Id": id }))).into_response())
}
