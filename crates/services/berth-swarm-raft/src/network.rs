//! Raft's messages between managers, whatever carries them. A transport
//! delivers a `RaftRequest` to the manager `Member` names and brings back
//! its `RaftResponse`; both are plain serde values, so the manager can send
//! them as bytes in its own RPC.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use openraft::error::{
    InstallSnapshotError, NetworkError, RPCError, RaftError, RemoteError, Unreachable,
};
use openraft::network::{RPCOption, RaftNetwork, RaftNetworkFactory};
use openraft::raft::{
    AppendEntriesRequest, AppendEntriesResponse, InstallSnapshotRequest, InstallSnapshotResponse,
    VoteRequest, VoteResponse,
};
use serde::{Deserialize, Serialize};

use crate::{Member, NodeId, TypeConfig};

#[derive(Debug, Serialize, Deserialize)]
pub enum RaftRequest {
    Append(AppendEntriesRequest<TypeConfig>),
    Vote(VoteRequest<NodeId>),
    Snapshot(InstallSnapshotRequest<TypeConfig>),
}

impl RaftRequest {
    /// The member that sent it: the leader or the candidate.
    pub fn sender(&self) -> Option<NodeId> {
        let vote = match self {
            RaftRequest::Append(r) => &r.vote,
            RaftRequest::Vote(r) => &r.vote,
            RaftRequest::Snapshot(r) => &r.vote,
        };
        vote.leader_id().voted_for()
    }
}

#[derive(Debug, Serialize, Deserialize)]
pub enum RaftResponse {
    Append(Result<AppendEntriesResponse<NodeId>, RaftError<NodeId>>),
    Vote(Result<VoteResponse<NodeId>, RaftError<NodeId>>),
    Snapshot(Result<InstallSnapshotResponse<NodeId>, RaftError<NodeId, InstallSnapshotError>>),
}

#[derive(Debug, thiserror::Error)]
pub enum TransportError {
    /// nobody answered: Raft backs off before trying again
    #[error("manager unreachable: {0}")]
    Unreachable(String),
    /// the exchange broke off or made no sense
    #[error("raft transport: {0}")]
    Network(String),
}

pub type TransportFuture =
    Pin<Box<dyn Future<Output = Result<RaftResponse, TransportError>> + Send>>;

pub trait Transport: Send + Sync + 'static {
    fn send(&self, target: NodeId, to: &Member, request: RaftRequest) -> TransportFuture;
}

pub(crate) struct Network {
    pub transport: Arc<dyn Transport>,
}

impl RaftNetworkFactory<TypeConfig> for Network {
    type Network = Connection;

    async fn new_client(&mut self, target: NodeId, node: &Member) -> Connection {
        Connection {
            transport: self.transport.clone(),
            target,
            member: node.clone(),
        }
    }
}

pub(crate) struct Connection {
    transport: Arc<dyn Transport>,
    target: NodeId,
    member: Member,
}

type RpcResult<T, E = openraft::error::Infallible> =
    Result<T, RPCError<NodeId, Member, RaftError<NodeId, E>>>;

fn transport_error<E: std::error::Error>(e: TransportError) -> RPCError<NodeId, Member, E> {
    match e {
        TransportError::Unreachable(_) => RPCError::Unreachable(Unreachable::new(&e)),
        TransportError::Network(_) => RPCError::Network(NetworkError::new(&e)),
    }
}

fn mismatched<E: std::error::Error>() -> RPCError<NodeId, Member, E> {
    let e = TransportError::Network("the answer does not match the request".into());
    RPCError::Network(NetworkError::new(&e))
}

impl Connection {
    async fn call(&self, request: RaftRequest) -> Result<RaftResponse, TransportError> {
        self.transport
            .send(self.target, &self.member, request)
            .await
    }

    fn remote<T, E: std::error::Error>(
        &self,
        r: Result<T, RaftError<NodeId, E>>,
    ) -> RpcResult<T, E> {
        r.map_err(|e| {
            RPCError::RemoteError(RemoteError::new_with_node(
                self.target,
                self.member.clone(),
                e,
            ))
        })
    }
}

impl RaftNetwork<TypeConfig> for Connection {
    async fn append_entries(
        &mut self,
        rpc: AppendEntriesRequest<TypeConfig>,
        _option: RPCOption,
    ) -> RpcResult<AppendEntriesResponse<NodeId>> {
        match self
            .call(RaftRequest::Append(rpc))
            .await
            .map_err(transport_error)?
        {
            RaftResponse::Append(r) => self.remote(r),
            _ => Err(mismatched()),
        }
    }

    async fn install_snapshot(
        &mut self,
        rpc: InstallSnapshotRequest<TypeConfig>,
        _option: RPCOption,
    ) -> RpcResult<InstallSnapshotResponse<NodeId>, InstallSnapshotError> {
        match self
            .call(RaftRequest::Snapshot(rpc))
            .await
            .map_err(transport_error)?
        {
            RaftResponse::Snapshot(r) => self.remote(r),
            _ => Err(mismatched()),
        }
    }

    async fn vote(
        &mut self,
        rpc: VoteRequest<NodeId>,
        _option: RPCOption,
    ) -> RpcResult<VoteResponse<NodeId>> {
        match self
            .call(RaftRequest::Vote(rpc))
            .await
            .map_err(transport_error)?
        {
            RaftResponse::Vote(r) => self.remote(r),
            _ => Err(mismatched()),
        }
    }
}
