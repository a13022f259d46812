//! The transports of Kubernetes' streaming protocols (exec, attach,
//! port-forward), as the kubelet's clients speak them: the server half of
//! SPDY/3.1 (moby/spdystream's dialect: no flow control, one zlib context
//! per direction) and RFC 6455 WebSocket framing. The protocols carried
//! over them live with their users.

pub mod spdy;
pub mod websocket;
