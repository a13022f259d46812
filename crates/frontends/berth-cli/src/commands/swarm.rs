//! `berth swarm init|join|join-token|leave` and `berth node ls|inspect`:
//! the docker CLI 28's requests and texts, over raw HTTP so that the
//! daemon's JSON reaches templates and `inspect` unchanged.

use anyhow::Result;
use serde_json::{Value, json};

use crate::output::{json_indent, print_format_or, render_template};
use crate::rawhttp;
use crate::{Ctx, status};

const DEFAULT_LISTEN_ADDR: &str = "0.0.0.0:2377";

/// The daemon's answer to a request, or its error in docker's words.
pub(crate) async fn answer(code: u16, body: rawhttp::PendingBody) -> Result<Vec<u8>> {
    if (200..300).contains(&code) {
        return body.read_all().await;
    }
    let msg = body.error_message().await;
    Err(status(1, format!("Error response from daemon: {msg}")))
}

pub(crate) async fn get_json(ctx: &Ctx, path: &str) -> Result<Value> {
    let (code, body) = rawhttp::get(&ctx.socket, path).await?;
    let bytes = answer(code, body).await?;
    Ok(serde_json::from_slice(&bytes)?)
}

pub(crate) async fn post(ctx: &Ctx, path: &str, body: Option<&Value>) -> Result<Vec<u8>> {
    let (code, pending) = match body {
        Some(b) => rawhttp::post_json(&ctx.socket, path, b.to_string().as_bytes()).await?,
        None => rawhttp::post_headers(&ctx.socket, path).await?,
    };
    answer(code, pending).await
}

pub(crate) fn flag_error(value: &str, flag: &str, why: &str) -> anyhow::Error {
    status(
        125,
        format!("invalid argument \"{value}\" for \"--{flag}\" flag: {why}"),
    )
}

/// The docker CLI's `NodeAddrOption`: `opts.ParseTCPAddr` over a default
/// (`0.0.0.0:2377`), missing host or port taken from the default.
pub fn node_addr(value: &str, default: &str) -> Result<String, String> {
    let split = |a: &str| -> (String, String) {
        if let Some(rest) = a.strip_prefix('[')
            && let Some((host, tail)) = rest.split_once(']')
        {
            return (
                host.to_string(),
                tail.strip_prefix(':').unwrap_or("").to_string(),
            );
        }
        match a.rsplit_once(':') {
            Some((h, p)) if !h.contains(':') => (h.to_string(), p.to_string()),
            _ => (a.to_string(), String::new()),
        }
    };
    let rest = match value.split_once("://") {
        Some(("tcp", rest)) => rest,
        Some(_) => return Err(format!("invalid proto, expected tcp: {value}")),
        None => value,
    };
    let (rest, path) = match rest.find('/') {
        Some(i) => (&rest[..i], &rest[i..]),
        None => (rest, ""),
    };
    let (dh, dp) = split(default);
    let (mut host, mut port) = split(rest);
    if host.is_empty() {
        host = dh;
    }
    if port.is_empty() {
        port = dp;
    }
    if !port.is_empty() && port.parse::<u16>().is_err() {
        return Err(format!("invalid port \"{port}\" after host"));
    }
    let host = if host.contains(':') {
        format!("[{host}]")
    } else {
        host
    };
    Ok(format!("{host}:{port}{path}"))
}

/// A CIDR as Go's `net.IPNet.String()` shows what `net.ParseCIDR`
/// read: the network address, host bits cleared.
pub fn cidr_network(s: &str) -> Option<String> {
    let (ip, len) = s.split_once('/')?;
    let len: u32 = len.parse().ok()?;
    match ip.parse::<std::net::IpAddr>().ok()? {
        std::net::IpAddr::V4(v4) if len <= 32 => {
            let mask = if len == 0 { 0 } else { u32::MAX << (32 - len) };
            Some(format!(
                "{}/{len}",
                std::net::Ipv4Addr::from(u32::from(v4) & mask)
            ))
        }
        std::net::IpAddr::V6(v6) if len <= 128 => {
            let mask = if len == 0 {
                0
            } else {
                u128::MAX << (128 - len)
            };
            Some(format!(
                "{}/{len}",
                std::net::Ipv6Addr::from(u128::from(v6) & mask)
            ))
        }
        _ => None,
    }
}

fn availability(a: &Option<String>) -> Result<String> {
    match a {
        None => Ok(String::new()),
        Some(v) => {
            let l = v.to_ascii_lowercase();
            if matches!(l.as_str(), "active" | "pause" | "drain") {
                Ok(l)
            } else {
                Err(status(
                    1,
                    format!(
                        "invalid availability \"{v}\", only active, pause and drain are supported"
                    ),
                ))
            }
        }
    }
}

