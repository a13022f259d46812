//! `berth service ls|ps|inspect`: the docker CLI 28's requests and its
//! columns (cli/command/service/list.go, ps.go, inspect.go, formatter.go).

use std::collections::{BTreeMap, HashMap};

use anyhow::Result;
use serde_json::{Value, json};

use super::services::args_error;
use super::services_flags::{FlagError, Usage, flag_name};
use super::services_image;
use super::services_pretty::render_pretty;
use super::services_update::go_order_service;
use super::swarm::{get_json, natural_less, node_ref};
use super::tasks_table::{TaskPrint, print_tasks};
use crate::output::{json_indent, print_format_or, render_template};
use crate::{Ctx, rawhttp, status};

#[derive(clap::Args, Debug)]
pub struct LsArgs {
    /// Only display IDs
    #[arg(short = 'q', long)]
    pub quiet: bool,
    /// Format output using a custom template
    #[arg(long)]
    pub format: Option<String>,
    /// Filter output based on conditions provided
    #[arg(short = 'f', long = "filter")]
    pub filter: Vec<String>,
}

#[derive(clap::Args, Debug)]
pub struct PsArgs {
    /// Only display task IDs
    #[arg(short = 'q', long)]
    pub quiet: bool,
    /// Do not truncate output
    #[arg(long = "no-trunc")]
    pub no_trunc: bool,
    /// Do not map IDs to Names
    #[arg(long = "no-resolve")]
    pub no_resolve: bool,
    /// Pretty-print tasks using a Go template
    #[arg(long)]
    pub format: Option<String>,
    /// Filter output based on conditions provided
    #[arg(short = 'f', long = "filter")]
    pub filter: Vec<String>,
    #[arg(value_name = "SERVICE")]
    pub services: Vec<String>,
}

#[derive(clap::Args, Debug)]
pub struct InspectArgs {
    /// Format output using a custom template
    #[arg(short = 'f', long)]
    pub format: Option<String>,
    /// Print the information in a human friendly format
    #[arg(long)]
    pub pretty: bool,
    #[arg(value_name = "SERVICE")]
    pub services: Vec<String>,
}

/// `opts.FilterOpt`: `name=value`, the name lowercased.
pub fn parse_filters(values: &[String], usage: &Usage) -> Result<Vec<(String, String)>> {
    let mut out = Vec::new();
    for v in values.iter().filter(|v| !v.is_empty()) {
        let Some((k, val)) = v.split_once('=') else {
            let e = FlagError {
                flag: flag_name("filter"),
                value: v.clone(),
                why: "bad format of filter (expected name=value)".into(),
            };
            return Err(e.with_usage(usage));
        };
        out.push((k.trim().to_lowercase(), val.trim().to_string()));
    }
    Ok(out)
}

/// A Go `filters.Args` as the query value: `{"key":{"value":true}}`.
pub fn filters_json(pairs: &[(String, String)]) -> String {
    let mut m: BTreeMap<&str, BTreeMap<&str, bool>> = BTreeMap::new();
    for (k, v) in pairs {
        m.entry(k).or_default().insert(v, true);
    }
    serde_json::to_string(&m).unwrap_or_default()
}

fn text(v: &Value) -> &str {
    v.as_str().unwrap_or_default()
}

pub fn mode_text(s: &Value) -> &'static str {
    let mode = &s["Spec"]["Mode"];
    if mode["Global"].is_object() {
        "global"
    } else if mode["Replicated"].is_object() {
        "replicated"
    } else if mode["ReplicatedJob"].is_object() {
        "replicated job"
    } else if mode["GlobalJob"].is_object() {
        "global job"
    } else {
        ""
    }
}

