//! The container service: create, start, stop, kill, wait, remove, list,
//! inspect, logs and attach. A container's record is the source of truth
//! and is written through to the metadata store on every change; a watch
//! channel tells waiters about exits and removal.

use berth_store::MetadataStoreExt;
use std::collections::{HashMap, HashSet};
use std::future::Future;
use std::io::{BufRead, BufReader, Seek};
use std::path::PathBuf;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::Context;
use berth_core::container::{ContainerConfig, ContainerSpec, EndpointConfig, HostConfig};
use berth_core::runtime::{
    AttachIo, CreateContainer, ExitStatus, RuntimeStream, STREAM_STDERR, STREAM_STDOUT,
    frame_header,
};
use berth_logdriver::jsonlog;
use berth_store::Table;
use bytes::Bytes;
use serde::{Deserialize, Serialize};
use tokio::sync::{mpsc, oneshot, watch};

use crate::layers::chain_ids;
use crate::volumes::MountRecord;
use crate::{Engine, Error, LockExt, Result, lifecycle, mounts, names, seccomp, spec};

const NEVER: &str = "0001-01-01T00:00:00Z";

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    #[default]
    Created,
    Running,
    /// exited, and waiting for its restart policy's delay
    Restarting,
    Exited,
    Dead,
    Removing,
}

