//! Swarm answers in Docker's JSON, built field by field: dockerd sends
//! some fields even when empty (`Labels: {}`) and omits others (a node's
//! `Name`, `Leader` when false), which the generic models don't capture.

use std::collections::BTreeMap;

use base64::Engine as _;
use berth_swarm_manager::{LocalNodeState, NodeView, SwarmInfo, SwarmView};
use berth_swarm_store::{Availability, Cluster, ClusterSpec, Meta, NodeRole, NodeState};
use chrono::SecondsFormat;
use serde::Deserialize;
use serde_json::{Value, json};

fn time(t: &chrono::DateTime<chrono::Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Nanos, true)
}

fn meta(m: &Meta) -> (Value, String, String) {
    (
        json!({ "Index": m.version }),
        time(&m.created_at),
        time(&m.updated_at),
    )
}

pub fn spec_answer(s: &ClusterSpec) -> Value {
    let external: Vec<Value> = s
        .external_cas
        .iter()
        .map(|e| json!({ "Protocol": e.protocol, "URL": e.url, "Options": e.options, "CACert": e.ca_cert }))
        .collect();
    let mut ca = json!({ "NodeCertExpiry": s.node_cert_expiry });
    if !external.is_empty() {
        ca["ExternalCAs"] = json!(external);
    }
    if s.force_rotate > 0 {
        ca["ForceRotate"] = json!(s.force_rotate);
    }
    json!({
        "Name": s.annotations.name,
        "Labels": s.annotations.labels,
        "Orchestration": { "TaskHistoryRetentionLimit": s.task_history_retention_limit },
        "Raft": {
            "SnapshotInterval": s.snapshot_interval,
            "KeepOldSnapshots": s.keep_old_snapshots,
            "LogEntriesForSlowFollowers": s.log_entries_for_slow_followers,
            "ElectionTick": s.election_tick,
            "HeartbeatTick": s.heartbeat_tick,
        },
        "Dispatcher": { "HeartbeatPeriod": s.dispatcher_heartbeat_period },
        "CAConfig": ca,
        "TaskDefaults": {},
        "EncryptionConfig": { "AutoLockManagers": s.autolock_managers },
    })
}

fn tls_info(c: &Cluster) -> Value {
    let b64 = |b: &[u8]| base64::engine::general_purpose::STANDARD.encode(b);
    let (subject, key) = berth_swarm_ca::RootCa::from_pem(&c.root_ca.ca_cert, None)
        .ok()
        .and_then(|r| r.issuer_der())
        .unwrap_or_default();
    json!({
        "TrustRoot": c.root_ca.ca_cert,
        "CertIssuerSubject": b64(&subject),
        "CertIssuerPublicKey": b64(&key),
    })
}

/// `ClusterInfo`: `GET /swarm` without the tokens, and `/info`'s cluster.
pub fn cluster_answer(c: &Cluster) -> Value {
    let (version, created, updated) = meta(&c.meta);
    let pool = if c.default_addr_pool.is_empty() {
        vec!["10.0.0.0/8".to_string()]
    } else {
        c.default_addr_pool.clone()
    };
    json!({
        "ID": c.id,
        "Version": version,
        "CreatedAt": created,
        "UpdatedAt": updated,
        "Spec": spec_answer(&c.spec),
        "TLSInfo": tls_info(c),
        "RootRotationInProgress": c.root_ca.rotation.is_some(),
        "DefaultAddrPool": pool,
        "SubnetSize": if c.subnet_size == 0 { 24 } else { c.subnet_size },
        "DataPathPort": if c.data_path_port == 0 { 4789 } else { c.data_path_port },
    })
}

pub fn swarm_answer(v: &SwarmView) -> Value {
    let mut a = cluster_answer(&v.cluster);
    a["JoinTokens"] = json!({ "Worker": v.worker_token, "Manager": v.manager_token });
    a
}

fn role(r: NodeRole) -> &'static str {
    match r {
        NodeRole::Manager => "manager",
        NodeRole::Worker => "worker",
    }
}

fn availability(a: Availability) -> &'static str {
    match a {
        Availability::Active => "active",
        Availability::Pause => "pause",
        Availability::Drain => "drain",
    }
}

fn state(s: NodeState) -> &'static str {
    match s {
        NodeState::Unknown => "unknown",
        NodeState::Down => "down",
        NodeState::Ready => "ready",
        NodeState::Disconnected => "disconnected",
    }
}

