//! `berth node update|promote|demote|rm|ps`: the docker CLI 28's requests
//! (cli/command/node) and its texts.

use std::collections::BTreeMap;

use anyhow::Result;
use serde_json::{Value, json};

use super::services_flags::Usage;
use super::services_list::{filters_json, parse_filters};
use super::swarm::{answer, get_json, node_ref};
use super::tasks_table::{TaskPrint, print_tasks};
use crate::rawhttp;
use crate::{Ctx, status};

#[derive(clap::Args, Debug)]
pub struct NodeUpdateArgs {
    /// Availability of the node ("active", "pause", "drain")
    #[arg(long)]
    availability: Option<String>,
    /// Add or update a node label (key=value)
    #[arg(long = "label-add")]
    label_add: Vec<String>,
    /// Remove a node label if exists
    #[arg(long = "label-rm")]
    label_rm: Vec<String>,
    /// Role of the node ("worker", "manager")
    #[arg(long)]
    role: Option<String>,
    #[arg(value_name = "NODE")]
    node: String,
}

#[derive(clap::Args, Debug)]
pub struct NodeRoleArgs {
    #[arg(required = true, value_name = "NODE")]
    nodes: Vec<String>,
}

#[derive(clap::Args, Debug)]
pub struct NodeRmArgs {
    /// Force remove a node from the swarm
    #[arg(short = 'f', long)]
    force: bool,
    #[arg(required = true, value_name = "NODE")]
    nodes: Vec<String>,
}

#[derive(clap::Args, Debug)]
pub struct NodePsArgs {
    /// Filter output based on conditions provided
    #[arg(short = 'f', long = "filter")]
    filter: Vec<String>,
    /// Pretty-print tasks using a Go template
    #[arg(long)]
    format: Option<String>,
    /// Do not map IDs to Names
    #[arg(long = "no-resolve")]
    no_resolve: bool,
    /// Do not truncate output
    #[arg(long = "no-trunc")]
    no_trunc: bool,
    /// Only display task IDs
    #[arg(short = 'q', long)]
    quiet: bool,
    #[arg(value_name = "self|NODE", default_value = "self")]
    nodes: Vec<String>,
}

/// The docker CLI's `opts.ConvertKVStringsToMap`: `k=v`, or `k` alone
/// for an empty value.
fn kv_map(items: &[String]) -> BTreeMap<String, String> {
    items
        .iter()
        .map(|s| match s.split_once('=') {
            Some((k, v)) => (k.to_string(), v.to_string()),
            None => (s.clone(), String::new()),
        })
        .collect()
}

/// The spec the docker CLI sends: the node's spec with the flags merged
/// (its `mergeNodeUpdate`).
pub fn merged_spec(node: &Value, a: &NodeUpdateArgs) -> Result<Value> {
    let mut spec = node["Spec"].clone();
    if !spec.is_object() {
        spec = json!({});
    }
    if let Some(r) = &a.role {
        spec["Role"] = json!(r);
    }
    if let Some(av) = &a.availability {
        spec["Availability"] = json!(av);
    }
    let mut labels: BTreeMap<String, String> =
        serde_json::from_value(spec["Labels"].clone()).unwrap_or_default();
    labels.extend(kv_map(&a.label_add));
    for k in &a.label_rm {
        if labels.remove(k).is_none() {
            return Err(status(1, format!("key {k} doesn't exist in node's labels")));
        }
    }
    spec["Labels"] = json!(labels);
    Ok(spec)
}

async fn inspect(ctx: &Ctx, node: &str) -> Result<Value> {
    get_json(ctx, &format!("/nodes/{}", rawhttp::encode(node))).await
}

async fn send_update(ctx: &Ctx, node: &Value, spec: &Value) -> Result<()> {
    let id = node["ID"].as_str().unwrap_or_default();
    let version = node["Version"]["Index"].as_u64().unwrap_or_default();
    let path = format!("/nodes/{}/update?version={version}", rawhttp::encode(id));
    let (code, body) = rawhttp::post_json(&ctx.socket, &path, spec.to_string().as_bytes()).await?;
    answer(code, body).await?;
    Ok(())
}

/// Reads the node, asks `change` for its new spec (`None`: nothing to
/// do) and sends it. A node's own status reports also bump its version, so
/// a write that lost that race ("update out of sequence") reads again and
/// retries, a few times, where the docker CLI gives up at once.
async fn read_modify_write(
    ctx: &Ctx,
    reference: &str,
    change: impl Fn(&Value) -> Result<Option<Value>>,
) -> Result<Value> {
    let mut attempt = 0;
    loop {
        let node = inspect(ctx, reference).await?;
        let Some(spec) = change(&node)? else {
            return Ok(node);
        };
        match send_update(ctx, &node, &spec).await {
            Err(e) if attempt < 4 && e.to_string().contains("update out of sequence") => {
                attempt += 1;
                tokio::time::sleep(std::time::Duration::from_millis(100)).await;
            }
            other => return other.map(|()| node),
        }
    }
}