#[derive(clap::Args, Debug, Default)]
pub struct InitArgs {
    /// Listen address (format: "<ip|interface>[:port]")
    #[arg(long, default_value = DEFAULT_LISTEN_ADDR)]
    listen_addr: String,
    /// Advertised address (format: "<ip|interface>[:port]")
    #[arg(long, default_value = "")]
    advertise_addr: String,
    /// Address or interface to use for data path traffic (format: "<ip|interface>")
    #[arg(long, default_value = "")]
    data_path_addr: String,
    /// Port number to use for data path traffic (1024 - 49151)
    #[arg(long, default_value_t = 0)]
    data_path_port: u32,
    /// Force create a new cluster from current state
    #[arg(long)]
    force_new_cluster: bool,
    /// Enable manager autolocking (requiring an unlock key to start a stopped manager)
    #[arg(long)]
    autolock: bool,
    /// Availability of the node ("active", "pause", "drain")
    #[arg(long)]
    availability: Option<String>,
    /// default address pool in CIDR format
    #[arg(long, value_delimiter = ',')]
    default_addr_pool: Vec<String>,
    /// default address pool subnet mask length
    #[arg(long, default_value_t = 24)]
    default_addr_pool_mask_length: u32,
    /// Task history retention limit
    #[arg(long)]
    task_history_limit: Option<i64>,
    /// Dispatcher heartbeat period (ns|us|ms|s|m|h)
    #[arg(long)]
    dispatcher_heartbeat: Option<String>,
    /// Validity period for node certificates (ns|us|ms|s|m|h)
    #[arg(long)]
    cert_expiry: Option<String>,
    /// Specifications of one or more certificate signing endpoints
    #[arg(long)]
    external_ca: Vec<String>,
    /// Number of additional Raft snapshots to retain
    #[arg(long)]
    max_snapshots: Option<u64>,
    /// Number of log entries between Raft snapshots
    #[arg(long)]
    snapshot_interval: Option<u64>,
}

/// The body `docker swarm init` sends: Go's `swarm.InitRequest`, its
/// spec zero but for the flags given.
pub fn init_body(a: &InitArgs) -> Result<Value> {
    let listen = node_addr(&a.listen_addr, DEFAULT_LISTEN_ADDR)
        .map_err(|e| flag_error(&a.listen_addr, "listen-addr", &e))?;
    let mut pools = Vec::new();
    for p in &a.default_addr_pool {
        pools.push(cidr_network(p).ok_or_else(|| {
            flag_error(
                p,
                "default-addr-pool",
                &format!("invalid CIDR address: {p}"),
            )
        })?);
    }
    let duration = |v: &Option<String>, flag: &str| -> Result<Option<i64>> {
        v.as_ref()
            .map(|s| {
                berth_units::parse_go_duration(s)
                    .ok_or_else(|| flag_error(s, flag, &format!("time: invalid duration \"{s}\"")))
            })
            .transpose()
    };
    let mut orchestration = json!({});
    if let Some(l) = a.task_history_limit {
        orchestration["TaskHistoryRetentionLimit"] = json!(l);
    }
    let mut raft = json!({ "ElectionTick": 0, "HeartbeatTick": 0 });
    if let Some(n) = a.snapshot_interval.filter(|n| *n != 0) {
        raft["SnapshotInterval"] = json!(n);
    }
    if let Some(n) = a.max_snapshots {
        raft["KeepOldSnapshots"] = json!(n);
    }
    let mut dispatcher = json!({});
    if let Some(d) = duration(&a.dispatcher_heartbeat, "dispatcher-heartbeat")?.filter(|d| *d != 0)
    {
        dispatcher["HeartbeatPeriod"] = json!(d);
    }
    let mut ca = json!({});
    if let Some(d) = duration(&a.cert_expiry, "cert-expiry")?.filter(|d| *d != 0) {
        ca["NodeCertExpiry"] = json!(d);
    }
    if !a.external_ca.is_empty() {
        let cas = a
            .external_ca
            .iter()
            .map(|e| super::swarm_ca::external_ca(e))
            .collect::<Result<Vec<_>>>()?;
        ca["ExternalCAs"] = json!(cas);
    }
    Ok(json!({
        "ListenAddr": listen,
        "AdvertiseAddr": a.advertise_addr,
        "DataPathAddr": a.data_path_addr,
        "DataPathPort": a.data_path_port,
        "ForceNewCluster": a.force_new_cluster,
        "Spec": {
            "Labels": null,
            "Orchestration": orchestration,
            "Raft": raft,
            "Dispatcher": dispatcher,
            "CAConfig": ca,
            "TaskDefaults": {},
            "EncryptionConfig": { "AutoLockManagers": a.autolock },
        },
        "AutoLockManagers": a.autolock,
        "Availability": availability(&a.availability)?,
        "DefaultAddrPool": pools,
        "SubnetSize": a.default_addr_pool_mask_length,
    }))
}