pub fn node_answer(v: &NodeView, trust: Option<&Cluster>) -> Value {
    let n = &v.node;
    let (version, created, updated) = meta(&n.meta);
    let mut spec = json!({
        "Labels": n.spec.annotations.labels,
        "Role": role(n.spec.desired_role),
        "Availability": availability(n.spec.availability),
    });
    if !n.spec.annotations.name.is_empty() {
        spec["Name"] = json!(n.spec.annotations.name);
    }
    let d = &n.description;
    let mut a = json!({
        "ID": n.id,
        "Version": version,
        "CreatedAt": created,
        "UpdatedAt": updated,
        "Spec": spec,
        "Description": {
            "Hostname": d.hostname,
            "Platform": { "Architecture": d.architecture, "OS": d.os },
            "Resources": { "NanoCPUs": d.nano_cpus, "MemoryBytes": d.memory_bytes },
            "Engine": { "EngineVersion": d.engine_version, "Plugins": builtin_plugins() },
            "TLSInfo": trust.map(tls_info).unwrap_or_else(|| json!({})),
        },
        "Status": { "State": state(n.status.state), "Addr": n.status.addr },
    });
    if !n.status.message.is_empty() {
        a["Status"]["Message"] = json!(n.status.message);
    }
    if let Some(m) = &v.manager_status {
        let mut ms = json!({ "Reachability": m.reachability, "Addr": m.addr });
        if m.leader {
            ms["Leader"] = json!(true);
        }
        a["ManagerStatus"] = ms;
    }
    a
}

/// What dockerd lists as a node's engine plugins: its built-in drivers.
fn builtin_plugins() -> Value {
    json!([
        { "Type": "Log", "Name": "json-file" },
        { "Type": "Log", "Name": "local" },
        { "Type": "Log", "Name": "none" },
        { "Type": "Network", "Name": "bridge" },
        { "Type": "Network", "Name": "host" },
        { "Type": "Network", "Name": "null" },
        { "Type": "Volume", "Name": "local" },
    ])
}

/// `/info`'s `Swarm` section.
pub fn info_answer(i: &SwarmInfo) -> Value {
    let remote: Value = if i.local_state == LocalNodeState::Inactive {
        Value::Null
    } else {
        json!(
            i.remote_managers
                .iter()
                .map(|(id, addr)| json!({ "NodeID": id, "Addr": addr }))
                .collect::<Vec<_>>()
        )
    };
    let mut a = json!({
        "NodeID": i.node_id,
        "NodeAddr": i.node_addr,
        "LocalNodeState": match i.local_state {
            LocalNodeState::Inactive => "inactive",
            LocalNodeState::Active => "active",
        },
        "ControlAvailable": i.control_available,
        "Error": i.error,
        "RemoteManagers": remote,
    });
    if let (Some(nodes), Some(managers)) = (i.nodes, i.managers) {
        a["Nodes"] = json!(nodes);
        a["Managers"] = json!(managers);
    }
    if let Some(c) = &i.cluster {
        a["Cluster"] = cluster_answer(c);
    }
    a
}

/// Go reads `null` as the zero value of any field; serde would refuse it.
fn nullable<'de, D, T>(d: D) -> Result<T, D::Error>
where
    D: serde::Deserializer<'de>,
    T: Default + Deserialize<'de>,
{
    Ok(Option::<T>::deserialize(d)?.unwrap_or_default())
}

/// `POST /swarm/init`'s body, as dockerd reads it (all fields optional).
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct InitBody {
    #[serde(deserialize_with = "nullable")]
    pub listen_addr: String,
    #[serde(deserialize_with = "nullable")]
    pub advertise_addr: String,
    #[serde(deserialize_with = "nullable")]
    pub data_path_addr: String,
    #[serde(deserialize_with = "nullable")]
    pub data_path_port: u32,
    #[serde(deserialize_with = "nullable")]
    pub force_new_cluster: bool,
    pub spec: Option<SpecBody>,
    #[serde(deserialize_with = "nullable")]
    pub auto_lock_managers: bool,
    #[serde(deserialize_with = "nullable")]
    pub availability: String,
    #[serde(deserialize_with = "nullable")]
    pub default_addr_pool: Vec<String>,
    #[serde(deserialize_with = "nullable")]
    pub subnet_size: u32,
}

