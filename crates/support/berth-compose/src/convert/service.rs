//! One service to the ServiceSpec the docker CLI sends (convert.Service
//! and the client's image tagging), field for field.

use std::collections::{BTreeMap, BTreeSet};

use serde_json::Value;

use super::json::{Object, float32, string_map, strings};
use super::objects::is_user_defined;
use super::{LABEL_IMAGE, ServiceCreate, mounts, scope, with_stack_label};
use crate::error::ComposeError;
use crate::gofmt;
use crate::model::{
    FileObject, FileReference, Healthcheck, Project, Resources, RestartPolicy, Service,
    UpdateConfig,
};

/// A secret or config reference before IDs are known.
struct Reference {
    name: String,
    /// None for a credential spec's runtime config
    file: Option<Value>,
}

/// The parts of a spec that can fail, computed in the docker CLI's order so
/// the first error is Docker's first error.
struct Parts {
    mode: Value,
    resources: Value,
    restart: Option<Value>,
    networks: Vec<Value>,
    container: ContainerParts,
}

struct ContainerParts {
    secrets: Vec<Value>,
    configs: Vec<Value>,
    mounts: Vec<Value>,
    healthcheck: Option<Value>,
    credential_spec: Value,
}

pub(crate) fn convert(
    project: &Project,
    service: &Service,
    namespace: &str,
) -> Result<ServiceCreate, ComposeError> {
    let parts = parts(project, service, namespace)?;
    let secret_names = reference_names(&parts.container.secrets, "SecretName");
    let config_names = reference_names(&parts.container.configs, "ConfigName");
    let mode = parts.mode.clone();
    let mut labels = with_stack_label(&service.deploy.labels, namespace);
    labels.insert(LABEL_IMAGE.into(), service.image.clone());
    let spec = Object::new()
        .set("Name", scope(namespace, &service.name))
        .set("Labels", string_map(&labels))
        .set("TaskTemplate", task_template(service, namespace, parts))
        .set("Mode", mode)
        .some(
            "UpdateConfig",
            service.deploy.update_config.as_ref().map(update_config),
        )
        .some(
            "RollbackConfig",
            service.deploy.rollback_config.as_ref().map(update_config),
        )
        .set("EndpointSpec", endpoint(service))
        .build();
    Ok(ServiceCreate {
        name: service.name.clone(),
        spec,
        secret_names,
        config_names,
    })
}

fn parts(project: &Project, service: &Service, namespace: &str) -> Result<Parts, ComposeError> {
    let at = |e: String| ComposeError::at(e, service.position.clone());
    let secrets = references(&service.secrets, &project.secrets, namespace, "secret")?;
    check_duplicate_targets(&secrets, "secret")?;
    let mut configs = references(&service.configs, &project.configs, namespace, "config")?;
    if let Some(name) = credential_config(service, project, namespace)? {
        configs.push(Reference { name, file: None });
    }
    check_duplicate_targets(&configs, "config")?;
    let secrets = sorted_refs(secrets, "SecretID", "SecretName");
    let configs = sorted_refs(dedupe_runtime(configs), "ConfigID", "ConfigName");
    let mode = deploy_mode(&service.deploy.mode, service.deploy.replicas).map_err(at)?;
    let mut mounts = Vec::with_capacity(service.volumes.len());
    for v in &service.volumes {
        let mount = mounts::mount(v, project, namespace).map_err(|e| {
            ComposeError::at(e, v.position.clone().or_else(|| service.position.clone()))
        })?;
        mounts.push(mount);
    }
    let resources = resources(&service.deploy.resources).map_err(at)?;
    let restart =
        restart_policy(&service.restart, service.deploy.restart_policy.as_ref()).map_err(at)?;
    let healthcheck = service
        .healthcheck
        .as_ref()
        .map(healthcheck)
        .transpose()
        .map_err(at)?;
    let networks = attachments(service, project, namespace)?;
    let credential_spec = credential_spec(service, namespace, &configs).map_err(at)?;
    Ok(Parts {
        mode,
        resources,
        restart,
        networks,
        container: ContainerParts {
            secrets,
            configs,
            mounts,
            healthcheck,
            credential_spec,
        },
    })
}

