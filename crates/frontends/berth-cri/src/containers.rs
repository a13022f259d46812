//! Containers in pods: the CRI's container config as an engine container
//! that joins its sandbox's namespaces, and the engine's record as the
//! CRI's container status.

use std::collections::HashMap;
use std::path::{Component, Path, PathBuf};
use std::sync::Arc;

use berth_core::container::{
    ContainerConfig, ContainerSpec, DeviceMapping, HostConfig, LogConfig, Mount, MountType,
    Propagation, RestartPolicy, RestartPolicyName,
};
use berth_engine::{ContainerRecord, ContainerView, Engine, Error, Status as RunState};
use tonic::Status;

use crate::errors::status;
use crate::labels;
use crate::pb;
use crate::pods;

const NODE: i32 = pb::NamespaceMode::Node as i32;
const CONTAINER_NS: i32 = pb::NamespaceMode::Container as i32;
const TARGET: i32 = pb::NamespaceMode::Target as i32;

/// The image as the kubelet named it, for the container's status.
const IMAGE: &str = "io.kubernetes.cri.image";
/// The log driver that writes the CRI's format (berth-logdriver's).
const CRI_LOG_DRIVER: &str = "cri-file";
/// The absolute path of the container's CRI log.
pub const LOG_PATH: &str = "io.kubernetes.cri.log-path";

/// The container's log file: the sandbox's log directory and the
/// container's path under it, which may not leave it.
fn log_file(sandbox: &pb::PodSandboxConfig, log_path: &str) -> Result<Option<PathBuf>, Status> {
    if log_path.is_empty() {
        return Ok(None);
    }
    let dir = Path::new(&sandbox.log_directory);
    if !dir.is_absolute() {
        return Err(Status::invalid_argument(format!(
            "the sandbox's log directory must be an absolute path to hold log path {log_path:?}"
        )));
    }
    let rel = Path::new(log_path);
    if rel.is_absolute() || rel.components().any(|c| !matches!(c, Component::Normal(_))) {
        return Err(Status::invalid_argument(format!(
            "log path {log_path:?} must stay inside the sandbox's log directory"
        )));
    }
    Ok(Some(dir.join(rel)))
}

/// What the sandbox's record says the container joins.
struct Pod {
    id: String,
    name: String,
    namespace: String,
    uid: String,
    /// (network, pid, ipc) modes
    modes: (i32, i32, i32),
    cgroup_parent: Option<String>,
}

fn pod_of(v: &ContainerView) -> Pod {
    let l = v.record.config.labels.clone().unwrap_or_default();
    let get = |k: &str| l.get(k).cloned().unwrap_or_default();
    let m: Vec<i32> = get(labels::NAMESPACES)
        .split(',')
        .map(|n| n.parse().unwrap_or(0))
        .chain([0, 0, 0])
        .collect();
    Pod {
        id: v.record.id.clone(),
        name: get(labels::NAME),
        namespace: get(labels::NAMESPACE),
        uid: get(labels::UID),
        modes: (m[0], m[1], m[2]),
        cgroup_parent: v.record.host_config.cgroup_parent.clone(),
    }
}

/// Docker's modes for the namespaces the container shares: the pod's
/// (the sandbox's), the node's, or its own (PID only).
fn join_modes(pod: &Pod, own: Option<&pb::NamespaceOption>) -> (String, Option<String>, String) {
    let (net, mut pid, ipc) = pod.modes;
    let mut target = String::new();
    if let Some(o) = own {
        pid = o.pid;
        target = o.target_id.clone();
    }
    let joined = format!("container:{}", pod.id);
    let network = if net == NODE {
        "host".into()
    } else {
        joined.clone()
    };
    let pid = match pid {
        NODE => Some("host".into()),
        CONTAINER_NS => None,
        TARGET if !target.is_empty() => Some(format!("container:{target}")),
        _ => Some(joined.clone()),
    };
    let ipc = if ipc == NODE { "host".into() } else { joined };
    (network, pid, ipc)
}

