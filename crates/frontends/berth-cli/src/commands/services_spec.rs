//! `service create`'s flags to the ServiceSpec the docker CLI 28 sends
//! (its `serviceOptions.ToService`), field for field and in Go's order.

use serde_json::{Value, json};

use super::services_flags::{
    FlagResult, HealthFlags, ServiceFlags, UpdateKnobs, each, opt, opt_bool, opt_cpus,
    opt_duration, opt_int, opt_memory, opt_positive_duration, opt_uint,
};
use super::services_mounts::{parse_mount, parse_port};
use super::services_networks::parse_network;
use super::services_opts::{
    Obj, effective_caps, kv_map, make_env, placement_pref, swarm_host, ulimit, ulimit_list,
    validate_env, validate_ip, validate_label,
};
use super::services_refs::{CONFIG_REFS, FileRef, SECRET_REFS, parse_ref};
use crate::goparse;
use crate::status;

/// `service create`'s own flags and its IMAGE [COMMAND] [ARG...].
#[derive(clap::Args, Debug, Default, Clone, PartialEq)]
pub struct CreateFlags {
    /// Service mode ("replicated", "global", "replicated-job", "global-job")
    #[arg(long, default_value = "replicated")]
    pub mode: String,
    /// Service name
    #[arg(long)]
    pub name: Option<String>,
    /// Service labels
    #[arg(short = 'l', long = "label")]
    pub label: Vec<String>,
    /// Container labels
    #[arg(long = "container-label")]
    pub container_label: Vec<String>,
    /// Set environment variables
    #[arg(short = 'e', long = "env")]
    pub env: Vec<String>,
    /// Read in a file of environment variables
    #[arg(long = "env-file")]
    pub env_file: Vec<String>,
    /// Attach a filesystem mount to the service
    #[arg(long = "mount")]
    pub mount: Vec<String>,
    /// Placement constraints
    #[arg(long)]
    pub constraint: Vec<String>,
    /// Add a placement preference
    #[arg(long = "placement-pref")]
    pub placement_pref: Vec<String>,
    /// Publish a port as a node port
    #[arg(short = 'p', long)]
    pub publish: Vec<String>,
    /// Set one or more supplementary user groups for the container
    #[arg(long)]
    pub group: Vec<String>,
    /// Set custom DNS servers
    #[arg(long)]
    pub dns: Vec<String>,
    /// Set DNS options
    #[arg(long = "dns-option")]
    pub dns_option: Vec<String>,
    /// Set custom DNS search domains
    #[arg(long = "dns-search")]
    pub dns_search: Vec<String>,
    /// Set one or more custom host-to-IP mappings (host:ip)
    #[arg(long)]
    pub host: Vec<String>,
    /// Sysctl options
    #[arg(long)]
    pub sysctl: Vec<String>,
    /// Ulimit options
    #[arg(long)]
    pub ulimit: Vec<String>,
    /// Specify secrets to expose to the service
    #[arg(long = "secret")]
    pub secret: Vec<String>,
    /// Specify configurations to expose to the service
    #[arg(long = "config")]
    pub config: Vec<String>,
    /// Network attachments
    #[arg(long = "network")]
    pub network: Vec<String>,
}

/// The common flags with their values checked.
#[derive(Debug, Default)]
pub struct Checked {
    pub detach: bool,
    pub entrypoint: Option<Vec<String>>,
    pub limit_cpu: Option<i64>,
    pub limit_memory: Option<i64>,
    pub limit_pids: Option<i64>,
    pub reserve_cpu: Option<i64>,
    pub reserve_memory: Option<i64>,
    pub stop_grace: Option<i64>,
    pub replicas: Option<u64>,
    pub max_concurrent: Option<u64>,
    pub max_per_node: Option<u64>,
    pub restart_delay: Option<i64>,
    pub restart_attempts: Option<u64>,
    pub restart_window: Option<i64>,
    pub update: KnobValues,
    pub rollback: KnobValues,
    pub registry_auth: bool,
    pub no_resolve_image: bool,
    pub log_opts: Vec<String>,
    pub health: HealthValues,
    pub tty: Option<bool>,
    pub read_only: Option<bool>,
    pub init: Option<bool>,
    pub oom_score_adj: Option<i64>,
}