pub async fn init(ctx: &Ctx, a: InitArgs) -> Result<i32> {
    let body = init_body(&a)?;
    let id = match post(ctx, "/swarm/init", Some(&body)).await {
        Ok(b) => serde_json::from_slice::<String>(&b).unwrap_or_else(|_| {
            String::from_utf8_lossy(&b)
                .trim()
                .trim_matches('"')
                .to_string()
        }),
        Err(e) => {
            let msg = e.to_string();
            if msg.contains("could not choose an IP address to advertise")
                || msg.contains("could not find the system's IP address")
            {
                return Err(status(
                    1,
                    format!("{msg} - specify one with --advertise-addr"),
                ));
            }
            return Err(e);
        }
    };
    print!("Swarm initialized: current node ({id}) is now a manager.\n\n");
    print_join_command(ctx, &id, true, false).await?;
    println!(
        "To add a manager to this swarm, run 'docker swarm join-token manager' and follow the instructions."
    );
    if a.autolock {
        let key = get_json(ctx, "/swarm/unlockkey")
            .await
            .map_err(|e| status(1, format!("could not fetch unlock key: {e}")))?;
        let key = key["UnlockKey"].as_str().unwrap_or_default();
        print!("{}", unlock_text(key));
    }
    Ok(0)
}

/// `printUnlockCommand`.
pub fn unlock_text(key: &str) -> String {
    if key.is_empty() {
        return String::new();
    }
    format!(
        "To unlock a swarm manager after it restarts, run the `docker swarm unlock`\ncommand and provide the following key:\n\n    {key}\n\nRemember to store this key in a password manager, since without it you\nwill not be able to restart the manager.\n"
    )
}

/// `printJoinCommand`'s text for a node and the swarm's tokens.
pub fn join_text(node: &Value, swarm: &Value, worker: bool, manager: bool) -> String {
    let Some(addr) = node
        .get("ManagerStatus")
        .filter(|m| !m.is_null())
        .map(|m| m["Addr"].as_str().unwrap_or_default())
    else {
        return String::new();
    };
    let token = |k: &str| {
        swarm["JoinTokens"][k]
            .as_str()
            .unwrap_or_default()
            .to_string()
    };
    let mut out = String::new();
    if worker {
        out.push_str(&format!(
            "To add a worker to this swarm, run the following command:\n\n    docker swarm join --token {} {addr}\n\n",
            token("Worker")
        ));
    }
    if manager {
        out.push_str(&format!(
            "To add a manager to this swarm, run the following command:\n\n    docker swarm join --token {} {addr}\n\n",
            token("Manager")
        ));
    }
    out
}

async fn print_join_command(ctx: &Ctx, node_id: &str, worker: bool, manager: bool) -> Result<()> {
    let node = get_json(ctx, &format!("/nodes/{}", rawhttp::encode(node_id))).await?;
    let swarm = get_json(ctx, "/swarm").await?;
    print!("{}", join_text(&node, &swarm, worker, manager));
    Ok(())
}

#[derive(clap::Args, Debug)]
pub struct JoinArgs {
    /// Listen address (format: "<ip|interface>[:port]")
    #[arg(long, default_value = DEFAULT_LISTEN_ADDR)]
    listen_addr: String,
    /// Advertised address (format: "<ip|interface>[:port]")
    #[arg(long, default_value = "")]
    advertise_addr: String,
    /// Address or interface to use for data path traffic (format: "<ip|interface>")
    #[arg(long, default_value = "")]
    data_path_addr: String,
    /// Token for entry into the swarm
    #[arg(long, default_value = "")]
    token: String,
    /// Availability of the node ("active", "pause", "drain")
    #[arg(long)]
    availability: Option<String>,
    #[arg(value_name = "HOST:PORT")]
    remote: String,
}

pub fn join_body(a: &JoinArgs) -> Result<Value> {
    let listen = node_addr(&a.listen_addr, DEFAULT_LISTEN_ADDR)
        .map_err(|e| flag_error(&a.listen_addr, "listen-addr", &e))?;
    Ok(json!({
        "ListenAddr": listen,
        "AdvertiseAddr": a.advertise_addr,
        "DataPathAddr": a.data_path_addr,
        "RemoteAddrs": [a.remote],
        "JoinToken": a.token,
        "Availability": availability(&a.availability)?,
    }))
}

pub async fn join(ctx: &Ctx, a: JoinArgs) -> Result<i32> {
    let body = join_body(&a)?;
    post(ctx, "/swarm/join", Some(&body)).await?;
    let info = get_json(ctx, "/info").await?;
    if info["Swarm"]["ControlAvailable"].as_bool() == Some(true) {
        println!("This node joined a swarm as a manager.");
    } else {
        println!("This node joined a swarm as a worker.");
    }
    Ok(0)
}

#[derive(clap::Args, Debug)]
pub struct JoinTokenArgs {
    /// Rotate join token
    #[arg(long)]
    rotate: bool,
    /// Only display token
    #[arg(short = 'q', long)]
    quiet: bool,
    #[arg(value_name = "worker|manager")]
    role: String,
}

pub async fn join_token(ctx: &Ctx, a: JoinTokenArgs) -> Result<i32> {
    let worker = a.role == "worker";
    let manager = a.role == "manager";
    if !worker && !manager {
        return Err(status(1, format!("unknown role {}", a.role)));
    }
    if a.rotate {
        let sw = get_json(ctx, "/swarm").await?;
        let version = sw["Version"]["Index"].as_u64().unwrap_or(0);
        let path = format!(
            "/swarm/update?rotateManagerToken={manager}&rotateManagerUnlockKey=false&rotateWorkerToken={worker}&version={version}"
        );
        post(ctx, &path, Some(&sw["Spec"])).await?;
        if !a.quiet {
            print!("Successfully rotated {} join token.\n\n", a.role);
        }
    }
    let sw = get_json(ctx, "/swarm").await?;
    if a.quiet {
        let k = if worker { "Worker" } else { "Manager" };
        println!("{}", sw["JoinTokens"][k].as_str().unwrap_or_default());
        return Ok(0);
    }
    let info = get_json(ctx, "/info").await?;
    let id = info["Swarm"]["NodeID"].as_str().unwrap_or_default();
    print_join_command(ctx, id, worker, manager).await?;
    Ok(0)
}

