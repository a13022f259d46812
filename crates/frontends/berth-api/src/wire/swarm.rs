//! Swarm answers in Docker's JSON, built field by field: dockerd sends
//! some fields even when empty (`Labels: {}`) and omits others (a node's
//! `Name`, `Leader` when false), which the generic models don't capture.

use std::collections::BTreeMap;

use base64::Engine as _;
use berth_swarm_manager::{LocalNodeState, NodeView, SwarmInfo, SwarmView};
use berth_swarm_store::{Availability, Cluster, ClusterSpec, Meta};
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

fn b64(b: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(b)
}

/// The cluster's `TLSInfo`: the root nodes trust, and the issuer new
/// certificates come from (the new root while a rotation runs, as
/// swarmkit's `IssuerFromAPIRootCA`).
fn tls_info(c: &Cluster) -> Value {
    let issuer_pem = c
        .root_ca
        .rotation
        .as_ref()
        .map_or(&c.root_ca.ca_cert, |r| &r.ca_cert);
    let (subject, key) = berth_swarm_ca::RootCa::from_pem(issuer_pem, None)
        .ok()
        .and_then(|r| r.issuer_der())
        .unwrap_or_default();
    json!({
        "TrustRoot": c.root_ca.ca_cert,
        "CertIssuerSubject": b64(&subject),
        "CertIssuerPublicKey": b64(&key),
    })
}

/// A node's `TLSInfo` as it reported it; the cluster's until it has.
fn node_tls_info(n: &berth_swarm_store::Node, trust: Option<&Cluster>) -> Value {
    let t = &n.description.tls_info;
    if !t.trust_root.is_empty() {
        return json!({
            "TrustRoot": t.trust_root,
            "CertIssuerSubject": b64(&t.cert_issuer_subject),
            "CertIssuerPublicKey": b64(&t.cert_issuer_public_key),
        });
    }
    trust.map(tls_info).unwrap_or_else(|| json!({}))
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

pub fn node_answer(v: &NodeView, trust: Option<&Cluster>) -> Value {
    let n = &v.node;
    let (version, created, updated) = meta(&n.meta);
    let mut spec = json!({
        "Labels": n.spec.annotations.labels,
        "Role": n.spec.desired_role.as_str(),
        "Availability": n.spec.availability.as_str(),
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
            "TLSInfo": node_tls_info(n, trust),
        },
        "Status": { "State": n.status.state.as_str(), "Addr": n.status.addr },
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
        { "Type": "Network", "Name": "macvlan" },
        { "Type": "Network", "Name": "null" },
        { "Type": "Network", "Name": "overlay" },
        { "Type": "Volume", "Name": "local" },
    ])
}

