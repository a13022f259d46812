//! Pod sandboxes. A sandbox is a container of the sandbox image (the
//! pause process): it holds the pod's network, IPC and UTS namespaces,
//! and its PID namespace when the pod shares one, and the pod's
//! containers join them. Its record's labels keep the CRI's view of it.

use std::collections::HashMap;
use std::sync::Arc;

use berth_core::container::{
    ContainerConfig, ContainerSpec, HostConfig, LogConfig, PortBinding, RestartPolicy,
    RestartPolicyName,
};
use berth_engine::{
    ContainerRecord, ContainerView, Engine, Error, ListOptions, Status as RunState,
};
use tonic::Status;

use crate::cni::{Cni, PodRequest};
use crate::errors::status;
use crate::labels;
use crate::pb;

/// The sandbox container's name, the kubelet's convention.
fn sandbox_name(m: &pb::PodSandboxMetadata) -> String {
    format!("k8s_POD_{}_{}_{}_{}", m.name, m.namespace, m.uid, m.attempt)
}

fn check_metadata(m: Option<&pb::PodSandboxMetadata>) -> Result<&pb::PodSandboxMetadata, Status> {
    let m = m.ok_or_else(|| Status::invalid_argument("sandbox config must include metadata"))?;
    for (what, v) in [
        ("name", &m.name),
        ("namespace", &m.namespace),
        ("uid", &m.uid),
    ] {
        if v.is_empty() {
            return Err(Status::invalid_argument(format!(
                "sandbox metadata {what} must not be empty"
            )));
        }
        // '_' joins the parts of the container's name: allowing it would
        // let two pods share one name (Kubernetes names have none)
        if !v
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b".-".contains(&b))
        {
            return Err(Status::invalid_argument(format!(
                "sandbox metadata {what} {v:?} may hold only letters, digits, '.' and '-'"
            )));
        }
    }
    Ok(m)
}

/// The namespace modes of a sandbox: (network, pid, ipc).
pub fn modes(config: &pb::PodSandboxConfig) -> (i32, i32, i32) {
    let o = config
        .linux
        .as_ref()
        .and_then(|l| l.security_context.as_ref())
        .and_then(|s| s.namespace_options.as_ref());
    match o {
        Some(o) => (o.network, o.pid, o.ipc),
        None => (0, 0, 0),
    }
}

const NODE: i32 = pb::NamespaceMode::Node as i32;

/// How a sandbox gets its network.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NetMode {
    Host,
    /// berth's default bridge, with berth's port bindings
    Bridge,
    /// a namespace the CNI's plugins wire; their portmap maps host ports
    Cni,
}

impl NetMode {
    fn label(self) -> &'static str {
        match self {
            NetMode::Host => "host",
            NetMode::Bridge => "bridge",
            NetMode::Cni => "cni",
        }
    }
}