fn task_template(service: &Service, namespace: &str, parts: Parts) -> Value {
    let placement = &service.deploy.placement;
    let preferences = placement
        .preferences
        .iter()
        .map(|p| {
            let spread = Object::new().set("SpreadDescriptor", p.as_str());
            Object::new().set("Spread", spread).build()
        })
        .collect();
    let log_driver = service.logging.as_ref().map(|l| {
        let none = BTreeMap::new();
        Object::new()
            .text("Name", &l.driver)
            .map("Options", l.options.as_ref().unwrap_or(&none))
    });
    Object::new()
        .set(
            "ContainerSpec",
            container_spec(service, namespace, parts.container),
        )
        .set("Resources", parts.resources)
        .some("RestartPolicy", parts.restart)
        .set(
            "Placement",
            Object::new()
                .strings("Constraints", &placement.constraints)
                .list("Preferences", preferences)
                .nonzero("MaxReplicas", placement.max_replicas as i64),
        )
        .set("Networks", Value::Array(parts.networks))
        .some("LogDriver", log_driver)
        .set("ForceUpdate", 0)
        .build()
}

fn container_spec(service: &Service, namespace: &str, parts: ContainerParts) -> Value {
    let (cap_add, cap_drop) = effective_capabilities(&service.cap_add, &service.cap_drop);
    let privileges = Object::new()
        .set("CredentialSpec", parts.credential_spec)
        .set("SELinuxContext", Value::Null)
        .set("NoNewPrivileges", false);
    Object::new()
        .text("Image", &image_with_tag(&service.image))
        .set(
            "Labels",
            string_map(&with_stack_label(&service.labels, namespace)),
        )
        .strings("Command", &service.entrypoint)
        .strings("Args", &service.command)
        .text("Hostname", &service.hostname)
        .strings("Env", &environment(service))
        .text("Dir", &service.working_dir)
        .text("User", &service.user)
        .set("Privileges", privileges)
        .some("Init", service.init)
        .text("StopSignal", &service.stop_signal)
        .flag("TTY", service.tty)
        .flag("OpenStdin", service.stdin_open)
        .flag("ReadOnly", service.read_only)
        .list("Mounts", parts.mounts)
        .some("StopGracePeriod", service.stop_grace_period)
        .some("Healthcheck", parts.healthcheck)
        .strings("Hosts", &hosts(&service.extra_hosts))
        .some("DNSConfig", dns_config(service))
        .list("Secrets", parts.secrets)
        .list("Configs", parts.configs)
        .text("Isolation", &service.isolation)
        .map("Sysctls", &service.sysctls)
        .strings("CapabilityAdd", &cap_add)
        .strings("CapabilityDrop", &cap_drop)
        .list("Ulimits", ulimits(service))
        .build()
}

/// The distinct names of references, for the CLI's lookups by name.
fn reference_names(refs: &[Value], key: &str) -> Vec<String> {
    let names: BTreeSet<String> = refs
        .iter()
        .filter_map(|r| r[key].as_str().map(String::from))
        .collect();
    names.into_iter().collect()
}

/// convertFileObject for each reference: target defaults to the source,
/// uid and gid to "0", the mode to 0444.
fn references(
    refs: &[FileReference],
    objects: &BTreeMap<String, FileObject>,
    namespace: &str,
    kind: &str,
) -> Result<Vec<Reference>, ComposeError> {
    let mut out = Vec::with_capacity(refs.len());
    for r in refs {
        let object = objects.get(&r.source).ok_or_else(|| {
            ComposeError::at(
                format!("undefined {kind} {}", berth_units::go_quote(&r.source)),
                r.position.clone(),
            )
        })?;
        let or = |v: &str, default: &str| {
            if v.is_empty() {
                default.to_string()
            } else {
                v.to_string()
            }
        };
        let file = Object::new()
            .set("Name", or(&r.target, &r.source))
            .set("UID", or(&r.uid, "0"))
            .set("GID", or(&r.gid, "0"))
            .set("Mode", r.mode.unwrap_or(0o444));
        out.push(Reference {
            name: if object.name.is_empty() {
                scope(namespace, &r.source)
            } else {
                object.name.clone()
            },
            file: Some(file.build()),
        });
    }
    Ok(out)
}

