//! Services and tasks in Docker's JSON. A service spec keeps the API's
//! names in berth's store (as container records do), so reading one is a
//! typed parse; answers add what dockerd always shows (`Runtime`,
//! `ForceUpdate`, the endpoint's mode).

use std::collections::HashMap;

use berth_swarm_manager::ServiceView;
use berth_swarm_store::{Meta, ModeKind, ServiceSpec, Task, TaskState};
use chrono::SecondsFormat;
use serde_json::{Value, json};

fn time(t: &chrono::DateTime<chrono::Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Nanos, true)
}

fn meta(a: &mut Value, m: &Meta) {
    a["Version"] = json!({ "Index": m.version });
    a["CreatedAt"] = json!(time(&m.created_at));
    a["UpdatedAt"] = json!(time(&m.updated_at));
}

/// `?version=` of a service update, in dockerd's words.
pub fn service_version(raw: &str) -> Result<u64, String> {
    raw.parse::<u64>().map_err(|_| {
        format!(
            "invalid service version '{raw}': strconv.ParseUint: parsing {raw:?}: invalid syntax"
        )
    })
}

/// The task template as dockerd shows it.
fn task_spec_answer(spec: &berth_swarm_store::TaskSpec) -> Value {
    let mut v = serde_json::to_value(spec).unwrap_or_else(|_| json!({}));
    v["ForceUpdate"] = json!(spec.force_update);
    if v.get("Runtime").is_none() {
        v["Runtime"] = json!("container");
    }
    if let Some(c) = v.get_mut("ContainerSpec")
        && c.get("Isolation").is_none()
    {
        c["Isolation"] = json!("default");
    }
    v
}

pub fn spec_answer(s: &ServiceSpec) -> Value {
    let mut v = serde_json::to_value(s).unwrap_or_else(|_| json!({}));
    v["TaskTemplate"] = task_spec_answer(&s.task_template);
    if v.get("EndpointSpec").is_none() {
        v["EndpointSpec"] = json!({ "Mode": "vip" });
    }
    if s.labels.is_empty() {
        v["Labels"] = json!({});
    }
    v
}

/// What answers add for show (`Runtime: container`, `Isolation:
/// default`) comes back in the spec a client read and returns: it is not
/// a change, and must not make every task look out of date.
pub fn drop_shown_defaults(s: &mut ServiceSpec) {
    let t = &mut s.task_template;
    if t.extra.get("Runtime").and_then(Value::as_str) == Some("container") {
        t.extra.remove("Runtime");
    }
    if let Some(c) = &mut t.container_spec
        && c.extra.get("Isolation").and_then(Value::as_str) == Some("default")
    {
        c.extra.remove("Isolation");
    }
}

/// swarmkit's `InterpolateService`: what `?insertDefaults=true` shows
/// for fields the spec leaves out.
pub fn insert_defaults(s: &mut ServiceSpec) {
    use berth_swarm_store::{Placement, ResourceRequirements, RestartPolicy, UpdateConfig};
    let t = &mut s.task_template;
    if let Some(c) = &mut t.container_spec {
        c.stop_grace_period.get_or_insert(10_000_000_000);
    }
    t.resources
        .get_or_insert_with(ResourceRequirements::default);
    let r = t.restart_policy.get_or_insert_with(|| RestartPolicy {
        condition: Some("any".into()),
        ..RestartPolicy::default()
    });
    r.delay.get_or_insert(5_000_000_000);
    t.placement.get_or_insert_with(Placement::default);
    let default_update = || UpdateConfig {
        parallelism: 1,
        failure_action: Some("pause".into()),
        monitor: Some(5_000_000_000),
        max_failure_ratio: Some(0.0),
        order: Some("stop-first".into()),
        delay: None,
    };
    if s.mode.is_job() {
        return;
    }
    s.update_config
        .get_or_insert_with(default_update)
        .monitor
        .get_or_insert(5_000_000_000);
    s.rollback_config
        .get_or_insert_with(default_update)
        .monitor
        .get_or_insert(5_000_000_000);
}

pub fn service_answer(view: &ServiceView, with_status: bool) -> Value {
    let s = &view.service;
    let mut a = json!({ "ID": s.id });
    meta(&mut a, &s.meta);
    a["Spec"] = spec_answer(&s.spec);
    if let Some(p) = &s.previous_spec {
        a["PreviousSpec"] = spec_answer(p);
    }
    let endpoint_spec = s
        .spec
        .endpoint_spec
        .as_ref()
        .and_then(|e| serde_json::to_value(e).ok())
        .unwrap_or_else(|| json!({ "Mode": "vip" }));
    let mut endpoint = json!({ "Spec": endpoint_spec });
    if !s.endpoint.ports.is_empty() {
        endpoint["Ports"] = json!(s.endpoint.ports);
    }
    if !s.endpoint.virtual_ips.is_empty() {
        endpoint["VirtualIPs"] = s
            .endpoint
            .virtual_ips
            .iter()
            .map(|v| json!({ "NetworkID": v.network_id, "Addr": v.addr }))
            .collect();
    }
    a["Endpoint"] = endpoint;
    if let Some(u) = &s.update_status {
        let mut us = json!({ "State": u.state, "Message": u.message });
        if let Some(t) = &u.started_at {
            us["StartedAt"] = json!(time(t));
        }
        if let Some(t) = &u.completed_at {
            us["CompletedAt"] = json!(time(t));
        }
        a["UpdateStatus"] = us;
    }
    if s.spec.mode.is_job() {
        a["JobStatus"] = json!({
            "JobIteration": { "Index": s.job_iteration },
            "LastExecution": time(&s.meta.updated_at),
        });
    }
    if with_status {
        a["ServiceStatus"] = json!({
            "RunningTasks": view.running,
            "DesiredTasks": view.desired,
            "CompletedTasks": view.completed,
        });
    }
    a
}

