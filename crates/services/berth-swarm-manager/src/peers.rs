//! Connections to other managers: one lazily connected channel per
//! address, over this node's mutual TLS; and the Raft transport on them.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use berth_swarm_raft::{Member, NodeId, RaftRequest, Transport, TransportError, TransportFuture};
use berth_swarm_rpc::pb::Blob;
use berth_swarm_rpc::pb::raft_client::RaftClient;
use berth_swarm_rpc::{channel, stream_channel};
use rustls::ClientConfig;
use tonic::transport::Channel;

pub struct Peers {
    tls: Mutex<Arc<ClientConfig>>,
    channels: Mutex<HashMap<String, Channel>>,
    /// channels without a call deadline, for long-lived streams (logs)
    stream_channels: Mutex<HashMap<String, Channel>>,
}

impl Peers {
    pub fn new(tls: Arc<ClientConfig>) -> Arc<Peers> {
        Arc::new(Peers {
            tls: Mutex::new(tls),
            channels: Mutex::new(HashMap::new()),
            stream_channels: Mutex::new(HashMap::new()),
        })
    }

    pub fn channel(&self, addr: &str) -> Result<Channel, String> {
        let mut map = self.channels.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(c) = map.get(addr) {
            return Ok(c.clone());
        }
        let tls = self.tls.lock().unwrap_or_else(|e| e.into_inner()).clone();
        let c = channel(addr, tls).map_err(|e| e.to_string())?;
        map.insert(addr.to_string(), c.clone());
        Ok(c)
    }

    /// A channel to `addr` whose calls have no deadline: for streams that
    /// last as long as their subscriptions (logs).
    pub fn stream_channel(&self, addr: &str) -> Result<Channel, String> {
        let mut map = self
            .stream_channels
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        if let Some(c) = map.get(addr) {
            return Ok(c.clone());
        }
        let tls = self.tls.lock().unwrap_or_else(|e| e.into_inner()).clone();
        let c = stream_channel(addr, tls).map_err(|e| e.to_string())?;
        map.insert(addr.to_string(), c.clone());
        Ok(c)
    }
}

impl Peers {
    /// New credentials: later calls dial with them (the cached channels
    /// would keep presenting the old certificate).
    pub fn set_tls(&self, tls: Arc<ClientConfig>) {
        *self.tls.lock().unwrap_or_else(|e| e.into_inner()) = tls;
        self.channels
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clear();
        self.stream_channels
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clear();
    }
}

/// Raft's messages as JSON in the `Raft.Message` call.
pub struct GrpcTransport {
    pub peers: Arc<Peers>,
}

impl Transport for GrpcTransport {
    fn send(&self, _target: NodeId, to: &Member, request: RaftRequest) -> TransportFuture {
        let channel = self.peers.channel(&to.addr);
        Box::pin(async move {
            let channel = channel.map_err(TransportError::Unreachable)?;
            let json =
                serde_json::to_vec(&request).map_err(|e| TransportError::Network(e.to_string()))?;
            let answer = RaftClient::new(channel)
                .max_decoding_message_size(berth_swarm_rpc::MAX_MESSAGE_BYTES)
                .message(Blob { json })
                .await
                .map_err(|s| match s.code() {
                    tonic::Code::Unavailable | tonic::Code::Unknown => {
                        TransportError::Unreachable(s.message().to_string())
                    }
                    _ => TransportError::Network(s.message().to_string()),
                })?;
            serde_json::from_slice(&answer.into_inner().json)
                .map_err(|e| TransportError::Network(format!("decoding a raft answer: {e}")))
        })
    }
}