/// The runtime config a `credential_spec.config` needs.
fn credential_config(
    service: &Service,
    project: &Project,
    namespace: &str,
) -> Result<Option<String>, ComposeError> {
    let key = &service.credential_spec.config;
    if key.is_empty() {
        return Ok(None);
    }
    let object = project.configs.get(key).ok_or_else(|| {
        ComposeError::at(
            format!("undefined config {}", berth_units::go_quote(key)),
            service.position.clone(),
        )
    })?;
    Ok(Some(if object.name.is_empty() {
        scope(namespace, key)
    } else {
        object.name.clone()
    }))
}

/// ParseSecrets/ParseConfigs refuse two references with one target.
fn check_duplicate_targets(refs: &[Reference], kind: &str) -> Result<(), ComposeError> {
    let mut targets = BTreeSet::new();
    for r in refs {
        let target = r.file.as_ref().and_then(|f| f["Name"].as_str());
        if target.is_some_and(|t| !targets.insert(t.to_string())) {
            return Err(ComposeError::new(format!(
                "duplicate {kind} target for {} not allowed",
                r.name
            )));
        }
    }
    Ok(())
}

/// A config needed as a runtime target several times is referenced once.
fn dedupe_runtime(refs: Vec<Reference>) -> Vec<Reference> {
    let mut seen = BTreeSet::new();
    refs.into_iter()
        .filter(|r| r.file.is_some() || seen.insert(r.name.clone()))
        .collect()
}

/// The references as JSON, stably sorted by name; IDs are filled later.
fn sorted_refs(mut refs: Vec<Reference>, id_key: &str, name_key: &str) -> Vec<Value> {
    refs.sort_by(|a, b| a.name.cmp(&b.name));
    refs.into_iter()
        .map(|r| {
            let o = match r.file {
                Some(file) => Object::new().set("File", file),
                None => Object::new().set("Runtime", Object::new()),
            };
            o.set(id_key, "").set(name_key, r.name).build()
        })
        .collect()
}

fn credential_spec(service: &Service, namespace: &str, configs: &[Value]) -> Result<Value, String> {
    let spec = &service.credential_spec;
    let given: Vec<&str> = [
        (!spec.config.is_empty()).then_some("\"Config\""),
        (!spec.file.is_empty()).then_some("\"File\""),
        (!spec.registry.is_empty()).then_some("\"Registry\""),
    ]
    .into_iter()
    .flatten()
    .collect();
    match given.len() {
        0 => return Ok(Value::Null),
        1 => {}
        2 => {
            return Err(format!(
                "invalid credential spec: cannot specify both {} and {}",
                given[0], given[1]
            ));
        }
        _ => {
            return Err(format!(
                "invalid credential spec: cannot specify both {}, and {}",
                given[..given.len() - 1].join(", "),
                given[given.len() - 1]
            ));
        }
    }
    let mut config = String::new();
    if !spec.config.is_empty() {
        let names: Vec<&str> = configs
            .iter()
            .filter_map(|c| c["ConfigName"].as_str())
            .collect();
        let scoped = scope(namespace, &spec.config);
        // the ID goes here; until resolve_references it is the config's name
        config = [spec.config.as_str(), scoped.as_str()]
            .into_iter()
            .find(|n| names.contains(n))
            .map(String::from)
            .ok_or_else(|| {
                format!(
                    "invalid credential spec: spec specifies config {}, but no such config can be found",
                    spec.config
                )
            })?;
    }
    Ok(Object::new()
        .set("Config", config)
        .set("File", spec.file.as_str())
        .set("Registry", spec.registry.as_str())
        .build())
}

fn deploy_mode(mode: &str, replicas: Option<u64>) -> Result<Value, String> {
    let global_only = || -> Result<(), String> {
        match replicas {
            Some(_) => {
                Err("replicas can only be used with replicated or replicated-job mode".into())
            }
            None => Ok(()),
        }
    };
    Ok(match mode {
        "global-job" => {
            global_only()?;
            Object::new().set("GlobalJob", Object::new()).build()
        }
        "global" => {
            global_only()?;
            Object::new().set("Global", Object::new()).build()
        }
        "replicated-job" => Object::new()
            .set(
                "ReplicatedJob",
                Object::new()
                    .some("MaxConcurrent", replicas)
                    .some("TotalCompletions", replicas),
            )
            .build(),
        "replicated" | "" => Object::new()
            .set("Replicated", Object::new().some("Replicas", replicas))
            .build(),
        other => return Err(format!("Unknown mode: {other}")),
    })
}

