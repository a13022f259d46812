//! `service inspect --pretty`: docker's template, fed the values of its
//! `serviceInspectContext` methods (durations as Go prints them, sizes in
//! binary units, "3 minutes ago").

use std::collections::{BTreeMap, HashMap};

use anyhow::Result;
use serde_json::{Value, json};

use crate::goparse::json_float;
use crate::output::render_template;

const PRETTY: &str = r#"
ID:		{{.ID}}
Name:		{{.Name}}
{{- if .Labels }}
Labels:
{{- range $k, $v := .Labels }}
 {{ $k }}{{if $v }}={{ $v }}{{ end }}
{{- end }}{{ end }}
Service Mode:
{{- if .IsModeGlobal }}	Global
{{- else if .IsModeReplicated }}	Replicated
{{- if .ModeReplicatedReplicas }}
 Replicas:	{{ .ModeReplicatedReplicas }}
{{- end }}{{ end }}
{{- if .HasUpdateStatus }}
UpdateStatus:
 State:		{{ .UpdateStatusState }}
{{- if .HasUpdateStatusStarted }}
 Started:	{{ .UpdateStatusStarted }}
{{- end }}
{{- if .UpdateIsCompleted }}
 Completed:	{{ .UpdateStatusCompleted }}
{{- end }}
 Message:	{{ .UpdateStatusMessage }}
{{- end }}
Placement:
{{- if .TaskPlacementConstraints }}
 Constraints:	{{ .TaskPlacementConstraints }}
{{- end }}
{{- if .TaskPlacementPreferences }}
 Preferences:   {{ .TaskPlacementPreferences }}
{{- end }}
{{- if .MaxReplicas }}
 Max Replicas Per Node:   {{ .MaxReplicas }}
{{- end }}
{{- if .HasUpdateConfig }}
UpdateConfig:
 Parallelism:	{{ .UpdateParallelism }}
{{- if .HasUpdateDelay}}
 Delay:		{{ .UpdateDelay }}
{{- end }}
 On failure:	{{ .UpdateOnFailure }}
{{- if .HasUpdateMonitor}}
 Monitoring Period: {{ .UpdateMonitor }}
{{- end }}
 Max failure ratio: {{ .UpdateMaxFailureRatio }}
 Update order:      {{ .UpdateOrder }}
{{- end }}
{{- if .HasRollbackConfig }}
RollbackConfig:
 Parallelism:	{{ .RollbackParallelism }}
{{- if .HasRollbackDelay}}
 Delay:		{{ .RollbackDelay }}
{{- end }}
 On failure:	{{ .RollbackOnFailure }}
{{- if .HasRollbackMonitor}}
 Monitoring Period: {{ .RollbackMonitor }}
{{- end }}
 Max failure ratio: {{ .RollbackMaxFailureRatio }}
 Rollback order:    {{ .RollbackOrder }}
{{- end }}
ContainerSpec:
 Image:		{{ .ContainerImage }}
{{- if .ContainerArgs }}
 Args:		{{ range $arg := .ContainerArgs }}{{ $arg }} {{ end }}
{{- end -}}
{{- if .ContainerEnv }}
 Env:		{{ range $env := .ContainerEnv }}{{ $env }} {{ end }}
{{- end -}}
{{- if .ContainerWorkDir }}
 Dir:		{{ .ContainerWorkDir }}
{{- end -}}
{{- if .HasContainerInit }}
 Init:		{{ .ContainerInit }}
{{- end -}}
{{- if .ContainerUser }}
 User: {{ .ContainerUser }}
{{- end }}
{{- if .HasCapabilities }}
Capabilities:
{{- if .HasCapabilityAdd }}
 Add: {{ .CapabilityAdd }}
{{- end }}
{{- if .HasCapabilityDrop }}
 Drop: {{ .CapabilityDrop }}
{{- end }}
{{- end }}
{{- if .ContainerSysCtls }}
SysCtls:
{{- range $k, $v := .ContainerSysCtls }}
 {{ $k }}{{if $v }}: {{ $v }}{{ end }}
{{- end }}{{ end }}
{{- if .ContainerUlimits }}
Ulimits:
{{- range $k, $v := .ContainerUlimits }}
 {{ $k }}: {{ $v }}
{{- end }}{{ end }}
{{- if .ContainerMounts }}
Mounts:
{{- end }}
{{- range $mount := .ContainerMounts }}
 Target:	{{ $mount.Target }}
  Source:	{{ $mount.Source }}
  ReadOnly:	{{ $mount.ReadOnly }}
  Type:		{{ $mount.Type }}
{{- end -}}
{{- if .Configs}}
Configs:
{{- range $config := .Configs }}
 Target:	{{$config.File.Name}}
  Source:	{{$config.ConfigName}}
{{- end }}{{ end }}
{{- if .Secrets }}
Secrets:
{{- range $secret := .Secrets }}
 Target:	{{$secret.File.Name}}
  Source:	{{$secret.SecretName}}
{{- end }}{{ end }}
{{- if .HasLogDriver }}
Log Driver:
{{- if .HasLogDriverName }}
 Name:		{{ .LogDriverName }}
{{- end }}
{{- if .LogOpts }}
 LogOpts:
{{- range $k, $v := .LogOpts }}
  {{ $k }}{{if $v }}:       {{ $v }}{{ end }}
{{- end }}{{ end }}
{{ end }}
{{- if .HasResources }}
Resources:
{{- if .HasResourceReservations }}
 Reservations:
{{- if gt .ResourceReservationNanoCPUs 0.0 }}
  CPU:		{{ .ResourceReservationNanoCPUs }}
{{- end }}
{{- if .ResourceReservationMemory }}
  Memory:	{{ .ResourceReservationMemory }}
{{- end }}{{ end }}
{{- if .HasResourceLimits }}
 Limits:
{{- if gt .ResourceLimitsNanoCPUs 0.0 }}
  CPU:		{{ .ResourceLimitsNanoCPUs }}
{{- end }}
{{- if .ResourceLimitMemory }}
  Memory:	{{ .ResourceLimitMemory }}
{{- end }}{{ end }}{{ end }}
{{- if gt .ResourceLimitPids 0 }}
  PIDs:		{{ .ResourceLimitPids }}
{{- end }}
{{- if .Networks }}
Networks:
{{- range $network := .Networks }} {{ $network }}{{ end }} {{ end }}
Endpoint Mode:	{{ .EndpointMode }}
{{- if .Ports }}
Ports:
{{- range $port := .Ports }}
 PublishedPort = {{ $port.PublishedPort }}
  Protocol = {{ $port.Protocol }}
  TargetPort = {{ $port.TargetPort }}
  PublishMode = {{ $port.PublishMode }}
{{- end }} {{ end -}}
{{- if .Healthcheck }}
 Healthcheck:
  Interval = {{ .Healthcheck.Interval }}
  Retries = {{ .Healthcheck.Retries }}
  StartPeriod =	{{ .Healthcheck.StartPeriod }}
  Timeout =	{{ .Healthcheck.Timeout }}
  {{- if .Healthcheck.Test }}
  Tests:
	{{- range $test := .Healthcheck.Test }}
	 Test = {{ $test }}
  {{- end }} {{ end -}}
{{- end }}
"#;

