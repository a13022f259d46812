//! The CRI's streaming server: Exec, Attach and PortForward answer with a
//! URL here, and the client (kubelet, crictl) connects to it and upgrades
//! to SPDY/3.1 or WebSocket (docs/plans/cri-streaming.md has the wire
//! facts). Plain HTTP on a TCP address, loopback unless configured: the
//! URL's single-use token is the credential, as with the kubelet's own.

mod portforward;
mod remotecommand;
mod tokens;

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;

use anyhow::{Context, Result};
use berth_engine::Engine;
use bytes::Bytes;
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::header::{CONNECTION, HeaderMap, HeaderValue, UPGRADE};
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use tonic::Status;

pub use tokens::Pending;
use tokens::{TokenError, Tokens};

const VERSION_HEADER: &str = "x-stream-protocol-version";
const ACCEPTED_HEADER: &str = "x-accepted-stream-protocol-versions";
const WS_PROTOCOL: &str = "sec-websocket-protocol";
/// remotecommand's versions over SPDY, best first (the kubelet offers no
/// v5 there: the client's v5 is v4's)
pub const REMOTECOMMAND_VERSIONS: [&str; 4] = [
    "v4.channel.k8s.io",
    "v3.channel.k8s.io",
    "v2.channel.k8s.io",
    "channel.k8s.io",
];
pub const PORTFORWARD_VERSION: &str = "portforward.k8s.io";
/// WebSocket subprotocols: remotecommand's v5 (v4 differs only in having
/// no close channel) and port-forward's SPDY tunnel
const WS_REMOTECOMMAND: [&str; 2] = ["v5.channel.k8s.io", "v4.channel.k8s.io"];
const WS_PORTFORWARD: &str = "SPDY/3.1+portforward.k8s.io";

pub struct StreamingServer {
    engine: Arc<Engine>,
    tokens: Tokens,
    addr: SocketAddr,
}

type Body = Full<Bytes>;

impl StreamingServer {
    /// Binds `addr` (port 0 picks one) and serves it until the process
    /// ends.
    pub async fn start(engine: Arc<Engine>, addr: SocketAddr) -> Result<Arc<StreamingServer>> {
        let listener = tokio::net::TcpListener::bind(addr)
            .await
            .with_context(|| format!("binding the CRI streaming address {addr}"))?;
        let addr = listener.local_addr()?;
        let server = Arc::new(StreamingServer {
            engine,
            tokens: Tokens::default(),
            addr,
        });
        tracing::info!(%addr, "CRI streaming server listening");
        tokio::spawn(server.clone().accept_loop(listener));
        Ok(server)
    }

    /// Keeps `p` for its client and answers the URL to connect to.
    pub fn url_for(&self, p: Pending) -> Result<String, Status> {
        let kind = p.kind();
        let token = self.tokens.insert(p).map_err(|e| match e {
            TokenError::Full => {
                Status::resource_exhausted("maximum number of in-flight stream requests reached")
            }
            TokenError::NoRandom => Status::internal("no random bytes for a stream token"),
        })?;
        Ok(format!("http://{}/{kind}/{token}", self.addr))
    }

    async fn accept_loop(self: Arc<Self>, listener: tokio::net::TcpListener) {
        loop {
            let (tcp, _) = match listener.accept().await {
                Ok(a) => a,
                Err(e) => {
                    tracing::warn!(error = %e, "accepting a CRI stream connection");
                    tokio::time::sleep(std::time::Duration::from_millis(100)).await;
                    continue;
                }
            };
            let _ = tcp.set_nodelay(true);
            let server = self.clone();
            tokio::spawn(async move {
                let service = hyper::service::service_fn(move |req| {
                    let server = server.clone();
                    async move { Ok::<_, Infallible>(server.handle(req)) }
                });
                let conn = hyper::server::conn::http1::Builder::new()
                    .timer(hyper_util::rt::TokioTimer::new())
                    .header_read_timeout(std::time::Duration::from_secs(30))
                    .serve_connection(TokioIo::new(tcp), service)
                    .with_upgrades();
                if let Err(e) = conn.await {
                    tracing::debug!(error = %e, "a CRI stream connection ended");
                }
            });
        }
    }

    fn handle(self: Arc<Self>, req: Request<Incoming>) -> Response<Body> {
        let path = req.uri().path().trim_start_matches('/');
        let Some((kind, token)) = path.split_once('/') else {
            return plain(StatusCode::NOT_FOUND, "404 page not found");
        };
        let Some(pending) = self.tokens.take(token).filter(|p| p.kind() == kind) else {
            return plain(StatusCode::NOT_FOUND, "stream token not found or expired");
        };
        let upgrade = header_values(req.headers(), UPGRADE.as_str());
        let wants = |p: &str| upgrade.iter().any(|u| u.eq_ignore_ascii_case(p));
        if wants("websocket") {
            self.websocket(req, pending)
        } else if wants("SPDY/3.1") && connection_upgrade(req.headers()) {
            self.spdy(req, pending)
        } else {
            plain(
                StatusCode::BAD_REQUEST,
                "unable to upgrade: missing upgrade headers in request",
            )
        }
    }