fn resources(r: &Resources) -> Result<Value, String> {
    let cpus = |c: &str| {
        if c.is_empty() {
            Ok(0)
        } else {
            gofmt::parse_cpus(c)
        }
    };
    let mut out = Object::new();
    if let Some(l) = &r.limits {
        out = out.set(
            "Limits",
            Object::new()
                .nonzero("NanoCPUs", cpus(&l.cpus)?)
                .nonzero("MemoryBytes", l.memory)
                .nonzero("Pids", l.pids),
        );
    }
    if let Some(res) = &r.reservations {
        let generic = res
            .generic_resources
            .iter()
            .map(|g| {
                let o = Object::new();
                match &g.discrete {
                    Some(d) => o
                        .set(
                            "DiscreteResourceSpec",
                            Object::new()
                                .text("Kind", &d.kind)
                                .nonzero("Value", d.value),
                        )
                        .build(),
                    None => o.build(),
                }
            })
            .collect();
        out = out.set(
            "Reservations",
            Object::new()
                .nonzero("NanoCPUs", cpus(&res.cpus)?)
                .nonzero("MemoryBytes", res.memory)
                .list("GenericResources", generic),
        );
    }
    Ok(out.build())
}

/// deploy.restart_policy, or else the unsupported `restart:` read as
/// `docker run --restart` would read it.
fn restart_policy(restart: &str, policy: Option<&RestartPolicy>) -> Result<Option<Value>, String> {
    if let Some(p) = policy {
        return Ok(Some(
            Object::new()
                .text("Condition", &p.condition)
                .some("Delay", p.delay)
                .some("MaxAttempts", p.max_attempts)
                .some("Window", p.window)
                .build(),
        ));
    }
    if restart.is_empty() {
        return Ok(None);
    }
    let (name, count) = match restart.split_once(':') {
        Some(("", _)) => {
            return Err("invalid restart policy format: no policy provided before colon".into());
        }
        Some((name, count)) => (name, count),
        None => (restart, ""),
    };
    let attempts = if count.is_empty() {
        0
    } else {
        berth_units::go_atoi(count).map_err(|_| {
            "invalid restart policy format: maximum retry count must be an integer".to_string()
        })?
    };
    Ok(match name {
        "no" | "" => None,
        "always" | "unless-stopped" => Some(Object::new().set("Condition", "any").build()),
        // a negative count wraps, as Go's uint64 conversion does
        "on-failure" => Some(
            Object::new()
                .set("Condition", "on-failure")
                .set("MaxAttempts", attempts as u64)
                .build(),
        ),
        _ => return Err(format!("unknown restart policy: {restart}")),
    })
}

fn healthcheck(h: &Healthcheck) -> Result<Value, String> {
    if h.disable {
        if !h.test.is_empty() {
            return Err("test and disable can't be set at the same time".into());
        }
        return Ok(Object::new()
            .set("Test", strings(&["NONE".to_string()]))
            .build());
    }
    Ok(Object::new()
        .strings("Test", &h.test)
        .nonzero("Interval", h.interval.unwrap_or(0))
        .nonzero("Timeout", h.timeout.unwrap_or(0))
        .nonzero("StartPeriod", h.start_period.unwrap_or(0))
        .nonzero("StartInterval", h.start_interval.unwrap_or(0))
        .nonzero("Retries", h.retries.unwrap_or(0) as i64)
        .build())
}

/// Network attachments sorted by target; the service's name is an alias on
/// user-defined networks.
fn attachments(
    service: &Service,
    project: &Project,
    namespace: &str,
) -> Result<Vec<Value>, ComposeError> {
    let default_only = BTreeMap::from([("default".to_string(), Default::default())]);
    let networks = if service.networks.is_empty() {
        &default_only
    } else {
        &service.networks
    };
    let mut out: Vec<(String, Value)> = Vec::new();
    for (name, attachment) in networks {
        let config = project.networks.get(name);
        if config.is_none() && name != "default" {
            return Err(ComposeError::at(
                format!("undefined network {}", berth_units::go_quote(name)),
                attachment
                    .position
                    .clone()
                    .or_else(|| service.position.clone()),
            ));
        }
        let target = match config {
            Some(c) if !c.name.is_empty() => c.name.clone(),
            _ => scope(namespace, name),
        };
        let settings = attachment.settings.clone().unwrap_or_default();
        let mut aliases = settings.aliases;
        if is_user_defined(&target) {
            aliases.push(service.name.clone());
        }
        let value = Object::new()
            .text("Target", &target)
            .strings("Aliases", &aliases)
            .map("DriverOpts", &settings.driver_opts)
            .build();
        out.push((target, value));
    }
    out.sort_by(|a, b| a.0.cmp(&b.0));
    Ok(out.into_iter().map(|(_, v)| v).collect())
}

