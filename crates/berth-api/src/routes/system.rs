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
        ],
        "OK",
    )
}

pub async fn version(State(e): State<AppState>) -> impl IntoResponse {
    Json(e.version())
}

pub async fn info(State(e): State<AppState>) -> impl IntoResponse {
    Json(e.info())
}
