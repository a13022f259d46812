//! The protocol over real TCP and TLS on loopback: a manager serving, and
//! callers with a worker's certificate, a manager's, none, or another
//! cluster's.

use std::sync::Arc;

use berth_swarm_ca::{
    DEFAULT_NODE_CERT_EXPIRY, NodeCert, NodeIdentity, NodeKey, Role, RootCa, client_config,
    server_config,
};
use tokio::net::TcpListener;
use tonic::{Code, Request, Response, Status};

use crate::pb::dispatcher_client::DispatcherClient;
use crate::pb::dispatcher_server::{Dispatcher, DispatcherServer};
use crate::pb::node_ca_client::NodeCaClient;
use crate::pb::node_ca_server::{NodeCa, NodeCaServer};
use crate::pb::{self, Blob, Empty};
use crate::{bootstrap_channel, channel, incoming, peer, require_role};

struct Manager {
    root_pem: String,
}

#[tonic::async_trait]
impl Dispatcher for Manager {
    /// echoes the caller's node id, for managers only
    async fn heartbeat(
        &self,
        req: Request<pb::HeartbeatRequest>,
    ) -> Result<Response<pb::HeartbeatResponse>, Status> {
        let who = require_role(&req, Role::Manager)?;
        Ok(Response::new(pb::HeartbeatResponse {
            period_ms: 5000,
            managers: vec![who.node_id],
            ..Default::default()
        }))
    }

    type AssignmentsStream =
        std::pin::Pin<Box<dyn tokio_stream::Stream<Item = Result<Blob, Status>> + Send>>;

    /// the task calls are not what these tests exercise
    async fn assignments(
        &self,
        _req: Request<Empty>,
    ) -> Result<Response<Self::AssignmentsStream>, Status> {
        Err(Status::unimplemented("not in this test"))
    }

    async fn update_task_status(&self, _req: Request<Blob>) -> Result<Response<Empty>, Status> {
        Err(Status::unimplemented("not in this test"))
    }

    async fn attach_network(&self, _req: Request<Blob>) -> Result<Response<Blob>, Status> {
        Err(Status::unimplemented("not in this test"))
    }

    async fn detach_network(&self, _req: Request<Blob>) -> Result<Response<Empty>, Status> {
        Err(Status::unimplemented("not in this test"))
    }
}

#[tonic::async_trait]
impl NodeCa for Manager {
    async fn get_root_ca_certificate(
        &self,
        req: Request<Empty>,
    ) -> Result<Response<pb::RootCaCertificate>, Status> {
        // anyone may ask; the test checks the caller had no identity
        assert!(peer(&req).is_some_and(|p| p.identity.is_none()));
        Ok(Response::new(pb::RootCaCertificate {
            certificate: self.root_pem.clone(),
        }))
    }

    async fn issue_node_certificate(
        &self,
        _req: Request<pb::IssueNodeCertificateRequest>,
    ) -> Result<Response<pb::IssueNodeCertificateResponse>, Status> {
        Err(Status::unimplemented("not in this test"))
    }

    async fn node_certificate_status(
        &self,
        _req: Request<pb::NodeCertificateStatusRequest>,
    ) -> Result<Response<pb::NodeCertificateStatusResponse>, Status> {
        Err(Status::unimplemented("not in this test"))
    }
}

fn node(root: &RootCa, id: &str, role: Role) -> (NodeCert, NodeKey) {
    let key = NodeKey::generate().unwrap();
    let who = NodeIdentity {
        node_id: id.into(),
        role,
        cluster_id: "cluster".into(),
    };
    let cert = root
        .sign(&key.csr_pem().unwrap(), &who, DEFAULT_NODE_CERT_EXPIRY)
        .unwrap();
    (cert, key)
}

/// A manager serving on loopback; its address.
async fn serve(root: &RootCa) -> String {
    let (cert, key) = node(root, "manager1", Role::Manager);
    let tls = server_config(root, &cert, &key).unwrap();
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    let svc = || Manager {
        root_pem: root.cert_pem().to_string(),
    };
    tokio::spawn(
        tonic::transport::Server::builder()
            .add_service(DispatcherServer::new(svc()))
            .add_service(NodeCaServer::new(svc()))
            .serve_with_incoming(incoming(listener, tls)),
    );
    addr
}

fn report() -> pb::HeartbeatRequest {
    pb::HeartbeatRequest {
        report: Some(Blob {
            json: b"{}".to_vec(),
        }),
    }
}

#[tokio::test]
async fn a_manager_sees_who_calls_and_refuses_the_wrong_role() {
    let root = RootCa::generate().unwrap();
    let addr = serve(&root).await;

    let (cert, key) = node(&root, "manager2", Role::Manager);
    let tls = client_config(&root, Some((&cert, &key))).unwrap();
    let mut c = DispatcherClient::new(channel(&addr, tls).unwrap());
    let answer = c.heartbeat(report()).await.unwrap().into_inner();
    assert_eq!(answer.managers, ["manager2"]);

    let (cert, key) = node(&root, "worker1", Role::Worker);
    let tls = client_config(&root, Some((&cert, &key))).unwrap();
    let mut c = DispatcherClient::new(channel(&addr, tls).unwrap());
    let err = c.heartbeat(report()).await.unwrap_err();
    assert_eq!(err.code(), Code::PermissionDenied);
    assert!(err.message().contains("swarm-manager"), "{}", err.message());
}

#[tokio::test]
async fn a_node_without_a_certificate_reaches_only_the_ca() {
    let root = RootCa::generate().unwrap();
    let addr = serve(&root).await;
    let mut ca = NodeCaClient::new(bootstrap_channel(&addr).unwrap());
    let got = ca
        .get_root_ca_certificate(Empty {})
        .await
        .unwrap()
        .into_inner();
    assert_eq!(got.certificate, root.cert_pem());

    let tls = client_config(&root, None).unwrap();
    let mut d = DispatcherClient::new(channel(&addr, tls).unwrap());
    let err = d.heartbeat(report()).await.unwrap_err();
    assert_eq!(err.code(), Code::PermissionDenied);
}

#[tokio::test]
async fn another_clusters_node_cannot_connect() {
    let root = RootCa::generate().unwrap();
    let addr = serve(&root).await;
    let other = RootCa::generate().unwrap();
    let (cert, key) = node(&other, "intruder", Role::Manager);
    // it trusts our root, but presents a certificate we never issued
    let tls = client_config(&root, Some((&cert, &key))).unwrap();
    let mut c = DispatcherClient::new(channel(&addr, Arc::clone(&tls)).unwrap());
    // the handshake fails: the handler (which would answer a manager) never runs
    let err = c.heartbeat(report()).await.unwrap_err();
    assert!(
        matches!(err.code(), Code::Unknown | Code::Unavailable),
        "{err}"
    );
    assert!(format!("{err:?}").contains("alert"), "{err:?}");
}
