//! `service update`'s flags merged into the service's current spec, as
//! the docker CLI 28's `updateService` merges them: each given flag
//! replaces, adds to or removes from its field, the rest is sent back as
//! the daemon gave it.

use std::collections::{BTreeMap, BTreeSet};

use serde_json::{Map, Value, json};

use super::services_flags::{FlagResult, ServiceFlags, each, opt};
use super::services_mounts::{parse_mount, parse_port};
use super::services_opts::{
    Obj, caps_set, kv_map, placement_pref, swarm_host, ulimit, validate_env, validate_ip,
    validate_label,
};
use super::services_refs::{CONFIG_REFS, FileRef, SECRET_REFS, parse_ref};
use super::services_spec::{Checked, HealthValues, knobs_over_defaults, restart_policy};
use crate::{goparse, status};

/// `service update`'s own flags.
#[derive(clap::Args, Debug, Default, Clone, PartialEq)]
pub struct UpdateFlags {
    /// Service image tag
    #[arg(long)]
    pub image: Option<String>,
    /// Service command args
    #[arg(long, allow_hyphen_values = true)]
    pub args: Option<String>,
    /// Rollback to previous specification
    #[arg(long, num_args = 0..=1, require_equals = true, default_missing_value = "true")]
    pub rollback: Option<String>,
    /// Force update even if no changes require it
    #[arg(long, num_args = 0..=1, require_equals = true, default_missing_value = "true")]
    pub force: Option<String>,
    /// Add or update an environment variable
    #[arg(long = "env-add")]
    pub env_add: Vec<String>,
    /// Remove an environment variable
    #[arg(long = "env-rm")]
    pub env_rm: Vec<String>,
    /// Add or update a service label
    #[arg(long = "label-add")]
    pub label_add: Vec<String>,
    /// Remove a label by its key
    #[arg(long = "label-rm")]
    pub label_rm: Vec<String>,
    /// Add or update a container label
    #[arg(long = "container-label-add")]
    pub container_label_add: Vec<String>,
    /// Remove a container label by its key
    #[arg(long = "container-label-rm")]
    pub container_label_rm: Vec<String>,
    /// Add or update a mount on a service
    #[arg(long = "mount-add")]
    pub mount_add: Vec<String>,
    /// Remove a mount by its target path
    #[arg(long = "mount-rm")]
    pub mount_rm: Vec<String>,
    /// Add or update a published port
    #[arg(long = "publish-add")]
    pub publish_add: Vec<String>,
    /// Remove a published port by its target port
    #[arg(long = "publish-rm")]
    pub publish_rm: Vec<String>,
    /// Add or update a placement constraint
    #[arg(long = "constraint-add")]
    pub constraint_add: Vec<String>,
    /// Remove a constraint
    #[arg(long = "constraint-rm")]
    pub constraint_rm: Vec<String>,
    /// Add a placement preference
    #[arg(long = "placement-pref-add")]
    pub placement_pref_add: Vec<String>,
    /// Remove a placement preference
    #[arg(long = "placement-pref-rm")]
    pub placement_pref_rm: Vec<String>,
    /// Add an additional supplementary user group to the container
    #[arg(long = "group-add")]
    pub group_add: Vec<String>,
    /// Remove a previously added supplementary user group from the container
    #[arg(long = "group-rm")]
    pub group_rm: Vec<String>,
    /// Add or update a custom DNS server
    #[arg(long = "dns-add")]
    pub dns_add: Vec<String>,
    /// Remove a custom DNS server
    #[arg(long = "dns-rm")]
    pub dns_rm: Vec<String>,
    /// Add or update a DNS option
    #[arg(long = "dns-option-add")]
    pub dns_option_add: Vec<String>,
    /// Remove a DNS option
    #[arg(long = "dns-option-rm")]
    pub dns_option_rm: Vec<String>,
    /// Add or update a custom DNS search domain
    #[arg(long = "dns-search-add")]
    pub dns_search_add: Vec<String>,
    /// Remove a DNS search domain
    #[arg(long = "dns-search-rm")]
    pub dns_search_rm: Vec<String>,
    /// Add a custom host-to-IP mapping ("host:ip")
    #[arg(long = "host-add")]
    pub host_add: Vec<String>,
    /// Remove a custom host-to-IP mapping ("host:ip")
    #[arg(long = "host-rm")]
    pub host_rm: Vec<String>,
    /// Add or update a Sysctl option
    #[arg(long = "sysctl-add")]
    pub sysctl_add: Vec<String>,
    /// Remove a Sysctl option
    #[arg(long = "sysctl-rm")]
    pub sysctl_rm: Vec<String>,
    /// Add or update a ulimit option
    #[arg(long = "ulimit-add")]
    pub ulimit_add: Vec<String>,
    /// Remove a ulimit option
    #[arg(long = "ulimit-rm")]
    pub ulimit_rm: Vec<String>,
    /// Add or update a secret on a service
    #[arg(long = "secret-add")]
    pub secret_add: Vec<String>,
    /// Remove a secret
    #[arg(long = "secret-rm")]
    pub secret_rm: Vec<String>,
    /// Add a network
    #[arg(long = "network-add")]
    pub network_add: Vec<String>,
    /// Remove a network
    #[arg(long = "network-rm")]
    pub network_rm: Vec<String>,
    /// Add or update a config file on a service
    #[arg(long = "config-add")]
    pub config_add: Vec<String>,
    /// Remove a configuration file
    #[arg(long = "config-rm")]
    pub config_rm: Vec<String>,
}