fn propagation(p: i32) -> Propagation {
    match pb::MountPropagation::try_from(p) {
        Ok(pb::MountPropagation::PropagationHostToContainer) => Propagation::Rslave,
        Ok(pb::MountPropagation::PropagationBidirectional) => Propagation::Rshared,
        _ => Propagation::Rprivate,
    }
}

fn mounts(config: &pb::ContainerConfig) -> Result<Vec<Mount>, Status> {
    config
        .mounts
        .iter()
        .map(|m| {
            if m.image.as_ref().is_some_and(|i| !i.image.is_empty()) {
                return Err(Status::unimplemented(
                    "image volume mounts are not supported",
                ));
            }
            if m.recursive_read_only {
                return Err(Status::invalid_argument(
                    "recursive read-only mounts are not supported by this runtime handler",
                ));
            }
            if !Path::new(&m.container_path).is_absolute() || !Path::new(&m.host_path).is_absolute()
            {
                return Err(Status::invalid_argument(format!(
                    "mount {} -> {}: both paths must be absolute",
                    m.host_path, m.container_path
                )));
            }
            Ok(Mount {
                typ: Some(MountType::Bind),
                source: Some(m.host_path.clone()),
                target: Some(m.container_path.clone()),
                read_only: Some(m.readonly),
                bind_options: Some(berth_core::container::MountBindOptions {
                    propagation: Some(propagation(m.propagation)),
                    ..Default::default()
                }),
                ..Default::default()
            })
        })
        .collect()
}

fn devices(config: &pb::ContainerConfig) -> Vec<DeviceMapping> {
    config
        .devices
        .iter()
        .map(|d| DeviceMapping {
            path_on_host: Some(d.host_path.clone()),
            path_in_container: Some(d.container_path.clone()),
            cgroup_permissions: Some(d.permissions.clone()).filter(|p| !p.is_empty()),
        })
        .collect()
}

/// The user the process runs as: `uid[:gid]` or `name[:gid]`.
fn user(s: &pb::LinuxContainerSecurityContext) -> Result<Option<String>, Status> {
    let name = match (&s.run_as_user, s.run_as_username.as_str()) {
        (Some(_), n) if !n.is_empty() => {
            return Err(Status::invalid_argument(
                "run_as_user and run_as_username are mutually exclusive",
            ));
        }
        (Some(u), _) => Some(u.value.to_string()),
        (None, "") => None,
        (None, n) => Some(n.to_string()),
    };
    match (name, &s.run_as_group) {
        (None, Some(_)) => Err(Status::invalid_argument(
            "run_as_group is set without run_as_user or run_as_username",
        )),
        (Some(n), Some(g)) => Ok(Some(format!("{n}:{}", g.value))),
        (n, None) => Ok(n),
    }
}

/// Docker's `--security-opt` values for the context's seccomp profile
/// and no_new_privs; AppArmor is refused where it is asked for by name.
#[allow(deprecated)]
fn security_opts(s: &pb::LinuxContainerSecurityContext) -> Result<Vec<String>, Status> {
    use pb::security_profile::ProfileType;
    let mut opts = Vec::new();
    if s.no_new_privs {
        opts.push("no-new-privileges".to_string());
    }
    let seccomp = match &s.seccomp {
        Some(p) => match ProfileType::try_from(p.profile_type) {
            Ok(ProfileType::Unconfined) => Some("unconfined".to_string()),
            Ok(ProfileType::Localhost) => Some(seccomp_file(&p.localhost_ref)?),
            _ => None,
        },
        None => match s.seccomp_profile_path.as_str() {
            "unconfined" => Some("unconfined".to_string()),
            p if p.starts_with("localhost/") => Some(seccomp_file(&p["localhost/".len()..])?),
            _ => None,
        },
    };
    if let Some(v) = seccomp {
        opts.push(format!("seccomp={v}"));
    }
    let apparmor_by_name = s
        .apparmor
        .as_ref()
        .is_some_and(|p| p.profile_type == ProfileType::Localhost as i32)
        || s.apparmor_profile.starts_with("localhost/");
    if apparmor_by_name {
        return Err(Status::invalid_argument(
            "AppArmor is not available on this host: berth cannot apply a named profile",
        ));
    }
    Ok(opts)
}