impl Status {
    /// The word Docker's State.Status uses.
    pub(crate) fn docker_name(self) -> &'static str {
        match self {
            Status::Created => "created",
            Status::Running => "running",
            Status::Restarting => "restarting",
            Status::Exited => "exited",
            Status::Dead => "dead",
            Status::Removing => "removing",
        }
    }
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct StateRecord {
    pub status: Status,
    pub pid: i64,
    pub exit_code: i64,
    pub started_at: String,
    pub finished_at: String,
    pub error: String,
    pub oom_killed: bool,
    /// frozen by `pause` (the status stays running, as in Docker)
    #[serde(default)]
    pub paused: bool,
    /// the health check's state, for containers that have one
    #[serde(default)]
    pub health: Option<crate::health::HealthRecord>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ContainerRecord {
    pub id: String,
    /// without the leading "/"
    pub name: String,
    pub created: String,
    /// the image as the user named it
    pub image: String,
    pub image_id: String,
    pub path: String,
    pub args: Vec<String>,
    pub config: ContainerConfig,
    pub host_config: HostConfig,
    pub state: StateRecord,
    #[serde(default)]
    pub restart_count: i64,
    /// set by `stop`, cleared by `start`: restart policies leave such a
    /// container alone (and `unless-stopped` also across daemon restarts)
    #[serde(default)]
    pub manually_stopped: bool,
    #[serde(default)]
    pub mounts: Vec<MountRecord>,
    /// the create request's per-network settings (`--ip`, aliases)
    #[serde(default)]
    pub endpoints_config: HashMap<String, EndpointConfig>,
    /// while running: the container's endpoint on each network, by name
    #[serde(default)]
    pub endpoints: std::collections::BTreeMap<String, crate::networks::EndpointRecord>,
    /// while running: its published ports
    #[serde(default)]
    pub published: Vec<crate::networks::PublishedPort>,
    /// disconnected from the network of its `--network` (`network
    /// disconnect`): it joins only the others
    #[serde(default)]
    pub primary_detached: bool,
    /// the MAC address asked for on the network of its `--network`, kept
    /// over a disconnect: dockerd 20.10 gives it again at the reconnect
    /// (docker-compose v1 reconnects a created container to add links)
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub primary_mac: Option<String>,
    /// legacy links (`--link` on the default bridge): alias -> the
    /// child's id
    #[serde(default, skip_serializing_if = "std::collections::BTreeMap::is_empty")]
    pub legacy_links: std::collections::BTreeMap<String, String>,
    /// a build's step container: one left by an interrupted build is
    /// removed when the daemon starts
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub build_step: bool,
    /// its image's layers, kept once `rmi -f` deleted that image under
    /// the stopped container (dockerd's containers hold their layers)
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub diff_ids: Vec<String>,
    /// a CRI pod sandbox on a CNI network: its network namespace is pinned
    /// and wired by the CRI, and outlives the container's starts and stops
    /// (the CNI's DEL needs it). Set only from Rust, never from API JSON.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub pod_netns: bool,
}

/// What callers inside the daemon mark a new record with; the Docker API
/// sets none of them.
#[derive(Debug, Clone, Copy, Default)]
struct Marks {
    build_step: bool,
    pod_netns: bool,
}

/// What waiters need to know, published on every state change.
#[derive(Debug, Clone, Default)]
pub struct Snapshot {
    pub running: bool,
    /// number of exits seen since the daemon started
    pub exits: u64,
    pub exit_code: i64,
    pub removed: bool,
}

/// An attach waiting for the container's next start.
pub(crate) struct PendingAttach {
    pub(crate) io: AttachIo,
    pub(crate) tx: oneshot::Sender<Result<AttachStream>>,
}

pub struct Entry {
    pub id: String,
    rec: Mutex<ContainerRecord>,
    /// serializes lifecycle operations on one container
    pub(crate) op: tokio::sync::Mutex<()>,
    pub(crate) watch: watch::Sender<Snapshot>,
    pending_attach: Mutex<Vec<PendingAttach>>,
    /// the next restart's delay (Docker's back-off: 100 ms doubling to 1 min)
    restart_delay: Mutex<Duration>,
    /// set while `restart` stops and starts it again
    pub(crate) manual_restart: std::sync::atomic::AtomicBool,
}

const RESTART_DELAY_MIN: Duration = Duration::from_millis(100);
const RESTART_DELAY_MAX: Duration = Duration::from_secs(60);
/// a container that ran this long starts over with the shortest delay
const RESTART_RESET_AFTER: Duration = Duration::from_secs(10);

impl Entry {
    pub(crate) fn new(rec: ContainerRecord) -> Arc<Self> {
        let snap = Snapshot {
            running: rec.state.status == Status::Running,
            exit_code: rec.state.exit_code,
            ..Default::default()
        };
        Arc::new(Entry {
            id: rec.id.clone(),
            rec: Mutex::new(rec),
            op: tokio::sync::Mutex::new(()),
            watch: watch::channel(snap).0,
            pending_attach: Mutex::new(Vec::new()),
            restart_delay: Mutex::new(RESTART_DELAY_MIN),
            manual_restart: Default::default(),
        })
    }

    pub fn record(&self) -> ContainerRecord {
        self.rec.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// A look at the record without copying it: listing every container
    /// for each one would copy them all n times.
    pub(crate) fn read<R>(&self, f: impl FnOnce(&ContainerRecord) -> R) -> R {
        f(&self.rec.lock().unwrap_or_else(|p| p.into_inner()))
    }

    pub(crate) fn update<R>(&self, f: impl FnOnce(&mut ContainerRecord) -> R) -> R {
        f(&mut self.rec.lock().unwrap_or_else(|p| p.into_inner()))
    }

    pub fn image_id(&self) -> String {
        self.rec
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .image_id
            .clone()
    }

    /// A call that waited for `op` while the container was removed must
    /// not write its record back (it would be there again at restart).
    pub(crate) fn check_not_removed(&self) -> Result<()> {
        if self.watch.borrow().removed {
            return Err(Error::not_found(format!("No such container: {}", self.id)));
        }
        Ok(())
    }

    pub fn is_running(&self) -> bool {
        self.rec
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .state
            .status
            == Status::Running
    }
}

/// A connected attach stream: Docker's multiplexed frames from the
/// container, raw stdin bytes to it.
pub struct AttachStream {
    pub stream: RuntimeStream,
    pub tty: bool,
}

#[derive(Debug, Clone, Default)]
pub struct AttachOptions {
    pub stdin: bool,
    pub stdout: bool,
    pub stderr: bool,
    /// replay the log so far first
    pub logs: bool,
    /// then follow the live streams (an attach without it ends after the log)
    pub stream: bool,
}

/// An accepted attach: what it will carry, known before anything is sent.
pub struct Attaching {
    /// the container has a terminal: its output is raw, not framed
    pub tty: bool,
    /// the log so far, as `logs` answers it, when asked for
    pub logs: Option<mpsc::Receiver<std::io::Result<Bytes>>>,
    /// the live streams, when asked for; for a container that is not
    /// running, connected at its next start
    pub stream: Option<Pin<Box<dyn Future<Output = Result<AttachStream>> + Send>>>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WaitCondition {
    NotRunning,
    NextExit,
    Removed,
}

impl WaitCondition {
    pub fn parse(s: &str) -> Result<Self> {
        match s {
            "" | "not-running" => Ok(WaitCondition::NotRunning),
            "next-exit" => Ok(WaitCondition::NextExit),
            "removed" => Ok(WaitCondition::Removed),
            other => Err(Error::invalid(format!("invalid condition: \"{other}\""))),
        }
    }
}

#[derive(Debug, Clone, Default)]
pub struct LogsOptions {
    pub stdout: bool,
    pub stderr: bool,
    pub follow: bool,
    pub timestamps: bool,
    /// keep only the last N lines
    pub tail: Option<usize>,
    /// unix seconds (fractional)
    pub since: Option<f64>,
    pub until: Option<f64>,
    /// a terminal's log is sent raw, without frames (set by the engine)
    pub raw: bool,
    /// prefix each line with the record's attributes (`--details`)
    pub details: bool,
}

#[derive(Debug, Clone, Default)]
pub struct ListOptions {
    pub all: bool,
    pub limit: Option<usize>,
    pub filters: HashMap<String, Vec<String>>,
    /// fill in SizeRw and SizeRootFs (`ps --size`)
    pub size: bool,
}

type WaitFuture = Pin<Box<dyn Future<Output = (i64, Option<String>)> + Send>>;

fn parse_signal(s: &str) -> Result<i32> {
    let t = s.trim();
    if let Ok(n) = t.parse::<i32>() {
        if (1..=64).contains(&n) {
            return Ok(n);
        }
        return Err(Error::invalid(format!("Invalid signal: {s}")));
    }
    let name = t.to_ascii_uppercase();
    let name = name.strip_prefix("SIG").unwrap_or(&name);
    let full = format!("SIG{name}");
    full.parse::<nix::sys::signal::Signal>()
        .map(|s| s as i32)
        .map_err(|_| Error::invalid(format!("Invalid signal: {s}")))
}

impl Engine {
    pub(crate) fn state_dir(&self, id: &str) -> PathBuf {
        self.cfg.exec_root.join("containers").join(id)
    }

    pub(crate) fn container_dir(&self, id: &str) -> PathBuf {
        self.data_path("containers").join(id)
    }

    pub(crate) fn log_path(&self, id: &str) -> PathBuf {
        self.container_dir(id).join(format!("{id}-json.log"))
    }

    pub(crate) fn rootfs_dir(&self, id: &str) -> PathBuf {
        self.state_dir(id).join("rootfs")
    }

    pub(crate) fn overlay_dirs_of(&self, id: &str) -> (PathBuf, PathBuf) {
        self.overlay_dirs(id)
    }

    /// Docker's init layer: the mount points berth fills at start (/etc/hosts,
    /// /etc/hostname, /etc/resolv.conf, /proc, /sys, /dev), so that they
    /// never show up in the writable layer (`diff`, `commit`).
    fn init_layer(&self, id: &str) -> Result<PathBuf> {
        let init = self.data_path("overlay/containers").join(id).join("init");
        if init.join("etc/resolv.conf").exists() {
            return Ok(init);
        }
        for d in ["etc", "proc", "sys", "dev"] {
            std::fs::create_dir_all(init.join(d))?;
        }
        for f in ["etc/hostname", "etc/hosts", "etc/resolv.conf"] {
            std::fs::write(init.join(f), b"")?;
        }
        Ok(init)
    }

    fn overlay_dirs(&self, id: &str) -> (PathBuf, PathBuf) {
        let base = self.data_path("overlay/containers").join(id);
        (base.join("upper"), base.join("work"))
    }

    pub(crate) fn cgroup_path(&self, id: &str) -> String {
        berth_oci::cgroup_path(&self.cgroup_parent, id)
    }

    pub(crate) fn persist_record(&self, rec: &ContainerRecord) -> Result<()> {
        self.persist(rec)
    }

    fn persist(&self, rec: &ContainerRecord) -> Result<()> {
        self.meta.put_json(Table::Containers, &rec.id, rec)?;
        Ok(())
    }

    /// Finds a container by full id, name, or unique id prefix.
    pub(crate) fn get(&self, name: &str) -> Result<Arc<Entry>> {
        let not_found = || Error::not_found(format!("No such container: {name}"));
        if name.is_empty() {
            return Err(not_found());
        }
        let containers = self.containers.r();
        if let Some(e) = containers.get(name) {
            return Ok(e.clone());
        }
        let bare = name.strip_prefix('/').unwrap_or(name);
        if let Some(id) = self.names.r().get(bare)
            && let Some(e) = containers.get(id)
        {
            return Ok(e.clone());
        }
        // a link name, `parent/alias`, names the linked child
        if let Some((parent, alias)) = bare.split_once('/')
            && let Some(pid) = self.names.r().get(parent)
            && let Some(child) = containers
                .get(pid)
                .and_then(|p| p.record().legacy_links.get(alias).cloned())
            && let Some(e) = containers.get(&child)
        {
            return Ok(e.clone());
        }
        let matches: Vec<&Arc<Entry>> = containers
            .values()
            .filter(|e| e.id.starts_with(name))
            .collect();
        match matches.len() {
            1 => Ok(matches[0].clone()),
            0 => Err(not_found()),
            _ => Err(Error::not_found(format!(
                "No such container: {name} (the prefix matches several containers)"
            ))),
        }
    }

    pub async fn container_create(
        &self,
        name: Option<&str>,
        spec: ContainerSpec,
    ) -> Result<(String, Vec<String>)> {
        self.create_container(name, spec, Marks::default()).await
    }

    /// A CRI pod sandbox whose network namespace the caller pins and wires
    /// ([`Engine::pin_pod_netns`]): the container joins it at each start
    /// and leaves it in place at each stop.
    pub async fn pod_sandbox_create(
        &self,
        name: Option<&str>,
        spec: ContainerSpec,
    ) -> Result<(String, Vec<String>)> {
        let marks = Marks {
            pod_netns: true,
            ..Marks::default()
        };
        self.create_container(name, spec, marks).await
    }

    /// A build's step container, marked as such from its first record.
    pub(crate) async fn create_step_container(&self, spec: ContainerSpec) -> Result<String> {
        let marks = Marks {
            build_step: true,
            ..Marks::default()
        };
        Ok(self.create_container(None, spec, marks).await?.0)
    }

    async fn create_container(
        &self,
        name: Option<&str>,
        spec: ContainerSpec,
        marks: Marks,
    ) -> Result<(String, Vec<String>)> {
        let image_name = spec
            .config
            .image
            .clone()
            .filter(|i| !i.is_empty())
            .ok_or_else(|| {
                Error::invalid("config cannot be empty in order to create a container")
            })?;
        let requested_name = match name {
            Some(n) if !n.is_empty() => Some(names::validate(n)?),
            _ => None,
        };
        let want = spec
            .platform
            .as_deref()
            .map(berth_distribution::manifest::parse_specifier)
            .transpose()
            .map_err(Error::invalid)?;
        let spec = crate::validate::create_spec(spec, crate::validate::online_cpus())?;
        let image = self.resolve_image(&image_name)?;
        if let Some(want) = &want {
            self.check_image_platform(&image_name, &image.id, want)?;
        }
        let img_cfg = self
            .image_config(&image.id)?
            .config()
            .clone()
            .unwrap_or_default();

        let (entrypoint, cmd, argv) = merge_command(
            spec.config.entrypoint.clone(),
            spec.config.cmd.clone(),
            img_cfg.entrypoint().clone(),
            img_cfg.cmd().clone(),
        )?;
        let env = merge_env(
            spec.config.env.clone().unwrap_or_default(),
            img_cfg.env().clone().unwrap_or_default(),
        )?;
        let mut labels = img_cfg.labels().clone().unwrap_or_default();
        labels.extend(spec.config.labels.clone().unwrap_or_default());

        let id = crate::random_id();
        let swarm_task = spec
            .config
            .labels
            .as_ref()
            .is_some_and(|l| l.contains_key("com.docker.swarm.task.id"));
        let mut host_config = self.prepare_host_config(&spec.host_config, swarm_task)?;
        crate::namespaces::validate_modes(&host_config, spec.config.hostname.as_deref())?;
        self.resolve_shared_modes(&mut host_config)?;
        let legacy_links = self.resolve_links(&host_config)?;
        // the image's VOLUME entries and the user's `-v /path` ones
        let mut volumes: Vec<String> = img_cfg.volumes().clone().unwrap_or_default();
        for v in spec.config.volumes.clone().unwrap_or_default() {
            if !volumes.contains(&v) {
                volumes.push(v);
            }
        }
        let mounts = self.parse_mounts(&host_config, &volumes)?;
        storage_opts(host_config.storage_opt.as_ref())?;
        let config = ContainerConfig {
            hostname: Some(
                spec.config
                    .hostname
                    .clone()
                    .filter(|h| !h.is_empty())
                    .unwrap_or_else(|| id[..12].to_string()),
            ),
            domainname: Some(spec.config.domainname.clone().unwrap_or_default()),
            user: Some(
                spec.config
                    .user
                    .clone()
                    .filter(|u| !u.is_empty())
                    .or_else(|| img_cfg.user().clone())
                    .unwrap_or_default(),
            ),
            attach_stdin: Some(spec.config.attach_stdin.unwrap_or(false)),
            attach_stdout: Some(spec.config.attach_stdout.unwrap_or(false)),
            attach_stderr: Some(spec.config.attach_stderr.unwrap_or(false)),
            exposed_ports: spec
                .config
                .exposed_ports
                .clone()
                .or_else(|| img_cfg.exposed_ports().clone()),
            tty: Some(spec.config.tty.unwrap_or(false)),
            open_stdin: Some(spec.config.open_stdin.unwrap_or(false)),
            stdin_once: Some(spec.config.stdin_once.unwrap_or(false)),
            env: Some(env),
            cmd: Some(cmd),
            image: Some(image_name.clone()),
            volumes: (!volumes.is_empty()).then(|| volumes.clone()),
            working_dir: Some(
                spec.config
                    .working_dir
                    .clone()
                    .filter(|w| !w.is_empty())
                    .or_else(|| img_cfg.working_dir().clone())
                    .unwrap_or_default(),
            ),
            entrypoint: (!entrypoint.is_empty()).then_some(entrypoint),
            labels: Some(labels),
            stop_signal: spec
                .config
                .stop_signal
                .clone()
                .or_else(|| img_cfg.stop_signal().clone()),
            stop_timeout: spec.config.stop_timeout,
            // the image's HEALTHCHECK unless the container sets its own
            healthcheck: spec.config.healthcheck.clone().or_else(|| {
                self.image_config_raw(&image.id)
                    .ok()
                    .and_then(|v| v.pointer("/config/Healthcheck").cloned())
                    .and_then(|h| serde_json::from_value(h).ok())
            }),
            ..Default::default()
        };
        if let Some(h) = &config.healthcheck {
            crate::health::validate(h)?;
        }
        if let Some(sig) = &config.stop_signal {
            parse_signal(sig)?;
        }
        let rec = ContainerRecord {
            id: id.clone(),
            name: String::new(),
            created: crate::now_rfc3339(),
            image: image_name,
            image_id: image.id.clone(),
            path: argv[0].clone(),
            args: argv[1..].to_vec(),
            config,
            host_config,
            state: StateRecord {
                started_at: NEVER.into(),
                finished_at: NEVER.into(),
                ..Default::default()
            },
            restart_count: 0,
            manually_stopped: false,
            mounts,
            endpoints_config: spec.endpoints.clone(),
            endpoints: Default::default(),
            published: Vec::new(),
            primary_detached: false,
            primary_mac: None,
            legacy_links,
            build_step: marks.build_step,
            diff_ids: Vec::new(),
            pod_netns: marks.pod_netns,
        };
        let entry = self.insert_new(requested_name, rec)?;
        self.container_event(&entry.record(), "create", &[]);
        self.containers.w().insert(id.clone(), entry);
        Ok((id, vec![]))
    }

    /// dockerd's answer when the image found is for another platform than
    /// the one asked for: a 404, so that the CLI pulls the right one.
    fn check_image_platform(
        &self,
        name: &str,
        image_id: &str,
        want: &berth_distribution::manifest::Platform,
    ) -> Result<()> {
        use berth_distribution::manifest::{Platform, format_platform, platform_matches};
        let cfg = self.image_config_raw(image_id)?;
        let field = |k: &str| {
            cfg.get(k)
                .and_then(|v| v.as_str())
                .unwrap_or("")
                .to_string()
        };
        let have = Platform {
            os: field("os"),
            architecture: field("architecture"),
            variant: Some(field("variant")).filter(|v| !v.is_empty()),
        };
        if platform_matches(want, &have) {
            return Ok(());
        }
        Err(Error::not_found(format!(
            "image with reference {name} was found but its platform ({}) does not match the specified platform ({})",
            format_platform(&have),
            format_platform(want)
        )))
    }

    /// Names a new container (the one asked for, or a generated one), makes
    /// its volumes and records it, all under the names lock, so that two
    /// creates never take one name.
    fn insert_new(
        &self,
        requested: Option<String>,
        mut rec: ContainerRecord,
    ) -> Result<Arc<Entry>> {
        let mut names_map = self.names.w();
        rec.name = match requested {
            Some(n) => {
                if let Some(holder) = names_map.get(&n) {
                    return Err(Error::conflict(format!(
                        "Conflict. The container name \"/{n}\" is already in use by container \"{holder}\". You have to remove (or rename) that container to be able to reuse that name."
                    )));
                }
                n
            }
            None => (0..1000)
                .map(|i| names::generate(&rec.id, i))
                .find(|n| !names_map.contains_key(n))
                .ok_or_else(|| Error::Internal(anyhow::anyhow!("no free container name")))?,
        };
        if let Err(err) = self.materialize_mounts(&mut rec.mounts, &rec.host_config) {
            self.remove_anonymous_volumes(&rec.mounts);
            return Err(err);
        }
        std::fs::create_dir_all(self.container_dir(&rec.id))?;
        self.persist(&rec)?;
        names_map.insert(rec.name.clone(), rec.id.clone());
        Ok(Entry::new(rec))
    }

    /// The create request's host config, checked and completed: restart
    /// policy, init, log config, network mode and what it excludes.
    fn prepare_host_config(&self, requested: &HostConfig, swarm_task: bool) -> Result<HostConfig> {
        let mut host_config = requested.clone();
        validate_restart_policy(&host_config)?;
        validate_host_config(&host_config)?;
        if host_config.init.is_none() && self.cfg.init {
            host_config.init = Some(true);
        }
        crate::hostconfig::validate(&host_config, self.cfg.init_path.as_deref())?;
        host_config.log_config = Some(self.log_config_with_defaults(&host_config)?);
        crate::hostconfig::store_defaults(&mut host_config)?;
        if host_config
            .network_mode
            .as_deref()
            .is_none_or(str::is_empty)
        {
            host_config.network_mode = Some("default".into());
        }
        let mode = self.check_network_mode(
            host_config.network_mode.as_deref().unwrap_or_default(),
            swarm_task,
        )?;
        host_config.network_mode = Some(mode.clone());
        // a container sharing another's namespace has its network settings
        if mode.starts_with("container:") {
            if host_config
                .port_bindings
                .as_ref()
                .is_some_and(|p| !p.is_empty())
                || host_config.publish_all_ports == Some(true)
            {
                return Err(Error::invalid(
                    "conflicting options: port publishing and the container type network mode",
                ));
            }
            if host_config.dns.as_ref().is_some_and(|d| !d.is_empty())
                || host_config
                    .extra_hosts
                    .as_ref()
                    .is_some_and(|d| !d.is_empty())
            {
                return Err(Error::invalid(
                    "conflicting options: dns and the network mode",
                ));
            }
        }
        Ok(host_config)
    }

    /// The image layers under the container's writable layer, top first.
    pub(crate) fn lower_dirs(&self, rec: &ContainerRecord) -> Vec<PathBuf> {
        self.layers_of(rec)
            .map(|diff_ids| {
                chain_ids(&diff_ids)
                    .iter()
                    .rev()
                    .map(|c| self.layer_dir(c))
                    .collect()
            })
            .unwrap_or_default()
    }

    /// The diff ids of the container's image, or the ones it kept when
    /// that image was deleted under it.
    fn layers_of(&self, rec: &ContainerRecord) -> Option<Vec<String>> {
        let from_image = self
            .images
            .r()
            .images
            .get(&rec.image_id)
            .map(|i| i.diff_ids.clone());
        from_image.or_else(|| (!rec.diff_ids.is_empty()).then(|| rec.diff_ids.clone()))
    }

    /// Mounts the container's root filesystem (its image's layers under its
    /// writable layer) unless it is mounted already.
    pub(crate) fn mount_rootfs(&self, rec: &ContainerRecord) -> Result<PathBuf> {
        let id = &rec.id;
        let diff_ids = self.layers_of(rec).ok_or_else(|| {
            Error::Internal(anyhow::anyhow!(
                "image {} of container {} is missing",
                rec.image_id,
                &id[..12]
            ))
        })?;
        let rootfs = self.rootfs_dir(id);
        std::fs::create_dir_all(&rootfs)?;
        let (upper, work) = self.overlay_dirs(id);
        std::fs::create_dir_all(&upper)?;
        std::fs::create_dir_all(&work)?;
        if !mounts::is_mounted(&rootfs) {
            let mut lowers = vec![self.init_layer(id)?];
            lowers.extend(chain_ids(&diff_ids).iter().rev().map(|c| self.layer_dir(c)));
            mounts::mount_overlay(&lowers, &upper, &work, &rootfs)?;
        }
        Ok(rootfs)
    }

    /// Mounts the container's root filesystem, writes its /etc files and
    /// builds its OCI spec.
    fn prepare_bundle(&self, rec: &ContainerRecord) -> Result<(PathBuf, oci_spec::runtime::Spec)> {
        let id = &rec.id;
        let rootfs = self.mount_rootfs(rec)?;
        crate::validate::make_working_dir(&rootfs, rec.config.working_dir.as_deref())?;
        let cdir = self.container_dir(id);
        // `--network container:NAME` shares the peer's namespace, its /etc
        // files and (as in Docker) its hostname
        let peer = self.network_peer(rec)?;
        let hostname = peer
            .as_ref()
            .unwrap_or(rec)
            .config
            .hostname
            .clone()
            .unwrap_or_default();
        std::fs::write(cdir.join("hostname"), format!("{hostname}\n"))?;
        self.write_hosts(rec)?;
        self.write_resolv_conf(rec)?;
        let etc_dir = peer
            .as_ref()
            .map(|p| self.container_dir(&p.id))
            .unwrap_or_else(|| cdir.clone());

        let user = rec.config.user.clone().unwrap_or_default();
        let (uid, gid, mut gids) = spec::resolve_user(&rootfs, &user).map_err(Error::invalid)?;
        gids.extend(crate::hostconfig::extra_groups(&rootfs, &rec.host_config)?);
        let mut args = vec![rec.path.clone()];
        args.extend(rec.args.iter().cloned());
        let mut extra_mounts = self.prepare_mounts(&rec.id, &rec.mounts, &rootfs)?;
        extra_mounts.extend(self.mount_task_files(&rec.id, &rootfs)?);
        let shares = self.namespace_shares(rec)?;
        // in the host's or another container's PID namespace there is an
        // init already, so dockerd adds none
        if rec.host_config.init == Some(true) && shares.pid == spec::NsShare::Own {
            // Docker's --init: a small init as PID 1 that reaps and forwards
            let init = crate::hostconfig::init_binary(self.cfg.init_path.as_deref())?;
            extra_mounts.insert(
                0,
                oci_spec::runtime::MountBuilder::default()
                    .destination("/dev/init")
                    .typ("bind")
                    .source(init)
                    .options(vec!["bind".to_string(), "ro".to_string()])
                    .build()
                    .context("building the init mount")?,
            );
            args.splice(0..0, ["/dev/init".to_string(), "--".to_string()]);
        }
        // the links' variables, which the container's own override
        let env = crate::legacy_links::replace_or_append(
            self.links_env(rec)?,
            &rec.config.env.clone().unwrap_or_default(),
        );
        let host_network = rec.host_config.network_mode.as_deref() == Some("host");
        let hc = &rec.host_config;
        let cgroup_view = self.cgroup_view(id, &extra_mounts, hc);
        let privileged = hc.privileged.unwrap_or(false);
        let caps = spec::capabilities(
            privileged,
            &hc.cap_add.clone().unwrap_or_default(),
            &hc.cap_drop.clone().unwrap_or_default(),
        )
        .map_err(Error::invalid)?;
        let security = parse_security_opts(hc.security_opt.as_deref().unwrap_or_default())?;
        let mut devices = crate::hostconfig::devices(hc)?;
        if privileged {
            // `--privileged` gives the container the host's devices, as Docker does
            let mut all = crate::hostconfig::host_devices();
            all.retain(|d| !devices.0.iter().any(|x| x.path() == d.path()));
            devices.0.extend(all);
        }
        // a privileged container runs without seccomp, as in Docker
        let seccomp = match (&security.seccomp, privileged) {
            (_, true) | (Seccomp::Unconfined, _) => None,
            (Seccomp::Default, false) => Some(seccomp::default_profile(&caps)?),
            (Seccomp::Custom(json), false) => {
                Some(seccomp::from_docker_json(json, &caps).map_err(Error::invalid)?)
            }
        };
        let spec = spec::build(spec::SpecInput {
            args,
            env,
            cwd: rec.config.working_dir.clone().unwrap_or_default(),
            uid,
            gid,
            additional_gids: gids,
            domainname: rec.config.domainname.clone().unwrap_or_default(),
            hostname,
            rootfs: &rootfs,
            cgroups_path: self.cgroup_path(id),
            host_network,
            netns: match &peer {
                Some(p) => Some(self.peer_netns(p)),
                None => self.container_netns(rec),
            },
            etc_files: vec![
                (etc_dir.join("hostname"), "/etc/hostname"),
                (etc_dir.join("hosts"), "/etc/hosts"),
                (etc_dir.join("resolv.conf"), "/etc/resolv.conf"),
            ],
            caps,
            privileged,
            no_new_privileges: security.no_new_privileges,
            seccomp,
            terminal: rec.config.tty == Some(true),
            console_size: hc
                .console_size
                .as_ref()
                .filter(|s| s.len() == 2 && s[0] > 0 && s[1] > 0)
                .map(|s| (s[0] as u64, s[1] as u64)),
            readonly_rootfs: hc.readonly_rootfs.unwrap_or(false),
            tmpfs: crate::validate::tmpfs_in_root(&rootfs, hc.tmpfs.as_ref())?,
            mounts: extra_mounts,
            rlimits: crate::hostconfig::rlimits(hc)?,
            sysctls: crate::hostconfig::sysctls(hc)?,
            cpuset_cpus: crate::hostconfig::cpuset(hc)?,
            devices: devices.0,
            device_rules: devices.1,
            shm: shares.shm,
            pid: shares.pid,
            ipc: shares.ipc,
            uts_host: shares.uts_host,
            masked_paths: hc.masked_paths.clone(),
            readonly_paths: hc.readonly_paths.clone(),
            cgroup_view,
            limits: spec::Limits {
                memory: hc.memory,
                pids: hc.pids_limit,
                cpu_shares: hc.cpu_shares.filter(|s| *s > 0).map(|s| s as u64),
                cpu_quota: crate::hostconfig::cfs_quota(hc),
                cpu_period: crate::hostconfig::cfs_period(hc).map(|p| p as u64),
                memory_swap: crate::hostconfig::memory_swap(hc),
            },
        })?;
        Ok((rootfs, spec))
    }

    /// dockerd's default /sys/fs/cgroup mount: on cgroup v1 (cgroupns
    /// "host") the container's own cgroup of each hierarchy; none when the
    /// user mounts something over /sys or /sys/fs/cgroup, whose mount wins.
    fn cgroup_view(
        &self,
        id: &str,
        mounts: &[oci_spec::runtime::Mount],
        hc: &berth_core::container::HostConfig,
    ) -> spec::CgroupView {
        let covers = |d: &std::path::Path| {
            d == std::path::Path::new("/sys") || d == std::path::Path::new("/sys/fs/cgroup")
        };
        let tmpfs = hc
            .tmpfs
            .iter()
            .flatten()
            .map(|(d, _)| std::path::Path::new(d.as_str()));
        if mounts
            .iter()
            .map(|m| m.destination().as_path())
            .chain(tmpfs)
            .any(covers)
        {
            return spec::CgroupView::None;
        }
        let dirs = berth_cgroups::v1_directories(&self.cgroup_path(id));
        if dirs.is_empty() {
            spec::CgroupView::V2
        } else {
            spec::CgroupView::V1(dirs)
        }
    }

    /// Takes the container off its networks and forgets its endpoints.
    fn release_network(&self, e: &Entry) {
        let rec = e.record();
        // also without recorded endpoints: a crash may have left a namespace
        self.network_teardown(&rec);
        if rec.endpoints.is_empty() && rec.published.is_empty() {
            return;
        }
        let rec = e.update(|r| {
            r.endpoints.clear();
            r.published.clear();
            r.clone()
        });
        if let Err(err) = self.persist(&rec) {
            tracing::warn!(container = %&e.id[..12], error = %err, "recording network release");
        }
    }

    pub(crate) fn release_rootfs_of(&self, id: &str) {
        self.release_rootfs(id)
    }

    fn release_rootfs(&self, id: &str) {
        self.release_shm(id);
        self.release_task_files(id);
        self.volumes.unmount_all(id);
        if let Err(e) = mounts::unmount(&self.rootfs_dir(id)) {
            tracing::warn!(container = %&id[..12], error = %e, "unmounting rootfs");
        }
    }

    /// Records a start that failed before the process ran, as Docker does.
    fn record_start_failure(&self, e: &Entry, code: i64, msg: &str) {
        let rec = e.update(|r| {
            r.state.exit_code = code;
            r.state.error = msg.to_string();
            if r.state.status == Status::Created && r.state.started_at != NEVER {
                r.state.status = Status::Exited;
            }
            r.clone()
        });
        let _ = self.persist(&rec);
        self.release_rootfs(&e.id);
        self.release_network(e);
        self.detach_swarm_networks(&e.id);
        // dockerd removes an auto-remove container whose start failed, and
        // clients waiting for "removed" rely on it
        if rec.host_config.auto_remove == Some(true)
            && let Err(err) = self.remove_entry(e, true)
        {
            tracing::warn!(container = %&e.id[..12], error = %err, "removing container after failed start");
        }
    }

    pub async fn container_start(self: &Arc<Self>, name: &str) -> Result<()> {
        let e = self.get(name)?;
        let _op = e.op.lock().await;
        let rec = e.record();
        match rec.state.status {
            Status::Running => return Err(Error::NotModified("container already started".into())),
            Status::Removing | Status::Dead => {
                return Err(Error::conflict(format!(
                    "cannot start container {}: container is marked for removal",
                    rec.name
                )));
            }
            Status::Created | Status::Exited | Status::Restarting => {}
        }
        let id = rec.id.clone();
        // what an earlier run or a start cut short by a crash left would
        // make the create fail
        self.clear_stale_runtime(&id).await?;
        self.forget_rw_size(&id);
        let state_dir = self.state_dir(&id);
        std::fs::create_dir_all(&state_dir)?;
        // what can be refused is refused before anything is allocated
        let log = self.log_driver_config(&rec)?;
        self.connect_for_start(&e).await?;
        let rec = e.record();
        let (rootfs, spec) = match self.prepare_bundle(&rec) {
            Ok(r) => r,
            Err(err) => {
                let msg = format!("{err}");
                self.record_start_failure(&e, 128, &msg);
                return Err(err);
            }
        };
        let env = rec.config.env.clone().unwrap_or_default();
        let env = if env.iter().any(|v| v.starts_with("PATH=")) {
            env
        } else {
            vec![spec::DEFAULT_PATH.to_string()]
        };
        if let Err((code, msg)) = spec::check_executable(&rootfs, &rec.path, &env) {
            let msg = format!(
                "failed to create task for container: OCI runtime create failed: {msg}: unknown"
            );
            self.record_start_failure(&e, code, &msg);
            return Err(Error::invalid(msg));
        }
        let create = CreateContainer {
            id: &id,
            bundle: state_dir.clone(),
            spec: &spec,
            // a Config always encodes; the runtime refuses a null one
            log: serde_json::to_value(&log).unwrap_or_default(),
            stdin: rec.config.open_stdin.unwrap_or(false),
        };
        // attachers that arrived before start get every byte of output
        let pending =
            || std::mem::take(&mut *e.pending_attach.lock().unwrap_or_else(|p| p.into_inner()));
        let tty = rec.config.tty == Some(true);
        let pid =
            match lifecycle::create_and_start(self.runtime.as_ref(), create, pending, tty).await {
                Ok(pid) => pid,
                Err(msg) => {
                    self.record_start_failure(&e, 128, &msg);
                    return Err(Error::Internal(anyhow::anyhow!(msg)));
                }
            };
        crate::crash_point("start-before-record");
        let rec = e.update(|r| {
            r.manually_stopped = false;
            r.state = StateRecord {
                status: Status::Running,
                pid: pid.unwrap_or(0) as i64,
                exit_code: 0,
                started_at: crate::now_rfc3339(),
                finished_at: r.state.finished_at.clone(),
                error: String::new(),
                oom_killed: false,
                paused: false,
                health: r
                    .config
                    .healthcheck
                    .as_ref()
                    .and_then(crate::health::probe_command)
                    .map(|_| crate::health::HealthRecord::starting()),
            };
            r.clone()
        });
        self.persist(&rec)?;
        e.watch.send_modify(|s| s.running = true);
        // the parents linking to it see its new address
        self.refresh_parents_of(&rec.id);
        self.container_event(&rec, "start", &[]);
        self.spawn_health_monitor(e.clone());
        self.spawn_monitor(e.clone());
        Ok(())
    }

    /// Gives a starting container its networks (after handing back what a
    /// crash left recorded), records them, and starts its DNS and proxies;
    /// a failure is recorded as the start's.
    async fn connect_for_start(self: &Arc<Self>, e: &Arc<Entry>) -> Result<()> {
        let rec = e.record();
        let id = rec.id.clone();
        // a record left with endpoints by a crash: give them back first
        if !rec.endpoints.is_empty() || !rec.published.is_empty() {
            self.release_network(e);
        }
        // a namespace made anew would lack what the CRI's plugins put in it
        if rec.pod_netns && self.pod_netns(&id).is_none() {
            let err = Error::Internal(anyhow::anyhow!(
                "the pod's network namespace is gone: its sandbox must be made again"
            ));
            self.record_start_failure(e, 128, &format!("{err}"));
            return Err(err);
        }
        if let Err(err) = self.attach_swarm_networks(&rec).await {
            self.record_start_failure(e, 128, &format!("{err}"));
            return Err(err);
        }
        let setup = {
            let engine = self.clone();
            let rec = e.record();
            let t = std::time::Instant::now();
            let r = tokio::task::spawn_blocking(move || engine.network_setup(&rec))
                .await
                .map_err(|err| Error::Internal(anyhow::anyhow!("network setup: {err}")))
                .and_then(|r| r);
            tracing::debug!(container = %&id[..12], elapsed_us = t.elapsed().as_micros() as u64, "network setup");
            r
        };
        match setup {
            Ok((endpoints, published)) => {
                let rec = e.update(|r| {
                    r.endpoints = endpoints;
                    r.published = published;
                    r.clone()
                });
                if let Err(err) = self.persist(&rec) {
                    self.record_start_failure(e, 128, &format!("{err}"));
                    return Err(err);
                }
                self.endpoint_events(&rec, "connect");
                self.swarm_plumbed(&rec);
                self.start_resolver(&rec);
                self.start_proxies(&rec);
            }
            Err(err) => {
                let msg = format!("{err}");
                self.record_start_failure(e, 128, &msg);
                return Err(err);
            }
        }
        Ok(())
    }

    /// Waits for the container's exit through its shim and records it.
    pub(crate) fn spawn_monitor(self: &Arc<Self>, e: Arc<Entry>) {
        let engine = self.clone();
        tokio::spawn(async move {
            let exit = engine.runtime.wait(&e.id).await;
            engine.handle_exit(&e, exit);
        });
    }

    pub(crate) fn handle_exit(self: &Arc<Self>, e: &Arc<Entry>, exit: Option<ExitStatus>) {
        // a size taken while it ran is not its final one
        self.forget_rw_size(&e.id);
        let (code, finished, oom) = match &exit {
            Some(x) => (x.code as i64, x.finished_at.clone(), x.oom_killed),
            None => (255, crate::now_rfc3339(), false),
        };
        self.release_rootfs(&e.id);
        // a task's files are handed again by its agent at its next start
        self.forget_task_files(&e.id);
        self.release_network(e);
        self.detach_swarm_networks(&e.id);
        let rec = e.update(|r| {
            r.state.status = Status::Exited;
            r.state.pid = 0;
            r.state.exit_code = code;
            r.state.finished_at = finished;
            r.state.oom_killed = oom;
            r.state.paused = false;
            if exit.is_none() {
                r.state.error = "container's shim exited without recording an exit status".into();
            }
            r.clone()
        });
        if let Err(err) = self.persist(&rec) {
            tracing::error!(container = %&e.id[..12], error = %err, "recording exit");
        }
        if oom {
            self.container_event(&rec, "oom", &[]);
        }
        self.container_event(&rec, "die", &[("exitCode", code.to_string())]);
        e.watch.send_modify(|s| {
            s.running = false;
            s.exits += 1;
            s.exit_code = code;
        });
        // a `restart` stops an AutoRemove container without removing it
        let restarting_by_hand = e.manual_restart.load(std::sync::atomic::Ordering::SeqCst);
        if rec.host_config.auto_remove == Some(true) && !restarting_by_hand {
            let engine = self.clone();
            let e = e.clone();
            tokio::spawn(async move {
                let _op = e.op.lock().await;
                if let Err(err) = engine.remove_entry(&e, true) {
                    tracing::error!(container = %&e.id[..12], error = %err, "auto-removing container");
                }
            });
            return;
        }
        if should_restart(&rec, false)
            && !self.shutting_down.load(std::sync::atomic::Ordering::SeqCst)
        {
            self.schedule_restart(e, &rec, false);
        }
    }

    /// A pending restart that will not happen: the container is exited.
    fn abandon_restart(&self, e: &Entry) {
        let mut was_restarting = false;
        let rec = e.update(|r| {
            if r.state.status == Status::Restarting {
                r.state.status = Status::Exited;
                was_restarting = true;
            }
            r.clone()
        });
        let _ = self.persist(&rec);
        // waits for "not running" that began during the back-off end here,
        // as dockerd's SetStopped wakes them
        if was_restarting {
            e.watch.send_modify(|s| s.exits += 1);
        }
    }

    /// Marks the container restarting and starts it again after the
    /// back-off delay, unless it was stopped or removed meanwhile.
    pub(crate) fn schedule_restart(
        self: &Arc<Self>,
        e: &Arc<Entry>,
        rec: &ContainerRecord,
        daemon_start: bool,
    ) {
        let delay = restart_backoff(
            &mut e.restart_delay.lock().unwrap_or_else(|p| p.into_inner()),
            run_time(&rec.state),
        );
        // counted when decided, as dockerd counts it: `inspect` during the
        // back-off already shows it
        let rec = e.update(|r| {
            r.state.status = Status::Restarting;
            if !daemon_start {
                r.restart_count += 1;
            }
            r.clone()
        });
        let _ = self.persist(&rec);
        let engine = self.clone();
        let e = e.clone();
        tokio::spawn(async move {
            tokio::time::sleep(delay).await;
            let still_wanted = {
                let r = e.record();
                r.state.status == Status::Restarting
                    && (daemon_start || !r.manually_stopped)
                    && !e.watch.borrow().removed
            };
            if !still_wanted {
                engine.abandon_restart(&e);
                return;
            }
            if let Err(err) = engine.container_start(&e.id).await {
                tracing::warn!(container = %&e.id[..12], error = %err, "restarting container");
                engine.abandon_restart(&e);
            }
        });
    }

    async fn signal(&self, e: &Entry, signal: i32) -> Result<()> {
        self.runtime
            .kill(&e.id, signal)
            .await
            .map_err(|err| lifecycle::kill_error(&e.id, err))?;
        self.container_event(&e.record(), "kill", &[("signal", signal.to_string())]);
        // a frozen process only sees the signal once thawed, as in Docker
        if e.record().state.paused {
            self.thaw_after_signal(e)?;
        }
        Ok(())
    }

    async fn wait_stopped(&self, e: &Entry, timeout: Duration) -> bool {
        let mut rx = e.watch.subscribe();
        tokio::time::timeout(timeout, rx.wait_for(|s| !s.running))
            .await
            .is_ok()
    }

    pub async fn container_kill(&self, name: &str, signal: Option<&str>) -> Result<()> {
        let e = self.get(name)?;
        let sig = match signal.filter(|s| !s.is_empty()) {
            Some(s) => parse_signal(s)?,
            None => libc::SIGKILL,
        };
        // a stop waiting for the exit holds the lock: a kill goes through
        // at once, as dockerd's does
        let _op = e.op.try_lock().ok();
        if !e.is_running() {
            return Err(Error::conflict(format!(
                "Cannot kill container: {name}: container {} is not running",
                e.id
            )));
        }
        if kill_is_a_stop(&e.record(), sig) {
            let rec = e.update(|r| {
                r.manually_stopped = true;
                r.clone()
            });
            self.persist(&rec)?;
        }
        self.signal(&e, sig).await?;
        if sig == libc::SIGKILL {
            self.wait_stopped(&e, Duration::from_secs(10)).await;
        }
        Ok(())
    }

    pub async fn container_stop(
        &self,
        name: &str,
        timeout: Option<i64>,
        signal: Option<&str>,
    ) -> Result<()> {
        let e = self.get(name)?;
        let _op = e.op.lock().await;
        self.stop_locked(&e, timeout, signal).await?;
        self.container_event(&e.record(), "stop", &[]);
        Ok(())
    }

    async fn stop_locked(
        &self,
        e: &Entry,
        timeout: Option<i64>,
        signal: Option<&str>,
    ) -> Result<()> {
        self.stop_inner(e, timeout, signal, true).await
    }

    /// Stops a running container; `manual` marks it stopped by hand, which
    /// restart policies respect (a daemon shutdown is not manual).
    async fn stop_inner(
        &self,
        e: &Entry,
        timeout: Option<i64>,
        signal: Option<&str>,
        manual: bool,
    ) -> Result<()> {
        e.check_not_removed()?;
        let rec = e.update(|r| {
            r.manually_stopped |= manual;
            r.clone()
        });
        self.persist(&rec)?;
        self.abandon_restart(e);
        if !e.is_running() {
            return Err(Error::NotModified("container already stopped".into()));
        }
        let rec = e.record();
        let sig = match signal
            .filter(|s| !s.is_empty())
            .or(rec.config.stop_signal.as_deref())
        {
            Some(s) => parse_signal(s)?,
            None => libc::SIGTERM,
        };
        let t = timeout.or(rec.config.stop_timeout).unwrap_or(10);
        lifecycle::stop_process(
            |s| self.signal(e, s),
            |d| self.wait_stopped(e, d),
            &e.id,
            sig,
            t,
        )
        .await
    }

    /// Registers a wait; the returned future resolves when the condition
    /// is met. Registration happens before this returns, so a client that
    /// starts the container after the wait's response headers sees its exit.
    pub fn container_wait(&self, name: &str, cond: WaitCondition) -> Result<WaitFuture> {
        let e = self.get(name)?;
        let mut rx = e.watch.subscribe();
        let start = rx.borrow().clone();
        // dockerd counts a container in its restart back-off as running
        let created_or_stopped = !start.running && e.record().state.status != Status::Restarting;
        Ok(Box::pin(async move {
            if cond == WaitCondition::NotRunning && created_or_stopped {
                return (start.exit_code, None);
            }
            let _ = rx
                .wait_for(|s| match cond {
                    WaitCondition::Removed => s.removed,
                    _ => s.exits > start.exits || s.removed,
                })
                .await;
            let s = rx.borrow().clone();
            (s.exit_code, None)
        }))
    }

    /// `docker rm [-f] [-v]`: `remove_volumes` also removes the container's
    /// anonymous volumes that no other container uses.
    pub async fn container_remove(
        &self,
        name: &str,
        force: bool,
        remove_volumes: bool,
    ) -> Result<()> {
        let e = self.get(name)?;
        let _op = e.op.lock().await;
        let rec = e.record();
        if rec.state.status == Status::Restarting {
            if !force {
                return Err(Error::conflict(format!(
                    "cannot remove container \"/{}\": container is restarting: stop the container before removing or force remove",
                    rec.name
                )));
            }
            self.abandon_restart(&e);
        }
        if e.is_running() {
            if !force {
                let n = e.record().name;
                return Err(Error::conflict(format!(
                    "cannot remove container \"/{n}\": container is running: stop the container before removing or force remove"
                )));
            }
            self.kill_for_remove(&e).await?;
        }
        // an exit still being recorded finishes first, so that its record is
        // not written back after the removal
        self.wait_stopped(&e, Duration::from_secs(5)).await;
        self.remove_entry(&e, remove_volumes)
    }

    /// `rm -f`'s SIGKILL. A container exiting meanwhile makes its shim
    /// refuse the signal or go away under it; dockerd takes "not running"
    /// as done, so the error only counts if the container still runs.
    async fn kill_for_remove(&self, e: &Entry) -> Result<()> {
        if let Err(err) = self.signal(e, libc::SIGKILL).await {
            if !self.wait_stopped(e, Duration::from_secs(5)).await {
                return Err(err);
            }
            return Ok(());
        }
        if !self.wait_stopped(e, Duration::from_secs(30)).await {
            return Err(Error::Internal(anyhow::anyhow!(
                "container {} did not stop after SIGKILL",
                &e.id[..12]
            )));
        }
        Ok(())
    }

    /// Removes a stopped container's files and record. Caller holds `op`.
    pub(crate) fn remove_entry(&self, e: &Entry, remove_volumes: bool) -> Result<()> {
        if e.watch.borrow().removed {
            return Ok(());
        }
        let rec = e.update(|r| {
            r.state.status = Status::Removing;
            r.clone()
        });
        self.persist(&rec)?;
        self.release_rootfs(&e.id);
        let exec_trash = self.cfg.exec_root.join(crate::trash::DIR);
        let data_trash = self.data_path(crate::trash::DIR);
        for (dir, trash) in [
            (self.state_dir(&e.id), &exec_trash),
            (self.container_dir(&e.id), &data_trash),
            (
                self.data_path("overlay/containers").join(&e.id),
                &data_trash,
            ),
        ] {
            crate::trash::discard(&dir, trash).map_err(|err| {
                Error::Internal(
                    anyhow::Error::from(err).context(format!("removing {}", dir.display())),
                )
            })?;
        }
        self.runtime.forget(&e.id);
        self.meta.delete(Table::Containers, &e.id)?;
        self.containers.w().remove(&e.id);
        if !rec.diff_ids.is_empty() {
            self.release_layers(&chain_ids(&rec.diff_ids))?;
        }
        self.forget_rw_size(&e.id);
        self.forget_task_files(&e.id);
        {
            let mut names_map = self.names.w();
            if names_map.get(&rec.name) == Some(&e.id) {
                names_map.remove(&rec.name);
            }
        }
        e.pending_attach
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clear();
        if remove_volumes {
            self.remove_anonymous_volumes(&rec.mounts);
        }
        self.container_event(&rec, "destroy", &[]);
        e.watch.send_modify(|s| s.removed = true);
        Ok(())
    }

    /// Registers an attach. For a created container the stream connects
    /// when it starts (the returned future resolves then); for a running
    /// one, at once.
    /// POST /containers/{id}/resize
    pub async fn container_resize(&self, name: &str, height: u16, width: u16) -> Result<()> {
        let e = self.get(name)?;
        if !e.is_running() {
            return Err(Error::conflict(format!(
                "Container {} is not running",
                e.id
            )));
        }
        if e.record().config.tty != Some(true) {
            return Err(Error::invalid(format!(
                "Container {} has no terminal",
                e.id
            )));
        }
        self.shim_resize(&e.id, height, width, None).await
    }

    pub(crate) async fn shim_resize(
        &self,
        id: &str,
        height: u16,
        width: u16,
        exec_pid: Option<i32>,
    ) -> Result<()> {
        self.runtime
            .resize(id, height, width, exec_pid)
            .await
            .map_err(|err| Error::Internal(err.into_anyhow()))
    }

    pub async fn container_attach(&self, name: &str, opts: AttachOptions) -> Result<Attaching> {
        let e = self.get(name)?;
        let _op = e.op.lock().await;
        let rec = e.record();
        if rec.state.paused {
            return Err(Error::conflict(format!(
                "container {name} is paused, unpause the container before attach"
            )));
        }
        if rec.state.status == Status::Restarting {
            return Err(Error::conflict(format!(
                "container {name} is restarting, wait until the container is running"
            )));
        }
        let tty = rec.config.tty == Some(true);
        let logs = if opts.logs {
            let lo = LogsOptions {
                stdout: opts.stdout,
                stderr: opts.stderr,
                ..Default::default()
            };
            // a log driver that cannot be read back has nothing to replay
            self.container_logs(name, lo).ok()
        } else {
            None
        };
        self.container_event(&rec, "attach", &[]);
        if !opts.stream {
            return Ok(Attaching {
                tty,
                logs,
                stream: None,
            });
        }
        let io = AttachIo {
            stdin: opts.stdin,
            stdout: opts.stdout,
            stderr: opts.stderr,
            close_stdin: rec.config.stdin_once.unwrap_or(false),
        };
        let stream: Pin<Box<dyn Future<Output = Result<AttachStream>> + Send>> =
            match rec.state.status {
                Status::Running => {
                    let stream = self
                        .runtime
                        .attach(&e.id, io)
                        .await
                        .map_err(|err| Error::Internal(err.into_anyhow()))?;
                    Box::pin(async move { Ok(AttachStream { stream, tty }) })
                }
                Status::Created | Status::Exited | Status::Restarting => {
                    // like Docker, an attach to a stopped container waits for its next start
                    let (tx, rx) = oneshot::channel();
                    e.pending_attach
                        .lock()
                        .unwrap_or_else(|p| p.into_inner())
                        .push(PendingAttach { io, tx });
                    Box::pin(async move {
                        rx.await.unwrap_or_else(|_| {
                            Err(Error::conflict("container was removed before it started"))
                        })
                    })
                }
                Status::Removing | Status::Dead => {
                    return Err(Error::conflict(
                        "You cannot attach to a container that is being removed",
                    ));
                }
            };
        Ok(Attaching {
            tty,
            logs,
            stream: Some(stream),
        })
    }

    /// Streams the container's json-file log as Docker's multiplexed frames.
    pub fn container_logs(
        &self,
        name: &str,
        opts: LogsOptions,
    ) -> Result<mpsc::Receiver<std::io::Result<Bytes>>> {
        let e = self.get(name)?;
        let (driver, log_opts) = log_driver_of(&e.record().host_config);
        let Some((path, format)) =
            berth_logdriver::source(&driver, &log_opts, &self.container_dir(&e.id), &e.id)
        else {
            return Err(Error::NotImplemented(
                "configured logging driver does not support reading".into(),
            ));
        };
        let rx_state = e.watch.subscribe();
        let (tx, rx) = mpsc::channel(64);
        let mut opts = opts;
        opts.raw = e.record().config.tty == Some(true);
        std::thread::Builder::new()
            .name("logs".into())
            .spawn(move || {
                if let Err(err) = stream_log(&path, format, &opts, rx_state, &tx) {
                    let _ = tx.blocking_send(Err(err));
                }
            })
            .context("starting log reader")?;
        Ok(rx)
    }

    /// The records `ps` lists, newest first, after its options and filters.
    /// Each record is checked in place and only those listed are copied.
    pub(crate) fn listed_records(&self, opts: &ListOptions) -> Result<Vec<ContainerRecord>> {
        check_list_filters(&opts.filters)?;
        // before/since name containers: only those created before/after
        let bound = |key: &str| -> Result<Option<String>> {
            match opts.filters.get(key).and_then(|v| v.first()) {
                Some(n) => Ok(Some(self.get(n)?.record().created)),
                None => Ok(None),
            }
        };
        let (before, since) = (bound("before")?, bound("since")?);
        let mut link_names = if opts.filters.contains_key("name") {
            self.all_link_names()
        } else {
            HashMap::new()
        };
        let listed = |rec: &ContainerRecord, names: &[String]| {
            let running = rec.state.status == Status::Running;
            !(before.as_ref().is_some_and(|b| rec.created >= *b)
                || since.as_ref().is_some_and(|s| rec.created <= *s)
                || (!opts.all && !running && !opts.filters.contains_key("status")))
                // dockerd matches names against the link names too
                && matches_filters(rec, names, &opts.filters)
        };
        let mut recs: Vec<ContainerRecord> = self
            .containers
            .r()
            .values()
            .filter_map(|e| {
                let names = link_names.remove(&e.id).unwrap_or_default();
                e.read(|rec| listed(rec, &names).then(|| rec.clone()))
            })
            .collect();
        recs.sort_by(|a, b| b.created.cmp(&a.created));
        if let Some(limit) = opts.limit {
            recs.truncate(limit);
        }
        Ok(recs)
    }

    pub fn container_counts(&self) -> (usize, usize, usize) {
        let c = self.containers.r();
        let running = c.values().filter(|e| e.is_running()).count();
        (c.len(), running, c.len() - running)
    }
}

/// dockerd's kill: SIGKILL, the container's own stop signal, or any signal
/// to a container without one ends it for good; its restart policy does
/// not bring it back.
fn kill_is_a_stop(rec: &ContainerRecord, sig: i32) -> bool {
    match rec.config.stop_signal.as_deref().filter(|s| !s.is_empty()) {
        Some(stop) => sig == libc::SIGKILL || parse_signal(stop).is_ok_and(|s| s == sig),
        None => true,
    }
}

/// The filters of `ps` (GET /containers/json), checked before listing:
/// unknown names and status values are refused, as dockerd refuses them.
fn check_list_filters(filters: &HashMap<String, Vec<String>>) -> Result<()> {
    const KNOWN: &[&str] = &[
        "id",
        "name",
        "label",
        "label!",
        "exited",
        "status",
        "ancestor",
        "before",
        "since",
        "volume",
        "network",
        "publish",
        "expose",
        "health",
        "isolation",
        "is-task",
    ];
    for (k, values) in filters {
        if !KNOWN.contains(&k.as_str()) {
            return Err(Error::invalid(format!("invalid filter '{k}'")));
        }
        for v in values {
            match k.as_str() {
                "status"
                    if !matches!(
                        v.as_str(),
                        "created"
                            | "restarting"
                            | "running"
                            | "removing"
                            | "paused"
                            | "exited"
                            | "dead"
                    ) =>
                {
                    return Err(Error::invalid(format!("invalid filter 'status={v}'")));
                }
                "health"
                    if !matches!(v.as_str(), "starting" | "healthy" | "unhealthy" | "none") =>
                {
                    return Err(Error::invalid(format!(
                        "Unrecognised filter value for health: {v}"
                    )));
                }
                "exited" if v.parse::<i64>().is_err() => {
                    return Err(Error::invalid(format!("invalid filter 'exited={v}'")));
                }
                _ => {}
            }
        }
    }
    Ok(())
}

/// A label filter value (`key` or `key=value`) against a label map.
fn label_matches(labels: &HashMap<String, String>, v: &str) -> bool {
    match v.split_once('=') {
        Some((k, val)) => labels.get(k).map(String::as_str) == Some(val),
        None => labels.contains_key(v),
    }
}

/// A port filter value (`80`, `80/tcp`, `8000-8080/udp`) against a port.
fn port_matches(v: &str, port: u16, proto: &str) -> bool {
    let (range, want_proto) = v.split_once('/').unwrap_or((v, "tcp"));
    if want_proto != proto {
        return false;
    }
    let (lo, hi) = range.split_once('-').unwrap_or((range, range));
    match (lo.parse::<u16>(), hi.parse::<u16>()) {
        (Ok(lo), Ok(hi)) => (lo..=hi).contains(&port),
        _ => false,
    }
}

/// Whether a container passes `ps` filters. Values of one filter are
/// alternatives, except labels, which must all match (as dockerd's
/// MatchKVList); `before`/`since` are resolved by the caller into
/// `created` bounds.
fn matches_filters(
    rec: &ContainerRecord,
    link_names: &[String],
    filters: &HashMap<String, Vec<String>>,
) -> bool {
    let labels = rec.config.labels.clone().unwrap_or_default();
    for (key, values) in filters {
        if values.is_empty() {
            continue;
        }
        let ok = match key.as_str() {
            "label" => values.iter().all(|v| label_matches(&labels, v)),
            "label!" => !values.iter().any(|v| label_matches(&labels, v)),
            _ => values.iter().any(|v| match key.as_str() {
                "id" => rec.id.starts_with(v.as_str()),
                // a regular expression against the name, with or without
                // its slash, as dockerd matches it
                "name" => match regex::Regex::new(v) {
                    Ok(re) => {
                        re.is_match(&rec.name)
                            || re.is_match(&format!("/{}", rec.name))
                            || link_names.iter().any(|n| re.is_match(n))
                    }
                    Err(_) => rec.name.contains(v.trim_start_matches('/')),
                },
                "status" => {
                    let paused = rec.state.paused && rec.state.status == Status::Running;
                    let s = if paused {
                        "paused".to_string()
                    } else {
                        serde_json::to_value(rec.state.status)
                            .ok()
                            .and_then(|x| x.as_str().map(String::from))
                            .unwrap_or_default()
                    };
                    &s == v
                }
                "exited" => {
                    rec.state.status == Status::Exited
                        && v.parse::<i64>().ok() == Some(rec.state.exit_code)
                }
                "health" => {
                    let h = rec
                        .state
                        .health
                        .as_ref()
                        .filter(|_| rec.state.status == Status::Running)
                        .map(|h| h.status.as_str())
                        .unwrap_or("none");
                    h == v
                }
                "ancestor" => {
                    let (repo, tag) = match v.rsplit_once(':').filter(|(_, t)| !t.contains('/')) {
                        Some((r, t)) => (r, Some(t)),
                        None => (v.as_str(), None),
                    };
                    let (rec_repo, rec_tag) =
                        match rec.image.rsplit_once(':').filter(|(_, t)| !t.contains('/')) {
                            Some((r, t)) => (r, t),
                            None => (rec.image.as_str(), "latest"),
                        };
                    (rec_repo == repo && tag.is_none_or(|t| t == rec_tag))
                        || rec
                            .image_id
                            .trim_start_matches("sha256:")
                            .starts_with(v.trim_start_matches("sha256:"))
                }
                "volume" => rec
                    .mounts
                    .iter()
                    .any(|m| m.source == *v || m.destination == *v),
                "network" => rec.endpoints.iter().any(|(name, ep)| {
                    name == v || (!v.is_empty() && ep.network_id.starts_with(v.as_str()))
                }),
                "publish" => rec
                    .published
                    .iter()
                    .any(|p| port_matches(v, p.host_port, &p.proto)),
                "expose" => {
                    rec.published
                        .iter()
                        .any(|p| port_matches(v, p.container_port, &p.proto))
                        || rec.config.exposed_ports.iter().flatten().any(|k| {
                            let (port, proto) = k.split_once('/').unwrap_or((k, "tcp"));
                            port.parse::<u16>().is_ok_and(|p| port_matches(v, p, proto))
                        })
                }
                "is-task" => v == "false",
                "isolation" => v == "default",
                // resolved by the caller
                "before" | "since" => true,
                _ => false,
            }),
        };
        if !ok {
            return false;
        }
    }
    true
}

/// Reads the next whole record of a log file. A record a writer has not
/// finished is left unread (the reader goes back to its start); a line that
/// is not a record is skipped.
fn next_record<R: BufRead>(
    format: berth_logdriver::Format,
    r: &mut R,
) -> std::io::Result<berth_logdriver::local::Next<jsonlog::Record>> {
    use berth_logdriver::local::Next;
    match format {
        berth_logdriver::Format::Json => {
            let mut line = String::new();
            loop {
                line.clear();
                let n = r.read_line(&mut line)?;
                if n == 0 {
                    return Ok(Next::Eof);
                }
                if !line.ends_with('\n') {
                    return Ok(Next::Incomplete(n));
                }
                if let Ok(rec) = serde_json::from_str::<jsonlog::Record>(&line) {
                    return Ok(Next::Record(rec));
                }
            }
        }
        berth_logdriver::Format::Local => Ok(match berth_logdriver::local::read_entry(r)? {
            Next::Record(e) => Next::Record(jsonlog::Record::from_entry(e)),
            Next::Incomplete(n) => Next::Incomplete(n),
            Next::Eof => Next::Eof,
        }),
    }
}

/// Hands the complete records of a file to `out` until it says stop
/// (false) or the file ends (true).
fn read_records(
    format: berth_logdriver::Format,
    reader: &mut BufReader<std::fs::File>,
    out: &mut dyn FnMut(jsonlog::Record) -> bool,
) -> std::io::Result<bool> {
    use berth_logdriver::local::Next;
    loop {
        match next_record(format, reader)? {
            Next::Record(rec) => {
                if !out(rec) {
                    return Ok(false);
                }
            }
            Next::Incomplete(n) => {
                reader.seek_relative(-(n as i64))?;
                return Ok(true);
            }
            Next::Eof => return Ok(true),
        }
    }
}

fn stream_log(
    path: &std::path::Path,
    format: berth_logdriver::Format,
    opts: &LogsOptions,
    state: watch::Receiver<Snapshot>,
    tx: &mpsc::Sender<std::io::Result<Bytes>>,
) -> std::io::Result<()> {
    use berth_logdriver::local::Next;
    use std::os::unix::fs::MetadataExt;
    let emit = |rec: jsonlog::Record| -> bool {
        let (wanted, id) = match rec.stream.as_str() {
            "stdout" => (opts.stdout, STREAM_STDOUT),
            "stderr" => (opts.stderr, STREAM_STDERR),
            _ => (false, 0),
        };
        if !wanted {
            return true;
        }
        if opts.since.is_some() || opts.until.is_some() {
            let t = chrono::DateTime::parse_from_rfc3339(&rec.time)
                .map(|t| t.timestamp_nanos_opt().unwrap_or(0) as f64 / 1e9)
                .unwrap_or(0.0);
            if opts.since.is_some_and(|s| t < s) || opts.until.is_some_and(|u| t > u) {
                return true;
            }
        }
        let line = if opts.details {
            format!("{} {}", jsonlog::attrs_text(&rec.attrs), rec.log)
        } else {
            rec.log
        };
        let payload = if opts.timestamps {
            format!("{} {line}", rec.time)
        } else {
            line
        };
        let mut frame = Vec::with_capacity(payload.len() + 8);
        if !opts.raw {
            frame.extend_from_slice(&frame_header(id, payload.len()));
        }
        frame.extend_from_slice(payload.as_bytes());
        tx.blocking_send(Ok(Bytes::from(frame))).is_ok()
    };
    // rotated files first, oldest first: <log>.N ... <log>.1
    let mut rotated = berth_logdriver::rotated_files(path);
    rotated.pop();
    let open = |p: &std::path::Path| -> std::io::Result<Option<std::fs::File>> {
        match std::fs::File::open(p) {
            Ok(f) => Ok(Some(f)),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(e),
        }
    };
    let mut tail: Option<std::collections::VecDeque<jsonlog::Record>> =
        opts.tail.map(|_| std::collections::VecDeque::new());
    let mut deliver = |r: jsonlog::Record| -> bool {
        match (&mut tail, opts.tail) {
            (Some(q), Some(n)) => {
                q.push_back(r);
                if q.len() > n {
                    q.pop_front();
                }
                true
            }
            _ => emit(r),
        }
    };
    for p in &rotated {
        let Some(f) = open(p)? else {
            continue;
        };
        if p.extension().is_some_and(|e| e == "gz") {
            // compressed files are complete: every record is whole
            let mut r = BufReader::new(flate2::read::GzDecoder::new(f));
            while let Next::Record(rec) = next_record(format, &mut r)? {
                if !deliver(rec) {
                    return Ok(());
                }
            }
        } else if !read_records(format, &mut BufReader::new(f), &mut deliver)? {
            return Ok(());
        }
    }
    let Some(mut current) = open(path)? else {
        return Ok(());
    };
    let mut reader = BufReader::new(current.try_clone()?);
    if !read_records(format, &mut reader, &mut deliver)? {
        return Ok(());
    }
    if let Some(q) = tail.take() {
        for r in q {
            if !emit(r) {
                return Ok(());
            }
        }
    }
    let mut emit = emit;
    loop {
        if !read_records(format, &mut reader, &mut emit)? {
            return Ok(());
        }
        let running = state.borrow().running;
        if !opts.follow || tx.is_closed() {
            return Ok(());
        }
        // the shim rotated the file: finish the old one, go on with the new
        let rotated_away = std::fs::metadata(path).map(|m| m.ino()).ok()
            != current.metadata().map(|m| m.ino()).ok();
        if rotated_away {
            if !read_records(format, &mut reader, &mut emit)? {
                return Ok(());
            }
            // more than one rotation since the last look: the files made
            // in between are complete, and come before the current one
            let old = current.metadata().map(|m| m.ino()).ok();
            for p in rotated_since(path, old) {
                if let Some(f) = open(&p)?
                    && !read_records(format, &mut BufReader::new(f), &mut emit)?
                {
                    return Ok(());
                }
            }
            match open(path)? {
                Some(f) => {
                    current = f;
                    reader = BufReader::new(current.try_clone()?);
                    continue;
                }
                None if !running => return Ok(()),
                None => {}
            }
        } else if !running {
            return Ok(());
        } else if current.metadata().map(|m| m.len()).unwrap_or(0)
            < reader.stream_position().unwrap_or(0)
        {
            // one file kept (max-file=1): the shim started it over in place
            reader.seek(std::io::SeekFrom::Start(0))?;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// The rotated files of `path` newer than the one with inode `old`, oldest
/// first; none when that file is gone or was compressed.
fn rotated_since(path: &std::path::Path, old: Option<u64>) -> Vec<PathBuf> {
    use std::os::unix::fs::MetadataExt;
    let mut rotated = berth_logdriver::rotated_files(path);
    rotated.pop();
    let Some(at) = rotated
        .iter()
        .position(|p| std::fs::metadata(p).map(|m| m.ino()).ok() == old)
    else {
        return Vec::new();
    };
    rotated.split_off(at + 1)
}

pub(crate) fn check_restart_policy(hc: &HostConfig) -> Result<()> {
    validate_restart_policy(hc)
}

fn validate_restart_policy(hc: &HostConfig) -> Result<()> {
    use berth_core::container::RestartPolicyName as P;
    let Some(p) = &hc.restart_policy else {
        return Ok(());
    };
    let name = p.name.unwrap_or(P::Empty);
    let max = p.maximum_retry_count.unwrap_or(0);
    if max < 0 {
        return Err(Error::invalid(
            "invalid restart policy: maximum retry count cannot be negative",
        ));
    }
    if max > 0 && name != P::OnFailure {
        return Err(Error::invalid(
            "invalid restart policy: maximum retry count can only be used with 'on-failure'",
        ));
    }
    if name != P::Empty && name != P::No && hc.auto_remove == Some(true) {
        return Err(Error::invalid(
            "can't create 'AutoRemove' container with restart policy",
        ));
    }
    Ok(())
}

/// `--storage-opt`, as overlay2 answers it where the backing filesystem
/// has no project quotas (berth sets none): `size` is refused, and any
/// other key is unknown. A 500, as dockerd's layer store fails.
fn storage_opts(opts: Option<&HashMap<String, String>>) -> Result<()> {
    let Some(opts) = opts.filter(|o| !o.is_empty()) else {
        return Ok(());
    };
    if opts.contains_key("size") {
        return Err(Error::Internal(anyhow::anyhow!(
            "--storage-opt is supported only for overlay over xfs with 'pquota' mount option"
        )));
    }
    let mut keys: Vec<&String> = opts.keys().collect();
    keys.sort();
    match keys.into_iter().find(|k| !k.eq_ignore_ascii_case("size")) {
        Some(k) => Err(Error::Internal(anyhow::anyhow!(
            "Unknown option {}",
            k.to_lowercase()
        ))),
        // "SIZE": a quota overlay2 cannot set either
        None => Err(Error::Internal(anyhow::anyhow!(
            "--storage-opt is supported only for overlay over xfs with 'pquota' mount option"
        ))),
    }
}

/// Docker's merge of the request's entrypoint and command over the
/// image's: the image's command only when the request gives neither an
/// entrypoint nor a command, its entrypoint only when the request leaves it
/// unset (an empty one clears it). Returns (entrypoint, cmd, argv).
fn merge_command(
    entrypoint: Option<Vec<String>>,
    cmd: Option<Vec<String>>,
    image_entrypoint: Option<Vec<String>>,
    image_cmd: Option<Vec<String>>,
) -> Result<(Vec<String>, Vec<String>, Vec<String>)> {
    let mut entrypoint = entrypoint;
    let mut cmd = cmd.unwrap_or_default();
    if entrypoint.as_ref().is_none_or(|e| e.is_empty()) {
        if cmd.is_empty() {
            cmd = image_cmd.unwrap_or_default();
        }
        if entrypoint.is_none() {
            entrypoint = image_entrypoint;
        }
    }
    let entrypoint: Vec<String> = entrypoint
        .unwrap_or_default()
        .into_iter()
        .filter(|s| !s.is_empty())
        .collect();
    let argv: Vec<String> = entrypoint.iter().chain(cmd.iter()).cloned().collect();
    if argv.is_empty() {
        return Err(Error::invalid("no command specified"));
    }
    Ok((entrypoint, cmd, argv))
}

/// The request's environment over the image's: a variable the request sets
/// hides the image's of the same name.
fn merge_env(mut env: Vec<String>, image_env: Vec<String>) -> Result<Vec<String>> {
    if let Some(e) = env.iter().find(|e| e.is_empty() || e.starts_with('=')) {
        return Err(Error::invalid(format!("invalid environment variable: {e}")));
    }
    for ie in image_env {
        let key = ie.split('=').next().unwrap_or_default();
        if !env.iter().any(|u| u.split('=').next() == Some(key)) {
            env.push(ie);
        }
    }
    Ok(env)
}

/// Docker's rules: `always` restarts whatever the exit, `unless-stopped`
/// too unless stopped by hand, `on-failure[:N]` after a non-zero exit while
/// fewer than N restarts were made. A manual stop beats them all, except
/// `always` at daemon start.
pub(crate) fn should_restart(rec: &ContainerRecord, daemon_start: bool) -> bool {
    use berth_core::container::RestartPolicyName as P;
    let Some(p) = &rec.host_config.restart_policy else {
        return false;
    };
    match p.name.unwrap_or(P::Empty) {
        P::Always => daemon_start || !rec.manually_stopped,
        P::UnlessStopped => !rec.manually_stopped,
        P::OnFailure => {
            let max = p.maximum_retry_count.unwrap_or(0);
            !rec.manually_stopped
                && !daemon_start
                && rec.state.exit_code != 0
                && (max == 0 || rec.restart_count < max)
        }
        _ => false,
    }
}

/// How long the container ran before its exit (zero when unknown).
fn run_time(state: &StateRecord) -> Duration {
    match (
        chrono::DateTime::parse_from_rfc3339(&state.started_at),
        chrono::DateTime::parse_from_rfc3339(&state.finished_at),
    ) {
        (Ok(a), Ok(b)) => (b - a).to_std().unwrap_or_default(),
        _ => Duration::ZERO,
    }
}

/// Docker's restart back-off: the delay before this restart, with `next`
/// doubled (up to the maximum) for the one after; a run of
/// RESTART_RESET_AFTER or more starts over from the minimum.
fn restart_backoff(next: &mut Duration, ran: Duration) -> Duration {
    if ran >= RESTART_RESET_AFTER {
        *next = RESTART_DELAY_MIN;
    }
    let now = *next;
    *next = (*next * 2).min(RESTART_DELAY_MAX);
    now
}

impl Engine {
    /// `docker restart`: stop (as `stop` does), then start.
    pub async fn container_restart(
        self: &Arc<Self>,
        name: &str,
        timeout: Option<i64>,
        signal: Option<&str>,
    ) -> Result<()> {
        let e = self.get(name)?;
        let by_hand = &e.manual_restart;
        by_hand.store(true, std::sync::atomic::Ordering::SeqCst);
        let stopped = {
            let _op = e.op.lock().await;
            self.stop_locked(&e, timeout, signal).await
        };
        let started = match stopped {
            Ok(()) | Err(Error::NotModified(_)) => self.container_start(&e.id).await,
            Err(err) => Err(err),
        };
        by_hand.store(false, std::sync::atomic::Ordering::SeqCst);
        match started {
            Ok(()) | Err(Error::NotModified(_)) => {
                self.container_event(&e.record(), "restart", &[]);
                Ok(())
            }
            Err(err) => Err(err),
        }
    }

    pub fn container_rename(&self, name: &str, new_name: &str) -> Result<()> {
        if name.is_empty() || new_name.is_empty() {
            return Err(Error::invalid("Neither old nor new names may be empty"));
        }
        let new = names::validate(new_name)?;
        let e = self.get(name)?;
        let mut names_map = self.names.w();
        let old = e.record().name;
        if old == new {
            return Err(Error::invalid(
                "Renaming a container with the same name as its current name",
            ));
        }
        if let Some(holder) = names_map.get(&new) {
            return Err(Error::conflict(format!(
                "Error when allocating new name: Conflict. The container name \"/{new}\" is already in use by container \"{holder}\". You have to remove (or rename) that container to be able to reuse that name."
            )));
        }
        let rec = e.update(|r| {
            r.name = new.clone();
            r.clone()
        });
        self.persist(&rec)?;
        names_map.remove(&old);
        names_map.insert(new, e.id.clone());
        drop(names_map);
        self.container_event(&rec, "rename", &[("oldName", format!("/{old}"))]);
        Ok(())
    }

    /// `docker container prune`: removes every container that is not
    /// running (filters: label, until). Returns the ids and the bytes freed.
    pub async fn container_prune(
        &self,
        filters: &HashMap<String, Vec<String>>,
    ) -> Result<(Vec<String>, u64)> {
        let until = match filters.get("until").and_then(|v| v.first()) {
            Some(u) => Some(parse_until(u)?),
            None => None,
        };
        if let Some(k) = filters
            .keys()
            .find(|k| !matches!(k.as_str(), "label" | "label!" | "until"))
        {
            return Err(Error::invalid(format!("invalid filter '{k}'")));
        }
        let labels: HashMap<String, Vec<String>> = filters
            .iter()
            .filter(|(k, _)| k.as_str() == "label" || k.as_str() == "label!")
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        let candidates: Vec<Arc<Entry>> = self.containers.r().values().cloned().collect();
        let mut deleted = Vec::new();
        let mut reclaimed = 0u64;
        for e in candidates {
            let rec = e.record();
            if matches!(
                rec.state.status,
                Status::Running | Status::Restarting | Status::Removing
            ) {
                continue;
            }
            if !matches_filters(&rec, &[], &labels) {
                continue;
            }
            if until.is_some_and(|u| crate::images::parse_time(&rec.created) >= u) {
                continue;
            }
            let size = self.rw_size(&e.id, false);
            let _op = e.op.lock().await;
            if e.is_running() {
                continue;
            }
            self.remove_entry(&e, false)?;
            deleted.push(e.id.clone());
            reclaimed += size;
        }
        Ok((deleted, reclaimed))
    }
}

/// `until` as Docker takes it: unix seconds, RFC 3339, or a duration ago.
pub(crate) fn parse_until(v: &str) -> Result<i64> {
    if let Ok(n) = v.parse::<f64>() {
        return Ok(n as i64);
    }
    if let Ok(t) = chrono::DateTime::parse_from_rfc3339(v) {
        return Ok(t.timestamp());
    }
    let split = v.find(|c: char| c.is_ascii_alphabetic()).unwrap_or(v.len());
    let (num, unit) = v.split_at(split);
    let n: f64 = num
        .parse()
        .map_err(|_| Error::invalid(format!("invalid filter 'until={v}'")))?;
    let secs = match unit {
        "s" => n,
        "m" => n * 60.0,
        "h" => n * 3600.0,
        _ => return Err(Error::invalid(format!("invalid filter 'until={v}'"))),
    };
    Ok(chrono::Utc::now().timestamp() - secs as i64)
}

impl Engine {
    /// The size of a container's writable layer. A container that is not
    /// running cannot change it except through `cp` (which forgets the
    /// figure), so its size is walked once and kept: `system df` and
    /// `ps --size` stay fast with thousands of stopped containers.
    pub(crate) fn rw_size(&self, id: &str, running: bool) -> u64 {
        if !running
            && let Some(s) = self
                .rw_sizes
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .get(id)
        {
            return *s;
        }
        let size = dir_size(&self.overlay_dirs_of(id).0);
        let mut cache = self.rw_sizes.lock().unwrap_or_else(|p| p.into_inner());
        if running {
            cache.remove(id);
        } else {
            cache.insert(id.to_string(), size);
        }
        size
    }

    /// Forgets a container's writable-layer size: it is about to change.
    pub(crate) fn forget_rw_size(&self, id: &str) {
        self.rw_sizes
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(id);
    }

    pub(crate) fn image_size(&self, image_id: &str) -> i64 {
        self.images
            .r()
            .images
            .get(image_id)
            .map(|i| i.size as i64)
            .unwrap_or(0)
    }
}

pub(crate) use berth_archive::dir_size;

impl Engine {
    /// A graceful daemon stop without live-restore: stops every running
    /// container (each with its own stop signal and timeout) in parallel.
    pub async fn stop_all_containers(&self) {
        self.shutting_down
            .store(true, std::sync::atomic::Ordering::SeqCst);
        let running: Vec<Arc<Entry>> = self
            .containers
            .r()
            .values()
            .filter(|e| e.is_running())
            .cloned()
            .collect();
        let stops = running.iter().map(|e| async move {
            let _op = e.op.lock().await;
            if let Err(err) = self.stop_inner(e, None, None, false).await {
                tracing::warn!(container = %&e.id[..12], error = %err, "stopping container at shutdown");
            }
        });
        futures_util::future::join_all(stops).await;
    }
}

#[derive(Debug, Default)]
struct SecurityOpts {
    no_new_privileges: bool,
    seccomp: Seccomp,
}

#[derive(Debug, Default)]
enum Seccomp {
    #[default]
    Default,
    Unconfined,
    Custom(String),
}

/// `--security-opt`: `no-new-privileges[:true|=true]`, `seccomp=unconfined`
/// or a profile's JSON (the docker CLI sends the file's content),
/// `apparmor=unconfined` and `label=disable` (berth applies neither);
/// anything else is refused, as Docker refuses what it does not know.
fn parse_security_opts(opts: &[String]) -> Result<SecurityOpts> {
    let mut s = SecurityOpts::default();
    for o in opts {
        let (k, v) = match o.split_once(['=', ':']) {
            Some((k, v)) => (k, Some(v)),
            None => (o.as_str(), None),
        };
        match (k, v) {
            ("no-new-privileges", None | Some("true")) => s.no_new_privileges = true,
            ("no-new-privileges", Some("false")) => s.no_new_privileges = false,
            ("seccomp", Some("unconfined")) => s.seccomp = Seccomp::Unconfined,
            ("seccomp", Some("builtin" | "default")) => s.seccomp = Seccomp::Default,
            ("seccomp", Some(json)) if json.trim_start().starts_with('{') => {
                seccomp::from_docker_json(json, &HashSet::new()).map_err(Error::invalid)?;
                s.seccomp = Seccomp::Custom(json.to_string());
            }
            ("apparmor", Some("unconfined")) => {}
            ("label", Some("disable")) => {}
            _ => return Err(Error::invalid(format!("invalid --security-opt: {o:?}"))),
        }
    }
    Ok(s)
}

fn validate_host_config(hc: &HostConfig) -> Result<()> {
    if let Some(m) = hc.memory
        && m > 0
        && m < 6 * 1024 * 1024
    {
        return Err(Error::invalid("Minimum memory limit allowed is 6MB"));
    }
    if let Some(s) = hc.memory_swap.filter(|s| *s > 0) {
        let m = hc.memory.unwrap_or(0);
        if m <= 0 {
            return Err(Error::invalid(
                "You should always set the Memory limit when using Memoryswap limit, see usage",
            ));
        }
        if s < m {
            return Err(Error::invalid(
                "Minimum memoryswap limit should be larger than memory limit, see usage",
            ));
        }
    }
    if hc.nano_cpus.is_some_and(|n| n < 0) {
        return Err(Error::invalid(
            "Range of CPUs is from 0.01 to the number of CPUs available",
        ));
    }
    let privileged = hc.privileged.unwrap_or(false);
    spec::capabilities(
        privileged,
        &hc.cap_add.clone().unwrap_or_default(),
        &hc.cap_drop.clone().unwrap_or_default(),
    )
    .map_err(Error::invalid)?;
    parse_security_opts(hc.security_opt.as_deref().unwrap_or_default())?;
    // dockerd's ValidateTmpfsMountDestination, whose words carry no
    // "invalid mount config" prefix, unlike a tmpfs in Mounts
    for path in hc.tmpfs.clone().unwrap_or_default().keys() {
        if path.starts_with('/') && crate::validate::clean_absolute(path) == "/" {
            return Err(Error::invalid(
                "invalid specification: destination can't be '/'",
            ));
        }
        if !path.starts_with('/') {
            return Err(Error::invalid(format!(
                "invalid mount path: '{path}' mount path must be absolute"
            )));
        }
    }
    Ok(())
}

impl Engine {
    /// The effective `LogConfig` of a new container: its own, or the
    /// daemon's `log-driver`; the daemon's `log-opts` fill in what a
    /// container of the same driver leaves unset (dockerd's
    /// mergeAndVerifyLogConfig), then the driver checks them.
    fn log_config_with_defaults(
        &self,
        hc: &HostConfig,
    ) -> Result<berth_core::container::LogConfig> {
        let defaults = self.settings();
        let lc = hc.log_config.clone().unwrap_or_default();
        let typ = lc
            .typ
            .clone()
            .filter(|t| !t.is_empty())
            .unwrap_or_else(|| defaults.log_driver.clone());
        let mut config: std::collections::BTreeMap<String, String> =
            lc.config.clone().unwrap_or_default().into_iter().collect();
        if typ == defaults.log_driver {
            for (k, v) in &defaults.log_opts {
                config.entry(k.clone()).or_insert_with(|| v.clone());
            }
        }
        let config = berth_logdriver::validate(&typ, &config)
            .map_err(|e| Error::invalid(format!("{e:#}")))?;
        Ok(berth_core::container::LogConfig {
            typ: Some(typ),
            config: Some(config.into_iter().collect()),
        })
    }

    /// What the shim's logging driver needs: the stored driver and options
    /// and the container's details, with the tag rendered.
    fn log_driver_config(&self, rec: &ContainerRecord) -> Result<berth_logdriver::Config> {
        let (driver, opts) = log_driver_of(&rec.host_config);
        let mut info = berth_logdriver::Info {
            id: rec.id.clone(),
            name: rec.name.clone(),
            image_id: rec.image_id.clone(),
            image_name: rec.image.clone(),
            command: std::iter::once(rec.path.as_str())
                .chain(rec.args.iter().map(String::as_str))
                .collect::<Vec<_>>()
                .join(" "),
            created: rec.created.clone(),
            tag: String::new(),
            attrs: log_attrs(rec)?,
            hostname: nix::unistd::gethostname()
                .ok()
                .and_then(|h| h.into_string().ok())
                .unwrap_or_default(),
            daemon_pid: std::process::id(),
        };
        info.tag =
            berth_logdriver::render_tag(opts.get("tag").map(String::as_str).unwrap_or(""), &info)
                .map_err(|e| Error::invalid(format!("invalid tag template: {e:#}")))?;
        Ok(berth_logdriver::Config {
            driver,
            opts,
            info,
            dir: self.container_dir(&rec.id),
        })
    }
}

/// A container's driver and options as stored (json-file for records
/// older than the field).
pub(crate) fn log_driver_of(
    hc: &HostConfig,
) -> (String, std::collections::BTreeMap<String, String>) {
    let lc = hc.log_config.clone().unwrap_or_default();
    let driver = lc
        .typ
        .filter(|t| !t.is_empty())
        .unwrap_or_else(|| "json-file".into());
    (driver, lc.config.unwrap_or_default().into_iter().collect())
}

/// The attributes `--log-opt labels/labels-regex/env/env-regex` select from
/// the container's labels and environment, stored with every log record.
fn log_attrs(rec: &ContainerRecord) -> Result<std::collections::BTreeMap<String, String>> {
    let opts = rec
        .host_config
        .log_config
        .as_ref()
        .and_then(|l| l.config.clone())
        .unwrap_or_default();
    let labels = rec.config.labels.clone().unwrap_or_default();
    let env: HashMap<String, String> = rec
        .config
        .env
        .iter()
        .flatten()
        .filter_map(|e| e.split_once('='))
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    let mut out = std::collections::BTreeMap::new();
    for (keys_opt, regex_opt, source) in [
        ("labels", "labels-regex", &labels),
        ("env", "env-regex", &env),
    ] {
        if let Some(keys) = opts.get(keys_opt).filter(|k| !k.is_empty()) {
            for k in keys.split(',') {
                if let Some(v) = source.get(k) {
                    out.insert(k.to_string(), v.clone());
                }
            }
        }
        if let Some(re) = opts.get(regex_opt).filter(|k| !k.is_empty()) {
            let re = regex::Regex::new(re)
                .map_err(|e| Error::invalid(format!("invalid {regex_opt} {re:?}: {e}")))?;
            for (k, v) in source {
                if re.is_match(k) {
                    out.insert(k.clone(), v.clone());
                }
            }
        }
    }
    Ok(out)
}

#[cfg(test)]
mod create_tests {
    use super::{merge_command, merge_env};

    fn v(items: &[&str]) -> Option<Vec<String>> {
        Some(items.iter().map(|s| s.to_string()).collect())
    }

    #[test]
    fn the_image_command_fills_in_only_what_the_request_leaves_out() {
        let img = (v(&["/entry"]), v(&["default", "args"]));
        let argv = |e, c| merge_command(e, c, img.0.clone(), img.1.clone()).map(|r| r.2);
        // nothing given: the image's entrypoint and command
        assert_eq!(argv(None, None).unwrap(), ["/entry", "default", "args"]);
        // a command replaces the image's, the entrypoint stays
        assert_eq!(argv(None, v(&["x"])).unwrap(), ["/entry", "x"]);
        // an entrypoint drops the image's command as well
        assert_eq!(argv(v(&["/other"]), None).unwrap(), ["/other"]);
        // an empty entrypoint clears the image's and keeps its command
        assert_eq!(argv(v(&[]), None).unwrap(), ["default", "args"]);
        assert_eq!(argv(v(&[]), v(&["sh"])).unwrap(), ["sh"]);
        // `--entrypoint ""` ([""], as the docker CLI sends it) clears it
        // too, but as an entrypoint given it takes no image command
        assert_eq!(argv(v(&[""]), v(&["sh"])).unwrap(), ["sh"]);
        assert!(argv(v(&[""]), None).is_err());
    }

    #[test]
    fn no_command_at_all_is_refused() {
        let err = merge_command(None, None, None, None).unwrap_err();
        assert_eq!(err.to_string(), "no command specified");
        assert!(merge_command(v(&[""]), v(&[]), None, v(&[])).is_err());
    }

    #[test]
    fn request_variables_hide_the_images_of_the_same_name() {
        let env = merge_env(
            vec!["A=mine".into(), "B".into()],
            vec!["A=image".into(), "B=image".into(), "PATH=/bin".into()],
        )
        .unwrap();
        assert_eq!(env, ["A=mine", "B", "PATH=/bin"]);
        for bad in ["", "=x"] {
            let err = merge_env(vec![bad.into()], vec![]).unwrap_err();
            assert!(err.to_string().starts_with("invalid environment variable"));
        }
    }
}

#[cfg(test)]
mod restart_tests {
    use super::*;
    use berth_core::container::{RestartPolicy, RestartPolicyName as P};

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    fn record(policy: Option<(P, i64)>) -> ContainerRecord {
        ContainerRecord {
            id: "c".repeat(64),
            name: "web".into(),
            created: String::new(),
            image: "busybox".into(),
            image_id: String::new(),
            path: "sh".into(),
            args: vec![],
            config: ContainerConfig::default(),
            host_config: HostConfig {
                restart_policy: policy.map(|(name, max)| RestartPolicy {
                    name: Some(name),
                    maximum_retry_count: Some(max),
                }),
                ..Default::default()
            },
            state: StateRecord::default(),
            restart_count: 0,
            manually_stopped: false,
            mounts: vec![],
            endpoints_config: HashMap::new(),
            endpoints: Default::default(),
            published: vec![],
            primary_detached: false,
            primary_mac: None,
            legacy_links: Default::default(),
            build_step: false,
            diff_ids: vec![],
            pod_netns: false,
        }
    }

    fn exited(mut r: ContainerRecord, code: i64) -> ContainerRecord {
        r.state.status = Status::Exited;
        r.state.exit_code = code;
        r
    }

    #[test]
    fn backoff_doubles_from_100ms_up_to_a_minute() {
        let mut next = RESTART_DELAY_MIN;
        let delays: Vec<Duration> = (0..13)
            .map(|_| restart_backoff(&mut next, Duration::ZERO))
            .collect();
        let want: Vec<Duration> = [
            100, 200, 400, 800, 1600, 3200, 6400, 12800, 25600, 51200, 60000, 60000, 60000,
        ]
        .into_iter()
        .map(ms)
        .collect();
        assert_eq!(delays, want);
        assert_eq!(next, RESTART_DELAY_MAX);
    }

    #[test]
    fn a_long_run_starts_the_backoff_over() {
        let mut next = RESTART_DELAY_MIN;
        for _ in 0..5 {
            restart_backoff(&mut next, ms(50));
        }
        assert_eq!(next, ms(3200));
        // just under the threshold: no reset
        assert_eq!(
            restart_backoff(&mut next, RESTART_RESET_AFTER - ms(1)),
            ms(3200)
        );
        // at the threshold: the shortest delay again, then doubling anew
        assert_eq!(restart_backoff(&mut next, RESTART_RESET_AFTER), ms(100));
        assert_eq!(restart_backoff(&mut next, ms(10)), ms(200));
        // also from the maximum
        let mut next = RESTART_DELAY_MAX;
        assert_eq!(
            restart_backoff(&mut next, Duration::from_secs(3600)),
            ms(100)
        );
    }

    #[test]
    fn a_new_entry_starts_at_the_shortest_delay() {
        let e = Entry::new(exited(record(Some((P::Always, 0))), 1));
        let first = restart_backoff(&mut e.restart_delay.lock().unwrap(), Duration::ZERO);
        assert_eq!(first, ms(100));
        let second = restart_backoff(&mut e.restart_delay.lock().unwrap(), Duration::ZERO);
        assert_eq!(second, ms(200));
        // each container keeps its own back-off
        let other = Entry::new(exited(record(Some((P::Always, 0))), 1));
        assert_eq!(*other.restart_delay.lock().unwrap(), RESTART_DELAY_MIN);
    }

    #[test]
    fn run_time_from_the_state_times() {
        let mut s = StateRecord {
            started_at: "2024-05-01T10:00:00.250Z".into(),
            finished_at: "2024-05-01T10:00:12.750Z".into(),
            ..Default::default()
        };
        assert_eq!(run_time(&s), ms(12_500));
        // offsets are honoured
        s.finished_at = "2024-05-01T12:00:01.250+02:00".into();
        assert_eq!(run_time(&s), ms(1000));
        // never started, or a clock that went back: zero, never a panic
        s.started_at = NEVER.into();
        s.finished_at = NEVER.into();
        assert_eq!(run_time(&s), Duration::ZERO);
        s.started_at = "2024-05-01T10:00:10Z".into();
        s.finished_at = "2024-05-01T10:00:00Z".into();
        assert_eq!(run_time(&s), Duration::ZERO);
        s.started_at = String::new();
        assert_eq!(run_time(&s), Duration::ZERO);
        // a run of ten seconds resets the back-off, one of 9.9 does not
        let state = |secs: &str| StateRecord {
            started_at: "2024-05-01T10:00:00Z".into(),
            finished_at: format!("2024-05-01T10:00:{secs}Z"),
            ..Default::default()
        };
        let mut next = ms(800);
        assert_eq!(
            restart_backoff(&mut next, run_time(&state("09.9"))),
            ms(800)
        );
        assert_eq!(restart_backoff(&mut next, run_time(&state("10"))), ms(100));
    }

    #[test]
    fn no_policy_never_restarts() {
        for r in [
            record(None),
            record(Some((P::No, 0))),
            record(Some((P::Empty, 0))),
        ] {
            for code in [0, 1, 137] {
                let r = exited(r.clone(), code);
                assert!(!should_restart(&r, false));
                assert!(!should_restart(&r, true));
            }
        }
    }

    #[test]
    fn always_restarts_whatever_the_exit() {
        let r = record(Some((P::Always, 0)));
        assert!(should_restart(&exited(r.clone(), 0), false));
        assert!(should_restart(&exited(r.clone(), 3), false));
        // stopped by hand: not now, but again when the daemon starts
        let mut stopped = exited(r, 0);
        stopped.manually_stopped = true;
        assert!(!should_restart(&stopped, false));
        assert!(should_restart(&stopped, true));
    }

    #[test]
    fn unless_stopped_respects_a_manual_stop_even_at_daemon_start() {
        let r = exited(record(Some((P::UnlessStopped, 0))), 0);
        assert!(should_restart(&r, false));
        assert!(should_restart(&r, true));
        let mut stopped = r;
        stopped.manually_stopped = true;
        assert!(!should_restart(&stopped, false));
        assert!(!should_restart(&stopped, true));
    }

    #[test]
    fn on_failure_counts_its_retries() {
        let r = record(Some((P::OnFailure, 3)));
        assert!(!should_restart(&exited(r.clone(), 0), false));
        let mut failed = exited(r, 2);
        for count in 0..3 {
            failed.restart_count = count;
            assert!(should_restart(&failed, false), "after {count} restarts");
        }
        failed.restart_count = 3;
        assert!(!should_restart(&failed, false));
        // no maximum: always after a failure
        let mut unbounded = exited(record(Some((P::OnFailure, 0))), 1);
        unbounded.restart_count = 10_000;
        assert!(should_restart(&unbounded, false));
        // a missing count is no maximum either
        let mut r = exited(record(Some((P::OnFailure, 0))), 1);
        r.host_config
            .restart_policy
            .as_mut()
            .unwrap()
            .maximum_retry_count = None;
        r.restart_count = 99;
        assert!(should_restart(&r, false));
        // not after a manual stop, not at daemon start
        let mut stopped = exited(record(Some((P::OnFailure, 0))), 1);
        stopped.manually_stopped = true;
        assert!(!should_restart(&stopped, false));
        assert!(!should_restart(
            &exited(record(Some((P::OnFailure, 0))), 1),
            true
        ));
        // a killed container (137) failed too
        assert!(should_restart(
            &exited(record(Some((P::OnFailure, 0))), 137),
            false
        ));
    }

    #[test]
    fn a_policy_without_a_name_is_none() {
        let mut r = exited(record(Some((P::Always, 0))), 1);
        r.host_config.restart_policy = Some(RestartPolicy {
            name: None,
            maximum_retry_count: Some(5),
        });
        assert!(!should_restart(&r, false));
    }

    #[test]
    fn restart_policies_are_checked_at_create() {
        let hc = |name: P, max: i64, auto_remove: bool| HostConfig {
            restart_policy: Some(RestartPolicy {
                name: Some(name),
                maximum_retry_count: Some(max),
            }),
            auto_remove: Some(auto_remove),
            ..Default::default()
        };
        let msg = |h: &HostConfig| validate_restart_policy(h).unwrap_err().to_string();
        assert!(validate_restart_policy(&HostConfig::default()).is_ok());
        assert!(validate_restart_policy(&hc(P::OnFailure, 5, false)).is_ok());
        assert!(validate_restart_policy(&hc(P::Always, 0, false)).is_ok());
        assert!(validate_restart_policy(&hc(P::No, 0, true)).is_ok());
        assert_eq!(
            msg(&hc(P::OnFailure, -1, false)),
            "invalid restart policy: maximum retry count cannot be negative"
        );
        assert_eq!(
            msg(&hc(P::Always, 2, false)),
            "invalid restart policy: maximum retry count can only be used with 'on-failure'"
        );
        assert_eq!(
            msg(&hc(P::UnlessStopped, 0, true)),
            "can't create 'AutoRemove' container with restart policy"
        );
    }
}

#[cfg(test)]
mod log_follow_tests {
    use super::rotated_since;
    use std::os::unix::fs::MetadataExt;

    #[test]
    fn files_rotated_in_between_come_after_the_one_being_read() {
        let d = tempfile::tempdir().unwrap();
        let log = d.path().join("c.log");
        for name in ["c.log", "c.log.1", "c.log.2", "c.log.3"] {
            std::fs::write(d.path().join(name), name).unwrap();
        }
        let ino = |n: &str| std::fs::metadata(d.path().join(n)).unwrap().ino();
        // the reader had c.log open; two rotations made it c.log.3
        assert_eq!(
            rotated_since(&log, Some(ino("c.log.3"))),
            vec![d.path().join("c.log.2"), d.path().join("c.log.1")]
        );
        assert!(rotated_since(&log, Some(ino("c.log.1"))).is_empty());
        // rotated out of existence (max-file) or compressed: nothing known
        assert!(rotated_since(&log, Some(u64::MAX)).is_empty());
        assert!(rotated_since(&log, None).is_empty());
    }
}
