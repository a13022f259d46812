//! Task states go to the managers in batches: whatever the controllers
//! reported within a few milliseconds travels in one call, and a state
//! the managers did not take is sent again (the latest per task).

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use berth_swarm_rpc::pb::Blob;
use berth_swarm_rpc::pb::dispatcher_client::DispatcherClient;
use berth_swarm_store::TaskStatus;
use serde::{Deserialize, Serialize};
use tokio::sync::mpsc;

use crate::active::Active;

/// What an agent tells the dispatcher: each task's newest state.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct StatusBatch {
    pub statuses: Vec<(String, TaskStatus)>,
}

/// How long a report waits for others to share its call.
const GATHER: Duration = Duration::from_millis(10);
/// At most this many tasks per call.
const MAX_BATCH: usize = 512;

#[derive(Clone)]
pub struct Reporter {
    tx: mpsc::UnboundedSender<(String, TaskStatus)>,
}

impl Reporter {
    pub fn send(&self, task_id: &str, status: TaskStatus) {
        // the receiver ends only with the worker, whose controllers end too
        let _ = self.tx.send((task_id.to_string(), status));
    }

    /// The reporter and its sending loop, which ends when every
    /// `Reporter` is dropped.
    pub fn spawn(node: Arc<Active>) -> (Reporter, tokio::task::JoinHandle<()>) {
        let (tx, rx) = mpsc::unbounded_channel();
        (Reporter { tx }, tokio::spawn(send_loop(node, rx)))
    }
}

async fn send_loop(node: Arc<Active>, mut rx: mpsc::UnboundedReceiver<(String, TaskStatus)>) {
    let mut pending: BTreeMap<String, TaskStatus> = BTreeMap::new();
    loop {
        if pending.is_empty() {
            let Some((id, s)) = rx.recv().await else {
                return;
            };
            pending.insert(id, s);
            tokio::time::sleep(GATHER).await;
        }
        while pending.len() < MAX_BATCH {
            let Ok((id, s)) = rx.try_recv() else { break };
            pending.insert(id, s);
        }
        let batch = StatusBatch {
            statuses: pending
                .iter()
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect(),
        };
        if deliver(&node, &batch).await {
            pending.clear();
        } else {
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
    }
}

/// Sends the batch to the first manager that takes it.
async fn deliver(node: &Active, batch: &StatusBatch) -> bool {
    let Ok(json) = serde_json::to_vec(batch) else {
        return true;
    };
    for addr in node.local().managers {
        let Ok(channel) = node.peers.channel(&addr) else {
            continue;
        };
        let mut client = DispatcherClient::new(channel)
            .max_decoding_message_size(berth_swarm_rpc::MAX_MESSAGE_BYTES);
        match client.update_task_status(Blob { json: json.clone() }).await {
            Ok(_) => return true,
            Err(e) => tracing::debug!("task states to {addr}: {}", e.message()),
        }
    }
    false
}