/// The JSON of a seccomp profile on the node, which Docker's option takes.
fn seccomp_file(path: &str) -> Result<String, Status> {
    if !Path::new(path).is_absolute() {
        return Err(Status::invalid_argument(format!(
            "a localhost seccomp profile must be an absolute path: {path:?}"
        )));
    }
    std::fs::read_to_string(path)
        .map_err(|e| Status::invalid_argument(format!("reading the seccomp profile {path}: {e}")))
}

/// The lowest `oom_score_adj` berth may give: its own. This machine's
/// bounding set lacks CAP_SYS_RESOURCE, so asking for less would fail
/// every start (containerd's `restrict_oom_score_adj`).
fn oom_score_adj(wanted: i64) -> Option<i64> {
    if wanted == 0 {
        return None;
    }
    let own = std::fs::read_to_string("/proc/self/oom_score_adj")
        .ok()
        .and_then(|s| s.trim().parse::<i64>().ok())
        .unwrap_or(0);
    Some(wanted.max(own))
}

fn resources(host: &mut HostConfig, r: &pb::LinuxContainerResources) {
    let pos = |v: i64| Some(v).filter(|v| *v > 0);
    host.cpu_period = pos(r.cpu_period);
    host.cpu_quota = pos(r.cpu_quota);
    host.cpu_shares = pos(r.cpu_shares);
    host.memory = pos(r.memory_limit_in_bytes);
    host.memory_swap = pos(r.memory_swap_limit_in_bytes);
    host.cpuset_cpus = Some(r.cpuset_cpus.clone()).filter(|s| !s.is_empty());
    host.cpuset_mems = Some(r.cpuset_mems.clone()).filter(|s| !s.is_empty());
    host.oom_score_adj = oom_score_adj(r.oom_score_adj);
}

/// The engine spec of a container in `pod`.
fn container_spec(
    pod: &Pod,
    config: &pb::ContainerConfig,
    sandbox: &pb::PodSandboxConfig,
) -> Result<(String, ContainerSpec), Status> {
    let m = config
        .metadata
        .as_ref()
        .filter(|m| !m.name.is_empty())
        .ok_or_else(|| Status::invalid_argument("container config must include a metadata name"))?;
    if !m
        .name
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || b".-".contains(&b))
    {
        return Err(Status::invalid_argument(format!(
            "container metadata name {:?} may hold only letters, digits, '.' and '-'",
            m.name
        )));
    }
    let image_spec = config.image.clone().unwrap_or_default();
    if image_spec.image.is_empty() {
        return Err(Status::invalid_argument(
            "container config must name an image",
        ));
    }
    let linux = config.linux.clone().unwrap_or_default();
    let sec = linux.security_context.clone().unwrap_or_default();
    let log = log_file(sandbox, &config.log_path)?;
    let (network, pid, ipc) = join_modes(pod, sec.namespace_options.as_ref());

    let mut all = labels::fold(&config.labels, &config.annotations);
    all.insert(labels::KIND.into(), labels::CONTAINER.into());
    all.insert(labels::NAME.into(), m.name.clone());
    all.insert(labels::ATTEMPT.into(), m.attempt.to_string());
    all.insert(labels::SANDBOX_ID.into(), pod.id.clone());
    let shown = Some(image_spec.user_specified_image.clone())
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| image_spec.image.clone());
    all.insert(IMAGE.into(), shown);
    if let Some(p) = &log {
        all.insert(LOG_PATH.into(), p.display().to_string());
    }

    let mut host = HostConfig {
        network_mode: Some(network.clone()),
        pid_mode: pid,
        ipc_mode: Some(ipc),
        uts_mode: (network == "host").then(|| "host".into()),
        cgroup_parent: pod.cgroup_parent.clone(),
        privileged: Some(sec.privileged),
        readonly_rootfs: Some(sec.readonly_rootfs),
        cap_add: sec
            .capabilities
            .as_ref()
            .map(|c| c.add_capabilities.clone()),
        cap_drop: sec
            .capabilities
            .as_ref()
            .map(|c| c.drop_capabilities.clone()),
        group_add: Some(
            sec.supplemental_groups
                .iter()
                .map(|g| g.to_string())
                .collect(),
        )
        .filter(|g: &Vec<String>| !g.is_empty()),
        security_opt: Some(security_opts(&sec)?).filter(|o| !o.is_empty()),
        masked_paths: Some(sec.masked_paths.clone()).filter(|p| !p.is_empty()),
        readonly_paths: Some(sec.readonly_paths.clone()).filter(|p| !p.is_empty()),
        mounts: Some(mounts(config)?).filter(|m| !m.is_empty()),
        devices: Some(devices(config)).filter(|d| !d.is_empty()),
        log_config: Some(log_config(log.as_deref())),
        restart_policy: Some(RestartPolicy {
            name: Some(RestartPolicyName::No),
            maximum_retry_count: None,
        }),
        ..HostConfig::default()
    };
    if let Some(r) = &linux.resources {
        resources(&mut host, r);
    }
    let spec = ContainerConfig {
        image: Some(image_spec.image.clone()),
        entrypoint: Some(config.command.clone()).filter(|c| !c.is_empty()),
        cmd: Some(config.args.clone()).filter(|a| !a.is_empty()),
        working_dir: Some(config.working_dir.clone()).filter(|w| !w.is_empty()),
        env: Some(
            config
                .envs
                .iter()
                .map(|kv| format!("{}={}", kv.key, kv.value))
                .collect(),
        ),
        user: user(&sec)?,
        tty: Some(config.tty),
        open_stdin: Some(config.stdin),
        stdin_once: Some(config.stdin_once),
        attach_stdin: Some(config.stdin),
        labels: Some(all),
        ..ContainerConfig::default()
    };
    let name = format!(
        "k8s_{}_{}_{}_{}_{}",
        m.name, pod.name, pod.namespace, pod.uid, m.attempt
    );
    Ok((
        name,
        ContainerSpec {
            config: spec,
            host_config: host,
            endpoints: HashMap::new(),
            platform: None,
        },
    ))
}