/// The REPLICAS column: `running/desired`, the per-node limit of a
/// replicated service, the completions of a job.
pub fn replicas_text(s: &Value) -> String {
    let st = &s["ServiceStatus"];
    let n = |k: &str| st[k].as_u64().unwrap_or(0);
    let (running, desired, completed) = (n("RunningTasks"), n("DesiredTasks"), n("CompletedTasks"));
    let mode = &s["Spec"]["Mode"];
    if mode["ReplicatedJob"].is_object() {
        let total = mode["ReplicatedJob"]["TotalCompletions"]
            .as_u64()
            .unwrap_or(0);
        return format!("{running}/{desired} ({completed}/{total} completed)");
    }
    if mode["GlobalJob"].is_object() {
        return format!(
            "{running}/{desired} ({completed}/{} completed)",
            desired + completed
        );
    }
    let per_node = if mode_text(s) == "replicated" {
        s["Spec"]["TaskTemplate"]["Placement"]["MaxReplicas"]
            .as_u64()
            .unwrap_or(0)
    } else {
        0
    };
    if per_node > 0 {
        return format!("{running}/{desired} (max {per_node} per node)");
    }
    format!("{running}/{desired}")
}

/// The PORTS column: ingress ports, consecutive ones grouped into
/// ranges (`*:8080-8081->80-81/tcp`).
pub fn ports_text(s: &Value) -> String {
    let Some(ports) = s["Endpoint"]["Ports"].as_array() else {
        return String::new();
    };
    let mut ports: Vec<(String, u32, u32, String)> = ports
        .iter()
        .map(|p| {
            let n = |k: &str| p[k].as_u64().unwrap_or(0) as u32;
            (
                text(&p["Protocol"]).to_string(),
                n("PublishedPort"),
                n("TargetPort"),
                text(&p["PublishMode"]).to_string(),
            )
        })
        .collect();
    ports.sort_by(|a, b| (a.0.as_str(), a.1).cmp(&(b.0.as_str(), b.1)));
    // (published start, end, target start, end, protocol)
    let mut pr = (0u32, 0u32, 0u32, 0u32, String::new());
    let mut out = Vec::new();
    let show = |pr: &(u32, u32, u32, u32, String)| {
        let range = |a: u32, b: u32| {
            if b > a {
                format!("{a}-{b}")
            } else {
                a.to_string()
            }
        };
        format!("*:{}->{}/{}", range(pr.0, pr.1), range(pr.2, pr.3), pr.4)
    };
    for (proto, published, target, mode) in ports {
        if mode != "ingress" {
            continue;
        }
        let is_range = pr.3 != pr.2;
        let overlaps = target <= pr.3;
        // Go's uint32 arithmetic: a smaller port wraps to a big gap
        if proto != pr.4
            || published.wrapping_sub(pr.1) > 1
            || target.wrapping_sub(pr.3) > 1
            || (is_range && overlaps)
        {
            if pr.0 > 0 {
                out.push(show(&pr));
            }
            pr = (published, published, target, target, proto);
            continue;
        }
        pr.1 = published;
        pr.3 = target;
    }
    if pr.0 > 0 {
        out.push(show(&pr));
    }
    out.join(", ")
}

pub fn service_row(s: &Value) -> Value {
    json!({
        "ID": text(&s["ID"]).chars().take(12).collect::<String>(),
        "Name": text(&s["Spec"]["Name"]),
        "Mode": mode_text(s),
        "Replicas": replicas_text(s),
        "Image": services_image::display(text(&s["Spec"]["TaskTemplate"]["ContainerSpec"]["Image"])),
        "Ports": ports_text(s),
    })
}

const SERVICE_TABLE: &str =
    "table {{.ID}}\t{{.Name}}\t{{.Mode}}\t{{.Replicas}}\t{{.Image}}\t{{.Ports}}";
const SERVICE_RAW: &str = "id: {{.ID}}\\nname: {{.Name}}\\nmode: {{.Mode}}\\nreplicas: {{.Replicas}}\\nimage: {{.Image}}\\nports: {{.Ports}}\\n";
#[cfg(test)]
pub const SERVICE_TABLE_FOR_TESTS: &str = SERVICE_TABLE;
#[cfg(test)]
pub const SERVICE_HEADERS_FOR_TESTS: &[(&str, &str)] = SERVICE_HEADERS;