fn environment(service: &Service) -> Vec<String> {
    let mut env: Vec<String> = service
        .environment
        .iter()
        .map(|(k, v)| match v {
            Some(v) => format!("{k}={v}"),
            None => k.clone(),
        })
        .collect();
    env.sort();
    env
}

/// "host:ip" to swarmkit's "ip host", in the file's order.
fn hosts(extra_hosts: &[String]) -> Vec<String> {
    extra_hosts
        .iter()
        .filter_map(|h| h.split_once(':').map(|(host, ip)| format!("{ip} {host}")))
        .collect()
}

fn dns_config(service: &Service) -> Option<Value> {
    if service.dns.is_none() && service.dns_search.is_none() {
        return None;
    }
    Some(
        Object::new()
            .strings("Nameservers", service.dns.as_deref().unwrap_or_default())
            .strings("Search", service.dns_search.as_deref().unwrap_or_default())
            .build(),
    )
}

fn ulimits(service: &Service) -> Vec<Value> {
    service
        .ulimits
        .iter()
        .map(|(name, u)| {
            let (soft, hard) = if u.single != 0 {
                (u.single, u.single)
            } else {
                (u.soft, u.hard)
            };
            Object::new()
                .set("Name", name.as_str())
                .set("Hard", hard)
                .set("Soft", soft)
                .build()
        })
        .collect()
}

fn update_config(u: &UpdateConfig) -> Value {
    Object::new()
        .set("Parallelism", u.parallelism.unwrap_or(1))
        .nonzero("Delay", u.delay)
        .text("FailureAction", &u.failure_action)
        .nonzero("Monitor", u.monitor)
        .set("MaxFailureRatio", float32(u.max_failure_ratio))
        .set("Order", u.order.as_str())
        .build()
}

fn endpoint(service: &Service) -> Value {
    let mut ports = service.ports.clone();
    ports.sort_by_key(|p| p.published);
    let ports = ports
        .iter()
        .map(|p| {
            Object::new()
                .text("Protocol", &p.protocol)
                .nonzero("TargetPort", i64::from(p.target))
                .nonzero("PublishedPort", i64::from(p.published))
                .text("PublishMode", &p.mode)
                .build()
        })
        .collect();
    Object::new()
        .text("Mode", &service.deploy.endpoint_mode.to_lowercase())
        .list("Ports", ports)
        .build()
}

/// opts.EffectiveCapAddCapDrop: normalized, ALL wins, adding beats
/// dropping, sorted.
fn effective_capabilities(add: &[String], drop: &[String]) -> (Vec<String>, Vec<String>) {
    let normalize = |c: &String| {
        let c = c.trim().to_uppercase();
        if c == "ALL" || c == "RESET" || c.starts_with("CAP_") {
            c
        } else {
            format!("CAP_{c}")
        }
    };
    let mut adds: BTreeSet<String> = add.iter().map(normalize).collect();
    let mut drops: BTreeSet<String> = drop.iter().map(normalize).collect();
    if adds.contains("ALL") {
        adds = BTreeSet::from(["ALL".to_string()]);
    }
    if drops.contains("ALL") {
        drops = BTreeSet::from(["ALL".to_string()]);
    }
    let cap_drop = drops
        .iter()
        .filter(|c| !adds.contains(*c) && *c != "RESET")
        .cloned()
        .collect();
    let cap_add = adds.into_iter().filter(|c| c != "RESET").collect();
    (cap_add, cap_drop)
}

/// The API client's imageWithTagString: ":latest" when neither tag nor
/// digest is given, in the familiar form ("docker.io/library/x" is "x").
fn image_with_tag(image: &str) -> String {
    let is_id = image.len() == 64 && image.bytes().all(|b| b.is_ascii_hexdigit());
    if is_id {
        return image.to_string();
    }
    match berth_image::Reference::parse(image) {
        Ok(r) => r.familiar(),
        Err(_) => image.to_string(),
    }
}

