//! `berth stack rm|remove|down`: the docker CLI 28's `RunRemove`: for each
//! stack, its services (by name), secrets, configs, then networks, each
//! announced on stdout, each failure on stderr.

use std::time::Duration;

use anyhow::Result;
use serde_json::Value;

use super::services::args_error;
use super::services_flags::{Usage, opt_bool};
use super::stack::{RmArgs, stack_objects};
use super::stack_plan::{check_stack_name, sort_by_name};
use super::swarm::answer;
use crate::{Ctx, rawhttp, status};

const USAGE: Usage = Usage {
    path: "stack rm",
    line: "[OPTIONS] STACK [STACK...]",
};

const POLL: Duration = Duration::from_millis(200);

fn text(v: &Value) -> &str {
    v.as_str().unwrap_or_default()
}

/// One kind of stack object as removal sees it.
struct Kind {
    /// "service": the word of the messages
    word: &'static str,
    /// the API path ("/services")
    path: &'static str,
    /// where the name is: services, secrets and configs under `Spec`
    in_spec: bool,
    /// the ID key: networks say `Id`
    id_key: &'static str,
}

const SERVICES: Kind = Kind {
    word: "service",
    path: "services",
    in_spec: true,
    id_key: "ID",
};
const SECRETS: Kind = Kind {
    word: "secret",
    path: "secrets",
    in_spec: true,
    id_key: "ID",
};
const CONFIGS: Kind = Kind {
    word: "config",
    path: "configs",
    in_spec: true,
    id_key: "ID",
};
const NETWORKS: Kind = Kind {
    word: "network",
    path: "networks",
    in_spec: false,
    id_key: "Id",
};

impl Kind {
    fn name<'a>(&self, o: &'a Value) -> &'a str {
        if self.in_spec {
            text(&o["Spec"]["Name"])
        } else {
            text(&o["Name"])
        }
    }
}

/// "Removing service NS_web".
pub fn removing_line(word: &str, name: &str) -> String {
    format!("Removing {word} {name}")
}

/// What the docker CLI prints on stderr when a removal failed: no
/// newline, so the next message follows on the same line.
pub fn failure_text(word: &str, id: &str, error: &str) -> String {
    format!("Failed to remove {word} {id}: {error}")
}

/// Removes the objects in the given order; answers whether one failed.
async fn remove_all(ctx: &Ctx, kind: &Kind, objects: &[Value]) -> bool {
    let mut failed = false;
    for o in objects {
        let id = text(&o[kind.id_key]).to_string();
        let id = if id.is_empty() {
            text(&o["ID"]).to_string()
        } else {
            id
        };
        println!("{}", removing_line(kind.word, kind.name(o)));
        let path = format!("/{}/{}", kind.path, rawhttp::encode(&id));
        let result = match rawhttp::delete(&ctx.socket, &path).await {
            Ok((code, body)) => answer(code, body).await.map(|_| ()),
            Err(e) => Err(e),
        };
        if let Err(e) = result {
            failed = true;
            eprint!("{}", failure_text(kind.word, &id, &e.to_string()));
        }
    }
    failed
}

/// `removeServices`: sorted by name first.
pub async fn remove_services(ctx: &Ctx, mut services: Vec<Value>) -> bool {
    sort_by_name(&mut services);
    remove_all(ctx, &SERVICES, &services).await
}

pub async fn rm(ctx: &Ctx, a: RmArgs) -> Result<i32> {
    if a.stacks.is_empty() {
        return Err(args_error("at least 1 argument", USAGE.path, USAGE.line));
    }
    for ns in &a.stacks {
        check_stack_name(ns).map_err(|e| status(1, e))?;
    }
    let detach = opt_bool("detach", &a.detach)
        .map_err(|e| e.with_usage(&USAGE))?
        .unwrap_or(true);
    let mut errors = Vec::new();
    for ns in &a.stacks {
        let services = stack_objects(ctx, "services", ns).await?;
        let networks = stack_objects(ctx, "networks", ns).await?;
        let secrets = stack_objects(ctx, "secrets", ns).await?;
        let configs = stack_objects(ctx, "configs", ns).await?;
        if services.len() + networks.len() + secrets.len() + configs.len() == 0 {
            eprintln!("Nothing found in stack: {ns}");
            continue;
        }
        let mut failed = remove_services(ctx, services).await;
        failed |= remove_all(ctx, &SECRETS, &secrets).await;
        failed |= remove_all(ctx, &CONFIGS, &configs).await;
        failed |= remove_all(ctx, &NETWORKS, &networks).await;
        if failed {
            errors.push(format!("failed to remove some resources from stack: {ns}"));
            continue;
        }
        if !detach && let Err(e) = wait_on_tasks(ctx, ns).await {
            errors.push(format!(
                "failed to wait on tasks of stack: {ns}: failed to get tasks: {e}"
            ));
        }
    }
    if errors.is_empty() {
        return Ok(0);
    }
    Err(status(1, errors.join("\n")))
}

/// swarmkit's states past `running`.
pub fn is_terminal(state: &str) -> bool {
    matches!(state, "complete" | "shutdown" | "failed" | "rejected")
}

/// `-d=false`: until every task of the stack has ended (or is gone).
async fn wait_on_tasks(ctx: &Ctx, namespace: &str) -> Result<()> {
    loop {
        let tasks = stack_objects(ctx, "tasks", namespace).await?;
        if tasks
            .iter()
            .all(|t| is_terminal(text(&t["Status"]["State"])))
        {
            return Ok(());
        }
        tokio::time::sleep(POLL).await;
    }
}