/// The sandbox container's spec: what the pod's config asks of the
/// namespaces it holds.
fn sandbox_spec(
    config: &pb::PodSandboxConfig,
    image: &str,
    mode: NetMode,
) -> Result<ContainerSpec, Status> {
    let m = check_metadata(config.metadata.as_ref())?;
    let (_, pid, ipc) = modes(config);
    let net_mode = match mode {
        NetMode::Host => "host",
        NetMode::Bridge => "bridge",
        // the engine joins the namespace the CRI pinned and wired
        NetMode::Cni => "none",
    };
    let mut all = labels::fold(&config.labels, &config.annotations);
    all.insert(labels::KIND.into(), labels::SANDBOX.into());
    all.insert(labels::NAME.into(), m.name.clone());
    all.insert(labels::NAMESPACE.into(), m.namespace.clone());
    all.insert(labels::UID.into(), m.uid.clone());
    all.insert(labels::ATTEMPT.into(), m.attempt.to_string());
    all.insert(
        labels::NAMESPACES.into(),
        format!("{},{pid},{ipc}", modes(config).0),
    );
    all.insert(labels::NETWORK.into(), mode.label().into());
    let linux = config.linux.clone().unwrap_or_default();
    let security = linux.security_context.clone().unwrap_or_default();
    let dns = config.dns_config.clone().unwrap_or_default();
    let mut host = HostConfig {
        network_mode: Some(net_mode.into()),
        pid_mode: (pid == NODE).then(|| "host".into()),
        ipc_mode: Some(if ipc == NODE { "host" } else { "shareable" }.into()),
        cgroup_parent: Some(linux.cgroup_parent.clone()).filter(|p| !p.is_empty()),
        sysctls: Some(linux.sysctls.clone()).filter(|s| !s.is_empty()),
        privileged: Some(security.privileged),
        readonly_rootfs: Some(security.readonly_rootfs),
        dns: Some(dns.servers).filter(|v| !v.is_empty()),
        dns_search: Some(dns.searches).filter(|v| !v.is_empty()),
        dns_options: Some(dns.options).filter(|v| !v.is_empty()),
        log_config: Some(LogConfig {
            typ: Some("none".into()),
            config: None,
        }),
        restart_policy: Some(RestartPolicy {
            name: Some(RestartPolicyName::No),
            maximum_retry_count: None,
        }),
        ..HostConfig::default()
    };
    let (exposed, bindings) = port_mappings(&config.port_mappings)?;
    if mode == NetMode::Bridge && !bindings.is_empty() {
        host.port_bindings = Some(bindings);
    }
    if security.run_as_group.is_some() && security.run_as_user.is_none() {
        return Err(Status::invalid_argument(
            "run_as_group is set without run_as_user",
        ));
    }
    let user = security.run_as_user.map(|u| match security.run_as_group {
        Some(g) => format!("{}:{}", u.value, g.value),
        None => u.value.to_string(),
    });
    let config = ContainerConfig {
        image: Some(image.to_string()),
        // a host-network pod has the node's name
        hostname: Some(config.hostname.clone()).filter(|h| !h.is_empty() && mode != NetMode::Host),
        user,
        labels: Some(all),
        exposed_ports: Some(exposed).filter(|e| !e.is_empty()),
        ..ContainerConfig::default()
    };
    Ok(ContainerSpec {
        config,
        host_config: host,
        endpoints: HashMap::new(),
        platform: None,
    })
}

/// A port mapping's protocol in lower case, as Docker and CNI spell it.
fn protocol_name(p: &pb::PortMapping) -> &'static str {
    match pb::Protocol::try_from(p.protocol) {
        Ok(pb::Protocol::Udp) => "udp",
        Ok(pb::Protocol::Sctp) => "sctp",
        _ => "tcp",
    }
}

/// The CRI's port mappings as Docker's exposed ports and bindings; a
/// mapping without a host port only exposes.
fn port_mappings(
    ports: &[pb::PortMapping],
) -> Result<(Vec<String>, berth_core::container::PortMap), Status> {
    let mut exposed = Vec::new();
    let mut bindings = berth_core::container::PortMap::new();
    for p in ports {
        if !(1..=65535).contains(&p.container_port) || !(0..=65535).contains(&p.host_port) {
            return Err(Status::invalid_argument(format!(
                "invalid port mapping {}:{}: ports are 1-65535",
                p.host_port, p.container_port
            )));
        }
        let proto = protocol_name(p);
        let key = format!("{}/{proto}", p.container_port);
        exposed.push(key.clone());
        if p.host_port > 0 {
            let binding = PortBinding {
                host_ip: Some(p.host_ip.clone()).filter(|h| !h.is_empty()),
                host_port: Some(p.host_port.to_string()),
            };
            bindings
                .entry(key)
                .or_insert_with(|| Some(Vec::new()))
                .get_or_insert_with(Vec::new)
                .push(binding);
        }
    }
    Ok((exposed, bindings))
}