/// The values of `update`'s own flags, checked.
pub struct UpdateValues {
    pub args: Option<Vec<String>>,
    pub rollback: bool,
    pub force: bool,
    env_add: Vec<String>,
    labels: Vec<String>,
    container_labels: Vec<String>,
    mounts: Vec<Value>,
    ports_add: Vec<Value>,
    ports_rm: Vec<Value>,
    prefs_add: Vec<Value>,
    prefs_rm: Vec<Value>,
    dns: Vec<String>,
    hosts: Vec<String>,
    ulimits: Vec<Value>,
    pub secrets_add: Vec<FileRef>,
    pub configs_add: Vec<FileRef>,
    pub networks_add: Vec<Value>,
}

pub fn check_update_flags(u: &UpdateFlags) -> FlagResult<UpdateValues> {
    let flatten = |v: Vec<Vec<Value>>| v.into_iter().flatten().collect();
    Ok(UpdateValues {
        args: opt("args", &u.args, goparse::shlex_split)?,
        rollback: opt("rollback", &u.rollback, goparse::parse_bool)?.unwrap_or(false),
        force: opt("force", &u.force, goparse::parse_bool)?.unwrap_or(false),
        env_add: each("env-add", &u.env_add, validate_env)?,
        labels: each("label-add", &u.label_add, validate_label)?,
        container_labels: each(
            "container-label-add",
            &u.container_label_add,
            validate_label,
        )?,
        mounts: each("mount-add", &u.mount_add, parse_mount)?,
        ports_add: flatten(each("publish-add", &u.publish_add, parse_port)?),
        ports_rm: flatten(each("publish-rm", &u.publish_rm, parse_port)?),
        prefs_add: each("placement-pref-add", &u.placement_pref_add, placement_pref)?,
        prefs_rm: each("placement-pref-rm", &u.placement_pref_rm, placement_pref)?,
        dns: each("dns-add", &u.dns_add, validate_ip)?,
        hosts: each("host-add", &u.host_add, swarm_host)?,
        ulimits: each("ulimit-add", &u.ulimit_add, ulimit)?,
        secrets_add: each("secret-add", &u.secret_add, |v| parse_ref(&SECRET_REFS, v))?,
        configs_add: each("config-add", &u.config_add, |v| parse_ref(&CONFIG_REFS, v))?,
        networks_add: each(
            "network-add",
            &u.network_add,
            super::services_networks::parse_network,
        )?,
    })
}

