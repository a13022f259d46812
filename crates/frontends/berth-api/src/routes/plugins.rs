//! Plugin endpoints before berth has plugins: the list is empty, so any
//! named plugin is not found, as dockerd answers for one it lacks.

use axum::Json;
use axum::extract::{Path, RawQuery};
use axum::http::StatusCode;

use crate::error::{ApiError, ApiResult};
use crate::params::Params;

pub async fn list(RawQuery(q): RawQuery) -> ApiResult<Json<Vec<serde_json::Value>>> {
    let p = Params::parse(q.as_deref())?;
    for key in p.filters()?.keys() {
        if key != "capability" && key != "enable" {
            return Err(ApiError::bad_request(format!("invalid filter '{key}'")));
        }
    }
    Ok(Json(Vec::new()))
}

pub async fn not_found(Path(name): Path<String>) -> ApiError {
    ApiError(
        StatusCode::NOT_FOUND,
        format!("plugin \"{name}\" not found"),
    )
}
