//! What the server puts up with from a client: how long it waits for
//! request headers and for a body that makes no progress, and how large
//! a body it accepts before reading it.

use std::time::Duration;

use axum::http::{Method, StatusCode};

use crate::error::ApiError;

/// Headers must be complete this long after the connection (or its
/// previous answer) became idle; a slowloris client cannot hold a task for
/// longer. hyper counts the idle time of a kept-alive connection too, so
/// this is dockerd's ReadHeaderTimeout (5 minutes) rather than hyper's 30 s:
/// pooled connections of Go clients (compose, testcontainers) stay usable
/// across pauses of minutes.
const HEADER_TIMEOUT: Duration = Duration::from_secs(300);

/// A body may pause this long between two chunks (nginx's
/// client_body_timeout). Not a total: uploads of any length go on as
/// long as bytes keep coming.
const BODY_IDLE_TIMEOUT: Duration = Duration::from_secs(60);

/// The bodies handlers buffer in memory: axum's default body limit,
/// which the routes' `Bytes` extractors enforce while reading.
pub const BUFFERED_BODY_LIMIT: u64 = 2 << 20;

/// The most of an unread body the server discards to keep a connection
/// open; beyond it the answer says `Connection: close` (Go's
/// maxPostHandlerReadBytes).
pub const DRAIN_LIMIT: u64 = 256 << 10;

/// Environment variables that shorten the timeouts (seconds, decimals
/// allowed), for tests and for operators who want them tighter.
const HEADER_TIMEOUT_ENV: &str = "BERTH_API_HEADER_TIMEOUT";
const BODY_TIMEOUT_ENV: &str = "BERTH_API_BODY_TIMEOUT";

#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Timeouts {
    pub header: Duration,
    pub body_idle: Duration,
}

impl Timeouts {
    pub fn from_env() -> Timeouts {
        Timeouts {
            header: from_env(HEADER_TIMEOUT_ENV, HEADER_TIMEOUT),
            body_idle: from_env(BODY_TIMEOUT_ENV, BODY_IDLE_TIMEOUT),
        }
    }
}

fn from_env(var: &str, default: Duration) -> Duration {
    let Ok(raw) = std::env::var(var) else {
        return default;
    };
    match parse_seconds(&raw) {
        Some(d) => {
            tracing::info!(var, seconds = d.as_secs_f64(), "API timeout set");
            d
        }
        None => {
            tracing::warn!(var, value = %raw, default = ?default, "ignoring an invalid timeout");
            default
        }
    }
}

/// A positive number of seconds.
fn parse_seconds(raw: &str) -> Option<Duration> {
    let secs: f64 = raw.trim().parse().ok()?;
    if secs.is_nan() || secs <= 0.0 {
        return None;
    }
    Duration::try_from_secs_f64(secs).ok()
}

/// Routes whose handlers stream the body to disk (build contexts, image
/// archives, archives for `cp`): a large body is their normal input.
/// Every other route buffers its body, so a new streaming route must be
/// listed here.
fn streams_body(method: &Method, path: &str) -> bool {
    match *method {
        Method::POST => matches!(path, "/build" | "/images/load" | "/images/create"),
        Method::PUT => path
            .strip_prefix("/containers/")
            .and_then(|p| p.strip_suffix("/archive"))
            .is_some_and(|id| !id.is_empty() && !id.contains('/')),
        _ => false,
    }
}

/// The path a route sees: without the `/v1.NN` prefix.
fn route_path(path: &str) -> &str {
    let Some(rest) = path.strip_prefix("/v") else {
        return path;
    };
    match rest.split_once('/') {
        Some((v, _)) if super::ApiVersion::parse(v).is_some() => &rest[v.len()..],
        _ => path,
    }
}

/// Refuses a body whose declared length exceeds what its route buffers,
/// before waiting for any of it.
pub fn refuse_declared(method: &Method, path: &str, declared: u64) -> Option<ApiError> {
    if declared <= BUFFERED_BODY_LIMIT || streams_body(method, route_path(path)) {
        return None;
    }
    Some(ApiError(
        StatusCode::PAYLOAD_TOO_LARGE,
        format!(
            "request body too large: {declared} bytes declared, the limit is {BUFFERED_BODY_LIMIT}"
        ),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seconds_from_the_environment() {
        assert_eq!(parse_seconds("2"), Some(Duration::from_secs(2)));
        assert_eq!(parse_seconds(" 0.5 "), Some(Duration::from_millis(500)));
        for bad in ["0", "-1", "abc", "", "NaN", "inf", "1e300"] {
            assert_eq!(parse_seconds(bad), None, "{bad}");
        }
    }

    #[test]
    fn streaming_routes_take_large_bodies() {
        let post = Method::POST;
        for p in ["/build", "/v1.41/images/load", "/images/create"] {
            assert!(refuse_declared(&post, p, 1 << 40).is_none(), "{p}");
        }
        assert!(refuse_declared(&Method::PUT, "/v1.47/containers/abc/archive", 1 << 40).is_none());
        for (m, p) in [
            (&post, "/containers/create"),
            (&post, "/nonsense"),
            (&post, "/v1.47/exec/abc/start"),
            (&Method::PUT, "/containers/a/b/archive"),
            (&Method::GET, "/build"),
            (&post, "/vx/build"),
        ] {
            let refused = refuse_declared(m, p, 1_000_000_000_000_000_000);
            assert_eq!(
                refused.map(|e| e.0),
                Some(StatusCode::PAYLOAD_TOO_LARGE),
                "{m} {p}"
            );
        }
    }

    #[test]
    fn bodies_up_to_the_limit_are_read() {
        let post = Method::POST;
        assert!(refuse_declared(&post, "/containers/create", BUFFERED_BODY_LIMIT).is_none());
        assert!(refuse_declared(&post, "/containers/create", BUFFERED_BODY_LIMIT + 1).is_some());
    }

    #[test]
    fn version_prefixes_are_stripped() {
        assert_eq!(route_path("/v1.47/build"), "/build");
        assert_eq!(route_path("/version"), "/version");
        assert_eq!(route_path("/volumes/x"), "/volumes/x");
        assert_eq!(route_path("/v1.47"), "/v1.47");
    }
}