const SERVICE_HEADERS: &[(&str, &str)] = &[
    ("ID", "ID"),
    ("Name", "NAME"),
    ("Mode", "MODE"),
    ("Replicas", "REPLICAS"),
    ("Image", "IMAGE"),
    ("Ports", "PORTS"),
];

/// `AppendServiceStatus`: the counts a daemon older than API 1.41 does
/// not give, from the tasks and the nodes that are not down.
pub(crate) async fn append_status(ctx: &Ctx, services: &mut [Value]) -> Result<()> {
    let mut wanted = Vec::new();
    for s in services.iter_mut() {
        if !s["ServiceStatus"].is_null() {
            continue;
        }
        let mode = &s["Spec"]["Mode"];
        let desired = if mode["Replicated"].is_object() {
            mode["Replicated"]["Replicas"].as_u64().unwrap_or(0)
        } else if mode["Global"].is_object() {
            0
        } else {
            continue;
        };
        s["ServiceStatus"] =
            json!({ "RunningTasks": 0, "DesiredTasks": desired, "CompletedTasks": 0 });
        wanted.push(("service".to_string(), text(&s["ID"]).to_string()));
    }
    if wanted.is_empty() {
        return Ok(());
    }
    let q = rawhttp::encode(&filters_json(&wanted));
    let tasks = get_json(ctx, &format!("/tasks?filters={q}")).await?;
    let tasks = tasks.as_array().cloned().unwrap_or_default();
    if tasks.is_empty() {
        return Ok(());
    }
    let nodes = get_json(ctx, "/nodes").await?;
    let active: Vec<&str> = nodes
        .as_array()
        .into_iter()
        .flatten()
        .filter(|n| text(&n["Status"]["State"]) != "down")
        .map(|n| text(&n["ID"]))
        .collect();
    let mut counts: HashMap<String, (u64, u64)> = HashMap::new();
    for t in &tasks {
        let c = counts.entry(text(&t["ServiceID"]).to_string()).or_default();
        if text(&t["DesiredState"]) != "shutdown" {
            c.1 += 1;
        }
        if active.contains(&text(&t["NodeID"])) && text(&t["Status"]["State"]) == "running" {
            c.0 += 1;
        }
    }
    for s in services.iter_mut() {
        let id = text(&s["ID"]).to_string();
        if wanted.iter().any(|(_, w)| *w == id) {
            let (running, desired) = counts.get(&id).copied().unwrap_or_default();
            s["ServiceStatus"] =
                json!({ "RunningTasks": running, "DesiredTasks": desired, "CompletedTasks": 0 });
        }
    }
    Ok(())
}

fn sort_by_name(services: &mut [Value]) {
    services.sort_by(|a, b| {
        let (x, y) = (text(&a["Spec"]["Name"]), text(&b["Spec"]["Name"]));
        if natural_less(x, y) {
            std::cmp::Ordering::Less
        } else if natural_less(y, x) {
            std::cmp::Ordering::Greater
        } else {
            std::cmp::Ordering::Equal
        }
    });
}

/// The rows of `service ls` in its order.
pub fn list_rows(mut services: Vec<Value>) -> Vec<Value> {
    sort_by_name(&mut services);
    services.iter().map(service_row).collect()
}

const LS_USAGE: Usage = Usage {
    path: "service ls",
    line: "[OPTIONS]",
};