/// The values of the `--update-*` or `--rollback-*` flags.
#[derive(Debug, Default)]
pub struct KnobValues {
    pub given: bool,
    pub parallelism: Option<u64>,
    pub delay: Option<i64>,
    pub monitor: Option<i64>,
    pub failure_action: Option<String>,
    pub max_failure_ratio: Option<f64>,
    pub order: Option<String>,
}

#[derive(Debug, Default)]
pub struct HealthValues {
    pub cmd: Option<String>,
    pub interval: Option<i64>,
    pub timeout: Option<i64>,
    pub retries: Option<i64>,
    pub start_period: Option<i64>,
    pub start_interval: Option<i64>,
    pub none: Option<bool>,
}

fn check_knobs(k: UpdateKnobs<'_>) -> FlagResult<KnobValues> {
    let name = |what: &str| format!("{}-{what}", k.prefix);
    Ok(KnobValues {
        given: k.any(),
        parallelism: opt_uint(&name("parallelism"), k.parallelism)?,
        delay: opt_duration(&name("delay"), k.delay)?,
        monitor: opt_duration(&name("monitor"), k.monitor)?,
        failure_action: k.failure_action.clone(),
        max_failure_ratio: opt(
            &name("max-failure-ratio"),
            k.max_failure_ratio,
            goparse::parse_float32,
        )?,
        order: k.order.clone(),
    })
}

fn check_health(h: &HealthFlags) -> FlagResult<HealthValues> {
    Ok(HealthValues {
        cmd: h.cmd.clone(),
        interval: opt_positive_duration("health-interval", &h.interval)?,
        timeout: opt_positive_duration("health-timeout", &h.timeout)?,
        retries: opt_int("health-retries", &h.retries)?,
        start_period: opt_positive_duration("health-start-period", &h.start_period)?,
        start_interval: opt_positive_duration("health-start-interval", &h.start_interval)?,
        none: opt_bool("no-healthcheck", &h.no_healthcheck)?,
    })
}

/// Checks every common flag's value, as pflag does while parsing.
pub fn check_common(f: &ServiceFlags) -> FlagResult<Checked> {
    Ok(Checked {
        detach: opt_bool("detach", &f.detach)?.unwrap_or(false),
        entrypoint: opt("entrypoint", &f.entrypoint, goparse::shlex_split)?,
        limit_cpu: opt_cpus("limit-cpu", &f.limit_cpu)?,
        limit_memory: opt_memory("limit-memory", &f.limit_memory)?,
        limit_pids: opt_int("limit-pids", &f.limit_pids)?,
        reserve_cpu: opt_cpus("reserve-cpu", &f.reserve_cpu)?,
        reserve_memory: opt_memory("reserve-memory", &f.reserve_memory)?,
        stop_grace: opt_duration("stop-grace-period", &f.stop_grace_period)?,
        replicas: opt_uint("replicas", &f.replicas)?,
        max_concurrent: opt_uint("max-concurrent", &f.max_concurrent)?,
        max_per_node: opt_uint("replicas-max-per-node", &f.replicas_max_per_node)?,
        restart_delay: opt_duration("restart-delay", &f.restart_delay)?,
        restart_attempts: opt_uint("restart-max-attempts", &f.restart_max_attempts)?,
        restart_window: opt_duration("restart-window", &f.restart_window)?,
        update: check_knobs(f.update.knobs())?,
        rollback: check_knobs(f.rollback.knobs())?,
        registry_auth: opt_bool("with-registry-auth", &f.with_registry_auth)?.unwrap_or(false),
        no_resolve_image: opt_bool("no-resolve-image", &f.no_resolve_image)?.unwrap_or(false),
        log_opts: each("log-opt", &f.log_opt, validate_env)?,
        health: check_health(&f.health)?,
        tty: opt_bool("tty", &f.tty)?,
        read_only: opt_bool("read-only", &f.read_only)?,
        init: opt_bool("init", &f.init)?,
        oom_score_adj: opt_int("oom-score-adj", &f.oom_score_adj)?,
    })
}