/// `POST /swarm/join`'s body.
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct JoinBody {
    #[serde(deserialize_with = "nullable")]
    pub listen_addr: String,
    #[serde(deserialize_with = "nullable")]
    pub advertise_addr: String,
    #[serde(deserialize_with = "nullable")]
    pub data_path_addr: String,
    #[serde(deserialize_with = "nullable")]
    pub remote_addrs: Vec<String>,
    #[serde(deserialize_with = "nullable")]
    pub join_token: String,
    #[serde(deserialize_with = "nullable")]
    pub availability: String,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct SpecBody {
    #[serde(deserialize_with = "nullable")]
    pub name: String,
    #[serde(deserialize_with = "nullable")]
    pub labels: BTreeMap<String, String>,
    pub orchestration: Option<OrchestrationBody>,
    pub dispatcher: Option<DispatcherBody>,
    #[serde(rename = "CAConfig")]
    pub ca_config: Option<CaConfigBody>,
    pub encryption_config: Option<EncryptionBody>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct OrchestrationBody {
    pub task_history_retention_limit: Option<i64>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct DispatcherBody {
    pub heartbeat_period: Option<i64>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct CaConfigBody {
    pub node_cert_expiry: Option<i64>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct EncryptionBody {
    #[serde(deserialize_with = "nullable")]
    pub auto_lock_managers: bool,
}

/// The spec merged over swarmkit's defaults: what the client left zero
/// keeps its default, as dockerd's init does.
pub fn merged_spec(body: Option<&SpecBody>) -> ClusterSpec {
    let mut s = ClusterSpec::default();
    let Some(b) = body else { return s };
    s.annotations.labels = b.labels.clone();
    if let Some(limit) = b
        .orchestration
        .as_ref()
        .and_then(|o| o.task_history_retention_limit)
    {
        s.task_history_retention_limit = limit;
    }
    if let Some(p) = b
        .dispatcher
        .as_ref()
        .and_then(|d| d.heartbeat_period)
        .filter(|p| *p != 0)
    {
        s.dispatcher_heartbeat_period = p;
    }
    if let Some(e) = b
        .ca_config
        .as_ref()
        .and_then(|c| c.node_cert_expiry)
        .filter(|e| *e != 0)
    {
        s.node_cert_expiry = e;
    }
    s.autolock_managers = b
        .encryption_config
        .as_ref()
        .is_some_and(|e| e.auto_lock_managers);
    s
}

pub fn parse_availability(s: &str) -> Result<Availability, String> {
    match s.to_ascii_lowercase().as_str() {
        "" | "active" => Ok(Availability::Active),
        "pause" => Ok(Availability::Pause),
        "drain" => Ok(Availability::Drain),
        _ => Err(format!("invalid Availability: {s:?}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_default_spec_answers_as_dockerd_shows_it() {
        let a = spec_answer(&ClusterSpec::default());
        assert_eq!(a["Name"], "default");
        assert_eq!(a["Labels"], json!({}), "Labels is always sent");
        assert_eq!(a["Raft"]["SnapshotInterval"], 10000);
        assert_eq!(a["Dispatcher"]["HeartbeatPeriod"], 5_000_000_000i64);
        assert_eq!(a["CAConfig"]["NodeCertExpiry"], 7_776_000_000_000_000i64);
        assert!(a["CAConfig"].get("ExternalCAs").is_none());
    }

    #[test]
    fn nulls_read_as_go_reads_them() {
        let b: InitBody = serde_json::from_value(json!({
            "ListenAddr": null, "DefaultAddrPool": null, "Spec": { "Labels": null }
        }))
        .unwrap();
        assert!(b.listen_addr.is_empty() && b.default_addr_pool.is_empty());
        assert!(b.spec.unwrap().labels.is_empty());
    }

    #[test]
    fn an_init_spec_keeps_the_defaults_of_what_it_leaves_zero() {
        let body: SpecBody = serde_json::from_value(json!({
            "Dispatcher": { "HeartbeatPeriod": 0 },
            "CAConfig": { "NodeCertExpiry": 7_200_000_000_000i64 },
            "Orchestration": { "TaskHistoryRetentionLimit": 2 }
        }))
        .unwrap();
        let s = merged_spec(Some(&body));
        assert_eq!(s.dispatcher_heartbeat_period, 5_000_000_000);
        assert_eq!(s.node_cert_expiry, 7_200_000_000_000);
        assert_eq!(s.task_history_retention_limit, 2);
        assert_eq!(parse_availability("Drain"), Ok(Availability::Drain));
        assert!(
            parse_availability("nope")
                .unwrap_err()
                .contains("invalid Availability")
        );
    }

    #[test]
    fn an_inactive_node_shows_dockerds_empty_swarm_section() {
        let i = SwarmInfo {
            node_id: String::new(),
            node_addr: String::new(),
            local_state: LocalNodeState::Inactive,
            control_available: false,
            error: String::new(),
            remote_managers: Vec::new(),
            nodes: None,
            managers: None,
            cluster: None,
        };
        assert_eq!(
            info_answer(&i),
            json!({"NodeID":"","NodeAddr":"","LocalNodeState":"inactive","ControlAvailable":false,"Error":"","RemoteManagers":null})
        );
    }
}