/// The object at `key`, made when missing or null.
fn obj<'a>(v: &'a mut Value, key: &str) -> &'a mut Value {
    if !v[key].is_object() {
        v[key] = json!({});
    }
    &mut v[key]
}

fn strings(v: &Value) -> Vec<String> {
    v.as_array()
        .into_iter()
        .flatten()
        .filter_map(|s| s.as_str().map(String::from))
        .collect()
}

/// Sets a field as Go's `omitempty` writes it: gone when empty.
fn set_list(parent: &mut Value, key: &str, list: Vec<String>) {
    set_or_remove(parent, key, (!list.is_empty()).then(|| json!(list)));
}

fn set_or_remove(parent: &mut Value, key: &str, v: Option<Value>) {
    let Some(m) = parent.as_object_mut() else {
        return;
    };
    match v {
        Some(v) => insert_in_place(m, key, v),
        None => {
            m.shift_remove(key);
        }
    }
}

/// Inserts keeping the place of an existing key; [`go_order`] puts a new
/// one where Go writes it.
fn insert_in_place(m: &mut Map<String, Value>, key: &str, v: Value) {
    m.insert(key.to_string(), v);
}

/// The fields of the spec's objects in the order of Go's structs.
const GO_FIELDS: &[(&str, &[&str])] = &[
    (
        "",
        &[
            "Name",
            "Labels",
            "TaskTemplate",
            "Mode",
            "UpdateConfig",
            "RollbackConfig",
            "Networks",
            "EndpointSpec",
        ],
    ),
    (
        "TaskTemplate",
        &[
            "ContainerSpec",
            "PluginSpec",
            "NetworkAttachmentSpec",
            "Resources",
            "RestartPolicy",
            "Placement",
            "Networks",
            "LogDriver",
            "ForceUpdate",
            "Runtime",
        ],
    ),
    (
        "ContainerSpec",
        &[
            "Image",
            "Labels",
            "Command",
            "Args",
            "Hostname",
            "Env",
            "Dir",
            "User",
            "Groups",
            "Privileges",
            "Init",
            "StopSignal",
            "TTY",
            "OpenStdin",
            "ReadOnly",
            "Mounts",
            "StopGracePeriod",
            "Healthcheck",
            "Hosts",
            "DNSConfig",
            "Secrets",
            "Configs",
            "Isolation",
            "Sysctls",
            "CapabilityAdd",
            "CapabilityDrop",
            "Ulimits",
            "OomScoreAdj",
        ],
    ),
    ("Resources", &["Limits", "Reservations"]),
    ("Limits", &["NanoCPUs", "MemoryBytes", "Pids"]),
    (
        "Reservations",
        &["NanoCPUs", "MemoryBytes", "GenericResources"],
    ),
    (
        "RestartPolicy",
        &["Condition", "Delay", "MaxAttempts", "Window"],
    ),
    (
        "Placement",
        &["Constraints", "Preferences", "MaxReplicas", "Platforms"],
    ),
    (
        "Healthcheck",
        &[
            "Test",
            "Interval",
            "Timeout",
            "StartPeriod",
            "StartInterval",
            "Retries",
        ],
    ),
    ("EndpointSpec", &["Mode", "Ports"]),
    (
        "UpdateConfig",
        &[
            "Parallelism",
            "Delay",
            "FailureAction",
            "Monitor",
            "MaxFailureRatio",
            "Order",
        ],
    ),
    (
        "RollbackConfig",
        &[
            "Parallelism",
            "Delay",
            "FailureAction",
            "Monitor",
            "MaxFailureRatio",
            "Order",
        ],
    ),
    ("DNSConfig", &["Nameservers", "Search", "Options"]),
    ("LogDriver", &["Name", "Options"]),
];

fn reorder(v: &mut Value, order: &[&str]) {
    let Some(m) = v.as_object_mut() else {
        return;
    };
    let mut old = std::mem::take(m);
    for k in order {
        if let Some(x) = old.shift_remove(*k) {
            m.insert((*k).to_string(), x);
        }
    }
    m.extend(old);
}