/// Makes and starts a sandbox; its id. On a CNI network the plugins wire
/// its namespace before its infra process starts, as in containerd.
pub async fn run(
    engine: &Arc<Engine>,
    cni: &Cni,
    config: &pb::PodSandboxConfig,
    runtime_handler: &str,
) -> Result<String, Status> {
    check_handler(runtime_handler)?;
    let m = check_metadata(config.metadata.as_ref())?;
    let name = sandbox_name(m);
    let network = if modes(config).0 == NODE {
        None
    } else {
        cni.network().map_err(|e| {
            Status::failed_precondition(format!(
                "failed to setup network for sandbox {name}: cni config: {e:#}"
            ))
        })?
    };
    let mode = match (&network, modes(config).0 == NODE) {
        (_, true) => NetMode::Host,
        (Some(_), false) => NetMode::Cni,
        (None, false) => NetMode::Bridge,
    };
    let image = engine.config().settings.cri_sandbox_image.clone();
    let spec = sandbox_spec(config, &image, mode)?;
    crate::images::ensure(engine, &image).await?;
    let made = match mode {
        NetMode::Cni => engine.pod_sandbox_create(Some(&name), spec).await,
        _ => engine.container_create(Some(&name), spec).await,
    };
    let (id, _) = made.map_err(|e| match e {
        Error::Conflict(_) => Status::already_exists(format!(
            "sandbox {name} already exists (the same metadata and attempt): {e}"
        )),
        e => status(e),
    })?;
    if let Some(list) = &network {
        let pod = cni_request(m, config);
        if let Err(e) = cni.attach(&id, list, &pod).await {
            let _ = engine.container_remove(&id, true, false).await;
            return Err(Status::internal(format!(
                "failed to setup network for sandbox {name}: {e:#}"
            )));
        }
    }
    if let Err(e) = engine.container_start(&id).await {
        let _ = engine.container_remove(&id, true, false).await;
        if let Err(e) = cni.detach(&id).await {
            tracing::warn!(sandbox = %&id[..12], error = %format!("{e:#}"), "releasing a failed pod's network");
        }
        return Err(Status::internal(format!("starting sandbox {name}: {e}")));
    }
    Ok(id)
}

/// What the CNI's plugins are told of a pod: its names, and its host
/// ports and DNS as capability arguments.
fn cni_request<'a>(m: &'a pb::PodSandboxMetadata, config: &pb::PodSandboxConfig) -> PodRequest<'a> {
    let port_mappings = config
        .port_mappings
        .iter()
        // a mapping without a host port only documents the port
        .filter(|p| p.host_port > 0)
        .map(|p| {
            serde_json::json!({
                "hostPort": p.host_port,
                "containerPort": p.container_port,
                "protocol": protocol_name(p),
                "hostIP": p.host_ip,
            })
        })
        .collect();
    let dns = config.dns_config.as_ref().map(
        |d| serde_json::json!({"servers": d.servers, "searches": d.searches, "options": d.options}),
    );
    PodRequest {
        name: &m.name,
        namespace: &m.namespace,
        uid: &m.uid,
        port_mappings,
        dns,
    }
}

/// The one runtime handler berth has is the default one.
pub fn check_handler(handler: &str) -> Result<(), Status> {
    if handler.is_empty() || handler == "runc" {
        return Ok(());
    }
    Err(Status::invalid_argument(format!(
        "unknown runtime handler {handler:?}: berth has only the default one"
    )))
}

/// The sandbox `id` names (a unique prefix will do), as recorded.
pub fn find(engine: &Engine, id: &str) -> Result<ContainerView, Status> {
    let not_found = || Status::not_found(format!("pod sandbox {id} not found"));
    if id.is_empty() {
        return Err(Status::invalid_argument("a pod sandbox id is required"));
    }
    let v = engine.container_inspect(id, false).map_err(|e| match e {
        Error::NotFound(_) => not_found(),
        e => status(e),
    })?;
    if !v.record.id.starts_with(id) || kind(&v) != Some(labels::SANDBOX) {
        return Err(not_found());
    }
    Ok(v)
}

fn record_labels(r: &ContainerRecord) -> HashMap<String, String> {
    r.config.labels.clone().unwrap_or_default()
}

pub fn kind(v: &ContainerView) -> Option<&str> {
    v.record
        .config
        .labels
        .as_ref()
        .and_then(|l| l.get(labels::KIND))
        .map(String::as_str)
}