    fn spdy(self: Arc<Self>, mut req: Request<Incoming>, pending: Pending) -> Response<Body> {
        let offered = header_values(req.headers(), VERSION_HEADER);
        if offered.is_empty() {
            return plain(
                StatusCode::BAD_REQUEST,
                "unable to upgrade: unable to negotiate protocol: client did not request protocol negotiation",
            );
        }
        let supported: &[&str] = match pending {
            Pending::PortForward(_) => &[PORTFORWARD_VERSION],
            _ => &REMOTECOMMAND_VERSIONS,
        };
        let Some(chosen) = offered.iter().find(|o| supported.contains(&o.as_str())) else {
            let mut r = plain(
                StatusCode::FORBIDDEN,
                &format!(
                    "unable to upgrade: unable to negotiate protocol: client supports {offered:?}, server accepts {supported:?}"
                ),
            );
            for v in supported {
                r.headers_mut()
                    .append(ACCEPTED_HEADER, HeaderValue::from_static(v));
            }
            return r;
        };
        let chosen = chosen.clone();
        let on_upgrade = hyper::upgrade::on(&mut req);
        let version = chosen.clone();
        tokio::spawn(async move {
            let io = match on_upgrade.await {
                Ok(u) => TokioIo::new(u),
                Err(e) => return tracing::debug!(error = %e, "spdy upgrade failed"),
            };
            match pending {
                Pending::PortForward(r) => portforward::over_spdy(&self.engine, r, io).await,
                p => remotecommand::over_spdy(&self.engine, p, &version, io).await,
            }
        });
        switching(&[
            (CONNECTION.as_str(), "Upgrade"),
            (UPGRADE.as_str(), "SPDY/3.1"),
            (VERSION_HEADER, &chosen),
        ])
    }

    fn websocket(self: Arc<Self>, mut req: Request<Incoming>, pending: Pending) -> Response<Body> {
        let offered = header_values(req.headers(), WS_PROTOCOL);
        let supported: &[&str] = match pending {
            Pending::PortForward(_) => &[WS_PORTFORWARD],
            _ => &WS_REMOTECOMMAND,
        };
        let chosen = offered.iter().find(|o| supported.contains(&o.as_str()));
        let key = req
            .headers()
            .get("sec-websocket-key")
            .and_then(|k| k.to_str().ok());
        let (Some(chosen), Some(key)) = (chosen.cloned(), key) else {
            return plain(
                StatusCode::BAD_REQUEST,
                &format!(
                    "unable to upgrade: websocket subprotocol not one of {supported:?}, or no key"
                ),
            );
        };
        let accept = berth_httpstream::websocket::accept_key(key);
        let on_upgrade = hyper::upgrade::on(&mut req);
        let protocol = chosen.clone();
        tokio::spawn(async move {
            let io = match on_upgrade.await {
                Ok(u) => TokioIo::new(u),
                Err(e) => return tracing::debug!(error = %e, "websocket upgrade failed"),
            };
            match pending {
                Pending::PortForward(r) => portforward::over_websocket(&self.engine, r, io).await,
                p => remotecommand::over_websocket(&self.engine, p, &protocol, io).await,
            }
        });
        switching(&[
            (CONNECTION.as_str(), "Upgrade"),
            (UPGRADE.as_str(), "websocket"),
            ("sec-websocket-accept", &accept),
            (WS_PROTOCOL, &chosen),
        ])
    }
}

/// Every value of `name`, comma-separated lists split, trimmed.
fn header_values(h: &HeaderMap, name: &str) -> Vec<String> {
    h.get_all(name)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(|v| v.trim().to_string())
        .filter(|v| !v.is_empty())
        .collect()
}

fn connection_upgrade(h: &HeaderMap) -> bool {
    header_values(h, CONNECTION.as_str())
        .iter()
        .any(|v| v.eq_ignore_ascii_case("upgrade"))
}

fn plain(status: StatusCode, msg: &str) -> Response<Body> {
    let mut r = Response::new(Full::new(Bytes::from(format!("{msg}\n"))));
    *r.status_mut() = status;
    r.headers_mut().insert(
        hyper::header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    r
}

fn switching(headers: &[(&str, &str)]) -> Response<Body> {
    let mut r = Response::new(Full::new(Bytes::new()));
    *r.status_mut() = StatusCode::SWITCHING_PROTOCOLS;
    for (k, v) in headers {
        if let (Ok(k), Ok(v)) = (
            hyper::header::HeaderName::try_from(*k),
            HeaderValue::try_from(*v),
        ) {
            r.headers_mut().append(k, v);
        }
    }
    r
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_lists_split_and_trim() {
        let mut h = HeaderMap::new();
        h.append(
            VERSION_HEADER,
            HeaderValue::from_static("v5.channel.k8s.io"),
        );
        h.append(
            VERSION_HEADER,
            HeaderValue::from_static("v4.channel.k8s.io, v3.channel.k8s.io"),
        );
        assert_eq!(
            header_values(&h, VERSION_HEADER),
            [
                "v5.channel.k8s.io",
                "v4.channel.k8s.io",
                "v3.channel.k8s.io"
            ]
        );
        h.insert(CONNECTION, HeaderValue::from_static("keep-alive, Upgrade"));
        assert!(connection_upgrade(&h));
    }
}
