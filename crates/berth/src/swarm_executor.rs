//! The swarm agent's executor: a task becomes a container through the
//! same engine calls the Engine API makes, named `svc.slot.taskid` and
//! labelled `com.docker.swarm.*` as dockerd's executor does
//! (daemon/cluster/executor/container), so `docker ps` shows it as it
//! would show dockerd's.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use berth_core::container::{ContainerConfig, ContainerSpec, HostConfig};
use berth_engine::{
    Credentials, Engine, ListOptions, LogsOptions, PullOptions, TaskFile, WaitCondition,
};
use berth_swarm_manager::LogOptions;
use berth_swarm_manager::executor::{ContainerState, LogEntries, NodeContext, TaskExecutor};
use berth_swarm_manager::logs::decode::EntryDecoder;
use berth_swarm_store::{BlobKind, PullAuth, Task};
use serde_json::{Value, json};

pub struct EngineExecutor {
    pub engine: Arc<Engine>,
    pub net: Arc<crate::swarm_netplane::NetPlane>,
}

const TASK_ID_LABEL: &str = "com.docker.swarm.task.id";

/// What swarmkit's templates see (`{{.Task.Slot}}`, `{{.Node.Hostname}}`).
fn template_context(t: &Task, node: &NodeContext) -> Value {
    json!({
        "Service": { "ID": t.service_id, "Name": t.service_name, "Labels": t.service_labels },
        "Node": { "ID": node.node_id, "Hostname": node.hostname,
                  "Platform": { "OS": std::env::consts::OS, "Architecture": std::env::consts::ARCH } },
        "Task": { "ID": t.id, "Name": t.container_name(), "Slot": slot_text(t) },
    })
}

/// A global task's "slot" in templates is its node's id.
fn slot_text(t: &Task) -> String {
    if t.slot > 0 {
        t.slot.to_string()
    } else {
        t.node_id.clone()
    }
}

fn expand(s: &str, ctx: &Value) -> Result<String, String> {
    if !s.contains("{{") {
        return Ok(s.to_string());
    }
    berth_gotmpl::render(s, ctx).map_err(|e| format!("expanding template: {e}"))
}

/// The task's secrets and configs as files: a secret's relative target
/// is under /run/secrets, a config's under /, as dockerd places them.
/// The data comes from the node's assignment set; a reference the set
/// lacks rejects the task in the swarmkit agent's words.
fn task_files(t: &Task, node: &NodeContext) -> Result<Vec<TaskFile>, String> {
    let Some(c) = &t.spec.container_spec else {
        return Ok(Vec::new());
    };
    let ctx = template_context(t, node);
    let mut files = Vec::new();
    for r in c.blob_refs() {
        let Some(file) = r.file else {
            continue; // a config for the runtime (credential specs)
        };
        let what = r.kind.as_str();
        let x = node
            .deps
            .get(r.kind, r.id)
            .ok_or_else(|| format!("{what} {} not found", r.id))?;
        let base = match r.kind {
            BlobKind::Secret => "/run/secrets",
            BlobKind::Config => "/",
        };
        let target = if file.name.starts_with('/') {
            file.name.clone()
        } else {
            format!("{}/{}", base.trim_end_matches('/'), file.name)
        };
        let data = match &x.spec.templating {
            Some(d) if d.name == "golang" => {
                let text = String::from_utf8_lossy(&x.spec.data.0);
                let funcs = |name: &str, args: &[Value]| payload_func(t, node, name, args);
                berth_gotmpl::render_with(&text, &ctx, &funcs)
                    .map_err(|e| format!("failed to expand templated {what} {}: {e}", r.id))?
                    .into_bytes()
            }
            Some(d) => return Err(format!("unrecognized template type {}", d.name)),
            None => x.spec.data.0.clone(),
        };
        files.push(TaskFile {
            target,
            data,
            uid: atoi(&file.uid)?,
            gid: atoi(&file.gid)?,
            mode: file.mode,
        });
    }
    Ok(files)
}

