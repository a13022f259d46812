//! Network attachments (swarmkit's resource allocator): a container of a
//! node's own, started with `docker run --network NET` on an attachable
//! swarm network, asks the managers for an address there. The managers
//! keep it as a task of that node with no service, so its address is
//! given and held like any task's, its peers learn of it from their
//! network views, and its name resolves on the network.

use std::time::Duration;

use berth_swarm_ca::new_id;
use berth_swarm_rpc::pb::Blob;
use berth_swarm_rpc::pb::dispatcher_client::DispatcherClient;
use berth_swarm_store::{
    Action, ContainerAttachment, Kind, NetworkAttachment, Object, Store, Task, TaskState,
    TaskStatus,
};
use serde::{Deserialize, Serialize};
use tonic::Status;
use tonic::transport::Channel;

use crate::active::Active;
use crate::executor::NetworkView;
use crate::{Swarm, SwarmError};

/// How long a node waits for the managers to answer an attachment.
const ATTACH_TIMEOUT: Duration = Duration::from_secs(20);

#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct AttachRequest {
    /// the network's name, id or id prefix, as the client gave it
    pub network: String,
    pub container_id: String,
    pub container_name: String,
}

/// The managers' answer: the attachment (its address on the network) and
/// the network as the node's views show it, so the container starts with
/// its peers, names and VIPs in place.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct Attachment {
    pub task: Task,
    pub view: NetworkView,
}

#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct DetachRequest {
    pub container_id: String,
    /// only these attachments of it; every one when empty
    #[serde(default)]
    pub task_ids: Vec<String>,
}

/// Served by a manager: the caller's attachment of the container to the
/// network, made now or the one it already holds.
pub async fn attach(node: &Active, caller: &str, raw: &[u8]) -> Result<Attachment, Status> {
    let req: AttachRequest = serde_json::from_slice(raw)
        .map_err(|e| Status::invalid_argument(format!("attach request: {e}")))?;
    node.sync_reads().await.map_err(status)?;
    let store = node.store().map_err(status)?;
    // always a new attachment: a give-back of the container's last run
    // may still be on its way, and names the tasks it gives back
    let t = store.read(|s| plan(s, caller, &req))?;
    let id = t.id.clone();
    node.propose(vec![Action::Create(Object::Task(t))])
        .await
        .map_err(status)?;
    node.sync_reads().await.map_err(status)?;
    store.read(|s| {
        let task = s
            .task(&id)
            .cloned()
            .ok_or_else(|| Status::unavailable("the attachment was removed meanwhile"))?;
        let net = task
            .networks
            .first()
            .and_then(|a| s.network(&a.network_id))
            .ok_or_else(|| Status::not_found(format!("network {} not found", req.network)))?;
        let view = crate::dispatch::network_view(s, net);
        Ok(Attachment { task, view })
    })
}

fn plan(s: &Store, caller: &str, req: &AttachRequest) -> Result<Task, Status> {
    let net = crate::network_ops::find_network(s, &req.network).map_err(status)?;
    if !net.spec.attachable {
        return Err(Status::permission_denied(format!(
            "network {} not manually attachable",
            req.network
        )));
    }
    let now = chrono::Utc::now();
    let mut t = Task {
        id: new_id().map_err(|e| Status::internal(format!("making an id: {e}")))?,
        node_id: caller.to_string(),
        desired_state: TaskState::Running,
        status: TaskStatus {
            timestamp: Some(now),
            state: TaskState::Running,
            message: "attached".into(),
            ..TaskStatus::default()
        },
        attachment: Some(ContainerAttachment {
            container_id: req.container_id.clone(),
            container_name: req.container_name.clone(),
        }),
        ..Task::default()
    };
    t.spec.networks.push(NetworkAttachment {
        target: net.id.clone(),
        ..NetworkAttachment::default()
    });
    Ok(t)
}

/// Served by a manager: the caller's attachments of the container go,
/// and their addresses with them.
pub async fn detach(node: &Active, caller: &str, raw: &[u8]) -> Result<(), Status> {
    let req: DetachRequest = serde_json::from_slice(raw)
        .map_err(|e| Status::invalid_argument(format!("detach request: {e}")))?;
    node.sync_reads().await.map_err(status)?;
    let store = node.store().map_err(status)?;
    let actions: Vec<Action> = store.read(|s| {
        s.tasks()
            .filter(|t| t.node_id == caller)
            .filter(|t| {
                t.attachment
                    .as_ref()
                    .is_some_and(|a| a.container_id == req.container_id)
            })
            .filter(|t| req.task_ids.is_empty() || req.task_ids.contains(&t.id))
            .map(|t| Action::Remove {
                kind: Kind::Task,
                id: t.id.clone(),
            })
            .collect()
    });
    if actions.is_empty() {
        return Ok(());
    }
    node.propose(actions).await.map_err(status)
}

