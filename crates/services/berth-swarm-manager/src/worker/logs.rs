//! The agent's log publisher: while it follows a manager's assignments
//! it also keeps that manager's subscription stream open, and serves
//! each subscription with one publication call: the lines of its
//! matching tasks on this node, read through the executor, then a close
//! (without follow). A task whose container is gone is left out quietly,
//! as swarmkit's agent leaves it.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

use berth_swarm_rpc::pb::logs_client::LogsClient;
use berth_swarm_rpc::pb::{Blob, Empty};
use berth_swarm_store::{Task, TaskState};
use tokio::sync::{mpsc, watch};
use tokio::task::JoinSet;
use tonic::transport::Channel;

use crate::active::Active;
use crate::executor::TaskExecutor;
use crate::logs::{LogLine, PublishMessage, SubscriptionMessage};

/// The tasks the node was assigned, newest set last.
pub type Assigned = watch::Receiver<Arc<Vec<Task>>>;

/// Lines that travel in one publication at most.
const MAX_BATCH: usize = 128;
/// A follower waits this long for a starting task's container.
const CONTAINER_POLL: Duration = Duration::from_millis(500);

/// Serves the subscriptions of the manager at `addr`, reconnecting while
/// the assignments session (which aborts this) lasts.
pub async fn serve(
    node: Arc<Active>,
    exec: Arc<dyn TaskExecutor>,
    addr: String,
    assigned: Assigned,
) {
    loop {
        if let Err(e) = subscriptions(&node, &exec, &addr, &assigned).await {
            tracing::debug!("log subscriptions from {addr}: {e}");
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
}

async fn subscriptions(
    node: &Active,
    exec: &Arc<dyn TaskExecutor>,
    addr: &str,
    assigned: &Assigned,
) -> Result<(), String> {
    let channel = node.peers.stream_channel(addr)?;
    let mut stream = LogsClient::new(channel.clone())
        .max_decoding_message_size(berth_swarm_rpc::MAX_MESSAGE_BYTES)
        .log_subscriptions(Empty {})
        .await
        .map_err(|s| s.message().to_string())?
        .into_inner();
    // dropping the set (the stream ended) stops every publication
    let mut publications = JoinSet::new();
    let mut running = HashMap::new();
    while let Some(msg) = stream
        .message()
        .await
        .map_err(|s| s.message().to_string())?
    {
        let sub: SubscriptionMessage =
            serde_json::from_slice(&msg.json).map_err(|e| format!("log subscription: {e}"))?;
        while publications.try_join_next().is_some() {}
        running.retain(|_, h: &mut tokio::task::AbortHandle| !h.is_finished());
        if sub.close {
            if let Some(h) = running.remove(&sub.id) {
                h.abort();
            }
            continue;
        }
        if running.contains_key(&sub.id) {
            continue;
        }
        let publisher = Publisher {
            node_id: node.identity.node_id.clone(),
            exec: exec.clone(),
            sub: sub.clone(),
        };
        let h = publications.spawn(publisher.run(channel.clone(), assigned.clone()));
        running.insert(sub.id, h);
    }
    Ok(())
}

/// One subscription's publication from this node.
#[derive(Clone)]
pub(crate) struct Publisher {
    pub node_id: String,
    pub exec: Arc<dyn TaskExecutor>,
    pub sub: SubscriptionMessage,
}

impl Publisher {
    async fn run(self, channel: Channel, assigned: Assigned) {
        let (tx, rx) = mpsc::channel::<Blob>(16);
        let call = async {
            let publications = tokio_stream::wrappers::ReceiverStream::new(rx);
            LogsClient::new(channel)
                .max_decoding_message_size(berth_swarm_rpc::MAX_MESSAGE_BYTES)
                .publish_logs(publications)
                .await
        };
        let (answer, ()) = tokio::join!(call, self.publish(assigned, tx));
        if let Err(s) = answer {
            tracing::debug!("publishing logs of {}: {}", self.sub.id, s.message());
        }
    }

    /// Sends the subscription's lines as publications, and without
    /// follow a close once every task's log is read.
    pub(crate) async fn publish(&self, mut assigned: Assigned, out: mpsc::Sender<Blob>) {
        let (lines_tx, mut lines) = mpsc::channel(16);
        let mut readers = JoinSet::new();
        let mut started = HashSet::new();
        let tasks = assigned.borrow_and_update().clone();
        self.start_readers(&tasks, &mut started, &mut readers, &lines_tx);
        let follow = self.sub.options.follow;
        // without follow the channel ends with the last reader
        let spawner = follow.then_some(lines_tx);
        loop {
            let batch = tokio::select! {
                b = lines.recv() => b,
                changed = assigned.changed(), if spawner.is_some() => {
                    let Some(tx) = spawner.as_ref().filter(|_| changed.is_ok()) else {
                        return;
                    };
                    let tasks = assigned.borrow_and_update().clone();
                    self.start_readers(&tasks, &mut started, &mut readers, tx);
                    continue;
                }
            };
            let Some(lines) = batch else { break };
            let msg = PublishMessage {
                subscription_id: self.sub.id.clone(),
                lines,
                ..Default::default()
            };
            if !send(&out, &msg).await {
                return;
            }
        }
        let close = PublishMessage {
            subscription_id: self.sub.id.clone(),
            close: true,
            ..Default::default()
        };
        send(&out, &close).await;
    }

    fn start_readers(
        &self,
        tasks: &[Task],
        started: &mut HashSet<String>,
        readers: &mut JoinSet<()>,
        lines: &mpsc::Sender<Vec<LogLine>>,
    ) {
        for t in tasks.iter().filter(|t| self.sub.selector.matches(t)) {
            if started.insert(t.id.clone()) {
                readers.spawn(self.clone().read_task(t.clone(), lines.clone()));
            }
        }
    }

    /// One task's log, in batches of what is ready.
    async fn read_task(self, task: Task, out: mpsc::Sender<Vec<LogLine>>) {
        let Some(mut entries) = self.open(&task).await else {
            return;
        };
        while let Some(first) = entries.recv().await {
            let mut batch = Vec::new();
            let mut next = Some(first);
            while let Some(entry) = next.take() {
                match entry {
                    Ok(e) => batch.push(LogLine {
                        node_id: self.node_id.clone(),
                        service_id: task.service_id.clone(),
                        task_id: task.id.clone(),
                        stream: e.stream,
                        timestamp: e.timestamp,
                        attrs: e.attrs,
                        data: e.line,
                    }),
                    Err(e) => {
                        tracing::debug!("logs of task {}: {e}", task.id);
                        break;
                    }
                }
                if batch.len() < MAX_BATCH {
                    next = entries.try_recv().ok();
                }
            }
            if !batch.is_empty() && out.send(batch).await.is_err() {
                return;
            }
        }
    }

    /// The task's log; a follower waits for the container of a task
    /// still starting. None when there is none to read.
    async fn open(&self, task: &Task) -> Option<crate::executor::LogEntries> {
        let container = if task.status.container_id.is_empty() {
            task.container_name()
        } else {
            task.status.container_id.clone()
        };
        loop {
            match self.exec.logs(&container, &self.sub.options).await {
                Ok(entries) => return Some(entries),
                Err(e) if self.sub.options.follow && task.status.state < TaskState::Running => {
                    tracing::trace!("logs of task {} not ready: {e}", task.id);
                    tokio::time::sleep(CONTAINER_POLL).await;
                }
                Err(e) => {
                    tracing::debug!("logs of task {}: {e}", task.id);
                    return None;
                }
            }
        }
    }
}

async fn send(out: &mpsc::Sender<Blob>, msg: &PublishMessage) -> bool {
    let Ok(json) = serde_json::to_vec(msg) else {
        return false;
    };
    out.send(Blob { json }).await.is_ok()
}
