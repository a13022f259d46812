//! `RuntimeService`: the runtime's identity, conditions and
//! configuration, pod sandboxes (`pods.rs`), their containers
//! (`containers.rs`), ExecSync (`exec.rs`) and the streaming calls,
//! whose sessions the streaming server carries (`streaming/`). What is
//! not served yet answers Unimplemented (the generated default stubs).

use std::collections::HashMap;
use std::sync::Arc;

use berth_engine::Engine;
use tonic::{Request, Response, Status};

use crate::cni::Cni;
use crate::pb::{self, runtime_service_server::RuntimeService};
use crate::streaming::{Pending, StreamingServer};
use crate::{containers, pods, stats};

pub struct Runtime {
    engine: Arc<Engine>,
    rates: stats::CpuRates,
    streaming: Arc<StreamingServer>,
    cni: Arc<Cni>,
}

impl Runtime {
    pub fn new(engine: Arc<Engine>, streaming: Arc<StreamingServer>, cni: Arc<Cni>) -> Runtime {
        Runtime {
            engine,
            rates: stats::CpuRates::default(),
            streaming,
            cni,
        }
    }

    /// NetworkReady: with a CNI configuration, whether it can be used (it
    /// parses, and its plugins are there); without one, whether berth's
    /// default bridge, where pods then go, exists.
    fn network_condition(&self) -> pb::RuntimeCondition {
        let (ready, message) = match self.cni.network() {
            Ok(Some(_)) => (true, String::new()),
            Ok(None) => (
                self.engine.network_exists("bridge"),
                "berth's default bridge network is missing".to_string(),
            ),
            Err(e) => (false, format!("Network plugin returns error: {e:#}")),
        };
        condition("NetworkReady", ready, "NetworkPluginNotReady", &message)
    }

    /// What `crictl info` shows of the CNI: its directories and the
    /// network new pods go on.
    fn cni_info(&self) -> serde_json::Value {
        let dir = self.cni.directory();
        let network = match self.cni.network() {
            Ok(Some(l)) => serde_json::json!({
                "file": l.file,
                "name": l.name,
                "cniVersion": l.cni_version,
                "plugins": l.binaries(),
            }),
            Ok(None) => serde_json::json!("none: pods go on berth's default bridge"),
            Err(e) => serde_json::json!(format!("{e:#}")),
        };
        serde_json::json!({
            "confDir": dir.conf_dir,
            "binDirs": dir.bin_dirs,
            "network": network,
        })
    }
}

/// The checks containerd makes of a streaming request: one output stream
/// with a terminal, at least one stream.
fn check_streams(stdin: bool, stdout: bool, stderr: bool, tty: bool) -> Result<(), Status> {
    if tty && stderr {
        return Err(Status::invalid_argument(
            "tty and stderr cannot both be true: a terminal has one output stream",
        ));
    }
    if !(stdin || stdout || stderr) {
        return Err(Status::invalid_argument(
            "one of stdin, stdout, or stderr must be set",
        ));
    }
    Ok(())
}

/// A CRI container that is running, by its id.
fn running_container(engine: &Engine, id: &str) -> Result<String, Status> {
    let v = containers::find(engine, id)?;
    if v.record.state.status != berth_engine::Status::Running {
        return Err(Status::failed_precondition(format!(
            "container {id} is not running"
        )));
    }
    Ok(v.record.id)
}