fn order_of(key: &str) -> Option<&'static [&'static str]> {
    GO_FIELDS.iter().find(|(k, _)| *k == key).map(|(_, o)| *o)
}

/// Go marshals these maps with their keys sorted.
const GO_MAPS: &[&str] = &["Labels", "Sysctls", "Options", "DriverOpts"];

/// Puts the fields of the spec in Go's order and sorts its maps, so that
/// the body reads as the docker CLI's.
pub fn go_order(spec: &mut Value) {
    fn walk(v: &mut Value, key: &str) {
        if let Some(order) = order_of(key) {
            reorder(v, order);
        }
        if GO_MAPS.contains(&key) {
            if let Some(m) = v.as_object_mut() {
                m.sort_keys();
            }
            return;
        }
        if let Some(m) = v.as_object_mut() {
            for (k, child) in m.iter_mut() {
                if (order_of(k).is_some() || GO_MAPS.contains(&k.as_str())) && !k.is_empty() {
                    walk(child, k);
                }
            }
        }
    }
    walk(spec, "");
}

/// A whole service (as `inspect` prints it) in Go's order.
pub fn go_order_service(s: &mut Value) {
    reorder(
        s,
        &[
            "ID",
            "Version",
            "CreatedAt",
            "UpdatedAt",
            "Spec",
            "PreviousSpec",
            "Endpoint",
            "UpdateStatus",
            "ServiceStatus",
            "JobStatus",
        ],
    );
    for key in ["Spec", "PreviousSpec"] {
        if s[key].is_object() {
            go_order(&mut s[key]);
        }
    }
    if s["Endpoint"].is_object() {
        reorder(&mut s["Endpoint"], &["Spec", "Ports", "VirtualIPs"]);
    }
    if s["UpdateStatus"].is_object() {
        reorder(
            &mut s["UpdateStatus"],
            &["State", "StartedAt", "CompletedAt", "Message"],
        );
    }
}

fn set_str(parent: &mut Value, key: &str, v: &Option<String>) {
    if let Some(v) = v {
        set_or_remove(parent, key, (!v.is_empty()).then(|| json!(v)));
    }
}

/// `updateLabels`: removals (when there are labels), then additions.
fn update_labels(field: &mut Value, rm: &[String], add: &[String], omit_empty: bool) {
    let mut labels: BTreeMap<String, String> =
        serde_json::from_value(field.clone()).unwrap_or_default();
    let had = field.is_object();
    if had {
        for k in rm {
            labels.remove(k);
        }
    }
    if !add.is_empty() {
        labels.extend(kv_map(add));
    }
    if had || !add.is_empty() {
        *field = json!(labels);
    }
    if omit_empty && labels.is_empty() {
        *field = Value::Null;
    }
}

fn env_key(e: &str) -> &str {
    e.split_once('=').map_or(e, |(k, _)| k)
}

/// `updateEnvironment`: removals by name, then additions replacing the
/// variable of the same name. docker's order after an addition is a Go
/// map's; berth keeps the existing order and appends new names.
fn update_env(cs: &mut Value, rm: &[String], add: &[String]) {
    let mut env: Vec<String> = strings(&cs["Env"])
        .into_iter()
        .filter(|e| !rm.iter().any(|r| r == env_key(e)))
        .collect();
    for a in add {
        match env.iter_mut().find(|e| env_key(e) == env_key(a)) {
            Some(e) => *e = a.clone(),
            None => env.push(a.clone()),
        }
    }
    set_list(cs, "Env", env);
}

