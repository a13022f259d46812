//! The `Logs` service a manager serves: its agents' subscription streams
//! and publications, and the relays other managers ask of it.

use std::collections::HashSet;
use std::pin::Pin;

use berth_swarm_rpc::pb::{self, Blob, Empty};
use tokio::sync::mpsc;
use tokio_stream::StreamExt;
use tonic::{Request, Response, Status, Streaming};

use super::{BrokerEvent, LocalSubscription, PublishMessage, RelayMessage, RelayRequest};
use crate::services::Services;

pub type BlobStream = Pin<Box<dyn tokio_stream::Stream<Item = Result<Blob, Status>> + Send>>;

fn blob<T: serde::Serialize>(v: &T) -> Result<Blob, Status> {
    serde_json::to_vec(v)
        .map(|json| Blob { json })
        .map_err(|e| Status::internal(format!("encoding a log message: {e}")))
}

#[tonic::async_trait]
impl pb::logs_server::Logs for Services {
    type LogSubscriptionsStream = BlobStream;
    type SubscribeLogsStream = BlobStream;

    async fn log_subscriptions(&self, req: Request<Empty>) -> Result<Response<BlobStream>, Status> {
        let caller = self.agent(&req)?;
        let (session, rx) = self.node.logs.attach(&caller.node_id);
        // the session lasts as long as the stream: tonic drops it when the
        // agent goes
        let stream = tokio_stream::wrappers::UnboundedReceiverStream::new(rx).map(move |m| {
            let _alive = &session;
            blob(&m)
        });
        Ok(Response::new(Box::pin(stream)))
    }

    async fn publish_logs(&self, req: Request<Streaming<Blob>>) -> Result<Response<Empty>, Status> {
        let node = self.agent(&req)?.node_id;
        let mut stream = req.into_inner();
        let mut current: Option<String> = None;
        let outcome = self
            .take_publications(&node, &mut stream, &mut current)
            .await;
        if let Some(id) = current {
            // the agent went before closing the subscription
            let error = match &outcome {
                Ok(()) => None,
                Err(s) => Some(format!("node {node}: {}", s.message())),
            };
            self.node.logs.node_done(&id, &node, error).await;
        }
        outcome.map(|()| Response::new(Empty {}))
    }

    async fn subscribe_logs(&self, req: Request<Blob>) -> Result<Response<BlobStream>, Status> {
        self.manager(&req)?;
        let r: RelayRequest = serde_json::from_slice(&req.into_inner().json)
            .map_err(|e| Status::invalid_argument(format!("log relay request: {e}")))?;
        let connected = self.node.logs.connected();
        // a relay answers only for the agents connected here
        let nodes = r.nodes.map(|n| {
            n.into_iter()
                .filter(|x| connected.contains(x))
                .collect::<HashSet<_>>()
        });
        let id = berth_swarm_ca::new_id().map_err(|e| Status::internal(e.to_string()))?;
        let follow = r.options.follow;
        let sub = self.node.logs.subscribe(id, r.selector, r.options, nodes);
        Ok(Response::new(relay(sub, follow)))
    }
}

impl Services {
    /// Reads one subscription's publications from an agent into its
    /// reader, until the agent closes it.
    async fn take_publications(
        &self,
        node: &str,
        stream: &mut Streaming<Blob>,
        current: &mut Option<String>,
    ) -> Result<(), Status> {
        let mut events = None;
        while let Some(b) = stream.message().await? {
            let msg: PublishMessage = serde_json::from_slice(&b.json)
                .map_err(|e| Status::invalid_argument(format!("log publication: {e}")))?;
            if msg.subscription_id.is_empty() {
                return Err(Status::invalid_argument("missing subscription ID"));
            }
            match current {
                Some(id) if *id != msg.subscription_id => {
                    return Err(Status::invalid_argument(
                        "different subscription IDs in the same session",
                    ));
                }
                Some(_) => {}
                None => {
                    events = Some(
                        self.node
                            .logs
                            .publisher(&msg.subscription_id, node)
                            .ok_or_else(|| Status::not_found("unknown subscription ID"))?,
                    );
                    *current = Some(msg.subscription_id.clone());
                }
            }
            // a node speaks for itself only
            if let Some(l) = msg.lines.iter().find(|l| l.node_id != node) {
                return Err(Status::permission_denied(format!(
                    "invalid NodeID: expected={node};received={}",
                    l.node_id
                )));
            }
            if !msg.lines.is_empty()
                && let Some(tx) = &events
                && tx.send(BrokerEvent::Lines(msg.lines)).await.is_err()
            {
                // the reader went: the subscription's close reaches the agent
                *current = None;
                return Ok(());
            }
            if msg.close {
                self.node
                    .logs
                    .node_done(&msg.subscription_id, node, msg.error)
                    .await;
                *current = None;
                return Ok(());
            }
        }
        Ok(())
    }
}

/// A relayed subscription's stream: the nodes served, then their lines
/// and ends; without follow it ends when every served node has.
fn relay(mut sub: LocalSubscription, follow: bool) -> BlobStream {
    let (tx, rx) = mpsc::channel::<Result<Blob, Status>>(16);
    tokio::spawn(async move {
        let mut pending: HashSet<String> = sub.served.iter().cloned().collect();
        if tx
            .send(blob(&RelayMessage::Served(sub.served.clone())))
            .await
            .is_err()
        {
            return;
        }
        while follow || !pending.is_empty() {
            let event = tokio::select! {
                e = sub.events.recv() => e,
                () = tx.closed() => return,
            };
            let msg = match event {
                None => return,
                Some(BrokerEvent::Lines(lines)) => RelayMessage::Lines(lines),
                Some(BrokerEvent::NodeDone { node, error }) => {
                    pending.remove(&node);
                    RelayMessage::NodeDone { node, error }
                }
            };
            if tx.send(blob(&msg)).await.is_err() {
                return;
            }
        }
    });
    Box::pin(tokio_stream::wrappers::ReceiverStream::new(rx))
}
