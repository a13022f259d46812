//! The typed compose model after loading, interpolation and merging: the
//! docker CLI's `cli/compose/types`, keeping the distinctions its
//! conversion depends on (unset vs empty, nil vs zero). Durations are
//! nanoseconds, sizes bytes.

use std::collections::BTreeMap;
use std::path::PathBuf;

use crate::error::Position;

#[derive(Clone, Debug, Default, PartialEq)]
pub struct Project {
    /// "3.13" when the files give none (or "3")
    pub version: String,
    /// relative paths (env_file, secret files, bind mounts) were resolved
    /// against this directory
    pub working_dir: PathBuf,
    pub services: BTreeMap<String, Service>,
    pub networks: BTreeMap<String, Network>,
    pub volumes: BTreeMap<String, Volume>,
    pub secrets: BTreeMap<String, FileObject>,
    pub configs: BTreeMap<String, FileObject>,
}

#[derive(Clone, Debug, Default, PartialEq)]
pub struct Service {
    pub name: String,
    /// the service's key in the first file that defines it
    pub position: Option<Position>,
    pub image: String,
    pub command: Vec<String>,
    pub entrypoint: Vec<String>,
    pub cap_add: Vec<String>,
    pub cap_drop: Vec<String>,
    pub configs: Vec<FileReference>,
    pub secrets: Vec<FileReference>,
    pub credential_spec: CredentialSpec,
    pub depends_on: Vec<Dependency>,
    pub deploy: Deploy,
    /// `None` when not given; Docker sends DNSConfig only if either is set
    pub dns: Option<Vec<String>>,
    pub dns_search: Option<Vec<String>>,
    /// `None` is a bare `KEY` the environment did not set
    pub environment: BTreeMap<String, Option<String>>,
    /// "host:ip" pairs, in the file's order
    pub extra_hosts: Vec<String>,
    pub healthcheck: Option<Healthcheck>,
    pub hostname: String,
    pub init: Option<bool>,
    pub isolation: String,
    pub labels: BTreeMap<String, String>,
    pub logging: Option<Logging>,
    pub networks: BTreeMap<String, ServiceNetwork>,
    pub ports: Vec<Port>,
    pub read_only: bool,
    /// the unsupported `restart:`, still used without deploy.restart_policy
    pub restart: String,
    pub stdin_open: bool,
    pub stop_grace_period: Option<i64>,
    pub stop_signal: String,
    pub sysctls: BTreeMap<String, String>,
    pub tty: bool,
    pub ulimits: BTreeMap<String, Ulimit>,
    pub user: String,
    pub volumes: Vec<ServiceVolume>,
    pub working_dir: String,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Dependency {
    pub service: String,
    pub condition: DependencyCondition,
    pub position: Option<Position>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DependencyCondition {
    /// the list form, or `condition: service_started`
    Started,
    Healthy,
    CompletedSuccessfully,
}

/// A `secrets:` or `configs:` entry of a service.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct FileReference {
    pub source: String,
    pub target: String,
    pub uid: String,
    pub gid: String,
    pub mode: Option<u32>,
    pub position: Option<Position>,
}

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct CredentialSpec {
    pub config: String,
    pub file: String,
    pub registry: String,
}

#[derive(Clone, Debug, Default, PartialEq)]
pub struct Deploy {
    pub mode: String,
    pub replicas: Option<u64>,
    pub labels: BTreeMap<String, String>,
    pub update_config: Option<UpdateConfig>,
    pub rollback_config: Option<UpdateConfig>,
    pub resources: Resources,
    pub restart_policy: Option<RestartPolicy>,
    pub placement: Placement,
    pub endpoint_mode: String,
}

#[derive(Clone, Debug, Default, PartialEq)]
pub struct UpdateConfig {
    pub parallelism: Option<u64>,
    pub delay: i64,
    pub failure_action: String,
    pub monitor: i64,
    pub max_failure_ratio: f32,
    pub order: String,
}

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Resources {
    pub limits: Option<ResourceLimit>,
    pub reservations: Option<ResourceReservation>,
}

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ResourceLimit {
    /// as written ("0.5"); converted to nano-CPUs when deploying
    pub cpus: String,
    pub memory: i64,
    pub pids: i64,
}

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ResourceReservation {
    pub cpus: String,
    pub memory: i64,
    pub generic_resources: Vec<GenericResource>,
}

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct GenericResource {
    pub discrete: Option<DiscreteResource>,
}

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct DiscreteResource {
    pub kind: String,
    pub value: i64,
}

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RestartPolicy {
    pub condition: String,
    pub delay: Option<i64>,
    pub max_attempts: Option<u64>,
    pub window: Option<i64>,
}

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Placement {
    pub constraints: Vec<String>,
    /// the `spread` of each preference
    pub preferences: Vec<String>,
    pub max_replicas: u64,
}

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Healthcheck {
    pub test: Vec<String>,
    pub timeout: Option<i64>,
    pub interval: Option<i64>,
    pub retries: Option<u64>,
    pub start_period: Option<i64>,
    pub start_interval: Option<i64>,
    pub disable: bool,
}

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Logging {
    pub driver: String,
    /// `None` when the file gives no `options`
    pub options: Option<BTreeMap<String, String>>,
}

/// A network a service joins.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ServiceNetwork {
    /// `None` for the list form or a null entry
    pub settings: Option<NetworkSettings>,
    pub position: Option<Position>,
}

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct NetworkSettings {
    pub aliases: Vec<String>,
    pub driver_opts: BTreeMap<String, String>,
    pub ipv4_address: String,
    pub ipv6_address: String,
}

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Port {
    pub mode: String,
    pub target: u32,
    pub published: u32,
    pub protocol: String,
}

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ServiceVolume {
    /// "volume", "bind", "tmpfs", "npipe", "cluster" or "image"
    pub kind: String,
    pub source: String,
    pub target: String,
    pub read_only: bool,
    pub consistency: String,
    pub bind_propagation: Option<String>,
    pub volume_nocopy: Option<bool>,
    pub tmpfs_size: Option<i64>,
    pub position: Option<Position>,
}

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Ulimit {
    pub single: i64,
    pub soft: i64,
    pub hard: i64,
}

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Network {
    /// an explicit or external name, used as is (no namespace)
    pub name: String,
    pub driver: String,
    /// `None` when not given (the create body then has `"Options":null`)
    pub driver_opts: Option<BTreeMap<String, String>>,
    pub ipam_driver: String,
    pub ipam_subnets: Vec<String>,
    pub external: bool,
    pub internal: bool,
    pub attachable: bool,
    pub labels: BTreeMap<String, String>,
}

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Volume {
    pub name: String,
    pub driver: String,
    pub driver_opts: Option<BTreeMap<String, String>>,
    pub external: bool,
    pub labels: BTreeMap<String, String>,
}

/// A top-level secret or config.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct FileObject {
    pub name: String,
    pub source: ObjectSource,
    pub external: bool,
    pub labels: BTreeMap<String, String>,
    /// secrets only
    pub driver: String,
    pub driver_opts: BTreeMap<String, String>,
    pub template_driver: String,
    pub position: Option<Position>,
}

/// Where a secret's or config's data comes from.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub enum ObjectSource {
    /// external, or a secret driver's: no data
    #[default]
    None,
    /// an absolute path, read when converting (Docker reads it then too)
    File(String),
    /// berth (compose-spec `environment:`): a variable's value
    Environment { variable: String, value: String },
    /// berth (compose-spec `content:`, configs)
    Content(String),
}