/// `updateMounts`: additions by target (a target twice is refused), the
/// old mounts of other targets, minus the removed targets; sorted by
/// source then target.
fn update_mounts(cs: &mut Value, add: &[Value], rm: &[String]) -> anyhow::Result<()> {
    let target = |m: &Value| m["Target"].as_str().unwrap_or_default().to_string();
    let mut by_target: BTreeMap<String, Value> = BTreeMap::new();
    for m in add {
        if by_target.insert(target(m), m.clone()).is_some() {
            return Err(status(1, "duplicate mount target"));
        }
    }
    for m in cs["Mounts"].as_array().cloned().unwrap_or_default() {
        by_target.entry(target(&m)).or_insert(m);
    }
    let mut mounts: Vec<Value> = by_target
        .into_values()
        .filter(|m| !rm.contains(&target(m)))
        .collect();
    let source = |m: &Value| m["Source"].as_str().unwrap_or_default().to_string();
    mounts.sort_by_key(|m| (source(m), target(m)));
    set_or_remove(cs, "Mounts", (!mounts.is_empty()).then(|| json!(mounts)));
    Ok(())
}

fn update_map(parent: &mut Value, key: &str, rm: &[String], add: &[String]) {
    if rm.is_empty() && add.is_empty() {
        return;
    }
    let mut m: BTreeMap<String, String> =
        serde_json::from_value(parent[key].clone()).unwrap_or_default();
    for k in kv_map(rm).keys() {
        m.remove(k);
    }
    m.extend(kv_map(add));
    set_or_remove(parent, key, (!m.is_empty()).then(|| json!(m)));
}

/// `updateUlimits`: by name, sorted; always rewritten.
fn update_ulimits(cs: &mut Value, add: &[Value], rm: &[String]) {
    let name = |u: &Value| u["Name"].as_str().unwrap_or_default().to_string();
    let mut by_name: BTreeMap<String, Value> = cs["Ulimits"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|u| (name(u), u.clone()))
        .collect();
    for k in kv_map(rm).keys() {
        by_name.remove(k);
    }
    for u in add {
        by_name.insert(name(u), u.clone());
    }
    let list: Vec<Value> = by_name.into_values().collect();
    set_or_remove(cs, "Ulimits", (!list.is_empty()).then(|| json!(list)));
}

/// `taskResources`: Resources with both Limits and Reservations.
fn task_resources(task: &mut Value) -> &mut Value {
    let r = obj(task, "Resources");
    obj(r, "Limits");
    obj(r, "Reservations");
    r
}

fn set_num(parent: &mut Value, key: &str, v: Option<i64>) {
    if let Some(v) = v {
        set_or_remove(parent, key, (v != 0).then(|| json!(v)));
    }
}

fn update_resources(task: &mut Value, f: &ServiceFlags, c: &Checked) {
    if f.limit_cpu.is_some() || f.limit_memory.is_some() || f.limit_pids.is_some() {
        let limits = &mut task_resources(task)["Limits"];
        set_num(limits, "NanoCPUs", c.limit_cpu);
        set_num(limits, "MemoryBytes", c.limit_memory);
        set_num(limits, "Pids", c.limit_pids);
    }
    if f.reserve_cpu.is_some() || f.reserve_memory.is_some() {
        let res = &mut task_resources(task)["Reservations"];
        set_num(res, "NanoCPUs", c.reserve_cpu);
        set_num(res, "MemoryBytes", c.reserve_memory);
    }
}

fn update_placement(task: &mut Value, u: &UpdateFlags, v: &UpdateValues, c: &Checked) {
    if !u.constraint_add.is_empty() || !u.constraint_rm.is_empty() {
        let p = obj(task, "Placement");
        let mut cons = strings(&p["Constraints"]);
        cons.extend(u.constraint_add.iter().cloned());
        cons.retain(|x| !u.constraint_rm.contains(x));
        cons.sort();
        set_list(p, "Constraints", cons);
    }
    if !u.placement_pref_add.is_empty() || !u.placement_pref_rm.is_empty() {
        let p = obj(task, "Placement");
        let mut prefs = p["Preferences"].as_array().cloned().unwrap_or_default();
        let descriptor = |x: &Value| x["Spread"]["SpreadDescriptor"].as_str().map(String::from);
        prefs.retain(|e| {
            !v.prefs_rm
                .iter()
                .any(|r| descriptor(r).is_some() && descriptor(e) == descriptor(r))
        });
        prefs.extend(v.prefs_add.iter().cloned());
        set_or_remove(p, "Preferences", (!prefs.is_empty()).then(|| json!(prefs)));
    }
    if let Some(m) = c.max_per_node {
        let p = obj(task, "Placement");
        set_or_remove(p, "MaxReplicas", (m != 0).then(|| json!(m)));
    }
}

