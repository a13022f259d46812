//! berth's `depends_on` for `stack deploy` (Docker ignores the key): a
//! service is created or updated only once the services it depends on run
//! their current spec (`service_started`, `service_healthy`; in berth a
//! task with a healthcheck reaches `running` only once healthy) or have
//! completed it (`service_completed_successfully`).

use std::time::{Duration, Instant};

use anyhow::Result;
use berth_compose::{DependencyCondition, Project};
use serde_json::Value;

use super::services_progress::filters_query;
use super::swarm::get_json;
use crate::{Ctx, rawhttp, status};

const POLL: Duration = Duration::from_millis(200);

fn text(v: &Value) -> &str {
    v.as_str().unwrap_or_default()
}

/// One dependency to wait for before deploying a service.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DependencyWait {
    /// "NS_db"
    pub service: String,
    /// "NS_web", the service that waits
    pub dependent: String,
    pub condition: DependencyCondition,
}

impl DependencyWait {
    /// What the condition is called in the messages.
    fn goal(&self) -> &'static str {
        match self.condition {
            DependencyCondition::Started => "running",
            DependencyCondition::Healthy => "healthy",
            DependencyCondition::CompletedSuccessfully => "complete",
        }
    }

    pub fn waiting_line(&self) -> String {
        format!(
            "Waiting for service {} to be {} ({} depends on it)",
            self.service,
            self.goal(),
            self.dependent
        )
    }

    pub fn done_line(&self) -> String {
        format!("Service {} is {}", self.service, self.goal())
    }

    pub fn failure(&self, why: &str) -> String {
        format!(
            "service {} did not become {}: {why}",
            self.service,
            self.goal()
        )
    }
}

/// The dependencies of the file's service `name`, in the file's order.
pub fn dependency_waits(project: &Project, namespace: &str, name: &str) -> Vec<DependencyWait> {
    let Some(service) = project.services.get(name) else {
        return Vec::new();
    };
    service
        .depends_on
        .iter()
        .map(|d| DependencyWait {
            service: format!("{namespace}_{}", d.service),
            dependent: format!("{namespace}_{name}"),
            condition: d.condition,
        })
        .collect()
}

/// Where a dependency stands after one look.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Readiness {
    Ready,
    Waiting,
    /// the update was paused or rolled back: waiting longer will not help
    Failed(String),
}

/// How many tasks the service wants: its replicas or completions, or for
/// a global service what the daemon counts.
fn wanted_tasks(service: &Value) -> u64 {
    let mode = &service["Spec"]["Mode"];
    let desired = service["ServiceStatus"]["DesiredTasks"]
        .as_u64()
        .unwrap_or(0);
    if let Some(n) = mode["Replicated"]["Replicas"].as_u64() {
        return n;
    }
    if mode["Replicated"].is_object() {
        return 1;
    }
    if mode["ReplicatedJob"].is_object() {
        return mode["ReplicatedJob"]["TotalCompletions"]
            .as_u64()
            .unwrap_or(1);
    }
    // global modes: one per eligible node, at least one
    desired.max(1)
}

/// A task started from the service's current task template.
fn is_current(task: &Value, service: &Value) -> bool {
    task["Spec"] == service["Spec"]["TaskTemplate"]
}

/// Decides from the service (`GET /services/ID?status=true`) and its tasks
/// whether `condition` holds for its current spec.
pub fn readiness(service: &Value, tasks: &[Value], condition: DependencyCondition) -> Readiness {
    let update = &service["UpdateStatus"];
    let state = text(&update["State"]);
    if matches!(
        state,
        "paused" | "rollback_started" | "rollback_paused" | "rollback_completed"
    ) {
        let msg = text(&update["Message"]);
        return Readiness::Failed(format!("update {state}: {msg}"));
    }
    let (task_state, desired_state) = match condition {
        DependencyCondition::CompletedSuccessfully => ("complete", None),
        _ => ("running", Some("running")),
    };
    let done = tasks
        .iter()
        .filter(|t| is_current(t, service))
        .filter(|t| desired_state.is_none_or(|d| text(&t["DesiredState"]) == d))
        .filter(|t| text(&t["Status"]["State"]) == task_state)
        .count() as u64;
    let wanted = wanted_tasks(service);
    let replicas_zero = service["Spec"]["Mode"]["Replicated"]["Replicas"].as_u64() == Some(0);
    if replicas_zero || done >= wanted {
        Readiness::Ready
    } else {
        Readiness::Waiting
    }
}

/// The state and error of the task that changed last: what a timeout
/// reports ("failed: task: non-zero exit (1)").
pub fn last_task_state(tasks: &[Value]) -> String {
    let last = tasks
        .iter()
        .max_by(|a, b| text(&a["Status"]["Timestamp"]).cmp(text(&b["Status"]["Timestamp"])));
    let Some(t) = last else {
        return "no task was created".into();
    };
    let state = text(&t["Status"]["State"]);
    match t["Status"]["Err"].as_str().filter(|e| !e.is_empty()) {
        Some(err) => format!("{state}: {err}"),
        None => state.to_string(),
    }
}

/// One look at a dependency: the service and all its tasks.
async fn look(ctx: &Ctx, w: &DependencyWait) -> Result<(Value, Vec<Value>)> {
    let path = format!("/services/{}?status=true", rawhttp::encode(&w.service));
    let service = get_json(ctx, &path).await?;
    let id = text(&service["ID"]).to_string();
    let q = filters_query(&[("service", &id)]);
    let tasks = get_json(ctx, &format!("/tasks?filters={q}")).await?;
    Ok((service, tasks.as_array().cloned().unwrap_or_default()))
}

/// Waits until the dependency holds, printing the waiting and done lines
/// only when it did not hold at the first look.
pub async fn wait_for(ctx: &Ctx, w: &DependencyWait, timeout: Duration) -> Result<()> {
    let start = Instant::now();
    let mut announced = false;
    loop {
        let (service, tasks) = look(ctx, w).await?;
        match readiness(&service, &tasks, w.condition) {
            Readiness::Ready => {
                if announced {
                    println!("{}", w.done_line());
                }
                return Ok(());
            }
            Readiness::Failed(why) => return Err(status(1, w.failure(&why))),
            Readiness::Waiting if start.elapsed() >= timeout => {
                let current: Vec<Value> = tasks
                    .iter()
                    .filter(|t| is_current(t, &service))
                    .cloned()
                    .collect();
                return Err(status(1, w.failure(&last_task_state(&current))));
            }
            Readiness::Waiting => {}
        }
        if !announced {
            println!("{}", w.waiting_line());
            announced = true;
        }
        tokio::time::sleep(POLL).await;
    }
}