fn text(v: &Value) -> String {
    v.as_str().unwrap_or_default().to_string()
}

fn nanos(v: &Value) -> i64 {
    v.as_i64().unwrap_or(0)
}

/// Go's `time.Duration.String`.
fn duration(v: &Value) -> String {
    let n = nanos(v);
    let s = berth_units::go_duration(std::time::Duration::from_nanos(n.unsigned_abs()));
    if n < 0 { format!("-{s}") } else { s }
}

/// "3 minutes ago" from an RFC 3339 time.
pub(crate) fn ago(t: &Value, now: chrono::DateTime<chrono::Utc>) -> String {
    let since = chrono::DateTime::parse_from_rfc3339(&text(t))
        .map(|t| {
            (now - t.with_timezone(&chrono::Utc))
                .to_std()
                .unwrap_or_default()
        })
        .unwrap_or_default();
    format!("{} ago", berth_units::human_duration(since))
}

/// A float32 as Go's `%v` prints it.
fn float32_text(v: &Value) -> String {
    format!("{}", v.as_f64().unwrap_or(0.0) as f32)
}

fn memory(v: &Value) -> String {
    match nanos(v) {
        0 => String::new(),
        b => berth_units::bytes_size(b as f64),
    }
}

fn update_config(prefix: &str, c: &Value, ctx: &mut serde_json::Map<String, Value>) {
    let mut put = |k: &str, v: Value| {
        ctx.insert(format!("{prefix}{k}"), v);
    };
    put("Parallelism", json!(c["Parallelism"].as_u64().unwrap_or(0)));
    put("Delay", json!(duration(&c["Delay"])));
    put("OnFailure", json!(text(&c["FailureAction"])));
    put("Monitor", json!(duration(&c["Monitor"])));
    put(
        "MaxFailureRatio",
        json!(float32_text(&c["MaxFailureRatio"])),
    );
    put("Order", json!(text(&c["Order"])));
}