fn port_key(p: &Value) -> String {
    format!(
        "{}:{}/{}/{}",
        p["PublishedPort"].as_u64().unwrap_or(0),
        p["TargetPort"].as_u64().unwrap_or(0),
        p["Protocol"].as_str().unwrap_or_default(),
        p["PublishMode"].as_str().unwrap_or_default()
    )
}

/// Equal with the defaults filled in: "" is tcp, "" is ingress.
fn same_or_default(a: &Value, b: &Value, default: &str) -> bool {
    let (a, b) = (
        a.as_str().unwrap_or_default(),
        b.as_str().unwrap_or_default(),
    );
    a == b || (a.is_empty() && b == default) || (b.is_empty() && a == default)
}

/// `updatePorts`: the ports minus those removed (by target, protocol and
/// mode), plus new ones, sorted by their `published:target/proto/mode`.
fn update_ports(spec: &mut Value, add: &[Value], rm: &[Value]) {
    let ep = obj(spec, "EndpointSpec");
    let mut set: BTreeMap<String, Value> = BTreeMap::new();
    for p in ep["Ports"].as_array().cloned().unwrap_or_default() {
        set.entry(port_key(&p)).or_insert(p);
    }
    let removed = |p: &Value| {
        rm.iter().any(|r| {
            same_or_default(&p["Protocol"], &r["Protocol"], "tcp")
                && p["TargetPort"] == r["TargetPort"]
                && same_or_default(&p["PublishMode"], &r["PublishMode"], "ingress")
        })
    };
    let mut ports: Vec<Value> = set.values().filter(|p| !removed(p)).cloned().collect();
    for p in add {
        if !set.contains_key(&port_key(p)) {
            ports.push(p.clone());
        }
    }
    ports.sort_by_key(port_key);
    set_or_remove(ep, "Ports", (!ports.is_empty()).then(|| json!(ports)));
}

/// `removeDuplicates`, then the removals, sorted.
fn merged_sorted(old: Vec<String>, add: &[String], rm: &[String]) -> Vec<String> {
    let mut seen = BTreeSet::new();
    let mut out: Vec<String> = old
        .into_iter()
        .chain(add.iter().cloned())
        .filter(|x| seen.insert(x.clone()))
        .filter(|x| !rm.contains(x))
        .collect();
    out.sort();
    out
}

fn update_dns(cs: &mut Value, u: &UpdateFlags, v: &UpdateValues) {
    let any = [
        &u.dns_add,
        &u.dns_rm,
        &u.dns_option_add,
        &u.dns_option_rm,
        &u.dns_search_add,
        &u.dns_search_rm,
    ]
    .iter()
    .any(|l| !l.is_empty());
    if !any {
        return;
    }
    let old = obj(cs, "DNSConfig").clone();
    let dns = Obj::new()
        .list(
            "Nameservers",
            &merged_sorted(strings(&old["Nameservers"]), &v.dns, &u.dns_rm),
        )
        .list(
            "Search",
            &merged_sorted(strings(&old["Search"]), &u.dns_search_add, &u.dns_search_rm),
        )
        .list(
            "Options",
            &merged_sorted(
                strings(&old["Options"]),
                &u.dns_option_add,
                &u.dns_option_rm,
            ),
        )
        .done();
    cs["DNSConfig"] = dns;
}