/// A live task's host-mode ports, as its node binds them (`service ps`
/// shows them). A port published as 0 is bound to a random one the
/// managers are not told of, and is left out.
fn port_status(t: &Task) -> Value {
    let live = t.status.state <= berth_swarm_store::TaskState::Running;
    let ports: Vec<&berth_swarm_store::PortConfig> = t
        .ports
        .iter()
        .filter(|p| p.publish_mode.as_deref() == Some("host"))
        .filter(|p| p.published_port.is_some_and(|n| n > 0))
        .collect();
    if !live || ports.is_empty() {
        return json!({});
    }
    json!({ "Ports": ports })
}

pub fn task_answer(t: &Task) -> Value {
    let mut a = json!({ "ID": t.id, "Labels": {} });
    meta(&mut a, &t.meta);
    a["Spec"] = task_spec_answer(&t.spec);
    a["ServiceID"] = json!(t.service_id);
    if t.slot > 0 {
        a["Slot"] = json!(t.slot);
    }
    if !t.node_id.is_empty() {
        a["NodeID"] = json!(t.node_id);
    }
    let st = &t.status;
    let mut status = json!({
        "Timestamp": st.timestamp.as_ref().map(time).unwrap_or_else(|| time(&t.meta.updated_at)),
        "State": st.state.as_str(),
        "Message": st.message,
        "PortStatus": port_status(t),
    });
    if !st.err.is_empty() {
        status["Err"] = json!(st.err);
    }
    if !st.container_id.is_empty() {
        status["ContainerStatus"] = json!({
            "ContainerID": st.container_id,
            "PID": st.pid,
            "ExitCode": st.exit_code.unwrap_or(0),
        });
    }
    a["Status"] = status;
    a["DesiredState"] = json!(t.desired_state.as_str());
    if !t.networks.is_empty() {
        a["NetworksAttachments"] = t
            .networks
            .iter()
            .map(|n| json!({ "Network": { "ID": n.network_id }, "Addresses": n.addresses }))
            .collect();
    }
    if let Some(i) = t.job_iteration {
        a["JobIteration"] = json!({ "Index": i });
    }
    a
}

/// `GET /services` filters (dockerd's `newListServicesFilters`).
pub struct ServiceFilters {
    f: HashMap<String, Vec<String>>,
}

impl ServiceFilters {
    pub fn parse(f: HashMap<String, Vec<String>>) -> Result<ServiceFilters, String> {
        const ACCEPTED: [&str; 5] = ["id", "label", "mode", "name", "runtime"];
        if let Some(k) = f.keys().find(|k| !ACCEPTED.contains(&k.as_str())) {
            return Err(format!("invalid filter '{k}'"));
        }
        if let Some(modes) = f.get("mode") {
            let known = ["replicated", "global", "replicated-job", "global-job"];
            if let Some(m) = modes.iter().find(|m| !known.contains(&m.as_str())) {
                return Err(format!("invalid filter 'mode={m}'"));
            }
        }
        Ok(ServiceFilters { f })
    }

    pub fn matches(&self, v: &ServiceView) -> bool {
        let s = &v.service;
        let any = |key: &str, test: &dyn Fn(&str) -> bool| {
            self.f
                .get(key)
                .is_none_or(|vals| vals.iter().any(|x| test(x)))
        };
        any("id", &|x| s.id.starts_with(x))
            && any("name", &|x| s.spec.name.starts_with(x))
            && any("mode", &|x| mode_name(s.spec.mode.kind()) == x)
            && any("runtime", &|x| x == "container")
            && self.labels_match(&s.spec.labels)
    }

    fn labels_match(&self, labels: &std::collections::BTreeMap<String, String>) -> bool {
        self.f.get("label").is_none_or(|want| {
            want.iter().all(|l| match l.split_once('=') {
                Some((k, v)) => labels.get(k).is_some_and(|x| x == v),
                None => labels.contains_key(l.as_str()),
            })
        })
    }
}

pub fn mode_name(m: ModeKind) -> &'static str {
    match m {
        ModeKind::Replicated(_) => "replicated",
        ModeKind::Global => "global",
        ModeKind::ReplicatedJob { .. } => "replicated-job",
        ModeKind::GlobalJob => "global-job",
    }
}

