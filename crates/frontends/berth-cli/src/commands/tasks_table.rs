//! The task list of `service ps` and `node ps` (docker's cli/command/task):
//! tasks named `service.slot` (or `service.nodeid` for a global
//! service), sorted by name then newest first, older tasks of a slot
//! drawn as ` \_ ` rows, service and node IDs resolved to names.

use std::collections::HashMap;

use anyhow::Result;
use serde_json::{Value, json};

use super::services_image;
use super::swarm::{get_json, natural_less, pretty};
use crate::output::{ellipsis, print_format_or};
use crate::{Ctx, rawhttp};

const TASK_TABLE: &str = "table {{.ID}}\t{{.Name}}\t{{.Image}}\t{{.Node}}\t{{.DesiredState}}\t{{.CurrentState}}\t{{.Error}}\t{{.Ports}}";
const TASK_RAW: &str = "id: {{.ID}}\\nname: {{.Name}}\\nimage: {{.Image}}\\nnode: {{.Node}}\\ndesired_state: {{.DesiredState}}\\ncurrent_state: {{.CurrentState}}\\nerror: {{.Error}}\\nports: {{.Ports}}\\n";
const TASK_HEADERS: &[(&str, &str)] = &[
    ("ID", "ID"),
    ("Name", "NAME"),
    ("Image", "IMAGE"),
    ("Node", "NODE"),
    ("DesiredState", "DESIRED STATE"),
    ("CurrentState", "CURRENT STATE"),
    ("Error", "ERROR"),
    ("Ports", "PORTS"),
];

/// How to print: `--no-resolve`, truncation, `-q` and `--format`.
pub struct TaskPrint {
    pub no_resolve: bool,
    pub trunc: bool,
    pub quiet: bool,
    pub format: Option<String>,
}

impl TaskPrint {
    /// From the `ps` flags: IDs are cut unless `--no-trunc` or `-q`.
    pub fn from_flags(
        no_resolve: bool,
        no_trunc: bool,
        quiet: bool,
        format: Option<String>,
    ) -> Self {
        TaskPrint {
            no_resolve,
            trunc: !(no_trunc || quiet),
            quiet,
            format,
        }
    }
}

/// docker's idresolver: IDs to names, each asked once; an ID that
/// cannot be resolved stays an ID.
#[derive(Default)]
pub struct Resolver {
    pub no_resolve: bool,
    cache: HashMap<(bool, String), String>,
}

impl Resolver {
    pub fn new(no_resolve: bool) -> Self {
        Resolver {
            no_resolve,
            cache: HashMap::new(),
        }
    }

    pub async fn service(&mut self, ctx: &Ctx, id: &str) -> String {
        self.resolve(ctx, false, id).await
    }

    pub async fn node(&mut self, ctx: &Ctx, id: &str) -> String {
        self.resolve(ctx, true, id).await
    }

    async fn resolve(&mut self, ctx: &Ctx, node: bool, id: &str) -> String {
        if self.no_resolve {
            return id.to_string();
        }
        let key = (node, id.to_string());
        if let Some(n) = self.cache.get(&key) {
            return n.clone();
        }
        let name = if node {
            node_name(ctx, id).await
        } else {
            service_name(ctx, id).await
        };
        self.cache.insert(key, name.clone());
        name
    }
}

async fn node_name(ctx: &Ctx, id: &str) -> String {
    let Ok(n) = get_json(ctx, &format!("/nodes/{}", rawhttp::encode(id))).await else {
        return id.to_string();
    };
    for name in [&n["Spec"]["Name"], &n["Description"]["Hostname"]] {
        if let Some(s) = name.as_str().filter(|s| !s.is_empty()) {
            return s.to_string();
        }
    }
    id.to_string()
}

async fn service_name(ctx: &Ctx, id: &str) -> String {
    let path = format!("/services/{}?insertDefaults=false", rawhttp::encode(id));
    match get_json(ctx, &path).await {
        Ok(s) => s["Spec"]["Name"].as_str().unwrap_or_default().to_string(),
        Err(_) => id.to_string(),
    }
}

fn text(v: &Value) -> &str {
    v.as_str().unwrap_or_default()
}

/// "Running 5 minutes ago".
pub fn current_state(task: &Value, now: chrono::DateTime<chrono::Utc>) -> String {
    let since = chrono::DateTime::parse_from_rfc3339(text(&task["Status"]["Timestamp"]))
        .map(|t| {
            (now - t.with_timezone(&chrono::Utc))
                .to_std()
                .unwrap_or_default()
        })
        .unwrap_or_default();
    format!(
        "{} {} ago",
        pretty(text(&task["Status"]["State"])),
        berth_units::human_duration(since).to_lowercase()
    )
}