#[derive(clap::Args, Debug)]
pub struct LeaveArgs {
    /// Force this node to leave the swarm, ignoring warnings
    #[arg(short = 'f', long)]
    force: bool,
}

pub async fn leave(ctx: &Ctx, a: LeaveArgs) -> Result<i32> {
    let path = if a.force {
        "/swarm/leave?force=1"
    } else {
        "/swarm/leave"
    };
    post(ctx, path, None).await?;
    println!("Node left the swarm.");
    Ok(0)
}

const NODE_TABLE: &str = "table {{.ID}} {{if .Self}}*{{else}} {{ end }}\t{{.Hostname}}\t{{.Status}}\t{{.Availability}}\t{{.ManagerStatus}}\t{{.EngineVersion}}";

const NODE_HEADERS: &[(&str, &str)] = &[
    ("ID", "ID"),
    ("Self", ""),
    ("Hostname", "HOSTNAME"),
    ("Status", "STATUS"),
    ("Availability", "AVAILABILITY"),
    ("ManagerStatus", "MANAGER STATUS"),
    ("EngineVersion", "ENGINE VERSION"),
    ("TLSStatus", "TLS STATUS"),
];

/// The docker CLI's `formatter.PrettyPrint` of a string: the first
/// letter up, the rest down ("+0000 UTC" reads "+0000 utc").
pub fn pretty(s: &str) -> String {
    let mut c = s.chars();
    match c.next() {
        Some(f) => f
            .to_uppercase()
            .chain(c.as_str().to_lowercase().chars())
            .collect(),
        None => String::new(),
    }
}

fn tls_empty(t: &Value) -> bool {
    match t {
        Value::Object(m) => m.values().all(Value::is_null),
        _ => true,
    }
}

/// One row of `node ls`: the fields of docker's node formatter.
pub fn node_row(n: &Value, info: &Value) -> Value {
    let s = |v: &Value| v.as_str().unwrap_or_default().to_string();
    let manager = match n.get("ManagerStatus").filter(|m| !m.is_null()) {
        Some(m) if m["Leader"].as_bool() == Some(true) => "Leader".to_string(),
        Some(m) => s(&m["Reachability"]),
        None => String::new(),
    };
    let cluster_tls = &info["Swarm"]["Cluster"]["TLSInfo"];
    let node_tls = &n["Description"]["TLSInfo"];
    let tls = if info["Swarm"]["Cluster"].is_null() || tls_empty(cluster_tls) || tls_empty(node_tls)
    {
        "Unknown"
    } else if ["TrustRoot", "CertIssuerSubject", "CertIssuerPublicKey"]
        .iter()
        .all(|k| cluster_tls[k] == node_tls[k])
    {
        "Ready"
    } else {
        "Needs Rotation"
    };
    let id = s(&n["ID"]);
    let own = info["Swarm"]["NodeID"].as_str().unwrap_or_default();
    json!({
        "ID": id,
        "Self": id == own,
        "Hostname": s(&n["Description"]["Hostname"]),
        "Status": pretty(&s(&n["Status"]["State"])),
        "Availability": pretty(&s(&n["Spec"]["Availability"])),
        "ManagerStatus": pretty(&manager),
        "EngineVersion": s(&n["Description"]["Engine"]["EngineVersion"]),
        "TLSStatus": tls,
    })
}

/// `sortorder.NaturalLess`: runs of digits compare as numbers.
pub fn natural_less(a: &str, b: &str) -> bool {
    let (a, b) = (a.as_bytes(), b.as_bytes());
    let (mut i, mut j) = (0, 0);
    while i < a.len() && j < b.len() {
        let (ca, cb) = (a[i], b[j]);
        if ca.is_ascii_digit() && cb.is_ascii_digit() {
            // skip leading zeros, then compare lengths, then digits
            let (si, sj) = (i, j);
            while i < a.len() && a[i] == b'0' {
                i += 1;
            }
            while j < b.len() && b[j] == b'0' {
                j += 1;
            }
            let (ni, nj) = (i, j);
            while i < a.len() && a[i].is_ascii_digit() {
                i += 1;
            }
            while j < b.len() && b[j].is_ascii_digit() {
                j += 1;
            }
            let (da, db) = (&a[ni..i], &b[nj..j]);
            if da.len() != db.len() {
                return da.len() < db.len();
            }
            if da != db {
                return da < db;
            }
            // equal values: fewer leading zeros first
            if ni - si != nj - sj {
                return ni - si < nj - sj;
            }
            continue;
        }
        if ca != cb {
            return ca < cb;
        }
        i += 1;
        j += 1;
    }
    a.len() - i < b.len() - j
}

