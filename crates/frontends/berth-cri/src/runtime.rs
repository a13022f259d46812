//! `RuntimeService`: the runtime's identity, conditions and
//! configuration, and pod sandboxes (`pods.rs`). Containers come in a
//! later slice (the default stubs answer Unimplemented meanwhile).

use std::collections::HashMap;
use std::sync::Arc;

use berth_engine::Engine;
use tonic::{Request, Response, Status};

use crate::pb::{self, runtime_service_server::RuntimeService};
use crate::pods;

pub struct Runtime {
    engine: Arc<Engine>,
}

impl Runtime {
    pub fn new(engine: Arc<Engine>) -> Runtime {
        Runtime { engine }
    }
}

fn condition(kind: &str, ready: bool, reason: &str, message: &str) -> pb::RuntimeCondition {
    pb::RuntimeCondition {
        r#type: kind.into(),
        status: ready,
        reason: if ready { String::new() } else { reason.into() },
        message: if ready { String::new() } else { message.into() },
    }
}

#[tonic::async_trait]
impl RuntimeService for Runtime {
    async fn version(
        &self,
        _req: Request<pb::VersionRequest>,
    ) -> Result<Response<pb::VersionResponse>, Status> {
        Ok(Response::new(pb::VersionResponse {
            // the kubelet's runtime API version, which the kubelet sends
            // and runtimes answer with their own
            version: "0.1.0".into(),
            runtime_name: "berth".into(),
            runtime_version: env!("CARGO_PKG_VERSION").into(),
            runtime_api_version: crate::CRI_VERSION.into(),
        }))
    }

    async fn status(
        &self,
        req: Request<pb::StatusRequest>,
    ) -> Result<Response<pb::StatusResponse>, Status> {
        // pods without host networking go on berth's default bridge
        let network = self.engine.network_exists("bridge");
        let conditions = vec![
            condition("RuntimeReady", true, "", ""),
            condition(
                "NetworkReady",
                network,
                "NetworkPluginNotReady",
                "berth's default bridge network is missing",
            ),
        ];
        let mut info = HashMap::new();
        if req.into_inner().verbose {
            let s = &self.engine.config().settings;
            let config = serde_json::json!({
                "dataRoot": s.data_root,
                "execRoot": s.exec_root,
                "criSocket": s.cri_socket,
                "cgroupDriver": "cgroupfs",
            });
            info.insert("config".to_string(), config.to_string());
        }
        Ok(Response::new(pb::StatusResponse {
            status: Some(pb::RuntimeStatus { conditions }),
            info,
            runtime_handlers: vec![pb::RuntimeHandler {
                name: String::new(),
                features: Some(pb::RuntimeHandlerFeatures::default()),
            }],
            features: Some(pb::RuntimeFeatures::default()),
        }))
    }

    async fn runtime_config(
        &self,
        _req: Request<pb::RuntimeConfigRequest>,
    ) -> Result<Response<pb::RuntimeConfigResponse>, Status> {
        // berth writes cgroupfs paths itself; it has no systemd driver
        Ok(Response::new(pb::RuntimeConfigResponse {
            linux: Some(pb::LinuxRuntimeConfiguration {
                cgroup_driver: pb::CgroupDriver::Cgroupfs as i32,
            }),
        }))
    }

    async fn run_pod_sandbox(
        &self,
        req: Request<pb::RunPodSandboxRequest>,
    ) -> Result<Response<pb::RunPodSandboxResponse>, Status> {
        let req = req.into_inner();
        let config = req
            .config
            .ok_or_else(|| Status::invalid_argument("a sandbox config is required"))?;
        let id = pods::run(&self.engine, &config, &req.runtime_handler).await?;
        Ok(Response::new(pb::RunPodSandboxResponse {
            pod_sandbox_id: id,
        }))
    }

    async fn stop_pod_sandbox(
        &self,
        req: Request<pb::StopPodSandboxRequest>,
    ) -> Result<Response<pb::StopPodSandboxResponse>, Status> {
        pods::stop(&self.engine, &req.into_inner().pod_sandbox_id).await?;
        Ok(Response::new(pb::StopPodSandboxResponse {}))
    }

    async fn remove_pod_sandbox(
        &self,
        req: Request<pb::RemovePodSandboxRequest>,
    ) -> Result<Response<pb::RemovePodSandboxResponse>, Status> {
        pods::remove(&self.engine, &req.into_inner().pod_sandbox_id).await?;
        Ok(Response::new(pb::RemovePodSandboxResponse {}))
    }

    async fn pod_sandbox_status(
        &self,
        req: Request<pb::PodSandboxStatusRequest>,
    ) -> Result<Response<pb::PodSandboxStatusResponse>, Status> {
        let req = req.into_inner();
        let v = pods::find(&self.engine, &req.pod_sandbox_id)?;
        let info = if req.verbose {
            pods::verbose_info(&v)
        } else {
            HashMap::new()
        };
        Ok(Response::new(pb::PodSandboxStatusResponse {
            status: Some(pods::status_of(&v)),
            info,
            containers_statuses: Vec::new(),
            timestamp: crate::now_nanos(),
        }))
    }

    async fn list_pod_sandbox(
        &self,
        req: Request<pb::ListPodSandboxRequest>,
    ) -> Result<Response<pb::ListPodSandboxResponse>, Status> {
        let filter = req.into_inner().filter.unwrap_or_default();
        let items = pods::all_of(&self.engine, crate::labels::SANDBOX)?
            .iter()
            .filter(|v| pods::passes(v, &filter))
            .map(pods::summary)
            .collect();
        Ok(Response::new(pb::ListPodSandboxResponse { items }))
    }

    async fn update_runtime_config(
        &self,
        _req: Request<pb::UpdateRuntimeConfigRequest>,
    ) -> Result<Response<pb::UpdateRuntimeConfigResponse>, Status> {
        // the pod CIDR matters to CNI plugins that read it; berth's own
        // bridge keeps its subnet
        Ok(Response::new(pb::UpdateRuntimeConfigResponse {}))
    }
}
