use std::convert::Infallible;
use std::future::Future;
use std::sync::Arc;

use axum::Router;
use axum::body::Body;
use axum::http::{HeaderValue, Request, Response, StatusCode, Uri};
use berth_engine::{API_VERSION, Engine, MIN_API_VERSION};
use hyper_util::rt::TokioIo;
use tokio::net::UnixListener;
use tower::ServiceExt;

use crate::error::ApiError;
use axum::response::IntoResponse;

/// The API version a request asked for through its `/v1.NN` prefix.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct ApiVersion(pub u32, pub u32);

impl ApiVersion {
    pub fn parse(s: &str) -> Option<Self> {
        let (a, b) = s.split_once('.')?;
        Some(ApiVersion(a.parse().ok()?, b.parse().ok()?))
    }
}

/// Serves the API on every listener until `shutdown` resolves.
pub async fn serve(
    engine: Arc<Engine>,
    listeners: Vec<UnixListener>,
    shutdown: impl Future<Output = ()>,
) {
    EXPERIMENTAL.store(
        engine.version().experimental.unwrap_or(false),
        std::sync::atomic::Ordering::Relaxed,
    );
    let router = crate::routes::router(engine);
    let mut tasks = Vec::new();
    for l in listeners {
        let router = router.clone();
        tasks.push(tokio::spawn(accept_loop(l, router)));
    }
    shutdown.await;
    for t in tasks {
        t.abort();
    }
}

async fn accept_loop(listener: UnixListener, router: Router) {
    loop {
        let stream = match listener.accept().await {
            Ok((s, _)) => s,
            Err(e) => {
                tracing::warn!(error = %e, "accepting connection");
                tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                continue;
            }
        };
        let router = router.clone();
        tokio::spawn(async move {
            let svc = hyper::service::service_fn(move |req: Request<hyper::body::Incoming>| {
                let router = router.clone();
                async move { Ok::<_, Infallible>(dispatch(router, req.map(Body::new)).await) }
            });
            let conn = hyper::server::conn::http1::Builder::new()
                .serve_connection(TokioIo::new(stream), svc)
                .with_upgrades();
            if let Err(e) = conn.await {
                tracing::debug!(error = %e, "connection ended");
            }
        });
    }
}

/// Strips and checks the `/v1.NN` prefix, then routes.
async fn dispatch(router: Router, mut req: Request<Body>) -> Response<Body> {
    let max = ApiVersion::parse(API_VERSION).unwrap_or(ApiVersion(1, 47));
    let min = ApiVersion::parse(MIN_API_VERSION).unwrap_or(ApiVersion(1, 24));
    let mut version = max;
    let path = req.uri().path().to_string();
    if let Some(rest) = path.strip_prefix("/v")
        && let Some((v, tail)) = rest.split_once('/')
        && let Some(parsed) = ApiVersion::parse(v)
    {
        if parsed > max {
            return with_headers(
                ApiError::bad_request(format!(
                    "client version {v} is too new. Maximum supported API version is {API_VERSION}"
                ))
                .into_response(),
            );
        }
        if parsed < min {
            return with_headers(
                ApiError::bad_request(format!(
                    "client version {v} is too old. Minimum supported API version is {MIN_API_VERSION}, please upgrade your client to a newer version"
                ))
                .into_response(),
            );
        }
        version = parsed;
        let pq = match req.uri().query() {
            Some(q) => format!("/{tail}?{q}"),
            None => format!("/{tail}"),
        };
        match pq.parse::<Uri>() {
            Ok(u) => *req.uri_mut() = u,
            Err(_) => {
                return with_headers(
                    ApiError(StatusCode::NOT_FOUND, "page not found".into()).into_response(),
                );
            }
        }
    }
    req.extensions_mut().insert(version);
    tracing::debug!(method = %req.method(), uri = %req.uri(), "request");
    let resp = match router.oneshot(req).await {
        Ok(r) => r,
        Err(never) => match never {},
    };
    with_headers(resp)
}

/// `--experimental` of the daemon, for the header every answer carries
/// (clients enable experimental flags on it).
static EXPERIMENTAL: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

fn with_headers(mut resp: Response<Body>) -> Response<Body> {
    let h = resp.headers_mut();
    h.insert("Api-Version", HeaderValue::from_static(API_VERSION));
    h.insert("Ostype", HeaderValue::from_static("linux"));
    let experimental = EXPERIMENTAL.load(std::sync::atomic::Ordering::Relaxed);
    h.insert(
        "Docker-Experimental",
        HeaderValue::from_static(if experimental { "true" } else { "false" }),
    );
    h.insert(
        "Server",
        HeaderValue::from_static(concat!(
            "Docker/berth-",
            env!("CARGO_PKG_VERSION"),
            " (linux)"
        )),
    );
    resp
}

/// Serves Prometheus' text format at `/metrics` on a TCP listener
/// (`--metrics-addr`), as dockerd does; nothing else answers there.
pub async fn serve_metrics(engine: Arc<Engine>, listener: tokio::net::TcpListener) {
    let app = Router::new()
        .route(
            "/metrics",
            axum::routing::get(
                |axum::extract::State(e): axum::extract::State<Arc<Engine>>| async move {
                    (
                        [(
                            axum::http::header::CONTENT_TYPE,
                            "text/plain; version=0.0.4; charset=utf-8",
                        )],
                        e.metrics_text(),
                    )
                },
            ),
        )
        .with_state(engine);
    if let Err(e) = axum::serve(listener, app).await {
        tracing::warn!(error = %e, "metrics listener ended");
    }
}
