//! The dispatcher's task side, on every manager: a node's assignments
//! streamed from this manager's store, and the task states its agent
//! reports, committed through the leader.

use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use berth_swarm_rpc::pb::Blob;
use berth_swarm_store::{Action, Event, Object, Task, TaskPatch};
use tokio::sync::broadcast::error::RecvError;
use tokio::sync::mpsc;
use tonic::Status;

use crate::active::Active;
use crate::worker::reporter::StatusBatch;

pub type AssignmentStream =
    Pin<Box<dyn tokio_stream::Stream<Item = Result<Blob, Status>> + Send + 'static>>;

/// Changes this close together go to the node as one set.
const DEBOUNCE: Duration = Duration::from_millis(5);

/// Every task the store gives `node_id`, sent whole now and after each
/// change to one of them.
pub fn assignments(node: Arc<Active>, node_id: String) -> Result<AssignmentStream, Status> {
    // only the leader's store is known to be whole: a follower behind it
    // (or one still catching up after a promotion) would hand out a list
    // missing tasks, and the agent removes what is missing
    if !node.raft().is_ok_and(|r| r.is_leader()) {
        return Err(Status::unavailable("assignments come from the leader"));
    }
    let store = node
        .store()
        .map_err(|e| Status::unavailable(e.to_string()))?
        .clone();
    let (tx, rx) = mpsc::channel(2);
    let watcher = tx.clone();
    let leader_check = node.clone();
    let lost_node = node_id.clone();
    tokio::spawn(async move {
        // the agent hung up (its daemon died, or it moved to another
        // manager): the leader hears of it at once, not heartbeats later
        watcher.closed().await;
        crate::agent::session_lost(&node, &lost_node).await;
    });
    tokio::spawn(async move {
        let mut changes = store.watch();
        let mut last: Option<Vec<u8>> = None;
        loop {
            let tasks: Vec<Task> = store.read(|s| {
                s.tasks()
                    .filter(|t| t.node_id == node_id)
                    .cloned()
                    .collect()
            });
            let Ok(json) = serde_json::to_vec(&tasks) else {
                return;
            };
            if last.as_ref() != Some(&json) {
                if tx.send(Ok(Blob { json: json.clone() })).await.is_err() {
                    return;
                }
                last = Some(json);
            }
            tokio::select! {
                more = next_change(&mut changes, &node_id) => if !more { return },
                _ = tx.closed() => return,
            }
            if !node_leads(&leader_check) {
                // the agent moves to the new leader
                return;
            }
        }
    });
    Ok(Box::pin(tokio_stream::wrappers::ReceiverStream::new(rx)))
}

fn node_leads(node: &Active) -> bool {
    node.raft().is_ok_and(|r| r.is_leader())
}

/// Waits for a change to one of the node's tasks; false once the store
/// is gone.
async fn next_change(
    changes: &mut tokio::sync::broadcast::Receiver<Arc<Event>>,
    node_id: &str,
) -> bool {
    loop {
        match changes.recv().await {
            Ok(e) if touches(&e, node_id) => break,
            Ok(_) => continue,
            Err(RecvError::Lagged(_)) => break,
            Err(RecvError::Closed) => return false,
        }
    }
    tokio::time::sleep(DEBOUNCE).await;
    while changes.try_recv().is_ok() {}
    true
}

fn touches(e: &Event, node_id: &str) -> bool {
    let on_node = |o: &Object| matches!(o, Object::Task(t) if t.node_id == node_id);
    on_node(&e.object) || e.old.as_ref().is_some_and(on_node)
}

/// Commits the states a node's agent reports, for that node's tasks only.
pub async fn update_task_status(
    node: &Active,
    caller_node: &str,
    raw: &[u8],
) -> Result<(), Status> {
    let batch: StatusBatch = serde_json::from_slice(raw)
        .map_err(|e| Status::invalid_argument(format!("task states: {e}")))?;
    let store = node
        .store()
        .map_err(|e| Status::unavailable(e.to_string()))?;
    let actions: Vec<Action> = store.read(|s| {
        batch
            .statuses
            .into_iter()
            .filter(|(id, _)| s.task(id).is_some_and(|t| t.node_id == caller_node))
            .map(|(id, status)| Action::PatchTask {
                id,
                patch: TaskPatch {
                    status: Some(status),
                    ..TaskPatch::default()
                },
            })
            .collect()
    });
    if actions.is_empty() {
        return Ok(());
    }
    node.propose(actions)
        .await
        .map_err(|e| Status::unavailable(e.to_string()))
}