/// The CRI's log file when the kubelet named one; else json-file, so
/// `docker logs` and `crictl logs` still have the output.
fn log_config(path: Option<&Path>) -> LogConfig {
    match path {
        Some(p) => LogConfig {
            typ: Some(CRI_LOG_DRIVER.into()),
            config: Some(HashMap::from([(
                "path".to_string(),
                p.display().to_string(),
            )])),
        },
        None => LogConfig {
            typ: Some("json-file".into()),
            config: None,
        },
    }
}

/// Makes a container in sandbox `sandbox_id`; its id.
pub async fn create(
    engine: &Arc<Engine>,
    sandbox_id: &str,
    config: &pb::ContainerConfig,
    sandbox: &pb::PodSandboxConfig,
) -> Result<String, Status> {
    let v = pods::find(engine, sandbox_id)?;
    if v.record.state.status != RunState::Running {
        return Err(Status::failed_precondition(format!(
            "pod sandbox {sandbox_id} is not ready: a container cannot be created in it"
        )));
    }
    let (name, spec) = container_spec(&pod_of(&v), config, sandbox)?;
    let image = spec.config.image.clone().unwrap_or_default();
    if engine.resolve_image(&image).is_err() {
        return Err(Status::not_found(format!(
            "image {image:?} is not present: pull it first"
        )));
    }
    let (id, _) = engine
        .container_create(Some(&name), spec)
        .await
        .map_err(|e| match e {
            Error::Conflict(_) => Status::already_exists(format!(
                "container {name} already exists (the same metadata and attempt): {e}"
            )),
            e => status(e),
        })?;
    Ok(id)
}

/// The container `id` names (a unique prefix will do).
pub fn find(engine: &Engine, id: &str) -> Result<ContainerView, Status> {
    let not_found = || Status::not_found(format!("container {id} not found"));
    if id.is_empty() {
        return Err(Status::invalid_argument("a container id is required"));
    }
    let v = engine.container_inspect(id, false).map_err(|e| match e {
        Error::NotFound(_) => not_found(),
        e => status(e),
    })?;
    if !v.record.id.starts_with(id) || pods::kind(&v) != Some(labels::CONTAINER) {
        return Err(not_found());
    }
    Ok(v)
}