/// Runs a pod's setup or teardown to its end even if the kubelet's call
/// is cancelled (a dropped call would skip the undoing of a half-made
/// network), as containerd does with its detached contexts.
async fn detached<T: Send + 'static>(
    work: impl std::future::Future<Output = Result<T, Status>> + Send + 'static,
) -> Result<T, Status> {
    tokio::spawn(work)
        .await
        .map_err(|e| Status::internal(format!("a pod operation failed: {e}")))?
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
        let conditions = vec![
            condition("RuntimeReady", true, "", ""),
            self.network_condition(),
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
            info.insert("cni".to_string(), self.cni_info().to_string());
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
        let id = {
            let (engine, cni) = (self.engine.clone(), self.cni.clone());
            detached(async move { pods::run(&engine, &cni, &config, &req.runtime_handler).await })
                .await?
        };
        Ok(Response::new(pb::RunPodSandboxResponse {
            pod_sandbox_id: id,
        }))
    }

    async fn stop_pod_sandbox(
        &self,
        req: Request<pb::StopPodSandboxRequest>,
    ) -> Result<Response<pb::StopPodSandboxResponse>, Status> {
        let (engine, cni) = (self.engine.clone(), self.cni.clone());
        let id = req.into_inner().pod_sandbox_id;
        detached(async move { pods::stop(&engine, &cni, &id).await }).await?;
        Ok(Response::new(pb::StopPodSandboxResponse {}))
    }

    async fn remove_pod_sandbox(
        &self,
        req: Request<pb::RemovePodSandboxRequest>,
    ) -> Result<Response<pb::RemovePodSandboxResponse>, Status> {
        let (engine, cni) = (self.engine.clone(), self.cni.clone());
        let id = req.into_inner().pod_sandbox_id;
        detached(async move { pods::remove(&engine, &cni, &id).await }).await?;
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
            status: Some(pods::status_of(&self.engine, &v)),
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
        let items = pods::records_of(&self.engine, crate::labels::SANDBOX)?
            .iter()
            .filter(|r| pods::passes(r, &filter))
            .map(pods::summary)
            .collect();
        Ok(Response::new(pb::ListPodSandboxResponse { items }))
    }

    async fn create_container(
        &self,
        req: Request<pb::CreateContainerRequest>,
    ) -> Result<Response<pb::CreateContainerResponse>, Status> {
        let req = req.into_inner();
        let config = req
            .config
            .ok_or_else(|| Status::invalid_argument("a container config is required"))?;
        let sandbox = req.sandbox_config.unwrap_or_default();
        let id = containers::create(&self.engine, &req.pod_sandbox_id, &config, &sandbox).await?;
        Ok(Response::new(pb::CreateContainerResponse {
            container_id: id,
        }))
    }

    async fn start_container(
        &self,
        req: Request<pb::StartContainerRequest>,
    ) -> Result<Response<pb::StartContainerResponse>, Status> {
        containers::start(&self.engine, &req.into_inner().container_id).await?;
        Ok(Response::new(pb::StartContainerResponse {}))
    }

    async fn stop_container(
        &self,
        req: Request<pb::StopContainerRequest>,
    ) -> Result<Response<pb::StopContainerResponse>, Status> {
        let req = req.into_inner();
        containers::stop(&self.engine, &req.container_id, req.timeout).await?;
        Ok(Response::new(pb::StopContainerResponse {}))
    }

    async fn remove_container(
        &self,
        req: Request<pb::RemoveContainerRequest>,
    ) -> Result<Response<pb::RemoveContainerResponse>, Status> {
        containers::remove(&self.engine, &req.into_inner().container_id).await?;
        Ok(Response::new(pb::RemoveContainerResponse {}))
    }

    async fn list_containers(
        &self,
        req: Request<pb::ListContainersRequest>,
    ) -> Result<Response<pb::ListContainersResponse>, Status> {
        let filter = req.into_inner().filter.unwrap_or_default();
        let list = pods::records_of(&self.engine, crate::labels::CONTAINER)?
            .iter()
            .filter(|r| containers::passes(r, &filter))
            .map(containers::summary)
            .collect();
        Ok(Response::new(pb::ListContainersResponse {
            containers: list,
        }))
    }

    async fn container_status(
        &self,
        req: Request<pb::ContainerStatusRequest>,
    ) -> Result<Response<pb::ContainerStatusResponse>, Status> {
        let req = req.into_inner();
        let v = containers::find(&self.engine, &req.container_id)?;
        let info = if req.verbose {
            containers::verbose_info(&v)
        } else {
            HashMap::new()
        };
        Ok(Response::new(pb::ContainerStatusResponse {
            status: Some(containers::status_of(&v)),
            info,
        }))
    }

    async fn exec_sync(
        &self,
        req: Request<pb::ExecSyncRequest>,
    ) -> Result<Response<pb::ExecSyncResponse>, Status> {
        Ok(Response::new(
            crate::exec::exec_sync(&self.engine, req.into_inner()).await?,
        ))
    }

    async fn exec(
        &self,
        req: Request<pb::ExecRequest>,
    ) -> Result<Response<pb::ExecResponse>, Status> {
        let mut req = req.into_inner();
        if req.cmd.is_empty() {
            return Err(Status::invalid_argument("cmd must not be empty"));
        }
        check_streams(req.stdin, req.stdout, req.stderr, req.tty)?;
        req.container_id = running_container(&self.engine, &req.container_id)?;
        let url = self.streaming.url_for(Pending::Exec(req))?;
        Ok(Response::new(pb::ExecResponse { url }))
    }

    async fn attach(
        &self,
        req: Request<pb::AttachRequest>,
    ) -> Result<Response<pb::AttachResponse>, Status> {
        let mut req = req.into_inner();
        check_streams(req.stdin, req.stdout, req.stderr, req.tty)?;
        req.container_id = running_container(&self.engine, &req.container_id)?;
        let url = self.streaming.url_for(Pending::Attach(req))?;
        Ok(Response::new(pb::AttachResponse { url }))
    }

    async fn port_forward(
        &self,
        req: Request<pb::PortForwardRequest>,
    ) -> Result<Response<pb::PortForwardResponse>, Status> {
        let mut req = req.into_inner();
        req.pod_sandbox_id = pods::find(&self.engine, &req.pod_sandbox_id)?.record.id;
        let url = self.streaming.url_for(Pending::PortForward(req))?;
        Ok(Response::new(pb::PortForwardResponse { url }))
    }

    async fn get_container_events(
        &self,
        _req: Request<pb::GetEventsRequest>,
    ) -> Result<Response<tonic::codegen::BoxStream<pb::ContainerEventResponse>>, Status> {
        Ok(Response::new(crate::events::stream(self.engine.clone())))
    }

    async fn reopen_container_log(
        &self,
        req: Request<pb::ReopenContainerLogRequest>,
    ) -> Result<Response<pb::ReopenContainerLogResponse>, Status> {
        containers::reopen_log(&self.engine, &req.into_inner().container_id)?;
        Ok(Response::new(pb::ReopenContainerLogResponse {}))
    }

    async fn update_container_resources(
        &self,
        req: Request<pb::UpdateContainerResourcesRequest>,
    ) -> Result<Response<pb::UpdateContainerResourcesResponse>, Status> {
        let req = req.into_inner();
        let v = containers::find(&self.engine, &req.container_id)?;
        let r = req.linux.unwrap_or_default();
        let pos = |v: i64| Some(v).filter(|v| *v > 0);
        let update = berth_engine::ContainerUpdate {
            memory: pos(r.memory_limit_in_bytes),
            cpu_shares: pos(r.cpu_shares),
            cpu_period: pos(r.cpu_period),
            cpu_quota: pos(r.cpu_quota),
            cpuset_cpus: Some(r.cpuset_cpus).filter(|c| !c.is_empty()),
            ..Default::default()
        };
        self.engine
            .container_update(&v.record.id, update)
            .await
            .map_err(crate::errors::status)?;
        Ok(Response::new(pb::UpdateContainerResourcesResponse {}))
    }

    async fn container_stats(
        &self,
        req: Request<pb::ContainerStatsRequest>,
    ) -> Result<Response<pb::ContainerStatsResponse>, Status> {
        let v = containers::find(&self.engine, &req.into_inner().container_id)?;
        let stats = stats::container(&self.engine, &self.rates, &v)?;
        Ok(Response::new(pb::ContainerStatsResponse {
            stats: Some(stats),
        }))
    }

    async fn list_container_stats(
        &self,
        req: Request<pb::ListContainerStatsRequest>,
    ) -> Result<Response<pb::ListContainerStatsResponse>, Status> {
        let filter = req.into_inner().filter.unwrap_or_default();
        let all = pods::all_of(&self.engine, crate::labels::CONTAINER)?;
        let sandboxes = pods::all_of(&self.engine, crate::labels::SANDBOX)?;
        let live = all
            .iter()
            .map(|v| v.record.id.clone())
            .chain(sandboxes.iter().map(|v| stats::pod_key(&v.record.id)))
            .collect();
        self.rates.forget_gone(&live);
        let mut out = Vec::new();
        for v in all.iter().filter(|v| stats::passes(v, &filter)) {
            out.push(stats::container(&self.engine, &self.rates, v)?);
        }
        Ok(Response::new(pb::ListContainerStatsResponse { stats: out }))
    }

    async fn pod_sandbox_stats(
        &self,
        req: Request<pb::PodSandboxStatsRequest>,
    ) -> Result<Response<pb::PodSandboxStatsResponse>, Status> {
        let v = pods::find(&self.engine, &req.into_inner().pod_sandbox_id)?;
        let stats = stats::pod(&self.engine, &self.rates, &v)?;
        Ok(Response::new(pb::PodSandboxStatsResponse {
            stats: Some(stats),
        }))
    }

    async fn list_pod_sandbox_stats(
        &self,
        req: Request<pb::ListPodSandboxStatsRequest>,
    ) -> Result<Response<pb::ListPodSandboxStatsResponse>, Status> {
        let filter = req.into_inner().filter.unwrap_or_default();
        let mut out = Vec::new();
        for v in pods::all_of(&self.engine, crate::labels::SANDBOX)?
            .iter()
            .filter(|v| stats::pod_passes(v, &filter))
        {
            out.push(stats::pod(&self.engine, &self.rates, v)?);
        }
        Ok(Response::new(pb::ListPodSandboxStatsResponse {
            stats: out,
        }))
    }

    async fn list_metric_descriptors(
        &self,
        _req: Request<pb::ListMetricDescriptorsRequest>,
    ) -> Result<Response<pb::ListMetricDescriptorsResponse>, Status> {
        // berth serves the CRI's typed statistics, not cAdvisor's metrics
        Ok(Response::new(pb::ListMetricDescriptorsResponse {
            descriptors: Vec::new(),
        }))
    }

    async fn list_pod_sandbox_metrics(
        &self,
        _req: Request<pb::ListPodSandboxMetricsRequest>,
    ) -> Result<Response<pb::ListPodSandboxMetricsResponse>, Status> {
        Ok(Response::new(pb::ListPodSandboxMetricsResponse {
            pod_metrics: Vec::new(),
        }))
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