/// The list flags of `create`, checked.
pub struct CreateLists {
    pub env: Vec<String>,
    pub labels: Vec<String>,
    pub container_labels: Vec<String>,
    pub mounts: Vec<Value>,
    pub prefs: Vec<Value>,
    pub ports: Vec<Value>,
    pub dns: Vec<String>,
    pub hosts: Vec<String>,
    pub ulimits: Vec<Value>,
    pub secrets: Vec<FileRef>,
    pub configs: Vec<FileRef>,
    pub networks: Vec<Value>,
}

pub fn check_create_lists(c: &CreateFlags) -> FlagResult<CreateLists> {
    Ok(CreateLists {
        env: each("env", &c.env, validate_env)?,
        labels: each("label", &c.label, validate_label)?,
        container_labels: each("container-label", &c.container_label, validate_label)?,
        mounts: each("mount", &c.mount, parse_mount)?,
        prefs: each("placement-pref", &c.placement_pref, placement_pref)?,
        ports: each("publish", &c.publish, parse_port)?
            .into_iter()
            .flatten()
            .collect(),
        dns: each("dns", &c.dns, validate_ip)?,
        hosts: each("host", &c.host, swarm_host)?,
        ulimits: ulimit_list(each("ulimit", &c.ulimit, ulimit)?),
        secrets: each("secret", &c.secret, |v| parse_ref(&SECRET_REFS, v))?,
        configs: each("config", &c.config, |v| parse_ref(&CONFIG_REFS, v))?,
        networks: each("network", &c.network, parse_network)?,
    })
}

/// An UpdateConfig from swarmkit's defaults with the given flags over
/// them (`updateConfigFromDefaults`); the defaults are the same for
/// updates and rollbacks.
pub fn knobs_over_defaults(k: &KnobValues, base: Option<&Value>) -> Value {
    let base = base.cloned().unwrap_or_else(|| {
        json!({ "Parallelism": 1, "FailureAction": "pause", "Monitor": 5_000_000_000i64,
                "MaxFailureRatio": 0, "Order": "stop-first" })
    });
    let field = |k: &str| base.get(k).cloned();
    let dur = |v: Option<i64>, k: &str| v.map(|d| json!(d)).or_else(|| field(k));
    let text = |v: &Option<String>, k: &str| v.as_ref().map(|s| json!(s)).or_else(|| field(k));
    let nonzero = |v: Option<Value>| v.filter(|x| x.as_i64() != Some(0) && x.as_str() != Some(""));
    Obj::new()
        .put(
            "Parallelism",
            k.parallelism
                .map(|p| json!(p))
                .or_else(|| field("Parallelism"))
                .unwrap_or(json!(0)),
        )
        .opt("Delay", nonzero(dur(k.delay, "Delay")))
        .opt(
            "FailureAction",
            nonzero(text(&k.failure_action, "FailureAction")),
        )
        .opt("Monitor", nonzero(dur(k.monitor, "Monitor")))
        .put(
            "MaxFailureRatio",
            k.max_failure_ratio
                .map(goparse::json_float)
                .or_else(|| field("MaxFailureRatio"))
                .unwrap_or(json!(0)),
        )
        .put("Order", text(&k.order, "Order").unwrap_or(json!("")))
        .done()
}

/// `healthCheckOptions.toHealthConfig`.
fn health_config(h: &HealthValues) -> anyhow::Result<Option<Value>> {
    let cmd = h.cmd.clone().unwrap_or_default();
    let have = !cmd.is_empty()
        || h.interval.is_some()
        || h.timeout.is_some()
        || h.start_period.is_some()
        || h.start_interval.is_some()
        || h.retries.unwrap_or(0) != 0;
    if h.none == Some(true) {
        if have {
            return Err(status(
                1,
                "--no-healthcheck conflicts with --health-* options",
            ));
        }
        return Ok(Some(json!({ "Test": ["NONE"] })));
    }
    if !have {
        return Ok(None);
    }
    let test: Vec<String> = if cmd.is_empty() {
        vec![]
    } else {
        vec!["CMD-SHELL".into(), cmd]
    };
    Ok(Some(
        Obj::new()
            .list("Test", &test)
            .int("Interval", h.interval.unwrap_or(0))
            .int("Timeout", h.timeout.unwrap_or(0))
            .int("StartPeriod", h.start_period.unwrap_or(0))
            .int("StartInterval", h.start_interval.unwrap_or(0))
            .int("Retries", h.retries.unwrap_or(0))
            .done(),
    ))
}

