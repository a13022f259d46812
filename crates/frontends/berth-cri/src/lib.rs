//! berth's Kubernetes CRI endpoint: the kubelet's `RuntimeService` and
//! `ImageService` (CRI v1, `proto/api.proto`, compiled with protox) over
//! gRPC on a unix socket. Like containerd's `internal/cri`, it is a front
//! end of its own: a client of the engine the Docker API uses, so pods,
//! containers and images made here are the Docker API's too.

mod cni;
mod containers;
mod errors;
mod events;
mod exec;
mod images;
mod labels;
mod pods;
mod runtime;
mod stats;
mod streaming;

use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::{Result, bail};
use berth_engine::Engine;

/// Generated from the vendored proto, whose comments are Kubernetes' own.
#[allow(clippy::all, rustdoc::all)]
pub mod pb {
    tonic::include_proto!("runtime.v1");
}

/// The CRI API version berth serves.
pub const CRI_VERSION: &str = "v1";

/// The largest message berth takes or sends, as the kubelet's client
/// allows (16 MiB): a ListContainers of many pods outgrows tonic's 4 MiB.
const MAX_MESSAGE_BYTES: usize = 16 << 20;

/// Where the endpoint listens: a `unix://` URL or a bare path; `none` (or
/// nothing) turns it off.
pub fn socket_path(setting: &str) -> Result<Option<PathBuf>> {
    let s = setting.trim();
    if s.is_empty() || s == "none" {
        return Ok(None);
    }
    let path = s.strip_prefix("unix://").unwrap_or(s);
    if s.contains("://") && !s.starts_with("unix://") {
        bail!("unsupported CRI socket {s}: use unix:///path/to/socket");
    }
    if !Path::new(path).is_absolute() {
        bail!("the CRI socket must be an absolute path: {s}");
    }
    Ok(Some(PathBuf::from(path)))
}

/// Serves the CRI on `listener` until `shutdown` completes, and its
/// streaming server (exec, attach, port-forward) on `stream_addr`.
///
/// Each connection is served by hyper's HTTP/2 server directly, not by
/// tonic's transport server: that one answers a call whose `grpc-timeout`
/// passed with Cancelled, where gRPC and the kubelet mean
/// DeadlineExceeded. Here the client's own deadline answers, and the
/// call's future is dropped when the client resets the stream.
pub async fn serve(
    engine: Arc<Engine>,
    listener: tokio::net::UnixListener,
    stream_addr: std::net::SocketAddr,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> Result<()> {
    let streaming = streaming::StreamingServer::start(engine.clone(), stream_addr).await?;
    let cni = cni::Cni::new(engine.clone());
    // what a crash left half done is undone before the kubelet asks again
    cni.watch_removals();
    cni.recover();
    let runtime = pb::runtime_service_server::RuntimeServiceServer::new(runtime::Runtime::new(
        engine.clone(),
        streaming,
        cni,
    ))
    .max_decoding_message_size(MAX_MESSAGE_BYTES)
    .max_encoding_message_size(MAX_MESSAGE_BYTES);
    let images = pb::image_service_server::ImageServiceServer::new(images::Images::new(engine))
        .max_decoding_message_size(MAX_MESSAGE_BYTES)
        .max_encoding_message_size(MAX_MESSAGE_BYTES);
    let routes = tonic::service::Routes::new(runtime)
        .add_service(images)
        .prepare();
    tokio::pin!(shutdown);
    loop {
        let stream = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => stream,
                Err(e) => {
                    tracing::warn!(error = %e, "accepting a CRI connection");
                    tokio::time::sleep(std::time::Duration::from_millis(100)).await;
                    continue;
                }
            },
            () = &mut shutdown => return Ok(()),
        };
        let service = hyper_util::service::TowerToHyperService::new(routes.clone());
        tokio::spawn(async move {
            let conn =
                hyper::server::conn::http2::Builder::new(hyper_util::rt::TokioExecutor::new())
                    .serve_connection(hyper_util::rt::TokioIo::new(stream), service);
            if let Err(e) = conn.await {
                tracing::debug!(error = %e, "a CRI connection ended");
            }
        });
    }
}

/// Nanoseconds since the epoch, the CRI's timestamps.
fn now_nanos() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos() as i64)
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn socket_settings() {
        assert_eq!(
            socket_path("unix:///run/berth/cri.sock").unwrap(),
            Some(PathBuf::from("/run/berth/cri.sock"))
        );
        assert_eq!(
            socket_path("/tmp/c.sock").unwrap(),
            Some(PathBuf::from("/tmp/c.sock"))
        );
        assert_eq!(socket_path("none").unwrap(), None);
        assert_eq!(socket_path("").unwrap(), None);
        assert!(socket_path("tcp://0.0.0.0:1").is_err());
        assert!(socket_path("unix://rel.sock").is_err());
    }
}