fn status(e: SwarmError) -> Status {
    match e {
        SwarmError::NotFound(m) => Status::not_found(m),
        SwarmError::InvalidArgument(m) => Status::invalid_argument(m),
        SwarmError::Rpc { desc, .. } => Status::unavailable(desc),
        other => Status::unavailable(other.to_string()),
    }
}

impl Swarm {
    /// Asks the managers for the container's address on a swarm network
    /// (dockerd's `AttachNetwork`). Errors read as dockerd's: "Could not
    /// attach to network NET: rpc error: …".
    pub async fn attach_network(
        &self,
        network: &str,
        container_id: &str,
        container_name: &str,
    ) -> Result<Attachment, SwarmError> {
        let node = self.current().await.ok_or(SwarmError::NotInSwarm)?;
        let req = AttachRequest {
            network: network.to_string(),
            container_id: container_id.to_string(),
            container_name: container_name.to_string(),
        };
        let json = serde_json::to_vec(&req).map_err(|e| SwarmError::internal("encoding", e))?;
        let answer = first_manager(&node, Call::Attach(json))
            .await
            .map_err(|e| attach_error(network, e))?;
        serde_json::from_slice(&answer.json)
            .map_err(|e| SwarmError::internal("decoding the managers' attachment", e))
    }

    /// Gives back every attachment of the container on this node.
    pub async fn detach_network(&self, container_id: &str) -> Result<(), SwarmError> {
        self.detach_attachments(container_id, Vec::new()).await
    }

    /// Gives back the container's attachments `task_ids` (all when empty).
    pub async fn detach_attachments(
        &self,
        container_id: &str,
        task_ids: Vec<String>,
    ) -> Result<(), SwarmError> {
        let node = self.current().await.ok_or(SwarmError::NotInSwarm)?;
        let req = DetachRequest {
            container_id: container_id.to_string(),
            task_ids,
        };
        let json = serde_json::to_vec(&req).map_err(|e| SwarmError::internal("encoding", e))?;
        first_manager(&node, Call::Detach(json)).await.map(|_| ())
    }
}

/// dockerd's words for a refused attachment.
fn attach_error(network: &str, e: SwarmError) -> SwarmError {
    let why = e.to_string();
    let msg = format!("Could not attach to network {network}: {why}");
    match e.http_status() {
        404 => SwarmError::NotFound(msg),
        403 => SwarmError::Forbidden(msg),
        400 => SwarmError::InvalidArgument(msg),
        _ => SwarmError::Internal(msg),
    }
}

enum Call {
    Attach(Vec<u8>),
    Detach(Vec<u8>),
}

impl Call {
    async fn to(&self, mut client: DispatcherClient<Channel>) -> Result<Blob, Status> {
        match self {
            Call::Attach(json) => {
                let blob = Blob { json: json.clone() };
                Ok(client.attach_network(blob).await?.into_inner())
            }
            Call::Detach(json) => {
                let blob = Blob { json: json.clone() };
                client.detach_network(blob).await?;
                Ok(Blob::default())
            }
        }
    }
}

/// The call's answer from the first manager that gives one; a refusal
/// (not found, not attachable) is final, an unreachable manager is not.
async fn first_manager(node: &Active, call: Call) -> Result<Blob, SwarmError> {
    let mut last = SwarmError::Unavailable("no manager is reachable".into());
    for addr in node.local().managers {
        let Ok(channel) = node.peers.channel(&addr) else {
            continue;
        };
        let client = DispatcherClient::new(channel)
            .max_decoding_message_size(berth_swarm_rpc::MAX_MESSAGE_BYTES);
        match tokio::time::timeout(ATTACH_TIMEOUT, call.to(client)).await {
            Ok(Ok(answer)) => return Ok(answer),
            Ok(Err(s)) if s.code() == tonic::Code::Unavailable => {
                last = SwarmError::from_status(&s);
            }
            Ok(Err(s)) => return Err(SwarmError::from_status(&s)),
            Err(_) => last = SwarmError::Unavailable(format!("manager {addr} did not answer")),
        }
    }
    Err(last)
}
