//! Port forwarding (`portforward.k8s.io`): the client opens an error and
//! a data stream per local connection, paired by `requestid`; each pair is
//! a TCP connection to 127.0.0.1:port inside the pod's network namespace.
//! Over WebSocket the same SPDY runs inside binary messages.

use std::collections::HashMap;
use std::os::fd::AsFd;
use std::sync::Arc;
use std::time::{Duration, Instant};

use berth_engine::Engine;
use berth_httpstream::spdy::{Connection, Headers, Incoming};
use berth_httpstream::websocket::{self, Message, WebSocket};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::pb;

const PAIR_TIMEOUT: Duration = Duration::from_secs(30);
const DIAL_TIMEOUT: Duration = Duration::from_secs(10);
/// Local connections waiting for their second stream, at most.
const MAX_PENDING: usize = 256;

/// Where the pod's ports are: its sandbox's network namespace, or the
/// node's for a host-network pod.
#[derive(Clone, Debug)]
enum Target {
    Host,
    Netns(i64),
}

fn target_of(engine: &Engine, sandbox: &str) -> Result<Target, String> {
    let v = crate::pods::find(engine, sandbox).map_err(|s| s.message().to_string())?;
    if v.record.host_config.network_mode.as_deref() == Some("host") {
        return Ok(Target::Host);
    }
    match v.record.state.pid {
        pid if pid > 0 => Ok(Target::Netns(pid)),
        _ => Err(format!("pod sandbox {} is not running", v.record.id)),
    }
}

/// A stream the client may open: `streamtype` error or data, and a port.
fn acceptable(h: &Headers) -> bool {
    matches!(h.get("streamtype"), Some("error" | "data"))
        && h.get("port")
            .and_then(|p| p.parse::<u16>().ok())
            .is_some_and(|p| p > 0)
}

pub async fn over_spdy<IO>(engine: &Arc<Engine>, req: pb::PortForwardRequest, io: IO)
where
    IO: AsyncRead + AsyncWrite + Send + 'static,
{
    let conn = Connection::serve(io, Box::new(acceptable));
    serve(engine, req, conn).await;
}

pub async fn over_websocket<IO>(engine: &Arc<Engine>, req: pb::PortForwardRequest, io: IO)
where
    IO: AsyncRead + AsyncWrite + Send + 'static,
{
    let mut ws = WebSocket::serve(io);
    let (inner, outer) = tokio::io::duplex(256 << 10);
    let (mut from_tunnel, mut into_tunnel) = tokio::io::split(outer);
    let tx = ws.tx.clone();
    // message boundaries mean nothing: the payloads are one byte stream,
    // each way on a task of its own so neither waits on the other
    let inbound = tokio::spawn(async move {
        while let Some(m) = ws.rx.recv().await {
            match m {
                Message::Binary(b) => {
                    if into_tunnel.write_all(&b).await.is_err() {
                        break;
                    }
                }
                Message::Text(_) => {}
                Message::Close(_) => break,
            }
        }
        let _ = into_tunnel.shutdown().await;
    });
    let outbound = tokio::spawn(async move {
        let mut buf = vec![0u8; websocket::MAX_SEND];
        while let Ok(n) = from_tunnel.read(&mut buf).await {
            if n == 0 || !tx.binary(&buf[..n]).await {
                break;
            }
        }
        tx.close(websocket::CLOSE_NORMAL).await;
    });
    let conn = Connection::serve(inner, Box::new(acceptable));
    serve(engine, req, conn).await;
    for task in [outbound, inbound] {
        let abort = task.abort_handle();
        if tokio::time::timeout(Duration::from_secs(5), task)
            .await
            .is_err()
        {
            abort.abort();
        }
    }
}

/// One local connection's streams as they come.
#[derive(Default)]
struct Pair {
    error: Option<Incoming>,
    data: Option<Incoming>,
    since: Option<Instant>,
}

async fn serve(engine: &Arc<Engine>, req: pb::PortForwardRequest, mut conn: Connection) {
    let mut pairs: HashMap<String, Pair> = HashMap::new();
    // the forwards go with the connection
    let mut forwards = tokio::task::JoinSet::new();
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    loop {
        let s = tokio::select! {
            s = conn.next() => match s {
                Some(s) => s,
                None => break,
            },
            _ = tick.tick() => {
                expire(&mut pairs).await;
                continue;
            }
        };
        let key = pair_key(&s);
        if !pairs.contains_key(&key) && pairs.len() >= MAX_PENDING {
            s.tx.reset().await;
            continue;
        }
        let pair = pairs.entry(key.clone()).or_default();
        pair.since.get_or_insert_with(Instant::now);
        let slot = if s.headers.get("streamtype") == Some("error") {
            &mut pair.error
        } else {
            &mut pair.data
        };
        if slot.is_some() {
            refuse_duplicate(&key, s, pair).await;
            continue;
        }
        *slot = Some(s);
        if pair.error.is_none() || pair.data.is_none() {
            continue;
        }
        if let Some(Pair {
            error: Some(error),
            data: Some(data),
            ..
        }) = pairs.remove(&key)
        {
            let (engine, pod) = (engine.clone(), req.pod_sandbox_id.clone());
            forwards.spawn(async move { forward(&engine, pod, error, data).await });
        }
        // finished forwards are let go as they end
        while forwards.try_join_next().is_some() {}
    }
    forwards.abort_all();
    conn.close().await;
}