/// swarmkit's payload functions for templated secrets and configs:
/// `env "X"` (the task's own environment), `secret "target"` and
/// `config "target"` (another of the task's files, by its target as
/// written) and its variadic `join SEP A B…`.
fn payload_func(
    t: &Task,
    node: &NodeContext,
    name: &str,
    args: &[Value],
) -> Option<anyhow::Result<Value>> {
    let text = |i: usize| args.get(i).and_then(Value::as_str).unwrap_or_default();
    let answer = match name {
        "env" => Ok(task_env(t, text(0))),
        "secret" => referenced_data(t, node, BlobKind::Secret, text(0)),
        "config" => referenced_data(t, node, BlobKind::Config, text(0)),
        "join" => {
            let parts: Vec<&str> = (1..args.len()).map(text).collect();
            Ok(parts.join(text(0)))
        }
        _ => return None,
    };
    Some(answer.map(Value::String).map_err(anyhow::Error::msg))
}

fn task_env(t: &Task, key: &str) -> String {
    let env = t.spec.container_spec.iter().flat_map(|c| &c.env);
    env.filter_map(|e| e.split_once('='))
        .find(|(k, _)| *k == key)
        .map(|(_, v)| v.to_string())
        .unwrap_or_default()
}

fn referenced_data(
    t: &Task,
    node: &NodeContext,
    kind: BlobKind,
    target: &str,
) -> Result<String, String> {
    let what = kind.as_str();
    let refs = t.spec.container_spec.iter().flat_map(|c| c.blob_refs());
    let r = refs
        .filter(|r| r.kind == kind)
        .find(|r| r.file.is_some_and(|f| f.name == target))
        .ok_or_else(|| format!("{what} target {target} not found"))?;
    let x = node
        .deps
        .get(kind, r.id)
        .ok_or_else(|| format!("{what} {} not found", r.id))?;
    Ok(String::from_utf8_lossy(&x.spec.data.0).into_owned())
}

/// Go's `strconv.Atoi` on a reference's uid or gid, in its words; empty
/// is root.
fn atoi(s: &str) -> Result<u32, String> {
    if s.is_empty() {
        return Ok(0);
    }
    s.parse()
        .map_err(|_| format!("strconv.Atoi: parsing {s:?}: invalid syntax"))
}

fn labels(t: &Task) -> HashMap<String, String> {
    let spec = t.spec.container_spec.as_ref();
    let mut l: HashMap<String, String> = spec
        .map(|c| c.labels.clone().into_iter().collect())
        .unwrap_or_default();
    let system = [
        ("task", String::new()),
        ("task.id", t.id.clone()),
        ("task.name", t.container_name()),
        ("node.id", t.node_id.clone()),
        ("service.id", t.service_id.clone()),
        ("service.name", t.service_name.clone()),
    ];
    for (k, v) in system {
        l.insert(format!("com.docker.swarm.{k}"), v);
    }
    l
}

/// dockerd's executor: `Command` replaces the entrypoint, `Args` the cmd.
fn container_config(t: &Task, node: &NodeContext) -> Result<ContainerConfig, String> {
    let c = t
        .spec
        .container_spec
        .as_ref()
        .ok_or("the task has no container spec")?;
    let ctx = template_context(t, node);
    let env = c
        .env
        .iter()
        .map(|e| expand(e, &ctx))
        .collect::<Result<Vec<_>, _>>()?;
    let mut config = json!({
        "Image": c.image,
        "Env": env,
        "Labels": labels(t),
        "Tty": c.tty,
        "OpenStdin": c.open_stdin,
    });
    let hostname = expand(&c.hostname, &ctx)?;
    let set = |config: &mut Value, key: &str, v: Value| config[key] = v;
    if !hostname.is_empty() {
        set(&mut config, "Hostname", json!(hostname));
    }
    if !c.user.is_empty() {
        set(&mut config, "User", json!(c.user));
    }
    if !c.dir.is_empty() {
        set(&mut config, "WorkingDir", json!(c.dir));
    }
    if !c.stop_signal.is_empty() {
        set(&mut config, "StopSignal", json!(c.stop_signal));
    }
    if let Some(ns) = c.stop_grace_period {
        set(&mut config, "StopTimeout", json!(ns / 1_000_000_000));
    }
    if let Some(h) = &c.healthcheck {
        set(&mut config, "Healthcheck", h.clone());
    }
    if !c.command.is_empty() {
        set(&mut config, "Entrypoint", json!(c.command));
        set(&mut config, "Cmd", json!(c.args));
    } else if !c.args.is_empty() {
        set(&mut config, "Cmd", json!(c.args));
    }
    serde_json::from_value(config).map_err(|e| format!("container config: {e}"))
}

