//! Errors in the distribution spec's JSON form:
//! `{"errors":[{"code":"BLOB_UNKNOWN","message":"…","detail":…}]}`.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use berth_store::Digest;
use serde_json::{Value, json};

#[derive(Debug)]
pub enum RegistryError {
    Spec {
        status: StatusCode,
        code: &'static str,
        message: String,
        detail: Value,
    },
    Internal(String),
}

impl RegistryError {
    fn spec(
        status: StatusCode,
        code: &'static str,
        message: impl Into<String>,
        detail: Value,
    ) -> Self {
        RegistryError::Spec {
            status,
            code,
            message: message.into(),
            detail,
        }
    }

    pub fn blob_unknown(d: &Digest) -> Self {
        Self::spec(
            StatusCode::NOT_FOUND,
            "BLOB_UNKNOWN",
            "blob unknown to registry",
            json!({"digest": d.as_str()}),
        )
    }

    pub fn upload_unknown() -> Self {
        Self::spec(
            StatusCode::NOT_FOUND,
            "BLOB_UPLOAD_UNKNOWN",
            "blob upload unknown to registry",
            Value::Null,
        )
    }

    pub fn upload_invalid(why: impl Into<String>) -> Self {
        Self::spec(
            StatusCode::BAD_REQUEST,
            "BLOB_UPLOAD_INVALID",
            "blob upload invalid",
            json!({"reason": why.into()}),
        )
    }

    pub fn range_invalid(why: impl Into<String>) -> Self {
        Self::spec(
            StatusCode::RANGE_NOT_SATISFIABLE,
            "BLOB_UPLOAD_INVALID",
            "blob upload invalid",
            json!({"reason": why.into()}),
        )
    }

    pub fn digest_invalid(why: impl Into<String>) -> Self {
        Self::spec(
            StatusCode::BAD_REQUEST,
            "DIGEST_INVALID",
            "provided digest did not match uploaded content",
            json!({"reason": why.into()}),
        )
    }

    pub fn manifest_unknown(reference: &str) -> Self {
        Self::spec(
            StatusCode::NOT_FOUND,
            "MANIFEST_UNKNOWN",
            "manifest unknown",
            json!({"reference": reference}),
        )
    }

    pub fn manifest_invalid(why: impl Into<String>) -> Self {
        Self::spec(
            StatusCode::BAD_REQUEST,
            "MANIFEST_INVALID",
            "manifest invalid",
            json!({"reason": why.into()}),
        )
    }

    pub fn manifest_blob_unknown(d: &Digest) -> Self {
        Self::spec(
            StatusCode::BAD_REQUEST,
            "MANIFEST_BLOB_UNKNOWN",
            "blob unknown to registry",
            json!({"digest": d.as_str()}),
        )
    }

    pub fn name_invalid(name: &str) -> Self {
        Self::spec(
            StatusCode::BAD_REQUEST,
            "NAME_INVALID",
            "invalid repository name",
            json!({"name": name}),
        )
    }

    pub fn name_unknown(name: &str) -> Self {
        Self::spec(
            StatusCode::NOT_FOUND,
            "NAME_UNKNOWN",
            "repository name not known to registry",
            json!({"name": name}),
        )
    }

    pub fn tag_invalid(tag: &str) -> Self {
        Self::spec(
            StatusCode::BAD_REQUEST,
            "TAG_INVALID",
            "manifest tag did not match URI",
            json!({"tag": tag}),
        )
    }

    pub fn size_invalid(why: impl Into<String>) -> Self {
        Self::spec(
            StatusCode::BAD_REQUEST,
            "SIZE_INVALID",
            "provided length did not match content length",
            json!({"reason": why.into()}),
        )
    }

    pub fn unauthorized() -> Self {
        Self::spec(
            StatusCode::UNAUTHORIZED,
            "UNAUTHORIZED",
            "authentication required",
            Value::Null,
        )
    }

    pub fn unsupported(what: impl Into<String>) -> Self {
        Self::spec(
            StatusCode::METHOD_NOT_ALLOWED,
            "UNSUPPORTED",
            "The operation is unsupported.",
            json!({"reason": what.into()}),
        )
    }

    pub fn not_found() -> Self {
        Self::spec(StatusCode::NOT_FOUND, "NOT_FOUND", "not found", Value::Null)
    }
}

impl From<std::io::Error> for RegistryError {
    fn from(e: std::io::Error) -> Self {
        RegistryError::Internal(e.to_string())
    }
}

impl IntoResponse for RegistryError {
    fn into_response(self) -> Response {
        let (status, code, message, detail) = match self {
            RegistryError::Spec {
                status,
                code,
                message,
                detail,
            } => (status, code, message, detail),
            RegistryError::Internal(m) => {
                tracing::error!("registry: {m}");
                (
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "UNKNOWN",
                    "unknown error".to_string(),
                    json!({"reason": m}),
                )
            }
        };
        let mut err = json!({"code": code, "message": message});
        if !detail.is_null() {
            err["detail"] = detail;
        }
        let mut resp = (status, axum::Json(json!({ "errors": [err] }))).into_response();
        if status == StatusCode::UNAUTHORIZED {
            resp.headers_mut().insert(
                "www-authenticate",
                axum::http::HeaderValue::from_static("Basic realm=\"berth registry\""),
            );
        }
        resp
    }
}
