//! The daemon log's record of failed requests: client errors at debug
//! (they are the client's business, but a trail helps afterwards),
//! server errors at warn or error.

use axum::body::Body;
use axum::http::{Method, Response, StatusCode};
use hyper::body::Body as _;

/// Error bodies are small JSON documents; a larger or streamed body is
/// passed on without reading it.
const MESSAGE_LIMIT: u64 = 64 << 10;

/// Logs a 4xx or 5xx answer with the request's method and path and the
/// answer's message, and hands the answer back unchanged.
pub async fn failed(method: &Method, path: &str, resp: Response<Body>) -> Response<Body> {
    let status = resp.status();
    if !status.is_client_error() && !status.is_server_error() {
        return resp;
    }
    let (parts, body) = resp.into_parts();
    let (message, body) = message_of(body).await;
    log(method, path, status, &message);
    Response::from_parts(parts, body)
}

fn log(method: &Method, path: &str, status: StatusCode, message: &str) {
    let code = status.as_u16();
    if status.is_client_error() {
        tracing::debug!(%method, %path, status = code, error = %message, "request failed");
    } else if status == StatusCode::NOT_IMPLEMENTED {
        // a feature berth lacks, not a fault in it
        tracing::warn!(%method, %path, status = code, error = %message, "request failed");
    } else {
        tracing::error!(%method, %path, status = code, error = %message, "request failed");
    }
}

/// The message of an error answer: Docker's `{"message": ...}` or, for
/// answers axum makes itself, their text.
async fn message_of(body: Body) -> (String, Body) {
    let small = body.size_hint().exact().is_some_and(|n| n <= MESSAGE_LIMIT);
    if !small {
        return (String::new(), body);
    }
    match axum::body::to_bytes(body, MESSAGE_LIMIT as usize).await {
        Ok(bytes) => (message_in(&bytes), Body::from(bytes)),
        Err(e) => (format!("unreadable error body: {e}"), Body::empty()),
    }
}

fn message_in(bytes: &[u8]) -> String {
    let json = serde_json::from_slice::<serde_json::Value>(bytes).ok();
    match json.as_ref().and_then(|v| v.get("message")?.as_str()) {
        Some(m) => m.to_string(),
        None => String::from_utf8_lossy(bytes).trim().to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_of_error_bodies() {
        assert_eq!(
            message_in(br#"{"message":"No such image: x"}"#),
            "No such image: x"
        );
        assert_eq!(
            message_in(b"Failed to buffer the request body: length limit exceeded\n"),
            "Failed to buffer the request body: length limit exceeded"
        );
        assert_eq!(message_in(b""), "");
    }

    #[tokio::test]
    async fn the_answer_is_passed_on_unchanged() {
        let resp = Response::builder()
            .status(StatusCode::NOT_FOUND)
            .body(Body::from(r#"{"message":"page not found"}"#))
            .unwrap();
        let resp = failed(&Method::POST, "/nope", resp).await;
        assert_eq!(resp.status(), StatusCode::NOT_FOUND);
        let body = axum::body::to_bytes(resp.into_body(), 1024).await.unwrap();
        assert_eq!(&body[..], br#"{"message":"page not found"}"#);
    }

    #[tokio::test]
    async fn streamed_error_bodies_are_not_read() {
        let stream = futures_util::stream::pending::<Result<bytes::Bytes, std::io::Error>>();
        let resp = Response::builder()
            .status(StatusCode::INTERNAL_SERVER_ERROR)
            .body(Body::from_stream(stream))
            .unwrap();
        let (message, _) = message_of(resp.into_body()).await;
        assert_eq!(message, "");
    }
}