/// `GET /tasks` filters; `service` and `node` were resolved to ids
/// (dockerd resolves names) by the caller.
pub struct TaskFilters {
    pub f: HashMap<String, Vec<String>>,
}

impl TaskFilters {
    pub fn matches(&self, t: &Task, service_name: &str) -> bool {
        let any = |key: &str, test: &dyn Fn(&str) -> bool| {
            self.f
                .get(key)
                .is_none_or(|vals| vals.iter().any(|x| test(x)))
        };
        let name = if t.slot > 0 {
            format!("{service_name}.{}", t.slot)
        } else {
            format!("{service_name}.{}", t.node_id)
        };
        any("id", &|x| t.id.starts_with(x))
            && any("name", &|x| name.starts_with(x))
            && any("service", &|x| t.service_id == x)
            && any("node", &|x| t.node_id == x)
            && any("desired-state", &|x| desired_matches(t.desired_state, x))
            && any("runtime", &|x| x == "container")
            && self.f.get("label").is_none_or(|want| {
                want.iter().all(|l| match l.split_once('=') {
                    Some((k, v)) => t.service_labels.get(k).is_some_and(|x| x == v),
                    None => t.service_labels.contains_key(l.as_str()),
                })
            })
    }
}

/// dockerd's desired-state filter: the exact state.
fn desired_matches(d: TaskState, want: &str) -> bool {
    TaskState::parse(want) == Some(d)
}

/// dockerd takes only `running`, `shutdown` and `accepted`.
pub fn check_desired_state(f: &HashMap<String, Vec<String>>) -> Result<(), String> {
    let known = ["running", "shutdown", "accepted"];
    match f
        .get("desired-state")
        .and_then(|v| v.iter().find(|x| !known.contains(&x.as_str())))
    {
        Some(x) => Err(format!("Invalid desired-state filter: '{x}'")),
        None => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use berth_swarm_store::{ContainerSpec, Service, TaskSpec};

    fn view() -> ServiceView {
        let spec: ServiceSpec = serde_json::from_value(json!({
            "Name": "web",
            "TaskTemplate": { "ContainerSpec": { "Image": "busybox", "Args": ["sleep", "9"] } },
            "Mode": { "Replicated": { "Replicas": 3 } }
        }))
        .unwrap();
        ServiceView {
            service: Service {
                id: "s1".into(),
                spec,
                ..Service::default()
            },
            running: 2,
            desired: 3,
            completed: 0,
        }
    }

    #[test]
    fn a_service_reads_as_bollards_model() {
        let json = service_answer(&view(), true);
        let m: bollard_stubs::models::Service = serde_json::from_value(json).unwrap();
        let spec = m.spec.unwrap();
        assert_eq!(spec.name.as_deref(), Some("web"));
        let replicas = spec.mode.unwrap().replicated.unwrap().replicas;
        assert_eq!(replicas, Some(3));
        let status = m.service_status.unwrap();
        assert_eq!(
            (status.running_tasks, status.desired_tasks),
            (Some(2), Some(3))
        );
        let c = spec.task_template.unwrap().container_spec.unwrap();
        assert_eq!(c.args.unwrap(), ["sleep", "9"]);
    }

    #[test]
    fn a_task_reads_as_bollards_model() {
        let mut t = Task {
            id: "t1".into(),
            service_id: "s1".into(),
            slot: 2,
            node_id: "n1".into(),
            desired_state: TaskState::Running,
            spec: TaskSpec {
                container_spec: Some(ContainerSpec {
                    image: "busybox".into(),
                    ..ContainerSpec::default()
                }),
                ..TaskSpec::default()
            },
            ..Task::default()
        };
        t.status.state = TaskState::Failed;
        t.status.err = "task: non-zero exit (1)".into();
        t.status.container_id = "c1".into();
        t.status.exit_code = Some(1);
        let m: bollard_stubs::models::Task = serde_json::from_value(task_answer(&t)).unwrap();
        assert_eq!(m.slot, Some(2));
        assert_eq!(
            m.status.as_ref().unwrap().err.as_deref(),
            Some("task: non-zero exit (1)")
        );
        let cs = m.status.unwrap().container_status.unwrap();
        assert_eq!(cs.exit_code, Some(1));
    }

    #[test]
    fn filters_are_checked_and_matched_as_dockerd_does() {
        let bad = ServiceFilters::parse(HashMap::from([("colour".into(), vec!["x".into()])]));
        assert_eq!(bad.err().unwrap(), "invalid filter 'colour'");
        let f = ServiceFilters::parse(HashMap::from([("mode".into(), vec!["replicated".into()])]))
            .unwrap();
        assert!(f.matches(&view()));
        let f = ServiceFilters::parse(HashMap::from([("name".into(), vec!["we".into()])])).unwrap();
        assert!(f.matches(&view()), "names match by prefix");
    }
}