/// `/info`'s `Swarm` section.
pub fn info_answer(i: &SwarmInfo) -> Value {
    // a locked node runs no swarm node yet: dockerd has no remotes to show
    let remote: Value = if matches!(
        i.local_state,
        LocalNodeState::Inactive | LocalNodeState::Locked
    ) {
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
            LocalNodeState::Locked => "locked",
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

/// `POST /swarm/unlock`'s body.
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct UnlockBody {
    #[serde(deserialize_with = "nullable")]
    pub unlock_key: String,
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
    pub raft: Option<RaftBody>,
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
pub struct RaftBody {
    #[serde(deserialize_with = "nullable")]
    pub snapshot_interval: u64,
    pub keep_old_snapshots: Option<u64>,
    #[serde(deserialize_with = "nullable")]
    pub log_entries_for_slow_followers: u64,
    #[serde(deserialize_with = "nullable")]
    pub election_tick: u32,
    #[serde(deserialize_with = "nullable")]
    pub heartbeat_tick: u32,
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
    #[serde(rename = "ExternalCAs", deserialize_with = "nullable")]
    pub external_cas: Vec<ExternalCaBody>,
    #[serde(rename = "SigningCACert", deserialize_with = "nullable")]
    pub signing_ca_cert: String,
    #[serde(rename = "SigningCAKey", deserialize_with = "nullable")]
    pub signing_ca_key: String,
    #[serde(deserialize_with = "nullable")]
    pub force_rotate: u64,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct ExternalCaBody {
    #[serde(deserialize_with = "nullable")]
    pub protocol: String,
    #[serde(rename = "URL", deserialize_with = "nullable")]
    pub url: String,
    #[serde(deserialize_with = "nullable")]
    pub options: BTreeMap<String, String>,
    #[serde(rename = "CACert", deserialize_with = "nullable")]
    pub ca_cert: String,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct EncryptionBody {
    #[serde(deserialize_with = "nullable")]
    pub auto_lock_managers: bool,
}

/// The spec merged over swarmkit's defaults: what the client left zero
/// keeps its default, as dockerd's init does.
pub fn merged_spec(body: Option<&SpecBody>) -> Result<ClusterSpec, String> {
    let mut s = ClusterSpec::default();
    let Some(b) = body else { return Ok(s) };
    s.external_cas = external_cas(b.ca_config.as_ref())?;
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
    Ok(s)
}

/// dockerd's conversion of `ExternalCAs`: only cfssl, in any case.
fn external_cas(ca: Option<&CaConfigBody>) -> Result<Vec<berth_swarm_store::ExternalCa>, String> {
    let mut external_cas = Vec::new();
    for e in ca.map(|c| c.external_cas.as_slice()).unwrap_or_default() {
        if !e.protocol.eq_ignore_ascii_case("cfssl") {
            return Err(format!("invalid protocol: {:?}", e.protocol));
        }
        external_cas.push(berth_swarm_store::ExternalCa {
            protocol: "cfssl".into(),
            url: e.url.clone(),
            options: e.options.clone(),
            ca_cert: e.ca_cert.clone(),
        });
    }
    Ok(external_cas)
}

/// `POST /swarm/update`'s spec as dockerd hands it to swarmkit
/// (`SwarmSpecToGRPC`): the whole spec, what the client left zero staying
/// zero (swarmkit then uses its defaults where it reads them).
pub fn update_spec(b: &SpecBody) -> Result<ClusterSpec, String> {
    let name = match b.name.as_str() {
        "" => berth_swarm_store::DEFAULT_CLUSTER_NAME.to_string(),
        "default" => b.name.clone(),
        _ => return Err(r#"swarm spec must be named "default""#.into()),
    };
    let raft = b.raft.as_ref();
    let ca = b.ca_config.as_ref();
    let external_cas = external_cas(ca)?;
    Ok(ClusterSpec {
        annotations: berth_swarm_store::Annotations {
            name,
            labels: b.labels.clone(),
        },
        task_history_retention_limit: b
            .orchestration
            .as_ref()
            .and_then(|o| o.task_history_retention_limit)
            .unwrap_or(0),
        snapshot_interval: raft.map_or(0, |r| r.snapshot_interval),
        keep_old_snapshots: raft.and_then(|r| r.keep_old_snapshots).unwrap_or(0),
        log_entries_for_slow_followers: raft.map_or(0, |r| r.log_entries_for_slow_followers),
        election_tick: raft.map_or(0, |r| r.election_tick),
        heartbeat_tick: raft.map_or(0, |r| r.heartbeat_tick),
        dispatcher_heartbeat_period: b
            .dispatcher
            .as_ref()
            .and_then(|d| d.heartbeat_period)
            .unwrap_or(0),
        node_cert_expiry: ca.and_then(|c| c.node_cert_expiry).unwrap_or(0),
        external_cas,
        signing_ca_cert: ca.map(|c| c.signing_ca_cert.clone()).unwrap_or_default(),
        signing_ca_key: ca.map(|c| c.signing_ca_key.clone()).unwrap_or_default(),
        force_rotate: ca.map_or(0, |c| c.force_rotate),
        autolock_managers: b
            .encryption_config
            .as_ref()
            .is_some_and(|e| e.auto_lock_managers),
    })
}

/// Go's `strconv.ParseBool`.
pub fn go_bool(s: &str) -> Option<bool> {
    match s {
        "1" | "t" | "T" | "TRUE" | "true" | "True" => Some(true),
        "0" | "f" | "F" | "FALSE" | "false" | "False" => Some(false),
        _ => None,
    }
}

/// Go's `strconv.ParseUint(s, 10, 64)`, with its error text.
pub fn go_uint(s: &str) -> Result<u64, String> {
    if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
        return Err(format!("strconv.ParseUint: parsing {s:?}: invalid syntax"));
    }
    s.parse()
        .map_err(|_| format!("strconv.ParseUint: parsing {s:?}: value out of range"))
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
            "CAConfig": { "NodeCertExpiry": 7_200_000_000_000i64,
                "ExternalCAs": [{ "Protocol": "cfssl", "URL": "https://ca:8888", "CACert": "" }] },
            "Orchestration": { "TaskHistoryRetentionLimit": 2 }
        }))
        .unwrap();
        let s = merged_spec(Some(&body)).unwrap();
        assert_eq!(s.external_cas[0].url, "https://ca:8888");
        let bad: SpecBody = serde_json::from_value(
            json!({ "CAConfig": { "ExternalCAs": [{ "Protocol": "acme" }] } }),
        )
        .unwrap();
        assert_eq!(
            merged_spec(Some(&bad)).unwrap_err(),
            r#"invalid protocol: "acme""#
        );
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
    fn an_update_spec_is_the_clients_whole_spec_as_dockerd_converts_it() {
        let body: SpecBody = serde_json::from_value(json!({
            "Name": "", "Labels": {"a": "b"},
            "Orchestration": { "TaskHistoryRetentionLimit": 3 },
            "Raft": { "SnapshotInterval": 500, "KeepOldSnapshots": 1, "ElectionTick": 10, "HeartbeatTick": 1 },
            "Dispatcher": { "HeartbeatPeriod": 7_000_000_000i64 },
            "CAConfig": { "NodeCertExpiry": 0, "ForceRotate": 2, "SigningCACert": "C", "SigningCAKey": "K",
                "ExternalCAs": [{ "Protocol": "CFSSL", "URL": "https://x" }] },
            "TaskDefaults": {}, "EncryptionConfig": { "AutoLockManagers": false }
        }))
        .unwrap();
        let s = update_spec(&body).unwrap();
        assert_eq!(s.annotations.name, "default");
        assert_eq!(s.task_history_retention_limit, 3);
        assert_eq!((s.snapshot_interval, s.keep_old_snapshots), (500, 1));
        assert_eq!(s.log_entries_for_slow_followers, 0, "zero stays zero");
        assert_eq!(s.node_cert_expiry, 0);
        assert_eq!(s.dispatcher_heartbeat_period, 7_000_000_000);
        assert_eq!((s.force_rotate, s.signing_ca_cert.as_str()), (2, "C"));
        assert_eq!(s.external_cas[0].protocol, "cfssl");
        let named: SpecBody = serde_json::from_value(json!({ "Name": "other" })).unwrap();
        assert_eq!(
            update_spec(&named).unwrap_err(),
            r#"swarm spec must be named "default""#
        );
        let bad: SpecBody =
            serde_json::from_value(json!({ "CAConfig": { "ExternalCAs": [{ "Protocol": "x" }] } }))
                .unwrap();
        assert_eq!(update_spec(&bad).unwrap_err(), r#"invalid protocol: "x""#);
        assert_eq!(go_uint("12"), Ok(12));
        assert_eq!(
            go_uint("x1").unwrap_err(),
            r#"strconv.ParseUint: parsing "x1": invalid syntax"#
        );
        assert_eq!(
            go_uint(""),
            Err(r#"strconv.ParseUint: parsing "": invalid syntax"#.into())
        );
        assert_eq!(
            (go_bool("True"), go_bool("0"), go_bool("yes")),
            (Some(true), Some(false), None)
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