fn resources(r: &Value, ctx: &mut serde_json::Map<String, Value>) {
    let (lim, res) = (&r["Limits"], &r["Reservations"]);
    let cpus = |v: &Value| json_float(nanos(v) as f64 / 1e9);
    ctx.insert("HasResources".into(), json!(r.is_object()));
    ctx.insert(
        "HasResourceReservations".into(),
        json!(nanos(&res["NanoCPUs"]) > 0 || nanos(&res["MemoryBytes"]) > 0),
    );
    ctx.insert("ResourceReservationNanoCPUs".into(), cpus(&res["NanoCPUs"]));
    ctx.insert(
        "ResourceReservationMemory".into(),
        json!(memory(&res["MemoryBytes"])),
    );
    ctx.insert(
        "HasResourceLimits".into(),
        json!(
            nanos(&lim["NanoCPUs"]) > 0
                || nanos(&lim["MemoryBytes"]) > 0
                || nanos(&lim["Pids"]) > 0
        ),
    );
    ctx.insert("ResourceLimitsNanoCPUs".into(), cpus(&lim["NanoCPUs"]));
    ctx.insert(
        "ResourceLimitMemory".into(),
        json!(memory(&lim["MemoryBytes"])),
    );
    ctx.insert("ResourceLimitPids".into(), json!(nanos(&lim["Pids"])));
}

fn container(cs: &Value, ctx: &mut serde_json::Map<String, Value>) {
    let list = |k: &str| cs[k].as_array().cloned().unwrap_or_default();
    let joined = |k: &str| list(k).iter().map(text).collect::<Vec<_>>().join(", ");
    let ulimits: BTreeMap<String, String> = list("Ulimits")
        .iter()
        .map(|u| {
            let n = |k: &str| u[k].as_i64().unwrap_or(0);
            (text(&u["Name"]), format!("{}:{}", n("Soft"), n("Hard")))
        })
        .collect();
    let mounts: Vec<Value> = list("Mounts")
        .iter()
        .map(|m| {
            json!({ "Target": text(&m["Target"]), "Source": text(&m["Source"]),
                    "ReadOnly": m["ReadOnly"].as_bool().unwrap_or(false), "Type": text(&m["Type"]) })
        })
        .collect();
    let health = cs["Healthcheck"].is_object().then(|| {
        let h = &cs["Healthcheck"];
        json!({ "Interval": duration(&h["Interval"]), "Retries": h["Retries"].as_i64().unwrap_or(0),
                "StartPeriod": duration(&h["StartPeriod"]), "Timeout": duration(&h["Timeout"]),
                "Test": h["Test"] })
    });
    for (k, v) in [
        ("ContainerImage", json!(text(&cs["Image"]))),
        ("ContainerArgs", cs["Args"].clone()),
        ("ContainerEnv", cs["Env"].clone()),
        ("ContainerWorkDir", json!(text(&cs["Dir"]))),
        ("HasContainerInit", json!(cs["Init"].is_boolean())),
        (
            "ContainerInit",
            json!(cs["Init"].as_bool().unwrap_or(false)),
        ),
        ("ContainerUser", json!(text(&cs["User"]))),
        (
            "HasCapabilities",
            json!(!list("CapabilityAdd").is_empty() || !list("CapabilityDrop").is_empty()),
        ),
        ("HasCapabilityAdd", json!(!list("CapabilityAdd").is_empty())),
        ("CapabilityAdd", json!(joined("CapabilityAdd"))),
        (
            "HasCapabilityDrop",
            json!(!list("CapabilityDrop").is_empty()),
        ),
        ("CapabilityDrop", json!(joined("CapabilityDrop"))),
        ("ContainerSysCtls", cs["Sysctls"].clone()),
        ("ContainerUlimits", json!(ulimits)),
        ("ContainerMounts", json!(mounts)),
        ("Configs", cs["Configs"].clone()),
        ("Secrets", cs["Secrets"].clone()),
        ("Healthcheck", health.unwrap_or(Value::Null)),
    ] {
        ctx.insert(k.into(), v);
    }
}

fn update_status(
    s: &Value,
    now: chrono::DateTime<chrono::Utc>,
    ctx: &mut serde_json::Map<String, Value>,
) {
    let us = &s["UpdateStatus"];
    let state = text(&us["State"]);
    let started = us["StartedAt"].is_string();
    let completed = state == "completed" && us["CompletedAt"].is_string();
    for (k, v) in [
        ("HasUpdateStatus", json!(!state.is_empty())),
        ("UpdateStatusState", json!(state)),
        ("HasUpdateStatusStarted", json!(started)),
        ("UpdateStatusStarted", json!(ago(&us["StartedAt"], now))),
        ("UpdateIsCompleted", json!(completed)),
        ("UpdateStatusCompleted", json!(ago(&us["CompletedAt"], now))),
        ("UpdateStatusMessage", json!(text(&us["Message"]))),
    ] {
        ctx.insert(k.into(), v);
    }
}