pub async fn ls(ctx: &Ctx, a: LsArgs) -> Result<i32> {
    let filters = parse_filters(&a.filter, &LS_USAGE)?;
    let mut query = Vec::new();
    if !filters.is_empty() {
        query.push(format!(
            "filters={}",
            rawhttp::encode(&filters_json(&filters))
        ));
    }
    if !a.quiet {
        query.push("status=true".to_string());
    }
    let path = match query.is_empty() {
        true => "/services".to_string(),
        false => format!("/services?{}", query.join("&")),
    };
    let mut services = get_json(ctx, &path)
        .await?
        .as_array()
        .cloned()
        .unwrap_or_default();
    if !a.quiet {
        append_status(ctx, &mut services).await?;
    }
    print_services(services, a.format.as_deref(), a.quiet)?;
    Ok(0)
}

/// The format `service ls` (and `stack services`) prints with:
/// `--format`, else the config's `servicesFormat` (not with `-q`), else
/// the table; "table" and "raw" as `NewListFormat` reads them.
pub fn list_format(format: Option<&str>, quiet: bool) -> String {
    let format = format
        .filter(|f| !f.is_empty())
        .map(String::from)
        .or_else(|| {
            (!quiet)
                .then(|| crate::config::format_for("servicesFormat"))
                .flatten()
        });
    match format.as_deref() {
        None | Some("table") if quiet => "{{.ID}}".to_string(),
        None | Some("table") => SERVICE_TABLE.to_string(),
        Some("raw") if quiet => "id: {{.ID}}".to_string(),
        Some("raw") => SERVICE_RAW.to_string(),
        Some(f) => f.to_string(),
    }
}

/// Prints services as `service ls` does, sorted by name.
pub fn print_services(services: Vec<Value>, format: Option<&str>, quiet: bool) -> Result<()> {
    let format = list_format(format, quiet);
    print_format_or(
        Some(&format),
        SERVICE_TABLE,
        &list_rows(services),
        SERVICE_HEADERS,
    )
}

async fn list_services(ctx: &Ctx, key: &str, refs: &[String]) -> Result<Vec<Value>> {
    let pairs: Vec<(String, String)> = refs.iter().map(|r| (key.to_string(), r.clone())).collect();
    let path = format!(
        "/services?filters={}",
        rawhttp::encode(&filters_json(&pairs))
    );
    Ok(get_json(ctx, &path)
        .await?
        .as_array()
        .cloned()
        .unwrap_or_default())
}

/// `createFilter`: each reference by full ID, then by name, then by ID
/// prefix (two matches are refused); the references not found.
async fn service_filter(
    ctx: &Ctx,
    refs: &[String],
    filters: &mut Vec<(String, String)>,
) -> Result<Vec<String>> {
    let by_id = list_services(ctx, "id", refs).await?;
    let by_name = list_services(ctx, "name", refs).await?;
    let mut notfound = Vec::new();
    let mut found = 0;
    for r in refs {
        let exact = by_id
            .iter()
            .find(|s| text(&s["ID"]) == r)
            .or_else(|| by_name.iter().find(|s| text(&s["Spec"]["Name"]) == r));
        if let Some(s) = exact {
            filters.push(("service".into(), text(&s["ID"]).to_string()));
            found += 1;
            continue;
        }
        let prefixed: Vec<&Value> = by_id
            .iter()
            .filter(|s| text(&s["ID"]).starts_with(r.as_str()))
            .collect();
        if prefixed.len() > 1 {
            return Err(status(
                1,
                format!("multiple services found with provided prefix: {r}"),
            ));
        }
        match prefixed.first() {
            Some(s) => {
                filters.push(("service".into(), text(&s["ID"]).to_string()));
                found += 1;
            }
            None => notfound.push(format!("no such service: {r}")),
        }
    }
    if found == 0 {
        return Err(status(1, notfound.join("\n")));
    }
    Ok(notfound)
}

const PS_USE: &str = "[OPTIONS] SERVICE [SERVICE...]";