#[derive(clap::Args, Debug)]
pub struct NodeLsArgs {
    /// Only display IDs
    #[arg(short = 'q', long)]
    quiet: bool,
    /// Format output using a custom template
    #[arg(long)]
    format: Option<String>,
    /// Filter output based on conditions provided
    #[arg(short = 'f', long = "filter")]
    filter: Vec<String>,
}

pub async fn node_ls(ctx: &Ctx, a: NodeLsArgs) -> Result<i32> {
    let filters = super::containers::parse_filters(&a.filter)?;
    let path = match filters {
        Some(f) if !f.is_empty() => format!(
            "/nodes?filters={}",
            rawhttp::encode(&serde_json::to_string(&f)?)
        ),
        _ => "/nodes".to_string(),
    };
    let nodes = get_json(ctx, &path).await?;
    let mut nodes = nodes.as_array().cloned().unwrap_or_default();
    let info = if !nodes.is_empty() && !a.quiet {
        get_json(ctx, "/info").await?
    } else {
        Value::Null
    };
    nodes.sort_by(|x, y| {
        let h = |n: &Value| {
            n["Description"]["Hostname"]
                .as_str()
                .unwrap_or_default()
                .to_string()
        };
        let (hx, hy) = (h(x), h(y));
        if natural_less(&hx, &hy) {
            std::cmp::Ordering::Less
        } else if natural_less(&hy, &hx) {
            std::cmp::Ordering::Greater
        } else {
            std::cmp::Ordering::Equal
        }
    });
    let rows: Vec<Value> = nodes.iter().map(|n| node_row(n, &info)).collect();
    let format = a.format.clone().filter(|f| !f.is_empty()).or_else(|| {
        (!a.quiet)
            .then(|| crate::config::format_for("nodesFormat"))
            .flatten()
    });
    let default = if a.quiet { "{{.ID}}" } else { NODE_TABLE };
    let format = match format.as_deref() {
        Some("table") | None => default.to_string(),
        Some("raw") if a.quiet => "node_id: {{.ID}}".to_string(),
        Some("raw") => "node_id: {{.ID}}\\nhostname: {{.Hostname}}\\nstatus: {{.Status}}\\navailability: {{.Availability}}\\nmanager_status: {{.ManagerStatus}}\\n".to_string(),
        Some(f) => f.to_string(),
    };
    print_format_or(Some(&format), default, &rows, NODE_HEADERS)?;
    Ok(0)
}

/// docker's Go `time.Time.String()` of an RFC 3339 time.
pub(crate) fn go_time(t: &str) -> String {
    let Ok(t) = chrono::DateTime::parse_from_rfc3339(t) else {
        return t.to_string();
    };
    let frac = format!("{:09}", t.timestamp_subsec_nanos());
    let frac = frac.trim_end_matches('0');
    let off = t.offset().local_minus_utc();
    let zone = if off == 0 {
        "+0000 UTC".to_string()
    } else {
        let sign = if off < 0 { '-' } else { '+' };
        let o = off.abs();
        format!(
            "{sign}{:02}{:02} {sign}{:02}{:02}",
            o / 3600,
            (o / 60) % 60,
            o / 3600,
            (o / 60) % 60
        )
    };
    format!(
        "{}{}{} {zone}",
        t.format("%Y-%m-%d %H:%M:%S"),
        if frac.is_empty() { "" } else { "." },
        frac
    )
}

const NODE_PRETTY: &str = r#"ID:			{{.ID}}
{{- if .Name }}
Name:			{{.Name}}
{{- end }}
{{- if .Labels }}
Labels:
{{- range $k, $v := .Labels }}
 - {{ $k }}{{if $v }}={{ $v }}{{ end }}
{{- end }}{{ end }}
Hostname:              	{{.Hostname}}
Joined at:             	{{.CreatedAt}}
Status:
 State:			{{.StatusState}}
 {{- if .HasStatusMessage}}
 Message:              	{{.StatusMessage}}
 {{- end}}
 Availability:         	{{.SpecAvailability}}
 {{- if .Status.Addr}}
 Address:		{{.StatusAddr}}
 {{- end}}
{{- if .HasManagerStatus}}
Manager Status:
 Address:		{{.ManagerStatusAddr}}
 Raft Status:		{{.ManagerStatusReachability}}
 {{- if .IsManagerStatusLeader}}
 Leader:		Yes
 {{- else}}
 Leader:		No
 {{- end}}
{{- end}}
Platform:
 Operating System:	{{.PlatformOS}}
 Architecture:		{{.PlatformArchitecture}}
Resources:
 CPUs:			{{.ResourceNanoCPUs}}
 Memory:		{{.ResourceMemory}}
{{- if .HasEnginePlugins}}
Plugins:
{{- range $k, $v := .EnginePlugins }}
 {{ $k }}:{{if $v }}		{{ $v }}{{ end }}
{{- end }}
{{- end }}
Engine Version:		{{.EngineVersion}}
{{- if .EngineLabels}}
Engine Labels:
{{- range $k, $v := .EngineLabels }}
 - {{ $k }}{{if $v }}={{ $v }}{{ end }}
{{- end }}{{- end }}
{{- if .HasTLSInfo}}
TLS Info:
 TrustRoot:
{{.TLSInfoTrustRoot}}
 Issuer Subject:	{{.TLSInfoCertIssuerSubject}}
 Issuer Public Key:	{{.TLSInfoCertIssuerPublicKey}}
{{- end}}"#;