/// `updateHosts`: a removal is `host` (everywhere) or `host:ip`.
fn update_hosts(cs: &mut Value, u: &UpdateFlags, v: &UpdateValues) {
    if u.host_add.is_empty() && u.host_rm.is_empty() {
        return;
    }
    let rm: Vec<(&str, &str)> = u
        .host_rm
        .iter()
        .map(|e| e.split_once(':').unwrap_or((e, "")))
        .collect();
    let mut hosts = Vec::new();
    for entry in strings(&cs["Hosts"]) {
        let mut parts = entry.split_whitespace();
        let Some(ip) = parts.next() else { continue };
        let names: Vec<&str> = parts
            .filter(|h| {
                !rm.iter()
                    .any(|(host, rip)| (rip.is_empty() || *rip == ip) && h == host)
            })
            .collect();
        if !names.is_empty() {
            hosts.push(format!("{ip} {}", names.join(" ")));
        }
    }
    hosts.extend(v.hosts.iter().cloned());
    let mut seen = BTreeSet::new();
    hosts.retain(|h| seen.insert(h.clone()));
    set_list(cs, "Hosts", hosts);
}

/// `updateHealthcheck`.
fn update_health(cs: &mut Value, f: &ServiceFlags, h: &HealthValues) -> anyhow::Result<()> {
    let hf = &f.health;
    let others = hf.cmd.is_some()
        || hf.interval.is_some()
        || hf.retries.is_some()
        || hf.timeout.is_some()
        || hf.start_period.is_some();
    if !others && hf.no_healthcheck.is_none() {
        return Ok(());
    }
    if h.none == Some(true) {
        if others {
            return Err(status(
                1,
                "--no-healthcheck conflicts with --health-* options",
            ));
        }
        cs["Healthcheck"] = json!({ "Test": ["NONE"] });
        return Ok(());
    }
    let hc = obj(cs, "Healthcheck");
    if strings(&hc["Test"]).first().map(String::as_str) == Some("NONE") {
        set_or_remove(hc, "Test", None);
    }
    set_num(hc, "Interval", h.interval);
    set_num(hc, "Timeout", h.timeout);
    set_num(hc, "StartPeriod", h.start_period);
    set_num(hc, "Retries", h.retries);
    if let Some(cmd) = &h.cmd {
        let test = (!cmd.is_empty()).then(|| json!(["CMD-SHELL", cmd]));
        set_or_remove(hc, "Test", test);
    }
    Ok(())
}

/// `updateCapabilities`: adding wins over dropping; adding a dropped
/// capability only undrops it, and the other way round; `RESET` empties.
fn update_caps(cs: &mut Value, f: &ServiceFlags) {
    if f.cap_add.is_empty() && f.cap_drop.is_empty() {
        return;
    }
    let mut drop = caps_set(&strings(&cs["CapabilityDrop"]));
    let mut add = caps_set(&strings(&cs["CapabilityAdd"]));
    let mut to_add = caps_set(&f.cap_add);
    let mut to_drop = caps_set(&f.cap_drop);
    if to_add.remove("RESET") {
        add.clear();
    }
    if to_drop.remove("RESET") {
        drop.clear();
    }
    for c in &to_drop {
        if !to_add.contains(c) && !add.remove(c) {
            drop.insert(c.clone());
        }
    }
    for c in &to_add {
        if !drop.remove(c) {
            add.insert(c.clone());
        }
    }
    let list = |s: BTreeSet<String>| -> Vec<String> {
        if s.contains("ALL") {
            vec!["ALL".into()]
        } else {
            s.into_iter().collect()
        }
    };
    set_list(cs, "CapabilityDrop", list(drop));
    set_list(cs, "CapabilityAdd", list(add));
}