/// `ToServiceMode`: the mode object, or docker's refusal.
fn service_mode(mode: &str, c: &Checked) -> anyhow::Result<Value> {
    let refuse = |m: &str| Err(status(1, m.to_string()));
    let replicas_only = "replicas can only be used with replicated or replicated-job mode";
    let per_node_only =
        "replicas-max-per-node can only be used with replicated or replicated-job mode";
    let concurrent_only = "max-concurrent can only be used with replicated-job mode";
    let per_node = c.max_per_node.unwrap_or(0) > 0;
    Ok(match mode {
        "global" => {
            if c.replicas.is_some() {
                return refuse(replicas_only);
            }
            if per_node {
                return refuse(per_node_only);
            }
            if c.max_concurrent.is_some() {
                return refuse(concurrent_only);
            }
            json!({ "Global": {} })
        }
        "replicated" => {
            if c.max_concurrent.is_some() {
                return refuse(concurrent_only);
            }
            let r = Obj::new()
                .opt("Replicas", c.replicas.map(|r| json!(r)))
                .done();
            json!({ "Replicated": r })
        }
        "replicated-job" => {
            let job = Obj::new()
                .opt(
                    "MaxConcurrent",
                    c.max_concurrent.or(c.replicas).map(|r| json!(r)),
                )
                .opt("TotalCompletions", c.replicas.map(|r| json!(r)))
                .done();
            json!({ "ReplicatedJob": job })
        }
        "global-job" => {
            if per_node {
                return refuse(per_node_only);
            }
            if c.max_concurrent.is_some() {
                return refuse(concurrent_only);
            }
            if c.replicas.is_some() {
                return refuse(replicas_only);
            }
            json!({ "GlobalJob": {} })
        }
        other => {
            return refuse(&format!(
                "Unknown mode: {other}, only replicated and global supported"
            ));
        }
    })
}

/// `ToRestartPolicy`: swarmkit's defaults (any, 5s, 0 attempts) under the
/// given flags; none when no restart flag is given.
pub fn restart_policy(f: &ServiceFlags, c: &Checked, base: Option<&Value>) -> Option<Value> {
    let given = f.restart_condition.is_some()
        || f.restart_delay.is_some()
        || f.restart_max_attempts.is_some()
        || f.restart_window.is_some();
    if !given {
        return None;
    }
    let base = base.cloned().unwrap_or_else(
        || json!({ "Condition": "any", "Delay": 5_000_000_000i64, "MaxAttempts": 0 }),
    );
    let field = |k: &str| base.get(k).cloned().filter(|v| !v.is_null());
    let condition = f
        .restart_condition
        .as_ref()
        .map(|s| json!(s))
        .or_else(|| field("Condition"))
        .filter(|v| v.as_str() != Some(""));
    Some(
        Obj::new()
            .opt("Condition", condition)
            .opt(
                "Delay",
                c.restart_delay.map(|d| json!(d)).or_else(|| field("Delay")),
            )
            .opt(
                "MaxAttempts",
                c.restart_attempts
                    .map(|d| json!(d))
                    .or_else(|| field("MaxAttempts")),
            )
            .opt(
                "Window",
                c.restart_window
                    .map(|d| json!(d))
                    .or_else(|| field("Window")),
            )
            .done(),
    )
}