/// Every container record of `kind`.
pub fn all_of(engine: &Engine, kind: &str) -> Result<Vec<ContainerView>, Status> {
    engine.container_list(&of_kind(kind)).map_err(status)
}

/// The records alone, for the lists: a view's paths and networks are more
/// than a summary needs.
pub fn records_of(engine: &Engine, kind: &str) -> Result<Vec<ContainerRecord>, Status> {
    engine.container_records(&of_kind(kind)).map_err(status)
}

fn of_kind(kind: &str) -> ListOptions {
    ListOptions {
        all: true,
        limit: None,
        filters: HashMap::from([(
            "label".to_string(),
            vec![format!("{}={kind}", labels::KIND)],
        )]),
        size: false,
    }
}

/// The containers of sandbox `id`.
pub fn members(engine: &Engine, id: &str) -> Result<Vec<ContainerView>, Status> {
    Ok(all_of(engine, labels::CONTAINER)?
        .into_iter()
        .filter(|v| {
            record_labels(&v.record)
                .get(labels::SANDBOX_ID)
                .map(String::as_str)
                == Some(id)
        })
        .collect())
}

/// Stops the sandbox's containers, then its infra process (which frees
/// its address), then runs the CNI's DEL. A sandbox that is not there is
/// stopped.
pub async fn stop(engine: &Arc<Engine>, cni: &Cni, id: &str) -> Result<(), Status> {
    let v = match find(engine, id) {
        Ok(v) => v,
        // removed behind the CRI's back: a DEL that failed then is retried
        Err(s) if s.code() == tonic::Code::NotFound => return release_gone(cni, id).await,
        Err(s) => return Err(s),
    };
    for c in members(engine, &v.record.id)? {
        stop_container(engine, &c.record.id, 0).await?;
    }
    stop_container(engine, &v.record.id, 0).await?;
    release_network(cni, &v.record.id).await
}

/// The DEL of a sandbox that is gone, when the kubelet names it by its full
/// id (a record is kept under nothing else).
async fn release_gone(cni: &Cni, id: &str) -> Result<(), Status> {
    if id.len() == 64 && id.bytes().all(|b| b.is_ascii_hexdigit()) {
        release_network(cni, id).await
    } else {
        Ok(())
    }
}

/// The CNI's DEL for a sandbox; an error the kubelet retries on.
async fn release_network(cni: &Cni, id: &str) -> Result<(), Status> {
    cni.detach(id)
        .await
        .map_err(|e| Status::internal(format!("failed to destroy network for sandbox {id}: {e:#}")))
}

/// Stops a container; one that is not running is stopped.
pub async fn stop_container(engine: &Engine, id: &str, timeout: i64) -> Result<(), Status> {
    match engine.container_stop(id, Some(timeout), None).await {
        Ok(()) | Err(Error::NotModified(_)) | Err(Error::NotFound(_)) => Ok(()),
        Err(e) => Err(status(e)),
    }
}

/// Removes the sandbox's containers and the sandbox, running or not,
/// with its network released first.
pub async fn remove(engine: &Arc<Engine>, cni: &Cni, id: &str) -> Result<(), Status> {
    let v = match find(engine, id) {
        Ok(v) => v,
        // removed behind the CRI's back: a DEL that failed then is retried
        Err(s) if s.code() == tonic::Code::NotFound => return release_gone(cni, id).await,
        Err(s) => return Err(s),
    };
    for c in members(engine, &v.record.id)? {
        remove_container(engine, &c.record.id).await?;
    }
    stop_container(engine, &v.record.id, 0).await?;
    release_network(cni, &v.record.id).await?;
    remove_container(engine, &v.record.id).await
}

pub async fn remove_container(engine: &Engine, id: &str) -> Result<(), Status> {
    match engine.container_remove(id, true, false).await {
        Ok(()) | Err(Error::NotFound(_)) => Ok(()),
        Err(e) => Err(status(e)),
    }
}

/// Nanoseconds since the epoch of an RFC 3339 time; 0 when unset.
pub fn nanos(rfc3339: &str) -> i64 {
    chrono::DateTime::parse_from_rfc3339(rfc3339)
        .ok()
        .and_then(|t| t.timestamp_nanos_opt())
        .unwrap_or(0)
}

