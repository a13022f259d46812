use axum::Json;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use berth_engine::Error;

/// Docker's error answer: a status code and `{"message": "..."}`.
#[derive(Debug)]
pub struct ApiError(pub StatusCode, pub String);

impl ApiError {
    pub fn bad_request(m: impl Into<String>) -> Self {
        ApiError(StatusCode::BAD_REQUEST, m.into())
    }
    pub fn internal(m: impl Into<String>) -> Self {
        ApiError(StatusCode::INTERNAL_SERVER_ERROR, m.into())
    }
}

impl From<Error> for ApiError {
    fn from(e: Error) -> Self {
        let status = match &e {
            Error::NotFound(_) => StatusCode::NOT_FOUND,
            Error::Conflict(_) => StatusCode::CONFLICT,
            Error::InvalidParameter(_) => StatusCode::BAD_REQUEST,
            Error::NotModified(_) => StatusCode::NOT_MODIFIED,
            Error::NotImplemented(_) => StatusCode::NOT_IMPLEMENTED,
            Error::Forbidden(_) => StatusCode::FORBIDDEN,
            Error::Unauthorized(_) => StatusCode::UNAUTHORIZED,
            Error::StepFailed { .. } => StatusCode::BAD_REQUEST,
            Error::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        };
        // logged with its method and path once answered (server::report)
        ApiError(status, e.to_string())
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        if self.0 == StatusCode::NOT_MODIFIED {
            // a 304 carries no body
            return self.0.into_response();
        }
        (self.0, Json(serde_json::json!({ "message": self.1 }))).into_response()
    }
}

pub type ApiResult<T> = Result<T, ApiError>;