/// The values `node inspect --pretty`'s template reads (docker's
/// `nodeInspectContext` methods).
pub fn pretty_context(n: &Value) -> Value {
    let s = |v: &Value| v.as_str().unwrap_or_default().to_string();
    let d = &n["Description"];
    let ms = n.get("ManagerStatus").filter(|m| !m.is_null());
    let mut plugins: std::collections::BTreeMap<String, Vec<String>> = Default::default();
    for p in d["Engine"]["Plugins"].as_array().into_iter().flatten() {
        plugins
            .entry(s(&p["Type"]))
            .or_default()
            .push(s(&p["Name"]));
    }
    let plugins: serde_json::Map<String, Value> = plugins
        .into_iter()
        .map(|(k, v)| (k, json!(v.join(", "))))
        .collect();
    let mem = d["Resources"]["MemoryBytes"].as_i64().unwrap_or(0);
    let tls = &d["TLSInfo"];
    json!({
        "ID": s(&n["ID"]),
        "Name": s(&n["Spec"]["Name"]),
        "Labels": n["Spec"]["Labels"],
        "Hostname": s(&d["Hostname"]),
        "CreatedAt": pretty(&go_time(&s(&n["CreatedAt"]))),
        "StatusState": pretty(&s(&n["Status"]["State"])),
        "HasStatusMessage": !s(&n["Status"]["Message"]).is_empty(),
        "StatusMessage": pretty(&s(&n["Status"]["Message"])),
        "SpecAvailability": pretty(&s(&n["Spec"]["Availability"])),
        "Status": n["Status"],
        "StatusAddr": s(&n["Status"]["Addr"]),
        "HasManagerStatus": ms.is_some(),
        "ManagerStatusAddr": ms.map(|m| s(&m["Addr"])).unwrap_or_default(),
        "ManagerStatusReachability": ms.map(|m| pretty(&s(&m["Reachability"]))).unwrap_or_default(),
        "IsManagerStatusLeader": ms.is_some_and(|m| m["Leader"].as_bool() == Some(true)),
        "PlatformOS": s(&d["Platform"]["OS"]),
        "PlatformArchitecture": s(&d["Platform"]["Architecture"]),
        "ResourceNanoCPUs": d["Resources"]["NanoCPUs"].as_i64().unwrap_or(0) / 1_000_000_000,
        "ResourceMemory": if mem == 0 { String::new() } else { berth_units::bytes_size(mem as f64) },
        "HasEnginePlugins": !plugins.is_empty(),
        "EnginePlugins": plugins,
        "EngineVersion": s(&d["Engine"]["EngineVersion"]),
        "EngineLabels": d["Engine"]["Labels"],
        "HasTLSInfo": !tls_empty(tls),
        "TLSInfoTrustRoot": s(&tls["TrustRoot"]),
        "TLSInfoCertIssuerSubject": s(&tls["CertIssuerSubject"]),
        "TLSInfoCertIssuerPublicKey": s(&tls["CertIssuerPublicKey"]),
    })
}

pub fn render_pretty(n: &Value) -> Result<String> {
    render_template(NODE_PRETTY, &pretty_context(n))
}

#[derive(clap::Args, Debug)]
pub struct NodeInspectArgs {
    /// Format output using a custom template
    #[arg(short = 'f', long)]
    format: Option<String>,
    /// Print the information in a human friendly format
    #[arg(long)]
    pretty: bool,
    #[arg(required = true, value_name = "self|NODE")]
    nodes: Vec<String>,
}

/// docker's `node.Reference`: `self` is the node's own ID from /info.
pub(crate) async fn node_ref(ctx: &Ctx, r: &str) -> Result<String> {
    if r != "self" {
        return Ok(r.to_string());
    }
    let info = get_json(ctx, "/info").await?;
    let id = info["Swarm"]["NodeID"].as_str().unwrap_or_default();
    if id.is_empty() {
        get_json(ctx, "/nodes").await?;
        return Err(status(1, "node ID not found in /info"));
    }
    Ok(id.to_string())
}