fn update_container(
    cs: &mut Value,
    f: &ServiceFlags,
    u: &UpdateFlags,
    v: &UpdateValues,
    c: &Checked,
) -> anyhow::Result<()> {
    let cl_rm = &u.container_label_rm;
    update_labels(&mut cs["Labels"], cl_rm, &v.container_labels, true);
    if cs["Labels"].is_null() {
        set_or_remove(cs, "Labels", None);
    }
    set_str(cs, "Image", &u.image);
    if let Some(args) = &v.args {
        set_list(cs, "Args", args.clone());
    }
    if let Some(cmd) = &c.entrypoint {
        set_list(cs, "Command", cmd.clone());
    }
    update_env(cs, &u.env_rm, &v.env_add);
    set_str(cs, "Dir", &f.workdir);
    set_str(cs, "User", &f.user);
    set_str(cs, "Hostname", &f.hostname);
    if let Some(init) = c.init {
        cs["Init"] = json!(init);
    }
    set_str(cs, "Isolation", &f.isolation);
    update_mounts(cs, &v.mounts, &u.mount_rm)?;
    update_map(cs, "Sysctls", &u.sysctl_rm, &u.sysctl_add);
    update_ulimits(cs, &v.ulimits, &u.ulimit_rm);
    if let Some(g) = c.stop_grace {
        cs["StopGracePeriod"] = json!(g);
    }
    if !u.group_add.is_empty() || !u.group_rm.is_empty() {
        let mut groups = strings(&cs["Groups"]);
        groups.extend(u.group_add.iter().cloned());
        groups.retain(|g| !u.group_rm.contains(g));
        groups.sort();
        set_list(cs, "Groups", groups);
    }
    update_dns(cs, u, v);
    update_hosts(cs, u, v);
    Ok(())
}

fn update_mode(spec: &mut Value, c: &Checked) -> anyhow::Result<()> {
    let Some(r) = c.replicas else {
        return Ok(());
    };
    if !spec["Mode"]["Replicated"].is_object() {
        return Err(status(1, "replicas can only be used with replicated mode"));
    }
    spec["Mode"]["Replicated"]["Replicas"] = json!(r);
    Ok(())
}

fn update_task_extras(task: &mut Value, f: &ServiceFlags, v: &UpdateValues, c: &Checked) {
    if let Some(d) = f.log_driver.as_deref().filter(|d| !d.is_empty()) {
        task["LogDriver"] = Obj::new()
            .str("Name", d)
            .map("Options", &kv_map(&c.log_opts))
            .done();
    }
    if v.force {
        let n = task["ForceUpdate"].as_u64().unwrap_or(0);
        task["ForceUpdate"] = json!(n + 1);
    }
}

/// The spec to send: the service's spec with the flags merged in.
pub fn merged_spec(
    service: &Value,
    f: &ServiceFlags,
    u: &UpdateFlags,
    v: &UpdateValues,
    c: &Checked,
) -> anyhow::Result<Value> {
    let mut spec = service["Spec"].clone();
    if !spec.is_object() {
        spec = json!({});
    }
    update_labels(&mut spec["Labels"], &u.label_rm, &v.labels, false);
    let task = obj(&mut spec, "TaskTemplate");
    let cs = obj(task, "ContainerSpec");
    update_container(cs, f, u, v, c)?;
    update_resources(task, f, c);
    if let Some(rp) = restart_policy(f, c, task.get("RestartPolicy").filter(|p| p.is_object())) {
        task["RestartPolicy"] = rp;
    }
    update_placement(task, u, v, c);
    update_mode(&mut spec, c)?;
    for (key, knobs) in [("UpdateConfig", &c.update), ("RollbackConfig", &c.rollback)] {
        if knobs.given {
            let base = spec.get(key).filter(|b| b.is_object()).cloned();
            spec[key] = knobs_over_defaults(knobs, base.as_ref());
        }
    }
    if let Some(mode) = &f.endpoint_mode {
        obj(&mut spec, "EndpointSpec")["Mode"] = json!(mode);
    }
    if !u.publish_add.is_empty() || !u.publish_rm.is_empty() {
        update_ports(&mut spec, &v.ports_add, &v.ports_rm);
    }
    let task = obj(&mut spec, "TaskTemplate");
    update_task_extras(task, f, v, c);
    let cs = obj(task, "ContainerSpec");
    update_health(cs, f, &c.health)?;
    if let Some(t) = c.tty {
        set_or_remove(cs, "TTY", t.then(|| json!(true)));
    }
    if let Some(r) = c.read_only {
        set_or_remove(cs, "ReadOnly", r.then(|| json!(true)));
    }
    set_str(cs, "StopSignal", &f.stop_signal);
    update_caps(cs, f);
    go_order(&mut spec);
    Ok(spec)
}