pub async fn start(engine: &Arc<Engine>, id: &str) -> Result<(), Status> {
    let v = find(engine, id)?;
    engine
        .container_start(&v.record.id)
        .await
        .map_err(|e| match e {
            Error::NotFound(_) => Status::not_found(format!("container {id} not found")),
            e => Status::internal(format!("starting container {id}: {e}")),
        })
}

/// Stops a container; one that is gone or stopped is stopped.
pub async fn stop(engine: &Arc<Engine>, id: &str, timeout: i64) -> Result<(), Status> {
    match find(engine, id) {
        Ok(v) => pods::stop_container(engine, &v.record.id, timeout.max(0)).await,
        Err(s) if s.code() == tonic::Code::NotFound => Ok(()),
        Err(s) => Err(s),
    }
}

/// Removes a container, running or not; one that is gone is removed.
pub async fn remove(engine: &Arc<Engine>, id: &str) -> Result<(), Status> {
    match find(engine, id) {
        Ok(v) => pods::remove_container(engine, &v.record.id).await,
        Err(s) if s.code() == tonic::Code::NotFound => Ok(()),
        Err(s) => Err(s),
    }
}

fn state(r: &ContainerRecord) -> pb::ContainerState {
    match r.state.status {
        RunState::Created => pb::ContainerState::ContainerCreated,
        RunState::Running | RunState::Restarting => pb::ContainerState::ContainerRunning,
        RunState::Exited | RunState::Dead => pb::ContainerState::ContainerExited,
        RunState::Removing => pb::ContainerState::ContainerUnknown,
    }
}

fn metadata(l: &HashMap<String, String>) -> pb::ContainerMetadata {
    pb::ContainerMetadata {
        name: l.get(labels::NAME).cloned().unwrap_or_default(),
        attempt: l
            .get(labels::ATTEMPT)
            .and_then(|a| a.parse().ok())
            .unwrap_or(0),
    }
}

fn image_of(r: &ContainerRecord, l: &HashMap<String, String>) -> pb::ImageSpec {
    pb::ImageSpec {
        image: l.get(IMAGE).cloned().unwrap_or_else(|| r.image.clone()),
        ..Default::default()
    }
}

/// The CRI's summary of a container.
pub fn summary(r: &ContainerRecord) -> pb::Container {
    let l = r.config.labels.clone().unwrap_or_default();
    pb::Container {
        id: r.id.clone(),
        pod_sandbox_id: l.get(labels::SANDBOX_ID).cloned().unwrap_or_default(),
        metadata: Some(metadata(&l)),
        image: Some(image_of(r, &l)),
        image_ref: r.image_id.clone(),
        state: state(r) as i32,
        created_at: pods::nanos(&r.created),
        labels: labels::user_labels(&l),
        annotations: labels::annotations(&l),
        image_id: r.image_id.clone(),
    }
}

/// Why a container is in its state, as containerd words it.
fn reason(v: &ContainerView) -> String {
    let s = &v.record.state;
    match state(&v.record) {
        pb::ContainerState::ContainerExited if s.oom_killed => "OOMKilled".into(),
        pb::ContainerState::ContainerExited if s.exit_code == 0 => "Completed".into(),
        pb::ContainerState::ContainerExited => "Error".into(),
        _ => String::new(),
    }
}

fn status_mounts(v: &ContainerView) -> Vec<pb::Mount> {
    let mounts = v.record.host_config.mounts.clone().unwrap_or_default();
    mounts
        .iter()
        .map(|m| pb::Mount {
            container_path: m.target.clone().unwrap_or_default(),
            host_path: m.source.clone().unwrap_or_default(),
            readonly: m.read_only.unwrap_or(false),
            propagation: match m.bind_options.as_ref().and_then(|b| b.propagation) {
                Some(Propagation::Rslave) | Some(Propagation::Slave) => {
                    pb::MountPropagation::PropagationHostToContainer as i32
                }
                Some(Propagation::Rshared) | Some(Propagation::Shared) => {
                    pb::MountPropagation::PropagationBidirectional as i32
                }
                _ => pb::MountPropagation::PropagationPrivate as i32,
            },
            ..Default::default()
        })
        .collect()
}

