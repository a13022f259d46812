use axum::Json;
use axum::extract::State;
use axum::http::header;
use axum::response::IntoResponse;

use super::AppState;

pub async fn ping() -> impl IntoResponse {
    (
        [
            (header::CACHE_CONTROL, "no-cache, no-store, must-revalidate"),
            (header::PRAGMA, "no-cache"),
            // the classic builder: clients pick it without BuildKit
            (header::HeaderName::from_static("builder-version"), "1"),
        ],
        "OK",
    )
}

pub async fn version(State(e): State<AppState>) -> impl IntoResponse {
    Json(crate::wire::system::version_answer(&e.version()))
}

/// GET /system/df?type=…: sizes are computed on each call (the daemon
/// walks writable layers and volumes), so run it in a blocking thread.
pub async fn df(
    State(e): State<AppState>,
    axum::extract::RawQuery(q): axum::extract::RawQuery,
) -> crate::error::ApiResult<axum::response::Response> {
    let p = crate::params::Params::parse(q.as_deref())?;
    let types = p.all("type");
    let v = tokio::task::spawn_blocking(move || e.system_df(&types))
        .await
        .map_err(|err| crate::error::ApiError::internal(format!("df task failed: {err}")))??;
    Ok(Json(crate::wire::system::disk_usage_answer(v)).into_response())
}