pub async fn node_update(ctx: &Ctx, a: NodeUpdateArgs) -> Result<i32> {
    read_modify_write(ctx, &a.node, |node| merged_spec(node, &a).map(Some)).await?;
    println!("{}", a.node);
    Ok(0)
}

/// `node promote` (to "manager") and `node demote` (to "worker"): the
/// first failure ends the command, as in the docker CLI.
pub async fn node_set_role(ctx: &Ctx, a: NodeRoleArgs, role: &str) -> Result<i32> {
    for r in &a.nodes {
        let node = read_modify_write(ctx, r, |node| {
            if node["Spec"]["Role"].as_str() == Some(role) {
                return Ok(None);
            }
            let mut spec = node["Spec"].clone();
            spec["Role"] = json!(role);
            Ok(Some(spec))
        })
        .await?;
        if node["Spec"]["Role"].as_str() == Some(role) {
            let id = node["ID"].as_str().unwrap_or_default();
            match role {
                "manager" => println!("Node {id} is already a manager."),
                _ => println!("Node {id} is already a worker."),
            }
            continue;
        }
        match role {
            "manager" => println!("Node {r} promoted to a manager in the swarm."),
            _ => println!("Manager {r} demoted in the swarm."),
        }
    }
    Ok(0)
}

pub async fn node_rm(ctx: &Ctx, a: NodeRmArgs) -> Result<i32> {
    let mut errors = Vec::new();
    for r in &a.nodes {
        let mut path = format!("/nodes/{}", rawhttp::encode(r));
        if a.force {
            path.push_str("?force=1");
        }
        let (code, body) = rawhttp::delete(&ctx.socket, &path).await?;
        match answer(code, body).await {
            Ok(_) => println!("{r}"),
            Err(e) => errors.push(e.to_string()),
        }
    }
    if !errors.is_empty() {
        return Err(status(1, errors.join("\n")));
    }
    Ok(0)
}

/// `node ps`: each node's tasks, errors gathered as the docker CLI
/// gathers them.
pub async fn node_ps(ctx: &Ctx, a: NodePsArgs) -> Result<i32> {
    let usage = Usage {
        path: "node ps",
        line: "[OPTIONS] [NODE...]",
    };
    // one filter for all the nodes, as in the docker CLI: each node's ID
    // is added to it, so a later node's request names the earlier ones too
    let mut filters = parse_filters(&a.filter, &usage)?;
    let mut tasks: Vec<Value> = Vec::new();
    let mut errors = Vec::new();
    for r in &a.nodes {
        let node = match node_ref(ctx, r).await {
            Ok(id) => inspect(ctx, &id).await,
            Err(e) => Err(e),
        };
        let node = match node {
            Ok(n) => n,
            Err(e) => {
                errors.push(e.to_string());
                continue;
            }
        };
        filters.push((
            "node".into(),
            node["ID"].as_str().unwrap_or_default().to_string(),
        ));
        let path = format!(
            "/tasks?filters={}",
            rawhttp::encode(&filters_json(&filters))
        );
        match get_json(ctx, &path).await {
            Ok(Value::Array(t)) => tasks.extend(t),
            Ok(_) => {}
            Err(e) => errors.push(e.to_string()),
        }
    }
    if errors.is_empty() || !tasks.is_empty() {
        let print = TaskPrint {
            no_resolve: a.no_resolve,
            trunc: !a.no_trunc,
            quiet: a.quiet,
            format: a.format.clone(),
        };
        if let Err(e) = print_tasks(ctx, tasks, &print).await {
            errors.push(e.to_string());
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

    fn args(add: &[&str], rm: &[&str]) -> NodeUpdateArgs {
        NodeUpdateArgs {
            availability: Some("drain".into()),
            label_add: add.iter().map(|s| s.to_string()).collect(),
            label_rm: rm.iter().map(|s| s.to_string()).collect(),
            role: None,
            node: "n".into(),
        }
    }

    #[test]
    fn an_update_merges_flags_over_the_spec_as_docker_does() {
        let node = json!({ "Spec": { "Labels": { "a": "1" }, "Role": "worker", "Availability": "active" } });
        let spec = merged_spec(&node, &args(&["b=2", "c"], &["a"])).unwrap();
        assert_eq!(
            spec,
            json!({ "Labels": { "b": "2", "c": "" }, "Role": "worker", "Availability": "drain" })
        );
        let err = merged_spec(&node, &args(&[], &["zz"])).unwrap_err();
        assert_eq!(err.to_string(), "key zz doesn't exist in node's labels");
    }
}