fn metadata(l: &HashMap<String, String>) -> pb::PodSandboxMetadata {
    let get = |k: &str| l.get(k).cloned().unwrap_or_default();
    pb::PodSandboxMetadata {
        name: get(labels::NAME),
        uid: get(labels::UID),
        namespace: get(labels::NAMESPACE),
        attempt: get(labels::ATTEMPT).parse().unwrap_or(0),
    }
}

fn state(r: &ContainerRecord) -> pb::PodSandboxState {
    if r.state.status == RunState::Running {
        pb::PodSandboxState::SandboxReady
    } else {
        pb::PodSandboxState::SandboxNotready
    }
}

/// The CRI's summary of a sandbox.
pub fn summary(r: &ContainerRecord) -> pb::PodSandbox {
    let l = record_labels(r);
    pb::PodSandbox {
        id: r.id.clone(),
        metadata: Some(metadata(&l)),
        state: state(r) as i32,
        created_at: nanos(&r.created),
        labels: labels::user_labels(&l),
        annotations: labels::annotations(&l),
        runtime_handler: String::new(),
    }
}

/// The CRI's status of a sandbox: its address on the pod network, its
/// namespace modes. A CNI pod's addresses are its record's: kept while
/// the network is, even when its infra process died, as containerd
/// reports them.
pub fn status_of(engine: &Engine, v: &ContainerView) -> pb::PodSandboxStatus {
    let cni = crate::cni::record_of(engine, &v.record.id);
    let l = record_labels(&v.record);
    let mut parts = l
        .get(labels::NAMESPACES)
        .map(|s| {
            s.split(',')
                .map(|n| n.parse().unwrap_or(0))
                .collect::<Vec<i32>>()
        })
        .unwrap_or_default();
    parts.resize(3, 0);
    let ip = v
        .networks
        .iter()
        .map(|n| n.endpoint.ip.clone())
        .find(|ip| !ip.is_empty())
        .unwrap_or_default();
    let running = v.record.state.status == RunState::Running;
    // as containerd: no address once the namespace is gone
    let pinned = cni.is_some() && engine.pod_netns(&v.record.id).is_some();
    let (ip, additional_ips) = match &cni {
        Some(_) if !pinned => (String::new(), Vec::new()),
        Some(n) => (
            n.ips.first().cloned().unwrap_or_default(),
            n.ips
                .iter()
                .skip(1)
                .map(|ip| pb::PodIp { ip: ip.clone() })
                .collect(),
        ),
        // a stopped sandbox has given its address back
        None => (if running { ip } else { String::new() }, Vec::new()),
    };
    pb::PodSandboxStatus {
        id: v.record.id.clone(),
        metadata: Some(metadata(&l)),
        state: state(&v.record) as i32,
        created_at: nanos(&v.record.created),
        network: Some(pb::PodSandboxNetworkStatus { ip, additional_ips }),
        linux: Some(pb::LinuxPodSandboxStatus {
            namespaces: Some(pb::Namespace {
                options: Some(pb::NamespaceOption {
                    network: parts[0],
                    pid: parts[1],
                    ipc: parts[2],
                    ..Default::default()
                }),
            }),
        }),
        labels: labels::user_labels(&l),
        annotations: labels::annotations(&l),
        runtime_handler: String::new(),
    }
}

/// What `verbose` adds: the infra process and where its namespaces are.
pub fn verbose_info(v: &ContainerView) -> HashMap<String, String> {
    let info = serde_json::json!({
        "pid": v.record.state.pid,
        "image": v.record.config.image,
        "sandboxKey": v.sandbox_key,
        "name": v.record.name.trim_start_matches('/'),
    });
    HashMap::from([("info".to_string(), info.to_string())])
}