/// The CRI's status of a container.
pub fn status_of(v: &ContainerView) -> pb::ContainerStatus {
    let l = v.record.config.labels.clone().unwrap_or_default();
    let s = &v.record.state;
    let exited = state(&v.record) == pb::ContainerState::ContainerExited;
    pb::ContainerStatus {
        id: v.record.id.clone(),
        metadata: Some(metadata(&l)),
        state: state(&v.record) as i32,
        created_at: pods::nanos(&v.record.created),
        started_at: pods::nanos(&s.started_at).max(0),
        finished_at: if exited {
            pods::nanos(&s.finished_at).max(0)
        } else {
            0
        },
        exit_code: if exited { s.exit_code as i32 } else { 0 },
        image: Some(image_of(&v.record, &l)),
        image_ref: v.record.image_id.clone(),
        reason: reason(v),
        message: s.error.clone(),
        labels: labels::user_labels(&l),
        annotations: labels::annotations(&l),
        mounts: status_mounts(v),
        log_path: l.get(LOG_PATH).cloned().unwrap_or_default(),
        resources: None,
        image_id: v.record.image_id.clone(),
        user: None,
        stop_signal: 0,
    }
}

pub fn verbose_info(v: &ContainerView) -> HashMap<String, String> {
    let info = serde_json::json!({
        "pid": v.record.state.pid,
        "name": v.record.name.trim_start_matches('/'),
        "sandboxKey": v.sandbox_key,
        "config": {
            "entrypoint": v.record.config.entrypoint,
            "cmd": v.record.config.cmd,
            "user": v.record.config.user,
        },
    });
    HashMap::from([("info".to_string(), info.to_string())])
}

/// Whether a container passes a ListContainers filter.
pub fn passes(r: &ContainerRecord, f: &pb::ContainerFilter) -> bool {
    let l = r.config.labels.clone().unwrap_or_default();
    let sandbox = l.get(labels::SANDBOX_ID).map(String::as_str).unwrap_or("");
    (f.id.is_empty() || r.id.starts_with(&f.id))
        && (f.pod_sandbox_id.is_empty() || sandbox.starts_with(&f.pod_sandbox_id))
        && f.state.as_ref().is_none_or(|s| s.state == state(r) as i32)
        && labels::selected(&l, &f.label_selector)
}