pub(crate) fn resolve_references(
    spec: &mut Value,
    secret_id: &dyn Fn(&str) -> Option<String>,
    config_id: &dyn Fn(&str) -> Option<String>,
) -> Result<(), String> {
    // get_mut throughout: indexing a missing key would add it as null
    let Some(container) = spec
        .get_mut("TaskTemplate")
        .and_then(|t| t.get_mut("ContainerSpec"))
    else {
        return Ok(());
    };
    fill_ids(
        container.get_mut("Secrets"),
        "SecretID",
        "SecretName",
        "secret",
        secret_id,
    )?;
    fill_ids(
        container.get_mut("Configs"),
        "ConfigID",
        "ConfigName",
        "config",
        config_id,
    )?;
    let credential_config = container
        .get_mut("Privileges")
        .and_then(|p| p.get_mut("CredentialSpec"))
        .and_then(|c| c.get_mut("Config"));
    let name = credential_config
        .as_ref()
        .and_then(|c| c.as_str())
        .filter(|n| !n.is_empty())
        .map(String::from);
    if let (Some(config), Some(name)) = (credential_config, name) {
        let id = config_id(&name).ok_or_else(|| format!("config not found: {name}"))?;
        *config = Value::String(id);
    }
    Ok(())
}

fn fill_ids(
    refs: Option<&mut Value>,
    id_key: &str,
    name_key: &str,
    kind: &str,
    lookup: &dyn Fn(&str) -> Option<String>,
) -> Result<(), String> {
    for item in refs.and_then(Value::as_array_mut).into_iter().flatten() {
        let name = item[name_key].as_str().unwrap_or_default().to_string();
        let id = lookup(&name).ok_or_else(|| format!("{kind} not found: {name}"))?;
        item[id_key] = Value::String(id);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn capabilities_normalize_like_the_cli() {
        let s = |v: &[&str]| v.iter().map(|x| x.to_string()).collect::<Vec<_>>();
        let (add, drop) = effective_capabilities(
            &s(&["net_admin", "CAP_SYS_TIME"]),
            &s(&["NET_ADMIN", "chown"]),
        );
        assert_eq!(add, ["CAP_NET_ADMIN", "CAP_SYS_TIME"]);
        assert_eq!(drop, ["CAP_CHOWN"]);
        let (add, drop) = effective_capabilities(&s(&["all", "x"]), &s(&["ALL"]));
        assert_eq!(add, ["ALL"]);
        assert!(drop.is_empty());
    }

    #[test]
    fn images_get_the_latest_tag() {
        assert_eq!(image_with_tag("nginx"), "nginx:latest");
        assert_eq!(image_with_tag("docker.io/library/nginx:1.25"), "nginx:1.25");
        assert_eq!(
            image_with_tag("localhost:5000/app"),
            "localhost:5000/app:latest"
        );
        assert_eq!(image_with_tag("Bad Image"), "Bad Image");
    }

    #[test]
    fn restart_falls_back_to_the_run_flag() {
        assert_eq!(restart_policy("", None), Ok(None));
        assert_eq!(restart_policy("no", None), Ok(None));
        assert_eq!(
            restart_policy("always", None),
            Ok(Some(serde_json::json!({"Condition": "any"})))
        );
        assert_eq!(
            restart_policy("on-failure:3", None),
            Ok(Some(
                serde_json::json!({"Condition": "on-failure", "MaxAttempts": 3})
            ))
        );
        assert_eq!(
            restart_policy("sometimes", None),
            Err("unknown restart policy: sometimes".into())
        );
        assert_eq!(
            restart_policy("on-failure:x", None),
            Err("invalid restart policy format: maximum retry count must be an integer".into())
        );
    }

    #[test]
    fn modes_follow_convert_deploy_mode() {
        assert_eq!(
            deploy_mode("", None),
            Ok(serde_json::json!({"Replicated": {}}))
        );
        assert_eq!(
            deploy_mode("replicated-job", Some(2)),
            Ok(serde_json::json!({"ReplicatedJob": {"MaxConcurrent": 2, "TotalCompletions": 2}}))
        );
        assert_eq!(
            deploy_mode("global", Some(1)),
            Err("replicas can only be used with replicated or replicated-job mode".into())
        );
        assert_eq!(deploy_mode("x", None), Err("Unknown mode: x".into()));
    }
}
