use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use berth_swarm_ca::{MANAGER_SERVER_NAME, NodeIdentity, Role, peer_identity};
use hyper_util::rt::TokioIo;
use rustls::{ClientConfig, ServerConfig};
use rustls_pki_types::ServerName;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;
use tokio_rustls::{TlsAcceptor, TlsConnector};
use tokio_stream::wrappers::ReceiverStream;
use tonic::transport::server::Connected;
use tonic::transport::{Channel, Endpoint};
use tonic::{Request, Status};

/// A handshake that takes longer is dropped: a peer that connects and
/// says nothing must not hold a slot.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// No call between nodes waits longer: the longest a manager takes to
/// answer (a forwarded membership change) is under 9 s, and a peer that
/// restarted under a live connection must not leave a caller waiting on
/// an answer that will never come.
const CALL_TIMEOUT: Duration = Duration::from_secs(12);
/// Long-lived streams ping their peer this often, and give up on it when
/// a ping goes unanswered this long.
const KEEPALIVE_INTERVAL: Duration = Duration::from_secs(5);
const KEEPALIVE_TIMEOUT: Duration = Duration::from_secs(10);

/// Who is calling: the identity in the certificate the TLS layer verified
/// (None for a node without one yet), and from where.
#[derive(Clone, Debug)]
pub struct Peer {
    pub identity: Option<NodeIdentity>,
    pub addr: SocketAddr,
}

/// An accepted, handshaken connection that tells tonic who is on it.
pub struct TlsConn {
    stream: tokio_rustls::server::TlsStream<TcpStream>,
    peer: Peer,
}

impl Connected for TlsConn {
    type ConnectInfo = Peer;

    fn connect_info(&self) -> Peer {
        self.peer.clone()
    }
}

impl AsyncRead for TlsConn {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.stream).poll_read(cx, buf)
    }
}

impl AsyncWrite for TlsConn {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.stream).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.stream).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.stream).poll_shutdown(cx)
    }
}

/// The connections of `listener`, each handshaken on its own task so
/// that a slow peer delays nobody; failed handshakes are logged and
/// dropped. Feed it to tonic's `serve_with_incoming`.
pub fn incoming(
    listener: TcpListener,
    tls: Arc<ServerConfig>,
) -> ReceiverStream<Result<TlsConn, std::io::Error>> {
    incoming_with(listener, Arc::new(move || tls.clone()))
}

/// The TLS configuration of the moment: a node's certificate or trust
/// root may change while it serves (renewal, root rotation).
pub type ServerTls = Arc<dyn Fn() -> Arc<ServerConfig> + Send + Sync>;

/// `incoming`, taking each connection's configuration from `tls` as it
/// is then.
pub fn incoming_with(
    listener: TcpListener,
    tls: ServerTls,
) -> ReceiverStream<Result<TlsConn, std::io::Error>> {
    let (tx, rx) = mpsc::channel(16);
    tokio::spawn(async move {
        loop {
            // the server dropping its stream closes the channel: stop
            // accepting then, which frees the port
            let accepted = tokio::select! {
                a = listener.accept() => a,
                () = tx.closed() => return,
            };
            let (tcp, addr) = match accepted {
                Ok(c) => c,
                Err(e) => {
                    tracing::warn!("swarm listener: {e}");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            };
            let (acceptor, tx) = (TlsAcceptor::from(tls()), tx.clone());
            tokio::spawn(async move {
                match tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(tcp)).await {
                    Ok(Ok(stream)) => {
                        let identity = stream
                            .get_ref()
                            .1
                            .peer_certificates()
                            .and_then(peer_identity);
                        let peer = Peer { identity, addr };
                        let _ = tx.send(Ok(TlsConn { stream, peer })).await;
                    }
                    Ok(Err(e)) => tracing::debug!("tls handshake from {addr}: {e}"),
                    Err(_) => tracing::debug!("tls handshake from {addr} timed out"),
                }
            });
        }
    });
    ReceiverStream::new(rx)
}

/// The caller of a request, as `incoming` saw it.
pub fn peer<T>(req: &Request<T>) -> Option<&Peer> {
    req.extensions().get::<Peer>()
}

/// The caller's identity when its certificate has `role`; otherwise the
/// call is refused, as swarmkit refuses it.
pub fn require_role<T>(req: &Request<T>, role: Role) -> Result<NodeIdentity, Status> {
    match peer(req).and_then(|p| p.identity.clone()) {
        Some(id) if id.role == role => Ok(id),
        Some(id) => Err(Status::permission_denied(format!(
            "Permission denied: remote certificate not part of organizational unit {}: node {} is a {}",
            role.ou(),
            id.node_id,
            id.role.ou()
        ))),
        None => Err(Status::permission_denied(
            "Permission denied: unauthorized peer role: no client certificate",
        )),
    }
}

/// A channel to the manager at `addr` (host:port), verified against the
/// cluster's root by `tls` and presenting this node's certificate if it
/// has one. Connects on first use and again after failures.
pub fn channel(addr: &str, tls: Arc<ClientConfig>) -> Result<Channel, tonic::transport::Error> {
    let endpoint = Endpoint::from_shared(format!("http://{addr}"))?
        .connect_timeout(CONNECT_TIMEOUT)
        .timeout(CALL_TIMEOUT)
        .tcp_nodelay(true);
    connect_lazy(endpoint, addr, tls)
}

/// Like `channel`, for calls that last as long as their streams do (a
/// client stream's answer comes only at its end, so a call deadline
/// would cut it): no deadline, and HTTP/2 pings instead, so that a peer
/// gone without closing its connection fails the call.
pub fn stream_channel(
    addr: &str,
    tls: Arc<ClientConfig>,
) -> Result<Channel, tonic::transport::Error> {
    let endpoint = Endpoint::from_shared(format!("http://{addr}"))?
        .connect_timeout(CONNECT_TIMEOUT)
        .http2_keep_alive_interval(KEEPALIVE_INTERVAL)
        .keep_alive_timeout(KEEPALIVE_TIMEOUT)
        .keep_alive_while_idle(true)
        .tcp_nodelay(true);
    connect_lazy(endpoint, addr, tls)
}

fn connect_lazy(
    endpoint: Endpoint,
    addr: &str,
    tls: Arc<ClientConfig>,
) -> Result<Channel, tonic::transport::Error> {
    let addr = addr.to_string();
    let connector = tower::service_fn(move |_uri| {
        let (addr, tls) = (addr.clone(), tls.clone());
        async move {
            let tcp = tokio::time::timeout(CONNECT_TIMEOUT, TcpStream::connect(&addr))
                .await
                .map_err(|_| std::io::Error::new(std::io::ErrorKind::TimedOut, "connecting"))??;
            tcp.set_nodelay(true)?;
            let name = ServerName::try_from(MANAGER_SERVER_NAME)
                .map_err(|e| std::io::Error::other(e.to_string()))?;
            let tls = TlsConnector::from(tls).connect(name, tcp).await?;
            Ok::<_, std::io::Error>(TokioIo::new(tls))
        }
    });
    Ok(endpoint.connect_with_connector_lazy(connector))
}

/// A channel for a node that has no root yet: it accepts any server
/// certificate, so its only use is to fetch the root CA, which the
/// caller must then check against its join token's digest.
pub fn bootstrap_channel(addr: &str) -> Result<Channel, String> {
    let tls = berth_tls::client_config(&berth_tls::Options {
        skip_verify: true,
        ..Default::default()
    })
    .map_err(|e| e.to_string())?;
    channel(addr, Arc::new(tls)).map_err(|e| e.to_string())
}