pub async fn ps(ctx: &Ctx, a: PsArgs) -> Result<i32> {
    if a.services.is_empty() {
        return Err(args_error("at least 1 argument", "service ps", PS_USE));
    }
    let usage = Usage {
        path: "service ps",
        line: PS_USE,
    };
    let mut filters = parse_filters(&a.filter, &usage)?;
    let notfound = service_filter(ctx, &a.services, &mut filters).await?;
    for f in filters.iter_mut().filter(|(k, _)| k == "node") {
        f.1 = node_ref(ctx, &f.1).await?;
    }
    let path = format!(
        "/tasks?filters={}",
        rawhttp::encode(&filters_json(&filters))
    );
    let tasks = get_json(ctx, &path)
        .await?
        .as_array()
        .cloned()
        .unwrap_or_default();
    let print = TaskPrint::from_flags(a.no_resolve, a.no_trunc, a.quiet, a.format);
    print_tasks(ctx, tasks, &print).await?;
    if !notfound.is_empty() {
        return Err(status(1, notfound.join("\n")));
    }
    Ok(0)
}

/// The names of the service's networks, for the pretty view.
async fn network_names(ctx: &Ctx, s: &Value) -> HashMap<String, String> {
    let mut names = HashMap::new();
    for n in s["Spec"]["TaskTemplate"]["Networks"]
        .as_array()
        .into_iter()
        .flatten()
    {
        let id = text(&n["Target"]);
        let path = format!("/networks/{}?scope=swarm", rawhttp::encode(id));
        if let Ok(net) = get_json(ctx, &path).await {
            let key = net["Id"].as_str().or(net["ID"].as_str()).unwrap_or(id);
            names.insert(key.to_string(), text(&net["Name"]).to_string());
        }
    }
    names
}

/// A service for `inspect`, with the defaults filled in by the daemon.
async fn inspected(ctx: &Ctx, r: &str) -> Result<Value> {
    let path = format!("/services/{}?insertDefaults=true", rawhttp::encode(r));
    let (code, body) = rawhttp::get(&ctx.socket, &path).await?;
    if code == 404 {
        return Err(status(1, format!("Error: no such service: {r}")));
    }
    let bytes = super::swarm::answer(code, body).await?;
    Ok(serde_json::from_slice(&bytes)?)
}

pub async fn inspect(ctx: &Ctx, a: InspectArgs) -> Result<i32> {
    if a.services.is_empty() {
        return Err(args_error(
            "at least 1 argument",
            "service inspect",
            "[OPTIONS] SERVICE [SERVICE...]",
        ));
    }
    let format = if a.pretty {
        "pretty".to_string()
    } else {
        a.format
            .clone()
            .filter(|f| !f.is_empty())
            .or_else(|| crate::config::format_for("serviceInspectFormat"))
            .unwrap_or_else(|| "raw".into())
    };
    if format.starts_with("pretty") && format != "pretty" {
        return Err(status(
            1,
            "Cannot supply extra formatting options to the pretty template",
        ));
    }
    let mut found = Vec::new();
    let mut errors = Vec::new();
    let mut out = String::new();
    for r in &a.services {
        match inspected(ctx, r).await {
            Ok(s) if format == "pretty" => {
                let nets = network_names(ctx, &s).await;
                match render_pretty(&s, &nets, chrono::Utc::now()) {
                    Ok(text) => out.push_str(&text),
                    Err(e) => errors.push(e.to_string()),
                }
            }
            Ok(mut s) => {
                go_order_service(&mut s);
                found.push(s)
            }
            Err(e) => errors.push(e.to_string()),
        }
    }
    let template = format.strip_prefix("raw").unwrap_or(&format);
    if format != "pretty" {
        if template.is_empty() {
            out = format!("{}\n", json_indent(&Value::Array(found))?);
        } else {
            for s in &found {
                let line = render_template(template, s)
                    .map_err(|e| status(1, format!("template: {e}")))?;
                out.push_str(&line);
                out.push('\n');
            }
        }
    }
    print!("{out}");
    if !errors.is_empty() {
        return Err(status(1, errors.join("\n")));
    }
    Ok(0)
}