pub async fn node_inspect(ctx: &Ctx, a: NodeInspectArgs) -> Result<i32> {
    let format = if a.pretty {
        Some("pretty".to_string())
    } else {
        a.format.clone().filter(|f| !f.is_empty())
    };
    if let Some(f) = &format
        && f.starts_with("pretty")
        && f != "pretty"
    {
        return Err(status(
            1,
            "cannot supply extra formatting options to the pretty template",
        ));
    }
    let mut found = Vec::new();
    let mut errors = Vec::new();
    for r in &a.nodes {
        let got = match node_ref(ctx, r).await {
            Ok(id) => get_json(ctx, &format!("/nodes/{}", rawhttp::encode(&id))).await,
            Err(e) => Err(e),
        };
        match got {
            Ok(v) => found.push(v),
            Err(e) => errors.push(e.to_string()),
        }
    }
    match format.as_deref() {
        None => println!("{}", json_indent(&Value::Array(found))?),
        Some("json") => println!(
            "{}",
            berth_gotmpl::go_json(&Value::Array(found).to_string())
        ),
        Some("pretty") => {
            for n in &found {
                println!(
                    "{}",
                    render_pretty(n).map_err(|e| status(1, e.to_string()))?
                );
            }
        }
        Some(f) => {
            for n in &found {
                println!(
                    "{}",
                    render_template(f, n).map_err(|e| status(1, format!("template: {e}")))?
                );
            }
        }
    }
    if !errors.is_empty() {
        return Err(status(1, errors.join("\n")));
    }
    Ok(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn listen_addresses_fill_in_the_default_host_and_port() {
        let d = DEFAULT_LISTEN_ADDR;
        assert_eq!(node_addr("0.0.0.0:2377", d).unwrap(), "0.0.0.0:2377");
        assert_eq!(node_addr("10.0.0.1", d).unwrap(), "10.0.0.1:2377");
        assert_eq!(node_addr(":4000", d).unwrap(), "0.0.0.0:4000");
        assert_eq!(node_addr("eth0", d).unwrap(), "eth0:2377");
        assert_eq!(node_addr("tcp://10.0.0.1:1", d).unwrap(), "10.0.0.1:1");
        assert_eq!(node_addr("[::1]", d).unwrap(), "[::1]:2377");
        assert!(node_addr("udp://1.2.3.4", d).is_err());
        assert!(node_addr("1.2.3.4:x", d).is_err());
    }

    #[test]
    fn pools_show_their_network_address() {
        assert_eq!(cidr_network("10.20.1.5/16").unwrap(), "10.20.0.0/16");
        assert_eq!(cidr_network("fd00::1/64").unwrap(), "fd00::/64");
        assert!(cidr_network("10.0.0.0").is_none());
        assert!(cidr_network("10.0.0.0/33").is_none());
    }

    fn init_args() -> InitArgs {
        InitArgs {
            listen_addr: DEFAULT_LISTEN_ADDR.into(),
            default_addr_pool_mask_length: 24,
            ..Default::default()
        }
    }

    #[test]
    fn init_sends_the_docker_clis_body() {
        let b = init_body(&init_args()).unwrap();
        assert_eq!(
            b,
            json!({
                "ListenAddr": "0.0.0.0:2377", "AdvertiseAddr": "", "DataPathAddr": "",
                "DataPathPort": 0, "ForceNewCluster": false,
                "Spec": {
                    "Labels": null, "Orchestration": {},
                    "Raft": { "ElectionTick": 0, "HeartbeatTick": 0 },
                    "Dispatcher": {}, "CAConfig": {}, "TaskDefaults": {},
                    "EncryptionConfig": { "AutoLockManagers": false }
                },
                "AutoLockManagers": false, "Availability": "",
                "DefaultAddrPool": [], "SubnetSize": 24
            })
        );
        let mut a = init_args();
        a.autolock = true;
        a.availability = Some("Drain".into());
        a.cert_expiry = Some("2h".into());
        a.dispatcher_heartbeat = Some("10s".into());
        a.task_history_limit = Some(2);
        a.default_addr_pool = vec!["10.20.0.0/16".into()];
        a.data_path_port = 5000;
        a.external_ca = vec!["protocol=cfssl,url=https://ca:8888".into()];
        let b = init_body(&a).unwrap();
        assert_eq!(
            b["Spec"]["CAConfig"]["ExternalCAs"],
            json!([{ "Protocol": "cfssl", "URL": "https://ca:8888", "Options": {} }])
        );
        assert_eq!(b["Availability"], "drain");
        assert_eq!(
            b["Spec"]["CAConfig"]["NodeCertExpiry"],
            7_200_000_000_000i64
        );
        assert_eq!(
            b["Spec"]["Dispatcher"]["HeartbeatPeriod"],
            10_000_000_000i64
        );
        assert_eq!(b["Spec"]["Orchestration"]["TaskHistoryRetentionLimit"], 2);
        assert_eq!(b["Spec"]["EncryptionConfig"]["AutoLockManagers"], true);
        assert_eq!(b["AutoLockManagers"], true);
        assert_eq!(b["DefaultAddrPool"], json!(["10.20.0.0/16"]));
        assert_eq!(b["DataPathPort"], 5000);
        a.availability = Some("x".into());
        assert_eq!(
            init_body(&a).unwrap_err().to_string(),
            "invalid availability \"x\", only active, pause and drain are supported"
        );
        a.availability = None;
        a.external_ca = vec!["url=https://ca".into()];
        assert!(
            init_body(&a)
                .unwrap_err()
                .to_string()
                .contains("the external-ca option needs a protocol= parameter")
        );
        a.external_ca.clear();
        a.cert_expiry = Some("2".into());
        assert!(
            init_body(&a)
                .unwrap_err()
                .to_string()
                .contains("--cert-expiry")
        );
    }

    #[test]
    fn join_instructions_read_as_dockers() {
        let node = json!({ "ManagerStatus": { "Addr": "10.0.0.1:2377" } });
        let sw = json!({ "JoinTokens": { "Worker": "SWMTKN-w", "Manager": "SWMTKN-m" } });
        assert_eq!(
            join_text(&node, &sw, true, false),
            "To add a worker to this swarm, run the following command:\n\n    docker swarm join --token SWMTKN-w 10.0.0.1:2377\n\n"
        );
        assert_eq!(
            join_text(&node, &sw, false, true),
            "To add a manager to this swarm, run the following command:\n\n    docker swarm join --token SWMTKN-m 10.0.0.1:2377\n\n"
        );
        assert_eq!(join_text(&json!({}), &sw, true, true), "");
        assert_eq!(unlock_text(""), "");
        assert!(unlock_text("K").contains("\n\n    K\n\n"));
    }

    fn node(id: &str, host: &str, leader: Option<bool>) -> Value {
        let mut n = json!({
            "ID": id,
            "Spec": { "Availability": "active", "Role": "worker", "Labels": {} },
            "Description": {
                "Hostname": host,
                "Engine": { "EngineVersion": "28.0.0", "Plugins": [
                    { "Type": "Log", "Name": "json-file" }, { "Type": "Log", "Name": "local" },
                    { "Type": "Network", "Name": "bridge" }
                ] },
                "Platform": { "OS": "linux", "Architecture": "x86_64" },
                "Resources": { "NanoCPUs": 4_000_000_000i64, "MemoryBytes": 8_589_934_592i64 },
                "TLSInfo": { "TrustRoot": "R", "CertIssuerSubject": "S", "CertIssuerPublicKey": "K" },
            },
            "CreatedAt": "2026-12-06T14:15:17.1234Z",
            "Status": { "State": "ready", "Addr": "10.0.0.2" },
        });
        if let Some(l) = leader {
            n["ManagerStatus"] = json!({ "Reachability": "reachable", "Addr": "10.0.0.2:2377" });
            if l {
                n["ManagerStatus"]["Leader"] = json!(true);
            }
        }
        n
    }

    #[test]
    fn node_rows_carry_dockers_fields() {
        let info = json!({ "Swarm": { "NodeID": "a", "Cluster": { "TLSInfo": {
            "TrustRoot": "R", "CertIssuerSubject": "S", "CertIssuerPublicKey": "K" } } } });
        let r = node_row(&node("a", "h1", Some(true)), &info);
        assert_eq!(
            r,
            json!({ "ID": "a", "Self": true, "Hostname": "h1", "Status": "Ready",
                "Availability": "Active", "ManagerStatus": "Leader",
                "EngineVersion": "28.0.0", "TLSStatus": "Ready" })
        );
        let r = node_row(&node("b", "h2", Some(false)), &info);
        assert_eq!(
            (r["Self"].clone(), r["ManagerStatus"].clone()),
            (json!(false), json!("Reachable"))
        );
        let r = node_row(
            &node("c", "h3", None),
            &json!({ "Swarm": { "NodeID": "a" } }),
        );
        assert_eq!(
            (r["ManagerStatus"].clone(), r["TLSStatus"].clone()),
            (json!(""), json!("Unknown"))
        );
        let table = crate::output::format_rows(
            NODE_TABLE,
            &[node_row(&node("a", "h1", Some(true)), &info)],
            NODE_HEADERS,
        )
        .unwrap();
        assert_eq!(
            table,
            "ID        HOSTNAME   STATUS    AVAILABILITY   MANAGER STATUS   ENGINE VERSION\na *       h1         Ready     Active         Leader           28.0.0\n"
        );
    }

    #[test]
    fn hostnames_sort_naturally() {
        assert!(natural_less("node2", "node10"));
        assert!(!natural_less("node10", "node2"));
        assert!(natural_less("a", "b"));
        assert!(natural_less("a", "ab"));
        assert!(!natural_less("a", "a"));
    }

    #[test]
    fn the_pretty_inspect_reads_as_dockers() {
        let out = render_pretty(&node("abc", "h1", Some(true))).unwrap();
        let want = "ID:\t\t\tabc\nHostname:              \th1\nJoined at:             \t2026-12-06 14:15:17.1234 +0000 utc\nStatus:\n State:\t\t\tReady\n Availability:         \tActive\n Address:\t\t10.0.0.2\nManager Status:\n Address:\t\t10.0.0.2:2377\n Raft Status:\t\tReachable\n Leader:\t\tYes\nPlatform:\n Operating System:\tlinux\n Architecture:\t\tx86_64\nResources:\n CPUs:\t\t\t4\n Memory:\t\t8GiB\nPlugins:\n Log:\t\tjson-file, local\n Network:\t\tbridge\nEngine Version:\t\t28.0.0\nTLS Info:\n TrustRoot:\nR\n Issuer Subject:\tS\n Issuer Public Key:\tK";
        assert_eq!(out, want);
        assert_eq!(pretty("ready"), "Ready");
        assert_eq!(pretty(""), "");
        assert_eq!(pretty("needs ROTATION"), "Needs rotation");
    }
}