fn host_config(t: &Task, node: &NodeContext) -> Result<HostConfig, String> {
    let c = t
        .spec
        .container_spec
        .as_ref()
        .ok_or("the task has no container spec")?;
    let ctx = template_context(t, node);
    let mut mounts = Vec::new();
    for m in &c.mounts {
        let mut m = m.clone();
        for key in ["Source", "Target"] {
            if let Some(s) = m.get(key).and_then(Value::as_str) {
                m[key] = json!(expand(s, &ctx)?);
            }
        }
        mounts.push(m);
    }
    // "IP host..." in the spec, "host:IP" in a container's ExtraHosts
    let extra_hosts: Vec<String> = c
        .hosts
        .iter()
        .filter_map(|h| {
            let mut parts = h.split_whitespace();
            let ip = parts.next()?;
            Some(parts.map(|n| format!("{n}:{ip}")).collect::<Vec<_>>())
        })
        .flatten()
        .collect();
    let mut hc = json!({
        "PortBindings": host_mode_ports(t),
        "Mounts": mounts,
        "CapAdd": c.capability_add,
        "CapDrop": c.capability_drop,
        "Sysctls": c.sysctls,
        "Ulimits": c.ulimits,
        "ReadonlyRootfs": c.read_only,
        "ExtraHosts": extra_hosts,
    });
    if let Some(init) = c.init {
        hc["Init"] = json!(init);
    }
    if let Some(r) = &t.spec.resources {
        if let Some(l) = &r.limits {
            hc["NanoCpus"] = json!(l.nano_cpus);
            hc["Memory"] = json!(l.memory_bytes);
            if l.pids != 0 {
                hc["PidsLimit"] = json!(l.pids);
            }
        }
        if let Some(res) = &r.reservations {
            hc["MemoryReservation"] = json!(res.memory_bytes);
        }
    }
    serde_json::from_value(hc).map_err(|e| format!("host config: {e}"))
}

/// `--publish mode=host`: bound by the task's own container on its
/// node, as dockerd's executor binds them (published 0 is any free port).
fn host_mode_ports(t: &Task) -> Value {
    let mut bindings = serde_json::Map::new();
    for p in t
        .ports
        .iter()
        .filter(|p| p.publish_mode.as_deref() == Some("host"))
    {
        let proto = p.protocol.clone().unwrap_or_else(|| "tcp".into());
        let host = p
            .published_port
            .filter(|n| *n > 0)
            .map(|n| n.to_string())
            .unwrap_or_default();
        let key = format!("{}/{proto}", p.target_port);
        let entry = bindings.entry(key).or_insert_with(|| json!([]));
        if let Some(list) = entry.as_array_mut() {
            list.push(json!({ "HostIp": "", "HostPort": host }));
        }
    }
    Value::Object(bindings)
}

/// dockerd's executor error for a container whose health check failed.
const UNHEALTHY: &str = "unhealthy container";
const HEALTH_POLL: Duration = Duration::from_millis(100);

impl EngineExecutor {
    fn health(&self, container: &str) -> Option<String> {
        let v = self.engine.container_inspect(container, false).ok()?;
        v.record.state.health.as_ref().map(|h| h.status.clone())
    }