/// The fields of docker's task formatter for one task.
pub fn task_row(
    task: &Value,
    name: &str,
    node: &str,
    trunc: bool,
    now: chrono::DateTime<chrono::Utc>,
) -> Value {
    let id = text(&task["ID"]);
    let image = text(&task["Spec"]["ContainerSpec"]["Image"]);
    let mut err = text(&task["Status"]["Err"]).to_string();
    if trunc {
        err = ellipsis(&err, 30);
    }
    if !err.is_empty() {
        err = format!("\"{err}\"");
    }
    let ports: Vec<String> = task["Status"]["PortStatus"]["Ports"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|p| {
            format!(
                "*:{}->{}/{}",
                p["PublishedPort"].as_u64().unwrap_or(0),
                p["TargetPort"].as_u64().unwrap_or(0),
                text(&p["Protocol"])
            )
        })
        .collect();
    json!({
        "ID": if trunc { id.chars().take(12).collect() } else { id.to_string() },
        "Name": name,
        "Image": if trunc { services_image::display(image) } else { image.to_string() },
        "Node": node,
        "DesiredState": pretty(text(&task["DesiredState"])),
        "CurrentState": current_state(task, now),
        "Error": err,
        "Ports": ports.join(","),
    })
}

/// `generateTaskNames` then the sort: by name (naturally), the newest
/// task of a name first. `services` maps service IDs to names.
pub fn named_tasks(tasks: Vec<Value>, services: &HashMap<String, String>) -> Vec<(String, Value)> {
    let mut named: Vec<(String, Value)> = tasks
        .into_iter()
        .map(|t| {
            let id = text(&t["ServiceID"]);
            let service = services.get(id).map_or(id, String::as_str);
            let name = match t["Slot"].as_i64().unwrap_or(0) {
                0 => format!("{service}.{}", text(&t["NodeID"])),
                slot => format!("{service}.{slot}"),
            };
            (name, t)
        })
        .collect();
    named.sort_by(|(na, a), (nb, b)| {
        if na != nb {
            return if natural_less(na, nb) {
                std::cmp::Ordering::Less
            } else {
                std::cmp::Ordering::Greater
            };
        }
        let created = |t: &Value| {
            chrono::DateTime::parse_from_rfc3339(text(&t["CreatedAt"]))
                .map(|d| d.timestamp_nanos_opt().unwrap_or(0))
                .unwrap_or(0)
        };
        created(b).cmp(&created(a))
    });
    named
}

/// The rows of the sorted tasks; a task with the name of the one before
/// is indented in a table. `nodes` maps node IDs to names. As in docker,
/// the shown names are kept by task ID: a task listed twice (once per
/// node of `node ps`) takes the last name given to it on every row.
pub fn task_rows(
    named: &[(String, Value)],
    nodes: &HashMap<String, String>,
    table: bool,
    trunc: bool,
    now: chrono::DateTime<chrono::Utc>,
) -> Vec<Value> {
    let indent = if table { " \\_ " } else { "" };
    let mut shown: HashMap<&str, String> = HashMap::new();
    let mut prev = "";
    for (name, t) in named {
        let s = if name == prev {
            format!("{indent}{name}")
        } else {
            name.clone()
        };
        shown.insert(text(&t["ID"]), s);
        prev = name;
    }
    named
        .iter()
        .map(|(name, t)| {
            let id = text(&t["NodeID"]);
            let node = nodes.get(id).map_or(id, String::as_str);
            let name = shown.get(text(&t["ID"])).unwrap_or(name);
            task_row(t, name, node, trunc, now)
        })
        .collect()
}

/// The format to use: `--format`, else the config's `tasksFormat` (not
/// with `-q`), else the table; "table" and "raw" as docker reads them.
fn format_of(p: &TaskPrint) -> String {
    let format = p.format.clone().filter(|f| !f.is_empty()).or_else(|| {
        (!p.quiet)
            .then(|| crate::config::format_for("tasksFormat"))
            .flatten()
    });
    match format.as_deref() {
        None | Some("table") if p.quiet => "{{.ID}}".into(),
        None | Some("table") => TASK_TABLE.into(),
        Some("raw") if p.quiet => "id: {{.ID}}".into(),
        Some("raw") => TASK_RAW.into(),
        Some(f) => f.into(),
    }
}

/// Prints the tasks as `docker service ps` and `docker node ps` do.
pub async fn print_tasks(ctx: &Ctx, tasks: Vec<Value>, p: &TaskPrint) -> Result<()> {
    let mut r = Resolver::new(p.no_resolve);
    let mut services = HashMap::new();
    for t in &tasks {
        let id = text(&t["ServiceID"]);
        if !services.contains_key(id) {
            services.insert(id.to_string(), r.service(ctx, id).await);
        }
    }
    let named = named_tasks(tasks, &services);
    let format = format_of(p);
    let mut nodes = HashMap::new();
    for (_, t) in &named {
        let id = text(&t["NodeID"]);
        if !id.is_empty() && !nodes.contains_key(id) {
            nodes.insert(id.to_string(), r.node(ctx, id).await);
        }
    }
    let rows = task_rows(
        &named,
        &nodes,
        format.starts_with("table"),
        p.trunc,
        chrono::Utc::now(),
    );
    print_format_or(Some(&format), TASK_TABLE, &rows, TASK_HEADERS)
}

/// Renders rows of tasks through the default table, for tests.
#[cfg(test)]
pub fn render_table(rows: &[Value]) -> String {
    crate::output::format_rows(TASK_TABLE, rows, TASK_HEADERS).unwrap_or_default()
}