/// The kubelet moved the log away: a new file is there when this returns,
/// and the container's driver writes to it from its next line on.
pub fn reopen_log(engine: &Engine, id: &str) -> Result<(), Status> {
    let v = find(engine, id)?;
    if v.record.state.status != RunState::Running {
        return Err(Status::failed_precondition(format!(
            "container {id} is not running"
        )));
    }
    let l = v.record.config.labels.clone().unwrap_or_default();
    let Some(path) = l.get(LOG_PATH) else {
        return Err(Status::failed_precondition(format!(
            "container {id} has no CRI log"
        )));
    };
    std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .map(|_| ())
        .map_err(|e| Status::internal(format!("reopening log {path}: {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pod() -> Pod {
        Pod {
            id: "abc".into(),
            name: "web".into(),
            namespace: "ns".into(),
            uid: "u1".into(),
            modes: (0, 0, 0),
            cgroup_parent: None,
        }
    }

    fn config() -> pb::ContainerConfig {
        pb::ContainerConfig {
            metadata: Some(pb::ContainerMetadata {
                name: "app".into(),
                attempt: 3,
            }),
            image: Some(pb::ImageSpec {
                image: "busybox".into(),
                ..Default::default()
            }),
            command: vec!["top".into()],
            log_path: "app/0.log".into(),
            ..Default::default()
        }
    }

    fn sandbox() -> pb::PodSandboxConfig {
        pb::PodSandboxConfig {
            log_directory: "/var/log/pods/ns_web_u1".into(),
            ..Default::default()
        }
    }

    #[test]
    fn a_container_joins_its_pod() {
        let (name, spec) = container_spec(&pod(), &config(), &sandbox()).unwrap();
        assert_eq!(name, "k8s_app_web_ns_u1_3");
        let h = &spec.host_config;
        assert_eq!(h.network_mode.as_deref(), Some("container:abc"));
        assert_eq!(h.pid_mode.as_deref(), Some("container:abc"));
        assert_eq!(h.ipc_mode.as_deref(), Some("container:abc"));
        assert_eq!(spec.config.entrypoint, Some(vec!["top".to_string()]));
        assert_eq!(
            spec.config.cmd, None,
            "command replaces the image's CMD too"
        );
        let log = h.log_config.as_ref().unwrap();
        assert_eq!(log.typ.as_deref(), Some("cri-file"));
        assert_eq!(
            log.config.as_ref().unwrap()["path"],
            "/var/log/pods/ns_web_u1/app/0.log"
        );
    }

    #[test]
    fn namespace_modes_follow_the_context() {
        let mut p = pod();
        p.modes = (NODE, NODE, NODE);
        let (net, pid, ipc) = join_modes(&p, None);
        assert_eq!(
            (net.as_str(), pid.as_deref(), ipc.as_str()),
            ("host", Some("host"), "host")
        );
        let own = pb::NamespaceOption {
            pid: CONTAINER_NS,
            ..Default::default()
        };
        assert_eq!(join_modes(&pod(), Some(&own)).1, None);
        let target = pb::NamespaceOption {
            pid: TARGET,
            target_id: "t1".into(),
            ..Default::default()
        };
        assert_eq!(
            join_modes(&pod(), Some(&target)).1.as_deref(),
            Some("container:t1")
        );
    }

    #[test]
    fn hostile_input_is_refused() {
        let mut c = config();
        c.log_path = "../../etc/cron.d/x".into();
        let e = container_spec(&pod(), &c, &sandbox()).unwrap_err();
        assert_eq!(e.code(), tonic::Code::InvalidArgument);
        let mut c = config();
        c.log_path = "/etc/passwd".into();
        assert!(container_spec(&pod(), &c, &sandbox()).is_err());
        let mut c = config();
        c.mounts = vec![pb::Mount {
            host_path: "relative".into(),
            container_path: "/x".into(),
            ..Default::default()
        }];
        assert!(container_spec(&pod(), &c, &sandbox()).is_err());
        let mut c = config();
        c.linux = Some(pb::LinuxContainerConfig {
            security_context: Some(pb::LinuxContainerSecurityContext {
                run_as_group: Some(pb::Int64Value { value: 5 }),
                ..Default::default()
            }),
            ..Default::default()
        });
        let e = container_spec(&pod(), &c, &sandbox()).unwrap_err();
        assert!(e.message().contains("run_as_group is set without"), "{e}");
        let mut c = config();
        c.metadata = None;
        assert!(container_spec(&pod(), &c, &sandbox()).is_err());
    }

    #[test]
    fn users_and_security_options() {
        let s = pb::LinuxContainerSecurityContext {
            run_as_user: Some(pb::Int64Value { value: 1001 }),
            run_as_group: Some(pb::Int64Value { value: 1002 }),
            no_new_privs: true,
            seccomp: Some(pb::SecurityProfile {
                profile_type: pb::security_profile::ProfileType::Unconfined as i32,
                ..Default::default()
            }),
            ..Default::default()
        };
        assert_eq!(user(&s).unwrap().as_deref(), Some("1001:1002"));
        assert_eq!(
            security_opts(&s).unwrap(),
            ["no-new-privileges", "seccomp=unconfined"]
        );
        let named = pb::LinuxContainerSecurityContext {
            apparmor: Some(pb::SecurityProfile {
                profile_type: pb::security_profile::ProfileType::Localhost as i32,
                localhost_ref: "x".into(),
            }),
            ..Default::default()
        };
        assert!(
            security_opts(&named)
                .unwrap_err()
                .message()
                .contains("AppArmor")
        );
    }
}