    async fn ensure_image(&self, image: &str, auth: Option<&PullAuth>) -> Result<(), String> {
        if self.engine.resolve_image(image).is_ok() {
            return Ok(());
        }
        let opts = PullOptions {
            image: image.to_string(),
            tag: None,
            platform: None,
            credentials: auth.map(|a| Credentials {
                username: a.username.clone(),
                password: a.password.clone(),
            }),
        };
        let plan = self
            .engine
            .pull_prepare(&opts)
            .await
            .map_err(|e| format!("No such image: {image}: {e}"))?;
        let (tx, mut rx) = tokio::sync::mpsc::channel(64);
        let drain = tokio::spawn(async move { while rx.recv().await.is_some() {} });
        let pulled = self.engine.pull_run(plan, tx).await;
        let _ = drain.await;
        pulled
            .map(|_| ())
            .map_err(|e| format!("pulling {image}: {e}"))
    }
}

#[tonic::async_trait]
impl TaskExecutor for EngineExecutor {
    async fn prepare(&self, t: &Task, node: &NodeContext) -> Result<String, String> {
        let name = t.container_name();
        let files = task_files(t, node)?;
        let endpoints = {
            // netlink: off the async threads
            let (net, task) = (self.net.clone(), t.clone());
            tokio::task::spawn_blocking(move || net.endpoints(&task))
                .await
                .map_err(|e| e.to_string())??
        };
        if let Ok(v) = self.engine.container_inspect(&name, false) {
            self.engine.set_task_files(&v.record.id, files);
            return Ok(v.record.id);
        }
        let image = t
            .spec
            .container_spec
            .as_ref()
            .map(|c| c.image.clone())
            .unwrap_or_default();
        self.ensure_image(&image, t.pull_auth.as_ref()).await?;
        let (mode, endpoints) = endpoints;
        let mut host_config = host_config(t, node)?;
        if mode.is_some() {
            host_config.network_mode = mode;
        }
        let spec = ContainerSpec {
            config: container_config(t, node)?,
            host_config,
            endpoints,
            platform: None,
        };
        let (id, _warnings) = self
            .engine
            .container_create(Some(&name), spec)
            .await
            .map_err(|e| e.to_string())?;
        self.engine.set_task_files(&id, files);
        Ok(id)
    }

    /// Started means healthy, for a container with a health check (as
    /// dockerd's executor has it): a rolling update moves on only then.
    async fn start(&self, container: &str) -> Result<i64, String> {
        let running = self.inspect(container).await.filter(|s| s.running);
        if running.is_none() {
            // swarmkit's words around the engine's reason
            self.engine
                .container_start(container)
                .await
                .map_err(|e| format!("starting container failed: {e}"))?;
        }
        let (net, c) = (self.net.clone(), container.to_string());
        let _ = tokio::task::spawn_blocking(move || net.write_vips(&c)).await;
        loop {
            let Some(s) = self.inspect(container).await else {
                return Err("task: its container is gone".into());
            };
            if !s.running {
                // a task that is done already (a job's `true`) succeeded;
                // waiting reports its exit
                if s.exit_code == 0 {
                    return Ok(s.pid);
                }
                return Err(format!("task: non-zero exit ({})", s.exit_code));
            }
            match self.health(container).as_deref() {
                Some("unhealthy") => {
                    let _ = self.stop(container, Some(Duration::from_secs(10))).await;
                    return Err(UNHEALTHY.into());
                }
                Some("starting") => tokio::time::sleep(HEALTH_POLL).await,
                _ => return Ok(s.pid),
            }
        }
    }

