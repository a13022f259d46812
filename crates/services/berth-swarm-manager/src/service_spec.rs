//! A service spec checked as swarmkit's control API checks it (and, for
//! the mode, as dockerd's conversion does), in their order and words.

use berth_swarm_store::{BlobKind, ServiceSpec, UpdateConfig};

use crate::SwarmError;
use crate::orchestrator::constraints;

fn invalid(desc: impl Into<String>) -> SwarmError {
    SwarmError::Rpc {
        code: "InvalidArgument",
        desc: desc.into(),
    }
}

pub fn validate(spec: &ServiceSpec) -> Result<(), SwarmError> {
    modes_set(spec)?;
    name(&spec.name)?;
    task(spec)?;
    if spec.mode.is_job() {
        if spec.update_config.is_some() {
            return Err(invalid("Jobs may not have an update config"));
        }
    } else {
        update(spec.update_config.as_ref())?;
    }
    endpoint(spec)
}

/// dockerd refuses a spec with two modes before swarmkit sees it.
fn modes_set(spec: &ServiceSpec) -> Result<(), SwarmError> {
    let m = &spec.mode;
    let set = [
        m.replicated.is_some(),
        m.global.is_some(),
        m.replicated_job.is_some(),
        m.global_job.is_some(),
    ];
    if set.iter().filter(|s| **s).count() > 1 {
        return Err(SwarmError::InvalidArgument(
            "must specify only one service mode".into(),
        ));
    }
    Ok(())
}

fn name(n: &str) -> Result<(), SwarmError> {
    if n.is_empty() {
        return Err(invalid("meta: name must be provided"));
    }
    if !valid_dns_component(n) {
        return Err(invalid("name must be valid as a DNS name component"));
    }
    if n.len() > 63 {
        return Err(invalid("name must be 63 characters or fewer"));
    }
    Ok(())
}

/// swarmkit's `^[a-zA-Z0-9](?:[-_]*[A-Za-z0-9]+)*$`.
fn valid_dns_component(n: &str) -> bool {
    let bytes = n.as_bytes();
    let alnum = |c: &u8| c.is_ascii_alphanumeric();
    bytes.first().is_some_and(alnum)
        && bytes.last().is_some_and(alnum)
        && bytes.iter().all(|c| alnum(c) || *c == b'-' || *c == b'_')
}

fn task(spec: &ServiceSpec) -> Result<(), SwarmError> {
    let t = &spec.task_template;
    if let Some(r) = &t.resources {
        for res in [&r.limits, &r.reservations].into_iter().flatten() {
            if res.nano_cpus != 0 && res.nano_cpus < 1_000_000 {
                return Err(invalid(format!(
                    "invalid cpu value {}: Must be at least 0.001",
                    res.nano_cpus as f64 / 1e9
                )));
            }
            if res.memory_bytes != 0 && res.memory_bytes < 4 * 1024 * 1024 {
                return Err(invalid(format!(
                    "invalid memory value {}: Must be at least 4MiB",
                    res.memory_bytes
                )));
            }
        }
    }
    if let Some(p) = &t.restart_policy {
        if p.delay.is_some_and(|d| d < 0) {
            return Err(invalid("TaskSpec: restart-delay cannot be negative"));
        }
        if p.window.is_some_and(|w| w < 0) {
            return Err(invalid("TaskSpec: restart-window cannot be negative"));
        }
        if let Some(c) = &p.condition
            && !["none", "on-failure", "any"].contains(&c.as_str())
        {
            return Err(SwarmError::InvalidArgument(format!(
                "invalid RestartCondition: {c:?}"
            )));
        }
    }
    if let Some(p) = &t.placement {
        constraints::parse(&p.constraints).map_err(invalid)?;
    }
    if let Some(c) = &t.container_spec {
        for blob in [BlobKind::Secret, BlobKind::Config] {
            blob_refs(c, blob)?;
        }
    }
    let Some(c) = &t.container_spec else {
        return Err(invalid("TaskSpec: missing runtime"));
    };
    if c.image.is_empty() {
        return Err(invalid("ContainerSpec: image reference must be provided"));
    }
    mounts(&c.mounts)
}

/// swarmkit's `validateSecretRefsSpec` (and its config twin), then
/// berth's own rule: a target never climbs out with `..`.
fn blob_refs(c: &berth_swarm_store::ContainerSpec, blob: BlobKind) -> Result<(), SwarmError> {
    let what = blob.as_str();
    let mut targets: std::collections::HashMap<&str, &str> = Default::default();
    for r in c.blob_refs().filter(|r| r.kind == blob) {
        if r.id.is_empty() || r.name.is_empty() {
            return Err(invalid(format!("malformed {what} reference")));
        }
        let Some(file) = r.file else {
            if blob == BlobKind::Config {
                continue; // a runtime target (credential specs)
            }
            return Err(invalid(format!(
                "malformed {what} reference, no target provided"
            )));
        };
        if file.name.is_empty() {
            return Err(invalid(format!(
                "malformed file {what} reference, invalid target file name provided"
            )));
        }
        if file.name.split('/').any(|part| part == "..") || file.name.contains('\0') {
            return Err(invalid(format!(
                "invalid {what} target {:?}: must not contain \"..\"",
                file.name
            )));
        }
        if let Some(prev) = targets.insert(&file.name, r.name) {
            return Err(invalid(format!(
                "{what} references '{prev}' and '{}' have a conflicting target: '{}'",
                r.name, file.name
            )));
        }
    }
    Ok(())
}