/// The ContainerSpec of a new service.
fn container_spec(
    image: &str,
    args: &[String],
    f: &ServiceFlags,
    cf: &CreateFlags,
    c: &Checked,
    l: &CreateLists,
) -> anyhow::Result<Value> {
    let env = make_env(&cf.env_file, &l.env).map_err(|e| status(1, e))?;
    let health = health_config(&c.health)?;
    let (cap_add, cap_drop) = effective_caps(&f.cap_add, &f.cap_drop);
    let dns = Obj::new()
        .list("Nameservers", &l.dns)
        .list("Search", &cf.dns_search)
        .list("Options", &cf.dns_option)
        .done();
    Ok(Obj::new()
        .str("Image", image)
        .map("Labels", &kv_map(&l.container_labels))
        .opt(
            "Command",
            c.entrypoint
                .clone()
                .filter(|e| !e.is_empty())
                .map(|e| json!(e)),
        )
        .list("Args", args)
        .str("Hostname", f.hostname.as_deref().unwrap_or(""))
        .list("Env", &env)
        .str("Dir", f.workdir.as_deref().unwrap_or(""))
        .str("User", f.user.as_deref().unwrap_or(""))
        .list("Groups", &cf.group)
        .put("Init", json!(c.init.unwrap_or(false)))
        .str("StopSignal", f.stop_signal.as_deref().unwrap_or(""))
        .flag("TTY", c.tty.unwrap_or(false))
        .flag("ReadOnly", c.read_only.unwrap_or(false))
        .opt("Mounts", (!l.mounts.is_empty()).then(|| json!(l.mounts)))
        .opt("StopGracePeriod", c.stop_grace.map(|d| json!(d)))
        .opt("Healthcheck", health)
        .list("Hosts", &l.hosts)
        .put("DNSConfig", dns)
        .str("Isolation", f.isolation.as_deref().unwrap_or(""))
        .map("Sysctls", &kv_map(&cf.sysctl))
        .list("CapabilityAdd", &cap_add)
        .list("CapabilityDrop", &cap_drop)
        .opt("Ulimits", (!l.ulimits.is_empty()).then(|| json!(l.ulimits)))
        .int("OomScoreAdj", c.oom_score_adj.unwrap_or(0))
        .done())
}

fn resources(c: &Checked) -> Value {
    json!({
        "Limits": Obj::new()
            .int("NanoCPUs", c.limit_cpu.unwrap_or(0))
            .int("MemoryBytes", c.limit_memory.unwrap_or(0))
            .int("Pids", c.limit_pids.unwrap_or(0))
            .done(),
        "Reservations": Obj::new()
            .int("NanoCPUs", c.reserve_cpu.unwrap_or(0))
            .int("MemoryBytes", c.reserve_memory.unwrap_or(0))
            .done(),
    })
}

/// The ServiceSpec `service create` sends for these flags; `image` is the
/// image as given (the tag is added by [`super::services_image`]).
pub fn create_spec(
    image: &str,
    args: &[String],
    f: &ServiceFlags,
    cf: &CreateFlags,
    c: &Checked,
    l: &CreateLists,
) -> anyhow::Result<Value> {
    let container = container_spec(image, args, f, cf, c, l)?;
    let mode = service_mode(&cf.mode, c)?;
    let update = c.update.given.then(|| knobs_over_defaults(&c.update, None));
    let rollback = c
        .rollback
        .given
        .then(|| knobs_over_defaults(&c.rollback, None));
    let is_job = mode.get("ReplicatedJob").is_some() || mode.get("GlobalJob").is_some();
    if is_job && (update.is_some() || rollback.is_some()) {
        return Err(status(
            1,
            "update and rollback configuration is not supported for jobs",
        ));
    }
    let placement = Obj::new()
        .list("Constraints", &cf.constraint)
        .opt("Preferences", (!l.prefs.is_empty()).then(|| json!(l.prefs)))
        .int("MaxReplicas", c.max_per_node.unwrap_or(0) as i64)
        .done();
    let log_driver = f.log_driver.as_deref().filter(|d| !d.is_empty()).map(|d| {
        Obj::new()
            .str("Name", d)
            .map("Options", &kv_map(&c.log_opts))
            .done()
    });
    let task = Obj::new()
        .put("ContainerSpec", container)
        .put("Resources", resources(c))
        .opt("RestartPolicy", restart_policy(f, c, None))
        .put("Placement", placement)
        .opt(
            "Networks",
            (!l.networks.is_empty()).then(|| json!(l.networks)),
        )
        .opt("LogDriver", log_driver)
        .put("ForceUpdate", json!(0))
        .done();
    let endpoint_mode = f.endpoint_mode.as_deref().unwrap_or("vip").to_lowercase();
    let endpoint = Obj::new()
        .str("Mode", &endpoint_mode)
        .opt("Ports", (!l.ports.is_empty()).then(|| json!(l.ports)))
        .done();
    Ok(Obj::new()
        .str("Name", cf.name.as_deref().unwrap_or(""))
        .put("Labels", json!(kv_map(&l.labels)))
        .put("TaskTemplate", task)
        .put("Mode", mode)
        .opt("UpdateConfig", update)
        .opt("RollbackConfig", rollback)
        .put("EndpointSpec", endpoint)
        .done())
}