/// Pairs are keyed by `requestid`; old clients send none, and their data
/// stream follows its error stream.
fn pair_key(s: &Incoming) -> String {
    if let Some(r) = s.headers.get("requestid") {
        return r.to_string();
    }
    let id = s.tx.id();
    let error_id = if s.headers.get("streamtype") == Some("data") {
        id.saturating_sub(2)
    } else {
        id
    };
    format!("stream-{error_id}")
}

async fn refuse_duplicate(key: &str, s: Incoming, pair: &Pair) {
    let kind = s.headers.get("streamtype").unwrap_or_default().to_string();
    s.tx.reset().await;
    if let Some(e) = &pair.error {
        let msg =
            format!("error processing stream for request {key}: {kind} stream already assigned");
        e.tx.write(msg.as_bytes()).await;
    }
}

async fn expire(pairs: &mut HashMap<String, Pair>) {
    let old: Vec<String> = pairs
        .iter()
        .filter(|(_, p)| p.since.is_some_and(|t| t.elapsed() > PAIR_TIMEOUT))
        .map(|(k, _)| k.clone())
        .collect();
    for k in old {
        let Some(p) = pairs.remove(&k) else { continue };
        if let Some(e) = p.error {
            e.tx.write_and_close(b"timed out waiting for streams").await;
        }
        if let Some(d) = p.data {
            d.tx.reset().await;
        }
    }
}

/// Copies between the pair's data stream and a connection to the port;
/// a failure is a plain message on the error stream. The error stream's
/// FIN tells the client this connection is over.
async fn forward(engine: &Engine, pod: String, error: Incoming, mut data: Incoming) {
    let port: u16 = data
        .headers
        .get("port")
        .and_then(|p| p.parse().ok())
        .unwrap_or(0);
    // the sandbox's process now: it may have restarted since the call
    let sock = match target_of(engine, &pod) {
        Ok(t) => dial(t, port).await,
        Err(e) => Err(e),
    };
    let mut sock = match sock {
        Ok(s) => s,
        Err(e) => {
            let msg = format!(
                "error forwarding port {port} to pod {pod}, uid : dial tcp4 127.0.0.1:{port}: {e}"
            );
            error.tx.write_and_close(msg.as_bytes()).await;
            data.tx.close().await;
            return;
        }
    };
    let (mut sr, mut sw) = sock.split();
    let to_pod = async {
        while let Some(b) = data.data.recv().await {
            if sw.write_all(&b).await.is_err() {
                break;
            }
        }
        let _ = sw.shutdown().await;
    };
    let from_pod = async {
        let mut buf = vec![0u8; 32 << 10];
        while let Ok(n) = sr.read(&mut buf).await {
            if n == 0 || !data.tx.write(&buf[..n]).await {
                break;
            }
        }
    };
    // either side ending ends the connection, as the kubelet has it: the
    // client waits for the error stream's end before it closes its own
    tokio::select! {
        () = to_pod => {}
        () = from_pod => {}
    }
    data.tx.close().await;
    error.tx.close().await;
}

/// A TCP connection to 127.0.0.1:`port` made inside the target's network
/// namespace: a socket keeps the namespace it was made in. The thread that
/// enters the namespace is its own and ends with the dial.
async fn dial(target: Target, port: u16) -> Result<TcpStream, String> {
    let (tx, rx) = tokio::sync::oneshot::channel();
    std::thread::Builder::new()
        .name("cri-dial".into())
        .spawn(move || {
            let _ = tx.send(dial_blocking(&target, port));
        })
        .map_err(|e| format!("starting a dialing thread: {e}"))?;
    let std = rx
        .await
        .map_err(|_| "the dialing thread died".to_string())??;
    std.set_nonblocking(true).map_err(|e| e.to_string())?;
    TcpStream::from_std(std).map_err(|e| e.to_string())
}

fn dial_blocking(target: &Target, port: u16) -> Result<std::net::TcpStream, String> {
    if let Target::Netns(pid) = target {
        let ns = std::fs::File::open(format!("/proc/{pid}/ns/net"))
            .map_err(|e| format!("opening the pod's network namespace: {e}"))?;
        nix::sched::setns(ns.as_fd(), nix::sched::CloneFlags::CLONE_NEWNET)
            .map_err(|e| format!("entering the pod's network namespace: {e}"))?;
    }
    let addr = std::net::SocketAddr::from(([127, 0, 0, 1], port));
    std::net::TcpStream::connect_timeout(&addr, DIAL_TIMEOUT).map_err(|e| match e.kind() {
        std::io::ErrorKind::ConnectionRefused => "connect: connection refused".to_string(),
        _ => format!("connect: {e}"),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn h(pairs: &[(&str, &str)]) -> Headers {
        Headers::of(pairs)
    }

    #[test]
    fn streams_need_a_type_and_a_port() {
        assert!(acceptable(&h(&[("streamtype", "data"), ("port", "80")])));
        assert!(acceptable(&h(&[
            ("streamtype", "error"),
            ("port", "65535")
        ])));
        assert!(!acceptable(&h(&[("streamtype", "data"), ("port", "0")])));
        assert!(!acceptable(&h(&[("streamtype", "data"), ("port", "http")])));
        assert!(!acceptable(&h(&[("streamtype", "stdin"), ("port", "80")])));
        assert!(!acceptable(&h(&[("streamtype", "data")])));
    }

    #[tokio::test]
    async fn a_refused_port_is_said_plainly() {
        // nothing listens on port 1 of the host's loopback
        let e = dial(Target::Host, 1).await.unwrap_err();
        assert_eq!(e, "connect: connection refused");
    }
}