fn mounts(mounts: &[serde_json::Value]) -> Result<(), SwarmError> {
    let mut seen = std::collections::HashSet::new();
    for m in mounts {
        let target = m.get("Target").and_then(|t| t.as_str()).unwrap_or("");
        if !seen.insert(target) {
            return Err(invalid(format!(
                "ContainerSpec: duplicate mount point: {target}"
            )));
        }
    }
    Ok(())
}

fn update(u: Option<&UpdateConfig>) -> Result<(), SwarmError> {
    let Some(u) = u else { return Ok(()) };
    if u.delay.is_some_and(|d| d < 0) {
        return Err(invalid("TaskSpec: update-delay cannot be negative"));
    }
    if u.monitor.is_some_and(|m| m < 0) {
        return Err(invalid("TaskSpec: update-monitor cannot be negative"));
    }
    if u.max_failure_ratio
        .is_some_and(|r| !(0.0..=1.0).contains(&r))
    {
        return Err(invalid(
            "TaskSpec: update-maxfailureratio cannot be less than 0 or bigger than 1",
        ));
    }
    if let Some(a) = &u.failure_action
        && !["pause", "continue", "rollback", ""].contains(&a.as_str())
    {
        return Err(SwarmError::InvalidArgument(format!(
            "unrecognized update failure action {a}"
        )));
    }
    if let Some(o) = &u.order
        && !["stop-first", "start-first", ""].contains(&o.as_str())
    {
        return Err(SwarmError::InvalidArgument(format!(
            "unrecognized update order {o}"
        )));
    }
    Ok(())
}

fn endpoint(spec: &ServiceSpec) -> Result<(), SwarmError> {
    let Some(ep) = &spec.endpoint_spec else {
        return Ok(());
    };
    if let Some(m) = &ep.mode
        && !["vip", "dnsrr", ""].contains(&m.as_str())
    {
        return Err(SwarmError::InvalidArgument(format!(
            "invalid resolution mode: {m:?}"
        )));
    }
    let dnsrr = ep.mode.as_deref() == Some("dnsrr");
    let mut published = std::collections::HashSet::new();
    for p in &ep.ports {
        let ingress = p.publish_mode.as_deref().unwrap_or("ingress") == "ingress";
        if dnsrr && ingress {
            return Err(invalid(
                "EndpointSpec: port published with ingress mode can't be used with dnsrr mode",
            ));
        }
        let port = p.published_port.unwrap_or(0);
        let proto = p.protocol.clone().unwrap_or_else(|| "tcp".into());
        if port != 0 && !published.insert((port, proto, p.publish_mode.clone())) {
            return Err(invalid("EndpointSpec: duplicate published ports provided"));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use berth_swarm_store::{ContainerSpec, ServiceMode, TaskSpec};

    fn spec(name: &str) -> ServiceSpec {
        ServiceSpec {
            name: name.into(),
            task_template: TaskSpec {
                container_spec: Some(ContainerSpec {
                    image: "busybox".into(),
                    ..ContainerSpec::default()
                }),
                ..TaskSpec::default()
            },
            ..ServiceSpec::default()
        }
    }

    fn err(s: &ServiceSpec) -> String {
        validate(s).unwrap_err().to_string()
    }

    #[test]
    fn names_follow_swarmkits_dns_rule() {
        assert!(validate(&spec("web_1-a")).is_ok());
        assert_eq!(
            err(&spec("")),
            "rpc error: code = InvalidArgument desc = meta: name must be provided"
        );
        assert_eq!(
            err(&spec("-web")),
            "rpc error: code = InvalidArgument desc = name must be valid as a DNS name component"
        );
        assert!(err(&spec(&"a".repeat(64))).ends_with("name must be 63 characters or fewer"));
    }

    #[test]
    fn two_modes_and_jobs_with_update_configs_are_refused() {
        let mut s = spec("x");
        s.mode = ServiceMode {
            global: Some(Default::default()),
            replicated: Some(Default::default()),
            ..ServiceMode::default()
        };
        assert_eq!(err(&s), "must specify only one service mode");
        let mut j = spec("j");
        j.mode.global_job = Some(Default::default());
        j.update_config = Some(UpdateConfig::default());
        assert!(err(&j).ends_with("Jobs may not have an update config"));
    }

    #[test]
    fn bad_constraints_orders_and_images_get_their_errors() {
        let mut s = spec("x");
        s.task_template.placement = Some(berth_swarm_store::Placement {
            constraints: vec!["node.role = manager".into()],
            ..Default::default()
        });
        assert!(err(&s).ends_with("desc = constraint expected one operator from ==, !="));
        let mut u = spec("x");
        u.update_config = Some(UpdateConfig {
            order: Some("sideways".into()),
            ..UpdateConfig::default()
        });
        assert_eq!(err(&u), "unrecognized update order sideways");
        let mut i = spec("x");
        i.task_template.container_spec = Some(ContainerSpec::default());
        assert!(err(&i).ends_with("ContainerSpec: image reference must be provided"));
    }
}