/// Whether a sandbox passes a ListPodSandbox filter.
pub fn passes(r: &ContainerRecord, f: &pb::PodSandboxFilter) -> bool {
    (f.id.is_empty() || r.id.starts_with(&f.id))
        && f.state.as_ref().is_none_or(|s| s.state == state(r) as i32)
        && labels::selected(&record_labels(r), &f.label_selector)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config() -> pb::PodSandboxConfig {
        pb::PodSandboxConfig {
            metadata: Some(pb::PodSandboxMetadata {
                name: "web".into(),
                uid: "u-1".into(),
                namespace: "default".into(),
                attempt: 2,
            }),
            hostname: "web-0".into(),
            port_mappings: vec![
                pb::PortMapping {
                    container_port: 80,
                    host_port: 8080,
                    ..Default::default()
                },
                pb::PortMapping {
                    container_port: 53,
                    protocol: pb::Protocol::Udp as i32,
                    ..Default::default()
                },
            ],
            ..Default::default()
        }
    }

    #[test]
    fn a_sandbox_spec_holds_the_pods_settings() {
        let spec = sandbox_spec(&config(), "pause:1", NetMode::Bridge).unwrap();
        assert_eq!(
            sandbox_name(config().metadata.as_ref().unwrap()),
            "k8s_POD_web_default_u-1_2"
        );
        assert_eq!(spec.config.hostname.as_deref(), Some("web-0"));
        assert_eq!(spec.host_config.network_mode.as_deref(), Some("bridge"));
        assert_eq!(spec.host_config.ipc_mode.as_deref(), Some("shareable"));
        let bindings = spec.host_config.port_bindings.unwrap();
        assert_eq!(
            bindings.len(),
            1,
            "a port without a host port is only exposed"
        );
        assert_eq!(
            bindings["80/tcp"].as_ref().unwrap()[0].host_port.as_deref(),
            Some("8080")
        );
        let mut exposed = spec.config.exposed_ports.unwrap();
        exposed.sort();
        assert_eq!(exposed, ["53/udp", "80/tcp"]);
        let l = spec.config.labels.unwrap();
        assert_eq!(l[labels::KIND], labels::SANDBOX);
        assert_eq!(l[labels::ATTEMPT], "2");
    }

    #[test]
    fn host_network_pods_have_the_nodes_name() {
        let mut c = config();
        c.linux = Some(pb::LinuxPodSandboxConfig {
            security_context: Some(pb::LinuxSandboxSecurityContext {
                namespace_options: Some(pb::NamespaceOption {
                    network: NODE,
                    pid: NODE,
                    ipc: NODE,
                    ..Default::default()
                }),
                ..Default::default()
            }),
            ..Default::default()
        });
        let spec = sandbox_spec(&c, "pause:1", NetMode::Host).unwrap();
        assert_eq!(spec.host_config.network_mode.as_deref(), Some("host"));
        assert_eq!(spec.host_config.pid_mode.as_deref(), Some("host"));
        assert_eq!(spec.host_config.ipc_mode.as_deref(), Some("host"));
        assert_eq!(spec.config.hostname, None);
        assert_eq!(spec.host_config.port_bindings, None);
    }

    #[test]
    fn bad_sandbox_configs_are_refused() {
        let mut c = config();
        c.metadata.as_mut().unwrap().name = String::new();
        assert_eq!(
            sandbox_spec(&c, "p", NetMode::Bridge).unwrap_err().code(),
            tonic::Code::InvalidArgument
        );
        let mut c = config();
        c.metadata.as_mut().unwrap().uid = "../../x".into();
        assert_eq!(
            sandbox_spec(&c, "p", NetMode::Bridge).unwrap_err().code(),
            tonic::Code::InvalidArgument
        );
        let mut c = config();
        c.metadata.as_mut().unwrap().namespace = "a_b".into();
        assert_eq!(
            sandbox_spec(&c, "p", NetMode::Bridge).unwrap_err().code(),
            tonic::Code::InvalidArgument
        );
        let mut c = config();
        c.port_mappings[0].container_port = 70000;
        assert_eq!(
            sandbox_spec(&c, "p", NetMode::Bridge).unwrap_err().code(),
            tonic::Code::InvalidArgument
        );
        assert!(check_handler("kata").is_err());
        assert!(check_handler("").is_ok());
    }
}