    /// The container's exit code; an unhealthy container is stopped and
    /// its task fails, as under dockerd.
    async fn wait(&self, container: &str) -> Result<i64, String> {
        let wait = self
            .engine
            .container_wait(container, WaitCondition::NotRunning)
            .map_err(|e| e.to_string())?;
        if self.health(container).is_none() {
            return Ok(wait.await.0);
        }
        tokio::pin!(wait);
        loop {
            tokio::select! {
                (code, _) = &mut wait => return Ok(code),
                _ = tokio::time::sleep(HEALTH_POLL) => {
                    if self.health(container).as_deref() == Some("unhealthy") {
                        let _ = self.stop(container, Some(Duration::from_secs(10))).await;
                        return Err(UNHEALTHY.into());
                    }
                }
            }
        }
    }

    async fn inspect(&self, container: &str) -> Option<ContainerState> {
        let v = self.engine.container_inspect(container, false).ok()?;
        let s = &v.record.state;
        Some(ContainerState {
            id: v.record.id.clone(),
            running: s.status == berth_engine::Status::Running,
            pid: s.pid,
            exit_code: s.exit_code,
        })
    }

    async fn stop(&self, container: &str, grace: Option<Duration>) -> Result<(), String> {
        let running = self.inspect(container).await.is_some_and(|s| s.running);
        if !running {
            return Ok(());
        }
        let timeout = grace.map(|g| g.as_secs() as i64);
        self.engine
            .container_stop(container, timeout, None)
            .await
            .map_err(|e| e.to_string())
    }

    async fn remove(&self, container: &str) -> Result<(), String> {
        self.net.forget(container);
        self.engine
            .container_remove(container, true, false)
            .await
            .map_err(|e| e.to_string())
    }

    async fn logs(&self, container: &str, options: &LogOptions) -> Result<LogEntries, String> {
        let view = self
            .engine
            .container_inspect(container, false)
            .map_err(|e| e.to_string())?;
        let tty = view.record.config.tty == Some(true);
        let mut chunks = self
            .engine
            .container_logs(container, engine_log_options(options))
            .map_err(|e| e.to_string())?;
        let (tx, rx) = tokio::sync::mpsc::channel(64);
        tokio::spawn(async move {
            let mut decoder = EntryDecoder::new(tty);
            while let Some(chunk) = chunks.recv().await {
                let entries = chunk
                    .map_err(|e| format!("reading the log: {e}"))
                    .and_then(|c| decoder.push(&c));
                let entries = match entries {
                    Ok(e) => e,
                    Err(e) => {
                        let _ = tx.send(Err(e)).await;
                        return;
                    }
                };
                for e in entries {
                    if tx.send(Ok(e)).await.is_err() {
                        return;
                    }
                }
            }
        });
        Ok(rx)
    }

    async fn networks(
        &self,
        node_id: &str,
        views: Vec<berth_swarm_manager::executor::NetworkView>,
        data_port: u16,
    ) {
        let containers: Vec<String> = self
            .task_containers()
            .await
            .into_iter()
            .map(|(_, c)| c)
            .collect();
        let net = self.net.clone();
        let node_id = node_id.to_string();
        // netlink and nft are synchronous
        let _ = tokio::task::spawn_blocking(move || {
            net.update(&node_id, views, data_port, &containers)
        })
        .await;
    }

    async fn task_containers(&self) -> Vec<(String, String)> {
        let opts = ListOptions {
            all: true,
            limit: None,
            filters: HashMap::from([("label".to_string(), vec![TASK_ID_LABEL.to_string()])]),
            size: false,
        };
        let Ok(views) = self.engine.container_list(&opts) else {
            return Vec::new();
        };
        views
            .into_iter()
            .filter_map(|v| {
                let labels = v.record.config.labels.as_ref()?;
                Some((labels.get(TASK_ID_LABEL)?.clone(), v.record.id.clone()))
            })
            .collect()
    }
}

/// The engine reads every record with its time and details: the API
/// decides what of them the client sees (as dockerd's executor does).
fn engine_log_options(o: &LogOptions) -> LogsOptions {
    LogsOptions {
        stdout: o.stdout,
        stderr: o.stderr,
        follow: o.follow,
        timestamps: true,
        tail: o.tail,
        since: o.since,
        until: None,
        raw: false,
        details: true,
    }
}
