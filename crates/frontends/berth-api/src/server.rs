mod input;
mod limits;
mod report;

use std::convert::Infallible;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::http::{HeaderValue, Request, Response, StatusCode, Uri, header};
use berth_engine::{API_VERSION, Engine, MIN_API_VERSION};
use futures_util::future::BoxFuture;
use hyper::body::{Body as _, Incoming};
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::{TcpListener, UnixListener};
use tower::ServiceExt;

use crate::error::ApiError;
use axum::response::IntoResponse;
use input::{Fate, Input, Left};
use limits::Timeouts;

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
    swarm: Arc<berth_swarm_manager::Swarm>,
    listeners: Vec<UnixListener>,
    shutdown: impl Future<Output = ()>,
) {
    EXPERIMENTAL.store(
        engine.version().experimental,
        std::sync::atomic::Ordering::Relaxed,
    );
    let router = crate::routes::router(engine, swarm);
    let timeouts = Timeouts::from_env();
    let handler: Handler = Arc::new(move |req| Box::pin(answer(router.clone(), timeouts, req)));
    let mut tasks = Vec::new();
    for l in listeners {
        tasks.push(tokio::spawn(accept_loop(l, handler.clone(), timeouts)));
    }
    shutdown.await;
    for t in tasks {
        t.abort();
    }
}

/// What answers the requests of one listener.
type Handler = Arc<dyn Fn(Request<Incoming>) -> BoxFuture<'static, Response<Body>> + Send + Sync>;

/// The listeners the daemon serves HTTP on.
trait Accept: Send + 'static {
    type Io: AsyncRead + AsyncWrite + Unpin + Send + 'static;
    fn next(&self) -> impl Future<Output = std::io::Result<Self::Io>> + Send;
}

impl Accept for UnixListener {
    type Io = tokio::net::UnixStream;
    async fn next(&self) -> std::io::Result<Self::Io> {
        Ok(self.accept().await?.0)
    }
}

impl Accept for TcpListener {
    type Io = tokio::net::TcpStream;
    async fn next(&self) -> std::io::Result<Self::Io> {
        Ok(self.accept().await?.0)
    }
}

async fn accept_loop(listener: impl Accept, handler: Handler, timeouts: Timeouts) {
    loop {
        let stream = match listener.next().await {
            Ok(s) => s,
            Err(e) => {
                tracing::warn!(error = %e, "accepting connection");
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        tokio::spawn(serve_connection(stream, handler.clone(), timeouts.header));
    }
}

/// One client connection. hyper times out the headers only with a timer;
/// after a 101 the connection belongs to the handler (attach, exec).
async fn serve_connection<I>(io: I, handler: Handler, header_timeout: Duration)
where
    I: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let svc = hyper::service::service_fn(move |req: Request<Incoming>| {
        let answer = handler(req);
        async move { Ok::<_, Infallible>(answer.await) }
    });
    let conn = hyper::server::conn::http1::Builder::new()
        .timer(TokioTimer::new())
        .header_read_timeout(header_timeout)
        .serve_connection(TokioIo::new(io), svc)
        .with_upgrades();
    if let Err(e) = conn.await {
        tracing::debug!(error = %e, "connection ended");
    }
}

/// Every API request: a body declared larger than its route reads is
/// refused before waiting for it; the connection stays in step with the
/// client whatever the handler left of the body; failures are logged.
async fn answer(router: Router, timeouts: Timeouts, req: Request<Incoming>) -> Response<Body> {
    let method = req.method().clone();
    let path = req.uri().path().to_string();
    let declared = req.body().size_hint().lower();
    let (parts, body) = req.into_parts();
    let (input, fate) = Input::new(body, timeouts.body_idle);
    let req = Request::from_parts(parts, Body::new(input));
    let mut resp = match limits::refuse_declared(&method, &path, declared) {
        Some(err) => {
            // the unread body goes to `fate`, which decides the connection's end
            drop(req);
            err.into_response()
        }
        None => dispatch(router, req).await,
    };
    keep_in_step(&fate, &mut resp, timeouts.body_idle).await;
    with_headers(report::failed(&method, &path, resp).await)
}

/// The next request on a keep-alive connection starts after this one's
/// body: a small unread rest is discarded; otherwise the answer says
/// `Connection: close` and hyper closes after it, so that the client
/// knows not to send on this connection again.
async fn keep_in_step(fate: &Fate<Incoming>, resp: &mut Response<Body>, idle: Duration) {
    if resp.status() == StatusCode::SWITCHING_PROTOCOLS {
        return;
    }
    let in_step = match fate.take() {
        Left::Reading | Left::Read => true,
        Left::Unread(rest) => input::drain(rest, limits::DRAIN_LIMIT, idle).await,
        Left::Broken => false,
    };
    if !in_step {
        resp.headers_mut()
            .insert(header::CONNECTION, HeaderValue::from_static("close"));
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
            return ApiError::bad_request(format!(
                "client version {v} is too new. Maximum supported API version is {API_VERSION}"
            ))
            .into_response();
        }
        if parsed < min {
            return ApiError::bad_request(format!(
                "client version {v} is too old. Minimum supported API version is {MIN_API_VERSION}, please upgrade your client to a newer version"
            ))
            .into_response();
        }
        version = parsed;
        let pq = match req.uri().query() {
            Some(q) => format!("/{tail}?{q}"),
            None => format!("/{tail}"),
        };
        match pq.parse::<Uri>() {
            Ok(u) => *req.uri_mut() = u,
            Err(_) => {
                return ApiError(StatusCode::NOT_FOUND, "page not found".into()).into_response();
            }
        }
    }
    req.extensions_mut().insert(version);
    tracing::debug!(method = %req.method(), uri = %req.uri(), "request");
    match router.oneshot(req).await {
        Ok(r) => r,
        Err(never) => match never {},
    }
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
pub async fn serve_metrics(engine: Arc<Engine>, listener: TcpListener) {
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
    let handler: Handler = Arc::new(move |req: Request<Incoming>| {
        let app = app.clone();
        Box::pin(async move {
            match app.oneshot(req.map(Body::new)).await {
                Ok(r) => r,
                Err(never) => match never {},
            }
        })
    });
    accept_loop(listener, handler, Timeouts::from_env()).await;
}