fn placement(task: &Value, ctx: &mut serde_json::Map<String, Value>) {
    let p = &task["Placement"];
    let prefs: Vec<String> = p["Preferences"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|x| x["Spread"].is_object())
        .map(|x| format!("spread={}", text(&x["Spread"]["SpreadDescriptor"])))
        .collect();
    ctx.insert("TaskPlacementConstraints".into(), p["Constraints"].clone());
    ctx.insert("TaskPlacementPreferences".into(), json!(prefs));
    ctx.insert(
        "MaxReplicas".into(),
        json!(p["MaxReplicas"].as_u64().unwrap_or(0)),
    );
}

/// The values the pretty template reads; `networks` maps network IDs
/// to names.
pub fn pretty_context(
    s: &Value,
    networks: &HashMap<String, String>,
    now: chrono::DateTime<chrono::Utc>,
) -> Value {
    let spec = &s["Spec"];
    let task = &spec["TaskTemplate"];
    let mode = &spec["Mode"];
    let mut ctx = serde_json::Map::new();
    ctx.insert("ID".into(), json!(text(&s["ID"])));
    ctx.insert("Name".into(), json!(text(&spec["Name"])));
    ctx.insert("Labels".into(), spec["Labels"].clone());
    ctx.insert("IsModeGlobal".into(), json!(mode["Global"].is_object()));
    ctx.insert(
        "IsModeReplicated".into(),
        json!(mode["Replicated"].is_object()),
    );
    // a count of 0 is still shown: a string keeps it true
    let replicas = mode["Replicated"]["Replicas"]
        .as_u64()
        .map(|r| json!(r.to_string()));
    ctx.insert(
        "ModeReplicatedReplicas".into(),
        replicas.unwrap_or(Value::Null),
    );
    update_status(s, now, &mut ctx);
    placement(task, &mut ctx);
    ctx.insert(
        "HasUpdateConfig".into(),
        json!(spec["UpdateConfig"].is_object()),
    );
    update_config("Update", &spec["UpdateConfig"], &mut ctx);
    ctx.insert(
        "HasUpdateDelay".into(),
        json!(nanos(&spec["UpdateConfig"]["Delay"]) > 0),
    );
    ctx.insert(
        "HasUpdateMonitor".into(),
        json!(nanos(&spec["UpdateConfig"]["Monitor"]) > 0),
    );
    ctx.insert(
        "HasRollbackConfig".into(),
        json!(spec["RollbackConfig"].is_object()),
    );
    update_config("Rollback", &spec["RollbackConfig"], &mut ctx);
    ctx.insert(
        "HasRollbackDelay".into(),
        json!(nanos(&spec["RollbackConfig"]["Delay"]) > 0),
    );
    ctx.insert(
        "HasRollbackMonitor".into(),
        json!(nanos(&spec["RollbackConfig"]["Monitor"]) > 0),
    );
    container(&task["ContainerSpec"], &mut ctx);
    let log = &task["LogDriver"];
    ctx.insert("HasLogDriver".into(), json!(log.is_object()));
    ctx.insert(
        "HasLogDriverName".into(),
        json!(!text(&log["Name"]).is_empty()),
    );
    ctx.insert("LogDriverName".into(), json!(text(&log["Name"])));
    ctx.insert("LogOpts".into(), log["Options"].clone());
    resources(&task["Resources"], &mut ctx);
    let nets: Vec<String> = task["Networks"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|n| {
            let id = text(&n["Target"]);
            networks.get(&id).cloned().unwrap_or(id)
        })
        .collect();
    ctx.insert("Networks".into(), json!(nets));
    ctx.insert(
        "EndpointMode".into(),
        json!(text(&spec["EndpointSpec"]["Mode"])),
    );
    ctx.insert("Ports".into(), s["Endpoint"]["Ports"].clone());
    Value::Object(ctx)
}

/// The pretty text of one service, with the newline docker's formatter
/// adds after it.
pub fn render_pretty(
    s: &Value,
    networks: &HashMap<String, String>,
    now: chrono::DateTime<chrono::Utc>,
) -> Result<String> {
    let mut out = render_template(PRETTY, &pretty_context(s, networks, now))?;
    out.push('\n');
    Ok(out)
}
